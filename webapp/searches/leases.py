"""A worker's hold on a running job: the lease that fences every write it makes, the heartbeat that
says it is alive, and the cancel checks polled while it trains. Used by the job services, the one-worker
runner and the spread-out (distributed) path alike."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

from webapp.searches.models import SearchJob

logger = logging.getLogger(__name__)

Status = SearchJob.Status
CANCEL_POLL_SECONDS = 1.0


class LeaseLost(Exception):
    """This worker no longer holds the job: the reaper took it for dead and another worker claimed it,
    or it ended (cancelled, failed by staff or by its time limit). The worker stops; it writes nothing."""


class Lease:
    """A worker's hold on a running job: the values its claim wrote (``attempts`` for a whole run; the
    ``driver_step`` of a spread-out search's conclusion). Every write of the holder, its heartbeat and
    its cancel check filter by them, so a worker whose job was given to another stops at its next write
    instead of writing beside it (trial numbers that collide, two workers on one job)."""

    def __init__(self, job_id: int, **fence) -> None:
        self.job_id, self.fence = job_id, fence

    def __repr__(self) -> str:
        return f"Lease(job {self.job_id}, {self.fence})"

    def jobs(self) -> QuerySet[SearchJob]:
        """The job while this lease holds it; empty once it does not."""
        return SearchJob.objects.filter(pk=self.job_id, status=Status.RUNNING, **self.fence)

    def update(self, **fields) -> None:
        if not self.jobs().update(**fields):
            raise LeaseLost(f"{self!r} is no longer held")

    def lock(self) -> None:
        """Inside a transaction: lock the job's row (one writer of its trials at a time) or raise."""
        if self.jobs().select_for_update().first() is None:
            raise LeaseLost(f"{self!r} is no longer held")

    def beat(self) -> bool:
        """Stamp the heartbeat; False once the lease is lost."""
        return self.jobs().update(heartbeat_at=timezone.now()) > 0


def heartbeat_seconds() -> float:
    """How often a working worker stamps its heartbeat: four times per SEARCH_STALE_SECONDS."""
    return max(0.2, min(15.0, settings.SEARCH_STALE_SECONDS / 4))


class Heartbeat:
    """Stamps a heartbeat from a thread every ``heartbeat_seconds()`` while a block runs, whatever the
    block does (loading the data, training, refitting, compressing, writing files): the reaper takes a
    job for dead when its worker process is, never because one phase writes nothing for minutes.

    ``beat`` returns False once the work is no longer this worker's (its lease was taken); the thread
    then stops and ``lost`` is set. A worker stuck for good still beats: the job's time limit
    (``tasks.JobWatchdog``) ends it."""

    def __init__(self, beat: Callable[[], bool]) -> None:
        self.beat, self.seconds = beat, heartbeat_seconds()
        self.lost, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds):
                try:
                    alive = self.beat()
                except Exception:  # the database away for a moment: the next beat tries again
                    logger.warning("A heartbeat could not be written", exc_info=True)
                    continue
                if not alive:
                    self.lost.set()
                    return
        finally:
            connections.close_all()  # this thread's connections only; they are per thread


def cancel_check(lease: Lease) -> Callable[[], bool]:
    """A should_cancel callback, polled between epochs: at most every CANCEL_POLL_SECONDS it stamps
    the job's heartbeat, which also tells whether the job is still this worker's to run (not
    cancelled, not ended, not given to another worker)."""
    return polled_cancel(lease.beat)


def polled_cancel(alive: Callable[[], bool]) -> Callable[[], bool]:
    """A should_cancel callback that asks ``alive`` (a heartbeat write that says whether the work
    should go on) at most every CANCEL_POLL_SECONDS; once it says no, it stays cancelled."""
    last = {"at": 0.0, "cancelled": False}

    def should_cancel() -> bool:
        now = time.monotonic()
        if not last["cancelled"] and now - last["at"] >= CANCEL_POLL_SECONDS:
            last["at"] = now
            last["cancelled"] = not alive()
        return last["cancelled"]

    return should_cancel
