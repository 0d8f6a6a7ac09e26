"""Datasets in the Django admin, for staff."""

from django.contrib import admin

from webapp.datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "rows", "column_count", "size_bytes", "created_at"]
    list_filter = ["created_at", "owner"]
    search_fields = ["name", "original_filename", "owner__username"]
    readonly_fields = ["profile", "created_at"]
