"""Contract every registered strategy meets, and search settings validation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nas_engine
from nas_engine import STRATEGIES, ConstraintError, Costs, SearchConfig, TrialResult, TrialStatus
from nas_engine.spaces import MLPSpace


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_contract(name):
    space = MLPSpace()
    first = STRATEGIES[name](space=space, seed=5).ask(4)
    strategy = STRATEGIES[name](space=space, seed=5)
    assert strategy.ask(4) == first  # same seed, same proposals
    assert all(space.costs(arch, 4, 2).params > 0 for arch in first)
    result = TrialResult(
        number=0,
        status=TrialStatus.COMPLETED,
        architecture=first[0],
        arch_hash=space.arch_hash(first[0]),
        metrics={"score": 0.5},
        costs=space.costs(first[0], 4, 2),
        train_seconds=1.0,
    )
    strategy.tell([result])
    assert len(strategy.ask(2)) == 2


def test_strategies_and_what_they_use_do_not_import_torch():
    root = Path(nas_engine.__file__).parent
    files = [*root.glob("strategies/*.py"), *root.glob("spaces/*.py"), root / "results.py", root / "config.py"]
    for path in files:
        for node in ast.parse(path.read_text()).body:  # module level only: build_model imports lazily
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "torch" for n in names), path


def test_config_round_trips_and_validates():
    config = SearchConfig(target="y", max_params=1000, budget_seconds=5)
    assert SearchConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConstraintError, match="above 0 seconds"):
        SearchConfig(target="y", budget_seconds=0)
    with pytest.raises(ConstraintError, match="max_params must be above 0"):
        SearchConfig(target="y", max_params=-1)
    with pytest.raises(ValueError, match="known strategies: random"):
        SearchConfig(target="y", strategy="magic")
    with pytest.raises(ValueError, match="Unknown search setting"):
        SearchConfig.from_dict({"target": "y", "colour": "red"})
    with pytest.raises(TypeError):
        SearchConfig("y")  # keyword-only


def test_results_serialise_to_json_types():
    result = TrialResult(
        number=1,
        status=TrialStatus.REJECTED,
        architecture={},
        arch_hash="x",
        metrics={},
        costs=Costs(params=1, flops=1, latency_ms=None, size_bytes=4),
        train_seconds=0.0,
        message="too big",
    )
    assert result.to_dict()["status"] == "rejected" and result.to_dict()["costs"]["params"] == 1
