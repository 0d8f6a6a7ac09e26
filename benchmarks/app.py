"""Benchmarks that measure the running app: run a module's `measure` under `python -m webapp.stack
exec` (a private embedded Redis and SQLite database, as the tests use), and the setup each needs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_in_stack(module: str, workdir: Path, *, use_env_flag: str, timeout: float):
    """Run ``python -m MODULE measure OUT`` inside the app's stack and return the JSON it wrote.
    The environment's DATABASE_URL, REDIS_URL and MEDIA_ROOT are dropped unless ``use_env_flag``
    (an environment variable) is "1"."""
    env = dict(os.environ)
    if os.environ.get(use_env_flag) != "1":
        for name in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT"):
            env.pop(name, None)
    env.update(NAS_VAR_DIR=str(workdir / "var"), PYTHONUNBUFFERED="1")
    out = workdir / f"{module.rsplit('.', 1)[-1]}.json"
    command = [sys.executable, "-m", "webapp.stack", "exec", "--", sys.executable, "-m", module, "measure", str(out)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=timeout)
    return json.loads(out.read_text())


def setup_django() -> Path:
    """Inside the stack: Django set up, the private database migrated; returns NAS_VAR_DIR."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    var = Path(os.environ["NAS_VAR_DIR"])
    var.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    return var


def upload_csv(owner, csv_path: Path):
    """A dataset of ``owner`` made from ``csv_path`` as an upload makes it (profiled, stored)."""
    from webapp.datasets.services import dataset_create_from_file

    return dataset_create_from_file(owner=owner, path=csv_path)


def stack_main(argv: list[str], *, measure, run, write) -> int:
    """The command line of such a benchmark: ``measure OUT`` inside the stack (what ``run_in_stack``
    calls), else run it in a temporary folder, write its tables and print the Markdown one."""
    from benchmarks.report import run_and_print

    if argv[:1] == ["measure"]:
        measure(Path(argv[1]))
        return 0
    return run_and_print(run, write)


# --- the app's processes, and a WebSocket client --------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(name: str, args: list[str], log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f"{name}.log", "wb")  # closed with the process, in stop_processes
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def start_worker(var: Path, name: str = "worker") -> subprocess.Popen:
    """A Celery worker of the app (solo pool, one task at a time) named ``name@host``, started and
    ready; its log is ``var/NAME.log``."""
    args = ["-m", "celery", "-A", "webapp", "worker", "--pool", "solo", "--concurrency", "1", "-l", "info"]
    worker = start_process(name, [*args, "-n", f"{name}@%h", "--without-gossip", "--without-mingle"], var)
    log = var / f"{name}.log"
    wait_for(lambda: " ready." in log.read_text(errors="replace") or worker.poll() is not None, f"worker {name} ready")
    if worker.poll() is not None:
        raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
    return worker


def start_daphne(var: Path) -> tuple[subprocess.Popen, str, int]:
    """daphne serving the app on a free port, answering; returns it, its base URL and its port."""
    port = free_port()
    daphne = start_process(
        "daphne", ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"], var
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(base + "/healthz"), "daphne answering")
    return daphne, base, port


def session_cookie(user) -> str:
    """A ``name=value`` session cookie of ``user``: a real session row, as a log-in makes (no password)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def wait_until_ended(job, timeout: float, poll: float = 0.5):
    """Poll the job's row until it has ended; return it. Raises RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_ended:
            return job
        time.sleep(poll)
    raise RuntimeError(f"search {job.pk} did not end within {timeout:.0f} s: {job.status}, {job.message}")


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def wait_for(ready, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def open_socket(port: int, path: str, cookie: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client handshake (RFC 6455) over asyncio streams; as a browser sends it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise OSError(f"handshake refused: {head.splitlines()[0].decode(errors='replace')}")
    return reader, writer


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked control frame (client frames must be masked; control payloads are < 126 bytes)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def messages(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    """Yield each text message; answer pings; stop at a close frame."""
    parts: list[bytes] = []
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        opcode = first & 0x0F
        if opcode == 0x8:  # close: answer it and stop
            writer.write(client_frame(0x8, payload[:2]))
            return
        if opcode == 0x9:  # ping
            writer.write(client_frame(0xA, payload))
            continue
        if opcode in (0x0, 0x1):
            parts.append(payload)
            if first & 0x80:  # the last fragment
                yield b"".join(parts).decode()
                parts = []
