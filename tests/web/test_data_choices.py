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
from tests.web.test_search_create import _elements, _text, errors_next_to, field_box, start
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


@pytest.fixture
def imbalanced(alice_client, tmp_path):
    """200 rows, 1 in 10 of them 'fraud'."""
    rng = np.random.default_rng(5)
    rows = [[f"{rng.normal():.3f}", "fraud" if i % 10 == 0 else "ok", f"{rng.normal():.3f}"] for i in range(200)]
    return upload_dataset(alice_client, write_csv(tmp_path / "imbalanced.csv", ["amount", "status", "x"], rows))


def test_left_to_the_data_the_metric_of_an_imbalanced_target_is_balanced_accuracy(alice_client, imbalanced):
    html = alice_client.get(reverse("dataset_detail", args=[imbalanced.pk])).content.decode()
    assert "Suggested from the data" in _text(field_box(html, "metric"))
    assert start(alice_client, imbalanced, target="status", metric="auto").status_code == 302
    job = SearchJob.objects.get()
    assert job.metric == "balanced_accuracy" and job.to_config().metric == "balanced_accuracy"
    assert services.prepared_data(job).preprocessing["target"]["metric"] == "balanced_accuracy"
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    assert "optimising balanced accuracy" in page and 'data-metric="balanced_accuracy"' in page


def test_a_balanced_target_keeps_accuracy_and_a_chosen_metric_is_kept(alice_client, with_id):
    start(alice_client, with_id, target="label")
    start(alice_client, with_id, target="x1", task="regression", metric="mae")
    plain, chosen = SearchJob.objects.order_by("pk")
    assert plain.metric == "accuracy" and chosen.metric == "mae"
    page = alice_client.get(reverse("search_detail", args=[chosen.pk])).content.decode()
    assert "optimising MAE" in page and 'data-higher-is-better="0"' in page


def test_a_metric_of_the_other_task_is_refused_by_the_field(alice_client, with_id):
    response = start(alice_client, with_id, target="x1", task="regression", metric="roc_auc")
    assert response.status_code == 400
    assert "ROC AUC is a classification metric" in errors_next_to(response.content.decode(), "metric")
    assert not SearchJob.objects.exists()


@pytest.fixture
def dated(alice_client, tmp_path):
    """150 rows: a date, a shop (5 shops), a constant-ish flag, an amount and a yes/no label."""
    rng = np.random.default_rng(8)
    rows = []
    for i in range(150):
        amount = rng.normal()
        rows.append([f"2022-{1 + i % 12:02d}-{1 + i % 28:02d}", f"shop{i % 5}", "same", f"{amount:.3f}",
                     "yes" if amount > 0 else "no"])  # fmt: skip
    path = write_csv(tmp_path / "dated.csv", ["day", "shop", "flag", "amount", "label"], rows)
    return upload_dataset(alice_client, path)


def test_a_time_split_is_stored_shown_and_puts_the_newest_rows_last(alice_client, dated):
    response = start(alice_client, dated, target="label", split_kind="time", split_column="day", split_ratio="70/15/15")
    assert response.status_code == 302
    job = SearchJob.objects.get()
    assert (job.split, job.split_ratio) == ("time:day", "70/15/15")
    assert job.to_config().split == "time:day"
    data = services.prepared_data(job)
    test_days = sorted(row["day"] for row in data.raw_test_rows)
    assert len(data.X_test) == 22 and test_days[0] >= "2022-10"  # the last months of the year
    job.refresh_from_db()
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    assert "by time: the newest rows of day are the test rows" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"split_kind": "time", "split_column": "shop"}, "Column 'shop' does not hold dates or times"),
        ({"split_kind": "group", "split_column": "flag"}, "a group split needs at least 3 groups"),
        ({"split_kind": "column", "split_column": "shop"}, "must say train, validation or test on every row"),
        ({"split_kind": "group", "split_column": ""}, "Choose the column to split by group."),
        ({"split_kind": "group", "split_column": "label"}, "it cannot also decide the split"),
    ],
)
def test_a_split_the_column_cannot_make_is_refused_by_the_field(alice_client, dated, fields, message):
    response = start(alice_client, dated, target="label", **fields)
    assert response.status_code == 400
    assert message in errors_next_to(response.content.decode(), "split_column")
    assert not SearchJob.objects.exists()


def test_a_badly_written_ratio_is_refused_by_its_field(alice_client, dated):
    response = start(alice_client, dated, target="label", split_ratio="half")
    assert "Write three shares like 70/15/15." in errors_next_to(response.content.decode(), "split_ratio")


def selected_options(box) -> list[str]:
    options = [dict(e.attributes) for e in _elements(box) if e.name == "option"]
    return [attrs.get("value") for attrs in options if "selected" in attrs]


def test_a_date_column_is_offered_as_a_date_and_the_choice_reaches_the_workers_data(alice_client, dated):
    html = alice_client.get(reverse("dataset_detail", args=[dated.pk])).content.decode()
    box = field_box(html, "type_0")  # the first column, "day"
    assert "day" in _text(box) and selected_options(box) == ["date"]
    assert selected_options(field_box(html, "type_3")) == ["auto"]  # amount: numbers, left as detected
    assert start(alice_client, dated, target="label", type_0="date", type_1="categorical").status_code == 302
    job = SearchJob.objects.get()
    assert job.column_types == ["day=date", "shop=categorical"]
    kinds = {f["name"]: f["kind"] for f in services.prepared_data(job).preprocessing["features"]}
    assert kinds["day"] == "date" and kinds["shop"] == "categorical"
    page = alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()
    assert "read as: day=date, shop=categorical" in page


def test_a_date_type_on_a_column_of_names_is_refused_by_its_field(alice_client, dated):
    response = start(alice_client, dated, target="label", type_1="date")
    assert response.status_code == 400
    assert "Column 'shop' does not look like dates" in errors_next_to(response.content.decode(), "type_1")
    assert not SearchJob.objects.exists()
