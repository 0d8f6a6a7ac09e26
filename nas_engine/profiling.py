"""Profile a table read by ``dataset.read_table``: each column's kind, missing cells and
distribution, a preview of the first rows, and warnings about columns a model should not learn from
(IDs, constants, mostly-empty columns, likely target leaks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from nas_engine.dataset import DEFAULT_LIMITS, CsvLimits, read_table, task_for_numbers, unknown_column_error
from nas_engine.images import TARGET as IMAGE_TARGET
from nas_engine.images import read_image_meta, stored_arrays
from nas_engine.runtime import date_parts, missing_cells, parse_numbers

TOP_VALUES = 20  # a categorical distribution lists this many values; the rest are summed as "other"
HISTOGRAM_BINS = 20
PREVIEW_ROWS = 10
PREVIEW_CELL_CHARS = 200
ID_LIKE_MIN_ROWS = 20  # in a handful of rows every column can look unique
MOSTLY_MISSING_SHARE = 0.5
LEAK_MIN_CORRELATION = 0.98
LEAK_MAX_DISTINCT_SHARE = 0.1  # a column "determines" a target only if its values repeat (≤ 10 % distinct)
LEAK_MIN_PAIRED_ROWS = 10
# Leakage is checked on every ordered pair of columns: bounded so a wide file (784 pixel columns)
# still profiles in seconds. A leak shows in any few thousand rows, so a spread-out sample is used.
LEAK_MAX_COLUMNS = 200
LEAK_SAMPLE_ROWS = 5000
# A larger table's columns are described from a seeded random sample of this many rows (its row
# count, preview and every count stay exact or scaled to all rows): the profile of a million rows
# costs what a fifth of them costs.
PROFILE_SAMPLE_ROWS = 200_000


class WarningKind(StrEnum):
    ID_LIKE = "id_like"
    CONSTANT = "constant"
    MOSTLY_MISSING = "mostly_missing"


class LeakKind(StrEnum):
    CORRELATION = "correlation"
    MAPPING = "mapping"


@dataclass(frozen=True)
class Distribution:
    """How a column's values spread.

    ``kind="counts"``: rows per value (``labels``), most frequent first (numbers in numeric order);
    ``other`` rows hold the ``other_values`` values left off. ``kind="histogram"``: rows per bin,
    ``edges`` has one more entry than ``counts``.
    """

    kind: str
    counts: tuple[int, ...]
    labels: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    other: int = 0
    other_values: int = 0

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "counts": list(self.counts),
            "labels": list(self.labels),
            "edges": list(self.edges),
            "other": self.other,
            "other_values": self.other_values,
        }


@dataclass(frozen=True)
class ColumnProfile:
    """What one column holds. ``mean``/``min``/``max`` are None for categorical columns."""

    name: str
    kind: str
    missing: int
    unique: int
    examples: tuple[str, ...]
    suggested_task: str
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    distribution: Distribution | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "missing": self.missing,
            "unique": self.unique,
            "examples": list(self.examples),
            "suggested_task": self.suggested_task,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "distribution": None if self.distribution is None else self.distribution.to_dict(),
        }


@dataclass(frozen=True)
class ProfileWarning:
    """A column a model is better off without, whatever the target; ``message`` says what to do."""

    kind: WarningKind
    column: str
    message: str

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "column": self.column, "message": self.message}


@dataclass(frozen=True)
class LeakageSuspect:
    """``column`` (almost) determines ``target``: a model would lean on it, and it is often only
    known after the fact. ``correlation`` is Pearson's r for ``kind=correlation``."""

    target: str
    column: str
    kind: LeakKind
    message: str
    correlation: float | None = None

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "column": self.column,
            "kind": self.kind.value,
            "message": self.message,
            "correlation": self.correlation,
        }


@dataclass(frozen=True)
class DatasetProfile:
    """Row count, per-column profiles, warnings and a preview of a CSV file.

    ``leakage`` lists suspects for every column as a possible target; ``leakage_checked`` is False
    when the file had too many columns to check (over ``LEAK_MAX_COLUMNS``).
    """

    rows: int
    columns: tuple[ColumnProfile, ...]
    warnings: tuple[ProfileWarning, ...] = ()
    leakage: tuple[LeakageSuspect, ...] = ()
    leakage_checked: bool = True
    preview: tuple[tuple[str, ...], ...] = ()
    sampled_rows: int | None = None  # the columns were described from a random sample of this many rows

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            **({"sampled_rows": self.sampled_rows} if self.sampled_rows else {}),
            "columns": [c.to_dict() for c in self.columns],
            "warnings": [w.to_dict() for w in self.warnings],
            "leakage": [s.to_dict() for s in self.leakage],
            "leakage_checked": self.leakage_checked,
            "preview": [list(row) for row in self.preview],
        }

    def column(self, name: str) -> ColumnProfile:
        """Return the profile of column ``name``.

        Raises:
            DatasetError: No column has that name.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise unknown_column_error(name, [c.name for c in self.columns])

    def leakage_for(self, target: str) -> list[LeakageSuspect]:
        """The leakage suspects when ``target`` is the column to predict."""
        return [suspect for suspect in self.leakage if suspect.target == target]


@dataclass(frozen=True)
class _Cells:
    """One column's cells, parsed once per distinct value (not per row: a numeric column of two
    million rows often has a few thousand distinct cells)."""

    raw: pd.Series
    clean: dict[str, str | None]  # raw distinct cell -> stripped text, None when it means "missing"
    counts: dict[str, int]  # present value -> rows holding it, in order of first appearance
    numbers: dict[str, float] | None  # present value -> its number, when every present value is one
    missing: int

    @classmethod
    def of(cls, values: Sequence[str] | pd.Series) -> _Cells:
        raw = pd.Series(values, dtype=str)
        distinct = raw.value_counts(sort=False)  # distinct cells in order of first appearance
        cells = distinct.index.to_numpy(dtype=object)
        stripped = np.array([cell.strip() for cell in cells.tolist()], dtype=object)
        absent = missing_cells(stripped)
        clean: dict[str, str | None] = {
            cell: None if gone else value
            for cell, value, gone in zip(cells.tolist(), stripped.tolist(), absent.tolist(), strict=True)
        }
        present = ~absent
        # Cells that strip to the same value are one value, counted where it first appears.
        grouped = pd.Series(distinct.to_numpy()[present], index=stripped[present]).groupby(level=0, sort=False).sum()
        counts: dict[str, int] = dict(zip(grouped.index.tolist(), grouped.tolist(), strict=True))
        numbers = None
        if counts:
            parsed = parse_numbers(grouped.index.to_numpy(dtype=object))
            if not np.isnan(parsed).any():
                numbers = dict(zip(grouped.index.tolist(), parsed.tolist(), strict=True))
        return cls(raw=raw, clean=clean, counts=counts, numbers=numbers, missing=int(distinct.to_numpy()[absent].sum()))

    def sampled(self, rows: np.ndarray) -> pd.Series:
        """The stripped cells of ``rows``, NaN where missing."""
        return self.raw.iloc[rows].map(self.clean)


def _pixel_cells(column: np.ndarray) -> _Cells:
    """The ``_Cells`` a column of uint8 pixels would give as text (``str(value)`` cells, counted in
    the order they first appear), from the array: 256 values at most, never a string per row."""
    counts = np.bincount(column, minlength=256)
    order = pd.unique(column)  # values in order of first appearance
    texts = {int(v): str(int(v)) for v in order}
    return _Cells(
        raw=pd.Series([], dtype=str),  # not read for an image set: no warnings, leaks or preview
        clean={text: text for text in texts.values()},
        counts={texts[int(v)]: int(counts[v]) for v in order},
        numbers={text: float(value) for value, text in texts.items()},
        missing=0,
    )


def _image_set_cells(path: Path, meta: dict, *, max_rows: int | None) -> tuple[int, dict[str, _Cells]]:
    """An image set's columns as ``_Cells``, the pixels straight from their uint8 array."""
    x, y = stored_arrays(path, meta)
    if max_rows is not None:
        x, y = x[:max_rows], y[:max_rows]
    flat = x.reshape(len(x), -1)
    cells = {name: _pixel_cells(flat[:, j]) for j, name in enumerate(meta["columns"])}
    cells[IMAGE_TARGET] = _Cells.of(y.astype(object))
    return len(x), cells


def _describe(name: str, cells: _Cells) -> ColumnProfile:
    column = partial(
        ColumnProfile,
        name=name,
        missing=cells.missing,
        unique=len(cells.counts),
        examples=tuple(list(cells.counts)[:3]),
    )
    if cells.numbers is None:
        pairs = list(cells.counts.items())
        return column(
            kind="categorical", suggested_task="classification", distribution=_value_counts(pairs) if pairs else None
        )
    weights = np.fromiter(cells.counts.values(), dtype=float, count=len(cells.counts))
    values = np.fromiter((cells.numbers[v] for v in cells.counts), dtype=float, count=len(cells.counts))
    task = task_for_numbers(set(values.tolist()))
    if task == "classification":
        # "1" and "1.0" are one class; classes show in numeric order (0, 1, 2), not by frequency.
        by_number: dict[float, int] = {}
        for number, count in zip(values.tolist(), cells.counts.values(), strict=True):
            by_number[number] = by_number.get(number, 0) + count
        distribution = _value_counts([(_format_number(n), c) for n, c in sorted(by_number.items())], keep_order=True)
    else:
        distribution = _histogram(values, weights)
    return column(
        kind="numeric",
        suggested_task=task,
        mean=float(np.average(values, weights=weights)),
        min=float(values.min()),
        max=float(values.max()),
        distribution=distribution,
    )


def _value_counts(pairs: list[tuple[str, int]], *, keep_order: bool = False) -> Distribution:
    """Counts of the TOP_VALUES most frequent values (in the given order if ``keep_order``)."""
    top = sorted(pairs, key=lambda pair: -pair[1])[:TOP_VALUES]  # sorted() is stable: ties keep order
    if keep_order:
        kept = {label for label, _ in top}
        top = [pair for pair in pairs if pair[0] in kept]
    rest = sum(count for _, count in pairs) - sum(count for _, count in top)
    return Distribution(
        kind="counts",
        labels=tuple(label for label, _ in top),
        counts=tuple(count for _, count in top),
        other=rest,
        other_values=len(pairs) - len(top),
    )


def _histogram(values: np.ndarray, weights: np.ndarray) -> Distribution:
    low, high = float(values.min()), float(values.max())
    bins: int | list[float] = HISTOGRAM_BINS if high > low else [low - 0.5, high + 0.5]
    counts, edges = np.histogram(values, bins=bins, weights=weights)
    return Distribution(
        kind="histogram", counts=tuple(int(c) for c in counts), edges=tuple(float(f"{e:.10g}") for e in edges)
    )


def _format_number(number: float) -> str:
    return str(int(number)) if number.is_integer() else f"{number:.6g}"


def _column_warnings(column: ColumnProfile, cells: _Cells, rows: int) -> list[ProfileWarning]:
    name = column.name
    if column.missing == rows:
        return [ProfileWarning(WarningKind.MOSTLY_MISSING, name, f"'{name}' is empty in every row; remove it.")]
    found = []
    if column.missing / rows > MOSTLY_MISSING_SHARE:
        share = round(100 * column.missing / rows)
        found.append(
            ProfileWarning(
                WarningKind.MOSTLY_MISSING,
                name,
                f"'{name}' is missing in {share}% of rows, so a model mostly sees guesses for it. Fill it in "
                "or remove it.",
            )
        )
    if column.unique == 1:
        besides = " besides empty cells" if column.missing else ""
        found.append(
            ProfileWarning(
                WarningKind.CONSTANT,
                name,
                f"'{name}' holds only one value ('{column.examples[0]}'){besides}, so it tells a model little; "
                "you can remove it.",
            )
        )
    whole = cells.numbers is None or all(n.is_integer() for n in cells.numbers.values())
    dates = column.kind != "numeric" and all(date_parts(e) is not None for e in column.examples)
    if rows >= ID_LIKE_MIN_ROWS and column.missing == 0 and column.unique == rows and whole and not dates:
        found.append(
            ProfileWarning(
                WarningKind.ID_LIKE,
                name,
                f"'{name}' has a different value in every row, like an ID. It cannot help predict new rows "
                "(a model may memorise it instead): remove it, and do not choose it as the target.",
            )
        )
    return found


def _leakage(frame_cells: dict[str, _Cells], columns: Sequence[ColumnProfile], rows: int) -> list[LeakageSuspect]:
    """Every (target, column) pair where the column almost determines the target, on a sample of rows."""
    sample = np.unique(np.linspace(0, rows - 1, min(rows, LEAK_SAMPLE_ROWS)).round().astype(int))
    names = [c.name for c in columns]
    suspects: dict[tuple[str, str], LeakageSuspect] = {}
    for suspect in [*_mapping_suspects(frame_cells, columns, sample), *_correlation_suspects(frame_cells, sample)]:
        suspects.setdefault((suspect.target, suspect.column), suspect)
    order = {name: i for i, name in enumerate(names)}
    return sorted(suspects.values(), key=lambda s: (order[s.target], order[s.column]))


def _correlation_suspects(frame_cells: dict[str, _Cells], sample: np.ndarray) -> list[LeakageSuspect]:
    numeric = {
        name: cells.sampled(sample).map(cells.numbers).to_numpy(dtype=float)
        for name, cells in frame_cells.items()
        if cells.numbers is not None and len(cells.counts) > 1
    }
    if len(numeric) < 2:
        return []
    correlations = pd.DataFrame(numeric).corr(min_periods=LEAK_MIN_PAIRED_ROWS)
    found = []
    for target in correlations.columns:
        for column in correlations.index:
            r = correlations.at[column, target]
            if column != target and np.isfinite(r) and abs(r) >= LEAK_MIN_CORRELATION:
                found.append(
                    LeakageSuspect(
                        target=target,
                        column=column,
                        kind=LeakKind.CORRELATION,
                        correlation=round(float(r), 4),
                        message=(
                            f"'{column}' almost determines '{target}' (correlation {r:+.3f}). If it is only "
                            f"known after '{target}', or is computed from it, a model will look perfect here and "
                            "fail on new data: remove it before searching."
                        ),
                    )
                )
    return found


def _mapping_suspects(
    frame_cells: dict[str, _Cells], columns: Sequence[ColumnProfile], sample: np.ndarray
) -> list[LeakageSuspect]:
    """Columns with few distinct values, each of which goes with a single value of the target."""
    names = list(frame_cells)
    codes = np.column_stack([_codes(frame_cells[name], sample) for name in names])
    found = []
    for c_index, column in enumerate(columns):
        present = codes[:, c_index] >= 0
        order = np.argsort(codes[present, c_index], kind="stable")
        keys = codes[present, c_index][order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])  # one group per value of the column
        if not 2 <= len(starts) <= LEAK_MAX_DISTINCT_SHARE * len(keys):
            continue
        targets = codes[present][order]
        lowest = np.minimum.reduceat(np.where(targets < 0, np.iinfo(np.int64).max, targets), starts, axis=0)
        highest = np.maximum.reduceat(targets, starts, axis=0)
        single = ((highest <= lowest) | (highest < 0)).all(axis=0)  # each group: one target value (or none)
        paired = (targets >= 0).sum(axis=0) >= LEAK_MIN_PAIRED_ROWS
        for t_index in np.flatnonzero(single & paired):
            if t_index == c_index or np.unique(lowest[highest[:, t_index] >= 0, t_index]).size < 2:
                continue
            target = names[t_index]
            found.append(
                LeakageSuspect(
                    target=target,
                    column=column.name,
                    kind=LeakKind.MAPPING,
                    message=(
                        f"Each of the {column.unique} values of '{column.name}' goes with a single value of "
                        f"'{target}', so it gives the answer away. If it is recorded after '{target}', or is "
                        "derived from it, remove it before searching."
                    ),
                )
            )
    return found


def _codes(cells: _Cells, sample: np.ndarray) -> np.ndarray:
    """Integer codes of the sampled cells, -1 where missing."""
    codes, _ = pd.factorize(cells.sampled(sample))  # NaN (missing) gets -1
    return codes.astype(np.int64)


def _preview(frame: pd.DataFrame) -> tuple[tuple[str, ...], ...]:
    def cut(cell: str) -> str:
        return cell if len(cell) <= PREVIEW_CELL_CHARS else cell[: PREVIEW_CELL_CHARS - 1] + "…"

    return tuple(tuple(cut(str(cell)) for cell in row) for row in frame.head(PREVIEW_ROWS).itertuples(index=False))


def profile_csv(path: str | Path, *, max_rows: int | None = None, limits: CsvLimits = DEFAULT_LIMITS) -> DatasetProfile:
    """Read a CSV file and describe every column, with warnings and a preview.

    An image set is profiled too, without warnings, leakage checks (``leakage_checked=False``) or
    preview: its pixel columns would flood them (a border pixel is often constant, say).

    Args:
        path: The CSV file or an image set.
        max_rows: Profile only the first ``max_rows`` data rows (``rows`` then counts those).
        limits: Bounds on columns, rows and cell sizes (``DEFAULT_LIMITS`` unless given).

    Returns:
        The profile.

    Raises:
        DatasetError: The file cannot be used as a dataset; the message says why.
    """
    meta = read_image_meta(path)
    if meta is not None:
        rows, image_cells = _image_set_cells(Path(path), meta, max_rows=max_rows)
        columns = tuple(_describe(name, cells) for name, cells in image_cells.items())
        return DatasetProfile(rows=rows, columns=columns, leakage_checked=False)
    frame = read_table(path, max_rows=max_rows, limits=limits)
    rows = len(frame)
    sample = frame
    if rows > PROFILE_SAMPLE_ROWS:
        chosen = np.sort(np.random.default_rng(0).choice(rows, PROFILE_SAMPLE_ROWS, replace=False))
        sample = frame.iloc[chosen].reset_index(drop=True)
    frame_cells = {name: _Cells.of(sample[name]) for name in sample.columns}
    described = tuple(_describe(name, cells) for name, cells in frame_cells.items())
    # Warnings and leaks are judged on the rows described (shares, and "a different value in every
    # row"); a sample's counts (missing cells, each bar of a distribution) are scaled to every row.
    counted = len(sample)
    warnings = [w for column in described for w in _column_warnings(column, frame_cells[column.name], counted)]
    checked = len(described) <= LEAK_MAX_COLUMNS
    return DatasetProfile(
        rows=rows,
        columns=described if counted == rows else tuple(_scaled(column, rows / counted) for column in described),
        warnings=tuple(warnings),
        leakage=tuple(_leakage(frame_cells, described, counted)) if checked else (),
        leakage_checked=checked,
        preview=_preview(frame),
        sampled_rows=counted if counted < rows else None,
    )


def _scaled(column: ColumnProfile, factor: float) -> ColumnProfile:
    """A sampled column's counts (missing cells, each bar of its distribution) times ``factor``."""
    counts = column.distribution
    if counts is not None:
        counts = replace(
            counts, counts=tuple(round(c * factor) for c in counts.counts), other=round(counts.other * factor)
        )
    return replace(column, missing=round(column.missing * factor), distribution=counts)
