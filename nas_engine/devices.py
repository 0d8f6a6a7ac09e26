"""Where networks train: the worker's device, chosen once (``cuda`` when torch sees a GPU, else the
CPU; ``NAS_DEVICE`` overrides), and mixed precision on a GPU.

Latency is always measured where the model will be deployed (one CPU thread, as before), never on
the training device: ``evaluator.Trainer`` moves a model back to the CPU when it finishes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
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


# Training steps per second of the two fixed workloads below on the project's 2-core development
# machine (one torch thread, measured 2026-12-06: 910-1,100 and 20-22.5 steps/s), which the
# estimates' THROUGHPUT stands for. A worker divides its own by these: its speed, which scales the
# form's estimate of how many models a budget buys (a GPU worker's cnn speed is typically far above 1).
REFERENCE_STEPS_PER_SECOND = {"mlp": 1050.0, "cnn": 21.5}
SPEED_SECONDS = 0.4  # time each workload is run for (after a warm-up step)


def _workload(kind: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    if kind == "cnn":  # two convolutions on 32×32 colour images, batch 64
        model: torch.nn.Module = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(64, 10),
        )
        return model, torch.randn(64, 3, 32, 32, generator=generator), torch.randint(0, 10, (64,), generator=generator)
    model = torch.nn.Sequential(  # a 256-wide MLP on 50 inputs, batch 64
        torch.nn.Linear(50, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2)
    )
    return model, torch.randn(64, 50, generator=generator), torch.randint(0, 2, (64,), generator=generator)


def measure_speed(device: torch.device | None = None, *, seconds: float = SPEED_SECONDS) -> dict[str, float]:
    """How fast ``device`` trains, relative to the machine the estimates were measured on, per
    workload (``mlp``, ``cnn``; > 1 is faster): training steps of a fixed network for about
    ``seconds`` each, as a worker trains (one torch thread on the CPU, mixed precision on a GPU)."""
    device = device or training_device()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        return {
            kind: round(_steps_per_second(kind, device, seconds) / reference, 3)
            for kind, reference in REFERENCE_STEPS_PER_SECOND.items()
        }
    finally:
        torch.set_num_threads(threads)


def _steps_per_second(kind: str, device: torch.device, seconds: float) -> float:
    model, x, y = _workload(kind)
    model, x, y = model.to(device), x.to(device), y.to(device)
    optimizer = torch.optim.Adam(model.parameters())

    def step() -> None:
        optimizer.zero_grad()
        with autocast(device):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # the first step (allocation, kernel choice) is not timed
    steps, start = 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps / (time.perf_counter() - start)
