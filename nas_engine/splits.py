"""How a table's rows are divided into training, validation and test rows.

A split is named by text, as the CLI's ``--split`` and the web form take it:

- ``random``: at random, stratified by class for classification (the default);
- ``time:COL``: by the dates or times in column COL: the oldest rows train, the newest are the
  test rows and the ones just before them validate, so a model is judged on a later period than
  it learnt from (rows whose time cannot be read train);
- ``group:COL``: whole groups of column COL (e.g. a person or a shop id) go to one split each, so
  no group is both learnt and judged;
- ``column:COL``: the user's own split: COL says ``train``, ``validation`` (or ``valid``, ``val``)
  or ``test`` for each row. That column is never a model input.

``ratio`` is the train/validation/test shares ``(60, 20, 20)``-style; the ``column`` split ignores it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nas_engine.errors import DatasetError
from nas_engine.runtime import is_missing, parse_number

SPLIT_KINDS = ("random", "time", "group", "column")
SPLIT_NAMES = {"train": 0, "training": 0, "validation": 1, "valid": 1, "val": 1, "test": 2}
MIN_GROUPS = 3  # one group per split at least
MIN_TIME_SHARE = 0.5  # a time column must read as times on at least this share of rows
DEFAULT_RATIO = (60, 20, 20)


@dataclass(frozen=True)
class Split:
    """A parsed split choice: its kind and column (None for ``random``)."""

    kind: str
    column: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> Split:
        """``random``, ``time:COL``, ``group:COL`` or ``column:COL``.

        Raises:
            ValueError: An unknown kind, or a kind that needs a column without one.
        """
        text = (text or "random").strip()
        kind, _, column = text.partition(":")
        if kind not in SPLIT_KINDS:
            raise ValueError(f"Unknown split '{text}'; use random, time:COLUMN, group:COLUMN or column:COLUMN.")
        if kind == "random":
            if column:
                raise ValueError("A random split takes no column; write just 'random'.")
            return cls("random")
        if not column:
            raise ValueError(f"A {kind} split needs a column: write {kind}:COLUMN.")
        return cls(kind, column)

    def __str__(self) -> str:
        return self.kind if self.column is None else f"{self.kind}:{self.column}"

    def words(self) -> str:
        """The split in a few words, for the job page and the model card."""
        return {
            "random": "at random, stratified by class for classification",
            "time": f"by time: the newest rows of {self.column} are the test rows, those just before them validate",
            "group": f"by group: each value of {self.column} is in one split only",
            "column": f"as column {self.column} says",
        }[self.kind]


def parse_ratio(text: str | Sequence[float] | None) -> tuple[float, float]:
    """``"60/20/20"`` (or three numbers) as ``(validation, test)`` fractions.

    Raises:
        ValueError: Not three positive shares.
    """
    if text is None:
        parts: Sequence[float] = DEFAULT_RATIO
    elif isinstance(text, str):
        try:
            parts = [float(p) for p in text.replace(",", "/").split("/")]
        except ValueError:
            raise ValueError(f"Split ratio '{text}' is not three numbers like 60/20/20.") from None
    else:
        parts = list(text)
    if len(parts) != 3 or not all(p > 0 for p in parts):
        raise ValueError(f"Split ratio '{text}' must be three positive shares like 60/20/20 (train/validation/test).")
    total = sum(parts)
    return parts[1] / total, parts[2] / total


def split_rows(
    frame: pd.DataFrame,
    split: Split,
    *,
    rng: np.random.Generator,
    val_fraction: float,
    test_fraction: float,
    strata: list[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, validation, test) of the rows of ``frame``.

    Raises:
        DatasetError: The column is missing or cannot split this way (one group, no dates, an
            unknown split name, an empty split).
    """
    if split.column is None:
        return random_split(len(frame), rng, val_fraction, test_fraction, strata)
    if split.column not in frame.columns:
        raise DatasetError(f"Column '{split.column}' of the {split.kind} split is not in this dataset.")
    if split.kind == "time":
        parts = _by_time(frame[split.column].tolist(), split.column, val_fraction, test_fraction)
    elif split.kind == "group":
        parts = _by_group(frame[split.column].tolist(), split.column, rng, val_fraction, test_fraction)
    else:
        parts = _by_column(frame[split.column].tolist(), split.column)
    for name, part in zip(("training", "validation", "test"), parts, strict=True):
        if not len(part):
            raise DatasetError(f"The {split.kind} split by '{split.column}' leaves no {name} rows.")
    return parts


def random_split(n, rng, val_fraction, test_fraction, strata):
    """Return index arrays (train, val, test); stratified when every class has 2+ rows."""
    if strata is not None and min(Counter(strata).values()) >= 2:
        parts: tuple[list, list, list] = ([], [], [])
        labels = np.asarray(strata)
        for label in sorted(set(labels.tolist())):
            idx = rng.permutation(np.flatnonzero(labels == label))
            n_test, n_val = round(len(idx) * test_fraction), round(len(idx) * val_fraction)
            parts[2].extend(idx[:n_test])
            parts[1].extend(idx[n_test : n_test + n_val])
            parts[0].extend(idx[n_test + n_val :])
        if all(parts):
            return tuple(rng.permutation(np.array(p, dtype=np.int64)) for p in parts)
    idx = rng.permutation(n)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    return idx[n_test + n_val :], idx[n_test : n_test + n_val], idx[:n_test]


def read_times(cells: list[str]) -> np.ndarray:
    """The cells as times: numbers as they are (a year, a day number, epoch seconds), else dates
    and times as nanoseconds since 1970; NaN where a cell is neither."""
    numbers = [parse_number(c) for c in cells]
    if sum(v is not None for v in numbers) >= MIN_TIME_SHARE * len(cells):
        return np.array([np.nan if v is None else v for v in numbers], dtype=np.float64)
    text = pd.Series([None if is_missing(c) else c.strip() for c in cells], dtype=object)
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    values = parsed.astype("int64").to_numpy(dtype=np.float64)
    values[parsed.isna().to_numpy()] = np.nan
    return values


def _by_time(cells: list[str], column: str, val_fraction: float, test_fraction: float):
    times = read_times(cells)
    known = np.flatnonzero(~np.isnan(times))
    if len(known) < MIN_TIME_SHARE * len(cells) or len(np.unique(times[known])) < 3:
        raise DatasetError(
            f"Column '{column}' does not hold dates or times (only {len(known):,} of {len(cells):,} rows read as "
            "one): a time split needs a date column."
        )
    order = known[np.argsort(times[known], kind="stable")]
    n_test, n_val = max(1, round(len(order) * test_fraction)), max(1, round(len(order) * val_fraction))
    unknown = np.flatnonzero(np.isnan(times))
    train = np.concatenate([order[: len(order) - n_test - n_val], unknown])
    return np.sort(train), order[len(order) - n_test - n_val : len(order) - n_test], order[len(order) - n_test :]


def _by_group(cells: list[str], column: str, rng, val_fraction: float, test_fraction: float):
    keys = np.array([c.strip() for c in cells], dtype=object)
    groups, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
    if len(groups) < MIN_GROUPS:
        raise DatasetError(
            f"Column '{column}' has {len(groups)} distinct value{'s' if len(groups) != 1 else ''}: a group split "
            f"needs at least {MIN_GROUPS} groups, one for each split."
        )
    order = rng.permutation(len(groups))
    assigned = np.zeros(len(groups), dtype=np.int64)  # 0 train, 1 validation, 2 test
    filled, n = 0, len(keys)
    for position, g in enumerate(order):  # test first, then validation, until each holds its share
        left = len(order) - position
        if filled < test_fraction * n and left > 2:
            assigned[g] = 2
        elif filled < (test_fraction + val_fraction) * n and left > 1:
            assigned[g] = 1
        else:
            break
        filled += sizes[g]
    rows = assigned[inverse]
    return tuple(np.flatnonzero(rows == k) for k in (0, 1, 2))


def _by_column(cells: list[str], column: str):
    names = [c.strip().lower() for c in cells]
    unknown = sorted({c for c in names if c not in SPLIT_NAMES})
    if unknown:
        shown = ", ".join(f"'{u}'" for u in unknown[:5])
        raise DatasetError(f"Column '{column}' must say train, validation or test on every row; it also holds {shown}.")
    rows = np.array([SPLIT_NAMES[c] for c in names], dtype=np.int64)
    return tuple(np.flatnonzero(rows == k) for k in (0, 1, 2))
