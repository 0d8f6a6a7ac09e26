"""Profiling and preparing CSV files: kinds, missing cells, rejections, train-only preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from nas_engine import DatasetError, detect_task, prepare_data, profile_csv
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
        (b"a,b\n", "The CSV has a header but no data rows."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", "does not look like a CSV"),
        (b"a,b\n\xff\xfe\xfa,1\n", "does not look like a CSV"),
        (b"only\n1\n2\n", "needs at least two columns (features and a target); it has 1"),
        (b"a,a,b\n1,2,3\n", "repeated: a"),
        (b"a,,b\n1,2,3\n", "Column 2 has no name"),
        (b"a,b\n1,2\n1,2,3,4\n", "does not look like a CSV"),
    ],
)
def test_profile_rejects_unusable_files(tmp_path, content, message):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
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
    with pytest.raises(DatasetError, match=r"only one class \('yes'\)"):
        prepare_data(path, target="y")


def test_prepare_rejects_text_target_for_regression(mixed_csv):
    with pytest.raises(DatasetError, match="non-numeric values"):
        prepare_data(mixed_csv, target="label", task="regression")


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
    # Encoded train columns are centred exactly; the other splits are not.
    assert abs(data.X_train[:, 0].mean()) < 1e-5
    assert abs(data.X_train[:, 0].std() - 1) < 1e-4
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
