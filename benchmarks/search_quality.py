"""Search quality at a fixed budget: the engine's best model vs sklearn baselines, on one split.

For each bundled sklearn dataset, run a search with the default strategy, score the best trial on
the held-out test split, and fit baselines on the very same encoded train split. Writes
benchmarks/results/search_quality.{md,json}.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC, SVR

import nas_engine
from benchmarks.report import write_table
from tests.data_files import write_sklearn_csv

BUDGET_SECONDS = float(os.environ.get("BENCH_BUDGET_SECONDS", "60"))
DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits, "diabetes": load_diabetes}


def _baselines(data: nas_engine.PreparedData) -> dict[str, float]:
    x_train = np.concatenate([data.X_train, data.X_val])
    y_train = np.concatenate([data.y_train, data.y_val])
    if data.task == "classification":
        models = {
            "linear": LogisticRegression(max_iter=5000),
            "gradient_boosting": GradientBoostingClassifier(random_state=0),
            "svm": SVC(),
            "sklearn_mlp": MLPClassifier(max_iter=2000, random_state=0),
        }
        score = accuracy_score
    else:
        models = {
            "linear": Ridge(),
            "gradient_boosting": GradientBoostingRegressor(random_state=0),
            "svm": SVR(),
            "sklearn_mlp": MLPRegressor(max_iter=2000, random_state=0),
        }
        score = r2_score
    return {
        name: float(score(data.y_test, model.fit(x_train, y_train).predict(data.X_test)))
        for name, model in models.items()
    }


STRATEGY = os.environ.get("BENCH_STRATEGY", "tpe")
FIDELITY = os.environ.get("BENCH_FIDELITY", "hyperband")


def run(workdir: Path) -> list[dict]:
    rows = []
    for name, loader in DATASETS.items():
        csv_path = write_sklearn_csv(loader, workdir / f"{name}.csv")
        data = nas_engine.prepare_data(csv_path, target="target", seed=0)
        config = nas_engine.SearchConfig(
            target="target", budget_seconds=BUDGET_SECONDS, seed=0, strategy=STRATEGY, fidelity=FIDELITY
        )
        started = time.monotonic()
        result = nas_engine.run_search(config, data, artifacts_dir=workdir / name)
        finals = nas_engine.finalize_front(result, data, artifacts_dir=workdir / name, seed=0)
        elapsed = time.monotonic() - started
        metric = "accuracy" if data.task == "classification" else "r2"
        best_final = finals.get(result.best.number)
        recommended = finals.get(result.recommended.number)
        ensemble = finals.ensemble_final.test_metrics[metric] if finals.ensemble_final else float("nan")
        baselines = _baselines(data)
        rows.append(
            {
                "dataset": name,
                "metric": metric,
                "space": result.best.architecture["space"],
                "trials": len(result.trials),
                "seconds": round(elapsed, 1),
                "nas_recommended": round(recommended.test_metrics[metric], 4),
                "recommended_params": result.recommended.costs.params,
                "nas_best": round(best_final.test_metrics[metric], 4),
                "nas_ensemble": round(ensemble, 4),
                **{k: round(v, 4) for k, v in baselines.items()},
                "recommended_minus_best_baseline": round(recommended.test_metrics[metric] - max(baselines.values()), 4),
            }
        )
    return rows


def write(rows: list[dict]) -> Path:
    return write_table(
        "search_quality",
        rows,
        title=f"Search quality: {STRATEGY} + {FIDELITY}, {BUDGET_SECONDS:g} s per dataset (test split, seed 0)",
        notes=[
            "All NAS models are refit on train+validation and scored once on the test split:",
            "nas_recommended is what the CLI exports and the web page chooses by default (the cheapest front",
            "model within one standard error of the best validation score); nas_best the highest validation",
            "score; nas_ensemble the top-3 ensemble. Baselines are fit on the same train+validation rows.",
        ],
    )
