"""Contract of every search space (MLP, and CNN on several image shapes): valid samples and
mutations, exact decision round-trips, fixed-length encodings, exact analytic costs, and the
factory that picks and rebuilds spaces."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas_engine.errors import ConstraintError
from nas_engine.spaces import CNNSpace, MLPSpace, TreeSpace, detect_image_shape, make_space, space_for_architecture

N_OUTPUTS = 3
# (space, n_inputs): tabular, the digits shape, a small RGB image, the MNIST shape.
SPACES = {
    "mlp": (MLPSpace(), 7),
    "trees": (TreeSpace(), 7),
    "cnn-1x8x8": (CNNSpace(image_shape=(1, 8, 8)), 64),
    "cnn-3x16x16": (CNNSpace(image_shape=(3, 16, 16)), 768),
    "cnn-1x28x28": (CNNSpace(image_shape=(1, 28, 28)), 784),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine is shared; many tiny convolutions gain nothing from more
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=list(SPACES), ids=list(SPACES))
def space_and_inputs(request):
    return SPACES[request.param]


def _genomes(space, seed: int, count: int) -> list[dict]:
    """Samples, each followed by a mutation of it, so both paths are covered."""
    rng = np.random.default_rng(seed)
    samples = [space.sample(rng) for _ in range(count)]
    return samples + [space.mutate(arch, rng) for arch in samples]


def _forward_shape(space, arch: dict, n_inputs: int) -> tuple[int, ...]:
    model = space.build_model(arch, n_inputs, N_OUTPUTS)
    model.train()  # batch-norm in training mode is the fussy case
    return tuple(model(torch.randn(2, n_inputs)).shape)


def _macs(model: torch.nn.Module, n_inputs: int) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, n_inputs))
    return counter.get_total_flops() // 2  # torch counts a multiply-accumulate as 2 FLOPs


def test_samples_and_mutations_build_and_take_flat_inputs(space_and_inputs):
    space, n_inputs = space_and_inputs
    for arch in _genomes(space, seed=0, count=6):
        assert arch["space"] == space.name
        if space.name != "trees":  # networks carry their optimiser's settings; trees their boosting's
            assert set(arch["train"]) == {"lr", "weight_decay", "batch_size", "optimizer"}
        assert json.loads(json.dumps(arch)) == arch
        assert _forward_shape(space, arch, n_inputs) == (2, N_OUTPUTS)


def test_mutate_always_changes_the_child_and_never_the_parent(space_and_inputs):
    space, _ = space_and_inputs
    rng = np.random.default_rng(1)
    for parent in _genomes(space, seed=1, count=20):
        kept = copy.deepcopy(parent)
        child = space.mutate(parent, rng)
        assert child != parent and parent == kept


def test_mutations_reach_every_decision(space_and_inputs):
    space, _ = space_and_inputs
    rng, changed = np.random.default_rng(2), set()
    for parent in _genomes(space, seed=2, count=150):
        before, after = space.to_decisions(parent), space.to_decisions(space.mutate(parent, rng))
        changed |= {name for name in before if before[name] != after[name]}
    assert changed == set(space.decisions())


def test_decisions_round_trip_exactly(space_and_inputs):
    space, _ = space_and_inputs
    decisions = space.decisions()
    assert all(isinstance(o, int | float | str | bool) for options in decisions.values() for o in options)
    for arch in _genomes(space, seed=3, count=15):
        choices = space.to_decisions(arch)
        assert list(choices) == list(decisions) and all(choices[n] in decisions[n] for n in decisions)
        assert space.from_decisions(choices) == arch
    rng = np.random.default_rng(3)
    for _ in range(15):  # any full set of decisions is an architecture, and describes itself
        arch = space.from_decisions({name: options[rng.integers(len(options))] for name, options in decisions.items()})
        assert space.from_decisions(space.to_decisions(arch)) == arch


def test_encode_has_a_fixed_length_in_the_unit_interval(space_and_inputs):
    space, _ = space_and_inputs
    vectors = [space.encode(arch) for arch in _genomes(space, seed=4, count=10)]
    assert {v.shape for v in vectors} == {(len(space.decisions()),)}
    assert all(v.min() >= 0.0 and v.max() <= 1.0 for v in vectors)


def test_crossover_children_are_valid_and_take_each_decision_from_a_parent(space_and_inputs):
    space, n_inputs = space_and_inputs
    rng = np.random.default_rng(5)
    genomes = _genomes(space, seed=5, count=4)
    for first, second in zip(genomes, reversed(genomes), strict=True):
        child = space.crossover(first, second, rng)
        a, b, c = space.to_decisions(first), space.to_decisions(second), space.to_decisions(child)
        assert all(c[name] in (a[name], b[name]) for name in c)
        assert _forward_shape(space, child, n_inputs) == (2, N_OUTPUTS)


def test_arch_hash_is_stable_across_copies_and_json(space_and_inputs):
    space, _ = space_and_inputs
    arch = space.sample(np.random.default_rng(6))
    assert (
        space.arch_hash(arch) == space.arch_hash(json.loads(json.dumps(arch))) == space.arch_hash(copy.deepcopy(arch))
    )
    assert space.arch_hash(arch) != space.arch_hash(space.mutate(arch, np.random.default_rng(6)))


def test_analytic_costs_equal_the_built_module(space_and_inputs):
    space, n_inputs = space_and_inputs
    smallest = (space.smallest_params(n_inputs, N_OUTPUTS), space.smallest_flops(n_inputs, N_OUTPUTS))
    for arch in _genomes(space, seed=7, count=15):
        costs = space.costs(arch, n_inputs, N_OUTPUTS)
        model = space.build_model(arch, n_inputs, N_OUTPUTS)
        assert costs.params == sum(p.numel() for p in model.parameters()) >= smallest[0]
        assert costs.flops == _macs(model, n_inputs) >= smallest[1]
        assert costs.size_bytes == 4 * costs.params and costs.latency_ms is None


def test_describe_gives_readable_lines_ending_with_training(space_and_inputs):
    space, _ = space_and_inputs
    lines = space.describe(space.sample(np.random.default_rng(8)))
    assert all(isinstance(line, str) and line for line in lines)
    assert lines[-1].startswith("Training: ")


CNN_ARCH = {
    "space": "cnn",
    "input_shape": [1, 8, 8],
    "activation": "relu",
    "stem": {"channels": 8},
    "stages": [
        {"block": "conv", "kernel": 3, "channels": 8, "blocks": 1},
        {"block": "residual", "kernel": 3, "channels": 16, "blocks": 2},
        {"block": "inverted", "kernel": 5, "channels": 16, "blocks": 1, "expansion": 3},
        {"block": "inverted", "kernel": 3, "channels": 16, "blocks": 1, "expansion": 1},
    ],
    "head": {"dropout": 0.0},
    "train": {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"},
}


def test_cnn_downsamples_only_while_the_image_stays_at_least_two_pixels_wide():
    lines = CNNSpace(image_shape=(1, 8, 8)).describe(CNN_ARCH)
    assert [line.rsplit("stride ", 1)[1] for line in lines if line.startswith("Stage")] == ["2", "2", "1", "1"]
    arch28 = {**CNN_ARCH, "input_shape": [1, 28, 28]}
    lines = CNNSpace(image_shape=(1, 28, 28)).describe(arch28)
    assert [line.rsplit("stride ", 1)[1] for line in lines if line.startswith("Stage")] == ["2", "2", "2", "2"]


def test_cnn_costs_of_a_known_architecture_by_hand():
    costs = CNNSpace(image_shape=(1, 8, 8)).costs(CNN_ARCH, 64, 10)
    # (weights, MACs) per convolution at its output size; batch-norm adds 2 params per channel.
    convs = [
        (1 * 8 * 9, 64),  # stem 8×8
        (8 * 8 * 9, 16),  # stage 1 conv, stride 2 → 4×4
        (8 * 16 * 9, 4),  # stage 2 block 1 conv a, stride 2 → 2×2
        (16 * 16 * 9, 4),  # conv b
        (8 * 16, 4),  # projection shortcut 1×1, stride 2
        (16 * 16 * 9, 4),  # block 2 conv a (identity shortcut)
        (16 * 16 * 9, 4),  # conv b
        (16 * 48, 4),  # stage 3 expand 1×1
        (48 * 25, 4),  # depthwise 5×5, stride 1: 2×2 cannot shrink
        (48 * 16, 4),  # project 1×1
        (16 * 9, 4),  # stage 4 depthwise 3×3 (expansion 1: no expand conv)
        (16 * 16, 4),  # project
    ]
    bn = 2 * (8 + 8 + 16 + 16 + 16 + 16 + 16 + 48 + 48 + 16 + 16 + 16)
    assert costs.params == sum(w for w, _ in convs) + bn + 16 * 10 + 10
    assert costs.flops == sum(w * pixels for w, pixels in convs) + 16 * 10


def test_cnn_forward_on_the_digits_shape_and_a_wrong_column_count():
    space = CNNSpace(image_shape=(1, 8, 8))
    assert _forward_shape(space, CNN_ARCH, 64) == (2, N_OUTPUTS)
    with pytest.raises(ConstraintError, match="1×8×8 images"):
        space.build_model(CNN_ARCH, 63, N_OUTPUTS)


@pytest.mark.parametrize(
    ("kinds", "shape"),
    [
        (["numeric"] * 64, (1, 8, 8)),
        (["numeric"] * 784, (1, 28, 28)),
        (["numeric"] * 768, (3, 16, 16)),
        (["numeric"] * 63, None),
        (["numeric"] * 49, None),  # 7×7 is too small to be worth a CNN
        (["numeric"] * 63 + ["categorical"], None),
        ([], None),
    ],
)
def test_detect_image_shape(kinds, shape):
    assert detect_image_shape(kinds) == shape


def test_make_space_picks_and_validates_the_space():
    assert isinstance(make_space("auto", n_inputs=64, image_shape=(1, 8, 8)), CNNSpace)
    assert isinstance(make_space("auto", n_inputs=10), MLPSpace)
    assert isinstance(make_space("mlp", n_inputs=64, image_shape=(1, 8, 8)), MLPSpace)
    assert make_space("cnn", n_inputs=768, image_shape=(3, 16, 16)).image_shape == (3, 16, 16)
    with pytest.raises(ConstraintError, match=r"do not form an image \(need s×s or 3×s×s numeric pixel columns"):
        make_space("cnn", n_inputs=10)
    with pytest.raises(ConstraintError, match="needs 64 columns; the data has 65"):
        make_space("cnn", n_inputs=65, image_shape=(1, 8, 8))
    with pytest.raises(ConstraintError, match="Unknown search space 'vit'"):
        make_space("vit", n_inputs=10)


def test_space_for_architecture_rebuilds_each_space_from_the_genome_alone():
    cnn = space_for_architecture({**CNN_ARCH, "input_shape": [3, 16, 16]})
    assert isinstance(cnn, CNNSpace) and cnn.image_shape == (3, 16, 16)
    mlp_arch = MLPSpace().sample(np.random.default_rng(9))
    assert isinstance(space_for_architecture(mlp_arch), MLPSpace)
    assert isinstance(space_for_architecture({"layers": [], "lr": 1e-3}), MLPSpace)  # before engine v1
    with pytest.raises(ConstraintError, match="Unknown search space"):
        space_for_architecture({"space": "vit"})


def test_the_mlp_space_includes_a_linear_model():
    import torch

    space = MLPSpace()
    linear = space.from_decisions(space.to_decisions(space.sample(np.random.default_rng(0))) | {"depth": 0})
    assert linear["layers"] == []
    model = space.build_model(linear, 7, 3)
    assert model(torch.zeros(2, 7)).shape == (2, 3)
    assert space.costs(linear, 7, 3).params == sum(p.numel() for p in model.parameters()) == 7 * 3 + 3
    assert space.smallest_params(7, 3) == 24
    assert "Linear model (no hidden layer)" in space.describe(linear)
    assert space.mutate(linear, np.random.default_rng(1)) != linear  # no layer to change, still a move
