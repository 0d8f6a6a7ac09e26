"""A practitioner's choices, walked in real Chromium: a table with an ID column, a date column and a
90/10 class imbalance; the ID left out, the rows split by time, balanced accuracy optimised with
balanced class weights, and a bundle whose importance chart, card and metrics.json say so."""

import csv
import datetime
import json
import zipfile

import numpy as np
import pytest

from tests.web.helpers import upload_dataset
from tests.web.test_configure_browser import log_in
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def claims_csv(tmp_path):
    """400 insurance claims over two years: an ID, the day, two amounts, a region; 1 in 10 is fraud."""
    rng = np.random.default_rng(11)
    path = tmp_path / "claims.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["claim_id", "day", "amount", "prior_claims", "region", "fraud"])
        for i in range(400):
            day = datetime.date(2023, 1, 1) + datetime.timedelta(days=int(i * 1.8))
            amount, prior = rng.lognormal(7, 0.6), int(rng.poisson(1))
            fraud = (i % 10 == 0) or (amount > 3500 and prior >= 3)
            amount *= 2.5 if i % 10 == 0 else 1.0  # fraud is mostly large claims
            writer.writerow([10_000 + i, day.isoformat(), f"{amount:.2f}", prior, ["north", "south", "east"][i % 3],
                             "fraud" if fraud else "ok"])  # fmt: skip
    return path


def test_ignore_the_id_split_by_time_optimise_balanced_accuracy_and_download_a_bundle_that_says_so(
    live_server_url, celery_worker_process, alice, alice_client, browser_page, claims_csv, tmp_path
):
    dataset = upload_dataset(alice_client, claims_csv)
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server_url)
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")

    page.select_option("select[name=target]", "fraud")
    # The ID column the profile warns about starts unticked for use (ticked to ignore).
    assert page.is_checked("input[name=ignore][value=claim_id]")
    assert not page.is_checked("input[name=ignore][value=day]")  # unique, but dates: no ID
    assert page.input_value("select[name=type_1]") == "date"
    # One class holds 90 % of the rows: balanced accuracy is suggested, and class weights with it.
    page.wait_for_function("document.getElementById('metric-hint').textContent.includes('balanced accuracy')")
    assert "holds 9" in page.inner_text("#metric-hint")
    page.select_option("select[name=metric]", "balanced_accuracy")
    page.select_option("select[name=split_kind]", "time")
    page.select_option("select[name=split_column]", "day")
    page.click("#advanced summary")
    assert page.input_value("select[name=class_weights]") == "balanced"
    page.fill("input[name=max_trials]", "3")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#pareto")
    page.wait_for_function("document.getElementById('job-status').textContent.trim() === 'finished'", timeout=240_000)

    job = SearchJob.objects.get()
    chosen = (job.ignore, job.split, job.metric, job.class_weights, job.column_types)
    # The day was offered as a date, since its values read as dates.
    assert chosen == (["claim_id"], "time:day", "balanced_accuracy", "balanced", ["day=date"])
    page.reload()  # the rows of each split are known once the worker prepared the data
    page.wait_for_selector("#split-rows")
    header = page.inner_text("h1 + p")
    for words in ("ignoring claim_id", "balanced class weights", "optimising balanced accuracy", "rows split by time"):
        assert words in header, header
    assert "by time" in page.inner_text("#split-rows")
    page.wait_for_function("document.querySelector('#pareto .ytitle') !== null")
    assert page.eval_on_selector("#pareto .ytitle", "n => n.textContent").startswith("Balanced accuracy")

    # The recommended model's page: its importance chart and card.
    page.goto(f"{live_server_url}/searches/{job.pk}/trials/{job.recommended_number}/")
    page.wait_for_selector("#importance-bars li")
    charted = page.eval_on_selector_all("#importance-bars li", "items => items.map((li) => li.dataset.column)")
    assert set(charted) == {"day", "amount", "prior_claims", "region"}  # every input, the ignored ID not among them
    card = page.inner_text("#model-card")
    assert "chose its models by balanced accuracy" in card and "Rows were split by time" in card
    assert "Ignored columns (1): claim_id" in card and "balanced class weights" in card
    assert "day as dates (year, month, day of the week, elapsed days)" in card

    with page.expect_download(timeout=180_000) as download_info:
        page.click("#download-bundle")
    saved = tmp_path / "bundle.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as bundle:
        record = json.loads(bundle.read("metrics.json"))
        bundle_card = bundle.read("MODEL_CARD.md").decode()
        preprocessing = json.loads(bundle.read("preprocessing.json"))
    assert record["metric"]["name"] == "balanced_accuracy"
    assert record["config"]["split"] == "time:day" and record["config"]["class_weights"] == "balanced"
    assert list(record["importance"]) == charted
    assert preprocessing["ignored_columns"] == ["claim_id"] and preprocessing["split"]["kind"] == "time"
    assert "What the model relies on" in bundle_card and "chose its models by balanced accuracy" in bundle_card
    # predict.py read the raw rows, the ID included, when the bundle was checked.
    assert record["checks"]["predict_py_reproduces_predictions"] is True
