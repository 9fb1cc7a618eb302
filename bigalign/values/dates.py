"""Dates in the forms people write them: parsed one by one, or a column at once.

Day first by default (``14/08/1991``), ISO, compact (``19910814``), with
French or English month names (``14 août 1991``, ``August 14, 1991``).
Dates are kept as proleptic Gregorian ordinals (``date.toordinal()``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .columns import FEW_VALUES, arrow_text, is_missing
from .hashing import text_bytes
from .text import strip_accents

__all__ = ["EPOCH_ORDINAL", "iso_dates", "parse_date", "parse_dates", "year_and_month"]


_FRENCH_MONTHS = ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                  "septembre", "octobre", "novembre", "decembre"]
_MONTHS = {}
for _number, (_fr, _en) in enumerate(zip(_FRENCH_MONTHS, calendar.month_name[1:]), start=1):
    for _name in (_fr, _en.lower()):
        _MONTHS[_name] = _number
        _MONTHS[_name[:3]] = _number
    _MONTHS[_fr[:4]] = _number  # "janv", "sept", "fevr", "juil"
_MONTHS["fev"] = 2
_MONTHS["juil"] = 7
_NUMERIC_DATE = re.compile(r"^(\d{1,4})[-/. ](\d{1,2})[-/. ](\d{1,4})(?:[ T].*)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WORD_DATE = re.compile(r"^(?:(\d{1,2})(?:er)? )?([a-z]+)\.? (\d{4})$")
_WORD_DATE_US = re.compile(r"^([a-z]+)\.? (\d{1,2}),? (\d{4})$")


def parse_date(value: Any, dayfirst: bool = True) -> dt.date | None:
    """Parse one date; ``None`` when missing; ``ValueError`` when unreadable.

    Accepts ``14-08-1991``, ``14/08/1991``, ``14.08.1991`` (day first unless
    ``dayfirst=False``), ISO ``1991-08-14`` (with or without a time),
    ``19910814``, ``14 août 1991``, ``1er mai 1991``, ``August 14, 1991``,
    ``mai 1991`` (the first of the month), and date or datetime objects.
    Years have four digits: two-digit years are ambiguous and rejected.
    """
    if is_missing(value):
        return None
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    text = str(value).strip()
    if m := _NUMERIC_DATE.match(text):
        x, y, z = m.groups()
        if len(x) == 4:
            year, month, day = int(x), int(y), int(z)
        elif len(z) == 4:
            day, month = (int(x), int(y)) if dayfirst else (int(y), int(x))
            year = int(z)
        else:
            raise ValueError("ambiguous or incomplete date (years need four digits)")
        return dt.date(year, month, day)
    if m := _COMPACT_DATE.match(text):
        return dt.date(*map(int, m.groups()))
    words = strip_accents(text).lower().replace(",", " ").split()
    text = " ".join(words)
    if m := _WORD_DATE.match(text):
        day_text, month_name, year_text = m.groups()
        if month_name in _MONTHS:
            return dt.date(int(year_text), _MONTHS[month_name], int(day_text or 1))
    if m := _WORD_DATE_US.match(text):
        month_name, day_text, year_text = m.groups()
        if month_name in _MONTHS:
            return dt.date(int(year_text), _MONTHS[month_name], int(day_text))
    raise ValueError("not a date")


# The forms most dates come in, matched whole (RE2: ASCII digits only); every
# other value goes to parse_date, so the result is the same either way.
_VECTOR_DATE = r"^(?P<x>[0-9]{1,4})[-/. ](?P<y>[0-9]{1,2})[-/. ](?P<z>[0-9]{1,4})$"
_VECTOR_COMPACT_DATE = r"^(?P<x>[0-9]{4})(?P<y>[0-9]{2})(?P<z>[0-9]{2})$"
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _vector_ordinals(text: pa.Array, dayfirst: bool) -> np.ndarray:
    """Ordinals of the numeric forms of :func:`parse_date`, vectorised: NaN
    where a value has another form, -inf where it has this form but is no date."""
    out = np.full(len(text), np.nan)
    for pattern in (_VECTOR_DATE, _VECTOR_COMPACT_DATE):
        groups = pc.extract_regex(text, pattern)
        found = np.asarray(groups.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & np.isnan(out)
        if not found.any():
            continue
        parts = {g: groups.field(g).filter(pa.array(found)) for g in "xyz"}
        x, y, z = (pc.cast(parts[g], pa.int64()).to_numpy() for g in "xyz")
        x_long = pc.utf8_length(parts["x"]).to_numpy() == 4
        z_long = pc.utf8_length(parts["z"]).to_numpy() == 4
        year = np.where(x_long, x, z)
        month = np.where(x_long, y, x if not dayfirst else y)
        day = np.where(x_long, z, y if not dayfirst else x)
        out[found] = _checked_ordinals(year, month, day, x_long | z_long)
    return out


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_DAYS_BEFORE_MONTH = np.concatenate([[0], np.cumsum(_DAYS_IN_MONTH[:-1])])


def _checked_ordinals(year: np.ndarray, month: np.ndarray, day: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The ordinals of the dates (year, month, day) where ``valid`` and they are dates, else -inf: what
    ``date(year, month, day).toordinal()`` gives, in integer arithmetic (numpy's calendar types cost more)."""
    valid = valid & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    month = np.where(valid, month, 1)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    february = (month == 2) & leap
    valid &= day <= _DAYS_IN_MONTH[month] + february
    before = year - 1
    ordinals = before * 365 + before // 4 - before // 100 + before // 400 + _DAYS_BEFORE_MONTH[month] \
        + ((month > 2) & leap) + day
    return np.where(valid, ordinals, -np.inf)


# The fixed-width numeric forms, by width: where their separators are (the other bytes are digits), and
# the first and last byte of their year, month and day (a day-first form's day and month swap without
# ``dayfirst``).
_FIXED_WIDTH_FORMS = {10: (((2, 5), (6, 9), (3, 4), (0, 1), True), ((4, 7), (0, 3), (5, 6), (8, 9), False)),
                      8: (((), (0, 3), (4, 5), (6, 7), False),)}
_IS_SEPARATOR = np.isin(np.arange(256), np.frombuffer(b"-/. ", dtype=np.uint8))


def _written_number(digits: np.ndarray, first: int, last: int) -> np.ndarray:
    """The number written by the digits (0-9 each) in columns ``first`` to ``last`` of ``digits``."""
    number = digits[:, first].astype(np.int64)
    for column in range(first + 1, last + 1):
        number = number * 10 + digits[:, column]
    return number


def _fixed_width_ordinals(text: pa.Array, dayfirst: bool) -> np.ndarray:
    """Ordinals of the values of ten bytes written ``dd-mm-yyyy`` or ``yyyy-mm-dd`` (any of ``-/. `` as
    separators) and of eight digits (``yyyymmdd``), as :func:`_vector_ordinals` reads them, from their
    bytes: no string made, no pattern matched, no value hashed. NaN where a value has another form."""
    out = np.full(len(text), np.nan)
    starts, lengths, data = text_bytes(text)
    valid = text.is_valid().to_numpy(zero_copy_only=False) if text.null_count else np.ones(len(text), bool)
    for width, forms in _FIXED_WIDTH_FORMS.items():
        rows = np.flatnonzero((lengths == width) & valid)
        if not len(rows):
            continue
        # Each value's bytes, a row each: rows of a window view of the buffer (one index a value).
        chars = np.lib.stride_tricks.sliding_window_view(data, width)[starts[rows]]
        digits = chars - np.uint8(ord("0"))  # (a byte below "0" wraps around: over 9, as a letter is)
        # A value has one form at most: a digit where the other form of its width has a separator.
        for separators_at, year_at, month_at, day_at, day_first in forms:
            fits = np.ones(len(rows), bool)
            for at in range(width):
                fits &= _IS_SEPARATOR[chars[:, at]] if at in separators_at else digits[:, at] <= 9
            found = digits[fits]
            year, month, day = (_written_number(found, *at) for at in (year_at, month_at, day_at))
            if day_first and not dayfirst:
                month, day = day, month
            out[rows[fits]] = _checked_ordinals(year, month, day, np.ones(len(year), bool))
    return out


def parse_dates(values: pd.Series, dayfirst: bool = True) -> np.ndarray:
    """Ordinals (float64) of the dates of ``values``: NaN where missing,
    -inf where unreadable; the result of :func:`parse_date` on each value.

    Text of the fixed-width numeric forms (``14/08/1991``, ``1991-08-14``,
    ``19910814``) is read from its bytes, all values at once; of the rest,
    each distinct value is parsed once, the other numeric forms together in
    Arrow, the others one by one."""
    if len(values) <= FEW_VALUES:  # (each by parse_date: Arrow's patterns cost a few values more)
        return np.array([_ordinal(v, dayfirst) for v in values.tolist()], dtype=np.float64)
    text = arrow_text(values)
    ordinals = np.full(len(values), np.nan) if text is None else _fixed_width_ordinals(text, dayfirst)
    rest = np.flatnonzero(np.isnan(ordinals))
    if len(rest):
        ordinals[rest] = _distinct_ordinals(values.iloc[rest] if len(rest) < len(values) else values, dayfirst)
    return ordinals


def _distinct_ordinals(values: pd.Series, dayfirst: bool) -> np.ndarray:
    """:func:`parse_dates`, each distinct value parsed once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = arrow_text(uniques)
    # Not all text (date objects...): every value one by one.
    ordinals = np.full(len(uniques), np.nan) if text is None else _vector_ordinals(text, dayfirst)
    others = np.flatnonzero(np.isnan(ordinals))
    for i, value in zip(others.tolist(), np.asarray(uniques[others], dtype=object).tolist()):
        ordinals[i] = _ordinal(value, dayfirst)
    return np.append(ordinals, np.nan)[codes]


def _ordinal(value: Any, dayfirst: bool) -> float:
    """:func:`parse_dates` of one value."""
    try:
        date = parse_date(value, dayfirst)
    except (ValueError, OverflowError):
        return -np.inf
    return np.nan if date is None else date.toordinal()


def year_and_month(ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and month (1–12) of date ordinals (finite ones)."""
    months = (ordinals.astype(np.int64) - EPOCH_ORDINAL).astype("datetime64[D]").astype("datetime64[M]")
    month_index = months.astype(np.int64)
    return month_index // 12 + 1970, month_index % 12 + 1


def iso_dates(values: pd.Series, width: int = 10) -> pd.Series:
    """The ISO dates of values (their first ``width`` characters: 4 for the
    year); None where missing or unreadable."""
    ordinals = parse_dates(values)
    known = np.isfinite(ordinals)
    days = (ordinals[known].astype(np.int64) - EPOCH_ORDINAL).astype("datetime64[D]")
    texts = np.full(len(values), None, dtype=object)
    texts[known] = np.datetime_as_string(days).astype(f"U{width}")
    return pd.Series(texts, index=values.index)
