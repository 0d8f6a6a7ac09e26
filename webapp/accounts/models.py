"""Per-user quota overrides; a user without a row, or a field left empty, gets the site default."""

from django.conf import settings
from django.db import models


class UserQuota(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    max_concurrent_jobs = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="searches running or queued at once",
        help_text="Empty: the site default (QUOTA_MAX_CONCURRENT_JOBS). 0 stops this user starting searches.",
    )  # fmt: skip
    max_budget_seconds = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="time budget per search (seconds)",
        help_text="Empty: the site default (QUOTA_MAX_BUDGET_SECONDS). Never above MAX_BUDGET_SECONDS.",
    )  # fmt: skip
    max_upload_mb = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="largest upload (MB)",
        help_text="Empty: the site default (QUOTA_MAX_UPLOAD_MB). Never above MAX_UPLOAD_MB.",
    )  # fmt: skip
    max_storage_mb = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="storage for datasets and search files (MB)",
        help_text="Empty: the site default (QUOTA_MAX_STORAGE_MB).",
    )  # fmt: skip

    class Meta:
        verbose_name = "quota"

    def __str__(self) -> str:
        return f"Quota of {self.user}"

    def to_dict(self) -> dict:
        return {
            "user": self.user_id,
            "max_concurrent_jobs": self.max_concurrent_jobs,
            "max_budget_seconds": self.max_budget_seconds,
            "max_upload_mb": self.max_upload_mb,
            "max_storage_mb": self.max_storage_mb,
        }
