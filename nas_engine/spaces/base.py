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
    # How long a trial trains when the search settings leave it to the space (SearchConfig's None); a
    # space whose networks need longer training says so here (a 150/12 tabular default measured no
    # better on the suite's dev half at 45 s: benchmarks/results/tabular_epochs_ab.md).
    max_epochs: int = 50
    patience: int = 5
    # What the model card calls a network of the space, and what data it takes.
    words: tuple[str, str] = ("A neural network", "tabular data")
    # Which measured throughput (``estimate.THROUGHPUT``) prices its training: "mlp" or "cnn".
    throughput: str = "mlp"
    # How the model page draws it (``diagram.layer_diagram``): "mlp", "tabular", "cnn", or "" for one
    # box per top-level module of the built network.
    diagram: str = ""
    # True when its networks take images only (pixel columns that form one): forms refuse it otherwise.
    needs_image: bool = False

    @classmethod
    def for_data(cls, *, n_inputs: int, image_shape: tuple[int, int, int] | None = None) -> SearchSpace:
        """Build the space for a dataset of ``n_inputs`` feature columns (pixels when ``image_shape``
        is given). Spaces that need more than a column count override this.

        Raises:
            ConstraintError: The data does not suit this space.
        """
        return cls()

    @classmethod
    def for_architecture(cls, arch: dict) -> SearchSpace:
        """Rebuild the space that produced ``arch`` from the genome alone."""
        return cls()

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
        """Compute parameters, FLOPs, size and peak inference memory without building the network."""

    @abstractmethod
    def smallest_params(self, n_inputs: int, n_outputs: int) -> int:
        """Return the parameter count of the smallest architecture in the space."""

    @abstractmethod
    def smallest_flops(self, n_inputs: int, n_outputs: int) -> int:
        """Return the FLOPs of the cheapest architecture in the space."""

    def smallest_memory(self, n_inputs: int, n_outputs: int) -> int:
        """Return the peak inference memory (``Costs.memory_bytes``) of the leanest architecture.

        This default is a lower bound, the float32 weights of the smallest network alone, so a
        limit below it is impossible; spaces that cost activations override it with the exact
        figure.
        """
        return 4 * self.smallest_params(n_inputs, n_outputs)

    def portfolio(self, *, rows: int, task: str) -> list[dict]:
        """Proven architectures a search trains first, before its strategy proposes (none by
        default). The search loop skips those already tried, so a resumed search does not redo them.

        Args:
            rows: Training rows of the data.
            task: ``"classification"`` or ``"regression"``.
        """
        return []

    def owns(self, arch: dict) -> bool:
        """Whether ``arch`` is one of this space's own genomes, which its strategies learn from; a
        space may also build and cost genomes of other families that its portfolio trains (the
        tabular space's trees), and strategies leave those out of what they learn (a search resumed
        from another space's trials too). Genomes from before engine v1 have no ``"space"``: MLPs."""
        return arch.get("space", "mlp") == self.name

    @abstractmethod
    def describe(self, arch: dict) -> list[str]:
        """Return one readable line per layer."""

    # --- the space as a flat list of categorical decisions -------------------------------------
    # Strategies that learn a distribution over choices (REINFORCE, TPE, NSGA-II through optuna)
    # and predictors that need a fixed-length vector see the space through these three methods.
    # Decisions that a given architecture does not use (the 5th layer of a 2-layer net) still
    # get a value in ``to_decisions`` (the first option), so every vector has the same length.

    @abstractmethod
    def decisions(self) -> dict[str, tuple]:
        """Return every decision of the space, in a fixed order, with its options.

        Options are JSON scalars (int, float, str, bool), so optuna's categorical
        distributions and JSON both take them.
        """

    @abstractmethod
    def from_decisions(self, choices: dict) -> dict:
        """Build the architecture a full set of decisions describes (unused ones are ignored)."""

    @abstractmethod
    def to_decisions(self, arch: dict) -> dict:
        """Return the decisions that give ``arch`` (``from_decisions(to_decisions(a)) == a``)."""

    def encode(self, arch: dict) -> np.ndarray:
        """Encode ``arch`` as a fixed-length vector in [0, 1]: one entry per decision, the option's
        index scaled by the number of options."""
        choices = self.to_decisions(arch)
        return np.array(
            [options.index(choices[name]) / max(1, len(options) - 1) for name, options in self.decisions().items()],
            dtype=np.float64,
        )

    def crossover(self, first: dict, second: dict, rng: np.random.Generator) -> dict:
        """Return a child taking each decision from one of two parents, uniformly at random."""
        a, b = self.to_decisions(first), self.to_decisions(second)
        return self.from_decisions({name: a[name] if rng.random() < 0.5 else b[name] for name in self.decisions()})

    def arch_hash(self, arch: dict) -> str:
        """Return a short stable id of ``arch`` (12 hex chars of the SHA-1 of canonical JSON)."""
        canonical = json.dumps(arch, sort_keys=True, separators=(",", ":"))
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:12]
