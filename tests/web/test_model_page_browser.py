"""The model page in real Chromium, after a real search on the Celery worker: the card, one box per
layer, and "try it" predictions that equal what the downloaded bundle's predict.py prints, on a
laptop and at 375 px."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset
from tests.web.test_model_page import write_rows
from webapp.searches import services
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until_finished(job: SearchJob, timeout: float) -> SearchJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_ended:
            return job
        time.sleep(0.5)
    raise AssertionError(f"search {job.pk} still {job.status} after {timeout} s")


def overflowing(page, selector: str) -> list[str]:
    """Elements under ``selector`` whose right edge passes the viewport, except inside a box that
    scrolls sideways on purpose (a wide table, a code block)."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].filter((el) => {
             for (let box = el.parentElement; box; box = box.parentElement) {
               if (getComputedStyle(box).overflowX !== "visible") return false;
             }
             return el.getBoundingClientRect().right > window.innerWidth + 1;
           }).map((el) => el.id || el.className || el.tagName)""",
        selector,
    )


def test_a_practitioner_reads_the_model_page_and_tries_the_model(
    celery_worker_process,
    live_server_url,
    alice,
    alice_client,
    browser_page,
    breast_cancer_csv,
    tmp_path,
    doc_screenshot,
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30, max_trials=2
    )
    job = wait_until_finished(job, timeout=240)
    assert job.status == SearchJob.Status.FINISHED, (job.error, celery_worker_process.log()[-3000:])
    trial = job.trials.get(number=job.recommended_number)

    page = browser_page
    page.goto(live_server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")

    page.goto(f"{live_server_url}/searches/{job.pk}/trials/{trial.number}/")
    assert page.is_visible("#model-card") and page.inner_text("#model-card h2") == "Model card"
    assert "diagnosis (classification)" in page.inner_text("#model-card")
    boxes = page.locator("#layer-diagram > li.layer")
    kinds = [boxes.nth(i).get_attribute("data-kind") for i in range(boxes.count())]
    arch = trial.architecture  # the tabular space adds a box for an embedding and one for TabM-style members
    if arch["space"] == "trees":  # the portfolio's boosted trees: one box holds them
        assert kinds == ["input", "head", "output"]
    else:
        extra = (arch.get("embed", "none") != "none") + (arch.get("members", 1) > 1)
        assert kinds == ["input", *["dense"] * (len(arch["layers"]) + extra), "head", "output"]
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    # Try it: five rows without the target column, predicted in the page.
    five = write_rows(tmp_path / "five.csv", breast_cancer_csv, 5, drop=("diagnosis",))
    page.get_by_label("CSV file of new rows").set_input_files(str(five))
    page.click("#try-predict")
    page.wait_for_selector("#try-table tbody tr")
    doc_screenshot(page, "model-page")
    assert page.evaluate("window.loadedOnce") is True
    shown = page.eval_on_selector_all("#try-table td.prediction", "cells => cells.map((c) => c.dataset.value)")
    assert page.locator("#try-table td.probability").count() == 5

    # The same five rows through the downloaded bundle's own predict.py.
    # Job ids restart with every test database, so an older run's bundle may sit at this job's path.
    shutil.rmtree(Path(job.artifacts_dir) / "bundles", ignore_errors=True)
    with page.expect_download(timeout=120_000) as bundle_download:
        page.click("#download-bundle")
    bundle_download.value.save_as(tmp_path / "bundle.zip")
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        archive.extractall(tmp_path / "bundle")
    printed = subprocess.run(
        [sys.executable, "predict.py", str(five)],
        cwd=tmp_path / "bundle", check=True, capture_output=True, text=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    assert printed == ["prediction", *shown] and len(shown) == 5

    # Every prediction as CSV, still without leaving the page.
    with page.expect_download() as csv_download:
        page.click("#try-download")
    csv_download.value.save_as(tmp_path / "all.csv")
    with open(tmp_path / "all.csv", newline="", encoding="utf-8") as handle:
        assert [row["prediction"] for row in csv.DictReader(handle)] == shown

    # A file without two of the model's columns: the reason shows next to the field.
    bad = write_rows(tmp_path / "bad.csv", breast_cancer_csv, 3, drop=("mean radius", "worst area"))
    page.get_by_label("CSV file of new rows").set_input_files(str(bad))
    page.click("#try-predict")
    page.wait_for_selector("#try-file-errors .error")
    assert "missing column(s) the model needs: mean radius, worst area" in page.inner_text("#try-file-field")
    assert page.locator("#try-table").count() == 0 and page.evaluate("window.loadedOnce") is True

    # At phone width nothing of the page runs off the screen.
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    assert overflowing(page, "main, main *") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
