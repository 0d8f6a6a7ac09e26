"""Limits on real workers: a runaway model is stopped and recorded while the search goes on, a job
that runs past its budget plus grace ends failed with the reason, and limits no architecture can
meet end the job failed with what to change, never a silent empty front or a spinning job."""

import os

import pytest
from django.urls import reverse

from nas_engine.spaces import MLPSpace
from tests.conftest import start_celery_worker
from tests.web.helpers import upload_dataset
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import services
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def run_on_own_worker(job: SearchJob, tmp_path, monkeypatch, **env: str) -> SearchJob:
    """Run ``job`` on a worker of its own, started with ``env`` (settings only it should have)."""
    from webapp.searches.tasks import run_search

    queue = f"limits-{os.getpid()}-{job.pk}"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", queue)  # the shared test worker never sees this job
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    worker = start_celery_worker(f"limits-{job.pk}", tmp_path)
    try:
        run_search.apply_async(args=[job.pk], queue=queue + "search")
        job = wait_until_ended(job, timeout=120)
    finally:
        worker.stop()
    return job


def make_job(alice, alice_client, csv_path, **fields) -> SearchJob:
    dataset = upload_dataset(alice_client, csv_path)
    return SearchJob.objects.create(
        owner=alice, dataset=dataset, target="diagnosis", task="classification", objectives=["score", "params"],
        **fields,
    )  # fmt: skip


def test_a_runaway_model_is_stopped_and_recorded_and_the_search_goes_on(
    alice, alice_client, breast_cancer_csv, tmp_path, monkeypatch
):
    job = make_job(alice, alice_client, breast_cancer_csv, budget_seconds=60, max_trials=3)
    # Every model here trains for far longer than a millisecond: each one runs away.
    job = run_on_own_worker(job, tmp_path, monkeypatch, SEARCH_MAX_TRIAL_SECONDS="0.001")
    trials = list(job.trials.order_by("number"))
    assert [(t.number, t.status) for t in trials] == [(0, "failed"), (1, "failed"), (2, "failed")]
    for trial in trials:
        assert trial.message == "stopped after 0.001 s: longer than this search allows per model"
        assert trial.train_seconds > 0
    assert job.status == SearchJob.Status.FAILED and job.finished_at is not None
    assert job.error.startswith("No model finished training in the time this search allows per model")
    assert "longer time budget" in job.error
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    assert "No model finished training" in page and "Traceback" not in page


def test_a_job_past_its_budget_and_grace_is_ended_with_the_reason(
    alice, alice_client, breast_cancer_csv, tmp_path, monkeypatch
):
    # No trial limit: the search would go on for its whole budget, then refit; no grace is given.
    job = make_job(alice, alice_client, breast_cancer_csv, budget_seconds=3)
    job = run_on_own_worker(job, tmp_path, monkeypatch, SEARCH_GRACE_SECONDS="0")
    assert job.status == SearchJob.Status.FAILED and job.finished_at is not None, job.message
    assert job.error.startswith("Stopped after 3 s: longer than this search may run (its 3 s budget plus 0 s")
    assert "saved trials are kept" in job.error
    assert not job.trials.filter(architecture__space="ensemble").exists()  # no refit after it was stopped


def test_a_latency_limit_no_architecture_meets_fails_with_the_fastest_measured(
    celery_worker_process, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, max_trials=2,
        max_latency_ms=1e-6,
    )  # fmt: skip
    job = wait_until_ended(job, timeout=120)
    trials = list(job.trials.all())
    assert len(trials) == 2 and {t.status for t in trials} == {"rejected"}
    fastest = min(t.latency_ms for t in trials)
    assert job.status == SearchJob.Status.FAILED
    assert job.error.startswith("No architecture fits the latency limit of 1e-06 ms per prediction")
    assert f"Raise the latency limit to at least {fastest:.3g} ms" in job.error
    assert job.recommended_number is None


def test_a_parameter_limit_below_the_smallest_model_fails_with_the_smallest_size(
    celery_worker_process, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, max_params=5
    )
    job = wait_until_ended(job, timeout=120)
    smallest = MLPSpace().smallest_params(job.n_inputs, job.n_outputs)
    assert job.status == SearchJob.Status.FAILED and not job.trials.exists()
    assert f"No network fits under 5 parameters: the smallest one for this data has {smallest:,}." in job.error
