"""/healthz: are the database, the broker and the channel layer reachable, and how many Celery
workers answer. JSON, no login needed.

The status is 200 when the database, broker and channel layer all answer, else 503. Anyone gets
only that (``{"status": "ok"}`` or ``"error"``); staff also get each check's outcome (an error's
text may name hosts and users) and the number of live workers. Zero workers is reported but is not
an error by itself: the web app still serves, and queued jobs wait.

Results are kept HEALTHZ_CACHE_SECONDS in the process, so a flood of requests checks the services
(and pings the workers) at most once per period, not once per hit.
"""

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from webapp.operations.selectors import worker_count

CHANNEL_LAYER_TIMEOUT_SECONDS = 2
WORKER_PING_TIMEOUT_SECONDS = 0.5
logger = logging.getLogger(__name__)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says which
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _channel_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel(prefix="healthz")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(channel), timeout=CHANNEL_LAYER_TIMEOUT_SECONDS)
    if message.get("token") != token:
        raise RuntimeError("the channel layer returned another message")


def _check_channel_layer() -> str | None:
    """Send a message to a fresh channel and read it back."""
    try:
        async_to_sync(_channel_round_trip)()
    except Exception as exc:  # redis, timeout or configuration errors all mean "down"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _count_workers() -> int | None:
    try:
        return worker_count(timeout=WORKER_PING_TIMEOUT_SECONDS)
    except Exception:  # the broker answered a ping a moment ago; say "unknown", log why
        logger.warning("Could not ask the Celery workers for a ping", exc_info=True)
        return None


_results: dict[str, tuple[float, object]] = {}
_results_lock = threading.Lock()


def _cached(name: str, compute: Callable[[], object]) -> object:
    """``compute()``, or its result from less than HEALTHZ_CACHE_SECONDS ago (one computes at a time)."""
    with _results_lock:
        kept = _results.get(name)
        if kept is not None and time.monotonic() - kept[0] < settings.HEALTHZ_CACHE_SECONDS:
            return kept[1]
        value = compute()
        _results[name] = (time.monotonic(), value)
        return value


def forget_results() -> None:
    """Drop the kept results: the next request checks again."""
    with _results_lock:
        _results.clear()


def _checks() -> dict[str, str | None]:
    return {"database": _check_database(), "broker": _check_broker(), "channel_layer": _check_channel_layer()}


@login_not_required
@require_GET
def healthz(request):
    checks = _cached("checks", _checks)
    ok = all(error is None for error in checks.values())
    body: dict = {"status": "ok" if ok else "error"}
    if request.user.is_staff:
        body["checks"] = {name: ("ok" if error is None else error) for name, error in checks.items()}
        # Asking workers needs the broker; when it is down the count is unknown, not zero.
        body["workers"] = _cached("workers", _count_workers) if checks["broker"] is None else None
    return JsonResponse(body, status=200 if ok else 503)
