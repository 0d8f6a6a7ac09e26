"""The search admin's actions ask for the permission their effect needs: a view-only staff account
sees the jobs but is offered no action, and a forged post of one changes nothing; an account with
the change permission may cancel and mark failed, not re-run or delete; a superuser may do all."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.web.test_admin_jobs import CHANGELIST, act
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db

ACTIONS = ["cancel_jobs", "rerun_jobs", "mark_failed", "delete_with_files"]


def staff_client(django_user_model, username: str, *codenames: str, superuser: bool = False) -> Client:
    if superuser:
        user = django_user_model.objects.create_superuser(username=username, password=PASSWORD)
    else:
        user = django_user_model.objects.create_user(username=username, password=PASSWORD, is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="searches", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def offered(client) -> set[str]:
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and "breast_cancer.csv" in page.content.decode()  # the jobs are listed
    return {action for action in ACTIONS if f'value="{action}"' in page.content.decode()}


@pytest.fixture
def job_with_files(queued_job):
    folder = Path(queued_job.artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trial_0.pt").write_bytes(b"weights")
    return queued_job, folder


def test_a_view_only_staff_user_is_offered_no_action_and_a_forged_one_does_nothing(
    django_user_model, job_with_files, django_capture_on_commit_callbacks
):
    job, folder = job_with_files
    viewer = staff_client(django_user_model, "viv", "view_searchjob")
    assert offered(viewer) == set()
    with django_capture_on_commit_callbacks(execute=True):
        for action in ACTIONS:
            response = act(viewer, action, [job], reason="forged", post="yes")
            assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == SearchJob.Status.QUEUED and job.error == ""
    assert list(SearchJob.objects.all()) == [job]  # not deleted, not re-run
    assert (folder / "trial_0.pt").read_bytes() == b"weights"
    # Nor through the admin's own delete page.
    delete = reverse("admin:searches_searchjob_delete", args=[job.pk])
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    assert SearchJob.objects.filter(pk=job.pk).exists() and folder.exists()


def test_the_change_permission_cancels_and_marks_failed_but_neither_reruns_nor_deletes(
    django_user_model, job_with_files, django_capture_on_commit_callbacks
):
    job, folder = job_with_files
    editor = staff_client(django_user_model, "ed", "view_searchjob", "change_searchjob")
    assert offered(editor) == {"cancel_jobs", "mark_failed"}
    with django_capture_on_commit_callbacks(execute=True):
        act(editor, "rerun_jobs", [job])
        act(editor, "delete_with_files", [job], post="yes")
    assert list(SearchJob.objects.all()) == [job] and folder.exists()
    act(editor, "mark_failed", [job], reason="The dataset was withdrawn.")
    job.refresh_from_db()
    assert job.status == SearchJob.Status.FAILED and job.error == "The dataset was withdrawn."


def test_a_superuser_may_use_every_action(django_user_model, job_with_files, django_capture_on_commit_callbacks):
    job, folder = job_with_files
    admin = staff_client(django_user_model, "root", superuser=True)
    assert offered(admin) == set(ACTIONS)
    with django_capture_on_commit_callbacks(execute=False):  # the re-run is never sent to a worker
        act(admin, "rerun_jobs", [job])
    rerun = SearchJob.objects.get(rerun_of=job)
    act(admin, "cancel_jobs", [rerun])
    rerun.refresh_from_db()
    assert rerun.status == SearchJob.Status.CANCELLED
    act(admin, "mark_failed", [job], reason="Stopped by staff.")
    job.refresh_from_db()
    assert job.status == SearchJob.Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        act(admin, "delete_with_files", [job], post="yes")
    assert not SearchJob.objects.filter(pk=job.pk).exists() and not folder.exists()
