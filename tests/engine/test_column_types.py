"""Column types chosen by the user: a date becomes year, month, day of the week and elapsed days; a
zip code read as labels; numbers forced where text is mixed in; bad choices refused by name; the
bundle's predict.py reads the same raw cells the same way."""

from __future__ import annotations

import datetime
import json
import zipfile

import numpy as np
import pytest

from nas_engine import SearchConfig, prepare_data, runtime
from nas_engine.cli import main
from nas_engine.errors import DatasetError
from nas_engine.importance import column_slots
from tests.engine.conftest import write_csv


@pytest.fixture(scope="module")
def orders_csv(tmp_path_factory):
    """200 orders: a date, a zip code (numbers that are labels), a price with a few 'n/a', a label."""
    rng = np.random.default_rng(6)
    rows = []
    for i in range(200):
        day = datetime.date(2022, 1, 3) + datetime.timedelta(days=i * 3)
        price = "n/a" if i % 25 == 0 else f"{rng.normal(20, 5):.2f}"
        rows.append([day.isoformat(), str(10_000 + (i % 4) * 111), price, "late" if day.weekday() >= 5 else "on time"])
    path = tmp_path_factory.mktemp("types") / "orders.csv"
    return write_csv(path, ["ordered", "zip", "price", "status"], rows)


def test_date_parts_read_iso_and_common_formats():
    assert runtime.date_parts("2024-03-31") == [
        2024.0,
        3.0,
        6.0,
        float(datetime.date(2024, 3, 31).toordinal() - datetime.date(1970, 1, 1).toordinal()),
    ]
    assert runtime.date_parts("2024-03-31T10:15:00Z")[:3] == [2024.0, 3.0, 6.0]
    assert runtime.date_parts("03/31/2024")[:2] == [2024.0, 3.0]
    assert runtime.date_parts("31.03.2024")[:2] == [2024.0, 3.0]
    assert runtime.date_parts("not a date") is None and runtime.date_parts("") is None


def test_a_date_column_becomes_four_standardised_parts_and_a_missing_date_its_median(orders_csv):
    data = prepare_data(orders_csv, target="status", column_types=["ordered=date"])
    feature = next(f for f in data.preprocessing["features"] if f["name"] == "ordered")
    assert feature["kind"] == "date" and feature["parts"] == ["year", "month", "weekday", "days"]
    assert data.preprocessing["column_types"] == {"ordered": "date"}
    where = dict(column_slots(data.preprocessing))["ordered"]
    assert where.stop - where.start == 4
    encoded = runtime.encode_rows([{"ordered": "", "zip": "10000", "price": "20"}], data.preprocessing)[0]
    median = (np.array(feature["median"]) - np.array(feature["mean"])) / np.array(feature["std"])
    assert np.allclose(encoded[where], median, atol=1e-6)
    weekend = runtime.encode_rows([{"ordered": "2022-01-08", "zip": "10000", "price": "20"}], data.preprocessing)[0]
    assert weekend[where.start + 2] * feature["std"][2] + feature["mean"][2] == pytest.approx(5.0, abs=1e-4)
    undetected = prepare_data(orders_csv, target="status")  # by default the date is text, one slot per value
    assert next(f for f in undetected.preprocessing["features"] if f["name"] == "ordered")["kind"] == "categorical"


def test_a_zip_code_read_as_labels_and_a_mixed_column_read_as_numbers(orders_csv):
    data = prepare_data(orders_csv, target="status", column_types=["zip=categorical", "price=numeric"])
    features = {f["name"]: f for f in data.preprocessing["features"]}
    assert features["zip"]["kind"] == "categorical" and sorted(features["zip"]["categories"]) == [
        "10000", "10111", "10222", "10333"
    ]  # fmt: skip
    assert features["price"]["kind"] == "numeric"  # 'n/a' is a missing value: the training median


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (["zip=date"], "Column 'zip' does not hold dates"),
        (["ordered=numeric"], "Column 'ordered' holds no numbers"),
        (["price=money"], "Unknown column type 'money'"),
        (["status=date"], "is the target"),
        (["nope=date"], "nope"),
        (["ordered"], "is not COLUMN=KIND"),
    ],
)
def test_a_type_the_column_cannot_take_is_refused_with_the_reason(orders_csv, types, message):
    with pytest.raises(DatasetError, match=message):
        prepare_data(orders_csv, target="status", column_types=types)


def test_the_cli_reads_a_date_and_the_bundle_predicts_from_the_raw_date(orders_csv, tmp_path):
    out = tmp_path / "m.zip"
    assert main(["search", str(orders_csv), "--target", "status", "--column-types", "ordered=date",
                 "--budget-seconds", "8", "--max-trials", "2", "--out", str(out)]) == 0  # fmt: skip
    with zipfile.ZipFile(out) as bundle:
        record = json.loads(bundle.read("metrics.json"))
        preprocessing = json.loads(bundle.read("preprocessing.json"))
        card = bundle.read("MODEL_CARD.md").decode()
    assert record["config"]["column_types"] == ["ordered=date"]
    assert preprocessing["column_types"] == {"ordered": "date"}
    assert record["checks"]["predict_py_reproduces_predictions"] is True  # on the raw test rows, dates as text
    assert "ordered as dates (year, month, day of the week, elapsed days)" in card
    assert SearchConfig(target="status", column_types=["ordered=date"]).column_types == ("ordered=date",)
