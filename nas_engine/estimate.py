"""Before a search starts: whether any network of the space fits the limits, and about how many
trials the time budget buys. No training happens here; it takes milliseconds, so the web form can
ask on every slider move.

The cost model prices one training epoch of an architecture from its analytic FLOPs, its depth
and its batch size (see ``Throughput``), averages it over networks sampled from the space that
pass the limits, and replays the search's schedule (``fidelity.brackets``, early stopping, k-fold
on small data) until the budget is spent.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nas_engine.config import SearchConfig, broken_limits, sequential_reason
from nas_engine.errors import ConstraintError
from nas_engine.fidelity import MAX_BRACKET_SIZE, Fidelity, brackets, rung_epochs, survivors, training_rows
from nas_engine.prepare import MAX_CATEGORIES
from nas_engine.spaces import SearchSpace, detect_image_shape, make_space
from nas_engine.spaces.training import DEFAULT_TRAIN
from nas_engine.strategies import STRATEGIES, GridStrategy, OneShotStrategy

TRAIN_SHARE, VALIDATION_SHARE = 0.6, 0.2  # prepare_data's default split (the rest is the test split)
SAMPLES = 30
MAX_DRAWS = 1000  # sampling stops here even when fewer than SAMPLES networks fit
FEW_FIT = 0.01  # below this share of fitting networks the search risks 200 rejections in a row


@dataclass(frozen=True)
class Throughput:
    """What training costs on the worker's CPU (one torch thread, as ``run_search`` trains), in seconds.

    An epoch costs ``steps * (step + step_per_layer * depth) + per_mac * macs + epoch`` where
    ``steps`` is the number of batches, ``depth`` the hidden layers (MLP) or blocks (CNN), and
    ``macs`` the multiply-adds of the epoch: (3 x training rows + validation rows) x the network's
    FLOPs per row, backward costing about twice the forward pass. ``trial`` is paid once per trial
    and fold: building the network, the first batches' warm-up, measuring latency, the strategy.

    Calibrated by ``python -m benchmarks.estimate --calibrate``, which times epochs of 60 sampled
    MLPs (300 to 20,000 rows, 10 to 200 inputs) and 60 CNNs (8x8 to 16x16 images) and fits these
    constants by non-negative least squares on the relative error; ``trial`` is its median extra
    time of a first epoch plus the latency measurement. Measured with torch 2.13 on the 2-core
    development VM while other processes shared it, as a worker shares its machine with the web
    server; rerun it on a worker to calibrate for that machine. Small MLPs are bound by Python's
    per-batch overhead, so ``step`` matters more than ``per_mac``; 80 % of epochs fall within
    about 30 % of the fit for MLPs, and within a factor of 3 for CNNs, whose depthwise convolutions
    run slower than their FLOPs suggest. benchmarks/results/estimate.md checks the whole estimate
    against real searches.
    """

    step: float
    step_per_layer: float
    per_mac: float
    epoch: float
    trial: float

    def epoch_seconds(self, *, rows: int, validation_rows: int, batch_size: int, depth: int, flops: int) -> float:
        """Seconds of one epoch over ``rows`` training rows, validated on ``validation_rows``."""
        steps = math.ceil(rows / batch_size)
        macs = (3 * rows + validation_rows) * flops
        return steps * (self.step + self.step_per_layer * depth) + self.per_mac * macs + self.epoch


THROUGHPUT: dict[str, Throughput] = {
    "mlp": Throughput(step=1.7e-4, step_per_layer=1.9e-4, per_mac=4.2e-11, epoch=4.8e-4, trial=0.02),
    "cnn": Throughput(step=0.0, step_per_layer=2.0e-3, per_mac=2.7e-11, epoch=0.021, trial=0.08),
}
# Trials stop once `patience` epochs bring no improvement: a share of the epochs past `patience`
# is trained. In real searches (benchmarks/estimate.py; patience 5, 50 epochs) networks with hidden
# layers stopped after about 25 epochs, while linear models (convex, slowly improving) ran ~47.
EARLY_STOP_SHARE = 0.45
LINEAR_STOP_SHARE = 0.93


class NoNetworkFits(ConstraintError):
    """Even the smallest network of the search space breaks a limit.

    Attributes:
        field: The setting to loosen: ``max_params``, ``max_flops``, ``max_size_bytes`` or
            ``max_memory_bytes``.
        smallest: What the smallest network needs, in that setting's unit.
    """

    def __init__(self, message: str, *, field: str, smallest: int) -> None:
        super().__init__(message)
        self.field = field
        self.smallest = smallest


class GridTooLarge(ConstraintError):
    """A grid search the budget or the trial limit cannot cover; ``field`` is the setting to change."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs to know of a dataset: the rows that have a target value, the
    network's inputs after encoding and its outputs, and the image shape when pixels."""

    rows: int
    n_inputs: int
    n_outputs: int
    image_shape: tuple[int, int, int] | None = None

    @classmethod
    def from_profile(
        cls,
        profile: dict,
        *,
        target: str,
        task: str | None = None,
        ignore: Sequence[str] = (),
        column_types: Sequence[str] = (),
    ) -> DataShape:
        """Read the shape from a ``DatasetProfile.to_dict()``, without reading the file again.

        Encoded inputs count as ``prepare_data`` makes them (without the ``ignore`` columns): one
        per numeric column, one per category (at most ``MAX_CATEGORIES``) plus an "other" slot per
        text column, four per column read as a date (``column_types``, ``COL=KIND``). Categories
        seen only outside the training split make this an upper bound.

        Raises:
            ConstraintError: ``target`` is not a column of the profile.
        """
        columns = {column["name"]: column for column in profile["columns"]}
        if target not in columns:
            raise ConstraintError(f"Column '{target}' is not in the dataset.")
        column = columns[target]
        task = task or column["suggested_task"]
        left_out = {target, *ignore}
        features = [c for c in profile["columns"] if c["name"] not in left_out]
        kinds = dict(text.rpartition("=")[::2] for text in column_types)

        def width(column: dict) -> int:
            kind = kinds.get(column["name"]) or column["kind"]
            return 1 if kind == "numeric" else 4 if kind == "date" else min(column["unique"], MAX_CATEGORIES) + 1

        n_inputs = sum(width(c) for c in features)
        return cls(
            rows=max(0, profile["rows"] - column["missing"]),
            n_inputs=max(1, n_inputs),
            n_outputs=max(2, column["unique"]) if task == "classification" else 1,
            image_shape=detect_image_shape([c["kind"] for c in features]),
        )


@dataclass(frozen=True)
class Estimate:
    """About how many trials a search will run, and what one costs.

    Attributes:
        trials: Architectures trained (what ``max_trials`` counts), at least 1.
        seconds_per_trial: Mean training seconds of one, multi-fidelity rungs included.
        capped: ``max_trials`` ends the search before the budget does.
        fitting_share: Share of networks sampled from the space that pass the analytic limits.
        text: One sentence for the form, e.g. "about 40 models in 1 min (about 1.4 s each)".
        warning: A second sentence when something looks wrong (few networks fit), else "".
    """

    trials: int
    seconds_per_trial: float
    capped: bool
    fitting_share: float
    text: str
    warning: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_limits(
    space: SearchSpace,
    shape: DataShape,
    *,
    max_params: int | None = None,
    max_flops: int | None = None,
    max_size_bytes: int | None = None,
    max_memory_bytes: int | None = None,
) -> None:
    """Refuse limits that not even the smallest network of ``space`` meets (None: no limit).

    Raises:
        NoNetworkFits: A limit is below the smallest network; the message says what it needs.
    """
    smallest = space.smallest_params(shape.n_inputs, shape.n_outputs)
    if max_params is not None and max_params < smallest:
        raise NoNetworkFits(
            f"No network fits under {max_params:,} parameters: the smallest one for this data has "
            f"{smallest:,}. Raise the limit to at least {smallest:,}, or leave it empty.",
            field="max_params",
            smallest=smallest,
        )
    cheapest = space.smallest_flops(shape.n_inputs, shape.n_outputs)
    if max_flops is not None and max_flops < cheapest:
        raise NoNetworkFits(
            f"No network fits under {max_flops:,} FLOPs per prediction: the cheapest one for this "
            f"data needs {cheapest:,}. Raise the limit to at least {cheapest:,}, or leave it empty.",
            field="max_flops",
            smallest=cheapest,
        )
    smallest_bytes = smallest * 4  # float32 weights
    if max_size_bytes is not None and max_size_bytes < smallest_bytes:
        raise NoNetworkFits(
            f"No network fits in {_size(max_size_bytes)}: the smallest one for this data takes "
            f"{_size(smallest_bytes)}. Raise the limit, or leave it empty.",
            field="max_size_bytes",
            smallest=smallest_bytes,
        )
    if max_memory_bytes is not None:
        leanest = space.smallest_memory(shape.n_inputs, shape.n_outputs)
        if max_memory_bytes < leanest:
            raise NoNetworkFits(
                f"No network runs in {_size(max_memory_bytes)} of memory: the leanest one for this data needs "
                f"{_size(leanest)} at its peak (weights and activations). Raise the limit, or leave it empty.",
                field="max_memory_bytes",
                smallest=leanest,
            )


@dataclass(frozen=True)
class _Sample:
    """The parts of a sampled architecture that its training time depends on."""

    flops: int
    depth: int
    batch_size: int


def estimate_search(
    config: SearchConfig, shape: DataShape, *, samples: int = SAMPLES, parallel: int = 1, speed: float = 1.0
) -> Estimate:
    """Estimate how many architectures a search with ``config`` trains on data of ``shape``.

    Args:
        config: The search settings (budget, limits, space, fidelity, epochs, seed).
        shape: The dataset's rows, encoded inputs and outputs (``DataShape.from_profile``).
        samples: Networks that pass the limits to average the cost over.
        parallel: Models trained at once, each by its own worker (``nas_engine.parallel``; a
            search that must stay on one worker, ``sequential_reason``, trains one at a time).
            Each worker is taken to train as fast as one alone (measured: 1.9x with 2 workers on
            2 cores, ``benchmarks/results/scaling.md``).
        speed: How fast the workers that will train it are, relative to the machine ``THROUGHPUT``
            was measured on (``devices.measure_speed``'s value for this space: 2 trains each model in
            half the time); every training second is divided by it.

    Returns:
        The estimate; deterministic for a given seed.

    Raises:
        NoNetworkFits: Not even the smallest network meets a limit.
        ConstraintError: The space does not suit the data (a CNN without pixel columns).
    """
    space = make_space(config.space, n_inputs=shape.n_inputs, image_shape=shape.image_shape, strategy=config.strategy)
    config = config.for_space(space)
    check_limits(space, shape, **config.analytic_limits())
    fitting, draws = _sample_fitting(space, shape, config, samples)
    share = len(fitting) / draws if draws else 0.0
    if not fitting:  # none drawn fits, yet the smallest does: price the smallest
        flops = space.smallest_flops(shape.n_inputs, shape.n_outputs)
        fitting = [_Sample(flops=flops, depth=1, batch_size=DEFAULT_TRAIN["batch_size"])]
    throughput = THROUGHPUT[space.throughput]
    folds = config.folds(round(shape.rows * TRAIN_SHARE))
    cost = _training_cost(throughput, fitting, shape, folds, config)
    speed = max(float(speed), 1e-3)

    def training(done: int, until: int, rows: int) -> float:
        return cost(done, until, rows) / speed

    budget, strategy = config.budget_seconds, STRATEGIES[config.strategy]
    if issubclass(strategy, OneShotStrategy):  # the supernet takes its share before the first trial
        config = dataclasses.replace(config, budget_seconds=config.budget_seconds * (1 - strategy.budget_share))
    slots = max(1, int(parallel)) if not sequential_reason(config) else 1
    config = dataclasses.replace(config, budget_seconds=config.budget_seconds * slots)  # each slot's budget
    trials, seconds_per_trial, capped = _replay(config, training, throughput.trial * folds / speed, shape)
    return Estimate(
        trials=trials,
        seconds_per_trial=round(seconds_per_trial, 3),
        capped=capped,
        fitting_share=round(share, 4),
        text=_text(trials, seconds_per_trial, capped, budget, slots),
        warning=_warning(share, draws),
    )


def _sample_fitting(
    space: SearchSpace, shape: DataShape, config: SearchConfig, samples: int
) -> tuple[list[_Sample], int]:
    """Up to ``samples`` random networks that pass the analytic limits, and how many were drawn."""
    rng = np.random.default_rng(config.seed)
    fitting: list[_Sample] = []
    draws = 0
    while len(fitting) < samples and draws < MAX_DRAWS:
        draws += 1
        arch = space.sample(rng)
        costs = space.costs(arch, shape.n_inputs, shape.n_outputs)
        if broken_limits(costs, config.analytic_limits()):
            continue
        depth = len(arch.get("layers", ())) + sum(stage.get("blocks", 1) for stage in arch.get("stages", ()))
        batch_size = int(arch.get("train", DEFAULT_TRAIN)["batch_size"])
        fitting.append(_Sample(flops=costs.flops, depth=depth, batch_size=batch_size))
    return fitting, draws


def _length(config: SearchConfig) -> tuple[int, int]:
    """``(max_epochs, patience)`` of a config resolved by ``SearchConfig.for_space``."""
    if config.max_epochs is None or config.patience is None:
        raise ValueError("The config leaves its epochs to the space: resolve it with for_space(space) first.")
    return config.max_epochs, config.patience


def _training_cost(
    throughput: Throughput, fitting: list[_Sample], shape: DataShape, folds: int, config: SearchConfig
) -> Callable[[int, int, int], float]:
    """Mean seconds to train a network from one epoch count to a higher one on a number of rows
    per epoch, all folds together, for the networks that fit; each stops early on its own."""
    train_rows = max(1, round(shape.rows * TRAIN_SHARE))
    validation_rows = max(1, round(shape.rows * VALIDATION_SHARE))
    if folds > 1:  # k-fold over train+validation: each fold trains on (k-1)/k of them
        pooled = train_rows + validation_rows
        train_rows, validation_rows = pooled - pooled // folds, max(1, pooled // folds)
    full_rows = train_rows
    max_epochs, patience = _length(config)
    past_patience = max(0, max_epochs - patience)
    shares = [LINEAR_STOP_SHARE if s.depth == 0 else EARLY_STOP_SHARE for s in fitting]
    stops = [patience + share * past_patience for share in shares]

    def cost(done: int, until: int, rows: int) -> float:
        rows = min(rows, full_rows)
        each = [
            max(0.0, min(until, stop) - min(done, stop))
            * throughput.epoch_seconds(
                rows=rows, validation_rows=validation_rows, batch_size=s.batch_size, depth=s.depth, flops=s.flops
            )
            for s, stop in zip(fitting, stops, strict=True)
        ]
        return folds * float(np.mean(each))

    return cost


def _replay(
    config: SearchConfig, training: Callable[[int, int, int], float], trial_seconds: float, shape: DataShape
) -> tuple[int, float, bool]:
    """Replay the search's schedule with the mean network: (trials, seconds per trial, capped).

    A trial counts once it starts before the deadline, as in ``run_search`` (it then trains until
    the deadline and is reported). The schedule repeats (one bracket, or Hyperband's cycle of
    brackets), so whole cycles are counted at once and only the last one is replayed.
    """
    max_epochs = _length(config)[0]
    min_epochs = min(config.min_epochs, max_epochs)
    rungs = rung_epochs(min_epochs=min_epochs, max_epochs=max_epochs, eta=config.eta)
    n_rows = max(1, round(shape.rows * TRAIN_SHARE))
    period = len(rungs) if config.fidelity == Fidelity.HYPERBAND else 1
    cycle = list(itertools.islice(brackets(config.fidelity, n_rungs=len(rungs), eta=config.eta), period))

    # (seconds per candidate, rung by rung) for each bracket of the cycle
    plans: list[tuple[int, list[float]]] = []
    for bracket in cycle:
        size = min(bracket.size, MAX_BRACKET_SIZE)
        done, costs = 0, []
        for rung in range(bracket.first_rung, len(rungs)):
            rows = training_rows(n_rows, epochs=rungs[rung], max_epochs=max_epochs)
            first = trial_seconds if rung == bracket.first_rung else 0.0
            costs.append(first + training(done, rungs[rung], rows))
            done = rungs[rung]
        plans.append((size, costs))

    def bracket_cost(size: int, costs: list[float]) -> float:
        total, alive = 0.0, size
        for cost in costs:
            total += alive * cost
            alive = survivors(alive, eta=config.eta)
        return total

    cycle_seconds = sum(bracket_cost(size, costs) for size, costs in plans)
    cycle_trials = sum(size for size, _ in plans)
    per_trial = cycle_seconds / cycle_trials
    limit = config.max_trials if config.max_trials is not None else math.inf
    budget = float(config.budget_seconds)
    whole = int(min(budget // cycle_seconds, limit // cycle_trials))
    elapsed, trials = whole * cycle_seconds, whole * cycle_trials
    for size, costs in itertools.cycle(plans):  # at most one more cycle: less than one is left
        if elapsed >= budget or trials >= limit:
            break
        started, elapsed = _spend(int(min(size, limit - trials)), costs, elapsed, budget, config.eta)
        trials += started
    capped = trials >= limit and elapsed < budget
    return max(1, int(trials)), per_trial, capped


def _spend(size: int, costs: list[float], elapsed: float, budget: float, eta: int) -> tuple[int, float]:
    """Run one bracket of ``size`` candidates from ``elapsed``: (candidates started, clock after).
    A candidate starts while the clock is before the budget; once one is cut short, time is up."""
    alive, started = size, 0
    for rung, cost in enumerate(costs):
        count = min(alive, math.ceil((budget - elapsed) / cost))
        started = count if rung == 0 else started
        elapsed += count * cost
        if count < alive:
            return started, max(elapsed, budget)
        alive = survivors(alive, eta=eta)
    return started, elapsed


def _text(trials: int, seconds_per_trial: float, capped: bool, budget_seconds: float, slots: int = 1) -> str:
    each = f"about {duration(seconds_per_trial)} each" + (f", {slots} at once" if slots > 1 else "")
    if capped:
        took = duration(math.ceil(trials / slots) * seconds_per_trial)
        return f"{trials:,} {_models(trials)} (your limit) in about {took} ({each})"
    if trials == 1 and seconds_per_trial > budget_seconds:
        return (
            f"1 model, cut short: one takes {each[6:]}, more than the {duration(budget_seconds)} budget; "
            "raise the budget or tighten the limits"
        )
    return f"about {_approximately(trials)} {_models(trials)} in {duration(budget_seconds)} ({each})"


def _warning(share: float, draws: int) -> str:
    if share >= FEW_FIT or not draws:
        return ""
    if share == 0:
        return (
            f"None of {draws:,} random networks fit these limits; the search will likely stop early. Loosen the limits."
        )
    return (
        f"Only about 1 in {round(1 / share):,} networks fits these limits; the search may stop early. "
        "Loosen the limits if it does."
    )


def _models(n: int) -> str:
    return "model" if n == 1 else "models"


def _approximately(n: int) -> str:
    """5 → "5", 42 → "40", 1234 → "1,200": no more digits than the estimate deserves."""
    if n < 10:
        return str(n)
    if n < 100:
        return str(max(10, 5 * round(n / 5)))
    digits = 10 ** (len(str(n)) - 2)
    return f"{round(n / digits) * digits:,}"


def duration(seconds: float) -> str:
    """Readable seconds: 0.25 → "0.25 s", 45 → "45 s", 600 → "10 min", 5400 → "1 h 30 min"."""
    if seconds < 10:
        return f"{seconds:.2g} s"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        minutes, rest = divmod(s, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(round(s / 60), 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MB"
    if n >= 1024:
        return f"{n / 1024:.3g} KB"
    return f"{n} bytes"


def check_grid(config: SearchConfig, shape: DataShape) -> None:
    """Refuse a grid search that cannot try its whole grid: more networks than ``max_trials``, or
    than the budget buys by the estimate (priced on random networks of the space, which are larger
    on average than the grid's: the refusal errs on the side of letting a search run).

    Raises:
        GridTooLarge: The grid does not fit; the message says what would make it fit.
    """
    if config.strategy != GridStrategy.name:
        return
    space = make_space(config.space, n_inputs=shape.n_inputs, image_shape=shape.image_shape, strategy=config.strategy)
    size = GridStrategy(space=space).size
    if config.max_trials is not None and config.max_trials < size:
        raise GridTooLarge(
            f"The grid has {size} networks but at most {config.max_trials} may be trained; allow {size} models "
            "(or leave the limit empty), or choose another strategy.",
            field="max_trials",
        )
    estimate = estimate_search(config, shape)
    if estimate.trials < size and not estimate.capped:
        needed = math.ceil(size * estimate.seconds_per_trial * 1.2)
        raise GridTooLarge(
            f"The grid has {size} networks, but this budget trains about {estimate.trials} of them "
            f"(about {estimate.seconds_per_trial:.2g} s each); give the search at least {needed} seconds, "
            "or choose another strategy.",
            field="budget_seconds",
        )
