"""The metric interface: :class:`Metric` (encode a column once, then dense or pairwise distances by the same
arithmetic) and :class:`CallableMetric`, a user's function of two values."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidValueError, UserCodeError
from ..values.columns import is_missing
from ..values.sets import has_value_sets, reduce_pairs, set_pairs

__all__ = ["CallableMetric", "Metric", "first_invalid"]


def first_invalid(metric: str, invalid: np.ndarray, values: pd.Series | pd.DataFrame, reason: str) -> None:
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        value = values.iloc[row]
        value = tuple(value) if isinstance(value, pd.Series) else value
        raise InvalidValueError(metric, row, value, reason)


class Metric:
    """Base class of metrics.

    Subclasses set ``name``, ``bounded`` (distances already in [0, 1]) and
    ``parameters`` (the types of their constructor's arguments, which a job
    file's treatment may set; declared once, read by the job reader), and
    implement :meth:`encode`, :meth:`_cdist` and :meth:`_cpdist`: the same
    element-wise arithmetic in both, so that a pair's distance does not depend
    on the form. A metric of your own, a subclass named by import path in a
    job file (``metric = "mypkg.metrics:TitleDistance"``), is used as the
    built-ins are (see the README).

    Parameters
    ----------
    missing : float, optional
        The distance of a pair where either value is missing; by default
        none (NaN): the treatment is left out of that pair's global distance.

    Records that hold several values (value sets: see :mod:`bigalign.values.sets`)
    are compared value by value, and ``values`` (set by the treatment) says
    which distance is the pair's: the ``"best"`` (smallest), the ``"worst"``,
    or their ``"mean"``. A metric implements the comparison of single values
    only.
    """

    name = "metric"
    bounded = False
    values = "best"
    parameters: dict[str, type | tuple[type, ...]] = {"missing": (int, float)}

    @classmethod
    def parameter_types(cls) -> dict[str, type | tuple[type, ...]]:
        """The parameters of this metric and of the classes it extends."""
        merged: dict[str, type | tuple[type, ...]] = {}
        for klass in reversed(cls.__mro__):
            merged.update(getattr(klass, "parameters", {}))
        return merged

    def __init__(self, missing: float | None = None):
        if missing is not None and (isinstance(missing, bool) or not isinstance(missing, (int, float, np.number))
                                    or not missing >= 0):
            raise ValueError(f"{self.name}: 'missing' must be a number ≥ 0, got {missing!r}")
        self.missing = None if missing is None else float(missing)

    # -- encoding -----------------------------------------------------------
    def encode(self, values: pd.Series | pd.DataFrame) -> pd.DataFrame:
        """Encode a column once; raise :class:`InvalidValueError` on bad values."""
        raise NotImplementedError

    # Why a value is set aside when invalid() says this metric cannot read it.
    invalid_reason = "not readable"

    def invalid(self, values: pd.Series | pd.DataFrame) -> np.ndarray:
        """Boolean mask of present values this metric cannot read."""
        return np.zeros(len(values), dtype=bool)

    def reject_reasons(self, values: pd.Series | pd.DataFrame) -> np.ndarray:
        """Why each value cannot be read (None where it can)."""
        reasons = np.full(len(values), None, dtype=object)
        reasons[self.invalid(values)] = self.invalid_reason
        return reasons

    def check(self, attribute: Any, normalized: bool) -> None:
        """Refuse, when a treatment is made, what would fail in the run (ValueError)."""

    @property
    def reads_every_value(self) -> bool:
        """Whether any value is readable (nothing to check before a run)."""
        kind = type(self)
        return kind.invalid is Metric.invalid and kind.reject_reasons is Metric.reject_reasons

    def is_missing(self, encoded: pd.DataFrame) -> np.ndarray:
        # (column by column on the arrays: a frame's isna().any(axis=1) costs a lookup of one record ~0.3 ms)
        missing = np.zeros(len(encoded), dtype=bool)
        for column in encoded.columns:
            missing |= np.asarray(encoded[column].array.isna(), dtype=bool)
        return missing

    # -- distances ----------------------------------------------------------
    def missing_distance(self, normalized: bool) -> float:
        """The distance of a pair with a missing value: ``missing``, else NaN (no evidence)."""
        return math.nan if self.missing is None else self.missing

    def cdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool = False) -> np.ndarray:
        """Dense distance matrix between encoded frames ``a`` and ``b``."""
        if has_value_sets(a) or has_value_sets(b):
            ia, ib = np.repeat(np.arange(len(a)), len(b)), np.tile(np.arange(len(b)), len(a))
            return self.cpdist(a, b, normalized, ia, ib).reshape(len(a), len(b))
        out = np.asarray(self._cdist(a, b, normalized), dtype=np.float64)
        ma, mb = self.is_missing(a), self.is_missing(b)
        if ma.any() or mb.any():
            out[ma, :] = self.missing_distance(normalized)
            out[:, mb] = self.missing_distance(normalized)
        return out

    def cpdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool = False,
               ia: np.ndarray | None = None, ib: np.ndarray | None = None) -> np.ndarray:
        """Distances of the pairs ``(a.iloc[ia[k]], b.iloc[ib[k]])``.

        Without ``ia`` and ``ib``, ``a`` and ``b`` are aligned pairs. The
        per-value work (splitting, lengths, codes) is done once per row of
        ``a`` and ``b``, however many pairs a row is in.
        """
        if ia is None or ib is None:
            if len(a) != len(b):
                raise ValueError(f"cpdist needs aligned inputs, got {len(a)} and {len(b)} values")
            ia = ib = np.arange(len(a))
        if has_value_sets(a) or has_value_sets(b):
            rows_a, rows_b, xa, xb, starts = set_pairs(a, b, ia, ib)
            return reduce_pairs(self.cpdist(rows_a, rows_b, normalized, xa, xb), starts, self.values)
        out = np.asarray(self._cpdist(a, b, ia, ib, normalized), dtype=np.float64)
        missing = self.is_missing(a)[ia] | self.is_missing(b)[ib]
        out[missing] = self.missing_distance(normalized)
        return out

    def _cdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool) -> np.ndarray:
        raise NotImplementedError

    def _cpdist(self, a: pd.DataFrame, b: pd.DataFrame, ia: np.ndarray, ib: np.ndarray,
                normalized: bool) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


class CallableMetric(Metric):
    """A user function ``f(a, b) -> float`` on two values (a Python loop: slow).

    Give it ``bounded=True`` if it returns distances in [0, 1].
    """

    parameters = {"bounded": bool}

    def __init__(self, func: Callable[[Any, Any], float], bounded: bool = False, missing: float | None = None):
        super().__init__(missing)
        self.func = func
        self.bounded = bool(bounded)
        self.name = getattr(func, "__name__", "callable")

    def encode(self, values):
        if isinstance(values, pd.DataFrame):
            values = pd.Series(list(values.itertuples(index=False, name=None)), index=values.index)
        return pd.DataFrame({"v": values.astype(object)}, index=values.index)

    def is_missing(self, encoded):
        return encoded["v"].map(is_missing).to_numpy(dtype=bool)

    def _distance(self, x: Any, y: Any) -> float:
        try:
            return float(self.func(x, y))
        except Exception as err:  # (the user's code: said as such, with the values, not as bigalign's bug)
            raise UserCodeError(f"the metric {self.name!r} failed on {x!r} and {y!r}: {type(err).__name__}: "
                                f"{err}") from None

    def _cdist(self, a, b, normalized):
        va, vb = a["v"].tolist(), b["v"].tolist()
        return np.array([[self._distance(x, y) for y in vb] for x in va],
                        dtype=np.float64).reshape(len(va), len(vb))

    def _cpdist(self, a, b, ia, ib, normalized):
        va, vb = a["v"].tolist(), b["v"].tolist()
        return np.array([self._distance(va[i], vb[j]) for i, j in zip(ia.tolist(), ib.tolist())],
                        dtype=np.float64)
