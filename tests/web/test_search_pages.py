"""The job page, cancel, and downloads: owners only."""

import pytest
from django.urls import reverse

from webapp.searches import services
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(queued_job):
    return queued_job


def test_it_shows_the_job_page_with_the_local_plotly(alice_client, job):
    response = alice_client.get(reverse("search_detail", args=[job.pk]))
    assert response.status_code == 200
    assert b"/static/vendor/plotly/plotly.min.js" in response.content
    assert f'data-ws-path="/ws/searches/{job.pk}/"'.encode() in response.content
    assert b"cdn" not in response.content.lower()


def test_it_serves_plotly_from_our_own_static_files(client):
    response = client.get("/static/vendor/plotly/plotly.min.js")
    assert response.status_code == 200
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


def test_it_rejects_other_users_job(bob_client, job):
    for name in ["search_detail", "search_cancel"]:
        method = bob_client.post if name == "search_cancel" else bob_client.get
        assert method(reverse(name, args=[job.pk])).status_code == 404
    for name in ["trial_bundle", "trial_predictions"]:
        assert bob_client.get(reverse(name, args=[job.pk, 0])).status_code == 404
    job.refresh_from_db()
    assert job.status == SearchJob.Status.QUEUED


def test_it_cancels_a_queued_job_and_the_worker_then_skips_it(alice_client, job):
    response = alice_client.post(reverse("search_cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == SearchJob.Status.CANCELLED and job.finished_at is not None
    services.search_execute(job_id=job.pk)  # what the worker does when the message arrives
    job.refresh_from_db()
    assert job.status == SearchJob.Status.CANCELLED
    assert not job.trials.exists()


def test_it_says_a_missing_trial_is_not_found(alice_client, job):
    assert alice_client.get(reverse("trial_bundle", args=[job.pk, 99])).status_code == 404


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-cmd", "'-cmd"),
        ("\tx", "'\tx"),
        ("yes", "yes"),
        (-1.5, "-1.5"),
        ("-2", "-2"),
        (0.25, "0.25"),
    ],
)
def test_prediction_cells_never_start_a_spreadsheet_formula(value, cell):
    from webapp.searches.views import spreadsheet_safe

    assert spreadsheet_safe(value) == cell


def test_staff_see_any_users_job_its_trials_and_its_socket_snapshot(job, bob, django_user_model):
    from django.test import Client

    from webapp.searches.models import Trial
    from webapp.searches.selectors import search_snapshot

    Trial.objects.create(
        job=job, number=0, status="rejected", architecture={}, arch_hash="a", params=10**9, flops=1, size_bytes=4
    )
    sam = django_user_model.objects.create_user(username="sam", password="x", is_staff=True)
    staff = Client()
    staff.force_login(sam)
    assert staff.get(reverse("search_detail", args=[job.pk])).status_code == 200
    assert staff.get(reverse("trial_bundle", args=[job.pk, 0])).status_code == 409  # found; rejected, no model
    bob_client = Client()
    bob_client.force_login(bob)
    assert bob_client.get(reverse("trial_bundle", args=[job.pk, 0])).status_code == 404
    # The WebSocket consumer asks the same selector before it joins the job's group.
    assert search_snapshot(user=sam, pk=job.pk)[0] == job
    assert search_snapshot(user=bob, pk=job.pk) is None
