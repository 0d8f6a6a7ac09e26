"""Celery tasks: thin wrappers that load by id and call a service."""

import os
import socket

from celery import shared_task
from celery.signals import worker_ready

from webapp.searches import services


@shared_task(name="searches.run_search", bind=True)
def run_search(self, job_id: int) -> None:
    host = self.request.hostname or f"{socket.gethostname()}:{os.getpid()}"
    services.search_execute(job_id=job_id, worker_host=host)


@shared_task(name="searches.reap_stale")
def reap_stale() -> dict[str, list[int]]:
    return services.search_reap_stale()


@worker_ready.connect
def reap_when_a_worker_starts(**kwargs) -> None:
    """A worker that (re)starts picks up jobs a dead worker left running, even without beat."""
    services.search_reap_stale()
