"""Search space of multi-layer perceptrons for tabular data."""

from __future__ import annotations

import copy

import numpy as np

from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace

UNITS = (8, 16, 32, 64, 128, 256)
ACTIVATIONS = ("relu", "gelu", "tanh", "silu")
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
LEARNING_RATES = (1e-3, 3e-3, 1e-2)
MIN_DEPTH, MAX_DEPTH = 1, 4


def _pick(options, rng: np.random.Generator, *, other_than=None):
    choices = [o for o in options if o != other_than] or list(options)
    return choices[int(rng.integers(len(choices)))]


class MLPSpace(SearchSpace):
    """MLPs of 1-4 hidden layers.

    Genome: ``{"layers": [{"units", "activation", "dropout"}, ...], "lr": float}``.
    """

    name = "mlp"

    def _layer(self, rng: np.random.Generator) -> dict:
        return {"units": _pick(UNITS, rng), "activation": _pick(ACTIVATIONS, rng), "dropout": _pick(DROPOUTS, rng)}

    def sample(self, rng: np.random.Generator) -> dict:
        depth = int(rng.integers(MIN_DEPTH, MAX_DEPTH + 1))
        return {"layers": [self._layer(rng) for _ in range(depth)], "lr": _pick(LEARNING_RATES, rng)}

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        child = copy.deepcopy(arch)
        layers = child["layers"]
        moves = ["units", "activation", "dropout", "lr"]
        moves += ["add"] if len(layers) < MAX_DEPTH else []
        moves += ["remove"] if len(layers) > MIN_DEPTH else []
        move = _pick(moves, rng)
        if move == "lr":
            child["lr"] = _pick(LEARNING_RATES, rng, other_than=child["lr"])
        elif move == "add":
            layers.insert(int(rng.integers(len(layers) + 1)), self._layer(rng))
        elif move == "remove":
            layers.pop(int(rng.integers(len(layers))))
        else:
            options = {"units": UNITS, "activation": ACTIVATIONS, "dropout": DROPOUTS}[move]
            layer = layers[int(rng.integers(len(layers)))]
            layer[move] = _pick(options, rng, other_than=layer[move])
        return child

    def decisions(self) -> dict[str, tuple]:
        choices: dict[str, tuple] = {"depth": tuple(range(MIN_DEPTH, MAX_DEPTH + 1))}
        for i in range(MAX_DEPTH):
            choices.update({f"units_{i}": UNITS, f"activation_{i}": ACTIVATIONS, f"dropout_{i}": DROPOUTS})
        return choices | {"lr": LEARNING_RATES}

    def from_decisions(self, choices: dict) -> dict:
        layers = [
            {key: choices[f"{key}_{i}"] for key in ("units", "activation", "dropout")} for i in range(choices["depth"])
        ]
        return {"layers": layers, "lr": choices["lr"]}

    def to_decisions(self, arch: dict) -> dict:
        choices = {name: options[0] for name, options in self.decisions().items()}
        choices.update(depth=len(arch["layers"]), lr=arch["lr"])
        for i, layer in enumerate(arch["layers"]):
            choices.update({f"{key}_{i}": value for key, value in layer.items()})
        return choices

    def _widths(self, arch: dict, n_inputs: int, n_outputs: int) -> list[int]:
        return [n_inputs] + [layer["units"] for layer in arch["layers"]] + [n_outputs]

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        import torch.nn as nn  # lazy: strategies import this module and must not need torch

        activations = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
        modules: list[nn.Module] = []
        width = n_inputs
        for layer in arch["layers"]:
            modules += [nn.Linear(width, layer["units"]), activations[layer["activation"]]()]
            if layer["dropout"] > 0:
                modules.append(nn.Dropout(layer["dropout"]))
            width = layer["units"]
        modules.append(nn.Linear(width, n_outputs))
        return nn.Sequential(*modules)

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        widths = self._widths(arch, n_inputs, n_outputs)
        flops = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
        params = flops + sum(widths[1:])  # weights plus one bias per output unit
        return Costs(params=params, flops=flops, latency_ms=None, size_bytes=params * 4)

    def _smallest(self, n_inputs: int, n_outputs: int) -> Costs:
        arch = {"layers": [{"units": min(UNITS), "activation": "relu", "dropout": 0.0}]}
        return self.costs(arch, n_inputs, n_outputs)

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).params

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return self._smallest(n_inputs, n_outputs).flops

    def describe(self, arch: dict) -> list[str]:
        lines = [
            f"Dense {layer['units']} · {layer['activation']}"
            + (f" · dropout {layer['dropout']:g}" if layer["dropout"] else "")
            for layer in arch["layers"]
        ]
        return lines + ["Output layer", f"Learning rate {arch['lr']:g}"]
