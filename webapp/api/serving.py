"""Predictions from a trial's bundle, answered by a model kept loaded between calls.

The model served is the bundle's own ``model.onnx`` with its ``preprocessing.json``, run by the
code the bundle's ``predict.py`` is made of (``nas_engine.runtime``): the endpoint answers exactly
what ``predict.py`` prints for the same rows. Loading an ONNX Runtime session costs tens of
milliseconds, so each web process keeps the API_MODEL_CACHE most recently used models. A bundle's
file name changes with its weights (``bundles.bundle_path``), so a refit model is never answered
from the cache.
"""

from __future__ import annotations

import json
import math
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from nas_engine import runtime


class BadRows(ValueError):
    """The rows cannot be predicted; the message says which and why."""


@dataclass(frozen=True)
class ServedModel:
    preprocessing: dict
    session: object  # onnxruntime.InferenceSession

    @property
    def columns(self) -> list[str]:
        return list(self.preprocessing["feature_columns"])

    def predict(self, rows: list[dict]) -> dict:
        """Predictions (and, for classification, each class's probability) for raw rows.

        Raises:
            BadRows: A row is not an object, lacks a column the model needs, or holds a list or an object.
        """
        cells = [_cells(i, row, self.preprocessing) for i, row in enumerate(rows)]
        if not cells:
            return {"predictions": [], "probabilities": None}
        outputs = self.session.run(["output"], {"input": runtime.encode_rows(cells, self.preprocessing)})[0]
        predictions = runtime.decode_outputs(outputs, self.preprocessing)
        if self.preprocessing["task"] != "classification":
            return {"predictions": predictions, "probabilities": None}
        labels = self.preprocessing["target"]["labels"]
        shares = runtime.softmax(np.asarray(outputs, dtype=np.float64))
        return {
            "predictions": predictions,
            "probabilities": [dict(zip(labels, map(float, row), strict=True)) for row in shares],
        }


def _cell(value) -> str | None:
    """A JSON value as the CSV cell ``predict.py`` would read: null is an empty (missing) cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(type(value).__name__)


def _cells(index: int, row, preprocessing: dict) -> dict:
    if not isinstance(row, dict):
        raise BadRows(f"Row {index + 1} is not an object of column: value.")
    absent = runtime.missing_columns(row.keys(), preprocessing)
    if absent:
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        raise BadRows(f"Row {index + 1} is missing column(s) the model needs: {shown}.")
    try:
        return {str(name): _cell(value) for name, value in row.items()}
    except TypeError as exc:
        raise BadRows(
            f"Row {index + 1} holds a {exc} value: each value must be a number, text, true/false or null."
        ) from None


_cache: OrderedDict[str, ServedModel] = OrderedDict()
_lock = threading.Lock()


def served_model(bundle: Path) -> ServedModel:
    """The bundle's model, loaded once per web process and kept among the API_MODEL_CACHE latest."""
    key = str(bundle)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = _load(bundle)
    with _lock:
        _cache[key] = model
        _cache.move_to_end(key)
        while len(_cache) > max(1, settings.API_MODEL_CACHE):
            _cache.popitem(last=False)
    return model


def _load(bundle: Path) -> ServedModel:
    import onnxruntime

    with zipfile.ZipFile(bundle) as archive:
        preprocessing = json.loads(archive.read("preprocessing.json"))
        onnx_bytes = archive.read("model.onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = settings.API_MODEL_THREADS
    session = onnxruntime.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    return ServedModel(preprocessing=preprocessing, session=session)


def cached_models() -> int:
    with _lock:
        return len(_cache)
