"""/healthz reports the database, the broker, the channel layer and the live workers, without a login."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_it_reports_ok_when_database_broker_and_channel_layer_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks", "workers"}
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "broker": "ok", "channel_layer": "ok"}
    # How many depends on whether this session started a test worker; counted exactly below.
    assert type(body["workers"]) is int and body["workers"] >= 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_counts_a_live_worker(celery_worker_process, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "channel_layer": "ok"},
        "workers": 1,
    }


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_it_reports_a_broker_that_does_not_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert "Connection" in body["checks"]["broker"]
    assert body["workers"] is None  # unknown, not zero


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                               "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}})  # fmt: skip
def test_it_reports_a_channel_layer_that_does_not_answer(client):
    response = client.get("/healthz")  # channels rebuilds its layer when the setting changes
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert "Connection" in body["checks"]["channel_layer"]
