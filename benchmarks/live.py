"""Live latency: from a Trial row saved to its event at a WebSocket client, and a job page of 1,000 trials.

Against daphne on a private embedded Redis and SQLite database (`python -m webapp.stack exec`, as the
tests use; BENCH_LIVE_USE_ENV=1 keeps DATABASE_URL and REDIS_URL from the environment instead):

1. One client watches a running job's socket. This process records trials through
   `services.trial_record`, the very call a worker makes after each model (the row saved, the
   Pareto front refreshed, the event sent through the channel layer), at BENCH_LIVE_RATE trials per
   second until the job holds BENCH_LIVE_EVENTS (600) of them. Each delay runs from the row's
   `created_at` (stamped as the row is saved, before the front refresh) to the client holding the
   parsed event: p50/p95/p99, also for the first and the last 100 trials (does it grow with the
   job?), beside the time trial_record itself takes.
2. The job is filled to 1,000 trials, then Chromium loads its page (three times, the median kept):
   the HTML's size and time, DOMContentLoaded, and the Pareto plot drawn with all 1,000 models
   (the page fills it from the socket's snapshot). Then 20 more trials are recorded with the page
   open, each timed from trial_record's return to the plot showing it.

Trials are architectures of the real MLP space with their computed costs and made-up scores (no
training: this measures the app, not the engine). Writes benchmarks/results/live.{md,json}.

    python -m benchmarks.live          # about 2 minutes
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np

from benchmarks.app import (
    messages,
    open_socket,
    percentile,
    run_in_stack,
    session_cookie,
    setup_django,
    stack_main,
    start_daphne,
    stop_processes,
    upload_csv,
)
from benchmarks.report import RESULTS

EVENTS = int(os.environ.get("BENCH_LIVE_EVENTS", "600"))
RATE = float(os.environ.get("BENCH_LIVE_RATE", "20"))  # trials recorded per second
PAGE_TRIALS = 1000
PAGE_LOADS = 3
UPDATES = 20
GOAL_P95_MS = 100


def run(workdir: Path) -> dict:
    return run_in_stack("benchmarks.live", workdir, use_env_flag="BENCH_LIVE_USE_ENV", timeout=15 * 60)


# --- inside `webapp.stack exec` ----------------------------------------------------------------------


class Listener(threading.Thread):
    """One WebSocket client of the job page, in a thread of its own: the time each trial event arrived."""

    def __init__(self, port: int, job_id: int, cookie: str, expected: int):
        super().__init__(daemon=True)
        self.port, self.path, self.cookie, self.expected = port, f"/ws/searches/{job_id}/", cookie, expected
        self.snapshot = threading.Event()
        self.delays: dict[int, float] = {}  # trial id -> seconds from created_at to received
        self.errors: list[str] = []

    def run(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        try:
            reader, writer = await open_socket(self.port, self.path, self.cookie)
            async with asyncio.timeout(EVENTS / RATE * 4 + 120):
                async for message in messages(reader, writer):
                    received = time.time()
                    event = json.loads(message)
                    if event["type"] == "snapshot":
                        self.snapshot.set()
                    elif event["type"] == "trial" and event["trial"].get("created_at"):
                        created = datetime.fromisoformat(event["trial"]["created_at"]).timestamp()
                        self.delays.setdefault(event["trial"]["id"], received - created)
                        if len(self.delays) >= self.expected:
                            break
            writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.snapshot.set()


def _trial_maker(n_inputs: int, n_outputs: int):
    """Trial results of the real MLP space: sampled architectures, their costs, made-up scores."""
    import nas_engine
    from nas_engine.spaces.mlp import MLPSpace

    space, rng = MLPSpace(), np.random.default_rng(0)

    def make(number: int) -> nas_engine.TrialResult:
        arch = space.sample(rng)
        return nas_engine.TrialResult(
            number=number,
            status=nas_engine.TrialStatus.COMPLETED,
            architecture=arch,
            arch_hash=space.arch_hash(arch),
            metrics={"score": float(rng.uniform(0.85, 0.99)), "loss": float(rng.uniform(0.05, 0.4))},
            costs=space.costs(arch, n_inputs, n_outputs),
            train_seconds=float(rng.uniform(0.5, 3.0)),
        )

    return make


def _ms(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(1000 * value, 1)


def _spread(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": _ms(values, 0.5), "p95_ms": _ms(values, 0.95), "p99_ms": _ms(values, 0.99)}


def _page(base: str, cookie_name: str, cookie_value: str, job, make, record) -> dict:
    """Chromium on the job page of PAGE_TRIALS trials: load times, then live updates at that size."""
    from playwright.sync_api import sync_playwright

    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    url = f"{base}/searches/{job.pk}/"
    request = urllib.request.Request(url, headers={"Cookie": f"{cookie_name}={cookie_value}"})
    html_seconds = []
    for _ in range(PAGE_LOADS):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            html = response.read()
        html_seconds.append(time.perf_counter() - started)
    drawn = f"Number(document.getElementById('pareto')?.dataset.points || 0) >= {PAGE_TRIALS}"
    loads, updates = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context()
        context.add_cookies([{"name": cookie_name, "value": cookie_value, "url": base}])
        page = context.new_page()
        page.set_default_timeout(60_000)
        for _ in range(PAGE_LOADS):
            started = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded")
            dom = time.perf_counter() - started
            page.wait_for_function(drawn, polling=20)
            loads.append({"dom_seconds": dom, "drawn_seconds": time.perf_counter() - started})
        number = job.trials.count()
        # The sync API's loop runs in this thread, where channels' async_to_sync may not: record in another.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            for k in range(UPDATES):
                pool.submit(record, make(number + k)).result()
                started = time.perf_counter()
                page.wait_for_function(
                    f"Number(document.getElementById('pareto').dataset.points) >= {PAGE_TRIALS + k + 1}", polling=10
                )
                updates.append(time.perf_counter() - started)
                time.sleep(0.5)
        context.close()
        browser.close()
    dom = statistics.median(x["dom_seconds"] for x in loads)
    drawn_at = statistics.median(x["drawn_seconds"] for x in loads)
    return {
        "trials": PAGE_TRIALS,
        "html_kb": round(len(html) / 1024, 1),
        "html_ms": round(1000 * statistics.median(html_seconds), 1),
        "dom_content_loaded_ms": round(1000 * dom, 1),
        "plot_drawn_ms": round(1000 * drawn_at, 1),
        "update": _spread(updates),
    }


def measure(out: Path) -> None:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs a loop in this thread
    var = setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from sklearn.datasets import load_breast_cancer

    from webapp.searches import services
    from webapp.searches.models import SearchJob

    csv_path = var / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv_path, index=False)
    user = get_user_model().objects.create_user(username="live")
    cookie = session_cookie(user)
    cookie_name, cookie_value = cookie.split("=", 1)
    job = SearchJob.objects.create(
        owner=user, dataset=upload_csv(user, csv_path), target="target", task="classification",
        budget_seconds=3600, status=SearchJob.Status.RUNNING, started_at=timezone.now(),
    )  # fmt: skip
    make = _trial_maker(30, 2)
    record_seconds: list[float] = []
    ids: list[int] = []

    def record(result) -> None:
        started = time.perf_counter()
        ids.append(services.trial_record(job=job, result=result).pk)
        record_seconds.append(time.perf_counter() - started)

    daphne, base, port = start_daphne(var)
    try:
        listener = Listener(port, job.pk, cookie, EVENTS)
        listener.start()
        listener.snapshot.wait(60)
        started = time.monotonic()
        for number in range(EVENTS):
            record(make(number))
            time.sleep(max(0.0, started + (number + 1) / RATE - time.monotonic()))
        listener.join(timeout=120)
        socket_seconds = time.monotonic() - started
        for number in range(EVENTS, PAGE_TRIALS):
            record(make(number))
        page = _page(base, cookie_name, cookie_value, job, make, record)
    finally:
        stop_processes([daphne])

    delays = [listener.delays[i] for i in ids[:EVENTS] if i in listener.delays]
    first = [listener.delays[i] for i in ids[:100] if i in listener.delays]
    last = [listener.delays[i] for i in ids[EVENTS - 100 : EVENTS] if i in listener.delays]
    result = {
        "cpus": os.cpu_count(),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "rate_per_second": RATE,
        "events_sent": EVENTS,
        "events_received": len(delays),
        "socket_seconds": round(socket_seconds, 1),
        "errors": listener.errors,
        "delay": _spread(delays),
        "delay_first_100": _spread(first),
        "delay_last_100": _spread(last),
        "record_first_100": _spread(record_seconds[:100]),
        "record_last_100": _spread(record_seconds[EVENTS - 100 : EVENTS]),
        "record_at_1000": _spread(record_seconds[PAGE_TRIALS:]),
        "page": page,
    }
    out.write_text(json.dumps(result, indent=2))


# --- results -------------------------------------------------------------------------------------------


def write(result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live.json").write_text(json.dumps(result, indent=2) + "\n")
    delay, page = result["delay"], result["page"]
    verdict = "met" if delay["p95_ms"] is not None and delay["p95_ms"] < GOAL_P95_MS else "missed"

    def row(name: str, spread: dict) -> str:
        return f"| {name} | {spread['n']} | {spread['p50_ms']} | {spread['p95_ms']} | {spread['p99_ms']} |"

    lines = [
        f"# Live latency: trial saved → WebSocket event, p95 {delay['p95_ms']} ms (goal < {GOAL_P95_MS} ms: "
        f"{verdict}); a {page['trials']}-trial job page drawn in {page['plot_drawn_ms']:.0f} ms",
        "",
        f"daphne on {result['database']} and an embedded Redis, {result['cpus']} CPUs shared with the client "
        f"and Chromium. {result['events_sent']} trials recorded through services.trial_record (the worker's call) "
        f"at {result['rate_per_second']:g} per second; {result['events_received']} events received"
        + (f"; errors: {result['errors']}" if result["errors"] else "")
        + ".",
        "",
        "## Trial row saved → event parsed by a WebSocket client",
        "",
        "| events | n | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
        row("all", delay),
        row("first 100 (job of 1–100 trials)", result["delay_first_100"]),
        row(f"last 100 (job of {result['events_sent'] - 99}–{result['events_sent']} trials)", result["delay_last_100"]),
        "",
        "## services.trial_record (save, Pareto refresh, send): time per call",
        "",
        "| when | n | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
        row("first 100 trials", result["record_first_100"]),
        row(f"trials {result['events_sent'] - 99}–{result['events_sent']}", result["record_last_100"]),
        row(f"after {page['trials']} trials (page open)", result["record_at_1000"]),
        "",
        f"## The job page with {page['trials']} trials (median of {PAGE_LOADS} loads, Chromium)",
        "",
        "| HTML KB | HTML ms | DOMContentLoaded ms | Pareto plot drawn ms | new trial → plot p50 / p95 ms |",
        "|---|---|---|---|---|",
        f"| {page['html_kb']} | {page['html_ms']} | {page['dom_content_loaded_ms']} | {page['plot_drawn_ms']} | "
        f"{page['update']['p50_ms']} / {page['update']['p95_ms']} |",
        "",
        "Plot drawn: from navigation to the Pareto plot holding every model (the page fills it from the",
        f"socket's snapshot). New trial → plot: from trial_record's return to the plot showing it, {UPDATES} trials.",
    ]
    path = RESULTS / "live.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str]) -> int:
    return stack_main(argv, measure=measure, run=run, write=write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
