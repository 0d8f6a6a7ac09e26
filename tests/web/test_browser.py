"""The practitioner's path in real Chromium: sign up, upload, start, watch three points appear live,
download the bundle. Uses Debian's /usr/bin/chromium (installed by `make test`), never a
downloaded browser."""

import zipfile

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_practitioner_signs_up_searches_and_downloads_without_reloading(
    celery_worker_process, live_server_url, browser_page, breast_cancer_csv, tmp_path, doc_screenshot
):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server_url + "/")
    page.click("text=Sign up")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")
    assert User.objects.filter(username="carol").exists()

    page.goto(live_server_url + "/datasets/upload/")
    page.set_input_files("input[name=file]", str(breast_cancer_csv))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#search-form")
    assert page.locator("#profile").inner_text().count("mean radius") == 1
    page.wait_for_selector('#target-chart[data-kind="counts"]')  # the class balance, drawn by plotly
    doc_screenshot(page, "dataset-profile")

    page.select_option("select[name=target]", "diagnosis")
    page.click("#advanced summary")  # the trial limit is an advanced option
    page.fill("input[name=max_trials]", "3")
    assert page.inner_text("#budget-value") == "60"  # the budget slider starts at one minute
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#pareto")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    # The three models appear live, without a reload.
    page.wait_for_function("Number(document.getElementById('pareto').dataset.points) >= 3", timeout=180_000)
    assert page.locator("#pareto .scatterlayer .point").count() >= 3
    assert page.evaluate("window.loadedOnce") is True

    page.wait_for_function("document.getElementById('job-status').textContent === 'finished'", timeout=180_000)
    assert page.evaluate("window.loadedOnce") is True
    job = SearchJob.objects.get()
    page.wait_for_function("document.getElementById('chosen').hidden === false")
    assert page.inner_text("#chosen-number") == str(job.recommended_number)  # chosen for the user
    assert page.is_visible("#chosen-recommended")
    doc_screenshot(page, "job-page")
    link = page.locator("#download-bundle")
    link.wait_for(state="visible")
    with page.expect_download(timeout=120_000) as download_info:
        link.click()
    saved = tmp_path / "bundle.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert {"model.onnx", "predict.py", "preprocessing.json"} <= set(archive.namelist())
