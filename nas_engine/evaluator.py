"""Train one network (resumably, epoch by epoch) and measure its quality and latency."""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas_engine import devices
from nas_engine.augment import Augmentation
from nas_engine.batches import Batches, Rows, take_rows
from nas_engine.metrics import METRICS, metric_of
from nas_engine.runtime import softmax, target_units

EVAL_CHUNK = 4096  # rows per forward pass when scoring
# ...and at most this many input values: 4,096 images of 3×32×32 through a 64-channel convolution
# are a gigabyte of activations per layer; 2**21 values make it 682 such images (~170 MB).
EVAL_VALUES = 2**21
OPTIMIZERS = ("adam", "adamw", "sgd")
SMALL_TRAIN_ROWS = 300  # below this a validation split has < 100 rows: too noisy to choose among many models
SMALL_DATA_FOLDS = 5
# Up to this many training rows a validation split (a third of them) still makes the best of a few
# dozen models mostly the luckiest: with a budget of CV_MIN_BUDGET seconds or more, trials are
# cross-validated there too. On the tabular suite's dev tables of 700-1,500 training rows, 5 folds
# at 120 s raised attrition 0.850 -> 0.871 and wage 0.299 -> 0.324 (benchmarks/results/tabular_cv_ab.md);
# below that budget a 5-fold trial's fivefold cost leaves too few trials.
CV_TRAIN_ROWS = 2_000
CV_MIN_BUDGET = 100.0


@dataclass(frozen=True)
class TrainSettings:
    """How a network is trained: the genome's ``"train"`` entry, searched with the architecture."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    optimizer: str = "adam"

    @classmethod
    def from_architecture(cls, arch: dict) -> TrainSettings:
        """Read ``arch["train"]``; genomes from before engine v1 only had a top-level ``lr``."""
        train = arch.get("train") or {}
        defaults = cls()
        return cls(
            lr=float(train.get("lr", arch.get("lr", defaults.lr))),
            weight_decay=float(train.get("weight_decay", defaults.weight_decay)),
            batch_size=int(train.get("batch_size", defaults.batch_size)),
            optimizer=str(train.get("optimizer", defaults.optimizer)),
        )

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        """Build the optimiser (SGD with Nesterov momentum 0.9, the usual strong default)."""
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(parameters, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=self.lr, momentum=0.9, nesterov=True, weight_decay=self.weight_decay)
        raise ValueError(f"Unknown optimizer '{self.optimizer}'; use one of: {', '.join(OPTIMIZERS)}.")


@dataclass(frozen=True)
class TrainingOutcome:
    """A trained model and how its training ended."""

    model: torch.nn.Module
    metrics: dict
    seconds: float
    cancelled: bool
    out_of_fold: np.ndarray | None = None  # k-fold: each row's raw output from the fold that did not train on it
    device: str = "cpu"  # where it trained (devices.describe): the job page shows it


def training_loss(
    outputs: torch.Tensor, targets: torch.Tensor, task: str, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy (each class weighted by ``class_weights`` when given: the weighted mean, as
    ``F.cross_entropy`` takes it) or mean squared error. Outputs of shape ``[batch, members, outputs]``
    (a TabM-style ensemble while it trains) give the mean of every member's own loss, so each member
    learns to predict on its own."""
    if outputs.dim() == 3:
        members = outputs.shape[1]
        outputs = outputs.reshape(-1, outputs.shape[-1])
        targets = targets.repeat_interleave(members)
    if task == "classification":
        return F.cross_entropy(outputs, targets, weight=class_weights)
    return F.mse_loss(outputs[:, 0], targets)


CLASS_WEIGHTS = ("none", "balanced")  # how the training loss weighs the classes (SearchConfig.class_weights)


def class_weights_of(target: dict | None) -> torch.Tensor | None:
    """The per-class weights of the training loss (``target["class_weights"]``, set by
    ``prepare_data(class_weights="balanced")``), or None: every row counts the same."""
    weights = (target or {}).get("class_weights")
    return None if weights is None else torch.tensor(weights, dtype=torch.float32)


def predict_raw(model: torch.nn.Module, X: Rows) -> np.ndarray:
    """Run the model in eval mode on a feature matrix (on the model's device), returning raw outputs."""
    model.eval()
    device = devices.module_device(model)
    rows = max(1, min(EVAL_CHUNK, EVAL_VALUES // max(1, X.shape[1] if X.ndim == 2 else 1)))
    with torch.inference_mode():
        chunks = [model(torch.from_numpy(X[i : i + rows]).to(device)).float().cpu() for i in range(0, len(X), rows)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 1), dtype=np.float32)


def evaluate_model(
    model: torch.nn.Module,
    X: Rows,
    y: np.ndarray,
    *,
    task: str,
    target_std: float = 1.0,
    target: dict | None = None,
) -> dict:
    """Measure a model on one split.

    Args:
        model: The network.
        X: Encoded features.
        y: Class indices, or standardised targets.
        task: ``"classification"`` or ``"regression"``.
        target_std: Standard deviation of the original target, to report RMSE in its units.
        target: The fitted target (``preprocessing["target"]``); when given, R² and RMSE are
            measured in the target's own units (after undoing a log transform), as a user
            scores the predictions. ``val_loss`` stays in the standardised units the network learns.

    Returns:
        Classification: accuracy, balanced_accuracy, f1_macro, val_loss and the search's metric
        (``metrics.metric_of(target)``); regression: rmse, mae (original units), r2, val_loss and
        the metric. ``score`` is the metric as a score (``Metric.score``: higher is better).
    """
    return score_outputs(predict_raw(model, X), y, task=task, target_std=target_std, target=target)


def score_outputs(
    outputs: np.ndarray, y: np.ndarray, *, task: str, target_std: float = 1.0, target: dict | None = None
) -> dict:
    """``evaluate_model``'s metrics of raw outputs already computed (e.g. out-of-fold predictions)."""
    loss = float(training_loss(torch.from_numpy(outputs), torch.from_numpy(y), task, class_weights_of(target)))
    metric = metric_of(target, task)
    if task == "classification":
        predicted = outputs.argmax(axis=1)
        probabilities = softmax(outputs.astype(np.float64))
        found = {
            name: METRICS[name].compute(y, predicted, probabilities)
            for name in ("accuracy", "balanced_accuracy", "f1_macro", metric.name)
        }
        return found | {"val_loss": loss, "score": metric.score(found[metric.name])}
    predicted, actual = outputs[:, 0].astype(np.float64), y.astype(np.float64)
    if target is not None:
        predicted, actual, target_std = target_units(predicted, target), target_units(actual, target), 1.0
    else:  # standardised units: RMSE and MAE back in the target's scale
        predicted, actual = predicted * target_std, actual * target_std
    found = {name: METRICS[name].compute(actual, predicted, predicted) for name in ("rmse", "r2", "mae", metric.name)}
    return found | {"val_loss": loss, "score": metric.score(found[metric.name])}


class Trainer:
    """Trains one network epoch by epoch and can be resumed, as multi-fidelity needs.

    With a validation split it keeps the weights of the epoch with the lowest validation loss
    and stops for good after ``patience`` epochs without improvement; without one (a refit on
    train+validation) it simply trains the epochs it is asked for. Each trainer owns its batch
    order and dropout random state, so interleaving trainers (rung by rung) does not change what
    any of them learns.

    It trains on the worker's device (``devices.training_device``: a GPU when there is one, with
    mixed precision there) and hands the finished model back on the CPU, where its latency is
    measured and it is saved and exported. Batches are drawn from ``X_train`` as they are needed
    (``batches.Batches``): an image set's uint8 pixels are never made float all at once.

    Args:
        model: The untrained network.
        X_train: Encoded training features (a float32 matrix or ``PixelRows``).
        y_train: Training labels or standardised targets.
        task: ``"classification"`` or ``"regression"``.
        settings: Optimiser, learning rate, weight decay and batch size.
        seed: Seed of the batch order and dropout.
        validation: ``(X_val, y_val)`` for early stopping and metrics, or None.
        patience: Epochs without improvement of the validation loss before stopping.
        target_std: Standard deviation of the original target (regression RMSE units).
        augmentation: Changes each training batch at random (drawn from the trainer's own
            generator, so a seed still gives the same model); None trains on the rows as they are.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        X_train: Rows,
        y_train: np.ndarray,
        task: str,
        settings: TrainSettings,
        seed: int,
        validation: tuple[Rows, np.ndarray] | None = None,
        patience: int | None = None,
        target_std: float = 1.0,
        augmentation: Augmentation | None = None,
        target: dict | None = None,
    ) -> None:
        # Boosted trees grow on the CPU (scikit-learn); every network trains where the worker trains.
        self.device = devices.training_device() if getattr(model, "fit_round", None) is None else torch.device("cpu")
        self.model, self.task, self.settings = model.to(self.device), task, settings
        self.target = target
        self.class_weights = class_weights_of(target)
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(self.device)
        self.scaler = devices.grad_scaler(self.device)
        self.augmentation = augmentation
        self.X, self.y = Batches(X_train), torch.from_numpy(y_train)
        self.validation, self.patience, self.target_std = validation, patience, target_std
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._rng_state = torch.Generator().manual_seed(seed).get_state()  # dropout's, swapped in while training
        self.optimizer = settings.make_optimizer(model.parameters())
        self.epochs = 0
        self.full_epochs = 0  # epochs that saw all their rows (not cut by the deadline)
        self.seconds = 0.0
        self.cancelled = self.out_of_time = False
        self.best_loss, self.stale = math.inf, 0
        self.best_state: dict[str, Any] | None = None
        self.best_metrics: dict[str, Any] = {}

    @property
    def converged(self) -> bool:
        """True once ``patience`` epochs passed without improvement: more epochs would be wasted."""
        if getattr(self.model, "full", False):  # boosted trees grown to their capacity
            return True
        return self.patience is not None and self.stale >= self.patience

    @property
    def score(self) -> float:
        """Validation score of the best epoch so far (-inf before any)."""
        return self.best_metrics.get("score", -math.inf)

    def train(
        self,
        *,
        until_epoch: int,
        rows: int | None = None,
        deadline: float | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        """Train until ``until_epoch`` epochs in total, convergence, the deadline or a cancel request.

        The deadline (a ``time.monotonic()`` value) is checked after every batch so a trial never
        runs far past the search budget; ``should_cancel`` may be slow (a database query in the
        web app), so it is checked once per epoch. ``cancelled``/``out_of_time`` say why it stopped.

        Args:
            until_epoch: Total epochs to reach.
            rows: Train each epoch on this many randomly drawn rows (all when None).
            deadline: Stop when ``time.monotonic()`` passes it.
            should_cancel: Returns True when the user asked to stop.

        Raises:
            FloatingPointError: The loss became NaN or infinite.
        """
        start = time.monotonic()
        outer_rng = torch.get_rng_state()
        torch.set_rng_state(self._rng_state)
        try:
            while self.epochs < until_epoch and not (self.converged or self.cancelled or self.out_of_time):
                self._epoch(rows, deadline)
                if should_cancel is not None and should_cancel():
                    self.cancelled = True
        finally:
            self._rng_state = torch.get_rng_state()
            torch.set_rng_state(outer_rng)
            self.seconds += time.monotonic() - start

    def _epoch(self, rows: int | None, deadline: float | None) -> None:
        self.model.train()
        fit_round = getattr(self.model, "fit_round", None)
        if fit_round is not None:  # boosted trees: an epoch grows the next rounds on every row
            weights = None if self.class_weights is None else self.class_weights.cpu().tolist()
            fit_round(self.X.numpy(), self.y.numpy(), task=self.task, seed=self.seed, class_weights=weights)
            # a round cannot be cut: one that ends past the deadline counts as a cut epoch
            self.out_of_time = deadline is not None and time.monotonic() > deadline
            self.full_epochs += not self.out_of_time
            self._epoch_done()
            return
        order = torch.randperm(len(self.X), generator=self.generator)
        if rows is not None:
            order = order[:rows]
        for idx in order.split(self.settings.batch_size):
            if len(idx) < 2 < len(order):
                continue  # batch-norm cannot train on a lone row; it is seen again next epoch
            self.optimizer.zero_grad()
            inputs = self.X[idx]
            if self.augmentation is not None:
                inputs = self.augmentation.apply(inputs, self.generator)
            inputs, targets = inputs.to(self.device), self.y[idx].to(self.device)
            with devices.autocast(self.device):
                loss = training_loss(self.model(inputs), targets, self.task, self.class_weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    "Training diverged (the loss became NaN or infinite); a lower learning rate may help."
                )
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if deadline is not None and time.monotonic() > deadline:
                self.out_of_time = True
                break
        else:
            self.full_epochs += 1
        self._epoch_done()

    def _epoch_done(self) -> None:
        self.epochs += 1
        if self.validation is None:
            return
        X_val, y_val = self.validation
        fast = getattr(self.model, "fast_outputs", None)  # boosted trees, while they grow
        outputs = fast(X_val) if fast is not None else None
        if outputs is None:
            outputs = predict_raw(self.model, X_val)
        metrics = score_outputs(outputs, y_val, task=self.task, target_std=self.target_std, target=self.target)
        if metrics["val_loss"] < self.best_loss:
            self.best_loss, self.stale = metrics["val_loss"], 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.best_metrics = {**metrics, "best_epoch": self.epochs}
        else:
            self.stale += 1

    def finish(self) -> TrainingOutcome:
        """Load the best epoch's weights (when validated) and return the model and its metrics.

        Call once, when the network will not be trained further.

        Raises:
            FloatingPointError: No epoch had a finite validation loss.
        """
        if self.validation is not None:
            if self.best_state is None:
                raise FloatingPointError("Training produced no finite validation loss.")
            self.model.load_state_dict(self.best_state)
        self.model.to("cpu").eval()
        metrics = {**self.best_metrics, "epochs": self.epochs}
        return TrainingOutcome(
            model=self.model,
            metrics=metrics,
            seconds=self.seconds,
            cancelled=self.cancelled,
            device=devices.describe(self.device),
        )


def auto_cv_folds(n_train_rows: int, budget_seconds: float | None = None) -> int:
    """Folds of cross-validation for a training split of this size: 5 below 300 rows, and below
    2,000 when the search has at least 100 seconds (``budget_seconds``; None: not known); else 1 (off)."""
    if n_train_rows < SMALL_TRAIN_ROWS:
        return SMALL_DATA_FOLDS
    roomy = budget_seconds is not None and budget_seconds >= CV_MIN_BUDGET
    return SMALL_DATA_FOLDS if roomy and n_train_rows < CV_TRAIN_ROWS else 1


def fold_indices(y: np.ndarray, *, folds: int, seed: int, stratify: bool) -> list[np.ndarray]:
    """Split row indices into ``folds`` parts of near-equal size (and class mix, when stratified)."""
    order = np.random.default_rng(seed).permutation(len(y))
    if stratify:
        order = order[np.argsort(y[order], kind="stable")]  # dealing sorted labels round-robin stratifies
    return [np.sort(order[i::folds]) for i in range(folds)]


class CrossValidatedTrainer:
    """k trainers, one per fold of train+validation, behaving as one: the score is their mean.

    On small data one validation split is so noisy that choosing the best of many models on it
    mostly picks the luckiest; averaging over folds cuts that noise. The first fold's model is
    the one kept (for export), and ``best_epoch`` is the folds' mean, for a refit.

    Args:
        build: Returns a new untrained network (called once per fold).
        X: Encoded features of train+validation.
        y: Their labels or standardised targets.
        folds: Number of folds (at least 2).
        task: ``"classification"`` or ``"regression"``.
        settings: How to train.
        seed: Seed of the fold split and of each fold's trainer.
        patience: Early-stopping patience of each fold.
        target_std: Standard deviation of the original target.
        augmentation: Passed to each fold's trainer.
    """

    def __init__(
        self,
        build,
        *,
        X,
        y,
        folds,
        task,
        settings,
        seed,
        patience=None,
        target_std=1.0,
        augmentation=None,
        target=None,
    ) -> None:
        parts = fold_indices(y, folds=folds, seed=seed, stratify=task == "classification")
        self.parts, self.rows = parts, len(y)
        self.trainers = []
        for i, held_out in enumerate(parts):
            kept = np.concatenate([part for j, part in enumerate(parts) if j != i])
            self.trainers.append(
                Trainer(
                    build(),
                    X_train=take_rows(X, kept),
                    y_train=y[kept],
                    task=task,
                    settings=settings,
                    seed=seed + i,
                    validation=(take_rows(X, held_out), y[held_out]),
                    patience=patience,
                    target_std=target_std,
                    augmentation=augmentation,
                    target=target,
                )
            )

    @property
    def epochs(self) -> int:
        return max(t.epochs for t in self.trainers)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trainers)

    @property
    def converged(self) -> bool:
        return all(t.converged for t in self.trainers)

    @property
    def cancelled(self) -> bool:
        return any(t.cancelled for t in self.trainers)

    @property
    def out_of_time(self) -> bool:
        return any(t.out_of_time for t in self.trainers)

    @property
    def score(self) -> float:
        return float(np.mean([t.score for t in self.trainers]))

    def train(self, **kwargs) -> None:
        """Train every fold as ``Trainer.train`` does, stopping at a deadline or cancel request."""
        for trainer in self.trainers:
            trainer.train(**kwargs)
            if trainer.cancelled or trainer.out_of_time:
                return

    def finish(self) -> TrainingOutcome:
        """The first fold's model, with every metric averaged over the folds; when the deadline cut
        the trial before every fold trained, over those that did (``cv_folds`` says how many).
        When every fold trained, ``out_of_fold`` holds each row's raw output from the fold model that
        did not train on it, which lets models (and their ensembles) be compared on all the rows.

        Raises:
            FloatingPointError: No fold had a finite validation loss.
        """
        trained = [t for t in self.trainers if t.best_state is not None]
        outcomes = [t.finish() for t in trained or self.trainers[:1]]
        metrics = {name: float(np.mean([o.metrics[name] for o in outcomes])) for name in outcomes[0].metrics}
        metrics.update(best_epoch=round(metrics["best_epoch"]), epochs=self.epochs, cv_folds=len(outcomes))
        out_of_fold = None
        if len(trained) == len(self.trainers):
            for outcome, trainer, part in zip(outcomes, self.trainers, self.parts, strict=True):
                assert trainer.validation is not None  # every fold trainer validates on its held-out part
                predicted = predict_raw(outcome.model, trainer.validation[0])
                if out_of_fold is None:
                    out_of_fold = np.zeros((self.rows, predicted.shape[1]), dtype=predicted.dtype)
                out_of_fold[part] = predicted
        return TrainingOutcome(
            model=outcomes[0].model,
            metrics=metrics,
            seconds=self.seconds,
            cancelled=self.cancelled,
            out_of_fold=out_of_fold,
            device=outcomes[0].device,
        )


def train_model(
    model: torch.nn.Module,
    data,
    *,
    settings: TrainSettings,
    max_epochs: int,
    patience: int,
    seed: int,
    deadline: float | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingOutcome:
    """Train on ``data``'s training split with early stopping on its validation split.

    Args:
        model: The untrained network.
        data: A ``PreparedData``.
        settings: How to train (see ``TrainSettings.from_architecture``).
        max_epochs: Upper bound of epochs.
        patience: Epochs without improvement of the validation loss before stopping.
        seed: Seed of the batch order and dropout.
        deadline: Stop training when ``time.monotonic()`` passes it.
        should_cancel: Returns True when the user asked to stop (checked once per epoch).

    Returns:
        The model with the best epoch's weights, its validation metrics (plus ``epochs``
        trained and ``best_epoch``) and training time.

    Raises:
        FloatingPointError: The loss became NaN or infinite.
    """
    trainer = Trainer(
        model,
        X_train=data.X_train,
        y_train=data.y_train,
        task=data.task,
        settings=settings,
        seed=seed,
        validation=(data.X_val, data.y_val),
        patience=patience,
        target_std=data.preprocessing["target"].get("std", 1.0),
        target=data.preprocessing["target"],
    )
    trainer.train(until_epoch=max_epochs, deadline=deadline, should_cancel=should_cancel)
    return trainer.finish()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, restoring the setting afterwards.

    These networks gain little from intra-op threads, and when the CPU is shared (a web server
    beside the worker) OpenMP's spin-waiting made an epoch loop 200x slower (0.1 s → 26 s); one
    thread also makes latencies comparable between trials regardless of machine load.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def measure_latency_ms(model: torch.nn.Module, n_features: int, *, runs: int = 30, warmup: int = 5) -> float:
    """Median time of one single-row forward pass, on one CPU thread.

    One thread and batch size 1 mimic serving one request and make numbers comparable between
    trials regardless of machine load.

    Returns:
        Milliseconds.
    """
    model.eval()
    x = torch.zeros(1, n_features)
    timings = []
    with one_thread(), torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)
