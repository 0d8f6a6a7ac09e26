"""Reads for search jobs and trials: a user sees their own; staff see every user's."""

from django.db.models import Count, Max, Q, QuerySet
from django.shortcuts import get_object_or_404

from webapp.searches.models import SearchJob, SearchLogEntry, Trial


def _visible_to(user, *, owner_field: str = "owner") -> dict:
    """Filter arguments limiting rows to what ``user`` may see (all of them for staff)."""
    return {} if user.is_staff else {owner_field: user}


def search_list(*, user) -> QuerySet[SearchJob]:
    """The user's own jobs (staff too: their home page lists their own; the admin lists all)."""
    return SearchJob.objects.filter(owner=user).select_related("dataset")


def search_summaries(*, user) -> QuerySet[SearchJob]:
    """The user's own jobs for the home page, each with ``best_score`` (None before a trial has one)
    and ``front_size`` (trials on the Pareto front)."""
    return search_list(user=user).annotate(
        best_score=Max("trials__score"), front_size=Count("trials", filter=Q(trials__on_front=True))
    )


def get_search_for_user(*, user, pk: int) -> SearchJob:
    """A job the user may see, or 404 (for other users' jobs too, so ids leak nothing)."""
    return get_object_or_404(SearchJob.objects.select_related("dataset"), pk=pk, **_visible_to(user))


def with_model_counts(jobs: QuerySet[SearchJob]) -> QuerySet[SearchJob]:
    """``jobs``, each with ``models``: its trained trials (weights on disk, maybe bundles), which a
    deletion takes with it. What a confirmation page lists before anything is deleted."""
    return jobs.annotate(models=Count("trials", filter=Q(trials__status__in=Trial.WITH_MODEL))).order_by("-pk")


def get_trial_for_user(*, user, pk: int, number: int) -> Trial:
    return get_object_or_404(
        Trial.objects.select_related("job", "job__dataset"),
        job__pk=pk,
        number=number,
        **_visible_to(user, owner_field="job__owner"),
    )


def get_trial_by_id_for_user(*, user, pk: int) -> Trial:
    """A trial by its id (as the API names trials), or 404 when the user may not see it."""
    return get_object_or_404(
        Trial.objects.select_related("job", "job__dataset"), pk=pk, **_visible_to(user, owner_field="job__owner")
    )


def search_snapshot(*, user, pk: int) -> tuple[SearchJob, list[Trial]] | None:
    """The job and all its trials so far, or None when the user may not see it."""
    job = SearchJob.objects.select_related("dataset").filter(pk=pk, **_visible_to(user)).first()
    if job is None:
        return None
    return job, list(job.trials.all())


def front_trial_ids(*, job: SearchJob) -> list[int]:
    return list(job.trials.filter(on_front=True).values_list("id", flat=True))


def search_log(*, job: SearchJob, limit: int = 200) -> list[SearchLogEntry]:
    """The job's latest ``limit`` status log lines, oldest first."""
    return list(reversed(job.log_entries.order_by("-id")[:limit]))


def dataset_leaderboard(*, dataset) -> list[dict]:
    """The dataset's searches ranked by their best validation score, one table per target and metric
    (scores of different targets or metrics do not compare): each row the job with ``best`` (the
    metric's value of its best model, None before one), ``best_trial`` (that model: its params and
    latency are the cost) and ``models`` (trained models)."""
    jobs = (
        SearchJob.objects.filter(dataset=dataset)
        .defer("preprocessing")
        .annotate(
            best_score=Max("trials__score"), models=Count("trials", filter=Q(trials__status__in=Trial.WITH_MODEL))
        )
        .order_by("-pk")
    )
    tables: dict[tuple[str, str], list[SearchJob]] = {}
    for job in jobs:
        tables.setdefault((job.target, job.scored_by.label), []).append(job)
    boards = []
    for (target, label), rows in tables.items():
        for job in rows:
            job.best_trial = (
                job.trials.filter(score=job.best_score).order_by("number").first()
                if job.best_score is not None
                else None
            )
            job.best = None if job.best_score is None else job.scored_by.shown(job.best_score)
        rows.sort(key=lambda job: (job.best_score is None, -(job.best_score or 0.0), -job.pk))
        boards.append({"target": target, "metric": label, "jobs": rows})
    return boards
