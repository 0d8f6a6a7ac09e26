"""The web server restarted mid-search: a page watching a running job (real worker, real Chromium)
reconnects to the new daphne on the same port and catches up, missing no trial.

This test runs its own daphne, since the session's live server must not be restarted."""

import sys
import urllib.request

import pytest

from tests.conftest import PASSWORD, ChildProcess, _free_port
from tests.web.helpers import upload_dataset, wait_for_trials
from webapp.searches import services
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROWS = "document.querySelectorAll('#trials tbody tr').length"


class RestartableServer:
    """daphne on a fixed port of this test, which can be stopped and started again."""

    def __init__(self, log_dir):
        self.port, self.log_dir, self.starts, self.process = _free_port(), log_dir, 0, None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "webapp.asgi:application"]
        self.process = ChildProcess(f"daphne-{self.starts}", [sys.executable, *args], self.log_dir)
        self.process.wait_until(self.answers, timeout=60, what="answering /healthz")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def restartable_server(django_db_setup, tmp_path):
    server = RestartableServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_watching_page_reconnects_after_a_web_server_restart_and_catches_up(
    celery_worker_process, restartable_server, alice, alice_client, browser_page, breast_cancer_csv
):
    server, page = restartable_server, browser_page
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    # A budget long enough that trials are still coming while the server is down and after.
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=20
    )
    page.goto(f"{server.url}/searches/{job.pk}/", wait_until="domcontentloaded")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads: it must reconnect by itself
    page.wait_for_function(f"{ROWS} > 0", timeout=120_000)

    server.stop()
    seen_while_down = job.trials.count()
    assert wait_for_trials(job, seen_while_down + 2, timeout=60)  # the worker goes on; these events are lost
    job.refresh_from_db()
    assert job.status == SearchJob.Status.RUNNING, "the search ended while the server was down; raise its budget"
    server.start()

    page.wait_for_function("document.getElementById('job-status').textContent.trim() === 'finished'", timeout=180_000)
    count = job.trials.count()
    page.wait_for_function(f"{ROWS} === {count}", timeout=30_000)
    assert page.evaluate(ROWS) == count > seen_while_down + 1
    assert page.evaluate("window.loadedOnce") is True
    assert int(page.get_attribute("#pareto", "data-points")) > 0
