"""Under k-fold scoring every trained trial keeps its out-of-fold outputs, and the ensemble is chosen
and scored on them: each row predicted by a network that did not train on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine import SearchConfig, run_search
from nas_engine.evaluator import CrossValidatedTrainer, TrainSettings, predict_raw
from nas_engine.finalize import finalize_front
from nas_engine.results import out_of_fold_path
from nas_engine.selection import default_choice
from nas_engine.spaces import MLPSpace

ARCH = {"space": "mlp", "layers": [{"units": 8, "activation": "relu", "dropout": 0.0}], "train": {"lr": 3e-3}}


def _trainer(data, folds: int) -> tuple[CrossValidatedTrainer, np.ndarray, np.ndarray]:
    X, y = np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])
    trainer = CrossValidatedTrainer(
        lambda: MLPSpace().build_model(ARCH, data.n_features, data.n_outputs),
        X=X,
        y=y,
        folds=folds,
        task=data.task,
        settings=TrainSettings.from_architecture(ARCH),
        seed=4,
    )
    return trainer, X, y


def test_each_row_is_predicted_by_the_fold_that_held_it_out(cancer_data):
    trainer, X, y = _trainer(cancer_data, folds=3)
    trainer.train(until_epoch=2)
    outcome = trainer.finish()
    assert outcome.out_of_fold is not None and outcome.out_of_fold.shape == (len(y), 2)
    held_by = np.full(len(y), -1)
    for i, part in enumerate(trainer.parts):
        assert (held_by[part] == -1).all()  # the folds' held-out parts do not overlap...
        held_by[part] = i
    assert (held_by >= 0).all()  # ...and cover every row
    for i, fold in enumerate(trainer.trainers):
        rows = held_by == i
        assert len(fold.X) == len(y) - rows.sum()  # the fold trained on the other rows only
        np.testing.assert_allclose(outcome.out_of_fold[rows], predict_raw(fold.model, X[rows]), rtol=1e-6)
    accuracy = float(np.mean(outcome.out_of_fold.argmax(axis=1) == y))
    assert accuracy == pytest.approx(outcome.metrics["accuracy"], abs=0.01)  # pooled vs fold mean


def test_a_trial_cut_before_every_fold_trained_has_no_out_of_fold_outputs(cancer_data):
    trainer, _, _ = _trainer(cancer_data, folds=3)
    trainer.trainers[0].train(until_epoch=1)
    assert trainer.finish().out_of_fold is None


def k_fold_search(data, artifacts, seed: int):
    torch.set_num_threads(1)
    config = SearchConfig(target="diagnosis", max_trials=5, max_epochs=8, seed=seed, cv_folds=3, space="mlp")
    result = run_search(config, data, artifacts_dir=artifacts)
    return result, finalize_front(result, data, artifacts_dir=artifacts, seed=config.seed)


def test_a_k_fold_search_keeps_out_of_fold_outputs_and_its_ensemble_follows_them(cancer_data, tmp_path):
    """A real 3-fold search: every trial keeps its out-of-fold outputs, and the ensemble on offer is
    either chosen greedily on them (scored on them too) or, when no other trial lowers the best
    one's out-of-fold loss (this depends on the trained networks, so on the machine), the top-3
    ensemble, with the best single model exported."""
    result, finals = k_fold_search(cancer_data, tmp_path, seed=0)
    y = np.concatenate([cancer_data.y_train, cancer_data.y_val])
    outputs = {}
    for trial in result.trials:
        outputs[trial.number] = np.load(out_of_fold_path(trial.weights_path))
        assert outputs[trial.number].shape == (len(y), cancer_data.n_outputs)
    ensemble = finals.ensemble
    members = ensemble.architecture["members"]
    assert members[0] == result.best.number and len(set(members)) == len(members) >= 2

    def pooled(numbers: list[int]) -> tuple[float, float]:
        probabilities = np.mean([torch.softmax(torch.from_numpy(outputs[n]), 1).numpy() for n in numbers], axis=0)
        return float(np.mean(probabilities.argmax(axis=1) == y)), float(
            -np.mean(np.log(probabilities[np.arange(len(y)), y]))
        )

    single_accuracy, single_loss = pooled([result.best.number])
    distinct = {}
    for n in outputs:
        distinct.setdefault(result.trials[n].arch_hash, n)
    if "cv_folds" not in ensemble.metrics:  # no member lowered the loss: none does
        assert all(pooled([result.best.number, n])[1] >= single_loss - 1e-6 for n in distinct.values())
        assert default_choice(result.best, ensemble) is result.best
        return
    assert ensemble.metrics["cv_folds"] == 3
    accuracy, loss = pooled(members)
    assert ensemble.metrics["accuracy"] == pytest.approx(accuracy)
    assert ensemble.metrics["val_loss"] == pytest.approx(loss, rel=1e-4)
    assert ensemble.metrics["single_score"] == pytest.approx(single_accuracy)
    assert loss < single_loss  # a member is added only when it lowers the loss
    chosen = default_choice(result.best, ensemble)
    assert (chosen is ensemble) == (accuracy >= single_accuracy)


# --- the greedy choice on out-of-fold outputs, on outputs made to the purpose --------------------


def crafted(tmp_path, logits: dict[int, np.ndarray], y: np.ndarray):
    """Trials whose out-of-fold logits are ``logits`` (trial 0 the best), and the data they score on."""
    from types import SimpleNamespace

    from nas_engine.results import Costs, SearchResult, TrialResult, TrialStatus

    trials = []
    for number, outputs in logits.items():
        weights = tmp_path / f"trial_{number}.pt"
        np.save(out_of_fold_path(weights), outputs.astype(np.float32))
        accuracy = float(np.mean(outputs.argmax(axis=1) == y))
        trials.append(
            TrialResult(
                number=number, status=TrialStatus.COMPLETED, arch_hash=f"arch{number}",
                architecture={"space": "mlp", "layers": [{"units": 8 + number, "activation": "relu", "dropout": 0.0}]},
                metrics={"score": accuracy + (1.0 if number == 0 else 0.0), "cv_folds": 3},
                costs=Costs(params=10 + number, flops=10, latency_ms=None, size_bytes=40),
                train_seconds=0.1, weights_path=str(weights),
            )
        )  # fmt: skip
    result = SearchResult(trials=trials, front=[0], best=trials[0], cancelled=False, elapsed_seconds=1.0,
                          task="classification")  # fmt: skip
    data = SimpleNamespace(
        y_train=y[:60],
        y_val=y[60:],
        task="classification",
        preprocessing={"target": {"name": "y", "labels": ["a", "b"]}},
    )
    return result, data


def confident(y: np.ndarray, rows: np.ndarray, strength: float) -> np.ndarray:
    """Logits right with ``strength`` on ``rows``, unsure (and slightly wrong) elsewhere."""
    logits = np.zeros((len(y), 2))
    logits[np.arange(len(y)), y] = np.where(rows, strength, -0.2)
    return logits


def test_members_that_lower_the_out_of_fold_loss_join_and_the_ensemble_is_scored_on_them(tmp_path):
    from nas_engine.finalize import _cross_validated_ensemble

    y = np.tile([0, 1], 50)
    first, second = np.arange(100) < 50, np.arange(100) >= 50
    logits = {0: confident(y, first, 4.0), 1: confident(y, second, 4.0), 2: -confident(y, first | second, 3.0)}
    result, data = crafted(tmp_path, logits, y)
    members, metrics = _cross_validated_ensemble(result, data, 3)
    assert [m.number for m in members] == [0, 1]  # the always-wrong trial 2 never lowers the loss
    averaged = np.mean([torch.softmax(torch.from_numpy(logits[n]), 1).numpy() for n in (0, 1)], axis=0)
    assert metrics["val_loss"] == pytest.approx(-np.mean(np.log(averaged[np.arange(100), y])), rel=1e-4)
    assert metrics["cv_folds"] == 3 and metrics["single_val_loss"] > metrics["val_loss"]


def test_without_a_member_that_lowers_the_loss_no_out_of_fold_ensemble_is_made(tmp_path):
    from nas_engine.finalize import _cross_validated_ensemble

    y = np.tile([0, 1], 50)
    everywhere = np.ones(100, dtype=bool)
    logits = {0: confident(y, everywhere, 6.0), 1: confident(y, everywhere, 0.5), 2: -confident(y, everywhere, 2.0)}
    result, data = crafted(tmp_path, logits, y)
    assert _cross_validated_ensemble(result, data, 3) == ([], {})
