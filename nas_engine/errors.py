"""Named exceptions of the engine; their messages are meant to be shown to a user as they are."""


class NasError(Exception):
    """Base class of every error the engine raises on purpose."""


class DatasetError(NasError):
    """The uploaded data cannot be used (unreadable, too small, bad target column...)."""


class ConstraintError(NasError):
    """The search settings cannot be met (a limit no architecture fits, a bad budget...)."""


class SearchCancelled(NasError):
    """The search was stopped by the user before it finished."""
