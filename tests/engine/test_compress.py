"""Compressed variants: pruning removes the right share, int8 graphs are smaller and match their
torch twin, and an int8 variant exports as a working bundle."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import onnx
import pytest
import torch

from nas_engine import ConstraintError, export_bundle, load_final_model, prepare_data
from nas_engine.compress import (
    INT8_TOLERANCE,
    OnnxModel,
    compress_trial,
    int8_parity,
    int8_twin,
    kept_units,
    prune,
    quantize_onnx,
    zero_fraction,
)
from nas_engine.compress import _prune_units as prune_units
from nas_engine.evaluator import Trainer, TrainSettings, evaluate_model, predict_raw
from nas_engine.onnx_io import export_onnx
from nas_engine.results import TrialResult, TrialStatus
from nas_engine.runtime import decode_outputs, encode_rows
from nas_engine.spaces import space_for_architecture
from tests.data_files import write_sklearn_csv

TRAIN = {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}
MLP = {
    "space": "mlp",
    "layers": [
        {"units": 64, "activation": "relu", "dropout": 0.1},
        {"units": 32, "activation": "gelu", "dropout": 0.0},
    ],
    "norm": "batch",
    "residual": False,
    "train": TRAIN,
}
CNN = {
    "space": "cnn",
    "input_shape": [1, 8, 8],
    "activation": "relu",
    "stem": {"channels": 8},
    "stages": [
        {"block": "residual", "kernel": 3, "channels": 16, "blocks": 1},
        {"block": "inverted", "kernel": 3, "channels": 16, "blocks": 1, "expansion": 3},
    ],
    "head": {"dropout": 0.0},
    "train": TRAIN,
}


def trained_parent(arch, data, folder, *, epochs: int) -> TrialResult:
    """A completed trial as a search leaves it: trained on the train split, weights saved."""
    space = space_for_architecture(arch)
    torch.manual_seed(0)
    trainer = Trainer(
        space.build_model(arch, data.n_features, data.n_outputs),
        X_train=data.X_train,
        y_train=data.y_train,
        task=data.task,
        settings=TrainSettings.from_architecture(arch),
        seed=0,
        validation=(data.X_val, data.y_val),
    )
    trainer.train(until_epoch=epochs)
    outcome = trainer.finish()
    weights = folder / "trial_0.pt"
    torch.save(outcome.model.state_dict(), weights)
    return TrialResult(
        number=0,
        status=TrialStatus.COMPLETED,
        architecture=arch,
        arch_hash=space.arch_hash(arch),
        metrics=outcome.metrics,
        costs=space.costs(arch, data.n_features, data.n_outputs),
        train_seconds=outcome.seconds,
        weights_path=str(weights),
    )


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def parent(cancer_data, artifacts) -> TrialResult:
    return trained_parent(MLP, cancer_data, artifacts, epochs=8)


@pytest.fixture(scope="module")
def int8_variant(parent, cancer_data, artifacts) -> TrialResult:
    return compress_trial(parent, cancer_data, kind="int8", ratio=None, number=3, artifacts_dir=artifacts, seed=0)


@pytest.mark.parametrize(("ratio", "number"), [(0.5, 1), (0.75, 2)])
def test_pruning_an_mlp_drops_that_share_of_units_and_reports_the_smaller_network(
    parent, cancer_data, artifacts, ratio, number
):
    variant = compress_trial(
        parent, cancer_data, kind="prune", ratio=ratio, number=number, artifacts_dir=artifacts, seed=0
    )
    units = [layer["units"] for layer in variant.architecture["layers"]]
    assert units == [round((1 - ratio) * 64), round((1 - ratio) * 32)]
    assert variant.architecture["compression"] == {"kind": "prune", "ratio": ratio, "parent": 0}
    assert variant.status is TrialStatus.COMPLETED and variant.arch_hash != parent.arch_hash
    model = load_final_model(variant.architecture, variant.weights_path, n_inputs=30, n_outputs=2)
    assert variant.costs.params == n_params(model) < parent.costs.params
    assert variant.costs.size_bytes == 4 * variant.costs.params and variant.costs.latency_ms > 0
    validation = evaluate_model(model, cancer_data.X_val, cancer_data.y_val, task="classification")
    assert variant.metrics["accuracy"] == pytest.approx(validation["accuracy"]) and validation["accuracy"] > 0.8
    assert variant.metrics["parent"] == 0 and variant.metrics["compression"] == "prune"


def test_structured_pruning_keeps_the_strongest_units_and_their_weights(cancer_data):
    arch = {**MLP, "norm": "none", "layers": [{**layer, "dropout": 0.0} for layer in MLP["layers"]]}
    torch.manual_seed(1)
    model = space_for_architecture(arch).build_model(arch, 30, 2).eval()
    first = model[0]
    with torch.no_grad():  # half the first layer's units dead (zero in, zero bias), the rest strong
        first.weight[::2] = 0.0
        first.bias[::2] = 0.0
        first.weight[1::2] *= 10
    pruned, pruned_arch = prune_units(model, arch, 0.5, 30, 2)
    assert [layer["units"] for layer in pruned_arch["layers"]] == [32, 16]
    assert torch.equal(pruned[0].weight, first.weight[1::2])
    # The first layer lost only dead units, so the units both layers kept compute what they did.
    strongest = model[2].weight.abs().sum(dim=1).topk(16).indices.sort().values
    X = torch.from_numpy(cancer_data.X_val)
    with torch.inference_mode():
        assert torch.allclose(pruned[:2](X), model[:2](X)[:, 1::2])
        assert torch.allclose(pruned[:4](X), model[:4](X)[:, strongest], atol=1e-6)
        assert pruned(X).shape == (len(X), 2)


def test_pruning_rejects_a_ratio_outside_zero_to_one(parent, cancer_data, artifacts):
    with pytest.raises(ConstraintError, match="between 0 and 1"):
        compress_trial(parent, cancer_data, kind="prune", ratio=1.0, number=9, artifacts_dir=artifacts, seed=0)
    with pytest.raises(ConstraintError, match="Unknown compression"):
        compress_trial(parent, cancer_data, kind="fp16", ratio=None, number=9, artifacts_dir=artifacts, seed=0)


def test_int8_onnx_is_smaller_and_agrees_with_its_torch_twin(parent, int8_variant, cancer_data, tmp_path):
    model = load_final_model(parent.architecture, parent.weights_path, n_inputs=30, n_outputs=2)
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    export_onnx(model, 30, float_path)
    quantize_onnx(float_path, int8_path)
    assert int8_path.stat().st_size < float_path.stat().st_size / 2
    assert int8_variant.metrics["onnx_file_bytes"] == int8_path.stat().st_size
    assert int8_variant.costs.size_bytes < parent.costs.size_bytes / 3  # int8 weights, float biases and scales
    parity = int8_parity(int8_twin(model), int8_path, cancer_data.X_val, task="classification")
    assert parity["passed"] and parity["max_abs_diff"] <= INT8_TOLERANCE and parity["agreement"] >= 0.98
    # What the variant reports is the int8 graph's own validation score.
    shipped = evaluate_model(OnnxModel(int8_path), cancer_data.X_val, cancer_data.y_val, task="classification")
    assert int8_variant.metrics["accuracy"] == shipped["accuracy"] > 0.8
    assert int8_variant.costs.params == parent.costs.params
    assert int8_variant.architecture["compression"] == {"kind": "int8", "parent": 0}


def test_an_int8_variant_exports_a_quantized_bundle_whose_predict_py_works(int8_variant, cancer_data, tmp_path):
    model = load_final_model(int8_variant.architecture, int8_variant.weights_path, n_inputs=30, n_outputs=2)
    rows = cancer_data.raw_test_rows[:40]
    path = export_bundle(
        model=model,
        architecture=int8_variant.architecture,
        preprocessing=cancer_data.preprocessing,
        metrics=int8_variant.metrics,
        out_path=tmp_path / "int8.zip",
        costs=int8_variant.costs,
        check_rows=rows,
    )
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(path) as bundle:
        bundle.extractall(folder)
    checks = json.loads((folder / "metrics.json").read_text())["checks"]
    assert checks["int8_max_abs_diff"] <= checks["int8_tolerance"] == INT8_TOLERANCE
    assert checks["predict_py_reproduces_predictions"] is True
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops and "Gemm" not in ops
    layers = json.loads((folder / "architecture.json").read_text())["layers"]
    assert layers[-1].startswith("Compressed from trial 0: int8")

    with open(tmp_path / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = subprocess.run(
        [sys.executable, "predict.py", str(tmp_path / "rows.csv")], cwd=folder, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    got = run.stdout.splitlines()[1:]
    encoded = encode_rows(rows, cancer_data.preprocessing)
    twin_labels = decode_outputs(predict_raw(int8_twin(model), encoded), cancer_data.preprocessing)
    assert np.mean(np.array(got) == np.array(twin_labels, dtype=str)) >= 0.98
    fallback = subprocess.run(
        [sys.executable, "predict.py", str(tmp_path / "rows.csv"), "--model", "model.pt"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert fallback.returncode == 0 and fallback.stdout.splitlines()[1:] == [str(t) for t in twin_labels]


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    from sklearn.datasets import load_digits

    path = write_sklearn_csv(load_digits, tmp_path_factory.mktemp("data") / "digits.csv", "digit")
    return prepare_data(path, target="digit", seed=0)


def test_pruning_a_cnn_zeroes_that_share_of_its_weights_and_it_still_runs(digits_data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent = trained_parent(CNN, digits_data, tmp_path, epochs=2)
    variant = compress_trial(
        parent, digits_data, kind="prune", ratio=0.5, number=1, artifacts_dir=tmp_path, seed=0, fine_tune_epochs=1
    )
    assert variant.architecture == {**CNN, "compression": {"kind": "prune", "ratio": 0.5, "parent": 0}}
    model = load_final_model(variant.architecture, variant.weights_path, n_inputs=64, n_outputs=10)
    assert zero_fraction(model) == pytest.approx(0.5, abs=0.005)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert variant.costs.params == pytest.approx(parent.costs.params - weights / 2, abs=1)
    assert variant.costs.flops < parent.costs.flops
    accuracy = evaluate_model(model, digits_data.X_val, digits_data.y_val, task="classification")["accuracy"]
    assert accuracy == pytest.approx(variant.metrics["accuracy"]) and accuracy > 0.3  # chance: 0.1


def test_a_cnn_quantizes_to_integer_convolutions_that_match_its_twin(digits_data, tmp_path):
    torch.manual_seed(0)
    model = space_for_architecture(CNN).build_model(CNN, 64, 10).eval()
    pruned, _ = prune(model, CNN, 0.5, digits_data, seed=0, epochs=1)
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    export_onnx(pruned, 64, float_path)
    quantize_onnx(float_path, int8_path)
    assert "ConvInteger" in {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert int8_path.stat().st_size < float_path.stat().st_size
    assert int8_parity(int8_twin(pruned), int8_path, digits_data.X_val, task="classification")["passed"]


def test_a_linear_model_with_large_weights_quantizes_without_saturating(tmp_path):
    """x86 int8 kernels without VNNI add uint8 x int8 products in pairs that saturate at int16: with
    full-range weights one row of this linear model got a logit of -9.1 instead of -15.0."""
    torch.manual_seed(0)
    linear = {"space": "tabular", "norm": "none", "residual": False, "layers": [], "embed": "none", "members": 1}
    model = space_for_architecture(linear).build_model(linear, 30, 2).eval()
    for weights in model.parameters():
        weights.data.normal_(0, 1.0)
    rows = np.random.default_rng(0).normal(size=(200, 30)).clip(-3, 3).astype(np.float32)
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    export_onnx(model, 30, float_path)
    quantize_onnx(float_path, int8_path)
    parity = int8_parity(int8_twin(model), int8_path, rows, task="classification")
    assert parity["max_abs_diff"] < 1e-5 and parity["agreement"] == 1.0


def test_kept_units_rounds_and_keeps_at_least_one():
    assert [kept_units(u, 0.75) for u in (8, 6, 1)] == [2, 2, 1]
    assert kept_units(64, 0.5) == 32


def test_a_compressing_search_puts_variants_on_the_same_front_within_the_limits(cancer_data, tmp_path):
    from nas_engine import SearchConfig, finalize_front, run_search
    from nas_engine.compression_phase import COMPRESSED_PARENTS

    limit = 60_000
    config = SearchConfig(
        target="diagnosis", strategy="random", max_trials=6, max_epochs=5, max_params=limit,
        max_memory_bytes=400_000, compress=True, seed=3,
    )  # fmt: skip
    reported = []
    result = run_search(config, cancer_data, artifacts_dir=tmp_path, on_trial=reported.append)
    variants = [t for t in result.trials if "compression" in t.architecture]
    assert variants and [t.number for t in reported] == [t.number for t in result.trials]
    parents = {t.architecture["compression"]["parent"] for t in variants}
    assert 1 <= len(parents) <= COMPRESSED_PARENTS
    by_number = {t.number: t for t in result.trials}
    for variant in variants:
        parent = by_number[variant.architecture["compression"]["parent"]]
        assert variant.number > max(t.number for t in result.trials if "compression" not in t.architecture)
        if variant.status is TrialStatus.COMPLETED:  # no kept variant breaks a hard limit
            assert variant.costs.params <= limit and variant.costs.memory_bytes <= 400_000
            assert variant.costs.size_bytes < parent.costs.size_bytes
    assert all(t.number in by_number for t in result.trials if t.number in result.front)
    finals = finalize_front(result, cancer_data, artifacts_dir=tmp_path, seed=config.seed)
    for number in result.front:  # a compressed front trial keeps its compressed weights: not refit
        trial, final = by_number[number], finals.get(number)
        if "compression" in trial.architecture:
            assert final.epochs == 0 and final.test_metrics["score"] > 0.8
            kept, searched = torch.load(final.weights_path), torch.load(trial.weights_path)
            assert kept.keys() == searched.keys() and all(torch.equal(kept[k], searched[k]) for k in kept)
