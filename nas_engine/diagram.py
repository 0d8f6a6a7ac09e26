"""How a genome reads and draws: ``describe_architecture``'s readable layer lines (architecture.json,
the model card, the downloads) and ``layer_diagram``'s boxes from input to prediction (the model
page), whose parameter counts and shapes come from the built network itself."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from nas_engine import compress
from nas_engine.results import is_ensemble
from nas_engine.spaces import space_for_architecture


def describe_architecture(architecture: dict) -> list[str]:
    """Readable layer lines of a genome, or of each member of an ensemble."""
    if is_ensemble(architecture):
        lines = [f"Ensemble of {len(architecture['member_architectures'])} networks (outputs averaged)"]
        for number, member in zip(architecture["members"], architecture["member_architectures"], strict=True):
            lines += [f"Member: trial {number}"] + [f"  {line}" for line in describe_architecture(member)]
        return lines
    lines = space_for_architecture(architecture).describe(architecture)
    compression = compress.compression_of(architecture)
    return [*lines, compress.describe_compression(compression)] if compression else lines


@dataclass(frozen=True)
class LayerBox:
    """One box of a layer diagram (the model page draws them in order, input first, output last).

    ``kind`` is one of input, dense, stem, stage, pool, head, ensemble, output. ``params`` is the
    number of weights the box holds (None where it holds none); ``shape`` is what it hands on,
    e.g. ``"64"`` or ``"32×4×4"``. An ensemble box holds its member networks as ``branches``.
    """

    kind: str
    title: str
    details: tuple[str, ...] = ()
    params: int | None = None
    shape: str = ""
    branches: tuple[Branch, ...] = ()


@dataclass(frozen=True)
class Branch:
    """One member network of an ensemble: its trial number, weights and layer boxes."""

    number: int
    params: int
    boxes: tuple[LayerBox, ...]


_BLOCK_WORDS = {"conv": "convolution", "residual": "residual block", "inverted": "inverted bottleneck"}
_NORM_WORDS = {"batch": "batch-norm", "layer": "layer-norm"}


def layer_diagram(architecture: dict, preprocessing: dict) -> tuple[LayerBox, ...]:
    """The layers of a genome (or of each member of an ensemble) as boxes from input to prediction.

    Parameter counts and shapes come from the built network itself (one forward pass of two zero
    rows), so they are what the trained model holds, not a second formula to keep in step.

    Args:
        architecture: The genome, or an ensemble record's architecture.
        preprocessing: The ``preprocessing`` dict the model was trained with.
    """
    n_in = preprocessing["n_features"]
    n_out = len(preprocessing["target"].get("labels", [])) or 1
    boxes = [_input_box(architecture, preprocessing)]
    if is_ensemble(architecture):
        branches = tuple(
            Branch(number=number, params=sum(b.params or 0 for b in inner), boxes=inner)
            for number, member in zip(architecture["members"], architecture["member_architectures"], strict=True)
            for inner in [_network_boxes(member, n_in, n_out)]
        )
        averaged = "class probabilities" if preprocessing["task"] == "classification" else "outputs"
        boxes.append(
            LayerBox(
                kind="ensemble",
                title=f"Ensemble of {len(branches)} networks",
                details=("every network sees the same input", f"their {averaged} are averaged"),
                params=sum(b.params for b in branches),
                shape=str(n_out),
                branches=branches,
            )
        )
    else:
        boxes += _network_boxes(architecture, n_in, n_out)
    return (*boxes, _output_box(preprocessing))


def _input_box(architecture: dict, preprocessing: dict) -> LayerBox:
    features = preprocessing["features"]
    n_in = preprocessing["n_features"]
    spaces = {m.get("space", "mlp") for m in architecture.get("member_architectures", [architecture])}
    shape = next(
        (m["input_shape"] for m in architecture.get("member_architectures", [architecture]) if "input_shape" in m), None
    )
    if shape is not None and spaces == {"cnn"}:
        side = "×".join(map(str, shape))
        return LayerBox(
            kind="input", title="Input image", details=(f"{side} pixels from {len(features)} columns",), shape=side
        )
    categorical = sum(f["kind"] != "numeric" for f in features)
    split = f": {len(features) - categorical} numeric, {categorical} categorical" if categorical else ", all numeric"
    details = [f"{len(features)} columns{split}"]
    if n_in != len(features):
        details.append(f"encoded as {n_in} numbers (categories one-hot)")
    return LayerBox(kind="input", title="Input", details=tuple(details), shape=str(n_in))


def _output_box(preprocessing: dict) -> LayerBox:
    target = preprocessing["target"]
    if preprocessing["task"] != "classification":
        return LayerBox(kind="output", title=f"Prediction: {target['name']}", details=("a number",), shape="1")
    labels = target["labels"]
    shown = ", ".join(labels[:10]) + (f", … ({len(labels)} in all)" if len(labels) > 10 else "")
    return LayerBox(
        kind="output",
        title=f"Prediction: {target['name']}",
        details=(f"one of {len(labels)} classes: {shown}", "the most probable class (softmax)"),
        shape=str(len(labels)),
    )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def _built_children(architecture: dict, n_in: int, n_out: int) -> list[tuple[torch.nn.Module, int, str]]:
    """(module, parameters, output shape) of each top-level module of the built network, in order;
    a network with no parts (boosted trees) is its own one part."""
    model = space_for_architecture(architecture).build_model(architecture, n_in, n_out).eval()
    children = list(model.children()) or [model]
    shapes: list[str] = []
    hooks = [
        child.register_forward_hook(lambda _m, _i, out: shapes.append(_shape_text(tuple(out.shape[1:]))))
        for child in children
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(2, n_in))  # two rows: batch-norm layers want more than one
    finally:
        for hook in hooks:
            hook.remove()
    return [
        (child, sum(p.numel() for p in child.parameters()), shape)
        for child, shape in zip(children, shapes, strict=True)
    ]


def _network_boxes(architecture: dict, n_in: int, n_out: int) -> tuple[LayerBox, ...]:
    diagram = space_for_architecture(architecture).diagram
    if diagram == "tabular":
        return _tabular_boxes(architecture, n_in, n_out)
    children = _built_children(architecture, n_in, n_out)
    if diagram == "cnn":
        return _cnn_boxes(architecture, children, n_out)
    if diagram == "mlp":
        return _mlp_boxes(architecture, children, n_out)
    if len(children) == 1 and not any(children[0][0].children()):  # one part (boosted trees): the space's words
        space = space_for_architecture(architecture)
        _, params, shape = children[0]
        details = tuple(space.describe(architecture))
        return (LayerBox(kind="head", title=space.words[0], details=details, params=params, shape=shape),)
    return _module_boxes(children)


def _module_boxes(children: list[tuple[torch.nn.Module, int, str]]) -> tuple[LayerBox, ...]:
    """A space with no drawing of its own: a box per top-level module that holds weights, the
    weightless ones after it (activations, dropout) as its details; the last is the output layer."""
    boxes: list[LayerBox] = []
    for module, params, shape in children:
        name = type(module).__name__
        if params or not boxes:
            boxes.append(LayerBox(kind="dense", title=f"{name} {shape}", params=params or None, shape=shape))
        else:
            boxes[-1] = dataclasses.replace(boxes[-1], details=(*boxes[-1].details, name.lower()), shape=shape)
    return (*boxes[:-1], dataclasses.replace(boxes[-1], kind="head"))


def _tabular_boxes(architecture: dict, n_in: int, n_out: int) -> tuple[LayerBox, ...]:
    """The tabular space's network: [periodic embedding] → [TabM-style members] → the hidden layers
    (boxed as the MLP space's) → the members' heads. A plain genome builds an MLP as it is."""
    from nas_engine.spaces.tabular import EMBED_DIM, EMBED_FREQUENCIES, tabular_defaults

    arch = tabular_defaults(architecture)
    model = space_for_architecture(arch).build_model(arch, n_in, n_out).eval()
    if isinstance(model, torch.nn.Sequential):
        return _mlp_boxes(arch, _built_children(arch, n_in, n_out), n_out)
    boxes: list[LayerBox] = []
    width = n_in
    if model.embedding is not None:
        width = n_in * EMBED_DIM
        details = (f"{EMBED_FREQUENCIES} learned frequencies per column", f"{EMBED_DIM} numbers per column")
        params = sum(p.numel() for p in model.embedding.parameters())
        boxes.append(
            LayerBox(kind="dense", title="Periodic embedding", details=details, params=params, shape=str(width))
        )
    k = arch["members"]
    if model.scaling is not None:
        details = ("the members share the hidden layers", "each scales the input by its own vector")
        boxes.append(
            LayerBox(
                kind="dense", title=f"{k} ensemble members", details=details, params=k * width, shape=f"{k}×{width}"
            )
        )
    backbone = list(model.backbone.children())
    shapes: list[str] = []
    hooks = [
        c.register_forward_hook(lambda _m, _i, out: shapes.append(_shape_text(tuple(out.shape[1:])))) for c in backbone
    ]
    try:
        with torch.inference_mode():
            model.backbone(torch.zeros(2, width))
    finally:
        for hook in hooks:
            hook.remove()
    children = [(c, sum(p.numel() for p in c.parameters()), shape) for c, shape in zip(backbone, shapes, strict=True)]
    head_params = model.head_weight.numel() + model.head_bias.numel()
    children.append((torch.nn.Linear(1, 1), head_params, str(n_out)))  # the heads, where the MLP has its last Linear
    *hidden, head = _mlp_boxes(arch, children, n_out)
    averaged = ("one head per member, their predictions averaged",) if k > 1 else ()
    return (*boxes, *hidden, dataclasses.replace(head, details=(*averaged, *head.details)))


def _head_box(children: list[tuple[torch.nn.Module, int, str]], n_out: int, details: tuple[str, ...]) -> LayerBox:
    _, params, shape = children[-1]
    what = "one score per class" if n_out > 1 else "one value"
    return LayerBox(
        kind="head", title=f"Dense {n_out} (output layer)", details=(*details, what), params=params, shape=shape
    )


def _mlp_boxes(architecture: dict, children: list, n_out: int) -> tuple[LayerBox, ...]:
    # A hidden layer is built as Linear → norm → activation → dropout, or as one Residual module
    # around them; so a new layer starts at each Linear or Residual, and the last Linear is the head.
    from nas_engine.spaces.blocks import residual_class

    starts = [i for i, (child, _, _) in enumerate(children) if isinstance(child, (torch.nn.Linear, residual_class()))]
    norm = _NORM_WORDS.get(architecture.get("norm", "none"))
    boxes = []
    for layer, start, end in zip(architecture["layers"], starts[:-1], starts[1:], strict=True):
        details = [layer["activation"], *([norm] if norm else [])]
        details += [f"dropout {layer['dropout']:g}"] if layer["dropout"] else []
        details += ["skip connection around it"] if architecture.get("residual") else []
        params = sum(p for _, p, _ in children[start:end])
        boxes.append(
            LayerBox(
                kind="dense",
                title=f"Dense {layer['units']}",
                details=tuple(details),
                params=params,
                shape=children[end - 1][2],
            )
        )
    linear = () if architecture["layers"] else ("a linear model: no hidden layer",)
    return (*boxes, _head_box(children, n_out, linear))


def _cnn_boxes(architecture: dict, children: list, n_out: int) -> tuple[LayerBox, ...]:
    # Built as: unflatten, stem, one module per block (stage by stage), pooling, flatten,
    # [dropout], Linear head.
    act = architecture["activation"]
    _, stem_params, stem_shape = children[1]
    stem = architecture["stem"]["channels"]
    boxes = [
        LayerBox(
            kind="stem",
            title=f"Stem: conv 3×3, {stem} channels",
            details=("batch-norm", act),
            params=stem_params,
            shape=stem_shape,
        )
    ]
    index, shape = 2, stem_shape
    for number, stage in enumerate(architecture["stages"], start=1):
        blocks = children[index : index + stage["blocks"]]
        index += stage["blocks"]
        kind = _BLOCK_WORDS[stage["block"]] + ("s" if stage["blocks"] > 1 else "")
        before, shape = shape, blocks[-1][2]
        details = [f"kernel {stage['kernel']}×{stage['kernel']}", f"{stage['channels']} channels", act]
        details += [f"expansion {stage['expansion']}"] if stage["block"] == "inverted" else []
        sides = before.split("×", 1)[1], shape.split("×", 1)[1]
        details.append(f"downsamples {sides[0]} → {sides[1]}" if sides[0] != sides[1] else f"keeps {sides[1]}")
        boxes.append(
            LayerBox(
                kind="stage",
                title=f"Stage {number}: {stage['blocks']} × {kind}",
                details=tuple(details),
                params=sum(p for _, p, _ in blocks),
                shape=shape,
            )
        )
    boxes.append(
        LayerBox(
            kind="pool",
            title="Global average pooling",
            details=("one number per channel",),
            shape=children[index + 1][2],
        )
    )
    dropout = architecture["head"]["dropout"]
    return (*boxes, _head_box(children, n_out, (f"dropout {dropout:g}",) if dropout else ()))
