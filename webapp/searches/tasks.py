"""Celery tasks: thin wrappers that load by id and call a service, under the job's time limit.

Time limits are enforced here, in the task, not by Celery's ``time_limit``/``soft_time_limit``:

- Workers run ``--pool solo`` (``make run``, the tests, docker): one process per worker, so a killed
  worker takes its search with it and the stale-job reaper resumes it elsewhere. Prefork would give
  each search a pool child that outlives a SIGKILLed parent and keeps writing trials beside the
  resumed run. The solo pool ignores Celery's time limits.
- Even under prefork, Celery's hard limit kills the child without running our code, so the job row
  would stay "running" with no reason until the reaper queued it again, to be killed again; its
  soft limit raises at any bytecode, in the middle of a trial's transaction too.

So each limit stops the work where it can be stopped cleanly and always writes the reason:
- per model: the engine stops a trial that trains longer than its share of the budget (checked
  after every batch), records it as failed with "stopped after N s: ...", and the search goes on
  (``services.trial_seconds_limit``);
- per job: a watchdog thread ends the job as failed once it runs past its budget plus a grace for
  loading the data and the final refits (``SEARCH_GRACE_SECONDS``); the search then stops at its
  next cancel check (every epoch), as when the user cancels. A worker stuck inside one native call
  cannot be interrupted from Python, but its job still ends, with the reason, and the error is
  logged: the page never shows a search spinning forever.
"""

import logging
import os
import socket
import threading
import time

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connections

from webapp.searches import distributed, downloads, runner, services, workers
from webapp.searches.models import SearchJob

logger = logging.getLogger(__name__)
MIN_GRACE_SECONDS = 300  # loading a big dataset and refitting the front can take minutes


def grace_seconds(*, budget_seconds: float) -> float:
    """Seconds a job may run past its budget: SEARCH_GRACE_SECONDS, or by default as long as the
    budget, at least MIN_GRACE_SECONDS (refitting the front can take about as long as the search)."""
    grace = settings.SEARCH_GRACE_SECONDS
    return max(MIN_GRACE_SECONDS, budget_seconds) if grace is None else grace


class JobWatchdog:
    """Ends the job as failed, with the reason, if this worker's run of it takes longer than the
    budget it has left plus the grace."""

    def __init__(self, *, job_id: int, worker_host: str, budget_seconds: float, seconds_used: float) -> None:
        self.job_id, self.worker_host, self.budget = job_id, worker_host, budget_seconds
        self.grace = grace_seconds(budget_seconds=budget_seconds)
        self.limit = max(0.0, budget_seconds - seconds_used) + self.grace
        self.start = time.monotonic()
        self.timer = threading.Timer(self.limit, self.fire)
        self.timer.daemon = True  # never keeps a worker from shutting down

    def __enter__(self) -> "JobWatchdog":
        self.timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.timer.cancel()

    def fire(self) -> None:
        seconds = time.monotonic() - self.start
        reason = (
            f"Stopped after {seconds:.0f} s: longer than this search may run (its {self.budget:g} s budget plus "
            f"{self.grace:g} s to load the data and refit the final models). Its saved trials "
            "are kept; a longer budget or a smaller dataset helps."
        )
        try:
            if services.search_stop_overrun(job_id=self.job_id, worker_host=self.worker_host, reason=reason):
                logger.error("Search %s passed its time limit of %.0f s and was stopped.", self.job_id, self.limit)
        finally:
            connections.close_all()  # this thread's connections only; they are per thread


@shared_task(name="searches.run_search", bind=True)
def run_search(self, job_id: int) -> None:
    host = _host(self)
    job = SearchJob.objects.filter(pk=job_id).values("budget_seconds", "seconds_used").first()
    if job is None:
        logger.info("Search %s no longer exists; skipping it.", job_id)
        return
    with JobWatchdog(job_id=job_id, worker_host=host, **job):
        runner.search_execute(job_id=job_id, worker_host=host)


@shared_task(name="searches.advance_search", bind=True)
def advance_search(self, job_id: int) -> None:
    """One driver step of a search spread over workers (routed to the search queue)."""
    distributed.search_advance(job_id=job_id, worker_host=_host(self))


@shared_task(name="searches.evaluate_trial", bind=True)
def evaluate_trial(self, pending_id: int, attempt: int) -> None:
    """Train one trial of a spread-out search (routed to the trials or trials-gpu queue)."""
    distributed.trial_execute(pending_id=pending_id, attempt=attempt, worker_host=_host(self))


def _host(task) -> str:
    return task.request.hostname or f"{socket.gethostname()}:{os.getpid()}"


@shared_task(name="searches.reap_stale")
def reap_stale() -> dict[str, list[int]]:
    return runner.search_reap_stale()


@worker_ready.connect
def reap_when_a_worker_starts(sender=None, **kwargs) -> None:
    """A worker that (re)starts picks up jobs a dead worker left running, even without beat. What a
    worker of its own name was running is taken at once, fresh heartbeat or not: it is this worker,
    restarted after a crash (a supervisor restarts it within seconds), so that run cannot be alive."""
    runner.search_reap_stale(restarted_worker=getattr(sender, "hostname", "") or "")


@worker_ready.connect
def announce_device(sender=None, **kwargs) -> None:
    """Say where this worker trains, in its log and to the site (``workers.started``)."""
    queues = [q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", None) or []]
    workers.started(getattr(sender, "hostname", "") or socket.gethostname(), queues=queues)


@worker_shutdown.connect
def withdraw_device(sender=None, **kwargs) -> None:
    workers.stopped(getattr(sender, "hostname", "") or socket.gethostname())


@shared_task(name="searches.prepare_download")
def prepare_download(trial_id: int, kind: str, key: str = "") -> None:
    """Make a trial's bundle, its predictions or its test-split evaluation for the page that asked
    (routed to the default queue, the web tasks' one; see ``webapp.searches.downloads``)."""
    downloads.prepare(trial_id=trial_id, kind=kind, key=key)
