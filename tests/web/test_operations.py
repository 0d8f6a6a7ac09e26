"""The staff operations page: queues, workers, running and failed jobs, disk use; staff only.
Also the structured logs: JSON lines that carry the job id inside a task."""

import io
import json
import logging
import os
import socket
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset, wait_for_trials
from webapp.logging import JsonFormatter
from webapp.searches import services
from webapp.searches.models import SearchJob
from webapp.searches.tasks import run_search

pytestmark = pytest.mark.django_db
WORKER_NAME = f"test-{os.getpid()}@{socket.gethostname()}"  # what conftest's `-n test-<pid>@%h` becomes


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="olivia", password=PASSWORD, is_staff=True)


@pytest.fixture
def staff_client(staff):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    return client


def status_of(client) -> dict:
    response = client.get(reverse("operations:status"))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/json"
    return response.json()


def wait_for_status(client, ready, *, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(client)
        if ready(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"operations status never showed {what}: {status}")
        time.sleep(0.3)


def worker_row(status: dict) -> dict | None:
    return next((worker for worker in status["workers"] if worker["name"] == WORKER_NAME), None)


def make_job(*, owner, dataset, **fields) -> SearchJob:
    return SearchJob.objects.create(
        owner=owner, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, **fields
    )


# --- who may see it ---------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    for name in ["operations:index", "operations:status"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=" + reverse(name))


def test_it_refuses_users_who_are_not_staff(bob_client):
    for name in ["operations:index", "operations:status"]:
        assert bob_client.get(reverse(name)).status_code == 403


def test_it_shows_staff_the_page_and_links_it_from_the_admin_index(staff_client):
    page = staff_client.get(reverse("operations:index"))
    assert page.status_code == 200
    assert f'data-status-url="{reverse("operations:status")}"'.encode() in page.content
    assert b"js/operations.js" in page.content
    admin_index = staff_client.get(reverse("admin:index"))
    assert admin_index.status_code == 200
    assert f'href="{reverse("operations:index")}">Operations</a>'.encode() in admin_index.content


# --- what it shows ----------------------------------------------------------------------------


def test_it_counts_waiting_messages_per_queue_at_every_priority(staff_client):
    queue = f"ops-test-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes, so nothing drains it
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        with override_settings(CELERY_TASK_DEFAULT_QUEUE=queue, NAS_QUEUES={}, CELERY_TASK_QUEUES=()):
            assert status_of(staff_client)["queues"] == [{"name": queue, "depth": 0}]
            run_search.apply_async(args=[10**9], queue=queue)
            run_search.apply_async(args=[10**9 + 1], queue=queue)
            run_search.apply_async(args=[10**9 + 2], queue=queue, priority=6)  # kept in its own list
            assert client.llen(queue) == 2  # so the priority message is elsewhere, and still counted
            assert status_of(staff_client)["queues"] == [{"name": queue, "depth": 3}]
    finally:
        client.delete(queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9)))
        client.close()


def test_it_shows_running_jobs_with_their_worker_and_heartbeat_age(
    staff_client, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = make_job(
        owner=alice,
        dataset=dataset,
        status=SearchJob.Status.RUNNING,
        progress=0.25,
        message="Trial 3",
        worker_host="celery@box-7",
        started_at=timezone.now() - timedelta(minutes=2),
        heartbeat_at=timezone.now() - timedelta(seconds=40),
    )
    status = status_of(staff_client)
    [running] = status["running_jobs"]
    assert running["id"] == job.pk and running["owner"] == "alice" and running["dataset"] == dataset.name
    assert running["progress"] == 0.25 and running["message"] == "Trial 3"
    assert running["worker_host"] == "celery@box-7"
    assert 40 <= running["heartbeat_age_seconds"] < 40 + 60
    # The busy worker is listed even though it did not answer the broadcast (solo pool, busy).
    busy = next(worker for worker in status["workers"] if worker["name"] == "celery@box-7")
    assert busy["job_ids"] == [job.pk] and busy["heartbeat_age_seconds"] == running["heartbeat_age_seconds"]


def test_it_lists_jobs_that_failed_in_the_last_day_with_their_error(
    staff_client, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    now = timezone.now()
    recent = make_job(
        owner=alice,
        dataset=dataset,
        status=SearchJob.Status.FAILED,
        error="The target column has only one value.",
        finished_at=now - timedelta(hours=3),
    )
    make_job(
        owner=alice,
        dataset=dataset,
        status=SearchJob.Status.FAILED,
        error="An old failure",
        finished_at=now - timedelta(days=2),
    )
    make_job(owner=alice, dataset=dataset, status=SearchJob.Status.FINISHED, finished_at=now - timedelta(hours=1))
    status = status_of(staff_client)
    assert [(job["id"], job["error"]) for job in status["failed_jobs"]] == [
        (recent.pk, "The target column has only one value.")
    ]
    assert status["failed_window_hours"] == 24


def test_it_measures_the_disk_used_by_datasets(staff_client, alice_client, breast_cancer_csv):
    before = status_of(staff_client)["disk"]
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    after = status_of(staff_client)["disk"]
    assert after["datasets_bytes"] > 0
    assert after["datasets_bytes"] - before["datasets_bytes"] == dataset.file.size
    assert after["free_bytes"] > 0
    assert status_of(staff_client)["errors"] == {}


# --- with a real worker -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_shows_a_real_worker_online_and_then_the_job_it_runs(
    celery_worker_process, staff_client, alice, alice_client, breast_cancer_csv
):
    idle = wait_for_status(
        staff_client, lambda s: (w := worker_row(s)) and w["answering"] and not w["job_ids"], timeout=120, what="idle"
    )
    assert worker_row(idle) == {"name": WORKER_NAME, "answering": True, "job_ids": [], "heartbeat_age_seconds": None}

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=300, seed=3
    )
    busy = wait_for_status(
        staff_client,
        lambda s: any(j["id"] == job.pk and j["heartbeat_age_seconds"] is not None for j in s["running_jobs"]),
        timeout=120,
        what=f"job {job.pk} running",
    )
    [running] = busy["running_jobs"]
    assert running["worker_host"] == WORKER_NAME
    assert worker_row(busy)["job_ids"] == [job.pk]
    wait_for_trials(job)  # so the job has files on disk

    services.search_cancel(job=job)
    done = wait_for_status(
        staff_client, lambda s: (w := worker_row(s)) and w["answering"] and not w["job_ids"], timeout=120, what="idle"
    )
    assert done["running_jobs"] == []
    assert done["disk"]["jobs_bytes"] > 0

    # The worker's own log is JSON lines, and what it logged while running the job carries its id.
    lines = [json.loads(line) for line in celery_worker_process.log().splitlines() if line.startswith("{")]
    tagged = [line for line in lines if line["job_id"] == job.pk]
    assert any(line["logger"] == "celery.app.trace" and "succeeded" in line["message"] for line in tagged), tagged
    assert any(line["job_id"] is None and line["message"].endswith(" ready.") for line in lines)


# --- structured logs --------------------------------------------------------------------------


@pytest.fixture
def captured_logs():
    """A handler with the formatter and filters that settings.LOGGING gave the console handler."""
    console = next(handler for handler in logging.getLogger().handlers if handler.name == "console")
    assert isinstance(console.formatter, JsonFormatter)  # the default LOG_FORMAT
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    for log_filter in console.filters:
        handler.addFilter(log_filter)
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_a_record_logged_inside_a_task_carries_the_job_id(captured_logs, alice, alice_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = make_job(owner=alice, dataset=dataset, status=SearchJob.Status.CANCELLED)

    run_search.apply(args=[job.pk])  # runs here, through Celery's task_prerun/postrun signals
    logging.getLogger("webapp.test").info("after the task")

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    skipped = next(line for line in lines if line["logger"] == "webapp.searches.runner")
    assert skipped["message"] == f"Search {job.pk} is not queued (gone, cancelled or taken); skipping it."
    assert skipped["job_id"] == job.pk and skipped["level"] == "INFO" and skipped["time"]
    assert lines[-1]["message"] == "after the task" and lines[-1]["job_id"] is None
