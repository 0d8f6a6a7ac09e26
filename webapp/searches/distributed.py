"""One search's trials spread over many Celery workers, on one machine or many.

The driver re-queues itself; it never waits. A *driver step* (``search_advance``, the
``advance_search`` task on the ``search`` queue) locks the job row, tells the strategy the trials
reported since the last step, plans new ones for the free slots and ``QUEUED_AHEAD`` more
(``nas_engine.parallel``), saves each as a ``PendingTrial`` row, sends each as an
``evaluate_trial`` task to the ``trials`` queue (``trials-gpu`` for an image search while a GPU
worker is online), saves the strategy's state on the job, and returns. Each trial task trains
its model, records the trial, deletes its pending row and sends the next driver step. The step
that finds nothing in flight and nothing left to plan concludes the search (compression, front
refit, end state) in the worker that runs it.

Chords were the other choice: a chord waits for a whole group, so one slow model would hold back
every free slot, and it needs a result backend; one driver step per reported trial keeps every
worker busy (asynchronous ask/tell) with only the broker and the database.

Everything lives in the database, so any worker on any machine can take any step. A trial whose
worker goes silent (killed, machine lost) is sent again by the reaper (``reap_stale_trials``, run
by beat every minute and when a worker starts), up to ``SEARCH_MAX_ATTEMPTS`` times, then recorded
as failed; an older message of it that arrives later is skipped (each send has its ``attempt``).
A job whose driver message was lost (its heartbeat is stale and nothing runs) gets a new step.
"""

from __future__ import annotations

import dataclasses
import logging
import math

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

import nas_engine
from nas_engine.parallel import DriverState, conclude_search, plan_trials, sequential_reason, train_trial
from nas_engine.results import ENSEMBLE_SPACE
from nas_engine.spaces import make_space
from webapp.searches import dispatch, leases, services
from webapp.searches.models import PendingTrial, SearchJob

logger = logging.getLogger(__name__)

Status = SearchJob.Status
# Trials planned beyond the slots, waiting in the queue: a worker that finishes one takes the next at
# once instead of waiting for the driver step its report sends (what a step costs is then hidden).
QUEUED_AHEAD = 1
INSPECT_SECONDS = 0.5  # how long to wait for workers to say which queues they take
TRIAL_ERROR = "An internal error stopped this model's training. Staff can find the details in the worker log."
_states: dict[int, tuple[int, DriverState]] = {}  # job id -> (driver step, state): skips replaying the strategy


def spread_out(job: SearchJob) -> bool:
    """Decide, when a job first starts, how many of its models train at once (``trial_slots``): its
    ``parallel_trials``, or one per idle worker on the trials queue; never more than the workers
    online that take its trials queue, nor SEARCH_MAX_PARALLEL_TRIALS. Whether that is over 1."""
    reason = sequential_reason(job.to_config())
    if job.parallel_trials == 1 or (reason and not job.parallel_trials):  # no need to ask the workers
        SearchJob.objects.filter(pk=job.pk).update(trial_slots=1)
        job.trial_slots = 1
        return False
    workers = _trial_workers(busy_but=job.worker_host)
    queue = settings.NAS_QUEUES["trials"]
    if job.dataset.image is not None and workers["gpu"]:
        queue = settings.NAS_QUEUES["trials-gpu"]
    wanted = job.parallel_trials or max(1, len(workers["idle"]))
    # More slots than workers only queue more of this search's trials ahead of everyone else's.
    slots = min(wanted, max(1, len(workers["gpu" if queue == settings.NAS_QUEUES["trials-gpu"] else "trials"])))
    if settings.SEARCH_MAX_PARALLEL_TRIALS:
        slots = min(slots, settings.SEARCH_MAX_PARALLEL_TRIALS)
    if slots < wanted:
        services.search_log_add(
            job_id=job.pk, status=job.status,
            message=f"{wanted} models at once asked for; {slots} at most here (the workers that train them)",
        )  # fmt: skip
    if slots > 1 and reason:
        services.search_log_add(job_id=job.pk, status=job.status, message=f"Training one model at a time: {reason}")
        slots = 1
    SearchJob.objects.filter(pk=job.pk).update(trial_slots=slots, driver_state={"queue": queue})
    job.trial_slots, job.driver_state = slots, {"queue": queue}
    if slots > 1:
        services.search_log_add(job_id=job.pk, status=job.status, message=f"Training {slots} models at once on {queue}")
    return slots > 1


def _trial_workers(*, busy_but: str) -> dict[str, list[str]]:
    """Online workers taking the trials queue (``trials``), those of them idle (``idle``), and those
    taking trials-gpu. The worker running this (``busy_but``) counts as idle when it takes trials: a
    solo-pool worker cannot answer while it runs a task, so it is counted from its own queues instead.
    Each worker counts once: run solo-pool workers, one per core (README, "Scaling out")."""
    from webapp.celery import app

    inspect = app.control.inspect(timeout=INSPECT_SECONDS)
    try:
        queues, active = inspect.active_queues() or {}, inspect.active() or {}
    except (KombuOperationalError, OSError, RedisError) as exc:
        logger.warning("Cannot ask the workers which queues they take (%s); training one model at a time.", exc)
        queues, active = {}, {}

    def takes(worker: str, role: str) -> bool:
        return any(queue.get("name") == settings.NAS_QUEUES[role] for queue in queues.get(worker, ()))

    mine = app.amqp.queues.consume_from or app.amqp.queues  # -Q's queues in a worker, else all declared
    others = [w for w in queues if w != busy_but]
    me = [busy_but or "this process"] if settings.NAS_QUEUES["trials"] in mine else []
    return {
        "trials": [w for w in others if takes(w, "trials")] + me,
        "idle": [w for w in others if takes(w, "trials") and not active.get(w)] + me,
        "gpu": [w for w in queues if takes(w, "trials-gpu")]
        + ([busy_but] if settings.NAS_QUEUES["trials-gpu"] in mine else []),
    }


def seconds_left(job: SearchJob) -> float:
    """Of the job's budget, by the wall clock (every machine's clock must be in sync, e.g. NTP). It
    counts from the job's first trial taken by a worker (``budget_started_at``): a search whose trials
    wait in the queue behind others' keeps its whole budget until one trains."""
    started = job.budget_started_at
    spent = job.seconds_used + ((timezone.now() - started).total_seconds() if started else 0.0)
    return job.budget_seconds - spent


def slots_now(job: SearchJob) -> int:
    """Trials the job may have planned and not reported (training or waiting in the queue) after this
    step: its ``trial_slots`` plus QUEUED_AHEAD, while no one else's spread-out search runs; else a
    fair share, so that one user's many trials never all wait ahead of another's. The trials capacity
    (the most slots of a running spread-out search, plus QUEUED_AHEAD) is shared equally by the users
    with one running, and a user's share equally by their searches (at least 1 each)."""
    running = list(
        SearchJob.objects.filter(status=Status.RUNNING, trial_slots__gt=1, concluding=False)
        .order_by("pk")
        .values_list("pk", "owner_id", "trial_slots")
    )
    running = [row for row in running if row[0] != job.pk] + [(job.pk, job.owner_id, job.trial_slots)]
    capacity = max(slots for _, _, slots in running) + QUEUED_AHEAD
    owners = {owner for _, owner, _ in running}
    mine = sorted(pk for pk, owner, _ in running if owner == job.owner_id)
    per_owner = math.ceil(capacity / len(owners))
    share, extra = divmod(per_owner, len(mine))
    share += mine.index(job.pk) < extra  # the remainder to the owner's oldest searches
    return max(1, min(job.trial_slots + QUEUED_AHEAD, share))


def search_advance(*, job_id: int, worker_host: str = "") -> None:
    """One driver step (see the module docstring); concludes the search when nothing is left."""
    with transaction.atomic():
        job = SearchJob.objects.select_for_update(of=("self",)).select_related("dataset").filter(pk=job_id).first()
        if job is None or job.concluding:
            return
        if job.status != Status.RUNNING:
            job.pending_trials.all().delete()  # their workers stop at their next check
            return
        with services.search_outcome(job):
            conclude = _plan_step(job)
    if conclude:
        _conclude(job, worker_host=worker_host)


def _plan_step(job: SearchJob) -> bool:
    """Plan and send trials for the free slots; returns whether the search should conclude."""
    data, config = services.prepared_data(job), job.to_config()
    pending = list(job.pending_trials.all())
    reported = services.job_trials(job)
    state = _driver_state(
        job, make_space(config.space, n_inputs=data.n_features, image_shape=data.image_shape, strategy=config.strategy)
    )
    _states.pop(job.pk, None)  # the state changes now; cached again once saved
    plan = plan_trials(
        config, data, reported=reported, in_flight=[p.to_planned() for p in pending],
        slots=slots_now(job), seconds_left=seconds_left(job), state=state,
        warm_start=services.warm_start_of(job)[0] if state is None else (),
    )  # fmt: skip
    for rejected in plan.rejected:
        services.trial_record(job=job, result=rejected)
    queue = (job.driver_state or {}).get("queue") or settings.NAS_QUEUES["trials"]
    new = [
        PendingTrial.objects.create(
            job=job, number=t.number, architecture=t.architecture, arch_hash=t.arch_hash,
            costs=dataclasses.asdict(t.costs), queue=queue,
        )
        for t in plan.trials
    ]  # fmt: skip
    in_flight = len(pending) + len(new)
    conclude = in_flight == 0
    step = job.driver_step + 1
    SearchJob.objects.filter(pk=job.pk).update(
        driver_state={"queue": queue, "engine": plan.state.to_dict()},
        driver_step=step,
        concluding=conclude,
        heartbeat_at=timezone.now(),
    )
    job.driver_step, job.concluding = step, conclude
    transaction.on_commit(lambda: _states.__setitem__(job.pk, (step, plan.state)))
    for row in new:
        transaction.on_commit(lambda row=row: send_trial(row.pk, row.attempt, row.queue))
    trained = sum(t.status != nas_engine.TrialStatus.REJECTED for t in reported)
    message = "All models reported; finishing" if conclude else f"{trained} models trained, {in_flight} training"
    services.search_progress(job, nas_engine.StatusEvent("running", _progress(job, trained + in_flight), message))
    return conclude


def _driver_state(job: SearchJob, space) -> DriverState | None:
    """The strategy as the last step left it: from this process's memory when that step ran
    here, else replayed from the state saved on the job; None before the first step."""
    cached = _states.get(job.pk)
    if cached is not None and cached[0] == job.driver_step:
        return cached[1]
    saved = (job.driver_state or {}).get("engine")
    return DriverState.from_dict(saved, space=space) if saved else None


def _progress(job: SearchJob, trials: int) -> float:
    by_time = 1.0 - max(0.0, seconds_left(job)) / job.budget_seconds
    by_trials = trials / job.max_trials if job.max_trials else 0.0
    return min(1.0, max(by_time, by_trials))


def _conclude(job: SearchJob, *, worker_host: str) -> None:
    """Compress and refit the front, then save the end state (runs outside the driver's lock).

    Its lease is the driver step that decided to conclude: a heartbeat thread keeps the job fresh
    meanwhile, so the reaper leaves it alone while this worker lives; if this worker goes silent the
    reaper gives the job a new driver step, which concludes again, and this one, fenced by the step,
    stops at its next write."""
    job.refresh_from_db()
    lease = leases.Lease(job.pk, concluding=True, driver_step=job.driver_step)
    with leases.Heartbeat(lease.beat), services.search_outcome(job, lease):
        with transaction.atomic():
            lease.lock()
            # Left by a conclusion that a dead worker did not finish: made again below.
            job.trials.filter(architecture__space=ENSEMBLE_SPACE).delete()
            job.trials.filter(architecture__has_key="compression").delete()
            services.front_refresh(job)  # what they held off the front comes back
        data, config = services.prepared_data(job, lease), job.to_config()
        result = conclude_search(
            config,
            data,
            services.job_trials(job),
            elapsed_seconds=job.budget_seconds - seconds_left(job),
            artifacts_dir=job.artifacts_dir,
            on_trial=lambda trial: services.trial_record(job=job, result=trial, worker_host=worker_host, lease=lease),
            on_status=lambda event: services.search_progress(job, event, lease),
            should_cancel=leases.cancel_check(lease),
        )
        services.finalize_and_save(job, config, data, result, lease)
        services.search_end_with(job, result, lease)


def trial_execute(*, pending_id: int, attempt: int, worker_host: str = "") -> None:
    """Train one pending trial (the ``evaluate_trial`` task), record it, send the next driver step.

    A trial already taken, sent again since this message (``attempt``), or of a job no longer
    running is skipped; one whose job ends while it trains stops at its next epoch.
    """
    now = timezone.now()
    claimed = PendingTrial.objects.filter(
        pk=pending_id, attempt=attempt, state=PendingTrial.State.QUEUED, job__status=Status.RUNNING
    ).update(state=PendingTrial.State.RUNNING, worker_host=worker_host[:255], heartbeat_at=now)
    if not claimed:
        logger.info("Trial %s (send %s) is not waiting (taken, sent again or its search ended); skipping it.",
                    pending_id, attempt)  # fmt: skip
        return
    # The first of its trials a worker takes starts the job's budget (seconds_left).
    SearchJob.objects.filter(pending_trials=pending_id, budget_started_at__isnull=True).update(budget_started_at=now)
    pending = PendingTrial.objects.select_related("job__dataset").filter(pk=pending_id).first()
    if pending is None:
        return  # its search ended (and dropped what waited) just after this worker took it
    job, planned = pending.job, pending.to_planned()
    try:
        # Loading the data and a long epoch write nothing: the thread keeps the trial's heartbeat.
        with leases.Heartbeat(_trial_alive(pending_id, attempt, job.pk)):
            data, config = services.prepared_data(job), job.to_config()
            result = train_trial(
                config, data, planned, seconds_left=seconds_left(job),
                trial_seconds=services.trial_seconds_limit(budget_seconds=job.budget_seconds),
                artifacts_dir=job.artifacts_dir, should_cancel=_trial_check(pending_id, attempt, job.pk),
            )  # fmt: skip
    except Exception:  # a broken trial must not stop the search: record why, go on
        logger.exception("Trial %d of search %s failed", planned.number, job.pk)
        result = planned.failed(TRIAL_ERROR)
    with transaction.atomic():
        SearchJob.objects.select_for_update().filter(pk=job.pk).first()  # one writer of its trials at a time
        mine = PendingTrial.objects.filter(pk=pending_id, attempt=attempt, state=PendingTrial.State.RUNNING)
        if not mine.exists():
            return  # sent again after this worker went silent, or the job ended: not ours to record
        if result is not None and SearchJob.objects.filter(pk=job.pk, status=Status.RUNNING).exists():
            services.trial_record(job=job, result=result, worker_host=worker_host)
        mine.delete()
        transaction.on_commit(lambda: send_advance(job.pk))


def _trial_alive(pending_id: int, attempt: int, job_id: int):
    """Stamp the trial's and the job's heartbeats; False once the trial was taken back or the job ended."""

    def alive() -> bool:
        stamp = timezone.now()
        mine = PendingTrial.objects.filter(pk=pending_id, attempt=attempt, state=PendingTrial.State.RUNNING)
        return bool(
            mine.update(heartbeat_at=stamp)
            and SearchJob.objects.filter(pk=job_id, status=Status.RUNNING).update(heartbeat_at=stamp)
        )

    return alive


def _trial_check(pending_id: int, attempt: int, job_id: int):
    """A should_cancel callback for one trial: at most every CANCEL_POLL_SECONDS it stamps the
    trial's and the job's heartbeats; True once the trial was taken back or the job ended."""
    return leases.polled_cancel(_trial_alive(pending_id, attempt, job_id))


def send_trial(pending_id: int, attempt: int, queue: str) -> bool:
    """Send one trial to its queue; a broker that is down is logged (the reaper sends the job's
    next driver step later), never raised into the caller's commit."""
    try:
        dispatch.send(dispatch.EVALUATE_TRIAL, [pending_id, attempt], queue=queue)
    except dispatch.BROKER_ERRORS as exc:
        logger.error("Trial %s not sent to the broker: %s", pending_id, exc)
        return False
    return True


def send_advance(job_id: int) -> bool:
    """Send the job's next driver step to the search queue (a broker that is down is logged)."""
    try:
        dispatch.send(dispatch.ADVANCE_SEARCH, [job_id], queue=settings.NAS_QUEUES["search"])
    except dispatch.BROKER_ERRORS as exc:
        logger.error("The next step of search %s not sent to the broker: %s", job_id, exc)
        return False
    return True


def reap_stale_trials(*, stale, restarted_worker: str = "") -> dict[str, list[int]]:
    """Send again each trial whose worker went silent before ``stale`` (a datetime), or was
    ``restarted_worker`` (a worker of that name has just started: it is the same one, restarted), or
    record it as failed after SEARCH_MAX_ATTEMPTS sends; give a driver step to each spread-out job
    that went silent with nothing training (its step's message was lost, or its concluding worker
    died). A job whose conclusion still beats is left alone: its driver may still be running.

    Returns:
        {"resent": [pending trial ids], "failed": [pending trial ids], "advanced": [job ids]}
    """
    outcome: dict[str, list[int]] = {"resent": [], "failed": [], "advanced": []}
    silent_since = Q(heartbeat_at__lt=stale)
    if restarted_worker:
        silent_since |= Q(worker_host=restarted_worker[:255])
    running = PendingTrial.objects.filter(
        silent_since, state=PendingTrial.State.RUNNING, job__status=Status.RUNNING
    ).select_related("job")
    for pending in running:
        silent = f"The worker training this model ({pending.worker_host or 'unknown'}) stopped responding"
        with transaction.atomic():
            SearchJob.objects.select_for_update().filter(pk=pending.job_id).first()
            still = PendingTrial.objects.filter(
                silent_since, pk=pending.pk, attempt=pending.attempt, state=PendingTrial.State.RUNNING
            )
            if pending.attempt >= settings.SEARCH_MAX_ATTEMPTS:
                if still.delete()[0]:
                    message = f"{silent} {pending.attempt} times, so it was given up."
                    services.trial_record(job=pending.job, result=pending.to_planned().failed(message))
                    transaction.on_commit(lambda job_id=pending.job_id: send_advance(job_id))
                    outcome["failed"].append(pending.pk)
            elif still.update(state=PendingTrial.State.QUEUED, attempt=F("attempt") + 1, worker_host=""):
                attempt = pending.attempt + 1
                transaction.on_commit(lambda p=pending, a=attempt: send_trial(p.pk, a, p.queue))
                services.search_log_add(job_id=pending.job_id, status=Status.RUNNING,
                                        message=f"{silent}; trial {pending.number} sent to another worker")  # fmt: skip
                outcome["resent"].append(pending.pk)
    silent_jobs = SearchJob.objects.filter(status=Status.RUNNING, trial_slots__gt=1, heartbeat_at__lt=stale).exclude(
        pending_trials__state=PendingTrial.State.RUNNING
    )
    for job_id in silent_jobs.values_list("pk", flat=True).distinct():
        # Only if still silent: a concluding worker beats from a thread, so a fresh heartbeat means its
        # conclusion is still running and ``concluding`` must stay. The next step's driver_step fences
        # a conclusion that was only slow.
        revived = SearchJob.objects.filter(pk=job_id, status=Status.RUNNING, heartbeat_at__lt=stale).update(
            concluding=False, heartbeat_at=timezone.now()
        )
        if revived and send_advance(job_id):
            outcome["advanced"].append(job_id)
    return outcome
