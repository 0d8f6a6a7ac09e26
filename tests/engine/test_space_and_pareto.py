"""MLP search space (costs, hashing, mutation) and the Pareto front."""

from __future__ import annotations

import numpy as np

from nas_engine import pareto_front
from nas_engine.spaces import MLPSpace

TRAIN = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}
LAYERS = [{"units": 16, "activation": "relu", "dropout": 0.1}, {"units": 8, "activation": "tanh", "dropout": 0.0}]
ARCH = {"space": "mlp", "layers": LAYERS, "norm": "none", "residual": False, "train": TRAIN}


def test_costs_of_a_known_architecture_match_hand_computation_and_the_module():
    space = MLPSpace()
    costs = space.costs(ARCH, 10, 3)
    # 10→16→8→3: weights 160 + 128 + 24 = 312, biases 16 + 8 + 3 = 27.
    assert (costs.flops, costs.params, costs.size_bytes, costs.latency_ms) == (312, 339, 1356, None)
    model = space.build_model(ARCH, 10, 3)
    assert sum(p.numel() for p in model.parameters()) == 339


def test_residual_projections_and_norms_are_counted():
    # 10→16 is projected (160 weights, no bias); 16→16 adds its input as is; layer-norm: 2 per unit.
    arch = {**ARCH, "layers": [dict(LAYERS[0]), dict(LAYERS[0])], "norm": "layer", "residual": True}
    costs = MLPSpace().costs(arch, 10, 3)
    assert costs.flops == 160 + 160 + 256 + 48
    assert costs.params == costs.flops + (16 + 16 + 3) + 2 * (16 + 16)


def test_genomes_from_before_engine_v1_still_build_and_cost_the_same():
    legacy = {"layers": LAYERS, "lr": 3e-3}
    space = MLPSpace()
    assert space.costs(legacy, 10, 3) == space.costs(ARCH, 10, 3)
    assert sum(p.numel() for p in space.build_model(legacy, 10, 3).parameters()) == 339
    assert space.to_decisions(legacy)["lr"] == 3e-3


def test_costs_match_the_module_for_random_architectures():
    space, rng = MLPSpace(), np.random.default_rng(1)
    for _ in range(20):
        arch = space.sample(rng)
        params = sum(p.numel() for p in space.build_model(arch, 7, 2).parameters())
        assert space.costs(arch, 7, 2).params == params >= space.smallest_params(7, 2)


def test_arch_hash_is_stable_and_key_order_independent():
    space = MLPSpace()
    reordered = dict(reversed(list(ARCH.items())))
    reordered["layers"] = [dict(reversed(list(layer.items()))) for layer in LAYERS]
    assert space.arch_hash(ARCH) == space.arch_hash(reordered)
    assert len(space.arch_hash(ARCH)) == 12
    assert space.arch_hash(ARCH) != space.arch_hash({**ARCH, "train": {**TRAIN, "lr": 3e-3}})


def test_mutate_changes_one_thing_and_keeps_the_parent():
    space, rng = MLPSpace(), np.random.default_rng(0)
    for _ in range(30):
        child = space.mutate(ARCH, rng)
        assert child != ARCH and 1 <= len(child["layers"]) <= 6
    assert ARCH["layers"][0]["units"] == 16 and ARCH["train"] == TRAIN


def test_describe_lists_layers_and_training():
    lines = MLPSpace().describe(ARCH)
    assert lines[:2] == ["Dense 16 · relu · dropout 0.1", "Dense 8 · tanh"]
    assert lines[-1] == "Training: adam · lr 0.001 · weight decay 0 · batch 64"
    assert MLPSpace().describe({**ARCH, "norm": "batch"})[0] == "Dense 16 · batch-norm · relu · dropout 0.1"


def test_pareto_front_on_hand_made_points():
    points = [
        (0.90, 100),  # 0 front
        (0.95, 300),  # 1 front
        (0.85, 200),  # 2 dominated by 0
        (0.95, 300),  # 3 identical to 1: also front
        (0.97, 1000),  # 4 front
        (0.90, 150),  # 5 dominated by 0 (same score, higher cost)
        (0.80, 100),  # 6 dominated by 0 (same cost, lower score)
        (0.70, 50),  # 7 front
    ]
    assert pareto_front(points) == [0, 1, 3, 4, 7]
    assert pareto_front([]) == []
    assert pareto_front([(float("nan"), 1), (0.5, 2)]) == [1]
