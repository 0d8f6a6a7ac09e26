"""Small helpers the web tests share."""

from pathlib import Path

from django.urls import reverse

from webapp.datasets.models import Dataset


def upload(client, path: Path, name: str = ""):
    with open(path, "rb") as handle:
        return client.post(reverse("dataset_upload"), {"file": handle, "name": name})


def upload_dataset(client, path: Path) -> Dataset:
    response = upload(client, path)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Dataset.objects.latest("created_at")


def stored_dataset_files(media_root) -> list[Path]:
    folder = Path(media_root) / "datasets"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
