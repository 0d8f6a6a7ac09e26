"""/healthz reports the database and the broker, without a login."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_it_reports_ok_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_it_reports_a_broker_that_does_not_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert "Connection" in body["checks"]["broker"]
