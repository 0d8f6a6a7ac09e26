"""A new search space is one module plus one registry line: a tiny space defined here, registered in
``SPACES`` and nowhere else, runs a search, a refit, an export with its model card and a prediction."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from nas_engine import SearchConfig, export_bundle, finalize_front, load_final_model, run_search
from nas_engine.diagram import layer_diagram
from nas_engine.estimate import DataShape, estimate_search
from nas_engine.model_card import model_card
from nas_engine.results import Costs
from nas_engine.spaces import SPACES, SearchSpace

WIDTHS = (4, 8, 16)


class OneLayerSpace(SearchSpace):
    """Networks of one hidden tanh layer of 4, 8 or 16 units."""

    name = "one_layer"
    words = ("A one-hidden-layer tanh network", "tabular data")

    def sample(self, rng: np.random.Generator) -> dict:
        return self.from_decisions({"units": int(rng.choice(WIDTHS))})

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        others = [w for w in WIDTHS if w != arch["units"]]
        return self.from_decisions({"units": int(rng.choice(others))})

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        units = arch["units"]
        return torch.nn.Sequential(torch.nn.Linear(n_inputs, units), torch.nn.Tanh(), torch.nn.Linear(units, n_outputs))

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        units = arch["units"]
        params = n_inputs * units + units + units * n_outputs + n_outputs
        flops = n_inputs * units + units * n_outputs
        return Costs(
            params=params,
            flops=flops,
            size_bytes=4 * params,
            memory_bytes=4 * (params + n_inputs + units),
            latency_ms=None,
        )

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return self.costs({"units": WIDTHS[0]}, n_inputs, n_outputs).params

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return self.costs({"units": WIDTHS[0]}, n_inputs, n_outputs).flops

    def describe(self, arch: dict) -> list[str]:
        return [f"Dense {arch['units']} (tanh)", "Output"]

    def decisions(self) -> dict[str, tuple]:
        return {"units": WIDTHS}

    def from_decisions(self, choices: dict) -> dict:
        return {"space": self.name, "units": int(choices["units"]), "train": {"lr": 0.01, "batch_size": 32}}

    def to_decisions(self, arch: dict) -> dict:
        return {"units": arch["units"]}


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(SPACES, OneLayerSpace.name, OneLayerSpace)


def test_a_space_registered_in_one_line_searches_exports_and_predicts(registered, cancer_data, tmp_path):
    config = SearchConfig(target="diagnosis", space="one_layer", budget_seconds=20, max_trials=3, seed=0)
    shape = DataShape(rows=cancer_data.source_rows, n_inputs=cancer_data.n_features, n_outputs=cancer_data.n_outputs)
    assert estimate_search(config, shape).trials >= 1
    result = run_search(config, cancer_data, artifacts_dir=tmp_path)
    completed = [t for t in result.trials if t.status.value == "completed"]
    assert completed and all(t.architecture["space"] == "one_layer" for t in completed)
    assert result.best.metrics["accuracy"] > 0.8
    finals = finalize_front(result, cancer_data, artifacts_dir=tmp_path, seed=0)
    best = finals.get(result.best.number)
    model = load_final_model(
        result.best.architecture, best.weights_path, n_inputs=cancer_data.n_features, n_outputs=cancer_data.n_outputs
    )
    bundle = tmp_path / "bundle.zip"
    export_bundle(
        model=model,
        architecture=result.best.architecture,
        preprocessing=cancer_data.preprocessing,
        metrics={"validation": result.best.metrics, "test": best.test_metrics},
        out_path=bundle,
        costs=result.best.costs,
        check_rows=cancer_data.raw_test_rows,
    )
    with zipfile.ZipFile(bundle) as archive:
        card = archive.read("MODEL_CARD.md").decode()
        record = json.loads(archive.read("metrics.json"))
    assert "A one-hidden-layer tanh network" in card  # the space's own words, not the MLP's
    assert record["checks"]["predict_py_reproduces_predictions"]


def test_the_card_and_the_layer_diagram_follow_the_space_not_the_mlp(registered, cancer_data):
    arch = OneLayerSpace().from_decisions({"units": 8})
    costs = OneLayerSpace().costs(arch, cancer_data.n_features, cancer_data.n_outputs)
    text = model_card(
        architecture=arch, layers=["Dense 8 (tanh)"], preprocessing=cancer_data.preprocessing, metrics={}, costs=costs
    )
    assert "A one-hidden-layer tanh network" in text and "multi-layer perceptron" not in text
    boxes = layer_diagram(arch, cancer_data.preprocessing)
    assert [b.kind for b in boxes] == ["input", "dense", "head", "output"]
    assert boxes[1].title == "Linear 8" and boxes[1].details == ("tanh",) and boxes[2].params == 8 * 2 + 2
