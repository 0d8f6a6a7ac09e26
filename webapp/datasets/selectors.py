"""Reads for datasets, always scoped to one user: lists for the home page and the profile a dataset
page shows."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

import nas_engine
from webapp.datasets.models import Dataset
from webapp.searches.selectors import search_summaries, with_model_counts

PER_PAGE = 20


def dataset_list(*, user) -> QuerySet[Dataset]:
    return Dataset.objects.filter(owner=user)


def get_dataset_for_user(*, user, pk: int) -> Dataset:
    """The user's dataset, or 404 (also for other users' datasets, so ids leak nothing)."""
    return get_object_or_404(Dataset, pk=pk, owner=user)


def dataset_deletion(*, dataset: Dataset) -> dict:
    """What deleting ``dataset`` takes with it: every search on it (each with ``models``, its trained
    models), their total, and how many are still queued or running (they are cancelled)."""
    searches = list(with_model_counts(dataset.search_jobs.all()))
    return {
        "searches": searches,
        "models": sum(job.models for job in searches),
        "active": sum(not job.is_ended for job in searches),
    }


def dataset_page(*, user, number) -> Page:
    """One page of the user's datasets, newest first; a bad or too large ``number`` gives the nearest page."""
    return Paginator(dataset_list(user=user).defer("profile").order_by("-created_at", "-pk"), PER_PAGE).get_page(number)


def search_summary_page(*, user, number, now=None) -> Page:
    """One page of the user's searches (staff see only their own here), each with ``best_score``,
    ``front_size`` and ``time_used_seconds`` (None before it started)."""
    # Annotated (grouped) queries drop Meta.ordering, so the order is spelled out; pk breaks ties.
    jobs = search_summaries(user=user).defer("preprocessing").order_by("-created_at", "-pk")
    page = Paginator(jobs, PER_PAGE).get_page(number)
    now = now or timezone.now()
    for job in page:
        if job.started_at is None:
            job.time_used_seconds = None
        else:
            # seconds_used holds the time of earlier, interrupted attempts.
            job.time_used_seconds = job.seconds_used + ((job.finished_at or now) - job.started_at).total_seconds()
    return page


def dataset_profile(*, dataset: Dataset, target: str = "") -> dict:
    """The stored profile with every key the dataset page reads; ``target_leakage`` lists the leak
    suspects for ``target`` (the column the search form has chosen).

    Datasets profiled before distributions, warnings and previews were kept get empty values and
    ``complete = False``, so their page still renders and says what is missing.
    """
    stored = dataset.profile
    image = stored.get("image")
    columns = [
        {**column, "distribution": column.get("distribution"), "mean": column.get("mean")}
        for column in stored["columns"]
        # An image set's other columns are its pixels: the page shows the images instead.
        if not image or column["name"] == nas_engine.images.TARGET
    ]
    rows = stored.get("rows", dataset.rows) or 0
    for column in columns:
        column["missing_percent"] = round(100 * column["missing"] / rows) if rows else 0
    leakage = stored.get("leakage", [])
    return {
        "rows": rows,
        "columns": columns,
        "warnings": stored.get("warnings", []),
        "leakage": leakage,
        "target": target,
        "target_leakage": [suspect for suspect in leakage if suspect["target"] == target],
        "leakage_checked": stored.get("leakage_checked"),  # None: profiled before leaks were checked
        "preview": stored.get("preview", []),
        "sampled_rows": stored.get("sampled_rows"),
        "complete": "preview" in stored,
        "image": image and _image_summary(image),
        # What the target chart needs, by column name (the page's script reads it as JSON).
        "chart": {
            column["name"]: {
                "kind": column["kind"],
                "task": column["suggested_task"],
                "missing": column["missing"],
                "unique": column["unique"],
                "mean": column["mean"],
                "distribution": column["distribution"],
            }
            for column in columns
        },
    }


def _image_summary(image: dict) -> dict:
    """The image profile with what its page section shows: classes with their share and samples."""
    total = sum(count for _, count in image["classes"]) or 1
    most = max((count for _, count in image["classes"]), default=1) or 1
    classes = [
        {"name": name, "count": count, "percent": round(100 * count / total), "bar": round(100 * count / most)}
        for name, count in image["classes"]
    ]
    for row in classes:
        row["samples"] = image["samples"].get(row["name"], [])
    return {**image, "class_rows": classes, "grey": image["channels"] == 1}
