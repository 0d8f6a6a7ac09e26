"""The model card: what a model is, how good it is, its limits and how to run it.

It is built once as a small structure (sections of paragraphs, bullet lists, key/value tables and
code blocks) that two writers render: ``to_markdown`` for the bundle's MODEL_CARD.md, and the
model page's template for HTML, so the two never say different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nas_engine.results import Costs

_SPACE_WORDS = {
    "mlp": ("A multi-layer perceptron", "tabular data"),
    "cnn": ("A convolutional network", "images given as pixel columns"),
}


@dataclass(frozen=True)
class Span:
    """A run of text inside a paragraph; ``style`` is ``""``, ``"strong"`` or ``"code"``."""

    text: str
    style: str = ""

    def to_markdown(self) -> str:
        return {"strong": f"**{self.text}**", "code": f"`{self.text}`"}.get(self.style, self.text)


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"  # read by the template, which cannot test a block's class
    spans: tuple[Span, ...]

    def to_markdown(self) -> str:
        return "".join(span.to_markdown() for span in self.spans)


@dataclass(frozen=True)
class Bullets:
    kind: ClassVar[str] = "bullets"
    items: tuple[str, ...]

    def to_markdown(self) -> str:
        return "\n".join(f"- {item}" for item in self.items)


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    header: tuple[str, str]
    rows: tuple[tuple[str, str], ...]

    def to_markdown(self) -> str:
        lines = [f"| {self.header[0]} | {self.header[1]} |", "|---|---|"]
        return "\n".join(lines + [f"| {key} | {value} |" for key, value in self.rows])


@dataclass(frozen=True)
class CodeBlock:
    kind: ClassVar[str] = "code"
    text: str

    def to_markdown(self) -> str:
        return f"```\n{self.text}\n```"


Block = Paragraph | Bullets | Table | CodeBlock


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class ModelCard:
    """A model card as data: a title, an introduction and titled sections."""

    title: str
    intro: tuple[Block, ...]
    sections: tuple[Section, ...]

    def to_markdown(self) -> str:
        parts = [f"# {self.title}", *(block.to_markdown() for block in self.intro)]
        for section in self.sections:
            parts += [f"## {section.title}", *(block.to_markdown() for block in section.blocks)]
        return "\n\n".join(parts) + "\n"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric_rows(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    # Callers nest groups ({"validation": {...}, "test": {...}}); show them as dotted names.
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", _fmt(value)))
    return rows


def _what_it_is(architecture: dict) -> tuple[str, str]:
    """(what kind of network, from what kind of data) in words, for the card's first sentence."""
    if architecture.get("space") == "ensemble":
        members = architecture["member_architectures"]
        _, data = _SPACE_WORDS.get(members[0].get("space", "mlp"), _SPACE_WORDS["mlp"])
        return f"An ensemble of {len(members)} networks (their predictions averaged)", data
    return _SPACE_WORDS.get(architecture.get("space", "mlp"), _SPACE_WORDS["mlp"])


def build_model_card(
    *, architecture: dict, layers: list[str], preprocessing: dict, metrics: dict, costs: Costs, dataset_name: str = ""
) -> ModelCard:
    """The model card of one trained model, as data.

    Args:
        architecture: The genome (or an ensemble's record).
        layers: Readable layer lines (``describe_architecture``).
        preprocessing: The ``preprocessing`` dict it was trained with.
        metrics: Metrics to list; nested dicts become dotted names (``validation.accuracy``).
        costs: Parameters, FLOPs, size and latency.
        dataset_name: Name of the training file.
    """
    task, target = preprocessing["task"], preprocessing["target"]["name"]
    features = preprocessing["feature_columns"]
    kind, data = _what_it_is(architecture)
    opening = [Span(f"{kind} found by NAS Studio's architecture search, predicting "), Span(target, "strong")]
    opening.append(Span(f" ({task}) from {data}"))
    opening += [Span(" ("), Span(dataset_name, "code"), Span(").")] if dataset_name else [Span(".")]
    intro: list[Block] = [Paragraph(tuple(opening))]
    if task == "classification":
        intro.append(Paragraph((Span(f"Classes: {', '.join(preprocessing['target']['labels'])}."),)))
    latency = "not measured" if costs.latency_ms is None else f"{costs.latency_ms:.3f} ms"
    memory = "not computed" if costs.memory_bytes is None else f"{costs.memory_bytes:,} bytes"
    sections = (
        Section("Architecture", (Bullets(tuple(layers)),)),
        Section(
            "Metrics",
            (
                Paragraph(
                    (Span("Measured on data the model did not train on (validation split; test split where given)."),)
                ),
                Table(("metric", "value"), tuple(_metric_rows(metrics))),
            ),
        ),
        Section(
            "Costs",
            (
                Bullets(
                    (
                        f"Parameters: {costs.params:,}",
                        f"FLOPs (multiply-adds per row): {costs.flops:,}",
                        f"Size (float32 weights): {costs.size_bytes:,} bytes",
                        f"Peak memory (1 row: weights and activations): {memory}",
                        f"Latency (1 row, 1 CPU thread): {latency}",
                    )
                ),
            ),
        ),
        Section(
            "Inputs",
            (
                Paragraph((Span(f"Feature columns ({len(features)}): {', '.join(features)}."),)),
                Paragraph(
                    (
                        Span(
                            "Missing numbers are filled with the training median; categories not seen in training "
                            'share one "other" slot. The target column may be present in the input; it is ignored.'
                        ),
                    )
                ),
            ),
        ),
        Section(
            "Limits",
            (
                Bullets(
                    (
                        "Trained on one dataset; accuracy on data from another source or period may be lower.",
                        "Numbers that cannot be read are treated as missing rather than rejected.",
                        "No fairness or robustness evaluation was done.",
                    )
                ),
            ),
        ),
        Section("How to run", _how_to_run(preprocessing)),
    )
    return ModelCard(title="Model card", intro=tuple(intro), sections=sections)


def _how_to_run(preprocessing: dict) -> tuple:
    fallback = (
        Span(" Without onnxruntime, "),
        Span("predict.py", "code"),
        Span(" falls back to "),
        Span("model.pt", "code"),
        Span(" with PyTorch."),
    )
    image = preprocessing.get("image")
    if image is None:
        return (
            CodeBlock("pip install numpy onnxruntime\npython predict.py INPUT.csv -o predictions.csv"),
            Paragraph(
                (
                    Span("predictions.csv", "code"),
                    Span(" has one column, "),
                    Span("prediction", "code"),
                    Span(", one row per input row."),
                    *fallback,
                )
            ),
        )
    colour = "grey" if image["channels"] == 1 else "RGB"
    return (
        CodeBlock("pip install numpy onnxruntime pillow\npython predict.py IMAGES_FOLDER -o predictions.csv"),
        Paragraph(
            (
                Span("IMAGES_FOLDER", "code"),
                Span(" holds PNG or JPEG files (a single image, or an .npz with "),
                Span("x", "code"),
                Span(
                    f", works too); each is turned into {image['width']}×{image['height']} {colour} pixels as in "
                    "training. "
                ),
                Span("predictions.csv", "code"),
                Span(" has the columns "),
                Span("file,prediction,probability", "code"),
                Span("."),
                *fallback,
            )
        ),
    )


def model_card(
    *, architecture: dict, layers: list[str], preprocessing: dict, metrics: dict, costs: Costs, dataset_name: str = ""
) -> str:
    """Render the model card as Markdown (the bundle's MODEL_CARD.md)."""
    return build_model_card(
        architecture=architecture,
        layers=layers,
        preprocessing=preprocessing,
        metrics=metrics,
        costs=costs,
        dataset_name=dataset_name,
    ).to_markdown()
