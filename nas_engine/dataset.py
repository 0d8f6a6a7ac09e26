"""Read an uploaded CSV safely (structure, encoding, size limits, within ``CsvLimits``) as raw text
cells, or a stored image set as the same table, and guess the task a column calls for. Profiling the
table (kinds, distributions, warnings, leakage) is ``profile``'s."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

try:
    import pyarrow  # noqa: F401 - pandas' fast CSV engine

    _ARROW = True
except ImportError:  # pragma: no cover
    _ARROW = False

from nas_engine.errors import DatasetError
from nas_engine.images import read_image_meta, read_image_table
from nas_engine.runtime import is_missing, parse_number

MAX_CLASSES_FOR_NUMBERS = 20  # integer targets with more distinct values are treated as quantities
MIN_DATA_ROWS = 2
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
    return task_for_numbers({number for v in values if (number := parse_number(v)) is not None})


def task_for_numbers(numbers: set[float]) -> str:
    """The task ``detect_task`` (and a profile) gives a numeric column, from its distinct numbers:
    whole numbers, at most ``MAX_CLASSES_FOR_NUMBERS`` of them → classification; else regression."""
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
        options: dict = {"header": None, "dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}
        if max_rows is None and _ARROW:
            # Arrow's reader: its strings stay in Arrow buffers, never a Python object per cell (a
            # million rows of fifty columns: 3 s and 0.9 GB against 24 s and 2.8 GB for the C reader).
            frame = pd.read_csv(path, **options, engine="pyarrow")
        else:  # the C reader: Arrow's cannot stop after a number of rows
            frame = pd.read_csv(
                path, **options, nrows=None if max_rows is None else max_rows + 1, skip_blank_lines=True
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
