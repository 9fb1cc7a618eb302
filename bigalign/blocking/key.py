"""Exact keys: records meet when a column, or a function of it, is equal."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..distances import _is_missing_scalar, parse_date, soundex_code
from ..normalize import make_normalizer, map_distinct, normalize_column
from .base import Blocking, hash_values, salted_keys

__all__ = ["KeyBlocking"]


def _date_key(value: Any) -> Any:
    try:
        date = parse_date(value)
    except (ValueError, OverflowError):
        return None
    return None if date is None else date.isoformat()


def _year_key(value: Any) -> Any:
    key = _date_key(value)
    return None if key is None else key[:4]


class KeyBlocking(Blocking):
    """Records meet when their keys are equal.

    Parameters
    ----------
    column : label
        The column the key is made from.
    transform : str or callable, optional
        ``None`` (the normalized value), ``"soundex"`` (Soundex code of each
        word), ``"prefix:N"`` (first N characters), ``"date"`` (the ISO date,
        whatever the input format), ``"year"``, or a callable on one value.
    normalizers : sequence
        Applied before the transform; by default accents stripped and
        lower-cased.
    """

    def __init__(self, column: Hashable, transform: str | Callable[[Any], Any] | None = None,
                 normalizers: Sequence[Any] = ("lunormalize",)):
        self.column = column
        self.transform = transform
        self.normalizers = [make_normalizer(n) for n in normalizers]
        self._function = self._transform_function(transform)

    @property
    def columns(self) -> list:
        return [self.column]

    @staticmethod
    def _transform_function(transform: Any) -> Callable[[Any], Any] | None:
        if transform is None or callable(transform):
            return transform
        if transform == "soundex":
            return lambda v: " ".join(filter(None, (soundex_code(w) for w in str(v).split()))) or None
        if transform == "date":
            return _date_key
        if transform == "year":
            return _year_key
        if isinstance(transform, str) and transform.startswith("prefix:"):
            try:
                n = int(transform.split(":", 1)[1])
            except ValueError:
                n = 0
            if n > 0:
                return lambda v: str(v)[:n]
        raise ValueError(
            f"KeyBlocking: unknown transform {transform!r}; expected None, 'soundex', 'prefix:N', 'date', "
            "'year' or a callable"
        )

    @property
    def n_slots(self) -> int:
        return 1

    def keys(self, frame: pd.DataFrame, side: str) -> np.ndarray:
        values = frame[self.column]
        if self.transform not in ("date", "year"):  # dates are parsed from the raw text
            values = normalize_column(values, self.normalizers)
        if self._function is not None:
            values = map_distinct(values, lambda v: None if _is_missing_scalar(v) else self._function(v))
        present = (values.notna() & (values.astype(str).str.strip() != "")).to_numpy(dtype=bool)
        keys = salted_keys(hash_values(values), f"key:{self.column}:{self.transform}", present)
        return keys[:, None]
