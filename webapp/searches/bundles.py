"""Model downloads of a trial: the verified bundle (.zip) and in-process predictions; and what the
model page shows: the model card, the layer diagram, predictions for an uploaded CSV."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import nas_engine
from nas_engine import compress, runtime
from nas_engine.evaluator import predict_raw
from nas_engine.importance import contributions
from nas_engine.results import is_compressed
from webapp.searches.models import Trial

logger = logging.getLogger(__name__)

CHECK_ROWS = 200  # raw dataset rows each bundle is verified on before it is offered


def load_trial_model(trial: Trial, *, as_served: bool = True, scored: bool = False):
    """The trial's model: trained on every row, or refit on train+validation, when the worker did
    that, else as searched; with ``scored``, the one its test score came from (``Trial.scored_weights``).

    An int8 trial's predictions come from its int8 twin (what its bundle's quantized graph
    computes) unless ``as_served`` is False: the export quantizes the float network itself."""
    job = trial.job
    weights = trial.scored_weights if scored else trial.served_weights
    if trial.status not in Trial.WITH_MODEL or not weights or job.preprocessing is None:
        raise nas_engine.NasError("This trial has no trained model to export.")
    if not Path(weights).exists():
        raise nas_engine.NasError("This trial's trained weights are missing on the server.")
    model = nas_engine.load_final_model(trial.architecture, weights, n_inputs=job.n_inputs, n_outputs=job.n_outputs)
    if as_served and compress.is_int8(trial.architecture):
        return compress.int8_twin(model)
    return model


# TorchScript's writer aborts the whole process when a write fails (measured under torch 2.13:
# std::__ios_failure, terminate), which would take the web server down; so an export only starts
# with this much room free for the bundle and the temporary files.
MIN_FREE_BYTES = 64 * 1024 * 1024
NO_ROOM = errno.ENOSPC, errno.EDQUOT, errno.EFBIG


class BundleStorageError(Exception):
    """The bundle could not be written (disk full, read-only or failing storage); nothing was kept.

    ``status`` is the HTTP status to answer: 507 when there is no room, else 503.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def _check_free_space(*folders: Path) -> None:
    for folder in folders:
        if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, "less than 64 MB free", str(folder))


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn a failed write into BundleStorageError with a message a user can act on."""
    try:
        yield
    except OSError as exc:
        logger.error("A model bundle could not be written: %s", exc)
        if exc.errno in NO_ROOM:
            message = (
                "The server has no room to save this model bundle right now (its disk is full). Nothing was "
                "saved; try again later, or ask the operator to free disk space."
            )
            raise BundleStorageError(message, status=507) from exc
        message = (
            f"The server could not save this model bundle ({exc.strerror or 'a storage error'}). Nothing was "
            "saved; try again in a minute, or tell the operator if it keeps happening."
        )
        raise BundleStorageError(message, status=503) from exc


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def weights_key(trial: Trial) -> str:
    """Names the weights the trial's model is served from (the refit's once recorded, else the
    searched ones) with their file's size and modification time: what is cached from a model (its
    bundle, its test-split evaluation) is served only while this key is the same, so a refit that
    replaces the weights, or a conclusion that writes them again, is never answered from a cache."""
    path = trial.served_weights
    try:
        info = os.stat(path) if path else None
    except OSError:
        info = None
    return _digest([path, info.st_size if info else None, info.st_mtime_ns if info else None])


def bundle_path(trial: Trial) -> Path:
    """Where the trial's bundle is kept: named by its weights and by what its card records (test
    scores, the reference, the splits), so a bundle made before the refit is never served after it."""
    job = trial.job
    key = _digest([weights_key(trial), _card_metrics(trial), job.reference, job.split_rows])
    return Path(job.artifacts_dir) / "bundles" / f"trial_{trial.number}-{key}.zip"


def _drop_other_bundles(path: Path, number: int) -> None:
    """Delete the trial's bundles made from other weights or another card (no longer served)."""
    for old in [*path.parent.glob(f"trial_{number}-*.zip"), path.parent / f"trial_{number}.zip"]:
        if old != path:
            old.unlink(missing_ok=True)


def trial_bundle(*, trial: Trial) -> Path:
    """The trial's model bundle (.zip), exported and verified once for its current weights
    (``bundle_path``), then kept beside the job's files.

    Raises:
        nas_engine.NasError: The trial has no model, or the bundle failed its checks.
        BundleStorageError: It could not be written; no file (partial or whole) is left behind.
    """
    path = bundle_path(trial)
    if path.exists():
        return path
    model = load_trial_model(trial, as_served=False)  # the export quantizes the float network itself
    job = trial.job
    metrics = _card_metrics(trial)
    check_rows = dataset_rows(job.dataset, max_rows=CHECK_ROWS)
    with _storage_errors():
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_free_space(path.parent, Path(tempfile.gettempdir()))
        # Export under a unique name, then rename: two requests for one bundle never mix bytes.
        handle, part = tempfile.mkstemp(dir=path.parent, suffix=".zip")
        os.close(handle)
        try:
            nas_engine.export_bundle(
                model=model,
                architecture=trial.architecture,
                preprocessing=job.preprocessing,
                metrics=metrics,
                out_path=part,
                dataset_name=job.dataset.name,
                extra={
                    "seed": job.seed,
                    "search": job.pk,
                    "trial": trial.number,
                    "objectives": job.objectives,
                    "augment": job.augment,
                    "config": job.to_config().to_dict(),  # every setting, as the CLI's bundles record them
                    **({"reference": job.reference} if job.reference else {}),
                },
                costs=nas_engine.Costs(**trial.to_dict()["costs"]),
                check_rows=check_rows,
                splits=job.split_rows,
            )
            os.replace(part, path)
        finally:
            Path(part).unlink(missing_ok=True)
    current = Trial.objects.select_related("job").filter(pk=trial.pk).first()
    if current is not None and bundle_path(current) == path:  # not when the refit came while this exported
        _drop_other_bundles(path, trial.number)
    return path


def dataset_rows(dataset, *, max_rows: int | None = None) -> list[dict]:
    """The dataset's first ``max_rows`` rows (all when None) as raw cells, one dict per row; an image
    set reads as its pixel columns and ``label``."""
    path = dataset.file.path
    if dataset.image:
        return nas_engine.dataset.read_table(path, max_rows=max_rows).to_dict("records")
    if max_rows is None:
        return runtime.read_csv_rows(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:  # as read_csv_rows, up to max_rows only
        return [dict(row) for row in itertools.islice(csv.DictReader(handle), max_rows)]


def trial_predictions(*, trial: Trial, csv_path: str) -> list:
    """The trial's predictions for every row of a CSV, computed in-process with torch."""
    return nas_engine.predict_csv(load_trial_model(trial), trial.job.preprocessing, csv_path)


def trial_dataset_predictions(*, trial: Trial) -> list:
    """The trial's predictions for every row of its job's dataset (a CSV or an image set)."""
    dataset = trial.job.dataset
    if not dataset.image:
        return trial_predictions(trial=trial, csv_path=dataset.file.path)
    preprocessing = trial.job.preprocessing
    matrix = runtime.encode_rows(dataset_rows(dataset), preprocessing)
    return runtime.decode_outputs(predict_raw(load_trial_model(trial), matrix), preprocessing)


# --- the model page: its card, its layer diagram, and "try it" predictions ---------------------

TRY_MAX_ROWS = 10_000  # rows one "try it" upload may hold: answered while the person waits
EXPLAINED_ROWS = 20  # rows of a "try it" whose prediction is explained input by input
TRY_MAX_COLUMNS = 256  # columns it may hold (twice the model's own when it has more): every cell is read
_NAMES_SHOWN = 10  # missing columns named in an error before "and N more"


def _card_metrics(trial: Trial) -> dict:
    """The metrics the trial's bundle records (its MODEL_CARD.md lists the same). A compressed
    variant's final weights are its compressed ones, not a refit."""
    return {
        "validation": trial.metrics,
        "test": trial.test_metrics,
        "refit_on_train_and_validation": bool(trial.final_weights_path) and not is_compressed(trial.architecture),
        "refit_on_all_rows": bool(trial.served_weights_path),
        "train_seconds": trial.train_seconds,
    }


def trial_model_card(*, trial: Trial) -> nas_engine.ModelCard:
    """The trial's model card as data: what its bundle's MODEL_CARD.md says, for the model page."""
    job = trial.job
    return nas_engine.build_model_card(
        architecture=trial.architecture,
        layers=nas_engine.describe_architecture(trial.architecture),
        preprocessing=job.preprocessing,
        metrics=_card_metrics(trial),
        costs=nas_engine.Costs(**trial.to_dict()["costs"]),
        dataset_name=job.dataset.name,
        splits=job.split_rows,
    )


def trial_layer_diagram(*, trial: Trial) -> tuple[nas_engine.LayerBox, ...] | None:
    """The trial's layers as diagram boxes, or None before the job's data was prepared."""
    if trial.job.preprocessing is None:
        return None
    return nas_engine.layer_diagram(trial.architecture, trial.job.preprocessing)


@dataclass(frozen=True)
class TriedRows:
    """Predictions for an uploaded CSV: one per row and, for classification, every class's probability."""

    predictions: list
    labels: list[str] = field(default_factory=list)  # classes in the model's output order
    probabilities: np.ndarray | None = None  # rows × classes
    # For the first rows: the inputs that moved each prediction most (importance.contributions).
    contributions: list[list[tuple[str, float]]] = field(default_factory=list)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def try_max_columns(preprocessing: dict) -> int:
    """The most columns a "try it" file may have for this model: TRY_MAX_COLUMNS, or twice the
    model's own columns when it has more (room for the target, IDs and notes beside them)."""
    return max(TRY_MAX_COLUMNS, 2 * len(preprocessing["feature_columns"]))


def _too_many_columns(count: int, max_columns: int, preprocessing: dict, *, where: str) -> nas_engine.DatasetError:
    return nas_engine.DatasetError(
        f"{where} has {count:,} columns; at most {max_columns:,} are read here, and this model uses "
        f"{len(preprocessing['feature_columns']):,}. Leave out the columns it does not use, or run the "
        "downloaded bundle's predict.py on the file."
    )


def _check_try_csv(csv_path: str, preprocessing: dict, *, max_rows: int) -> None:
    """Refuse a file the model cannot predict, saying what to fix.

    Raises:
        DatasetError: Not UTF-8 CSV text, no rows, too many rows or columns, or feature columns missing.
    """
    rows = 0
    max_columns = try_max_columns(preprocessing)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header and len(header) > max_columns:  # refused before a single data row is read
                raise _too_many_columns(len(header), max_columns, preprocessing, where="The file")
            for row in reader:
                rows += bool(row)  # blank lines are skipped, as predict.py's reader skips them
                if len(row) > max_columns:
                    where = f"Row {rows} (line {reader.line_num})"
                    raise _too_many_columns(len(row), max_columns, preprocessing, where=where)
                if rows > max_rows:
                    raise nas_engine.DatasetError(
                        f"The file has more than {max_rows:,} rows; try at most {max_rows:,} at a time here, "
                        "or run the downloaded bundle's predict.py on the whole file."
                    )
    except UnicodeDecodeError:
        raise nas_engine.DatasetError(
            "This is not a CSV text file (it is not UTF-8 text). Save it as CSV (UTF-8) and upload it again."
        ) from None
    except csv.Error as exc:
        raise nas_engine.DatasetError(f"This file cannot be read as CSV ({exc}).") from None
    if not header:
        raise nas_engine.DatasetError("The file is empty: it needs a header row naming the columns, then data rows.")
    absent = runtime.missing_columns(header, preprocessing)
    if absent and len(absent) == len(preprocessing["features"]):
        raise nas_engine.DatasetError(
            "None of the model's columns are in the first row. The first row must name the columns, as in the "
            f"training data ({_names(preprocessing['feature_columns'])})."
        )
    if absent:
        raise nas_engine.DatasetError(f"The file is missing column(s) the model needs: {_names(absent)}.")
    if rows == 0:
        raise nas_engine.DatasetError("The file has a header row but no data rows.")


def trial_try_predictions(*, trial: Trial, csv_path: str, max_rows: int = TRY_MAX_ROWS) -> TriedRows:
    """Predict every row of an uploaded CSV with the trial's model, as the predictions download does.

    Raises:
        DatasetError: The file cannot be predicted (the message says why, for the file field).
        NasError: The trial has no usable model.
    """
    preprocessing = trial.job.preprocessing
    _check_try_csv(csv_path, preprocessing, max_rows=max_rows)
    model = load_trial_model(trial)
    # The labels come from predict_csv itself, the code behind the predictions download and the
    # bundle's check, so the page can never show another answer than predict.py.
    predictions = nas_engine.predict_csv(model, preprocessing, csv_path)
    encoded = runtime.encode_rows(runtime.read_csv_rows(csv_path), preprocessing)
    why = [contributions(model, row, preprocessing) for row in encoded[:EXPLAINED_ROWS]]
    if preprocessing["task"] != "classification" or not predictions:
        return TriedRows(predictions=predictions, contributions=why)
    # An ensemble outputs log-averaged probabilities, so softmax gives the average for it too.
    logits = predict_raw(model, encoded)
    return TriedRows(
        predictions=predictions,
        labels=list(preprocessing["target"]["labels"]),
        probabilities=runtime.softmax(logits),
        contributions=why,
    )


def trial_try_images(*, trial: Trial, images: list[tuple[str, bytes]]) -> TriedRows:
    """Predict uploaded images with the trial's model: each is decoded and resized by the code the
    upload and the bundle's predict.py use (``runtime.image_rows``), so all three see the same pixels.

    Raises:
        DatasetError: An image cannot be decoded (the message names it).
        NasError: The trial has no usable model.
    """
    preprocessing = trial.job.preprocessing
    try:
        rows = runtime.image_rows(images, preprocessing["image"])
    except ValueError as exc:
        raise nas_engine.DatasetError(str(exc)) from None
    model = load_trial_model(trial)
    logits = predict_raw(model, runtime.encode_rows(rows, preprocessing))
    return TriedRows(
        predictions=runtime.decode_outputs(logits, preprocessing),
        labels=list(preprocessing["target"]["labels"]),
        probabilities=runtime.softmax(logits),
    )
