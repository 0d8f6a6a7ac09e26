"""Model downloads of a trial: the verified bundle (.zip) and in-process predictions."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nas_engine
from nas_engine import runtime
from webapp.searches.models import Trial

CHECK_ROWS = 200  # raw dataset rows each bundle is verified on before it is offered


def _load_trial_model(trial: Trial):
    """The trial's model: refit on train+validation when the worker did that, else as searched."""
    job = trial.job
    weights = trial.final_weights_path or trial.weights_path
    if trial.status not in Trial.WITH_MODEL or not weights or job.preprocessing is None:
        raise nas_engine.NasError("This trial has no trained model to export.")
    if not Path(weights).exists():
        raise nas_engine.NasError("This trial's trained weights are missing on the server.")
    return nas_engine.load_model(trial.architecture, weights, n_inputs=job.n_inputs, n_outputs=job.n_outputs)


def trial_bundle(*, trial: Trial) -> Path:
    """The trial's model bundle (.zip), exported and verified once, then kept beside the job's files."""
    path = Path(trial.job.artifacts_dir) / "bundles" / f"trial_{trial.number}.zip"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _load_trial_model(trial)
    job = trial.job
    metrics = {
        "validation": trial.metrics,
        "test": trial.test_metrics,
        "refit_on_train_and_validation": bool(trial.final_weights_path),
        "train_seconds": trial.train_seconds,
    }
    check_rows = runtime.read_csv_rows(job.dataset.file.path)[:CHECK_ROWS]
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
            extra={"seed": job.seed, "search": job.pk, "trial": trial.number, "objectives": job.objectives},
            costs=nas_engine.Costs(**trial.to_dict()["costs"]),
            check_rows=check_rows,
        )
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)
    return path


def trial_predictions(*, trial: Trial, csv_path: str) -> list:
    """The trial's predictions for every row of a CSV, computed in-process with torch."""
    return nas_engine.predict_csv(_load_trial_model(trial), trial.job.preprocessing, csv_path)
