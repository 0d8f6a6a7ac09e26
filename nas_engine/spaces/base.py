"""The contract every search space fulfils, so strategies never need to know which one they run on."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod

import numpy as np

from nas_engine.results import Costs


class SearchSpace(ABC):
    """Owns what an architecture is: how to sample, mutate, hash, build and cost it.

    Architectures are plain JSON-serialisable dicts, so strategies and the web app can store
    them without knowing the space.
    """

    name: str = ""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> dict:
        """Draw a random architecture."""

    @abstractmethod
    def mutate(self, arch: dict, rng: np.random.Generator) -> dict:
        """Return a copy of ``arch`` with one small random change."""

    @abstractmethod
    def build_model(self, arch: dict, n_inputs: int, n_outputs: int):
        """Build the untrained ``torch.nn.Module`` for ``arch``."""

    @abstractmethod
    def costs(self, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
        """Compute parameters, FLOPs and size without building the network."""

    @abstractmethod
    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        """Return the parameter count of the smallest architecture in the space."""

    @abstractmethod
    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        """Return the FLOPs of the cheapest architecture in the space."""

    @abstractmethod
    def describe(self, arch: dict) -> list[str]:
        """Return one readable line per layer."""

    def arch_hash(self, arch: dict) -> str:
        """Return a short stable id of ``arch`` (12 hex chars of the SHA-1 of canonical JSON)."""
        canonical = json.dumps(arch, sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:12]
