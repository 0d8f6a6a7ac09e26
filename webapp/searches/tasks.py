"""Celery tasks: thin wrappers that load by id and call a service."""

import os
import socket

from celery import shared_task

from webapp.searches import services


@shared_task(name="searches.run_search", bind=True)
def run_search(self, job_id: int) -> None:
    host = self.request.hostname or f"{socket.gethostname()}:{os.getpid()}"
    services.search_execute(job_id=job_id, worker_host=host)
