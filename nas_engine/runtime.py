"""Turn raw CSV cells into model inputs and model outputs into predictions.

This file is standalone (stdlib + numpy only) because it is copied verbatim into every exported
bundle as ``predict.py``: training and the bundle run the very same transform, so they cannot drift.

Usage inside a bundle: ``python predict.py INPUT.csv [-o OUT.csv] [--model model.onnx]``
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none", "?"})


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


def category_of(cell: str | None) -> str | None:
    """Return the category a raw cell stands for, or None when it is missing."""
    return None if cell is None or is_missing(cell) else cell.strip()


def missing_columns(columns, prep: dict) -> list[str]:
    """Return the feature columns the model needs that are not among ``columns``."""
    present = set(columns or ())
    return [f["name"] for f in prep["features"] if f["name"] not in present]


def encode_rows(rows: list[dict], prep: dict) -> np.ndarray:
    """Encode raw CSV rows into the float32 matrix the network takes.

    Numeric features: missing or unreadable cells get the training median, then
    ``(x - mean) / std``. Categorical features: one-hot over the training categories plus a
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
    blocks = []
    for feature in prep["features"]:
        cells = [row.get(feature["name"]) for row in rows]
        if feature["kind"] == "numeric":
            values = [parse_number(cell) for cell in cells]
            column = np.array([feature["median"] if v is None else v for v in values], dtype=np.float64)
            blocks.append(((column - feature["mean"]) / feature["std"]).reshape(-1, 1))
        else:
            categories = feature["categories"]
            slot_of = {name: i for i, name in enumerate(categories)}
            other = len(categories)
            one_hot = np.zeros((len(rows), other + 1), dtype=np.float64)
            for i, cell in enumerate(cells):
                one_hot[i, slot_of.get(category_of(cell), other)] = 1.0
            blocks.append(one_hot)
    if not blocks:
        return np.zeros((len(rows), 0), dtype=np.float32)
    return np.hstack(blocks).astype(np.float32)


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
    return [float(v) * target["std"] + target["mean"] for v in outputs.reshape(len(outputs), -1)[:, 0]]


def read_csv_rows(path) -> list[dict]:
    """Read a CSV file into one dict per row (cells as raw text; a leading BOM is ignored)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def format_prediction(value) -> str:
    """Write one prediction as CSV text (floats keep full precision)."""
    return repr(value) if isinstance(value, float) else str(value)


def _run_model(matrix: np.ndarray, bundle_dir: Path, model_path: Path | None) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None and (model_path is None or model_path.suffix == ".onnx"):
        session = onnxruntime.InferenceSession(
            str(model_path or bundle_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        return session.run(["output"], {"input": matrix})[0]
    import torch  # fallback when onnxruntime is not installed

    module = torch.jit.load(str(model_path or bundle_dir / "model.pt"))
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
    prep = json.loads((bundle_dir / "preprocessing.json").read_text(encoding="utf-8"))
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
    """Command line: predict a CSV file with the model stored next to this script.

    Returns:
        The exit code: 0 on success, 2 on bad input (one line on stderr, no output file).
    """
    parser = argparse.ArgumentParser(description="Predict a CSV file with this model bundle.")
    parser.add_argument("input", help="CSV file with the same feature columns as the training data")
    parser.add_argument("-o", "--output", help="where to write predictions (default: stdout)")
    parser.add_argument("--model", help="model file (default: model.onnx next to this script)")
    parser.add_argument("--bundle-dir", default=str(Path(__file__).resolve().parent), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        predictions = predict_file(args.input, bundle_dir=args.bundle_dir, model_path=args.model)
    except FileNotFoundError as exc:
        sys.stderr.write(f"error: The file '{exc.filename}' was not found.\n")
        return 2
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as handle:
            write_predictions(predictions, handle)
    else:
        write_predictions(predictions, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
