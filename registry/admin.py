from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from registry.forms import BoundaryMapWidget
from registry.models import (
    Account,
    AdministrativeDivision,
    Alert,
    Membership,
    Organization,
    Project,
    ProjectDocument,
    ProjectEvent,
    ProjectStatusChange,
    RoleGrant,
    User,
)
from registry.selectors import get_user_roles


def _is_operator(request) -> bool:
    """Superusers are the operator's break-glass and keep Django's defaults;
    every other admin user only looks at people (design, invariant 10)."""
    return request.user.is_active and request.user.is_superuser


class PeopleReadOnlyMixin:
    """Users and memberships change only through role grants a second registry
    admin approves (registry.services.request_role_grant), never here."""

    def has_add_permission(self, request, *args):
        return _is_operator(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return _is_operator(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _is_operator(request) and super().has_delete_permission(request, obj)


class MembershipInline(PeopleReadOnlyMixin, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organization"]


@admin.register(User)
class UserAdmin(PeopleReadOnlyMixin, DjangoUserAdmin):
    """For anyone but a superuser: no superuser flag, groups, permissions or
    password on the page, and nothing changes (``has_change_permission`` also
    guards the password form)."""

    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff"]
    list_filter = ["groups", "is_staff", "is_active"]
    view_fieldsets = (
        (None, {"fields": ("username", "roles")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Status"), {"fields": ("is_active", "is_staff")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )

    def get_fieldsets(self, request, obj=None):
        if _is_operator(request):
            return super().get_fieldsets(request, obj)
        return self.view_fieldsets

    def get_readonly_fields(self, request, obj=None):
        if _is_operator(request):
            return super().get_readonly_fields(request, obj)
        return [
            field
            for _name, options in self.view_fieldsets
            for field in options["fields"]
        ]

    @admin.display(description=_("roles"))
    def roles(self, obj):
        return ", ".join(str(role.label) for role in get_user_roles(user=obj)) or "-"


class AccountInline(admin.TabularInline):
    model = Account
    extra = 0
    fields = ["number", "kind", "is_public", "created_at"]
    readonly_fields = ["number", "kind", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # accounts are opened by the registry's services


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name_zh", "name_en", "kind", "uscc", "is_demo", "created_at"]
    list_filter = ["kind", "is_demo"]
    search_fields = ["name_zh", "name_en", "uscc"]
    readonly_fields = ["created_at"]
    inlines = [AccountInline]


@admin.register(Membership)
class MembershipAdmin(PeopleReadOnlyMixin, admin.ModelAdmin):
    list_display = ["user", "organization", "created_at"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "organization__name_zh", "organization__name_en"]
    autocomplete_fields = ["user", "organization"]


@admin.register(RoleGrant)
class RoleGrantAdmin(admin.ModelAdmin):
    """Read-only for everyone: grants are requested and decided on the registry's
    pages, and the record of who asked and who approved never changes."""

    list_display = [
        "pk",
        "kind",
        "subject",
        "role",
        "organization",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "kind", "role"]
    list_select_related = ["user", "organization", "requested_by", "decided_by"]
    search_fields = [
        "user__username",
        "username",
        "requested_by__username",
        "decided_by__username",
    ]
    date_hierarchy = "requested_at"

    @admin.display(description=_("user"))
    def subject(self, obj):
        return obj.subject_name

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["number", "organization", "kind", "is_public", "created_at"]
    list_filter = ["kind", "is_public"]
    list_select_related = ["organization"]
    search_fields = ["number", "organization__name_zh", "organization__name_en"]
    fields = ["number", "organization", "kind", "is_public", "created_at"]
    readonly_fields = ["number", "organization", "kind", "created_at"]

    def has_add_permission(self, request):
        return False  # opened with their organization (registry.services)

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyMapMixin:
    """Shows the boundary on the project's own Leaflet map, read-only: boundaries
    change only through the registration form, where they are validated and the
    change is part of the audited draft."""

    @admin.display(description=_("boundary"))
    def boundary_map(self, obj):
        widget = BoundaryMapWidget(attrs={"readonly": True, "id": "id_boundary_map"})
        return widget.render("boundary_map", obj.boundary if obj else "")

    class Media:
        css = {"all": BoundaryMapWidget.Media.css["all"]}
        js = BoundaryMapWidget.Media.js


@admin.register(AdministrativeDivision)
class AdministrativeDivisionAdmin(ReadOnlyMapMixin, admin.ModelAdmin):
    list_display = ["adcode", "name_zh", "name_en", "level"]
    list_filter = ["level"]
    search_fields = ["adcode", "name_zh", "name_en"]
    fields = ["adcode", "name_zh", "name_en", "level", "boundary_map"]
    readonly_fields = ["adcode", "level", "boundary_map"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ProjectDocumentInline(admin.TabularInline):
    model = ProjectDocument
    extra = 0
    fields = ["kind", "original_name", "size_bytes", "sha256", "uploaded_by"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ProjectStatusChangeInline(admin.TabularInline):
    model = ProjectStatusChange
    extra = 0
    fields = ["created_at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ProjectEventInline(admin.TabularInline):
    model = ProjectEvent
    extra = 0
    fields = ["created_at", "kind", "actor", "reference", "note"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(ReadOnlyMapMixin, admin.ModelAdmin):
    list_display = [
        "code",
        "name_zh",
        "name_en",
        "owner",
        "county",
        "status",
        "area_ha",
    ]
    list_filter = ["status", "county", "ecosystem_focus", "is_demo"]
    list_select_related = ["owner", "county"]
    search_fields = ["code", "name_zh", "name_en", "owner__name_zh", "owner__name_en"]
    fields = [
        "code",
        "status",
        "name_zh",
        "name_en",
        "owner",
        "county",
        "ecosystem_focus",
        "crediting_start",
        "crediting_end",
        "description",
        "area_ha",
        "boundary_source_srid",
        "boundary_map",
        "is_demo",
        "created_by",
        "created_at",
    ]
    readonly_fields = [
        "code",
        "status",
        "owner",
        "county",
        "area_ha",
        "boundary_source_srid",
        "boundary_map",
        "created_by",
        "created_at",
    ]
    inlines = [ProjectDocumentInline, ProjectStatusChangeInline, ProjectEventInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("county__boundary")

    def has_add_permission(self, request):
        return False  # registered through the project form, by bureau staff

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.site_header = _("Bijie carbon-sink registry administration")
admin.site.site_title = _("Carbon-sink registry")
admin.site.index_title = _("Administration")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are raised by the registry and acknowledged from the
    banner on the registry's pages (registry.services.acknowledge_alert)."""

    list_display = [
        "pk",
        "kind",
        "alert_message",
        "raised_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = ["kind", ("acknowledged_at", admin.EmptyFieldListFilter)]
    list_select_related = ["acknowledged_by"]
    search_fields = ["key"]
    date_hierarchy = "raised_at"
    fields = [
        "kind",
        "key",
        "alert_message",
        "params",
        "raised_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    readonly_fields = fields

    @admin.display(description=_("message"))
    def alert_message(self, obj):
        return obj.message

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
