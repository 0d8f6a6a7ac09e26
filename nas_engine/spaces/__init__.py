"""Search spaces: what architectures exist and what they cost."""

from nas_engine.spaces.base import SearchSpace
from nas_engine.spaces.mlp import MLPSpace

SPACES: dict[str, type[SearchSpace]] = {"mlp": MLPSpace}

__all__ = ["SPACES", "MLPSpace", "SearchSpace"]
