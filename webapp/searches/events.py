"""Events pushed to the job page over the channel layer (JSON shapes in docs/architecture.md)."""

import asyncio
import logging
import os
import threading
from collections.abc import Sequence

from channels.layers import get_channel_layer
from django.db import transaction
from redis.exceptions import RedisError

from webapp.searches.models import SearchJob, SearchLogEntry, Trial

logger = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 10
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop): a forked child makes its own
_sender_lock = threading.Lock()


def group_name(job_id: int) -> str:
    return f"search-{job_id}"


LOG_LINES_PER_STATUS = 5


def status_payload(job: SearchJob) -> dict:
    """The job's state, with its latest few log lines, oldest first; the page adds those it lacks.

    A few, not one: the web process (a cancel) and the worker may each add a line at nearly the
    same moment, and each event must still carry its own line."""
    latest = list(job.log_entries.order_by("-id")[:LOG_LINES_PER_STATUS]) if job.pk else []
    return {
        "type": "status",
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "recommended": job.recommended_number,
        "smallest": job.smallest_number,
        "knee": job.knee_number,
        "reference": job.reference,
        "log": [entry.to_dict() for entry in reversed(latest)],
    }


def trial_payload(trial: Trial, front: list[int]) -> dict:
    """One trial, plus the ids of every trial now on the front (a new trial can push others off)."""
    return {"type": "trial", "trial": trial.to_dict(), "front": front}


def snapshot_payload(job: SearchJob, trials: list[Trial], log: Sequence[SearchLogEntry] = ()) -> dict:
    """Everything so far: the page replaces its state with it (on connect and on every reconnect)."""
    return {
        "type": "snapshot",
        "job": job.to_dict(),
        "trials": [trial.to_dict() for trial in trials],
        "log": [entry.to_dict() for entry in log],
    }


def send(job_id: int, payload: dict) -> None:
    """Push one event to every browser watching the job once what it announces is committed: inside a
    transaction (a driver step, a spread-out trial's report, the reaper) when it commits, never if it
    rolls back; outside one at once. A page that hears of a row can always read it."""
    transaction.on_commit(lambda: push(job_id, payload), robust=True)


def push(job_id: int, payload: dict) -> bool:
    """Push one event now (``send`` calls it after the commit).

    The database already holds what the event says, so a channel layer that is down must not stop
    the search: the failure is logged, and a page that reconnects gets it all in its snapshot.

    Returns:
        True if the event reached the channel layer.
    """
    message = {"type": "job.event", "payload": payload}
    future = asyncio.run_coroutine_threadsafe(get_channel_layer().group_send(group_name(job_id), message), _loop())
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except (OSError, RedisError, TimeoutError) as exc:
        future.cancel()
        logger.warning("Event for search %s not pushed (channel layer unavailable: %s)", job_id, exc)
        return False
    return True


def _loop() -> asyncio.AbstractEventLoop:
    """The process's one event loop for sends, running in a daemon thread. The Redis channel layer
    keeps its connections per event loop: async_to_sync ran each send on a new loop, so it opened a
    connection per event (about 4 ms, a tenth of a small model's training); this loop keeps them."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-sends", daemon=True).start()
            _sender = (os.getpid(), loop)
        return _sender[1]
