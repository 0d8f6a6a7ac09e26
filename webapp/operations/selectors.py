"""Reads for the staff operations page: broker queues, Celery workers, running and failed jobs,
disk use. Each part is read on its own, so one that is down (say the broker) leaves the others.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from webapp.searches.models import SearchJob

logger = logging.getLogger(__name__)

FAILED_WINDOW = timedelta(hours=24)
INSPECT_TIMEOUT_SECONDS = 1.0
# kombu's Redis transport keeps a queue's messages in a list named after the queue, and each
# non-zero priority step in its own list, "<queue>\x06\x16<step>" (kombu.transport.redis).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)
RUN_SEARCH_TASK = "searches.run_search"


def queue_names() -> list[str]:
    """The default queue, then NAS Studio's others (search, trials, trials-gpu) and any declared in
    CELERY_TASK_QUEUES."""
    names = [settings.CELERY_TASK_DEFAULT_QUEUE]
    declared = getattr(settings, "CELERY_TASK_QUEUES", None) or ()
    for queue in [*getattr(settings, "NAS_QUEUES", {}).values(), *declared]:
        name = getattr(queue, "name", queue)
        if name not in names:
            names.append(name)
    return names


def queue_depths() -> list[dict]:
    """Messages waiting in each Celery queue (all priority levels), read straight from Redis.

    Messages a worker has taken but not yet acknowledged are not counted: they are running.
    """
    prefix = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("global_keyprefix", "")
    names = queue_names()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{prefix}{name}{_PRIORITY_SEPARATOR}{step}" if step else f"{prefix}{name}")
        lengths = pipe.execute()
    finally:
        client.close()
    per_queue = len(_PRIORITY_STEPS)
    return [{"name": name, "depth": sum(lengths[i * per_queue : (i + 1) * per_queue])} for i, name in enumerate(names)]


def _job_id_of_task(task: dict) -> int | None:
    kwargs = task.get("kwargs") or {}
    if isinstance(kwargs, dict) and isinstance(kwargs.get("job_id"), int):
        return kwargs["job_id"]
    args = task.get("args") or []
    if task.get("name") == RUN_SEARCH_TASK and isinstance(args, list | tuple) and args and isinstance(args[0], int):
        return args[0]
    return None


def answering_workers(*, timeout: float = INSPECT_TIMEOUT_SECONDS) -> dict[str, list[int]]:
    """Workers that answered a broadcast within `timeout`, each with the job ids it is running.

    One `inspect().active()` broadcast serves both questions (who is online, what is it doing):
    a reply proves the worker alive as a ping would, at half the waiting.
    """
    from webapp.celery import app

    replies = app.control.inspect(timeout=timeout).active() or {}
    return {
        name: sorted({job_id for task in tasks or [] if (job_id := _job_id_of_task(task)) is not None})
        for name, tasks in replies.items()
    }


def worker_count(*, timeout: float = INSPECT_TIMEOUT_SECONDS) -> int:
    """How many workers answer a ping within `timeout`."""
    from webapp.celery import app

    return len(app.control.inspect(timeout=timeout).ping() or {})


def _age_seconds(moment, now) -> float | None:
    return round((now - moment).total_seconds(), 1) if moment else None


def running_jobs() -> list[dict]:
    now = timezone.now()
    jobs = SearchJob.objects.filter(status=SearchJob.Status.RUNNING).select_related("owner", "dataset")
    return [
        {
            "id": job.pk,
            "owner": job.owner.username,
            "dataset": job.dataset.name,
            "strategy": job.strategy,
            "progress": job.progress,
            "message": job.message,
            "worker_host": job.worker_host,
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "heartbeat_age_seconds": _age_seconds(job.heartbeat_at, now),
        }
        for job in jobs.order_by("started_at")
    ]


def failed_jobs(*, window: timedelta = FAILED_WINDOW) -> list[dict]:
    """Jobs that failed within `window` (by when they ended), newest first, with their error."""
    since = timezone.now() - window
    jobs = (
        SearchJob.objects.filter(status=SearchJob.Status.FAILED)
        .filter(Q(finished_at__gte=since) | Q(finished_at__isnull=True, created_at__gte=since))
        .select_related("owner", "dataset")
        .order_by("-finished_at", "-created_at")
    )
    return [
        {
            "id": job.pk,
            "owner": job.owner.username,
            "dataset": job.dataset.name,
            "error": job.error,
            "worker_host": job.worker_host,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        }
        for job in jobs
    ]


def workers(*, answering: dict[str, list[int]], running: list[dict]) -> list[dict]:
    """Every worker that answered, plus any a running job names that did not.

    A solo-pool worker cannot answer broadcasts while a search runs in its only thread, so a
    busy worker is known from its job's `worker_host`; the job's heartbeat says it is alive.
    """
    by_name: dict[str, dict] = {
        name: {"name": name, "answering": True, "job_ids": list(job_ids)} for name, job_ids in answering.items()
    }
    for job in running:
        if not job["worker_host"]:
            continue
        worker = by_name.setdefault(job["worker_host"], {"name": job["worker_host"], "answering": False, "job_ids": []})
        if job["id"] not in worker["job_ids"]:
            worker["job_ids"].append(job["id"])
    heartbeats = {job["id"]: job["heartbeat_age_seconds"] for job in running}
    for worker in by_name.values():
        ages = [heartbeats[job_id] for job_id in worker["job_ids"] if heartbeats.get(job_id) is not None]
        worker["heartbeat_age_seconds"] = min(ages) if ages else None
        worker["job_ids"].sort()
    return sorted(by_name.values(), key=lambda worker: worker["name"])


def folder_size_bytes(folder: Path) -> int:
    """Bytes in every file under `folder` (0 if it does not exist); links are not followed."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, filename)).st_size
            except FileNotFoundError:  # deleted while we walked
                continue
    return total


def disk_usage() -> dict:
    media = Path(settings.MEDIA_ROOT)
    free = shutil.disk_usage(media).free if media.exists() else None
    return {
        "datasets_bytes": folder_size_bytes(media / "datasets"),
        "jobs_bytes": folder_size_bytes(media / "jobs"),
        "free_bytes": free,
    }


def operations_status() -> dict:
    """Everything the operations page shows; a part that could not be read is None, with its error."""
    errors: dict[str, str] = {}

    def read(part: str, reader, default=None):
        try:
            return reader()
        except Exception as exc:  # a broker or disk error is shown to staff, not raised
            logger.warning("Operations page could not read %s", part, exc_info=True)
            errors[part] = f"{type(exc).__name__}: {exc}"
            return default

    running = read("running_jobs", running_jobs, [])
    answering = read("workers", answering_workers, {})
    return {
        "generated_at": timezone.now().isoformat(),
        "queues": read("queues", queue_depths),
        "workers": workers(answering=answering, running=running),
        "running_jobs": running,
        "failed_jobs": read("failed_jobs", failed_jobs, []),
        "failed_window_hours": int(FAILED_WINDOW.total_seconds() // 3600),
        "disk": read("disk", disk_usage),
        "errors": errors,
    }
