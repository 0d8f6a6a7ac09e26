"""Search space of multi-layer perceptrons for tabular data, with their training settings.

Costs are analytic: ``params`` is the exact parameter count of the built module and ``flops``
counts multiply-accumulates (MACs) of the Linear layers; normalisation, activations and the
residual additions are not counted. ``memory_bytes`` is the float32 weights and batch-norm buffers
plus the peak of activations alive in a batch-1 forward pass (``memory.ActivationPeak``).
"""

from __future__ import annotations

import copy

import numpy as np

from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.blocks import ACTIVATION_NAMES, activation, residual_class
from nas_engine.spaces.memory import (
    BATCH_NORM_COUNTER_BYTES,
    FLOAT32_BYTES,
    ActivationPeak,
    float32_costs,
    memory_of,
)
from nas_engine.spaces.training import (
    TRAIN_DECISIONS,
    describe_train,
    mutate_train,
    pick,
    sample_train,
    train_settings,
)

UNITS = (8, 16, 32, 64, 128, 256, 512)
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
NORMS = ("none", "batch", "layer")
# Depth 0 is a linear (or logistic) model: on small or nearly linear tabular data it is often the
# best candidate, and a search that cannot propose it loses to a ridge regression.
MIN_DEPTH, MAX_DEPTH = 0, 6
LAYER_KEYS = ("units", "activation", "dropout")
_NORM_LABELS = {"batch": "batch-norm", "layer": "layer-norm"}


class MLPSpace(SearchSpace):
    """MLPs of 0-6 hidden layers (0: a linear model), searched jointly with their training settings.

    Genome::

        {"space": "mlp",
         "layers": [{"units": 64, "activation": "relu", "dropout": 0.1}, ...],
         "norm": "none" | "batch" | "layer",   # one choice for the whole network
         "residual": bool,                     # a skip around every hidden layer
         "train": {"lr", "weight_decay", "batch_size", "optimizer"}}

    A hidden layer is Linear → norm → activation → dropout. With ``residual`` its input is added
    to its output, as is when the widths match, else through a bias-free Linear projection.
    """

    name = "mlp"
    words = ("A multi-layer perceptron", "tabular data")
    diagram = "mlp"

    def _layer(self, rng: np.random.Generator) -> dict:
        return {"units": pick(UNITS, rng), "activation": pick(ACTIVATION_NAMES, rng), "dropout": pick(DROPOUTS, rng)}

    def sample(self, rng: np.random.Generator) -> dict:
        depth = int(rng.integers(MIN_DEPTH, MAX_DEPTH + 1))
        return {
            "space": self.name,
            "layers": [self._layer(rng) for _ in range(depth)],
            "norm": pick(NORMS, rng),
            "residual": bool(rng.integers(2)),
            "train": sample_train(rng),
        }

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        child = mlp_defaults(copy.deepcopy(arch))
        layers = child["layers"]
        moves = [*(LAYER_KEYS if layers else ()), "norm", "residual", "train"]
        moves += ["add"] if len(layers) < MAX_DEPTH else []
        moves += ["remove"] if len(layers) > MIN_DEPTH else []
        move = pick(moves, rng)
        if move == "train":
            child["train"] = mutate_train(child["train"], rng)
        elif move == "norm":
            child["norm"] = pick(NORMS, rng, other_than=child["norm"])
        elif move == "residual":
            child["residual"] = not child["residual"]
        elif move == "add":
            layers.insert(int(rng.integers(len(layers) + 1)), self._layer(rng))
        elif move == "remove":
            layers.pop(int(rng.integers(len(layers))))
        else:
            options = {"units": UNITS, "activation": ACTIVATION_NAMES, "dropout": DROPOUTS}[move]
            layer = layers[int(rng.integers(len(layers)))]
            layer[move] = pick(options, rng, other_than=layer[move])
        return child

    def decisions(self) -> dict[str, tuple]:
        choices: dict[str, tuple] = {
            "depth": tuple(range(MIN_DEPTH, MAX_DEPTH + 1)),
            "norm": NORMS,
            "residual": (False, True),
        }
        for i in range(MAX_DEPTH):
            choices.update({f"units_{i}": UNITS, f"activation_{i}": ACTIVATION_NAMES, f"dropout_{i}": DROPOUTS})
        return choices | TRAIN_DECISIONS

    def from_decisions(self, choices: dict) -> dict:
        layers = [{key: choices[f"{key}_{i}"] for key in LAYER_KEYS} for i in range(choices["depth"])]
        return {
            "space": self.name,
            "layers": layers,
            "norm": choices["norm"],
            "residual": choices["residual"],
            "train": {name: choices[name] for name in TRAIN_DECISIONS},
        }

    def to_decisions(self, arch: dict) -> dict:
        arch = mlp_defaults(arch)
        choices = {name: options[0] for name, options in self.decisions().items()}
        choices.update(depth=len(arch["layers"]), norm=arch["norm"], residual=arch["residual"], **arch["train"])
        for i, layer in enumerate(arch["layers"]):
            choices.update({f"{key}_{i}": layer[key] for key in LAYER_KEYS})
        return choices

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        import torch.nn as nn  # lazy: strategies import this module and must not need torch

        arch = mlp_defaults(arch)
        norms = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}
        modules: list[nn.Module] = []
        width = n_inputs
        for layer in arch["layers"]:
            units = layer["units"]
            body: list[nn.Module] = [nn.Linear(width, units)]
            body += [norms[arch["norm"]](units)] if arch["norm"] in norms else []
            body.append(activation(layer["activation"]))
            body += [nn.Dropout(layer["dropout"])] if layer["dropout"] > 0 else []
            if arch["residual"]:
                shortcut = nn.Identity() if width == units else nn.Linear(width, units, bias=False)
                modules.append(residual_class()(nn.Sequential(*body), shortcut))
            else:
                modules += body
            width = units
        modules.append(nn.Linear(width, n_outputs))
        return nn.Sequential(*modules)

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        arch = mlp_defaults(arch)
        params = flops = buffer_bytes = 0
        activations = ActivationPeak(n_inputs)
        width = n_inputs
        for layer in arch["layers"]:
            units = layer["units"]
            macs = width * units
            params += macs + units + (2 * units if arch["norm"] != "none" else 0)  # weights, biases, norm scale+shift
            if arch["norm"] == "batch":  # running mean and variance, and the step counter
                buffer_bytes += 2 * units * FLOAT32_BYTES + BATCH_NORM_COUNTER_BYTES
            body = [units] * (3 if arch["norm"] != "none" else 2)  # Linear, norm, activation (dropout is a no-op)
            if arch["residual"]:
                shortcut = [] if width == units else [units]
                if shortcut:
                    params, macs = params + width * units, macs + width * units  # the projection
                activations.residual(body, shortcut)
            else:
                activations.chain(body)
            flops += macs
            width = units
        params += width * n_outputs + n_outputs
        flops += width * n_outputs
        activations.op(n_outputs)
        return float32_costs(params=params, flops=flops, buffer_bytes=buffer_bytes, activations=activations)

    def _candidates(self, n_inputs: int, n_outputs: int) -> list[Costs]:
        # Every cost grows with depth, width, norms and skips, so the cheapest net is the linear
        # model or one narrowest plain hidden layer (narrower than the input or output).
        linear = {"layers": [], "norm": "none", "residual": False}
        narrow = {"layers": [{"units": min(UNITS), "activation": "relu", "dropout": 0.0}], "norm": "none"}
        return [self.costs(arch | {"residual": False}, n_inputs, n_outputs) for arch in (linear, narrow)]

    def _smallest(self, n_inputs: int, n_outputs: int) -> Costs:
        return min(self._candidates(n_inputs, n_outputs), key=lambda c: (c.params, c.flops))

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).params

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).flops

    def smallest_memory(self, n_inputs: int, n_outputs: int) -> int:
        return min(memory_of(c) for c in self._candidates(n_inputs, n_outputs))

    def describe(self, arch: dict) -> list[str]:
        arch = mlp_defaults(arch)
        norm = _NORM_LABELS.get(arch["norm"])
        lines = [
            f"Dense {layer['units']}"
            + (f" · {norm}" if norm else "")
            + f" · {layer['activation']}"
            + (f" · dropout {layer['dropout']:g}" if layer["dropout"] else "")
            for layer in arch["layers"]
        ]
        if not arch["layers"]:
            lines.append("Linear model (no hidden layer)")
        elif arch["residual"]:
            lines.append("Residual connection around every hidden layer (projected where widths differ)")
        return [*lines, "Output layer", describe_train(arch["train"])]


def mlp_defaults(arch: dict) -> dict:
    """``arch`` with the keys genomes from before engine v1 lacked (no norm, no skips, Adam)."""
    return {
        "space": "mlp",
        "norm": "none",
        "residual": False,
        **{key: value for key, value in arch.items() if key != "lr"},
        "train": train_settings(arch),
    }
