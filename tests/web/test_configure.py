"""The configure form as served (sliders, hints, advanced options) and its live estimate endpoint."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.test.html import parse_html
from django.urls import reverse

import nas_engine
from nas_engine.config import DEFAULT_FIDELITY, DEFAULT_STRATEGY, SearchConfig
from tests.web.helpers import upload_dataset
from tests.web.test_search_create import _elements, field_box
from webapp.searches import services
from webapp.searches.forms import SearchJobForm
from webapp.searches.models import SearchJob

pytestmark = pytest.mark.django_db

SETTINGS = {
    "target": "diagnosis", "task": "auto", "budget_seconds": 60, "cost_objective": "params", "strategy": "tpe",
    "space": "auto", "fidelity": "none", "seed": 0,
}  # fmt: skip


@pytest.fixture
def dataset(alice_client, breast_cancer_csv):
    return upload_dataset(alice_client, breast_cancer_csv)


def estimate(client, dataset, **fields):
    return client.get(reverse("search_estimate", args=[dataset.pk]), {**SETTINGS, **fields})


def page(client, dataset) -> str:
    response = client.get(reverse("dataset_detail", args=[dataset.pk]))
    assert response.status_code == 200
    return response.content.decode()


def by_id(html: str, element_id: str):
    return next(e for e in _elements(parse_html(html)) if dict(e.attributes).get("id") == element_id)


def _text_of(element) -> str:
    return "".join(child if isinstance(child, str) else _text_of(child) for child in element.children)


# --- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_params", "max_flops", "max_latency_ms", "budget_seconds"])
def test_each_limit_and_the_budget_has_a_labelled_slider_over_a_plain_number_input(alice_client, dataset, name):
    box = field_box(page(alice_client, dataset), name)
    inputs = {dict(e.attributes).get("type"): dict(e.attributes) for e in _elements(box) if e.name == "input"}
    assert "name" not in inputs["range"]  # the slider posts nothing; the number input carries the value
    assert inputs["number"]["name"] == name
    labels = [dict(e.attributes)["for"] for e in _elements(box) if e.name == "label"]
    assert labels == [inputs["number"]["id"]]  # without JavaScript the label names the number input
    assert dict(box.attributes)["data-unit"]


def test_the_budget_slider_runs_from_5_seconds_to_the_site_cap(alice_client, dataset):
    box = dict(field_box(page(alice_client, dataset), "budget_seconds").attributes)
    assert (box["data-low"], box["data-high"]) == ("5", str(settings.MAX_BUDGET_SECONDS))


def test_the_page_passes_the_profile_and_the_strategy_descriptions_to_its_script(alice_client, dataset):
    html = page(alice_client, dataset)
    profile = json.loads(_text_of(by_id(html, "dataset-profile")))
    # Every column of a CSV may be the target; each comes with the metric the form would suggest for it.
    assert [
        {k: v for k, v in c.items() if k not in ("suggested_metric", "metric_reason")} for c in profile["columns"]
    ] == (dataset.profile["columns"])
    assert {c["suggested_metric"] for c in profile["columns"]} <= {"accuracy", "r2", "balanced_accuracy"}
    diagnosis = next(c for c in profile["columns"] if c["name"] == "diagnosis")
    assert (
        diagnosis["suggested_metric"] == "accuracy"
        and "share of rows whose class is right" in diagnosis["metric_reason"]
    )
    descriptions = json.loads(_text_of(by_id(html, "strategy-descriptions")))
    assert descriptions == {name: cls.description for name, cls in nas_engine.STRATEGIES.items()}
    url = dict(by_id(html, "search-form").attributes)["data-estimate-url"]
    assert url == reverse("search_estimate", args=[dataset.pk])


def test_the_default_strategy_is_the_engines_and_its_explanation_is_shown(alice_client, dataset):
    html = page(alice_client, dataset)
    options = [dict(e.attributes) for e in _elements(field_box(html, "strategy")) if e.name == "option"]
    assert [o["value"] for o in options if "selected" in o] == [DEFAULT_STRATEGY]
    assert "random" in [o["value"] for o in options]
    assert _text_of(by_id(html, "strategy-hint")).strip() == nas_engine.STRATEGIES[DEFAULT_STRATEGY].description


def test_the_form_the_model_and_the_cli_start_from_the_same_defaults(alice_client, dataset):
    """One place, nas_engine.config: the CLI's flags, the form's initial values and SearchJob's field
    defaults (test_cli checks the flags against SearchConfig)."""
    form = SearchJobForm(dataset=dataset)
    assert DEFAULT_STRATEGY == SearchConfig.default("strategy") and DEFAULT_FIDELITY == SearchConfig.default("fidelity")
    assert form.fields["strategy"].initial == SearchJob._meta.get_field("strategy").default == DEFAULT_STRATEGY
    assert form.fields["fidelity"].initial == SearchJob._meta.get_field("fidelity").default == DEFAULT_FIDELITY
    assert form.fields["budget_seconds"].initial == SearchConfig.default("budget_seconds")
    html = page(alice_client, dataset)
    fidelity = [dict(e.attributes) for e in _elements(field_box(html, "fidelity")) if e.name == "option"]
    assert [o["value"] for o in fidelity if "selected" in o] == [DEFAULT_FIDELITY]
    job = services.search_create(user=dataset.owner, dataset=dataset, target="diagnosis", task="classification",
                                 budget_seconds=60)  # fmt: skip
    assert (job.strategy, job.fidelity) == (DEFAULT_STRATEGY, DEFAULT_FIDELITY)
    assert job.to_config() == SearchConfig(
        target="diagnosis", task="classification", budget_seconds=60, objectives=job.objectives
    )


def test_one_list_maps_a_job_to_the_engine_and_a_rerun_copies_it(alice_client, dataset):
    """ENGINE_SETTINGS: every entry is a SearchJob field and a SearchConfig setting; search_create takes
    them (nothing else), to_config passes every one on, and a re-run copies them."""
    import dataclasses

    from webapp.searches.models import ENGINE_SETTINGS

    config_fields = {f.name for f in dataclasses.fields(SearchConfig)}
    assert set(ENGINE_SETTINGS) <= config_fields and all(SearchJob._meta.get_field(n) for n in ENGINE_SETTINGS)
    chosen = {
        "target": "diagnosis", "task": "classification", "budget_seconds": 90, "max_trials": 7, "max_params": 5000,
        "max_flops": 10**6, "max_latency_ms": 2.5, "max_size_bytes": 40_000, "max_memory_bytes": 10**6,
        "compress": True, "strategy": "random", "space": "mlp", "fidelity": "hyperband",
        "objectives": ["score", "flops"], "seed": 4, "augment": "none", "ignore": ["mean radius"],
        "class_weights": "balanced", "metric": "f1_macro", "split": "group:mean radius", "split_ratio": "70/15/15",
        "column_types": ["mean area=categorical"],
    }  # fmt: skip
    assert set(chosen) == set(ENGINE_SETTINGS)  # a new setting must be chosen here too
    job = services.search_create(user=dataset.owner, dataset=dataset, **chosen)
    config = job.to_config()
    assert {name: getattr(config, name) for name in chosen} == chosen | {
        "objectives": ("score", "flops"),
        "ignore": ("mean radius",),
        "column_types": ("mean area=categorical",),
    }
    assert services.search_rerun(job=job).to_config() == config
    with pytest.raises(TypeError, match="does not know: colour"):
        services.search_create(user=dataset.owner, dataset=dataset, colour="red", **chosen)


def test_the_kinds_of_network_are_the_engines_spaces_a_new_one_included(alice_client, dataset, monkeypatch):
    from nas_engine.spaces import SPACES
    from tests.engine.test_extra_space import OneLayerSpace

    offered = [value for value, _ in SearchJobForm(dataset=dataset).fields["space"].choices]
    assert offered == ["auto", *SPACES]
    monkeypatch.setitem(SPACES, OneLayerSpace.name, OneLayerSpace)  # registered in one line, nothing else
    form = SearchJobForm(dataset=dataset)
    assert OneLayerSpace.name in [value for value, _ in form.fields["space"].choices]
    assert OneLayerSpace.name in [value for value, _ in SearchJob._meta.get_field("space").choices]
    html = page(alice_client, dataset)
    options = [dict(e.attributes)["value"] for e in _elements(field_box(html, "space")) if e.name == "option"]
    assert options == ["auto", *SPACES]


def test_the_objectives_are_radio_buttons_with_params_chosen(alice_client, dataset):
    box = field_box(page(alice_client, dataset), "cost_objective")
    radios = [dict(e.attributes) for e in _elements(box) if e.name == "input"]
    assert [r["value"] for r in radios] == ["params", "flops", "latency_ms", "size_bytes", "memory_bytes"]
    assert all(r["type"] == "radio" and r["name"] == "cost_objective" for r in radios)
    assert [r["value"] for r in radios if "checked" in r] == ["params"]


def test_the_advanced_options_are_collapsed_and_hold_the_expert_settings(alice_client, dataset):
    html = page(alice_client, dataset)
    advanced = by_id(html, "advanced")
    assert advanced.name == "details" and "open" not in dict(advanced.attributes)
    inside = {dict(e.attributes).get("data-field") for e in _elements(advanced)}
    assert {"third_objective", "max_size_kb", "max_trials", "space", "fidelity", "seed"} <= inside
    assert not {"target", "budget_seconds", "max_params", "strategy"} & inside


# --- the estimate ----------------------------------------------------------------------------


def test_the_estimate_says_how_many_models_fit_the_budget(alice_client, dataset):
    response = estimate(alice_client, dataset)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["trials"] >= 1 and body["seconds_per_trial"] > 0
    assert " models in 1 min (about " in body["text"]
    assert body["capped"] is False and body["warning"] == ""


def test_a_bigger_budget_buys_more_models(alice_client, dataset):
    # both budgets of at least 100 s: this small table's trials are 5-fold at both (evaluator.auto_cv_folds)
    short = estimate(alice_client, dataset, budget_seconds=120).json()["trials"]
    long = estimate(alice_client, dataset, budget_seconds=3600).json()["trials"]
    assert long > 10 * short
    quick = estimate(alice_client, dataset, budget_seconds=60).json()
    assert quick["trials"] > estimate(alice_client, dataset, budget_seconds=100).json()["trials"]  # 5-fold from 100 s


def test_models_trained_at_once_buy_more_models_and_zero_is_priced_as_one(alice_client, dataset):
    one, auto = (estimate(alice_client, dataset, parallel_trials=n).json() for n in (1, 0))
    three = estimate(alice_client, dataset, parallel_trials=3).json()
    assert one == auto and 2.7 <= three["trials"] / one["trials"] <= 3.3 and "3 at once" in three["text"]
    assert "parallel_trials" in estimate(alice_client, dataset, parallel_trials=-1).json()["errors"]


def test_the_estimate_honours_the_trial_limit_and_the_advanced_settings(alice_client, dataset):
    capped = estimate(alice_client, dataset, max_trials=3).json()
    assert (capped["trials"], capped["capped"]) == (3, True)
    full = estimate(alice_client, dataset).json()["trials"]
    assert estimate(alice_client, dataset, fidelity="hyperband").json()["trials"] > full
    assert (
        estimate(alice_client, dataset, max_params=1000).json()["seconds_per_trial"]
        < (estimate(alice_client, dataset).json()["seconds_per_trial"])
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"budget_seconds": 0}, "budget_seconds", "greater than"),
        ({"budget_seconds": "soon"}, "budget_seconds", "whole number"),
        ({"max_params": 10}, "max_params", "No network fits under 10 parameters: the smallest one for this data has"),
        ({"max_flops": 3}, "max_flops", "No network fits under 3 FLOPs"),
        ({"strategy": "telepathy"}, "strategy", "Select a valid choice"),
        ({"seed": -3}, "seed", "greater than"),
        ({"target": "nope"}, "target", "not in this dataset"),
        ({"space": "cnn"}, "space", "pixel columns"),
    ],
    ids=["zero-budget", "text-budget", "no-network-fits", "no-network-is-that-cheap", "unknown-strategy",
         "negative-seed", "unknown-target", "cnn-on-tabular"],
)  # fmt: skip
def test_bad_settings_get_400_with_the_errors_by_field(alice_client, dataset, fields, field, message):
    response = estimate(alice_client, dataset, **fields)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert message in " ".join(errors[field])


def test_the_estimate_of_another_users_dataset_is_not_found(bob_client, dataset):
    assert estimate(bob_client, dataset).status_code == 404


def test_the_estimate_needs_a_login(dataset):
    response = estimate(Client(), dataset)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_estimate_only_answers_get_and_starts_nothing(alice_client, dataset):
    assert alice_client.post(reverse("search_estimate", args=[dataset.pk]), SETTINGS).status_code == 405
    estimate(alice_client, dataset)
    assert not SearchJob.objects.exists()


def test_the_estimate_reads_a_categorical_dataset_without_the_file(alice_client, tmp_path):
    path = tmp_path / "pets.csv"
    rows = [f"{i % 7},{['cat', 'dog', 'fish'][i % 3]},{['yes', 'no'][(i // 3) % 2]}" for i in range(120)]
    path.write_text("age,kind,adopted\n" + "\n".join(rows) + "\n")
    dataset = upload_dataset(alice_client, path)
    dataset.file.delete(save=False)  # the estimate works from the stored profile alone
    response = estimate(alice_client, dataset, target="adopted", max_params=10)
    # inputs: age + 3 kinds + an "other" slot = 5; outputs 2: a logistic regression has 12 parameters
    assert "the smallest one for this data has 12" in " ".join(response.json()["errors"]["max_params"])
