"""The home page: a new user's first step, each user's own datasets and searches with their progress,
best score, front size and time used, and separate pages for both lists."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.web.helpers import upload_dataset
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import PER_PAGE
from webapp.searches.models import SearchJob, Trial

pytestmark = pytest.mark.django_db


def make_dataset(owner, name: str) -> Dataset:
    """A dataset row without a file: the home page only lists it."""
    profile = {"rows": 2, "columns": [{"name": "x"}, {"name": "y"}]}
    return Dataset.objects.create(
        owner=owner, name=name, original_filename=f"{name}.csv", file=f"datasets/{name}.csv",
        size_bytes=10, rows=2, column_count=2, profile=profile,
    )  # fmt: skip


def make_job(dataset, **fields) -> SearchJob:
    fields = {"target": "y", "task": "classification", "budget_seconds": 60, **fields}
    return SearchJob.objects.create(owner=dataset.owner, dataset=dataset, **fields)


def add_trial(job, number: int, score: float | None, on_front: bool = False) -> Trial:
    return Trial.objects.create(
        job=job, number=number, status="completed" if score is not None else "rejected", architecture={},
        arch_hash=str(number), score=score, params=100, flops=100, size_bytes=400, on_front=on_front,
    )  # fmt: skip


def row_of(page: str, job: SearchJob) -> str:
    """The job list's table row for ``job``."""
    start = page.index(f'<a href="{reverse("search_detail", args=[job.pk])}">')
    return page[start : page.index("</tr>", start)]


def test_a_new_user_is_told_to_upload_a_csv_first(alice_client):
    page = alice_client.get(reverse("home")).content.decode()
    assert "Your datasets" in page
    assert 'id="empty-state"' in page
    assert f'href="{reverse("dataset_upload")}">Upload a CSV</a>' in page
    assert 'id="dataset-list"' not in page and 'id="job-list"' not in page


def test_it_lists_my_datasets_and_not_other_users(alice_client, alice, bob, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    make_dataset(bob, "bobs_secret")
    page = alice_client.get(reverse("home")).content.decode()
    assert 'id="empty-state"' not in page
    assert reverse("dataset_detail", args=[dataset.pk]) in page and "breast_cancer.csv" in page
    assert "bobs_secret" not in page
    assert "No searches yet. Open a dataset above and start one." in page


def test_it_summarises_each_search(alice_client, alice):
    dataset = make_dataset(alice, "cells")
    started = timezone.now() - timedelta(minutes=10)
    finished = make_job(
        dataset, status="finished", progress=1.0, started_at=started, finished_at=started + timedelta(seconds=125),
        seconds_used=30.0,
    )  # fmt: skip
    add_trial(finished, 0, 0.812)
    add_trial(finished, 1, 0.9567, on_front=True)
    add_trial(finished, 2, 0.70, on_front=True)
    add_trial(finished, 3, None)
    queued = make_job(dataset, status="queued", task="regression")
    response = alice_client.get(reverse("home"))
    jobs = {job.pk: job for job in response.context["jobs"]}
    assert jobs[finished.pk].best_score == pytest.approx(0.9567) and jobs[finished.pk].front_size == 2
    assert jobs[finished.pk].time_used_seconds == pytest.approx(155.0)
    page = response.content.decode()
    row = row_of(page, finished)
    assert "0.957" in row and "accuracy" in row and "<td>2</td>" in row and "2 min 35 s" in row and "100%" in row
    row = row_of(page, queued)
    assert "queued" in row and "0%" in row and "<td>0</td>" in row and row.count("–") == 2  # no score, no time


def test_staff_see_only_their_own_work_on_home(client, django_user_model, alice):
    make_job(make_dataset(alice, "alices_data"))
    staff = django_user_model.objects.create_user(username="ops", password="x-long-password-1", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("home")).content.decode()
    assert "alices_data" not in page and 'id="empty-state"' in page


def test_datasets_and_searches_are_paginated_separately(alice_client, alice):
    datasets = [make_dataset(alice, f"set{i:02d}") for i in range(PER_PAGE + 3)]
    for i in range(PER_PAGE + 1):
        make_job(datasets[0], target=f"t{i}")
    first = alice_client.get(reverse("home"))
    assert len(first.context["datasets"]) == PER_PAGE and len(first.context["jobs"]) == PER_PAGE
    page = first.content.decode()
    assert 'aria-label="Dataset pages"' in page and 'aria-label="Search pages"' in page
    assert 'href="?datasets=2"' in page and 'href="?jobs=2"' in page
    assert "Page 1 of 2" in page

    second = alice_client.get(reverse("home"), {"datasets": 2, "jobs": 2})
    names = [d.name for d in second.context["datasets"]]
    assert names == ["set02", "set01", "set00"]  # newest first, so the first three made are last
    assert len(second.context["jobs"]) == 1
    # Each list's links keep the other list's page.
    assert 'href="?datasets=1&amp;jobs=2"' in second.content.decode()
    assert 'href="?datasets=2&amp;jobs=1"' in second.content.decode()


def test_a_bad_page_number_shows_a_page_instead_of_an_error(alice_client, alice):
    make_dataset(alice, "only")
    for value in ["abc", "999", "-1"]:
        response = alice_client.get(reverse("home"), {"datasets": value})
        assert response.status_code == 200 and "only" in response.content.decode()
