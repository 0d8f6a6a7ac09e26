"""The job page, cancel, downloads and test-split evaluations: owners (and staff) only."""

import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from tests.web.helpers import prepared
from webapp.searches import runner
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(queued_job):
    return queued_job


def test_it_shows_the_job_page_with_the_local_plotly(alice_client, job):
    response = alice_client.get(reverse("search_detail", args=[job.pk]))
    assert response.status_code == 200
    assert b"/static/vendor/plotly/plotly.min.js" in response.content
    assert f'data-ws-path="/ws/searches/{job.pk}/"'.encode() in response.content
    assert b"cdn" not in response.content.lower()


def test_it_serves_plotly_from_our_own_static_files(client):
    response = client.get("/static/vendor/plotly/plotly.min.js")
    assert response.status_code == 200
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_it_rejects_other_users_job(bob_client, job):
    for name in ["search_detail", "search_cancel"]:
        method = bob_client.post if name == "search_cancel" else bob_client.get
        assert method(reverse(name, args=[job.pk])).status_code == 404
    for name in ["trial_bundle", "trial_predictions"]:
        assert bob_client.get(reverse(name, args=[job.pk, 0])).status_code == 404
    job.refresh_from_db()
    assert job.status == SearchJob.Status.QUEUED


def test_it_cancels_a_queued_job_and_the_worker_then_skips_it(alice_client, job):
    response = alice_client.post(reverse("search_cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == SearchJob.Status.CANCELLED and job.finished_at is not None
    runner.search_execute(job_id=job.pk)  # what the worker does when the message arrives
    job.refresh_from_db()
    assert job.status == SearchJob.Status.CANCELLED
    assert not job.trials.exists()


def test_it_says_a_missing_trial_is_not_found(alice_client, job):
    assert alice_client.get(reverse("trial_bundle", args=[job.pk, 99])).status_code == 404


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-cmd", "'-cmd"),
        ("\tx", "'\tx"),
        ("yes", "yes"),
        (-1.5, "-1.5"),
        ("-2", "-2"),
        (0.25, "0.25"),
    ],
)
def test_prediction_cells_never_start_a_spreadsheet_formula(value, cell):
    from webapp.searches.spreadsheet import spreadsheet_safe

    assert spreadsheet_safe(value) == cell


def test_staff_see_any_users_job_its_trials_and_its_socket_snapshot(job, bob, django_user_model):
    from django.test import Client

    from webapp.searches.models import Trial
    from webapp.searches.selectors import search_snapshot

    Trial.objects.create(
        job=job, number=0, status="rejected", architecture={}, arch_hash="a", params=10**9, flops=1, size_bytes=4
    )
    sam = django_user_model.objects.create_user(username="sam", password="x", is_staff=True)
    staff = Client()
    staff.force_login(sam)
    assert staff.get(reverse("search_detail", args=[job.pk])).status_code == 200
    assert staff.get(reverse("trial_bundle", args=[job.pk, 0])).status_code == 409  # found; rejected, no model
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get(reverse("trial_bundle", args=[job.pk, 0])).status_code == 404
    # The WebSocket consumer asks the same selector before it joins the job's group.
    assert search_snapshot(user=sam, pk=job.pk)[0] == job
    assert search_snapshot(user=bob, pk=job.pk) is None


# --- the job page's explorer and comparison ------------------------------------------------------

ARCH = {
    "space": "mlp",
    "layers": [{"units": 8, "activation": "relu", "dropout": 0.0}],
    "train": {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"},
}


@pytest.fixture
def trained_trial(job):
    return train_trial(job)


# A worker computes an evaluation: these tests commit their rows (transaction=True) for the real one.
on_the_worker = pytest.mark.django_db(transaction=True)


@pytest.fixture
def committed_job(alice, alice_client, breast_cancer_csv):
    """Alice's search on breast_cancer, made directly (never sent to a broker), its rows committed."""
    from tests.web.helpers import upload_dataset

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = SearchJob.objects.create(
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
    )
    shutil.rmtree(job.artifacts_dir, ignore_errors=True)  # a flushed test database reuses job ids
    return job


@pytest.fixture
def committed_trial(committed_job):
    return train_trial(committed_job)


def train_trial(job):
    """Trial 0 of ``job`` with real weights, trained briefly on the job's own training split, as a
    finished search leaves it (the job keeps the preprocessing fitted on that split)."""
    import torch

    import nas_engine
    from nas_engine.export import analytic_costs
    from webapp.searches.models import Trial

    data = nas_engine.prepare_data(job.dataset.file.path, target=job.target, task=job.task, seed=job.seed)
    model, _ = nas_engine.refit(ARCH, data, epochs=1, seed=0)
    weights = Path(job.artifacts_dir) / "trial_0_final.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)
    SearchJob.objects.filter(pk=job.pk).update(
        preprocessing=data.preprocessing, n_inputs=data.n_features, n_outputs=data.n_outputs
    )
    costs = analytic_costs(ARCH, data.n_features, data.n_outputs)
    return Trial.objects.create(
        job=job, number=0, status="completed", architecture=ARCH, arch_hash="a", metrics={"score": 0.9}, score=0.9,
        params=costs.params, flops=costs.flops, latency_ms=0.01, size_bytes=costs.size_bytes,
        final_weights_path=str(weights),
    )  # fmt: skip


def held_out_rows(job) -> int:
    """Rows of the job's test split, as the search made it (a fifth of each class)."""
    import nas_engine

    return len(nas_engine.prepare_data(job.dataset.file.path, target=job.target, seed=job.seed).y_test)


def test_it_shows_the_explorer_with_labelled_sliders_and_its_scripts(alice_client, job):
    html = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    for cost in ["params", "flops", "latency_ms"]:
        assert f'<label for="limit-{cost}">' in html and f'<input type="range" id="limit-{cost}"' in html
    assert "/static/css/job.css" in html and "/static/js/units.js" in html and "/static/js/job/page.js" in html
    assert f'data-evaluation-url="/searches/{job.pk}/trials/0/evaluation.json"' in html
    assert f'data-trial-url="/searches/{job.pk}/trials/0/"' in html
    assert 'data-sort-key="params"' in html and 'id="job-log"' in html


@on_the_worker
def test_the_evaluation_is_a_confusion_matrix_of_the_test_split_computed_once(
    celery_worker_process, alice_client, committed_job, committed_trial
):
    job, trained_trial = committed_job, committed_trial
    url = reverse("trial_evaluation", args=[job.pk, 0])
    asked = alice_client.get(url)
    assert asked.status_code == 202 and asked.json()["state"] in ("queued", "running")  # a worker computes it
    body = prepared(alice_client, url).json()
    evaluation = body["evaluation"]
    assert evaluation["task"] == "classification" and evaluation["labels"] == ["0", "1"]
    assert sum(map(sum, evaluation["confusion"])) == evaluation["n"] == held_out_rows(job)
    assert body["trial"]["number"] == 0 and body["layers"][0].startswith("Dense 8")
    trained_trial.refresh_from_db()
    assert trained_trial.test_evaluation["result"] == evaluation  # kept on the trial, with its weights' key
    Path(job.dataset.file.path).unlink()  # the split cannot be rebuilt: a second answer can only come from the cache
    assert alice_client.get(url).json()["evaluation"] == evaluation


@on_the_worker
def test_other_users_get_404_for_an_evaluation_and_staff_get_it(
    celery_worker_process, bob_client, committed_job, committed_trial, django_user_model
):
    from django.test import Client

    job = committed_job
    url = reverse("trial_evaluation", args=[job.pk, 0])
    assert bob_client.get(url).status_code == 404
    staff = Client()
    staff.force_login(django_user_model.objects.create_user(username="sam", password="x", is_staff=True))
    response = prepared(staff, url)
    assert response.status_code == 200 and response.json()["evaluation"]["n"] == held_out_rows(job)


def test_an_evaluation_without_a_model_says_why_with_409(alice_client, job, trained_trial):
    from webapp.searches.models import Trial

    Trial.objects.create(
        job=job, number=1, status="rejected", architecture={}, arch_hash="b", params=10**9, flops=1, size_bytes=4
    )
    rejected = alice_client.get(reverse("trial_evaluation", args=[job.pk, 1]))
    assert rejected.status_code == 409 and rejected.json()["error"] == "Trial 1 was rejected; it has no model."
    Path(trained_trial.final_weights_path).unlink()
    missing = alice_client.get(reverse("trial_evaluation", args=[job.pk, 0]))
    assert missing.status_code == 409 and "weights are missing" in missing.json()["error"]
    assert alice_client.get(reverse("trial_evaluation", args=[job.pk, 7])).status_code == 404


@on_the_worker
def test_an_evaluation_refuses_a_test_split_it_cannot_rebuild(
    celery_worker_process, alice_client, committed_job, committed_trial
):
    from webapp.searches.evaluation import SPLIT_CHANGED

    job = committed_job
    SearchJob.objects.filter(pk=job.pk).update(seed=job.seed + 1)  # another seed: other rows in the split
    response = prepared(alice_client, reverse("trial_evaluation", args=[job.pk, 0]))
    assert response.status_code == 409 and response.json()["error"] == SPLIT_CHANGED


@on_the_worker
def test_a_regression_evaluation_gives_true_and_predicted_values_in_the_targets_units(
    celery_worker_process, alice, alice_client, diabetes_csv
):
    from tests.web.helpers import upload_dataset

    dataset = upload_dataset(alice_client, diabetes_csv)
    job = SearchJob.objects.create(  # made directly: never sent to a broker
        owner=alice, dataset=dataset, target="progression", task="regression", budget_seconds=30
    )
    shutil.rmtree(job.artifacts_dir, ignore_errors=True)
    train_trial(job)
    evaluation = prepared(alice_client, reverse("trial_evaluation", args=[job.pk, 0])).json()["evaluation"]
    assert evaluation["task"] == "regression" and len(evaluation["y_true"]) == len(evaluation["y_pred"])
    assert len(evaluation["y_true"]) == evaluation["n"] == held_out_rows(job)
    assert 25 <= min(evaluation["y_true"]) and max(evaluation["y_true"]) <= 346  # diabetes progression's range
    assert {"r2", "mae"} <= set(evaluation) and evaluation["mae"] > 0
