"""What the API takes and answers, as pydantic schemas (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field


class Errors(Schema):
    """A refused request: each field's messages (``__all__`` for the request as a whole)."""

    errors: dict[str, list[str]]


class Message(Schema):
    detail: str


class DatasetOut(Schema):
    id: int
    name: str
    original_filename: str
    rows: int
    columns: int
    size_bytes: int
    created_at: str
    kind: str = Field(description="'table' or 'images'")
    profile: dict[str, Any] | None = Field(None, description="Columns, warnings and leakage; in the detail only")


class SearchIn(Schema):
    """A new search: the dataset, the column to predict and any of the page's settings, by the form's
    names and units. A setting left out takes the value the page starts with for this dataset."""

    dataset: int
    target: str
    task: str | None = Field(None, description="auto, classification or regression")
    name: str | None = Field(None, description="A name for the search, shown in lists")
    notes: str | None = None
    ignore: list[str] | None = Field(None, description="Columns the model must not use")
    column_types: dict[str, str] | None = Field(None, description="column: auto | numeric | categorical | date")
    split_kind: str | None = Field(None, description="random, time, group or column")
    split_column: str | None = None
    split_ratio: str | None = Field(None, description="train/validation/test shares, e.g. 70/15/15")
    metric: str | None = Field(None, description="auto, or a metric of the task (accuracy, rmse, ...)")
    cost_objective: str | None = Field(None, description="params, flops, latency_ms, size_bytes or memory_bytes")
    third_objective: str | None = None
    max_params: int | None = None
    max_flops: int | None = None
    max_latency_ms: float | None = None
    max_size_kb: int | None = None
    max_memory_kb: int | None = None
    budget_seconds: int | None = None
    max_trials: int | None = None
    parallel_trials: int | None = None
    strategy: str | None = None
    space: str | None = None
    fidelity: str | None = None
    augment: str | None = None
    compress: bool | None = None
    class_weights: str | None = None
    warm_start_from: int | None = Field(None, description="The id of an earlier finished search to learn from")
    seed: int | None = None


class TrialOut(Schema):
    id: int
    number: int
    status: str
    score: float | None
    metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    costs: dict[str, Any]
    architecture: dict[str, Any]
    on_front: bool
    train_seconds: float | None
    message: str
    bundle_url: str | None
    predict_url: str | None


class SearchOut(Schema):
    id: int
    dataset: int
    name: str
    notes: str
    status: str
    progress: float
    message: str
    error: str
    settings: dict[str, Any]
    metric: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    trials: int
    front: list[TrialOut] | None = None
    recommended: TrialOut | None = None


class SearchList(Schema):
    count: int
    results: list[SearchOut]


class DatasetList(Schema):
    count: int
    results: list[DatasetOut]


class PredictIn(Schema):
    rows: list[dict[str, Any]] = Field(description="Raw rows, column: value, as in the training file")


class PredictOut(Schema):
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = Field(None, description="Each class's probability (classification)")


class Preparing(Schema):
    """The file is being made by a worker: ask again after Retry-After seconds."""

    state: str
    progress: float
    message: str


class Cancelled(Schema):
    cancelled: bool
    search: SearchOut
