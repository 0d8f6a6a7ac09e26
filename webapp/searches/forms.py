"""The new-search form: target, task, constraints and budget, checked against the dataset profile."""

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

import nas_engine
from webapp.searches.models import SearchJob

AUTO = "auto"


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
    max_params = forms.IntegerField(
        label="At most this many parameters", required=False, min_value=1,
        help_text="Leave empty for no limit. Larger models are rejected before training.",
    )  # fmt: skip
    max_trials = forms.IntegerField(
        label="At most this many models", required=False, min_value=1, max_value=10_000,
        help_text="Leave empty to search until the time budget runs out.",
    )  # fmt: skip
    strategy = forms.ChoiceField(label="Search strategy", initial="random")
    seed = forms.IntegerField(label="Random seed", initial=0, min_value=0, max_value=2**31 - 1)

    def __init__(self, *args, dataset, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset
        columns = dataset.column_names
        self.fields["target"].choices = [(name, name) for name in columns]
        self.fields["target"].initial = columns[-1]
        self.fields["strategy"].choices = [(name, name) for name in nas_engine.STRATEGIES]
        budget = self.fields["budget_seconds"]
        budget.widget.attrs.update(min=5, max=settings.MAX_BUDGET_SECONDS)
        budget.validators.append(MaxValueValidator(settings.MAX_BUDGET_SECONDS))

    def clean(self):
        cleaned = super().clean()
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
        cleaned["task"] = task
        return cleaned
