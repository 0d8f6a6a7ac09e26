"""Compression of trained candidates: pruning with a short fine-tune, and int8 quantization of the
exported ONNX graph. Each compressed variant is a new trial that names its parent in its genome.

A variant's genome is its parent's plus ``"compression": {"kind": "prune" | "int8", "ratio": r
(prune only), "parent": n}``; the spaces ignore the extra key, so ``build_model`` still builds it:

* Pruning a plain MLP (hidden layers, no skips) is *structured*: each hidden layer keeps the
  ``1 - ratio`` share of its units whose incoming weights have the largest L1 norm, so the variant
  is simply a smaller MLP (fewer ``units``) with the surviving weights copied in. A residual MLP's
  identity skips tie the unit choice of neighbouring layers together, and a linear model has no
  units to drop, so those MLPs, like every CNN, are pruned *unstructured*: global L1 magnitude
  pruning of all Linear/Conv2d weights (the masks are kept while fine-tuning, then made
  permanent). Their genome is the parent's; the zeros live in the weights.
* int8 keeps the float weights (``trial_{n}.pt``); what ships is the ONNX graph quantized by ONNX
  Runtime's dynamic quantization (int8 weights per tensor, activations quantized per batch at
  run time). Its torch counterpart is :func:`int8_twin`, a float network computing the same
  rounded arithmetic, against which the quantized graph is checked (:func:`int8_parity`).

Costs of a variant: ``params`` counts the nonzero weights (plus every bias and norm parameter),
``flops`` the MACs of the nonzero weights, ``size_bytes`` is ``params * 4`` for pruned variants
(what a sparse format would need at least; a dense ONNX file of an unstructured variant is as
large as its parent's) and, for int8, the bytes of the tensors the quantized graph stores
(:func:`onnx_weight_bytes`), comparable with a float trial's ``params * 4``: the whole file also
holds the graph's structure, which for a network of a few thousand weights outweighs what
quantization saves (``metrics["onnx_file_bytes"]`` and ``["float_onnx_file_bytes"]`` give both).
``latency_ms`` is measured again: torch at batch 1 on one thread for pruned variants (as for
every float trial; zeros do not make dense kernels faster), ONNX Runtime at batch 1 on one thread
for int8, the runtime that executes the integer kernels; ``metrics["float_onnx_latency_ms"]``
gives the parent's float graph under the same runtime for a fair comparison.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import fusion
from torch.nn.utils import prune as torch_prune

from nas_engine.errors import ConstraintError
from nas_engine.evaluator import Trainer, TrainSettings, evaluate_model, measure_latency_ms, one_thread, predict_raw
from nas_engine.final_model import load_final_model
from nas_engine.onnx_io import export_onnx
from nas_engine.prepare import PreparedData
from nas_engine.results import Costs, TrialResult, TrialStatus, is_ensemble
from nas_engine.runtime import softmax
from nas_engine.spaces import space_for_architecture

KINDS = ("prune", "int8")
WEIGHT_LEVELS = 64  # int8 weights use -64..64 (quantize_onnx's reduce_range), the twin the same
VARIANTS: tuple[tuple[str, float | None], ...] = (("prune", 0.5), ("prune", 0.75), ("int8", None))
# Largest difference in class probability (classification) or in standardised output, i.e. in
# target standard deviations (regression), allowed between the int8 ONNX graph and its torch twin.
# The twin repeats ONNX Runtime's rounding; measured worst gaps are 6e-8 (MLPs) and 3e-3 (a digits
# CNN), while the unquantized float network is 0.025-0.08 away from the int8 graph: so 0.02 passes
# a faithful twin with a wide margin yet fails one that skipped the quantization. A bound t on
# probabilities also bounds label flips: a row's labels can differ only where the twin's top two
# classes are within 2t, so no separate share-of-agreeing-labels floor is applied (on the 16 rows of
# a synthetic check, one such near-tie would already be 6%).
INT8_TOLERANCE = 0.02
_PRUNED_TYPES = (nn.Linear, nn.Conv2d)


def compression_of(architecture: dict) -> dict | None:
    """The genome's ``"compression"`` entry, or None for a network as the search trained it."""
    return architecture.get("compression")


def is_int8(architecture: dict) -> bool:
    """True when the genome is an int8 variant (its bundle ships the quantized ONNX graph)."""
    return (compression_of(architecture) or {}).get("kind") == "int8"


def describe_compression(compression: dict) -> str:
    """One readable line, e.g. ``Compressed from trial 4: 50% of weights pruned, fine-tuned``."""
    if compression["kind"] == "int8":
        what = "int8 weights (ONNX Runtime dynamic quantization)"
    else:
        what = f"{compression['ratio']:.0%} of weights pruned, fine-tuned"
    return f"Compressed from trial {compression['parent']}: {what}"


def _check_ratio(ratio: float | None) -> float:
    if ratio is None or not 0.0 < ratio < 1.0:
        raise ConstraintError(f"A pruning ratio must lie strictly between 0 and 1 (got {ratio}).")
    return float(ratio)


def compressible(arch: dict) -> bool:
    """Whether ``compress_trial`` takes this genome: plain networks, not boosted trees (their
    weights are split points and leaf values) nor embeddings or TabM-style ensembles."""
    if arch.get("space") == "trees":
        return False
    return not (arch.get("space") == "tabular" and _tabm_or_embedded(arch))


def _tabm_or_embedded(arch: dict) -> bool:
    return arch.get("embed", "none") != "none" or int(arch.get("members", 1)) > 1


def _structured(arch: dict) -> bool:
    return (
        arch.get("space", "mlp") in ("mlp", "tabular") and bool(arch.get("layers")) and not arch.get("residual", False)
    )


def kept_units(units: int, ratio: float) -> int:
    """Units a hidden layer keeps when ``ratio`` of them are pruned (at least one)."""
    return max(1, round((1.0 - ratio) * units))


# --- pruning ----------------------------------------------------------------------------------


def prune(
    model: nn.Module, arch: dict, ratio: float, data: PreparedData, *, seed: int, epochs: int = 3
) -> tuple[nn.Module, dict]:
    """Prune ``ratio`` of a trained network's weights, then fine-tune it for a few epochs.

    Structured for plain MLPs (fewer units per hidden layer), unstructured magnitude pruning for
    residual MLPs, linear models and CNNs (see the module docstring). The fine-tune uses the
    genome's training settings on ``data.X_train`` and keeps the epoch with the lowest validation
    loss.

    Args:
        model: The trained network (left unchanged).
        arch: Its genome.
        ratio: Share of units (structured) or weights (unstructured) to remove, in (0, 1).
        data: The prepared splits the network was trained on.
        seed: Seed of the fine-tune's batch order and dropout.
        epochs: Fine-tuning epochs.

    Returns:
        The pruned, fine-tuned network (eval mode) and the genome that builds it (fewer ``units``
        when structured, else ``arch``), without a ``"compression"`` entry.

    Raises:
        ConstraintError: The ratio is not in (0, 1).
        FloatingPointError: Fine-tuning diverged.
    """
    ratio = _check_ratio(ratio)
    if _structured(arch):
        model, arch = _prune_units(model, arch, ratio, data.n_features, data.n_outputs)
    else:
        model = copy.deepcopy(model)
        targets = [(module, "weight") for module in model.modules() if isinstance(module, _PRUNED_TYPES)]
        if not targets:
            raise ConstraintError("This network has no layer that magnitude pruning applies to.")
        torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=ratio)
    trainer = Trainer(
        model,
        X_train=data.X_train,
        y_train=data.y_train,
        task=data.task,
        settings=TrainSettings.from_architecture(arch),
        seed=seed,
        validation=(data.X_val, data.y_val),
        target_std=data.preprocessing["target"].get("std", 1.0),
        target=data.preprocessing["target"],
    )
    with one_thread():
        trainer.train(until_epoch=max(1, epochs))
    model = trainer.finish().model
    for module in model.modules():
        if torch_prune.is_pruned(module) and isinstance(module, _PRUNED_TYPES):
            torch_prune.remove(module, "weight")  # weight = weight_orig * mask, hooks gone
    return model.eval(), arch


def _prune_units(model: nn.Module, arch: dict, ratio: float, n_in: int, n_out: int) -> tuple[nn.Module, dict]:
    """Keep each hidden layer's units with the largest L1 norm of incoming weights; copy them into
    the smaller MLP that the pruned genome builds."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]  # hidden layers, then the head
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm))]
    pruned = copy.deepcopy(arch)
    kept = []
    for layer, linear in zip(pruned["layers"], linears, strict=False):
        layer["units"] = kept_units(linear.out_features, ratio)
        scores = linear.weight.detach().abs().sum(dim=1)
        kept.append(torch.topk(scores, layer["units"]).indices.sort().values)
    smaller = space_for_architecture(pruned).build_model(pruned, n_in, n_out)
    new_linears = [m for m in smaller.modules() if isinstance(m, nn.Linear)]
    new_norms = [m for m in smaller.modules() if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm))]
    with torch.no_grad():
        columns: torch.Tensor | None = None  # the previous layer's surviving units (None: all inputs)
        for i, (old, new) in enumerate(zip(linears, new_linears, strict=True)):
            rows = kept[i] if i < len(kept) else torch.arange(old.out_features)
            weight = old.weight[rows]
            new.weight.copy_(weight if columns is None else weight[:, columns])
            new.bias.copy_(old.bias[rows])
            columns = rows
        for old_norm, new_norm, rows in zip(norms, new_norms, kept if norms else [], strict=True):
            for name, tensor in [*old_norm.named_parameters(), *old_norm.named_buffers()]:
                if tensor.dim() == 1:  # weight, bias, running mean and variance (not the batch count)
                    getattr(new_norm, name).copy_(tensor[rows])
                else:
                    getattr(new_norm, name).copy_(tensor)
    return smaller, pruned


def zero_fraction(model: nn.Module) -> float:
    """Share of exact zeros among the Linear and Conv2d weights (what pruning targets)."""
    weights = [m.weight.detach() for m in model.modules() if isinstance(m, _PRUNED_TYPES)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


def measured_costs(model: nn.Module, arch: dict, n_inputs: int, n_outputs: int) -> Costs:
    """The genome's analytic costs less what zero weights cost: ``params`` and ``size_bytes`` drop
    by the zeros among Linear/Conv2d weights, ``flops`` by their MACs (a zero conv weight saves
    one MAC per output position). Latency is not measured here."""
    costs = space_for_architecture(arch).costs(arch, n_inputs, n_outputs)
    targets = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    positions: dict[nn.Module, int] = {}  # output positions per sample: 1 for a Linear, H*W for a conv
    hooks = [
        m.register_forward_hook(lambda mod, _i, out: positions.__setitem__(mod, int(np.prod(out.shape[2:]))))
        for m in targets
    ]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(2, n_inputs))
    finally:
        for hook in hooks:
            hook.remove()
    zeros = [int((m.weight == 0).sum()) for m in targets]
    saved_macs = sum(count * positions[m] for m, count in zip(targets, zeros, strict=True))
    zeros_total = sum(zeros)
    params = costs.params - zeros_total
    return dataclasses.replace(costs, params=params, flops=costs.flops - saved_macs, size_bytes=params * 4)


# --- int8 -------------------------------------------------------------------------------------


class _DropPreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_onnx(float_onnx_path: str | Path, out_path: str | Path) -> Path:
    """Quantize an ONNX graph to int8 with ONNX Runtime's dynamic quantization.

    Weights of MatMul/Gemm and Conv become 7-bit int8 (symmetric, one scale per tensor, -64..64:
    ``reduce_range``); activations are
    quantized to uint8 at run time from each batch's range (``DynamicQuantizeLinear``), so the
    graph runs the integer kernels ``MatMulInteger`` and ``ConvInteger`` on any CPU.

    Returns:
        ``out_path``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Its advice to pre-process (shape inference, graph fusions) does not apply to our small graphs.
    hint = _DropPreprocessingHint()
    logging.getLogger().addFilter(hint)
    try:
        # reduce_range: x86 kernels without VNNI multiply uint8 by int8 in pairs that saturate at
        # int16 (VPMADDUBSW), so full-range weights made a linear model's logit -9.1 instead of -15.0;
        # 7-bit weights cannot saturate (ONNX Runtime's own advice), and the twin rounds the same way.
        quantize_dynamic(str(float_onnx_path), str(out_path), weight_type=QuantType.QInt8, reduce_range=True)
    finally:
        logging.getLogger().removeFilter(hint)
    return Path(out_path)


def _fake_quantize_input(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """DynamicQuantizeLinear and back: uint8 over the batch's range extended to include 0."""
    x = inputs[0]
    low, high = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    # No branch on the value (an all-zero batch has scale 0): a traced twin must not bake one in.
    scale = torch.clamp((high - low) / 255.0, min=torch.finfo(torch.float32).tiny)
    zero_point = torch.clamp(torch.round(-low / scale), 0, 255)
    return ((torch.clamp(torch.round(x / scale) + zero_point, 0, 255) - zero_point) * scale,)


def _fold_batch_norms(module: nn.Module) -> None:
    """Fold each batch-norm into the Linear/Conv2d before it, as the ONNX exporter does, so the
    twin quantizes the same weights the exported graph holds."""
    for child in module.children():
        _fold_batch_norms(child)
    if not isinstance(module, nn.Sequential):
        return
    for i in range(len(module) - 1):
        first, second = module[i], module[i + 1]
        if isinstance(first, nn.Linear) and isinstance(second, nn.BatchNorm1d):
            module[i], module[i + 1] = fusion.fuse_linear_bn_eval(first, second), nn.Identity()
        elif isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
            module[i], module[i + 1] = fusion.fuse_conv_bn_eval(first, second), nn.Identity()


def int8_twin(model: nn.Module) -> nn.Module:
    """The torch network that computes what :func:`quantize_onnx` makes of ``model``'s ONNX graph.

    Batch-norms are folded into the layer before them, every Linear/Conv2d weight is rounded to
    int8 with one symmetric 7-bit scale per tensor (``max|w| / 64``, as ``quantize_onnx`` does), and
    every Linear/Conv2d input is rounded to uint8 over its batch's range, all in float32. torch has no dynamic int8
    convolution, and its dynamic int8 Linear quantizes activations to 7 bits and does not fold
    batch-norm, so a fake-quantized float twin matches ONNX Runtime far more closely.

    Returns:
        A new network in eval mode; ``model`` is left unchanged.
    """
    twin = copy.deepcopy(model).eval()
    _fold_batch_norms(twin)
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, _PRUNED_TYPES):
                scale = module.weight.abs().max() / WEIGHT_LEVELS
                if float(scale) > 0:
                    levels = torch.clamp(torch.round(module.weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS)
                    module.weight.copy_(levels * scale)
                module.register_forward_pre_hook(_fake_quantize_input)
    return twin


class OnnxModel(nn.Module):
    """An ONNX file run by ONNX Runtime behind the torch module interface, so ``evaluate_model`` and
    ``predict_raw`` score exactly what a bundle ships."""

    def __init__(self, onnx_path: str | Path) -> None:
        super().__init__()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(["output"], {"input": x.numpy()})[0])


def int8_parity(twin: nn.Module, onnx_path: str | Path, X: np.ndarray, *, task: str) -> dict:
    """Compare the int8 ONNX graph with its torch twin on ``X`` (both in the same batches, since the
    activation scale depends on the batch).

    Returns:
        ``max_abs_diff`` (of class probabilities, or of standardised outputs for regression),
        ``agreement`` (share of rows with the same label, or within the tolerance for regression),
        ``tolerance`` and ``passed`` (``max_abs_diff <= tolerance``).
    """
    onnx_out = predict_raw(OnnxModel(onnx_path), X).astype(np.float64)
    twin_out = predict_raw(twin, X).astype(np.float64)
    if task == "classification":
        diff = np.abs(softmax(onnx_out) - softmax(twin_out))
        agreement = float(np.mean(onnx_out.argmax(axis=1) == twin_out.argmax(axis=1)))
    else:
        diff = np.abs(onnx_out - twin_out)
        agreement = float(np.mean(diff.max(axis=1) <= INT8_TOLERANCE))
    max_abs_diff = float(diff.max()) if diff.size else 0.0
    return {
        "max_abs_diff": max_abs_diff,
        "agreement": agreement,
        "tolerance": INT8_TOLERANCE,
        "passed": max_abs_diff <= INT8_TOLERANCE,
    }


def onnx_weight_bytes(onnx_path: str | Path) -> int:
    """Bytes of the tensors stored in an ONNX graph (weights, biases, scales, zero points), without
    the graph's structure and names: the int8 counterpart of a float network's ``params * 4``."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    return sum(numpy_helper.to_array(tensor).nbytes for tensor in graph.initializer)


def measure_onnx_latency_ms(onnx_path: str | Path, n_features: int, *, runs: int = 30, warmup: int = 5) -> float:
    """Median time of one single-row run of an ONNX graph by ONNX Runtime on one CPU thread (the
    ONNX counterpart of ``evaluator.measure_latency_ms``).

    Returns:
        Milliseconds.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    x = np.zeros((1, n_features), dtype=np.float32)
    timings = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        session.run(["output"], {"input": x})
        if i >= warmup:
            timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)


# --- variants as trials -----------------------------------------------------------------------


def variant_architecture(arch: dict, *, kind: str, ratio: float | None, parent: int) -> dict:
    """``arch`` with its ``"compression"`` entry set (any earlier one replaced: ``parent`` leads on)."""
    compression: dict = {"kind": kind, "parent": parent}
    if kind == "prune":
        compression["ratio"] = ratio
    return {**arch, "compression": compression}


def compress_trial(
    parent: TrialResult,
    data: PreparedData,
    *,
    kind: str,
    ratio: float | None,
    number: int,
    artifacts_dir: str | Path,
    seed: int,
    fine_tune_epochs: int = 3,
) -> TrialResult:
    """Compress a trained trial into a new trial linked to it.

    Loads the parent's weights (trained on the train split during the search), prunes and
    fine-tunes it or quantizes it, scores the variant on the validation split (for int8, the
    quantized ONNX graph run by ONNX Runtime: what ships), saves its weights as
    ``trial_{number}.pt`` (for int8 the float weights; the bundle derives the int8 graph) and
    measures its costs again (see the module docstring).

    Args:
        parent: A completed trial with saved weights.
        data: The prepared splits the search used.
        kind: ``"prune"`` or ``"int8"``.
        ratio: Share to prune, in (0, 1); None for int8.
        number: The new trial's number.
        artifacts_dir: Where to write the weights.
        seed: Seed of the fine-tune.
        fine_tune_epochs: Epochs of fine-tuning after pruning.

    Returns:
        A completed trial whose ``metrics`` hold the validation metrics plus ``parent``,
        ``compression`` (the kind), ``ratio`` and the parent's ``best_epoch``.

    Raises:
        ConstraintError: Unknown kind, bad ratio, a parent without weights, an ensemble parent, or
            pruning an int8 variant.
        FloatingPointError: Fine-tuning diverged.
    """
    if kind not in KINDS:
        raise ConstraintError(f"Unknown compression '{kind}'; use one of: {', '.join(KINDS)}.")
    arch = parent.architecture
    if arch.get("space") == "tabular" and _tabm_or_embedded(arch):
        raise ConstraintError("Compression applies to plain networks, not to embeddings or TabM-style ensembles.")
    if not compressible(arch):
        raise ConstraintError("Boosted trees are not compressed: pruning or int8 would move their split points.")
    if parent.status is not TrialStatus.COMPLETED or parent.weights_path is None:
        raise ConstraintError(f"Trial {parent.number} has no trained weights to compress.")
    if is_ensemble(parent.architecture):
        raise ConstraintError("Ensembles are not compressed; compress their member trials instead.")
    if is_int8(parent.architecture):
        raise ConstraintError(f"Trial {parent.number} is already int8; quantize as the last step.")
    if kind == "prune":
        ratio = _check_ratio(ratio)
    n_in, n_out = data.n_features, data.n_outputs
    std = data.preprocessing["target"].get("std", 1.0)
    start = time.monotonic()
    model = load_final_model(parent.architecture, parent.weights_path, n_inputs=n_in, n_outputs=n_out)
    extra: dict = {}
    if kind == "prune":
        assert ratio is not None  # checked above
        model, pruned = prune(model, parent.architecture, ratio, data, seed=seed, epochs=fine_tune_epochs)
        arch = variant_architecture(pruned, kind=kind, ratio=ratio, parent=parent.number)
        metrics = evaluate_model(
            model, data.X_val, data.y_val, task=data.task, target_std=std, target=data.preprocessing["target"]
        )
        costs = dataclasses.replace(
            measured_costs(model, arch, n_in, n_out), latency_ms=measure_latency_ms(model, n_in)
        )
    else:
        arch = variant_architecture(parent.architecture, kind=kind, ratio=None, parent=parent.number)
        with tempfile.TemporaryDirectory() as tmp:
            float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
            export_onnx(model, n_in, float_path)
            quantize_onnx(float_path, int8_path)
            metrics = evaluate_model(
                OnnxModel(int8_path),
                data.X_val,
                data.y_val,
                task=data.task,
                target_std=std,
                target=data.preprocessing["target"],
            )
            dense = measured_costs(model, arch, n_in, n_out)
            stored = onnx_weight_bytes(int8_path)
            costs = dataclasses.replace(
                dense,
                size_bytes=stored,
                latency_ms=measure_onnx_latency_ms(int8_path, n_in),
                # The weights are held as the quantized graph stores them; activations stay float.
                memory_bytes=None if dense.memory_bytes is None else dense.memory_bytes - dense.size_bytes + stored,
            )
            extra = {
                "float_onnx_latency_ms": measure_onnx_latency_ms(float_path, n_in),
                "onnx_file_bytes": int8_path.stat().st_size,
                "float_onnx_file_bytes": float_path.stat().st_size,
            }
    weights_path = Path(artifacts_dir) / f"trial_{number}.pt"
    torch.save(model.state_dict(), weights_path)
    metrics = {
        **metrics,
        **extra,
        "parent": parent.number,
        "compression": kind,
        "ratio": ratio if kind == "prune" else None,
        "best_epoch": parent.metrics.get("best_epoch", parent.metrics.get("epochs", 1)),
    }
    return TrialResult(
        number=number,
        status=TrialStatus.COMPLETED,
        architecture=arch,
        arch_hash=space_for_architecture(arch).arch_hash(arch),
        metrics=metrics,
        costs=costs,
        train_seconds=time.monotonic() - start,
        message=describe_compression(arch["compression"]) + ".",
        weights_path=str(weights_path),
    )
