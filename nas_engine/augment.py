"""Training-time augmentation of image batches, written with plain torch ops (no torchvision): small
random shifts, and optionally mirror images. Only training batches change; validation, test and
predictions see the images as they are."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas_engine.errors import ConstraintError

AUGMENTATIONS = {
    "none": "Train on the images as they are.",
    "shift": "Shift each training image by a few pixels at random: for shapes whose mirror image means "
    "something else (letters, symbols) and that are large enough for a shift to be small.",
    "shift_flip": "Shift at random and mirror half of the training images left to right: for photos, where a "
    "mirrored cat is still a cat.",
}


@dataclass(frozen=True)
class Augmentation:
    """How training batches of ``image_shape`` (C, H, W) images are changed at random.

    Shifts move the image by up to ``max(1, H // 8)`` pixels each way (1 px on 8×8, 4 px on 32×32),
    filling the uncovered border with 0: the training mean of each pixel, since inputs are
    standardised per pixel.
    """

    mode: str
    image_shape: tuple[int, int, int]

    @property
    def pad(self) -> int:
        return max(1, self.image_shape[1] // 8)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A changed copy of the flat batch ``x`` (B × C·H·W), drawn from ``generator``."""
        channels, height, width = self.image_shape
        batch = x.shape[0]
        images = x.reshape(batch, channels, height, width)
        pad = self.pad
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
        rows = (dy[:, None] + torch.arange(height))[:, None, :, None]  # B×1×H×1
        cols = (dx[:, None] + torch.arange(width))[:, None, None, :]  # B×1×1×W
        images = padded[
            torch.arange(batch)[:, None, None, None], torch.arange(channels)[None, :, None, None], rows, cols
        ]
        if self.mode == "shift_flip":
            mirrored = torch.rand(batch, generator=generator) < 0.5
            images = torch.where(mirrored[:, None, None, None], images.flip(-1), images)
        return images.reshape(batch, -1)


def augmentation_for(mode: str, image_shape: tuple[int, int, int] | None) -> Augmentation | None:
    """The augmentation a search (or a refit) trains with; None for ``"none"``.

    Raises:
        ValueError: An unknown mode.
        ConstraintError: Augmentation was asked for data that are not images.
    """
    if mode not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation '{mode}'; use one of: {', '.join(AUGMENTATIONS)}.")
    if mode == "none":
        return None
    if image_shape is None:
        raise ConstraintError(f"Augmentation '{mode}' changes images, but these columns do not form an image.")
    return Augmentation(mode=mode, image_shape=tuple(image_shape))  # type: ignore[arg-type]
