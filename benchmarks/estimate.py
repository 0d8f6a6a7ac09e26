"""How good is the pre-launch trial estimate? Runs short real searches (``run_search``) on sklearn's
bundled datasets and compares the estimated number of trials with the number actually trained.
Writes benchmarks/results/estimate.{md,json}.

``python -m benchmarks.estimate --calibrate`` instead times training epochs of networks sampled
from each space on this machine and prints the ``Throughput`` constants to paste into
nas_engine/estimate.py (fitted by non-negative least squares on the relative error).

Environment: BENCH_ESTIMATE_BUDGETS (seconds, comma-separated, default "10,30").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

import nas_engine
from benchmarks.report import run_and_print, write_table
from nas_engine.estimate import THROUGHPUT, DataShape
from nas_engine.profiling import profile_csv
from nas_engine.results import TrialStatus
from tests.data_files import write_sklearn_csv

BUDGETS = [float(b) for b in os.environ.get("BENCH_ESTIMATE_BUDGETS", "10,30").split(",")]
DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes, "digits": load_digits}
# (fidelity, extra settings): full training, multi-fidelity, and a parameter limit
SETTINGS = [("none", {}), ("hyperband", {}), ("none", {"max_params": 2000})]


def _trained(result: nas_engine.SearchResult) -> list[nas_engine.TrialResult]:
    """Trials that passed the analytic limits, as ``max_trials`` and the estimate count them."""
    return [t for t in result.trials if not (t.status is TrialStatus.REJECTED and not t.metrics)]


def run(workdir: Path) -> list[dict]:
    rows = []
    for name, loader in DATASETS.items():
        csv_path = write_sklearn_csv(loader, workdir / f"{name}.csv")
        data = nas_engine.prepare_data(csv_path, target="target", seed=0)
        shape = DataShape.from_profile(profile_csv(csv_path).to_dict(), target="target", task=data.task)
        for budget in BUDGETS:
            for fidelity, extra in SETTINGS:
                if extra and data.image_shape is not None:
                    continue  # no CNN fits 2,000 parameters on digits
                config = nas_engine.SearchConfig(
                    target="target", task=data.task, budget_seconds=budget, seed=0, fidelity=fidelity, **extra
                )
                started = time.perf_counter()
                estimate = nas_engine.estimate_search(config, shape)
                estimate_ms = (time.perf_counter() - started) * 1000
                result = nas_engine.run_search(config, data)
                trained = _trained(result)
                epochs = [t.metrics["epochs"] for t in trained if t.status is TrialStatus.COMPLETED and t.metrics]
                rows.append(
                    {
                        "dataset": name,
                        "space": "cnn" if data.image_shape is not None else "mlp",
                        "fidelity": fidelity,
                        "limit": ", ".join(f"{k}={v:,}" for k, v in extra.items()) or "-",
                        "budget_s": budget,
                        "estimated": estimate.trials,
                        "actual": len(trained),
                        "ratio": round(estimate.trials / max(1, len(trained)), 2),
                        "est_s_per_trial": estimate.seconds_per_trial,
                        "actual_s_per_trial": round(result.elapsed_seconds / max(1, len(trained)), 3),
                        "mean_epochs": round(statistics.fmean(epochs), 1) if epochs else "",
                        "estimate_ms": round(estimate_ms, 1),
                        "load": round(os.getloadavg()[0], 1),  # 1-minute load average after the search
                    }
                )
                sys.stderr.write(f"{rows[-1]}\n")
    return rows


def write(rows: list[dict]) -> Path:
    ratios = [row["ratio"] for row in rows]
    log_errors = [abs(math.log(r)) for r in ratios if r > 0]
    return write_table(
        "estimate",
        rows,
        title="Trial estimate vs real searches",
        notes=[
            "`estimated`: trials the form's estimate (nas_engine.estimate_search, from the stored profile) "
            "predicted; `actual`: trials run_search trained in the same budget (analytic rejections not "
            "counted); ratio = estimated / actual. Seed 0, default strategy and epochs, one torch thread.",
            f"Geometric mean of the ratio: {math.exp(statistics.fmean(map(math.log, ratios))):.2f}; "
            f"within a factor of 2: {sum(e <= math.log(2) for e in log_errors)} of {len(ratios)} runs. "
            f"Machine: {os.cpu_count()} CPUs; `load` is the 1-minute load average after each search: other work "
            "on the machine slows the real searches (ratio above 1), not the estimate.",
        ],
    )


# --- calibration -----------------------------------------------------------------------------


def _time_epochs(space, archs, *, n_inputs, n_outputs, rows, rng) -> list[dict]:
    """Seconds per epoch (epochs 2-3, after a warm-up epoch) of each architecture."""
    from nas_engine.evaluator import Trainer, TrainSettings

    validation_rows = rows // 3
    X = rng.standard_normal((rows, n_inputs)).astype(np.float32)
    y = rng.integers(0, n_outputs, rows)
    X_val = rng.standard_normal((validation_rows, n_inputs)).astype(np.float32)
    y_val = rng.integers(0, n_outputs, validation_rows)
    measured = []
    for arch in archs:
        model = space.build_model(arch, n_inputs, n_outputs)
        settings = TrainSettings.from_architecture(arch)
        trainer = Trainer(model, X_train=X, y_train=y, task="classification", settings=settings, seed=0,
                          validation=(X_val, y_val))  # fmt: skip
        started = time.perf_counter()
        trainer.train(until_epoch=1)
        warm = time.perf_counter()
        trainer.train(until_epoch=3)
        done = time.perf_counter()
        depth = len(arch.get("layers", ())) + sum(stage.get("blocks", 1) for stage in arch.get("stages", ()))
        measured.append(
            {
                "rows": rows,
                "validation_rows": validation_rows,
                "batch_size": settings.batch_size,
                "depth": depth,
                "flops": space.costs(arch, n_inputs, n_outputs).flops,
                "epoch": (done - warm) / 2,
                "first_extra": (warm - started) - (done - warm) / 2,
            }
        )
    return measured


def calibrate() -> dict[str, dict[str, float]]:
    from scipy.optimize import nnls

    from nas_engine.evaluator import one_thread
    from nas_engine.spaces import CNNSpace, MLPSpace

    rng = np.random.default_rng(0)
    samples: dict[str, list[dict]] = {"mlp": [], "cnn": []}
    with one_thread():
        mlp = MLPSpace()
        for n_inputs, rows in [(10, 300), (30, 340), (50, 3000), (200, 3000), (20, 20000)]:
            archs = [mlp.sample(rng) for _ in range(12)]
            samples["mlp"] += _time_epochs(mlp, archs, n_inputs=n_inputs, n_outputs=3, rows=rows, rng=rng)
        for shape, rows in [((1, 8, 8), 500), ((1, 8, 8), 1500), ((1, 16, 16), 800), ((3, 12, 12), 600)]:
            cnn = CNNSpace(image_shape=shape)
            archs = [cnn.sample(rng) for _ in range(15)]
            samples["cnn"] += _time_epochs(cnn, archs, n_inputs=int(np.prod(shape)), n_outputs=10, rows=rows, rng=rng)
    fitted = {}
    for space, measured in samples.items():
        features = np.array(
            [
                [
                    math.ceil(m["rows"] / m["batch_size"]),
                    math.ceil(m["rows"] / m["batch_size"]) * m["depth"],
                    (3 * m["rows"] + m["validation_rows"]) * m["flops"],
                    1.0,
                ]
                for m in measured
            ]
        )
        seconds = np.array([m["epoch"] for m in measured])
        weights, _ = nnls(features / seconds[:, None], np.ones(len(seconds)))  # relative error
        ratios = features @ weights / seconds
        fitted[space] = {
            "step": float(weights[0]),
            "step_per_layer": float(weights[1]),
            "per_mac": float(weights[2]),
            "epoch": float(weights[3]),
            "first_epoch_extra": statistics.median(m["first_extra"] for m in measured),
            "fit_p10": float(np.percentile(ratios, 10)),
            "fit_p90": float(np.percentile(ratios, 90)),
            "in_use": dataclasses.asdict(THROUGHPUT[space]),
        }
    return fitted


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimate", description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="time epochs and print Throughput constants")
    args = parser.parse_args()
    if args.calibrate:
        sys.stdout.write(json.dumps(calibrate(), indent=2) + "\n")
        return 0
    return run_and_print(run, write)


if __name__ == "__main__":
    sys.exit(main())
