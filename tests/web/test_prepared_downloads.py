"""Downloads a worker prepares: a trial's bundle, its predictions for the job's dataset and its
test-split evaluation. The request answers at once (202 with progress, a page that polls), asks the
worker once however many clicks come, and serves the finished file streamed from disk; a failure is
told in words, once, and the next click tries again. The worker is the real Celery worker of the
test session; the models are real (trained for one epoch on the job's own split)."""

from __future__ import annotations

import csv
import io
import shutil
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from nas_engine import runtime
from tests.web.helpers import prepared, upload_dataset
from tests.web.test_search_pages import train_trial
from webapp.searches import bundles, downloads
from webapp.searches.evaluation import SPLIT_CHANGED
from webapp.searches.models import SearchJob, Trial

pytestmark = [pytest.mark.django_db(transaction=True)]
ANSWERS_WITHIN = 2.0  # seconds a request may take, whatever it asks for


@pytest.fixture
def trial(alice, alice_client, breast_cancer_csv):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = SearchJob.objects.create(  # made directly: never sent to a broker
        owner=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, seed=0,
        status=SearchJob.Status.FINISHED,
    )  # fmt: skip
    shutil.rmtree(job.artifacts_dir, ignore_errors=True)  # a flushed test database reuses job ids
    trained = train_trial(job)
    return Trial.objects.select_related("job__dataset").get(pk=trained.pk)  # with the job as the worker reads it


def timed_get(client, url: str, **headers):
    start = time.monotonic()
    response = client.get(url, **headers)
    return response, time.monotonic() - start


def test_a_bundle_is_made_by_the_worker_while_the_page_shows_its_progress(celery_worker_process, alice_client, trial):
    url = reverse("trial_bundle", args=[trial.job_id, trial.number])
    page, seconds = timed_get(alice_client, url)
    assert page.status_code == 202 and seconds < ANSWERS_WITHIN, (page.status_code, seconds)
    content = page.content.decode()
    assert "Preparing the model bundle of trial 0" in content and 'id="prepare-progress"' in content
    assert "/static/js/preparing.js" in content and 'http-equiv="refresh"' in content  # polls, with or without JS
    assert page["Retry-After"] == "1"

    states = set()
    deadline = time.monotonic() + 120
    while True:
        polled, seconds = timed_get(alice_client, url, HTTP_ACCEPT="application/json")
        assert seconds < ANSWERS_WITHIN
        body = polled.json()
        if polled.status_code != 202:
            break
        states.add(body["state"])
        assert 0 <= body["progress"] <= 1 and body["message"]
        assert time.monotonic() < deadline, celery_worker_process.log()[-3000:]
        time.sleep(0.2)
    assert polled.status_code == 200 and body["state"] == "ready", body
    assert states <= {"queued", "running"}
    saved = bundles.bundle_path(trial)
    assert body["filename"] == f"nas-studio-search{trial.job_id}-trial0.zip" and body["bytes"] == saved.stat().st_size

    download, seconds = timed_get(alice_client, url)
    assert download.status_code == 200 and download.streaming and seconds < ANSWERS_WITHIN
    assert download["Content-Type"] == "application/zip" and "attachment" in download["Content-Disposition"]
    data = b"".join(download.streaming_content)
    assert data == saved.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {"model.onnx", "model.pt", "predict.py", "preprocessing.json"} <= set(archive.namelist())
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary file left beside it


def test_many_clicks_at_once_ask_the_worker_once(alice, trial):
    """Eight clicks at the same moment: each is answered at once, and one message is queued."""
    queue = f"downloads-test-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes, so the message stays
    url = reverse("trial_predictions", args=[trial.job_id, trial.number])
    answers: list[tuple[int, float]] = []
    start = threading.Barrier(8)

    def click() -> None:
        browser = Client()
        browser.force_login(alice)
        start.wait()
        try:
            response, seconds = timed_get(browser, url, HTTP_ACCEPT="application/json")
            answers.append((response.status_code, seconds))
        finally:
            connection.close()  # this thread's own connection

    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        with override_settings(NAS_QUEUES={**settings.NAS_QUEUES, "default": queue}):
            threads = [threading.Thread(target=click) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert [status for status, _ in answers] == [202] * 8
        assert max(seconds for _, seconds in answers) < ANSWERS_WITHIN
        assert broker.llen(queue) == 1
    finally:
        broker.delete(queue)
        broker.close()
        cache.delete(downloads._key(trial, downloads.PREDICTIONS))


def test_the_predictions_file_holds_every_row_as_the_model_predicts_it(
    celery_worker_process, alice_client, trial, monkeypatch
):
    url = reverse("trial_predictions", args=[trial.job_id, trial.number])
    first, seconds = timed_get(alice_client, url)
    assert first.status_code == 202 and seconds < ANSWERS_WITHIN
    response = prepared(alice_client, url)
    assert response.status_code == 200 and response.streaming and response["Content-Type"] == "text/csv"
    assert f'filename="search{trial.job_id}-trial0-predictions.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = bundles.trial_predictions(trial=trial, csv_path=trial.job.dataset.file.path)  # all rows at once
    assert rows[0] == ["row", "diagnosis", "prediction"] and [row[-1] for row in rows[1:]] == [str(p) for p in expected]
    actual = [row["diagnosis"] for row in csv.DictReader(open(trial.job.dataset.file.path))]
    assert [row[1] for row in rows[1:]] == actual and rows[-1][0] == "569"  # each line names its row
    assert len(expected) == 569
    made = downloads.file_path(trial, downloads.PREDICTIONS)
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temporary file left beside it

    # A chunk at a time gives the same file, whatever the chunk (here 100 rows: six chunks, one short).
    monkeypatch.setattr(downloads, "PREDICT_CHUNK", 100)
    reported: list[float] = []
    before = made.read_bytes()
    made.unlink()
    downloads.write_predictions(trial, report=lambda progress, message: reported.append(progress))
    assert made.read_bytes() == before
    assert len(reported) == 1 + 6 and reported == sorted(reported)


def test_a_failure_is_told_once_in_words_and_the_next_click_tries_again(celery_worker_process, alice_client, trial):
    url = reverse("trial_evaluation", args=[trial.job_id, trial.number])
    SearchJob.objects.filter(pk=trial.job_id).update(seed=1)  # another seed: the split cannot be rebuilt
    first, seconds = timed_get(alice_client, url)
    assert first.status_code == 202 and seconds < ANSWERS_WITHIN and first.json()["state"] in ("queued", "running")
    failed = prepared(alice_client, url)
    assert failed.status_code == 409 and failed.json()["error"] == SPLIT_CHANGED

    SearchJob.objects.filter(pk=trial.job_id).update(seed=0)  # put right: the next request asks again
    again = alice_client.get(url)
    assert again.status_code == 202
    body = prepared(alice_client, url).json()
    assert body["evaluation"]["n"] == sum(map(sum, body["evaluation"]["confusion"])) > 0
    assert body["trial"]["number"] == 0 and body["layers"][0].startswith("Dense 8")


def test_what_no_worker_could_make_is_refused_at_once_with_a_page_not_a_traceback(alice_client, trial):
    Path(trial.final_weights_path).unlink()
    for name in ("trial_bundle", "trial_predictions"):
        response, seconds = timed_get(alice_client, reverse(name, args=[trial.job_id, trial.number]))
        assert response.status_code == 409 and seconds < ANSWERS_WITHIN
        content = response.content.decode()
        assert "This trial&#x27;s trained weights are missing on the server." in content
        assert 'id="prepare-error"' in content and "Traceback" not in content


def test_the_bundle_check_reads_only_the_rows_it_needs(alice_client, breast_cancer_csv):
    """Past its 569 rows (the first 200 are about a third of it) the stored file is not even text:
    reading it whole would fail."""
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    Path(dataset.file.path).write_bytes(breast_cancer_csv.read_bytes() + b"\xff\xfe not utf-8\n" * 1000)
    rows = bundles.dataset_rows(dataset, max_rows=bundles.CHECK_ROWS)
    assert rows == runtime.read_csv_rows(breast_cancer_csv)[: bundles.CHECK_ROWS]
