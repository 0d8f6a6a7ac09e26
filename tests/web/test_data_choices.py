"""The data choices of a search. Columns the model must not use: the form offers every input column,
ticks the ones the profile warns about (an ID), refuses the target or every input, stores the choice
on the job, shows it on the job page, and the worker prepares the data without them. Class weights:
stored, shown, refused for regression, and the worker's data carries them."""

import numpy as np
import pytest
from django.test.html import parse_html
from django.urls import reverse

from tests.engine.conftest import write_csv
from tests.web.helpers import upload_dataset
from tests.web.test_search_create import _elements, errors_next_to, field_box, start
from webapp.searches import services
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_id(alice_client, tmp_path):
    """120 rows: a running number (an ID), two measurements, a colour and a yes/no label."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(120):
        x1, x2 = rng.normal(), rng.normal()
        colour = ["red", "green", "blue"][i % 3]
        rows.append([1000 + i, f"{x1:.3f}", f"{x2:.3f}", colour, "yes" if x1 + x2 > 0 else "no"])
    path = write_csv(tmp_path / "with_id.csv", ["row_id", "x1", "x2", "colour", "label"], rows)
    return upload_dataset(alice_client, path)


def ignore_boxes(html: str) -> dict[str, bool]:
    """The ignore field's checkboxes: column -> ticked."""
    box = field_box(html, "ignore")
    inputs = [dict(e.attributes) for e in _elements(box) if e.name == "input"]
    return {attrs["value"]: "checked" in attrs for attrs in inputs if attrs.get("type") == "checkbox"}


def test_every_input_column_is_offered_and_the_id_the_profile_warns_about_starts_ticked(alice_client, with_id):
    html = alice_client.get(reverse("dataset_detail", args=[with_id.pk])).content.decode()
    assert ignore_boxes(html) == {"row_id": True, "x1": False, "x2": False, "colour": False, "label": False}


def test_the_choice_is_stored_shown_and_the_worker_prepares_the_data_without_it(alice_client, with_id):
    response = start(alice_client, with_id, target="label", ignore=["row_id", "colour"])
    job = SearchJob.objects.get()
    assert response.status_code == 302 and job.ignore == ["row_id", "colour"]
    assert job.to_config().ignore == ("row_id", "colour")
    data = services.prepared_data(job)
    assert data.feature_columns == ("x1", "x2") and data.n_features == 2
    job.refresh_from_db()  # the preprocessing the bundles use says so too
    assert job.preprocessing["ignored_columns"] == ["row_id", "colour"]
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    summary = next(e for e in _elements(parse_html(page)) if e.name == "p" and "muted" in str(e.attributes))
    assert "ignoring row_id, colour" in " ".join(str(c) for c in summary.children)


def test_a_search_that_ignores_nothing_uses_every_other_column(alice_client, with_id):
    start(alice_client, with_id, target="label")
    job = SearchJob.objects.get()
    assert job.ignore == [] and services.prepared_data(job).feature_columns == ("row_id", "x1", "x2", "colour")


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        (["label"], "Column 'label' is the one to predict: untick it here."),
        (["row_id", "x1", "x2", "colour"], "Every input column is ticked"),
        (["nonesuch"], "Select a valid choice."),
    ],
)
def test_ignoring_the_target_every_input_or_an_unknown_column_is_refused_by_the_field(
    alice_client, with_id, ignore, message
):
    response = start(alice_client, with_id, target="label", ignore=ignore)
    assert response.status_code == 400
    assert message in errors_next_to(response.content.decode(), "ignore")
    assert not SearchJob.objects.exists()


def test_balanced_class_weights_are_stored_shown_and_reach_the_workers_data(alice_client, with_id):
    response = start(alice_client, with_id, target="label", class_weights="balanced")
    job = SearchJob.objects.get()
    assert response.status_code == 302 and job.class_weights == "balanced"
    weights = services.prepared_data(job).preprocessing["target"]["class_weights"]
    assert len(weights) == 2 and all(w > 0 for w in weights)
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    assert "balanced class weights" in page


def test_class_weights_for_a_regression_target_are_refused_by_the_field(alice_client, with_id):
    response = start(alice_client, with_id, target="x1", task="regression", class_weights="balanced")
    assert response.status_code == 400
    assert "Class weights apply to classification" in errors_next_to(response.content.decode(), "class_weights")
    assert not SearchJob.objects.exists()
