"""Deleting asks first: a dataset's and a search's delete page says what goes with it (the searches
on the dataset, their trained models), and only its confirming POST deletes; a GET never does."""

from pathlib import Path

import pytest
from django.urls import reverse

from tests.web.helpers import upload_dataset
from webapp.datasets.models import Dataset
from webapp.searches import services
from webapp.searches.models import SearchJob, Trial

pytestmark = pytest.mark.django_db


def _job_with_models(user, dataset, models: int) -> SearchJob:
    """A queued job (never sent to a worker) with ``models`` trained trials and one rejected."""
    job = services.search_create(
        user=user, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
    )
    for number in range(models + 1):
        status = Trial.Status.COMPLETED if number < models else Trial.Status.REJECTED
        Trial.objects.create(
            job=job, number=number, status=status, architecture={}, arch_hash=str(number), params=10, flops=1,
            size_bytes=4, score=0.9 if number < models else None,
        )  # fmt: skip
    folder = Path(job.artifacts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trial_0.pt").write_bytes(b"weights")
    return job


def test_deleting_a_dataset_asks_first_and_says_what_goes_with_it(
    alice, alice_client, breast_cancer_csv, django_capture_on_commit_callbacks
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        first, second = _job_with_models(alice, dataset, 2), _job_with_models(alice, dataset, 1)
    url = reverse("dataset_delete", args=[dataset.pk])

    # The dataset page links to the question; it holds no form that deletes.
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk])).content.decode()
    assert f'href="{url}"' in page and f'action="{url}"' not in page

    for response in (alice_client.get(url), alice_client.post(url)):  # a GET, a POST that did not confirm
        assert response.status_code == 200
        text = response.content.decode()
        assert "2 searches on this dataset" in text and "3 trained models" in text
        assert f"Search #{first.pk}</a>" in text and f"Search #{second.pk}</a>" in text
        assert 'name="confirm" value="yes"' in text
    assert Dataset.objects.filter(pk=dataset.pk).exists() and SearchJob.objects.count() == 2
    assert Trial.objects.count() == 5

    file, folder = Path(dataset.file.path), Path(first.artifacts_dir)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302 and response.url == reverse("home")
    assert not Dataset.objects.exists() and not SearchJob.objects.exists() and not Trial.objects.exists()
    assert not file.exists() and not folder.exists()


def test_deleting_a_search_asks_first_and_keeps_the_dataset(
    alice, alice_client, breast_cancer_csv, django_capture_on_commit_callbacks
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        job, other = _job_with_models(alice, dataset, 2), _job_with_models(alice, dataset, 1)
    url = reverse("search_delete", args=[job.pk])
    assert f'href="{url}"' in alice_client.get(reverse("search_detail", args=[job.pk])).content.decode()

    for response in (alice_client.get(url), alice_client.post(url)):
        assert response.status_code == 200
        text = response.content.decode()
        assert "also deletes its 2 trained models" in text and "will be cancelled" in text
    job.refresh_from_db()
    assert job.status == SearchJob.Status.QUEUED and Trial.objects.filter(job=job).count() == 3

    folder = Path(job.artifacts_dir)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert not SearchJob.objects.filter(pk=job.pk).exists() and not folder.exists()
    assert Dataset.objects.filter(pk=dataset.pk).exists() and SearchJob.objects.filter(pk=other.pk).exists()


def test_the_admins_delete_with_files_asks_first(
    alice, alice_client, breast_cancer_csv, django_user_model, django_capture_on_commit_callbacks
):
    from django.test import Client

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        job = _job_with_models(alice, dataset, 2)
    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser(username="carol", password="x"))
    changelist = reverse("admin:searches_searchjob_changelist")
    chosen = {"action": "delete_with_files", "_selected_action": [job.pk]}

    response = staff.post(changelist, chosen)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Deleting 1 search also deletes" in text and "2 trained models" in text and "will be cancelled" in text
    assert 'name="post" value="yes"' in text
    assert SearchJob.objects.filter(pk=job.pk).exists()

    folder = Path(job.artifacts_dir)
    with django_capture_on_commit_callbacks(execute=True):
        assert staff.post(changelist, chosen | {"post": "yes"}).status_code == 302
    assert not SearchJob.objects.filter(pk=job.pk).exists() and not folder.exists()
