"""The configure form in real Chromium: sliders moved with the keyboard and the mouse show human
units and set the real inputs, the task and strategy are explained, the estimate follows the
budget and refuses impossible limits live, and the form starts the search it shows."""

import pytest
from django.conf import settings

import nas_engine
from tests.conftest import PASSWORD
from tests.web.helpers import upload_dataset
from webapp.searches.models import SearchJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your datasets")


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def wait_for_text(page, selector: str, words: str) -> None:
    """Wait until an element's text contains ``words`` (the estimate arrives after a debounce)."""
    page.wait_for_function(
        "([selector, words]) => { const node = document.querySelector(selector);"
        " return node !== null && node.textContent.includes(words); }",
        arg=[selector, words],
    )


def press(page, selector: str, *keys: str) -> None:
    page.focus(selector)
    for key in keys:
        page.keyboard.press(key)


def wait_until_finished(page) -> None:
    """The search the form started runs on the suite's worker (one model: max_trials=1)."""
    page.wait_for_function("document.getElementById('job-status').textContent.trim() === 'finished'", timeout=120_000)


def test_a_practitioner_configures_a_search_with_sliders_and_sees_the_estimate(
    live_server_url, celery_worker_process, alice, alice_client, browser_page, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, live_server_url)
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")

    # Phone width: nothing sticks out sideways; the sliders replaced the number inputs.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for name in ("max_params", "max_flops", "max_latency_ms", "max_memory_kb", "budget_seconds"):
        assert page.is_visible(f"#id_{name}_slider") and page.is_hidden(f"input[name={name}]")
        assert page.get_attribute(f"label[for=id_{name}_slider]", "for") == f"id_{name}_slider"
    page.set_viewport_size({"width": 1280, "height": 900})

    # The estimate for the defaults (60 s), from the server.
    wait_for_text(page, "#estimate-text", " models in 1 min")
    assert text(page, "#id_budget_seconds_text") == "1 min" and text(page, "#budget-value") == "60"

    # The detected task in words, and the override noted.
    assert text(page, "#task-hint") == "looks like classification: 2 classes"
    page.select_option("select[name=task]", "regression")
    assert text(page, "#task-hint") == "looks like classification: 2 classes; you chose regression"
    page.select_option("select[name=task]", "auto")
    page.select_option("select[name=target]", "mean radius")
    assert text(page, "#task-hint") == "looks like regression: numbers from 6.981 to 28.11"
    page.select_option("select[name=target]", "diagnosis")

    # The strategy: the engine's default (nas_engine.config), each option explained when chosen.
    assert page.input_value("select[name=strategy]") == nas_engine.config.DEFAULT_STRATEGY
    assert text(page, "#strategy-hint") == nas_engine.STRATEGIES[nas_engine.config.DEFAULT_STRATEGY].description
    page.select_option("select[name=strategy]", "random")
    assert text(page, "#strategy-hint") == nas_engine.STRATEGIES["random"].description

    # Parameters with the keyboard: no limit at first, Home is the lowest stop (too small for any
    # network: the page says so by the field before launch), arrows walk the 1-2-5 stops.
    assert text(page, "#id_max_params_text") == "no limit"
    press(page, "#id_max_params_slider", "Home")
    assert text(page, "#id_max_params_text") == "10 params"
    assert page.input_value("input[name=max_params]") == "10"
    assert page.get_attribute("#id_max_params_slider", "aria-valuetext") == "10 params"
    wait_for_text(page, '[data-field="max_params"] .error', "No network fits under 10 parameters")
    wait_for_text(page, "#estimate-text", "the smallest one for this data has 62")
    press(page, "#id_max_params_slider", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight")
    assert text(page, "#id_max_params_text") == "500 params"  # 10 → 20 → 50 → 100 → 200 → 500
    assert page.input_value("input[name=max_params]") == "500"
    page.wait_for_selector('[data-field="max_params"] .error', state="detached")
    wait_for_text(page, "#estimate-text", " models in 1 min")
    press(page, "#id_max_params_slider", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowLeft")
    assert text(page, "#id_max_params_text") == "2 k params"
    assert page.input_value("input[name=max_params]") == "2000"

    # FLOPs: End is "no limit" (an empty value), a step back the highest limit.
    press(page, "#id_max_flops_slider", "End")
    assert text(page, "#id_max_flops_text") == "no limit"
    assert page.input_value("input[name=max_flops]") == ""
    press(page, "#id_max_flops_slider", "ArrowLeft")
    assert text(page, "#id_max_flops_text") == "10 G FLOPs"
    press(page, "#id_max_flops_slider", "End")

    # Latency: 0.01 ms up the stops to 2 ms.
    press(page, "#id_max_latency_ms_slider", "Home")
    assert text(page, "#id_max_latency_ms_text") == "10 µs"
    press(page, "#id_max_latency_ms_slider", *["ArrowRight"] * 7)  # .02 .05 .1 .2 .5 1 2
    assert text(page, "#id_max_latency_ms_text") == "2.0 ms"
    assert page.input_value("input[name=max_latency_ms]") == "2"

    # The budget with the keyboard, then the mouse; the estimate follows it.
    press(page, "#id_max_memory_kb_slider", "Home")
    assert page.input_value("input[name=max_memory_kb]") == "1"
    assert page.get_attribute("#id_max_memory_kb_slider", "aria-valuetext") == "1 KB"
    press(page, "#id_max_memory_kb_slider", *["ArrowRight"] * 4)  # 2 5 10 20 KB
    assert page.input_value("input[name=max_memory_kb]") == "20"
    assert page.get_attribute("#id_max_memory_kb_slider", "aria-valuetext") == "20 KB"
    press(page, "#id_max_memory_kb_slider", "End")
    assert page.input_value("input[name=max_memory_kb]") == ""

    press(page, "#id_budget_seconds_slider", "Home")
    assert text(page, "#id_budget_seconds_text") == "5 s" and text(page, "#budget-value") == "5"
    wait_for_text(page, "#estimate-text", " in 5 s (about")
    few = text(page, "#estimate-text")
    press(page, "#id_budget_seconds_slider", "End")
    assert page.input_value("input[name=budget_seconds]") == str(settings.MAX_BUDGET_SECONDS)
    box = page.locator("#id_budget_seconds_slider").bounding_box()
    middle = box["y"] + box["height"] / 2
    page.mouse.click(box["x"] + 2, middle)  # the left end of the track
    assert page.input_value("input[name=budget_seconds]") == "5"
    page.mouse.move(box["x"] + 2, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, middle, steps=8)  # drag to the middle
    page.mouse.up()
    dragged = int(page.input_value("input[name=budget_seconds]"))
    assert 5 < dragged < settings.MAX_BUDGET_SECONDS
    words = text(page, "#id_budget_seconds_text")
    assert words != "5 s" and words.split()[-1] in ("s", "min", "h")
    assert page.get_attribute("#id_budget_seconds_slider", "aria-valuetext") == words
    page.wait_for_function(
        "few => { const t = document.getElementById('estimate-text').textContent;"
        " return t !== few && t.includes(' models in '); }",
        arg=few,
    )
    assert text(page, "#estimate-text") != few

    # Advanced options: collapsed until opened, then usable.
    assert page.is_hidden("input[name=max_trials]")
    page.click("#advanced summary")
    page.fill("input[name=max_trials]", "1")
    wait_for_text(page, "#estimate-text", "1 model (your limit)")
    page.select_option("select[name=fidelity]", "hyperband")

    page.click("#search-form button[type=submit]")
    page.wait_for_url(f"{live_server_url}/searches/*/")
    job = SearchJob.objects.get()
    assert (job.strategy, job.task, job.max_trials, job.fidelity) == ("random", "classification", 1, "hyperband")
    assert (job.max_params, job.max_flops, job.max_latency_ms, job.budget_seconds) == (2000, None, 2.0, dragged)
    wait_until_finished(page)
    job.refresh_from_db()
    assert job.status == SearchJob.Status.FINISHED and job.trials.filter(status="completed").count() >= 1


def test_without_javascript_the_plain_inputs_still_start_a_search(
    live_server_url, celery_worker_process, alice, alice_client, browser_page, breast_cancer_csv
):
    dataset = upload_dataset(alice_client, breast_cancer_csv)
    page = browser_page
    page.context.route("**/static/js/configure.js", lambda route: route.abort())  # as if scripts were off
    log_in(page, live_server_url)
    page.goto(f"{live_server_url}/datasets/{dataset.pk}/")
    assert page.is_hidden("#id_max_params_slider")
    page.fill("input[name=max_params]", "10")  # too small for any network
    page.fill("input[name=budget_seconds]", "45")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector('[data-field="max_params"] .error')
    assert "No network fits under 10 parameters" in text(page, '[data-field="max_params"] .error')
    assert not SearchJob.objects.exists()
    page.fill("input[name=max_params]", "")
    page.click("#advanced summary")
    page.fill("input[name=max_trials]", "1")
    page.click("#search-form button[type=submit]")
    page.wait_for_url(f"{live_server_url}/searches/*/")
    job = SearchJob.objects.get()
    assert (job.budget_seconds, job.max_params, job.max_trials) == (45, None, 1)
    wait_until_finished(page)
