"""Search quality at a fixed budget: the engine's best model vs sklearn baselines, on one split.

For each bundled sklearn dataset, run a search with the default strategy, score the best trial on
the held-out test split, and fit baselines on the very same encoded train split. Writes
benchmarks/results/search_quality.{md,json}.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score

import nas_engine

RESULTS = Path(__file__).parent / "results"
BUDGET_SECONDS = float(os.environ.get("BENCH_BUDGET_SECONDS", "20"))
DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "diabetes": load_diabetes}


def _baselines(data: nas_engine.PreparedData) -> dict[str, float]:
    x_train = np.concatenate([data.X_train, data.X_val])
    y_train = np.concatenate([data.y_train, data.y_val])
    if data.task == "classification":
        models = {"logistic": LogisticRegression(max_iter=2000), "gradient_boosting": GradientBoostingClassifier()}
        score = accuracy_score
    else:
        models = {"ridge": Ridge(), "gradient_boosting": GradientBoostingRegressor()}
        score = r2_score
    return {
        name: float(score(data.y_test, model.fit(x_train, y_train).predict(data.X_test)))
        for name, model in models.items()
    }


def run(workdir: Path) -> list[dict]:
    rows = []
    for name, loader in DATASETS.items():
        csv_path = workdir / f"{name}.csv"
        loader(as_frame=True).frame.to_csv(csv_path, index=False)
        data = nas_engine.prepare_data(csv_path, target="target", seed=0)
        config = nas_engine.SearchConfig(target="target", budget_seconds=BUDGET_SECONDS, seed=0)
        started = time.monotonic()
        result = nas_engine.run_search(config, data)
        elapsed = time.monotonic() - started
        metric = "accuracy" if data.task == "classification" else "r2"
        rows.append(
            {
                "dataset": name,
                "task": data.task,
                "metric": metric,
                "budget_seconds": BUDGET_SECONDS,
                "elapsed_seconds": round(elapsed, 2),
                "trials": len(result.trials),
                "front_size": len(result.front),
                "nas_test": round(result.test_metrics.get(metric, float("nan")), 4),
                "best_params": result.best.costs.params if result.best else None,
                **{f"{k}_test": round(v, 4) for k, v in _baselines(data).items()},
            }
        )
    return rows


def write(rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search_quality.json").write_text(json.dumps(rows, indent=2))
    columns = sorted({key for row in rows for key in row}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    lines = [
        f"# Search quality at {BUDGET_SECONDS:g} s (test split, seed 0)",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    path = RESULTS / "search_quality.md"
    path.write_text("\n".join(lines) + "\n")
    return path
