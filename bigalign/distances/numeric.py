"""Metrics of numbers: dates (days, months, years), geographical coordinates, vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..values.dates import EPOCH_ORDINAL, parse_dates, year_and_month
from ..values.geo import EARTH_RADIUS_KM, coordinates, haversine_angle, unreadable_points
from .base import Metric, first_invalid

__all__ = ["EuclideanMetric", "GeographicalMetric", "ScaledMetric", "TemporalMetric"]


class ScaledMetric(Metric):
    """Unbounded metrics; normalized means ``min(raw / scale, 1)``."""

    parameters = {"scale": (int, float)}

    def __init__(self, scale: float | None = None, missing: float | None = None):
        super().__init__(missing)
        if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(f"{self.name}: 'scale' must be a positive number, got {scale!r}")
        self.scale = None if scale is None else float(scale)

    def check(self, attribute: Any, normalized: bool) -> None:
        if normalized and self.scale is None:
            raise ValueError(f"{self.name}: normalized distances need 'scale', the raw distance that maps to 1")

    def _scaled(self, raw: np.ndarray, normalized: bool) -> np.ndarray:
        if not normalized:
            return raw
        if self.scale is None:
            raise ValueError(
                f"{self.name}: normalized distances need 'scale', the raw distance that maps to 1"
            )
        return np.minimum(raw / self.scale, 1.0)

    def _cdist(self, a, b, normalized):
        return self._scaled(self._raw(a.to_numpy(np.float64)[:, None, :], b.to_numpy(np.float64)[None, :, :]),
                            normalized)

    def _cpdist(self, a, b, ia, ib, normalized):
        return self._scaled(self._raw(a.to_numpy(np.float64)[ia], b.to_numpy(np.float64)[ib]), normalized)

    def _raw(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TemporalMetric(ScaledMetric):
    """Absolute difference between dates, in days, months or years.

    Months and years count calendar boundaries: 31 Jan → 1 Feb is one month.
    Each distinct value is parsed once per column (see :func:`parse_date`).
    """

    name = "temporal"
    _GRANULARITIES = ("days", "months", "years")

    parameters = {"granularity": str, "dayfirst": bool}

    def __init__(self, granularity: str = "days", dayfirst: bool = True, scale: float | None = None,
                 missing: float | None = None):
        super().__init__(scale, missing)
        if granularity not in self._GRANULARITIES:
            raise ValueError(f"temporal: 'granularity' must be one of {self._GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self.dayfirst = bool(dayfirst)

    def _numbers(self, values: pd.Series) -> np.ndarray:
        if isinstance(values, pd.DataFrame):
            raise ValueError(f"temporal compares one column, not {list(values.columns)}")
        ordinals = parse_dates(values, self.dayfirst)
        if self.granularity == "days":
            return ordinals
        known = np.isfinite(ordinals)
        year, month = year_and_month(np.where(known, ordinals, EPOCH_ORDINAL))
        numbers = year * 12 + month - 1 if self.granularity == "months" else year
        return np.where(known, numbers, ordinals)

    invalid_reason = "unparsable date"

    def check(self, attribute, normalized):
        super().check(attribute, normalized)
        if isinstance(attribute, tuple):
            raise ValueError(f"temporal compares one column, not {list(attribute)}")

    def invalid(self, values):
        return np.isneginf(self._numbers(values))

    def encode(self, values):
        numbers = self._numbers(values)
        first_invalid(self.name, np.isneginf(numbers), values, "unparsable date")
        return pd.DataFrame({"t": numbers}, index=values.index)

    def _raw(self, a, b):
        return np.abs(a[..., 0] - b[..., 0])


class GeographicalMetric(ScaledMetric):
    """Great-circle (haversine) distance between (latitude, longitude) in degrees.

    Exact across the antimeridian and at the poles: only the sines of the
    half-differences enter the formula. (Nazca's ``geographical`` is an
    equirectangular approximation, within 0.1% of this only below ~30 km and
    off by thousands of kilometres between distant points.)
    """

    name = "geographical"

    parameters = {"units": str}

    def __init__(self, units: str = "m", scale: float | None = None, missing: float | None = None):
        super().__init__(scale, missing)
        if units not in ("m", "km"):
            raise ValueError(f"geographical: 'units' must be 'm' or 'km', got {units!r}")
        self.units = units

    def check(self, attribute, normalized):
        super().check(attribute, normalized)
        if isinstance(attribute, tuple) and len(attribute) != 2:
            raise ValueError(f"geographical compares (latitude, longitude): two columns, not {list(attribute)}")

    def reject_reasons(self, values):
        try:
            frame = coordinates(values, 2, self.name)
        except (TypeError, ValueError):
            return np.full(len(values), "not a pair of coordinates", dtype=object)
        lat, lon = frame[0].to_numpy(), frame[1].to_numpy()
        out_of_range = ((np.abs(lat) > 90) | (np.abs(lon) > 180)) & np.isfinite(lat) & np.isfinite(lon)
        reasons = np.full(len(values), None, dtype=object)
        reasons[out_of_range] = "coordinates out of range"
        reasons[unreadable_points(frame)] = "not a number"
        return reasons

    def invalid(self, values):
        return self.reject_reasons(values) != None  # noqa: E711 (element-wise)

    def encode(self, values):
        frame = coordinates(values, 2, self.name)
        lat, lon = frame[0].to_numpy(), frame[1].to_numpy()
        first_invalid(self.name, unreadable_points(frame), values, "not a number")
        first_invalid(self.name, np.abs(lat) > 90, values, "latitude out of [-90, 90]")
        first_invalid(self.name, np.abs(lon) > 180, values, "longitude out of [-180, 180]")
        return pd.DataFrame({"lat": lat, "lon": lon}, index=values.index)

    def _raw(self, a, b):
        radius = EARTH_RADIUS_KM * (1000.0 if self.units == "m" else 1.0)
        return radius * haversine_angle(np.radians(a[..., 0]), np.radians(a[..., 1]), np.radians(b[..., 0]),
                                        np.radians(b[..., 1]))


class EuclideanMetric(ScaledMetric):
    """Euclidean distance between numbers or tuples of numbers."""

    name = "euclidean"

    invalid_reason = "not a number"

    def invalid(self, values):
        try:
            return unreadable_points(coordinates(values, None, self.name))
        except (TypeError, ValueError):
            return np.ones(len(values), dtype=bool)

    def encode(self, values):
        frame = coordinates(values, None, self.name)
        first_invalid(self.name, unreadable_points(frame), values, "not a number")
        frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        return frame

    def _raw(self, a, b):
        total = np.zeros(np.broadcast_shapes(a.shape, b.shape)[:-1])
        for k in range(a.shape[-1]):  # the same summation order in both forms
            total += (a[..., k] - b[..., k]) ** 2
        return np.sqrt(total)
