"""One user cannot starve the others: a search trains at most as many models at once as there are
workers to train them (and SEARCH_MAX_PARALLEL_TRIALS); spread-out searches of several users share
the trials queue per user, not per search; a search's budget starts when its first model trains, not
when it was claimed. Real database, Redis broker and Celery worker; the driver steps and trials run
here, on queues no worker takes, so the messages stay to count."""

import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tests.web.helpers import upload_dataset
from tests.web.test_scale_out import make_job, prefixed
from webapp.searches import distributed, services
from webapp.searches.models import SearchJob

Status = SearchJob.Status


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def queues(broker):
    names = prefixed(f"fair-{uuid.uuid4().hex[:8]}-")
    with override_settings(NAS_QUEUES=names):
        yield names
    broker.delete(*names.values())


@pytest.mark.django_db
def test_a_search_never_takes_more_slots_than_the_workers_online(alice, alice_client, breast_cancer_csv,
                                                                 celery_worker_process):  # fmt: skip
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # A solo-pool worker cannot answer an inspection while it runs a task (one left by an earlier
    # test), so the count is taken again, up to three times, until this test's inspection and the
    # one inside spread_out see the same workers.
    for _attempt in range(3):
        workers = distributed._trial_workers(busy_but="")["trials"]  # the real worker, and this process
        greedy = make_job(alice, dataset, parallel_trials=64, status=Status.RUNNING)
        spread = distributed.spread_out(greedy)
        greedy.refresh_from_db()
        if greedy.trial_slots == len(workers):
            break
    assert 2 <= len(workers) < 64, workers
    assert spread is True
    assert greedy.trial_slots == len(workers)
    log = list(greedy.log_entries.values_list("message", flat=True))
    assert f"64 models at once asked for; {len(workers)} at most here (the workers that train them)" in log

    with override_settings(SEARCH_MAX_PARALLEL_TRIALS=1):  # the site-wide cap
        capped = make_job(alice, dataset, parallel_trials=0, status=Status.RUNNING)
        assert distributed.spread_out(capped) is False
    capped.refresh_from_db()
    assert capped.trial_slots == 1


def pending_by_owner() -> dict[int, int]:
    """Trials planned and not reported, per user with a running search."""
    counts: dict[int, int] = {}
    for job in SearchJob.objects.filter(status=Status.RUNNING):
        counts[job.owner_id] = counts.get(job.owner_id, 0) + job.pending_trials.count()
    return counts


@pytest.mark.django_db(transaction=True)  # trials are sent after their driver step commits
def test_users_share_the_trials_queue_per_user_not_per_search(alice, bob, alice_client, breast_cancer_csv, broker,
                                                              queues):  # fmt: skip
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    now = timezone.now()
    running = {"status": Status.RUNNING, "trial_slots": 3, "started_at": now, "heartbeat_at": now}
    alice_jobs = [make_job(alice, dataset, seed=seed, **running) for seed in (1, 2)]
    bob_job = make_job(bob, dataset, **running)
    for job in [*alice_jobs, bob_job]:  # Alice's two searches step first, then Bob's
        distributed.search_advance(job_id=job.pk)
    # 3 slots + 1 queued ahead shared by two users: 2 each; Alice's 2 split over her two searches.
    assert pending_by_owner() == {alice.pk: 2, bob.pk: 2} and broker.llen(queues["trials"]) == 4  # each sent once
    assert [job.pending_trials.count() for job in alice_jobs] == [1, 1]

    services.search_cancel(job=bob_job)  # Alice alone again: her searches grow back at their next steps
    distributed.search_advance(job_id=bob_job.pk)  # a step after the end drops what waits
    for job in alice_jobs:
        distributed.search_advance(job_id=job.pk)
    assert pending_by_owner() == {alice.pk: 4}
    assert broker.llen(queues["trials"]) == 4 + 2  # Bob's two messages stay; a worker skips them


@pytest.mark.django_db(transaction=True)
def test_a_search_whose_trials_waited_in_the_queue_keeps_its_budget_until_one_trains(
    alice, alice_client, breast_cancer_csv, queues
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    claimed = timezone.now() - timedelta(hours=1)  # claimed an hour ago; other users' trials went first
    job = make_job(alice, dataset, budget_seconds=60, max_trials=3, status=Status.RUNNING, trial_slots=2,
                   started_at=claimed, heartbeat_at=timezone.now())  # fmt: skip
    distributed.search_advance(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Status.RUNNING and not job.concluding and job.budget_started_at is None
    assert job.pending_trials.count() == 3 and distributed.seconds_left(job) == 60  # none of it spent yet

    first = job.pending_trials.order_by("number").first()
    before = timezone.now()
    distributed.trial_execute(pending_id=first.pk, attempt=first.attempt, worker_host="trainer@test")
    job.refresh_from_db()
    assert before <= job.budget_started_at <= timezone.now()  # its budget started with its first trial
    trial = job.trials.get(number=first.number)
    assert trial.status == "completed" and trial.elapsed_seconds < 60
    assert 0 < distributed.seconds_left(job) < 60
