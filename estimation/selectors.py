"""Reads for the estimation app that more than one caller needs."""

from django.db.models import QuerySet

from estimation.models import ClassScheme, EstimationRun, LandCoverDataset, Methodology
from registry.models import User
from registry.roles import Role
from registry.selectors import has_role


def scheme_lookup(scheme: ClassScheme) -> dict[str, str]:
    """Class code -> ecosystem key."""
    return dict(scheme.mappings.values_list("code", "ecosystem"))


def get_default_methodology() -> Methodology | None:
    return Methodology.objects.filter(is_default=True).first()


def list_methodologies() -> QuerySet[Methodology]:
    return Methodology.objects.order_by("slug", "-version")


def list_datasets(*, user: User) -> QuerySet[LandCoverDataset]:
    """Datasets of the user's organizations (all for registry admins)."""
    datasets = LandCoverDataset.objects.select_related("scheme", "organization")
    if has_role(user, Role.REGISTRY_ADMIN):
        return datasets
    if not user.is_authenticated:
        return datasets.none()
    return datasets.filter(organization__memberships__user=user).distinct()


def list_runs(*, user: User) -> QuerySet[EstimationRun]:
    """Runs of the user's organizations; registry admins and verifiers see all."""
    runs = EstimationRun.objects.select_related(
        "project", "dataset", "methodology", "organization"
    ).defer("boundary", "project__boundary")
    if has_role(user, Role.REGISTRY_ADMIN) or has_role(user, Role.VERIFIER):
        return runs
    if not user.is_authenticated:
        return runs.none()
    return runs.filter(organization__memberships__user=user).distinct()


def get_run_for_user(*, user: User, pk: int) -> EstimationRun | None:
    return list_runs(user=user).defer(None).filter(pk=pk).first()
