"""Train one network with early stopping and measure its quality and latency."""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

BATCH_SIZE = 64
EVAL_CHUNK = 4096


@dataclass(frozen=True)
class TrainingOutcome:
    """A trained model and how its training ended."""

    model: torch.nn.Module
    metrics: dict
    seconds: float
    cancelled: bool


def _loss(outputs: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == "classification":
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs[:, 0], targets)


def predict_raw(model: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    """Run the model in eval mode on a feature matrix, returning raw outputs."""
    model.eval()
    with torch.inference_mode():
        chunks = [model(torch.from_numpy(X[i : i + EVAL_CHUNK])) for i in range(0, len(X), EVAL_CHUNK)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 1), dtype=np.float32)


def evaluate_model(model: torch.nn.Module, X: np.ndarray, y: np.ndarray, *, task: str, target_std: float = 1.0) -> dict:
    """Measure a model on one split.

    Args:
        model: The network.
        X: Encoded features.
        y: Class indices, or standardised targets.
        task: ``"classification"`` or ``"regression"``.
        target_std: Standard deviation of the original target, to report RMSE in its units.

    Returns:
        Classification: accuracy, balanced_accuracy, val_loss, score (= accuracy).
        Regression: rmse (original units), r2, val_loss, score (= r2).
    """
    outputs = predict_raw(model, X)
    loss = float(_loss(torch.from_numpy(outputs), torch.from_numpy(y), task))
    if task == "classification":
        predicted = outputs.argmax(axis=1)
        accuracy = float(np.mean(predicted == y))
        recalls = [float(np.mean(predicted[y == c] == c)) for c in np.unique(y)]
        return {"accuracy": accuracy, "balanced_accuracy": float(np.mean(recalls)), "val_loss": loss, "score": accuracy}
    residual = outputs[:, 0].astype(np.float64) - y
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 0.0
    rmse = math.sqrt(float(np.mean(residual**2))) * target_std
    return {"rmse": rmse, "r2": r2, "val_loss": loss, "score": r2}


def train_model(
    model: torch.nn.Module,
    data,
    *,
    lr: float,
    max_epochs: int,
    patience: int,
    seed: int,
    deadline: float | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingOutcome:
    """Train with Adam and early stopping on the validation split, keeping the best epoch.

    The deadline (a ``time.monotonic()`` value) is checked after every batch so a trial never
    runs far past the search budget; ``should_cancel`` may be slow (a database query in the web
    app), so it is checked once per epoch.

    Args:
        model: The untrained network.
        data: A ``PreparedData``.
        lr: Adam learning rate.
        max_epochs: Upper bound of epochs.
        patience: Epochs without improvement of the validation loss before stopping.
        seed: Seed of the batch order.
        deadline: Stop training when ``time.monotonic()`` passes it.
        should_cancel: Returns True when the user asked to stop.

    Returns:
        The model with the best epoch's weights, its validation metrics (plus ``epochs``
        trained and ``best_epoch``) and training time.

    Raises:
        FloatingPointError: The loss became NaN or infinite.
    """
    start = time.monotonic()
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    target_std = data.preprocessing["target"].get("std", 1.0)
    best_loss, best_state, best_metrics, stale, cancelled = math.inf, None, {}, 0, False
    for epoch in range(1, max_epochs + 1):
        model.train()
        out_of_time = False
        for idx in torch.randperm(len(X), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss = _loss(model(X[idx]), y[idx], data.task)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    "Training diverged (the loss became NaN or infinite); a lower learning rate may help."
                )
            loss.backward()
            optimizer.step()
            if deadline is not None and time.monotonic() > deadline:
                out_of_time = True
                break
        metrics = evaluate_model(model, data.X_val, data.y_val, task=data.task, target_std=target_std)
        if metrics["val_loss"] < best_loss:
            best_loss, stale = metrics["val_loss"], 0
            best_state, best_metrics = copy.deepcopy(model.state_dict()), {**metrics, "best_epoch": epoch}
        else:
            stale += 1
        if should_cancel is not None and should_cancel():
            cancelled = True
        if out_of_time or cancelled or stale >= patience:
            break
    if best_state is None:
        raise FloatingPointError("Training produced no finite validation loss.")
    model.load_state_dict(best_state)
    model.eval()
    best_metrics["epochs"] = epoch
    return TrainingOutcome(model=model, metrics=best_metrics, seconds=time.monotonic() - start, cancelled=cancelled)


def measure_latency_ms(model: torch.nn.Module, n_features: int, *, runs: int = 30, warmup: int = 5) -> float:
    """Median time of one single-row forward pass, on one CPU thread.

    One thread and batch size 1 mimic serving one request and make numbers comparable between
    trials regardless of machine load; the thread setting is restored afterwards.

    Returns:
        Milliseconds.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.eval()
        x = torch.zeros(1, n_features)
        timings = []
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    timings.append((time.perf_counter() - start) * 1000.0)
        return statistics.median(timings)
    finally:
        torch.set_num_threads(threads)
