"""Starting a search: the form checks the target and task against the dataset profile."""

import pytest
from django.urls import reverse

from tests.web.helpers import upload_dataset
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


def start(client, dataset, **fields):
    data = {"target": "diagnosis", "task": "auto", "budget_seconds": 30, "strategy": "random", "seed": 0}
    data.update(cost_objective="params", space="auto", fidelity="none")
    data.update(fields)
    return client.post(reverse("search_create", args=[dataset.pk]), data)


@pytest.fixture
def dataset(alice_client, breast_cancer_csv):
    return upload_dataset(alice_client, breast_cancer_csv)


def test_it_creates_a_queued_job_with_the_detected_task(alice_client, alice, dataset):
    response = start(
        alice_client, dataset, max_params=5000, max_trials=7, seed=3, max_size_kb=64, max_latency_ms=0.5,
        max_flops=90000, cost_objective="latency_ms", third_objective="params", fidelity="hyperband",
    )  # fmt: skip
    job = SearchJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("search_detail", args=[job.pk])
    assert (job.owner, job.dataset, job.target, job.task) == (alice, dataset, "diagnosis", "classification")
    assert (job.max_params, job.max_trials, job.seed, job.budget_seconds) == (5000, 7, 3, 30)
    assert (job.max_size_bytes, job.max_latency_ms, job.max_flops) == (64 * 1024, 0.5, 90000)
    assert job.objectives == ["score", "latency_ms", "params"]
    assert (job.space, job.fidelity) == ("auto", "hyperband")
    assert job.status == SearchJob.Status.QUEUED


def test_it_queues_the_job_only_once_the_row_is_committed(alice_client, dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        start(alice_client, dataset)
    assert len(callbacks) == 1  # run_search.delay(job_id), sent after commit


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"target": "no such column"}, "target", "not in this dataset"),
        ({"target": "mean radius", "task": "classification", "budget_seconds": 0}, "budget_seconds", "greater than"),
        ({"budget_seconds": 10**7}, "budget_seconds", "less than"),
        ({"max_params": -5}, "max_params", "greater than"),
        ({"strategy": "telepathy"}, "strategy", "Select a valid choice"),
        ({"space": "cnn"}, "space", "pixel columns"),
        ({"cost_objective": "params", "third_objective": "params"}, "third_objective", "different cost"),
        ({"max_latency_ms": 0}, "max_latency_ms", "greater than"),
    ],
    ids=[
        "unknown-target",
        "zero-budget",
        "huge-budget",
        "negative-params",
        "unknown-strategy",
        "cnn-on-tabular",
        "same-objective-twice",
        "zero-latency",
    ],  # fmt: skip
)
def test_it_rejects_bad_settings_with_a_message_by_the_field(alice_client, dataset, fields, field, message):
    response = start(alice_client, dataset, **fields)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not SearchJob.objects.exists()


def test_it_rejects_a_target_with_one_class(alice_client, tmp_path):
    path = tmp_path / "one_class.csv"
    path.write_text("x,y\n" + "".join(f"{i},yes\n" for i in range(30)))
    dataset = upload_dataset(alice_client, path)
    response = start(alice_client, dataset, target="y")
    assert response.status_code == 400
    assert "only one distinct value" in " ".join(response.context["form"].errors["target"])
    assert not SearchJob.objects.exists()


def test_it_rejects_regression_on_a_text_target(alice_client, tmp_path):
    path = tmp_path / "text_target.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(30)))
    dataset = upload_dataset(alice_client, path)
    response = start(alice_client, dataset, target="y", task="regression")
    assert response.status_code == 400
    assert "numeric target" in " ".join(response.context["form"].errors["task"])
    assert not SearchJob.objects.exists()


def test_it_refuses_to_start_a_search_on_another_users_dataset(bob_client, dataset):
    assert start(bob_client, dataset).status_code == 404
    assert not SearchJob.objects.exists()
