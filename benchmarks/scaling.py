"""Scaling out: trials per minute of one search with 1 Celery worker, then with 2, on this machine.

The same search (digits, random strategy, same seed, a fixed budget, "models trained at once" left
at 0: one per idle worker) runs first with one worker (it trains one model at a time, in
run_search), then with a second worker started beside it (the driver spreads the trials over
both). Each worker is a solo-pool process and trains on one torch thread. The app's own
processes, an embedded Redis and a private SQLite database, as the tests use them
(BENCH_SCALING_USE_ENV=1 keeps DATABASE_URL and REDIS_URL from the environment).

Trials per minute counts the models trained (rejected ones aside) that reported within the
budget. Writes benchmarks/results/scaling.{md,json}.

    python -m benchmarks.scaling        # about 4 minutes
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks.app import run_in_stack, setup_django, stack_main, start_worker, upload_csv, wait_until_ended
from benchmarks.report import write_table

TRIALS = int(os.environ.get("BENCH_SCALING_TRIALS", "16"))
BUDGET_SECONDS = 900  # never reached: each run trains TRIALS models and is timed until the last reports
MAX_PARAMS = 20_000  # models of a few seconds each: many trials per budget, so the mix averages out
GOAL = 1.8


def run(workdir: Path) -> list[dict]:
    return run_in_stack("benchmarks.scaling", workdir, use_env_flag="BENCH_SCALING_USE_ENV", timeout=20 * 60)


def measure(out: Path) -> None:
    """Runs under `webapp.stack exec` (REDIS_URL set) with NAS_VAR_DIR private."""
    var = setup_django()
    from django.contrib.auth import get_user_model
    from sklearn.datasets import load_digits

    from webapp.searches import services

    csv_path = var / "digits.csv"
    load_digits(as_frame=True).frame.to_csv(csv_path, index=False)
    owner = get_user_model().objects.create_user(username="bench")
    dataset = upload_csv(owner, csv_path)

    workers, rows = [], []
    try:
        for count in (1, 2):
            workers.append(start_worker(var, f"w{count}"))
            time.sleep(2)  # both answer the driver's "who is idle" before the job starts
            job = services.search_create(
                user=owner, dataset=dataset, target="target", task="classification", budget_seconds=BUDGET_SECONDS,
                strategy="random", seed=0, objectives=["score", "params"], max_params=MAX_PARAMS, max_trials=TRIALS,
            )  # fmt: skip
            rows.append(_row(wait_until_ended(job, BUDGET_SECONDS + 300, poll=1), workers=count))
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    alone = {t["arch_hash"]: t["train_seconds"] for t in rows[0].pop("trials")}
    together = {t["arch_hash"]: t["train_seconds"] for t in rows[1].pop("trials")}
    common = [h for h in together if h in alone and alone[h] > 0]
    rows[1]["same_model_slowdown"] = (
        round(statistics.median(together[h] / alone[h] for h in common), 2) if common else None
    )
    rows[0]["same_model_slowdown"] = 1.0
    base, busy = rows[0]["trials_per_min"], rows[0]["training_s_per_s"]
    for row in rows:
        row["ratio"] = round(row["trials_per_min"] / base, 2) if base else None
        row["training_ratio"] = round(row["training_s_per_s"] / busy, 2) if busy else None
    rows.append(_machine_ceiling())
    out.write_text(json.dumps(rows))


def _machine_ceiling() -> dict:
    """What this machine allows: one fixed model trained 4 times by one process, then by each of
    two processes at once (plain engine, no app); trainings per minute, two over one."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    rates = {}
    for processes in (1, 2):
        with context.Pool(processes) as pool:
            started = time.monotonic()
            pool.map(_train_fixed_model, range(processes))
            rates[processes] = 4 * processes / ((time.monotonic() - started) / 60)
    return {"workers": "2 (engine only)", "models_at_once": 2, "status": "machine ceiling",
            "trials_per_min": round(rates[2], 1), "ratio": round(rates[2] / rates[1], 2)}  # fmt: skip


def _train_fixed_model(_: int) -> None:
    import tempfile as tmp

    from sklearn.datasets import load_digits

    import nas_engine
    from nas_engine.parallel import plan_trials, train_trial

    with tmp.TemporaryDirectory() as folder:
        path = Path(folder) / "digits.csv"
        load_digits(as_frame=True).frame.to_csv(path, index=False)
        data = nas_engine.prepare_data(str(path), target="target", task="classification", seed=0)
    config = nas_engine.SearchConfig(target="target", task="classification", budget_seconds=600, seed=0,
                                     max_params=MAX_PARAMS, max_trials=1)  # fmt: skip
    (trial,) = plan_trials(config, data, reported=[], in_flight=[], slots=1, seconds_left=600).trials
    for _ in range(4):
        train_trial(config, data, trial, seconds_left=600, trial_seconds=600)


def _row(job, *, workers: int) -> dict:
    trained = [t for t in job.trials.exclude(status="rejected").exclude(architecture__space="ensemble")
               if "compression" not in t.architecture]  # fmt: skip
    # From the start to the last model's report: the refit of the front afterwards is not trials.
    seconds = (max(t.created_at for t in trained) - job.started_at).total_seconds() if trained else 0.0
    return {
        "workers": workers,
        "models_at_once": job.trial_slots or 1,
        "status": job.status,
        "models_trained": len(trained),
        "seconds": round(seconds, 1),
        "trials_per_min": round(len(trained) / (seconds / 60), 1) if seconds else None,
        "median_train_s": round(statistics.median(t.train_seconds for t in trained), 2) if trained else None,
        # Seconds of model training per second: about 1 per busy worker.
        "training_s_per_s": round(sum(t.train_seconds for t in trained) / seconds, 2) if seconds else None,
        "workers_used": len({t.worker_host for t in trained}),
        "best_score": round(max((t.score for t in trained if t.score is not None), default=0.0), 4),
        "trials": [{"arch_hash": t.arch_hash, "train_seconds": t.train_seconds} for t in trained],
    }


def write(rows: list[dict]) -> Path:
    ratio, training, ceiling = rows[1].get("ratio"), rows[1].get("training_ratio"), rows[2].get("ratio")
    verdict = "meets" if ratio is not None and ratio >= GOAL else "misses"
    return write_table(
        "scaling",
        rows,
        title="Scaling out: one search, 1 vs 2 Celery workers",
        notes=[
            f"Measured {datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores: digits (1,797 rows, 64 pixels, "
            f"10 classes), random strategy, seed 0, at most {MAX_PARAMS:,} parameters, {TRIALS} models (the same "
            f"{TRIALS} proposals in both runs: random search ignores results), timed from the start to the last "
            "model's report; models trained at once = one per idle worker. Each worker: solo pool, one torch "
            "thread.",
            f"2 workers / 1 worker = **{ratio}x** trials per minute ({verdict} the {GOAL}x goal), "
            f"{training}x seconds of training per second. The machine's own "
            f"ceiling, one fixed model trained by two processes at once against one: **{ceiling}x**; the "
            "same models trained side by side took `same_model_slowdown` times as long as alone. "
            "Reproduce: `python -m benchmarks.scaling`.",
        ],
    )


def main(argv: list[str]) -> int:
    return stack_main(argv, measure=measure, run=run, write=write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
