"""`make screenshots`: the README's and the user guide's pictures, taken from a realistic session.

Inside `python -m webapp.stack exec` (a private embedded Redis and SQLite database under
NAS_VAR_DIR): one user starts from the built-in samples, runs two real searches on the breast
cancer table (SCREENSHOT_BUDGET seconds, 120 by default: a hundred-odd models, not a handful) on a
real worker behind daphne, and Chromium saves each page under docs/screenshots/: the job page after
the search, the dataset page with its leaderboard and form, the model page, an image dataset and the
API tokens page. Not a test (it asserts only that the pages are there); a few minutes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("DOC_SCREENSHOTS", ROOT / "docs" / "screenshots"))
BUDGET = int(os.environ.get("SCREENSHOT_BUDGET", "120"))


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from benchmarks.app import (
        session_cookie,
        setup_django,
        start_daphne,
        start_worker,
        stop_processes,
        wait_until_ended,
    )

    var = setup_django()
    from django.contrib.auth import get_user_model
    from playwright.sync_api import sync_playwright

    from tests.chromium import CHROMIUM, CHROMIUM_ARGS
    from webapp.accounts.tokens import token_create
    from webapp.datasets.samples import sample_create
    from webapp.searches import services

    user = get_user_model().objects.create_user(username="maria", email="maria@example.org")
    table = sample_create(owner=user, key="breast-cancer")
    images = sample_create(owner=user, key="digits")
    token_create(user=user, name="nightly retrain")
    processes = [start_worker(var)]
    try:
        daphne, base, _ = start_daphne(var)
        processes.append(daphne)
        first = services.search_create(
            user=user, dataset=table, target="diagnosis", task="classification", budget_seconds=BUDGET,
            name="first look", notes="defaults, two minutes", objectives=["score", "latency_ms"],
        )  # fmt: skip
        first = wait_until_ended(first, timeout=BUDGET + 900)
        second = services.search_create(
            user=user, dataset=table, target="diagnosis", task="classification", budget_seconds=max(30, BUDGET // 2),
            name="small and fast", strategy="nsga2", max_params=5000,
        )  # fmt: skip
        wait_until_ended(second, timeout=BUDGET + 900)
        cookie_name, cookie_value = session_cookie(user).split("=", 1)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": cookie_name, "value": cookie_value, "url": base}])
            page = context.new_page()
            page.set_default_timeout(60_000)

            def shot(path: str, name: str, ready: str) -> None:
                page.goto(base + path)
                page.wait_for_function(ready)
                page.wait_for_timeout(800)  # plotly's transitions settle
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(f"saved {OUT / name}.png")  # noqa: T201

            shot(f"/searches/{first.pk}/", "job-page", "document.getElementById('chosen').hidden === false")
            shot(f"/datasets/{table.pk}/", "dataset-profile", "document.querySelector('#target-chart[data-kind]')")
            model = f"/searches/{first.pk}/trials/{first.recommended_number}/"
            shot(model, "model-page", "document.getElementById('model-card')")
            shot(f"/datasets/{images.pk}/", "image-dataset", "document.getElementById('image-classes')")
            shot("/accounts/tokens/", "api-tokens", "document.getElementById('token-list')")
            browser.close()
    finally:
        stop_processes(processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
