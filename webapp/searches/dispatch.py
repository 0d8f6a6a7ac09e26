"""Sending tasks to the broker by name: the modules that send work (services, distributed, downloads)
never import the tasks module, which is the one place that composes them."""

from __future__ import annotations

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

# Retries of a publish while the broker is briefly away; the callers handle a broker that stays down.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.3, "interval_max": 0.5}
BROKER_ERRORS = (KombuOperationalError, OSError, RedisError)  # what sending raises when the broker is down

RUN_SEARCH = "searches.run_search"
ADVANCE_SEARCH = "searches.advance_search"
EVALUATE_TRIAL = "searches.evaluate_trial"
PREPARE_DOWNLOAD = "searches.prepare_download"


def send(name: str, args: list, *, queue: str, retry: bool = False) -> None:
    """Send task ``name`` with ``args`` to ``queue``.

    Raises:
        One of BROKER_ERRORS when the broker cannot take the message.
    """
    from webapp.celery import app

    app.send_task(name, args=args, queue=queue, retry=retry, retry_policy=PUBLISH_RETRY_POLICY)
