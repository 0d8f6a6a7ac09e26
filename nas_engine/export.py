"""Load trained weights, predict in-process, and export a self-contained model bundle (zip)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from nas_engine import compress, runtime
from nas_engine.diagram import describe_architecture
from nas_engine.errors import DatasetError, NasError
from nas_engine.evaluator import predict_raw
from nas_engine.images import png_bytes
from nas_engine.importance import ranked
from nas_engine.metrics import metric_of
from nas_engine.model_card import model_card
from nas_engine.onnx_io import export_onnx
from nas_engine.results import Costs, ensemble_costs, is_ensemble
from nas_engine.spaces import space_for_architecture

BUNDLE_FILES = (
    "model.onnx",
    "model.pt",
    "preprocessing.json",
    "architecture.json",
    "metrics.json",
    "MODEL_CARD.md",
    "predict.py",
)
ONNX_TOLERANCE = 1e-4
# predict.py against the model, for regression: in target standard deviations, as the int8 check
# compares standardised outputs. float32 noise is about 1e-6 of them; a wrong transform is far more.
PARITY_TOLERANCE = 1e-3
PREDICT_TIMEOUT_SECONDS = 300
IMAGE_CHECKS = 8  # images written back as PNG files to check predict.py's image input


def predict_csv(model: torch.nn.Module, preprocessing: dict, csv_path: str | Path) -> list:
    """Predict every row of a CSV with the same transform the bundle's predict.py uses.

    Returns:
        Label strings (classification) or floats (regression), one per row.

    Raises:
        DatasetError: A feature column is missing or the file cannot be read.
    """
    try:
        rows = runtime.read_csv_rows(csv_path)
        matrix = runtime.encode_rows(rows, preprocessing)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(str(exc)) from None
    except FileNotFoundError:
        raise DatasetError(f"The file '{Path(csv_path).name}' was not found.") from None
    if not rows:
        return []
    return runtime.decode_outputs(predict_raw(model, matrix), preprocessing)


def _synthetic_rows(preprocessing: dict, n: int = 16) -> list[dict]:
    """Plausible raw rows (around the training statistics), when no real rows are given."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        row = {}
        for f in preprocessing["features"]:
            if f["kind"] == "numeric":
                row[f["name"]] = str(f["mean"] + f["std"] * rng.normal())
            elif f["kind"] == "date":
                row[f["name"]] = f["example"]
            else:
                options = f["categories"] + [""]
                row[f["name"]] = options[int(rng.integers(len(options)))]
        rows.append(row)
    return rows


def target_scale(preprocessing: dict, predictions: list | None = None) -> float:
    """The unit regression predictions are compared in: the target's standard deviation (or the
    spread of ``predictions`` in target units, when that is larger; never below a tiny floor)."""
    scale = float(preprocessing["target"].get("std") or 0.0)
    numbers = [float(p) for p in predictions or [] if isinstance(p, (int, float))]
    if len(numbers) > 1:
        scale = max(scale, float(np.std(numbers)))
    return max(scale, 1e-12)


def _same_predictions(first: list, second: list, *, scale: float = 1.0) -> bool:
    """Labels must match exactly; regression values within ``PARITY_TOLERANCE`` of ``scale`` (the
    target's standard deviation), so a price in the thousands or one near zero is judged alike."""
    if len(first) != len(second):
        return False
    return all(
        abs(float(a) - float(b)) <= PARITY_TOLERANCE * scale if isinstance(b, float) else str(a) == str(b)
        for a, b in zip(first, second, strict=True)
    )


def _check_predict_py(folder: Path, rows: list[dict], expected: list, *, scale: float) -> None:
    """Run the bundle's own predict.py on raw rows, as a user would, and compare with torch.

    Raises:
        NasError: predict.py fails or gives other predictions.
    """
    columns = list(rows[0])
    with open(folder / "check_rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    _run_predict_py(folder, "check_rows.csv", expected, what="the test rows", scale=scale)


def _run_predict_py(folder: Path, input_name: str, expected: list, *, what: str, scale: float = 1.0) -> None:
    done = subprocess.run(
        [sys.executable, "predict.py", input_name, "-o", "check_out.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=PREDICT_TIMEOUT_SECONDS,
    )
    if done.returncode != 0:
        raise NasError(f"The bundle's predict.py failed on {what}: {done.stderr.strip()[-500:]}")
    with open(folder / "check_out.csv", newline="", encoding="utf-8") as handle:
        got = [row["prediction"] for row in csv.DictReader(handle)]
    if not _same_predictions(got, expected, scale=scale):
        raise NasError("The bundle's predict.py does not reproduce the model's predictions; it was not written.")


def _check_predict_py_on_images(folder: Path, model: torch.nn.Module, rows: list[dict], preprocessing: dict) -> int:
    """For a model trained on images: write a few check rows back as PNG files, run predict.py on
    their folder and compare with torch on the same files. Returns how many images were checked."""
    meta = preprocessing["image"]
    shape = (meta["channels"], meta["height"], meta["width"])
    (folder / "check_images").mkdir()
    files = []
    for i, row in enumerate(rows[:IMAGE_CHECKS]):
        # Synthetic rows hold decimals around the mean: rounded into 0..255 they still make an image.
        values = [runtime.parse_number(row.get(column)) or 0.0 for column in meta["columns"]]
        pixels = np.clip(np.rint(values), 0, 255).astype(np.uint8).reshape(shape)
        files.append((f"{i:02d}.png", png_bytes(pixels)))
        (folder / "check_images" / files[-1][0]).write_bytes(files[-1][1])
    encoded = runtime.encode_rows(runtime.image_rows(files, meta), preprocessing)
    expected = runtime.decode_outputs(predict_raw(model, encoded), preprocessing)
    _run_predict_py(folder, "check_images", expected, what="images", scale=target_scale(preprocessing, expected))
    return len(files)


def _export_torchscript(model: torch.nn.Module, n_features: int, path: Path) -> None:
    # torch.jit is deprecated in torch 2.13 but still the one format torch loads without our code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, torch.zeros(2, n_features)).save(str(path))


def onnx_max_abs_diff(model: torch.nn.Module, onnx_path: Path, inputs: np.ndarray) -> float:
    """Largest absolute difference between ONNX Runtime and torch outputs on ``inputs``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(["output"], {"input": inputs})[0]
    return float(np.max(np.abs(onnx_out - predict_raw(model, inputs))))


def _quantize_for_bundle(
    model: torch.nn.Module, onnx_path: Path, encoded: np.ndarray, task: str
) -> tuple[torch.nn.Module, torch.nn.Module, dict]:
    """Replace the float ONNX file by its int8 graph and check that graph against its torch twin.

    Returns:
        The twin (what model.pt holds), the int8 graph as a module (what predict.py must
        reproduce) and the checks to record.

    Raises:
        NasError: The int8 graph and the twin differ by more than ``compress.INT8_TOLERANCE``.
    """
    float_path = onnx_path.with_name("float.onnx")
    onnx_path.replace(float_path)
    compress.quantize_onnx(float_path, onnx_path)
    float_path.unlink()
    twin = compress.int8_twin(model)
    parity = compress.int8_parity(twin, onnx_path, encoded, task=task)
    if not parity["passed"]:
        raise NasError(
            f"The int8 ONNX model differs from its torch counterpart by {parity['max_abs_diff']:.2e} "
            f"(limit {parity['tolerance']:g}); the bundle was not written."
        )
    checks = {
        "int8_max_abs_diff": parity["max_abs_diff"],
        "int8_agreement": parity["agreement"],
        "int8_tolerance": parity["tolerance"],
    }
    return twin, compress.OnnxModel(onnx_path), checks


def analytic_costs(architecture: dict, n_inputs: int, n_outputs: int) -> Costs:
    """Parameters, FLOPs and size from the genome (an ensemble costs the sum of its members)."""
    if not is_ensemble(architecture):
        return space_for_architecture(architecture).costs(architecture, n_inputs, n_outputs)
    members = architecture["member_architectures"]
    return ensemble_costs([analytic_costs(member, n_inputs, n_outputs) for member in members])


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16  # readable files once unzipped (writestr defaults to 0600)
    return info


def _versions() -> dict:
    import nas_engine

    return {"torch": torch.__version__, "numpy": np.__version__, "nas_engine": nas_engine.__version__}


def export_bundle(
    *,
    model: torch.nn.Module,
    architecture: dict,
    preprocessing: dict,
    metrics: dict,
    out_path: str | Path,
    dataset_name: str = "",
    extra: dict | None = None,
    costs: Costs | None = None,
    check_rows: list[dict] | None = None,
    splits: dict | None = None,
) -> Path:
    """Write a zip with the model (ONNX and TorchScript), its preprocessing, a card and predict.py.

    The zip is written to ``out_path + ".part"`` and renamed at the end, so ``out_path`` is
    either complete or absent.

    Args:
        model: The trained network.
        architecture: Its genome.
        preprocessing: The ``preprocessing`` dict it was trained with.
        metrics: Validation (and optionally test) metrics to record.
        out_path: Where to write the zip.
        dataset_name: Name of the training file, for the model card.
        extra: More JSON-serialisable facts for metrics.json (seed, config, trial number...).
        costs: Measured costs; analytic costs are computed when None.
        check_rows: Raw rows (CSV cells by column, e.g. the test split) to verify the bundle on;
            plausible synthetic rows when None.
        splits: Rows of each split (``model_card.split_rows``): the card names them where it says
            which rows each number came from, and metrics.json records them.

    Returns:
        The path of the zip.

    Before the zip is written, two checks run and are recorded in metrics.json: ONNX Runtime
    against torch on the check rows (max abs difference <= 1e-4), and the bundle's own predict.py,
    run in a subprocess on those rows as raw CSV, against the torch model's predictions (labels
    exactly; regression values within ``PARITY_TOLERANCE`` target standard deviations). A model
    trained on images is also checked on a few of those rows written back as PNG files.

    For an int8 variant (``compress.is_int8(architecture)``; ``model`` is its float network) the
    bundle's model.onnx is the int8 graph and model.pt its torch twin (``compress.int8_twin``); the
    float export is checked as above, then the int8 graph against the twin within
    ``compress.INT8_TOLERANCE`` (recorded as ``int8_*`` checks), and predict.py against the int8
    graph run in-process.

    Raises:
        NasError: A check failed; nothing is written.
    """
    out_path = Path(out_path)
    part = out_path.with_name(out_path.name + ".part")
    model = model.eval()
    n_in, n_out = preprocessing["n_features"], len(preprocessing["target"].get("labels", [])) or 1
    costs = costs or analytic_costs(architecture, n_in, n_out)
    layers = describe_architecture(architecture)
    rows = check_rows or _synthetic_rows(preprocessing)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path, script_path = Path(tmp) / "model.onnx", Path(tmp) / "model.pt"
            export_onnx(model, n_in, onnx_path)
            encoded = runtime.encode_rows(rows, preprocessing)
            diff = onnx_max_abs_diff(model, onnx_path, encoded)
            if not diff <= ONNX_TOLERANCE:
                raise NasError(
                    f"The ONNX export differs from the trained model by {diff:.2e} "
                    f"(limit {ONNX_TOLERANCE:g}); the bundle was not written."
                )
            int8_checks: dict = {}
            reference = model  # reference: what predict.py must reproduce
            if compress.is_int8(architecture):
                model, reference, int8_checks = _quantize_for_bundle(model, onnx_path, encoded, preprocessing["task"])
            _export_torchscript(model, n_in, script_path)
            predict_source = Path(runtime.__file__).read_text(encoding="utf-8")
            (Path(tmp) / "predict.py").write_text(predict_source, encoding="utf-8")
            (Path(tmp) / "preprocessing.json").write_text(json.dumps(preprocessing), encoding="utf-8")
            expected = runtime.decode_outputs(predict_raw(reference, encoded), preprocessing)
            scale = target_scale(preprocessing, expected)
            _check_predict_py(Path(tmp), rows, expected, scale=scale)
            images = (
                _check_predict_py_on_images(Path(tmp), reference, rows, preprocessing)
                if "image" in preprocessing
                else 0
            )
            metric = metric_of(preprocessing["target"], preprocessing["task"])
            record = {
                **(extra or {}),
                "metric": {"name": metric.name, "label": metric.label, "higher_is_better": metric.higher_is_better},
                "metrics": metrics,
                **({"importance": ranked(imp)} if (imp := (metrics.get("test") or {}).get("importance")) else {}),
                **({"splits": splits} if splits else {}),
                "costs": costs.to_dict(),
                "versions": _versions(),
                "checks": {
                    "rows": len(rows),
                    "rows_source": "given" if check_rows else "synthetic",
                    "onnx_max_abs_diff": diff,
                    "onnx_tolerance": ONNX_TOLERANCE,
                    **int8_checks,
                    "predict_py_reproduces_predictions": True,
                    **(
                        {"predict_py_tolerance_target_std": PARITY_TOLERANCE}
                        if preprocessing["task"] != "classification"
                        else {}
                    ),
                    **({"predict_py_images": images} if images else {}),
                },
            }
            texts = {
                "preprocessing.json": json.dumps(preprocessing, indent=2),
                "architecture.json": json.dumps({"genome": architecture, "layers": layers}, indent=2),
                "metrics.json": json.dumps(record, indent=2, default=str),
                "MODEL_CARD.md": model_card(
                    architecture=architecture,
                    layers=layers,
                    preprocessing=preprocessing,
                    metrics=metrics,
                    costs=costs,
                    dataset_name=dataset_name,
                    splits=splits,
                ),
                "predict.py": predict_source,
            }
            with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for name, path in (("model.onnx", onnx_path), ("model.pt", script_path)):
                    bundle.writestr(_entry(name), path.read_bytes())
                for name, text in texts.items():
                    bundle.writestr(_entry(name), text)
        os.replace(part, out_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out_path
