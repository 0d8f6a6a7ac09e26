"""What a worker runs for a search: the whole search on this worker, or its first driver step when it
is spread out (``distributed``); and the reaper of silent workers, for both kinds. It composes
``services`` (one search's writes) and ``distributed`` (the spread-out path), which do not import
each other's callers."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.searches import distributed, events, leases, services
from webapp.searches.models import SearchJob

logger = logging.getLogger(__name__)
Status = SearchJob.Status


def search_execute(*, job_id: int, worker_host: str = "") -> None:
    """Run one queued job to its end (called by the Celery task).

    The job is claimed atomically (``search_claim``), so a job sent twice runs once; a thread keeps
    its heartbeat for the whole run. Every outcome ends in a saved final state: finished, cancelled,
    or failed with a message, unless the lease was lost: then another worker has the job, and this
    one stops without writing.
    """
    lease = services.search_claim(job_id=job_id, worker_host=worker_host)
    if lease is None:
        logger.info("Search %s is not queued (gone, cancelled or taken); skipping it.", job_id)
        return
    job = SearchJob.objects.select_related("dataset").get(pk=job_id)
    services.search_log_add(job_id=job.pk, status=job.status, message=job.message)
    events.send(job.pk, events.status_payload(job))
    with leases.Heartbeat(lease.beat):
        if job.trial_slots > 1 or (job.attempts == 1 and distributed.spread_out(job)):
            distributed.search_advance(job_id=job.pk)  # the first driver step; trials go to the trials queue
            return
        with services.search_outcome(job, lease):
            services.search_end_with(job, services.run_engine(job, lease), lease)


def search_reap_stale(*, now=None, restarted_worker: str = "") -> dict[str, list[int]]:
    """Pick up running jobs whose worker went silent (killed, machine lost): queue them again to
    resume from their saved trials, or fail them with a reason after SEARCH_MAX_ATTEMPTS; for a
    search spread over workers, send its silent workers' trials again (``distributed``).

    ``restarted_worker``: the name of a worker that has just started. What a worker of that name
    was running cannot be alive (it is the same worker, restarted after a crash), so it is taken at
    once, whatever its heartbeat says. Worker names must be unique (Celery's ``-n``); a live worker
    of the same name would lose its job to the reaper, and being fenced by its lease it would stop.

    A queued job sent long ago that no worker took is sent again (``_redispatch_lost``).

    Returns:
        {"requeued": [job ids], "failed": [job ids], "redispatched": [job ids], "trials_resent":
        [pending trial ids], "trials_failed": [...], "trials_advanced": [job ids]}
    """

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.SEARCH_STALE_SECONDS)
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    # a spread-out job's trials and driver
    trials = distributed.reap_stale_trials(stale=stale, restarted_worker=restarted_worker)
    silent_since = Q(heartbeat_at__lt=stale)
    if restarted_worker:
        silent_since |= Q(worker_host=restarted_worker[:255])
    # A spread-out job is never run again from the start: its trials are, one by one (above).
    for job in SearchJob.objects.filter(silent_since, status=Status.RUNNING, trial_slots__lte=1):
        spent = (job.heartbeat_at - job.started_at).total_seconds() if job.started_at else 0.0
        silent = f"The worker running this search ({job.worker_host or 'unknown'}) stopped responding"
        # The same attempt, still silent: a worker that beat meanwhile keeps its job.
        still_stale = SearchJob.objects.filter(silent_since, pk=job.pk, status=Status.RUNNING, attempts=job.attempts)
        with transaction.atomic():
            if job.attempts >= settings.SEARCH_MAX_ATTEMPTS:
                key = "failed"
                changed = still_stale.update(
                    status=Status.FAILED,
                    finished_at=now,
                    message="Failed",
                    error=f"{silent} {job.attempts} times, so it was stopped. Its saved trials are kept.",
                    seconds_used=F("seconds_used") + spent,
                )
            else:
                key = "requeued"
                changed = still_stale.update(
                    status=Status.QUEUED,
                    message=f"{silent}; resuming from its saved trials",
                    seconds_used=F("seconds_used") + spent,
                    dispatches=0,
                )
                if changed:
                    transaction.on_commit(lambda pk=job.pk: services.search_dispatch(job_id=pk))
        if changed:
            outcome[key].append(job.pk)
            job.refresh_from_db()
            services.search_log_add(job_id=job.pk, status=job.status, message=job.message, error=job.error)
            events.send(job.pk, events.status_payload(job))
    for job_id in SearchJob.objects.filter(status=Status.QUEUED, dispatched=False, created_at__lt=stale).values_list(
        "pk", flat=True
    ):
        if services.search_dispatch(job_id=job_id):
            outcome["requeued"].append(job_id)
    outcome["redispatched"] = _redispatch_lost(now)
    if outcome["requeued"] or outcome["failed"] or outcome["redispatched"]:
        logger.warning("Stale searches: requeued %s, failed %s, sent again %s", outcome["requeued"],
                       outcome["failed"], outcome["redispatched"])  # fmt: skip
    if trials["resent"] or trials["failed"]:
        logger.warning("Stale trials: sent again %s, given up %s", trials["resent"], trials["failed"])
    return outcome | {f"trials_{key}": ids for key, ids in trials.items()}


def _redispatch_lost(now) -> list[int]:
    """Send again each queued job that was sent SEARCH_REDISPATCH_SECONDS ago and no worker has taken:
    its message was lost (a broker restarted without its data), and the job holds one of its owner's
    job slots. A job still waiting behind others gets a duplicate, which costs nothing (the claim is
    atomic: the worker that takes a second copy skips it). At most SEARCH_MAX_ATTEMPTS sends.

    Returns:
        The ids of the jobs sent again.
    """
    before = now - timedelta(seconds=settings.SEARCH_REDISPATCH_SECONDS)
    unclaimed = SearchJob.objects.filter(
        Q(dispatched_at__lt=before) | Q(dispatched_at__isnull=True, created_at__lt=before),
        status=Status.QUEUED,
        dispatched=True,
        dispatches__lt=settings.SEARCH_MAX_ATTEMPTS,
    )
    sent = []
    for job_id, dispatches in unclaimed.values_list("pk", "dispatches"):
        if services.search_dispatch(job_id=job_id):
            sent.append(job_id)
            message = (
                f"No worker took this search in the {settings.SEARCH_REDISPATCH_SECONDS} s since it was sent; "
                f"sent again ({dispatches + 1} of at most {settings.SEARCH_MAX_ATTEMPTS} sends)"
            )
            services.search_log_add(job_id=job_id, status=Status.QUEUED, message=message)
    return sent
