"""A search job (one NAS run over a dataset) and its trials (one evaluated architecture each)."""

import dataclasses

from django.conf import settings
from django.db import models

from nas_engine.config import DEFAULT_FIDELITY, DEFAULT_STRATEGY, SearchConfig
from nas_engine.evaluator import CLASS_WEIGHTS
from nas_engine.metrics import METRICS, Metric, metric_named
from nas_engine.spaces import SPACES, detect_image_shape, resolved_space
from nas_engine.splits import Split
from nas_engine.strategies import STRATEGIES
from webapp.datasets.models import Dataset

# The one mapping between a job and the engine is ENGINE_SETTINGS (below SearchJob): its fields that
# are SearchConfig settings, by name (SearchJob.to_config passes them on, search_create takes them, a
# re-run copies them); WEB_SETTINGS are the web app's own. A new engine setting is its SearchConfig
# field (which is also the CLI's flag), a SearchJob field of the same name, and its form widget.
WEB_SETTINGS = ("name", "notes", "warm_start_from", "parallel_trials")
DEFAULT_OBJECTIVES = ("score", "params")
AUTO_SPACE = "auto"  # the engine picks the space from the data (nas_engine.make_space)


def space_choices() -> list[tuple[str, str]]:
    """ "auto", then every space of the engine (``nas_engine.spaces.SPACES``), in its own words: the
    form and the model read the engine's registry, so a new space needs no edit here."""
    spaces = [(name, f"{space.words[0]} ({space.words[1]})") for name, space in SPACES.items()]
    return [(AUTO_SPACE, "Detect automatically"), *spaces]


class SearchJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Task(models.TextChoices):
        CLASSIFICATION = "classification"
        REGRESSION = "regression"

    class Fidelity(models.TextChoices):
        NONE = "none", "Train every candidate fully"
        SUCCESSIVE_HALVING = "successive_halving", "Successive halving (more candidates, fewer epochs each)"
        HYPERBAND = "hyperband", "Hyperband"

    class Augment(models.TextChoices):
        NONE = "none", "None: the images as they are"
        SHIFT = "shift", "Shift by a few pixels (letters, shapes)"
        SHIFT_FLIP = "shift_flip", "Shift and mirror (photos)"

    ENDED = (Status.FINISHED, Status.FAILED, Status.CANCELLED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="search_jobs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="search_jobs")
    name = models.CharField(max_length=200, blank=True, help_text="The owner's name for the search; empty: '#id'.")
    notes = models.TextField(blank=True, max_length=5000)
    target = models.CharField(max_length=255)
    task = models.CharField(max_length=20, choices=Task.choices)
    strategy = models.CharField(max_length=40, default=DEFAULT_STRATEGY)
    space = models.CharField(max_length=20, choices=space_choices, default=AUTO_SPACE)
    fidelity = models.CharField(max_length=30, choices=Fidelity.choices, default=DEFAULT_FIDELITY)
    augment = models.CharField(max_length=20, choices=Augment.choices, default=Augment.NONE)
    objectives = models.JSONField(default=list, help_text='e.g. ["score", "params"]; the score first.')
    ignore = models.JSONField(
        default=list, blank=True, help_text='Input columns the model never sees (an ID, a leak), e.g. ["id"].'
    )
    seed = models.IntegerField(default=0)
    budget_seconds = models.PositiveIntegerField()
    max_trials = models.PositiveIntegerField(null=True, blank=True)
    max_params = models.PositiveBigIntegerField(null=True, blank=True)
    max_flops = models.PositiveBigIntegerField(null=True, blank=True)
    max_latency_ms = models.FloatField(null=True, blank=True)
    max_size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    compress = models.BooleanField(default=False, help_text="Also try pruned and int8 variants of the front.")
    class_weights = models.CharField(
        max_length=20, choices=[(name, name) for name in CLASS_WEIGHTS], default="none",
        help_text="balanced: each class's rows weigh alike in training (classification).",
    )  # fmt: skip
    metric = models.CharField(
        max_length=30, choices=[(name, m.label) for name, m in METRICS.items()], null=True, blank=True,
        help_text="What the search optimises and ranks by; empty: accuracy (classification) or R² (regression).",
    )  # fmt: skip
    column_types = models.JSONField(
        default=list, blank=True, help_text='How columns are read where not as detected, e.g. ["day=date"].'
    )
    split = models.CharField(
        max_length=300, default="random",
        help_text="How rows are divided: random, time:COLUMN, group:COLUMN or column:COLUMN (nas_engine.splits).",
    )  # fmt: skip
    split_ratio = models.CharField(
        max_length=40, null=True, blank=True, help_text="Train/validation/test shares, e.g. 70/15/15; empty: 60/20/20."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    preprocessing = models.JSONField(
        null=True, blank=True, help_text="Fitted on the training split; goes into bundles."
    )
    n_inputs = models.PositiveIntegerField(null=True, blank=True, help_text="Network inputs after encoding.")
    n_outputs = models.PositiveIntegerField(null=True, blank=True)
    recommended_number = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The default choice: the ensemble when it beats the best single model on validation, else that "
        "model (nas_engine.default_choice).",
    )
    smallest_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="The cheapest front trial within one standard error of the best score."
    )
    knee_number = models.PositiveIntegerField(
        null=True, blank=True, help_text="The front trial where extra cost starts buying little extra score."
    )
    reference = models.JSONField(
        null=True,
        blank=True,
        help_text="A default HistGradientBoosting model's score on the same validation rows (nas_engine.Reference).",
    )
    split_rows = models.JSONField(null=True, blank=True, help_text="Rows of each split: train, validation, test.")
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True, help_text="The latest progress message.")
    error = models.TextField(blank=True, help_text="Why the job failed, in words a user can act on.")
    worker_host = models.CharField(max_length=255, blank=True, help_text="The Celery worker running the job.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Times a worker has started this job.")
    dispatched = models.BooleanField(default=False, help_text="Its run_search message reached the broker.")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its run_search was last sent.")
    dispatches = models.PositiveSmallIntegerField(
        default=0, help_text="Times its run_search was sent since it was last queued (the reaper re-sends a lost one)."
    )
    seconds_used = models.FloatField(default=0.0, help_text="Search time spent by earlier, interrupted attempts.")
    parallel_trials = models.PositiveSmallIntegerField(
        default=0, help_text="Models trained at once, each by a worker; 0: one per idle worker when it starts."
    )
    trial_slots = models.PositiveSmallIntegerField(
        default=0, help_text="Models trained at once, decided when it started (0 or 1: one worker runs it all)."
    )
    driver_state = models.JSONField(
        null=True, blank=True, help_text="The strategy between driver steps of a search spread over workers."
    )
    driver_step = models.PositiveIntegerField(default=0, help_text="Driver steps taken (a spread-out search).")
    concluding = models.BooleanField(default=False, help_text="Its last trial reported; the front is being refit.")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    # An earlier job on data of the same columns whose trials (and supernet) this one starts from.
    warm_start_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="warm_started"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    budget_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A spread-out search's budget counts from here: its first model taken by a worker, not its claim.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Search #{self.pk} on {self.dataset} → {self.target}"

    @property
    def is_ended(self) -> bool:
        return self.status in self.ENDED

    @property
    def artifacts_dir(self) -> str:
        return str(settings.MEDIA_ROOT / "jobs" / str(self.pk))

    def to_config(self) -> SearchConfig:
        """The engine's settings of this job (its ``ENGINE_SETTINGS``): what the worker searches with."""
        values = {name: getattr(self, name) for name in ENGINE_SETTINGS}
        return SearchConfig(**values | {"objectives": tuple(self.objectives or DEFAULT_OBJECTIVES)})

    @property
    def display_name(self) -> str:
        """The owner's name for the search with its number, or just its number."""
        return f"{self.name} (#{self.pk})" if self.name else f"Search #{self.pk}"

    @property
    def strategy_label(self) -> str:
        """The strategy in words ("Bayesian optimisation (TPE)"), as the form lists it."""
        cls = STRATEGIES.get(self.strategy)
        return (getattr(cls, "label", "") or self.strategy) if cls else self.strategy

    @property
    def space_label(self) -> str:
        """The kind of network searched, in words: the chosen space, or the one the engine picks from
        the data for "auto" (``spaces.resolved_space``: CNNs when the inputs form an image)."""
        skipped = {self.target, *(self.ignore or [])}
        kinds = [c["kind"] for c in self.dataset.profile["columns"] if c["name"] not in skipped]
        name = resolved_space(self.space, image=detect_image_shape(kinds) is not None, strategy=self.strategy)
        words = SPACES[name].words[0] if name in SPACES else name
        return f"{words} (chosen from the data)" if self.space == AUTO_SPACE else words

    @property
    def split_words(self) -> str:
        """How the rows were divided, in a few words."""
        return Split.parse(self.split).words()

    @property
    def scored_by(self) -> Metric:
        """The metric the trials' scores measure (the task's default when none was chosen)."""
        return metric_named(self.metric, self.task)

    def to_dict(self) -> dict:
        return {
            "id": self.pk,
            "name": self.name,
            "notes": self.notes,
            "dataset": self.dataset.name,
            "target": self.target,
            "task": self.task,
            "strategy": self.strategy,
            "space": self.space,
            "fidelity": self.fidelity,
            "objectives": self.objectives,
            "ignore": self.ignore,
            "class_weights": self.class_weights,
            "metric": self.scored_by.name,
            "column_types": self.column_types,
            "split": self.split,
            "split_ratio": self.split_ratio,
            "seed": self.seed,
            "budget_seconds": self.budget_seconds,
            "max_trials": self.max_trials,
            "max_params": self.max_params,
            "max_flops": self.max_flops,
            "max_latency_ms": self.max_latency_ms,
            "max_size_bytes": self.max_size_bytes,
            "max_memory_bytes": self.max_memory_bytes,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "error": self.error,
            "recommended": self.recommended_number,
            "smallest": self.smallest_number,
            "knee": self.knee_number,
            "reference": self.reference,
            "worker_host": self.worker_host,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


ENGINE_SETTINGS = tuple(
    setting.name
    for setting in dataclasses.fields(SearchConfig)
    if setting.name in {field.name for field in SearchJob._meta.concrete_fields}
)


class Trial(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed"
        PRUNED = "pruned"
        REJECTED = "rejected"
        FAILED = "failed"

    WITH_MODEL = (Status.COMPLETED, Status.PRUNED)  # trained, so it has weights and a score

    job = models.ForeignKey(SearchJob, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices)
    architecture = models.JSONField()
    arch_hash = models.CharField(max_length=40)
    metrics = models.JSONField(default=dict, help_text="On the validation split.")
    test_metrics = models.JSONField(default=dict, blank=True, help_text="Of the refit model, on the test split.")
    score = models.FloatField(
        null=True, blank=True, help_text="The search's metric as a score: its value, or minus it where lower is better."
    )
    params = models.PositiveBigIntegerField()
    flops = models.PositiveBigIntegerField()
    latency_ms = models.FloatField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField()
    memory_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Peak inference memory per prediction: weights plus live activations."
    )
    train_seconds = models.FloatField(default=0.0)
    on_front = models.BooleanField(default=False, db_index=True)
    message = models.TextField(blank=True)
    weights_path = models.CharField(max_length=500, blank=True)
    final_weights_path = models.CharField(max_length=500, blank=True, help_text="Refit on train+validation.")
    served_weights_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Trained again on every row (the test split's too) after its test score was taken: what its "
        "bundle and predictions use.",
    )
    test_evaluation = models.JSONField(
        default=dict, blank=True, help_text="Confusion matrix or residuals on the test split, computed once."
    )
    elapsed_seconds = models.FloatField(
        null=True, blank=True, help_text="Search time when the trial ended (earlier attempts included)."
    )
    worker_host = models.CharField(max_length=255, blank=True, help_text="The Celery worker that trained it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="unique_trial_number_per_job")]

    def __str__(self) -> str:
        return f"Trial {self.number} of search #{self.job_id}"

    @property
    def shown_score(self) -> float | None:
        """The score as the search's metric's own value (an RMSE rather than minus it)."""
        return None if self.score is None else self.job.scored_by.shown(self.score)

    @property
    def scored_weights(self) -> str:
        """The weights its test score came from: the refit on train+validation, else as searched."""
        return self.final_weights_path or self.weights_path

    @property
    def served_weights(self) -> str:
        """The weights its bundle and predictions use: trained on every row when that was done."""
        return self.served_weights_path or self.scored_weights

    def to_dict(self) -> dict:
        return {
            "id": self.pk,
            "number": self.number,
            "status": self.status,
            "architecture": self.architecture,
            "metrics": self.metrics,
            "test_metrics": self.test_metrics,
            "score": self.score,
            "costs": {
                "params": self.params,
                "flops": self.flops,
                "latency_ms": self.latency_ms,
                "size_bytes": self.size_bytes,
                "memory_bytes": self.memory_bytes,
            },
            "train_seconds": self.train_seconds,
            "on_front": self.on_front,
            "message": self.message,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "elapsed_seconds": self.elapsed(),
        }

    def elapsed(self) -> float | None:
        """Seconds of search time when this trial ended; for rows saved before that was stored, the
        time since its job started (also right unless the job was resumed)."""
        if self.elapsed_seconds is not None:
            return self.elapsed_seconds
        started = self.job.started_at or self.job.created_at
        return max(0.0, (self.created_at - started).total_seconds()) if self.created_at and started else None


class PendingTrial(models.Model):
    """A trial of a spread-out search, planned by its driver and not reported yet: the database
    is where any worker finds it, and where the reaper finds one whose worker died."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"

    job = models.ForeignKey(SearchJob, on_delete=models.CASCADE, related_name="pending_trials")
    number = models.PositiveIntegerField()
    architecture = models.JSONField()
    arch_hash = models.CharField(max_length=40)
    costs = models.JSONField(help_text="Analytic costs, as the engine computed them when it was planned.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    queue = models.CharField(max_length=200, help_text="The Celery queue it was sent to.")
    attempt = models.PositiveSmallIntegerField(
        default=1, help_text="Times it was sent to a worker; a message of an earlier send is skipped."
    )
    worker_host = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from its worker.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="unique_pending_number_per_job")]

    def __str__(self) -> str:
        return f"Trial {self.number} of search #{self.job_id} ({self.state})"

    def to_planned(self):
        from nas_engine.parallel import PlannedTrial

        return PlannedTrial.from_dict(
            {"number": self.number, "architecture": self.architecture, "arch_hash": self.arch_hash, "costs": self.costs}
        )


class SearchLogEntry(models.Model):
    """One line of a job's status log: written when the job's message changes, not on every tick."""

    job = models.ForeignKey(SearchJob, on_delete=models.CASCADE, related_name="log_entries")
    status = models.CharField(max_length=20, choices=SearchJob.Status.choices)
    message = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["job", "id"]

    def __str__(self) -> str:
        return f"{self.created_at:%H:%M:%S} {self.message}"

    def to_dict(self) -> dict:
        return {"id": self.pk, "status": self.status, "message": self.message, "at": self.created_at.isoformat()}
