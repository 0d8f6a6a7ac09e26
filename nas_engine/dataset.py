"""Read an uploaded CSV safely (structure, encoding, size limits) and profile it: each column's kind,
missing cells and distribution, a preview of the first rows, and warnings about columns a model
should not learn from (IDs, constants, mostly-empty columns, likely target leaks)."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from nas_engine.errors import DatasetError
from nas_engine.images import read_image_meta, read_image_table
from nas_engine.runtime import is_missing, parse_number

MAX_CLASSES_FOR_NUMBERS = 20  # integer targets with more distinct values are treated as quantities
MIN_DATA_ROWS = 2
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
_CSV_FIELD_LIMIT_CAP = 2**31 - 1  # the C long that csv.field_size_limit accepts everywhere
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive or an Excel workbook (.xlsx)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"\x1f\x8b": "a gzip archive",
    b"%PDF": "a PDF document",
}
_SAVE_AS_UTF8 = "Save it as UTF-8 (in Excel: Save As → 'CSV UTF-8 (Comma delimited)') and upload it again."


@dataclass(frozen=True)
class CsvLimits:
    """Upper bounds an uploaded CSV must respect; None means no bound.

    ``max_name_chars`` defaults to 255 because a search stores its target column name in 255 characters.
    """

    max_columns: int | None = 2000
    max_rows: int | None = 2_000_000
    max_field_chars: int | None = 100_000
    max_name_chars: int | None = 255


DEFAULT_LIMITS = CsvLimits()
NO_LIMITS = CsvLimits(max_columns=None, max_rows=None, max_field_chars=None, max_name_chars=None)


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

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
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


def unknown_column_error(name: str, columns: Iterable[str]) -> DatasetError:
    """Build the error for a column name that is not in the dataset."""
    return DatasetError(f"Column '{name}' is not in the dataset. Columns: {', '.join(columns)}.")


def is_numeric(values: Iterable[str]) -> bool:
    """Return True when every non-missing cell is a number and there is at least one."""
    present = [v for v in values if not is_missing(v)]
    return bool(present) and all(parse_number(v) is not None for v in present)


def detect_task(values: Iterable[str]) -> str:
    """Guess the task a column calls for if it were the target.

    Non-numeric → classification; whole numbers with at most 20 distinct values →
    classification; any other numbers → regression.

    Args:
        values: Raw cells of the column.

    Returns:
        ``"classification"`` or ``"regression"``.
    """
    values = list(values)
    if not is_numeric(values):
        return "classification"
    # Every present cell parses (is_numeric); missing ones parse to None and are left out.
    return _task_for_numbers({number for v in values if (number := parse_number(v)) is not None})


def _task_for_numbers(numbers: set[float]) -> str:
    if all(n.is_integer() for n in numbers) and len(numbers) <= MAX_CLASSES_FOR_NUMBERS:
        return "classification"
    return "regression"


# --- reading -------------------------------------------------------------------------------------


def read_table(path: str | Path, *, max_rows: int | None = None, limits: CsvLimits = NO_LIMITS) -> pd.DataFrame:
    """Read a CSV file (or a stored image set) as raw text cells, rejecting what cannot be a dataset.

    Args:
        path: The CSV file, or an image set (see ``images.convert_image_upload``): it reads as its
            pixel columns then ``label``, and ``limits`` do not apply (the conversion bounded it,
            and 3×32×32 pixels are more columns than a CSV may have).
        max_rows: Read at most this many data rows.
        limits: Bounds on columns, rows and cell sizes. No bounds by default: files already
            accepted by ``profile_csv`` are read again with this.

    Returns:
        A DataFrame of strings (missing cells are empty strings).

    Raises:
        DatasetError: The file is missing, empty, not UTF-8 CSV text, has bad headers, rows of the
            wrong length, too few rows, or breaks a limit; the message says which line and what to do.
    """
    path = Path(path)
    if read_image_meta(path) is not None:
        return read_image_table(path, max_rows=max_rows)
    _check_bytes(path)
    _check_structure(path, max_rows=max_rows, limits=limits)
    try:
        # header=None so duplicate names reach us intact (pandas would rename them 'a.1').
        frame = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            nrows=None if max_rows is None else max_rows + 1,
            skip_blank_lines=True,
        )
    except UnicodeDecodeError:
        raise _encoding_error(path) from None
    except pd.errors.EmptyDataError:
        raise DatasetError("The file is empty.") from None
    except pd.errors.ParserError as exc:
        # _check_structure read the same file with Python's csv module; pandas rarely disagrees.
        reason = str(exc).split("C error: ")[-1].strip()
        raise DatasetError(f"The file does not look like a CSV: {reason}") from None
    header = [str(name) for name in frame.iloc[0].fillna("")]
    frame = frame.iloc[1:].fillna("").reset_index(drop=True)
    frame.columns = header
    return frame


def _check_bytes(path: Path) -> None:
    """Reject, from the first bytes, files that are missing, empty, binary or not UTF-8 at all."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except FileNotFoundError:
        raise DatasetError(f"The file '{path.name}' was not found.") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 (Excel's "Unicode text"), also full of NULs
        raise DatasetError(f"The file is UTF-16 text, but NAS Studio reads UTF-8. {_SAVE_AS_UTF8}")
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise DatasetError("The file is empty.")
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise DatasetError(
                f"The file does not look like a CSV: it is {what}. Open it in its program and save it as "
                "CSV (in Excel: Save As → 'CSV UTF-8 (Comma delimited)')."
            )
    if b"\x00" in head:
        raise DatasetError("The file does not look like a CSV: it contains binary data.")


def _check_structure(path: Path, *, max_rows: int | None, limits: CsvLimits) -> None:
    """Stream the file once with Python's csv module (it counts physical lines, so messages can say
    which line) and check the header, every row's length and cell sizes, and the row count."""
    # csv refuses cells over its own process-wide limit (131,072 characters by default). It is only
    # ever raised here, never lowered, so other readers in the process keep working; our own limit
    # is checked on each row below.
    needed = _CSV_FIELD_LIMIT_CAP if limits.max_field_chars is None else limits.max_field_chars + 1
    if csv.field_size_limit() < needed:
        csv.field_size_limit(needed)
    header: list[str] | None = None
    rows = 0
    line = 0  # the last physical line read so far
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            for record in reader:
                start, line = line + 1, reader.line_num
                if not record:
                    continue  # a blank line; pandas skips these too
                if header is None:
                    header = record
                    _check_header(header, limits)
                    continue
                _check_row(record, header, start, limits)
                rows += 1
                if limits.max_rows is not None and rows > limits.max_rows:
                    raise DatasetError(
                        f"The file has more than {limits.max_rows:,} data rows, the most this server accepts. "
                        "Upload a sample of the rows."
                    )
                if max_rows is not None and rows >= max_rows:
                    break
    except UnicodeDecodeError:
        raise _encoding_error(path) from None
    except csv.Error as exc:
        raise _csv_error(exc, line + 1, limits) from None
    if header is None:
        raise DatasetError("The file is empty.")
    if rows == 0:
        raise DatasetError("The CSV has a header but no data rows.")
    if rows < MIN_DATA_ROWS:
        raise DatasetError(
            "The CSV has only one data row. A model learns from many rows: add more (at least 10 to train and "
            "test one)."
        )


def _check_header(header: list[str], limits: CsvLimits) -> None:
    if len(header) < 2:
        raise DatasetError(
            "The dataset needs at least two columns (features and a target); it has "
            f"{len(header)}. If it uses ';' or tabs as separators, save it as comma-separated."
        )
    if limits.max_columns is not None and len(header) > limits.max_columns:
        raise DatasetError(
            f"The file has {len(header):,} columns; this server accepts at most {limits.max_columns:,}. "
            "Remove the columns you do not need."
        )
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise DatasetError(f"Column {position} has no name; every column needs a header.")
        if limits.max_name_chars is not None and len(name) > limits.max_name_chars:
            raise DatasetError(
                f"The name of column {position} is {len(name):,} characters long; names can have at most "
                f"{limits.max_name_chars:,}. Is the first line really a header?"
            )
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DatasetError(f"Column names must be unique; repeated: {', '.join(duplicates)}.")


def _check_row(record: list[str], header: list[str], line: int, limits: CsvLimits) -> None:
    if len(record) != len(header):
        raise DatasetError(
            f"Line {line} has {len(record)} value{'s' if len(record) != 1 else ''} but the header has "
            f"{len(header)} columns. Every row needs one value per column (leave a cell empty, not out); "
            "a comma inside a value needs quotes around the value."
        )
    limit = limits.max_field_chars
    if limit is not None and max(map(len, record)) > limit:
        position = next(i for i, cell in enumerate(record) if len(cell) > limit)
        raise DatasetError(
            f"Line {line}, column '{header[position]}' has a value of {len(record[position]):,} characters; "
            f'a cell can have at most {limit:,}. Is a quote (") left open before it?'
        )


def _csv_error(exc: csv.Error, line: int, limits: CsvLimits) -> DatasetError:
    reason = str(exc)
    if "field larger than field limit" in reason:
        return DatasetError(
            f"Line {line} has a value longer than {limits.max_field_chars or csv.field_size_limit():,} "
            'characters. Is a quote (") left open before it?'
        )
    if "unexpected end of data" in reason:
        return DatasetError(f'A quote (") opened on line {line} is never closed; close it or remove it.')
    return DatasetError(f"The file does not look like a CSV: line {line}: {reason}.")


def _encoding_error(path: Path) -> DatasetError:
    line, byte = _first_bad_utf8(path)
    where = f"line {line} has a byte (0x{byte:02X}) that" if line else "it has bytes that"
    return DatasetError(
        f"The file is not UTF-8 text: {where} UTF-8 does not allow, so it was probably saved in another "
        f"encoding such as Windows-1252 or Latin-1. {_SAVE_AS_UTF8}"
    )


def _first_bad_utf8(path: Path) -> tuple[int, int]:
    """The line and value of the first byte that is not UTF-8, or (0, 0) if none is found."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            # The decoder holds back a character cut by the previous chunk; exc.start counts from there.
            data = decoder.getstate()[0] + chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + data.count(b"\n", 0, exc.start), data[exc.start]
            line += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return line, 0
    return 0, 0


# --- profiling -----------------------------------------------------------------------------------


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
        clean: dict[str, str | None] = {}
        counts: dict[str, int] = {}
        missing = 0
        distinct = raw.value_counts(sort=False)
        for cell, rows in zip(distinct.index.tolist(), distinct.tolist(), strict=True):
            value = cell.strip()
            if is_missing(value):
                clean[cell], missing = None, missing + rows
            else:
                clean[cell] = value
                counts[value] = counts.get(value, 0) + rows
        parsed = {value: parse_number(value) for value in counts}
        numbers = None
        if parsed and all(n is not None for n in parsed.values()):
            numbers = {value: float(n) for value, n in parsed.items() if n is not None}
        return cls(raw=raw, clean=clean, counts=counts, numbers=numbers, missing=missing)

    def sampled(self, rows: np.ndarray) -> pd.Series:
        """The stripped cells of ``rows``, NaN where missing."""
        return self.raw.iloc[rows].map(self.clean)


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
    task = _task_for_numbers(set(values.tolist()))
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
    if rows >= ID_LIKE_MIN_ROWS and column.missing == 0 and column.unique == rows and whole:
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
    frame = read_table(path, max_rows=max_rows, limits=limits)
    rows = len(frame)
    frame_cells = {name: _Cells.of(frame[name]) for name in frame.columns}
    columns = tuple(_describe(name, cells) for name, cells in frame_cells.items())
    if read_image_meta(path) is not None:
        return DatasetProfile(rows=rows, columns=columns, leakage_checked=False)
    warnings = [w for column in columns for w in _column_warnings(column, frame_cells[column.name], rows)]
    checked = len(columns) <= LEAK_MAX_COLUMNS
    return DatasetProfile(
        rows=rows,
        columns=columns,
        warnings=tuple(warnings),
        leakage=tuple(_leakage(frame_cells, columns, rows)) if checked else (),
        leakage_checked=checked,
        preview=_preview(frame),
    )
