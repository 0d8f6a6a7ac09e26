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


def test_the_ensemble_is_chosen_and_scored_out_of_fold(cancer_data, tmp_path):
    result, finals = k_fold_search(cancer_data, tmp_path, seed=0)
    y = np.concatenate([cancer_data.y_train, cancer_data.y_val])
    outputs = {}
    for trial in result.trials:
        outputs[trial.number] = np.load(out_of_fold_path(trial.weights_path))
        assert outputs[trial.number].shape == (len(y), cancer_data.n_outputs)
    ensemble = finals.ensemble
    members = ensemble.architecture["members"]
    assert members[0] == result.best.number and len(set(members)) == len(members) >= 2
    assert ensemble.metrics["cv_folds"] == 3

    def pooled(numbers: list[int]) -> tuple[float, float]:
        probabilities = np.mean([torch.softmax(torch.from_numpy(outputs[n]), 1).numpy() for n in numbers], axis=0)
        return float(np.mean(probabilities.argmax(axis=1) == y)), float(
            -np.mean(np.log(probabilities[np.arange(len(y)), y]))
        )

    accuracy, loss = pooled(members)
    assert ensemble.metrics["accuracy"] == pytest.approx(accuracy)
    assert ensemble.metrics["val_loss"] == pytest.approx(loss, rel=1e-4)
    single_accuracy, single_loss = pooled([result.best.number])
    assert ensemble.metrics["single_score"] == pytest.approx(single_accuracy)
    assert loss < single_loss  # a member is added only when it lowers the loss
    # every other trial, added as the next member, would not have lowered it further
    if len(members) < 3:
        others = [
            n
            for n in outputs
            if n not in members and result.trials[n].arch_hash not in {result.trials[m].arch_hash for m in members}
        ]
        assert all(pooled([*members, n])[1] >= loss - 1e-6 for n in others)
    chosen = default_choice(result.best, ensemble)
    assert (chosen is ensemble) == (accuracy >= single_accuracy)


def test_without_a_member_that_lowers_the_loss_the_best_model_is_exported(cancer_data, tmp_path):
    result, finals = k_fold_search(cancer_data, tmp_path, seed=1)
    # here no other trial lowers the best one's out-of-fold loss: the top-3 ensemble stays on offer,
    # scored as before, and the default export is the best single model
    assert "single_score" not in finals.ensemble.metrics
    assert default_choice(result.best, finals.ensemble) is result.best
