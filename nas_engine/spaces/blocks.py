"""PyTorch building blocks the spaces share. torch is imported only when a model is built, so
strategies (which import the spaces) never need it."""

from __future__ import annotations

import functools

ACTIVATION_NAMES = ("relu", "gelu", "silu", "tanh")


def activation(name: str):
    """A fresh activation module by name (one of :data:`ACTIVATION_NAMES`)."""
    import torch.nn as nn

    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}[name]()


@functools.cache
def residual_class() -> type:
    """The ``Residual`` module class: ``after(body(x) + shortcut(x))``.

    Defined on first use, inside a function, because a module-level ``nn.Module`` subclass would
    make importing the spaces import torch.
    """
    import torch.nn as nn

    class Residual(nn.Module):
        """A skip connection around ``body``; ``after`` runs on the sum (an activation or identity)."""

        def __init__(self, body: nn.Module, shortcut: nn.Module, after: nn.Module | None = None) -> None:
            super().__init__()
            self.body, self.shortcut = body, shortcut
            self.after = after if after is not None else nn.Identity()

        def forward(self, x):
            return self.after(self.body(x) + self.shortcut(x))

    return Residual
