"""Numbers and coordinates: read from text or tuples, and great-circle angles."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .columns import is_missing, map_distinct

__all__ = ["EARTH_RADIUS_KM", "coordinates", "haversine_angle", "number", "unreadable_points"]

EARTH_RADIUS_KM = 6371.0088


def number(value: Any) -> float:
    """A coordinate: NaN when missing, inf when present but not a finite number."""
    if is_missing(value):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf


def coordinates(values: pd.Series | pd.DataFrame, width: int | None, name: str) -> pd.DataFrame:
    """Coordinates as a float frame, from a frame or a Series of tuples: a
    point is NaN where missing (wholly or in part), inf where a value is
    present but not a finite number ("forty-eight", "48,85", "NaN", "1e400")."""
    if isinstance(values, pd.DataFrame):
        frame = pd.DataFrame({i: map_distinct(values[c], number).astype(np.float64)
                              for i, c in enumerate(values.columns)}, index=values.index)
    else:
        def to_tuple(v: Any) -> tuple:
            if isinstance(v, (list, tuple, np.ndarray)):
                return tuple(number(x) for x in v)
            return (number(v),)

        rows = [to_tuple(v) for v in values.tolist()]
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise ValueError(f"{name}: values have different numbers of coordinates: {sorted(widths)}")
        # An empty column has the width of one number (or of ``width``): what a frame of no rows
        # is expected to look like when it stands for a partition's layout.
        frame = pd.DataFrame(rows, index=values.index, dtype=np.float64,
                             columns=None if rows else range(width or 1))
    if width is not None and frame.shape[1] != width:
        raise ValueError(f"{name}: expected {width} coordinates per value, got {frame.shape[1]}")
    unreadable = np.isinf(frame.to_numpy()).any(axis=1)
    frame[frame.isna().any(axis=1).to_numpy() & ~unreadable] = np.nan  # a partly missing point is missing
    frame[unreadable] = np.inf
    return frame


def unreadable_points(frame: pd.DataFrame) -> np.ndarray:
    """Rows of :func:`coordinates` with a value that is not a finite number."""
    return np.isinf(frame.to_numpy()).any(axis=1)


def haversine_angle(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Central angle (radians) between points given in radians: exact across
    the antimeridian and at the poles (only sines of half-differences enter)."""
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
