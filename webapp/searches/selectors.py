"""Reads for search jobs and trials, always scoped to one user."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from webapp.searches.models import SearchJob, Trial


def search_list(*, user) -> QuerySet[SearchJob]:
    return SearchJob.objects.filter(owner=user).select_related("dataset")


def get_search_for_user(*, user, pk: int) -> SearchJob:
    """The user's job, or 404 (for other users' jobs too, so ids leak nothing)."""
    return get_object_or_404(SearchJob.objects.select_related("dataset"), pk=pk, owner=user)


def get_trial_for_user(*, user, pk: int, number: int) -> Trial:
    return get_object_or_404(
        Trial.objects.select_related("job", "job__dataset"), job__pk=pk, job__owner=user, number=number
    )


def search_snapshot(*, user, pk: int) -> tuple[SearchJob, list[Trial]] | None:
    """The job and all its trials so far, or None when the user may not see it."""
    job = SearchJob.objects.select_related("dataset").filter(pk=pk, owner=user).first()
    if job is None:
        return None
    return job, list(job.trials.all())


def front_trial_ids(*, job: SearchJob) -> list[int]:
    return list(job.trials.filter(on_front=True).values_list("id", flat=True))
