"""Worker-side hooks: tag log records with the running task's job id, and keep Celery from
replacing the JSON logging that Django's LOGGING already set up."""

from __future__ import annotations

import inspect
import logging

from celery import signals

from webapp.logging import current_job_id

_tokens: dict[str, object] = {}  # task id -> contextvar token, reset when the task ends


def job_id_of(task, args, kwargs) -> int | None:
    """The `job_id` argument of a task call, positional or by keyword; None if it has none."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except (TypeError, ValueError):
        return None
    job_id = bound.arguments.get("job_id")
    return job_id if isinstance(job_id, int) else None


def _on_task_prerun(*, task_id, task, args=None, kwargs=None, **_) -> None:
    _tokens[task_id] = current_job_id.set(job_id_of(task, args, kwargs))


def _on_task_postrun(*, task_id, **_) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        current_job_id.reset(token)


def _keep_django_logging(**_) -> None:
    # A receiver on setup_logging tells Celery not to hijack the root logger: the worker keeps
    # the handlers that django.setup() configured from settings.LOGGING (JSON lines).
    logging.getLogger(__name__).debug("Celery keeps the logging configured by Django")


def connect() -> None:
    signals.task_prerun.connect(_on_task_prerun, dispatch_uid="operations.job_id.prerun", weak=False)
    signals.task_postrun.connect(_on_task_postrun, dispatch_uid="operations.job_id.postrun", weak=False)
    signals.setup_logging.connect(_keep_django_logging, dispatch_uid="operations.logging", weak=False)
