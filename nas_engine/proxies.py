"""Zero-cost proxies: scores of an untrained network, computed in one forward and backward pass,
that predict how well it will train. Higher means "predicted better" for every proxy.

Each proxy works on a private copy of the model, so the caller's weights, buffers (batch-norm
statistics) and gradients are left as they were. ``grad_norm`` and ``jacob_cov`` run the copy in
training mode, as the papers do (batch-norm normalises with the batch's statistics), but with
dropout off: a proxy that depended on a dropout mask would rank two draws of one network apart.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

from nas_engine.evaluator import training_loss  # the loss trials train with: the first step's gradient
from nas_engine.prepare import TASKS, PreparedData
from nas_engine.spaces.base import SearchSpace

# What a proxy returns when its score is undefined (NaN: a dead network, a degenerate jacobian):
# below any real score, yet finite, so it sorts and averages without special cases.
UNDEFINED_SCORE = -1e30
_JACOB_COV_EPSILON = 1e-5  # k in Mellor et al. 2021 (v1)

_DROPOUTS = (torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout)

Proxy = Callable[[torch.nn.Module, np.ndarray, np.ndarray, str], float]


def synflow(model: torch.nn.Module, X: np.ndarray, y: np.ndarray, task: str) -> float:
    """Synaptic flow (Tanaka et al. 2020; as a NAS proxy, Abdelfattah et al. 2021).

    Every parameter and buffer is replaced by its absolute value, an all-ones row goes through the
    network in evaluation mode (batch-norm then applies its initial statistics, an identity),
    and the score sums ``|θ · ∂R/∂θ|`` over the parameters, where ``R`` is the sum of the outputs.
    The data is used only for its width: synflow is data-free by design.

    Args:
        model: The untrained network; it is not modified.
        X: Inputs, ``[rows, features]``; only the number of features is used.
        y: Labels (unused; part of the uniform proxy signature).
        task: ``"classification"`` or ``"regression"`` (unused).

    Returns:
        ``log1p`` of the sum (the sum itself overflows float32 on deep networks and spans
        hundreds of orders of magnitude; the log keeps the ranking).

    Raises:
        ValueError: ``X`` is not a 2-D array or ``task`` is unknown.
    """
    _check_inputs(X, y, task, min_rows=1)
    net = copy.deepcopy(model).double().eval()  # double: products of |weights| overflow float32
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    with torch.enable_grad():
        ones = torch.ones((1, X.shape[1]), dtype=torch.float64)
        net(ones).sum().backward()
        total = sum(float((p.detach() * p.grad).abs().sum()) for p in net.parameters() if p.grad is not None)
    return _finite(math.log1p(total))


def grad_norm(model: torch.nn.Module, X: np.ndarray, y: np.ndarray, task: str) -> float:
    """L2 norm of the gradient of the training loss (cross-entropy or MSE) on one batch, over all
    parameters (the "grad_norm" of Abdelfattah et al. 2021).

    Args:
        model: The untrained network; it is not modified.
        X: Inputs, float32 ``[rows, features]`` (2 rows or more: batch-norm needs a batch).
        y: Class indices (classification) or targets (regression), one per row.
        task: ``"classification"`` or ``"regression"``.

    Returns:
        The norm, or ``UNDEFINED_SCORE`` when the loss is not finite.

    Raises:
        ValueError: The inputs do not fit together or ``task`` is unknown.
    """
    _check_inputs(X, y, task, min_rows=2)
    net = _training_copy(model)
    with torch.enable_grad():
        targets = torch.as_tensor(y, dtype=torch.int64 if task == "classification" else torch.float32)
        training_loss(net(torch.as_tensor(X, dtype=torch.float32)), targets, task).backward()
        squares = sum(float(p.grad.double().pow(2).sum()) for p in net.parameters() if p.grad is not None)
    return _finite(math.sqrt(squares))


def jacob_cov(model: torch.nn.Module, X: np.ndarray, y: np.ndarray, task: str) -> float:
    """The jacobian covariance score of Mellor et al. 2021 ("Neural Architecture Search without
    Training", v1): networks whose input gradients are less correlated across rows tell the rows
    apart better at initialisation.

    Per row, the jacobian of the summed outputs with respect to that row's inputs; ``C`` the
    correlation matrix of these jacobians across rows; the score is
    ``-sum(log(λ + k) + 1 / (λ + k))`` over the eigenvalues ``λ`` of ``C``, ``k = 1e-5``. It peaks
    at ``-rows`` when ``C`` is the identity. With fewer input features than rows ``C`` is singular
    and every network pays ``1/k`` per missing dimension; the ranking comes from the rest.

    Args:
        model: The untrained network; it is not modified.
        X: Inputs, float32 ``[rows, features]`` (2 rows or more).
        y: Labels (unused; part of the uniform proxy signature).
        task: ``"classification"`` or ``"regression"`` (unused).

    Returns:
        The score, or ``UNDEFINED_SCORE`` when the correlation is undefined (a row whose jacobian
        is constant, e.g. a network that is dead at initialisation).

    Raises:
        ValueError: ``X`` is not a 2-D array of 2 rows or more, or ``task`` is unknown.
    """
    _check_inputs(X, y, task, min_rows=2)
    net = _training_copy(model)
    with torch.enable_grad():
        inputs = torch.as_tensor(X, dtype=torch.float32).clone().requires_grad_(True)
        net(inputs).sum().backward()
    if inputs.grad is None:  # the outputs do not depend on the inputs
        return UNDEFINED_SCORE
    jacobians = inputs.grad.detach().double().reshape(len(X), -1).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(jacobians)
    if not np.all(np.isfinite(correlation)):
        return UNDEFINED_SCORE
    # eigvalsh: C is symmetric, so its eigenvalues are real; rounding can leave the zero ones
    # slightly negative, which log would turn into NaN.
    eigenvalues = np.clip(np.linalg.eigvalsh(correlation), 0.0, None) + _JACOB_COV_EPSILON
    return _finite(-float(np.sum(np.log(eigenvalues) + 1.0 / eigenvalues)))


PROXIES: dict[str, Proxy] = {"synflow": synflow, "grad_norm": grad_norm, "jacob_cov": jacob_cov}


def proxy_scores(
    space: SearchSpace,
    arch: dict,
    data: PreparedData,
    *,
    names: Iterable[str] = PROXIES,
    seed: int = 0,
    rows: int = 64,
) -> dict[str, float]:
    """Score an architecture with zero-cost proxies, without training it.

    The network is built from a torch generator seeded with ``seed`` (the global torch random
    state is restored afterwards), and the proxies see the first ``rows`` training rows (the
    split is shuffled, so these are a random sample). The same seed gives the same scores.

    Args:
        space: The space ``arch`` belongs to.
        arch: The architecture to score.
        data: The prepared dataset; its training split feeds the proxies.
        names: Which proxies to compute, keys of ``PROXIES``.
        seed: Seed of the network's initial weights.
        rows: How many training rows to use, 2 or more.

    Returns:
        ``{name: score}`` in the order of ``names``.

    Raises:
        ValueError: An unknown proxy name, or ``rows`` below 2.
    """
    names = list(names)
    unknown = [name for name in names if name not in PROXIES]
    if unknown:
        raise ValueError(f"Unknown proxy {', '.join(map(repr, unknown))}; choose from: {', '.join(PROXIES)}.")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 2:
        raise ValueError(f"rows must be a whole number of 2 or more; got {rows!r}.")
    X, y = data.X_train[:rows], data.y_train[:rows]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = space.build_model(arch, data.n_features, data.n_outputs)
        return {name: PROXIES[name](model, X, y, data.task) for name in names}


def _check_inputs(X: np.ndarray, y: np.ndarray, task: str, *, min_rows: int) -> None:
    if task not in TASKS:
        raise ValueError(f"Unknown task '{task}'; choose from: {', '.join(TASKS)}.")
    if np.ndim(X) != 2 or len(X) < min_rows:
        raise ValueError(f"X must be a 2-D array of {min_rows} row(s) or more; got shape {np.shape(X)}.")
    if len(y) != len(X):
        raise ValueError(f"X and y must have as many rows; got {len(X)} and {len(y)}.")


def _training_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in training mode with dropout off and no gradients yet."""
    net = copy.deepcopy(model).train()
    for module in net.modules():
        if isinstance(module, _DROPOUTS):
            module.eval()
    net.zero_grad(set_to_none=True)
    return net


def _finite(value: float) -> float:
    """``value`` when it is a number; NaN becomes ``UNDEFINED_SCORE`` and infinities the largest
    finite floats of their sign."""
    if math.isnan(value):
        return UNDEFINED_SCORE
    return float(np.clip(value, -np.finfo(np.float64).max, np.finfo(np.float64).max))
