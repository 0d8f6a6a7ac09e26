"""Search quality: is the exported model better than what I'd fit by hand, at 1, 3 and 10 minutes?

For every dataset bundled with scikit-learn (classification: iris, wine, breast_cancer, digits;
regression: diabetes), each seed and each budget:

- **nas**: `nas_engine.run_search` (tpe + hyperband) for the budget, then `finalize_front`; the score
  is the default export's (`default_choice`: the ensemble when it beats the best single model on
  validation, else that model; what the CLI exports and the web page offers by default), refit on
  train+validation and scored once on the test split.
- **optuna_mlp**: scikit-learn's MLP tuned by Optuna's TPE sampler for the same wall-clock budget
  (layers, width, activation, L2, learning rate; fit on train, scored on validation), the best
  refit on train+validation and scored on test.
- **baselines** at default settings, fit on the same train+validation rows: linear
  (LogisticRegression / Ridge), gradient boosting, SVC / SVR, MLPClassifier / MLPRegressor.

The seed picks the split (`prepare_data(seed=...)`), so every method of one seed sees the same rows.
nas and optuna_mlp run side by side, each in its own process on one thread (the machine has two
cores), so each gets one core for the same wall-clock time. `load_linnerud` is left out: 20 rows
with three targets leave a 4-row test split.

Writes benchmarks/results/search_quality.{md,json,csv} (the table of mean ± std, and every run) and
search_quality.png. Budgets, seeds and datasets come from BENCH_SQ_BUDGETS (seconds, comma
separated), BENCH_SQ_SEEDS and BENCH_SQ_DATASETS; BENCH_QUICK=1 makes them 20 s, seed 0. With
BENCH_SQ_RESUME=FILE every finished run is appended to FILE (JSON lines) and runs already there are
not run again.

    python -m benchmarks.search_quality           # 1/3/10 min × 3 seeds × 5 datasets: about 3.5 h
    BENCH_QUICK=1 python -m benchmarks.search_quality   # about 2 min
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import optuna_mlp
from benchmarks.report import QUICK, RESULTS, run_and_print, write_table

BUDGETS = [float(b) for b in os.environ.get("BENCH_SQ_BUDGETS", "20" if QUICK else "60,180,600").split(",")]
SEEDS = [int(s) for s in os.environ.get("BENCH_SQ_SEEDS", "0" if QUICK else "0,1,2").split(",")]
LOADERS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
    "diabetes": "load_diabetes",
}
DATASETS = os.environ.get("BENCH_SQ_DATASETS", ",".join(LOADERS)).split(",")
STRATEGY = os.environ.get("BENCH_STRATEGY", "tpe")
FIDELITY = os.environ.get("BENCH_FIDELITY", "hyperband")
SEARCHED = ("nas", "optuna_mlp")
BASELINES = ("linear", "gradient_boosting", "svm", "sklearn_mlp")
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _csv(dataset: str, workdir: Path) -> Path:
    import sklearn.datasets

    from tests.data_files import write_sklearn_csv

    path = workdir / f"{dataset}.csv"
    if not path.exists():
        write_sklearn_csv(getattr(sklearn.datasets, LOADERS[dataset]), path)
    return path


def _data(dataset: str, seed: int, workdir: Path):
    import nas_engine

    return nas_engine.prepare_data(_csv(dataset, workdir), target="target", seed=seed)


def _metric(data) -> tuple[str, object]:
    from sklearn.metrics import accuracy_score, r2_score

    return ("accuracy", accuracy_score) if data.task == "classification" else ("r2", r2_score)


def _train_val(data) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([data.X_train, data.X_val]), np.concatenate([data.y_train, data.y_val])


# --- one searched run, in a process of its own -----------------------------------------------------


def nas_run(dataset: str, seed: int, budget: float, workdir: Path) -> dict:
    """The engine's search and final refit; the default export's test score."""
    import nas_engine

    data = _data(dataset, seed, workdir)
    metric, _ = _metric(data)
    started = time.monotonic()
    config = nas_engine.SearchConfig(
        target="target", budget_seconds=budget, seed=seed, strategy=STRATEGY, fidelity=FIDELITY
    )
    artifacts = workdir / f"nas-{dataset}-{seed}-{budget:g}"
    result = nas_engine.run_search(config, data, artifacts_dir=artifacts)
    finals = nas_engine.finalize_front(result, data, artifacts_dir=artifacts, seed=seed)
    chosen = nas_engine.default_choice(result.best, finals.ensemble)
    final = finals.get(chosen.number) if chosen is not None else None
    if chosen is None or final is None:
        raise RuntimeError(f"nas exported nothing on {dataset} (seed {seed}, {budget:g} s)")
    return {
        "score": final.test_metrics[metric],
        "seconds": time.monotonic() - started,
        "trials": len(result.trials),
        "params": chosen.costs.params,
        "space": chosen.architecture["space"],
    }


def optuna_run(dataset: str, seed: int, budget: float, workdir: Path) -> dict:
    """scikit-learn's MLP tuned by Optuna TPE for ``budget`` seconds, then refit on train+validation."""
    import optuna
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    data = _data(dataset, seed, workdir)
    metric, score = _metric(data)

    def objective(trial: optuna.Trial) -> float:
        model = optuna_mlp.model(data.task, optuna_mlp.suggest(trial), seed=seed, max_iter=300)
        model = model.fit(data.X_train, data.y_train)
        return float(score(data.y_val, model.predict(data.X_val)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=budget)
    best = study.best_params
    x, y = _train_val(data)
    model = optuna_mlp.model(data.task, best, seed=seed, max_iter=300).fit(x, y)
    return {
        "score": float(score(data.y_test, model.predict(data.X_test))),
        "seconds": time.monotonic() - started,
        "trials": len(study.trials),
        "params": int(sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_)),
        "space": f"{best['layers']}×{best['width']} {best['activation']}",
    }


def baseline_runs(dataset: str, seed: int, workdir: Path) -> dict[str, dict]:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.svm import SVC, SVR

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    data = _data(dataset, seed, workdir)
    _, score = _metric(data)
    if data.task == "classification":
        models = {
            "linear": LogisticRegression(max_iter=5000),
            "gradient_boosting": GradientBoostingClassifier(random_state=seed),
            "svm": SVC(),
            "sklearn_mlp": MLPClassifier(random_state=seed),
        }
    else:
        models = {
            "linear": Ridge(),
            "gradient_boosting": GradientBoostingRegressor(random_state=seed),
            "svm": SVR(),
            "sklearn_mlp": MLPRegressor(random_state=seed),
        }
    x, y = _train_val(data)
    runs = {}
    for name, model in models.items():
        started = time.monotonic()
        model.fit(x, y)
        test_score = float(score(data.y_test, model.predict(data.X_test)))
        runs[name] = {"score": test_score, "seconds": time.monotonic() - started}
    return runs


# --- the study --------------------------------------------------------------------------------------


def _spawn(method: str, dataset: str, seed: int, budget: float, workdir: Path) -> tuple[subprocess.Popen, Path]:
    out = workdir / f"{method}-{dataset}-{seed}-{budget:g}.json"
    command = [sys.executable, "-m", "benchmarks.search_quality", "one", method, dataset, str(seed), str(budget)]
    env = {**os.environ, **ONE_THREAD, "BENCH_SQ_WORKDIR": str(workdir), "BENCH_SQ_OUT": str(out)}
    return subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, env=env), out


def _done_runs(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(workdir: Path) -> list[dict]:
    """Every (budget, seed, dataset): nas and optuna_mlp side by side, then the baselines. One row per
    method and run."""
    resume = Path(os.environ["BENCH_SQ_RESUME"]) if os.environ.get("BENCH_SQ_RESUME") else None
    rows = _done_runs(resume)
    done = {(r["dataset"], r["seed"], r["budget_seconds"], r["method"]) for r in rows}
    for budget in BUDGETS:
        for seed in SEEDS:
            for dataset in DATASETS:
                if all((dataset, seed, budget, m) in done for m in SEARCHED):
                    continue
                new = []
                _csv(dataset, workdir)  # before the two processes that read it
                spawned = [(m, *_spawn(m, dataset, seed, budget, workdir)) for m in SEARCHED]
                for method, process, out in spawned:
                    if process.wait() != 0:
                        raise RuntimeError(f"{method} on {dataset} (seed {seed}, {budget:g} s) failed")
                    new.append({"method": method, **json.loads(out.read_text())})
                if not any((r["dataset"], r["seed"]) == (dataset, seed) and r["method"] in BASELINES for r in rows):
                    new += [{"method": name, **run} for name, run in baseline_runs(dataset, seed, workdir).items()]
                for row in new:
                    searched = row["method"] in SEARCHED
                    row.update(dataset=dataset, seed=seed, budget_seconds=budget if searched else None)
                    rows.append(row)
                    if resume is not None:
                        with resume.open("a") as handle:
                            handle.write(json.dumps(row) + "\n")
                scores = {r["method"]: round(r["score"], 4) for r in new}
                sys.stdout.write(f"search_quality: {dataset} seed {seed} {budget:g} s: {scores}\n")
                sys.stdout.flush()
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _budget_label(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def summary(rows: list[dict]) -> list[dict]:
    """One row per (dataset, budget): each method's test score as mean ± std over the seeds."""
    table = []
    for dataset in DATASETS:
        base = {m: [r["score"] for r in rows if r["dataset"] == dataset and r["method"] == m] for m in BASELINES}
        metric = "accuracy" if dataset != "diabetes" else "r2"
        for budget in BUDGETS:
            runs = {
                m: [r for r in rows if r["dataset"] == dataset and r["method"] == m and r["budget_seconds"] == budget]
                for m in SEARCHED
            }
            if not runs["nas"]:
                continue
            cells: dict[str, object] = {"dataset": dataset, "metric": metric, "budget": _budget_label(budget)}
            means = {}
            for method in (*SEARCHED, *BASELINES):
                scores = [r["score"] for r in runs[method]] if method in SEARCHED else base[method]
                mean, std = _mean_std(scores)
                means[method] = mean
                cells[method] = f"{mean:.4f} ± {std:.4f}"
            cells["nas_trials"] = round(statistics.fmean(r["trials"] for r in runs["nas"]))
            cells["optuna_trials"] = round(statistics.fmean(r["trials"] for r in runs["optuna_mlp"]))
            cells["nas_seconds"] = round(statistics.fmean(r["seconds"] for r in runs["nas"]), 1)
            cells["optuna_seconds"] = round(statistics.fmean(r["seconds"] for r in runs["optuna_mlp"]), 1)
            cells["nas_params"] = round(statistics.fmean(r["params"] for r in runs["nas"]))
            best_other = max((m for m in means if m != "nas"), key=means.get)
            cells["nas_minus_best_other"] = f"{means['nas'] - means[best_other]:+.4f} ({best_other})"
            cells["seeds"] = len(runs["nas"])
            table.append(cells)
    return table


def _is(row: dict, dataset: str, method: str, budget: float | None) -> bool:
    return (row["dataset"], row["method"], row["budget_seconds"]) == (dataset, method, budget)


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(DATASETS), figsize=(4 * len(DATASETS), 3.6), squeeze=False)
    colours = {"linear": "tab:grey", "gradient_boosting": "tab:green", "svm": "tab:purple", "sklearn_mlp": "tab:brown"}
    for ax, dataset in zip(axes[0], DATASETS, strict=True):
        for method, colour in (("nas", "tab:blue"), ("optuna_mlp", "tab:orange")):
            scores_at = {b: [r["score"] for r in rows if _is(r, dataset, method, b)] for b in BUDGETS}
            points = [(b / 60, *_mean_std(scores)) for b, scores in scores_at.items() if scores]
            if points:
                x, mean, std = zip(*points, strict=True)
                ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, color=colour, label=method)
        for method, colour in colours.items():
            scores = [r["score"] for r in rows if r["dataset"] == dataset and r["method"] == method]
            if scores:
                ax.axhline(statistics.fmean(scores), linestyle="--", linewidth=1, color=colour, label=method)
        ax.set_title(dataset)
        ax.set_xlabel("budget")
        if len(BUDGETS) > 1:
            ax.set_xscale("log")
        ax.set_xticks([b / 60 for b in BUDGETS], [_budget_label(b) for b in BUDGETS])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test score (accuracy; r2 for diabetes)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    columns = ["dataset", "method", "budget_seconds", "seed", "score", "seconds", "trials", "params", "space"]
    with (RESULTS / "search_quality.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, RESULTS / "search_quality.png")
    seeds = ", ".join(str(s) for s in SEEDS)
    path = write_table(
        "search_quality",
        summary(rows),
        title=f"Search quality: test score, mean ± std over seeds {seeds}, vs scikit-learn",
        notes=[
            f"nas: {STRATEGY} + {FIDELITY} for the budget, then the front refit on train+validation; the score is the",
            "default export's (what the CLI exports and the web page offers first). optuna_mlp: scikit-learn's MLP",
            "tuned by Optuna TPE for the same wall-clock budget, the best refit on train+validation.",
            "nas and optuna_mlp ran side by side, one process and one thread each, on a 2-core machine.",
            "The baselines (linear, gradient boosting, SVC/SVR, MLP, default settings) have no budget:",
            "the same figure stands in every budget's row.",
            "Each seed is its own train/validation/test split (60/20/20), the same for every method.",
            f"Budgets run: {', '.join(_budget_label(b) for b in BUDGETS)} (the full study: 1, 3 and 10 min).",
            "nas_seconds / optuna_seconds: wall time from the data read to the refit model scored (a search stops",
            "at its budget, then refits its front: nas runs past the budget by that refit, the CNNs of digits most).",
            "nas_minus_best_other: nas's mean minus the best other method's (named). Every run: search_quality.csv;",
            "plot: search_quality.png.",
        ],
    )
    (RESULTS / "search_quality.json").write_text(json.dumps(rows, indent=2))
    return path


def main(argv: list[str]) -> int:
    if argv[:1] == ["one"]:
        method, dataset, seed, budget = argv[1], argv[2], int(argv[3]), float(argv[4])
        workdir = Path(os.environ["BENCH_SQ_WORKDIR"])
        measured = (nas_run if method == "nas" else optuna_run)(dataset, seed, budget, workdir)
        Path(os.environ["BENCH_SQ_OUT"]).write_text(json.dumps(measured))
        return 0
    return run_and_print(run, write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
