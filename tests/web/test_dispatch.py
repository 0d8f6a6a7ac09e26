"""Starting a search while the broker is down: the page answers, the job is kept, and it is sent
once the broker is back. Nothing raises to the user."""

import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.web.helpers import upload_dataset
from webapp.searches import runner, services
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


@contextmanager
def broker_down():
    """Point the Celery app at a port nothing listens on (the broker "stops"), then back."""
    from webapp.celery import app

    def reconnect(url):
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    working = app.conf.broker_url
    reconnect("redis://127.0.0.1:1/0")
    try:
        yield
    finally:
        reconnect(working)


def test_a_search_started_while_the_broker_is_down_is_kept_and_sent_later(
    alice_client, breast_cancer_csv, django_capture_on_commit_callbacks
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    form = {
        "target": "diagnosis", "task": "auto", "budget_seconds": 30, "strategy": "random", "seed": 0,
        "cost_objective": "params", "space": "auto", "fidelity": "none",
    }  # fmt: skip
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("search_create", args=[dataset.pk]), form)
    assert response.status_code == 302  # the page answers: no 500
    job = SearchJob.objects.get()
    assert (job.status, job.dispatched, job.message) == ("queued", False, services.BROKER_DOWN)
    assert services.BROKER_DOWN in alice_client.get(response.url).content.decode()

    later = timezone.now() + timedelta(seconds=settings.SEARCH_STALE_SECONDS + 1)
    assert runner.search_reap_stale(now=later)["requeued"] == [job.pk]  # the broker is back
    job.refresh_from_db()
    assert job.dispatched is True
    assert runner.search_reap_stale(now=later)["requeued"] == []  # sent once, not again


def test_a_search_sent_normally_is_marked_dispatched(
    alice, alice_client, breast_cancer_csv, django_capture_on_commit_callbacks
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.search_create(
            user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
        )
    job.refresh_from_db()
    assert job.dispatched is True


@pytest.mark.django_db(transaction=True)  # the message goes out after the job's row is committed
@override_settings(SEARCH_REDISPATCH_SECONDS=300, SEARCH_MAX_ATTEMPTS=3)
def test_a_search_whose_message_was_lost_after_it_was_sent_is_sent_again_a_few_times(alice, alice_client,
                                                                                    breast_cancer_csv):  # fmt: skip
    queues = {role: f"lost-{uuid.uuid4().hex[:8]}-{role}" for role in ("default", "search", "trials", "trials-gpu")}
    broker = redis.Redis.from_url(settings.REDIS_URL)
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    search_queue = queues["search"]  # where no worker takes it: the messages stay to count
    try:
        with override_settings(NAS_QUEUES=queues):
            job = services.search_create(
                user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
            )
            job.refresh_from_db()
            assert (job.status, job.dispatched, job.dispatches, broker.llen(search_queue)) == ("queued", True, 1, 1)
            broker.delete(search_queue)  # lost: a broker restarted without its data

            assert runner.search_reap_stale()["redispatched"] == []  # too early to tell a lost message
            for send in (2, 3):
                later = timezone.now() + timedelta(seconds=301)
                assert runner.search_reap_stale(now=later)["redispatched"] == [job.pk]
                job.refresh_from_db()
                assert (job.status, job.dispatches, broker.llen(search_queue)) == ("queued", send, 1)
                assert job.log_entries.last().message == (
                    f"No worker took this search in the 300 s since it was sent; sent again ({send} of at most 3 sends)"
                )
                assert runner.search_reap_stale(now=timezone.now() + timedelta(seconds=10))["redispatched"] == []
                broker.delete(search_queue)  # lost again
            # SEARCH_MAX_ATTEMPTS sends were made: no more (it is left to its owner and staff).
            assert runner.search_reap_stale(now=timezone.now() + timedelta(hours=1))["redispatched"] == []
            assert broker.llen(search_queue) == 0

            # A copy that arrives runs it once; another copy is skipped.
            assert services.search_claim(job_id=job.pk, worker_host="w@test") is not None
            assert services.search_claim(job_id=job.pk, worker_host="w@test") is None
    finally:
        broker.delete(*queues.values())
        broker.close()
