"""Search space of small convolutional networks for images given as flat pixel columns.

Costs are analytic: ``params`` is the exact parameter count of the built module (batch-norm
scale and shift included) and ``flops`` counts multiply-accumulates (MACs) of the convolutions
and the output Linear layer at batch 1; batch-norm, activations, pooling and residual additions
are not counted. ``memory_bytes`` is the float32 weights and batch-norm buffers plus the peak of
feature maps alive in a batch-1 forward pass (``memory.ActivationPeak``): an inverted bottleneck's
expanded map, a residual block's input held while its body runs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nas_engine.errors import ConstraintError
from nas_engine.results import Costs
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.blocks import activation, residual_class
from nas_engine.spaces.memory import (
    BATCH_NORM_COUNTER_BYTES,
    FLOAT32_BYTES,
    ActivationPeak,
    float32_costs,
    memory_of,
)
from nas_engine.spaces.training import TRAIN_DECISIONS, describe_train, mutate_train, pick, sample_train

ACTIVATIONS = ("relu", "silu", "gelu")
STEM_CHANNELS = (8, 16, 24, 32)
BLOCK_TYPES = ("conv", "residual", "inverted")
KERNELS = (3, 5)
CHANNELS = (8, 16, 24, 32, 48, 64, 96, 128)
BLOCKS_PER_STAGE = (1, 2, 3)
EXPANSIONS = (1, 3, 6)
HEAD_DROPOUTS = (0.0, 0.1, 0.2, 0.3)
MIN_STAGES, MAX_STAGES = 1, 4
MIN_SIDE = 8
STAGE_KEYS = ("block", "kernel", "channels", "blocks")
_BLOCK_LABELS = {"conv": "conv-BN-act", "residual": "residual basic block", "inverted": "inverted bottleneck"}
NOT_AN_IMAGE = (
    "The columns do not form an image (need s×s or 3×s×s numeric pixel columns, s ≥ 8); "
    "choose the 'mlp' or 'auto' search space for this data."
)


@dataclass(frozen=True)
class ConvUnit:
    """One convolution followed by batch-norm (and the activation when ``act``); padding keeps
    'same' size, so the output side is ``ceil(side / stride)``."""

    cin: int
    cout: int
    kernel: int
    stride: int = 1
    groups: int = 1
    act: bool = True


@dataclass(frozen=True)
class _Block:
    """A block as convolutions: ``shortcut`` None means no skip, ``()`` the identity."""

    body: tuple[ConvUnit, ...]
    shortcut: tuple[ConvUnit, ...] | None
    act_after: bool


def side_after(side: int, stride: int) -> int:
    return (side - 1) // stride + 1


def build_block(kind: str, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> _Block:
    """The convolutions of one block (He et al. 2016 basic block; Sandler et al. 2018 MBConv)."""
    if kind == "conv":
        return _Block((ConvUnit(cin, cout, kernel, stride),), None, False)
    if kind == "residual":
        body = (ConvUnit(cin, cout, kernel, stride), ConvUnit(cout, cout, kernel, act=False))
        shortcut = () if stride == 1 and cin == cout else (ConvUnit(cin, cout, 1, stride, act=False),)
        return _Block(body, shortcut, True)
    hidden = cin * expansion
    expand = (ConvUnit(cin, hidden, 1),) if expansion > 1 else ()
    body = (*expand, ConvUnit(hidden, hidden, kernel, stride, groups=hidden), ConvUnit(hidden, cout, 1, act=False))
    # MobileNetV2 skips only where shapes match and leaves the sum linear.
    return _Block(body, () if stride == 1 and cin == cout else None, False)


class CNNSpace(SearchSpace):
    """CNNs of a stem and 1-4 stages, searched jointly with their training settings.

    The model takes the flat pixel vector ``[batch, C*H*W]`` and unflattens it. Each stage starts
    with a stride-2 downsampling while both sides stay >= 2 after it (so 8×8 images go
    8 → 4 → 2 → 2 → 2), then global average pooling and a Linear head.

    Genome::

        {"space": "cnn", "input_shape": [C, H, W], "activation": "relu" | "silu" | "gelu",
         "stem": {"channels": 16},                                  # conv 3×3, stride 1
         "stages": [{"block": "conv" | "residual" | "inverted", "kernel": 3 | 5,
                     "channels": 32, "blocks": 1-3, "expansion": 1 | 3 | 6}, ...],
         "head": {"dropout": 0.1},
         "train": {"lr", "weight_decay", "batch_size", "optimizer"}}

    ``expansion`` is present only on ``inverted`` stages.

    Args:
        image_shape: (channels, height, width) of the images; both sides at least 8.

    Raises:
        ConstraintError: The image shape is missing or too small.
    """

    name = "cnn"
    words = ("A convolutional network", "images given as pixel columns")
    throughput = "cnn"
    diagram = "cnn"
    needs_image = True

    def __init__(self, *, image_shape: tuple[int, int, int] | list[int]) -> None:
        shape = tuple(int(v) for v in image_shape) if image_shape is not None else ()
        if len(shape) != 3 or shape[0] < 1 or min(shape[1:]) < MIN_SIDE:
            raise ConstraintError(f"{NOT_AN_IMAGE} (got image shape {image_shape}).")
        channels, height, width = shape
        self.image_shape = (channels, height, width)

    @classmethod
    def for_data(cls, *, n_inputs: int, image_shape: tuple[int, int, int] | None = None) -> CNNSpace:
        if image_shape is None:
            raise ConstraintError(NOT_AN_IMAGE)
        if int(np.prod(image_shape)) != n_inputs:
            shape = "×".join(map(str, image_shape))
            raise ConstraintError(
                f"An image of {shape} needs {int(np.prod(image_shape))} columns; the data has {n_inputs}."
            )
        return cls(image_shape=image_shape)

    @classmethod
    def for_architecture(cls, arch: dict) -> CNNSpace:
        return cls(image_shape=tuple(arch["input_shape"]))

    # --- genomes --------------------------------------------------------------------------------

    def _stage(self, rng: np.random.Generator) -> dict:
        stage = {key: pick(options, rng) for key, options in zip(STAGE_KEYS, _STAGE_OPTIONS, strict=True)}
        return stage | ({"expansion": pick(EXPANSIONS, rng)} if stage["block"] == "inverted" else {})

    def sample(self, rng: np.random.Generator) -> dict:
        n_stages = int(rng.integers(MIN_STAGES, MAX_STAGES + 1))
        return {
            "space": self.name,
            "input_shape": list(self.image_shape),
            "activation": pick(ACTIVATIONS, rng),
            "stem": {"channels": pick(STEM_CHANNELS, rng)},
            "stages": [self._stage(rng) for _ in range(n_stages)],
            "head": {"dropout": pick(HEAD_DROPOUTS, rng)},
            "train": sample_train(rng),
        }

    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        child = copy.deepcopy(arch)
        stages = child["stages"]
        moves = ["activation", "stem", "head", "train", "stage"]
        moves += ["add"] if len(stages) < MAX_STAGES else []
        moves += ["remove"] if len(stages) > MIN_STAGES else []
        move = pick(moves, rng)
        if move == "activation":
            child["activation"] = pick(ACTIVATIONS, rng, other_than=child["activation"])
        elif move == "stem":
            child["stem"]["channels"] = pick(STEM_CHANNELS, rng, other_than=child["stem"]["channels"])
        elif move == "head":
            child["head"]["dropout"] = pick(HEAD_DROPOUTS, rng, other_than=child["head"]["dropout"])
        elif move == "train":
            child["train"] = mutate_train(child["train"], rng)
        elif move == "add":
            stages.insert(int(rng.integers(len(stages) + 1)), self._stage(rng))
        elif move == "remove":
            stages.pop(int(rng.integers(len(stages))))
        else:
            self._mutate_stage(stages[int(rng.integers(len(stages)))], rng)
        return child

    def _mutate_stage(self, stage: dict, rng: np.random.Generator) -> None:
        key = pick(STAGE_KEYS + (("expansion",) if stage["block"] == "inverted" else ()), rng)
        options = dict(zip(STAGE_KEYS, _STAGE_OPTIONS, strict=True)) | {"expansion": EXPANSIONS}
        stage[key] = pick(options[key], rng, other_than=stage[key])
        if stage["block"] != "inverted":
            stage.pop("expansion", None)
        elif "expansion" not in stage:
            stage["expansion"] = pick(EXPANSIONS, rng)

    def decisions(self) -> dict[str, tuple]:
        choices: dict[str, tuple] = {
            "activation": ACTIVATIONS,
            "stem_channels": STEM_CHANNELS,
            "n_stages": tuple(range(MIN_STAGES, MAX_STAGES + 1)),
        }
        for i in range(MAX_STAGES):
            choices.update({f"{key}_{i}": options for key, options in zip(STAGE_KEYS, _STAGE_OPTIONS, strict=True)})
            choices[f"expansion_{i}"] = EXPANSIONS
        return choices | {"head_dropout": HEAD_DROPOUTS} | TRAIN_DECISIONS

    def from_decisions(self, choices: dict) -> dict:
        stages = []
        for i in range(choices["n_stages"]):
            stage = {key: choices[f"{key}_{i}"] for key in STAGE_KEYS}
            stages.append(stage | ({"expansion": choices[f"expansion_{i}"]} if stage["block"] == "inverted" else {}))
        return {
            "space": self.name,
            "input_shape": list(self.image_shape),
            "activation": choices["activation"],
            "stem": {"channels": choices["stem_channels"]},
            "stages": stages,
            "head": {"dropout": choices["head_dropout"]},
            "train": {name: choices[name] for name in TRAIN_DECISIONS},
        }

    def to_decisions(self, arch: dict) -> dict:
        choices = {name: options[0] for name, options in self.decisions().items()}
        choices.update(
            activation=arch["activation"],
            stem_channels=arch["stem"]["channels"],
            n_stages=len(arch["stages"]),
            head_dropout=arch["head"]["dropout"],
            **arch["train"],
        )
        for i, stage in enumerate(arch["stages"]):
            choices.update({f"{key}_{i}": value for key, value in stage.items()})
        return choices

    # --- the network ----------------------------------------------------------------------------

    def plan(self, arch: dict) -> Iterator[tuple[int, dict, _Block]]:
        """Yield (stride, stage, block) for every block after the stem, in order."""
        _, height, width = arch["input_shape"]
        cin = arch["stem"]["channels"]
        for stage in arch["stages"]:
            stride = 2 if min(side_after(height, 2), side_after(width, 2)) >= 2 else 1
            height, width = side_after(height, stride), side_after(width, stride)
            for i in range(stage["blocks"]):
                s = stride if i == 0 else 1
                yield (
                    s,
                    stage,
                    build_block(stage["block"], cin, stage["channels"], stage["kernel"], s, stage.get("expansion", 1)),
                )
                cin = stage["channels"]

    def _check_inputs(self, arch: dict, n_inputs: int) -> None:
        expected = int(np.prod(arch["input_shape"]))
        if expected != n_inputs:
            shape = "×".join(map(str, arch["input_shape"]))
            raise ConstraintError(f"This CNN takes {shape} images ({expected} pixel columns); the data has {n_inputs}.")

    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        import torch.nn as nn  # lazy: strategies import this module and must not need torch

        self._check_inputs(arch, n_inputs)
        act = arch["activation"]

        def convs(specs: tuple[ConvUnit, ...]) -> nn.Sequential:
            layers: list[nn.Module] = []
            for c in specs:
                layers += [
                    nn.Conv2d(c.cin, c.cout, c.kernel, c.stride, c.kernel // 2, groups=c.groups, bias=False),
                    nn.BatchNorm2d(c.cout),
                ]
                layers += [activation(act)] if c.act else []
            return nn.Sequential(*layers)

        stem = arch["stem"]["channels"]
        modules: list[nn.Module] = [
            nn.Unflatten(1, tuple(arch["input_shape"])),
            convs((ConvUnit(arch["input_shape"][0], stem, 3),)),
        ]
        for _, _, block in self.plan(arch):
            if block.shortcut is None:
                modules.append(convs(block.body))
                continue
            shortcut = convs(block.shortcut) if block.shortcut else nn.Identity()
            modules.append(residual_class()(convs(block.body), shortcut, activation(act) if block.act_after else None))
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        modules += [nn.Dropout(arch["head"]["dropout"])] if arch["head"]["dropout"] > 0 else []
        modules.append(nn.Linear(self._out_channels(arch), n_outputs))
        return nn.Sequential(*modules)

    def _out_channels(self, arch: dict) -> int:
        return arch["stages"][-1]["channels"] if arch["stages"] else arch["stem"]["channels"]

    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        self._check_inputs(arch, n_inputs)
        channels, height, width = arch["input_shape"]
        stem = (ConvUnit(channels, arch["stem"]["channels"], 3),)
        params, flops = conv_costs(stem, height, width)
        buffer_bytes = _buffer_bytes(stem)
        activations = ActivationPeak(n_inputs)  # Unflatten is a view of the input
        activations.nested(_conv_outputs(stem, height, width))
        for stride, _, block in self.plan(arch):
            for specs in (block.body, block.shortcut or ()):
                p, f = conv_costs(specs, height, width)
                params, flops, buffer_bytes = params + p, flops + f, buffer_bytes + _buffer_bytes(specs)
            body = _conv_outputs(block.body, height, width)
            if block.shortcut is None:
                activations.nested(body)
            else:
                shortcut = _conv_outputs(block.shortcut, height, width)
                activations.residual(body, shortcut, after=body[-1:] if block.act_after else ())
            height, width = side_after(height, stride), side_after(width, stride)
        last = self._out_channels(arch)
        params += last * n_outputs + n_outputs
        flops += last * n_outputs
        activations.chain((last, n_outputs))  # pooling (Flatten is a view, dropout a no-op) and the head
        return float32_costs(params=params, flops=flops, buffer_bytes=buffer_bytes, activations=activations)

    def _smallest(self, n_inputs: int, n_outputs: int) -> list[Costs]:
        # Costs grow with every width, depth and kernel, so the cheapest net is one stage of one
        # narrowest block; only the block type and expansion need comparing.
        base = {
            "space": self.name,
            "input_shape": list(self.image_shape),
            "activation": ACTIVATIONS[0],
            "stem": {"channels": min(STEM_CHANNELS)},
            "head": {"dropout": 0.0},
        }
        stage = {"kernel": min(KERNELS), "channels": min(CHANNELS), "blocks": 1}
        candidates = [{**stage, "block": kind} for kind in BLOCK_TYPES if kind != "inverted"]
        candidates += [{**stage, "block": "inverted", "expansion": e} for e in EXPANSIONS]
        return [self.costs({**base, "stages": [c]}, n_inputs, n_outputs) for c in candidates]

    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        return min(c.params for c in self._smallest(n_inputs, n_outputs))

    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        return min(c.flops for c in self._smallest(n_inputs, n_outputs))

    def smallest_memory(self, n_inputs: int, n_outputs: int) -> int:
        return min(memory_of(c) for c in self._smallest(n_inputs, n_outputs))

    def describe(self, arch: dict) -> list[str]:
        lines = [
            "Input image " + "×".join(map(str, arch["input_shape"])),
            f"Stem: conv 3×3, {arch['stem']['channels']} channels · BN · {arch['activation']}",
        ]
        strides = [stride for stride, stage, _ in self.plan(arch)]
        first = 0
        for number, stage in enumerate(arch["stages"], start=1):
            kind = _BLOCK_LABELS[stage["block"]]
            if stage["block"] == "inverted":
                kind += f" (expansion {stage['expansion']})"
            lines.append(
                f"Stage {number}: {stage['blocks']} × {kind}, {stage['kernel']}×{stage['kernel']},"
                f" {stage['channels']} channels, stride {strides[first]}"
            )
            first += stage["blocks"]
        dropout = arch["head"]["dropout"]
        lines += ["Global average pooling", (f"Dropout {dropout:g} · " if dropout else "") + "output layer"]
        return [*lines, describe_train(arch["train"])]


_STAGE_OPTIONS = (BLOCK_TYPES, KERNELS, CHANNELS, BLOCKS_PER_STAGE)


def conv_costs(specs: tuple[ConvUnit, ...], height: int, width: int) -> tuple[int, int]:
    """Parameters (weights plus batch-norm scale and shift) and MACs of convolutions run in order
    on a ``height`` × ``width`` input."""
    params = macs = 0
    for c in specs:
        height, width = side_after(height, c.stride), side_after(width, c.stride)
        weights = c.cout * (c.cin // c.groups) * c.kernel * c.kernel
        params += weights + 2 * c.cout
        macs += weights * height * width
    return params, macs


def _conv_outputs(specs: tuple[ConvUnit, ...], height: int, width: int) -> list[int]:
    """Elements each op of the convolutions writes, in order: conv, batch-norm, activation."""
    sizes = []
    for c in specs:
        height, width = side_after(height, c.stride), side_after(width, c.stride)
        sizes += [c.cout * height * width] * (3 if c.act else 2)
    return sizes


def _buffer_bytes(specs: tuple[ConvUnit, ...]) -> int:
    """Bytes of the batch-norm buffers after the convolutions: running mean and variance, counter."""
    return sum(2 * c.cout * FLOAT32_BYTES + BATCH_NORM_COUNTER_BYTES for c in specs)
