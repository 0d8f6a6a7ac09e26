"""Files made from a trial's model that take a worker seconds to minutes: its bundle (.zip), its
predictions for every row of the job's dataset (.csv) and its test-split evaluation (kept on the
trial). A web request never makes them: it serves what is ready, else asks a worker once (however
many clicks come meanwhile) and says how far the work has got, for the page to poll.

Where the work stands is kept in the cache (Redis, shared by every web process and worker) under a
key named by the trial and the file it makes, so a refit (new weights: a new file name) starts
afresh. A queued or running entry expires if its worker dies, so a later request asks again; a
failure is told once, to the next request, then forgotten, so the one after tries again.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

import nas_engine
from nas_engine import runtime
from nas_engine.evaluator import EVAL_CHUNK, predict_raw
from nas_engine.profiling import WarningKind
from webapp.searches import bundles, dispatch, evaluation
from webapp.searches.models import Trial
from webapp.searches.spreadsheet import spreadsheet_safe

logger = logging.getLogger(__name__)

BUNDLE, PREDICTIONS, EVALUATION = "bundle", "predictions", "evaluation"
KINDS = (BUNDLE, PREDICTIONS, EVALUATION)
WHAT = {BUNDLE: "the model bundle", PREDICTIONS: "the predictions", EVALUATION: "the test-split evaluation"}

QUEUED_SECONDS = 15 * 60  # a queued request older than this is sent again (its message may be lost)
RUNNING_SECONDS = 60  # a running entry lives this long past its worker's last beat
BEAT_SECONDS = 10  # how often a worker renews its entry while one long call (an export) runs
FAILED_SECONDS = 10 * 60  # a failure nobody asked about is forgotten after this long
PREDICT_CHUNK = 4 * EVAL_CHUNK  # rows predicted at a time (a multiple of the engine's own chunk: same numbers)
INTERNAL_ERROR = (
    "The server could not prepare this file (an internal error, logged for the operator). Try again in a "
    "minute, or tell the operator if it keeps happening."
)
BROKER_DOWN = "The server could not start preparing this file: its task queue is not answering. Try again in a minute."


class DownloadUnavailable(Exception):
    """The work could not be asked for (the broker is down); ``status`` is the HTTP status to answer."""

    status = 503


@dataclass(frozen=True)
class Progress:
    """Where the preparation of one file stands: ``queued``, ``running``, ``failed`` or ``ready``."""

    state: str
    progress: float = 0.0  # 0..1; 0 while nothing can be measured yet
    message: str = ""
    started: float = 0.0  # time.time() when it was asked for
    status: int = 202  # the HTTP status to answer (a failure's own: 409 no model, 507 disk full...)

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def to_json(self) -> dict:
        body = asdict(self)
        body["seconds"] = round(max(0.0, time.time() - self.started), 1) if self.started else 0.0
        if self.failed:
            body["error"] = self.message
        return body


def check_model(trial: Trial) -> None:
    """Refuse at once, in the request, what no worker could make: no trained model, weights gone.

    Raises:
        NasError: The reason, in words for the page.
    """
    weights = trial.served_weights
    if trial.status not in Trial.WITH_MODEL or not weights or trial.job.preprocessing is None:
        raise nas_engine.NasError(f"Trial {trial.number} was {trial.status}; it has no model.")
    if not Path(weights).exists():
        raise nas_engine.NasError("This trial's trained weights are missing on the server.")


def file_path(trial: Trial, kind: str) -> Path:
    """Where a prepared file is kept: named by the weights it was made from (``bundles.weights_key``)."""
    if kind == BUNDLE:
        return bundles.bundle_path(trial)
    if kind == PREDICTIONS:
        key = bundles.weights_key(trial)
        return Path(trial.job.artifacts_dir) / "downloads" / f"trial_{trial.number}-{key}-predictions.csv"
    raise ValueError(f"{kind} is not kept as a file")


def is_ready(trial: Trial, kind: str) -> bool:
    if kind == EVALUATION:
        return evaluation.cached_test_evaluation(trial) is not None
    return file_path(trial, kind).is_file()


def _key(trial: Trial, kind: str) -> str:
    made_from = bundles.weights_key(trial) if kind == EVALUATION else file_path(trial, kind).name
    return f"downloads:{trial.pk}:{kind}:{made_from}"


def request(trial: Trial, kind: str) -> Progress:
    """Ask a worker for the file unless one is already at it; where that work stands.

    A failure is answered once (its entry is removed), so the next request asks again.

    Raises:
        DownloadUnavailable: The task could not be sent.
    """
    key = _key(trial, kind)
    queued = Progress(state="queued", message="Waiting for a free worker…", started=time.time())
    if cache.add(key, asdict(queued), QUEUED_SECONDS):  # atomic: one of many concurrent clicks gets here
        try:
            dispatch.send(dispatch.PREPARE_DOWNLOAD, [trial.pk, kind, key], queue=settings.NAS_QUEUES["default"])
        except Exception as exc:
            cache.delete(key)
            logger.error("Could not queue %s of trial %s: %s", kind, trial.pk, exc)
            raise DownloadUnavailable(BROKER_DOWN) from exc
        return queued
    stored = cache.get(key)
    if stored is None:  # it ended (or expired) just now: the next poll finds the file or asks again
        return queued
    progress = Progress(**stored)
    if progress.failed:
        cache.delete(key)
    return progress


# --- in the worker -------------------------------------------------------------------------------


class _Reporter:
    """Writes the task's progress to its cache entry, and renews it every BEAT_SECONDS from a thread,
    so the entry outlives one long call (an export) but not a dead worker."""

    def __init__(self, key: str, started: float) -> None:
        self.key, self.started = key, started
        self.current = Progress(state="running", message="Starting…", started=started)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __call__(self, progress: float, message: str) -> None:
        self.current = Progress(state="running", progress=progress, message=message, started=self.started)
        cache.set(self.key, asdict(self.current), RUNNING_SECONDS)

    def _beat(self) -> None:
        while not self.stopped.wait(BEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed beat only shortens the entry's life
                cache.set(self.key, asdict(self.current), RUNNING_SECONDS)

    def __enter__(self) -> _Reporter:
        self(0.0, "Starting…")
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join()

    def fail(self, message: str, status: int) -> None:
        failed = Progress(state="failed", message=message, started=self.started, status=status)
        cache.set(self.key, asdict(failed), FAILED_SECONDS)


def prepare(*, trial_id: int, kind: str, key: str = "") -> None:
    """Make the file (the worker's side of ``request``, whose cache entry ``key`` names); a failure is
    kept there for the page, never raised."""
    try:
        trial = Trial.objects.select_related("job__dataset").filter(pk=trial_id).first()
    except Exception:  # the database is down or not what this code expects: say so, never stay "queued"
        logger.exception("Preparing %s of trial %s failed.", kind, trial_id)
        if key:
            cache.set(key, asdict(Progress(state="failed", message=INTERNAL_ERROR, status=500)), FAILED_SECONDS)
        return
    if trial is None or kind not in KINDS:
        logger.info("Trial %s no longer exists (or %r is no file); nothing to prepare.", trial_id, kind)
        if key:
            cache.delete(key)
        return
    key = key or _key(trial, kind)
    stored = cache.get(key) or {}
    if is_ready(trial, kind):  # a second message for the same file (its entry had expired)
        cache.delete(key)
        return
    with _Reporter(key, stored.get("started") or time.time()) as report:
        try:
            check_model(trial)
            if kind == BUNDLE:
                report(0.1, "Exporting to ONNX and TorchScript, then checking the bundle's predict.py…")
                bundles.trial_bundle(trial=trial)
            elif kind == PREDICTIONS:
                write_predictions(trial, report=report)
            else:
                report(0.1, "Rebuilding the test split and scoring the model on it…")
                evaluation.trial_test_evaluation(trial=trial)
        except bundles.BundleStorageError as exc:
            report.fail(str(exc), exc.status)
            return
        except nas_engine.NasError as exc:
            report.fail(str(exc), 409)
            return
        except OSError as exc:  # the predictions' file could not be written
            logger.error("Preparing %s of trial %s could not write its file: %s", kind, trial_id, exc)
            report.fail(*_storage_failure(exc))
            return
        except Exception:
            logger.exception("Preparing %s of trial %s failed.", kind, trial_id)
            report.fail(INTERNAL_ERROR, 500)
            return
    cache.delete(key)


def _storage_failure(exc: OSError) -> tuple[str, int]:
    if exc.errno in bundles.NO_ROOM:
        return (
            "The server has no room to save this file right now (its disk is full). Nothing was saved; try again "
            "later, or ask the operator to free disk space.",
            507,
        )
    return (
        f"The server could not save this file ({exc.strerror or 'a storage error'}). Nothing was saved; try again "
        "in a minute, or tell the operator if it keeps happening.",
        503,
    )


@contextlib.contextmanager
def _atomic_text(path: Path) -> Iterator:
    """A text file written under a temporary name beside ``path``, renamed onto it only when complete:
    ``path`` is either absent or whole, whatever happens meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=path.suffix)
    try:
        with open(handle, "w", newline="", encoding="utf-8") as out:
            yield out
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)


def _dataset_chunks(dataset) -> Iterator[list[dict]]:
    """The dataset's rows as raw cells, PREDICT_CHUNK at a time (read as it goes, never all at once;
    an image set, bounded when it was uploaded, is read whole)."""
    if dataset.image:
        rows = bundles.dataset_rows(dataset)
        for start in range(0, len(rows), PREDICT_CHUNK):
            yield rows[start : start + PREDICT_CHUNK]
        return
    with open(dataset.file.path, newline="", encoding="utf-8-sig") as handle:  # as runtime.read_csv_rows
        reader = csv.DictReader(handle)
        while chunk := [dict(row) for row in itertools.islice(reader, PREDICT_CHUNK)]:
            yield chunk


def id_columns(trial: Trial) -> list[str]:
    """The columns the search left out as IDs (the profile flagged them): they name each prediction's row."""
    job = trial.job
    flagged = {w["column"] for w in job.dataset.profile.get("warnings", []) if w["kind"] == WarningKind.ID_LIKE}
    return [name for name in job.ignore or [] if name in flagged]


def write_predictions(trial: Trial, *, report: Callable[[float, str], None]) -> Path:
    """The model's prediction for every row of the job's dataset, as CSV, one row each in the dataset's
    order, computed as ``nas_engine.predict_csv`` does, a chunk at a time. Each line says which row it
    predicts: ``row`` (its number among the data rows, from 1), the ID columns the search left out,
    then the target's actual value beside the ``prediction``.

    Raises:
        NasError: No usable model, or the dataset cannot be read.
    """
    path = file_path(trial, PREDICTIONS)
    report(0.0, "Loading the model…")
    model = bundles.load_trial_model(trial)
    preprocessing = trial.job.preprocessing
    dataset = trial.job.dataset
    total = max(dataset.rows or 0, 1)
    done = 0
    ids, target = id_columns(trial), trial.job.target
    with _atomic_text(path) as out:
        writer = csv.writer(out)
        writer.writerow([spreadsheet_safe(name) for name in ["row", *ids, target, "prediction"]])
        try:
            for rows in _dataset_chunks(dataset):
                outputs = predict_raw(model, runtime.encode_rows(rows, preprocessing))
                predicted = runtime.decode_outputs(outputs, preprocessing)
                writer.writerows(
                    [
                        done + i + 1,
                        *(spreadsheet_safe(row.get(name) or "") for name in [*ids, target]),
                        spreadsheet_safe(value),
                    ]
                    for i, (row, value) in enumerate(zip(rows, predicted, strict=True))
                )
                done += len(rows)
                report(min(done / total, 0.99), f"Predicted {done:,} of {dataset.rows or done:,} rows…")
        except (ValueError, UnicodeDecodeError) as exc:
            raise nas_engine.DatasetError(str(exc)) from None
    for old in path.parent.glob(f"trial_{trial.number}-*-predictions.csv"):  # made from replaced weights
        if old != path:
            old.unlink(missing_ok=True)
    return path
