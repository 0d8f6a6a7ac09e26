"""The contract every registered strategy meets, run on a tiny toy space (Optuna's
``pytest_samplers`` idea): n valid proposals, seed reproducibility, state round-trip, bad trials."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas_engine.results import Costs, TrialResult, TrialStatus
from nas_engine.spaces.base import SearchSpace
from nas_engine.strategies import STRATEGIES


class ToySpace(SearchSpace):
    """``n_decisions`` integer decisions ``x0, x1, ...`` with options 0..``n_options``-1; the
    genome is ``{"space": "toy", "x": [...]}``; "parameters" grow with the values chosen."""

    name = "toy"

    def __init__(self, n_decisions: int = 4, n_options: int = 3) -> None:
        self.n_decisions, self.n_options = n_decisions, n_options

    def decisions(self) -> dict[str, tuple]:
        return {f"x{i}": tuple(range(self.n_options)) for i in range(self.n_decisions)}

    def from_decisions(self, choices: dict) -> dict:
        return {"space": "toy", "x": [int(choices[f"x{i}"]) for i in range(self.n_decisions)]}

    def to_decisions(self, arch: dict) -> dict:
        return {f"x{i}": value for i, value in enumerate(arch["x"])}

    def sample(self, rng: np.random.Generator) -> dict:
        return {"space": "toy", "x": [int(v) for v in rng.integers(self.n_options, size=self.n_decisions)]}

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        x = list(arch["x"])
        i = int(rng.integers(self.n_decisions))
        x[i] = (x[i] + 1 + int(rng.integers(self.n_options - 1))) % self.n_options  # always a different value
        return {"space": "toy", "x": x}

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        raise NotImplementedError("the toy space has no networks")

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        params = 1 + sum(arch["x"])
        return Costs(params=params, flops=params, latency_ms=None, size_bytes=4 * params)

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return 1

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return 1

    def describe(self, arch: dict) -> list[str]:
        return [f"x = {arch['x']}"]


def make_result(space: SearchSpace, arch: dict, number: int, status: TrialStatus, score: float | None) -> TrialResult:
    return TrialResult(
        number=number,
        status=status,
        architecture=arch,
        arch_hash=space.arch_hash(arch),
        metrics={} if score is None else {"score": score},
        costs=space.costs(arch, 1, 1),
        train_seconds=0.0,
    )


def feedback(space: SearchSpace, arch: dict, number: int) -> TrialResult:
    """A deterministic outcome of every kind: mostly completed, some pruned, rejected, failed."""
    score = sum(arch["x"]) / (len(arch["x"]) * 2)
    status = [TrialStatus.COMPLETED, TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.REJECTED][number % 4]
    if number % 7 == 6:
        status = TrialStatus.FAILED
    scored = status in (TrialStatus.COMPLETED, TrialStatus.PRUNED)
    return make_result(space, arch, number, status, score if scored else None)


def drive(strategy, rounds: int, *, start: int = 0) -> list[dict]:
    """Ask one, tell its synthetic outcome, ``rounds`` times; return what was proposed."""
    proposed = []
    for number in range(start, start + rounds):
        arch = strategy.ask(1)[0]
        proposed.append(arch)
        strategy.tell([feedback(strategy.space, arch, number)])
    return proposed


def is_valid(space: ToySpace, arch: dict) -> bool:
    choices = space.to_decisions(arch)
    options = space.decisions()
    return set(arch) == {"space", "x"} and all(choices[name] in options[name] for name in options)


NAMES = sorted(STRATEGIES)


@pytest.mark.parametrize("name", NAMES)
def test_it_has_a_label_and_description_for_the_form(name):
    cls = STRATEGIES[name]
    assert cls.name == name and cls.label and cls.description


@pytest.mark.parametrize("name", NAMES)
def test_ask_returns_n_valid_architectures(name):
    space = ToySpace()
    strategy = STRATEGIES[name](space=space, seed=0)
    for n in (1, 3, 7):
        archs = strategy.ask(n)
        assert len(archs) == n and all(is_valid(space, arch) for arch in archs)
    drive(strategy, 40, start=11)  # past every strategy's warm-up (population, startup trials)
    for n in (1, 5):
        archs = strategy.ask(n)
        assert len(archs) == n and all(is_valid(space, arch) for arch in archs)


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_gives_the_same_proposals(name):
    space = ToySpace()
    first = drive(STRATEGIES[name](space=space, seed=3), 10)
    assert drive(STRATEGIES[name](space=space, seed=3), 10) == first
    assert drive(STRATEGIES[name](space=space, seed=4), 10) != first


@pytest.mark.parametrize("name", NAMES)
def test_a_restored_strategy_proposes_what_the_original_would(name):
    space = ToySpace()
    original = STRATEGIES[name](space=space, seed=1)
    drive(original, 40)  # enough for every warm-up to end (a full population, the startup trials)
    original.ask(2)  # asked but not told: the restored one must hold the same pending proposals
    original.tell([feedback(space, space.sample(np.random.default_rng(9)), 42)])  # a result it never proposed
    state = json.loads(json.dumps(original.state_dict()))

    restored = STRATEGIES[name](space=space, seed=1)
    restored.load_state_dict(state)
    expected = original.ask(5)
    assert restored.ask(5) == expected
    assert drive(restored, 5, start=40) == drive(original, 5, start=40)
    assert STRATEGIES[name].from_state_dict(state, space=space).ask(5) == expected


@pytest.mark.parametrize("name", NAMES)
def test_it_refuses_a_state_it_cannot_reproduce(name):
    space = ToySpace()
    state = STRATEGIES[name](space=space, seed=1).state_dict()
    with pytest.raises(ValueError, match="settings"):
        STRATEGIES[name](space=space, seed=2).load_state_dict(state)
    other = next(n for n in NAMES if n != name)
    with pytest.raises(ValueError, match=f"saved by strategy '{other}'"):
        STRATEGIES[name](space=space, seed=1).load_state_dict(STRATEGIES[other](space=space).state_dict())
    used = STRATEGIES[name](space=space, seed=1)
    used.ask(1)
    with pytest.raises(ValueError, match="freshly built"):
        used.load_state_dict(state)


@pytest.mark.parametrize("name", NAMES)
def test_it_copes_with_rejected_and_failed_trials_only(name):
    space = ToySpace()
    strategy = STRATEGIES[name](space=space, seed=0)
    for number in range(30):
        arch = strategy.ask(1)[0]
        status = TrialStatus.REJECTED if number % 2 else TrialStatus.FAILED
        strategy.tell([make_result(space, arch, number, status, None)])
    strategy.tell([make_result(space, space.sample(np.random.default_rng(0)), 30, TrialStatus.COMPLETED, float("nan"))])
    archs = strategy.ask(4)
    assert len(archs) == 4 and all(is_valid(space, arch) for arch in archs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"objectives": ("params", "score")}, "first objective must be 'score'"),
        ({"objectives": ("score", "accuracy")}, "Unknown objective"),
        ({"objectives": ("score", "params", "flops", "size_bytes")}, "1 to 3 different objectives"),
        ({"objectives": ()}, "1 to 3 different objectives"),
    ],
)
def test_it_rejects_bad_settings_with_a_clear_message(name, settings, message):
    with pytest.raises(ValueError, match=message):
        STRATEGIES[name](space=ToySpace(), **settings)


@pytest.mark.parametrize("name", NAMES)
def test_ask_refuses_a_count_below_one(name):
    with pytest.raises(ValueError, match="at least one"):
        STRATEGIES[name](space=ToySpace()).ask(0)


@pytest.mark.parametrize("name", NAMES)
def test_it_takes_results_in_any_order_and_batch(name):
    space = ToySpace()
    strategy = STRATEGIES[name](space=space, seed=0)
    for round_number in range(6):
        archs = strategy.ask(8)  # repeats within a batch are possible in a space of 81
        results = [feedback(space, arch, 8 * round_number + i) for i, arch in enumerate(archs)]
        strategy.tell(results[::-1][:5])
        strategy.tell(results[::-1][5:])
    assert len(strategy.history) == 48 and len(strategy.ask(3)) == 3
