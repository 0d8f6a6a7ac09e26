"""A bundle that cannot be written (disk full, file too large) gets a clear 507, not a 500; no
partial file is left or offered later, and once there is room the same download succeeds.

The write error is real: a daphne of this test's own runs with RLIMIT_FSIZE at 1 KB (and SIGXFSZ
ignored), so its first large write fails with EFBIG, as on a full disk (this works as root too,
where a read-only folder would not stop anyone)."""

import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.conftest import ROOT, _child_env, _free_port
from tests.web.helpers import upload_dataset
from tests.web.test_search_flow import wait_until_ended
from webapp.searches import bundles, services
from webapp.searches.models import SearchJob, Trial

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FILE_SIZE_LIMIT = 1024  # bytes: far below any model file, so the export's first file write fails


def _limit_file_size() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/accounts/login/", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def cramped_server_url():
    """daphne on the test database whose process cannot write a file past FILE_SIZE_LIMIT."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
        cwd=ROOT,
        env=_child_env(),
        stdout=subprocess.PIPE,  # a pipe, not a regular file: the limit does not apply to its log lines
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_file_size,
    )
    log: list[bytes] = []
    threading.Thread(target=lambda: log.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            assert process.poll() is None and time.monotonic() < deadline, b"".join(log[-40:]).decode(errors="replace")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def get(url: str, session: str) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"})
    try:
        with urllib.request.urlopen(request, timeout=180) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def test_a_bundle_that_cannot_be_written_is_a_507_and_leaves_nothing_behind(
    celery_worker_process, live_server_url, cramped_server_url, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, max_trials=1
    )
    job = wait_until_ended(job, timeout=120)
    assert job.status == SearchJob.Status.FINISHED, job.error
    trial = job.trials.filter(status__in=Trial.WITH_MODEL).order_by("number").first()
    path = reverse("trial_bundle", args=[job.pk, trial.number])
    browser = Client()
    browser.force_login(alice)
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    folder = Path(job.artifacts_dir) / "bundles"
    # Flushing the test database lets a later job reuse a pk, not its files: start with no bundles.
    shutil.rmtree(folder, ignore_errors=True)

    status, body, headers = get(cramped_server_url + path, session)
    assert status == 507, body[:2000]
    text = body.decode()
    assert "no room to save this model bundle" in text and "Nothing was saved" in text
    assert "Traceback" not in text and headers.get("Retry-After") == "60"
    assert not folder.exists() or list(folder.iterdir()) == []  # no partial zip, no temporary file

    status, body, _ = get(live_server_url + path, session)  # room again: the same download succeeds
    assert status == 200
    saved = bundles.bundle_path(trial)
    assert saved.read_bytes() == body and [p.name for p in folder.iterdir()] == [saved.name]
    with zipfile.ZipFile(saved) as archive:
        assert {"model.onnx", "model.pt", "predict.py", "preprocessing.json"} <= set(archive.namelist())
        assert archive.testzip() is None
