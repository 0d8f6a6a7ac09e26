"""The database is the source of truth: a trial is saved even when its event cannot be pushed."""

import pytest
from django.test import override_settings

import nas_engine
from webapp.searches import events, services

DEAD_CHANNEL_LAYER = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
    }
}


@pytest.mark.django_db
def test_a_trial_is_saved_when_the_channel_layer_is_down(queued_job):
    job = queued_job
    result = nas_engine.TrialResult(
        number=0,
        status=nas_engine.TrialStatus.COMPLETED,
        architecture={"space": "mlp", "layers": []},
        arch_hash="abc",
        metrics={"score": 0.9, "accuracy": 0.9},
        costs=nas_engine.Costs(params=62, flops=60, latency_ms=0.01, size_bytes=248),
        train_seconds=0.5,
    )
    with override_settings(CHANNEL_LAYERS=DEAD_CHANNEL_LAYER):
        assert events.send(job.pk, events.status_payload(job)) is False
        trial = services.trial_record(job=job, result=result)
    assert job.trials.get().pk == trial.pk and trial.on_front
    assert events.send(job.pk, events.status_payload(job)) is True  # back once the layer answers
