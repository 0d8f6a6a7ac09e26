"""Per-user quotas: concurrent searches, budget per search, upload size and storage. Going over one
gives a message the user can act on and creates nothing; staff set a user's limits in the admin."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.web.helpers import stored_dataset_files, upload, upload_dataset
from tests.web.test_search_create import start
from webapp.accounts.models import UserQuota
from webapp.accounts.quotas import EffectiveQuota, quota_for, storage_used_bytes
from webapp.datasets.models import Dataset
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def own_media_root(settings, tmp_path):
    """Job folders are named by primary key, which a rolled-back test may hand out again."""
    settings.MEDIA_ROOT = tmp_path / "media"


def set_quota(user, **limits) -> None:
    UserQuota.objects.update_or_create(user=user, defaults=limits)


def csv_of_about(path: Path, size_bytes: int) -> Path:
    rows = "".join(f"{i % 100_000:05d},{i % 2}\n" for i in range(size_bytes // 8))  # 8 bytes a row
    path.write_text("feature,label\n" + rows)
    return path


def file_errors(response) -> str:
    return " ".join(response.context["form"].errors["file"])


@pytest.fixture
def dataset(alice_client, breast_cancer_csv):
    return upload_dataset(alice_client, breast_cancer_csv)


@pytest.fixture
def staff_client(django_user_model):
    staff = django_user_model.objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    codenames = ["view_user", "change_user", "view_userquota", "add_userquota", "change_userquota"]
    staff.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(staff)
    return client


def test_it_takes_the_limits_from_settings_when_a_user_has_no_override(alice, settings):
    settings.QUOTA_MAX_CONCURRENT_JOBS, settings.QUOTA_MAX_BUDGET_SECONDS = 3, 120
    settings.QUOTA_MAX_UPLOAD_MB, settings.QUOTA_MAX_STORAGE_MB = 5, 50
    assert quota_for(alice) == EffectiveQuota(
        max_concurrent_jobs=3, max_budget_seconds=120, max_upload_mb=5, max_storage_mb=50
    )
    set_quota(alice, max_storage_mb=7)
    assert quota_for(alice) == EffectiveQuota(
        max_concurrent_jobs=3, max_budget_seconds=120, max_upload_mb=5, max_storage_mb=7
    )


def test_an_override_never_passes_the_servers_hard_caps(alice, settings):
    set_quota(alice, max_upload_mb=10**6, max_budget_seconds=10**9)
    quota = quota_for(alice)
    assert (quota.max_upload_mb, quota.max_budget_seconds) == (settings.MAX_UPLOAD_MB, settings.MAX_BUDGET_SECONDS)


def test_it_applies_the_default_concurrent_limit_from_settings(alice_client, dataset, settings):
    settings.QUOTA_MAX_CONCURRENT_JOBS = 1
    assert start(alice_client, dataset).status_code == 302
    response = start(alice_client, dataset)
    assert response.status_code == 400
    assert "your limit is 1" in " ".join(response.context["form"].non_field_errors())
    assert SearchJob.objects.count() == 1


def test_it_refuses_a_search_over_the_concurrent_limit_until_one_is_cancelled(alice_client, alice, dataset):
    set_quota(alice, max_concurrent_jobs=2)
    assert start(alice_client, dataset).status_code == 302
    assert start(alice_client, dataset).status_code == 302
    SearchJob.objects.filter(pk=SearchJob.objects.earliest("created_at").pk).update(status=SearchJob.Status.RUNNING)
    response = start(alice_client, dataset)
    assert response.status_code == 400
    message = "You have 2 searches running or queued, your limit is 2; wait for one to finish or cancel one."
    assert response.context["form"].non_field_errors() == [message]
    assert message.encode() in response.content
    assert SearchJob.objects.count() == 2

    alice_client.post(reverse("search_cancel", args=[SearchJob.objects.latest("created_at").pk]))
    assert start(alice_client, dataset).status_code == 302
    assert SearchJob.objects.count() == 3


def test_it_refuses_every_search_when_the_limit_is_zero(alice_client, alice, dataset):
    set_quota(alice, max_concurrent_jobs=0)
    response = start(alice_client, dataset)
    assert response.status_code == 400
    assert "ask an administrator" in " ".join(response.context["form"].non_field_errors())
    assert not SearchJob.objects.exists()


def test_it_refuses_a_budget_over_the_users_limit_next_to_the_budget_field(alice_client, alice, dataset):
    set_quota(alice, max_budget_seconds=20)
    response = start(alice_client, dataset, budget_seconds=30)
    assert response.status_code == 400
    assert response.context["form"].errors["budget_seconds"] == [
        "A time budget of 30 s is over your limit of 20 s per search; choose 20 s or less."
    ]
    assert not SearchJob.objects.exists()
    assert start(alice_client, dataset, budget_seconds=20).status_code == 302


def test_it_refuses_an_upload_over_the_users_upload_limit(alice_client, alice, tmp_path):
    set_quota(alice, max_upload_mb=1)
    response = upload(alice_client, csv_of_about(tmp_path / "big.csv", int(1.3 * MB)))
    assert response.status_code == 400
    assert "(1.3 MB) is over your 1 MB upload limit" in file_errors(response)
    assert b'role="alert"' in response.content
    assert not Dataset.objects.exists()
    assert stored_dataset_files(settings.MEDIA_ROOT) == []


def test_it_refuses_an_upload_that_would_pass_the_storage_limit(alice_client, alice, tmp_path):
    set_quota(alice, max_storage_mb=1)
    kept = upload_dataset(alice_client, csv_of_about(tmp_path / "first.csv", int(0.6 * MB)))
    response = upload(alice_client, csv_of_about(tmp_path / "second.csv", int(0.6 * MB)))
    assert response.status_code == 400
    assert file_errors(response) == (
        "This upload (0.6 MB) would take your storage to 1.2 MB, over your 1 MB limit; "
        "delete old datasets or searches first."
    )
    assert list(Dataset.objects.all()) == [kept]
    assert stored_dataset_files(settings.MEDIA_ROOT) == [Path(kept.file.path)]


def test_it_counts_the_files_of_searches_towards_storage(alice_client, alice, dataset, tmp_path):
    assert start(alice_client, dataset).status_code == 302
    job = SearchJob.objects.get()
    job.status = SearchJob.Status.FINISHED
    job.save()
    weights = Path(job.artifacts_dir) / "weights" / "trial_0.pt"  # where a worker keeps a trial's model
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"\0" * (2 * MB))
    assert storage_used_bytes(alice) == dataset.size_bytes + 2 * MB

    set_quota(alice, max_storage_mb=2)
    response = upload(alice_client, csv_of_about(tmp_path / "small.csv", 2_000))
    assert response.status_code == 400
    assert "over your 2 MB limit" in file_errors(response)
    response = start(alice_client, dataset)
    assert response.status_code == 400
    assert "at or over your 2 MB storage limit" in " ".join(response.context["form"].non_field_errors())
    assert (Dataset.objects.count(), SearchJob.objects.count()) == (1, 1)


def test_bobs_usage_does_not_count_for_alice(alice_client, alice, bob_client, bob, breast_cancer_csv, tmp_path):
    set_quota(alice, max_concurrent_jobs=1, max_storage_mb=1)
    set_quota(bob, max_concurrent_jobs=1)
    bobs = upload_dataset(bob_client, csv_of_about(tmp_path / "bob.csv", int(1.5 * MB)))
    assert start(bob_client, bobs, target="label").status_code == 302
    assert storage_used_bytes(alice) == 0

    alices = upload_dataset(alice_client, breast_cancer_csv)
    assert start(alice_client, alices).status_code == 302
    assert start(bob_client, bobs, target="label").status_code == 400
    assert SearchJob.objects.filter(owner=alice).count() == SearchJob.objects.filter(owner=bob).count() == 1


def test_staff_set_a_users_quota_on_the_users_admin_page_and_it_applies(staff_client, alice, alice_client, dataset):
    page = staff_client.get(reverse("admin:auth_user_change", args=[alice.pk]))
    assert b'name="quota-0-max_budget_seconds"' in page.content
    response = staff_client.post(
        reverse("admin:auth_user_change", args=[alice.pk]),
        {
            "username": "alice", "is_active": "on", "date_joined_0": "2025-01-01", "date_joined_1": "09:00:00",
            "quota-TOTAL_FORMS": "1", "quota-INITIAL_FORMS": "0", "quota-MIN_NUM_FORMS": "0",
            "quota-MAX_NUM_FORMS": "1", "quota-0-user": str(alice.pk), "quota-0-max_budget_seconds": "10",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert quota_for(alice).max_budget_seconds == 10
    alice.refresh_from_db()
    assert alice.is_active

    response = start(alice_client, dataset, budget_seconds=30)
    assert response.status_code == 400
    assert "over your limit of 10 s" in " ".join(response.context["form"].errors["budget_seconds"])
    assert not SearchJob.objects.exists()


def test_staff_edit_a_quota_on_its_own_admin_page_and_it_applies(staff_client, alice, alice_client, dataset):
    set_quota(alice, max_concurrent_jobs=0)
    quota = UserQuota.objects.get(user=alice)
    assert start(alice_client, dataset).status_code == 400
    response = staff_client.post(
        reverse("admin:accounts_userquota_change", args=[quota.pk]),
        {"user": str(alice.pk), "max_concurrent_jobs": "1", "max_budget_seconds": "", "max_upload_mb": ""},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    quota.refresh_from_db()
    assert (quota.max_concurrent_jobs, quota.max_budget_seconds) == (1, None)
    assert start(alice_client, dataset).status_code == 302
    assert start(alice_client, dataset).status_code == 400
