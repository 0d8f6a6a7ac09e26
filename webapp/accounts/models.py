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


class ApiToken(models.Model):
    """A personal API token (``Authorization: Bearer <token>``). Only its SHA-256 is kept: the token
    itself is shown once, when made. A token is 256 random bits, so an unsalted hash is enough (no
    dictionary to guess from); ``prefix`` (its first characters) lets its owner tell tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly retrain'.")
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Preferences(models.Model):
    """What a user asked for: an email when one of their searches ends (to their account's address)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    email_when_search_ends = models.BooleanField(
        default=False, help_text="Send an email to the account's address when a search finishes, fails or is cancelled."
    )

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.user}"
