"""Celery tasks for upkeep; `maintenance.purge_files` runs daily from CELERY_BEAT_SCHEDULE."""

import logging

from celery import shared_task

from webapp.maintenance import services

logger = logging.getLogger(__name__)


@shared_task(name="maintenance.purge_files")
def purge_files() -> dict:
    report = services.files_purge(dry_run=False)
    logger.info(
        "Retention purge: deleted %d paths, freed %d bytes, %d failed",
        len(report.purged),
        report.bytes_freed,
        len(report.failed),
    )
    return report.to_dict()
