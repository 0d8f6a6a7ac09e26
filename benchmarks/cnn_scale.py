"""A CIFAR-sized search on the CPU: BENCH_CNN_IMAGES (50,000) colour 32×32 images in 10 classes,
uploaded as an .npz, converted and prepared by the engine, then a CNN search of
BENCH_CNN_BUDGET seconds (600); its best model is scored on the held-out test images as the search
trained it (the final refit of the front is left out: it would double the run).

The images are synthetic but learnable, so the front means something: each class has its own
colour cast and stripe orientation, under per-image brightness, position and noise (a linear model
on the pixels does not solve it). Reported: the trials, the front, the best test accuracy, and
the training throughput in images per second per epoch (a trial's training rows times its epochs,
over its training seconds; the whole search's too). Writes benchmarks/results/cnn_scale.{md,json}.

    python -m benchmarks.cnn_scale        # about 15 minutes
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

import nas_engine
from benchmarks.report import QUICK, run_and_print, write_table
from nas_engine import devices

IMAGES = int(os.environ.get("BENCH_CNN_IMAGES", "5000" if QUICK else "50000"))
BUDGET = float(os.environ.get("BENCH_CNN_BUDGET", "120" if QUICK else "600"))
CLASSES = 10


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """N×32×32×3 uint8 images of 10 classes: a class colour and stripe angle, with nuisances."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    colours = rng.uniform(60, 200, (CLASSES, 3))
    angles = np.linspace(0, np.pi, CLASSES, endpoint=False)
    rows, cols = np.mgrid[0:32, 0:32]
    x = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for start in range(0, n, 5000):
        part = y[start : start + 5000]
        m = len(part)
        phase = rng.uniform(0, 2 * np.pi, (m, 1, 1))
        angle = angles[part][:, None, None] + rng.normal(0, 0.15, (m, 1, 1))
        stripes = np.sin((np.cos(angle) * cols + np.sin(angle) * rows) * 0.6 + phase)
        brightness = rng.uniform(0.7, 1.3, (m, 1, 1, 1))
        image = colours[part][:, None, None, :] * brightness + 45 * stripes[..., None]
        image += rng.normal(0, 25, image.shape)
        x[start : start + m] = np.clip(image, 0, 255).astype(np.uint8)
    return x, y


def run(workdir: Path) -> list[dict]:
    upload = workdir / "cifar_sized.npz"
    x, y = synthetic_images(IMAGES)
    np.savez(upload, x=x, y=y)
    del x
    started = time.monotonic()
    limits = nas_engine.ArchiveLimits(max_files=10**7, max_total_bytes=2**40, max_file_bytes=2**40)
    stored = workdir / "set.npz"
    nas_engine.convert_image_upload(upload, stored, filename=upload.name, limits=limits)
    data = nas_engine.prepare_data(stored, target="label", seed=0)
    prepared = time.monotonic() - started
    held = sum(X.nbytes for X in (data.X_train, data.X_val, data.X_test))
    as_floats = sum(len(X) * X.shape[1] * 4 for X in (data.X_train, data.X_val, data.X_test))
    rows = []
    for device in ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]:
        os.environ[devices.ENV] = device  # the same search on each device this machine has
        devices.training_device.cache_clear()
        rows.append(_search(data, workdir / device, prepared=prepared, held=held, as_floats=as_floats))
    return rows


def _search(data, workdir: Path, *, prepared: float, held: int, as_floats: int) -> dict:
    config = nas_engine.SearchConfig(target="label", budget_seconds=BUDGET, seed=0)
    started = time.monotonic()
    result = nas_engine.run_search(config, data, artifacts_dir=workdir)
    searched = time.monotonic() - started
    trained = [t for t in result.trials if t.metrics.get("epochs") and t.train_seconds]
    rows_per_trial = len(data.X_train)
    per_trial = [rows_per_trial * t.metrics["epochs"] / t.train_seconds for t in trained]
    test = result.test_metrics
    return {
        "device": trained[0].metrics.get("trained_on", "cpu") if trained else devices.training_device().type,
        "images": IMAGES,
        "train_images": len(data.X_train),
        "budget_s": BUDGET,
        "prepare_s": round(prepared, 1),
        "features_mb": round(held / 2**20),
        "as_float32_mb": round(as_floats / 2**20),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "search_s": round(searched, 1),
        "trials": len(result.trials),
        "trained": len(trained),
        "front": len(result.front),
        "space": result.best.architecture.get("space") if result.best else "",
        "best_val_accuracy": round(result.best.metrics["accuracy"], 4) if result.best else None,
        "best_test_accuracy": round(test["accuracy"], 4) if test.get("accuracy") is not None else None,
        "images_per_s_median_trial": round(float(np.median(per_trial))) if per_trial else None,
        "images_per_s_search": round(
            sum(rows_per_trial * t.metrics["epochs"] for t in trained) / sum(t.train_seconds for t in trained)
        )
        if trained
        else None,
        "chance": 1 / CLASSES,
    }


def write(rows: list[dict]) -> Path:
    row = rows[0]
    notes = [
        f"A {row['budget_s']:.0f} s search with the engine's defaults (space chosen from the data) on "
        f"{row['images']:,} synthetic colour 32×32 images in 10 classes, on this 2-core CPU, and again on the "
        "GPU where the machine has one (`python -m benchmarks.cnn_scale`). Throughput: training images per "
        "second per epoch.",
        "",
        f"- It completed with a front of {row['front']} models out of {row['trials']} trials; best test accuracy "
        f"{row['best_test_accuracy']} (chance {row['chance']:.2f}).",
        f"- Preparing the upload took {row['prepare_s']} s; training ran at {row['images_per_s_search']} images/s "
        f"over the whole search (median trial {row['images_per_s_median_trial']}).",
        f"- The splits are held as their uint8 pixels, {row['features_mb']} MB (as float32 they would be "
        f"{row['as_float32_mb']} MB): batches are made float as they are drawn. Peak memory of the whole run "
        f"{row['peak_rss_gb']} GB.",
    ]
    for other in rows[1:]:
        notes.append(
            f"- On {other['device']}: {other['images_per_s_search']} images/s over the search "
            f"({other['images_per_s_search'] / max(1, row['images_per_s_search']):.1f}x the CPU), "
            f"{other['trials']} trials, front {other['front']}, best test accuracy {other['best_test_accuracy']}."
        )
    if len(rows) == 1:
        notes.append("- No GPU on this machine: the GPU row is missing (none was lent to this session).")
    return write_table("cnn_scale", rows, title="A CIFAR-sized CNN search on the CPU", notes=notes)


if __name__ == "__main__":
    sys.exit(run_and_print(run, write))
