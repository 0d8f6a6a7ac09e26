"""Structured logs: one JSON object per line, carrying the search job id when one is known.

The worker sets the job id for the duration of a task (see `webapp.operations.signals`); any
record logged meanwhile, by our code, Celery or a library, gets it. A record may also pass
`extra={"job_id": ...}` itself.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

current_job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged too.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JobIdFilter(logging.Filter):
    """Puts `job_id` on every record (None outside a job), so any format can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, job_id, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None) or current_job_id.get(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
