"""The live job page in real Chromium, against a real Celery worker and daphne: points appear live,
the table sorts, the log and the best-so-far curve grow, a reload or a dropped socket loses nothing;
after the search, the explorer's sliders, the knee, the comparison (test-split confusion matrices)
and a bundle download with progress."""

import time
import zipfile

import pytest

import nas_engine
from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset
from webapp.searches import services
from webapp.searches.models import SearchJob, SearchLogEntry, Trial

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ENDED = {"finished", "failed", "cancelled"}
ROWS = "#trials tbody tr"


def log_in(page, live_server_url: str) -> None:
    page.goto(live_server_url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")


def start_search(alice, alice_client, csv_path, **settings) -> SearchJob:
    """A search sent to the real worker (on commit), as the configure form would start it."""
    dataset = upload_dataset(alice_client, csv_path)
    return services.search_create(
        user=alice, dataset=dataset, target="diagnosis", task="classification", strategy="random", **settings
    )


def wait_until_ended(job: SearchJob, worker, timeout: float = 240) -> SearchJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in ENDED:
            assert job.status == "finished", (job.error, worker.log()[-3000:])
            return job
        time.sleep(0.3)
    raise AssertionError(f"search {job.pk} still {job.status} after {timeout} s:\n{worker.log()[-3000:]}")


def wait_until_stopped(job: SearchJob, timeout: float = 60) -> None:
    """Wait until the job has ended and its worker has saved its last trial (none for 2 s)."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.trials.count() != count:
            count, since = job.trials.count(), time.monotonic()
        elif job.status in ENDED and time.monotonic() - since >= 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"search {job.pk} still {job.status} or still saving trials after {timeout} s")


def wait_for_db_trials(job: SearchJob, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while job.trials.count() < count:
        assert time.monotonic() < deadline, f"fewer than {count} trials after {timeout} s"
        time.sleep(0.2)


def wait_until_chosen(page, number: int) -> None:
    """The page redraws on a timer after a click: wait for the chosen model's number to show."""
    page.wait_for_function(f"document.getElementById('chosen-number').textContent === '{number}'", timeout=5000)


def row_ids(page) -> list[int]:
    return page.eval_on_selector_all(ROWS, "rows => rows.map(r => Number(r.dataset.trialId))")


def column(page, index: int) -> list:
    """The raw values (data-value) of one column, in the order the rows are shown."""
    script = "(rows, i) => rows.map(r => { const v = r.cells[i].dataset.value; return v === undefined ? null : v; })"
    return page.eval_on_selector_all(ROWS, script, index)


def test_the_live_page_streams_sorts_and_catches_up_after_a_reload_and_a_dropped_socket(
    celery_worker_process, live_server_url, alice, alice_client, browser_page, breast_cancer_csv
):
    page = browser_page
    log_in(page, live_server_url)
    # No trial limit: the search runs until the test cancels it, however fast this machine is.
    job = start_search(alice, alice_client, breast_cancer_csv, budget_seconds=300, seed=5)
    page.goto(f"{live_server_url}/searches/{job.pk}/")
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads by itself

    # Points, the best-so-far curve and the log grow live, with no reload.
    page.wait_for_function("Number(document.getElementById('pareto').dataset.points) >= 3", timeout=120_000)
    assert page.evaluate("window.loadedOnce") is True
    assert page.inner_text("#connection") == "● live"
    page.wait_for_function("Number(document.getElementById('best-curve').dataset.points) >= 3")
    assert page.locator("#best-curve .scatterlayer .trace").count() == 2  # each trial, and the best-so-far line
    log = page.locator("#job-log li").all_inner_texts()
    assert any("Loading the data" in line for line in log) and any("Trial 0 completed." in line for line in log)
    assert 0 < float(page.get_attribute("#job-progress", "value")) <= 1
    assert page.inner_text("#job-percent").endswith("%")

    # The socket drops (held closed) while trials keep coming: the page says so and misses them...
    page.evaluate("NasJob.socket.drop({ hold: true })")
    page.wait_for_function("document.getElementById('connection').textContent === 'reconnecting…'")
    page.wait_for_timeout(300)  # a redraw already queued for the last event lands
    missed_from = len(row_ids(page))

    # (No event redraws the plot now, so a hover label stays up: it tells what the point is,
    # with its layers and its costs in human units.)
    box = page.locator("#pareto .scatterlayer .point").first.bounding_box()  # under Plotly's drag layer
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = page.locator("#pareto .hoverlayer .hovertext").first.text_content()
    assert "Trial" in hover and "params" in hover and "FLOPs" in hover
    assert "MLP" in hover or "boosted trees, up to" in hover  # the tabular portfolio's first trials are trees

    wait_for_db_trials(job, missed_from + 2)
    assert len(row_ids(page)) == missed_from
    # ...then reconnects, and the snapshot brings it level with the database, without a reload.
    page.evaluate("NasJob.socket.reconnect()")
    page.wait_for_function("document.getElementById('connection').textContent === '● live'")
    saved = set(job.trials.values_list("id", flat=True))
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length >= {len(saved)}")
    assert saved <= set(row_ids(page)) and page.evaluate("window.loadedOnce") is True

    # Re-opening the page mid-search shows every trial so far, then goes on live.
    page.reload()
    saved = set(job.trials.values_list("id", flat=True))
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length >= {len(saved)}")
    shown = row_ids(page)
    assert len(shown) == len(set(shown)) and saved <= set(shown)
    assert set(shown) <= set(job.trials.values_list("id", flat=True))

    # Cancel from the page; once the worker has stopped, the page holds exactly the saved trials.
    page.click("#cancel-form button")
    page.wait_for_function("document.getElementById('job-status').textContent === 'cancelled'")
    assert page.locator("#cancel-form").count() == 0
    wait_until_stopped(job)
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === {job.trials.count()}")
    assert sorted(row_ids(page)) == sorted(job.trials.values_list("id", flat=True))
    entries = list(SearchLogEntry.objects.filter(job=job).order_by("id").values_list("message", flat=True))[-200:]
    page.wait_for_function(f"document.querySelectorAll('#job-log li').length === {len(entries)}")
    assert [line.split(" ", 1)[1] for line in page.locator("#job-log li").all_inner_texts()] == entries
    best = max(t.score for t in job.trials.all() if t.status in Trial.WITH_MODEL)
    assert float(page.get_attribute("#best-curve", "data-best")) == pytest.approx(best)

    # Sorting: a click on "Parameters" sorts by size (numerically, ties by number)...
    page.click("#trials button[data-sort-key=params]")
    expected = [t.number for t in job.trials.order_by("params", "number")]
    assert [int(n) for n in column(page, 1)] == expected
    assert page.get_attribute("th:has(button[data-sort-key=params])", "aria-sort") == "ascending"
    # ...and Enter on the "Score" header, from the keyboard, sorts best first, untrained trials last.
    page.focus("#trials button[data-sort-key=score]")
    page.keyboard.press("Enter")
    scores = [None if v is None else float(v) for v in column(page, 3)]
    scored = [s for s in scores if s is not None]
    assert scored == sorted(scored, reverse=True) and scores[: len(scored)] == scored
    assert page.get_attribute("th:has(button[data-sort-key=score])", "aria-sort") == "descending"
    assert page.get_attribute("th:has(button[data-sort-key=params])", "aria-sort") == "none"
    page.keyboard.press("Space")
    assert page.get_attribute("th:has(button[data-sort-key=score])", "aria-sort") == "ascending"


def test_after_the_search_the_explorer_compares_and_downloads(
    celery_worker_process, live_server_url, alice, alice_client, browser_page, breast_cancer_csv, tmp_path
):
    page = browser_page
    job = start_search(alice, alice_client, breast_cancer_csv, budget_seconds=60, max_trials=6, seed=3)
    log_in(page, live_server_url)
    job = wait_until_ended(job, celery_worker_process)
    models = list(job.trials.filter(status__in=Trial.WITH_MODEL, score__isnull=False).order_by("number"))
    assert len(models) >= 4
    page.goto(f"{live_server_url}/searches/{job.pk}/")
    page.wait_for_function(f"Number(document.getElementById('pareto').dataset.points) === {len(models)}")

    # No limits: everything fits, and the best model is named.
    def best_within(limit):
        fitting = [t for t in models if limit is None or t.params <= limit]
        return max(fitting, key=lambda t: (t.score, -t.params, -t.number)) if fitting else None

    assert page.get_attribute("#explorer-best", "data-number") == str(best_within(None).number)
    assert page.get_attribute("#pareto", "data-excluded") == "0"
    # The recommended model (the ensemble when it beats the best single one) is chosen for the user.
    wait_until_chosen(page, job.recommended_number)
    assert page.is_visible("#chosen-recommended")

    # A default gradient-boosting model's score on the same rows: named, and a dashed line on the plot.
    score = job.reference["score"]
    assert page.get_attribute("#pareto", "data-reference") == str(score)
    words = page.inner_text("#explorer-reference")
    assert words.startswith("A default gradient-boosting model scores ") and " on this split; " in words
    line = page.evaluate(
        "(() => { const d = document.getElementById('pareto').data.find(t => t.name.startsWith('default gradient'));"
        " return { y: d.y, dash: d.line.dash }; })()"
    )
    assert line == {"y": [score, score], "dash": "dash"}
    assert page.locator("#pareto .legendtext", has_text="default gradient boosting").count() == 1
    drawn = page.locator("#pareto .scatterlayer .trace").last.locator("path.js-line")
    assert drawn.evaluate("p => p.style.strokeDasharray") not in ("", "none")  # dashed on screen too

    # Lower the parameter limit from the keyboard until the named model changes.
    slider = page.locator("#limit-params")
    slider.focus()
    first = page.inner_text("#explorer-best")
    for _ in range(40):
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(60)
        if page.inner_text("#explorer-best") != first:
            break
    assert page.inner_text("#explorer-best") != first
    limit = page.evaluate("NasJob.store.limits.params")
    assert limit is not None and page.inner_text("#limit-params-value").startswith("at most")
    assert page.get_attribute("#limit-params", "aria-valuetext") == page.inner_text("#limit-params-value")
    assert page.inner_text("#explorer-limits").startswith("At most")
    expected = best_within(limit)
    assert page.get_attribute("#explorer-best", "data-number") == (str(expected.number) if expected else "")
    # Models over the limit are greyed (their own grey trace), the others keep their colours.
    over = {t.pk for t in models if t.params > limit}
    assert over and page.get_attribute("#pareto", "data-excluded") == str(len(over))
    greyed = page.evaluate(
        "(() => { const d = document.getElementById('pareto').data.find(t => t.name === 'outside your limits');"
        " return { ids: d.customdata, colour: d.marker.color }; })()"
    )
    assert set(greyed["ids"]) == over and greyed["colour"] == "#d0d7de"
    fills = page.locator("#pareto .scatterlayer .trace .point").evaluate_all(
        "points => points.map(p => getComputedStyle(p).fill)"
    )
    assert fills.count("rgb(208, 215, 222)") == len(over)  # drawn grey on screen, not only in the data
    if expected:
        page.click("#explorer-choose")
        wait_until_chosen(page, expected.number)
    slider.focus()
    page.keyboard.press("End")  # back to no limit
    page.wait_for_function("document.getElementById('pareto').dataset.excluded === '0'")
    assert page.inner_text("#limit-params-value") == "no limit"

    # The smallest model within one standard error is one click away.
    smallest = job.smallest_number
    assert page.is_visible("#smallest") == (smallest is not None)
    if smallest is not None:
        assert page.inner_text("#smallest-number") == str(smallest)
        if page.is_visible("#smallest-choose"):
            page.click("#smallest-choose")
        wait_until_chosen(page, smallest)

    # The knee, when the front has one, is offered with a button that picks it.
    if job.knee_number is not None:
        assert page.is_visible("#knee") and page.inner_text("#knee-number") == str(job.knee_number)
        page.click("#knee-choose")
        wait_until_chosen(page, job.knee_number)
    else:
        assert page.is_hidden("#knee")
    chosen = page.inner_text("#chosen-number")
    assert page.get_attribute("#chosen-model-page", "href") == f"/searches/{job.pk}/trials/{chosen}/"

    # Compare two models: each gets its confusion matrix on the whole test split.
    test_rows = len(nas_engine.prepare_data(job.dataset.file.path, target="diagnosis", seed=job.seed).y_test)
    boxes = page.locator("#trials input.compare-box")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.wait_for_selector("#compare-panels table.confusion >> nth=1")
    totals = page.eval_on_selector_all("#compare-panels table.confusion", "ts => ts.map(t => Number(t.dataset.total))")
    assert totals == [test_rows, test_rows]
    cards = page.eval_on_selector_all("#compare-panels .compare-card", "cs => cs.map(c => Number(c.dataset.number))")
    assert cards == [models[0].number, models[1].number]
    assert page.locator("#compare-panels .compare-card >> nth=0").locator("ol.layers li").count() >= 2
    # A third is welcome; a fourth is refused with a message, and its box stays unticked.
    boxes.nth(2).check()
    boxes.nth(3).click()
    assert page.is_visible("#compare-message") and "at most 3" in page.inner_text("#compare-message")
    assert not boxes.nth(3).is_checked() and page.locator("#compare-panels .compare-card").count() == 3

    # Download the first compared model's bundle: "preparing" (by the worker) first, then bytes, then a saved zip.
    number = models[0].number
    link = page.locator(f"#compare-panels .compare-card[data-number='{number}'] a[data-download]")
    page.evaluate(
        """(a) => { window.downloadStates = [];
          new MutationObserver(() => window.downloadStates.push(a.textContent))
            .observe(a, { childList: true, characterData: true, subtree: true }); }""",
        link.element_handle(),
    )
    with page.expect_download(timeout=120_000) as download_info:
        link.click()
    saved = tmp_path / "bundle.zip"
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename == f"nas-studio-search{job.pk}-trial{number}.zip"
    with zipfile.ZipFile(saved) as archive:
        assert {"model.onnx", "predict.py", "preprocessing.json"} <= set(archive.namelist())
    states = page.evaluate("window.downloadStates")
    assert states[0] == "Preparing…" and any(s.startswith("Downloading…") for s in states)
    page.wait_for_function(f"document.getElementById('compare-download-{number}').textContent.startsWith('Saved')")

    # On a phone the page stays within the screen (the table scrolls inside its own box).
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def _result(number: int, score: float, params: int) -> nas_engine.TrialResult:
    """A trained trial of a real MLP architecture, with the score and size the test needs."""
    import numpy as np

    from nas_engine.spaces.mlp import MLPSpace

    space = MLPSpace()
    arch = space.sample(np.random.default_rng(number))
    costs = nas_engine.Costs(
        params=params, flops=params, latency_ms=0.1, size_bytes=4 * params, memory_bytes=8 * params
    )
    return nas_engine.TrialResult(
        number=number, status=nas_engine.TrialStatus.COMPLETED, architecture=arch, arch_hash=space.arch_hash(arch),
        metrics={"score": score}, costs=costs, train_seconds=1.0,
    )  # fmt: skip


def test_a_live_update_rebuilds_only_the_rows_that_changed(
    live_server_url, alice, alice_client, browser_page, breast_cancer_csv
):
    """A job of many trials stays usable: an event redraws the table reusing every unchanged row's
    element, and rebuilds the rows whose values changed (here, trials that left the front)."""
    import concurrent.futures

    job = SearchJob.objects.create(
        owner=alice, dataset=upload_dataset(alice_client, breast_cancer_csv), target="diagnosis",
        task="classification", budget_seconds=300, status=SearchJob.Status.RUNNING,
    )  # fmt: skip
    # Playwright's loop runs in this thread, where channels' async_to_sync may not: record in another,
    # through the worker's own call (row saved, front refreshed, event sent).
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def record(*args) -> None:
        pool.submit(services.trial_record, job=job, result=_result(*args)).result()

    for args in [(0, 0.90, 100), (1, 0.95, 1000), (2, 0.80, 5000)]:  # 0 and 1 on the front, 2 off it
        record(*args)
    page = browser_page
    log_in(page, live_server_url)
    page.goto(f"{live_server_url}/searches/{job.pk}/")
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 3")
    page.eval_on_selector_all(ROWS, "rows => rows.forEach(r => { r.dataset.old = 'yes'; })")

    def old_rows() -> dict[int, bool]:
        return dict(
            page.eval_on_selector_all(ROWS, "rows => rows.map(r => [Number(r.dataset.number), !!r.dataset.old])")
        )

    record(3, 0.70, 9000)  # dominated: nothing else changes
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 4")
    assert old_rows() == {0: True, 1: True, 2: True, 3: False}
    page.eval_on_selector_all(ROWS, "rows => rows.forEach(r => { r.dataset.old = 'yes'; })")

    record(4, 0.99, 50)  # better and smaller than both front trials: they leave the front
    page.wait_for_function(f"document.querySelectorAll('{ROWS}').length === 5")
    assert old_rows() == {0: False, 1: False, 2: True, 3: True, 4: False}
    stars = dict(
        page.eval_on_selector_all(ROWS, "rows => rows.map(r => [Number(r.dataset.number), r.cells[11].textContent])")
    )
    assert stars == {0: "", 1: "", 2: "", 3: "", 4: "★"}
    assert set(job.trials.filter(on_front=True).values_list("number", flat=True)) == {4}
    pool.shutdown()
