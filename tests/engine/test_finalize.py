"""Final models: refit on train+validation, test scores, and a top-k ensemble that exports as one graph."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from nas_engine import SearchConfig, TrialStatus, run_search
from nas_engine.evaluator import predict_raw
from nas_engine.final_model import EnsembleModel, load_final_model
from nas_engine.finalize import finalize_front, refit


@pytest.fixture(scope="module")
def finalized(cancer_data, tmp_path_factory):
    torch.set_num_threads(1)
    artifacts = tmp_path_factory.mktemp("artifacts")
    config = SearchConfig(target="diagnosis", max_trials=4, max_epochs=5, seed=2)
    result = run_search(config, cancer_data, artifacts_dir=artifacts)
    events = []
    finals = finalize_front(result, cancer_data, artifacts_dir=artifacts, seed=config.seed, on_status=events.append)
    return result, finals, events


def test_every_front_trial_is_refitted_and_scored_on_test(finalized, cancer_data):
    result, finals, events = finalized
    assert [f.number for f in finals.models][: len(result.front)] == result.front
    for final in finals.models:
        trial = next(t for t in result.trials if t.number == final.number)
        assert (
            final.weights_path.endswith(f"trial_{trial.number}_final.pt")
            and final.epochs == trial.metrics["best_epoch"]
        )
        model = load_final_model(
            trial.architecture, final.weights_path, n_inputs=cancer_data.n_features, n_outputs=cancer_data.n_outputs
        )
        accuracy = float(np.mean(predict_raw(model, cancer_data.X_test).argmax(axis=1) == cancer_data.y_test))
        assert accuracy == pytest.approx(final.test_metrics["accuracy"]) and accuracy > 0.8
    assert events[-1].status == "finalizing" and events[-1].progress == 1.0
    assert json.loads(json.dumps(finals.to_dict()))["models"][0]["number"] == finals.models[0].number


def test_refit_is_reproducible_and_reports_test_metrics(cancer_data):
    arch = {"space": "mlp", "layers": [{"units": 16, "activation": "relu", "dropout": 0.0}], "train": {"lr": 3e-3}}
    first, metrics = refit(arch, cancer_data, epochs=3, seed=1)
    second, again = refit(arch, cancer_data, epochs=3, seed=1)
    assert metrics == again and set(metrics) >= {"accuracy", "f1_macro", "score"}
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


def test_ensemble_averages_its_members_probabilities(finalized, cancer_data):
    result, finals, _ = finalized
    ensemble, final = finals.ensemble, finals.ensemble_final
    completed = sorted((t for t in result.trials if t.status is TrialStatus.COMPLETED), key=lambda t: -t.score)
    members = ensemble.architecture["members"]
    assert members == [t.number for t in completed[:3]] and ensemble.number == max(t.number for t in result.trials) + 1
    assert ensemble.costs.params == sum(t.costs.params for t in completed[:3]) and ensemble.costs.latency_ms > 0
    assert set(ensemble.metrics) >= {"accuracy", "score"} and set(final.test_metrics) >= {"accuracy", "score"}
    assert finals.get(ensemble.number) is final

    n_in, n_out = cancer_data.n_features, cancer_data.n_outputs
    model = load_final_model(ensemble.architecture, final.weights_path, n_inputs=n_in, n_outputs=n_out)
    x = torch.from_numpy(cancer_data.X_test)
    with torch.no_grad():
        output = model(x)
        probabilities = [
            torch.softmax(load_final_model(a, finals.get(n).weights_path, n_inputs=n_in, n_outputs=n_out)(x), dim=1)
            for n, a in zip(members, ensemble.architecture["member_architectures"], strict=True)
        ]
    assert output.shape == (len(x), 2)
    torch.testing.assert_close(torch.softmax(output, dim=1), torch.stack(probabilities).mean(dim=0))
    accuracy = float((output.argmax(dim=1).numpy() == cancer_data.y_test).mean())
    assert accuracy == pytest.approx(final.test_metrics["accuracy"])


def test_regression_ensemble_averages_outputs():
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)]
    x = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(EnsembleModel(members, task="regression")(x), (members[0](x) + members[1](x)) / 2)


def test_ensemble_exports_to_onnx_as_one_graph(finalized, cancer_data, tmp_path):
    import onnxruntime

    _, finals, _ = finalized
    n_in = cancer_data.n_features
    model = load_final_model(
        finals.ensemble.architecture, finals.ensemble_final.weights_path, n_inputs=n_in, n_outputs=2
    )
    path = tmp_path / "ensemble.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(2, n_in),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            external_data=False,
        )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(["output"], {"input": cancer_data.X_test})[0]
    assert onnx_out.shape == (len(cancer_data.X_test), 2)
    assert np.max(np.abs(onnx_out - predict_raw(model, cancer_data.X_test))) < 1e-4


def test_the_exported_model_can_be_trained_again_on_every_row(finalized, cancer_data):
    from nas_engine.finalize import refit_on_all_rows

    result, finals, _ = finalized
    best, shape = result.best, {"n_inputs": cancer_data.n_features, "n_outputs": cancer_data.n_outputs}
    on_all = refit_on_all_rows(best, finals, cancer_data, seed=2)
    scored = load_final_model(best.architecture, finals.get(best.number).weights_path, **shape)
    # the refit that was scored saw a quarter fewer rows: same architecture, epochs and seed, other weights
    assert not np.allclose(predict_raw(on_all, cancer_data.X_test), predict_raw(scored, cancer_data.X_test))
    again = refit_on_all_rows(best, finals, cancer_data, seed=2)
    np.testing.assert_array_equal(predict_raw(again, cancer_data.X_test), predict_raw(on_all, cancer_data.X_test))
    ensemble = refit_on_all_rows(finals.ensemble, finals, cancer_data, seed=2)
    members = finals.ensemble.architecture["members"]
    assert isinstance(ensemble, EnsembleModel) and len(ensemble.members) == len(members) >= 2
    first = next(t for t in result.trials if t.number == members[0])  # each member as trained alone
    alone = refit_on_all_rows(first, finals, cancer_data, seed=2)
    np.testing.assert_array_equal(
        predict_raw(ensemble.members[0], cancer_data.X_test), predict_raw(alone, cancer_data.X_test)
    )
