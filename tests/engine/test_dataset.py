"""Profiling and preparing CSV files: kinds, missing cells, rejections, train-only preprocessing."""

from __future__ import annotations

import codecs
import re

import numpy as np
import pytest

from nas_engine import CsvLimits, DatasetError, detect_task, prepare_data, profile_csv
from nas_engine.dataset import read_table
from nas_engine.runtime import encode_rows, parse_number, read_csv_rows

from .conftest import write_csv


def test_profile_reports_kinds_missing_and_suggested_task(mixed_csv):
    profile = profile_csv(mixed_csv)
    assert profile.rows == 200
    columns = {c.name: c for c in profile.columns}
    assert columns["size"].kind == "numeric" and columns["size"].suggested_task == "regression"
    assert columns["colour"].kind == "categorical" and columns["colour"].missing == 50
    assert columns["colour"].unique == 3 and columns["colour"].examples == ("red", "green", "blue")
    assert columns["weight"].missing == 23 and columns["weight"].mean is not None
    assert columns["code"].kind == "numeric" and columns["code"].suggested_task == "classification"
    assert columns["label"].suggested_task == "classification"
    assert profile.to_dict()["columns"][1]["examples"] == ["red", "green", "blue"]


def test_profile_honours_max_rows(mixed_csv):
    assert profile_csv(mixed_csv, max_rows=10).rows == 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"\xef\xbb\xbf\n\n", "The file is empty."),
        (b"a,b\n", "The CSV has a header but no data rows."),
        (b"a,b\n1,2\n", "The CSV has only one data row"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", "does not look like a CSV: it contains binary data"),
        (b"PK\x03\x04\x14\x00\x06\x00", "it is a zip archive or an Excel workbook (.xlsx)"),
        (b"a,b\n1,2\n\xff\xfe\xfa,1\n", "not UTF-8 text: line 3 has a byte (0xFF)"),
        ("a,b\ncafé,1\nthé,2\n".encode("cp1252"), "line 2 has a byte (0xE9) that UTF-8 does not allow"),
        ("a,b\n1,2\n".encode("utf-16"), "UTF-16 text, but NAS Studio reads UTF-8"),
        (b"only\n1\n2\n", "needs at least two columns (features and a target); it has 1"),
        (b"a,a,b\n1,2,3\n", "repeated: a"),
        (b"a,,b\n1,2,3\n", "Column 2 has no name"),
        (b"a,b\n1,2\n1,2,3,4\n", "Line 3 has 4 values but the header has 2 columns"),
        (b"a,b\n1,2\n\n3\n4,5\n", "Line 4 has 1 value but the header has 2 columns"),
        (b'a,b\n"x\ny",1\n1,2,3\n', "Line 4 has 3 values"),  # physical lines, past a quoted line break
        (b'a,b\n1,2\n"open,3\n4,5\n', 'A quote (") opened on line 3 is never closed'),
    ],
)
def test_profile_rejects_unusable_files(tmp_path, content, message):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=re.escape(message)):
        profile_csv(path)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + "name,price\ncafé,1\nthé,2\n".encode())
    profile = profile_csv(path)
    assert [c.name for c in profile.columns] == ["name", "price"]
    assert profile.column("name").examples == ("café", "thé")


@pytest.mark.parametrize(
    ("limits", "content", "message"),
    [
        (CsvLimits(max_columns=3), "a,b,c,d\n1,2,3,4\n5,6,7,8\n", "has 4 columns; this server accepts at most 3"),
        (CsvLimits(max_rows=3), "a,b\n" + "1,2\n" * 4, "more than 3 data rows"),
        (CsvLimits(max_field_chars=10), "a,b\n1,2\nshort," + "x" * 11 + "\n", "Line 3, column 'b' has a value of 11"),
        (CsvLimits(max_name_chars=5), "a,toolong\n1,2\n3,4\n", "The name of column 2 is 7 characters long"),
    ],
    ids=["columns", "rows", "field", "name"],
)
def test_limits_are_enforced_with_a_clear_message(tmp_path, limits, content, message):
    path = tmp_path / "big.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=re.escape(message)):
        profile_csv(path, limits=limits)


def test_limits_are_inclusive_and_reading_again_needs_none(tmp_path):
    path = tmp_path / "edge.csv"
    path.write_text("a,b,c\n" + "1,2,xxxxxxxxxx\n" * 3)
    limits = CsvLimits(max_columns=3, max_rows=3, max_field_chars=10, max_name_chars=1)
    assert profile_csv(path, limits=limits).rows == 3
    # A stored file is read again (by prepare_data) without limits: a server may lower them later.
    assert len(read_table(path)) == 3


def test_a_cell_over_the_csv_modules_own_limit_is_read_when_allowed(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b\n1," + "y" * 200_000 + "\n2,z\n")
    assert profile_csv(path, limits=CsvLimits(max_field_chars=300_000)).rows == 2
    with pytest.raises(DatasetError, match="a cell can have at most 100,000"):
        profile_csv(path)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="was not found"):
        profile_csv(tmp_path / "nope.csv")


def test_detect_task_rule():
    assert detect_task(["a", "b"]) == "classification"
    assert detect_task(["1", "2", "", "3"]) == "classification"
    assert detect_task([str(i) for i in range(21)]) == "regression"
    assert detect_task(["1.5", "2"]) == "regression"


def test_parse_number_treats_placeholders_as_missing():
    assert [parse_number(c) for c in ["", " NA ", "nan", "Null", "none", "?", "x", "inf"]] == [None] * 8
    assert parse_number(" 3.5 ") == 3.5


def test_prepare_rejects_unknown_target(mixed_csv):
    with pytest.raises(DatasetError, match="Column 'nope' is not in the dataset. Columns: size, colour"):
        prepare_data(mixed_csv, target="nope")


def test_prepare_rejects_single_class_target(tmp_path):
    path = write_csv(tmp_path / "one.csv", ["x", "y"], [[i, "yes"] for i in range(20)])
    with pytest.raises(DatasetError, match="'y' has only one distinct value"):
        prepare_data(path, target="y")


def test_prepare_rejects_text_target_for_regression(mixed_csv):
    with pytest.raises(DatasetError, match="Regression needs a numeric target, but 'label' holds text"):
        prepare_data(mixed_csv, target="label", task="regression")


def test_prepare_rejects_a_target_that_gives_nearly_every_row_its_own_class(tmp_path):
    path = write_csv(tmp_path / "ids.csv", ["x", "y"], [[i % 3, f"id{i}"] for i in range(30)])
    with pytest.raises(DatasetError, match="'y' has 30 classes in 30 rows, nearly every row its own class"):
        prepare_data(path, target="y")


def test_prepare_rejects_a_target_whose_inputs_are_all_empty(tmp_path):
    path = write_csv(tmp_path / "empty.csv", ["a", "b", "y"], [["", "", i % 2] for i in range(30)])
    with pytest.raises(DatasetError, match="Every other column is empty"):
        prepare_data(path, target="y")


def test_prepare_rejects_too_few_rows_after_dropping_missing_targets(tmp_path):
    rows = [[i, "" if i % 2 else i % 3] for i in range(16)]
    with pytest.raises(DatasetError, match="8 rows with a target value; at least 10"):
        prepare_data(write_csv(tmp_path / "few.csv", ["x", "y"], rows), target="y")


def test_prepare_drops_rows_with_missing_target(mixed_csv):
    data = prepare_data(mixed_csv, target="code")
    assert len(data.X_train) + len(data.X_val) + len(data.X_test) == 200 - 16
    assert data.source_rows == 200 and data.task == "classification"


def test_preprocessing_is_fitted_on_train_only(breast_cancer_csv):
    data = prepare_data(breast_cancer_csv, target="diagnosis", seed=3)
    mean_radius = data.preprocessing["features"][0]
    assert mean_radius["name"] == "mean radius"
    # Robust scaling is fitted on the training rows: their median encodes to 0, their quartiles
    # to about ±0.67 robust standard units (before the smooth clip); the other splits are not.
    train_values = np.concatenate([data.X_train[:, 0]])
    assert abs(np.median(train_values)) < 1e-5
    q25, q75 = np.quantile(train_values, [0.25, 0.75])
    assert q75 - q25 == pytest.approx(2 * 0.6745 / np.sqrt(1 + (0.6745 / 3) ** 2), abs=0.05)
    all_rows = read_csv_rows(breast_cancer_csv)
    all_mean = np.mean([float(r["mean radius"]) for r in all_rows])
    assert mean_radius["mean"] != pytest.approx(all_mean, abs=1e-6)


def test_split_is_stratified_and_seeded(cancer_data, breast_cancer_csv):
    sizes = (len(cancer_data.y_train), len(cancer_data.y_val), len(cancer_data.y_test))
    assert sum(sizes) == 569 and min(sizes) > 100
    rates = [y.mean() for y in (cancer_data.y_train, cancer_data.y_val, cancer_data.y_test)]
    assert max(rates) - min(rates) < 0.02
    again = prepare_data(breast_cancer_csv, target="diagnosis", seed=0)
    np.testing.assert_array_equal(again.X_test, cancer_data.X_test)


def test_categorical_and_missing_cells_encode_like_the_runtime(mixed_data, mixed_csv):
    prep = mixed_data.preprocessing
    colour = next(f for f in prep["features"] if f["name"] == "colour")
    assert colour["kind"] == "categorical" and sorted(colour["categories"]) == ["blue", "green", "red"]
    assert mixed_data.n_features == 1 + 4 + 1 + 1 and mixed_data.X_train.dtype == np.float32
    assert prep["target"]["labels"] == ["no", "yes"]
    encoded = encode_rows(read_csv_rows(mixed_csv), prep)
    assert not np.isnan(encoded).any()
    stacked = np.vstack([mixed_data.X_train, mixed_data.X_val, mixed_data.X_test])
    # Same rows, possibly in another order: compare as sorted row sets.
    assert np.array_equal(np.unique(stacked, axis=0), np.unique(encoded, axis=0))


def test_regression_target_is_standardised(diabetes_csv):
    data = prepare_data(diabetes_csv, target="progression")
    assert data.task == "regression" and data.n_outputs == 1
    assert abs(float(data.y_train.mean())) < 1e-4 and data.y_train.dtype == np.float32
    assert data.preprocessing["target"]["std"] > 10


def test_raw_test_rows_encode_to_the_test_split(mixed_data):
    rows = mixed_data.raw_test_rows
    assert len(rows) == len(mixed_data.X_test) and set(rows[0]) == {"size", "colour", "weight", "code", "label"}
    np.testing.assert_array_equal(encode_rows(rows, mixed_data.preprocessing), mixed_data.X_test)


def test_pixel_columns_are_detected_as_an_image(tmp_path, mixed_data):
    rng = np.random.default_rng(0)
    rows = [[*rng.integers(0, 256, 64).tolist(), i % 2] for i in range(30)]
    path = write_csv(tmp_path / "digits.csv", [f"px{i}" for i in range(64)] + ["digit"], rows)
    assert prepare_data(path, target="digit").image_shape == (1, 8, 8)
    assert mixed_data.image_shape is None


def test_ignored_columns_are_left_out_of_the_inputs_and_recorded(mixed_csv):
    kept = prepare_data(mixed_csv, target="label", seed=0)
    data = prepare_data(mixed_csv, target="label", seed=0, ignore=("colour",))
    assert data.feature_columns == ("size", "weight", "code") and data.preprocessing["ignored_columns"] == ["colour"]
    assert data.n_features == kept.n_features - len(kept.preprocessing["features"][1]["categories"]) - 1
    assert "ignored_columns" not in kept.preprocessing  # a search that ignores nothing prepares as before
    rows = read_csv_rows(mixed_csv)
    without = [{k: v for k, v in row.items() if k != "colour"} for row in rows]
    np.testing.assert_array_equal(encode_rows(rows, data.preprocessing), encode_rows(without, data.preprocessing))
    np.testing.assert_array_equal(data.y_train, kept.y_train)  # the same split: ignoring changes only the inputs


@pytest.mark.parametrize(
    ("ignore", "message"),
    [
        (("shade",), "Column 'shade' is not in the dataset"),
        (("label",), "is the target: it cannot also be ignored"),
        (("size", "colour", "weight", "code"), "Every input column is ignored"),
    ],
)
def test_ignoring_an_unknown_column_the_target_or_every_input_is_refused(mixed_csv, ignore, message):
    with pytest.raises(DatasetError, match=message):
        prepare_data(mixed_csv, target="label", ignore=ignore)


def test_balanced_class_weights_make_every_class_weigh_the_same_in_training(tmp_path):
    rows = [[f"{i / 10:.1f}", "rare" if i % 10 == 0 else "common"] for i in range(200)]
    path = write_csv(tmp_path / "skewed.csv", ["x", "label"], rows)
    data = prepare_data(path, target="label", seed=0, class_weights="balanced")
    weights = data.preprocessing["target"]["class_weights"]
    counts = np.bincount(data.y_train, minlength=2)
    assert weights == pytest.approx([len(data.y_train) / (2 * n) for n in counts], rel=1e-5)
    assert weights[counts.argmin()] > 4 * weights[counts.argmax()]  # about 1 rare row in 10
    assert np.allclose(np.array(weights) * counts, len(data.y_train) / 2)  # each class's total weight alike
    assert "class_weights" not in prepare_data(path, target="label", seed=0).preprocessing["target"]


def test_class_weights_are_refused_for_regression_and_unknown_names(tmp_path, mixed_csv):
    path = write_csv(tmp_path / "numbers.csv", ["x", "y"], [[i, i * 2.5] for i in range(60)])
    with pytest.raises(DatasetError, match="Class weights apply to classification"):
        prepare_data(path, target="y", class_weights="balanced")
    with pytest.raises(ValueError, match="Unknown class weights 'heavy'"):
        prepare_data(mixed_csv, target="label", class_weights="heavy")
