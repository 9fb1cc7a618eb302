"""Metrics: distances between attribute values, in two forms.

* ``cdist(a, b)`` — the dense ``(len(a), len(b))`` matrix of a block;
* ``cpdist(a, b)`` — the distances of aligned pairs ``(a[k], b[k])``.

Both forms run the same element-wise arithmetic, so a pair gets bit-for-bit
the same distance whichever form scores it (the distributed pipeline relies on
this for results that do not depend on how records are partitioned).

Each metric first *encodes* a column once (parses dates, computes Soundex
codes, checks coordinates) into a small frame; the kernels read encoded
frames. String metrics run on rapidfuzz's compiled kernels.

Missing values (None, NaN, empty strings) carry no evidence either way: a
pair where either value is missing gets NaN, and the global distance leaves
that treatment out (see :func:`bigalign.treatments.global_alignment_matrix`).
A metric given ``missing=d`` puts the fixed distance ``d`` there instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidValueError
from .base import CallableMetric, Metric
from .numeric import EuclideanMetric, GeographicalMetric, TemporalMetric
from .text import (
    CharLevenshtein,
    DamerauLevenshteinMetric,
    DifflibMetric,
    ExactMetric,
    JaccardMetric,
    JaroWinklerMetric,
    NazcaLevenshtein,
    SoundexMetric,
)

__all__ = ["METRICS", "InvalidValueError", "Metric", "cdist", "cpdist", "make_metric", "metric_class"]


METRICS: dict[str, type[Metric]] = {
    cls.name: cls
    for cls in (NazcaLevenshtein, CharLevenshtein, DamerauLevenshteinMetric, JaroWinklerMetric, SoundexMetric,
                JaccardMetric, DifflibMetric, ExactMetric, TemporalMetric, GeographicalMetric, EuclideanMetric)
}


def metric_class(metric: Any) -> type[Metric]:
    """The class a metric spec makes: a name's, a subclass itself, or :class:`CallableMetric` for a function."""
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
        return METRICS[metric]
    if isinstance(metric, type) and issubclass(metric, Metric):
        return metric
    if isinstance(metric, Metric):
        return type(metric)
    if callable(metric):
        return CallableMetric
    raise TypeError(f"a metric is a name, a Metric or a callable, not {metric!r}")


def make_metric(metric: str | Metric | type[Metric] | Callable, **options: Any) -> Metric:
    """A metric from its name or class (with options), an instance, or a callable on two values."""
    if isinstance(metric, Metric):
        if options:
            raise ValueError("options are given to the metric's constructor, not with an instance")
        return metric
    if isinstance(metric, str) or isinstance(metric, type) and issubclass(metric, Metric):
        cls = metric_class(metric)
        try:
            return cls(**options)
        except TypeError as err:
            raise ValueError(f"metric {cls.name!r}: {err}") from None
    if callable(metric):
        return CallableMetric(metric, **options)  # type: ignore[arg-type]
    raise TypeError(f"a metric is a name, a Metric or a callable, not {metric!r}")


def _as_column(values: Any) -> pd.Series | pd.DataFrame:
    if isinstance(values, (pd.Series, pd.DataFrame)):
        return values.reset_index(drop=True)
    return pd.Series(list(values), dtype=object)


def cdist(values_a: Any, values_b: Any, metric: str | Metric | Callable, normalized: bool = False,
          **options: Any) -> np.ndarray:
    """Distance matrix between two lists of values.

    Parameters
    ----------
    values_a, values_b : sequence, Series or DataFrame
        The values of one attribute; tuples (or a frame of several columns)
        for coordinates and vectors.
    metric : str, Metric or callable
        A name from :data:`METRICS`, a :class:`Metric`, or ``f(a, b)``.
    normalized : bool
        Scale distances to [0, 1] (see each metric).
    **options
        Given to the metric (``units="km"``, ``granularity="years"``,
        ``language="french"``, ``scale=...``, ``missing=...``).

    Returns
    -------
    numpy.ndarray of float32, shape ``(len(values_a), len(values_b))``
    """
    m = make_metric(metric, **options)
    return m.cdist(m.encode(_as_column(values_a)), m.encode(_as_column(values_b)), normalized).astype(np.float32)


def cpdist(values_a: Any, values_b: Any, metric: str | Metric | Callable, normalized: bool = False,
           **options: Any) -> np.ndarray:
    """Distances of aligned pairs ``(values_a[k], values_b[k])``; see :func:`cdist`."""
    m = make_metric(metric, **options)
    return m.cpdist(m.encode(_as_column(values_a)), m.encode(_as_column(values_b)), normalized).astype(np.float32)
