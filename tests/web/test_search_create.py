"""Starting a search: the form checks the target, task and limits against the dataset profile and
puts each message next to its field."""

import pytest
from django.test.html import Element, parse_html
from django.urls import reverse

from tests.web.helpers import upload_dataset
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


def start(client, dataset, **fields):
    data = {"target": "diagnosis", "task": "auto", "budget_seconds": 30, "strategy": "random", "seed": 0}
    data.update(cost_objective="params", space="auto", fidelity="none")
    data.update(fields)
    return client.post(reverse("search_create", args=[dataset.pk]), data)


def _elements(element):
    for child in element.children:
        if isinstance(child, Element):
            yield child
            yield from _elements(child)


def _text(element) -> str:
    return " ".join(child if isinstance(child, str) else _text(child) for child in element.children)


def field_box(html: str, name: str) -> Element:
    """The page's box of field ``name`` (label, input, help and errors)."""
    boxes = [e for e in _elements(parse_html(html)) if dict(e.attributes).get("data-field") == name]
    assert len(boxes) == 1, f"{len(boxes)} boxes for field {name}"
    return boxes[0]


def errors_next_to(html: str, name: str) -> str:
    """The error messages shown inside field ``name``'s box."""
    box = field_box(html, name)
    return " ".join(_text(e) for e in _elements(box) if "error" in (dict(e.attributes).get("class") or "").split())


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


def test_a_new_search_never_sees_files_left_under_its_id(alice_client, dataset):
    from pathlib import Path

    from django.conf import settings
    from django.core.management.color import no_style
    from django.db import connection

    # As after a database restored from an old backup: the next search gets id 1 again.
    assert not SearchJob.objects.exists()
    table = SearchJob._meta.db_table
    sequences = [seq for seq in connection.introspection.sequence_list() if seq["table"] == table]
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_by_name_sql(no_style(), sequences):
            cursor.execute(statement)
    stale = Path(settings.MEDIA_ROOT) / "jobs" / "1" / "bundles" / "trial_0.zip"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"a bundle of a deleted search with the same id")
    assert start(alice_client, dataset).status_code == 302
    job = SearchJob.objects.get()
    assert job.pk == 1 and not Path(job.artifacts_dir).exists()


def test_empty_limits_mean_no_limit(alice_client, dataset):
    response = start(alice_client, dataset, max_params="", max_flops="", max_latency_ms="", max_size_kb="")
    assert response.status_code == 302
    job = SearchJob.objects.get()
    assert (job.max_params, job.max_flops, job.max_latency_ms, job.max_size_bytes, job.max_trials) == (None,) * 5
    assert job.max_memory_bytes is None


def test_the_memory_limit_is_taken_in_kb_and_reaches_the_engine(alice_client, dataset):
    response = start(alice_client, dataset, max_memory_kb=64, cost_objective="memory_bytes")
    assert response.status_code == 302
    job = SearchJob.objects.get()
    assert job.max_memory_bytes == 64 * 1024 and job.objectives == ["score", "memory_bytes"]


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
        ({"budget_seconds": "ten"}, "budget_seconds", "whole number"),
        ({"budget_seconds": ""}, "budget_seconds", "required"),
        ({"max_params": -5}, "max_params", "greater than"),
        ({"max_params": 10}, "max_params", "No network fits under 10 parameters"),
        ({"max_flops": 5}, "max_flops", "No network fits under 5 FLOPs per prediction"),
        ({"max_flops": "1e400"}, "max_flops", "whole number"),
        ({"max_params": 10**30}, "max_params", "less than"),
        ({"max_latency_ms": "inf"}, "max_latency_ms", "Enter a number"),
        ({"strategy": "telepathy"}, "strategy", "Select a valid choice"),
        ({"task": "clustering"}, "task", "Select a valid choice"),
        ({"cost_objective": "happiness"}, "cost_objective", "Select a valid choice"),
        ({"space": "cnn"}, "space", "pixel columns"),
        ({"fidelity": "vibes"}, "fidelity", "Select a valid choice"),
        ({"cost_objective": "params", "third_objective": "params"}, "third_objective", "different cost"),
        ({"max_latency_ms": 0}, "max_latency_ms", "greater than"),
        ({"max_latency_ms": "fast"}, "max_latency_ms", "Enter a number"),
        ({"max_size_kb": 0}, "max_size_kb", "greater than"),
        ({"max_memory_kb": 0}, "max_memory_kb", "greater than"),
        ({"max_trials": 0}, "max_trials", "greater than"),
        ({"seed": -1}, "seed", "greater than"),
        ({"seed": 2**40}, "seed", "less than"),
        ({"augment": "shift"}, "augment", "do not form an image"),
        ({"augment": "blur"}, "augment", "Select a valid choice"),
        ({"strategy": "grid", "max_trials": 5}, "max_trials", "The grid has 40 networks but at most 5"),
        ({"strategy": "grid", "budget_seconds": 5}, "budget_seconds", "give the search at least"),
    ],
    ids=[
        "unknown-target", "zero-budget", "huge-budget", "text-budget", "missing-budget", "negative-params",
        "params-below-the-smallest-network", "flops-below-the-cheapest-network", "overflowing-flops",
        "overflowing-params", "infinite-latency",
        "unknown-strategy", "unknown-task", "unknown-objective", "cnn-on-tabular", "unknown-fidelity",
        "same-objective-twice", "zero-latency", "text-latency", "zero-size", "zero-memory", "zero-trials",
        "negative-seed",
        "huge-seed", "augment-a-table", "unknown-augment", "grid-above-the-trial-limit", "grid-above-the-budget",
    ],
)  # fmt: skip
def test_it_rejects_bad_settings_with_a_message_by_the_field(alice_client, dataset, fields, field, message):
    response = start(alice_client, dataset, **fields)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message in errors_next_to(response.content.decode(), field)
    assert not SearchJob.objects.exists()


def test_an_error_in_an_advanced_option_opens_the_advanced_options(alice_client, dataset):
    html = start(alice_client, dataset, seed=-1).content.decode()
    advanced = next(e for e in _elements(parse_html(html)) if dict(e.attributes).get("id") == "advanced")
    assert "open" in dict(advanced.attributes)
    assert "greater than" in errors_next_to(html, "seed")


def test_an_error_elsewhere_leaves_the_advanced_options_closed(alice_client, dataset):
    html = start(alice_client, dataset, max_params=-5).content.decode()
    advanced = next(e for e in _elements(parse_html(html)) if dict(e.attributes).get("id") == "advanced")
    assert "open" not in dict(advanced.attributes)


def test_the_form_keeps_what_was_typed_after_an_error(alice_client, dataset):
    html = start(alice_client, dataset, max_params=10, max_latency_ms=2.5, budget_seconds=600).content.decode()
    for name, value in (("max_params", "10"), ("max_latency_ms", "2.5"), ("budget_seconds", "600")):
        inputs = [dict(e.attributes) for e in _elements(field_box(html, name)) if e.name == "input"]
        assert [i["value"] for i in inputs if i.get("name") == name] == [value]


def rows(count: int, line) -> str:
    return "".join(line(i) + "\n" for i in range(count))


BAD_TARGETS = [
    # (id, CSV text, form fields, field, words the message next to that field must hold)
    ("one-class", "x,y\n" + rows(30, lambda i: f"{i},yes"), {"target": "y"}, "target", "only one distinct value"),
    ("only-missing", "x,y\n" + rows(30, lambda i: f"{i},"), {"target": "y"}, "target", "empty in every row"),
    (
        "regression-on-text",
        "x,y\n" + rows(30, lambda i: f"{i},{'ab'[i % 2]}"),
        {"target": "y", "task": "regression"},
        "task",
        "numeric target",
    ),
    (
        "ten-thousand-classes",
        "x,y\n" + rows(10_000, lambda i: f"{i % 7},c{i}"),
        {"target": "y"},
        "target",
        "10000 classes",
    ),
    (
        "a-class-per-row",
        "x,y\n" + rows(40, lambda i: f"{i % 3},c{i}"),
        {"target": "y", "task": "classification"},
        "target",
        "every row its own class",
    ),
    (
        "only-empty-inputs",
        ",".join(f"c{k}" for k in range(10)) + ",y\n" + rows(30, lambda i: "," * 10 + str(i % 2)),
        {"target": "y"},
        "target",
        "Every other column is empty",
    ),
]


@pytest.mark.parametrize(
    ("content", "fields", "field", "message"), [case[1:] for case in BAD_TARGETS], ids=[case[0] for case in BAD_TARGETS]
)
def test_it_refuses_a_target_no_model_can_learn(alice_client, tmp_path, content, fields, field, message):
    path = tmp_path / "data.csv"
    path.write_text(content)
    dataset = upload_dataset(alice_client, path)
    response = start(alice_client, dataset, **fields)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message in errors_next_to(response.content.decode(), field)
    assert not SearchJob.objects.exists()


def test_it_refuses_to_start_a_search_on_another_users_dataset(bob_client, dataset):
    assert start(bob_client, dataset).status_code == 404
    assert not SearchJob.objects.exists()
