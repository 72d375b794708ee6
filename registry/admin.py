from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from registry.models import Membership, Organization, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organization"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff"]
    list_filter = ["groups", "is_staff", "is_active"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name_zh", "name_en", "kind", "uscc", "is_demo", "created_at"]
    list_filter = ["kind", "is_demo"]
    search_fields = ["name_zh", "name_en", "uscc"]
    readonly_fields = ["created_at"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "created_at"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "organization__name_zh", "organization__name_en"]
    autocomplete_fields = ["user", "organization"]


admin.site.site_header = _("Bijie carbon-sink registry administration")
admin.site.site_title = _("Carbon-sink registry")
admin.site.index_title = _("Administration")
