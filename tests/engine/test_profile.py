"""The dataset profile beyond kinds: distributions, a preview, column warnings and target-leak suspects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas_engine import profile_csv
from nas_engine.profiling import LEAK_MAX_COLUMNS, TOP_VALUES

from .conftest import write_csv


@pytest.fixture(scope="module")
def warned_csv(tmp_path_factory):
    """60 rows: an ID, a constant, a mostly-empty column, a grade that gives the target away, a feature
    almost equal to a numeric score, and an honest noisy feature."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        x = rng.normal()
        score = 10 * x + 50
        rows.append(
            [
                1000 + i,
                "same",
                "note" if i % 5 == 0 else "",
                "A" if x > 0 else "B",
                f"{score + rng.normal(0, 1):.4f}",  # r ≈ 0.995
                f"{rng.normal():.4f}",
                f"{score:.4f}",
                "yes" if x > 0 else "no",
            ]
        )
    header = ["id", "source", "notes", "grade", "score_copy", "noise", "score", "passed"]
    return write_csv(tmp_path_factory.mktemp("data") / "warned.csv", header, rows)


def test_categorical_and_small_integer_columns_get_value_counts(mixed_csv):
    profile = profile_csv(mixed_csv)
    colour = profile.column("colour").distribution
    assert colour.kind == "counts" and dict(zip(colour.labels, colour.counts, strict=True)) == {
        "red": 50,
        "green": 50,
        "blue": 50,
    }
    code = profile.column("code").distribution  # 0..4 with "NA" cells
    assert code.kind == "counts" and code.labels == ("0", "1", "2", "3", "4")  # numeric order
    assert sum(code.counts) == 200 - profile.column("code").missing


def test_numeric_quantities_get_a_histogram_of_every_present_value(diabetes_csv):
    column = profile_csv(diabetes_csv).column("progression")
    histogram = column.distribution
    assert histogram.kind == "histogram" and len(histogram.counts) == 20 and len(histogram.edges) == 21
    assert sum(histogram.counts) == 442
    assert histogram.edges[0] == column.min and histogram.edges[-1] == pytest.approx(column.max)


def test_a_single_valued_number_still_gets_one_bin(tmp_path):
    path = write_csv(tmp_path / "flat.csv", ["x", "y"], [[f"{i}.5", "2.5"] for i in range(30)])
    y = profile_csv(path).column("y")
    assert y.suggested_task == "regression"
    assert y.distribution.counts == (30,) and y.distribution.edges == (2.0, 3.0)


def test_many_categories_keep_the_most_frequent_and_count_the_rest(tmp_path):
    rows = [[i, f"city{i % 30}" if i < 300 else "capital"] for i in range(400)]
    city = profile_csv(write_csv(tmp_path / "cities.csv", ["id", "city"], rows)).column("city").distribution
    assert len(city.labels) == TOP_VALUES and city.labels[0] == "capital" and city.counts[0] == 100
    assert city.other_values == 31 - TOP_VALUES
    assert sum(city.counts) + city.other == 400


def test_equal_numbers_written_differently_are_one_class(tmp_path):
    path = write_csv(tmp_path / "y.csv", ["x", "y"], [[i, ["1", "1.0", "0"][i % 3]] for i in range(30)])
    y = profile_csv(path).column("y").distribution
    assert y.labels == ("0", "1") and y.counts == (10, 20)


def test_the_preview_holds_the_first_rows_as_text(warned_csv):
    profile = profile_csv(warned_csv)
    assert len(profile.preview) == 10 and len(profile.preview[0]) == 8
    assert profile.preview[0][:4] == ("1000", "same", "note", "A" if profile.preview[0][7] == "yes" else "B")


def test_long_cells_are_cut_in_the_preview_only(tmp_path):
    path = write_csv(tmp_path / "long.csv", ["text", "y"], [["word " * 100, i % 2] for i in range(5)])
    profile = profile_csv(path)
    assert len(profile.preview[0][0]) == 200 and profile.preview[0][0].endswith("…")
    assert len(profile.column("text").examples[0]) == len("word " * 100) - 1  # stripped, not cut


def test_it_warns_about_ids_constants_and_mostly_empty_columns(warned_csv):
    warnings = {(w.kind.value, w.column): w.message for w in profile_csv(warned_csv).warnings}
    expected = {("id_like", "id"), ("constant", "source"), ("mostly_missing", "notes"), ("constant", "notes")}
    assert set(warnings) == expected
    assert "different value in every row" in warnings[("id_like", "id")]
    assert "missing in 80% of rows" in warnings[("mostly_missing", "notes")]
    assert "('same')" in warnings[("constant", "source")]


def test_distinct_measurements_are_not_mistaken_for_ids(breast_cancer_csv):
    # Continuous measurements are often all different; only whole numbers or text look like IDs.
    assert not [w for w in profile_csv(breast_cancer_csv).warnings if w.kind.value == "id_like"]


def test_a_column_that_is_empty_everywhere_gets_one_warning(tmp_path):
    path = write_csv(tmp_path / "empty.csv", ["x", "blank", "y"], [[i, "", i % 2] for i in range(30)])
    warnings = [(w.kind.value, w.column) for w in profile_csv(path).warnings]
    assert ("mostly_missing", "blank") in warnings and ("constant", "blank") not in warnings


def test_leakage_suspects_follow_the_chosen_target(warned_csv):
    profile = profile_csv(warned_csv)
    passed = {(s.column, s.kind.value) for s in profile.leakage_for("passed")}
    assert passed == {("grade", "mapping")}
    score = {s.column: s for s in profile.leakage_for("score")}
    assert set(score) == {"score_copy"} and score["score_copy"].correlation > 0.99
    assert "correlation +0.99" in score["score_copy"].message and "remove it" in score["score_copy"].message
    assert not profile.leakage_for("noise")


def test_many_distinct_values_or_a_loose_mapping_are_not_leaks(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(200):
        label = int(rng.integers(0, 2))
        # region predicts the label 90% of the time: informative, not a leak.
        region = ["north", "south"][label] if rng.random() < 0.9 else ["north", "south"][1 - label]
        rows.append([f"user{i}", region, label])
    profile = profile_csv(write_csv(tmp_path / "fair.csv", ["user", "region", "label"], rows))
    assert not profile.leakage_for("label")  # "user" maps to one label each, but is distinct per row


def test_leakage_is_skipped_for_very_wide_files(tmp_path):
    columns = [f"px{i}" for i in range(LEAK_MAX_COLUMNS + 1)]
    rows = [[*(i * j % 7 for j in range(len(columns) - 1)), i % 2] for i in range(30)]
    profile = profile_csv(write_csv(tmp_path / "wide.csv", columns, rows))
    assert profile.leakage_checked is False and profile.leakage == ()


def test_the_profile_is_plain_json_with_the_old_keys_kept(warned_csv):
    data = json.loads(json.dumps(profile_csv(warned_csv).to_dict()))
    assert {"rows", "columns", "warnings", "leakage", "leakage_checked", "preview"} <= set(data)
    column = data["columns"][4]
    assert {"name", "kind", "missing", "unique", "examples", "suggested_task", "mean", "min", "max"} <= set(column)
    assert column["distribution"]["kind"] == "histogram"
    assert data["leakage"][0].keys() == {"target", "column", "kind", "message", "correlation"}
    assert data["warnings"][0]["kind"] == "id_like"
