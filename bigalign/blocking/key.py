"""Exact keys: records meet when a column, or a tuple of (functions of) columns, is equal.

One attribute alone rarely makes a good key at scale: a date of birth is
shared by ~30 people per million, a surname by thousands. A *composite* key
(date of birth and street, surname code and year and street number) keeps
blocks small as the data grows, and a union of several composite keys keeps
the pairs that a corrupted value would lose in any single one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..distances import _joined, parse_date, soundex_code
from ..normalize import make_normalizer, map_distinct, normalize_column
from .base import Blocking, hash_values, mix64, salted_keys

__all__ = ["KeyBlocking", "TRANSFORMS"]


@lru_cache(maxsize=1 << 17)  # several keys of a record read its date
def _date_key(value: Any) -> Any:
    try:
        date = parse_date(value)
    except (ValueError, OverflowError):
        return None
    return None if date is None else date.isoformat()


def _year_key(value: Any) -> Any:
    key = _date_key(value)
    return None if key is None else key[:4]


def _word_codes(value: Any) -> list[str]:
    return [c for c in map(soundex_code, str(value).split()) if c]


def _soundex_key(value: Any) -> Any:
    return " ".join(_word_codes(value)) or None


def _soundex_set_key(value: Any) -> Any:
    # Sorted distinct codes: "Paul Dupont" and "Dupont Paul" get one key.
    return " ".join(sorted(set(_word_codes(value)))) or None


TRANSFORMS: dict[str, Callable[[Any], Any] | None] = {
    "exact": None,
    "soundex": _soundex_key,
    "soundex-set": _soundex_set_key,
    "date": _date_key,
    "year": _year_key,
}
# Transforms that read the raw text: dates are parsed whatever their format.
_RAW = ("date", "year")


def _transform_function(transform: Any) -> Callable[[Any], Any] | None:
    if transform is None or callable(transform):
        return transform
    if transform in TRANSFORMS:
        return TRANSFORMS[transform]
    if isinstance(transform, str) and transform.startswith("prefix:"):
        try:
            n = int(transform.split(":", 1)[1])
        except ValueError:
            n = 0
        if n > 0:
            return lambda v: str(v)[:n]
    raise ValueError(f"KeyBlocking: unknown transform {transform!r}; expected one of {sorted(TRANSFORMS)}, "
                     "'prefix:N' or a callable")


class KeyBlocking(Blocking):
    """Records meet when their keys are equal.

    Parameters
    ----------
    columns : label or sequence
        What the key is made of: one column, or a sequence of *parts*, each a
        column or a list of columns (joined by spaces, like a treatment's
        attribute). A record has no key when a part is missing.
    transform : str, callable or sequence, optional
        One per part (or one for all): ``None``/``"exact"`` (the normalized
        value), ``"soundex"`` (the Soundex code of each word),
        ``"soundex-set"`` (the sorted distinct codes: word order free),
        ``"prefix:N"`` (first N characters), ``"date"`` (the ISO date,
        whatever the input format), ``"year"``, or a callable on one value.
    normalizers : sequence
        Applied to each part before its transform (not before ``"date"`` and
        ``"year"``, which read the raw text); by default accents stripped and
        lower-cased.

    Examples
    --------
    >>> KeyBlocking("soc_sec_id")  # doctest: +SKIP
    >>> KeyBlocking(["date_of_birth", "address"], transform=["date", "exact"])  # doctest: +SKIP
    >>> KeyBlocking([["given_name", "surname"], "street_number"], transform=["soundex-set", None])  # doctest: +SKIP
    """

    def __init__(self, columns: Hashable | Sequence[Any], transform: Any = None,
                 normalizers: Sequence[Any] = ("lunormalize",)):
        self.parts = [columns] if isinstance(columns, (str, int)) else [
            list(p) if isinstance(p, (list, tuple)) else p for p in columns]
        if not self.parts:
            raise ValueError("KeyBlocking: 'columns' is empty")
        transforms = (list(transform) if isinstance(transform, (list, tuple))
                      else [transform] * len(self.parts))
        if len(transforms) != len(self.parts):
            raise ValueError(f"KeyBlocking: {len(transforms)} transforms for {len(self.parts)} key parts")
        self.transform = transforms
        self.normalizers = [make_normalizer(n) for n in normalizers]
        self._functions = [_transform_function(t) for t in transforms]

    @property
    def columns(self) -> list:
        return [c for p in self.parts for c in (p if isinstance(p, list) else [p])]

    @property
    def n_slots(self) -> int:
        return 1

    def _part_values(self, frame: pd.DataFrame, part: Any, transform: Any, function: Any) -> pd.Series:
        values = _joined(frame[part]) if isinstance(part, list) else frame[part]
        if transform not in _RAW:
            values = normalize_column(values, self.normalizers)
        if function is not None:
            values = map_distinct(values, function)
        return values

    def _parts(self, frame: pd.DataFrame) -> list[tuple[pd.Series, np.ndarray]]:
        """Each part's values and where they are present."""
        parts = []
        for part, transform, function in zip(self.parts, self.transform, self._functions):
            values = self._part_values(frame, part, transform, function)
            parts.append((values, (values.notna() & (values.astype(str).str.strip() != "")).to_numpy(dtype=bool)))
        return parts

    def values(self, frame: pd.DataFrame) -> pd.Series:
        """The key of each record as text (parts joined by ``|``); missing
        where a part is: what records meet on, to inspect a blocking."""
        parts = self._parts(frame)
        text = parts[0][0].astype(object)
        for values, _ in parts[1:]:
            text = text.astype(str) + "|" + values.astype(str)
        present = np.logical_and.reduce([p for _, p in parts])
        return text.where(present, None)

    def keys(self, frame: pd.DataFrame, side: str) -> np.ndarray:
        combined = np.zeros(len(frame), dtype=np.uint64)
        present = np.ones(len(frame), dtype=bool)
        with np.errstate(over="ignore"):
            for values, part_present in self._parts(frame):
                present &= part_present
                combined = mix64(combined * np.uint64(0x100000001B3) + hash_values(values))
        salt = f"key:{self.parts}:{self.transform}"
        return salted_keys(combined, salt, present)[:, None]
