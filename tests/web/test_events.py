"""Events and the status log: the database is the source of truth (a trial is saved even when its event
cannot be pushed), the log keeps a line per new message, and the socket's snapshot and status events
carry the log and the knee through the real Redis channel layer."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

import nas_engine
from tests.web.helpers import communicator_for, upload_dataset
from webapp.searches import events, services
from webapp.searches.models import SearchJob, SearchLogEntry

DEAD_CHANNEL_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
    }
}


def trial_result(number: int = 0) -> nas_engine.TrialResult:
    return nas_engine.TrialResult(
        number=number,
        status=nas_engine.TrialStatus.COMPLETED,
        architecture={"space": "mlp", "layers": []},
        arch_hash=f"abc{number}",
        metrics={"score": 0.9, "accuracy": 0.9},
        costs=nas_engine.Costs(params=62, flops=60, latency_ms=0.01, size_bytes=248),
        train_seconds=0.5,
    )


@pytest.mark.django_db
def test_a_trial_is_saved_when_the_channel_layer_is_down(queued_job, django_capture_on_commit_callbacks):
    job = queued_job
    with override_settings(CHANNEL_LAYERS=DEAD_CHANNEL_LAYER):
        assert events.push(job.pk, events.status_payload(job)) is False
        with django_capture_on_commit_callbacks(execute=True) as sent:  # its event is pushed as after a commit
            trial = services.trial_record(job=job, result=trial_result())
    assert len(sent) == 1
    assert job.trials.get().pk == trial.pk and trial.on_front
    assert events.push(job.pk, events.status_payload(job)) is True  # back once the layer answers


@pytest.mark.django_db
def test_the_log_gets_a_line_per_new_message_not_per_progress_tick(queued_job):
    job = queued_job
    assert [e.message for e in job.log_entries.all()] == ["Waiting for a worker"]  # written by search_create
    SearchJob.objects.filter(pk=job.pk).update(status=SearchJob.Status.RUNNING)
    job.refresh_from_db()
    for progress in (0.1, 0.2, 0.3):  # three ticks of one message, then a new one
        services.search_progress(job, nas_engine.StatusEvent(status="running", progress=progress, message="Trial 0."))
    services.search_progress(job, nas_engine.StatusEvent(status="running", progress=0.4, message="Trial 1."))
    assert services.search_log_add(job_id=job.pk, status="running", message="Trial 1.") is None
    services.search_mark_failed(job=job, reason="The worker ran out of memory")
    lines = list(job.log_entries.values_list("status", "message"))
    assert lines == [
        ("queued", "Waiting for a worker"),
        ("running", "Trial 0."),
        ("running", "Trial 1."),
        ("failed", "Failed: The worker ran out of memory"),
    ]
    job.refresh_from_db()
    assert job.progress == 0.4  # the ticks still moved the bar


@pytest.mark.django_db
def test_a_trial_knows_when_in_the_search_it_was_found(queued_job):
    job = queued_job
    job.seconds_used = 100.0  # an earlier, interrupted attempt searched for 100 s
    job.started_at = timezone.now() - timedelta(seconds=5)  # this attempt started 5 s ago
    trial = services.trial_record(job=job, result=trial_result())
    payload = events.trial_payload(trial, [trial.pk])["trial"]
    assert 105.0 <= payload["elapsed_seconds"] < 160.0 and payload["elapsed_seconds"] == trial.elapsed_seconds
    assert payload["created_at"] == trial.created_at.isoformat()
    assert {"id", "number", "status", "architecture", "metrics", "costs", "on_front"} <= set(payload)  # old keys


@pytest.mark.django_db(transaction=True)
def test_the_socket_sends_the_latest_log_and_the_knee_then_appends_live(alice, alice_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # A row made directly (not by search_create) is never sent to a broker, so no worker takes it.
    job = SearchJob.objects.create(
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, knee_number=3
    )
    SearchLogEntry.objects.bulk_create(
        SearchLogEntry(job=job, status="running", message=f"Trial {i} completed.") for i in range(205)
    )

    async def watch():
        communicator = communicator_for(alice_client, job.pk)
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        try:
            snapshot = await communicator.receive_json_from(timeout=10)
            await database_sync_to_async(services.search_cancel)(job=job)
            status = await communicator.receive_json_from(timeout=10)
        finally:
            await communicator.disconnect()
        return snapshot, status

    snapshot, status = async_to_sync(watch)()
    assert snapshot["type"] == "snapshot" and snapshot["job"]["knee"] == 3
    assert [e["message"] for e in snapshot["log"]] == [f"Trial {i} completed." for i in range(5, 205)]  # latest 200
    assert status["type"] == "status" and status["status"] == "cancelled" and status["knee"] == 3
    latest = list(job.log_entries.order_by("-id")[:5])[::-1]
    assert status["log"] == [entry.to_dict() for entry in latest] and latest[-1].message == "Cancelled"
    assert status["log"][-1]["id"] > snapshot["log"][-1]["id"]  # new to the page, which appends it


class Listener:
    """A channel in the job's group on the real Redis channel layer, as a job page's socket is: a layer
    of its own, used on one event loop of its own (its receive buffer belongs to one loop)."""

    def __init__(self, job_id: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend("default")
        self.group = events.group_name(job_id)
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.loop.run_until_complete(self.layer.group_add(self.group, self.channel))

    def receive(self, timeout: float) -> dict | None:
        try:
            message = self.loop.run_until_complete(asyncio.wait_for(self.layer.receive(self.channel), timeout))
        except TimeoutError:
            return None
        return message["payload"]

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.group_discard(self.group, self.channel))
        self.loop.run_until_complete(self.layer.close_pools())  # its connections only; never flush(): shared Redis
        self.loop.close()


class RolledBack(Exception):
    pass


@pytest.mark.django_db(transaction=True)  # real commits and rollbacks
def test_an_event_reaches_a_page_only_once_its_rows_are_committed_and_never_after_a_rollback(
    alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = SearchJob.objects.create(  # made directly: never sent to a broker
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30,
        status=SearchJob.Status.RUNNING,
    )  # fmt: skip
    listener = Listener(job.pk)
    try:
        # As a spread-out trial reports: trial_record inside the trial task's (or a driver step's) transaction.
        with transaction.atomic():
            trial = services.trial_record(job=job, result=trial_result(0))
            services.search_progress(job, nas_engine.StatusEvent(status="running", progress=0.5, message="1 trained"))
            assert listener.receive(timeout=0.5) is None  # nothing before the commit
        first, second = listener.receive(timeout=5), listener.receive(timeout=5)
        assert first["type"] == "trial" and first["trial"]["id"] == trial.pk
        assert second["type"] == "status" and second["progress"] == 0.5

        with pytest.raises(RolledBack), transaction.atomic():
            services.trial_record(job=job, result=trial_result(1))
            raise RolledBack  # e.g. the job's lease was lost before the commit
        assert not job.trials.filter(number=1).exists()
        assert listener.receive(timeout=0.5) is None  # the rolled-back trial is never announced

        services.trial_record(job=job, result=trial_result(2))  # outside a transaction: at once
        assert listener.receive(timeout=5)["trial"]["number"] == 2
    finally:
        listener.close()
