"""Writes for search jobs: create and queue, execute (in the worker), cancel, re-run, recover,
record trials. The database is the source of truth; events follow commits. Downloads are in
bundles.py."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

import nas_engine
from nas_engine.config import DEFAULT_REFIT
from nas_engine.pareto import dominates
from nas_engine.results import ENSEMBLE_SPACE, is_compressed, is_ensemble
from nas_engine.search_result import no_model_reason
from nas_engine.trial_runner import trial_time_limit
from webapp.accounts import notify
from webapp.searches import dispatch, events, selectors
from webapp.searches.leases import Lease, LeaseLost, cancel_check
from webapp.searches.models import DEFAULT_OBJECTIVES, ENGINE_SETTINGS, WEB_SETTINGS, SearchJob, SearchLogEntry, Trial

logger = logging.getLogger(__name__)

Status = SearchJob.Status
# Fail fast when the broker is down (about 1 s): the page must answer, and the reaper retries.
INTERNAL_ERROR = "An internal error stopped the search. Staff can find the details in the worker log."


def search_create(
    *,
    user,
    dataset,
    warm_start_from: SearchJob | None = None,
    parallel_trials: int | None = 0,
    name: str = "",
    notes: str = "",
    **engine_settings,
) -> SearchJob:
    """Create a queued job and send it to a worker once the row is committed.

    Args:
        user: Its owner.
        dataset: The dataset to search on.
        warm_start_from: A finished job of this user whose trials (and supernet) it starts from.
        parallel_trials: Models trained at once (0 or None: one per idle worker when it starts).
        name, notes: The owner's name for the search and notes on it.
        engine_settings: ``ENGINE_SETTINGS`` by name (``target``, ``task`` and ``budget_seconds`` at
            least); the others default to the model's (and so the engine's) defaults.

    Raises:
        TypeError: A keyword that is no engine setting.
    """
    unknown = sorted(set(engine_settings) - set(ENGINE_SETTINGS))
    if unknown:
        raise TypeError(f"search_create() got settings it does not know: {', '.join(unknown)}")
    engine_settings["objectives"] = list(engine_settings.get("objectives") or DEFAULT_OBJECTIVES)
    with transaction.atomic():
        job = SearchJob.objects.create(
            owner=user,
            dataset=dataset,
            warm_start_from=warm_start_from,
            parallel_trials=parallel_trials or 0,
            name=(name or "").strip()[:200],
            notes=(notes or "").strip()[:5000],
            message="Waiting for a worker",
            **engine_settings,
        )
        _queue_new(job, log_message=job.message)
    return job


def _queue_new(job: SearchJob, *, log_message: str) -> None:
    """Log a just-created job and send it to a worker once committed. Files left under its id by a
    deleted job (a database whose ids started again) are removed first: a new search never sees an
    earlier one's weights or bundles."""
    shutil.rmtree(job.artifacts_dir, ignore_errors=True)
    search_log_add(job_id=job.pk, status=job.status, message=log_message)
    transaction.on_commit(lambda: search_dispatch(job_id=job.pk))


def search_log_add(*, job_id: int, status: str, message: str, error: str = "") -> SearchLogEntry | None:
    """Add a line to the job's status log (shown on its page), unless it repeats the latest line:
    progress ticks that keep the same message add no rows.

    Returns:
        The new entry, or None when nothing was added.
    """
    text = (f"{message}: {error}" if error else message).strip()[:2000]
    latest = SearchLogEntry.objects.filter(job_id=job_id).order_by("-id").values_list("message", flat=True).first()
    if not text or text == latest:
        return None
    return SearchLogEntry.objects.create(job_id=job_id, status=status, message=text)


BROKER_DOWN = "The task queue is unreachable right now; the search is saved and starts once it is back."


def search_dispatch(*, job_id: int) -> bool:
    """Send run_search for a committed job. When the broker is down the job stays queued, undispatched,
    with a message saying so, and search_reap_stale sends it again later; nothing raises to the page.

    Returns:
        True if the message reached the broker.
    """
    try:
        dispatch.send(dispatch.RUN_SEARCH, [job_id], queue=settings.NAS_QUEUES["search"], retry=True)
    except dispatch.BROKER_ERRORS as exc:
        logger.error("Search %s not sent to the broker: %s", job_id, exc)
        if SearchJob.objects.filter(pk=job_id, status=Status.QUEUED).update(dispatched=False, message=BROKER_DOWN):
            search_log_add(job_id=job_id, status=Status.QUEUED, message=BROKER_DOWN)
        return False
    SearchJob.objects.filter(pk=job_id).update(
        dispatched=True, dispatched_at=timezone.now(), dispatches=F("dispatches") + 1
    )
    return True


def _end_if_active(job: SearchJob, **fields) -> bool:
    """End a queued or running job with ``fields`` (atomically, so an ended job stays as it ended),
    then tell its pages after commit. Returns True if this call ended it."""
    changed = SearchJob.objects.filter(pk=job.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        finished_at=timezone.now(), **fields
    )
    if changed:
        job.refresh_from_db()
        search_log_add(job_id=job.pk, status=job.status, message=job.message, error=job.error)
        transaction.on_commit(lambda: events.send(job.pk, events.status_payload(job)))
        notify.search_ended(job)
    return bool(changed)


def search_cancel(*, job: SearchJob) -> bool:
    """Mark a queued or running job cancelled; a running worker stops at its next check.

    Returns:
        True if the job was cancelled now, False if it had already ended.
    """
    return _end_if_active(job, status=Status.CANCELLED, message="Cancelled")


RERUN_FIELDS = ("owner", "dataset", *ENGINE_SETTINGS, *WEB_SETTINGS)


def search_rerun(*, job: SearchJob, user=None) -> SearchJob:
    """Queue a new job with the same dataset, settings and seed, for ``user`` (the same owner when
    None: what staff re-run stays its owner's)."""

    with transaction.atomic():
        fields = {name: getattr(job, name) for name in RERUN_FIELDS} | ({"owner": user} if user is not None else {})
        rerun = SearchJob.objects.create(**fields, rerun_of=job, message="Waiting for a worker")
        _queue_new(rerun, log_message=f"Re-run of search #{job.pk}; {rerun.message}")
    return rerun


def search_mark_failed(*, job: SearchJob, reason: str) -> bool:
    """Staff: end a queued or running job as failed, with the reason shown to its owner.

    Returns:
        True if the job was marked now, False if it had already ended.
    """
    return _end_if_active(job, status=Status.FAILED, message="Failed", error=reason[:2000])


def search_delete(*, job: SearchJob) -> None:
    """Delete the job and its trials, then (after commit) its weights and bundles on disk.

    A running job is cancelled first, so its worker stops instead of writing into a gone row.
    """
    search_cancel(job=job)
    folder = Path(job.artifacts_dir)
    job.delete()
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def search_claim(*, job_id: int, worker_host: str = "") -> Lease | None:
    """Take a queued job for this worker: mark it running and count the attempt. The attempt's
    number is the lease; the claim is atomic, so a job sent twice runs once.

    Returns:
        The lease, or None when the job is not queued (gone, cancelled or taken).
    """
    attempts = SearchJob.objects.filter(pk=job_id, status=Status.QUEUED).values_list("attempts", flat=True).first()
    if attempts is None:
        return None
    now = timezone.now()
    claimed = SearchJob.objects.filter(pk=job_id, status=Status.QUEUED, attempts=attempts).update(
        status=Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker_host=worker_host[:255],
        attempts=attempts + 1,
        message="Loading the data",
    )
    return Lease(job_id, attempts=attempts + 1) if claimed == 1 else None


@contextlib.contextmanager
def search_outcome(job: SearchJob, lease: Lease | None = None) -> Iterator[None]:
    """End the job as failed, with a reason its owner can act on, if the block raises; a lost lease
    ends nothing (the job is another worker's now, or already ended)."""
    try:
        yield
    except LeaseLost as exc:
        logger.warning("Search %s: stopping without writing: %s", job.pk, exc)
    except nas_engine.NasError as exc:
        _search_end(job, Status.FAILED, message="Failed", error=str(exc), lease=lease)
    except Exception:
        logger.exception("Search %s failed", job.pk)
        _search_end(job, Status.FAILED, message="Failed", error=INTERNAL_ERROR, lease=lease)


def search_end_with(job: SearchJob, result: nas_engine.SearchResult, lease: Lease | None = None) -> None:
    """Save the end state a finished engine run implies (a cancelled one is already saved)."""
    if result.cancelled:
        job.refresh_from_db()
        if lease is not None and not job.is_ended:  # stopped by its cancel check, yet not ended: fenced
            logger.warning("Search %s: stopping without writing: %r is no longer held", job.pk, lease)
            return
        events.send(job.pk, events.status_payload(job))
        return
    # No usable model is a failure with the reason and what to change, never an empty "finished".
    reason = no_model_reason(result.trials, max_latency_ms=job.max_latency_ms)
    if reason:
        _search_end(job, Status.FAILED, message="Failed: no model fits", error=reason, lease=lease)
        return
    completed = sum(trial.status == nas_engine.TrialStatus.COMPLETED for trial in result.trials)
    message = f"Finished: {len(result.trials)} architectures tried, {completed} trained fully"
    _search_end(job, Status.FINISHED, message=message, lease=lease)


def search_stop_overrun(*, job_id: int, worker_host: str, reason: str) -> bool:
    """The job-level time limit: fail a job that this worker is still running, with the reason.

    Only this worker's run is ended: a job the stale-reaper already handed to another worker is
    left to that worker.

    Returns:
        True if the job was ended now.
    """
    job = SearchJob.objects.filter(pk=job_id, status=Status.RUNNING, worker_host=worker_host[:255]).first()
    return job is not None and search_mark_failed(job=job, reason=reason)


def trial_seconds_limit(*, budget_seconds: float) -> float:
    """Most seconds one model of a search may train: the engine's share of the budget, or less
    where the operator set SEARCH_MAX_TRIAL_SECONDS."""
    limit = trial_time_limit(budget_seconds)
    return min(limit, settings.SEARCH_MAX_TRIAL_SECONDS) if settings.SEARCH_MAX_TRIAL_SECONDS else limit


def run_engine(job: SearchJob, lease: Lease) -> nas_engine.SearchResult:
    """Search, then refit the front (and an ensemble) on train+validation and score it on test."""
    data = prepared_data(job, lease)
    config = job.to_config()
    Path(job.artifacts_dir).mkdir(parents=True, exist_ok=True)
    warm_trials, warm_supernet = warm_start_of(job)
    result = nas_engine.run_search(
        config,
        data,
        on_trial=lambda trial: trial_record(job=job, result=trial, worker_host=job.worker_host, lease=lease),
        on_status=lambda event: search_progress(job, event, lease),
        should_cancel=cancel_check(lease),
        artifacts_dir=job.artifacts_dir,
        resume_from=_kept_trials(job, lease),
        elapsed_before=job.seconds_used,
        trial_seconds=trial_seconds_limit(budget_seconds=job.budget_seconds),
        warm_start=warm_trials,
        warm_supernet=warm_supernet,
    )
    finalize_and_save(job, config, data, result, lease)
    return result


def _jobs(job: SearchJob, lease: Lease | None) -> QuerySet[SearchJob]:
    """The job's row to write: only while the lease holds it, when there is one."""
    return lease.jobs() if lease is not None else SearchJob.objects.filter(pk=job.pk)


def _fenced_update(job: SearchJob, lease: Lease | None, **fields) -> None:
    if lease is not None:
        lease.update(**fields)
    else:
        SearchJob.objects.filter(pk=job.pk).update(**fields)


def prepared_data(job: SearchJob, lease: Lease | None = None) -> nas_engine.PreparedData:
    """The job's data, split and encoded as the engine trains on it (the same on every worker: the
    split follows the seed); its preprocessing is saved on the job for the bundles."""
    path = job.dataset.file.path
    chosen = tuple(job.to_config().data_settings().items())  # target, task, seed, ignored columns
    data = _prepare_cached(path, Path(path).stat().st_mtime_ns, chosen)
    if job.preprocessing != data.preprocessing:
        _fenced_update(job, lease, preprocessing=data.preprocessing, n_inputs=data.n_features, n_outputs=data.n_outputs)
        job.preprocessing, job.n_inputs, job.n_outputs = data.preprocessing, data.n_features, data.n_outputs
    return data


@functools.lru_cache(maxsize=2)  # a trial worker takes trial after trial of the same search
def _prepare_cached(path: str, mtime_ns: int, chosen: tuple) -> nas_engine.PreparedData:
    return nas_engine.prepare_data(path, **dict(chosen))


def finalize_and_save(
    job: SearchJob,
    config: nas_engine.SearchConfig,
    data: nas_engine.PreparedData,
    result: nas_engine.SearchResult,
    lease: Lease | None = None,
) -> None:
    """Save the choices (the best model, to become the ensemble if it beats it after the refit; the
    smallest within one standard error; the knee), score the gradient-boosting reference, then refit
    the front (and an ensemble)."""
    _fenced_update(job, lease, split_rows=nas_engine.split_rows(data))
    if result.best is not None:
        _fenced_update(job, lease, recommended_number=result.best.number)
    if result.recommended is not None:
        _fenced_update(job, lease, smallest_number=result.recommended.number)
    knee = nas_engine.knee_point([t for t in result.trials if t.number in result.front], cost=config.objectives[1])
    if knee is not None:
        _fenced_update(job, lease, knee_number=knee.number)
    # A job ended meanwhile (its time limit, staff) is not refit: that work would be thrown away.
    still_running = _jobs(job, lease).filter(status=Status.RUNNING).exists()
    if not result.cancelled and result.best is not None and still_running:
        _record_reference(job, config, data, lease)
        finals = nas_engine.finalize_front(
            result,
            data,
            artifacts_dir=job.artifacts_dir,
            seed=job.seed,
            on_status=lambda event: search_progress(job, event, lease),
        )
        _record_finals(job, finals, lease)
        choice = nas_engine.default_choice(result.best, finals.ensemble)
        if choice is not None:
            _fenced_update(job, lease, recommended_number=choice.number)
            if DEFAULT_REFIT == "all" and not is_compressed(choice.architecture):
                train_on_all_rows(job, choice, finals, data, lease)
    return result


def train_on_all_rows(
    job: SearchJob,
    choice: nas_engine.TrialResult,
    finals: nas_engine.FinalModels,
    data: nas_engine.PreparedData,
    lease: Lease | None,
) -> None:
    """Train the recommended model again on every row, after its test score was taken, and serve it
    (``Trial.served_weights``); its test score and the test-split evaluation stay the refit's."""
    message = f"Training trial {choice.number} again on every row, the test split's too, for its bundle."
    search_progress(job, nas_engine.StatusEvent(status="finalizing", progress=1.0, message=message), lease)
    path = Path(job.artifacts_dir) / f"trial_{choice.number}_all_rows.pt"
    try:
        nas_engine.refit_on_all_rows(choice, finals, data, seed=job.seed, augment=job.augment, weights_path=path)
    except Exception:  # noqa: BLE001 (a diverged run, a full disk: the refit on train+validation is served)
        logger.exception("Search %s: training trial %s on every row failed; its refit is served", job.pk, choice.number)
        return
    with transaction.atomic():
        if lease is not None:
            lease.lock()
        job.trials.filter(number=choice.number).update(served_weights_path=str(path))
    front = selectors.front_trial_ids(job=job)
    for trial in job.trials.filter(number=choice.number):
        events.send(job.pk, events.trial_payload(trial, front))


def _record_reference(
    job: SearchJob, config: nas_engine.SearchConfig, data: nas_engine.PreparedData, lease: Lease | None
) -> None:
    """Score a default gradient-boosting model on the search's validation rows, for the job page.
    Its failure is logged and costs the job nothing but the reference."""
    message = "Scoring a default gradient-boosting model on the same rows, for comparison."
    search_progress(job, nas_engine.StatusEvent(status="finalizing", progress=0.0, message=message), lease)
    try:
        reference = nas_engine.reference_score(data, folds=config.folds(len(data.X_train)), seed=job.seed)
    except Exception:
        logger.exception("The gradient-boosting reference of search %s failed; the search goes on without it", job.pk)
        return
    _fenced_update(job, lease, reference=reference.to_dict())


def _kept_trials(job: SearchJob, lease: Lease | None = None) -> list[nas_engine.TrialResult]:
    """Trials an interrupted attempt already saved, for the engine to build on instead of redoing.

    An ensemble row comes from the final step, which runs again at the end, so it is dropped.
    """
    with transaction.atomic():
        if lease is not None:
            lease.lock()
        if job.trials.filter(architecture__space=ENSEMBLE_SPACE).delete()[0]:
            front_refresh(job)  # the ensemble may have held trials off the front
    return job_trials(job)


def warm_start_of(job: SearchJob) -> tuple[list[nas_engine.TrialResult], Path | None]:
    """The trials of the job this one warm-starts from (its ensemble row aside: not an architecture of
    the space) and its supernet file, when it left one."""
    earlier = job.warm_start_from
    if earlier is None:
        return [], None
    supernet = Path(earlier.artifacts_dir) / nas_engine.SUPERNET_FILE
    trials = [t for t in job_trials(earlier) if not is_ensemble(t.architecture)]
    return trials, supernet if supernet.exists() else None


def job_trials(job: SearchJob) -> list[nas_engine.TrialResult]:
    return [
        nas_engine.TrialResult.from_dict(
            {
                "number": t.number,
                "status": t.status,
                "architecture": t.architecture,
                "arch_hash": t.arch_hash,
                "metrics": t.metrics,
                "costs": t.to_dict()["costs"],
                "train_seconds": t.train_seconds,
                "message": t.message,
                "weights_path": t.weights_path or None,
            }
        )
        for t in job.trials.order_by("number")
    ]


def _record_finals(job: SearchJob, finals: nas_engine.FinalModels, lease: Lease | None = None) -> None:
    """Keep the refit weights and test scores, add the ensemble as a trial, then push the updates."""
    if finals.ensemble is not None:
        trial_record(job=job, result=finals.ensemble, lease=lease)
    with transaction.atomic():
        if lease is not None:
            lease.lock()
        for final in [*finals.models, *([finals.ensemble_final] if finals.ensemble_final else [])]:
            job.trials.filter(number=final.number).update(
                test_metrics=final.test_metrics, final_weights_path=final.weights_path or "", served_weights_path=""
            )
    front = selectors.front_trial_ids(job=job)
    for trial in job.trials.exclude(test_metrics={}):
        events.send(job.pk, events.trial_payload(trial, front))


def search_progress(job: SearchJob, event: nas_engine.StatusEvent, lease: Lease | None = None) -> None:
    """Save and send a progress event; with a lease that is lost, raise LeaseLost instead."""
    if event.status not in ("running", "finalizing"):
        return  # the end state is saved by search_execute, from the result
    # Refitting comes after the budget is spent: the bar stays full, the message says what runs.
    progress = event.progress if event.status == "running" else 1.0
    updated = (
        _jobs(job, lease)
        .filter(status=Status.RUNNING)
        .update(progress=progress, message=event.message[:500], heartbeat_at=timezone.now())
    )
    if not updated and lease is not None:
        raise LeaseLost(f"{lease!r} is no longer held")
    if updated:
        job.progress, job.message = progress, event.message[:500]
        search_log_add(job_id=job.pk, status=Status.RUNNING, message=job.message)
        events.send(job.pk, events.status_payload(job))


def _search_end(job: SearchJob, status: str, *, message: str, error: str = "", lease: Lease | None = None) -> None:
    # Only a running job ends here: a job cancelled meanwhile stays cancelled. A lost lease writes nothing.
    updated = (
        _jobs(job, lease)
        .filter(status=Status.RUNNING)
        .update(
            status=status,
            progress=1.0 if status == Status.FINISHED else job.progress,
            message=message,
            error=error,
            finished_at=timezone.now(),
        )
    )
    if not updated and lease is not None:
        logger.warning("Search %s: %r is no longer held; its end (%s) is not saved.", job.pk, lease, status)
        return
    job.refresh_from_db()
    search_log_add(job_id=job.pk, status=job.status, message=job.message, error=job.error)
    events.send(job.pk, events.status_payload(job))
    if updated:
        notify.search_ended(job)


def trial_record(
    *, job: SearchJob, result: nas_engine.TrialResult, worker_host: str = "", lease: Lease | None = None
) -> Trial:
    """Save one evaluated architecture, refresh the Pareto front, then push the trial event.

    Raises:
        LeaseLost: ``lease`` no longer holds the job; nothing was saved.
    """
    costs = result.costs
    with transaction.atomic():
        # One writer of the job's trials at a time (workers of a spread-out search report at once):
        # the front refresh below reads the front another one may be changing.
        if lease is not None:
            lease.lock()
        else:
            SearchJob.objects.select_for_update().filter(pk=job.pk).first()
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
            memory_bytes=costs.memory_bytes,
            train_seconds=result.train_seconds,
            message=result.message,
            weights_path=result.weights_path or "",
            elapsed_seconds=_search_seconds(job),
            worker_host=worker_host[:255],
        )
        front = front_refresh(job, trial)
    trial.on_front = trial.pk in front
    events.send(job.pk, events.trial_payload(trial, front))
    return trial


def _search_seconds(job: SearchJob) -> float | None:
    """Search time so far, earlier interrupted attempts included (the x axis of the best-so-far curve);
    a spread-out search's from its first trial taken by a worker, as its budget."""
    started = job.budget_started_at or job.started_at
    if started is None:
        return None
    return job.seconds_used + (timezone.now() - started).total_seconds()


def front_refresh(job: SearchJob, new: Trial | None = None) -> list[int]:
    """Keep on_front right over the job's objectives (the score up, each chosen cost down) and return
    the ids on the front.

    With ``new`` (a trial just saved) and a front of completed models already there, only ``new`` is
    compared with the front: it joins it, pushing off those it dominates, or changes nothing. That is
    O(front) per trial, where a full pass reads, compares and rewrote every trial (a per-trial cost
    growing with the job: 16 ms at 1,000 trials). Otherwise the front is recomputed from every trial.
    """
    costs = [name for name in (job.objectives or ["score", "params"]) if name != "score"]
    held = list(job.trials.filter(on_front=True).values_list("id", "status", "score", *costs)) if new else []
    if held and all(row[1] == Trial.Status.COMPLETED for row in held):
        ids = [row[0] for row in held]
        vector = (-new.score, *(getattr(new, name) for name in costs)) if new.score is not None else None
        # A pruned or unscored model, or one missing a cost, never joins a front of completed models.
        if new.status != Trial.Status.COMPLETED or vector is None or None in vector or math.isnan(vector[0]):
            return sorted(ids)
        vectors = {row[0]: (-row[2], *row[3:]) for row in held}
        if any(dominates(v, vector) for v in vectors.values()):
            return sorted(ids)
        pushed_off = [pk for pk, v in vectors.items() if dominates(vector, v)]
        if pushed_off:
            job.trials.filter(id__in=pushed_off).update(on_front=False)
        job.trials.filter(pk=new.pk).update(on_front=True)
        return sorted([pk for pk in ids if pk not in pushed_off] + [new.pk])
    scored = job.trials.filter(score__isnull=False)
    # As in the engine: fully trained models make the front; pruned ones only while none exists.
    candidates = scored.filter(status=Trial.Status.COMPLETED)
    if not candidates.exists():
        candidates = scored.filter(status=Trial.Status.PRUNED)
    rows = list(candidates.values_list("id", "score", *costs))
    vectors = [None if None in row[2:] else (-row[1], *row[2:]) for row in rows]
    front = sorted(rows[i][0] for i in nas_engine.pareto_front_nd(vectors))
    job.trials.filter(on_front=True).exclude(id__in=front).update(on_front=False)
    job.trials.filter(id__in=front, on_front=False).update(on_front=True)
    return front
