"""One search's trials over many Celery workers: the driver plans a slot's worth of trials, sends
them to the trials queue and returns; each trial task records its trial and sends the next step;
a trial whose worker dies is sent again. Real database, real Redis broker, real workers."""

import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tests.conftest import start_celery_worker
from tests.web.helpers import upload_dataset
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import distributed, runner, services
from webapp.searches.models import PendingTrial, SearchJob


def prefixed(prefix: str) -> dict[str, str]:
    return {role: prefix + role for role in ("default", "search", "trials", "trials-gpu")}


def make_job(owner, dataset, **fields) -> SearchJob:
    settings_ = {"target": "diagnosis", "task": "classification", "budget_seconds": 120, "seed": 5,
                 "objectives": ["score", "params"], "strategy": "random", "max_params": 3000} | fields  # fmt: skip
    return SearchJob.objects.create(owner=owner, dataset=dataset, **settings_)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.mark.django_db(transaction=True)
def test_the_driver_fills_its_slots_returns_and_steps_again_when_a_trial_reports(
    alice, alice_client, breast_cancer_csv, broker
):
    prefix = f"drive-{uuid.uuid4().hex[:8]}-"  # queues no worker takes: the messages stay to count
    queues = prefixed(prefix)
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # Its slots as spread_out decides them with 3 workers online (it caps them at the workers: test_fair_share).
    job = make_job(alice, dataset, parallel_trials=3, trial_slots=3, max_trials=5)
    try:
        with override_settings(NAS_QUEUES=queues):
            started = time.monotonic()
            runner.search_execute(job_id=job.pk, worker_host="driver@test")
            assert time.monotonic() - started < 30  # it plans and returns; it never waits for a trial
            job.refresh_from_db()
            assert (job.status, job.trial_slots, job.driver_step) == ("running", 3, 1)
            pending = list(job.pending_trials.order_by("number"))
            planned = 3 + distributed.QUEUED_AHEAD  # one per slot, and one waiting for the first free worker
            assert [p.state for p in pending] == ["queued"] * planned and {p.queue for p in pending} == {
                queues["trials"]
            }
            assert broker.llen(queues["trials"]) == planned
            assert job.driver_state["engine"]["strategy"]["strategy"] == "random"

            distributed.search_advance(job_id=job.pk)  # every slot is taken: nothing more is planned
            assert job.pending_trials.count() == planned and broker.llen(queues["trials"]) == planned

            first = pending[0]
            distributed.trial_execute(pending_id=first.pk, attempt=1, worker_host="trainer@test")
            trial = job.trials.get(number=first.number)
            assert trial.status == "completed" and trial.score is not None and trial.worker_host == "trainer@test"
            assert not PendingTrial.objects.filter(pk=first.pk).exists()
            assert broker.llen(queues["search"]) == 1  # the trial sent the next driver step

            distributed.trial_execute(pending_id=first.pk, attempt=1, worker_host="late@test")  # a repeat: skipped
            assert job.trials.filter(number=first.number).count() == 1

            distributed.search_advance(job_id=job.pk)
            job.refresh_from_db()
            numbers = sorted(job.pending_trials.values_list("number", flat=True))
            assert len(numbers) == planned and first.number not in numbers and job.driver_step == 3
            hashes = [*job.pending_trials.values_list("arch_hash", flat=True), trial.arch_hash]
            assert len(set(hashes)) == planned + 1  # asked while others train, it never proposes one twice

            recorded = job.trials.count()  # the one trained, and those rejected on max_params
            services.search_cancel(job=job)
            distributed.search_advance(job_id=job.pk)  # a step after the end drops what waits
            assert job.pending_trials.count() == 0
            for row in pending[1:]:  # their messages, when a worker takes them, do nothing
                distributed.trial_execute(pending_id=row.pk, attempt=1, worker_host="late@test")
            assert job.trials.count() == recorded
    finally:
        broker.delete(*queues.values())


@pytest.mark.django_db(transaction=True)  # the resend goes out after commit
@override_settings(SEARCH_STALE_SECONDS=60, SEARCH_MAX_ATTEMPTS=2)
def test_a_silent_trial_is_sent_again_then_given_up_with_a_reason(alice, alice_client, breast_cancer_csv, broker):
    prefix = f"reap-{uuid.uuid4().hex[:8]}-"
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = make_job(alice, dataset, status="running", trial_slots=2, started_at=timezone.now(),
                   heartbeat_at=timezone.now())  # fmt: skip
    silent = timezone.now() - timedelta(seconds=90)
    pending = PendingTrial.objects.create(
        job=job, number=0, architecture={"space": "mlp"}, arch_hash="abc", queue=prefix + "trials",
        costs={"params": 10, "flops": 20, "size_bytes": 40, "latency_ms": None}, state="running",
        worker_host="gone@host", heartbeat_at=silent,
    )  # fmt: skip
    queues = prefixed(prefix)  # the next driver step too goes where no worker takes it
    try:
        with override_settings(NAS_QUEUES=queues):
            outcome = runner.search_reap_stale()
            pending.refresh_from_db()
            assert outcome["trials_resent"] == [pending.pk] and outcome["requeued"] == []
            assert (pending.state, pending.attempt, pending.worker_host) == ("queued", 2, "")
            assert broker.llen(prefix + "trials") == 1
            assert runner.search_reap_stale()["trials_resent"] == []  # queued, waiting for a worker: left alone

            PendingTrial.objects.filter(pk=pending.pk).update(state="running", heartbeat_at=silent, worker_host="b@h")
            assert runner.search_reap_stale()["trials_failed"] == [pending.pk]
        trial = job.trials.get(number=0)
        assert trial.status == "failed" and "b@h" in trial.message and "2 times" in trial.message
        job.refresh_from_db()
        assert job.status == "running" and broker.llen(queues["search"]) == 1  # goes on: its next step was sent
    finally:
        broker.delete(*queues.values())


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    """6,000 rows: each model trains for seconds, long enough to kill its worker mid-training."""
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=6000, n_features=20, n_informative=8, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(20)]).assign(diagnosis=y)
    path = tmp_path_factory.mktemp("big") / "big.csv"
    frame.to_csv(path, index=False)
    return path


def worker_env(monkeypatch, prefix: str) -> None:
    monkeypatch.setenv("CELERY_QUEUE_PREFIX", prefix)  # these workers only: the shared test worker never sees it


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_train_one_search_at_once(alice, alice_client, breast_cancer_csv, tmp_path, monkeypatch):
    from webapp.searches.tasks import run_search

    prefix = f"scale-{os.getpid()}-"
    worker_env(monkeypatch, prefix)
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = make_job(alice, dataset, max_trials=6, compress=False)  # parallel_trials 0: one per idle worker
    workers = [start_celery_worker(f"scale-{i}", tmp_path) for i in range(2)]
    try:
        run_search.apply_async(args=[job.pk], queue=prefix + "search")
        job = wait_until_ended(job, timeout=240)
    finally:
        for worker in workers:
            worker.stop()
    logs = "\n".join(worker.log()[-3000:] for worker in workers)
    assert job.status == SearchJob.Status.FINISHED, (job.error, logs)
    assert job.trial_slots == 2  # both workers were idle when it started
    trials = list(job.trials.exclude(architecture__space="ensemble").order_by("number"))
    trained = [t for t in trials if t.status != "rejected"]
    assert len(trained) == 6 and len({t.arch_hash for t in trials}) == len(trials)
    assert len({t.worker_host for t in trained}) == 2, [t.worker_host for t in trained]
    # At once, not in turn: some two trials of different workers trained over the same moments.
    spans = [(t.worker_host, t.created_at - timedelta(seconds=t.train_seconds), t.created_at) for t in trained]
    assert any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in spans for b in spans), spans
    assert job.pending_trials.count() == 0 and job.recommended_number is not None
    assert job.trials.filter(on_front=True).exclude(test_metrics={}).exists()  # the front was refit and tested


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_trial_whose_worker_is_killed_is_trained_by_another(alice, alice_client, big_csv, tmp_path, monkeypatch):
    from webapp.searches.tasks import run_search

    prefix = f"rescue-{os.getpid()}-"
    worker_env(monkeypatch, prefix)
    monkeypatch.setenv("SEARCH_STALE_SECONDS", "3")
    dataset = upload_dataset(alice_client, big_csv)
    # Sent below, once both workers are online: a worker's start-up reaper must not send it to the first.
    # mlp: networks of a few seconds each (the tabular portfolio would start with boosted trees, slower here)
    job = make_job(alice, dataset, parallel_trials=2, max_trials=4, max_params=None, dispatched=True, space="mlp")
    doomed = start_celery_worker("doomed", tmp_path)
    survivor = start_celery_worker("survivor", tmp_path)
    try:
        run_search.apply_async(args=[job.pk], queue=prefix + "search")
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            victim = job.pending_trials.filter(state="running", worker_host__startswith="doomed").first()
            time.sleep(0.1)
        assert victim is not None, doomed.log()[-3000:]
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
        time.sleep(4)  # its heartbeat goes stale
        with override_settings(SEARCH_STALE_SECONDS=3):
            resent = runner.search_reap_stale()["trials_resent"]  # what beat runs every minute
        job = wait_until_ended(job, timeout=240)
    finally:
        doomed.stop()
        survivor.stop()
    assert victim.pk in resent, (
        resent,
        [(t.number, t.status, t.worker_host) for t in job.trials.all()],
        list(job.log_entries.values_list("message", flat=True)),
    )
    assert job.status == SearchJob.Status.FINISHED, (job.error, survivor.log()[-3000:])
    rescued = job.trials.get(number=victim.number)  # trained again, from the start, by the survivor
    assert rescued.status == "completed" and rescued.worker_host.startswith("survivor")
    assert job.trials.exclude(status="rejected").exclude(architecture__space="ensemble").count() == 4
    assert job.pending_trials.count() == 0
