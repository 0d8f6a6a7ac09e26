"""Load on the real app: 20 logged-in users browsing home and job pages (HTTP, one thread each) and
50 WebSocket clients watching one running search, against daphne and one Celery worker. The
WebSocket client is a small RFC 6455 one here (autobahn cannot be switched to asyncio once Django
has loaded daphne, which sets it to Twisted).

The app starts as the tests start it: `python -m webapp.stack exec` gives a private embedded Redis,
and a private SQLite database under a temporary var dir (BENCH_LOAD_USE_ENV=1 keeps DATABASE_URL
and REDIS_URL from the environment instead). Reports HTTP requests, errors and p50/p95 latency,
and for the WebSockets the events each client received and whether its final picture (trials and
status) equals the database: no lost events. Writes benchmarks/results/load.{md,json}.

    python -m benchmarks.load          # measure and write the tables (about a minute)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from benchmarks.app import (
    client_frame,
    messages,
    open_socket,
    percentile,
    run_in_stack,
    session_cookie,
    setup_django,
    stack_main,
    start_daphne,
    start_worker,
    stop_processes,
    upload_csv,
)
from benchmarks.report import RESULTS

BROWSING_USERS = int(os.environ.get("BENCH_LOAD_USERS", "20"))
WATCHERS = int(os.environ.get("BENCH_LOAD_WATCHERS", "50"))
BUDGET_SECONDS = int(os.environ.get("BENCH_LOAD_BUDGET_SECONDS", "40"))
THINK_SECONDS = float(os.environ.get("BENCH_LOAD_THINK_SECONDS", "0.25"))  # a user's pause between pages
SETTLE_SECONDS = 60  # after the job ends, how long watchers may take to receive the last events
ENDED = {"finished", "failed", "cancelled"}


def run(workdir: Path) -> dict:
    """Start the app on a private database and broker, load it, and return the measurements."""
    return run_in_stack("benchmarks.load", workdir, use_env_flag="BENCH_LOAD_USE_ENV", timeout=15 * 60)


# --- inside `webapp.stack exec`: the users and the load -----------------------------------------


class Browser(threading.Thread):
    """One logged-in user: home, then their job page, again and again, until told to stop."""

    def __init__(self, base: str, cookie: str, job_id: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.cookie, self.pages, self.stop_event = base, cookie, ["/", f"/searches/{job_id}/"], stop
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        turn = 0
        while not self.stop_event.is_set():
            page = self.pages[turn % len(self.pages)]
            turn += 1
            request = urllib.request.Request(self.base + page, headers={"Cookie": self.cookie})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    if response.status != 200 or response.url.rstrip("/").endswith("/accounts/login"):
                        self.errors.append(f"{page}: {response.status} {response.url}")
            except OSError as exc:  # HTTPError (4xx, 5xx) too
                self.errors.append(f"{page}: {exc}")
            self.latencies.append(time.perf_counter() - started)
            self.stop_event.wait(THINK_SECONDS)


class Watcher:
    """One WebSocket client of the job page: the snapshot, then events, reconnecting like the page
    does (every 2 s) if the socket drops before the job ends."""

    def __init__(self, index: int):
        self.index = index
        self.trials: dict[int, str] = {}  # trial id -> status, as the page would hold them
        self.status = ""
        self.events = 0
        self.trial_events = 0
        self.connects = 0
        self.connect_seconds: list[float] = []
        self.delays: list[float] = []  # trial row committed -> event received
        self.errors: list[str] = []
        self.done = asyncio.Event()

    def handle(self, event: dict) -> None:
        self.events += 1
        if event["type"] == "snapshot":
            self.trials = {t["id"]: t["status"] for t in event["trials"]}
            self.status = event["job"]["status"]
        elif event["type"] == "trial":
            self.trial_events += 1
            trial = event["trial"]
            first = trial["id"] not in self.trials  # later events update a trial (its refit scores): not new
            self.trials[trial["id"]] = trial["status"]
            if first and trial.get("created_at"):
                created = datetime.fromisoformat(trial["created_at"]).timestamp()
                self.delays.append(max(0.0, time.time() - created))
        elif event["type"] == "status":
            self.status = event["status"]
        if self.status in ENDED:
            self.done.set()


def watch_all(port: int, job_id: int, cookies: list[str], until: float) -> list[Watcher]:
    """Run every watcher in one asyncio loop until each has seen the job end or ``until`` (a
    time.monotonic() value) passes."""
    path = f"/ws/searches/{job_id}/"

    async def watch(watcher: Watcher, cookie: str) -> None:
        while not watcher.done.is_set() and time.monotonic() < until:
            watcher.connects += 1
            opened_at = time.perf_counter()
            writer = None
            try:
                reader, writer = await open_socket(port, path, cookie)
                async with asyncio.timeout(max(0.1, until - time.monotonic())):
                    async for message in messages(reader, writer):
                        if watcher.connects > len(watcher.connect_seconds):
                            watcher.connect_seconds.append(time.perf_counter() - opened_at)  # up to the snapshot
                        watcher.handle(json.loads(message))
                        if watcher.done.is_set():
                            writer.write(client_frame(0x8, (1000).to_bytes(2, "big")))
                            break
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                watcher.errors.append(f"connection {watcher.connects}: {type(exc).__name__} {exc}")
            finally:
                if writer is not None:
                    writer.close()
            if not watcher.done.is_set() and time.monotonic() < until:
                await asyncio.sleep(2)  # as the page does

    async def main() -> list[Watcher]:
        watchers = [Watcher(i) for i in range(len(cookies))]
        await asyncio.gather(*(watch(w, c) for w, c in zip(watchers, cookies, strict=True)))
        return watchers

    return asyncio.run(main())


def measure(out: Path) -> None:
    """The load itself; runs under `webapp.stack exec` (REDIS_URL set) with NAS_VAR_DIR private."""
    var = setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from sklearn.datasets import load_breast_cancer

    from webapp.searches import services
    from webapp.searches.models import SearchJob

    processes = []
    try:
        daphne, base, port = start_daphne(var)
        processes += [daphne, start_worker(var)]

        csv_path = var / "breast_cancer.csv"
        load_breast_cancer(as_frame=True).frame.rename(columns={"target": "diagnosis"}).to_csv(csv_path, index=False)
        users = [get_user_model().objects.create_user(username=f"load{i}") for i in range(BROWSING_USERS)]

        def upload(user):
            return upload_csv(user, csv_path)

        owner = users[0]
        # The other users look at a search of their own that ended earlier (one job page each).
        own_jobs = {}
        for user in users[1:]:
            own_jobs[user.pk] = SearchJob.objects.create(
                owner=user, dataset=upload(user), target="diagnosis", task="classification", budget_seconds=30,
                status=SearchJob.Status.CANCELLED, message="Cancelled",
            ).pk  # fmt: skip
        job = services.search_create(
            user=owner, dataset=upload(owner), target="diagnosis", task="classification", budget_seconds=BUDGET_SECONDS
        )
        watcher_cookies = [session_cookie(owner) for _ in range(WATCHERS)]
        browser_cookies = [session_cookie(user) for user in users]

        stop = threading.Event()
        browsers = [
            Browser(base, cookie, own_jobs.get(user.pk, job.pk), stop)
            for user, cookie in zip(users, browser_cookies, strict=True)
        ]
        started = time.monotonic()
        for browser in browsers:
            browser.start()

        def stop_browsing_when_ended() -> None:
            while time.monotonic() - started < BUDGET_SECONDS * 4 + 120:
                job.refresh_from_db()
                if job.status in ENDED:
                    break
                time.sleep(0.5)
            stop.set()

        ender = threading.Thread(target=stop_browsing_when_ended, daemon=True)
        ender.start()
        watchers = watch_all(port, job.pk, watcher_cookies, until=started + BUDGET_SECONDS * 4 + 120 + SETTLE_SECONDS)
        ender.join()
        for browser in browsers:
            browser.join(timeout=60)
        seconds = time.monotonic() - started
        job.refresh_from_db()
        db_trials = dict(job.trials.values_list("id", "status"))
    finally:
        stop_processes(processes)

    latencies = [value for browser in browsers for value in browser.latencies]
    errors = [error for browser in browsers for error in browser.errors]
    matching = [w for w in watchers if w.trials == db_trials and w.status == job.status]
    delays = [value for w in watchers for value in w.delays]
    connects = [value for w in watchers for value in w.connect_seconds]
    result = {
        "cpus": os.cpu_count(),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "seconds": round(seconds, 1),
        "search": {
            "budget_seconds": BUDGET_SECONDS,
            "status": job.status,
            "trials_in_db": len(db_trials),
        },
        "http": {
            "users": BROWSING_USERS,
            "think_seconds": THINK_SECONDS,
            "requests": len(latencies),
            "errors": len(errors),
            "error_examples": errors[:5],
            "requests_per_second": round(len(latencies) / seconds, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(1000 * percentile(latencies, 0.95), 1) if latencies else None,
            "max_ms": round(1000 * max(latencies), 1) if latencies else None,
        },
        "websocket": {
            "clients": WATCHERS,
            "clients_matching_db": len(matching),
            "clients_that_saw_the_end": sum(w.done.is_set() for w in watchers),
            "reconnects": sum(max(0, w.connects - 1) for w in watchers),
            "errors": sum(len(w.errors) for w in watchers),
            "error_examples": [e for w in watchers for e in w.errors][:5],
            "events_per_client_min": min(w.events for w in watchers),
            "events_per_client_max": max(w.events for w in watchers),
            "trial_events_per_client_min": min(w.trial_events for w in watchers),
            "trial_events_per_client_max": max(w.trial_events for w in watchers),
            "connect_to_snapshot_p50_ms": round(1000 * statistics.median(connects), 1) if connects else None,
            "connect_to_snapshot_p95_ms": round(1000 * percentile(connects, 0.95), 1) if connects else None,
            "event_delay_p50_ms": round(1000 * statistics.median(delays), 1) if delays else None,
            "event_delay_p95_ms": round(1000 * percentile(delays, 0.95), 1) if delays else None,
        },
    }
    out.write_text(json.dumps(result, indent=2))


# --- results -------------------------------------------------------------------------------------


def write(result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    http, ws, search = result["http"], result["websocket"], result["search"]
    lines = [
        f"# Load: {http['users']} browsing users and {ws['clients']} WebSocket watchers on one running search",
        "",
        f"daphne + one Celery worker (solo pool) on {result['database']} and an embedded Redis, one machine with "
        f"{result['cpus']} CPUs shared by all of it and by the load generator. The search ({search['budget_seconds']}"
        f" s budget) ran while the load did; {result['seconds']} s in all.",
        "",
        "## HTTP: each user loads home, then a job page, again and again "
        f"({http['think_seconds']:g} s pause between pages)",
        "",
        "| requests | errors | requests/s | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|---|",
        f"| {http['requests']} | {http['errors']} | {http['requests_per_second']} | {http['p50_ms']} | "
        f"{http['p95_ms']} | {http['max_ms']} |",
        "",
        "## WebSocket: every client watches the running search from its start to its end",
        "",
        "A client's final state is the trials (ids and statuses) and the job status it holds after its",
        "snapshot and events, as the job page keeps them; it must equal the database at the end.",
        "commit→event: from a trial row's creation to the first event about it a client receives (later",
        "events update the trial, e.g. with its refit scores, and are not counted).",
        "",
        "| clients | final state == database | saw the end | reconnects | errors | events per client | "
        "trial events per client | trials in DB | connect→snapshot p50/p95 ms | commit→event p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {ws['clients']} | {ws['clients_matching_db']} | {ws['clients_that_saw_the_end']} | {ws['reconnects']} | "
        f"{ws['errors']} | {ws['events_per_client_min']}–{ws['events_per_client_max']} | "
        f"{ws['trial_events_per_client_min']}–{ws['trial_events_per_client_max']} | {search['trials_in_db']} | "
        f"{ws['connect_to_snapshot_p50_ms']} / {ws['connect_to_snapshot_p95_ms']} | "
        f"{ws['event_delay_p50_ms']} / {ws['event_delay_p95_ms']} |",
        "",
        f"Search status at the end: {search['status']}.",
    ]
    if http["error_examples"] or ws["error_examples"]:
        lines += ["", "Errors seen (first few):", ""]
        lines += [f"- {error}" for error in [*http["error_examples"], *ws["error_examples"]]]
    path = RESULTS / "load.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str]) -> int:
    return stack_main(argv, measure=measure, run=run, write=write)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
