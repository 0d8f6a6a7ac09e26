"""DARTS: differentiable architecture search (Liu et al. 2019), first-order, over the MLP and CNN
spaces, with a cost term that keeps the search inside the limits and honours the cost objective.

The supernet (``darts_supernets``) relaxes every decision to a softmax over its options. Training
splits ``X_train`` in two halves and alternates a step on the architecture weights α (second half,
Adam with DARTS's lr 3e-3, through the softmax relaxation, first-order) with a step on the weights
(first half, Adam, the augmentation applied). Unlike DARTS, the weight step trains one path drawn
from softmax(α), as GDAS and ProxylessNAS do: weights trained only inside the soft mixture give
discrete networks one-shot scores far below their own (on breast_cancer the linear model scored
0.82 that way, 0.97 with sampled paths), and those scores rank the shortlist. α's loss adds the
expected cost under softmax(α) (params, or FLOPs when the search weighs FLOPs or latency, FLOPs
standing in for latency):

    loss_α = task loss + cost_weight · E[cost] / largest cost + LIMIT_WEIGHT · Σ relu(E[c] − limit) / limit

The first ``WARMUP_SHARE`` of training moves the weights only, so α is not decided by which paths
happen to learn fastest from a random start. Discretising takes the argmax of every decision, then
variants: the most probable other genomes under softmax(α) (best-first over one-decision changes)
and, for a spread of the accuracy/cost trade-off, chains of ever cheaper and ever costlier networks
(each step the single change that loses the least log-probability per share of cost saved or
added; costlier ones only within the limits); every candidate is repaired to fit the limits (or dropped)
and scored with the supernet's weights, α replaced by its one-hot choice.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from nas_engine.batches import Batches, Rows
from nas_engine.config import ANALYTIC_LIMITS, broken_limits
from nas_engine.evaluator import class_weights_of, evaluate_model, training_loss
from nas_engine.oneshot import Clock, OneShotContext, Shortlist, state_fits
from nas_engine.oneshot.darts_supernets import MixedNet, build_mixed_net
from nas_engine.pareto import pareto_front
from nas_engine.results import Costs

logger = logging.getLogger(__name__)

BATCH_SIZE = 64
WEIGHT_LR = 1e-3  # DEFAULT_TRAIN's, which the shortlisted genomes are retrained with
ALPHA_LR, ALPHA_BETAS, ALPHA_WEIGHT_DECAY = 3e-3, (0.5, 0.999), 1e-3  # DARTS's settings for α
DEFAULT_COST_WEIGHT = 0.05  # a network of the largest cost must buy 0.05 of loss to be preferred
LIMIT_WEIGHT = 10.0  # an expected cost 10% over a limit weighs 1.0 of loss: far more than accuracy
WARMUP_SHARE = 0.2
DISCRETISE_SHARE, MAX_DISCRETISE_SECONDS = 0.1, 15.0  # time kept back from training to score
RECALIBRATION_ROWS = 512  # training rows whose statistics replace batch-norm's before scoring
MAX_REPAIR_STEPS = 20
# The supernet prices params and FLOPs only; memory (weights plus activations) follows params best
# in these small networks, and ``repair`` keeps shortlisted genomes within a memory limit.
_COST_OF_OBJECTIVE = {
    "params": "params",
    "size_bytes": "params",
    "memory_bytes": "params",
    "flops": "flops",
    "latency_ms": "flops",
}


@dataclass(frozen=True)
class CostPenalty:
    """The cost term of α's loss.

    Args:
        objective: ``"params"`` or ``"flops"``: the cost the always-on term lowers.
        weight: Weight of ``E[objective] / reference`` (0: no pressure beyond the limits).
        reference: The largest cost of the supernet, so the term lies in [0, weight].
        limits: ``{"params": ..., "flops": ...}`` the expected costs are pushed below.
    """

    objective: str
    weight: float
    reference: float
    limits: dict[str, float] = field(default_factory=dict)

    def __call__(self, net: MixedNet) -> torch.Tensor:
        penalty = self.weight * net.expected_cost(self.objective) / self.reference
        for name, limit in self.limits.items():
            penalty = penalty + LIMIT_WEIGHT * F.relu(net.expected_cost(name) - limit) / limit
        return penalty


def cost_objective(objectives: tuple[str, ...]) -> str:
    """The cost DARTS lowers: the first cost objective, as params or FLOPs (params by default)."""
    return next((_COST_OF_OBJECTIVE[name] for name in objectives[1:] if name in _COST_OF_OBJECTIVE), "params")


def cost_limits(limits: dict) -> dict[str, float]:
    """``context.limits`` as limits of params and FLOPs (a size limit is one of params: 4 bytes each)."""
    params = [v for v in (limits.get("max_params"), _params_of_size(limits.get("max_size_bytes"))) if v is not None]
    result = {"params": float(min(params))} if params else {}
    if limits.get("max_flops") is not None:
        result["flops"] = float(limits["max_flops"])
    return result


def _params_of_size(size_bytes) -> int | None:
    return None if size_bytes is None else int(size_bytes) // 4


def _excess(costs: Costs, limits: dict) -> float:
    """How far ``costs`` break the limits: the sum of relative excesses (0 when within)."""
    return sum(
        max(0.0, getattr(costs, ANALYTIC_LIMITS[name]) / limits[name] - 1.0) for name in broken_limits(costs, limits)
    )


# --- training ----------------------------------------------------------------------------------


@dataclass
class _Halves:
    """The two halves of the training rows: ``w`` trains the weights, ``a`` the architecture."""

    X: Batches
    y: torch.Tensor
    w: torch.Tensor
    a: torch.Tensor

    @classmethod
    def split(cls, X: Rows, y: np.ndarray, generator: torch.Generator) -> _Halves:
        order = torch.randperm(len(X), generator=generator)
        half = (len(X) + 1) // 2
        return cls(Batches(X), torch.from_numpy(y), order[:half], order[half:])

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Pairs of (weight batch, α batch) for one pass over the weight half; the α half cycles."""
        w = self.w[torch.randperm(len(self.w), generator=generator)].split(BATCH_SIZE)
        a = self.a[torch.randperm(len(self.a), generator=generator)].split(BATCH_SIZE)
        for i, batch in enumerate(w):
            if len(batch) >= 2:  # batch-norm cannot train on a lone row
                yield batch, a[i % len(a)] if a else batch[:0]


def _finite(loss: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(loss):
        raise FloatingPointError("DARTS training diverged (the loss became NaN or infinite).")
    return loss


def train_mixed_net(
    net: MixedNet,
    context: OneShotContext,
    penalty: CostPenalty,
    clock: Clock,
    *,
    epochs: int | None,
    warmup_epochs: int,
) -> int:
    """Alternate α steps (first-order DARTS, on the relaxation) and weight steps (on a path drawn
    from softmax(α)) until ``epochs``, the clock or a cancel.

    Args:
        net: The supernet.
        context: Data, seed, augmentation and progress reporting.
        penalty: The cost term of α's loss.
        clock: When to stop.
        epochs: Most passes over the weight half (None: until the clock stops).
        warmup_epochs: Epochs of weight steps only; when ``epochs`` is None the same share of
            the training time is used instead.

    Returns:
        The epochs done (the last may be partial).

    Raises:
        FloatingPointError: The loss became NaN or infinite.
    """
    data = context.data
    generator = torch.Generator().manual_seed(context.seed)
    halves = _Halves.split(data.X_train, data.y_train, generator)
    weights, alphas = net.weight_parameters(), list(net.alphas.parameters())
    class_weights = class_weights_of(data.preprocessing["target"])
    weight_optimizer = torch.optim.Adam(weights, lr=WEIGHT_LR)
    alpha_optimizer = torch.optim.Adam(alphas, lr=ALPHA_LR, betas=ALPHA_BETAS, weight_decay=ALPHA_WEIGHT_DECAY)
    start = time.monotonic()
    seconds = max(1e-9, clock.until - start)
    done = 0
    net.train()
    while (epochs is None or done < epochs) and not clock.stop():
        warm = done < warmup_epochs if epochs is not None else time.monotonic() - start < WARMUP_SHARE * seconds
        for w_batch, a_batch in halves.batches(generator):
            if not warm and len(a_batch) >= 2:
                alpha_optimizer.zero_grad(set_to_none=True)
                loss = training_loss(net(halves.X[a_batch]), halves.y[a_batch], data.task, class_weights) + penalty(net)
                _finite(loss).backward(inputs=alphas)
                alpha_optimizer.step()
            inputs = halves.X[w_batch]
            if context.augmentation is not None:
                inputs = context.augmentation.apply(inputs, generator)
            weight_optimizer.zero_grad(set_to_none=True)
            with net.fixed(net.sample(generator)):
                loss = training_loss(net(inputs), halves.y[w_batch], data.task, class_weights)
                _finite(loss).backward(inputs=weights)
            weight_optimizer.step()
            if clock.stop():
                break
        done += 1
        share = max(done / epochs if epochs else 0.0, (time.monotonic() - start) / seconds)
        context.progress((1 - DISCRETISE_SHARE) * share, f"DARTS supernet: epoch {done}")
    return done


# --- discretising ------------------------------------------------------------------------------


class _Discretiser:
    """Turns α into discrete choices (option index per decision) that fit the limits."""

    def __init__(self, net: MixedNet, context: OneShotContext, objective: str) -> None:
        self.net, self.context, self.objective = net, context, objective
        with torch.no_grad():
            self.logp = {name: torch.log_softmax(alpha, 0).tolist() for name, alpha in net.alphas.items()}
        self._costs: dict[tuple, Costs] = {}

    def costs(self, choice: dict[str, int]) -> Costs:
        key = tuple(sorted(choice.items()))
        if key not in self._costs:
            data = self.context.data
            self._costs[key] = self.context.space.costs(self.net.genome(choice), data.n_features, data.n_outputs)
        return self._costs[key]

    def cost(self, choice: dict[str, int]) -> float:
        return float(getattr(self.costs(choice), self.objective))

    def argmax(self) -> dict[str, int]:
        return {name: int(np.argmax(logp)) for name, logp in self.logp.items()}

    def moves(self, choice: dict[str, int]) -> Iterator[tuple[float, dict[str, int]]]:
        """Every choice one decision away, with the log-probability it gains (usually < 0)."""
        for name, logp in self.logp.items():
            for option in range(len(logp)):
                if option != choice[name]:
                    yield logp[option] - logp[choice[name]], {**choice, name: option}

    def repair(self, choice: dict[str, int]) -> dict[str, int] | None:
        """``choice`` changed, one decision at a time and losing the least log-probability, until it
        fits the limits; None when no change brings it closer."""
        limits = self.context.limits
        for _ in range(MAX_REPAIR_STEPS):
            excess = _excess(self.costs(choice), limits)
            if not excess:
                return choice
            better = [(gain, move) for gain, move in self.moves(choice) if _excess(self.costs(move), limits) < excess]
            if not better:
                return None
            choice = max(better, key=lambda item: (item[0], -_excess(self.costs(item[1]), limits)))[1]
        return None

    def chain(self, choice: dict[str, int], steps: int, *, cheaper: bool) -> list[dict[str, int]]:
        """Up to ``steps`` ever cheaper (or costlier, within the limits) choices from ``choice``: each
        the move that loses the least log-probability per share of cost saved (or added), a walk
        along the accuracy/cost trade-off."""
        chain = []
        for _ in range(steps):
            cost = self.cost(choice)
            moves = [
                (gain, move, abs(self.cost(move) / cost - 1.0))
                for gain, move in self.moves(choice)
                if (self.cost(move) < cost if cheaper else self.cost(move) > cost and self.fits(move))
            ]
            if not moves:
                break
            choice = max(moves, key=lambda item: item[0] / item[2])[1]
            chain.append(choice)
        return chain

    def fits(self, choice: dict[str, int]) -> bool:
        return _excess(self.costs(choice), self.context.limits) == 0.0

    def log_probability(self, choice: dict[str, int]) -> float:
        """Log-probability of ``choice``'s genome: over the decisions it uses only."""
        return sum(self.logp[name][choice[name]] for name in self.net.used(choice))

    def most_probable(self, choice: dict[str, int], count: int) -> list[dict[str, int]]:
        """Up to ``count`` distinct genomes' choices, best-first from ``choice`` by log-probability
        (each popped choice's one-decision neighbours join the queue)."""
        space, genome = self.context.space, self.net.genome
        queue = [(-self.log_probability(choice), 0, choice)]
        seen, pushed = {space.arch_hash(genome(choice))}, 1
        found: list[dict[str, int]] = []
        while queue and len(found) < count:
            _, _, choice = heapq.heappop(queue)
            found.append(choice)
            for _, move in self.moves(choice):
                key = space.arch_hash(genome(move))
                if key not in seen:
                    seen.add(key)
                    heapq.heappush(queue, (-self.log_probability(move), pushed, move))
                    pushed += 1
        return found

    def candidates(self, size: int) -> list[dict[str, int]]:
        """Distinct choices within the limits: the argmax (repaired) first, then the most probable
        genomes and chains of cheaper and costlier ones."""
        best = self.repair(self.argmax())
        if best is None:
            return []
        found: dict[str, dict[str, int]] = {}
        cheaper, costlier = self.chain(best, size, cheaper=True), self.chain(best, size, cheaper=False)
        for choice in [*self.most_probable(best, size), *cheaper, *costlier]:
            fixed = self.repair(choice)
            if fixed is not None:
                found.setdefault(self.context.space.arch_hash(self.net.genome(fixed)), fixed)
        return list(found.values())


def _recalibrate(net: MixedNet, rows: torch.Tensor) -> None:
    """Replace batch-norm's running statistics with those of ``rows`` on the current path: the
    supernet's were gathered on the soft mixture, not on one discrete network."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the rows
    net.train()
    with torch.no_grad():
        for batch in rows.split(BATCH_SIZE * 4):
            net(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def one_shot_score(net: MixedNet, choice: dict[str, int], context: OneShotContext) -> float:
    """Validation score (accuracy or R², as ``evaluate_model``) of the discrete network ``choice``
    with the supernet's weights."""
    data = context.data
    with net.fixed(choice):
        _recalibrate(net, torch.from_numpy(data.X_train[:RECALIBRATION_ROWS]))
        target_std = data.preprocessing.get("target", {}).get("std", 1.0)
        return float(
            evaluate_model(
                net, data.X_val, data.y_val, task=data.task, target_std=target_std, target=data.preprocessing["target"]
            )["score"]
        )


def _order(scored: list[tuple[dict[str, int], float, float]], size: int) -> list[tuple[dict[str, int], float, float]]:
    """The argmax first, then the (score, cost) Pareto front by score, then the rest by score."""
    head, rest = scored[:1], scored[1:]
    front = set(pareto_front([(score, cost) for _, score, cost in rest]))
    ranked = sorted(range(len(rest)), key=lambda i: (i not in front, -rest[i][1]))
    return (head + [rest[i] for i in ranked])[:size]


# --- the method --------------------------------------------------------------------------------


def _identity(context: OneShotContext) -> dict:
    data = context.data
    return {"method": "darts", "space": context.space.name, "n_inputs": data.n_features, "n_outputs": data.n_outputs}


def _warm_start(net: MixedNet, state: dict | None, identity: dict) -> bool:
    """Load an earlier DARTS supernet (weights and α) built for the same space and data shape."""
    if not state_fits(state, identity):
        return False
    alphas = state.get("alphas") or {}
    try:
        net.load_state_dict({**state["weights"], **{f"alphas.{name}": value for name, value in alphas.items()}})
    except (KeyError, RuntimeError, TypeError) as exc:
        logger.warning("The warm-start supernet does not match this supernet (%s); training from scratch.", exc)
        return False
    return True


def _state(net: MixedNet, identity: dict) -> dict:
    weights = {k: v.detach().clone() for k, v in net.state_dict().items() if not k.startswith("alphas.")}
    alphas = {name: alpha.detach().clone() for name, alpha in net.alphas.items()}
    return identity | {"weights": weights, "alphas": alphas}


def darts_shortlist(context: OneShotContext, *, size: int = 6, cost_weight: float = DEFAULT_COST_WEIGHT) -> Shortlist:
    """Train a DARTS supernet, discretise it and return up to ``size`` architectures to retrain.

    Training stops at ``context.epochs`` (a quarter of them after a warm start) or when only
    ``DISCRETISE_SHARE`` of the time to the deadline is left. Shortlisted genomes use norm none,
    no residual, no dropout and ``DEFAULT_TRAIN``, as the supernet trained.

    Args:
        context: What the method may use (see ``OneShotContext``).
        size: Most architectures to shortlist.
        cost_weight: Weight of the always-on cost term (see ``CostPenalty``; 0: none).

    Raises:
        ValueError: The space has no DARTS supernet (only mlp and cnn have one), or ``size`` < 1.
        FloatingPointError: The supernet's training diverged.
    """
    if size < 1:
        raise ValueError(f"A DARTS shortlist needs at least one architecture, not {size}.")
    data, start = context.data, time.monotonic()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        net = build_mixed_net(context.space, data.n_features, data.n_outputs)
    identity = _identity(context)
    warm = _warm_start(net, context.warm_state, identity)
    objective = cost_objective(context.objectives)
    penalty = CostPenalty(objective, cost_weight, net.largest_cost(objective), cost_limits(context.limits))
    reserve = min(MAX_DISCRETISE_SECONDS, DISCRETISE_SHARE * max(0.0, context.deadline - start))
    clock = Clock(context, context.deadline - reserve)
    epochs = context.epochs if context.epochs is None or not warm else max(1, context.epochs // 4)
    warmup = 0 if warm else round(WARMUP_SHARE * (epochs or 0))
    done = train_mixed_net(net, context, penalty, clock, epochs=epochs, warmup_epochs=warmup)
    notes = {
        "supernet_seconds": round(time.monotonic() - start, 3),
        "epochs": done,
        "alphas": net.describe(),
        "warm_started": warm,
        "cost_objective": objective,
    }
    state = _state(net, identity)
    if clock.cancelled:
        return Shortlist(archs=[], predicted=[], state=state, notes=notes, cancelled=True)
    scored = _score_candidates(net, context, _Discretiser(net, context, objective), size)
    chosen = _order(scored, size)
    notes["candidates_scored"] = len(scored)
    context.progress(1.0, f"DARTS: {len(chosen)} architectures shortlisted")
    return Shortlist(
        archs=[net.genome(choice) for choice, _, _ in chosen],
        predicted=[score for _, score, _ in chosen],
        state=state,
        notes=notes,
    )


def _score_candidates(
    net: MixedNet, context: OneShotContext, discretiser: _Discretiser, size: int
) -> list[tuple[dict[str, int], float, float]]:
    """(choice, one-shot score, cost) of the candidates, in their order, while time is left (the
    argmax always)."""
    scored = []
    for choice in discretiser.candidates(size):
        began = time.monotonic()
        score = one_shot_score(net, choice, context)
        if math.isfinite(score):
            scored.append((choice, score, discretiser.cost(choice)))
        if time.monotonic() + (time.monotonic() - began) > context.deadline:
            break
    return scored
