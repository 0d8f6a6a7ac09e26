"""Search space for tables: the MLP space plus two building blocks of the strongest published
tabular networks, each a choice the search makes per dataset rather than a fixed model.

- **Periodic numerical embeddings** (Gorishniy et al., NeurIPS 2022; the "PLR-lite" form that
  TabM uses): each input column ``x`` becomes ``ReLU(Linear([cos(2πfx), sin(2πfx)]))`` with
  learned frequencies ``f`` per column and one Linear shared by all columns, so a network can
  fit sharp or periodic dependencies on one value that a plain MLP smooths over.
- **Parameter-efficient ensembling** (TabM-mini, Gorishniy et al., ICLR 2025): ``members``
  networks share every weight of the MLP backbone; each member multiplies the backbone's input
  by its own vector (initialised to random signs) and has its own output head. While training,
  every member is fitted on its own loss; the model predicts the members' mean (averaged
  probabilities for classification, returned as log-probabilities so the output still reads as
  logits). Costs multiply by ``members`` for the backbone's compute, barely for its weights.

Costs are analytic and exact: ``params`` is the built module's parameter count; ``flops`` counts
multiply-accumulates of the Linear layers, the heads, the embedding's frequency products and the
members' input scaling (cos/sin, activations, norms and sums are not counted, as in the MLP space).
``memory_bytes`` is the float32 weights and buffers plus the activations alive at the peak of a
batch-1 forward pass, with the MLP space's accounting for the backbone.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.memory import BATCH_NORM_COUNTER_BYTES, FLOAT32_BYTES, ActivationPeak, float32_costs
from nas_engine.spaces.mlp import MLPSpace, mlp_defaults
from nas_engine.spaces.training import DEFAULT_TRAIN, pick
from nas_engine.spaces.trees import TreeSpace

EMBEDDINGS = ("none", "periodic")
MEMBERS = (1, 4, 8)
EMBED_FREQUENCIES = 16  # frequencies per column (cos and sin of each: 32 features into the shared Linear)
EMBED_DIM = 8  # each column's embedding width
EMBED_SCALE = 0.1  # initial frequencies ~ N(0, scale²): inputs are robust-scaled to about ±3
# Above this many input columns an embedding per column makes the first layer too wide to train
# within a search budget (784 pixels → 6,272 inputs); the space then offers no embedding.
MAX_EMBEDDED_INPUTS = 128
_BLOCK_KEYS = ("embed", "members")
# Model families the tabular search also trains, through its portfolio (its strategies propose
# networks only): gradient-boosted trees, often the strongest model of a table on CPU in minutes.
OTHER_FAMILIES: dict[str, type[SearchSpace]] = {"trees": TreeSpace}
TREE_PORTFOLIO = (
    {"space": "trees", "rounds": 400, "leaves": 31, "lr": 0.1, "min_leaf": 20, "l2": 0.0},  # LightGBM/HGB-like
    {"space": "trees", "rounds": 400, "leaves": 15, "lr": 0.05, "min_leaf": 20, "l2": 1.0},  # slower, smoother
)


T = TypeVar("T")


def _other_family(method: Callable[..., T]) -> Callable[..., T]:
    """Hand a genome of another family (``OTHER_FAMILIES``: trees) to that family's own method."""

    @functools.wraps(method)
    def routed(self: SearchSpace, arch: dict, *args: Any) -> T:
        family = OTHER_FAMILIES.get(arch.get("space", ""))
        return getattr(family(), method.__name__)(arch, *args) if family else method(self, arch, *args)

    return routed


class TabularSpace(MLPSpace):
    """MLPs (0-6 hidden layers) with an optional periodic embedding of every input column and an
    optional TabM-mini ensemble of 4 or 8 members, searched jointly with their training settings.

    Genome: the MLP space's, with ``"space": "tabular"``, ``"embed": "none" | "periodic"`` and
    ``"members": 1 | 4 | 8``.
    """

    name = "tabular"
    words = ("A multi-layer perceptron (with optional periodic embeddings and a TabM-style ensemble)", "tabular data")
    diagram = "tabular"

    def __init__(self, *, embeddable: bool = True) -> None:
        self.embeddings = EMBEDDINGS if embeddable else ("none",)

    @classmethod
    def for_data(cls, *, n_inputs: int, image_shape: tuple[int, int, int] | None = None) -> TabularSpace:
        return cls(embeddable=n_inputs <= MAX_EMBEDDED_INPUTS)

    def sample(self, rng: np.random.Generator) -> dict:
        arch = super().sample(rng)
        return arch | {"space": self.name, "embed": pick(self.embeddings, rng), "members": pick(MEMBERS, rng)}

    def owns(self, arch: dict) -> bool:
        return arch.get("space", "mlp") in ("tabular", "mlp")  # an MLP genome reads as a plain tabular one

    @_other_family
    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        arch = tabular_defaults(arch)
        if rng.random() < len(_BLOCK_KEYS) / (len(_BLOCK_KEYS) + 6):  # about as likely as any MLP move
            child = copy.deepcopy(arch)
            key = pick(_BLOCK_KEYS, rng)
            options = self.embeddings if key == "embed" else MEMBERS
            child[key] = pick(options, rng, other_than=child[key])
            return child
        return super().mutate(arch, rng) | {"space": self.name, "embed": arch["embed"], "members": arch["members"]}

    def decisions(self) -> dict[str, tuple]:
        return {"embed": self.embeddings, "members": MEMBERS} | super().decisions()

    def from_decisions(self, choices: dict) -> dict:
        arch = super().from_decisions(choices)
        return arch | {"space": self.name, "embed": choices["embed"], "members": choices["members"]}

    def to_decisions(self, arch: dict) -> dict:
        arch = tabular_defaults(arch)
        return super().to_decisions(arch) | {"embed": arch["embed"], "members": arch["members"]}

    @_other_family
    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        arch = tabular_defaults(arch)
        if _plain(arch):  # exactly the MLP space's network, so compression and its costs apply as they are
            return super().build_model(arch, n_inputs, n_outputs)
        embed = arch["embed"] == "periodic"
        width = n_inputs * EMBED_DIM if embed else n_inputs
        backbone = super().build_model(arch, width, 1)[:-1]  # the MLP's hidden layers, without its output layer
        last = arch["layers"][-1]["units"] if arch["layers"] else width
        return _network_class()(
            n_inputs=n_inputs,
            embed=embed,
            backbone=backbone,
            members=arch["members"],
            width=last,
            n_outputs=n_outputs,
        )

    @_other_family
    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        arch = tabular_defaults(arch)
        if _plain(arch):
            return super().costs(arch, n_inputs, n_outputs)
        k, embed = arch["members"], arch["embed"] == "periodic"
        params = flops = 0
        activations = ActivationPeak(n_inputs)
        width = n_inputs
        if embed:
            params += n_inputs * EMBED_FREQUENCIES + 2 * EMBED_FREQUENCIES * EMBED_DIM + EMBED_DIM
            flops += n_inputs * EMBED_FREQUENCIES + n_inputs * 2 * EMBED_FREQUENCIES * EMBED_DIM
            width = n_inputs * EMBED_DIM
            _embedding_activations(activations, n_inputs)
        if k > 1:
            params += k * width
            flops += k * width
            activations.op(k * width)  # each member's scaled copy of the input
        mlp = super().costs(arch, width, 1)  # hidden layers plus a 1-output layer, taken off below
        last = arch["layers"][-1]["units"] if arch["layers"] else width
        body_params = mlp.params - (last + 1)
        body_macs = mlp.flops - last
        params += body_params
        flops += k * body_macs
        buffer_bytes = _batch_norm_buffers(arch)
        _backbone_activations(activations, arch, width, k)
        params += k * (last * n_outputs + n_outputs)
        flops += k * last * n_outputs
        activations.op(k * n_outputs)  # every member's head
        activations.op(k * n_outputs)  # plus its bias
        if n_outputs > 1 and k > 1:
            activations.chain([k * n_outputs, n_outputs, n_outputs])  # log-softmax, logsumexp, minus log k
        elif k > 1:
            activations.chain([n_outputs])  # the mean
        return float32_costs(params=params, flops=flops, buffer_bytes=buffer_bytes, activations=activations)

    @_other_family
    def describe(self, arch: dict) -> list[str]:
        arch = tabular_defaults(arch)
        lines = super().describe(arch)
        if arch["embed"] == "periodic":
            lines.insert(0, f"Periodic embedding of every input column ({EMBED_FREQUENCIES} frequencies → {EMBED_DIM})")
        if arch["members"] > 1:
            lines.insert(-1, f"TabM-style ensemble: {arch['members']} members sharing the hidden layers")
        return lines

    def portfolio(self, *, rows: int, task: str) -> list[dict]:
        """Proven configurations to train before the strategy proposes, strongest and cheapest first
        (as AutoGluon's presets do), so a short search starts from a strong model: TabM-mini's and
        RealMLP's published defaults scaled to the data, a plain MLP and a linear model.

        Args:
            rows: Training rows (batch size and width follow it).
            task: ``"classification"`` or ``"regression"``.
        """
        batch = 32 if rows < 1_000 else 128 if rows < 20_000 else 256
        units = 256 if rows < 20_000 else 128
        train = {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": batch, "optimizer": "adamw"}
        base = {"space": self.name, "norm": "none", "residual": False}

        def layers(depth: int, width: int, dropout: float, act: str = "relu") -> list[dict]:
            return [{"units": width, "activation": act, "dropout": dropout} for _ in range(depth)]

        embed = "periodic" if "periodic" in self.embeddings else "none"
        chosen = [
            *TREE_PORTFOLIO,
            base | {"layers": layers(3, units, 0.1), "embed": "none", "members": 8, "train": train},
            base | {"layers": layers(2, units, 0.1), "embed": embed, "members": 8, "train": train},
            base | {"layers": [], "embed": "none", "members": 1, "train": {**train, "lr": 1e-2}},
            base | {"layers": layers(3, units, 0.1, "silu"), "embed": embed, "members": 1, "train": train},
            base
            | {
                "layers": layers(2, 128, 0.0),
                "embed": "none",
                "members": 1,
                "train": {**DEFAULT_TRAIN, "batch_size": batch},
            },
        ]
        unique: list[dict] = []
        for arch in chosen:
            if arch not in unique:
                unique.append(arch)
        return unique


def tabular_defaults(arch: dict) -> dict:
    """``arch`` with every key of the tabular genome (an MLP genome reads as no embedding, one member)."""
    return mlp_defaults(arch) | {
        "space": "tabular",
        "embed": arch.get("embed", "none"),
        "members": int(arch.get("members", 1)),
    }


def _plain(arch: dict) -> bool:
    """No embedding and one member: a plain MLP."""
    return arch["embed"] == "none" and arch["members"] == 1


def _batch_norm_buffers(arch: dict) -> int:
    if arch["norm"] != "batch":
        return 0
    return sum(2 * layer["units"] * FLOAT32_BYTES + BATCH_NORM_COUNTER_BYTES for layer in arch["layers"])


def _embedding_activations(activations: ActivationPeak, n_inputs: int) -> None:
    """``PeriodicEmbedding.forward`` op by op: the frequency product and the angles; cos and sin
    while the angles live; their concatenation while both live (the angles freed); the shared
    Linear and its ReLU while the concatenation lives (a local until the return)."""
    angles = n_inputs * EMBED_FREQUENCIES
    features, embedded = 2 * angles, n_inputs * EMBED_DIM
    base = activations.pinned + activations.current  # the embedding's input stays alive
    peak = max(2 * angles, 3 * angles, 2 * angles + features, features + 2 * embedded)
    activations.peak = max(activations.peak, base + peak)
    activations.pinned = base
    activations.current = embedded


def _backbone_activations(activations: ActivationPeak, arch: dict, width: int, k: int) -> None:
    """The MLP backbone's activations for ``k`` members at once (a batch of ``k`` rows). The
    backbone is a module nested in the network, so its input stays alive until it returns."""
    if not arch["layers"]:
        return  # an empty Sequential returns its input as it is
    block_input = activations.current
    activations.pinned, activations.current = activations.pinned + block_input, 0
    for layer in arch["layers"]:
        units = k * layer["units"]
        body = [units] * (3 if arch["norm"] != "none" else 2)
        if arch["residual"]:
            activations.residual(body, [] if width == layer["units"] else [units])
        else:
            activations.chain(body)
        width = layer["units"]
    activations.pinned -= block_input


_NETWORK = None


def _network_class():
    """The network module, defined on first use so that importing the space needs no torch."""
    global _NETWORK
    if _NETWORK is not None:
        return _NETWORK
    import torch
    import torch.nn as nn

    class PeriodicEmbedding(nn.Module):
        def __init__(self, n_inputs: int) -> None:
            super().__init__()
            self.frequencies = nn.Parameter(torch.randn(n_inputs, EMBED_FREQUENCIES) * EMBED_SCALE)
            self.linear = nn.Linear(2 * EMBED_FREQUENCIES, EMBED_DIM)

        def forward(self, x):
            angles = 2 * math.pi * (x.unsqueeze(-1) * self.frequencies)
            cos, sin = torch.cos(angles), torch.sin(angles)
            del angles  # freed before the concatenation: the analytic peak memory counts on it
            features = torch.cat([cos, sin], dim=-1)
            del cos, sin
            return torch.relu(self.linear(features)).flatten(1)

    class TabularNetwork(nn.Module):
        def __init__(self, *, n_inputs, embed, backbone, members, width, n_outputs) -> None:
            super().__init__()
            self.embedding = PeriodicEmbedding(n_inputs) if embed else None
            self.members, self.n_outputs = members, n_outputs
            width_in = n_inputs * EMBED_DIM if embed else n_inputs
            self.scaling = (
                nn.Parameter(torch.randint(0, 2, (members, width_in)).float() * 2 - 1) if members > 1 else None
            )
            self.backbone = backbone
            self.head_weight = nn.Parameter(torch.empty(members, width, n_outputs))
            self.head_bias = nn.Parameter(torch.zeros(members, n_outputs))
            bound = 1 / math.sqrt(width) if width else 0.0
            nn.init.uniform_(self.head_weight, -bound, bound)
            nn.init.uniform_(self.head_bias, -bound, bound)

        def forward(self, x):
            if self.embedding is not None:
                x = self.embedding(x)
            batch = x.shape[0]
            if self.scaling is not None:
                x = (x.unsqueeze(1) * self.scaling).reshape(batch * self.members, -1)
            x = self.backbone(x).reshape(batch, self.members, -1)
            out = torch.einsum("bkw,kwo->bko", x, self.head_weight) + self.head_bias
            if self.training and self.members > 1:
                return out  # [batch, members, outputs]: each member is fitted on its own loss
            if self.members == 1:
                return out[:, 0]
            if self.n_outputs > 1:
                return torch.logsumexp(torch.log_softmax(out, dim=-1), dim=1) - math.log(self.members)
            return out.mean(dim=1)

    _NETWORK = TabularNetwork
    return _NETWORK
