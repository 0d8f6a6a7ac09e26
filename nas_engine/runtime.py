"""Turn raw CSV cells (or image files) into model inputs and model outputs into predictions.

This file is standalone (stdlib + numpy at import time; Pillow only when images are read) because
it is copied verbatim into every exported bundle as ``predict.py``: training and the bundle run the
very same transform, so they cannot drift.

Usage inside a bundle: ``python predict.py INPUT [-o OUT.csv] [--model model.onnx]``, where INPUT
is a CSV file, or for a model trained on images a PNG/JPEG file, a folder of them or an .npz with ``x``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import math
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "?"})
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_SIDE = 4096
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})
_RESAMPLING = {"bilinear": "BILINEAR"}  # the stored name -> Pillow's Image.Resampling member
DATE_PARTS = ("year", "month", "weekday", "days")  # what a date column becomes: four numbers
# Tried in order after ISO 8601 (datetime.fromisoformat): month/day before day/month, as pandas reads them.
DATE_FORMATS = (
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m/%d/%y",
    "%d %b %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
)
_EPOCH = datetime.date(1970, 1, 1)
PIXEL_CELLS = tuple(  # the cell text of each pixel value
    str(value) for value in range(256)
)


def is_missing(cell: str | None) -> bool:
    """Return True when a raw cell means "no value" (empty, NA, NaN, null, none, ?)."""
    return cell is None or cell.strip().lower() in MISSING_TOKENS


def parse_number(cell: str | None) -> float | None:
    """Parse a raw cell as a finite number.

    Args:
        cell: The raw text of a CSV cell.

    Returns:
        The number, or None when the cell is missing or is not a finite number.
    """
    if cell is None or is_missing(cell):
        return None
    try:
        value = float(cell.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def date_parts(cell: str | None) -> list[float] | None:
    """A date (or date and time) cell as ``DATE_PARTS``: year, month, day of the week (Monday 0)
    and days since 1970-01-01; None when the cell is missing or not a date."""
    if cell is None or is_missing(cell):
        return None
    text = cell.strip()
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
        for pattern in DATE_FORMATS:
            try:
                moment = datetime.datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        return None
    day = moment.date()
    return [float(day.year), float(day.month), float(day.weekday()), float((day - _EPOCH).days)]


def feature_width(feature: dict) -> int:
    """How many network inputs one fitted feature fills: 1 per number, 4 per date
    (``DATE_PARTS``), one per category plus an "other" slot."""
    if feature["kind"] == "numeric":
        return 1
    if feature["kind"] == "date":
        return len(DATE_PARTS)
    return len(feature["categories"]) + 1


def category_of(cell: str | None) -> str | None:
    """Return the category a raw cell stands for, or None when it is missing."""
    return None if cell is None or is_missing(cell) else cell.strip()


def label_sort_key(label: str) -> tuple:
    """Sort key of class labels: numbers by value ("2" before "10"), then text alphabetically."""
    number = parse_number(label)
    return (0, number, label) if number is not None else (1, 0.0, label)


def missing_columns(columns, prep: dict) -> list[str]:
    """Return the feature columns the model needs that are not among ``columns``."""
    present = set(columns or ())
    return [f["name"] for f in prep["features"] if f["name"] not in present]


def missing_cells(cells: np.ndarray) -> np.ndarray:
    """``is_missing`` of every cell of an object array, decided once per distinct cell."""
    missing = {cell for cell in set(cells.tolist()) if is_missing(cell)}
    return np.fromiter((cell in missing for cell in cells.tolist()), dtype=bool, count=len(cells))


def parse_numbers(cells) -> np.ndarray:
    """``parse_number`` of every cell at once: float64, NaN where a cell is missing or not a finite
    number. A column of clean numbers converts in one C loop (``float()`` of each cell, which reads
    exactly what ``parse_number`` reads); one with missing or unreadable cells drops those first."""
    cells = np.asarray(cells, dtype=object)
    try:
        values = cells.astype(np.float64)
    except (ValueError, TypeError):
        values = np.full(len(cells), np.nan)
        present = np.flatnonzero(~missing_cells(cells))
        try:
            values[present] = cells[present].astype(np.float64)
        except (ValueError, TypeError):  # some cell is text: each distinct cell on its own
            listed = cells[present].tolist()
            read = {cell: parse_number(cell) for cell in set(listed)}
            values[present] = [np.nan if (v := read[cell]) is None else v for cell in listed]
    values[~np.isfinite(values)] = np.nan
    return values


def category_codes(cells, categories: list[str]) -> np.ndarray:
    """Each cell's slot among ``categories`` (``category_of``), ``len(categories)`` for a missing
    cell or one not among them (the "other" slot); one lookup per distinct cell."""
    listed = np.asarray(cells, dtype=object).tolist()
    slot_of: dict[str | None, int] = {name: i for i, name in enumerate(categories)}
    other = len(categories)
    slots = {cell: slot_of.get(category_of(cell), other) for cell in set(listed)}
    return np.fromiter((slots[cell] for cell in listed), dtype=np.int64, count=len(listed))


def encode_columns(columns: dict, prep: dict, n_rows: int) -> np.ndarray:
    """Encode raw cells, given column by column (``columns[name]``: a sequence of ``n_rows`` cells),
    into the float32 matrix the network takes; what ``encode_rows`` does for rows, a column at a
    time with numpy (see there for the encoding).

    Raises:
        ValueError: A feature column is absent.
    """
    absent = [f["name"] for f in prep["features"] if f["name"] not in columns]
    if absent:
        raise ValueError("The input is missing column(s): " + ", ".join(absent) + ".")
    out = np.empty((n_rows, sum(feature_width(f) for f in prep["features"])), dtype=np.float32)
    at = 0
    for feature in prep["features"]:
        cells = columns[feature["name"]]
        if feature["kind"] == "numeric":
            # A column already read as numbers (a float array, as prepare_data keeps them) is used as is.
            numbers = cells if isinstance(cells, np.ndarray) and cells.dtype.kind == "f" else parse_numbers(cells)
            column = np.where(np.isnan(numbers), feature["median"], numbers)
            if "scale" in feature:
                z = (column - feature["center"]) / feature["scale"]
                out[:, at] = z / np.sqrt(1.0 + (z / feature["clip"]) ** 2)
            else:
                out[:, at] = (column - feature["mean"]) / feature["std"]
            at += 1
        elif feature["kind"] == "date":
            parts = [date_parts(cell) or feature["median"] for cell in cells]
            dates = np.array(parts, dtype=np.float64).reshape(n_rows, len(DATE_PARTS))
            out[:, at : at + len(DATE_PARTS)] = (dates - np.array(feature["mean"])) / np.array(feature["std"])
            at += len(DATE_PARTS)
        else:
            width = len(feature["categories"]) + 1
            one_hot = out[:, at : at + width]  # written in place: no second matrix of the block
            one_hot[:] = 0.0
            one_hot[np.arange(n_rows), category_codes(cells, feature["categories"])] = 1.0
            at += width
    return out


def encode_rows(rows: list[dict], prep: dict) -> np.ndarray:
    """Encode raw CSV rows into the float32 matrix the network takes.

    Numeric features: missing or unreadable cells get the training median, then either
    ``(x - mean) / std`` or, when the feature has a ``scale`` (preprocessing from engine v2 on),
    RealMLP's robust scaling with smooth clipping: ``z = (x - center) / scale`` squashed to
    ``z / sqrt(1 + (z / clip)^2)``, so one huge value (a price, an income) cannot dominate a
    network's input. Categorical features: one-hot over the training categories plus a
    last slot for "other or missing".

    Args:
        rows: One dict per row, column name to raw cell text (extra columns are ignored).
        prep: The ``preprocessing`` dict fitted on the training split.

    Returns:
        An array of shape ``(len(rows), prep["n_features"])``.

    Raises:
        ValueError: A feature column is absent from the rows.
    """
    if rows:
        absent = missing_columns(rows[0].keys(), prep)
        if absent:
            raise ValueError("The input is missing column(s): " + ", ".join(absent) + ".")
    columns = {f["name"]: np.array([row.get(f["name"]) for row in rows], dtype=object) for f in prep["features"]}
    return encode_columns(columns, prep, len(rows))


def decode_outputs(outputs: np.ndarray, prep: dict) -> list:
    """Turn raw network outputs into predictions in the user's terms.

    Args:
        outputs: Array of shape ``(n, n_outputs)``: logits, or one standardised value.
        prep: The ``preprocessing`` dict.

    Returns:
        Label strings (classification) or floats in the target's original units (regression).
    """
    outputs = np.asarray(outputs)
    target = prep["target"]
    if prep["task"] == "classification":
        labels = target["labels"]
        return [labels[int(i)] for i in np.argmax(outputs, axis=1)]
    return [float(v) for v in target_units(outputs.reshape(len(outputs), -1)[:, 0], target)]


def target_units(standardised: np.ndarray, target: dict) -> np.ndarray:
    """Regression outputs (standardised, as the network learns them) in the target's own units:
    ``z * std + mean``, then ``exp`` when the target was learnt as its logarithm
    (``transform: "log"``, a positive skewed target such as a price)."""
    values = np.asarray(standardised, dtype=np.float64) * target["std"] + target["mean"]
    if target.get("transform") == "log":
        return np.exp(np.clip(values, -700.0, 700.0))
    return values


def read_csv_rows(path) -> list[dict]:
    """Read a CSV file into one dict per row (cells as raw text; a leading BOM is ignored)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def format_prediction(value) -> str:
    """Write one prediction as CSV text (floats keep full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


# --- images ---------------------------------------------------------------------------------------


def _pillow():
    try:
        from PIL import Image  # imported here: CSV predictions must not need Pillow
    except ImportError:
        raise ValueError("Reading images needs Pillow: pip install pillow") from None
    return Image


def open_image(data: bytes, *, max_side: int = MAX_IMAGE_SIDE):
    """Decode PNG or JPEG bytes into an upright Pillow image, checking its size before its pixels.

    Args:
        data: The file's bytes.
        max_side: Refuse images wider or taller than this (a small file can hold a huge image).

    Returns:
        The loaded ``PIL.Image.Image``.

    Raises:
        ValueError: The bytes are not a readable PNG or JPEG, or the image is too large; the
            message says which.
    """
    Image = _pillow()
    from PIL import ImageOps

    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except Image.DecompressionBombError:
        raise ValueError(f"the image is far too large (at most {max_side} pixels per side)") from None
    except (OSError, ValueError, SyntaxError, EOFError):
        raise ValueError("not a readable PNG or JPEG image") from None
    width, height = image.size
    if max(width, height) > max_side:
        raise ValueError(f"the image is {width}×{height} pixels; at most {max_side} per side")
    # Pillow's decoders raise any of these on damaged data (SyntaxError for broken PNG chunks).
    try:
        image.load()
        return ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
        raise ValueError(f"damaged image data ({exc})") from None


def is_grey(image) -> bool:
    """Return True when a Pillow image has no colour: a grey mode, or R == G == B everywhere."""
    if image.mode in _GREY_MODES:
        return True
    rgb = np.asarray(_in_mode(image, "RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _in_mode(image, mode: str):
    Image = _pillow()
    if image.mode in _WIDE_GREY_MODES:
        # Pillow clips 16-bit grey to 0..255 when converting to L; scale it down instead.
        image = Image.fromarray((np.asarray(image, dtype=np.int64) >> 8).clip(0, 255).astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")  # a palette's transparency becomes alpha, which RGB then drops
    return image if image.mode == mode else image.convert(mode)


def image_pixels(image, meta: dict) -> np.ndarray:
    """Turn a Pillow image into stored pixels: grey or RGB, resized to the stored size.

    Args:
        image: A ``PIL.Image.Image``.
        meta: The image set's ``"image"`` meta (``height``, ``width``, ``channels``, ``resample``).

    Returns:
        A uint8 array of shape ``(channels, height, width)``.
    """
    Image = _pillow()
    if meta["resample"] not in _RESAMPLING:
        raise ValueError(f"Unknown resampling method '{meta['resample']}' in the preprocessing.")
    resample = getattr(Image.Resampling, _RESAMPLING[meta["resample"]])
    converted = _in_mode(image, "L" if meta["channels"] == 1 else "RGB")
    array = np.asarray(converted.resize((meta["width"], meta["height"]), resample), dtype=np.uint8)
    return np.ascontiguousarray(array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1))


def decode_image(data: bytes, meta: dict) -> np.ndarray:
    """Turn the bytes of a PNG or JPEG file into stored pixels; the app and every bundle use this.

    Args:
        data: The file's bytes.
        meta: The image set's ``"image"`` meta.

    Returns:
        A uint8 array of shape ``(channels, height, width)``.

    Raises:
        ValueError: The bytes are not a readable PNG or JPEG image, or it is too large.
    """
    return image_pixels(open_image(data), meta)


def array_pixels(array: np.ndarray, meta: dict) -> np.ndarray:
    """Turn one uint8 image array (H×W×1 or H×W×3) into stored pixels, through Pillow like a file."""
    image = _pillow().fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array))
    return image_pixels(image, meta)


def as_image_array(x: np.ndarray) -> np.ndarray:
    """Check an array of images and return it as uint8 N×H×W×C (C = 1 or 3).

    Args:
        x: N×H×W (grey) or N×H×W×C images: uint8 or whole numbers 0..255, or decimals 0..1
            (scaled by 255 and rounded).

    Raises:
        ValueError: Another shape, type or value range; the message says what is expected.
    """
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        shape = "×".join(map(str, x.shape))
        raise ValueError(
            f"x has shape {shape}; it must be N×H×W (grey images) or N×H×W×C with C = 1 (grey) or 3 (RGB)."
        )
    if x.shape[0] == 0 or min(x.shape[1:3]) == 0:
        raise ValueError("x holds no images.")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind in "iu":
        lowest, highest = int(x.min()), int(x.max())
        if lowest < 0 or highest > 255:
            raise ValueError(f"x holds whole numbers from {lowest} to {highest}; pixels must lie between 0 and 255.")
        return x.astype(np.uint8)
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise ValueError("x holds NaN or infinite values; every pixel needs a value between 0 and 1.")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"x holds decimals from {low:g} to {high:g}; decimal pixels must lie between 0 and 1 "
                "(or store whole numbers 0 to 255 as uint8)."
            )
        return np.rint(x * 255).astype(np.uint8)
    raise ValueError(f"x holds values of type {x.dtype}; pixels must be uint8 (0 to 255) or decimals from 0 to 1.")


def load_npz_images(path, *, name: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``x`` (and ``y`` when present) from an .npz file; ``x`` comes back as uint8 N×H×W×C.

    An image set written by NAS Studio (pixels stored N×C×H×W, with ``meta``) is read too.
    ``name`` is the file's name in messages (default: the name in ``path``).

    Raises:
        ValueError: The file is not a readable .npz, has no ``x``, holds Python objects, or ``x``
            is not an array of images.
    """
    name = name or Path(path).name
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ValueError(f"'{name}' is a single .npy array; save x and y with np.savez(path, x=..., y=...).")
            if "x" not in npz.files:
                held = ", ".join(npz.files) or "nothing"
                raise ValueError(f"'{name}' has no array named 'x' (it holds: {held}); save the images as x.")
            x = npz["x"]
            y = npz["y"] if "y" in npz.files else None
            stored = "meta" in npz.files
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(
                f"'{name}' holds Python objects (an object array), which are not read for safety; save x as "
                "a numeric array and y as numbers or strings."
            ) from None
        raise
    except (OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"'{name}' is not a readable .npz file (it may be damaged or cut short).") from None
    if stored and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return as_image_array(x), y


def pixel_row(pixels: np.ndarray, meta: dict) -> dict:
    """One row of raw cells (pixel column -> ``str(int)``) from stored pixels (C×H×W uint8)."""
    return dict(zip(meta["columns"], [PIXEL_CELLS[v] for v in pixels.ravel().tolist()], strict=True))


def image_rows(images: Iterable[tuple[str, bytes]], meta: dict) -> list[dict]:
    """Decode image files into rows of raw cells, as the image set stores them.

    Args:
        images: ``(name, bytes)`` of each PNG or JPEG file.
        meta: The image set's ``"image"`` meta.

    Returns:
        One dict per image: pixel column name -> cell text.

    Raises:
        ValueError: An image cannot be decoded; the message names the file.
    """
    rows = []
    for name, data in images:
        try:
            pixels = decode_image(data, meta)
        except ValueError as exc:
            raise ValueError(f"'{name}' cannot be used: {exc}.") from None
        rows.append(pixel_row(pixels, meta))
    return rows


def is_image_input(path) -> bool:
    """Return True when ``path`` is an image file, a folder or an .npz (not a CSV)."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (*IMAGE_SUFFIXES, ".npz")


def _hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _input_images(path: Path, meta: dict) -> tuple[list[str], list[dict]]:
    """Names and rows of the images at ``path``: an image file, a folder of them or an .npz."""
    if path.suffix.lower() == ".npz":
        x, _ = load_npz_images(path)
        return [str(i) for i in range(len(x))], [pixel_row(array_pixels(image, meta), meta) for image in x]
    if path.is_dir():
        found = sorted(
            (file.relative_to(path).as_posix(), file)
            for file in path.rglob("*")
            if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file() and not _hidden(file.relative_to(path).parts)
        )
        if not found:
            raise ValueError(f"The folder '{path}' holds no PNG or JPEG images.")
        return [name for name, _ in found], image_rows(((name, file.read_bytes()) for name, file in found), meta)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"'{path.name}' is not a PNG or JPEG image, a folder of images or an .npz file.")
    return [path.name], image_rows([(path.name, path.read_bytes())], meta)


def _read_preprocessing(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "preprocessing.json").read_text(encoding="utf-8"))


def predict_images(paths, *, bundle_dir, model_path=None) -> list[tuple[str, str, float | None]]:
    """Predict images with a bundle trained on an image set.

    Args:
        paths: Image files, folders (searched recursively, sorted by relative path) or .npz files
            with ``x``; a single path is accepted too.
        bundle_dir: The unzipped bundle.
        model_path: Model file (default: the bundle's model.onnx).

    Returns:
        ``(file, prediction, probability)`` per image: the file's name (its path inside a folder,
        its row index in an .npz), the predicted label, and its softmax probability (None for
        regression, where the prediction is a number).

    Raises:
        ValueError: The bundle was not trained on images, or an input cannot be read as images.
        OSError: A file cannot be read.
    """
    bundle_dir = Path(bundle_dir)
    prep = _read_preprocessing(bundle_dir)
    meta = prep.get("image")
    if meta is None:
        raise ValueError("This model was trained on a table, not on images: give it a CSV file.")
    names: list[str] = []
    rows: list[dict] = []
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        more_names, more_rows = _input_images(Path(path), meta)
        names += more_names
        rows += more_rows
    if not rows:
        return []
    outputs = _run_model(encode_rows(rows, prep), bundle_dir, model_path and Path(model_path))
    predictions = decode_outputs(outputs, prep)
    if prep["task"] != "classification":
        return [(name, format_prediction(p), None) for name, p in zip(names, predictions, strict=True)]
    best = softmax(np.asarray(outputs, dtype=np.float64)).max(axis=1).tolist()
    return [(name, str(p), float(b)) for name, p, b in zip(names, predictions, best, strict=True)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis (minus the max first: exp never overflows)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def write_image_predictions(results: list[tuple[str, str, float | None]], handle) -> None:
    """Write image predictions as a CSV with ``file``, ``prediction`` and ``probability`` columns."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["file", "prediction", "probability"])
    writer.writerows([name, p, "" if b is None else format_prediction(b)] for name, p, b in results)


def _run_model(matrix: np.ndarray, bundle_dir: Path, model_path: Path | None) -> np.ndarray:
    """Run the ONNX model (the bundle's model.onnx, or ``model_path``). TorchScript (model.pt) only
    when ``model_path`` names it: loading TorchScript can run code from the file, so it is never a
    silent fallback."""
    if model_path is None or model_path.suffix == ".onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ValueError(
                "onnxruntime is not installed: pip install onnxruntime. (With torch installed, --model model.pt "
                "runs the TorchScript model instead; loading TorchScript can run code from the file, so only for a "
                "bundle you trust.)"
            ) from None
        session = onnxruntime.InferenceSession(
            str(model_path or bundle_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        return session.run(["output"], {"input": matrix})[0]
    import torch  # asked for by name: --model model.pt

    module = torch.jit.load(str(model_path))
    module.eval()
    with torch.inference_mode():
        return module(torch.from_numpy(matrix)).numpy()


def predict_file(input_path, *, bundle_dir, model_path=None) -> list:
    """Predict every row of a CSV file with the bundle stored in ``bundle_dir``.

    Raises:
        ValueError: A feature column the model needs is missing from the file.
        OSError: A file cannot be read.
    """
    bundle_dir = Path(bundle_dir)
    prep = _read_preprocessing(bundle_dir)
    with open(input_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        absent = missing_columns(reader.fieldnames, prep)
        if absent:
            raise ValueError("The input is missing column(s): " + ", ".join(absent) + ".")
        rows = [dict(row) for row in reader]
    if not rows:
        return []
    outputs = _run_model(encode_rows(rows, prep), bundle_dir, model_path and Path(model_path))
    return decode_outputs(outputs, prep)


def write_predictions(predictions: list, handle) -> None:
    """Write predictions as a CSV with a single ``prediction`` column."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["prediction"])
    writer.writerows([format_prediction(p)] for p in predictions)


def main(argv: list[str] | None = None) -> int:
    """Command line: predict a CSV file (or images) with the model stored next to this script.

    Returns:
        The exit code: 0 on success, 2 on bad input (one line on stderr, no output file).
    """
    parser = argparse.ArgumentParser(description="Predict a CSV file or images with this model bundle.")
    parser.add_argument(
        "input",
        help="CSV file with the same feature columns as the training data; for a model trained on images, "
        "a PNG/JPEG file, a folder of them or an .npz with x",
    )
    parser.add_argument("-o", "--output", help="where to write predictions (default: stdout)")
    parser.add_argument(
        "--model",
        help="model file (default: model.onnx next to this script); model.pt runs the TorchScript model with torch "
        "instead of onnxruntime (loading TorchScript can run code from the file: only for a bundle you trust)",
    )
    parser.add_argument("--bundle-dir", default=str(Path(__file__).resolve().parent), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    images = is_image_input(args.input)
    try:
        if images:
            results = predict_images([args.input], bundle_dir=args.bundle_dir, model_path=args.model)
        else:
            predictions = predict_file(args.input, bundle_dir=args.bundle_dir, model_path=args.model)
    except FileNotFoundError as exc:
        sys.stderr.write(f"error: The file '{exc.filename}' was not found.\n")
        return 2
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2

    def write(handle) -> None:
        if images:
            write_image_predictions(results, handle)
        else:
            write_predictions(predictions, handle)

    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            write(handle)
    else:
        write(sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
