"""ONNX I/O: a trained torch network written as an ONNX graph. A leaf, so that compress (which
quantizes that graph) and export (which ships it) both build on it without importing each other."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch


def export_onnx(model: torch.nn.Module, n_features: int, path: Path) -> None:
    """Write ``model`` as one ONNX graph taking a float32 [batch, n_features] ``input`` (any batch size)."""
    # The exporter logs noise about torchvision ops we never use; keep a user's console clean.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    example = torch.zeros(2, n_features)  # batch 2: a batch of 1 would be specialised as a constant
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
            external_data=False,
        )
