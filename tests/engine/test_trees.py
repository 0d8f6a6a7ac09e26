"""The tree space: boosted trees grown by scikit-learn and held as a torch module give scikit-learn's
own predictions, cost exactly what the module holds and computes, train through the search's
Trainer (epochs, early stopping, refit), export to ONNX with the same outputs, and join the tabular
search through its portfolio without its strategies learning from them."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from torch.utils.flop_counter import FlopCounterMode

from nas_engine import SearchConfig, run_search
from nas_engine.boosted import ABSENT_CLASS_LOGIT
from nas_engine.diagram import layer_diagram
from nas_engine.errors import ConstraintError
from nas_engine.evaluator import Trainer, TrainSettings
from nas_engine.prepare import prepare_data
from nas_engine.spaces import TabularSpace, TreeSpace, space_for_architecture
from nas_engine.spaces.tabular import TREE_PORTFOLIO
from nas_engine.spaces.trees import FILL_EPOCHS

from .conftest import write_csv

ARCH = {"space": "trees", "rounds": 100, "leaves": 15, "lr": 0.1, "min_leaf": 5, "l2": 0.0}


def _data(name: str) -> tuple[np.ndarray, np.ndarray, str, int]:
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[name]
    X, y = loader(return_X_y=True)
    if name == "regression":
        return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32), "regression", 1
    return X.astype(np.float32), y.astype(np.int64), "classification", len(np.unique(y))


def _grown(name: str, arch: dict = ARCH, epochs: int = FILL_EPOCHS):
    X, y, task, n_out = _data(name)
    model = TreeSpace().build_model(arch, X.shape[1], n_out)
    for _ in range(epochs):
        model.fit_round(X, y, task=task, seed=0)
    return model, X, task, n_out


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
def test_the_module_gives_scikit_learns_own_raw_predictions(name):
    model, X, task, n_out = _grown(name)
    assert model.full and len(model._estimator._predictors) == ARCH["rounds"]
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    raw = model._estimator._raw_predict(X)  # scikit-learn's logits (or regression values) before any link
    expected = np.c_[np.zeros(len(X)), raw[:, 0]] if task == "classification" and n_out == 2 else raw
    np.testing.assert_allclose(out, expected, atol=2e-5)
    predicted = out.argmax(1) if task == "classification" else out[:, 0]
    assert np.array_equal(predicted, model._estimator.predict(X)) or task == "regression"


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("epochs", [1, FILL_EPOCHS])
def test_the_fast_outputs_a_search_validates_with_are_the_modules_own(name, epochs):
    model, X, task, n_out = _grown(name, epochs=epochs)
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.fast_outputs(X), out, atol=2e-5)
    assert TreeSpace().build_model(ARCH, X.shape[1], n_out).fast_outputs(X) is None  # nothing grown to ask


def test_fast_outputs_keep_a_class_the_training_rows_lack_at_its_fixed_logit():
    X, y, task, _ = _data("multiclass")
    model = TreeSpace().build_model(ARCH, X.shape[1], 4)  # a fourth class no row has
    model.fit_round(X, y, task=task, seed=0)
    fast = model.fast_outputs(X)
    with torch.no_grad():
        np.testing.assert_allclose(fast, model(torch.from_numpy(X)).numpy(), atol=2e-5)
    assert np.all(fast[:, 3] == ABSENT_CLASS_LOGIT)


def test_an_ungrown_model_predicts_zeros_and_half_grown_trees_add_only_what_was_grown():
    X, y, task, n_out = _data("binary")
    model = TreeSpace().build_model(ARCH, X.shape[1], n_out)
    with torch.no_grad():
        assert torch.count_nonzero(model(torch.from_numpy(X[:5]))) == 0
    model.fit_round(X, y, task=task, seed=0)
    assert len(model._estimator._predictors) == ARCH["rounds"] // FILL_EPOCHS and not model.full
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out[:, 1], model._estimator._raw_predict(X)[:, 0], atol=2e-5)


@pytest.mark.parametrize("n_outputs", [1, 2, 4])
def test_costs_are_exactly_the_modules_weights_and_multiply_accumulates(n_outputs):
    space = TreeSpace()
    rng = np.random.default_rng(0)
    for arch in [space.sample(rng) for _ in range(4)] + [ARCH]:
        model = space.build_model(arch, 6, n_outputs).eval()
        costs = space.costs(arch, 6, n_outputs)
        assert costs.params == sum(p.numel() for p in model.parameters())
        assert costs.size_bytes == 4 * costs.params
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, 6))
        assert costs.flops == counter.get_total_flops() // 2
        assert costs.memory_bytes > costs.size_bytes
    assert space.smallest_params(6, n_outputs) <= min(space.costs(a, 6, n_outputs).params for a in [ARCH])


def test_the_trainer_grows_rounds_per_epoch_stops_early_and_keeps_the_best_round():
    X, y, task, n_out = _data("regression")
    arch = {**ARCH, "rounds": 400, "lr": 0.2, "min_leaf": 5}  # a fast learner on 442 rows overfits soon
    model = TreeSpace().build_model(arch, X.shape[1], n_out)
    trainer = Trainer(
        model, X_train=X[:300], y_train=y[:300], task=task, settings=TrainSettings(), seed=0,
        validation=(X[300:], y[300:]), patience=3,
    )  # fmt: skip
    trainer.train(until_epoch=FILL_EPOCHS)
    assert trainer.converged and trainer.epochs < FILL_EPOCHS  # stopped before the capacity
    outcome = trainer.finish()
    best = outcome.metrics["best_epoch"]
    assert best == trainer.epochs - 3
    grown = torch.count_nonzero(outcome.model.values.detach().abs().sum(dim=(1, 2))).item()
    assert grown <= best * 400 // FILL_EPOCHS  # the best epoch's trees, not the later ones


def test_the_module_exports_to_onnx_with_the_same_outputs(tmp_path):
    model, X, _, _ = _grown("multiclass", epochs=5)
    model.eval()
    path = tmp_path / "trees.onnx"
    x = torch.from_numpy(X[:7])
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": X})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, model(torch.from_numpy(X)).numpy(), atol=1e-5)


def test_the_tabular_space_builds_costs_and_describes_trees_but_its_strategies_do_not_learn_them():
    tabular = TabularSpace()
    arch = TREE_PORTFOLIO[0]
    assert not tabular.owns(arch) and tabular.owns(tabular.sample(np.random.default_rng(0)))
    assert tabular.costs(arch, 5, 2) == TreeSpace().costs(arch, 5, 2)
    assert type(tabular.build_model(arch, 5, 2)).__name__ == "BoostedTrees"
    assert tabular.describe(arch)[0].startswith("Gradient-boosted trees")
    child = tabular.mutate(arch, np.random.default_rng(1))
    assert child["space"] == "trees" and child != arch
    assert type(space_for_architecture(arch)) is TreeSpace
    portfolio = tabular.portfolio(rows=1_000, task="classification")
    assert [a for a in portfolio if a["space"] == "trees"] == list(TREE_PORTFOLIO)


def test_the_layer_diagram_is_one_box_holding_every_weight():
    prep = {"n_features": 5, "task": "classification", "target": {"name": "y", "labels": ["a", "b", "c"]}}
    prep["features"] = [{"name": f"c{i}", "kind": "numeric"} for i in range(5)]
    boxes = layer_diagram(ARCH, prep)
    assert [box.kind for box in boxes] == ["input", "head", "output"]
    assert boxes[1].params == TreeSpace().costs(ARCH, 5, 3).params
    assert boxes[1].title == "Gradient-boosted decision trees"


def test_a_tpe_search_trains_the_trees_refits_them_and_exports_a_bundle_that_predicts_alike(tmp_path):
    """A step function of one column: trees fit it at once. The search (TPE, whose sampler must not be
    told about genomes outside its space) trains the portfolio's trees, and a bundle of the best
    trial (the trees) predicts the held-out rows as the refitted module does."""
    from nas_engine.cli import main

    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(900, 4))
    y = np.where(X[:, 0] > 0.3, 1, 0) ^ (X[:, 1] > 0.5)
    path = tmp_path / "steps.csv"
    write_csv(path, ["a", "b", "c", "d", "y"], [[*map(float, x), int(t)] for x, t in zip(X, y, strict=True)])
    data = prepare_data(path, target="y")
    # 60 s: one validation split (at 100 s and more these 540 training rows would be 5-fold, five times the work)
    config = SearchConfig(target="y", strategy="tpe", max_trials=len(TREE_PORTFOLIO) + 2, budget_seconds=60)
    result = run_search(config, data)
    trees = [t for t in result.trials if t.architecture["space"] == "trees"]
    assert len(trees) == len(TREE_PORTFOLIO) and all(t.status.value == "completed" for t in trees)
    assert max(t.score for t in trees) >= 0.95
    bundle = tmp_path / "b.zip"
    args = ["search", str(path), "--target", "y", "--max-trials", str(len(TREE_PORTFOLIO)), "--export", "best"]
    assert main([*args, "--budget-seconds", "60", "--out", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        assert "model.onnx" in archive.namelist()
        card = archive.read("MODEL_CARD.md").decode()
    assert "Gradient-boosted decision trees" in card
    out = tmp_path / "pred.csv"
    assert main(["predict", str(bundle), str(path), "-o", str(out)]) == 0
    with open(out) as handle:
        predicted = np.array([int(row[-1]) for row in list(csv.reader(handle))[1:]])
    assert np.mean(predicted == y) >= 0.95


def test_trees_are_not_compressed(tmp_path):
    from nas_engine.compress import compress_trial
    from nas_engine.results import Costs, TrialResult, TrialStatus

    parent = TrialResult(
        number=0, status=TrialStatus.COMPLETED, architecture=ARCH, arch_hash="x", metrics={"score": 0.9},
        costs=Costs(params=1, flops=1, latency_ms=None, size_bytes=4), train_seconds=1.0,
        weights_path=str(tmp_path / "w.pt"),
    )  # fmt: skip
    with pytest.raises(ConstraintError, match="trees are not compressed"):
        compress_trial(parent, None, kind="int8", ratio=None, number=1, artifacts_dir=tmp_path, seed=0)


def test_a_cross_validated_trial_cut_before_its_last_folds_keeps_the_folds_it_trained():
    """Under load a 5-fold trial can reach the deadline after its first folds: it is scored on
    those (and keeps the first fold's model) instead of failing."""
    from nas_engine.evaluator import CrossValidatedTrainer

    X, y, task, n_out = _data("binary")
    trainer = CrossValidatedTrainer(
        lambda: TreeSpace().build_model(ARCH, X.shape[1], n_out), X=X, y=y, folds=5, task=task,
        settings=TrainSettings(), seed=0, patience=3,
    )  # fmt: skip
    for fold in trainer.trainers[:2]:  # the deadline came while the third fold waited
        fold.train(until_epoch=4)
    outcome = trainer.finish()
    assert outcome.metrics["cv_folds"] == 2 and outcome.model is trainer.trainers[0].model
    assert outcome.metrics["score"] == pytest.approx(np.mean([t.best_metrics["score"] for t in trainer.trainers[:2]]))
    untouched = CrossValidatedTrainer(
        lambda: TreeSpace().build_model(ARCH, X.shape[1], n_out), X=X, y=y, folds=5, task=task,
        settings=TrainSettings(), seed=0, patience=3,
    )  # fmt: skip
    with pytest.raises(FloatingPointError, match="no finite validation loss"):
        untouched.finish()
