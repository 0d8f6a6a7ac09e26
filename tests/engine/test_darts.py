"""DARTS: the relaxed supernets compute the space's networks and costs, and the shortlist is valid,
distinct, within the limits, on time, cancellable, reproducible and warm-startable."""

from __future__ import annotations

import io
import itertools
import time

import numpy as np
import pytest
import torch

from nas_engine import prepare_data
from nas_engine.augment import augmentation_for
from nas_engine.oneshot import OneShotContext
from nas_engine.oneshot.darts import cost_limits, cost_objective, darts_shortlist
from nas_engine.oneshot.darts_supernets import WIDTHS, CNNSupernet, MLPSupernet, build_mixed_net
from nas_engine.spaces import CNNSpace, MLPSpace, make_space
from tests.data_files import write_sklearn_csv


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    from sklearn.datasets import load_digits

    path = write_sklearn_csv(load_digits, tmp_path_factory.mktemp("data") / "digits.csv", "digit")
    data = prepare_data(path, target="digit", seed=0)
    assert data.image_shape == (1, 8, 8)
    return data


def space_of(data):
    return make_space("auto", n_inputs=data.n_features, image_shape=data.image_shape, strategy="darts")


def context_for(data, *, seconds=300.0, limits=None, epochs=None, **kwargs) -> OneShotContext:
    # Tests that set epochs are bounded by them, not by this far deadline: a loaded machine
    # trains as many epochs, so the result does not depend on how busy it is.
    return OneShotContext(
        space=space_of(data),
        data=data,
        objectives=("score", "params"),
        limits=limits or {},
        deadline=time.monotonic() + seconds,
        epochs=epochs,
        **kwargs,
    )


def params_of(data, arch) -> int:
    return space_of(data).costs(arch, data.n_features, data.n_outputs).params


def assert_valid_and_distinct(data, shortlist):
    space = space_of(data)
    assert shortlist.archs and len(shortlist.archs) == len(shortlist.predicted)
    assert len({space.arch_hash(arch) for arch in shortlist.archs}) == len(shortlist.archs)
    for arch in shortlist.archs:
        space.costs(arch, data.n_features, data.n_outputs)
        model = space.build_model(arch, data.n_features, data.n_outputs).eval()
        assert model(torch.from_numpy(data.X_val[:3])).shape == (3, data.n_outputs)


def random_choices(net, count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield {name: int(rng.integers(len(options))) for name, options in net.decisions.items()}


def test_expected_costs_of_one_hot_choices_are_the_space_costs():
    mlp_space, cnn_space = MLPSpace(), CNNSpace(image_shape=(1, 8, 8))
    mlp, cnn = MLPSupernet(mlp_space, 30, 2), CNNSupernet(cnn_space, 10)
    every_cnn = [dict(zip(cnn.decisions, c, strict=True)) for c in itertools.product(*map(range, (6, 3, 6, 3)))]
    cases = [(mlp, mlp_space, 30, 2, c) for c in random_choices(mlp, 30)]
    cases += [(cnn, cnn_space, 64, 10, c) for c in every_cnn]
    for net, space, n_in, n_out, choice in cases:
        costs = space.costs(net.genome(choice), n_in, n_out)
        with net.fixed(choice):
            assert net.expected_cost("params").item() == pytest.approx(costs.params, rel=1e-5)
            assert net.expected_cost("flops").item() == pytest.approx(costs.flops, rel=1e-5)


def test_one_hot_mlp_supernet_is_the_built_network_with_sliced_weights():
    space = MLPSpace()
    torch.manual_seed(0)
    net = MLPSupernet(space, 30, 2).eval()
    x = torch.randn(7, 30)
    for choice in random_choices(net, 10, seed=1):
        model = space.build_model(net.genome(choice), 30, 2).eval()
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        width = 30
        for i, layer in enumerate(linears[:-1]):
            units = WIDTHS[choice[f"units_{i}"]]
            layer.weight.data = net.linears[i].weight.data[:units, :width].clone()
            layer.bias.data = net.linears[i].bias.data[:units].clone()
            width = units
        head = net.heads[choice["depth"]]
        linears[-1].weight.data, linears[-1].bias.data = head.weight.data[:, :width].clone(), head.bias.data.clone()
        with torch.no_grad(), net.fixed(choice):
            assert torch.allclose(net(x), model(x), atol=1e-5)


def test_cost_objective_and_limits_map_onto_params_and_flops():
    assert cost_objective(("score",)) == "params"
    assert cost_objective(("score", "latency_ms", "params")) == "flops"
    assert cost_objective(("score", "size_bytes")) == "params"
    limits = cost_limits({"max_params": 5000, "max_size_bytes": 8000, "max_flops": None})
    assert limits == {"params": 2000.0}


def test_breast_cancer_shortlist_is_valid_on_time_and_beats_chance(cancer_data):
    context = context_for(cancer_data, seconds=8.0)
    shortlist = darts_shortlist(context)
    assert time.monotonic() <= context.deadline + 0.5
    assert_valid_and_distinct(cancer_data, shortlist)
    assert 2 <= len(shortlist.archs) <= 6
    assert shortlist.predicted[0] > 0.8
    assert shortlist.notes["epochs"] > 10
    assert set(shortlist.notes["alphas"]["depth"]) == {str(d) for d in range(7)}
    assert shortlist.state["method"] == "darts" and shortlist.state["space"] == "mlp"


def test_digits_shortlist_is_valid_and_keeps_a_params_limit(digits_data):
    # 30,000 params rules out every network with a 64-channel residual stage (over 50,000 each).
    limit = 30_000
    shift = augmentation_for("shift", digits_data.image_shape)
    context = context_for(digits_data, epochs=20, limits={"max_params": limit}, augmentation=shift)
    shortlist = darts_shortlist(context)
    assert_valid_and_distinct(digits_data, shortlist)
    params = [params_of(digits_data, arch) for arch in shortlist.archs]
    assert max(params) <= limit
    assert max(params) > 2 * min(params)  # a spread along the trade-off, not one size
    assert max(shortlist.predicted) > 0.3  # ten classes: chance is 0.1


def test_a_latency_objective_searches_flops_within_a_flops_limit(cancer_data):
    limits = {"max_flops": 2_000, "max_params": None}
    context = context_for(cancer_data, epochs=20, limits=limits)
    context.objectives = ("score", "latency_ms")
    shortlist = darts_shortlist(context)
    assert shortlist.notes["cost_objective"] == "flops"
    space = space_of(cancer_data)
    assert all(space.costs(a, 30, 2).flops <= 2_000 for a in shortlist.archs)


def test_a_heavy_cost_penalty_gives_a_cheaper_argmax(digits_data):
    free = darts_shortlist(context_for(digits_data, epochs=8), cost_weight=0.0)
    penalised = darts_shortlist(context_for(digits_data, epochs=8), cost_weight=20.0)
    assert params_of(digits_data, penalised.archs[0]) < params_of(digits_data, free.archs[0])


def test_should_cancel_stops_training_early(cancer_data):
    started = time.monotonic()
    context = context_for(cancer_data, seconds=60.0, should_cancel=lambda: time.monotonic() > started + 1.0)
    shortlist = darts_shortlist(context)
    assert shortlist.cancelled and shortlist.archs == []
    assert time.monotonic() - started < 4.0


def test_same_seed_gives_the_same_shortlist(cancer_data):
    first, second = (darts_shortlist(context_for(cancer_data, epochs=30)) for _ in range(2))
    assert first.archs == second.archs and first.predicted == second.predicted
    other = darts_shortlist(context_for(cancer_data, epochs=30, seed=1))
    assert other.notes["alphas"] != first.notes["alphas"]


def test_state_round_trips_into_a_warm_start(cancer_data):
    first = darts_shortlist(context_for(cancer_data, epochs=20))
    buffer = io.BytesIO()
    torch.save(first.state, buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    warm = darts_shortlist(context_for(cancer_data, epochs=20, warm_state=state))
    assert warm.notes["warm_started"] and warm.notes["epochs"] == 5  # a quarter of the epochs
    assert_valid_and_distinct(cancer_data, warm)

    net = build_mixed_net(space_of(cancer_data), cancer_data.n_features, cancer_data.n_outputs)
    loaded = {**state["weights"], **{f"alphas.{k}": v for k, v in state["alphas"].items()}}
    net.load_state_dict(loaded)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in loaded.items())


def test_a_state_of_other_data_is_ignored(cancer_data):
    state = darts_shortlist(context_for(cancer_data, epochs=2)).state
    shortlist = darts_shortlist(context_for(cancer_data, epochs=2, warm_state={**state, "n_inputs": 99}))
    assert not shortlist.notes["warm_started"]
