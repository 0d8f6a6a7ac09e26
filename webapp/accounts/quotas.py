"""Per-user quotas: the limits that apply to a user, what the user uses, and the checks that
refuse an upload or a search before anything is created.

Staff are not exempt: an admin who needs more raises their own quota on the user's admin page.
"""

import os
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum

from webapp.accounts.models import UserQuota
from webapp.datasets.models import Dataset
from webapp.searches.models import SearchJob

MB = 1024 * 1024  # the same megabyte as settings.MAX_UPLOAD_BYTES


class QuotaExceeded(Exception):
    """An upload or a search would pass one of the user's quotas; the message says what to do.

    Attributes:
        field: the form field the message belongs next to, or None for the form as a whole.
    """

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EffectiveQuota:
    """The limits that apply to one user: their overrides, else the site defaults."""

    max_concurrent_jobs: int
    max_budget_seconds: int
    max_upload_mb: int
    max_storage_mb: int

    def to_dict(self) -> dict:
        return {
            "max_concurrent_jobs": self.max_concurrent_jobs,
            "max_budget_seconds": self.max_budget_seconds,
            "max_upload_mb": self.max_upload_mb,
            "max_storage_mb": self.max_storage_mb,
        }


def quota_for(user) -> EffectiveQuota:
    """The user's limits. Upload and budget never exceed the server's hard caps
    (MAX_UPLOAD_MB, MAX_BUDGET_SECONDS), which the upload handler and the form enforce anyway."""
    row = UserQuota.objects.filter(user=user).first() or UserQuota()

    def pick(override: int | None, default: int) -> int:
        return default if override is None else override

    return EffectiveQuota(
        max_concurrent_jobs=pick(row.max_concurrent_jobs, settings.QUOTA_MAX_CONCURRENT_JOBS),
        max_budget_seconds=min(
            pick(row.max_budget_seconds, settings.QUOTA_MAX_BUDGET_SECONDS), settings.MAX_BUDGET_SECONDS
        ),
        max_upload_mb=min(pick(row.max_upload_mb, settings.QUOTA_MAX_UPLOAD_MB), settings.MAX_UPLOAD_MB),
        max_storage_mb=pick(row.max_storage_mb, settings.QUOTA_MAX_STORAGE_MB),
    )


def active_search_count(user) -> int:
    """Searches of the user that are queued or running."""
    return SearchJob.objects.filter(owner=user, status__in=[SearchJob.Status.QUEUED, SearchJob.Status.RUNNING]).count()


def storage_used_bytes(user) -> int:
    """Bytes the user keeps: their datasets (as recorded at upload) plus every file their searches
    wrote (weights, bundles). One query for the datasets and a walk of the user's job folders, so
    it costs about one stat() per stored file."""
    datasets = Dataset.objects.filter(owner=user).aggregate(total=Sum("size_bytes"))["total"] or 0
    jobs = SearchJob.objects.filter(owner=user).only("pk")
    return datasets + sum(_folder_bytes(job.artifacts_dir) for job in jobs)


def _folder_bytes(path: str) -> int:
    try:
        entries = os.scandir(path)
    except FileNotFoundError:  # a job that has not started yet has no folder
        return 0
    total = 0
    with entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                total += _folder_bytes(entry.path)
            elif entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def check_upload(user, size_bytes: int) -> None:
    """Refuse an upload over the user's upload size or one that would take them over their storage.

    Raises:
        QuotaExceeded: with a message for the upload form's file field.
    """
    quota = quota_for(user)
    if size_bytes > quota.max_upload_mb * MB:
        raise QuotaExceeded(
            f"This file ({_mb(size_bytes)} MB) is over your {quota.max_upload_mb:,} MB upload limit; "
            "upload a smaller file, for example a sample of the rows.",
            field="file",
        )
    after = storage_used_bytes(user) + size_bytes
    if after > quota.max_storage_mb * MB:
        raise QuotaExceeded(
            f"This upload ({_mb(size_bytes)} MB) would take your storage to {_mb(after)} MB, "
            f"over your {quota.max_storage_mb:,} MB limit; delete old datasets or searches first.",
            field="file",
        )


def check_search(user, budget_seconds: int) -> None:
    """Refuse a search over the user's budget, concurrency or storage limit.

    Call it inside the same `transaction.atomic()` block as `search_create`: it locks the user's
    row, so two tabs starting searches at once cannot both take the last slot.

    Raises:
        QuotaExceeded: `field` is "budget_seconds" for the budget limit, None for the others.
    """
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    quota = quota_for(user)
    if budget_seconds > quota.max_budget_seconds:
        raise QuotaExceeded(
            f"A time budget of {budget_seconds:,} s is over your limit of {quota.max_budget_seconds:,} s "
            f"per search; choose {quota.max_budget_seconds:,} s or less.",
            field="budget_seconds",
        )
    if quota.max_concurrent_jobs == 0:
        raise QuotaExceeded("Your account may not start searches at the moment; ask an administrator.")
    active = active_search_count(user)
    if active >= quota.max_concurrent_jobs:
        searches = "search" if active == 1 else "searches"
        raise QuotaExceeded(
            f"You have {active} {searches} running or queued, your limit is {quota.max_concurrent_jobs}; "
            "wait for one to finish or cancel one."
        )
    used = storage_used_bytes(user)
    if used >= quota.max_storage_mb * MB:
        raise QuotaExceeded(
            f"Your files take {_mb(used)} MB, at or over your {quota.max_storage_mb:,} MB storage limit; "
            "delete old datasets or searches before starting another."
        )


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / MB:,.1f}"
