"""Celery tasks: thin wrappers that load by id and call a service."""

from celery import shared_task

from webapp.searches import services


@shared_task(name="searches.run_search")
def run_search(job_id: int) -> None:
    services.search_execute(job_id=job_id)
