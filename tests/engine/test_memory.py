"""Peak inference memory (``Costs.memory_bytes``): the analytic figure against what torch's allocator
does in a batch-1 forward pass, and the limit that uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_engine.config import SearchConfig, broken_limits
from nas_engine.evaluator import one_thread
from nas_engine.oneshot.darts import _excess
from nas_engine.results import OBJECTIVES, Costs, ensemble_costs
from nas_engine.spaces import CNNSpace, MLPSpace, TabularSpace
from nas_engine.spaces.memory import ActivationPeak, memory_of

SPACES = [
    pytest.param(MLPSpace(), 30, id="mlp-30"),
    pytest.param(TabularSpace(), 30, id="tabular-30"),
    pytest.param(CNNSpace(image_shape=(1, 8, 8)), 64, id="cnn-1x8x8"),
    pytest.param(CNNSpace(image_shape=(3, 16, 16)), 768, id="cnn-3x16x16"),
]
N_OUTPUTS = 3


def measure_activations(model: torch.nn.Module, n_inputs: int) -> tuple[int, int]:
    """Bytes of activations alive at the peak of a batch-1 eval forward pass, as torch's CPU
    allocator reports them to the profiler: (between ops, with every op's scratch too).

    The allocation/free events are replayed in time order. "Between ops" samples the live bytes
    when each top-level op returns (its input, its output and whatever a skip still holds), the
    figure ``memory_bytes`` models; the second counts every event, so it adds what kernels use and
    free inside one op (im2col columns, oneDNN reorders of input and weights, batch-norm's
    per-channel statistics), a property of eager PyTorch's CPU backend rather than of the network.
    The input tensor, allocated before the pass, is added to both.
    """
    x = torch.zeros(1, n_inputs)
    model.eval()
    with one_thread(), torch.inference_mode():
        model(x)  # warm-up: first-call caches are not the network's memory
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            model(x)
    events = sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns())
    memory_events = [(e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]"]
    op_ends, last_end = [], -1
    for event in events:  # a top-level op starts after the previous one ended; nested ones start inside it
        if event.name() != "[memory]" and event.start_ns() >= last_end:
            last_end = event.start_ns() + event.duration_ns()
            op_ends.append(last_end)
    live = between = anywhere = replayed = 0
    for end in op_ends:
        while replayed < len(memory_events) and memory_events[replayed][0] <= end:
            live += memory_events[replayed][1]
            anywhere = max(anywhere, live)
            replayed += 1
        between = max(between, live)
    return x.nbytes + between, x.nbytes + anywhere


def state_bytes(model: torch.nn.Module) -> int:
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()])


@pytest.mark.parametrize(("space", "n_inputs"), SPACES)
def test_memory_matches_what_torch_allocates_for_random_networks(space, n_inputs):
    """Weights exactly; the activation peak between ops within 2% (or 64 bytes): it matched to the
    byte on torch 2.13 CPU. Kernel scratch only ever adds to it."""
    rng = np.random.default_rng(11)
    for _ in range(10):
        arch = space.sample(rng)
        model = space.build_model(arch, n_inputs, N_OUTPUTS)
        weights = state_bytes(model)
        between, anywhere = measure_activations(model, n_inputs)
        analytic = memory_of(space.costs(arch, n_inputs, N_OUTPUTS))
        assert analytic - weights == pytest.approx(between, rel=0.02, abs=64), space.describe(arch)
        assert anywhere >= analytic - weights


def test_a_linear_model_holds_its_input_and_output():
    costs = MLPSpace().costs({"layers": [], "norm": "none", "residual": False}, 30, 2)
    assert costs.memory_bytes == costs.size_bytes + 4 * (30 + 2)


def test_an_mlp_keeps_the_callers_input_alive_through_the_pass():
    arch = {"layers": [{"units": 8, "activation": "relu", "dropout": 0.0}], "norm": "none", "residual": False}
    # 266 weights; the peak is at the ReLU: the input (30), the Linear's output (8) and its own (8).
    assert MLPSpace().costs(arch, 30, 2).memory_bytes == 4 * 266 + 4 * (30 + 8 + 8)


def test_batch_norm_running_statistics_count_as_weights():
    layer = {"units": 16, "activation": "relu", "dropout": 0.0}
    plain, batch = (MLPSpace().costs({"layers": [layer], "norm": norm}, 30, 2) for norm in ("layer", "batch"))
    assert batch.params == plain.params
    assert memory_of(batch) - memory_of(plain) == 4 * 2 * 16 + 8  # running mean and variance, int64 counter


def test_a_residual_block_holds_its_input_and_body_output_until_the_sum():
    peak = ActivationPeak(10)
    peak.residual(body=[4, 4], shortcut=[4])
    # at the sum: the input (10), the body's output (4), the projection's (4) and the sum (4)
    assert peak.peak == 22 and peak.pinned == 10 and peak.current == 4


def test_an_inverted_bottleneck_counts_its_expanded_map():
    space = CNNSpace(image_shape=(1, 8, 8))

    def arch(expansion: int) -> dict:
        stage = {"block": "inverted", "kernel": 3, "channels": 8, "blocks": 1, "expansion": expansion}
        return {
            "input_shape": [1, 8, 8],
            "activation": "relu",
            "stem": {"channels": 8},
            "stages": [stage],
            "head": {"dropout": 0.0},
        }

    wide = space.costs(arch(6), 64, 2)
    weights = state_bytes(space.build_model(arch(6), 64, 2))
    # the 1×1 expansion to 48 channels runs at 8×8: its output and batch-norm's are alive together
    assert memory_of(wide) - weights >= 4 * 2 * 48 * 8 * 8


@pytest.mark.parametrize(("space", "n_inputs"), SPACES)
def test_no_network_of_the_space_needs_less_than_the_smallest_memory(space, n_inputs):
    rng = np.random.default_rng(3)
    leanest = space.smallest_memory(n_inputs, N_OUTPUTS)
    assert leanest > 4 * space.smallest_params(n_inputs, N_OUTPUTS)  # the default bound, weights only
    assert all(memory_of(space.costs(space.sample(rng), n_inputs, N_OUTPUTS)) >= leanest for _ in range(200))


def test_records_from_before_memory_load_without_it():
    costs = Costs.from_dict({"params": 10, "flops": 8, "latency_ms": None, "size_bytes": 40})
    assert costs.memory_bytes is None
    assert not broken_limits(costs, {"max_memory_bytes": 1})  # an unknown cost breaks no limit


def test_memory_is_an_objective_and_a_limit_like_the_others():
    assert OBJECTIVES["memory_bytes"] == "minimize"
    config = SearchConfig(target="y", objectives=("score", "memory_bytes"), max_memory_bytes=1000)
    costs = Costs(params=10, flops=10, latency_ms=None, size_bytes=40, memory_bytes=1500)
    assert broken_limits(costs, config.analytic_limits()) == ["max_memory_bytes"]
    assert _excess(costs, config.analytic_limits()) == pytest.approx(0.5)  # DARTS repairs toward the limit


def test_an_ensemble_costs_the_sum_of_its_members():
    members = [
        Costs(params=10, flops=8, latency_ms=0.1, size_bytes=40, memory_bytes=100),
        Costs(params=5, flops=4, latency_ms=0.1, size_bytes=20, memory_bytes=60),
    ]
    assert ensemble_costs(members, latency_ms=0.3) == Costs(
        params=15, flops=12, latency_ms=0.3, size_bytes=60, memory_bytes=160
    )
    old = Costs(params=1, flops=1, latency_ms=None, size_bytes=4)
    assert ensemble_costs([members[0], old]).memory_bytes is None
