"""A bundle that cannot be written (disk full, file too large) gets a clear 507, not a 500; no
partial file is left or offered later, and once there is room the same download succeeds.

The write error is real: a Celery worker of this test's own (the one that makes bundles: web
requests never do) runs with RLIMIT_FSIZE at 1 KB (and SIGXFSZ ignored), so its first large write
fails with EFBIG, as on a full disk (this works as root too, where a read-only folder would not stop
anyone). Its queues have a prefix of their own; the session's worker then has room."""

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tests.conftest import ROOT, _child_env
from tests.web.helpers import prepared, upload_dataset
from tests.web.test_search_pages import train_trial
from webapp.searches import bundles
from webapp.searches.models import SearchJob, Trial

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FILE_SIZE_LIMIT = 1024  # bytes: far below any model file, so the export's first file write fails


def _limit_file_size() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.fixture
def cramped_worker_prefix(django_db_setup):
    """A Celery worker on the test database, consuming queues of its own prefix, whose process cannot
    write a file past FILE_SIZE_LIMIT; yields the prefix."""
    prefix = f"cramped-{uuid.uuid4().hex[:8]}-"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool", "solo", "--concurrency", "1",
         "-l", "info", "-n", f"cramped-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=ROOT,
        env={**_child_env(), "CELERY_QUEUE_PREFIX": prefix},
        stdout=subprocess.PIPE,  # a pipe, not a regular file: the limit does not apply to its log lines
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_file_size,
    )  # fmt: skip
    log: list[bytes] = []
    threading.Thread(target=lambda: log.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while b" ready." not in b"".join(log):
            assert process.poll() is None and time.monotonic() < deadline, b"".join(log[-40:]).decode(errors="replace")
            time.sleep(0.2)
        yield prefix
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_bundle_that_cannot_be_written_is_a_507_and_leaves_nothing_behind(
    celery_worker_process, cramped_worker_prefix, alice, alice_client, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = SearchJob.objects.create(  # made directly: never sent to a broker
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30,
        status=SearchJob.Status.FINISHED,
    )  # fmt: skip
    # Flushing the test database lets a later job reuse a pk, not its files: start with no bundles.
    shutil.rmtree(job.artifacts_dir, ignore_errors=True)
    trial = Trial.objects.select_related("job").get(pk=train_trial(job).pk)
    path = reverse("trial_bundle", args=[job.pk, trial.number])
    folder = Path(job.artifacts_dir) / "bundles"

    cramped = {role: cramped_worker_prefix + role for role in settings.NAS_QUEUES}
    with override_settings(NAS_QUEUES=cramped):  # this request's work goes to the cramped worker
        failed = prepared(alice_client, path)
    assert failed.status_code == 507, failed.content[:2000]
    error = failed.json()["error"]
    assert "no room to save this model bundle" in error and "Nothing was saved" in error
    assert "Traceback" not in failed.content.decode() and failed["Retry-After"] == "60"
    assert not folder.exists() or list(folder.iterdir()) == []  # no partial zip, no temporary file

    response = prepared(alice_client, path)  # room again (the session's worker): the same download succeeds
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    saved = bundles.bundle_path(trial)
    assert saved.read_bytes() == body and [p.name for p in folder.iterdir()] == [saved.name]
    with zipfile.ZipFile(saved) as archive:
        assert {"model.onnx", "model.pt", "predict.py", "preprocessing.json"} <= set(archive.namelist())
        assert archive.testzip() is None
