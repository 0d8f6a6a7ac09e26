"""Uploading a CSV: it is profiled and kept; a bad file gets a clear message and leaves nothing."""

from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tests.web.helpers import stored_dataset_files, upload, upload_dataset
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db


def test_it_profiles_and_keeps_a_good_csv(alice_client, alice, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    assert dataset.owner == alice
    assert dataset.rows == 569
    assert dataset.column_count == 31
    diagnosis = dataset.column("diagnosis")
    assert diagnosis["kind"] == "numeric"
    assert diagnosis["suggested_task"] == "classification"
    assert dataset.column("mean radius")["suggested_task"] == "regression"
    page = alice_client.get(reverse("dataset_detail", args=[dataset.pk]))
    assert b"mean radius" in page.content and b"Start the search" in page.content


def test_it_reports_missing_values_and_text_columns(alice_client, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("colour,size,label\nred,1.5,a\n,2.5,b\nblue,,a\nred,4,b\n")
    dataset = upload_dataset(alice_client, path)
    assert dataset.column("colour")["kind"] == "categorical"
    assert dataset.column("colour")["missing"] == 1
    assert dataset.column("size")["missing"] == 1
    assert dataset.column("label")["suggested_task"] == "classification"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\xff\xfe\x00binary", "CSV"),
        (b"only_one_column\n1\n2\n3\n", "two columns"),
        (b"a,b\n", "no data rows"),
    ],
    ids=["empty", "binary", "one-column", "header-only"],
)
def test_it_rejects_a_bad_file_and_keeps_nothing(alice_client, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = stored_dataset_files(settings.MEDIA_ROOT)
    response = upload(alice_client, path)
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["file"])
    assert message.lower() in errors.lower()
    assert b'role="alert"' in response.content
    assert not Dataset.objects.exists()
    assert stored_dataset_files(settings.MEDIA_ROOT) == before


def test_it_rejects_a_file_over_the_size_limit(alice_client, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "1,2\n" * 100_000)
    before = stored_dataset_files(settings.MEDIA_ROOT)
    with override_settings(MAX_UPLOAD_BYTES=64 * 1024, MAX_UPLOAD_MB=0.0625):
        response = upload(alice_client, path)
    assert response.status_code == 400
    assert "larger than" in " ".join(response.context["form"].errors["file"])
    assert not Dataset.objects.exists()
    assert stored_dataset_files(settings.MEDIA_ROOT) == before


def test_it_hides_other_users_datasets(alice_client, bob_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    assert bob_client.get(reverse("dataset_detail", args=[dataset.pk])).status_code == 404
    assert bob_client.post(reverse("dataset_delete", args=[dataset.pk])).status_code == 404
    assert b"breast_cancer" not in bob_client.get(reverse("home")).content
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_it_deletes_a_dataset_and_its_file(alice_client, breast_cancer_csv, django_capture_on_commit_callbacks):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    path = Path(dataset.file.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("dataset_delete", args=[dataset.pk]))
    assert not Dataset.objects.exists()
    assert not path.exists()
