"""Training hyper-parameters that every space searches jointly with the architecture (the genome's
``"train"`` entry), plus the small choice helpers the spaces share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Log-spaced learning rates cover Adam's usual range and SGD's lower end; decay 0 keeps the
# plain optimiser in reach.
TRAIN_DECISIONS: dict[str, tuple] = {
    "lr": (3e-4, 1e-3, 3e-3, 1e-2),
    "weight_decay": (0.0, 1e-5, 1e-4, 1e-3),
    "batch_size": (32, 64, 128, 256),
    "optimizer": ("adam", "adamw", "sgd"),
}
DEFAULT_TRAIN: dict = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "optimizer": "adam"}


def pick(options: Sequence, rng: np.random.Generator, *, other_than=None):
    """Return one of ``options`` uniformly at random, avoiding ``other_than`` when another exists."""
    choices = [option for option in options if option != other_than] or list(options)
    return choices[int(rng.integers(len(choices)))]


def sample_train(rng: np.random.Generator) -> dict:
    """Draw training settings uniformly from :data:`TRAIN_DECISIONS`."""
    return {name: pick(options, rng) for name, options in TRAIN_DECISIONS.items()}


def mutate_train(train: dict, rng: np.random.Generator) -> dict:
    """Return a copy of ``train`` with exactly one setting changed."""
    name = pick(tuple(TRAIN_DECISIONS), rng)
    return {**train, name: pick(TRAIN_DECISIONS[name], rng, other_than=train[name])}


def train_settings(arch: dict) -> dict:
    """The genome's training settings; genomes from before engine v1 only had a top-level ``lr``."""
    if "train" in arch:
        return arch["train"]
    return {**DEFAULT_TRAIN, "lr": arch.get("lr", DEFAULT_TRAIN["lr"])}


def describe_train(train: dict) -> str:
    """One readable line, e.g. ``Training: adamw · lr 0.001 · weight decay 0.0001 · batch 64``."""
    return (
        f"Training: {train['optimizer']} · lr {train['lr']:g} · weight decay {train['weight_decay']:g}"
        f" · batch {train['batch_size']}"
    )
