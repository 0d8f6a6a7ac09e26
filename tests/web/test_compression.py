"""Compression from the web: a search with "Also try compressed variants" on a real worker adds
pruned and int8 trials linked to their parents, on the same front, and an int8 trial downloads as
a bundle whose ONNX model is the quantized one."""

import csv
import io
import json
import subprocess
import sys
import zipfile

import onnx
import pytest
from django.urls import reverse

from tests.web.helpers import prepared, upload_dataset
from tests.web.test_search_flow import wait_until_ended
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_compressed_variants_become_trials_and_an_int8_one_downloads_quantized(
    celery_worker_process, alice_client, breast_cancer_csv, tmp_path
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    form = {
        "target": "diagnosis", "task": "auto", "budget_seconds": 60, "max_trials": 5, "strategy": "random",
        "seed": 2, "cost_objective": "size_bytes", "space": "auto", "fidelity": "none", "compress": "on",
    }  # fmt: skip
    assert alice_client.post(reverse("search_create", args=[dataset.pk]), form).status_code == 302
    job = wait_until_ended(SearchJob.objects.latest("pk"), timeout=240)
    assert job.status == "finished", job.error
    assert job.compress
    variants = [t for t in job.trials.order_by("number") if "compression" in t.architecture]
    kinds = {t.architecture["compression"]["kind"] for t in variants}
    assert kinds == {"prune", "int8"}
    parents = {t.number: t for t in job.trials.all() if "compression" not in t.architecture}
    for variant in variants:
        assert variant.architecture["compression"]["parent"] in parents
        assert variant.memory_bytes is not None and variant.score is not None
    int8 = next(t for t in variants if t.architecture["compression"]["kind"] == "int8")
    assert int8.size_bytes < parents[int8.architecture["compression"]["parent"]].size_bytes

    response = prepared(alice_client, reverse("trial_bundle", args=[job.pk, int8.number]))  # made by the worker
    assert response.status_code == 200, response.content[:2000]
    content = b"".join(response.streaming_content)
    bundle = zipfile.ZipFile(io.BytesIO(content))
    graph = onnx.load_from_string(bundle.read(next(n for n in bundle.namelist() if n.endswith("model.onnx"))))
    assert {"MatMulInteger", "DynamicQuantizeLinear"} & {node.op_type for node in graph.graph.node}
    metrics = json.loads(bundle.read(next(n for n in bundle.namelist() if n.endswith("metrics.json"))))
    assert metrics["checks"]["int8_max_abs_diff"] <= metrics["checks"]["int8_tolerance"]
    # The page's predictions are the int8 model's, as the bundle's predict.py gives them.
    (tmp_path / "bundle.zip").write_bytes(content)
    out = tmp_path / "predicted.csv"
    command = [sys.executable, "-m", "nas_engine", "predict", str(tmp_path / "bundle.zip"), str(breast_cancer_csv)]
    subprocess.run([*command, "-o", str(out)], check=True, capture_output=True)
    bundled = [row["prediction"] for row in csv.DictReader(out.open())]
    predictions = prepared(alice_client, reverse("trial_predictions", args=[job.pk, int8.number]))
    served = b"".join(predictions.streaming_content).decode()
    shown = [row["prediction"] for row in csv.DictReader(io.StringIO(served))]
    assert len(shown) == len(bundled) == 569
    assert sum(a == b for a, b in zip(shown, bundled, strict=True)) >= 0.99 * 569
    page = alice_client.get(reverse("trial_detail", args=[job.pk, int8.number])).content.decode()
    assert f"Compressed from trial {int8.architecture['compression']['parent']}" in page
