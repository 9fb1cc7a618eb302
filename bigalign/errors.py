"""Errors the command line reports in one line (naming the file, row, column or key at fault)."""

from __future__ import annotations

__all__ = ["ClusterError", "RecordError"]


class ClusterError(ValueError):
    """A cluster that cannot be reached or started; the message says which and why."""


class RecordError(ValueError):
    """A value of one record that cannot be read; names the set, id and column."""
