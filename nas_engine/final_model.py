"""Trained networks as files: build a genome's or an ensemble record's network, and load its weights.

A leaf of the engine: the search, finalize, compress and export all rebuild models through it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from nas_engine.results import is_ensemble
from nas_engine.spaces import space_for_architecture


class EnsembleModel(torch.nn.Module):
    """Averages its members: their softmax probabilities (classification) or outputs (regression).

    For classification it returns the log of the averaged probabilities, so its output is still
    a logit like a single network's: its softmax is the average, argmax and predict.py work
    unchanged, and cross-entropy measures it correctly. One module, so ONNX gets one graph.
    """

    def __init__(self, members: list[torch.nn.Module], *, task: str) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return average_outputs(torch.stack([member(x) for member in self.members]), task=self.task)


def average_outputs(outputs: torch.Tensor, *, task: str) -> torch.Tensor:
    """What ``EnsembleModel`` returns for its members' outputs ``[members, batch, outputs]``."""
    if task == "classification":
        # log(mean(softmax)) without underflow: logsumexp of log-probabilities minus log(k).
        return torch.logsumexp(torch.log_softmax(outputs, dim=-1), dim=0) - math.log(outputs.shape[0])
    return outputs.mean(dim=0)


def _task(architecture: dict, n_outputs: int) -> str:
    return architecture.get("task") or ("classification" if n_outputs > 1 else "regression")


def build_final_model(architecture: dict, *, n_inputs: int, n_outputs: int) -> torch.nn.Module:
    """Build the untrained network of a genome or of an ensemble record's architecture."""
    if not is_ensemble(architecture):
        return space_for_architecture(architecture).build_model(architecture, n_inputs, n_outputs)
    members = [
        space_for_architecture(member).build_model(member, n_inputs, n_outputs)
        for member in architecture["member_architectures"]
    ]
    return EnsembleModel(members, task=_task(architecture, n_outputs))


def load_final_model(architecture: dict, weights_path: str | Path, *, n_inputs: int, n_outputs: int) -> torch.nn.Module:
    """Rebuild a trained network, single genome or ensemble, from its architecture and weights.

    Returns:
        The model in eval mode.
    """
    model = build_final_model(architecture, n_inputs=n_inputs, n_outputs=n_outputs)
    model.load_state_dict(torch.load(weights_path, weights_only=True))
    return model.eval()
