"""How rows are divided: by time (the newest rows are the test rows), by group (no group in two
splits), by the user's own column (never an input), at a chosen ratio; bad choices are refused by
name."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from nas_engine import SearchConfig, prepare_data
from nas_engine.errors import DatasetError
from nas_engine.splits import Split, parse_ratio, read_times
from tests.engine.conftest import write_csv


@pytest.fixture(scope="module")
def shops_csv(tmp_path_factory):
    """300 sales: a date, a shop (20 shops), the user's own fold, an amount and whether it was returned."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(300):
        day = datetime.date(2021, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 900)))
        fold = ["train", "Validation", "test", "train", "train"][i % 5]
        amount = rng.normal(50, 10)
        rows.append(
            [day.isoformat(), f"shop{rng.integers(0, 20)}", fold, f"{amount:.2f}", "yes" if amount > 55 else "no"]
        )
    path = tmp_path_factory.mktemp("splits") / "sales.csv"
    return write_csv(path, ["day", "shop", "fold", "amount", "returned"], rows)


def test_a_time_split_puts_the_newest_rows_in_test_and_the_ones_before_in_validation(shops_csv):
    data = prepare_data(shops_csv, target="returned", split="time:day")
    assert data.preprocessing["split"] == {"kind": "time", "column": "day"}
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (180, 60, 60)
    frame_days = read_times([row["day"] for row in data.raw_test_rows])
    all_days = np.sort(read_times([line.split(",")[0] for line in shops_csv.read_text().splitlines()[1:]]))
    assert frame_days.min() >= all_days[-60]  # the 60 test rows are the 60 newest


def test_a_group_never_crosses_splits(shops_csv):
    from nas_engine.dataset import read_table
    from nas_engine.splits import split_rows

    frame = read_table(shops_csv)
    parts = split_rows(
        frame, Split.parse("group:shop"), rng=np.random.default_rng(0), val_fraction=0.2, test_fraction=0.2, strata=None
    )
    shops = [set(frame["shop"].iloc[part]) for part in parts]
    assert all(shops) and not (shops[0] & shops[1] or shops[0] & shops[2] or shops[1] & shops[2])
    assert sum(len(p) for p in parts) == len(frame)
    data = prepare_data(shops_csv, target="returned", split="group:shop")
    test_shops = {row["shop"] for row in data.raw_test_rows}
    assert test_shops and len(data.X_test) == sum(frame["shop"].isin(test_shops))


def test_the_users_split_column_decides_and_is_never_an_input(shops_csv):
    data = prepare_data(shops_csv, target="returned", split="column:fold")
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (180, 60, 60)
    assert {row["fold"] for row in data.raw_test_rows} == {"test"}
    assert "fold" not in data.feature_columns and data.preprocessing["ignored_columns"] == ["fold"]


def test_a_ratio_sets_the_shares_of_a_random_split(shops_csv):
    data = prepare_data(shops_csv, target="returned", ratio="80/10/10")
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (240, 30, 30)
    assert "split" not in data.preprocessing  # random: the preprocessing of a default search is as it was
    assert parse_ratio("70/15/15") == pytest.approx((0.15, 0.15))


@pytest.mark.parametrize(
    ("split", "message"),
    [
        ("time:shop", "Column 'shop' does not hold dates or times"),
        ("column:shop", "Column 'shop' must say train, validation or test on every row"),
        ("group:nope", "Column 'nope' of the group split is not in this dataset"),
        ("group:returned", "is the target: it cannot also decide the split"),
    ],
)
def test_a_split_the_data_cannot_take_is_refused_with_the_reason(shops_csv, split, message):
    with pytest.raises(DatasetError, match=message):
        prepare_data(shops_csv, target="returned", split=split)


def test_one_group_and_badly_written_choices_are_refused(tmp_path):
    path = write_csv(tmp_path / "one.csv", ["g", "x", "y"], [["a", str(i), str(i % 2)] for i in range(40)])
    with pytest.raises(DatasetError, match="has 1 distinct value: a group split needs at least 3 groups"):
        prepare_data(path, target="y", split="group:g")
    for bad, message in (("time", "needs a column"), ("random:x", "takes no column"), ("halves", "Unknown split")):
        with pytest.raises(ValueError, match=message):
            SearchConfig(target="y", split=bad)
    with pytest.raises(ValueError, match="three positive shares"):
        SearchConfig(target="y", split_ratio="50/50")
    with pytest.raises(ValueError, match="cannot also decide the split"):
        SearchConfig(target="y", split="group:y")
