"""Scaling out: trials per minute of one search with 1 Celery worker, then with 2, on this machine.

The same search (digits, random strategy, same seed, a fixed budget, "models trained at once" left
at 0: one per idle worker) runs first with one worker (it trains one model at a time, in
run_search), then with a second worker started beside it (the driver spreads the trials over
both). Each worker is a solo-pool process and trains on one torch thread. The app's own
processes, an embedded Redis and a private SQLite database, as the tests use them
(BENCH_SCALING_USE_ENV=1 keeps DATABASE_URL and REDIS_URL from the environment).

Trials per minute counts the models trained (rejected ones aside) that reported within the
budget. Writes benchmarks/results/scaling.{md,json}.

    python -m benchmarks.scaling        # about 3 minutes
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.report import write_table

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = int(os.environ.get("BENCH_SCALING_BUDGET_SECONDS", "60"))
GOAL = 1.8


def run(workdir: Path) -> list[dict]:
    env = dict(os.environ)
    if os.environ.get("BENCH_SCALING_USE_ENV") != "1":
        for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
            env.pop(name, None)
    env.update(NAS_VAR_DIR=str(workdir / "var"), PYTHONUNBUFFERED="1")
    out = workdir / "scaling.json"
    command = [sys.executable, "-m", "webapp.stack", "exec", "--", sys.executable, "-m", "benchmarks.scaling"]
    subprocess.run([*command, "measure", str(out)], cwd=ROOT, env=env, check=True, timeout=20 * 60)
    return json.loads(out.read_text())


def measure(out: Path) -> None:
    """Runs under `webapp.stack exec` (REDIS_URL set) with NAS_VAR_DIR private."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import TemporaryUploadedFile
    from django.core.management import call_command
    from sklearn.datasets import load_digits

    from webapp.datasets.services import dataset_create
    from webapp.searches import services

    var = Path(os.environ["NAS_VAR_DIR"])
    var.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    csv_path = var / "digits.csv"
    load_digits(as_frame=True).frame.to_csv(csv_path, index=False)
    owner = get_user_model().objects.create_user(username="bench")
    handle = TemporaryUploadedFile("digits.csv", "text/csv", csv_path.stat().st_size, "utf-8")
    handle.write(csv_path.read_bytes())
    handle.seek(0)
    dataset = dataset_create(owner=owner, uploaded_file=handle)
    handle.close()

    workers, rows = [], []
    try:
        for count in (1, 2):
            workers.append(_start_worker(f"w{count}", var))
            time.sleep(2)  # both answer the driver's "who is idle" before the job starts
            job = services.search_create(
                user=owner, dataset=dataset, target="target", task="classification", budget_seconds=BUDGET_SECONDS,
                strategy="random", seed=0, objectives=["score", "params"],
            )  # fmt: skip
            rows.append(_row(_wait(job), workers=count))
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    base = rows[0]["trials_per_min"]
    for row in rows:
        row["ratio"] = round(row["trials_per_min"] / base, 2) if base else None
    out.write_text(json.dumps(rows))


def _start_worker(name: str, var: Path) -> subprocess.Popen:
    log = open(var / f"{name}.log", "wb")  # noqa: SIM115 - the worker writes it while it runs
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool", "solo", "--concurrency", "1",
         "-l", "info", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while " ready." not in (var / f"{name}.log").read_text(errors="replace"):
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"worker {name} did not start:\n{(var / f'{name}.log').read_text()[-3000:]}")
        time.sleep(0.5)
    return worker


def _wait(job):
    deadline = time.monotonic() + BUDGET_SECONDS * 6 + 300
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_ended:
            return job
        time.sleep(1)
    raise RuntimeError(f"search {job.pk} did not end: {job.message}")


def _row(job, *, workers: int) -> dict:
    end = job.started_at + timedelta(seconds=job.budget_seconds)
    trained = [t for t in job.trials.exclude(status="rejected").exclude(architecture__space="ensemble")
               if "compression" not in t.architecture and t.created_at <= end]  # fmt: skip
    hosts = {t.worker_host for t in trained}
    return {
        "workers": workers,
        "models_at_once": job.trial_slots or 1,
        "status": job.status,
        "trained_in_budget": len(trained),
        "trials_per_min": round(len(trained) / (job.budget_seconds / 60), 1),
        "median_train_s": round(statistics.median(t.train_seconds for t in trained), 2) if trained else None,
        "workers_used": len(hosts),
        "best_score": round(max((t.score for t in trained if t.score is not None), default=0.0), 4),
    }


def write(rows: list[dict]) -> Path:
    ratio = rows[-1].get("ratio")
    verdict = "meets" if ratio is not None and ratio >= GOAL else "misses"
    return write_table(
        "scaling",
        rows,
        title="Scaling out: one search, 1 vs 2 Celery workers",
        notes=[
            f"Measured {datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} cores: digits (1,797 rows, 64 pixels, "
            f"10 classes), random strategy, seed 0, {BUDGET_SECONDS} s budget, models trained at once = one per "
            "idle worker. Each worker: solo pool, one torch thread.",
            f"2 workers / 1 worker = **{ratio}x** trials per minute ({verdict} the {GOAL}x goal). "
            "Reproduce: `python -m benchmarks.scaling`.",
        ],
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["measure"]:
        measure(Path(argv[1]))
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        path = write(run(Path(workdir)))
    sys.stdout.write(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
