"""Telling a user one of their searches ended, by email, when they asked for it and have an address.

Sent after the end is committed, through Django's email backend (the console under `make run`;
EMAIL_BACKEND / EMAIL_HOST... for a real server). A mail server that fails costs the search nothing:
the failure is logged.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from webapp.accounts.models import Preferences

logger = logging.getLogger(__name__)


def wants_email(user) -> bool:
    return bool(user.email) and Preferences.objects.filter(user=user, email_when_search_ends=True).exists()


def search_ended(job) -> None:
    """Email the job's owner that it ended (once the end is committed), if they asked for it."""
    owner = job.owner
    if not wants_email(owner):
        return
    status = job.get_status_display().lower()
    subject = f"{job.display_name} {status}: predict {job.target} in {job.dataset.name}"
    lines = [
        f"Your search {job.display_name} {status}.",
        "",
        job.message,
        *([f"Reason: {job.error}"] if job.error else []),
        "",
        f"See it: {settings.SITE_URL.rstrip('/')}/searches/{job.pk}/" if settings.SITE_URL else f"Search #{job.pk}.",
        "",
        "You get this because your account asks for an email when a search ends; turn it off on your account page.",
    ]

    def send() -> None:
        try:
            send_mail(subject, "\n".join(lines), None, [owner.email])
        except Exception:  # noqa: BLE001 (a mail server down must not fail the search)
            logger.exception("The email saying search %s ended could not be sent", job.pk)

    transaction.on_commit(send)
