"""After a search: refit the chosen networks on train+validation, score each once on the test split,
and build a top-k ensemble that exports as one graph. Called by the caller, after ``run_search``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from nas_engine.augment import augmentation_for
from nas_engine.batches import Rows, concat_rows
from nas_engine.evaluator import (
    Trainer,
    TrainSettings,
    evaluate_model,
    measure_latency_ms,
    one_thread,
    score_outputs,
)
from nas_engine.final_model import EnsembleModel, average_outputs, load_final_model
from nas_engine.importance import permutation_importance
from nas_engine.prepare import PreparedData
from nas_engine.results import (
    ENSEMBLE_SPACE,
    SearchResult,
    StatusEvent,
    TrialResult,
    TrialStatus,
    ensemble_costs,
    is_compressed,
    is_ensemble,
    out_of_fold_path,
    require_score,
)
from nas_engine.spaces import space_for_architecture

CROSS_VALIDATED_CANDIDATES = 8  # the best distinct trials a k-fold ensemble is chosen among


@dataclass(frozen=True)
class FinalModel:
    """A network refitted on train+validation, scored once on the test split."""

    number: int
    test_metrics: dict
    weights_path: str | None
    train_seconds: float
    epochs: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FinalModels:
    """The refitted front (and ensemble members), and the ensemble as a trial-like record.

    ``ensemble`` holds the ensemble's costs and validation metrics (its members as trained
    during the search, on the validation split); ``ensemble_final`` its refitted weights and
    test metrics. Both are None when fewer than two completed trials exist.
    """

    models: tuple[FinalModel, ...]
    ensemble: TrialResult | None = None
    ensemble_final: FinalModel | None = None

    def get(self, number: int) -> FinalModel | None:
        """The final model of trial ``number`` (the ensemble's number included), or None."""
        finals = [*self.models, *([self.ensemble_final] if self.ensemble_final else [])]
        return next((final for final in finals if final.number == number), None)

    def to_dict(self) -> dict:
        return {
            "models": [final.to_dict() for final in self.models],
            "ensemble": self.ensemble.to_dict() if self.ensemble else None,
            "ensemble_final": self.ensemble_final.to_dict() if self.ensemble_final else None,
        }


def _test_metrics(model: torch.nn.Module, data: PreparedData) -> dict:
    """The model's metrics on the test split, with each input column's permutation ``importance``
    (``importance.permutation_importance``; left out for images)."""
    std = data.preprocessing["target"].get("std", 1.0)
    metrics = evaluate_model(
        model, data.X_test, data.y_test, task=data.task, target_std=std, target=data.preprocessing["target"]
    )
    importance = permutation_importance(model, data.X_test, data.y_test, data.preprocessing)
    return metrics | ({"importance": importance} if importance is not None else {})


def refit(
    arch: dict, data: PreparedData, *, epochs: int, seed: int, augment: str = "none"
) -> tuple[torch.nn.Module, dict]:
    """Train ``arch`` from scratch on train+validation for ``epochs``, then score it on the test split.

    The search chose the architecture and its epoch count on the validation split; training on
    those rows too gives the final model more data (common practice, e.g. Optuna/AutoGluon
    refits), and the untouched test split still gives an honest score.

    Args:
        arch: The genome.
        data: The prepared splits the search used.
        epochs: Epochs to train (the trial's ``metrics["best_epoch"]``).
        seed: Seed of the weights, batch order and dropout.
        augment: The search's augmentation of training images (``SearchConfig.augment``).

    Returns:
        The trained model (eval mode) and its test metrics.
    """
    X = concat_rows([data.X_train, data.X_val])
    y = np.concatenate([data.y_train, data.y_val])
    model = _train_from_scratch(arch, data, X, y, epochs=epochs, seed=seed, augment=augment)
    return model, _test_metrics(model, data)


def refit_on_all_rows(
    chosen: TrialResult,
    finals: FinalModels,
    data: PreparedData,
    *,
    seed: int,
    augment: str = "none",
    weights_path: str | Path | None = None,
) -> torch.nn.Module:
    """The chosen model trained again, from scratch, on every row: train, validation and test.

    Its test score stays the one of its refit on train+validation (``finals``): once the test rows
    trained it there is no honest score left to take, but the same architecture and epoch count on
    a quarter more rows is expected to do at least as well. An ensemble's members are each trained
    again for their own refit's epochs. A compressed variant is returned as it is (not refit).

    Args:
        chosen: The trial (or ensemble record) to export.
        finals: What ``finalize_front`` returned; holds the chosen model's refit.
        data: The prepared splits the search used.
        seed: The search's seed (a trial's refit uses ``seed + number``, as ``finalize_front``).
        augment: The search's augmentation of training images.
        weights_path: Where to save its weights too (written whole or not at all).

    Raises:
        ValueError: The chosen model (or a member) has no refit in ``finals``.
    """
    model = _on_all_rows(chosen, finals, data, seed=seed, augment=augment)
    if weights_path is not None:
        part = Path(f"{weights_path}.part")
        torch.save(model.state_dict(), part)
        os.replace(part, weights_path)
    return model


def _on_all_rows(
    chosen: TrialResult, finals: FinalModels, data: PreparedData, *, seed: int, augment: str
) -> torch.nn.Module:
    final = finals.get(chosen.number)
    if final is None or final.weights_path is None:
        raise ValueError(f"Trial {chosen.number} has no refitted model.")
    if is_compressed(chosen.architecture):
        return load_final_model(
            chosen.architecture, final.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs
        )
    X = concat_rows([data.X_train, data.X_val, data.X_test])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    if not is_ensemble(chosen.architecture):
        return _train_from_scratch(
            chosen.architecture, data, X, y, epochs=final.epochs, seed=seed + chosen.number, augment=augment
        )
    members = []
    for number, arch in zip(chosen.architecture["members"], chosen.architecture["member_architectures"], strict=True):
        member = finals.get(number)
        if member is None:
            raise ValueError(f"Member {number} of the ensemble has no refitted model.")
        members.append(_train_from_scratch(arch, data, X, y, epochs=member.epochs, seed=seed + number, augment=augment))
    return EnsembleModel(members, task=data.task).eval()


def _train_from_scratch(
    arch: dict, data: PreparedData, X: Rows, y: np.ndarray, *, epochs: int, seed: int, augment: str
) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = space_for_architecture(arch).build_model(arch, data.n_features, data.n_outputs)
    trainer = Trainer(
        model,
        X_train=X,
        y_train=y,
        task=data.task,
        settings=TrainSettings.from_architecture(arch),
        seed=seed,
        augmentation=augmentation_for(augment, data.image_shape),
        target=data.preprocessing["target"],  # its class weights, when the search weighs classes
    )
    with one_thread():
        trainer.train(until_epoch=max(1, int(epochs)))
    return trainer.finish().model


def _ensemble_members(result: SearchResult, size: int) -> list[TrialResult]:
    """The ``size`` best trials by validation score, one per architecture: fully trained ones first,
    then pruned ones (they are refit for their best epoch count anyway), so a short multi-fidelity
    search with a single fully trained model still gets an ensemble. Compressed variants are left
    out: a member is refit from its genome, which would undo the compression."""
    trained = (TrialStatus.COMPLETED, TrialStatus.PRUNED)
    scored = (t for t in result.trials if t.status in trained and t.score is not None)
    ranked = sorted(
        (t for t in scored if not is_compressed(t.architecture)),  # members are refit: no variants
        key=lambda t: (t.status is not TrialStatus.COMPLETED, -require_score(t), t.costs.params),
    )
    members: dict[str, TrialResult] = {}
    for trial in ranked:
        members.setdefault(trial.arch_hash, trial)
    return list(members.values())[:size]


def _out_of_fold(trial: TrialResult) -> np.ndarray | None:
    path = out_of_fold_path(trial.weights_path) if trial.weights_path else None
    return np.load(path) if path is not None and path.exists() else None


def _cross_validated_ensemble(result: SearchResult, data: PreparedData, size: int) -> tuple[list[TrialResult], dict]:
    """Under k-fold scoring, the ensemble chosen on out-of-fold outputs, and its metrics there.

    Greedy forward selection (Caruana et al., 2004, "Ensemble Selection from Libraries of Models"):
    start from the best model and add, one at a time, the candidate (among the best distinct ones)
    that lowers the out-of-fold loss of the averaged outputs most, while one does, up to ``size``
    members. Every out-of-fold output comes from a network that did not train on that row, so the
    ensemble and the best model are compared on all train+validation rows, fairly; the metrics hold
    the best model's own (``single_score``, ``single_val_loss``) beside the ensemble's.

    Returns:
        ``([], {})`` when trials were not cross-validated, lack out-of-fold outputs, or no member
        lowers the best model's loss.
    """
    best = result.best
    if best is None or best.metrics.get("cv_folds", 1) <= 1:
        return [], {}
    outputs: dict[str, tuple[TrialResult, torch.Tensor]] = {}
    for trial in [best, *_ensemble_members(result, CROSS_VALIDATED_CANDIDATES)]:
        found = _out_of_fold(trial)
        if found is not None:
            outputs.setdefault(trial.arch_hash, (trial, torch.from_numpy(found)))
    if best.arch_hash not in outputs or outputs[best.arch_hash][0] is not best:
        return [], {}
    y = np.concatenate([data.y_train, data.y_val])
    target = data.preprocessing["target"]

    def measured(keys: list[str]) -> dict:
        averaged = average_outputs(torch.stack([outputs[k][1] for k in keys]), task=data.task)
        return score_outputs(averaged.numpy(), y, task=data.task, target_std=target.get("std", 1.0), target=target)

    chosen, single = [best.arch_hash], measured([best.arch_hash])
    loss = single["val_loss"]
    while len(chosen) < size and len(chosen) < len(outputs):
        losses = {key: measured([*chosen, key])["val_loss"] for key in outputs if key not in chosen}
        key = min(losses, key=losses.__getitem__)
        if losses[key] >= loss:
            break
        chosen.append(key)
        loss = losses[key]
    if len(chosen) < 2:
        return [], {}
    metrics = measured(chosen) | {
        "cv_folds": best.metrics["cv_folds"],
        "single_score": single["score"],
        "single_val_loss": single["val_loss"],
    }
    return [outputs[key][0] for key in chosen], metrics


def _weights_of(final: FinalModel) -> str:
    if final.weights_path is None:
        raise ValueError(f"The final model of trial {final.number} has no saved weights.")
    return final.weights_path


def _ensemble_record(
    members: list[TrialResult],
    finals: list[FinalModel],
    data: PreparedData,
    *,
    number: int,
    weights_path: Path,
    metrics: dict,
) -> tuple[TrialResult, FinalModel]:
    n_in, n_out = data.n_features, data.n_outputs
    architecture = {
        "space": ENSEMBLE_SPACE,
        "task": data.task,
        "members": [m.number for m in members],
        "member_architectures": [m.architecture for m in members],
    }
    refitted = EnsembleModel(
        [
            load_final_model(m.architecture, _weights_of(f), n_inputs=n_in, n_outputs=n_out)
            for m, f in zip(members, finals, strict=True)
        ],
        task=data.task,
    ).eval()
    torch.save(refitted.state_dict(), weights_path)
    searched_weights = [m.weights_path for m in members if m.weights_path]
    if not metrics and len(searched_weights) == len(members):  # the search's own weights: an honest score
        searched = load_final_model(architecture, weights_path, n_inputs=n_in, n_outputs=n_out)
        assert isinstance(searched, EnsembleModel)  # an ENSEMBLE_SPACE architecture builds one
        for member, trial_weights in zip(searched.members, searched_weights, strict=True):
            member.load_state_dict(torch.load(trial_weights, weights_only=True))
        std = data.preprocessing["target"].get("std", 1.0)
        metrics = evaluate_model(
            searched, data.X_val, data.y_val, task=data.task, target_std=std, target=data.preprocessing["target"]
        )
    costs = ensemble_costs([m.costs for m in members], latency_ms=measure_latency_ms(refitted, n_in))
    seconds = sum(f.train_seconds for f in finals)
    record = TrialResult(
        number=number,
        status=TrialStatus.COMPLETED,
        architecture=architecture,
        arch_hash=space_for_architecture(members[0].architecture).arch_hash(architecture),
        metrics=metrics,
        costs=costs,
        train_seconds=seconds,
        message=f"Ensemble of trials {', '.join(str(m.number) for m in members)}.",
        weights_path=str(weights_path),
    )
    final = FinalModel(
        number=number,
        test_metrics=_test_metrics(refitted, data),
        weights_path=str(weights_path),
        train_seconds=seconds,
        epochs=max(f.epochs for f in finals),
    )
    return record, final


def _compressed_final(trial: TrialResult, data: PreparedData) -> tuple[torch.nn.Module, dict]:
    """A compressed variant is not refit (that would train its pruned weights back, or its parent
    anew): its final model is the compressed one, scored on the test split as it ships (int8:
    through its twin, which computes what the quantized graph does)."""
    from nas_engine.compress import int8_twin, is_int8  # compress builds on this module

    if trial.weights_path is None:
        raise ValueError(f"Compressed trial {trial.number} has no weights.")
    model = load_final_model(trial.architecture, trial.weights_path, n_inputs=data.n_features, n_outputs=data.n_outputs)
    scored = int8_twin(model) if is_int8(trial.architecture) else model
    return model, _test_metrics(scored, data)


def finalize_front(
    result: SearchResult,
    data: PreparedData,
    *,
    artifacts_dir: str | Path,
    seed: int,
    ensemble_size: int = 3,
    on_status: Callable[[StatusEvent], None] | None = None,
) -> FinalModels:
    """Refit every front trial and the ensemble's members; build and score the ensemble.

    Each trial is refitted with ``seed + number`` for its ``best_epoch`` epochs and saved as
    ``trial_{number}_final.pt``; the ensemble (the ``ensemble_size`` best distinct completed
    architectures, when there are at least two) as ``ensemble_final.pt``, numbered one above the
    last trial.

    Args:
        result: What ``run_search`` returned.
        data: The prepared splits the search used.
        artifacts_dir: Where to write the weights.
        seed: The search's seed.
        ensemble_size: Most members of the ensemble.
        on_status: Called with ``"finalizing"`` progress events.

    Returns:
        The final models, front trials first.
    """
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    by_number = {t.number: t for t in result.trials}
    members: list[TrialResult] = []
    ensemble_metrics: dict = {}
    if ensemble_size >= 2:
        members, ensemble_metrics = _cross_validated_ensemble(result, data, ensemble_size)
        members = members or _ensemble_members(result, ensemble_size)
    chosen = list({t.number: t for t in [*(by_number[n] for n in result.front), *members]}.values())
    finals: dict[int, FinalModel] = {}
    for i, trial in enumerate(chosen):
        if on_status is not None:
            message = f"Refitting trial {trial.number} on train+validation ({i + 1} of {len(chosen)})."
            on_status(StatusEvent(status="finalizing", progress=i / len(chosen), message=message))
        start = time.monotonic()
        epochs = trial.metrics.get("best_epoch", trial.metrics.get("epochs", 1))
        if is_compressed(trial.architecture):
            model, test_metrics = _compressed_final(trial, data)
            epochs = 0
        else:
            model, test_metrics = refit(
                trial.architecture, data, epochs=epochs, seed=seed + trial.number, augment=result.augment
            )
        path = artifacts_dir / f"trial_{trial.number}_final.pt"
        torch.save(model.state_dict(), path)
        finals[trial.number] = FinalModel(
            number=trial.number,
            test_metrics=test_metrics,
            weights_path=str(path),
            train_seconds=time.monotonic() - start,
            epochs=int(epochs),
        )
    ensemble = ensemble_final = None
    if len(members) >= 2:
        ensemble, ensemble_final = _ensemble_record(
            members,
            [finals[m.number] for m in members],
            data,
            number=max(by_number) + 1,
            weights_path=artifacts_dir / "ensemble_final.pt",
            metrics=ensemble_metrics,
        )
    if on_status is not None:
        on_status(StatusEvent(status="finalizing", progress=1.0, message="Final models ready."))
    return FinalModels(models=tuple(finals[t.number] for t in chosen), ensemble=ensemble, ensemble_final=ensemble_final)
