"""The REST API with the test client: tokens (made, hashed, revoked, rate limited), datasets and
searches made and refused as the pages make and refuse them, and the schema and docs pages. The
ownership walk over every API route is in test_ownership.py; the whole trip against a live server
and worker is in test_api_live.py."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from webapp.accounts import tokens
from webapp.accounts.models import ApiToken
from webapp.datasets.models import Dataset
from webapp.searches.forms import SearchJobForm
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_token(alice) -> str:
    return tokens.token_create(user=alice, name="tests")[1]


def api(token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(headers=headers)


def post_json(client: Client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def upload_csv(client: Client, path, name: str = ""):
    with open(path, "rb") as handle:
        return client.post("/api/v1/datasets/", {"file": handle, "name": name})


def test_a_token_is_stored_hashed_and_opens_the_api_until_revoked(alice, alice_token):
    row = ApiToken.objects.get(user=alice)
    assert alice_token.startswith("nas_") and len(alice_token) > 40
    stored = json.dumps(list(ApiToken.objects.values()), default=str)
    assert row.digest == tokens.digest_of(alice_token) and alice_token not in stored
    assert api(alice_token).get("/api/v1/datasets/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert tokens.token_revoke(user=alice, pk=row.pk)
    response = api(alice_token).get("/api/v1/datasets/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [None, "Bearer nas_not-a-token", "Bearer ", "Basic YWxpY2U6eA==", "nas_x"])
def test_a_request_without_a_valid_token_is_refused(alice, alice_token, header):
    client = Client(headers={"Authorization": header} if header else {})
    response = client.get("/api/v1/datasets/")
    assert response.status_code == 401 and "token" in response.json()["detail"]


def test_a_session_does_not_open_the_api(alice_client):
    """The API takes tokens only: a page's session cookie cannot be ridden by another site's form."""
    assert alice_client.get("/api/v1/datasets/").status_code == 401


def test_a_token_past_its_rate_answers_429_with_retry_after(settings, alice_token, bob):
    settings.API_RATE_PER_MINUTE = 3
    client = api(alice_token)
    answers = [client.get("/api/v1/datasets/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = client.get("/api/v1/datasets/")
    assert 1 <= int(limited["Retry-After"]) <= 61 and "3 a minute" in limited.json()["detail"]
    assert api(tokens.token_create(user=bob, name="b")[1]).get("/api/v1/datasets/").status_code == 200  # per token


def test_the_token_page_shows_a_new_token_once_and_revokes_it(alice, alice_client):
    page = alice_client.post(reverse("api_tokens"), {"name": "nightly retrain"})
    token = page.context["made"]
    assert page.status_code == 200 and token in page.content.decode()
    again = alice_client.get(reverse("api_tokens")).content.decode()
    assert token not in again and "nightly retrain" in again and token[:8] in again
    row = ApiToken.objects.get(user=alice)
    assert api(token).get("/api/v1/searches/").status_code == 200
    alice_client.post(reverse("api_token_revoke", args=[row.pk]))
    assert api(token).get("/api/v1/searches/").status_code == 401


def test_another_user_cannot_revoke_a_token(alice, alice_token, bob_client):
    row = ApiToken.objects.get(user=alice)
    assert bob_client.post(reverse("api_token_revoke", args=[row.pk])).status_code == 404
    assert api(alice_token).get("/api/v1/searches/").status_code == 200


def test_the_command_makes_a_token_and_prints_it_once(alice):
    out = io.StringIO()
    call_command("api_token", "alice", "--name", "ci", stdout=out)
    token = out.getvalue().strip()
    assert api(token).get("/api/v1/datasets/").status_code == 200
    assert ApiToken.objects.get(user=alice).name == "ci"
    with pytest.raises(Exception, match="no user 'nobody'"):
        call_command("api_token", "nobody", stdout=io.StringIO())


def test_a_dataset_is_uploaded_listed_read_and_deleted(alice_token, breast_cancer_csv):
    client = api(alice_token)
    made = upload_csv(client, breast_cancer_csv, name="cancer")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["name"] == "cancer" and body["rows"] == 569 and body["kind"] == "table"
    assert "diagnosis" in [c["name"] for c in body["profile"]["columns"]]
    listed = client.get("/api/v1/datasets/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"] and listed["results"][0]["profile"] is None
    assert client.get(f"/api/v1/datasets/{body['id']}/").json()["profile"]["rows"] == 569
    assert client.delete(f"/api/v1/datasets/{body['id']}/").status_code == 204
    assert not Dataset.objects.exists()


def test_a_bad_upload_answers_400_with_the_field_and_keeps_nothing(alice_token, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    response = upload_csv(api(alice_token), bad)
    assert response.status_code == 400 and response.json()["errors"]["file"]
    missing = api(alice_token).post("/api/v1/datasets/", {"name": "x"})
    assert missing.status_code == 400 and "file" in missing.json()["errors"]
    assert not Dataset.objects.exists()


@pytest.fixture
def alice_dataset(alice_token, breast_cancer_csv) -> dict:
    return upload_csv(api(alice_token), breast_cancer_csv).json()


def test_a_search_takes_the_forms_settings_and_defaults(alice_token, alice_dataset, django_capture_on_commit_callbacks):
    body = {
        "dataset": alice_dataset["id"], "target": "diagnosis", "budget_seconds": 20, "metric": "balanced_accuracy",
        "name": "nightly", "notes": "from CI", "max_params": 5000, "cost_objective": "latency_ms", "compress": True,
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        response = post_json(api(alice_token), "/api/v1/searches/", body)
    assert response.status_code == 201, response.content
    made = response.json()
    job = SearchJob.objects.get(pk=made["id"])
    assert (job.name, job.notes, job.metric) == ("nightly", "from CI", "balanced_accuracy")
    assert (job.max_params, job.compress) == (5000, True)
    assert job.objectives == ["score", "latency_ms"] and job.task == "classification" and job.status == "queued"
    assert made["status"] == "queued" and made["settings"]["target"] == "diagnosis" and made["front"] == []
    # What was left out is what the page starts with for this dataset.
    page = SearchJobForm(dataset=Dataset.objects.get(pk=alice_dataset["id"]))
    for name in ("strategy", "seed", "space", "fidelity", "ignore"):
        assert getattr(job, name) == page[name].initial, name


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"target": "nope"}, "target", "not in this dataset"),
        ({"metric": "rmse"}, "metric", "regression"),
        ({"budget_seconds": 1}, "budget_seconds", "greater than or equal to 5"),
        ({"split_kind": "group", "split_column": "diagnosis"}, "split_column", "the one to predict"),
        ({"column_types": {"nope": "date"}}, "column_types", "not in this dataset"),
        ({"budget_seconds": "soon"}, "budget_seconds", "integer"),
        ({"max_params": 1}, "max_params", ""),
    ],
)
def test_a_refused_search_answers_400_with_the_forms_message(alice_token, alice_dataset, change, field, words):
    body = {"dataset": alice_dataset["id"], "target": "diagnosis", "budget_seconds": 20} | change
    response = post_json(api(alice_token), "/api/v1/searches/", body)
    assert response.status_code == 400, response.content
    messages = response.json()["errors"][field]
    assert messages and words.lower() in " ".join(messages).lower()
    assert not SearchJob.objects.exists()


def test_the_search_quota_applies(settings, alice_token, alice_dataset, django_capture_on_commit_callbacks):
    settings.QUOTA_MAX_CONCURRENT_JOBS = 1
    body = {"dataset": alice_dataset["id"], "target": "diagnosis", "budget_seconds": 20}
    with django_capture_on_commit_callbacks(execute=False):
        assert post_json(api(alice_token), "/api/v1/searches/", body).status_code == 201
        refused = post_json(api(alice_token), "/api/v1/searches/", body)
    assert refused.status_code == 400 and SearchJob.objects.count() == 1
    assert any("1" in m for messages in refused.json()["errors"].values() for m in messages)


def test_a_search_is_read_listed_cancelled_and_deleted(alice_token, alice_dataset, django_capture_on_commit_callbacks):
    client = api(alice_token)
    body = {"dataset": alice_dataset["id"], "target": "diagnosis", "budget_seconds": 20}
    with django_capture_on_commit_callbacks(execute=False):
        made = post_json(client, "/api/v1/searches/", body).json()
    assert client.get(f"/api/v1/searches/{made['id']}/").json()["status"] == "queued"
    assert client.get("/api/v1/searches/", {"dataset": alice_dataset["id"]}).json()["count"] == 1
    assert client.get(f"/api/v1/searches/{made['id']}/trials/").json() == []
    cancelled = client.post(f"/api/v1/searches/{made['id']}/cancel/").json()
    assert cancelled["cancelled"] and cancelled["search"]["status"] == "cancelled"
    assert client.post(f"/api/v1/searches/{made['id']}/cancel/").json()["cancelled"] is False
    assert client.delete(f"/api/v1/searches/{made['id']}/").status_code == 204
    assert not SearchJob.objects.exists()


def test_a_body_that_is_not_json_answers_400(alice_token):
    response = api(alice_token).post("/api/v1/searches/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["errors"]


def test_the_schema_and_docs_are_served_from_our_own_files():
    schema = Client().get("/api/v1/schema/")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/datasets/", "/api/v1/searches/", "/api/v1/trials/{trial_id}/predict/"} <= set(paths)
    assert schema.json()["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    docs = Client().get("/api/v1/docs/")
    page = docs.content.decode()
    assert docs.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert Client().get("/static/ninja/swagger-ui-bundle.js").status_code == 200
