from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from estimation.models import (
    ClassMapping,
    ClassScheme,
    Coefficient,
    EcosystemResult,
    EstimationRun,
    LandCoverDataset,
    Methodology,
    Verification,
)
from estimation.services.runs import new_methodology_version


class ClassMappingInline(admin.TabularInline):
    model = ClassMapping
    extra = 1


@admin.register(ClassScheme)
class ClassSchemeAdmin(admin.ModelAdmin):
    list_display = ["slug", "name_zh", "name_en", "product"]
    search_fields = ["slug", "name_zh", "name_en"]
    inlines = [ClassMappingInline]


class CoefficientInline(admin.TabularInline):
    model = Coefficient
    extra = 0

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_frozen

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Methodology)
class MethodologyAdmin(admin.ModelAdmin):
    """A frozen version (one a run has used) is read-only; the action "new
    version" copies it into an editable next version."""

    list_display = ["slug", "version", "name_en", "kind", "is_default", "frozen_at"]
    list_filter = ["kind", "is_default"]
    search_fields = ["slug", "name_zh", "name_en"]
    readonly_fields = ["frozen_at", "created_at"]
    inlines = [CoefficientInline]
    actions = ["make_new_version"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_frozen:
            return [field.name for field in obj._meta.fields]
        return self.readonly_fields

    @admin.action(description=_("Create a new editable version"))
    def make_new_version(self, request, queryset):
        for methodology in queryset:
            copy = new_methodology_version(actor=request.user, methodology=methodology)
            self.message_user(
                request,
                _("%(name)s: version %(version)s created.")
                % {"name": methodology.display_name, "version": copy.version},
                messages.SUCCESS,
            )


@admin.register(LandCoverDataset)
class LandCoverDatasetAdmin(admin.ModelAdmin):
    list_display = ["name_en", "product", "year", "kind", "scheme", "organization"]
    list_filter = ["product", "kind", "scheme"]
    search_fields = ["name_zh", "name_en", "sha256"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False  # uploaded through the estimation pages, which check the file


class EcosystemResultInline(admin.TabularInline):
    model = EcosystemResult
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EstimationRun)
class EstimationRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "project", "dataset", "methodology", "status", "created_at"]
    list_filter = ["status", "methodology"]
    list_select_related = ["project", "dataset", "methodology"]
    inlines = [EcosystemResultInline]
    exclude = ["boundary"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "boundary"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Verification)
class VerificationAdmin(admin.ModelAdmin):
    """Read-only: submitted, decided and issued through the verification pages,
    which check who may take each step."""

    list_display = [
        "pk",
        "project",
        "run",
        "monitoring_start",
        "monitoring_end",
        "status",
        "verification_body",
        "batch",
    ]
    list_filter = ["status"]
    list_select_related = ["project", "run", "verification_body", "batch__project"]
    search_fields = ["project__code"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
