"""Staff edit a user's quota on its own page or inline on the user's page."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from webapp.accounts.models import UserQuota

QUOTA_FIELDS = ["max_concurrent_jobs", "max_budget_seconds", "max_upload_mb", "max_storage_mb"]


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = ["user", *QUOTA_FIELDS]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]


class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    can_delete = True
    max_num = 1
    extra = 1
    fields = QUOTA_FIELDS


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [*DjangoUserAdmin.inlines, UserQuotaInline]
