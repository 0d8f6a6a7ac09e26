"""The model page of a trial: who may see it, its model card (the bundle's MODEL_CARD.md as HTML),
its layer diagram, and "try it" predictions for an uploaded CSV that equal the predictions download,
with bad files refused next to the field and no upload left on disk.

The models are real: the engine searches breast_cancer (and diabetes) once per module, and each
test records those trials on a job of its own through the worker's own service."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

import nas_engine
from nas_engine import devices, runtime
from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset
from webapp.searches import bundles, services
from webapp.searches.models import SearchJob, Trial

pytestmark = [pytest.mark.slow, pytest.mark.django_db]  # slow: two real searches, once per module


def _search(csv_path: Path, target: str, task: str, folder: Path, *, trials: int):
    data = nas_engine.prepare_data(csv_path, target=target, task=task, seed=0)
    config = nas_engine.SearchConfig(target=target, task=task, max_trials=trials, budget_seconds=60, seed=3)
    result = nas_engine.run_search(config, data, artifacts_dir=folder)
    finals = nas_engine.finalize_front(result, data, artifacts_dir=folder, seed=3)
    return data, result, finals


@pytest.fixture(scope="module")
def cancer_search(breast_cancer_csv, tmp_path_factory):
    return _search(breast_cancer_csv, "diagnosis", "classification", tmp_path_factory.mktemp("cancer"), trials=2)


@pytest.fixture(scope="module")
def diabetes_search(diabetes_csv, tmp_path_factory):
    return _search(diabetes_csv, "progression", "regression", tmp_path_factory.mktemp("diabetes"), trials=1)


def _record(job: SearchJob, search) -> SearchJob:
    """Store a finished engine search on ``job`` as the worker does: trials, refits, the ensemble."""
    data, result, finals = search
    SearchJob.objects.filter(pk=job.pk).update(
        preprocessing=data.preprocessing,
        n_inputs=data.n_features,
        n_outputs=data.n_outputs,
        status=SearchJob.Status.FINISHED,
        recommended_number=nas_engine.default_choice(result.best, finals.ensemble).number,
        smallest_number=result.recommended.number if result.recommended else None,
        split_rows=nas_engine.split_rows(data),
    )
    job.refresh_from_db()
    for trial in [*result.trials, *([finals.ensemble] if finals.ensemble else [])]:
        services.trial_record(job=job, result=trial)
    for final in [*finals.models, *([finals.ensemble_final] if finals.ensemble_final else [])]:
        job.trials.filter(number=final.number).update(
            test_metrics=final.test_metrics, final_weights_path=final.weights_path or ""
        )
    return job


@pytest.fixture
def cancer_job(queued_job, cancer_search) -> SearchJob:
    return _record(queued_job, cancer_search)


@pytest.fixture
def best(cancer_job) -> Trial:
    return cancer_job.trials.filter(status=Trial.Status.COMPLETED).exclude(architecture__space="ensemble").first()


@pytest.fixture
def upload_dir(settings, tmp_path) -> Path:
    """Where Django puts this test's uploads while a request runs; it must be empty afterwards."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def page_url(trial: Trial) -> str:
    return reverse("trial_detail", args=[trial.job_id, trial.number])


def kinds(content: str) -> list[str]:
    """The data-kind of every layer box, in page order (ensemble members' boxes included)."""
    return re.findall(r'<li class="layer [^"]*" data-kind="([a-z]+)"', content)


def shown_predictions(content: str) -> list[str]:
    return [html.unescape(value) for value in re.findall(r'<td class="prediction" data-value="([^"]*)"', content)]


def field_errors(content: str) -> str:
    match = re.search(r'<div id="try-file-errors">(.*?)</div>', content, re.S)
    assert match, "the file field has no error area"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def write_rows(path: Path, source: Path, count: int, *, drop: tuple[str, ...] = ()) -> Path:
    """The first ``count`` rows of ``source`` without the columns in ``drop``."""
    rows = runtime.read_csv_rows(source)[:count]
    columns = [c for c in rows[0] if c not in drop]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def post_file(client, trial: Trial, path: Path, **extra):
    with open(path, "rb") as handle:
        return client.post(page_url(trial), {"file": handle, **extra})


# --- who sees it --------------------------------------------------------------------------------


def test_the_owner_sees_the_card_the_layer_diagram_and_the_try_it_form(alice_client, cancer_job, best):
    response = alice_client.get(page_url(best))
    assert response.status_code == 200
    content = response.content.decode()
    if best.architecture["space"] == "trees":  # the portfolio's boosted trees: one box holds them
        assert kinds(content) == ["input", "head", "output"] and "Gradient-boosted decision trees" in content
    else:
        layers = best.architecture["layers"]
        # The tabular space adds a box for a periodic embedding and one for TabM-style members.
        extra = (best.architecture.get("embed", "none") != "none") + (best.architecture.get("members", 1) > 1)
        assert kinds(content) == ["input", *["dense"] * (len(layers) + extra), "head", "output"]
    for title in ("Model card", "Architecture", "Metrics", "Costs", "Inputs", "Limits", "How to run"):
        assert f">{title}</h" in content
    assert "<strong>diagnosis</strong> (classification) from tabular data" in content
    assert ('id="recommended-badge"' in content) == (cancer_job.recommended_number == best.number)
    assert ('id="smallest-badge"' in content) == (cancer_job.smallest_number == best.number)
    assert 'id="try-form"' in content and 'name="file"' in content and '<label for="id_file">' in content
    assert reverse("trial_bundle", args=[cancer_job.pk, best.number]) in content
    assert reverse("search_detail", args=[cancer_job.pk]) in content


def test_the_page_says_where_the_search_trained_the_model(alice_client, best):
    assert best.metrics["trained_on"] == devices.describe(devices.training_device())
    content = alice_client.get(page_url(best)).content.decode()
    assert '<span id="trained-on"' in content and f"· trained on {best.metrics['trained_on']}</span>" in content


def test_other_users_get_404_and_visitors_must_log_in(bob_client, best):
    assert bob_client.get(page_url(best)).status_code == 404
    with open(__file__, "rb") as handle:
        assert bob_client.post(page_url(best), {"file": handle}).status_code == 404
    response = Client().get(page_url(best))
    assert response.status_code == 302 and "login" in response["Location"]


def test_staff_see_any_users_model_page(best, bob):
    bob.is_staff = True
    bob.save()
    staff = Client()
    staff.login(username="bob", password=PASSWORD)
    assert staff.get(page_url(best)).status_code == 200


def test_a_trial_without_a_model_answers_a_clear_page_not_an_error(alice_client, cancer_job, cancer_search):
    _, result, _ = cancer_search
    rejected = nas_engine.TrialResult(
        number=90,
        status=nas_engine.TrialStatus.REJECTED,
        architecture=result.trials[0].architecture,
        arch_hash="rejected",
        metrics={},
        costs=result.trials[0].costs,
        train_seconds=0.0,
        message="It has too many parameters for the limit you set.",
    )
    trial = services.trial_record(job=cancer_job, result=rejected)
    response = alice_client.get(page_url(trial))
    assert response.status_code == 409
    content = response.content.decode()
    assert "Trial 90 was rejected, so it has no trained model. It has too many parameters" in content
    assert 'id="try-form"' not in content and 'id="download-bundle"' not in content
    assert kinds(content)[0] == "input"  # what was tried is still drawn
    with open(__file__, "rb") as handle:
        assert alice_client.post(page_url(trial), {"file": handle}).status_code == 409


def test_a_missing_trial_is_not_found(alice_client, cancer_job):
    assert alice_client.get(reverse("trial_detail", args=[cancer_job.pk, 999])).status_code == 404


# --- the card and the diagram -------------------------------------------------------------------


def test_the_page_shows_the_same_card_as_the_bundle(alice_client, best):
    # Job ids restart with every test database, so an older run's bundle may sit at this job's path.
    shutil.rmtree(best.job.artifacts_dir, ignore_errors=True)
    with zipfile.ZipFile(bundles.trial_bundle(trial=best)) as archive:
        bundled = archive.read("MODEL_CARD.md").decode()
    card = bundles.trial_model_card(trial=best)
    assert card.to_markdown() == bundled
    content = alice_client.get(page_url(best)).content.decode()
    table = next(block for section in card.sections for block in section.blocks if block.kind == "table")
    for key, value in table.rows:
        assert f'<th scope="row">{html.escape(key)}</th><td>{html.escape(value)}</td>' in content
    # Which rows each number came from, with the job's split sizes.
    splits = best.job.split_rows
    assert f"scored once on the test split ({splits['test']} rows)" in bundled
    assert f"scored once on the test split ({splits['test']} rows)" in html.unescape(content)


def test_an_ensemble_page_draws_each_member_and_links_to_it(alice_client, cancer_job):
    ensemble = cancer_job.trials.get(architecture__space="ensemble")
    content = alice_client.get(page_url(ensemble)).content.decode()
    members = ensemble.architecture["members"]
    assert kinds(content).count("ensemble") == 1 and kinds(content).count("head") == len(members)
    for number in members:
        assert f'href="{reverse("trial_detail", args=[cancer_job.pk, number])}"' in content


def test_data_from_the_upload_is_escaped_never_run(alice_client, cancer_job, best):
    cancer_job.dataset.name = "<script>alert(1)</script>.csv"
    cancer_job.dataset.save()
    content = alice_client.get(page_url(best)).content.decode()
    assert "<script>alert(1)" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in content


# --- try it ---------------------------------------------------------------------------------------


def test_try_it_shows_the_predictions_of_the_predictions_download(
    alice_client, best, breast_cancer_csv, tmp_path, upload_dir
):
    five = write_rows(tmp_path / "five.csv", breast_cancer_csv, 5, drop=("diagnosis",))
    response = post_file(alice_client, best, five)
    assert response.status_code == 200
    content = response.content.decode()
    expected = bundles.trial_predictions(trial=best, csv_path=str(five))
    assert shown_predictions(content) == [runtime.format_prediction(p) for p in expected]
    assert "Predictions for 5 rows." in content
    assert len(re.findall(r'<td class="probability">(\d+\.\d) %</td>', content)) == 5
    assert "P(0)</th>" in content and "P(1)</th>" in content
    assert list(upload_dir.iterdir()) == []


def test_try_it_shows_the_first_100_rows_and_downloads_all(alice_client, best, breast_cancer_csv, upload_dir):
    response = post_file(alice_client, best, breast_cancer_csv)  # 569 rows, target column included
    content = response.content.decode()
    assert response.status_code == 200 and "Predictions for 569 rows; the first 100 are shown" in content
    expected = bundles.trial_predictions(trial=best, csv_path=str(breast_cancer_csv))
    assert shown_predictions(content) == [runtime.format_prediction(p) for p in expected[:100]]

    download = post_file(alice_client, best, breast_cancer_csv, format="csv")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    assert "attachment" in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == ["row", "prediction", "probability 0", "probability 1"]
    assert [row[1] for row in rows[1:]] == [str(p) for p in expected]
    assert [row[0] for row in rows[1:]] == [str(i) for i in range(1, 570)]
    probabilities = np.array([[float(p) for p in row[2:]] for row in rows[1:]])
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    labels = [name.removeprefix("probability ") for name in rows[0][2:]]
    assert [labels[i] for i in probabilities.argmax(axis=1)] == expected  # the most probable class wins
    assert list(upload_dir.iterdir()) == []


def test_try_it_predicts_a_number_for_regression(alice, alice_client, diabetes_csv, diabetes_search, tmp_path):
    dataset = upload_dataset(alice_client, diabetes_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="progression", task="regression", budget_seconds=30
    )
    job = _record(job, diabetes_search)
    trial = job.trials.filter(status=Trial.Status.COMPLETED).first()
    rows = write_rows(tmp_path / "rows.csv", diabetes_csv, 7)
    content = post_file(alice_client, trial, rows).content.decode()
    expected = bundles.trial_predictions(trial=trial, csv_path=str(rows))
    assert shown_predictions(content) == [runtime.format_prediction(p) for p in expected]
    assert all(isinstance(p, float) for p in expected) and 'class="probability"' not in content
    assert "<strong>progression</strong> (regression)" in content


def _big_csv(path: Path, source: Path, rows: int) -> Path:
    header, first = runtime.read_csv_rows(source)[0].keys(), runtime.read_csv_rows(source)[0]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header))
        writer.writeheader()
        writer.writerows([first] * rows)
    return path


BAD_FILES = {
    "empty": (lambda tmp, src: _write(tmp / "empty.csv", b""), "The submitted file is empty."),
    "unrelated columns": (
        lambda tmp, src: _write(tmp / "other.csv", b"name,age\nAda,36\n"),
        "None of the model's columns are in the first row",
    ),
    "no data rows": (
        lambda tmp, src: _write(tmp / "n.csv", Path(src).read_text().splitlines()[0].encode() + b"\n"),
        "The file has a header row but no data rows.",
    ),
    "missing columns": (
        lambda tmp, src: write_rows(tmp / "m.csv", src, 3, drop=("mean radius", "worst area")),
        "The file is missing column(s) the model needs: mean radius, worst area.",
    ),
    "not text": (
        lambda tmp, src: _write(tmp / "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfa"),
        "This is not a CSV text file",
    ),
    "too many rows": (
        lambda tmp, src: _big_csv(tmp / "big.csv", src, bundles.TRY_MAX_ROWS + 1),
        "The file has more than 10,000 rows",
    ),
    "too many columns": (  # the model's 30 and the target, then 240 more: refused before any row is read
        lambda tmp, src: _wide_csv(tmp / "wide.csv", src, extra=240),
        "The file has 271 columns; at most 256 are read here, and this model uses 30. Leave out the columns",
    ),
    "a row with too many cells": (
        lambda tmp, src: _write(tmp / "row.csv", Path(src).read_text().splitlines()[0].encode() + b"\n" + b"1," * 300),
        "Row 1 (line 2) has 301 columns; at most 256 are read here",
    ),
}


def _wide_csv(path: Path, source: Path, *, extra: int) -> Path:
    rows = runtime.read_csv_rows(source)[:3]
    notes = {f"note {i}": "x" for i in range(extra)}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], *notes])
        writer.writeheader()
        writer.writerows([row | notes for row in rows])
    return path


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_try_it_refuses_a_bad_file_next_to_the_field(case, alice_client, best, breast_cancer_csv, tmp_path, upload_dir):
    make, message = BAD_FILES[case]
    response = post_file(alice_client, best, make(tmp_path, breast_cancer_csv))
    assert response.status_code == 400
    content = response.content.decode()
    assert message in field_errors(content)
    assert 'aria-invalid="true"' in content and "Traceback" not in content
    assert shown_predictions(content) == []
    assert list(upload_dir.iterdir()) == []


def test_try_it_asks_for_a_file_when_none_was_sent(alice_client, best):
    response = alice_client.post(page_url(best), {})
    assert response.status_code == 400 and "This field is required." in field_errors(response.content.decode())


def test_try_it_refuses_a_file_over_the_upload_limit(alice_client, best, breast_cancer_csv, settings, upload_dir):
    settings.MAX_UPLOAD_BYTES = 1024
    response = post_file(alice_client, best, breast_cancer_csv)
    assert response.status_code == 400
    assert f"larger than the {settings.MAX_UPLOAD_MB} MB limit" in field_errors(response.content.decode())
    assert list(upload_dir.iterdir()) == []


def test_try_it_says_so_when_the_weights_are_gone(alice_client, best, breast_cancer_csv, tmp_path, upload_dir):
    Trial.objects.filter(pk=best.pk).update(weights_path=str(tmp_path / "gone.pt"), final_weights_path="")
    response = post_file(alice_client, best, write_rows(tmp_path / "rows.csv", breast_cancer_csv, 2))
    assert response.status_code == 409
    assert "This trial's trained weights are missing on the server." in field_errors(response.content.decode())
    assert list(upload_dir.iterdir()) == []


# --- one typed row ------------------------------------------------------------------------------


def test_one_row_form_has_a_field_per_input_filled_with_the_training_medians(alice_client, best):
    content = alice_client.get(page_url(best)).content.decode()
    features = best.job.preprocessing["features"]
    for i, feature in enumerate(features):
        label = re.search(rf'<label for="id_col_{i}">([^<]*)</label>', content)
        value = re.search(rf'<input type="text" name="col_{i}" value="([^"]*)"', content)
        assert label and html.unescape(label.group(1)) == feature["name"]
        assert value and float(value.group(1)) == pytest.approx(feature["median"], rel=1e-5)
    assert 'name="col_' + str(len(features)) + '"' not in content  # one field per input, no more


def test_a_typed_row_gets_the_prediction_predict_py_gives_for_it(alice_client, best, tmp_path):
    features = best.job.preprocessing["features"]
    typed = {f"col_{i}": f"{feature['median']:g}" for i, feature in enumerate(features)}
    typed["col_0"] = "30"  # a large first value (mean radius), far from the median
    response = alice_client.post(page_url(best), {**typed, "format": "row"})
    assert response.status_code == 200
    content = response.content.decode()
    row = {feature["name"]: typed[f"col_{i}"] for i, feature in enumerate(features)}
    path = tmp_path / "row.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    expected = bundles.trial_predictions(trial=best, csv_path=str(path))
    assert shown_predictions(content) == [runtime.format_prediction(expected[0])]
    assert "The prediction for the row typed above." in content
    assert 'name="col_0" value="30"' in content  # the form keeps what was typed
    why = re.search(r'<td class="why">(.*?)</td>', content, re.S)
    assert why, "a typed row's prediction is explained input by input"
    named = re.findall(r'<span data-column="([^"]+)">', why.group(1))
    assert named and set(named) <= {f["name"] for f in features} and len(named) <= 5


def test_the_model_page_draws_the_test_importance_largest_first(alice_client, best):
    importance = best.test_metrics["importance"]  # read back from the database: in no particular order
    content = alice_client.get(page_url(best)).content.decode()
    bars = re.findall(r'<li data-column="([^"]+)" data-value="([^"]+)">', content)
    largest = sorted(importance, key=lambda name: (-importance[name], name))[:15]
    assert [html.unescape(name) for name, _ in bars] == largest
    assert [float(v) for _, v in bars] == sorted((float(v) for _, v in bars), reverse=True)
    assert 'style="width: 100.0%"' in content  # the largest bar fills its track
    assert ">What the model relies on</h" in content


def test_a_typed_row_says_so_when_the_weights_are_gone(alice_client, best, tmp_path):
    gone = {"weights_path": str(tmp_path / "gone.pt"), "final_weights_path": "", "served_weights_path": ""}
    Trial.objects.filter(pk=best.pk).update(**gone)
    typed = {f"col_{i}": "1" for i in range(len(best.job.preprocessing["features"]))}
    response = alice_client.post(page_url(best), {**typed, "format": "row"})
    assert response.status_code == 409
    errors = re.search(r'<div id="try-row-errors">(.*?)</div>', response.content.decode(), re.S)
    assert errors and "This trial's trained weights are missing on the server." in html.unescape(errors.group(1))


def test_the_job_page_says_how_many_rows_went_where(alice_client, cancer_job):
    splits = cancer_job.split_rows
    content = alice_client.get(reverse("search_detail", args=[cancer_job.pk])).content.decode()
    expected = f"Rows: {splits['train']} train · {splits['validation']} validation · {splits['test']} test"
    assert expected in content and sum(splits.values()) == 569  # breast_cancer's rows, each in one split
