"""Starting a search while the broker is down: the page answers, the job is kept, and it is sent
once the broker is back. Nothing raises to the user."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tests.web.helpers import upload_dataset
from webapp.searches import services
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
    assert services.search_reap_stale(now=later)["requeued"] == [job.pk]  # the broker is back
    job.refresh_from_db()
    assert job.dispatched is True
    assert services.search_reap_stale(now=later)["requeued"] == []  # sent once, not again


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
