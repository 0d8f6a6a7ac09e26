"""The model card as data (rendered to MODEL_CARD.md and to the model page) and the layer diagram:
one box per layer from input to prediction, with parameter counts that add up to the model's."""

from __future__ import annotations

import numpy as np
import pytest

from nas_engine.diagram import describe_architecture, layer_diagram
from nas_engine.export import analytic_costs
from nas_engine.model_card import (
    Bullets,
    CodeBlock,
    ModelCard,
    Paragraph,
    Table,
    build_model_card,
    metric_sources,
    model_card,
)
from nas_engine.results import Costs
from nas_engine.spaces import CNNSpace, MLPSpace


def preprocessing(*, numeric: int, categorical: int = 0, labels=("cat", "dog", "fox")) -> dict:
    """A preprocessing dict of the shape prepare_data writes (only what the card and diagram read)."""
    features = [{"name": f"n{i}", "kind": "numeric"} for i in range(numeric)]
    features += [{"name": f"c{i}", "kind": "categorical", "categories": ["x", "y"]} for i in range(categorical)]
    task = "classification" if labels else "regression"
    target = {"name": "animal", "labels": list(labels)} if labels else {"name": "price", "mean": 3.0, "std": 2.0}
    return {
        "task": task,
        "feature_columns": [f["name"] for f in features],
        "features": features,
        "target": target,
        "n_features": numeric + 3 * categorical,  # two categories and the "other" slot each
    }


def genomes(space, seed: int, count: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(count)]


TABULAR = preprocessing(numeric=5, categorical=2)
IMAGES = preprocessing(numeric=64)
COSTS = Costs(params=1234, flops=5678, latency_ms=0.25, size_bytes=4936)


def card_for(architecture: dict, prep: dict = TABULAR, metrics: dict | None = None) -> ModelCard:
    return build_model_card(
        architecture=architecture,
        layers=describe_architecture(architecture),
        preprocessing=prep,
        metrics=metrics or {"validation": {"accuracy": 0.91234, "best_epoch": 7}, "train_seconds": 1.5},
        costs=COSTS,
        dataset_name="pets.csv",
    )


def test_the_markdown_card_is_the_structured_card_written_out():
    arch = genomes(MLPSpace(), seed=0, count=1)[0]
    card = card_for(arch)
    text = model_card(
        architecture=arch,
        layers=describe_architecture(arch),
        preprocessing=TABULAR,
        metrics={"validation": {"accuracy": 0.91234, "best_epoch": 7}, "train_seconds": 1.5},
        costs=COSTS,
        dataset_name="pets.csv",
    )
    assert text == card.to_markdown()
    assert [s.title for s in card.sections] == ["Architecture", "Metrics", "Costs", "Inputs", "Limits", "How to run"]
    assert "**animal** (classification) from tabular data (`pets.csv`)." in text
    assert "Classes: cat, dog, fox." in text
    assert "| validation: accuracy | 0.9123 |" in text and "| training time (s) | 1.5 |" in text
    assert "- Parameters: 1,234" in text and "- Latency (1 row, 1 CPU thread): 250 µs" in text
    assert "- Size (float32 weights): 4.8 KB (4,936 bytes)" in text  # the job page's units
    assert "```\npip install numpy onnxruntime\npython predict.py INPUT.csv -o predictions.csv\n```" in text


def test_the_card_sections_hold_typed_blocks_a_template_can_draw():
    arch = genomes(MLPSpace(), seed=1, count=1)[0]
    sections = {s.title: s.blocks for s in card_for(arch).sections}
    (layers,) = sections["Architecture"]
    assert isinstance(layers, Bullets) and list(layers.items) == describe_architecture(arch)
    chosen_by = sections["Metrics"][0].spans[0].text  # what the search optimised, how the rows were split
    assert "chose its models by accuracy" in chosen_by and "Rows were split at random" in chosen_by
    table = sections["Metrics"][3]
    assert isinstance(table, Table) and table.kind == "table"
    assert dict(table.rows) == {
        "validation: accuracy": "0.9123", "validation: best epoch": "7", "training time (s)": "1.5"
    }  # fmt: skip
    assert isinstance(sections["How to run"][0], CodeBlock) and sections["How to run"][0].kind == "code"
    usage = sections["How to run"][1]
    assert isinstance(usage, Paragraph)
    assert ("predict.py", "code") in [(span.text, span.style) for span in usage.spans]


SPLITS = {"train": 600, "validation": 200, "test": 200}


def test_the_card_says_which_rows_each_number_came_from():
    arch = genomes(MLPSpace(), seed=1, count=1)[0]
    metrics = {
        "validation": {"accuracy": 0.9},
        "test": {"accuracy": 0.88},
        "refit_on_train_and_validation": True,
    }
    card = build_model_card(
        architecture=arch, layers=describe_architecture(arch), preprocessing=TABULAR, metrics=metrics, costs=COSTS,
        splits=SPLITS,
    )  # fmt: skip
    sources = {s.title: s.blocks for s in card.sections}["Metrics"][2]
    assert isinstance(sources, Bullets)
    validation, test, trained = sources.items
    assert validation.startswith("validation: the network as the search trained it on the training split (600 rows)")
    assert "scored on the validation split (200 rows)" in validation
    assert test.startswith("test: this model, trained again from scratch on the training and validation splits (800")
    assert "scored once on the test split (200 rows)" in test
    assert trained == (
        "The model in this bundle was trained on the training and validation splits (800 rows); "
        "the test split never trained it."
    )
    assert f"- {test}" in card.to_markdown()


def test_the_sources_of_k_fold_ensemble_compressed_and_unrefit_models():
    arch = genomes(MLPSpace(), seed=1, count=1)[0]
    folds = metric_sources(architecture=arch, metrics={"validation": {"score": 0.9, "cv_folds": 5}}, splits=SPLITS)
    assert folds[0].startswith("validation: the mean over 5 folds of the training and validation splits (800 rows)")
    assert folds[1].startswith("test: none") and "trained on the training split (600 rows)" in folds[2]
    ensemble = {"space": "ensemble", "members": [1, 2], "member_architectures": [arch, arch]}
    lines = metric_sources(architecture=ensemble, metrics={"validation": {"score": 0.9}, "test": {"score": 0.8}})
    assert lines[0].startswith("validation: its member networks as the search trained them on the training split,")
    assert "trained again from scratch" in lines[1]  # no counts without the splits
    k_fold = metric_sources(architecture=ensemble, metrics={"validation": {"score": 0.9, "cv_folds": 5}}, splits=SPLITS)
    assert k_fold[0].startswith("validation: out-of-fold over 5 folds of the training and validation splits (800")
    pruned = {**arch, "compression": {"kind": "prune", "ratio": 0.5, "parent": 1}}
    lines = metric_sources(architecture=pruned, metrics={"validation": {"score": 0.9}, "test": {"score": 0.8}})
    assert lines[1].startswith("test: this model as it ships (not trained again)")
    assert "then compressed" in lines[2]


def test_the_card_names_what_kind_of_network_it_describes():
    cnn = genomes(CNNSpace(image_shape=(1, 8, 8)), seed=2, count=1)[0]
    assert "A convolutional network" in card_for(cnn, IMAGES).to_markdown()
    assert "from images given as pixel columns" in card_for(cnn, IMAGES).to_markdown()
    members = genomes(MLPSpace(), seed=3, count=2)
    ensemble = {"space": "ensemble", "task": "classification", "members": [1, 4], "member_architectures": members}
    text = card_for(ensemble).to_markdown()
    assert "An ensemble of 2 networks (their predictions averaged)" in text and "Member: trial 4" in text


def test_a_regression_card_lists_no_classes():
    arch = genomes(MLPSpace(), seed=4, count=1)[0]
    text = card_for(arch, preprocessing(numeric=3, labels=()), {"validation": {"r2": 0.5}}).to_markdown()
    assert "**price** (regression)" in text and "Classes:" not in text


@pytest.mark.parametrize("seed", range(4))
def test_an_mlp_diagram_has_one_box_per_layer_and_its_parameters_add_up(seed):
    for arch in genomes(MLPSpace(), seed=seed, count=6):
        boxes = layer_diagram(arch, TABULAR)
        assert [b.kind for b in boxes] == ["input", *["dense"] * len(arch["layers"]), "head", "output"]
        assert [b.title for b in boxes[1:-2]] == [f"Dense {layer['units']}" for layer in arch["layers"]]
        assert [b.shape for b in boxes[1:-2]] == [str(layer["units"]) for layer in arch["layers"]]
        assert boxes[0].shape == "11" and boxes[-2].shape == "3" and boxes[-2].title == "Dense 3 (output layer)"
        assert sum(b.params or 0 for b in boxes) == analytic_costs(arch, 11, 3).params
        assert all(b.params and b.params > 0 for b in boxes[1:-1])


def test_the_diagram_tells_the_input_and_the_prediction_in_the_users_terms():
    linear = {"space": "mlp", "layers": [], "norm": "none", "residual": False}
    boxes = layer_diagram(linear, TABULAR)
    assert [b.kind for b in boxes] == ["input", "head", "output"]
    assert boxes[0].details == ("7 columns: 5 numeric, 2 categorical", "encoded as 11 numbers (categories one-hot)")
    assert "a linear model: no hidden layer" in boxes[1].details and boxes[1].params == 11 * 3 + 3
    assert boxes[-1].title == "Prediction: animal" and boxes[-1].details[0] == "one of 3 classes: cat, dog, fox"
    regression = layer_diagram(linear, preprocessing(numeric=4, labels=()))
    assert regression[0].details == ("4 columns, all numeric",)
    assert regression[-1].title == "Prediction: price" and regression[-2].params == 4 + 1


@pytest.mark.parametrize("seed", range(3))
def test_a_cnn_diagram_has_stem_stages_pooling_and_head_with_real_shapes(seed):
    for arch in genomes(CNNSpace(image_shape=(1, 8, 8)), seed=seed, count=4):
        boxes = layer_diagram(arch, IMAGES)
        stages = arch["stages"]
        assert [b.kind for b in boxes] == ["input", "stem", *["stage"] * len(stages), "pool", "head", "output"]
        assert boxes[0].title == "Input image" and boxes[0].shape == "1×8×8"
        assert boxes[1].shape == f"{arch['stem']['channels']}×8×8"
        for box, stage in zip(boxes[2:-3], stages, strict=True):
            assert box.shape.startswith(f"{stage['channels']}×") and f"kernel {stage['kernel']}×" in box.details[0]
        assert boxes[2].shape.endswith("×4×4") and "downsamples 8×8 → 4×4" in boxes[2].details
        assert boxes[-3].shape == str(stages[-1]["channels"]) and boxes[-3].params is None
        assert sum(b.params or 0 for b in boxes) == analytic_costs(arch, 64, 3).params


def test_an_ensemble_diagram_draws_each_member_side_by_side():
    members = [*genomes(MLPSpace(), seed=5, count=3)]
    ensemble = {"space": "ensemble", "task": "classification", "members": [2, 0, 7], "member_architectures": members}
    boxes = layer_diagram(ensemble, TABULAR)
    assert [b.kind for b in boxes] == ["input", "ensemble", "output"]
    group = boxes[1]
    assert [branch.number for branch in group.branches] == [2, 0, 7]
    for branch, member in zip(group.branches, members, strict=True):
        assert [b.kind for b in branch.boxes] == [*["dense"] * len(member["layers"]), "head"]
        assert branch.params == analytic_costs(member, 11, 3).params == sum(b.params or 0 for b in branch.boxes)
    assert group.params == analytic_costs(ensemble, 11, 3).params
    assert "their class probabilities are averaged" in group.details
