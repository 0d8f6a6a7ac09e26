"""Serving: the prediction endpoint (`POST /api/v1/trials/{id}/predict/`) against running the
bundle's `predict.py` once per call, on the same model and rows.

Inside `python -m webapp.stack exec` (a private embedded Redis and SQLite database, as the tests use):
a real search (one Celery worker, BENCH_SERVING_BUDGET seconds) on sklearn's breast cancer table
(30 numeric columns, 2 classes); its recommended model's bundle is made through the API, unzipped,
and then, one after the other on this machine:

1. the endpoint through daphne over HTTP (one keep-alive connection, a token as a script sends it):
   one row per call, BENCH_SERVING_CALLS times (p50/p95 in ms), then batches of 1,000 rows (rows/s);
2. the bundle's `predict.py` (python + numpy + onnxruntime started for each call, as a script that
   shells out to it would): one row per call, BENCH_SERVING_SCRIPT_CALLS times, then 1,000-row files;
3. the endpoint's model in-process (`webapp.api.serving`, no HTTP), the floor of the endpoint.

Every answer is checked against predict.py's on the same rows first. Writes
benchmarks/results/serving.{md,json}.

    python -m benchmarks.serving          # about 3 minutes
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from benchmarks.app import (
    percentile,
    run_in_stack,
    setup_django,
    stack_main,
    start_daphne,
    start_worker,
    stop_processes,
    upload_csv,
    wait_until_ended,
)
from benchmarks.report import QUICK, write_table

BUDGET = int(os.environ.get("BENCH_SERVING_BUDGET", "20"))
CALLS = int(os.environ.get("BENCH_SERVING_CALLS", "100" if QUICK else "500"))
SCRIPT_CALLS = int(os.environ.get("BENCH_SERVING_SCRIPT_CALLS", "10" if QUICK else "30"))
BATCH = 1000
BATCH_CALLS = 5 if QUICK else 20


def run(workdir: Path) -> dict:
    return run_in_stack("benchmarks.serving", workdir, use_env_flag="BENCH_SERVING_USE_ENV", timeout=20 * 60)


def _timed(call, times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def _summary(how: str, rows: int, seconds: list[float]) -> dict:
    return {
        "how": how,
        "rows_per_call": rows,
        "calls": len(seconds),
        "p50_ms": round(1000 * statistics.median(seconds), 2),
        "p95_ms": round(1000 * (percentile(seconds, 0.95) or 0), 2),
        "rows_per_s": round(rows * len(seconds) / sum(seconds)),
    }


def measure(out: Path) -> None:
    os.environ["API_RATE_PER_MINUTE"] = str(10**9)  # the limit is not what is measured (daphne reads it)
    var = setup_django()
    import requests
    from django.contrib.auth import get_user_model
    from sklearn.datasets import load_breast_cancer

    from webapp.accounts.tokens import token_create
    from webapp.api import serving
    from webapp.searches import downloads, services

    csv_path = var / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv_path, index=False)
    with open(csv_path, newline="") as handle:
        header, *cells = list(csv.reader(handle))
    rows = [dict(zip(header, row, strict=True)) for row in cells]
    features = [dict(row) for row in rows]
    for row in features:
        row.pop("target")
    batch = [features[i % len(features)] for i in range(BATCH)]

    user = get_user_model().objects.create_user(username="bench")
    token = token_create(user=user, name="bench")[1]
    processes = [start_worker(var)]
    try:
        daphne, base, _ = start_daphne(var)
        processes.append(daphne)
        job = services.search_create(
            user=user, dataset=upload_csv(user, csv_path), target="target", task="classification",
            budget_seconds=BUDGET,
        )  # fmt: skip
        job = wait_until_ended(job, timeout=BUDGET + 600)
        trial = job.trials.get(number=job.recommended_number)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        while (bundle := api.get(f"{base}/api/v1/trials/{trial.pk}/bundle/")).status_code == 202:
            time.sleep(0.5)
        bundle.raise_for_status()
        folder = var / "bundle"
        zip_path = var / "bundle.zip"
        zip_path.write_bytes(bundle.content)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        one_csv, batch_csv = var / "one.csv", var / "batch.csv"
        for path, chosen in ((one_csv, batch[:1]), (batch_csv, batch)):
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(chosen[0]))
                writer.writeheader()
                writer.writerows(chosen)

        def script(path: Path) -> list[str]:
            command = [sys.executable, "predict.py", str(path)]
            return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout.split()[1:]

        url = f"{base}/api/v1/trials/{trial.pk}/predict/"

        def endpoint(chosen: list[dict]) -> list:
            answer = api.post(url, json={"rows": chosen})
            answer.raise_for_status()
            return answer.json()["predictions"]

        # The same answers first: the endpoint and predict.py on the same 1,000 rows.
        same = [str(p) for p in endpoint(batch)] == script(batch_csv)
        model = serving.served_model(downloads.file_path(trial, downloads.BUNDLE))
        endpoint(batch[:1])  # warm: the endpoint's model is loaded by the first call
        results = [
            _summary("endpoint (HTTP, model kept loaded)", 1, _timed(lambda: endpoint(batch[:1]), CALLS)),
            _summary("endpoint (HTTP, model kept loaded)", BATCH, _timed(lambda: endpoint(batch), BATCH_CALLS)),
            _summary("predict.py per call (a process each)", 1, _timed(lambda: script(one_csv), SCRIPT_CALLS)),
            _summary("predict.py per call (a process each)", BATCH, _timed(lambda: script(batch_csv), SCRIPT_CALLS)),
            _summary("in-process model (no HTTP)", 1, _timed(lambda: model.predict(batch[:1]), CALLS)),
            _summary("in-process model (no HTTP)", BATCH, _timed(lambda: model.predict(batch), BATCH_CALLS)),
        ]
        facts = {
            "trial": trial.number,
            "architecture": trial.architecture.get("space", ""),
            "params": trial.params,
            "same_predictions_as_predict_py": same,
            "budget_seconds": BUDGET,
        }
    finally:
        stop_processes(processes)
    out.write_text(json.dumps({"rows": results, "facts": facts}, indent=2))


def write(result: dict) -> Path:
    rows, facts = result["rows"], result["facts"]
    by = {(r["how"].split(" (")[0], r["rows_per_call"]): r for r in rows}
    single = by[("predict.py per call", 1)]["p50_ms"] / by[("endpoint", 1)]["p50_ms"]
    batch = by[("endpoint", BATCH)]["rows_per_s"] / by[("predict.py per call", BATCH)]["rows_per_s"]
    notes = [
        "The prediction endpoint against running the bundle's predict.py once per call, on the same model "
        f"(trial {facts['trial']} of a {facts['budget_seconds']} s search on sklearn's breast cancer table, "
        f"{facts['architecture']}, {facts['params']:,} parameters) and rows; one client, one call at a time, "
        "on this 2-core machine (`python -m benchmarks.serving`).",
        "",
        f"- Same predictions as predict.py on 1,000 rows: **{facts['same_predictions_as_predict_py']}**.",
        f"- One row: the endpoint answers in **{by[('endpoint', 1)]['p50_ms']} ms** at the median "
        f"(p95 {by[('endpoint', 1)]['p95_ms']} ms), **{single:.0f}x** faster than predict.py per call "
        "(which starts Python, numpy and onnxruntime each time).",
        f"- Batches of 1,000 rows: **{by[('endpoint', BATCH)]['rows_per_s']:,} rows/s** through the endpoint, "
        f"{batch:.1f}x predict.py's.",
    ]
    title = "Serving: the prediction endpoint against predict.py per call"
    return write_table("serving", rows, title=title, notes=notes)


if __name__ == "__main__":
    sys.exit(stack_main(sys.argv[1:], measure=measure, run=run, write=write))
