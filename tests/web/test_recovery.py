"""A worker killed mid-search loses nothing: the job is picked up again and resumes from its saved
trials, or, after SEARCH_MAX_ATTEMPTS, fails with a reason. Never left "running"."""

import os
import signal
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from tests.conftest import start_celery_worker
from tests.web.helpers import upload_dataset, wait_for_trials
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import runner, services
from webapp.searches.models import SearchJob, SearchLogEntry


def make_running(job, *, silent_for: float, attempts: int) -> None:
    now = timezone.now()
    SearchJob.objects.filter(pk=job.pk).update(
        status="running",
        attempts=attempts,
        started_at=now - timedelta(seconds=silent_for + 20),
        heartbeat_at=now - timedelta(seconds=silent_for),
        worker_host="gone@host",
    )


@pytest.mark.django_db
@override_settings(SEARCH_STALE_SECONDS=60, SEARCH_MAX_ATTEMPTS=3)
def test_a_silent_running_job_is_queued_again_with_the_time_it_used(queued_job, django_capture_on_commit_callbacks):
    make_running(queued_job, silent_for=90, attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        outcome = runner.search_reap_stale()
    queued_job.refresh_from_db()
    assert (outcome["requeued"], outcome["failed"]) == ([queued_job.pk], [])
    assert queued_job.status == SearchJob.Status.QUEUED and "resuming" in queued_job.message
    assert queued_job.seconds_used == pytest.approx(20, abs=1)
    assert len(sent) == 2  # after commit: run_search sent again, and the page told


@pytest.mark.django_db
@override_settings(SEARCH_STALE_SECONDS=60, SEARCH_MAX_ATTEMPTS=3)
def test_a_job_that_keeps_losing_its_worker_fails_with_a_reason(queued_job):
    make_running(queued_job, silent_for=90, attempts=3)
    outcome = runner.search_reap_stale()
    assert (outcome["requeued"], outcome["failed"]) == ([], [queued_job.pk])
    queued_job.refresh_from_db()
    assert queued_job.status == SearchJob.Status.FAILED and queued_job.finished_at is not None
    assert "gone@host" in queued_job.error and "3 times" in queued_job.error


@pytest.mark.django_db
@override_settings(SEARCH_STALE_SECONDS=60)
def test_a_job_whose_worker_is_alive_is_left_alone(queued_job):
    make_running(queued_job, silent_for=5, attempts=1)
    outcome = runner.search_reap_stale()
    assert (outcome["requeued"], outcome["failed"]) == ([], [])
    queued_job.refresh_from_db()
    assert queued_job.status == SearchJob.Status.RUNNING


def test_beat_looks_for_silent_workers_every_minute(settings):
    from webapp.celery import app

    app.loader.import_default_modules()
    assert "searches.reap_stale" in app.tasks
    reap = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == "searches.reap_stale"]
    assert [entry["schedule"] for entry in reap] == [60]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_search_resumes_on_a_new_worker_after_its_worker_is_killed(
    alice, alice_client, breast_cancer_csv, tmp_path, monkeypatch
):
    from webapp.searches.tasks import run_search

    queue = f"recovery-{os.getpid()}"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", queue)  # these workers only: the shared test worker never sees it
    monkeypatch.setenv("SEARCH_STALE_SECONDS", "3")
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # mlp: 5-fold networks of a second or two each (the tabular portfolio starts with slower boosted trees)
    job = SearchJob.objects.create(
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=120,
        max_trials=8, seed=3, objectives=["score", "params"], space="mlp",
    )  # fmt: skip
    first = start_celery_worker("doomed", tmp_path)
    try:
        run_search.apply_async(args=[job.pk], queue=queue + "search")
        wait_for_trials(job, 3, statuses=["completed", "pruned"])
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
    finally:
        first.stop()
    kept = {t.pk: (t.number, t.arch_hash, t.score) for t in job.trials.all()}
    assert len(kept) >= 3
    job.refresh_from_db()
    assert job.status == SearchJob.Status.RUNNING  # what the dead worker left behind
    time.sleep(4)  # its heartbeat goes stale
    second = start_celery_worker("rescuer", tmp_path)
    try:
        job = wait_until_ended(job, timeout=180)
    finally:
        second.stop()
    assert job.status == SearchJob.Status.FINISHED, (job.error, second.log()[-3000:])
    assert job.attempts == 2 and job.seconds_used > 0
    trials = list(job.trials.exclude(architecture__space="ensemble").order_by("number"))
    # Nothing lost, nothing redone: the kept rows are untouched, new ones come after them.
    assert {t.pk: (t.number, t.arch_hash, t.score) for t in trials if t.pk in kept} == kept
    assert len({t.arch_hash for t in trials}) == len(trials)
    assert min(t.number for t in trials if t.pk not in kept) > max(number for number, _, _ in kept.values())
    assert sum(t.status in ("completed", "pruned", "failed") for t in trials) == 8  # max_trials over both runs


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_in_a_long_phase_without_epochs_beats_and_keeps_its_job(
    alice, alice_client, tmp_path, monkeypatch, settings
):
    """Loading 150,000 rows takes a second or two and writes nothing; the worker's heartbeat thread
    stamps the job meanwhile, so a reaper with a 1 s staleness, run all along, never takes the job."""
    queue = f"heartbeat-{os.getpid()}"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", queue)  # this worker only: the shared test worker never sees it
    monkeypatch.setenv("SEARCH_STALE_SECONDS", "1")  # the worker beats every 0.25 s
    settings.SEARCH_STALE_SECONDS = 1
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(150_000, 20)).round(4), columns=[f"f{i}" for i in range(20)])
    table["y"] = np.where(table.f0 + table.f1 > 0, "a", "b")
    table.to_csv(tmp_path / "large.csv", index=False)
    dataset = upload_dataset(alice_client, tmp_path / "large.csv")
    worker = start_celery_worker("loader", tmp_path)
    try:
        job = SearchJob.objects.create(
            owner=alice, dataset=dataset, target="y", task="classification", budget_seconds=60, max_trials=1,
            parallel_trials=1, dispatched=True,
        )  # fmt: skip
        from webapp.searches.tasks import run_search

        run_search.apply_async(args=[job.pk], queue=queue + "search")
        beats, taken, deadline = set(), [], time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            job.refresh_from_db()
            if job.status == SearchJob.Status.RUNNING:
                if job.message != "Loading the data":
                    break  # the data is loaded: the engine has taken over
                beats.add(job.heartbeat_at)
                outcome = runner.search_reap_stale()
                taken += outcome["requeued"] + outcome["failed"]
                if taken:
                    break
            time.sleep(0.1)
        assert taken == [] and job.attempts == 1
        assert len(beats) >= 3, beats  # the claim's stamp, then beats while the data loads
        services.search_cancel(job=job)
    finally:
        worker.stop()


JOB_FIELDS = ("status", "attempts", "worker_host", "message", "progress", "heartbeat_at", "error", "finished_at",
              "recommended_number", "knee_number", "seconds_used")  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_lease_was_taken_stops_without_writing(
    alice, alice_client, breast_cancer_csv, tmp_path, monkeypatch
):
    """The reaper took a live worker for dead and a second worker claimed the job: the first one stops
    at its next write, heartbeat or cancel check, and writes nothing more (no trial, no status, no log)."""
    from webapp.searches.tasks import run_search

    queue = f"fenced-{os.getpid()}"
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", queue)
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    worker = start_celery_worker("fenced", tmp_path)
    try:
        job = SearchJob.objects.create(
            owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=60, seed=3,
            parallel_trials=1, dispatched=True,
        )  # fmt: skip
        run_search.apply_async(args=[job.pk], queue=queue + "search")
        assert wait_for_trials(job, 2, statuses=["completed", "pruned"]), worker.log()[-3000:]
        # What happens when the reaper wrongly takes it for dead and another worker claims it. (The
        # reaper sends the job to this test's own queues, which the worker above does not read.)
        # One transaction: the requeued job's message goes out on commit, after this test's claim, so
        # no other worker of the session (which reads the default queues) can claim it first.
        with transaction.atomic():
            assert runner.search_reap_stale(now=timezone.now() + timedelta(hours=1))["requeued"] == [job.pk]
            lease = services.search_claim(job_id=job.pk, worker_host="second@host")
        assert lease is not None and lease.fence == {"attempts": 2}
        job.refresh_from_db()
        taken = {name: getattr(job, name) for name in JOB_FIELDS}
        trials = sorted(job.trials.values_list("pk", "number", "test_metrics"))
        log = list(SearchLogEntry.objects.filter(job=job).values_list("pk", flat=True))
        written = lambda: job.trials.count() > len(trials)  # noqa: E731  (without a fence: it goes on)
        worker.wait_until(lambda: "succeeded in" in worker.log() or written(), timeout=60, what="done with its task")
        assert "stopping without writing" in worker.log()
        job.refresh_from_db()
        assert {name: getattr(job, name) for name in JOB_FIELDS} == taken
        assert sorted(job.trials.values_list("pk", "number", "test_metrics")) == trials
        assert list(SearchLogEntry.objects.filter(job=job).values_list("pk", flat=True)) == log
    finally:
        worker.stop()
