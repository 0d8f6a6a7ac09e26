"""The torch module of the tree space (``spaces.trees`` imports it when it builds a model):
gradient-boosted trees in GEMM form, grown by scikit-learn's ``HistGradientBoosting*`` with warm
starts, a few rounds per epoch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

ABSENT_CLASS_LOGIT = -30.0  # a class the training rows lack is never predicted


class BoostedTrees(nn.Module):
    """``rounds`` boosting rounds of trees with at most ``leaves`` leaves, on ``n_inputs`` columns.

    ``fit_round`` grows the next rounds on the rows it is given (the ``Trainer`` calls it once an
    epoch instead of a gradient step); ``full`` says the capacity is used. Before any round the
    model predicts zeros.
    """

    def __init__(
        self, *, n_inputs: int, n_outputs: int, rounds: int, leaves: int, settings: dict, fill_epochs: int
    ) -> None:
        super().__init__()
        self.n_inputs, self.n_outputs, self.rounds, self.leaves = n_inputs, n_outputs, rounds, leaves
        self.per_round = n_outputs if n_outputs > 2 else 1
        self.step = max(1, math.ceil(rounds / fill_epochs))
        self.settings = settings
        trees, nodes = rounds * self.per_round, leaves - 1

        def frozen(*shape: int, fill: float = 0.0) -> nn.Parameter:
            return nn.Parameter(torch.full(shape, fill), requires_grad=False)

        self.feature = frozen(trees, nodes)  # column index of each node (a float, cast when used)
        self.threshold = frozen(trees, nodes)
        self.paths = frozen(trees, nodes, leaves)
        self.lefts = frozen(trees, 1, leaves, fill=-1.0)  # -1: no leaf there (unreachable)
        self.values = frozen(trees, leaves, 1)
        self.assign = frozen(trees, n_outputs)
        self.baseline = frozen(n_outputs)
        self._estimator: Any = None  # scikit-learn's model while growing; not part of the weights
        self._loaded = 0  # boosting rounds copied into the tensors

    @property
    def full(self) -> bool:
        """True once every round of the capacity is grown: more epochs add nothing."""
        return self._loaded >= self.rounds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trees, nodes = self.feature.shape
        values = x.index_select(1, self.feature.long().flatten()).view(-1, trees, nodes)
        go_left = (values <= self.threshold).to(x.dtype).transpose(0, 1)  # (trees, rows, nodes)
        reached = (torch.bmm(go_left, self.paths) == self.lefts).to(x.dtype)  # (trees, rows, leaves)
        per_tree = torch.bmm(reached, self.values).squeeze(2).transpose(0, 1)  # (rows, trees)
        return per_tree @ self.assign + self.baseline

    def fast_outputs(self, X: np.ndarray) -> np.ndarray | None:
        """What ``forward`` returns for ``X``, computed by scikit-learn's own predictor while the
        model is growing (many times faster than the GEMM form on thousands of rows, which a search
        would otherwise spend most of a tree trial on, scoring the validation rows every epoch);
        None once there is no predictor matching the weights (a fresh or loaded model)."""
        estimator = self._estimator
        if estimator is None or len(estimator._predictors) != self._loaded:
            return None
        with threadpool_limits(limits=torch.get_num_threads(), user_api="openmp"):
            if not hasattr(estimator, "classes_"):  # a regressor: its raw prediction is the output
                return np.asarray(estimator.predict(X), dtype=np.float32).reshape(-1, 1)
            raw = np.asarray(estimator.decision_function(X), dtype=np.float32).reshape(len(X), -1)
        outputs = self.baseline.detach().numpy().astype(np.float32)[None, :].repeat(len(X), axis=0)
        for k, column in enumerate(self._columns(estimator, "classification")):
            outputs[:, column] = raw[:, k]
        return outputs

    def fit_round(
        self, X: np.ndarray, y: np.ndarray, *, task: str, seed: int, class_weights: list[float] | None = None
    ) -> None:
        """Grow the next ``rounds / fill_epochs`` rounds on ``X``/``y`` (encoded features; class
        indices or standardised targets), continuing from the rounds already grown; ``class_weights``
        (one per class index) weight each row's loss by its class.

        Raises:
            ValueError: The rows hold a single class (scikit-learn's message).
        """
        if self.full:
            return
        if self._estimator is None:
            from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

            kind = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
            self._estimator = kind(
                max_iter=0,
                max_leaf_nodes=self.leaves,
                early_stopping=False,
                warm_start=True,
                random_state=seed,
                **self.settings,
            )
        estimator = self._estimator
        estimator.max_iter = min(self.rounds, self._loaded + self.step)
        if class_weights is not None:  # each row weighted by its class's weight (balanced class weights)
            present = {int(k) for k in np.unique(y)}
            estimator.class_weight = {k: w for k, w in enumerate(class_weights) if k in present}
        # as many threads as torch may use here (one inside a search: a worker shares its machine)
        with threadpool_limits(limits=torch.get_num_threads(), user_api="openmp"):
            estimator.fit(X, y)
        self._copy_rounds(estimator, task)

    def _copy_rounds(self, estimator, task: str) -> None:
        columns = self._columns(estimator, task)
        if self._loaded == 0:
            self._copy_baseline(estimator, task, columns)
        with torch.no_grad():
            for number in range(self._loaded, len(estimator._predictors)):
                for k, predictor in enumerate(estimator._predictors[number]):
                    self._copy_tree(number * self.per_round + k, predictor.nodes, columns[k])
        self._loaded = len(estimator._predictors)

    def _columns(self, estimator, task: str) -> list[int]:
        """The output column each tree of a round feeds."""
        if task != "classification":
            return [0]
        classes = [int(c) for c in estimator.classes_]
        return [classes[1]] if len(classes) == 2 else classes

    def _copy_baseline(self, estimator, task: str, columns: list[int]) -> None:
        """The boosting's initial prediction into the columns its trees feed; with two classes the
        first class's logit is 0 (one logit, of the second against the first), and a class the
        training rows lack gets ``ABSENT_CLASS_LOGIT``."""
        baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel()
        with torch.no_grad():
            if task == "classification":
                self.baseline.fill_(ABSENT_CLASS_LOGIT)
                self.baseline[int(estimator.classes_[0])] = 0.0  # overwritten below unless two classes
            for column, value in zip(columns, baseline, strict=True):
                self.baseline[column] = float(value)

    def _copy_tree(self, slot: int, nodes: np.ndarray, column: int) -> None:
        """Write one scikit-learn tree (its ``nodes`` record array) into tree ``slot``."""
        internal: dict[int, int] = {}
        leaves: dict[int, int] = {}
        for index, is_leaf in enumerate(nodes["is_leaf"]):
            numbering = leaves if is_leaf else internal
            numbering[index] = len(numbering)
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])]
        while stack:
            index, path = stack.pop()
            node = nodes[index]
            if node["is_leaf"]:
                leaf = leaves[index]
                for at, left in path:
                    self.paths[slot, at, leaf] = 1.0 if left else -1.0
                self.lefts[slot, 0, leaf] = float(sum(left for _, left in path))
                self.values[slot, leaf, 0] = float(node["value"])
                continue
            at = internal[index]
            self.feature[slot, at] = float(node["feature_idx"])
            self.threshold[slot, at] = float(node["num_threshold"])
            stack.append((int(node["left"]), [*path, (at, True)]))
            stack.append((int(node["right"]), [*path, (at, False)]))
        self.assign[slot, column] = 1.0
