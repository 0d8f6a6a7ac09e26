"""Every route that names a dataset, a search or a trial answers 404 to another user, for GET and
POST, and changes nothing; the owner reaches each one. The routes are read from the URL
configuration, so a new route is checked without anyone adding it here. The job socket refuses
another user and a foreign origin."""

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from tests.web.helpers import communicator_for
from webapp.datasets.models import Dataset
from webapp.searches.models import SearchJob, Trial

pytestmark = pytest.mark.django_db

ID_KWARGS = {"pk", "dataset_pk", "number"}


def routes_with_ids() -> list[str]:
    """Names of every URL pattern of our apps whose path takes an object id."""
    names = []

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                converters = set(pattern.pattern.converters)
                if pattern.name and converters & ID_KWARGS and pattern.callback.__module__.startswith("webapp."):
                    names.append(pattern.name)
            else:
                walk(pattern.url_patterns)

    walk(get_resolver().url_patterns)
    return sorted(set(names))


ROUTES = routes_with_ids()


def test_the_routes_under_test_are_the_ones_users_reach():
    assert {"dataset_detail", "dataset_delete", "search_create", "search_detail", "trial_bundle"} <= set(ROUTES)
    assert {"trial_detail", "trial_predictions", "trial_evaluation", "search_estimate", "search_cancel"} <= set(ROUTES)


@pytest.fixture
def alices_trial(queued_job) -> Trial:
    return Trial.objects.create(
        job=queued_job, number=0, status="rejected", architecture={}, arch_hash="a", params=10**9, flops=1, size_bytes=4
    )


def url_for(name: str, trial: Trial | None) -> str:
    """The route's URL for ``trial`` (its job, dataset and number), or for ids that do not exist."""
    pattern = next(p for p in get_resolver().reverse_dict.getlist(name))
    wanted = set(pattern[0][0][1])  # the kwargs this route takes
    if trial is None:
        return reverse(name, kwargs={key: 999_999 for key in wanted})
    values = {"pk": trial.job.dataset.pk if name.startswith("dataset_") else trial.job.pk}
    values |= {"dataset_pk": trial.job.dataset.pk, "number": trial.number}
    return reverse(name, kwargs={key: values[key] for key in wanted})


@pytest.mark.parametrize("name", ROUTES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_another_user_gets_404_and_changes_nothing(bob_client, alices_trial, name, method):
    job = alices_trial.job
    before = (Dataset.objects.count(), SearchJob.objects.count(), job.status, Trial.objects.count())
    response = getattr(bob_client, method)(url_for(name, alices_trial))
    # 405 for a method the route never takes: the same answer as for an id that does not exist.
    missing = getattr(bob_client, method)(url_for(name, None))
    assert response.status_code == missing.status_code and response.status_code in (404, 405)
    job.refresh_from_db()
    assert (Dataset.objects.count(), SearchJob.objects.count(), job.status, Trial.objects.count()) == before


@pytest.mark.parametrize("name", ROUTES)
def test_the_owner_reaches_every_route(alice_client, alices_trial, name):
    assert alice_client.get(url_for(name, alices_trial)).status_code != 404


@pytest.mark.parametrize("name", ROUTES)
def test_a_visitor_is_sent_to_log_in(alices_trial, name):
    response = Client().get(url_for(name, alices_trial))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


async def connects(communicator) -> bool:
    connected, _ = await communicator.connect(timeout=10)
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
def test_the_job_socket_refuses_another_user_and_a_foreign_origin(alice, bob, alice_client, bob_client, queued_job):
    assert async_to_sync(connects)(communicator_for(alice_client, queued_job.pk))
    assert not async_to_sync(connects)(communicator_for(bob_client, queued_job.pk))
    assert not async_to_sync(connects)(communicator_for(alice_client, queued_job.pk, origin=b"http://evil.example"))


# --- the API: every route that takes an id, read from its OpenAPI schema --------------------------


def api_routes() -> list[tuple[str, str]]:
    """(method, path) of every API operation whose path takes an id, from the API's own schema."""
    from webapp.api.views import api

    schema = api.get_openapi_schema()
    paths = schema["paths"].items()
    return sorted((method.upper(), path) for path, operations in paths if "_id}" in path for method in operations)


API_ROUTES = api_routes()


def test_the_api_routes_under_test_are_the_ones_scripts_reach():
    paths = {path for _, path in API_ROUTES}
    assert {"/api/v1/datasets/{dataset_id}/", "/api/v1/searches/{search_id}/cancel/"} <= paths
    assert {"/api/v1/trials/{trial_id}/bundle/", "/api/v1/trials/{trial_id}/predict/"} <= paths


def api_url(path: str, trial: Trial | None) -> str:
    ids = {"dataset_id": 999_999, "search_id": 999_999, "trial_id": 999_999}
    if trial is not None:
        ids = {"dataset_id": trial.job.dataset.pk, "search_id": trial.job.pk, "trial_id": trial.pk}
    return path.format(**ids)


def api_call(token: str | None, method: str, url: str, dataset_id: int = 0):
    import json

    client = Client(headers={"Authorization": f"Bearer {token}"} if token else {})
    body = json.dumps({"rows": [], "dataset": dataset_id, "target": "diagnosis", "budget_seconds": 10})
    return client.generic(method, url, body, content_type="application/json")


@pytest.fixture
def tokens_of(alice, bob) -> dict:
    from webapp.accounts.tokens import token_create

    return {"alice": token_create(user=alice, name="a")[1], "bob": token_create(user=bob, name="b")[1]}


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_another_users_token_gets_404_from_the_api_and_changes_nothing(tokens_of, alices_trial, method, path):
    job = alices_trial.job
    before = (Dataset.objects.count(), SearchJob.objects.count(), job.status, Trial.objects.count())
    response = api_call(tokens_of["bob"], method, api_url(path, alices_trial))
    missing = api_call(tokens_of["bob"], method, api_url(path, None))
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()
    job.refresh_from_db()
    assert (Dataset.objects.count(), SearchJob.objects.count(), job.status, Trial.objects.count()) == before


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_the_owners_token_reaches_every_api_route(tokens_of, alices_trial, method, path):
    if method == "DELETE":
        return  # reached and done: test_api deletes through the API
    assert api_call(tokens_of["alice"], method, api_url(path, alices_trial)).status_code != 404


@pytest.mark.parametrize(("method", "path"), [*API_ROUTES, ("GET", "/api/v1/datasets/"), ("POST", "/api/v1/searches/")])
def test_the_api_without_a_token_answers_401(alices_trial, method, path):
    assert api_call(None, method, api_url(path, alices_trial)).status_code == 401


def test_another_user_cannot_search_on_a_dataset_by_its_id(tokens_of, alices_trial):
    dataset = alices_trial.job.dataset
    response = api_call(tokens_of["bob"], "POST", "/api/v1/searches/", dataset_id=dataset.pk)
    assert response.status_code == 404 and SearchJob.objects.count() == 1
    lists = [api_call(tokens_of["bob"], "GET", f"/api/v1/{kind}/").json() for kind in ("datasets", "searches")]
    assert [listed["count"] for listed in lists] == [0, 0]
