"""Staff manage every search from the admin: columns, filters, the job page with its plot, and
actions (cancel, re-run, mark failed, delete with files), the live ones against a real worker."""

import time
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset, wait_for_trials
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import services
from webapp.searches.models import SearchJob, Trial

CHANGELIST = reverse("admin:searches_searchjob_changelist")


@pytest.fixture
def staff_client(django_user_model):
    from django.test import Client

    carol = django_user_model.objects.create_superuser(username="carol", password=PASSWORD)
    staff = Client()
    staff.force_login(carol)
    return staff


@pytest.fixture
def job(queued_job):
    return queued_job


def act(client, action: str, jobs, **extra):
    data = {"action": action, "_selected_action": [j.pk for j in jobs], **extra}
    return client.post(CHANGELIST, data, follow=True)


@pytest.mark.django_db
def test_it_lists_jobs_with_their_columns_and_filters(staff_client, job):
    Trial.objects.create(
        job=job, number=0, status="completed", architecture={}, arch_hash="a", score=0.91, params=10, flops=10,
        size_bytes=40,
    )  # fmt: skip
    Trial.objects.create(
        job=job, number=1, status="rejected", architecture={}, arch_hash="b", params=10**9, flops=1, size_bytes=4
    )
    page = staff_client.get(CHANGELIST).content.decode()
    for text in ["alice", "breast_cancer.csv", "queued", "1 / 1 / 0", "0.9100", "Trials done / rejected / failed"]:
        assert text in page
    assert "alice" in staff_client.get(CHANGELIST, {"status__exact": "queued"}).content.decode()
    assert "breast_cancer.csv" not in staff_client.get(CHANGELIST, {"status__exact": "finished"}).content.decode()
    assert "breast_cancer" in staff_client.get(CHANGELIST, {"q": "alice"}).content.decode()


@pytest.mark.django_db
def test_the_job_page_shows_trials_and_the_pareto_plot(staff_client, job):
    Trial.objects.create(
        job=job, number=0, status="completed", architecture={}, arch_hash="a", score=0.9, params=50, flops=50,
        size_bytes=200, on_front=True,
    )  # fmt: skip
    page = staff_client.get(reverse("admin:searches_searchjob_change", args=[job.pk])).content.decode()
    assert 'id="admin-pareto"' in page and 'data-points="1"' in page
    assert "/static/vendor/plotly/plotly.min.js" in page
    assert "Trials" in page


@pytest.mark.django_db
def test_it_refuses_non_staff_users(alice_client, job):
    response = alice_client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response.url


@pytest.mark.django_db
def test_mark_failed_needs_a_reason_and_shows_it_to_the_owner(staff_client, alice_client, job):
    act(staff_client, "mark_failed", [job])
    job.refresh_from_db()
    assert job.status == SearchJob.Status.QUEUED
    act(staff_client, "mark_failed", [job], reason="The dataset was withdrawn.")
    job.refresh_from_db()
    assert job.status == SearchJob.Status.FAILED and job.error == "The dataset was withdrawn."
    assert "The dataset was withdrawn." in alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()


@pytest.mark.django_db(transaction=True)
def test_delete_removes_the_job_and_its_files(staff_client, job):
    folder = Path(job.artifacts_dir)
    (folder / "bundles").mkdir(parents=True, exist_ok=True)  # ids restart in a new test database
    (folder / "trial_0.pt").write_bytes(b"weights")
    (folder / "bundles" / "trial_0.zip").write_bytes(b"zip")
    act(staff_client, "delete_with_files", [job], post="yes")
    assert not SearchJob.objects.filter(pk=job.pk).exists()
    assert not folder.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_stops_a_running_job_on_the_worker(
    celery_worker_process, staff_client, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=300, seed=6
    )
    assert wait_for_trials(job), celery_worker_process.log()[-3000:]
    job.refresh_from_db()
    assert job.status == SearchJob.Status.RUNNING and job.worker_host.startswith("test-")
    act(staff_client, "cancel_jobs", [job])
    job = wait_until_ended(job, timeout=30)
    assert job.status == SearchJob.Status.CANCELLED
    time.sleep(2)
    count = job.trials.count()
    time.sleep(3)
    assert job.trials.count() == count  # the worker stopped


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rerun_repeats_the_same_trials_for_the_same_seed(
    celery_worker_process, staff_client, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # 90 s: under 100 s these rows get one validation split; 5-fold trials would only make the test slower
    first = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=90, seed=7,
        max_trials=3,
    )  # fmt: skip
    first = wait_until_ended(first, timeout=180)
    assert first.status == SearchJob.Status.FINISHED, first.error
    act(staff_client, "rerun_jobs", [first])
    second = SearchJob.objects.get(rerun_of=first)
    assert (second.owner, second.seed, second.max_trials, second.dataset) == (alice, 7, 3, dataset)
    second = wait_until_ended(second, timeout=180)
    assert second.status == SearchJob.Status.FINISHED, second.error

    def searched(job):
        return [
            (t.number, t.arch_hash, t.status, t.params)
            for t in job.trials.order_by("number")
            if t.architecture.get("space") != "ensemble"
        ]

    assert searched(second) == searched(first) and len(searched(first)) == 3
