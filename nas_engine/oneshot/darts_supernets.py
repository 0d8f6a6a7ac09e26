"""The continuous relaxations DARTS searches (Liu et al. 2019): supernets of the MLP and CNN spaces
in which every decision is a softmax over its options, with the expected cost under it.

Widths and channels are relaxed as in FBNetV2 (Wan et al. 2020): one layer of the largest width
whose output is multiplied by ``Σ_k p_k · mask_k`` (mask_k keeps the first ``k``-th option's units),
so narrower choices are slices of the wider ones. With every softmax replaced by a one-hot vector
(``MixedNet.fixed``) the supernet computes exactly the network ``space.build_model`` builds for
``genome(choice)``, with its weights sliced out of the supernet's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_engine.spaces.blocks import ACTIVATION_NAMES
from nas_engine.spaces.cnn import BLOCK_TYPES, KERNELS, CNNSpace, ConvUnit, build_block, conv_costs, side_after
from nas_engine.spaces.mlp import MAX_DEPTH, MLPSpace
from nas_engine.spaces.training import DEFAULT_TRAIN

WIDTHS = (16, 64, 256)  # a spread of MLP widths: each option is ~4x the cost of the one before
CHANNEL_OPTIONS = (16, 32, 64)
STEM_CHANNELS = 16  # fixed: the stem is cheap and one choice fewer keeps the supernet small
EXPANSION = 3
MAX_CNN_STAGES = 3
CNN_OPS = tuple((kind, kernel) for kind in BLOCK_TYPES for kernel in KERNELS)
ALPHA_INIT_STD = 1e-3  # DARTS starts from near-uniform architecture weights

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
}

CostTerm = tuple[tuple[str, ...], torch.Tensor]
"""A part of the network's cost that depends on a few decisions: (their names, a table with one
axis per decision). Its expectation is the table contracted with each decision's probabilities."""


def _mix(weights: torch.Tensor, candidates: Sequence[Callable[..., torch.Tensor]], *args) -> torch.Tensor:
    """``Σ_j weights[j] · candidates[j](*args)``, skipping candidates of weight exactly 0 (a one-hot
    choice runs only its own path)."""
    total: torch.Tensor | None = None
    for weight, value, candidate in zip(weights, weights.tolist(), candidates, strict=True):
        if value != 0.0:
            term = weight * candidate(*args)
            total = term if total is None else total + term
    assert total is not None, "a softmax or one-hot vector has a non-zero entry"
    return total


def _prefix_masks(sizes: Sequence[int], width: int) -> torch.Tensor:
    """One row per size: the first ``size`` of ``width`` entries 1, the rest 0."""
    return (torch.arange(width)[None, :] < torch.tensor(sizes)[:, None]).float()


class MixedNet(nn.Module):
    """A supernet whose decisions each have architecture weights ``alphas[name]`` (logits).

    Subclasses set the decisions (name → options), the cost terms and ``genome``.
    """

    def __init__(self, decisions: dict[str, tuple]) -> None:
        super().__init__()
        self.decisions = decisions
        self.alphas = nn.ParameterDict(
            {name: nn.Parameter(ALPHA_INIT_STD * torch.randn(len(options))) for name, options in decisions.items()}
        )
        self.cost_terms: dict[str, list[CostTerm]] = {"params": [], "flops": []}
        self._fixed: dict[str, torch.Tensor] | None = None

    def probs(self, name: str) -> torch.Tensor:
        """The weights of the options of decision ``name``: softmax(α), or one-hot inside ``fixed``."""
        if self._fixed is not None:
            return self._fixed[name]
        return torch.softmax(self.alphas[name], 0)

    @contextlib.contextmanager
    def fixed(self, choice: dict[str, int]) -> Iterator[None]:
        """Run the discrete network that takes option ``choice[name]`` at every decision."""
        self._fixed = {
            name: F.one_hot(torch.tensor(choice[name]), len(options)).float()
            for name, options in self.decisions.items()
        }
        try:
            yield
        finally:
            self._fixed = None

    def sample(self, generator: torch.Generator) -> dict[str, int]:
        """A discrete choice drawn from the decisions' softmax."""
        with torch.no_grad():
            return {name: int(torch.multinomial(self.probs(name), 1, generator=generator)) for name in self.decisions}

    def used(self, choice: dict[str, int]) -> list[str]:
        """The decisions that matter to ``choice``'s genome (a 2-layer MLP ignores layer 3's width)."""
        genome = self.genome(choice)
        return [
            name
            for name, options in self.decisions.items()
            if self.genome({**choice, name: (choice[name] + 1) % len(options)}) != genome
        ]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the architecture weights."""
        alphas = {id(p) for p in self.alphas.parameters()}
        return [p for p in self.parameters() if id(p) not in alphas]

    def expected_cost(self, name: str) -> torch.Tensor:
        """Expected ``"params"`` or ``"flops"`` of the network drawn from the decisions' weights
        (exact: each term's decisions are independent under the product distribution)."""
        total = torch.zeros(())
        for names, table in self.cost_terms[name]:
            letters = "abcdefgh"[: len(names)]
            operands = [self.probs(n) for n in names]
            total = total + torch.einsum(",".join([*letters, letters]) + "->", *operands, table)
        return total

    def largest_cost(self, name: str) -> float:
        """An upper bound of ``name`` over the supernet's networks (each term at its maximum)."""
        return float(sum(float(table.max()) for _, table in self.cost_terms[name]))

    def genome(self, choice: dict[str, int]) -> dict:
        """The space's genome for option ``choice[name]`` at every decision."""
        raise NotImplementedError

    def describe(self) -> dict[str, dict[str, float]]:
        """Softmax of every decision, readable: ``{"units_0": {"16": 0.2, "64": 0.7, ...}}``."""
        with torch.no_grad():
            return {
                name: {_label(option): round(float(p), 4) for option, p in zip(options, self.probs(name), strict=True)}
                for name, options in self.decisions.items()
            }


def _label(option) -> str:
    return "-".join(map(str, option)) if isinstance(option, tuple) else str(option)


# --- MLP ---------------------------------------------------------------------------------------


class MLPSupernet(MixedNet):
    """``depth`` hidden layers of width ``max(WIDTHS)``; every position searches its width (a soft
    mask over ``WIDTHS``) and activation (a softmax-weighted sum over ``ACTIVATION_NAMES``), and a
    ``depth`` decision over 0..depth weights the outputs of a separate output layer after each
    position (depth 0: the linear model on the inputs). Norm none, no residual, no dropout."""

    masks: torch.Tensor

    def __init__(self, space: MLPSpace, n_inputs: int, n_outputs: int, *, depth: int = MAX_DEPTH) -> None:
        decisions: dict[str, tuple] = {"depth": tuple(range(depth + 1))}
        for i in range(depth):
            decisions |= {f"units_{i}": WIDTHS, f"activation_{i}": ACTIVATION_NAMES}
        super().__init__(decisions)
        width = max(WIDTHS)
        self.depth = depth
        self.linears = nn.ModuleList(nn.Linear(n_inputs if i == 0 else width, width) for i in range(depth))
        self.heads = nn.ModuleList(nn.Linear(n_inputs if d == 0 else width, n_outputs) for d in range(depth + 1))
        self.register_buffer("masks", _prefix_masks(WIDTHS, width))
        self.activations = [_ACTIVATIONS[name] for name in ACTIVATION_NAMES]
        self.cost_terms = {name: _mlp_cost_terms(space, n_inputs, n_outputs, depth, name) for name in self.cost_terms}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p_depth = self.probs("depth")
        live = [d for d, p in enumerate(p_depth.tolist()) if p != 0.0]
        out = p_depth[0] * self.heads[0](x) if 0 in live else None
        hidden = x
        for i in range(max(live)):
            mixed = _mix(self.probs(f"activation_{i}"), self.activations, self.linears[i](hidden))
            hidden = mixed * (self.probs(f"units_{i}") @ self.masks)
            if i + 1 in live:
                term = p_depth[i + 1] * self.heads[i + 1](hidden)
                out = term if out is None else out + term
        assert out is not None
        return out

    def genome(self, choice: dict[str, int]) -> dict:
        layers = [
            {
                "units": WIDTHS[choice[f"units_{i}"]],
                "activation": ACTIVATION_NAMES[choice[f"activation_{i}"]],
                "dropout": 0.0,
            }
            for i in range(choice["depth"])
        ]
        return {"space": "mlp", "layers": layers, "norm": "none", "residual": False, "train": dict(DEFAULT_TRAIN)}


def _mlp_cost_terms(space: MLPSpace, n_inputs: int, n_outputs: int, depth: int, name: str) -> list[CostTerm]:
    """The cost of each hidden layer (counted when ``depth`` exceeds its position) and of the output
    layer (on the last hidden width), from ``space.costs`` so the two never disagree."""

    def output_layer(width: int) -> int:
        return getattr(space.costs({"layers": []}, width, n_outputs), name)

    def layer(cin: int, units: int) -> int:
        one = {"layers": [{"units": units, "activation": "relu", "dropout": 0.0}]}
        return getattr(space.costs(one, cin, n_outputs), name) - output_layer(units)

    depths = torch.arange(depth + 1)
    linear_model = torch.zeros(depth + 1)
    linear_model[0] = output_layer(n_inputs)
    terms: list[CostTerm] = [(("depth",), linear_model)]
    heads = torch.tensor([output_layer(w) for w in WIDTHS], dtype=torch.float32)
    for i in range(depth):
        reached = (depths > i).float()  # layer i exists
        ends = (depths == i + 1).float()  # the output layer follows layer i
        terms.append(((f"units_{i}", "depth"), heads[:, None] * ends[None, :]))
        if i == 0:
            first = torch.tensor([layer(n_inputs, w) for w in WIDTHS], dtype=torch.float32)
            terms.append((("units_0", "depth"), first[:, None] * reached[None, :]))
        else:
            pairs = torch.tensor([[layer(a, b) for b in WIDTHS] for a in WIDTHS], dtype=torch.float32)
            terms.append(((f"units_{i - 1}", f"units_{i}", "depth"), pairs[:, :, None] * reached[None, None, :]))
    return terms


# --- CNN ---------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Convolution and batch-norm as ``CNNSpace.build_model`` makes them (so weights carry over)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)
    )


class _ConvOp(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = _conv_bn(cin, cout, kernel, 2)

    def forward(self, x: torch.Tensor, out_mask: torch.Tensor, hidden_mask: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.conv(x))


class _ResidualOp(nn.Module):
    """A basic block; stages always downsample, so the shortcut is always a 1×1 projection."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.first, self.second = _conv_bn(cin, cout, kernel, 2), _conv_bn(cout, cout, kernel)
        self.shortcut = _conv_bn(cin, cout, 1, 2)

    def forward(self, x: torch.Tensor, out_mask: torch.Tensor, hidden_mask: torch.Tensor | None) -> torch.Tensor:
        hidden = F.relu(self.first(x)) * out_mask  # the inner width is the block's width
        return F.relu(self.second(hidden) + self.shortcut(x))


class _InvertedOp(nn.Module):
    """An inverted bottleneck of expansion ``EXPANSION``; no skip, as it downsamples."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        hidden = cin * EXPANSION
        self.expand = _conv_bn(cin, hidden, 1)
        self.depthwise = _conv_bn(hidden, hidden, kernel, 2, groups=hidden)
        self.project = _conv_bn(hidden, cout, 1)

    def forward(self, x: torch.Tensor, out_mask: torch.Tensor, hidden_mask: torch.Tensor | None) -> torch.Tensor:
        # The hidden width follows the input's (soft) width; batch-norm turns masked channels into
        # its bias, so they are masked again after every normalisation.
        hidden = F.relu(self.expand(x))
        hidden = hidden if hidden_mask is None else hidden * hidden_mask
        hidden = F.relu(self.depthwise(hidden))
        hidden = hidden if hidden_mask is None else hidden * hidden_mask
        return self.project(hidden)


_OP_CLASSES: dict[str, type[nn.Module]] = {"conv": _ConvOp, "residual": _ResidualOp, "inverted": _InvertedOp}


def stage_sides(image_shape: Sequence[int]) -> list[tuple[int, int]]:
    """(height, width) entering each stage of the CNN supernet: as many stages as can downsample by
    2 with both sides staying ≥ 2 (``CNNSpace.plan``'s rule), at most ``MAX_CNN_STAGES``."""
    height, width = image_shape[1], image_shape[2]
    sides: list[tuple[int, int]] = []
    while len(sides) < MAX_CNN_STAGES and min(side_after(height, 2), side_after(width, 2)) >= 2:
        sides.append((height, width))
        height, width = side_after(height, 2), side_after(width, 2)
    return sides


class CNNSupernet(MixedNet):
    """A relu CNN: a fixed 3×3 stem of ``STEM_CHANNELS``, then one block per stage, each a
    softmax-weighted sum over ``CNN_OPS`` (block type × kernel, each with its own weights, as DARTS
    keeps them) times a soft channel mask over ``CHANNEL_OPTIONS``; global pooling and a Linear head.

    Batch-norm keeps its scale and shift (DARTS drops them) because the discrete networks have them
    and the shortlist's one-shot scores run those networks with the supernet's weights.
    """

    masks: torch.Tensor
    hidden_masks: torch.Tensor

    def __init__(self, space: CNNSpace, n_outputs: int) -> None:
        self.sides = stage_sides(space.image_shape)
        decisions: dict[str, tuple] = {}
        for i in range(len(self.sides)):
            decisions |= {f"op_{i}": CNN_OPS, f"channels_{i}": CHANNEL_OPTIONS}
        super().__init__(decisions)
        self.image_shape = space.image_shape
        top = max(CHANNEL_OPTIONS)
        self.stem = _conv_bn(space.image_shape[0], STEM_CHANNELS, 3)
        self.stages = nn.ModuleList(
            nn.ModuleList(_OP_CLASSES[kind](STEM_CHANNELS if i == 0 else top, top, k) for kind, k in CNN_OPS)
            for i in range(len(self.sides))
        )
        self.head = nn.Linear(top, n_outputs)
        self.register_buffer("masks", _prefix_masks(CHANNEL_OPTIONS, top))
        self.register_buffer("hidden_masks", _prefix_masks([c * EXPANSION for c in CHANNEL_OPTIONS], top * EXPANSION))
        self.cost_terms = {name: _cnn_cost_terms(space, self.sides, n_outputs, name) for name in self.cost_terms}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x.view(-1, *self.image_shape)))
        for i, ops in enumerate(self.stages):
            out_mask = (self.probs(f"channels_{i}") @ self.masks).view(1, -1, 1, 1)
            hidden_mask = None if i == 0 else (self.probs(f"channels_{i - 1}") @ self.hidden_masks).view(1, -1, 1, 1)
            x = _mix(self.probs(f"op_{i}"), tuple(ops.children()), x, out_mask, hidden_mask) * out_mask
        return self.head(x.mean((2, 3)))

    def genome(self, choice: dict[str, int]) -> dict:
        stages = []
        for i in range(len(self.sides)):
            kind, kernel = CNN_OPS[choice[f"op_{i}"]]
            stage = {"block": kind, "kernel": kernel, "channels": CHANNEL_OPTIONS[choice[f"channels_{i}"]], "blocks": 1}
            stages.append(stage | ({"expansion": EXPANSION} if kind == "inverted" else {}))
        return {
            "space": "cnn",
            "input_shape": list(self.image_shape),
            "activation": "relu",
            "stem": {"channels": STEM_CHANNELS},
            "stages": stages,
            "head": {"dropout": 0.0},
            "train": dict(DEFAULT_TRAIN),
        }


def _cnn_cost_terms(space: CNNSpace, sides: list[tuple[int, int]], n_outputs: int, name: str) -> list[CostTerm]:
    """The stem's cost, each stage's as a table over (op, input channels, output channels), and the
    head's over the last stage's channels, counted as ``CNNSpace.costs`` counts them."""
    index = 0 if name == "params" else 1
    channels, height, width = space.image_shape
    stem = conv_costs((ConvUnit(channels, STEM_CHANNELS, 3),), height, width)[index]
    terms: list[CostTerm] = [((), torch.tensor(float(stem)))]

    def stage_cost(kind: str, kernel: int, cin: int, cout: int, side: tuple[int, int]) -> int:
        block = build_block(kind, cin, cout, kernel, 2, EXPANSION)
        return sum(conv_costs(specs, *side)[index] for specs in (block.body, block.shortcut or ()))

    for i, side in enumerate(sides):
        inputs = (STEM_CHANNELS,) if i == 0 else CHANNEL_OPTIONS
        table = torch.tensor(
            [[[stage_cost(kind, k, a, b, side) for b in CHANNEL_OPTIONS] for a in inputs] for kind, k in CNN_OPS],
            dtype=torch.float32,
        )
        if i == 0:
            terms.append((("op_0", "channels_0"), table[:, 0, :]))
        else:
            terms.append(((f"op_{i}", f"channels_{i - 1}", f"channels_{i}"), table))
    last = f"channels_{len(sides) - 1}"
    head = [(c * n_outputs + n_outputs) if name == "params" else c * n_outputs for c in CHANNEL_OPTIONS]
    terms.append(((last,), torch.tensor(head, dtype=torch.float32)))
    return terms


def build_mixed_net(space, n_inputs: int, n_outputs: int) -> MixedNet:
    """The DARTS supernet of ``space`` for this data.

    Raises:
        ValueError: The space has no DARTS supernet (only mlp and cnn have one).
    """
    if isinstance(space, MLPSpace):
        return MLPSupernet(space, n_inputs, n_outputs)
    if isinstance(space, CNNSpace):
        return CNNSupernet(space, n_outputs)
    raise ValueError(f"DARTS supports the mlp and cnn spaces, not '{space.name}'.")
