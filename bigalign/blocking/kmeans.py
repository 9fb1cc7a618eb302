"""Mini-batch k-means on numeric attributes: records meet in clusters.

Centroids are fitted by scikit-learn's ``MiniBatchKMeans`` on a sample of the
records chosen by a hash of their identifiers, so the fit (and every result
after it) does not depend on how the sets are partitioned.

An align record goes to its nearest centroid; a target record joins its
``overlap`` nearest centroids, so a pair close to a cluster border is not
lost. With ``radius``, a target joins only the centroids within
``d_nearest + 2·radius``: every pair closer than ``radius`` then meets
(triangle inequality), as long as ``overlap`` slots suffice.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import Blocking, hash_values, salted_keys

__all__ = ["MiniBatchKMeansBlocking"]


def _points(frame: pd.DataFrame, columns: Sequence[Hashable]) -> np.ndarray:
    return frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


class MiniBatchKMeansBlocking(Blocking):
    """Blocks are the clusters of ``MiniBatchKMeans`` on numeric columns.

    Parameters
    ----------
    columns : sequence of labels
        Numeric columns (coordinates, years, measures).
    n_clusters : int
    overlap : int
        Nearest centroids a target record joins.
    radius : float, optional
        See the module docstring.
    sample_size : int
        Records (of both sets) the centroids are fitted on.
    random_state : int
    """

    asymmetric = True

    name = "kmeans"
    parameters = {"columns": list, "n_clusters": int, "overlap": int, "radius": (int, float), "sample_size": int,
                  "random_state": int}

    def __init__(self, columns: Sequence[Hashable], n_clusters: int = 100, overlap: int = 2,
                 radius: float | None = None, sample_size: int = 100_000, random_state: int = 0):
        self.columns = list(columns)
        if not isinstance(n_clusters, int) or n_clusters < 1:
            raise ValueError(f"MiniBatchKMeansBlocking: 'n_clusters' must be a positive integer, got {n_clusters!r}")
        if not isinstance(overlap, int) or not 1 <= overlap <= n_clusters:
            raise ValueError(f"MiniBatchKMeansBlocking: 'overlap' must be in [1, n_clusters], got {overlap!r}")
        self.n_clusters, self.overlap, self.radius = n_clusters, overlap, radius
        self.sample_size, self.random_state = int(sample_size), int(random_state)
        self.centroids_: np.ndarray | None = None

    @property
    def n_slots(self) -> int:
        return self.overlap

    def _sample(self, frame: pd.DataFrame, fraction: float) -> pd.DataFrame:
        h = hash_values(frame.iloc[:, 0])
        keep = (h >> np.uint64(11)) < np.uint64(int(fraction * 2 ** 53))
        return frame[keep].assign(_h=h[keep])

    def fit(self, alignset: Any, targetset: Any) -> "MiniBatchKMeansBlocking":
        import dask.dataframe as dd

        parts = []
        for records in (alignset, targetset):
            columns = [records.columns[0], *self.columns]
            if isinstance(records, dd.DataFrame):
                n = len(records)
                fraction = min(1.0, self.sample_size / max(1, 2 * n))
                parts.append(records[columns].map_partitions(self._sample, fraction).compute())
            else:
                fraction = min(1.0, self.sample_size / max(1, 2 * len(records)))
                parts.append(self._sample(records[columns], fraction))
        # Sort by hash so the fit sees the same rows in the same order whatever the partitioning.
        sample = pd.concat(parts, ignore_index=True).sort_values("_h", kind="mergesort")
        points = _points(sample, self.columns)
        points = points[~np.isnan(points).any(axis=1)]
        if len(points) < self.n_clusters:
            raise ValueError(f"MiniBatchKMeansBlocking: {len(points)} sampled points for {self.n_clusters} clusters")
        from sklearn.cluster import MiniBatchKMeans  # (here: scikit-learn takes a second to import)

        model = MiniBatchKMeans(n_clusters=self.n_clusters, random_state=self.random_state, n_init=3,
                                batch_size=4096)
        self.centroids_ = model.fit(points).cluster_centers_
        return self

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        if self.centroids_ is None:
            raise RuntimeError("MiniBatchKMeansBlocking must be fitted before use")
        points = _points(frame, self.columns)
        present = ~np.isnan(points).any(axis=1)
        points = np.where(present[:, None], points, 0.0)
        d = np.sqrt(((points[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(-1))
        order = np.argsort(d, axis=1, kind="stable")[:, : self.overlap]
        keys = np.zeros((len(frame), self.overlap), dtype=np.uint64)
        salt = f"kmeans:{self.columns}"
        if side == "align":
            keys[:, 0] = salted_keys(order[:, 0].astype(np.uint64), salt, present)
            return keys
        nearest = np.take_along_axis(d, order, axis=1)
        joined = present[:, None] & np.ones_like(nearest, dtype=bool)
        if self.radius is not None:
            joined &= nearest <= nearest[:, :1] + 2 * self.radius
        for slot in range(self.overlap):
            keys[:, slot] = salted_keys(order[:, slot].astype(np.uint64), salt, joined[:, slot])
        return keys
