"""/healthz: is the database reachable, is the broker reachable. JSON, no login needed."""

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


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


@login_not_required
@require_GET
def healthz(request):
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(error is None for error in checks.values())
    body = {
        "status": "ok" if ok else "error",
        "checks": {name: ("ok" if error is None else error) for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)
