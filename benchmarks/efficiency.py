"""Search efficiency: how much CPU time each method needs to find a good model. Weight sharing
(SPOS), differentiable search (DARTS) and predictor-assisted evolution against plain aging
evolution, at the same budget, on load_digits (CNN space, 8×8 images) and breast_cancer (MLP
space); plus the rank correlations that decide whether cheap scores can stand in for training:
Kendall τ of SPOS's inherited scores and Spearman ρ of the zero-cost proxies, each against the
validation score of the same architectures trained alone.

Writes benchmarks/results/efficiency.{md,json} and benchmarks/results/rank_correlation.{md,json}.

Environment: BENCH_EFFICIENCY_BUDGET (seconds per search, default 60), BENCH_EFFICIENCY_SEEDS
(comma-separated, default "0"), BENCH_EFFICIENCY_SAMPLE (architectures per rank correlation, default 16).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits

import nas_engine
from benchmarks.report import write_table
from nas_engine.evaluator import TrainSettings, one_thread, train_model
from nas_engine.oneshot import OneShotContext
from nas_engine.oneshot.spos import build_supernet, inherited_score, spos_shortlist
from nas_engine.predictor import kendall_tau, spearman
from nas_engine.proxies import PROXIES, proxy_scores
from nas_engine.results import TrialStatus
from nas_engine.spaces import make_space
from nas_engine.spaces.training import DEFAULT_TRAIN
from tests.data_files import write_sklearn_csv

BUDGET = float(os.environ.get("BENCH_EFFICIENCY_BUDGET", "60"))
SEEDS = [int(s) for s in os.environ.get("BENCH_EFFICIENCY_SEEDS", "0").split(",")]
SAMPLE = int(os.environ.get("BENCH_EFFICIENCY_SAMPLE", "16"))
DATASETS = {"digits": load_digits, "breast_cancer": load_breast_cancer}
STRATEGIES = ["aging_evolution", "predictor_evolution", "spos", "darts"]
BASELINE = "aging_evolution"
TOLERANCE = 0.005  # the target: the baseline's final best validation score, less half a point


def _search(data, strategy: str, seed: int) -> dict:
    """One search; every completed trial's validation score with the CPU seconds spent until it was
    reported (``time.process_time``: one torch thread, so CPU seconds are the honest cost)."""
    config = nas_engine.SearchConfig(target="target", strategy=strategy, budget_seconds=BUDGET, seed=seed)
    timeline: list[tuple[float, float]] = []
    start = time.process_time()

    def on_trial(trial) -> None:
        if trial.status is TrialStatus.COMPLETED and trial.score is not None:
            timeline.append((time.process_time() - start, float(trial.score)))

    result = nas_engine.run_search(config, data, on_trial=on_trial)
    return {
        "timeline": timeline,
        "trials": len(result.trials),
        "best_val": result.best.score if result.best else float("nan"),
        "test": result.test_metrics.get("score", float("nan")),
        "cpu_seconds": time.process_time() - start,
        "one_shot_seconds": result.one_shot.get("supernet_seconds"),
    }


def _time_to(timeline: list[tuple[float, float]], target: float) -> float | None:
    return next((seconds for seconds, score in timeline if score >= target), None)


def _efficiency_rows(workdir: Path) -> list[dict]:
    rows = []
    for name, loader in DATASETS.items():
        data = nas_engine.prepare_data(write_sklearn_csv(loader, workdir / f"{name}.csv"), target="target", seed=0)
        runs = {(strategy, seed): _search(data, strategy, seed) for seed in SEEDS for strategy in STRATEGIES}
        for seed in SEEDS:
            target = runs[(BASELINE, seed)]["best_val"] - TOLERANCE
            baseline_time = _time_to(runs[(BASELINE, seed)]["timeline"], target)
            for strategy in STRATEGIES:
                run = runs[(strategy, seed)]
                reached = _time_to(run["timeline"], target)
                speedup = baseline_time / reached if reached and baseline_time else None
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "strategy": strategy,
                        "target val": f"{target:.4f}",
                        "CPU s to target": f"{reached:.1f}" if reached is not None else "not reached",
                        "speed-up vs evolution": f"{speedup:.2f}×" if speedup else "–",
                        "supernet s": f"{run['one_shot_seconds']:.1f}" if run["one_shot_seconds"] else "–",
                        "trials": run["trials"],
                        "best val": f"{run['best_val']:.4f}",
                        "test of best": f"{run['test']:.4f}",
                    }
                )
    return rows


def _stand_alone(space, arch: dict, data, seed: int) -> float:
    torch.manual_seed(seed)
    model = space.build_model(arch, data.n_features, data.n_outputs)
    outcome = train_model(
        model, data, settings=TrainSettings.from_architecture(arch), max_epochs=50, patience=5, seed=seed
    )
    return float(outcome.metrics["score"])


def _correlation_rows(workdir: Path) -> list[dict]:
    rows = []
    for name, loader in DATASETS.items():
        data = nas_engine.prepare_data(write_sklearn_csv(loader, workdir / f"{name}.csv"), target="target", seed=0)
        space = make_space("auto", n_inputs=data.n_features, image_shape=data.image_shape)
        context = OneShotContext(
            space=space,
            data=data,
            objectives=("score", "params"),
            limits={},
            deadline=time.monotonic() + BUDGET * 0.3,
            seed=0,
        )
        started = time.process_time()
        shortlist = spos_shortlist(context)
        supernet_seconds = time.process_time() - started
        supernet = build_supernet(space, data.n_features, data.n_outputs)
        supernet.load_state_dict(shortlist.state["weights"])
        rng = np.random.default_rng(1)
        archs = [{**space.sample(rng), "train": dict(DEFAULT_TRAIN)} for _ in range(SAMPLE)]
        rows_for_bn = rng.permutation(len(data.X_train))[:256]
        trained, inherited, proxies = [], [], {proxy: [] for proxy in PROXIES}
        train_seconds = proxy_seconds = 0.0
        for i, arch in enumerate(archs):
            t = time.process_time()
            trained.append(_stand_alone(space, arch, data, seed=i))
            train_seconds += time.process_time() - t
            inherited.append(inherited_score(supernet, arch, data, rows_for_bn))
            t = time.process_time()
            for proxy, value in proxy_scores(space, arch, data, seed=i).items():
                proxies[proxy].append(value)
            proxy_seconds += time.process_time() - t
        rows.append(
            {
                "dataset": name,
                "score": "SPOS inherited weights",
                "correlation": f"Kendall τ {kendall_tau(inherited, trained):+.2f}",
                "architectures": SAMPLE,
                "cost per architecture (CPU s)": f"{supernet_seconds / SAMPLE:.2f} (supernet shared)",
            }
        )
        for proxy, values in proxies.items():
            rows.append(
                {
                    "dataset": name,
                    "score": f"zero-cost {proxy}",
                    "correlation": f"Spearman ρ {spearman(values, trained):+.2f}",
                    "architectures": SAMPLE,
                    "cost per architecture (CPU s)": f"{proxy_seconds / SAMPLE / len(PROXIES):.3f}",
                }
            )
        rows.append(
            {
                "dataset": name,
                "score": "trained alone (the reference)",
                "correlation": "–",
                "architectures": SAMPLE,
                "cost per architecture (CPU s)": f"{train_seconds / SAMPLE:.2f}",
            }
        )
    return rows


def run(workdir: Path) -> dict:
    with one_thread():
        return {"efficiency": _efficiency_rows(workdir), "correlation": _correlation_rows(workdir)}


def write(results: dict) -> Path:
    write_table(
        "rank_correlation",
        results["correlation"],
        title="Cheap scores against training: rank correlations",
        notes=[
            f"{SAMPLE} architectures sampled uniformly per dataset (training settings fixed to Adam 1e-3, batch 64), "
            "each trained alone (≤ 50 epochs, patience 5) for its validation score. SPOS: the same architectures "
            f"scored with a supernet trained for {BUDGET * 0.3:.0f} s, batch-norm recalibrated on 256 training rows. "
            "Zero-cost proxies: at initialisation, on 64 training rows. 1 = the same ranking, 0 = unrelated.",
        ],
    )
    efficiency = results["efficiency"]
    by_strategy = {}
    for strategy in STRATEGIES:
        speedups = [
            float(row["speed-up vs evolution"].rstrip("×"))
            for row in efficiency
            if row["strategy"] == strategy and row["speed-up vs evolution"] != "–"
        ]
        by_strategy[strategy] = statistics.fmean(speedups) if speedups else None
    summary = ", ".join(f"{k} {v:.2f}×" if v else f"{k} –" for k, v in by_strategy.items())
    return write_table(
        "efficiency",
        efficiency,
        title="Search efficiency: CPU seconds to reach the target validation score",
        notes=[
            f"Each search: {BUDGET:.0f} s budget, one torch thread, seed(s) {', '.join(map(str, SEEDS))}, "
            "default settings (50 epochs, patience 5). The target is plain aging evolution's best validation "
            f"score at the end of its budget less {TOLERANCE}; 'CPU s to target' counts from the start of the "
            "search (the supernet's training included) to the first completed trial reaching it. Test score: "
            "the best trial's model as trained during the search, on the held-out test split.",
            f"Mean speed-up over evolution where both reached the target: {summary}.",
        ],
    )
