"""Read an uploaded CSV safely and describe its columns (kinds, missing cells, suggested task)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from nas_engine.errors import DatasetError
from nas_engine.runtime import is_missing, parse_number

MAX_CLASSES_FOR_NUMBERS = 20  # integer targets with more distinct values are treated as quantities


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

    def to_dict(self) -> dict:
        data = asdict(self)
        data["examples"] = list(self.examples)
        return data


@dataclass(frozen=True)
class DatasetProfile:
    """Row count and per-column profiles of a CSV file."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    def column(self, name: str) -> ColumnProfile:
        """Return the profile of column ``name``.

        Raises:
            DatasetError: No column has that name.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise unknown_column_error(name, [c.name for c in self.columns])


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
    numbers = {number for v in values if (number := parse_number(v)) is not None}
    if all(n.is_integer() for n in numbers) and len(numbers) <= MAX_CLASSES_FOR_NUMBERS:
        return "classification"
    return "regression"


def read_table(path: str | Path, *, max_rows: int | None = None) -> pd.DataFrame:
    """Read a CSV file as raw text cells, rejecting what cannot be a dataset.

    Args:
        path: The CSV file.
        max_rows: Read at most this many data rows.

    Returns:
        A DataFrame of strings (missing cells are empty strings).

    Raises:
        DatasetError: The file is missing, empty, not a CSV, or has bad headers.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except FileNotFoundError:
        raise DatasetError(f"The file '{path.name}' was not found.") from None
    if not head.strip():
        raise DatasetError("The file is empty.")
    if b"\x00" in head:
        raise DatasetError("The file does not look like a CSV: it contains binary data.")
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
        raise DatasetError("The file does not look like a CSV: it is not UTF-8 text.") from None
    except pd.errors.EmptyDataError:
        raise DatasetError("The file is empty.") from None
    except pd.errors.ParserError as exc:
        reason = str(exc).split("C error: ")[-1].strip()
        raise DatasetError(f"The file does not look like a CSV: {reason}") from None
    header = [str(name) for name in frame.iloc[0].fillna("")]
    _check_header(header)
    frame = frame.iloc[1:].fillna("").reset_index(drop=True)
    frame.columns = header
    if frame.empty:
        raise DatasetError("The CSV has a header but no data rows.")
    return frame


def _check_header(header: list[str]) -> None:
    if len(header) < 2:
        raise DatasetError(
            "The dataset needs at least two columns (features and a target); it has "
            f"{len(header)}. If it uses ';' or tabs as separators, save it as comma-separated."
        )
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise DatasetError(f"Column {position} has no name; every column needs a header.")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DatasetError(f"Column names must be unique; repeated: {', '.join(duplicates)}.")


def profile_column(name: str, values: list[str]) -> ColumnProfile:
    """Describe one column from its raw cells."""
    present = [v.strip() for v in values if not is_missing(v)]
    examples = tuple(dict.fromkeys(present))[:3]
    profile = partial(
        ColumnProfile,
        name=name,
        missing=len(values) - len(present),
        unique=len(set(present)),
        examples=examples,
        suggested_task=detect_task(values),
    )
    if not is_numeric(values):
        return profile(kind="categorical")
    numbers = [number for v in present if (number := parse_number(v)) is not None]  # all of them (is_numeric)
    return profile(
        kind="numeric",
        mean=float(statistics.fmean(numbers)),
        min=min(numbers),
        max=max(numbers),
    )


def profile_csv(path: str | Path, *, max_rows: int | None = None) -> DatasetProfile:
    """Read a CSV file and describe every column.

    Args:
        path: The CSV file.
        max_rows: Profile only the first ``max_rows`` data rows (``rows`` then counts those).

    Returns:
        The profile.

    Raises:
        DatasetError: The file cannot be used as a dataset; the message says why.
    """
    frame = read_table(path, max_rows=max_rows)
    columns = tuple(profile_column(name, frame[name].tolist()) for name in frame.columns)
    return DatasetProfile(rows=len(frame), columns=columns)
