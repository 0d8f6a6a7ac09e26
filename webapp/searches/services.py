"""Writes for search jobs: create and queue, execute (in the worker), cancel, record trials,
build bundles and predictions. The database is the source of truth; events follow commits."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

import nas_engine
from webapp.searches import events
from webapp.searches.models import SearchJob, Trial

logger = logging.getLogger(__name__)

Status = SearchJob.Status
CANCEL_POLL_SECONDS = 0.5
INTERNAL_ERROR = "An internal error stopped the search. Staff can find the details in the worker log."


def search_create(
    *,
    user,
    dataset,
    target: str,
    task: str,
    budget_seconds: int,
    strategy: str = "random",
    seed: int = 0,
    max_trials: int | None = None,
    max_params: int | None = None,
) -> SearchJob:
    """Create a queued job and send it to a worker once the row is committed."""
    from webapp.searches.tasks import run_search  # tasks import this module

    with transaction.atomic():
        job = SearchJob.objects.create(
            owner=user,
            dataset=dataset,
            target=target,
            task=task,
            strategy=strategy,
            seed=seed,
            budget_seconds=budget_seconds,
            max_trials=max_trials,
            max_params=max_params,
            message="Waiting for a worker",
        )
        transaction.on_commit(lambda: run_search.delay(job.pk))
    return job


def search_cancel(*, job: SearchJob) -> bool:
    """Mark a queued or running job cancelled; a running worker stops at its next check.

    Returns:
        True if the job was cancelled now, False if it had already ended.
    """
    changed = SearchJob.objects.filter(pk=job.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED, finished_at=timezone.now(), message="Cancelled"
    )
    if changed:
        job.refresh_from_db()
        transaction.on_commit(lambda: events.send(job.pk, events.status_payload(job)))
    return bool(changed)


def search_execute(*, job_id: int) -> None:
    """Run one queued job to its end (called by the Celery task).

    The job is claimed atomically, so a job sent twice runs once. Every outcome ends in a
    saved final state: finished, cancelled, or failed with a message.
    """
    claimed = SearchJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now(), message="Loading the data"
    )
    if claimed != 1:
        logger.info("Search %s is not queued (gone, cancelled or taken); skipping it.", job_id)
        return
    job = SearchJob.objects.select_related("dataset").get(pk=job_id)
    events.send(job.pk, events.status_payload(job))
    try:
        result = _run_engine(job)
    except nas_engine.NasError as exc:
        _search_end(job, Status.FAILED, message="Failed", error=str(exc))
    except Exception:
        logger.exception("Search %s failed", job_id)
        _search_end(job, Status.FAILED, message="Failed", error=INTERNAL_ERROR)
    else:
        if result.cancelled:
            job.refresh_from_db()
            events.send(job.pk, events.status_payload(job))
            return
        completed = sum(trial.status == nas_engine.TrialStatus.COMPLETED for trial in result.trials)
        message = f"Finished: {completed} models trained, {len(result.front)} on the front"
        if completed == 0:
            message = "Finished, but no architecture met the constraints; loosen them and try again"
        _search_end(job, Status.FINISHED, message=message)


def _run_engine(job: SearchJob) -> nas_engine.SearchResult:
    data = nas_engine.prepare_data(job.dataset.file.path, target=job.target, task=job.task, seed=job.seed)
    SearchJob.objects.filter(pk=job.pk).update(
        preprocessing=data.preprocessing, n_inputs=data.n_features, n_outputs=data.n_outputs
    )
    config = nas_engine.SearchConfig(
        target=job.target,
        task=job.task,
        budget_seconds=job.budget_seconds,
        max_trials=job.max_trials,
        max_params=job.max_params,
        max_flops=job.max_flops,
        max_latency_ms=job.max_latency_ms,
        strategy=job.strategy,
        seed=job.seed,
    )
    Path(job.artifacts_dir).mkdir(parents=True, exist_ok=True)
    return nas_engine.run_search(
        config,
        data,
        on_trial=lambda result: trial_record(job=job, result=result),
        on_status=lambda event: _search_progress(job, event),
        should_cancel=_cancel_check(job.pk),
        artifacts_dir=job.artifacts_dir,
    )


def _cancel_check(job_id: int):
    """A should_cancel callback that reads the job's status at most every CANCEL_POLL_SECONDS."""
    last = {"at": 0.0, "cancelled": False}

    def should_cancel() -> bool:
        now = time.monotonic()
        if not last["cancelled"] and now - last["at"] >= CANCEL_POLL_SECONDS:
            last["at"] = now
            last["cancelled"] = not SearchJob.objects.filter(pk=job_id, status=Status.RUNNING).exists()
        return last["cancelled"]

    return should_cancel


def _search_progress(job: SearchJob, event: nas_engine.StatusEvent) -> None:
    if event.status != "running":
        return  # the end state is saved by search_execute, from the result
    updated = SearchJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        progress=event.progress, message=event.message[:500]
    )
    if updated:
        job.progress, job.message = event.progress, event.message[:500]
        events.send(job.pk, events.status_payload(job))


def _search_end(job: SearchJob, status: str, *, message: str, error: str = "") -> None:
    # Only a running job ends here: a job cancelled meanwhile stays cancelled.
    SearchJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=status,
        progress=1.0 if status == Status.FINISHED else job.progress,
        message=message,
        error=error,
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    events.send(job.pk, events.status_payload(job))


def trial_record(*, job: SearchJob, result: nas_engine.TrialResult) -> Trial:
    """Save one evaluated architecture, refresh the Pareto front, then push the trial event."""
    costs = result.costs
    with transaction.atomic():
        trial = Trial.objects.create(
            job=job,
            number=result.number,
            status=result.status.value,
            architecture=result.architecture,
            arch_hash=result.arch_hash,
            metrics=result.metrics,
            score=result.metrics.get("score"),
            params=costs.params,
            flops=costs.flops,
            latency_ms=costs.latency_ms,
            size_bytes=costs.size_bytes,
            train_seconds=result.train_seconds,
            message=result.message,
            weights_path=result.weights_path or "",
        )
        front = _refresh_front(job)
    trial.on_front = trial.pk in front
    events.send(job.pk, events.trial_payload(trial, front))
    return trial


def _refresh_front(job: SearchJob) -> list[int]:
    """Recompute on_front for the job's completed trials: accuracy/R² up, parameters down."""
    completed = list(
        job.trials.filter(status=Trial.Status.COMPLETED, score__isnull=False).values_list("id", "score", "params")
    )
    indices = nas_engine.pareto_front([(score, params) for _, score, params in completed])
    front = [completed[i][0] for i in indices]
    job.trials.update(on_front=Case(When(id__in=front, then=Value(True)), default=Value(False)))
    return front


def _load_trial_model(trial: Trial):
    job = trial.job
    if trial.status != Trial.Status.COMPLETED or not trial.weights_path or job.preprocessing is None:
        raise nas_engine.NasError("This trial has no trained model to export.")
    if not Path(trial.weights_path).exists():
        raise nas_engine.NasError("This trial's trained weights are missing on the server.")
    return nas_engine.load_model(trial.architecture, trial.weights_path, n_inputs=job.n_inputs, n_outputs=job.n_outputs)


def trial_bundle(*, trial: Trial) -> Path:
    """The trial's model bundle (.zip), exported once and kept beside the job's other files."""
    path = Path(trial.job.artifacts_dir) / "bundles" / f"trial_{trial.number}.zip"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _load_trial_model(trial)
    job = trial.job
    metrics = {
        "validation": trial.metrics,
        "costs": trial.to_dict()["costs"],
        "train_seconds": trial.train_seconds,
        "seed": job.seed,
        "trial": trial.number,
        "search": job.pk,
    }
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
        )
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)
    return path


def trial_predictions(*, trial: Trial, csv_path: str) -> list:
    """The trial's predictions for every row of a CSV, computed in-process with torch."""
    return nas_engine.predict_csv(_load_trial_model(trial), trial.job.preprocessing, csv_path)
