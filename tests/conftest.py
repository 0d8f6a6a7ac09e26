"""Shared fixtures: two users (alice and bob), CSV files made from sklearn's bundled datasets,
and the real processes a search needs (a Celery worker, daphne) started on the test database."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.data_files import write_digit_pngs, write_sklearn_csv, zip_folder

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a-long-test-password-42"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password=PASSWORD)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    other = Client()
    other.force_login(bob)
    return other


@pytest.fixture
def queued_job(alice, alice_client, breast_cancer_csv, django_capture_on_commit_callbacks):
    """Alice's search on breast_cancer, queued and never sent: no worker will take it."""
    from tests.web.helpers import upload_dataset
    from webapp.searches import services

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    with django_capture_on_commit_callbacks(execute=False):
        return services.search_create(
            user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=30
        )


@pytest.fixture(scope="session")
def breast_cancer_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_breast_cancer

    return write_sklearn_csv(load_breast_cancer, tmp_path_factory.mktemp("data") / "breast_cancer.csv", "diagnosis")


@pytest.fixture(scope="session")
def diabetes_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_diabetes

    return write_sklearn_csv(load_diabetes, tmp_path_factory.mktemp("data") / "diabetes.csv", "progression")


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory) -> Path:
    """A folder of 40 digit PNGs per class (400 in all): enough to learn from, quick to search."""
    return write_digit_pngs(tmp_path_factory.mktemp("digits") / "pngs", per_class=40)


@pytest.fixture(scope="session")
def digits_zip(tmp_path_factory, digit_pngs) -> Path:
    return zip_folder(digit_pngs, tmp_path_factory.mktemp("digits_zip") / "digits.zip")


# --- real processes on the test database -------------------------------------------------------


def test_database_url() -> str:
    """A DATABASE_URL for the test database, so child processes share the test's rows."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=test_database_url(), MEDIA_ROOT=str(settings.MEDIA_ROOT), PYTHONUNBUFFERED="1")
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChildProcess:
    """A child process whose output goes to a log file that a failing test can show."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, cwd=ROOT, env=_child_env(), stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not {what} after {timeout} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def start_celery_worker(name: str, log_dir: Path) -> ChildProcess:
    """A real Celery worker (solo pool, like `make run`) on the test database and broker, ready.

    It takes the environment as it is now: set CELERY_QUEUE_PREFIX (or other settings) first to give it
    queues of its own."""
    worker = ChildProcess(
        name,
        [sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool", "solo", "--concurrency", "1",
         "-l", "info", "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        log_dir,
    )  # fmt: skip
    try:
        worker.wait_until(lambda: " ready." in worker.log(), timeout=90, what="ready")
    except RuntimeError:
        worker.stop()
        raise
    return worker


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory):
    """One real Celery worker consuming from the test broker's default queue."""
    worker = start_celery_worker("test", tmp_path_factory.mktemp("logs"))
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, tmp_path_factory) -> str:
    """daphne serving the app (HTTP + WebSocket) on the test database."""
    import urllib.request

    port = _free_port()
    server = ChildProcess(
        "daphne",
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
        tmp_path_factory.mktemp("logs"),
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    server.wait_until(answers, timeout=60, what="answering /healthz")
    yield url
    server.stop()


# --- real Chromium (Debian's /usr/bin/chromium, installed by `make test`) ----------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


SCREENSHOTS = Path(os.environ.get("NAS_VAR_DIR", "var")) / "screenshots"


@pytest.fixture
def doc_screenshot():
    """``doc_screenshot(page, name)`` saves the page for the README when DOC_SCREENSHOTS names a
    folder (``make screenshots``); otherwise it does nothing, so the tests stay as they are."""
    folder = os.environ.get("DOC_SCREENSHOTS")

    def save(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return save


@pytest.fixture
def browser_page(monkeypatch, request):
    """A Chromium page; when the test fails, a full-page screenshot goes to $NAS_VAR_DIR/screenshots/."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous ones, made between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        context.close()
        browser.close()
