"""The practitioner's path in real Chromium: log in, upload, start, watch a point appear live,
download the bundle. Uses Debian's /usr/bin/chromium (installed by `make test`), never a
downloaded browser."""

import zipfile

import pytest

from tests.conftest import PASSWORD
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_practitioner_searches_and_downloads_without_reloading(
    celery_worker_process, live_server_url, alice, browser_page, breast_cancer_csv, tmp_path
):
    page = browser_page
    page.goto(live_server_url + "/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")

    page.goto(live_server_url + "/datasets/upload/")
    page.set_input_files("input[name=file]", str(breast_cancer_csv))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#search-form")
    assert page.locator("#profile").inner_text().count("mean radius") == 1

    page.select_option("select[name=target]", "diagnosis")
    page.click("#advanced summary")  # the trial limit is an advanced option
    page.fill("input[name=max_trials]", "3")
    assert page.inner_text("#budget-value") == "60"  # the budget slider starts at one minute
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#pareto")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    page.wait_for_function("Number(document.getElementById('pareto').dataset.points) > 0", timeout=180_000)
    assert page.locator("#pareto .scatterlayer .point").count() >= 1
    assert page.evaluate("window.loadedOnce") is True

    page.wait_for_function("document.getElementById('job-status').textContent === 'finished'", timeout=180_000)
    assert page.evaluate("window.loadedOnce") is True
    job = SearchJob.objects.get()
    page.wait_for_function("document.getElementById('chosen').hidden === false")
    assert page.inner_text("#chosen-number") == str(job.recommended_number)  # chosen for the user
    assert page.is_visible("#chosen-recommended")
    link = page.locator("#download-bundle")
    link.wait_for(state="visible")
    with page.expect_download(timeout=120_000) as download_info:
        link.click()
    saved = tmp_path / "bundle.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert {"model.onnx", "predict.py", "preprocessing.json"} <= set(archive.namelist())
