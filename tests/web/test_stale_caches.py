"""What is kept from a trial's model (its bundle, its test-split evaluation) follows its weights: made
during the search, it is never served once the refit on train+validation replaced them.

Real models, small to be quick: one trained for an epoch is recorded through the worker's own
service, then the engine refits it and ``services._record_finals`` records the refit as at the end of
a search."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import nas_engine
from nas_engine.evaluator import predict_raw
from nas_engine.export import analytic_costs
from tests.web.helpers import upload_dataset
from webapp.searches import bundles, evaluation, services
from webapp.searches.models import SearchJob, Trial

pytestmark = pytest.mark.django_db


ARCH = {
    "space": "mlp",
    "layers": [{"units": 8, "activation": "relu", "dropout": 0.0}],
    "train": {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"},
}


def _bundle(path) -> tuple[dict, bytes]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("metrics.json")), archive.read("model.onnx")


def _onnx_outputs(onnx_bytes: bytes, rows: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)})[0]


def test_a_bundle_and_an_evaluation_made_before_the_refit_are_not_served_after_it(alice, alice_client, diabetes_csv):
    dataset = upload_dataset(alice_client, diabetes_csv)
    job = SearchJob.objects.create(  # made directly: never sent to a broker, no worker takes it
        owner=alice, dataset=dataset, target="progression", task="regression", budget_seconds=30, seed=1,
        status=SearchJob.Status.RUNNING,
    )  # fmt: skip
    data = services.prepared_data(job)
    model, _ = nas_engine.refit(ARCH, data, epochs=1, seed=0)  # as searched: trained for one epoch
    weights = Path(job.artifacts_dir) / "trial_0.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights)
    searched = nas_engine.TrialResult(
        number=0, status=nas_engine.TrialStatus.COMPLETED, architecture=ARCH, arch_hash="a",
        metrics={"score": 0.3, "r2": 0.3, "best_epoch": 1}, costs=analytic_costs(ARCH, data.n_features, data.n_outputs),
        train_seconds=0.1, weights_path=str(weights),
    )  # fmt: skip
    trial = services.trial_record(job=job, result=searched)

    # During the search: the bundle and the evaluation come from the searched weights.
    early_bundle = bundles.trial_bundle(trial=trial)
    early_metrics, _ = _bundle(early_bundle)
    assert early_metrics["metrics"]["refit_on_train_and_validation"] is False
    early_evaluation = evaluation.trial_test_evaluation(trial=trial)

    result = nas_engine.SearchResult(
        trials=[searched], front=[0], best=searched, cancelled=False, elapsed_seconds=1.0, task="regression"
    )
    finals = nas_engine.finalize_front(result, data, artifacts_dir=job.artifacts_dir, seed=job.seed)
    services._record_finals(job, finals)  # where the worker records the refit's weights
    trial = Trial.objects.select_related("job").get(pk=trial.pk)
    assert trial.final_weights_path
    refit = nas_engine.load_final_model(trial.architecture, trial.final_weights_path, n_inputs=job.n_inputs,
                                  n_outputs=data.n_outputs)  # fmt: skip

    bundle = bundles.trial_bundle(trial=trial)
    metrics, onnx_bytes = _bundle(bundle)
    assert bundle != early_bundle and not early_bundle.exists()  # the stale one is gone
    assert metrics["metrics"]["refit_on_train_and_validation"] is True
    assert metrics["metrics"]["test"] == trial.test_metrics and trial.test_metrics
    np.testing.assert_allclose(_onnx_outputs(onnx_bytes, data.X_test), predict_raw(refit, data.X_test), atol=1e-4)

    served = evaluation.trial_test_evaluation(trial=trial)
    assert served == nas_engine.evaluate_test_split(refit, data) and served != early_evaluation
    trial.refresh_from_db()
    assert evaluation.trial_test_evaluation(trial=trial) == served  # cached again, for the refit weights
