"""Imbalanced classes: the default search (it optimises accuracy) against the balanced-accuracy +
balanced-class-weights search (``--metric balanced_accuracy --class-weights balanced``, what the web
form suggests when one class holds over 80 % of the rows), on the tabular suite's imbalanced tables.

Each search runs through the CLI on the suite's fixed 80 % and its bundle predicts the held-out
20 % through ``predict`` (as a user would); both are scored there by balanced accuracy (the mean
of the per-class recalls), accuracy and the recall of the rarest class.

Run: ``python -m benchmarks.imbalance``. Knobs: BENCH_IB_BUDGET (seconds per search, default 60;
30 under BENCH_QUICK), BENCH_IB_DATASETS (comma list), BENCH_IB_RESUME=FILE (finished tables are
appended there and skipped on the next run). Writes benchmarks/results/imbalance.{md,json}.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import tabular_suite as suite
from benchmarks.report import QUICK, Resume, run_and_print, write_table

BUDGET = float(os.environ.get("BENCH_IB_BUDGET", "30" if QUICK else "60"))
# The suite's classification tables where the rarest class is under 20 % of the rows.
TABLES = ("default", "attrition", "mlc_churn", "hmda", "email", "hpc")
VARIANTS = {
    "default": [],
    "balanced": ["--metric", "balanced_accuracy", "--class-weights", "balanced"],
}


def _selected() -> list[suite.Dataset]:
    names = os.environ.get("BENCH_IB_DATASETS")
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names else list(TABLES[:2] if QUICK else TABLES)
    return [suite.BY_NAME[name] for name in chosen]


def _scores(truth: list[str], predicted: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score

    counts = {label: truth.count(label) for label in set(truth)}
    rarest = min(counts, key=lambda label: counts[label])
    return {
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "rare_recall": float(recall_score(truth, predicted, labels=[rarest], average="macro", zero_division=0)),
        "rarest": rarest,
        "rarest_share": counts[rarest] / len(truth),
    }


def _search_and_score(dataset: suite.Dataset, split_: suite.Split, flags: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    bundle, err = folder / "model.zip", folder / "search.stderr"
    command = [*suite._nas_command(dataset, split_, BUDGET, bundle), *flags]
    started = time.monotonic()
    with err.open("w") as handle:
        code = subprocess.run(command, cwd=suite.ROOT, env={**os.environ, **suite.ONE_THREAD}, stderr=handle)
    seconds = time.monotonic() - started
    if code.returncode != 0:
        return {"error": f"search exit {code.returncode}: {suite._last_line(err)}", "search_s": round(seconds, 1)}
    predictions = folder / "predictions.csv"
    predict = [
        sys.executable,
        "-m",
        "nas_engine",
        "predict",
        str(bundle),
        str(split_.test_inputs),
        "-o",
        str(predictions),
    ]
    subprocess.run(predict, cwd=suite.ROOT, env={**os.environ, **suite.ONE_THREAD}, check=True, capture_output=True)
    with predictions.open(newline="", encoding="utf-8") as handle:
        predicted = [row["prediction"].strip() for row in csv.DictReader(handle)]
    return _scores(suite._truth(dataset, split_), predicted) | {"search_s": round(seconds, 1)}


def run(workdir: Path) -> list[dict]:
    resume = Resume("BENCH_IB_RESUME")
    rows = []
    for dataset in _selected():
        kept = resume.kept(dataset.name, BUDGET)
        if kept:
            rows.append(kept)
            continue
        split_ = suite.split(dataset)
        row: dict = {"dataset": dataset.name, "half": dataset.half, "rows": split_.rows, "budget_seconds": BUDGET}
        for variant, flags in VARIANTS.items():
            row[variant] = _search_and_score(dataset, split_, flags, workdir / dataset.name / variant)
        resume.add(row)
        rows.append(row)
        sys.stdout.write(f"imbalance: {dataset.name}: " + json.dumps({v: row[v] for v in VARIANTS}) + "\n")
        sys.stdout.flush()
    return rows


def _f(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def write(rows: list[dict]) -> Path:
    table = []
    for r in rows:
        d, b = r["default"], r["balanced"]
        line = {
            "half": r["half"],
            "dataset": r["dataset"],
            "rows": r["rows"],
            "rarest class": f"{d.get('rarest', b.get('rarest', '-'))} ({d.get('rarest_share', 0):.1%})",
            "balanced acc: default": _f(d.get("balanced_accuracy")),
            "balanced acc: balanced": _f(b.get("balanced_accuracy")),
            "gain": _f(b["balanced_accuracy"] - d["balanced_accuracy"])
            if "balanced_accuracy" in d and "balanced_accuracy" in b
            else "-",
            "accuracy: default": _f(d.get("accuracy")),
            "accuracy: balanced": _f(b.get("accuracy")),
            "rare recall: default": _f(d.get("rare_recall")),
            "rare recall: balanced": _f(b.get("rare_recall")),
            "errors": "; ".join(v["error"] for v in (d, b) if "error" in v) or "",
        }
        table.append(line)
    paired = [r for r in rows if "balanced_accuracy" in r["default"] and "balanced_accuracy" in r["balanced"]]
    gains = [r["balanced"]["balanced_accuracy"] - r["default"]["balanced_accuracy"] for r in paired]
    costs = [r["default"]["accuracy"] - r["balanced"]["accuracy"] for r in paired]
    summary = (
        f"Over {len(paired)} tables: balanced accuracy {statistics.fmean(gains):+.4f} on average "
        f"({sum(g > 0 for g in gains)} better, {sum(g < 0 for g in gains)} worse); plain accuracy "
        f"{-statistics.fmean(costs):+.4f}."
        if paired
        else "No table finished both searches."
    )
    notes = [
        f"Two searches per table through the CLI at {BUDGET:g} s, on the suite's fixed 80 %, their bundles predicting",
        "the held-out 20 % with `predict`: **default** (optimises accuracy, no class weights) against **balanced**",
        "(`--metric balanced_accuracy --class-weights balanced`, what the web form suggests when one class holds",
        "over 80 % of the rows). Balanced accuracy is the mean of the per-class recalls; rare recall is the recall of",
        "the rarest class.",
        "",
        summary,
        "",
        "`python -m benchmarks.imbalance` (BENCH_IB_BUDGET, BENCH_IB_DATASETS, BENCH_IB_RESUME).",
    ]
    return write_table(
        "imbalance", table, title="Imbalanced classes: accuracy search vs balanced-accuracy search", notes=notes
    )


if __name__ == "__main__":
    sys.exit(run_and_print(run, write))
