"""No blocking: every record in one block, every pair a candidate.

What a job without ``[blocking]`` uses, on sets small enough that the cross
product is cheap (see ``bigalign.runner.MAX_UNBLOCKED_PAIRS``); the pairing
stage splits the one block into tiles scored by several tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .base import Blocking

__all__ = ["CrossProductBlocking"]


class CrossProductBlocking(Blocking):
    """Every align record with every target record (the cross product)."""

    @property
    def n_slots(self) -> int:
        return 1

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        return np.ones((len(frame), 1), dtype=np.uint64)

    def describe(self) -> dict[str, Any]:
        return {"blocking": "none: every pair of records (the cross product)"}
