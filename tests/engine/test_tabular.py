"""The tabular space (periodic embeddings, TabM-style ensembles), its portfolio, robust feature
scaling and the log-learnt target: built networks match their analytic costs, train, export to
ONNX with the same predictions, and a skewed positive target comes back in its own units."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import onnxruntime
import pytest
import torch

from nas_engine import SearchConfig, run_search
from nas_engine.evaluator import predict_raw, training_loss
from nas_engine.prepare import prepare_data
from nas_engine.runtime import encode_rows, target_units
from nas_engine.spaces import TabularSpace, make_space
from nas_engine.spaces.tabular import MAX_EMBEDDED_INPUTS, tabular_defaults

from .conftest import write_csv

TRAIN = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 32, "optimizer": "adam"}


def _arch(embed: str, members: int, layers: int = 2, norm: str = "none", residual: bool = False) -> dict:
    hidden = [{"units": 16, "activation": "relu", "dropout": 0.0} for _ in range(layers)]
    return {"space": "tabular", "layers": hidden, "norm": norm, "residual": residual, "embed": embed,
            "members": members, "train": TRAIN}  # fmt: skip


@pytest.mark.parametrize("embed", ["none", "periodic"])
@pytest.mark.parametrize("members", [1, 4])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_parameters_and_macs_are_exact(embed, members, n_outputs):
    space, n_in = TabularSpace(), 7
    for layers, norm, residual in [(0, "none", False), (2, "batch", False), (2, "layer", True)]:
        arch = _arch(embed, members, layers, norm, residual)
        model = space.build_model(arch, n_in, n_outputs)
        assert space.costs(arch, n_in, n_outputs).params == sum(p.numel() for p in model.parameters())
    # MACs counted by hand for one case: embedding 7x16 products + 7x(32x8) Linear; members scale
    # the 56 embedded inputs, each member runs 56x16 + 16x16, and has a 16xO head.
    arch = _arch(embed, members)
    width = 7 * 8 if embed == "periodic" else 7
    expected = (7 * 16 + 7 * 32 * 8 if embed == "periodic" else 0) + (members * width if members > 1 else 0)
    expected += members * (width * 16 + 16 * 16 + 16 * n_outputs)
    assert space.costs(arch, n_in, n_outputs).flops == expected


def test_members_train_on_their_own_loss_and_predict_their_mean():
    torch.manual_seed(0)
    model = TabularSpace().build_model(_arch("periodic", 4), 5, 3)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    model.train()
    per_member = model(x)
    assert per_member.shape == (6, 4, 3)
    expected = torch.stack([torch.nn.functional.cross_entropy(per_member[:, k], y) for k in range(4)]).mean()
    assert torch.allclose(training_loss(per_member, y, "classification"), expected)
    model.eval()
    with torch.no_grad():
        eval_out = model(x)
        mean_probs = torch.softmax(model.train()(x).detach(), dim=-1).mean(dim=1)
    assert torch.allclose(torch.softmax(eval_out, dim=-1), mean_probs, atol=1e-6)


@pytest.mark.parametrize("embed,members", [("periodic", 1), ("none", 8), ("periodic", 4)])
def test_the_network_exports_to_onnx_with_the_same_outputs(tmp_path, embed, members):
    torch.manual_seed(1)
    model = TabularSpace().build_model(_arch(embed, members, norm="batch"), 6, 2).eval()
    x = torch.randn(9, 6)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}})
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_a_plain_genome_builds_the_mlp_spaces_network():
    arch = _arch("none", 1)
    model = TabularSpace().build_model(arch, 4, 2)
    assert isinstance(model, torch.nn.Sequential)


def test_wide_inputs_get_no_embedding_and_auto_picks_the_tabular_space():
    assert make_space("auto", n_inputs=10).name == "tabular"
    assert make_space("auto", n_inputs=64, image_shape=(1, 8, 8)).name == "cnn"
    wide = TabularSpace.for_data(n_inputs=MAX_EMBEDDED_INPUTS + 1)
    rng = np.random.default_rng(0)
    assert {wide.sample(rng)["embed"] for _ in range(30)} == {"none"}
    assert all(arch.get("embed", "none") == "none" for arch in wide.portfolio(rows=500, task="regression"))


def test_every_portfolio_genome_is_a_point_of_the_space():
    space = TabularSpace()
    for rows in (200, 5_000, 50_000):
        portfolio = space.portfolio(rows=rows, task="classification")
        assert len(portfolio) >= 4 and len({space.arch_hash(a) for a in portfolio}) == len(portfolio)
        for arch in filter(space.owns, portfolio):  # its own genomes; the trees are the tree space's
            decisions = space.to_decisions(arch)
            assert all(decisions[name] in options for name, options in space.decisions().items())
            assert space.from_decisions(decisions) == tabular_defaults(arch)


def test_a_search_trains_the_portfolio_first(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    path = tmp_path / "data.csv"
    write_csv(path, ["a", "b", "c", "y"], [[*map(float, x), int(t)] for x, t in zip(X, y, strict=True)])
    data = prepare_data(path, target="y")
    space = make_space("auto", n_inputs=data.n_features)
    expected = space.portfolio(rows=len(data.X_train) + len(data.X_val), task="classification")
    config = SearchConfig(target="y", max_trials=len(expected) + 1, max_epochs=3, budget_seconds=120)
    result = run_search(config, data)
    tried = [trial.architecture for trial in sorted(result.trials, key=lambda t: t.number)]
    assert tried[: len(expected)] == expected
    assert len(tried) == len(expected) + 1 and tried[-1] not in expected


def test_outliers_are_smoothly_clipped_and_a_skewed_price_is_learnt_as_its_logarithm(tmp_path):
    rng = np.random.default_rng(3)
    n = 600
    carat = rng.uniform(0.2, 3.0, n)
    cut = rng.choice(["fair", "good", "ideal"], n)
    age = rng.normal(size=n)
    # Skewed and positive, its factors multiply: additive only as a logarithm.
    price = np.exp(7 + 1.5 * np.log(carat) + (cut == "ideal") * 0.3 + 0.4 * age + rng.normal(0, 0.1, n))
    income = rng.lognormal(10, 1, n)
    income[0] = 1e12  # one absurd value must not blow up the encoded column
    path = tmp_path / "prices.csv"
    write_csv(path, ["carat", "cut", "age", "income", "price"], zip(carat, cut, age, income, price, strict=True))
    data = prepare_data(path, target="price", task="regression")
    target = data.preprocessing["target"]
    assert target["transform"] == "log"
    encoded = np.concatenate([data.X_train, data.X_val, data.X_test])
    assert np.abs(encoded).max() <= 3.0  # smooth clipping at 3 robust standard units (float32 rounds up to it)
    rows = [{"carat": "1.0", "cut": "ideal", "age": "0", "income": "1e12"}]
    assert np.isfinite(encode_rows(rows, data.preprocessing)).all()
    # Decoding undoes the standardisation and the logarithm: the training values come back.
    train_prices = target_units(data.y_train, target)
    assert train_prices.min() > 0 and abs(np.median(train_prices) - np.median(price)) / np.median(price) < 0.2


def test_a_wage_like_target_that_the_logarithm_does_not_help_stays_as_it_is(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 800)
    y = 50 + 400 * x**3 + rng.exponential(5, 800)  # right-skewed, but additive: a log fit is worse in its units
    path = tmp_path / "additive.csv"
    write_csv(path, ["x", "y"], zip(x, y, strict=True))
    data = prepare_data(path, target="y", task="regression")
    assert "transform" not in data.preprocessing["target"]


def test_a_search_on_a_log_target_scores_and_exports_in_its_units(tmp_path):
    from nas_engine.cli import main

    rng = np.random.default_rng(5)
    n = 400
    size = rng.uniform(20, 200, n)
    price = np.exp(9 + 1.2 * np.log(size / 50) + rng.normal(0, 0.15, n))
    path = tmp_path / "houses.csv"
    write_csv(path, ["size", "price"], zip(size, price, strict=True))
    bundle = tmp_path / "b.zip"
    args = ["search", str(path), "--target", "price", "--task", "regression", "--max-trials", "3"]
    assert main([*args, "--budget-seconds", "60", "--out", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        assert "model.onnx" in archive.namelist()
    out = tmp_path / "pred.csv"
    assert main(["predict", str(bundle), str(path), "-o", str(out)]) == 0
    with open(out) as handle:
        predicted = np.array([float(row[-1]) for row in list(csv.reader(handle))[1:]])
    assert predicted.min() > 0  # no negative prices
    r2 = 1 - np.sum((predicted - price) ** 2) / np.sum((price - price.mean()) ** 2)
    assert r2 > 0.8


def test_predict_raw_of_a_log_target_model_is_standardised():
    torch.manual_seed(0)
    model = TabularSpace().build_model(_arch("none", 4), 3, 1).eval()
    out = predict_raw(model, np.zeros((2, 3), dtype=np.float32))
    assert out.shape == (2, 1)


@pytest.mark.parametrize("embed,members", [("none", 1), ("periodic", 1), ("none", 8), ("periodic", 4)])
def test_the_layer_diagram_accounts_for_every_weight(embed, members):
    from nas_engine.diagram import layer_diagram

    prep = {"n_features": 5, "task": "classification", "target": {"name": "y", "labels": ["a", "b", "c"]}}
    prep["features"] = [{"name": f"c{i}", "kind": "numeric"} for i in range(5)]
    arch = _arch(embed, members, norm="layer")
    boxes = layer_diagram(arch, prep)
    model = TabularSpace().build_model(arch, 5, 3)
    assert sum(box.params or 0 for box in boxes) == sum(p.numel() for p in model.parameters())
    assert [box.kind for box in boxes][0] == "input" and boxes[-2].kind == "head"
    assert any("Periodic embedding" == box.title for box in boxes) == (embed == "periodic")
    assert any(box.title == f"{members} ensemble members" for box in boxes) == (members > 1)
