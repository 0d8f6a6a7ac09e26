"""/healthz reports the database, the broker, the channel layer and the live workers, without a
login: anyone gets only ok / not ok (the status code), staff get the details (an error's text
names hosts and users), and results are kept a few seconds instead of checked on every hit."""

import pytest
from django.test import override_settings

from webapp import health

pytestmark = pytest.mark.django_db

CHECKS_OK = {"database": "ok", "broker": "ok", "channel_layer": "ok"}


@pytest.fixture(autouse=True)
def fresh_results():
    health.forget_results()  # each test sees its own settings' services, not a kept result
    yield
    health.forget_results()


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="ops", password="x", is_staff=True))
    return client


def test_anyone_gets_only_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_staff_get_each_check_and_the_workers(staff_client):
    response = staff_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks", "workers"}
    assert body["status"] == "ok" and body["checks"] == CHECKS_OK
    # How many depends on whether this session started a test worker; counted exactly below.
    assert type(body["workers"]) is int and body["workers"] >= 0


def test_results_are_kept_a_few_seconds_not_checked_on_every_hit(client, django_assert_num_queries, settings):
    settings.HEALTHZ_CACHE_SECONDS = 60
    with django_assert_num_queries(1):  # the database check
        assert client.get("/healthz").status_code == 200
    with django_assert_num_queries(0):
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
    settings.HEALTHZ_CACHE_SECONDS = 0
    with django_assert_num_queries(1):
        assert client.get("/healthz").status_code == 200


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_counts_a_live_worker(celery_worker_process, staff_client):
    response = staff_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": CHECKS_OK, "workers": 1}


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_a_broker_that_does_not_answer_is_a_503_whose_reason_only_staff_see(staff_client):
    from django.test import Client

    anonymous = Client().get("/healthz")
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "error"}
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert "Connection" in body["checks"]["broker"]
    assert body["workers"] is None  # unknown, not zero


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                               "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}})  # fmt: skip
def test_a_channel_layer_that_does_not_answer_is_a_503(staff_client):
    from django.test import Client

    # channels rebuilds its layer when the setting changes
    assert Client().get("/healthz").json() == {"status": "error"}
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert "Connection" in body["checks"]["channel_layer"]
