"""Where networks train: the worker's device, chosen once (``cuda`` when torch sees a GPU, else the
CPU; ``NAS_DEVICE`` overrides), and mixed precision on a GPU.

Latency is always measured where the model will be deployed (one CPU thread, as before), never on
the training device: ``evaluator.Trainer`` moves a model back to the CPU when it finishes.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch

ENV = "NAS_DEVICE"
CHOICES = ("auto", "cpu", "cuda", "cuda:N")


@functools.cache
def training_device() -> torch.device:
    """The device this process trains on, read once from ``NAS_DEVICE`` (``auto`` when unset).

    Raises:
        ValueError: ``NAS_DEVICE`` is not one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, or names
            a GPU this machine does not have.
    """
    return parse_device(os.environ.get(ENV, ""))


def parse_device(text: str) -> torch.device:
    """``NAS_DEVICE``'s value as a device (see ``training_device``)."""
    chosen = text.strip().lower() or "auto"
    if chosen == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if chosen == "cpu":
        return torch.device("cpu")
    if chosen == "cuda" or (chosen.startswith("cuda:") and chosen[5:].isdigit()):
        if not torch.cuda.is_available():
            build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(
                f"{ENV}={text.strip()} asks for a GPU, but torch {torch.__version__} ({build}) sees none on this "
                f"machine. Unset {ENV} (or set it to cpu) to train on the CPU."
            )
        device = torch.device(chosen)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{ENV}={text.strip()}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0."
            )
        return device
    raise ValueError(f"{ENV}={text.strip()!r} is not a device; use one of: {', '.join(CHOICES)}.")


def describe(device: torch.device) -> str:
    """A device as the job page shows it: ``cpu``, or ``cuda (NVIDIA H100 80GB HBM3)``."""
    if device.type != "cuda":
        return device.type
    return f"cuda ({torch.cuda.get_device_name(device)})"


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The half-precision type of mixed-precision training on ``device``: bfloat16 where the GPU has
    it (no loss scaling needed), else float16 (with a ``GradScaler``); None on the CPU (float32)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision for the forward pass and the loss on a GPU; nothing on the CPU."""
    dtype = amp_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 training; a pass-through (disabled) elsewhere."""
    return torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)


def module_device(model: torch.nn.Module) -> torch.device:
    """Where a module's weights are (the CPU for one without any)."""
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")
