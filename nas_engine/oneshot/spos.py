"""Single-path one-shot weight sharing (SPOS, Guo et al. 2020) over the MLP and CNN spaces.

One supernet holds every architecture of the space at once. Each training step samples one
architecture uniformly (within the search's analytic limits) and trains only its path, so the
weights are shared by all of them. Candidates are then scored with the inherited weights (after
recalibrating batch-norm statistics on a few training batches, as the paper does) by an
evolutionary search, and the most promising ones go back to the search loop, which retrains them
from scratch.

Weights are shared by slicing (the "weight entanglement" of OFA/AutoFormer rather than one
separate weight per choice, which the paper uses for block types): a layer of 64 units is the
first 64 rows of the 512-unit layer, a 3×3 kernel is the centre of the 5×5 one. Block types of
the CNN space keep separate weights, as SPOS's choice blocks do. Dropout rates are applied as
sampled; training settings are not searched here (the supernet trains with ``DEFAULT_TRAIN``,
and so do the shortlisted genomes when retrained).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_engine.batches import Batches
from nas_engine.config import broken_limits
from nas_engine.evaluator import class_weights_of, evaluate_model, training_loss
from nas_engine.oneshot import Clock, OneShotContext, Shortlist, state_fits
from nas_engine.pareto import pareto_front_nd
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.cnn import (
    BLOCKS_PER_STAGE,
    CHANNELS,
    EXPANSIONS,
    KERNELS,
    MAX_STAGES,
    STEM_CHANNELS,
    CNNSpace,
    ConvUnit,
)
from nas_engine.spaces.mlp import MAX_DEPTH, UNITS, MLPSpace
from nas_engine.spaces.training import DEFAULT_TRAIN

logger = logging.getLogger(__name__)

TRAIN_SHARE = 0.8  # of the one-shot phase; the rest is the evolutionary search with inherited weights
MAX_STEPS = 3000  # supernet steps; past this the time is better spent retraining candidates
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
RECALIBRATION_ROWS = 256  # training rows whose statistics replace batch-norm's before scoring a candidate
POPULATION = 50
PARENTS = 10
MAX_CANDIDATES = 500
MAX_SAMPLE_DRAWS = 50  # draws to find an architecture within the limits before giving up on them

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
}


class _Norms:
    """Batch-norm without running buffers: ``train`` normalises with the batch's statistics,
    ``collect`` also accumulates them per layer (the recalibration of SPOS), ``eval`` uses the
    accumulated ones. Statistics are kept per candidate, keyed by layer."""

    def __init__(self) -> None:
        self.mode = "train"
        self.stats: dict[str, list] = {}  # key -> [rows, sum, sum of squares]

    def __call__(self, key: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.mode == "eval" and key in self.stats:
            rows, total, squares = self.stats[key]
            mean = total / rows
            var = (squares / rows - mean**2).clamp_min(0.0)
            return F.batch_norm(x, mean, var, weight, bias, training=False)
        if self.mode == "collect":
            dims = (0, 2, 3) if x.dim() == 4 else (0,)
            held = self.stats.setdefault(key, [0, 0.0, 0.0])
            held[0] += x.numel() // x.shape[1]
            held[1] = held[1] + x.detach().sum(dims)
            held[2] = held[2] + (x.detach() ** 2).sum(dims)
        return F.batch_norm(x, None, None, weight, bias, training=True)


class Supernet(nn.Module):
    """A network holding every architecture of a space: ``forward(x, arch)`` runs one of them."""

    norms: _Norms

    def forward(self, x: torch.Tensor, arch: dict) -> torch.Tensor:
        raise NotImplementedError


class MLPSupernet(Supernet):
    """Every MLP of ``MLPSpace`` for ``n_inputs`` → ``n_outputs``, sharing sliced weights."""

    def __init__(self, n_inputs: int, n_outputs: int) -> None:
        super().__init__()
        width = max(UNITS)
        self.n_inputs = n_inputs
        self.linear = nn.ModuleList(nn.Linear(n_inputs if i == 0 else width, width) for i in range(MAX_DEPTH))
        self.project = nn.ModuleList(
            nn.Linear(n_inputs if i == 0 else width, width, bias=False) for i in range(MAX_DEPTH)
        )
        self.norm_weight = nn.ParameterList(nn.Parameter(torch.ones(width)) for _ in range(2 * MAX_DEPTH))
        self.norm_bias = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(2 * MAX_DEPTH))
        self.head = nn.Linear(width, n_outputs)
        self.linear_head = nn.Linear(n_inputs, n_outputs)  # depth 0: the linear model
        self.norms = _Norms()

    def forward(self, x: torch.Tensor, arch: dict) -> torch.Tensor:
        width, norm = self.n_inputs, arch.get("norm", "none")
        for i, layer in enumerate(arch["layers"]):
            units = layer["units"]
            linear, project = cast(nn.Linear, self.linear[i]), cast(nn.Linear, self.project[i])
            out = F.linear(x, linear.weight[:units, :width], linear.bias[:units])
            if norm == "batch":
                out = self.norms(f"bn{i}", out, self.norm_weight[i][:units], self.norm_bias[i][:units])
            elif norm == "layer":
                j = MAX_DEPTH + i
                out = F.layer_norm(out, (units,), self.norm_weight[j][:units], self.norm_bias[j][:units])
            out = _ACTIVATIONS[layer["activation"]](out)
            out = F.dropout(out, layer["dropout"], training=self.training)
            if arch.get("residual"):
                out = out + (x if width == units else F.linear(x, project.weight[:units, :width]))
            x, width = out, units
        if not arch["layers"]:
            return self.linear_head(x)
        return F.linear(x, self.head.weight[:, :width], self.head.bias)


class _ConvSlot(nn.Module):
    """The largest convolution a position can hold, with its batch-norm scale and shift."""

    def __init__(self, cout: int, cin: int, kernel: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.norm_weight = nn.Parameter(torch.ones(cout))
        self.norm_bias = nn.Parameter(torch.zeros(cout))


class CNNSupernet(Supernet):
    """Every CNN of ``CNNSpace`` for one image shape: block types keep their own weights per
    position (stage, block), channels and kernels are slices of the largest."""

    def __init__(self, space: CNNSpace, n_outputs: int) -> None:
        super().__init__()
        self.space = space
        top, kernel, hidden = max(CHANNELS), max(KERNELS), max(CHANNELS) * max(EXPANSIONS)
        self.stem = _ConvSlot(max(STEM_CHANNELS), space.image_shape[0], 3)
        self.blocks = nn.ModuleDict()
        for stage in range(MAX_STAGES):
            for block in range(max(BLOCKS_PER_STAGE)):
                slots = {
                    "conv_c": _ConvSlot(top, top, kernel),
                    "residual_c1": _ConvSlot(top, top, kernel),
                    "residual_c2": _ConvSlot(top, top, kernel),
                    "residual_sc": _ConvSlot(top, top, 1),
                    "inverted_expand": _ConvSlot(hidden, top, 1),
                    "inverted_dw": _ConvSlot(hidden, 1, kernel),
                    "inverted_project": _ConvSlot(top, hidden, 1),
                }
                self.blocks[f"{stage}_{block}"] = nn.ModuleDict(slots)
        self.head = nn.Linear(top, n_outputs)
        self.norms = _Norms()

    def _conv(self, key: str, slot: _ConvSlot, x: torch.Tensor, spec, act: str) -> torch.Tensor:
        offset = (slot.weight.shape[-1] - spec.kernel) // 2
        window = slice(offset, offset + spec.kernel)
        cin = 1 if spec.groups > 1 else spec.cin
        weight = slot.weight[: spec.cout, :cin, window, window]
        out = F.conv2d(x, weight, None, spec.stride, spec.kernel // 2, groups=spec.groups)
        out = self.norms(key, out, slot.norm_weight[: spec.cout], slot.norm_bias[: spec.cout])
        return _ACTIVATIONS[act](out) if spec.act else out

    def forward(self, x: torch.Tensor, arch: dict) -> torch.Tensor:
        act = arch["activation"]
        x = x.view(-1, *arch["input_shape"])
        x = self._conv("stem", self.stem, x, ConvUnit(arch["input_shape"][0], arch["stem"]["channels"], 3), act)
        positions = [(s, b) for s, stage in enumerate(arch["stages"]) for b in range(stage["blocks"])]
        for (s, b), (_, stage, block) in zip(positions, self.space.plan(arch), strict=True):
            kind, key = stage["block"], f"{s}_{b}"
            slots = cast(nn.ModuleDict, self.blocks[key])
            if kind == "conv":
                names = ["conv_c"]
            elif kind == "residual":
                names = ["residual_c1", "residual_c2"]
            else:
                names = (["inverted_expand"] if len(block.body) == 3 else []) + ["inverted_dw", "inverted_project"]
            out = x
            for name, spec in zip(names, block.body, strict=True):
                out = self._conv(f"{key}_{name}", cast(_ConvSlot, slots[name]), out, spec, act)
            if block.shortcut is not None:
                shortcut = x
                if block.shortcut:
                    sc = cast(_ConvSlot, slots["residual_sc"])
                    shortcut = self._conv(f"{key}_sc", sc, x, block.shortcut[0], act)
                out = out + shortcut
                out = _ACTIVATIONS[act](out) if block.act_after else out
            x = out
        x = x.mean((2, 3))
        x = F.dropout(x, arch["head"]["dropout"], training=self.training)
        return F.linear(x, self.head.weight[:, : x.shape[1]], self.head.bias)


class _Path(nn.Module):
    """One architecture of a supernet as a plain module, so ``evaluate_model`` can score it."""

    def __init__(self, supernet: Supernet, arch: dict) -> None:
        super().__init__()
        self.supernet, self.arch = supernet, arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.arch)


def build_supernet(space: SearchSpace, n_inputs: int, n_outputs: int) -> Supernet:
    """The supernet of ``space`` for this data.

    Raises:
        ValueError: The space has no supernet.
    """
    if isinstance(space, MLPSpace):
        return MLPSupernet(n_inputs, n_outputs)
    if isinstance(space, CNNSpace):
        return CNNSupernet(space, n_outputs)
    raise ValueError(f"Weight sharing supports the mlp and cnn spaces, not '{space.name}'.")


class _Sampler:
    """Uniform architectures within the analytic limits, with the supernet's training settings."""

    def __init__(self, context: OneShotContext, rng: np.random.Generator) -> None:
        self.context, self.rng = context, rng
        data = context.data
        self.n_inputs, self.n_outputs = data.n_features, data.n_outputs

    def fits(self, arch: dict) -> bool:
        """Whether ``arch`` keeps every analytic limit of the search."""
        costs = self.context.space.costs(arch, self.n_inputs, self.n_outputs)
        return not broken_limits(costs, self.context.limits)

    def fix(self, arch: dict) -> dict:
        return {**arch, "train": dict(DEFAULT_TRAIN)}

    def sample(self) -> dict:
        arch = self.fix(self.context.space.sample(self.rng))
        for _ in range(MAX_SAMPLE_DRAWS):
            if self.fits(arch):
                break
            arch = self.fix(self.context.space.sample(self.rng))
        return arch  # the limits may be tight: train this path anyway, the search rejects it later


def train_supernet(
    supernet: nn.Module, context: OneShotContext, sampler: _Sampler, clock: Clock, *, max_steps: int = MAX_STEPS
) -> dict:
    """Train ``supernet`` one uniformly sampled path per batch until the clock or ``max_steps``."""
    data = context.data
    X, y = Batches(data.X_train), torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(context.seed)
    optimizer = torch.optim.Adam(supernet.parameters(), lr=LEARNING_RATE)
    class_weights = class_weights_of(data.preprocessing["target"])

    def loss_of(out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return training_loss(out, targets, data.task, class_weights)

    start, steps, epochs = time.monotonic(), 0, 0
    supernet.train()
    max_epochs = context.epochs if context.epochs is not None else np.inf
    while steps < max_steps and epochs < max_epochs and not clock.stop():
        for idx in torch.randperm(len(X), generator=generator).split(BATCH_SIZE):
            if len(idx) < 2 or steps >= max_steps or clock.stop():
                continue
            inputs = X[idx]
            if context.augmentation is not None:
                inputs = context.augmentation.apply(inputs, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(supernet(inputs, sampler.sample()), y[idx])
            if not torch.isfinite(loss):
                continue  # one diverging path must not poison the shared weights
            loss.backward()
            optimizer.step()
            steps += 1
        epochs += 1
        share = max(steps / max_steps, (time.monotonic() - start) / max(1e-9, clock.until - start))
        context.progress(TRAIN_SHARE * share, f"Training the supernet: epoch {epochs}, {steps} paths.")
    return {"supernet_seconds": round(time.monotonic() - start, 3), "supernet_steps": steps, "supernet_epochs": epochs}


def inherited_score(supernet: Supernet, arch: dict, data, rows: np.ndarray) -> float:
    """Validation score of ``arch`` with the supernet's weights, batch-norm recalibrated on ``rows``."""
    norms = supernet.norms
    norms.stats, norms.mode = {}, "collect"
    supernet.eval()  # no dropout; the norms' mode, not the module's, decides which statistics they use
    with torch.inference_mode():
        for chunk in np.array_split(rows, max(1, len(rows) // BATCH_SIZE)):
            supernet(torch.from_numpy(data.X_train[chunk]), arch)
    norms.mode = "eval"
    try:
        target_std = data.preprocessing["target"].get("std", 1.0)
        metrics = evaluate_model(
            _Path(supernet, arch),
            data.X_val,
            data.y_val,
            task=data.task,
            target_std=target_std,
            target=data.preprocessing["target"],
        )
    finally:
        norms.mode, norms.stats = "train", {}
    score = float(metrics["score"])
    return score if np.isfinite(score) else -np.inf


def _cost(space: SearchSpace, arch: dict, data, objective: str) -> float:
    costs = space.costs(arch, data.n_features, data.n_outputs)
    return float(costs.flops if objective == "latency_ms" else getattr(costs, objective))  # FLOPs stand in for latency


def evolve(
    supernet: Supernet,
    context: OneShotContext,
    sampler: _Sampler,
    clock: Clock,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> dict[str, tuple]:
    """SPOS's evolutionary search with inherited weights: a population of the best scored so far,
    children by mutation and crossover of the top ``PARENTS``, until the clock or
    ``MAX_CANDIDATES``. Returns every distinct network scored: description -> (arch, score)."""
    space, data, rng = context.space, context.data, sampler.rng
    rows = rng.permutation(len(data.X_train))[:RECALIBRATION_ROWS]
    scored: dict[str, tuple] = {}  # by the network's description

    def score(arch: dict) -> None:
        key = "\n".join(space.describe(arch))  # genomes differing only in unused decisions are one network
        if key not in scored and sampler.fits(arch):
            scored[key] = (arch, inherited_score(supernet, arch, data, rows))

    start = time.monotonic()
    for _ in range(min(POPULATION, max_candidates)):
        if clock.stop():
            break
        score(sampler.sample())
    for _ in range(10 * max_candidates):  # children may repeat a scored network: bounded, not endless
        if len(scored) >= max_candidates or clock.stop():
            break
        parents = sorted(scored.values(), key=lambda item: item[1], reverse=True)[:PARENTS]
        if not parents:
            break
        first = parents[int(rng.integers(len(parents)))][0]
        if rng.random() < 0.5:
            child = space.mutate(first, rng)
        else:
            child = space.crossover(first, parents[int(rng.integers(len(parents)))][0], rng)
        score(sampler.fix(child))
        share = (time.monotonic() - start) / max(1e-9, clock.until - start)
        if len(scored) % 25 == 0:
            context.progress(TRAIN_SHARE + (1 - TRAIN_SHARE) * share, f"Scored {len(scored)} candidates.")
    return scored


def pick_shortlist(scored: list[tuple[dict, float, float]], size: int) -> list[tuple[dict, float]]:
    """Up to ``size`` of (arch, score, cost): half the best scores, the rest spread along the
    Pareto front of score against cost (so cheap models are retrained too), best score first."""
    ranked = sorted(scored, key=lambda item: -item[1])
    chosen = ranked[: max(1, size // 2)]
    front = [scored[i] for i in pareto_front_nd([(-s, c) for _, s, c in scored])]
    front.sort(key=lambda item: item[2])
    picks: list[int] = (
        [int(i) for i in np.linspace(0, len(front) - 1, num=min(len(front), size)).round()] if front else []
    )
    for i in picks:
        if len(chosen) >= size:
            break
        if all(front[i][0] is not item[0] for item in chosen):
            chosen.append(front[i])
    for item in ranked:  # a small front leaves room: the next best scores
        if len(chosen) >= size:
            break
        if all(item[0] is not held[0] for held in chosen):
            chosen.append(item)
    return [(arch, score) for arch, score, _ in sorted(chosen, key=lambda item: -item[1])]


def _warm(supernet: nn.Module, state: dict | None, identity: dict) -> bool:
    """Load an earlier search's supernet when it was built for the same method, space and data shape."""
    if not state_fits(state, identity):
        return False
    own, weights = supernet.state_dict(), state.get("weights")
    if (
        not isinstance(weights, dict)
        or weights.keys() != own.keys()
        or any(getattr(weights[key], "shape", None) != value.shape for key, value in own.items())
    ):
        logger.warning("The warm-start supernet's weights do not match this supernet; training from scratch.")
        return False
    supernet.load_state_dict(weights)
    return True


def spos_shortlist(
    context: OneShotContext, *, size: int = 8, max_steps: int = MAX_STEPS, max_candidates: int = MAX_CANDIDATES
) -> Shortlist:
    """Train the supernet, search it with inherited weights, return the ``size`` most promising.

    Args:
        context: What the method may use (see ``OneShotContext``).
        size: Most architectures to shortlist.
        max_steps: Most supernet training steps (one sampled path per batch).
        max_candidates: Most distinct networks the evolutionary search scores.

    Raises:
        ValueError: The space has no supernet (only mlp and cnn have one).
    """
    data, space = context.data, context.space
    torch.manual_seed(context.seed)
    supernet = build_supernet(space, data.n_features, data.n_outputs)
    identity = {
        "method": "spos",
        "space": space.name,
        "n_inputs": data.n_features,
        "n_outputs": data.n_outputs,
        "task": data.task,
    }
    warm = _warm(supernet, context.warm_state, identity)
    sampler = _Sampler(context, np.random.default_rng(context.seed))
    start = time.monotonic()
    train_until = start + TRAIN_SHARE * max(0.0, context.deadline - start)
    train_clock = Clock(context, train_until)
    notes = train_supernet(supernet, context, sampler, train_clock, max_steps=max_steps // 4 if warm else max_steps)
    clock = Clock(context, context.deadline)
    clock.cancelled = train_clock.cancelled
    scored = {} if clock.cancelled else evolve(supernet, context, sampler, clock, max_candidates=max_candidates)
    cost_name = context.objectives[1] if len(context.objectives) > 1 else "params"
    items = [(arch, score, _cost(space, arch, data, cost_name)) for arch, score in scored.values()]
    chosen = pick_shortlist([item for item in items if np.isfinite(item[1])], size)
    notes |= {"candidates_scored": len(scored), "warm_started": warm}
    return Shortlist(
        archs=[arch for arch, _ in chosen],
        predicted=[score for _, score in chosen],
        state=identity | {"weights": {k: v.detach().clone() for k, v in supernet.state_dict().items()}},
        notes=notes,
        cancelled=clock.cancelled,
    )
