"""Compression inside the search: the front before and after the pruned and int8 variants, on
load_digits (CNN space) and breast_cancer (MLP space), and the size reduction compression buys at
no more than one point of accuracy lost.

Each dataset: one search (``compress=True``, objectives score and size_bytes), then every front
model is scored on the test split (the engine's ``finalize_front``: plain trials refit on
train+validation, variants kept as compressed). "Before" is the front of the plain trials,
"after" the front of all of them. Writes benchmarks/results/compression.{md,json}.

Environment: BENCH_COMPRESSION_BUDGET (seconds per search, default 60).
"""

from __future__ import annotations

import os
from pathlib import Path

from sklearn.datasets import load_breast_cancer, load_digits

import nas_engine
from benchmarks.report import write_table
from nas_engine.pareto import pareto_front_nd
from nas_engine.results import TrialStatus, objective_vector
from tests.data_files import write_sklearn_csv

BUDGET = float(os.environ.get("BENCH_COMPRESSION_BUDGET", "60"))
DATASETS = {"digits": load_digits, "breast_cancer": load_breast_cancer}
OBJECTIVES = ("score", "size_bytes")
MAX_LOSS = 0.01  # one point of accuracy


def _front(trials):
    vectors = [objective_vector(t, OBJECTIVES) for t in trials]
    return [trials[i] for i in pareto_front_nd(vectors)]


def _describe(trial) -> str:
    compression = trial.architecture.get("compression")
    if not compression:
        return f"trial {trial.number}"
    ratio = f" {compression['ratio']:.0%}" if compression.get("ratio") else ""
    return f"trial {trial.number} ({compression['kind']}{ratio} of {compression['parent']})"


def _dataset_rows(name: str, loader, workdir: Path) -> list[dict]:
    data = nas_engine.prepare_data(write_sklearn_csv(loader, workdir / f"{name}.csv"), target="target", seed=0)
    config = nas_engine.SearchConfig(
        target="target", strategy="aging_evolution", budget_seconds=BUDGET, objectives=OBJECTIVES, compress=True
    )
    artifacts = workdir / name
    result = nas_engine.run_search(config, data, artifacts_dir=artifacts)
    completed = [t for t in result.trials if t.status is TrialStatus.COMPLETED]
    plain = [t for t in completed if "compression" not in t.architecture]
    before, after = _front(plain), _front(completed)
    finals = nas_engine.finalize_front(result, data, artifacts_dir=artifacts, seed=config.seed, ensemble_size=0)
    test = {final.number: final.test_metrics.get("score") for final in finals.models}
    # Test scores of the plain front too (result.front is the front after compression).
    for trial in before:
        if trial.number not in test:
            _, metrics = nas_engine.refit(trial.architecture, data, epochs=trial.metrics.get("best_epoch", 1), seed=0)
            test[trial.number] = metrics["score"]
    rows = []
    for label, front in (("before", before), ("after", after)):
        for trial in sorted(front, key=lambda t: t.costs.size_bytes):
            rows.append(
                {
                    "dataset": name,
                    "front": label,
                    "model": _describe(trial),
                    "size (bytes)": f"{trial.costs.size_bytes:,}",
                    "memory (bytes)": f"{trial.costs.memory_bytes:,}" if trial.costs.memory_bytes else "–",
                    "latency (ms)": f"{trial.costs.latency_ms:.3f}" if trial.costs.latency_ms is not None else "–",
                    "val acc": f"{trial.score:.4f}",
                    "test acc": f"{test[trial.number]:.4f}" if test.get(trial.number) is not None else "–",
                }
            )
    rows.append(_reduction_row(name, plain, completed))
    return rows


def _reduction_row(name: str, plain, completed) -> dict:
    """The largest size reduction of a variant over its parent at ≤ MAX_LOSS validation accuracy."""
    by_number = {t.number: t for t in plain}
    best = None
    for variant in completed:
        compression = variant.architecture.get("compression")
        parent = by_number.get(compression["parent"]) if compression else None
        if parent is None or variant.score is None or parent.score is None:
            continue
        if variant.score >= parent.score - MAX_LOSS:
            reduction = parent.costs.size_bytes / max(1, variant.costs.size_bytes)
            if best is None or reduction > best[0]:
                best = (reduction, variant, parent)
    if best is None:
        return {"dataset": name, "front": "best reduction", "model": "no variant within one point"}
    reduction, variant, parent = best
    return {
        "dataset": name,
        "front": "best reduction ≤ 1 pt",
        "model": f"{_describe(variant)}: {reduction:.1f}× smaller",
        "size (bytes)": f"{parent.costs.size_bytes:,} → {variant.costs.size_bytes:,}",
        "val acc": f"{parent.score:.4f} → {variant.score:.4f}",
    }


def run(workdir: Path) -> list[dict]:
    return [row for name, loader in DATASETS.items() for row in _dataset_rows(name, loader, workdir)]


def write(rows: list[dict]) -> Path:
    return write_table(
        "compression",
        rows,
        title="Compression: the score/size front before and after pruned and int8 variants",
        notes=[
            f"One aging-evolution search per dataset ({BUDGET:.0f} s, seed 0, objectives score and size), then "
            "pruned (50 %, 75 %, 3 epochs of fine-tuning) and int8 (ONNX Runtime dynamic) variants of the 3 best "
            "front models. Size: float32 weights (4 bytes a parameter; pruned: nonzero ones) or the int8 graph's "
            "stored tensors. Latency: torch for float and pruned models, ONNX Runtime for int8 (batch 1, one "
            "thread). Test accuracy: plain models refit on train+validation, variants as compressed.",
        ],
    )
