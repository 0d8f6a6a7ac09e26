"""The new-search form: target, task, constraints and budget, checked against the dataset profile."""

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

import nas_engine
from webapp.searches.models import SearchJob

AUTO = "auto"
COSTS = [
    ("params", "Parameters"),
    ("flops", "FLOPs (multiply-adds per prediction)"),
    ("latency_ms", "Latency (ms per prediction on the worker's CPU)"),
    ("size_bytes", "Model size (bytes)"),
]


def _strategy_choices() -> list[tuple[str, str]]:
    return [(name, getattr(cls, "label", "") or name) for name, cls in nas_engine.STRATEGIES.items()]


class SearchJobForm(forms.Form):
    target = forms.ChoiceField(
        label="Predict column", error_messages={"invalid_choice": "Column %(value)s is not in this dataset."}
    )
    task = forms.ChoiceField(
        choices=[(AUTO, "Detect automatically"), *SearchJob.Task.choices], initial=AUTO, label="Task"
    )
    budget_seconds = forms.IntegerField(
        label="Time budget (seconds)", min_value=5, initial=60,
        widget=forms.NumberInput(attrs={"type": "range", "step": 5}),
    )  # fmt: skip
    cost_objective = forms.ChoiceField(label="Trade accuracy against", choices=COSTS, initial="params")
    third_objective = forms.ChoiceField(
        label="…and also against", choices=[("", "nothing else"), *COSTS], required=False
    )
    max_params = forms.IntegerField(
        label="At most this many parameters", required=False, min_value=1,
        help_text="Leave the limits empty for none. Larger models are rejected before training.",
    )  # fmt: skip
    max_flops = forms.IntegerField(label="At most this many FLOPs per prediction", required=False, min_value=1)
    max_latency_ms = forms.FloatField(
        label="At most this latency (ms per prediction)", required=False, min_value=0.001,
        help_text="Measured on the worker's CPU after training, batch of one.",
    )  # fmt: skip
    max_size_kb = forms.IntegerField(label="At most this model size (KB)", required=False, min_value=1)
    max_trials = forms.IntegerField(
        label="At most this many models", required=False, min_value=1, max_value=10_000,
        help_text="Leave empty to search until the time budget runs out.",
    )  # fmt: skip
    strategy = forms.ChoiceField(label="Search strategy", initial="random")
    space = forms.ChoiceField(label="Kind of network", choices=SearchJob.Space.choices, initial=SearchJob.Space.AUTO)
    fidelity = forms.ChoiceField(label="Training", choices=SearchJob.Fidelity.choices, initial=SearchJob.Fidelity.NONE)
    seed = forms.IntegerField(label="Random seed", initial=0, min_value=0, max_value=2**31 - 1)

    def __init__(self, *args, dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        columns = dataset.column_names
        self.fields["target"].choices = [(name, name) for name in columns]
        self.fields["target"].initial = columns[-1]
        self.fields["strategy"].choices = _strategy_choices()
        budget = self.fields["budget_seconds"]
        budget.widget.attrs.update(min=5, max=settings.MAX_BUDGET_SECONDS)
        budget.validators.append(MaxValueValidator(settings.MAX_BUDGET_SECONDS))

    def clean(self):
        cleaned = super().clean()
        self._clean_objectives(cleaned)
        size_kb = cleaned.pop("max_size_kb", None)
        cleaned["max_size_bytes"] = size_kb * 1024 if size_kb else None
        target, task = cleaned.get("target"), cleaned.get("task")
        if not target or not task:
            return cleaned
        column = self.dataset.column(target)
        if task == AUTO:
            task = column["suggested_task"]
        if task == SearchJob.Task.REGRESSION and column["kind"] != "numeric":
            self.add_error("task", f"Regression needs a numeric target; '{target}' holds text.")
        if task == SearchJob.Task.CLASSIFICATION and column["unique"] < 2:
            self.add_error("target", f"'{target}' has only one distinct value; a model needs at least two classes.")
        if column["missing"] >= self.dataset.rows:
            self.add_error("target", f"'{target}' is empty in every row.")
        if cleaned.get("space") == SearchJob.Space.CNN and not self._features_form_an_image(target):
            self.add_error(
                "space",
                "Convolutional networks need pixel columns: s×s (or 3×s×s) numeric columns besides the target.",
            )
        cleaned["task"] = task
        return cleaned

    def _clean_objectives(self, cleaned: dict) -> None:
        cost, third = cleaned.pop("cost_objective", None), cleaned.pop("third_objective", "")
        if third and third == cost:
            self.add_error("third_objective", "Choose a different cost from the first one, or nothing.")
        cleaned["objectives"] = ["score", cost, *([third] if third and third != cost else [])] if cost else []

    def _features_form_an_image(self, target: str) -> bool:
        kinds = [column["kind"] for column in self.dataset.profile["columns"] if column["name"] != target]
        return nas_engine.detect_image_shape(kinds) is not None
