"""Refit or not, measured on the tabular suite: one search per table at the CLI's defaults, and its
default export scored on the suite's held-out 20 % three ways, all from the same search and the
same choice (so the three are paired; nothing but the final training differs):

- **none**: the model as the search trained it (on the training split; under k-fold scoring, the
  first fold's network; an ensemble of its members' searched weights);
- **train+validation**: refit from scratch on train+validation for the epochs the search chose
  (what the engine's test score is taken from);
- **all**: trained again on every row the search was given, the test split included (the
  default, ``--refit all``).

Run: ``python -m benchmarks.tabular_refit``. Knobs: BENCH_TR_HALF (dev, confirm or all; default
all), BENCH_TR_DATASETS (comma list), BENCH_TR_BUDGET (seconds, default 120), BENCH_TR_RESUME=FILE
(each finished table is appended there and skipped on the next run). Writes
benchmarks/results/tabular_refit.{md,json}. A compressed choice is never refit and is left out.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks import tabular_suite as suite
from benchmarks.report import Resume, run_and_print, write_table

BUDGET = float(os.environ.get("BENCH_TR_BUDGET", "120"))
METHODS = ("none", "train+validation", "all")


def _selected() -> list[suite.Dataset]:
    names = os.environ.get("BENCH_TR_DATASETS")
    if names:
        return [suite.BY_NAME[name.strip()] for name in names.split(",") if name.strip()]
    half = os.environ.get("BENCH_TR_HALF", "all")
    return [d for d in suite.DATASETS if half in ("all", d.half)]


def _searched_model(chosen, result, data):
    """The chosen model with the weights the search trained (no refit)."""
    from nas_engine.final_model import EnsembleModel, load_final_model
    from nas_engine.results import is_ensemble

    n_in, n_out = data.n_features, data.n_outputs
    if not is_ensemble(chosen.architecture):
        return load_final_model(chosen.architecture, chosen.weights_path, n_inputs=n_in, n_outputs=n_out)
    by_number = {trial.number: trial for trial in result.trials}
    members = [
        load_final_model(by_number[n].architecture, by_number[n].weights_path, n_inputs=n_in, n_outputs=n_out)
        for n in chosen.architecture["members"]
    ]
    return EnsembleModel(members, task=data.task).eval()


def _held_out_score(dataset: suite.Dataset, split_: suite.Split, model, preprocessing: dict) -> float:
    from nas_engine.evaluator import predict_raw
    from nas_engine.runtime import decode_outputs, encode_rows, read_csv_rows

    matrix = encode_rows(read_csv_rows(split_.test_inputs), preprocessing)
    predicted = decode_outputs(predict_raw(model, matrix), preprocessing)
    return suite._score(dataset, suite._truth(dataset, split_), predicted)


def one_table(dataset: suite.Dataset, workdir: Path) -> dict:
    """One search on the table's 80 %, its default export scored three ways on the 20 %."""
    import torch

    from nas_engine import SearchConfig, finalize_front, run_search
    from nas_engine.final_model import load_final_model
    from nas_engine.finalize import refit_on_all_rows
    from nas_engine.prepare import prepare_data
    from nas_engine.results import is_compressed, is_ensemble
    from nas_engine.selection import default_choice

    torch.set_num_threads(1)
    split_ = suite.split(dataset)
    config = SearchConfig(target=dataset.target, task=dataset.task, budget_seconds=BUDGET)
    started = time.monotonic()
    data = prepare_data(split_.train, target=config.target, task=config.task, seed=config.seed)
    artifacts = workdir / dataset.name
    artifacts.mkdir(parents=True, exist_ok=True)
    result = run_search(config, data, artifacts_dir=artifacts)
    finals = finalize_front(result, data, artifacts_dir=artifacts, seed=config.seed)
    chosen = default_choice(result.best, finals.ensemble)
    row: dict = {"dataset": dataset.name, "half": dataset.half, "task": dataset.task, "split": split_.key}
    if chosen is None or is_compressed(chosen.architecture):
        return row | {"error": "no refittable choice"}
    final = finals.get(chosen.number)
    assert final is not None and final.weights_path is not None
    n_in, n_out = data.n_features, data.n_outputs
    models = {
        "none": _searched_model(chosen, result, data),
        "train+validation": load_final_model(chosen.architecture, final.weights_path, n_inputs=n_in, n_outputs=n_out),
    }
    refit_started = time.monotonic()
    models["all"] = refit_on_all_rows(chosen, finals, data, seed=config.seed, augment=result.augment)
    row |= {
        "choice": "ensemble" if is_ensemble(chosen.architecture) else chosen.architecture.get("space", "mlp"),
        "cv_folds": result.best.metrics.get("cv_folds", 1) if result.best else 1,
        "search_s": round(refit_started - started, 1),
        "all_rows_refit_s": round(time.monotonic() - refit_started, 1),
    }
    for method, model in models.items():
        row[method] = _held_out_score(dataset, split_, model, data.preprocessing)
    return row


def run(workdir: Path) -> list[dict]:
    resume = Resume("BENCH_TR_RESUME")
    rows = []
    for dataset in _selected():
        kept = resume.kept(dataset.name, BUDGET)
        if kept:
            rows.append(kept)
            continue
        row = one_table(dataset, workdir) | {"budget_seconds": BUDGET}
        resume.add(row)
        rows.append(row)
        scores = {m: round(row[m], 4) for m in METHODS if m in row}
        sys.stdout.write(f"tabular_refit: {dataset.name}: {scores}\n")
        sys.stdout.flush()
    return rows


def _summary(rows: list[dict], half: str) -> dict:
    scored = [r for r in rows if all(m in r for m in METHODS) and half in ("all", r["half"])]

    def mean_gain(a: str, b: str) -> str:
        return f"{statistics.fmean(r[a] - r[b] for r in scored):+.4f}" if scored else "-"

    def wins(a: str, b: str) -> str:
        better = sum(r[a] > r[b] for r in scored)
        worse = sum(r[a] < r[b] for r in scored)
        return f"{better} better, {worse} worse"

    return {
        "half": half,
        "tables": len(scored),
        "all − none": mean_gain("all", "none"),
        "all vs none": wins("all", "none"),
        "all − train+validation": mean_gain("all", "train+validation"),
        "all vs train+validation": wins("all", "train+validation"),
        "train+validation − none": mean_gain("train+validation", "none"),
        "train+validation vs none": wins("train+validation", "none"),
    }


def write(rows: list[dict]) -> Path:
    table = []
    for r in rows:
        line = {"half": r["half"], "dataset": r["dataset"], "task": r["task"], "choice": r.get("choice", "-")}
        line |= {m: f"{r[m]:.4f}" if m in r else r.get("error", "-") for m in METHODS}
        if all(m in r for m in METHODS):
            line |= {
                "all − none": f"{r['all'] - r['none']:+.4f}",
                "all − t+v": f"{r['all'] - r['train+validation']:+.4f}",
            }
        line |= {
            "cv folds": r.get("cv_folds", "-"),
            "search s": r.get("search_s", "-"),
            "all-rows s": r.get("all_rows_refit_s", "-"),
        }
        table.append(line)
    summaries = [_summary(rows, half) for half in ("dev", "confirm", "all")]
    notes = [
        f"One search per table at the CLI's defaults ({BUDGET:g} s), on the suite's 80 %; its default export",
        "(`--export auto`) scored on the suite's held-out 20 % (accuracy, or R²) three ways, paired: none = the",
        "search's own weights (trained on the training split; under k-fold scoring the first fold's network);",
        "train+validation = refit from scratch on train+validation for the chosen epochs; all = trained again on",
        "every row the search was given (the default). Per half (mean of the differences; better/worse counts):",
        "",
        "| " + " | ".join(summaries[0]) + " |",
        "|" + "---|" * len(summaries[0]),
        *("| " + " | ".join(str(v) for v in s.values()) + " |" for s in summaries),
        "",
        "`python -m benchmarks.tabular_refit` (BENCH_TR_HALF, BENCH_TR_DATASETS, BENCH_TR_BUDGET, BENCH_TR_RESUME).",
    ]
    return write_table(
        "tabular_refit",
        table,
        title="Refit or not: the exported model's training rows, on the tabular suite",
        notes=notes,
    )


if __name__ == "__main__":
    sys.exit(run_and_print(run, write))
