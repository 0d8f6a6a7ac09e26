"""SPOS weight sharing: the supernet runs the space's networks, the shortlist keeps the limits,
and run_search trains the shortlist as ordinary trials (with a supernet saved for a warm start)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from nas_engine.config import SearchConfig
from nas_engine.one_shot_phase import SUPERNET_FILE, load_supernet
from nas_engine.oneshot import OneShotContext
from nas_engine.oneshot.spos import build_supernet, inherited_score, spos_shortlist
from nas_engine.results import TrialStatus
from nas_engine.search import run_search
from nas_engine.spaces import CNNSpace, MLPSpace
from nas_engine.strategies import SPOSStrategy


def context_for(data, space, *, seconds=30.0, limits=None, **kwargs) -> OneShotContext:
    return OneShotContext(
        space=space,
        data=data,
        objectives=("score", "params"),
        limits=limits or {},
        deadline=time.monotonic() + seconds,
        seed=0,
        **kwargs,
    )


@pytest.mark.parametrize("space", [MLPSpace(), CNNSpace(image_shape=(1, 8, 8))], ids=["mlp", "cnn"])
def test_every_sampled_path_runs_and_trains_only_its_own_slice(space):
    rng = np.random.default_rng(0)
    supernet = build_supernet(space, 64, 3)
    x = torch.randn(5, 64)
    for _ in range(10):
        arch = space.sample(rng)
        supernet.zero_grad(set_to_none=True)
        out = supernet(x, arch)
        assert out.shape == (5, 3)
        out.sum().backward()
        touched = sum(int((p.grad != 0).sum()) for p in supernet.parameters() if p.grad is not None)
        # A path holds at most the stand-alone network's weights (its slices), never the whole supernet.
        assert 0 < touched <= space.costs(arch, 64, 3).params


def test_mlp_supernet_path_is_the_stand_alone_network_with_sliced_weights():
    """Copying a path's slices into the network build_model makes gives the same outputs: the
    supernet computes exactly the space's architectures."""
    space = MLPSpace()
    arch = {
        "space": "mlp",
        "layers": [
            {"units": 32, "activation": "gelu", "dropout": 0.0},
            {"units": 16, "activation": "tanh", "dropout": 0.0},
        ],
        "norm": "layer",
        "residual": True,
        "train": {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"},
    }
    torch.manual_seed(0)
    supernet = build_supernet(space, 10, 2)
    model = space.build_model(arch, 10, 2)
    with torch.no_grad():
        width = 10
        for i, layer in enumerate(arch["layers"]):
            units = layer["units"]
            block = model[i]
            body, shortcut = block.body, block.shortcut
            body[0].weight.copy_(supernet.linear[i].weight[:units, :width])
            body[0].bias.copy_(supernet.linear[i].bias[:units])
            body[1].weight.copy_(supernet.norm_weight[6 + i][:units])
            body[1].bias.copy_(supernet.norm_bias[6 + i][:units])
            shortcut.weight.copy_(supernet.project[i].weight[:units, :width])
            width = units
        model[-1].weight.copy_(supernet.head.weight[:, :width])
        model[-1].bias.copy_(supernet.head.bias)
    x = torch.randn(7, 10)
    model.eval()
    supernet.eval()
    torch.testing.assert_close(supernet(x, arch), model(x))


def test_shortlist_keeps_the_limits_and_the_deadline_and_ranks_above_chance(cancer_data):
    space = MLPSpace()
    limit = 20_000
    start = time.monotonic()
    shortlist = spos_shortlist(context_for(cancer_data, space, seconds=8.0, limits={"max_params": limit}))
    assert time.monotonic() - start < 8.0 + 2.0
    assert 1 <= len(shortlist.archs) <= 8
    assert len({"\n".join(space.describe(a)) for a in shortlist.archs}) == len(shortlist.archs)
    for arch in shortlist.archs:
        assert space.costs(arch, cancer_data.n_features, cancer_data.n_outputs).params <= limit
    assert shortlist.predicted == sorted(shortlist.predicted, reverse=True)
    assert shortlist.predicted[0] > 0.9  # breast_cancer: the majority class alone scores about 0.63
    assert shortlist.notes["supernet_steps"] > 0 and shortlist.notes["candidates_scored"] > len(shortlist.archs)


def test_same_seed_same_shortlist_and_warm_start_round_trip(cancer_data, caplog):
    space = MLPSpace()

    def run(**kwargs):
        return spos_shortlist(context_for(cancer_data, space, **kwargs), max_steps=60, max_candidates=40)

    first, second = run(), run()
    assert first.archs == second.archs and first.predicted == second.predicted
    assert not first.notes["warm_started"]
    warm = run(warm_state=first.state)
    assert warm.notes["warm_started"]
    # Weights saved for one data shape are refused (with a warning) for another.
    other = dict(first.state, n_inputs=first.state["n_inputs"] + 1)
    assert not run(warm_state=other).notes["warm_started"]
    assert "does not fit" in caplog.text


def test_cancel_stops_the_supernet_early(cancer_data):
    shortlist = spos_shortlist(context_for(cancer_data, MLPSpace(), should_cancel=lambda: True))
    assert shortlist.cancelled and shortlist.archs == []


def test_inherited_scores_use_recalibrated_batch_norm(cancer_data):
    """With batch-norm, scoring must not depend on statistics left by other paths: the same arch
    scores the same before and after another path's forward pass."""
    space = MLPSpace()
    supernet = build_supernet(space, cancer_data.n_features, cancer_data.n_outputs)
    rng = np.random.default_rng(1)
    arch = dict(space.sample(rng), norm="batch", layers=[{"units": 64, "activation": "relu", "dropout": 0.0}])
    rows = np.arange(128)
    before = inherited_score(supernet, arch, cancer_data, rows)
    supernet.train()
    supernet(torch.from_numpy(cancer_data.X_train[:64]) * 100, space.sample(rng))
    assert inherited_score(supernet, arch, cancer_data, rows) == before


def test_run_search_trains_the_shortlist_as_trials_and_saves_the_supernet(cancer_data, tmp_path):
    config = SearchConfig(target="diagnosis", strategy="spos", budget_seconds=20, max_trials=6, max_params=50_000)
    events = []
    result = run_search(config, cancer_data, on_status=events.append, artifacts_dir=tmp_path)
    assert result.one_shot["supernet_steps"] > 0
    assert any("supernet" in event.message.lower() for event in events)
    first = [t for t in result.trials if "one_shot_score" in t.metrics]
    assert first, "the shortlisted architectures are trained and carry their one-shot score"
    assert all(t.status is not TrialStatus.FAILED for t in result.trials)
    assert all(t.costs.params <= 50_000 for t in result.trials if t.status is TrialStatus.COMPLETED)
    assert result.best is not None and result.best.score > 0.9
    saved = load_supernet(tmp_path / SUPERNET_FILE)
    assert saved["method"] == "spos" and saved["n_inputs"] == cancer_data.n_features

    warm = run_search(config, cancer_data, warm_supernet=tmp_path / SUPERNET_FILE, warm_start=result.trials)
    assert warm.one_shot["warm_started"]
    assert [t.number for t in warm.trials] == list(range(len(warm.trials)))  # warm trials are not results


def test_missing_supernet_file_is_ignored(tmp_path, caplog):
    assert load_supernet(tmp_path / "nope.pt") is None
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    assert load_supernet(tmp_path / "bad.pt") is None
    assert "Cannot read the supernet" in caplog.text


def test_strategy_proposes_its_shortlist_first_and_replays_it():
    space = MLPSpace()
    rng = np.random.default_rng(0)
    shortlist = [space.sample(rng) for _ in range(3)]
    strategy = SPOSStrategy(space=space, seed=4)
    strategy.receive_shortlist(shortlist)
    assert strategy.ask(2) == shortlist[:2]
    restored = SPOSStrategy.from_state_dict(strategy.state_dict(), space=space)
    assert restored.ask(2)[0] == shortlist[2] == strategy.ask(2)[0]
