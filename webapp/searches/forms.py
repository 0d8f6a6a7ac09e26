"""The new-search form: target, task, objectives, limits and budget, checked against the dataset
profile, and the trial-count estimate the page shows before launch.

The POSTed names and units are the raw ones (``max_params`` a count, ``max_latency_ms`` in ms,
``budget_seconds`` in seconds, empty = no limit); the page's sliders only set these inputs.
"""

import numpy as np
from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

import nas_engine
from nas_engine import runtime
from nas_engine.config import DEFAULT_FIDELITY, DEFAULT_STRATEGY
from nas_engine.metrics import METRICS, metric_named, suggested_metric
from nas_engine.prepare import parse_column_types
from nas_engine.profiling import WarningKind
from nas_engine.spaces import SPACES
from nas_engine.splits import MIN_GROUPS, SPLIT_NAMES, read_times
from webapp.searches import workers
from webapp.searches.models import AUTO_SPACE, WEB_SETTINGS, SearchJob, space_choices

AUTO = "auto"
# Caps far above any network here, so a tampered value gets a message instead of overflowing a column.
MAX_COUNT, MAX_LATENCY_MS, MAX_SIZE_KB = 10**15, 10**6, 10**9
COSTS = [
    ("params", "Parameters (a smaller network)"),
    ("flops", "FLOPs (less computation per prediction)"),
    ("latency_ms", "Latency (faster predictions on the worker's CPU)"),
    ("size_bytes", "Model size (a smaller file)"),
    ("memory_bytes", "Peak memory (less RAM per prediction)"),
]
MAX_PARALLEL_TRIALS = 64
GROUPS = {  # how the page arranges the fields that are not sliders
    "data": ("name", "target", "task", "ignore", "split_kind", "split_column"),
    "objective": ("metric", "cost_objective"),
    "strategy": ("strategy",),
    "advanced": (
        "notes",
        "third_objective",
        "max_size_kb",
        "max_trials",
        "parallel_trials",
        "space",
        "fidelity",
        "augment",
        "compress",
        "class_weights",
        "split_ratio",
        "warm_start_from",
        "seed",
    ),
}
# How each slider moves: `stops` "log" is 1-2-5 steps from `low` to `high` with a last stop meaning
# no limit; "duration" is round durations up to the site's budget cap. `unit` picks the wording
# (static/js/units.js).
SLIDERS = {
    "max_params": {"stops": "log", "low": 10, "high": 10**8, "unit": "params", "suffix": "parameters"},
    "max_flops": {"stops": "log", "low": 10, "high": 10**10, "unit": "flops", "suffix": "FLOPs"},
    "max_latency_ms": {"stops": "log", "low": 0.01, "high": 1000, "unit": "milliseconds", "suffix": "ms"},
    "max_memory_kb": {"stops": "log", "low": 1, "high": 10**7, "unit": "kilobytes", "suffix": "KB"},
    # The exact seconds stay on show beside the budget: quotas and their messages count seconds.
    "budget_seconds": {"stops": "duration", "low": 5, "high": None, "unit": "duration", "suffix": "seconds",
                       "raw_id": "budget-value"},
}  # fmt: skip
# Form field holding each engine limit (the form takes KB where the engine counts bytes).
LIMIT_FIELDS = {
    "max_params": "max_params", "max_flops": "max_flops", "max_size_bytes": "max_size_kb",
    "max_memory_bytes": "max_memory_kb",
}  # fmt: skip


def target_counts(column: dict) -> list[int]:
    """Rows per value of a profiled column (its top values, then the rest as one), as
    ``metrics.suggested_metric`` takes them."""
    distribution = column.get("distribution") or {}
    return [*distribution.get("counts", []), *([distribution["other"]] if distribution.get("other") else [])]


TYPE_CHOICES = [
    (AUTO, "as detected"), ("numeric", "numbers"), ("categorical", "labels (text as categories)"),
    ("date", "a date (year, month, weekday, elapsed days)"),
]  # fmt: skip


def looks_like_dates(column: dict) -> bool:
    """Whether a profiled text column's values read as dates (most of its shown values do)."""
    if column["kind"] == "numeric":
        return False
    seen = [*column.get("examples", []), *(column.get("distribution") or {}).get("labels", [])]
    return bool(seen) and sum(runtime.date_parts(v) is not None for v in seen) > len(seen) / 2


def split_problem(kind: str, column: dict) -> str:
    """Why a profiled column cannot split rows as ``kind`` (empty: it can)."""
    name, distribution = column["name"], column.get("distribution") or {}
    if kind == "group" and column["unique"] < MIN_GROUPS:
        return (
            f"Column '{name}' has {column['unique']} distinct value{'s' if column['unique'] != 1 else ''}: a group "
            f"split needs at least {MIN_GROUPS} groups, one for each split."
        )
    if kind == "time" and column["kind"] != "numeric":
        seen = [*column.get("examples", []), *distribution.get("labels", [])]
        if not seen or np.isnan(read_times(seen)).mean() > 0.5:
            example = f" (e.g. '{seen[0]}')" if seen else ""
            return f"Column '{name}' does not hold dates or times{example}: choose a date column."
    if kind == "column":
        unknown = [v for v in distribution.get("labels", []) if v.strip().lower() not in SPLIT_NAMES]
        if unknown or distribution.get("other_values"):
            shown = ", ".join(f"'{v}'" for v in unknown[:3]) or "other values"
            return f"Column '{name}' must say train, validation or test on every row; it also holds {shown}."
    return ""


def _strategy_choices() -> list[tuple[str, str]]:
    return [(name, getattr(cls, "label", "") or name) for name, cls in nas_engine.STRATEGIES.items()]


class SearchJobForm(forms.Form):
    name = forms.CharField(
        label="Name of the search", max_length=200, required=False,
        help_text="Shown in your lists and the leaderboard. Empty: its number.",
    )  # fmt: skip
    notes = forms.CharField(
        label="Notes", max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Anything to remember about this search: what you tried and why.",
    )  # fmt: skip
    target = forms.ChoiceField(
        label="Predict column", error_messages={"invalid_choice": "Column %(value)s is not in this dataset."}
    )
    task = forms.ChoiceField(
        choices=[(AUTO, "Detect automatically"), *SearchJob.Task.choices], initial=AUTO, label="Task"
    )
    ignore = forms.MultipleChoiceField(
        label="Columns the model must not use", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="An ID, or a column only known after the fact (it would leak the answer). Ticked to start with: "
        "the columns the profile warns about. A prediction still accepts them and leaves them out.",
    )  # fmt: skip
    split_kind = forms.ChoiceField(
        label="Split the rows", initial="random", required=False,  # left out: random
        choices=[
            ("random", "At random (stratified by class)"),
            ("time", "By time: the newest rows are the test rows"),
            ("group", "By group: a group's rows stay in one split"),
            ("column", "As a column of mine says (train / validation / test)"),
        ],
        help_text="Random suits rows that are independent. Split by time when the model will predict the future, "
        "by group when rows of one person or shop are alike, so the test score is honest.",
    )  # fmt: skip
    split_column = forms.ChoiceField(
        label="Column of the split", required=False,
        help_text="The date column (time), the group column (group) or your split column (it says train, "
        "validation or test on each row, and is not used as an input).",
    )  # fmt: skip
    split_ratio = forms.RegexField(
        label="Train / validation / test shares", required=False, regex=r"^\s*\d+(\.\d+)?(\s*/\s*\d+(\.\d+)?){2}\s*$",
        error_messages={"invalid": "Write three shares like 70/15/15."},
        help_text="Empty: 60/20/20. Validation rows choose among models; test rows give the final score.",
    )  # fmt: skip
    metric = forms.ChoiceField(
        label="Optimise", initial=AUTO, required=False,  # left out (an older page, a script): suggested
        choices=[(AUTO, "Suggested from the data"), *((name, m.label) for name, m in METRICS.items())],
        help_text="What the models are scored and ranked by. Suggested: balanced accuracy when one class holds "
        "over 80 % of the rows, else accuracy (classification) or R² (regression).",
    )  # fmt: skip
    cost_objective = forms.ChoiceField(
        label="Trade the score against", choices=COSTS, initial="params", widget=forms.RadioSelect
    )
    max_params = forms.IntegerField(
        label="At most this many parameters", required=False, min_value=1, max_value=MAX_COUNT,
        help_text="Larger networks are rejected before training.",
    )  # fmt: skip
    max_flops = forms.IntegerField(
        label="At most this many FLOPs per prediction", required=False, min_value=1, max_value=MAX_COUNT
    )
    max_latency_ms = forms.FloatField(
        label="At most this latency per prediction", required=False, min_value=0.001, max_value=MAX_LATENCY_MS,
        help_text="Measured on the worker's CPU after training, one row at a time.",
    )  # fmt: skip
    budget_seconds = forms.IntegerField(
        label="Time budget", min_value=5, initial=nas_engine.SearchConfig.default("budget_seconds")
    )
    strategy = forms.ChoiceField(label="Search strategy")
    third_objective = forms.ChoiceField(
        label="…and also against", choices=[("", "nothing else"), *COSTS], required=False
    )
    max_size_kb = forms.IntegerField(
        label="At most this model size (KB)",
        required=False,
        min_value=1,
        max_value=MAX_SIZE_KB,
        help_text="Empty: no limit.",
    )
    max_memory_kb = forms.IntegerField(
        label="At most this peak memory per prediction (KB)",
        required=False,
        min_value=1,
        max_value=MAX_SIZE_KB,
        help_text="Weights plus the largest activations alive at once, for one row. Empty: no limit.",
    )
    max_trials = forms.IntegerField(
        label="At most this many models", required=False, min_value=1, max_value=10_000,
        help_text="Leave empty to search until the time budget runs out.",
    )  # fmt: skip
    parallel_trials = forms.IntegerField(
        label="Models trained at once", required=False, min_value=0, max_value=MAX_PARALLEL_TRIALS, initial=0,
        help_text="Each by its own worker, on any machine (never more than the workers online). 0: one per idle "
        "worker when the search starts. "
        "Multi-fidelity and weight-sharing searches train one at a time.",
    )  # fmt: skip
    space = forms.ChoiceField(label="Kind of network", choices=space_choices, initial=AUTO_SPACE)
    fidelity = forms.ChoiceField(label="Training", choices=SearchJob.Fidelity.choices, initial=DEFAULT_FIDELITY)
    augment = forms.ChoiceField(
        label="Augment training images", choices=SearchJob.Augment.choices, initial=SearchJob.Augment.NONE,
        required=False,  # left out (an older page, a script): none
        help_text="Random changes to each training image, so the model learns the shape rather than the pixels. "
        "Mirroring suits photos, not digits or letters.",
    )  # fmt: skip
    compress = forms.BooleanField(
        label="Also try compressed variants of the best models", required=False,
        help_text="After the search: pruned (50 % and 75 % of the weights) and int8-quantized copies of the best "
        "front models, each a point of its own on the front, kept only within your limits.",
    )  # fmt: skip
    class_weights = forms.ChoiceField(
        label="Class weights", required=False, initial="none",
        choices=[("none", "None: every row counts the same"), ("balanced", "Balanced: rare classes count as much")],
        help_text="For classification with a rare class: weighting finds more of it, at some cost in plain "
        "accuracy. Suggested when one class holds over 80 % of the rows.",
    )  # fmt: skip
    warm_start_from = forms.ChoiceField(
        label="Start from an earlier search", required=False,
        help_text="The strategy learns from that search's models first (and weight sharing reuses its supernet). "
        "Only your finished searches of datasets with the same columns are listed.",
    )  # fmt: skip
    seed = forms.IntegerField(
        label="Random seed", initial=0, min_value=0, max_value=2**31 - 1,
        help_text="The same seed and settings propose the same networks again.",
    )  # fmt: skip

    def __init__(self, *args, dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        columns = dataset.column_names
        if dataset.image:
            # An image set has one target, its class folders; the other columns are its pixels.
            columns = [nas_engine.images.TARGET]
            self.fields["task"].choices = [(SearchJob.Task.CLASSIFICATION, "Classification (which class)")]
            self.fields["task"].initial = SearchJob.Task.CLASSIFICATION
            # Colour pictures are photos more often than not: shifted or mirrored, a cat is a cat. Grey
            # ones are often digits or letters, where a mirror makes another one and, on 8×8 digits, even
            # one-pixel shifts cost accuracy (benchmarks/results/images.md): off unless asked for.
            grey = dataset.image["channels"] == 1
            self.fields["augment"].initial = SearchJob.Augment.NONE if grey else SearchJob.Augment.SHIFT_FLIP
        self.warm_jobs = self._warm_start_jobs()
        self.fields["warm_start_from"].choices = [("", "No: start fresh")] + [
            (str(job.pk), f"Search #{job.pk}: {job.dataset.name} → {job.target} ({job.strategy})")
            for job in self.warm_jobs.values()
        ]
        self.fields["target"].choices = [(name, name) for name in columns]
        self.fields["target"].initial = columns[-1]
        if dataset.image:
            del self.fields["ignore"]  # its inputs are the pixels
        else:
            self.fields["ignore"].choices = [(name, name) for name in columns]
            self.fields["ignore"].initial = self._suspect_columns(target=columns[-1])
        self.fields["split_column"].choices = [("", "—"), *((name, name) for name in columns)]
        # One type choice per column (not for an image's pixels): detected, or read as numbers, labels or dates.
        self.type_columns = [] if dataset.image else list(columns)
        chosen_types = self.initial.get("column_types") or {}
        for i, name in enumerate(self.type_columns):
            column = dataset.column(name)
            if name in chosen_types:
                self.initial[f"type_{i}"] = chosen_types[name]
            self.fields[f"type_{i}"] = forms.ChoiceField(
                label=name, required=False, choices=TYPE_CHOICES,
                initial="date" if looks_like_dates(column) else AUTO,
                help_text=f"detected: {'numbers' if column['kind'] == 'numeric' else 'text'}",
            )  # fmt: skip
        self.fields["strategy"].choices = _strategy_choices()
        self.fields["strategy"].initial = DEFAULT_STRATEGY  # nas_engine.config: the CLI and the model start there too
        # A line under these fields that static/js/configure.js keeps up to date (form_fields.html).
        self.fields["target"].live_hint_id = "task-hint"
        self.fields["strategy"].live_hint_id = "strategy-hint"
        self.fields["metric"].live_hint_id = "metric-hint"
        self.fields["strategy"].live_hint = self.strategy_description
        budget = self.fields["budget_seconds"]
        budget.widget.attrs.update(min=5, max=settings.MAX_BUDGET_SECONDS, step=1)
        budget.validators.append(MaxValueValidator(settings.MAX_BUDGET_SECONDS))

    @classmethod
    def initial_from(cls, job: SearchJob) -> dict:
        """The form's values that start ``job`` again: for "re-run with changes"."""
        kind, _, column = (job.split or "random").partition(":")
        objectives = [name for name in job.objectives if name != "score"]
        initial = {
            name: getattr(job, name)
            for name in (
                "target", "task", "notes", "ignore", "split_ratio", "metric", "max_params", "max_flops",
                "max_latency_ms", "budget_seconds", "max_trials", "parallel_trials", "strategy", "space", "fidelity",
                "augment", "compress", "class_weights", "seed",
            )
        }  # fmt: skip
        initial |= {
            "name": f"{job.name or f'Search #{job.pk}'} (changed)"[:200],
            "split_kind": kind,
            "split_column": column,
            "cost_objective": objectives[0] if objectives else "params",
            "third_objective": objectives[1] if len(objectives) > 1 else "",
            "max_size_kb": job.max_size_bytes // 1024 if job.max_size_bytes else None,
            "max_memory_kb": job.max_memory_bytes // 1024 if job.max_memory_bytes else None,
            "warm_start_from": str(job.warm_start_from_id or ""),
            "column_types": parse_column_types(
                job.column_types or [], columns=job.dataset.column_names, target=job.target
            ),
        }
        return initial

    def _suspect_columns(self, *, target: str) -> list[str]:
        """Columns the profile warns a model off (an ID, a constant) or suspects of leaking ``target``."""
        profile = self.dataset.profile
        kinds = (WarningKind.ID_LIKE, WarningKind.CONSTANT)
        warned = {w["column"] for w in profile.get("warnings", []) if w["kind"] in kinds}
        warned |= {s["column"] for s in profile.get("leakage", []) if s["target"] == target}
        return [name for name in self.dataset.column_names if name in warned and name != target]

    def _warm_start_jobs(self) -> dict[str, SearchJob]:
        """The owner's finished searches of datasets with this dataset's columns, newest first."""
        jobs = (
            SearchJob.objects.filter(owner=self.dataset.owner, status=SearchJob.Status.FINISHED)
            .select_related("dataset")
            .order_by("-pk")[:200]
        )
        return {str(job.pk): job for job in jobs if job.dataset.column_names == self.dataset.column_names}

    # --- what the template shows ---------------------------------------------------------------

    @property
    def sliders(self) -> list[tuple[forms.BoundField, dict]]:
        """The slider fields with how each moves (the budget's top is the site's cap)."""
        return [
            (self[name], {**config, "high": config["high"] or settings.MAX_BUDGET_SECONDS})
            for name, config in SLIDERS.items()
        ]

    @property
    def groups(self) -> dict[str, list[forms.BoundField]]:
        return {group: [self[name] for name in names if name in self.fields] for group, names in GROUPS.items()}

    @property
    def type_fields(self) -> list[forms.BoundField]:
        """The per-column type choices, in column order."""
        return [self[f"type_{i}"] for i in range(len(self.type_columns))]

    @property
    def types_have_errors(self) -> bool:
        return any(f"type_{i}" in self.errors for i in range(len(self.type_columns)))

    @property
    def advanced_has_errors(self) -> bool:
        """Whether the "Advanced options" section must open to show an error."""
        return any(name in self.errors for name in GROUPS["advanced"])

    @property
    def target_profiles(self) -> dict:
        """What the page's script needs to describe a target: the profiles of the columns it may choose
        (not an image set's pixels)."""
        choosable = {name for name, _ in self.fields["target"].choices}
        columns = [c for c in self.dataset.profile["columns"] if c["name"] in choosable]
        return {"columns": [self._with_metric(c) for c in columns]}

    @staticmethod
    def _with_metric(column: dict) -> dict:
        """The column's profile with the metric the form would pick were it the target, and why."""
        name, why = suggested_metric(target_counts(column), column["suggested_task"])
        return column | {"suggested_metric": name, "metric_reason": why}

    @property
    def strategy_descriptions(self) -> dict[str, str]:
        return {name: cls.description for name, cls in nas_engine.STRATEGIES.items()}

    @property
    def strategy_description(self) -> str:
        """The description of the strategy chosen now (bound value, else the default)."""
        value = self["strategy"].value()
        return self.strategy_descriptions.get(value, "")

    # --- validation --------------------------------------------------------------------------

    def clean(self):
        cleaned = super().clean()
        self._clean_objectives(cleaned)
        size_kb = cleaned.pop("max_size_kb", None)
        cleaned["max_size_bytes"] = size_kb * 1024 if size_kb else None
        memory_kb = cleaned.pop("max_memory_kb", None)
        cleaned["max_memory_bytes"] = memory_kb * 1024 if memory_kb else None
        target, task = cleaned.get("target"), cleaned.get("task")
        ignored = cleaned["ignore"] = list(cleaned.get("ignore") or [])  # add_error drops it from cleaned
        if not target or not task:
            return cleaned
        cleaned["column_types"] = self._column_types(cleaned, target)
        if target in ignored:
            self.add_error("ignore", f"Column '{target}' is the one to predict: untick it here.")
        elif len(ignored) >= len(self.dataset.column_names) - 1:
            self.add_error("ignore", "Every input column is ticked: leave at least one for the model to learn from.")
        column = self.dataset.column(target)
        if task == AUTO:
            task = column["suggested_task"]
        rows = self.dataset.rows
        try:
            nas_engine.check_target(
                target,
                task=task,
                numeric=column["kind"] == "numeric",
                classes=column["unique"],
                rows=rows - column["missing"],
                inputs_empty=all(
                    c["missing"] >= rows
                    for c in self.dataset.profile["columns"]
                    if c["name"] != target and c["name"] not in ignored
                ),
            )
        except nas_engine.TargetError as exc:
            self.add_error(exc.field, str(exc))
        cleaned["task"] = task
        self._clean_metric(cleaned, column, task)
        self._clean_split(cleaned, target)
        cleaned["class_weights"] = cleaned.get("class_weights") or "none"  # left out (an older page): none
        if cleaned["class_weights"] != "none" and task != SearchJob.Task.CLASSIFICATION:
            self.add_error("class_weights", "Class weights apply to classification; this target is a regression one.")
        self._clean_warm_start(cleaned, target)
        cleaned["augment"] = cleaned.get("augment") or SearchJob.Augment.NONE
        if cleaned["augment"] != SearchJob.Augment.NONE and not self._features_form_an_image(target):
            self.add_error("augment", "Augmentation changes images; this dataset's columns do not form an image.")
        space = SPACES.get(cleaned.get("space") or AUTO_SPACE)
        if space is not None and space.needs_image and not self._features_form_an_image(target):
            self.add_error(
                "space",
                f"{space.words[0]} needs pixel columns: s×s (or 3×s×s) numeric columns besides the target.",
            )
        elif "space" in cleaned and not self.has_error("target") and not self.has_error("task"):
            self._clean_limits(cleaned)
        return cleaned

    def _column_types(self, cleaned: dict, target: str) -> list[str]:
        """``COL=KIND`` for each column whose type is not left to detection (not the target's, nor
        an ignored column's); a date type on a column that does not look like dates gets a message."""
        chosen = []
        for i, name in enumerate(self.type_columns):
            kind = cleaned.pop(f"type_{i}", "") or AUTO
            if kind == AUTO or name == target or name in (cleaned.get("ignore") or []):
                continue
            if kind == "date" and not looks_like_dates(self.dataset.column(name)):
                self.add_error(f"type_{i}", f"Column '{name}' does not look like dates: keep it as detected.")
            chosen.append(f"{name}={kind}")
        return chosen

    def _clean_split(self, cleaned: dict, target: str) -> None:
        """``split`` from the kind and the column, checked against the profile: a time split needs a
        column of dates or numbers, a group split three groups, a split column only train /
        validation / test (the worker's ``prepare_data`` checks every row again)."""
        kind, name = cleaned.pop("split_kind", "") or "random", cleaned.pop("split_column", "") or ""
        ratio = cleaned.get("split_ratio") or None
        cleaned["split_ratio"] = ratio and "/".join(part.strip() for part in ratio.split("/"))
        cleaned["split"] = kind
        if kind == "random":
            return
        if not name:
            self.add_error("split_column", f"Choose the column to split by {kind}.")
            return
        if name == target:
            self.add_error("split_column", f"Column '{name}' is the one to predict: it cannot also decide the split.")
            return
        cleaned["split"] = f"{kind}:{name}"
        problem = split_problem(kind, self.dataset.column(name))
        if problem:
            self.add_error("split_column", problem)

    def _clean_metric(self, cleaned: dict, column: dict, task: str) -> None:
        """The metric: the one suggested from the target's class shares when left to the data, else the
        chosen one, which must belong to the task."""
        chosen = cleaned.get("metric") or AUTO
        if chosen == AUTO:
            cleaned["metric"], _ = suggested_metric(target_counts(column), task)
            return
        try:
            metric_named(chosen, task)
        except ValueError as exc:
            self.add_error("metric", str(exc))

    def _clean_warm_start(self, cleaned: dict, target: str) -> None:
        """The chosen earlier job (or None); it must have predicted the same column as this one."""
        earlier = self.warm_jobs.get(cleaned.get("warm_start_from") or "")
        cleaned["warm_start_from"] = earlier
        if earlier is not None and earlier.target != target:
            self.add_error(
                "warm_start_from",
                f"Search #{earlier.pk} predicted '{earlier.target}'; choose that column, or start fresh.",
            )

    def _clean_objectives(self, cleaned: dict) -> None:
        cost, third = cleaned.pop("cost_objective", None), cleaned.pop("third_objective", "")
        if third and third == cost:
            self.add_error("third_objective", "Choose a different cost from the first one, or nothing.")
        cleaned["objectives"] = ["score", cost, *([third] if third and third != cost else [])] if cost else []

    def _clean_limits(self, cleaned: dict) -> None:
        """Refuse a limit that not even the smallest network meets, next to that limit."""
        shape = self.data_shape(target=cleaned["target"], task=cleaned["task"])
        space = nas_engine.spaces.make_space(
            cleaned["space"],
            n_inputs=shape.n_inputs,
            image_shape=shape.image_shape,
            strategy=cleaned.get("strategy", ""),
        )
        try:
            nas_engine.check_limits(
                space,
                shape,
                max_params=cleaned.get("max_params"),
                max_flops=cleaned.get("max_flops"),
                max_size_bytes=cleaned.get("max_size_bytes"),
                max_memory_bytes=cleaned.get("max_memory_bytes"),
            )
        except nas_engine.NoNetworkFits as exc:
            self.add_error(LIMIT_FIELDS[exc.field], str(exc))
            return
        if self.errors:
            return  # the grid check builds a SearchConfig, which needs every value valid
        try:
            nas_engine.check_grid(nas_engine.SearchConfig(**self.engine_settings(cleaned)), shape)
        except nas_engine.GridTooLarge as exc:
            self.add_error(exc.field, str(exc))

    def _features_form_an_image(self, target: str) -> bool:
        kinds = [column["kind"] for column in self.dataset.profile["columns"] if column["name"] != target]
        return nas_engine.detect_image_shape(kinds) is not None

    # --- after validation --------------------------------------------------------------------

    def data_shape(self, *, target: str, task: str) -> nas_engine.DataShape:
        """Rows, encoded inputs and outputs of the dataset for this target and task (without the
        columns it ignores)."""
        cleaned = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return nas_engine.DataShape.from_profile(
            self.dataset.profile,
            target=target,
            task=task,
            ignore=cleaned.get("ignore") or (),
            column_types=cleaned.get("column_types") or (),
        )

    def estimate(self) -> nas_engine.Estimate:
        """About how many trials the valid settings buy (call after ``is_valid()``)."""
        config = nas_engine.SearchConfig(**self.engine_settings())
        shape = self.data_shape(target=config.target, task=self.cleaned_data["task"])
        # "0: one per idle worker" is only known when the search starts: priced as one at a time.
        space = nas_engine.spaces.make_space(
            config.space, n_inputs=shape.n_inputs, image_shape=shape.image_shape, strategy=config.strategy
        )
        speed = workers.training_speed(space.throughput, image=shape.image_shape is not None)
        return nas_engine.estimate_search(
            config, shape, parallel=self.cleaned_data.get("parallel_trials") or 1, speed=speed
        )

    def engine_settings(self, cleaned: dict | None = None) -> dict:
        """The cleaned values that are ``SearchConfig`` settings (the warm-start job and how many
        models train at once are the web app's)."""
        cleaned = self.cleaned_data if cleaned is None else cleaned
        return {name: value for name, value in cleaned.items() if name not in WEB_SETTINGS}

    def errors_by_field(self) -> dict[str, list[str]]:
        """Error messages keyed by field name ("__all__" for the form's own), for JSON."""
        return {name: [str(message) for message in messages] for name, messages in self.errors.items()}
