"""The errors bigalign raises for what a user can mend: the command line reports each in one line.

Each names the file, row, column or key at fault. Anything else that
reaches the command line is a bug, shown with its traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BigalignError", "ClusterError", "InputError", "InvalidValueError", "JobError", "RecordError",
           "UserCodeError"]


class BigalignError(ValueError):
    """Base of the errors a user can mend (a ValueError: a value given was wrong).

    ``field`` is the job's key at fault when there is one (``treatments[0].weight``,
    ``alignset.path``): the web application shows the message next to that field.
    """

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.field = field


class JobError(BigalignError):
    """A job file that is not valid; the message names the file and key."""


class InputError(BigalignError):
    """An input that cannot be read at all (missing file, unknown column, mixed types)."""


class RecordError(BigalignError):
    """A value of one record that cannot be read; names the set, id and column."""


class UserCodeError(BigalignError):
    """A job's own function (a metric, a normalizer named by import path) that failed on a value: which, on
    what, and its error."""


class ClusterError(BigalignError):
    """A cluster that cannot be reached or started; the message says which and why."""


class InvalidValueError(BigalignError):
    """A value that a metric cannot read (an unparsable date, a latitude of 95).

    ``row`` is the position of the value in the column it came from.
    """

    def __init__(self, metric: str, row: int, value: Any, reason: str):
        self.metric, self.row, self.value, self.reason = metric, row, value, reason
        super().__init__(f"row {row}: {metric}: {reason}: {value!r}")
