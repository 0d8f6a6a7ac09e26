"""Images end to end in real Chromium: a zip of digit PNGs in class folders is uploaded through the
page, profiled with class counts and thumbnails, searched with CNNs on the real worker, tried with
one image on the model page, and the downloaded bundle's predict.py gives the page's answers for
the same PNG files."""

import csv
import io
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import PASSWORD
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TRIED = ("0", "3", "7")  # the classes whose first image is tried on the model page


def test_a_practitioner_searches_images_and_the_bundle_agrees_with_the_page(
    celery_worker_process, live_server_url, alice, browser_page, digits_zip, digit_pngs, tmp_path, doc_screenshot
):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server_url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")

    page.goto(live_server_url + "/datasets/upload/")
    page.set_input_files("input[name=file]", str(digits_zip))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#image-summary")
    assert page.inner_text("#image-summary").startswith("400 images in 10 classes, stored at 8×8 grey")
    classes = page.eval_on_selector_all("#image-classes tbody tr", "rows => rows.map(r => r.dataset.class)")
    assert classes == [str(k) for k in range(10)]
    assert page.locator("#image-classes img.thumb").count() == 60  # six samples of each class
    assert page.evaluate("document.querySelector('#image-classes img.thumb').naturalWidth") == 8
    assert page.input_value("select[name=target]") == "label"
    page.wait_for_selector('#target-chart[data-target="label"][data-kind="counts"]')  # images per class
    doc_screenshot(page, "image-dataset")

    page.click("#advanced summary")
    page.fill("input[name=max_trials]", "2")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#pareto")
    page.wait_for_function("document.getElementById('job-status').textContent === 'finished'", timeout=240_000)
    job = SearchJob.objects.get()
    assert job.status == SearchJob.Status.FINISHED, (job.error, celery_worker_process.log()[-3000:])
    assert job.preprocessing["image"]["height"] == 8 and job.preprocessing["image"]["channels"] == 1
    chosen = job.recommended_number

    # The model page: one image at a time, as a person would try it.
    page.goto(f"{live_server_url}/searches/{job.pk}/trials/{chosen}/")
    assert page.get_by_label("Image file (PNG or JPEG)").count() == 1
    shown = {}
    for label in TRIED:
        image = sorted((digit_pngs / label).glob("*.png"))[0]
        page.get_by_label("Image file (PNG or JPEG)").set_input_files(str(image))
        page.evaluate("document.getElementById('try-results').dataset.old = 'yes'")  # gone once replaced
        page.click("#try-predict")
        page.wait_for_selector("#try-results:not([data-old]) #try-table tbody tr")
        assert page.inner_text("#try-summary").startswith("Predictions for 1 image")
        shown[image.name] = page.get_attribute("#try-table td.prediction", "data-value")
        assert "%" in page.inner_text("#try-table td.top-classes")

    # The bundle, downloaded from the page, on the same PNG files.
    with page.expect_download(timeout=120_000) as download_info:
        page.goto(f"{live_server_url}/searches/{job.pk}/")
        page.wait_for_function("document.getElementById('chosen').hidden === false")
        page.click("#download-bundle")
    saved = tmp_path / "bundle.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        archive.extractall(tmp_path / "bundle")
    tried = tmp_path / "tried"
    tried.mkdir()
    for label in TRIED:
        image = sorted((digit_pngs / label).glob("*.png"))[0]
        (tried / image.name).write_bytes(image.read_bytes())
    result = subprocess.run(
        [sys.executable, "predict.py", str(tried)], cwd=tmp_path / "bundle", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    printed = {row["file"]: row["prediction"] for row in csv.DictReader(io.StringIO(result.stdout))}
    assert printed == shown
