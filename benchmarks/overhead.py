"""Overhead: the share of a search job's wall time the app adds to the engine's own work.

Two runs of the same search, one after the other, on this machine:

1. **engine alone** — `nas_engine.run_search` then `finalize_front` in this process, as the CLI runs
   them: the job's data, its config, BENCH_OVERHEAD_SECONDS (300, a 5-minute job) of budget. It
   trains N models.
2. **the app** — the same search submitted as a user submits it (`services.search_create`, which
   queues it for Celery), capped at the same N models, run by a real Celery worker (solo pool)
   while one WebSocket client watches the job page's socket; then the recommended model exported
   as a bundle, as the download button does. Its wall time runs from the job row created (the
   click) to the bundle written.

The engine is deterministic for a seed (one torch thread, seeded trials, seeded TPE), so both runs
train the same N models; the table says whether the trials' architectures and statuses matched.
The difference of the two wall times is then what the app adds: queueing, the row per trial, the
Pareto refresh, event pushes, heartbeats and cancel polls, the job's status writes, and the export.
The engine alone's own non-training time (strategy, latency measurement, weights saved) is shown
beside it. BENCH_QUICK=1 runs a 45-second job. Writes benchmarks/results/overhead.{md,json}.

    python -m benchmarks.overhead      # about 11 minutes
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.app import (
    run_in_stack,
    session_cookie,
    setup_django,
    stack_main,
    start_daphne,
    start_worker,
    stop_processes,
    upload_csv,
    wait_until_ended,
)
from benchmarks.load import watch_all
from benchmarks.report import QUICK, write_table

BUDGET_SECONDS = int(os.environ.get("BENCH_OVERHEAD_SECONDS", "45" if QUICK else "300"))
STRATEGY = "tpe"  # the form's default, with every model fully trained (fidelity none)
GOAL = 0.03


def _app_budget(seconds: int) -> int:
    """The app run's budget: room to train every model the engine trained (3x), but on the same side
    of the engine's cross-validation threshold (``evaluator.CV_MIN_BUDGET``: at 100 s or more a small
    table is 5-fold cross-validated), so both runs train the same trials the same way."""
    from nas_engine.evaluator import CV_MIN_BUDGET

    roomy = seconds * 3
    return roomy if seconds >= CV_MIN_BUDGET or roomy < CV_MIN_BUDGET else int(CV_MIN_BUDGET) - 1


def run(workdir: Path) -> dict:
    return run_in_stack(
        "benchmarks.overhead", workdir, use_env_flag="BENCH_OVERHEAD_USE_ENV", timeout=4 * BUDGET_SECONDS + 600
    )


def _trained(statuses) -> int:
    return sum(status in ("completed", "pruned") for status in statuses)


def measure(out: Path) -> None:
    var = setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from sklearn.datasets import load_breast_cancer

    import nas_engine
    from webapp.searches import bundles, services
    from webapp.searches.models import SearchJob

    csv_path = var / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv_path, index=False)
    user = get_user_model().objects.create_user(username="overhead")
    dataset = upload_csv(user, csv_path)
    create = {"user": user, "dataset": dataset, "target": "target", "task": "classification", "strategy": STRATEGY}

    # 1. The engine alone, on the data and config of a job like the one the app will run.
    probe = SearchJob(owner=user, dataset=dataset, target="target", task="classification", strategy=STRATEGY,
                      budget_seconds=BUDGET_SECONDS, objectives=["score", "params"])  # fmt: skip
    config = probe.to_config()
    with tempfile.TemporaryDirectory() as artifacts:
        started = time.monotonic()
        data = services.prepared_data(probe)  # read, split and encoded: the worker does it too
        engine_result = nas_engine.run_search(config, data, artifacts_dir=Path(artifacts))
        engine_search = time.monotonic() - started
        nas_engine.finalize_front(engine_result, data, artifacts_dir=Path(artifacts), seed=config.seed)
        engine_seconds = time.monotonic() - started
    trained = _trained([t.status.value for t in engine_result.trials])
    engine_train = sum(t.train_seconds for t in engine_result.trials)

    # 2. The same search through the app, capped at the models the engine trained.
    cookie = session_cookie(user)
    processes = []
    try:
        daphne, _, port = start_daphne(var)
        processes += [daphne, start_worker(var)]
        watched: list = []
        job = services.search_create(**create, budget_seconds=_app_budget(BUDGET_SECONDS), max_trials=trained)
        until = time.monotonic() + BUDGET_SECONDS * 4 + 300
        watcher = threading.Thread(target=lambda: watched.extend(watch_all(port, job.pk, [cookie], until)), daemon=True)
        watcher.start()
        wait_until_ended(job, BUDGET_SECONDS * 4 + 300, poll=0.2)
        recommended = job.trials.get(number=job.recommended_number)
        bundle_started = time.time()
        bundles.trial_bundle(trial=recommended)
        ended = time.time()
        watcher.join(timeout=60)
    finally:
        stop_processes(processes)

    app_trials = list(job.trials.exclude(architecture__space="ensemble").order_by("number"))
    same = [(t.arch_hash, t.status) for t in app_trials] == [
        (t.arch_hash, t.status.value) for t in engine_result.trials
    ]
    app_seconds = ended - job.created_at.timestamp()
    app_train = sum(t.train_seconds for t in app_trials)
    result = {
        "cpus": os.cpu_count(),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "budget_seconds": BUDGET_SECONDS,
        "status": job.status,
        "trials": len(app_trials),
        "engine_trials": len(engine_result.trials),
        "trained": trained,
        "same_trials": same,
        "engine_seconds": round(engine_seconds, 2),
        "engine_search_seconds": round(engine_search, 2),
        "engine_train_seconds": round(engine_train, 2),
        "app_seconds": round(app_seconds, 2),
        "app_train_seconds": round(app_train, 2),
        "queued_seconds": round((job.started_at - job.created_at).total_seconds(), 3),
        "export_seconds": round(ended - bundle_started, 2),
        "events_received": watched[0].events if watched else 0,
        # What the app adds beyond the engine's work: its time outside training, less the engine's own.
        "overhead_seconds": round((app_seconds - app_train) - (engine_seconds - engine_train), 2),
        "wall_difference_seconds": round(app_seconds - engine_seconds, 2),
    }
    result["overhead_share"] = round(result["overhead_seconds"] / app_seconds, 4)
    out.write_text(json.dumps(result, indent=2))


def write(result: dict) -> Path:
    share = result["overhead_share"]
    verdict = "met" if share <= GOAL else "missed"
    row = {
        "job": f"{result['budget_seconds'] / 60:g} min, {STRATEGY}, breast_cancer",
        "models trained": result["trained"],
        "same trials in both": "yes" if result["same_trials"] else "no",
        "engine alone s": result["engine_seconds"],
        "engine training share": f"{result['engine_train_seconds'] / result['engine_seconds']:.1%}",
        "app s (click → bundle)": result["app_seconds"],
        "app training share": f"{result['app_train_seconds'] / result['app_seconds']:.1%}",
        "queued s": result["queued_seconds"],
        "export s": result["export_seconds"],
        "events pushed": result["events_received"],
        "wall difference s": result["wall_difference_seconds"],
        "app overhead s": result["overhead_seconds"],
        "app overhead share": f"{share:.1%}",
    }
    return write_table(
        "overhead",
        [row],
        title=f"Overhead: the app adds {share:.1%} to a {result['budget_seconds'] / 60:g}-minute job "
        f"(goal ≤ {GOAL:.0%}: {verdict})",
        notes=[
            f"The same search twice on {result['cpus']} CPUs: the engine alone (run_search + finalize_front in one",
            "process, as the CLI runs it), then through the app (search_create → Celery worker on "
            f"{result['database']} and an embedded Redis, one WebSocket watcher, then the recommended model's",
            "bundle exported), capped at the models the engine trained. App overhead = the app's seconds outside",
            "training less the engine alone's (the strategy, latency measurements, weights saved, the final refit:",
            "search work both do), over the app's wall time; so a model the engine's deadline cut short, which the",
            "capped app run trains in full, does not count as overhead. Wall difference: the two wall times' plain",
            "difference. Training shares: the trials' training seconds over the run's wall time.",
        ],
    )


def main(argv: list[str]) -> int:
    return stack_main(argv, measure=measure, run=run, write=write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
