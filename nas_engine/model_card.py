"""The model card: what a model is, how good it is, its limits and how to run it.

It is built once as a small structure (sections of paragraphs, bullet lists, key/value tables and
code blocks) that two writers render: ``to_markdown`` for the bundle's MODEL_CARD.md, and the
model page's template for HTML, so the two never say different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nas_engine.importance import REPEATS, ranked
from nas_engine.metrics import metric_of
from nas_engine.results import Costs, is_compressed, is_ensemble
from nas_engine.spaces import space_for_architecture
from nas_engine.splits import Split

IMPORTANCE_ROWS = 15  # inputs listed in the card's importance table


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
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trim(value: float) -> str:
    return f"{float(f'{value:.{2 if value < 10 else 3}g}'):,g}"


def human_milliseconds(ms: float | None) -> str:
    """A time in the job page's words (static/js/units.js): 0.4 -> "400 µs", 2 -> "2.0 ms"."""
    if ms is None:
        return "not measured"
    if ms < 1:
        return f"{_trim(ms * 1000)} µs"
    if ms < 1000:
        return f"{ms:.{1 if ms < 10 else 0}f} ms"
    return f"{_trim(ms / 1000)} s"


def human_bytes(n: int | None) -> str:
    """A size in the job page's words (static/js/units.js): 4936 -> "4.8 KB"."""
    if n is None:
        return "not computed"
    if n >= 1024 * 1024:
        return f"{_trim(n / (1024 * 1024))} MB"
    if n >= 1024:
        return f"{_trim(n / 1024)} KB"
    return f"{n} B"


# The card's names of the metrics a search records (a metric of nas_engine.metrics reads as its label).
METRIC_NAMES = {
    "val_loss": "loss (the training objective)",
    "score": "score (the metric, higher is better)",
    "best_epoch": "best epoch",
    "epochs": "epochs trained",
    "one_shot_score": "score with the supernet's shared weights",
    "refit_on_train_and_validation": "trained again on train + validation",
    "refit_on_all_rows": "trained again on every row",
    "train_seconds": "training time (s)",
    "budget_epochs": "epoch budget",
}


def metric_name(key: str) -> str:
    from nas_engine.metrics import METRICS

    return METRICS[key].label if key in METRICS else METRIC_NAMES.get(key, key.replace("_", " "))


def _metric_rows(metrics: dict, prefix: str = "") -> list[tuple[str, str]]:
    # Callers nest groups ({"validation": {...}, "test": {...}}); each row reads "validation: accuracy".
    rows = []
    for key, value in metrics.items():
        if key == "importance":  # a section of its own (_importance)
            continue
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key}: ")
        else:
            rows.append((f"{prefix}{metric_name(key)}", _fmt(value)))
    return rows


def _what_it_is(architecture: dict) -> tuple[str, str]:
    """(what kind of network, from what kind of data) in words, for the card's first sentence."""
    if is_ensemble(architecture):
        members = architecture["member_architectures"]
        _, data = space_for_architecture(members[0]).words
        return f"An ensemble of {len(members)} networks (their predictions averaged)", data
    return space_for_architecture(architecture).words


def split_rows(data) -> dict[str, int]:
    """Rows of each split of a ``PreparedData``, for ``build_model_card``'s ``splits``."""
    return {"train": len(data.X_train), "validation": len(data.X_val), "test": len(data.X_test)}


def _count(splits: dict | None, *names: str) -> str:
    if not splits or any(splits.get(name) is None for name in names):
        return ""
    return f" ({sum(splits[name] for name in names):,} rows)"


def metric_sources(*, architecture: dict, metrics: dict, splits: dict | None = None) -> tuple[str, ...]:
    """Where each group of ``metrics`` came from: which model, trained on which rows, scored on which.

    Args:
        architecture: The genome (or an ensemble's record).
        metrics: As ``build_model_card`` takes them: ``validation`` and ``test`` groups, and
            ``refit_on_train_and_validation`` (False: the model is the one the search trained), and
            ``refit_on_all_rows`` (True: the bundle's model was then trained on the test rows too).
        splits: Rows of each split (``split_rows``); the lines name no counts without it.
    """
    validation = metrics.get("validation") or {}
    test = metrics.get("test") or {}
    compressed = is_compressed(architecture)
    refit = bool(metrics.get("refit_on_train_and_validation", bool(test))) and not compressed
    lines = []
    folds = validation.get("cv_folds") if isinstance(validation, dict) else None
    if is_ensemble(architecture) and folds:
        lines.append(
            f"validation: out-of-fold over {folds} folds of the training and validation splits"
            f"{_count(splits, 'train', 'validation')}: each member's prediction of a row came from the fold's "
            "network that did not train on it; the members' predictions averaged."
        )
    elif is_ensemble(architecture):
        lines.append(
            f"validation: its member networks as the search trained them on the training split"
            f"{_count(splits, 'train')}, their predictions averaged, scored on the validation split"
            f"{_count(splits, 'validation')}."
        )
    elif folds:
        lines.append(
            f"validation: the mean over {folds} folds of the training and validation splits"
            f"{_count(splits, 'train', 'validation')}: each fold's network trained on the other folds and was "
            "scored on its own."
        )
    elif validation:
        lines.append(
            f"validation: the network as the search trained it on the training split{_count(splits, 'train')}, "
            f"scored on the validation split{_count(splits, 'validation')}. The search chose among models by "
            "these scores, so they flatter the chosen one a little."
        )
    if test and refit:
        lines.append(
            f"test: this model, trained again from scratch on the training and validation splits"
            f"{_count(splits, 'train', 'validation')}, scored once on the test split{_count(splits, 'test')}: rows "
            "no model was trained or chosen on."
        )
    elif test:
        lines.append(
            f"test: this model as it ships (not trained again), scored once on the test split"
            f"{_count(splits, 'test')}: rows no model was trained or chosen on."
        )
    else:
        lines.append("test: none; the search ended before its models were refit and scored on the test split.")
    if refit and metrics.get("refit_on_all_rows"):
        lines.append(
            "The model in this bundle was then trained again, the same way, on every row, the test split's "
            f"included{_count(splits, 'train', 'validation', 'test')}, for more data: its test score is the one "
            "above, of the same architecture trained without the test rows."
        )
        return tuple(lines)
    trained_on = (
        f"the training and validation splits{_count(splits, 'train', 'validation')}"
        if refit
        else f"the training split{_count(splits, 'train')}"
    )
    if compressed:
        trained_on = f"the training split{_count(splits, 'train')}, then compressed"
    lines.append(f"The model in this bundle was trained on {trained_on}; the test split never trained it.")
    return tuple(lines)


def build_model_card(
    *,
    architecture: dict,
    layers: list[str],
    preprocessing: dict,
    metrics: dict,
    costs: Costs,
    dataset_name: str = "",
    splits: dict | None = None,
) -> ModelCard:
    """The model card of one trained model, as data.

    Args:
        architecture: The genome (or an ensemble's record).
        layers: Readable layer lines (``describe_architecture``).
        preprocessing: The ``preprocessing`` dict it was trained with.
        metrics: Metrics to list; nested dicts become dotted names (``validation.accuracy``).
            ``refit_on_train_and_validation`` says whether the model was trained again on
            train+validation (``metric_sources``).
        costs: Parameters, FLOPs, size and latency.
        dataset_name: Name of the training file.
        splits: Rows of each split (``split_rows``), named where the card says which rows each
            number came from.
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
    latency = human_milliseconds(costs.latency_ms)
    memory = (
        "not computed"
        if costs.memory_bytes is None
        else f"{human_bytes(costs.memory_bytes)} ({costs.memory_bytes:,} bytes)"
    )
    sections = (
        Section("Architecture", (Bullets(tuple(layers)),)),
        Section(
            "Metrics",
            (
                _optimised_for(preprocessing),
                Paragraph((Span("Where each number comes from:"),)),
                Bullets(metric_sources(architecture=architecture, metrics=metrics, splits=splits)),
                Table(("metric", "value"), tuple(_metric_rows(metrics))),
            ),
        ),
        *_importance(metrics),
        Section(
            "Costs",
            (
                Bullets(
                    (
                        f"Parameters: {costs.params:,}",
                        f"FLOPs (multiply-adds per row): {costs.flops:,}",
                        f"Size (float32 weights): {human_bytes(costs.size_bytes)} ({costs.size_bytes:,} bytes)",
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
                *_ignored(preprocessing),
                *_column_types(preprocessing),
                *_class_weights(preprocessing),
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
    *,
    architecture: dict,
    layers: list[str],
    preprocessing: dict,
    metrics: dict,
    costs: Costs,
    dataset_name: str = "",
    splits: dict | None = None,
) -> str:
    """Render the model card as Markdown (the bundle's MODEL_CARD.md)."""
    return build_model_card(
        architecture=architecture,
        layers=layers,
        preprocessing=preprocessing,
        metrics=metrics,
        costs=costs,
        dataset_name=dataset_name,
        splits=splits,
    ).to_markdown()


def _importance(metrics: dict) -> tuple[Section, ...]:
    """The inputs the model relies on most (permutation importance on the test split), when measured."""
    importance = (metrics.get("test") or {}).get("importance")
    if not importance:
        return ()
    rows = tuple((name, _fmt(value)) for name, value in list(ranked(importance).items())[:IMPORTANCE_ROWS])
    words = (
        "How much the test score drops when one input's values are shuffled among the test rows (permutation "
        f"importance, mean of {REPEATS} shuffles): the larger, the more the model relies on it. Near zero or "
        f"below: it could go. The {len(rows)} largest of {len(importance)}:"
    )
    return (Section("What the model relies on", (Paragraph((Span(words),)), Table(("input", "score drop"), rows))),)


def _optimised_for(preprocessing: dict) -> Paragraph:
    """What the search scored its models by, and how the rows were split, in two sentences."""
    metric = metric_of(preprocessing["target"], preprocessing["task"])
    words = f"The search scored, ranked and chose its models by {metric.label} on validation: {metric.explanation}."
    score = "" if metric.higher_is_better else " A score is minus the metric, so that higher is always better."
    split = preprocessing.get("split") or {"kind": "random", "column": None}
    rows = f" Rows were split {Split(split['kind'], split['column']).words()}."
    return Paragraph((Span(words + score + rows),))


def _ignored(preprocessing: dict) -> tuple[Paragraph, ...]:
    """The columns the search was told to ignore, when it was."""
    ignored = preprocessing.get("ignored_columns") or []
    if not ignored:
        return ()
    words = f"Ignored columns ({len(ignored)}): {', '.join(ignored)}. The model never saw them; a prediction "
    return (Paragraph((Span(words + "accepts them in its input and leaves them out."),)),)


def _column_types(preprocessing: dict) -> tuple[Paragraph, ...]:
    """The columns read otherwise than detected, when the search was told to."""
    kinds = preprocessing.get("column_types") or {}
    if not kinds:
        return ()
    words = {"date": "as dates (year, month, day of the week, elapsed days)", "numeric": "as numbers",
             "categorical": "as labels"}  # fmt: skip
    parts = [f"{name} {words[kind]}" for name, kind in kinds.items()]
    return (Paragraph((Span(f"Columns read as chosen rather than as detected: {'; '.join(parts)}."),)),)


def _class_weights(preprocessing: dict) -> tuple[Paragraph, ...]:
    """How the training loss weighted the classes, when the search was told to balance them."""
    target = preprocessing["target"]
    weights = target.get("class_weights")
    if not weights:
        return ()
    pairs = ", ".join(f"{label} {weight:.3g}" for label, weight in zip(target["labels"], weights, strict=True))
    words = f"Trained with balanced class weights (each class counts as much as the others): {pairs}."
    return (Paragraph((Span(words),)),)
