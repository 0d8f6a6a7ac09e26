"""Settings of one search, validated up front so a bad form value fails before any work."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas_engine.augment import AUGMENTATIONS
from nas_engine.errors import ConstraintError
from nas_engine.evaluator import CLASS_WEIGHTS, auto_cv_folds
from nas_engine.fidelity import Fidelity
from nas_engine.metrics import METRICS, metric_named
from nas_engine.results import OBJECTIVES, Costs
from nas_engine.spaces import SPACES, SearchSpace
from nas_engine.splits import Split, parse_ratio
from nas_engine.strategies import STRATEGIES, OneShotStrategy

TASKS = ("classification", "regression")
# One set of defaults: SearchConfig's fields below, the CLI's flags, the web form's initial values and
# the SearchJob model's field defaults all read these, so every entry point starts the same search.
# (A new value here changes SearchJob's field defaults: run makemigrations.)
DEFAULT_STRATEGY = "tpe"
DEFAULT_FIDELITY = "none"
DEFAULT_EXPORT = "auto"  # which model a search exports: a key of selection.EXPORT_CHOICES
# Which rows the exported model is finally trained on: "all" (train, validation and test, after the
# test score was taken from its train+validation refit) or "train+validation" (the model scored).
REFIT_CHOICES = ("all", "train+validation")
DEFAULT_REFIT = "all"
# Limits checked on a genome's analytic costs, before it trains: the setting and the cost it bounds.
ANALYTIC_LIMITS: dict[str, str] = {
    "max_params": "params",
    "max_flops": "flops",
    "max_size_bytes": "size_bytes",
    "max_memory_bytes": "memory_bytes",
}


def broken_limits(costs: Costs, limits: Mapping[str, float | None]) -> list[str]:
    """The settings of ``ANALYTIC_LIMITS`` that ``costs`` are above (a limit that is None or missing
    from ``limits`` is not set; a cost that is None, not computed, breaks no limit)."""
    broken = []
    for name, cost in ANALYTIC_LIMITS.items():
        limit, value = limits.get(name), getattr(costs, cost)
        if limit is not None and value is not None and value > limit:
            broken.append(name)
    return broken


def comma_separated(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` as ``("a", "b", "c")``: how the command line takes a list."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def objectives_from_text(text: str) -> tuple[str, ...]:
    """Comma-separated costs as objectives, ``score`` first (added when not given)."""
    names = comma_separated(text)
    return names if names[:1] == ("score",) else ("score", *names)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """What to search for and within which limits.

    Args:
        target: Column to predict.
        ignore: Input columns the model never sees (an ID, a column that leaks the target): the
            data is prepared without them (``data_settings``); a prediction still accepts them.
        task: ``"classification"`` or ``"regression"``; guessed from the target when None.
        budget_seconds: Wall-clock budget of the whole search.
        max_trials: Stop after this many trained trials (analytic rejections do not count).
        max_params: Reject architectures with more parameters.
        max_flops: Reject architectures with more multiply-adds per row.
        max_size_bytes: Reject architectures whose float32 weights take more bytes.
        max_memory_bytes: Reject architectures whose peak inference memory for one row (weights
            plus the activations alive at once, ``Costs.memory_bytes``) is above this.
        max_latency_ms: Reject trained models slower than this per row (batch 1, one thread).
        strategy: Key of ``STRATEGIES``.
        space: ``"auto"`` (CNN when the columns form an image, else MLP) or a key of ``SPACES``.
        objectives: What the Pareto front trades off: ``"score"`` then one or two costs of
            ``results.OBJECTIVES`` (``params``, ``flops``, ``latency_ms``, ``size_bytes``,
            ``memory_bytes``).
        seed: Seed of the strategy and of each trial's weights.
        max_epochs: Upper bound of training epochs per trial (the top rung of multi-fidelity);
            None takes the search space's own (``SearchSpace.max_epochs``, 50 for every space today).
        patience: Epochs without validation improvement before stopping a trial; None takes the
            space's own (``SearchSpace.patience``, 5 for every space today).
        fidelity: ``"none"`` (every trial trains fully), ``"successive_halving"`` or
            ``"hyperband"`` (train many briefly, continue only the best).
        eta: Multi-fidelity keeps the best 1/eta of the trials at each rung.
        min_epochs: Epochs of the lowest rung.
        cv_folds: Score each trial by k-fold cross-validation over train+validation; None picks
            it from the data size and the budget (see ``evaluator.auto_cv_folds``), 1 turns it off.
        augment: Change training images at random: ``"none"``, ``"shift"`` or ``"shift_flip"``
            (``augment.AUGMENTATIONS``); only for data whose columns form an image.
        class_weights: ``"balanced"``: each class's rows weigh ``rows / (classes × its rows)`` in
            the training loss (and the validation loss that stops training), so a rare class counts
            as much as a common one; ``"none"``: every row the same. Classification only.
        metric: What the trials are scored, the front ranked and the model chosen by
            (``metrics.METRICS``: accuracy, balanced_accuracy, f1_macro, roc_auc, log_loss; rmse,
            mae, r2, mape); None: accuracy for classification, R² for regression.
        column_types: ``COL=KIND`` overrides of how columns are read (``prepare.COLUMN_TYPES``).
        split: How rows are divided into training, validation and test rows (``splits.Split``):
            ``random``, ``time:COL``, ``group:COL`` or ``column:COL``.
        split_ratio: Train/validation/test shares as ``"60/20/20"`` (None: that default).
        compress: Once the budget is spent, derive compressed variants (pruned at 50 % and 75 %,
            int8) of the best front models; each is a trial of its own, on the same front.

    Raises:
        ConstraintError: A budget or limit is not a positive number.
        ValueError: Unknown task, strategy, space, objective or fidelity, an empty target, or the
            target among the ignored columns.
    """

    # Each setting is one field. Its ``metadata`` holds the command line's ``help``, ``choices`` (a
    # callable where the registry can grow) and ``type`` (the parser of a list): ``cli`` makes a flag
    # of every field (``--budget-seconds`` for ``budget_seconds``), so a new engine setting is one
    # field here.
    target: str = field(metadata={"help": "column to predict"})
    ignore: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "input columns the model never sees (an ID, a column that leaks the target), comma-separated",
            "type": comma_separated,
        },
    )
    task: str | None = field(default=None, metadata={"choices": TASKS})
    budget_seconds: float = field(default=60, metadata={"help": "wall-clock budget of the whole search"})
    max_trials: int | None = None
    max_params: int | None = None
    max_flops: int | None = None
    max_size_bytes: int | None = None
    max_memory_bytes: int | None = field(
        default=None, metadata={"help": "peak memory of predicting one row: weights plus activations"}
    )
    max_latency_ms: float | None = None
    strategy: str = field(default=DEFAULT_STRATEGY, metadata={"choices": lambda: tuple(STRATEGIES)})
    space: str = field(default="auto", metadata={"choices": lambda: ("auto", *SPACES)})  # read when asked: it grows
    objectives: tuple[str, ...] = field(
        default=("score", "params"),
        metadata={
            "type": objectives_from_text,
            "help": "costs to trade the score against, comma-separated: "
            + ", ".join(sorted(set(OBJECTIVES) - {"score"})),
        },
    )
    seed: int = 0
    max_epochs: int | None = field(
        default=None, metadata={"help": "most epochs a trial trains (default: the space's own, 50)"}
    )
    patience: int | None = field(
        default=None,
        metadata={"help": "epochs without improvement before a trial stops (default: the space's own, 5)"},
    )
    fidelity: str = field(default=DEFAULT_FIDELITY, metadata={"choices": tuple(f.value for f in Fidelity)})
    eta: int = field(default=3, metadata={"help": "multi-fidelity: keep 1/eta at each rung"})
    min_epochs: int = field(default=3, metadata={"help": "multi-fidelity: epochs of the lowest rung"})
    cv_folds: int | None = field(
        default=None,
        metadata={
            "help": "k-fold scoring (default: 5 below 300 training rows, or below 2,000 with 100 s or more; else off)"
        },
    )
    augment: str = field(
        default="none",
        metadata={
            "choices": tuple(AUGMENTATIONS),
            "help": "change training images at random: shift (digits, letters) or shift_flip (photos); images only",
        },
    )
    class_weights: str = field(
        default="none",
        metadata={
            "choices": CLASS_WEIGHTS,
            "help": "balanced: weight each class's rows so a rare class counts as much as a common one "
            "(classification)",
        },
    )
    metric: str | None = field(
        default=None,
        metadata={
            "choices": tuple(METRICS),
            "help": "what the search optimises and ranks by (default: accuracy, or r2 for regression)",
        },
    )
    column_types: tuple[str, ...] = field(
        default=(),
        metadata={
            "type": comma_separated,
            "aliases": ("--column-type",),
            "help": "COL=numeric|categorical|date[,...]: read a column as numbers, as labels (e.g. a zip code) "
            "or as a date (year, month, weekday, elapsed days)",
        },
    )
    split: str = field(
        default="random",
        metadata={
            "help": "how rows are divided: random (stratified), time:COL (newest rows last), group:COL (a group in "
            "one split only) or column:COL (it says train/validation/test)",
        },
    )
    split_ratio: str | None = field(
        default=None, metadata={"help": "train/validation/test shares, e.g. 70/15/15 (default 60/20/20)"}
    )
    compress: bool = field(
        default=False,
        metadata={
            "help": "after the search, add pruned (50%%, 75%%) and int8 variants of the best front models as trials"
        },
    )

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ValueError("Choose a target column.")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"Unknown task '{self.task}'; use one of: {', '.join(TASKS)}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy '{self.strategy}'; known strategies: {', '.join(STRATEGIES)}.")
        if self.space != "auto" and self.space not in SPACES:
            raise ValueError(f"Unknown search space '{self.space}'; use auto or one of: {', '.join(SPACES)}.")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"Unknown augmentation '{self.augment}'; use one of: {', '.join(AUGMENTATIONS)}.")
        if self.fidelity not in set(Fidelity):
            raise ValueError(f"Unknown fidelity '{self.fidelity}'; use one of: {', '.join(Fidelity)}.")
        object.__setattr__(self, "objectives", tuple(self.objectives))  # a list from JSON or a form
        object.__setattr__(self, "ignore", tuple(str(name) for name in self.ignore or ()))
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"Unknown class weights '{self.class_weights}'; use one of: {', '.join(CLASS_WEIGHTS)}.")
        if self.class_weights != "none" and self.task == "regression":
            raise ValueError("Class weights apply to classification; this search is a regression.")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"Unknown metric '{self.metric}'; use one of: {', '.join(METRICS)}.")
        if self.metric is not None and self.task is not None:
            metric_named(self.metric, self.task)
        object.__setattr__(self, "column_types", tuple(str(text) for text in self.column_types or ()))
        split = Split.parse(self.split)
        object.__setattr__(self, "split", str(split))
        parse_ratio(self.split_ratio)
        if split.kind != "random" and (self.cv_folds or 1) > 1:
            raise ValueError(
                f"Cross-validation folds are drawn at random, which would mix the rows a {split.kind} split keeps "
                "apart: leave cv_folds empty (or 1) with this split."
            )
        if split.column == self.target:
            raise ValueError(f"Column '{self.target}' is the target: it cannot also decide the split.")
        if self.target in self.ignore:
            raise ValueError(f"Column '{self.target}' is the target: it cannot also be ignored.")
        self._check_objectives()
        if not self.budget_seconds > 0:
            raise ConstraintError(f"The time budget must be above 0 seconds; got {self.budget_seconds}.")
        limits = (
            "max_trials",
            "max_params",
            "max_flops",
            "max_size_bytes",
            "max_memory_bytes",
            "max_latency_ms",
            "max_epochs",
        )
        for name in (*limits, "patience", "min_epochs", "cv_folds"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConstraintError(f"{name} must be above 0 (or left empty); got {value}.")
        if self.eta < 2:
            raise ConstraintError(f"eta must be at least 2 (keep the best 1/eta at each rung); got {self.eta}.")
        if self.fidelity != Fidelity.NONE and self.max_epochs is not None and self.min_epochs > self.max_epochs:
            raise ConstraintError(
                f"min_epochs ({self.min_epochs}) cannot exceed max_epochs ({self.max_epochs}); "
                "lower it or raise max_epochs."
            )

    def _check_objectives(self) -> None:
        names = self.objectives
        unknown = [name for name in names if name not in OBJECTIVES]
        if unknown:
            raise ValueError(f"Unknown objective(s): {', '.join(unknown)}; choose from: {', '.join(OBJECTIVES)}.")
        if not 2 <= len(names) <= 3 or names[0] != "score" or len(set(names)) != len(names):
            raise ValueError(
                "Objectives must be 'score' followed by one or two different costs "
                f"(e.g. score, params); got: {', '.join(names) or 'none'}."
            )

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of setting ``name`` (what the CLI's flag and the web form start from).

        Raises:
            KeyError: ``name`` is not a setting with a default.
        """
        found = next((f for f in dataclasses.fields(cls) if f.name == name), None)
        if found is None or found.default is dataclasses.MISSING:
            raise KeyError(name)
        return found.default

    def data_settings(self) -> dict[str, Any]:
        """What ``prepare_data`` takes from this config (target, task, the split's seed, ignored
        columns, class weights)."""
        return {
            "target": self.target,
            "task": self.task,
            "seed": self.seed,
            "ignore": self.ignore,
            "class_weights": self.class_weights,
            "metric": self.metric,
            "split": self.split,
            "ratio": self.split_ratio,
            "column_types": self.column_types,
        }

    def analytic_limits(self) -> dict[str, int | None]:
        """The ``ANALYTIC_LIMITS`` settings by name (None where unset), as ``broken_limits`` takes them."""
        return {name: getattr(self, name) for name in ANALYTIC_LIMITS}

    def folds(self, train_rows: int) -> int:
        """Folds of cross-validation for a training split of ``train_rows`` rows: ``cv_folds`` when
        set, else ``evaluator.auto_cv_folds`` of the rows and the budget (1: one validation split).
        The search, its estimate and the reference all resolve it here."""
        if self.cv_folds:
            return self.cv_folds
        # Random folds would mix the rows a time or group split keeps apart: its validation split stands.
        return auto_cv_folds(train_rows, self.budget_seconds) if self.split == "random" else 1

    def training_length(self, space: SearchSpace) -> tuple[int, int]:
        """``(max_epochs, patience)``, each the space's own where this config leaves it to the space."""
        max_epochs = self.max_epochs if self.max_epochs is not None else space.max_epochs
        return max_epochs, self.patience if self.patience is not None else space.patience

    def for_space(self, space: SearchSpace) -> SearchConfig:
        """This config with the settings left to the space (``max_epochs``, ``patience``) filled in.

        Raises:
            ConstraintError: ``min_epochs`` is above the space's ``max_epochs`` (with multi-fidelity).
        """
        max_epochs, patience = self.training_length(space)
        return dataclasses.replace(self, max_epochs=max_epochs, patience=patience)  # checks min_epochs again

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SearchConfig:
        """Build a config from ``to_dict()`` output (lists are accepted where tuples are stored).

        Raises:
            ValueError: The dict has keys that are not settings.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown search setting(s): {', '.join(unknown)}.")
        return cls(**data)


def sequential_reason(config: SearchConfig) -> str:
    """Why this search's trials must train one after another on one worker, or "" when they can be
    spread over many."""
    if config.fidelity != Fidelity.NONE:
        return "multi-fidelity brackets rank their candidates together, rung by rung"
    if issubclass(STRATEGIES[config.strategy], OneShotStrategy):
        return "a one-shot strategy first trains one supernet"
    return ""
