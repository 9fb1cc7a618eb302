"""Geographical neighbourhoods, exact within a radius.

Points become unit vectors in 3-D and fall into cubic cells whose side is the
chord of ``radius``: two points closer than ``radius`` lie in the same or in
adjacent cells. An align record goes to its cell; a target record joins its
cell and the 26 around it. Inside a block a haversine ``BallTree`` finds the
pairs within ``radius``, so candidates are exactly the pairs within the
radius — at the poles and across the antimeridian too, where a kd-tree on raw
latitude and longitude would be wrong.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import product

import numpy as np
import pandas as pd

from ..values.geo import EARTH_RADIUS_KM, haversine_angle
from .base import Blocking, mix64, salted_keys

__all__ = ["KDTreeBlocking"]

_NEIGHBOURS = np.array(list(product((0, -1, 1), repeat=3)), dtype=np.int64)  # (0, 0, 0) first


def _radians(frame: pd.DataFrame) -> np.ndarray:
    return np.radians(frame[["_lat", "_lon"]].to_numpy(dtype=np.float64))


class KDTreeBlocking(Blocking):
    """Pairs of records within ``radius_km`` of each other.

    Parameters
    ----------
    columns : (label, label)
        Latitude and longitude columns, in degrees.
    radius_km : float
    """

    asymmetric = True

    name = "kdtree"
    parameters = {"columns": list, "radius_km": (int, float)}

    def __init__(self, columns: Sequence[Hashable] = ("latitude", "longitude"), radius_km: float = 10.0):
        self.columns = list(columns)
        if len(self.columns) != 2:
            raise ValueError(f"KDTreeBlocking: 'columns' must be (latitude, longitude), got {columns!r}")
        if not radius_km > 0:
            raise ValueError(f"KDTreeBlocking: 'radius_km' must be positive, got {radius_km!r}")
        self.radius_km = float(radius_km)

    @property
    def n_slots(self) -> int:
        return len(_NEIGHBOURS)

    @property
    def _angle(self) -> float:
        return self.radius_km / EARTH_RADIUS_KM

    def extra(self, frame: pd.DataFrame) -> pd.DataFrame:
        coords = frame[self.columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        return pd.DataFrame({"_lat": coords[:, 0], "_lon": coords[:, 1]}, index=frame.index)

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        extra = self.extra(frame)
        lat, lon = np.radians(extra["_lat"].to_numpy()), np.radians(extra["_lon"].to_numpy())
        present = ~(np.isnan(lat) | np.isnan(lon))
        xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
        side_length = 2 * np.sin(min(self._angle, np.pi) / 2)
        cells = np.floor(np.nan_to_num(xyz) / side_length).astype(np.int64)
        offsets = _NEIGHBOURS[:1] if side == "align" else _NEIGHBOURS
        keys = np.zeros((len(frame), self.n_slots), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for slot, offset in enumerate(offsets):
                c = (cells + offset).astype(np.uint64)
                h = mix64(mix64(mix64(c[:, 0]) + c[:, 1]) + c[:, 2])
                keys[:, slot] = salted_keys(h, f"kdtree:{self.columns}", present)
        return keys

    def within_radius(self, extra_a: pd.DataFrame, extra_b: pd.DataFrame, ia: np.ndarray | None = None,
                      ib: np.ndarray | None = None) -> np.ndarray:
        """Whether rows ``ia`` of ``extra_a`` and ``ib`` of ``extra_b`` (or aligned rows) are within the radius."""
        a, b = _radians(extra_a), _radians(extra_b)
        if ia is not None:
            a, b = a[ia], b[ib]
        return haversine_angle(a[:, 0], a[:, 1], b[:, 0], b[:, 1]) <= self._angle

    def first_shared_slot(self, keys_a, keys_b, extra_a, extra_b, ia, ib):
        first = super().first_shared_slot(keys_a, keys_b, extra_a, extra_b, ia, ib)
        first[~self.within_radius(extra_a, extra_b, ia, ib)] = self.n_slots
        return first

    def candidate_pairs(self, key_a: np.ndarray, key_b: np.ndarray, extra_a: pd.DataFrame,
                        extra_b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if len(key_a) == 0 or len(key_b) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        from sklearn.neighbors import BallTree  # (here: scikit-learn takes a second to import)

        tree = BallTree(_radians(extra_b), metric="haversine")
        # A hair wider than the radius: the exact test is within_radius, in first_shared_slot().
        found = tree.query_radius(_radians(extra_a), r=self._angle * (1 + 1e-9))
        ia = np.repeat(np.arange(len(key_a)), [len(f) for f in found])
        ib = np.concatenate(found).astype(np.int64) if len(found) else np.empty(0, np.int64)
        same_block = key_a[ia] == key_b[ib]
        return ia[same_block], ib[same_block]
