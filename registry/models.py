"""Who and where: users, the organizations they act for, and (later) accounts,
projects and credit batches.

A user acts for one or more organizations through ``Membership``; their roles are
Django groups (``registry.roles``). Object permissions follow the organization.
"""

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from registry import uscc


def validate_uscc(value: str) -> None:
    try:
        uscc.normalize(value)
    except uscc.InvalidCode as error:
        messages = {
            "length": _("A unified social credit code has exactly 18 characters."),
            "character": _(
                "A unified social credit code uses only digits and the capital "
                "letters A-Y except I, O, S, V and Z."
            ),
            "check": _(
                "The last character of this unified social credit code does not "
                "match its check digit: please check the code for a typing error."
            ),
        }
        raise ValidationError(
            messages[error.reason], code=f"uscc_{error.reason}"
        ) from None


class User(AbstractUser):
    """A person who signs in. Roles are groups; organizations via Membership."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")


class Organization(models.Model):
    """A legal entity that takes part in the registry."""

    class Kind(models.TextChoices):
        FORESTRY_BUREAU = "forestry_bureau", _("Forestry bureau")
        PROJECT_OWNER = "project_owner", _("Project owner")
        VERIFIER = "verifier", _("Verification body")
        BUYER = "buyer", _("Buyer")
        REGISTRY_OPERATOR = "registry_operator", _("Registry operator")

    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    uscc = models.CharField(
        _("unified social credit code"),
        max_length=18,
        unique=True,
        validators=[validate_uscc],
        help_text=_("18 characters, GB 32100-2015, with its check digit."),
    )
    is_demo = models.BooleanField(_("demo data"), default=False)
    members = models.ManyToManyField(
        User, through="Membership", related_name="organizations", blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uscc__regex=r"^[0-9A-HJ-NP-RTUW-Y]{18}$"),
                name="organization_uscc_format",
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name in the active language (Chinese names for Chinese pages)."""
        language = get_language() or ""
        return self.name_zh if language.startswith("zh") else self.name_en


class Membership(models.Model):
    """A user acting for an organization."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships"
    )
    created_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"
