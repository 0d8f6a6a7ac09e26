"""Named exceptions of the engine; their messages are meant to be shown to a user as they are."""


class NasError(Exception):
    """Base class of every error the engine raises on purpose."""


class DatasetError(NasError):
    """The uploaded data cannot be used (unreadable, too small, bad target column...)."""


class TargetError(DatasetError):
    """The target column cannot be learned as asked. ``field`` names the setting to change:
    ``"target"`` (choose another column) or ``"task"`` (choose the other task)."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class ConstraintError(NasError):
    """The search settings cannot be met (a limit no architecture fits, a bad budget...)."""
