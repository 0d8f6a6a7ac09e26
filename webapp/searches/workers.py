"""Where the site's workers train: each worker says its device when it starts (a Redis hash, one
field per worker) and takes it back when it stops, so the upload form knows whether bigger images
can be trained (``gpu_workers``) and the operations page can show every worker's device.

A worker killed without its shutdown leaves its line behind until a worker of the same name starts
again (a supervisor restarts it under its name); a line is a statement of what a worker has, not a
proof that it is alive (``operations.selectors.answering_workers`` is that).
"""

from __future__ import annotations

import json
import logging

import redis
from django.conf import settings
from django.utils import timezone

from nas_engine import devices

logger = logging.getLogger(__name__)


def _key() -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:{settings.CELERY_QUEUE_PREFIX}worker-devices"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def announce(hostname: str, *, device: str, queues: list[str], speed: dict[str, float] | None = None) -> None:
    """Record that worker ``hostname`` trains on ``device`` (``nas_engine.devices.describe``), takes
    ``queues`` and trains ``speed`` times as fast as the estimates' reference machine
    (``devices.measure_speed``: one factor per workload, ``mlp`` and ``cnn``)."""
    line = {"device": device, "queues": sorted(queues), "speed": speed or {}, "since": timezone.now().isoformat()}
    client = _client()
    try:
        client.hset(_key(), hostname, json.dumps(line))
    finally:
        client.close()


def withdraw(hostname: str) -> None:
    """Forget worker ``hostname`` (it is stopping)."""
    client = _client()
    try:
        client.hdel(_key(), hostname)
    finally:
        client.close()


def started(hostname: str, *, queues: list[str]) -> None:
    """A worker is ready: log where it trains (``NAS_DEVICE``, else a GPU when torch sees one) and
    announce it. A ``NAS_DEVICE`` it cannot honour is logged here, and every trial it takes then
    fails with the same message rather than training somewhere unasked."""
    try:
        device = devices.describe(devices.training_device())
    except ValueError as exc:
        logger.error("Worker %s cannot train: %s", hostname, exc)
        return
    # Only a worker that trains is timed (about a second): the quick worker's queue trains nothing.
    speed = devices.measure_speed() if _trains(queues) else {}
    logger.info(
        "Worker %s trains on %s (queues: %s; speed %s of the estimates' reference machine).",
        hostname,
        device,
        ", ".join(queues) or "default",
        ", ".join(f"{kind} {factor:g}x" for kind, factor in speed.items()) or "not measured",
    )
    if settings.NAS_QUEUES["trials-gpu"] in queues and not device.startswith("cuda"):
        logger.warning("Worker %s takes the trials-gpu queue but trains on %s: torch sees no GPU.", hostname, device)
    try:
        announce(hostname, device=device, queues=queues, speed=speed)
    except redis.RedisError as exc:  # a worker without Redis fails on its first task anyway
        logger.warning("Could not announce worker %s's device: %s", hostname, exc)


def stopped(hostname: str) -> None:
    """A worker is stopping: take its line back (a lost Redis must not stop it stopping)."""
    try:
        withdraw(hostname)
    except redis.RedisError as exc:
        logger.warning("Could not withdraw worker %s's device: %s", hostname, exc)


def worker_devices() -> dict[str, dict]:
    """Each announced worker's ``device``, ``queues`` and ``since``; empty when Redis cannot be reached."""
    client = _client()
    try:
        lines = client.hgetall(_key())
    except redis.RedisError as exc:
        logger.warning("Could not read the workers' devices: %s", exc)
        return {}
    finally:
        client.close()
    found = {}
    for name, raw in lines.items():
        try:
            found[name.decode()] = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def gpu_workers() -> list[str]:
    """The announced workers that train on a GPU, by name."""
    return sorted(name for name, line in worker_devices().items() if str(line.get("device", "")).startswith("cuda"))


def training_speed(kind: str, *, image: bool) -> float:
    """How fast the workers that will train a search are, for the form's estimate: the median
    ``speed[kind]`` (``mlp`` or ``cnn``) of the announced workers that take its trials (those on a
    GPU for an image search while one is announced, as ``distributed`` routes them there), 1.0
    (the reference machine) when none has said."""
    lines = [line for line in worker_devices().values() if _trains(line.get("queues") or [])]
    if image:
        gpu = [line for line in lines if str(line.get("device", "")).startswith("cuda")]
        lines = gpu or lines
    found = sorted(
        float(factor)
        for line in lines
        if isinstance(line.get("speed"), dict)
        and isinstance(factor := line["speed"].get(kind), int | float)
        and factor > 0
    )
    return found[len(found) // 2] if found else 1.0


def _trains(queues: list[str]) -> bool:
    """Whether a worker taking ``queues`` trains models: a search's own worker or a trials one."""
    return any(settings.NAS_QUEUES[role] in queues for role in ("search", "trials", "trials-gpu"))
