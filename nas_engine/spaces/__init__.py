"""Search spaces: what architectures exist and what they cost."""

from __future__ import annotations

from nas_engine.errors import ConstraintError
from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.cnn import CNNSpace
from nas_engine.spaces.mlp import MLPSpace
from nas_engine.spaces.tabular import TabularSpace
from nas_engine.spaces.trees import TreeSpace

SPACES: dict[str, type[SearchSpace]] = {"tabular": TabularSpace, "mlp": MLPSpace, "cnn": CNNSpace, "trees": TreeSpace}


def detect_image_shape(feature_kinds: list[str]) -> tuple[int, int, int] | None:
    """Guess that feature columns are the pixels of an image: all numeric, and their count is
    s*s (one channel) or 3*s*s (RGB) with s >= 8. Returns (channels, height, width) or None."""
    if not feature_kinds or any(kind != "numeric" for kind in feature_kinds):
        return None
    count = len(feature_kinds)
    for channels in (1, 3):
        side = round((count / channels) ** 0.5)
        if side >= 8 and channels * side * side == count:
            return (channels, side, side)
    return None


# One-shot strategies train a weight-sharing supernet of the MLP or CNN space; on tables ``auto``
# gives them the MLP space.
SUPERNET_STRATEGIES = ("spos", "darts")


def make_space(
    name: str, *, n_inputs: int, image_shape: tuple[int, int, int] | None = None, strategy: str = ""
) -> SearchSpace:
    """The search space a search runs in. ``"auto"`` picks the CNN space when the columns form an
    image, else the tabular space (MLPs with periodic embeddings and TabM-style ensembles).

    Raises:
        ConstraintError: The space is unknown, or it needs an image the data does not have.
    """
    name = resolved_space(name, image=image_shape is not None, strategy=strategy)
    return _space_class(name).for_data(n_inputs=n_inputs, image_shape=image_shape)


def resolved_space(name: str, *, image: bool, strategy: str = "") -> str:
    """The space ``name`` stands for: itself, or for ``"auto"`` the CNN space when the columns form
    an image, else the tabular one (plain MLPs for the weight-sharing strategies)."""
    if name != "auto":
        return name
    tables = "mlp" if strategy in SUPERNET_STRATEGIES else "tabular"
    return "cnn" if image and "cnn" in SPACES else tables


def space_for_architecture(arch: dict) -> SearchSpace:
    """The space that built ``arch``, from the genome alone (its ``"space"`` key; MLP when absent).

    Raises:
        ConstraintError: The genome names an unknown space.
    """
    return _space_class(arch.get("space", "mlp")).for_architecture(arch)


def _space_class(name: str) -> type[SearchSpace]:
    if name not in SPACES:
        raise ConstraintError(f"Unknown search space '{name}'; known spaces: auto, {', '.join(SPACES)}.")
    return SPACES[name]


__all__ = [
    "TreeSpace",
    "SPACES",
    "CNNSpace",
    "MLPSpace",
    "SearchSpace",
    "TabularSpace",
    "detect_image_shape",
    "make_space",
    "space_for_architecture",
]
