"""Balanced class weights: the loss weighs each class's rows so a rare class counts as much as a
common one, for networks (Trainer), boosted trees (scikit-learn's class_weight) and the validation
loss that stops training; a model trained with them finds more of the rare class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_engine.evaluator import Trainer, TrainSettings, score_outputs, training_loss
from nas_engine.spaces import TreeSpace


def _skewed(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping classes, 1 row in 10 of the rare one (class 1)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(np.int64)
    X = (rng.normal(size=(n, 2)) + y[:, None] * 1.2).astype(np.float32)
    return X, y


def _balanced(y: np.ndarray) -> list[float]:
    counts = np.bincount(y, minlength=2)
    return [len(y) / (2 * n) for n in counts]


def test_the_loss_is_the_class_weighted_mean_and_the_validation_loss_uses_the_same_weights():
    outputs, targets = torch.randn(50, 2), torch.randint(0, 2, (50,))
    weights = torch.tensor([0.5, 4.0])
    per_row = F.cross_entropy(outputs, targets, reduction="none")
    expected = (per_row * weights[targets]).sum() / weights[targets].sum()
    assert training_loss(outputs, targets, "classification", weights).item() == pytest.approx(expected.item())
    assert training_loss(outputs, targets, "classification").item() == pytest.approx(per_row.mean().item())
    target = {"labels": ["a", "b"], "class_weights": [0.5, 4.0]}
    weighted = score_outputs(outputs.numpy(), targets.numpy(), task="classification", target=target)
    assert weighted["val_loss"] == pytest.approx(expected.item(), rel=1e-5)


def _rare_recall(model_outputs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model_outputs.argmax(1)[y == 1] == 1))


def test_a_network_trained_with_balanced_weights_finds_more_of_the_rare_class():
    X, y = _skewed()
    X_test, y_test = _skewed(seed=1)
    recalls = {}
    for name, target in {"none": None, "balanced": {"labels": ["0", "1"], "class_weights": _balanced(y)}}.items():
        torch.manual_seed(0)
        trainer = Trainer(
            torch.nn.Linear(2, 2), X_train=X, y_train=y, task="classification",
            settings=TrainSettings(lr=0.05), seed=0, target=target,
        )  # fmt: skip
        trainer.train(until_epoch=30)
        with torch.no_grad():
            recalls[name] = _rare_recall(trainer.finish().model(torch.from_numpy(X_test)).numpy(), y_test)
    assert recalls["balanced"] > recalls["none"] + 0.2, recalls


def test_boosted_trees_grown_with_balanced_weights_find_more_of_the_rare_class():
    X, y = _skewed()
    X_test, y_test = _skewed(seed=1)
    arch = {"space": "trees", "rounds": 40, "leaves": 7, "lr": 0.1, "min_leaf": 10, "l2": 0.0}
    recalls = {}
    for name, weights in {"none": None, "balanced": _balanced(y)}.items():
        model = TreeSpace().build_model(arch, 2, 2)
        for _ in range(20):
            model.fit_round(X, y, task="classification", seed=0, class_weights=weights)
        with torch.no_grad():
            recalls[name] = _rare_recall(model(torch.from_numpy(X_test)).numpy(), y_test)
    assert recalls["balanced"] > recalls["none"] + 0.2, recalls
