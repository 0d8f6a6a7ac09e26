"""Small helpers the web tests share."""

import time
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


def wait_for_trials(job, count: int = 1, *, statuses=None, timeout: float = 120) -> bool:
    """Wait until the job has ``count`` trials (of ``statuses``, if given); False on timeout."""
    trials = job.trials.filter(status__in=statuses) if statuses else job.trials.all()
    deadline = time.monotonic() + timeout
    while trials.count() < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return trials.count() >= count


def communicator_for(client, job_id: int, *, origin: bytes = b"http://localhost"):
    """A WebSocket client for job ``job_id``'s socket, logged in as ``client``'s session."""
    from channels.testing import WebsocketCommunicator
    from django.conf import settings

    from webapp.asgi import application

    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(
        application,
        f"/ws/searches/{job_id}/",
        headers=[(b"cookie", cookie.encode()), (b"origin", origin), (b"host", b"localhost")],
    )


def prepared(client, url: str, *, timeout: float = 120):
    """GET a download a worker prepares (a bundle, predictions, an evaluation): ask with
    ``Accept: application/json`` until it is no longer 202, then fetch the file itself when the
    answer says it is ready; else that answer (an evaluation's JSON, or a failure)."""
    deadline = time.monotonic() + timeout
    while (response := client.get(url, HTTP_ACCEPT="application/json")).status_code == 202:
        assert time.monotonic() < deadline, f"{url} was still being prepared after {timeout} s: {response.json()}"
        time.sleep(0.2)
    if response.status_code == 200 and response.json().get("state") == "ready":
        return client.get(url)
    return response
