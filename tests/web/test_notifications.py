"""A search that ends is told: by email to an owner who asked (and has an address), through Django's
email backend after the end is committed; on its page, by the tab's title and a browser notification
(real Chromium, a real worker); and the account page where the email is asked for."""

import time

import pytest
from django.core import mail
from django.urls import reverse

from tests.web.test_job_page_browser import log_in, start_search
from webapp.accounts.models import Preferences
from webapp.searches import services

pytestmark = pytest.mark.django_db


def ask_for_email(user, address: str = "alice@example.org") -> None:
    user.email = address
    user.save()
    Preferences.objects.create(user=user, email_when_search_ends=True)


def test_a_cancelled_search_is_emailed_to_an_owner_who_asked(alice, queued_job, django_capture_on_commit_callbacks):
    ask_for_email(alice)
    queued_job.name = "nightly"
    queued_job.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.search_cancel(job=queued_job)
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["alice@example.org"] and sent.subject.startswith(f"nightly (#{queued_job.pk}) cancelled")
    assert "Cancelled" in sent.body and "turn it off" in sent.body
    with django_capture_on_commit_callbacks(execute=True):
        assert not services.search_cancel(job=queued_job)  # already ended: nothing more is sent
    assert len(mail.outbox) == 1


def test_a_failed_search_says_why(alice, queued_job, django_capture_on_commit_callbacks):
    ask_for_email(alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.search_mark_failed(job=queued_job, reason="The disk is full.")
    assert "failed" in mail.outbox[0].subject and "Reason: The disk is full." in mail.outbox[0].body


@pytest.mark.parametrize("address", ["", "alice@example.org"])
def test_no_email_without_an_address_or_the_wish(alice, queued_job, django_capture_on_commit_callbacks, address):
    alice.email = address
    alice.save()
    if not address:
        Preferences.objects.create(user=alice, email_when_search_ends=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.search_cancel(job=queued_job)
    assert mail.outbox == []


def test_the_account_page_asks_for_the_email(alice, alice_client):
    refused = alice_client.post(reverse("account"), {"email_when_search_ends": "on"})
    assert refused.status_code == 400 and "Give the address" in refused.content.decode()
    saved = alice_client.post(reverse("account"), {"email": "a@example.org", "email_when_search_ends": "on"})
    assert saved.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "a@example.org" and alice.preferences.email_when_search_ends


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_page_tells_the_end_by_title_and_notification(
    alice, alice_client, live_server_url, celery_worker_process, breast_cancer_csv, browser_page
):
    """Notifications allowed in the browser: the tab shows the progress while the search runs, then
    "Finished · ..." and a notification "Finished: <name>"; the worker emailed the owner too."""
    ask_for_email(alice, "owner@example.org")
    page = browser_page
    page.context.grant_permissions(["notifications"], origin=live_server_url)
    # Record each notification the page makes (then make it as asked): what a person would see.
    page.add_init_script(
        """(() => { const Real = window.Notification; window.__notes = [];
        class Recorded extends Real { constructor(title, options) { super(title, options);
          window.__notes.push({ title: title, body: (options || {}).body || "" }); } }
        window.Notification = Recorded; })();"""
    )
    log_in(page, live_server_url)
    job = start_search(alice, alice_client, breast_cancer_csv, budget_seconds=8, name="tell me")
    page.goto(f"{live_server_url}/searches/{job.pk}/")
    assert page.title().endswith(f"tell me (#{job.pk}) · NAS Studio")
    page.wait_for_function("/^\\d+ % · /.test(document.title)", timeout=60_000)
    page.wait_for_function("document.title.startsWith('Finished · ')", timeout=240_000)
    notes = page.evaluate("window.__notes")
    assert notes and notes[0]["title"] == f"Finished: tell me (#{job.pk})" and "architectures tried" in notes[0]["body"]
    assert page.text_content("#connection").strip() == ""  # "● live" is gone once nothing more will come
    deadline = time.monotonic() + 30
    while "owner@example.org" not in celery_worker_process.log() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert f"Subject: tell me (#{job.pk}) finished" in celery_worker_process.log()
