"""A staff member in real Chromium: admin → "Operations" → the live worker, and a job that
starts and ends while the page stays open (it refreshes itself, no reload)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset
from tests.web.test_operations import WORKER_NAME
from webapp.searches import services

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def outside_the_browser_loop(function, **kwargs):
    """Run a service in its own thread: services send events with async_to_sync, which cannot
    run in this thread while Playwright's event loop does."""

    def call():
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def test_staff_follow_the_admin_link_and_watch_jobs_come_and_go_live(
    celery_worker_process,
    live_server_url,
    django_user_model,
    alice,
    alice_client,
    browser_page,
    breast_cancer_csv,
):
    django_user_model.objects.create_user(username="olivia", password=PASSWORD, is_staff=True)
    page = browser_page
    page.goto(live_server_url + "/admin/")
    page.fill("input[name=username]", "olivia")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.click("a#operations-link")
    page.wait_for_url(live_server_url + "/ops/")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    worker = page.locator(f'#ops-workers tr[data-worker="{WORKER_NAME}"]')
    worker.wait_for(timeout=120_000)
    page.wait_for_function(
        f"document.querySelector('#ops-workers tr[data-worker=\"{WORKER_NAME}\"] td:nth-child(2)')"
        ".textContent === 'idle'",
        timeout=120_000,
    )
    assert page.locator("#ops-queues tr[data-queue]").count() >= 1

    dataset = upload_dataset(alice_client, breast_cancer_csv)
    job = services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", budget_seconds=300, seed=5
    )
    running = page.locator(f'#ops-running tr[data-job="{job.pk}"]')
    running.wait_for(timeout=120_000)  # appears by itself
    assert WORKER_NAME in running.inner_text()
    assert f"#{job.pk}" in worker.inner_text()
    assert page.evaluate("window.loadedOnce") is True

    outside_the_browser_loop(services.search_cancel, job=job)
    running.wait_for(state="detached", timeout=120_000)  # and goes by itself
    assert page.evaluate("window.loadedOnce") is True
    assert int(page.get_attribute("#operations", "data-polls")) >= 3
