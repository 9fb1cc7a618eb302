"""Reduce: the best target of each align record."""

from __future__ import annotations

import pandas as pd

from ..matching import best_match_per_item

__all__ = ["best_match"]


def best_match(links: pd.DataFrame) -> pd.DataFrame:
    """The reduce: best target per align id of a partition shuffled on align id."""
    return best_match_per_item(links)
