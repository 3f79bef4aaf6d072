"""The exceptions mlsmith raises.

Every error a user can fix derives from :class:`MlsmithError` (the CLI prints its message on one
line and exits with code 2). Built-in bases are added where they help callers that already catch
``ValueError`` or ``FileNotFoundError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "MlsmithError",
    "DataError",
    "DataFileNotFoundError",
    "ColumnNotFoundError",
    "TargetError",
    "AuditError",
    "ConfigError",
    "RunDirError",
    "IntegrityError",
    "BudgetExceededError",
    "MissingDependencyError",
]


class MlsmithError(Exception):
    """Root of the errors a user can act on: the message names the problem and the fix."""


class DataError(MlsmithError, ValueError):
    """The input table cannot be used as it is (unreadable, empty, malformed values)."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """The data file does not exist."""


class ColumnNotFoundError(DataError, KeyError):
    """A column the caller named, or the model needs, is not in the table."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TargetError(DataError):
    """The target column cannot be learned (all missing, a single class, ...)."""


class AuditError(DataError):
    """The data audit found a problem that stops the fit (a column leaking the target, ...).

    The message names the check, the column(s), the evidence and the fix (``--drop COLUMN`` or
    ``--allow CHECK``); ``findings`` holds the audit findings behind it.
    """

    def __init__(self, message: str, findings: list | None = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])


class ConfigError(MlsmithError, ValueError):
    """An option has a value that cannot work (negative time limit, unknown metric, ...)."""


class RunDirError(MlsmithError):
    """A path is not a run directory, or a run directory is incomplete."""


class IntegrityError(RunDirError):
    """A run directory's files or library versions do not match its manifest."""


class BudgetExceededError(MlsmithError, TimeoutError):
    """Not even the fastest baseline fitted within the time limit."""


class MissingDependencyError(MlsmithError, ImportError):
    """An optional package is needed; the message says which extra installs it."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" Did you mean 'a' or 'b'?"`` for the closest choices, or ``""``."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=n, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if str(name).lower() in lowered:
            close = [lowered[str(name).lower()]]
    if not close:
        return ""
    quoted = " or ".join(repr(c) for c in close)
    return f" Did you mean {quoted}?"
