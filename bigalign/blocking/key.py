"""Exact keys: records meet when a column, or a tuple of (functions of) columns, is equal.

One attribute alone rarely makes a good key at scale: a date of birth is
shared by ~30 people per million, a surname by thousands. A *composite* key
(date of birth and street, surname code and year and street number) keeps
blocks small as the data grows, and a union of several composite keys keeps
the pairs that a corrupted value would lose in any single one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..normalize import make_normalizer, normalize_distinct, normalize_one
from ..values.columns import FEW_VALUES, arrow_text, is_missing, is_na, map_distinct, select_columns
from ..values.dates import iso_dates, parse_date, parse_dates, year_and_month
from ..values.hashing import fold64, mix64, text_hashes
from ..values.soundex import ascii_soundex_codes, soundex_codes
from ..values.text import as_text, joined_text, joined_value, text_array
from .base import Blocking, hash_values, salted_keys

__all__ = ["KeyBlocking", "TRANSFORMS"]


def _word_codes(values: pd.Series, word_set: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Soundex codes of each value's words as ``(owner, code, codes)``: the
    value each belongs to (ascending), its index in ``codes`` (the distinct
    codes, sorted, ``""`` first), in word order or, when ``word_set``, sorted
    and distinct per value. Words without a letter have no code. Each
    distinct word is coded once; ASCII text in Arrow and numpy."""
    text = arrow_text(values)
    if text is not None and pc.all(pc.string_is_ascii(text)).as_py() is not False:
        # Arrow's Unicode white space is Python's (\x1c-\x1f included, unlike its ASCII one);
        # runs of spaces give "" words, which have no code.
        lists = pc.utf8_split_whitespace(text)
        owner = pc.list_parent_indices(lists).to_numpy()
        words = pc.list_flatten(lists).dictionary_encode()
        # (fixed-width bytes, not Python strings: sorted and gathered by numpy)
        codes, code_of_word = np.unique(np.append(ascii_soundex_codes(words.dictionary), b""), return_inverse=True)
        code, codes = code_of_word[words.indices.to_numpy()], codes.astype("U4")
    else:
        words_of = [_words(v) for v in values.tolist()]
        distinct = list(set().union(*words_of))
        code_of = dict(zip(distinct, soundex_codes(distinct)))
        owner = np.repeat(np.arange(len(words_of)), [len(words) for words in words_of])
        codes, code = np.unique(np.array([""] + [code_of[w] for words in words_of for w in words], dtype="U4"),
                                return_inverse=True)
        code = code[1:]
    owner, code = owner[code != 0], code[code != 0]
    if word_set:
        order = np.argsort(owner.astype(np.int64) * len(codes) + code)
        owner, code = owner[order], code[order]
        first = np.ones(len(code), dtype=bool)
        first[1:] = (owner[1:] != owner[:-1]) | (code[1:] != code[:-1])
        owner, code = owner[first], code[first]
    return owner, code, codes


def _words(value: Any) -> list[str]:
    """A value's words (split at white space; a missing value has none)."""
    return value.split() if type(value) is str else [] if is_missing(value) else str(value).split()


def _soundex_texts(values: pd.Series, word_set: bool) -> pd.Series:
    """The Soundex codes of each value's words, joined by spaces (the sorted
    distinct codes when ``word_set``); None where a value has none."""
    owner, code, codes = _word_codes(values, word_set)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=len(values)), out=offsets[1:])
    joined = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(codes[code])), " ")
    out = joined.to_numpy(zero_copy_only=False)
    out[offsets[1:] == offsets[:-1]] = None  # no code
    return pd.Series(out, index=values.index, dtype=object)


def _soundex_hashes(values: pd.Series, word_set: bool) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`_soundex_texts` gives, as ``(present, hashes)``: a hash of
    each value's codes in their order, not the text they would be joined into."""
    owner, code, codes = _word_codes(values, word_set)
    code_hashes = hash_values(pd.Series(codes))
    position = np.arange(len(owner)) - np.searchsorted(owner, owner)  # (of each code in its value's)
    hashes = np.zeros(len(values), dtype=np.uint64)
    for k in range(int(position.max(initial=-1)) + 1):  # (a pass per word: values have few)
        at = position == k
        hashes[owner[at]] = fold64(hashes[owner[at]], code_hashes[code[at]])
    return np.bincount(owner, minlength=len(values)) > 0, hashes


def _prefix(n: int) -> Callable[[pd.Series], pd.Series]:
    return lambda values: map_distinct(values, lambda v: str(v)[:n])


# Transforms of a column of distinct values: dates are parsed whatever their format.
TRANSFORMS: dict[str, Callable[[pd.Series], pd.Series] | None] = {
    "exact": None,
    "soundex": lambda values: _soundex_texts(values, word_set=False),
    # sorted distinct codes: "Paul Dupont" and "Dupont Paul" get one key
    "soundex-set": lambda values: _soundex_texts(values, word_set=True),
    "date": lambda values: iso_dates(values, 10),
    "year": lambda values: iso_dates(values, 4),
}
# Transforms that read the raw text, not normalized.
_RAW = ("date", "year")
# Transforms whose keys are hashed from the codes (see _soundex_hashes).
_SOUNDEX = ("soundex", "soundex-set")
# (keys of dates and years are hashed from day numbers and year numbers, each kind with its own salt)
_DAY_NUMBER_SALT = {"date": np.uint64(0x6461746500000000), "year": np.uint64(0x7965617200000000)}


def _transform_function(transform: Any) -> Callable[[pd.Series], pd.Series] | None:
    if transform is None:
        return None
    if callable(transform):
        return lambda values: map_distinct(values, transform)
    if transform in TRANSFORMS:
        return TRANSFORMS[transform]
    if isinstance(transform, str) and transform.startswith("prefix:"):
        try:
            n = int(transform.split(":", 1)[1])
        except ValueError:
            n = 0
        if n > 0:
            return _prefix(n)
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

    name = "key"
    parameters = {"columns": (str, list), "transform": (str, list), "normalizers": list}

    def __init__(self, columns: Hashable | Sequence[Any], transform: Any = None,
                 normalizers: Sequence[Any] = ("lunormalize",)):
        self.parts = [columns] if isinstance(columns, (str, int)) else [
            list(p) if isinstance(p, (list, tuple)) else p for p in columns]  # type: ignore[attr-defined]
        if not self.parts:
            raise ValueError("KeyBlocking: 'columns' is empty")
        transforms = (list(transform) if isinstance(transform, (list, tuple))
                      else [transform] * len(self.parts))
        if len(transforms) != len(self.parts):
            raise ValueError(f"KeyBlocking: {len(transforms)} transforms for {len(self.parts)} key parts")
        self.transform = transforms
        self.normalizers = [make_normalizer(n) for n in normalizers]
        self._functions = [_transform_function(t) for t in transforms]
        self._salt = f"key:{self.parts}:{self.transform}"  # (keys of other parts or transforms never meet)

    @property
    def columns(self) -> list:  # type: ignore[override]
        return [c for p in self.parts for c in (p if isinstance(p, list) else [p])]

    @property
    def n_slots(self) -> int:
        return 1

    def _parts(self, frame: pd.DataFrame,
               shared: dict | None = None) -> list[tuple[np.ndarray, pd.Series, np.ndarray]]:
        """Each part as ``(codes, uniques, hashes)``: the record's position in
        the part's distinct values (-1: missing), those values, normalized and
        transformed once each, and their hashes (a last 0 that code -1 reads).
        ``shared`` holds the parts already computed on ``frame`` by other keys
        of a union (a date or a street in several keys)."""
        shared = {} if shared is None else shared
        return [self._cached_part(frame, shared, *p) for p in zip(self.parts, self.transform, self._functions)]

    def _cached_part(self, frame: pd.DataFrame, shared: dict, part: Any, transform: Any,
                     function: Any) -> tuple[np.ndarray, pd.Series, np.ndarray]:
        transform, name = self._part_name(part, transform)
        if name not in shared:
            if transform == "year":  # the year of each date, when its dates are parsed anyway
                codes, dates, _ = self._cached_part(frame, shared, part, "date", TRANSFORMS["date"])
                values = dates.str[:4]
            else:
                codes, values = self._part(frame, part, transform, function)
            shared[name] = codes, values, np.append(hash_values(values), np.uint64(0))
        return shared[name]

    def _part_name(self, part: Any, transform: Any) -> tuple[Any, tuple]:
        """A part's transform ("exact" as None: the same values) and what names its values in ``shared``."""
        transform = None if transform == "exact" else transform
        return transform, (repr(part), repr(transform), None if transform in _RAW else repr(self.normalizers))

    def _distinct(self, frame: pd.DataFrame, part: Any, transform: Any) -> tuple[np.ndarray, pd.Series]:
        """The part's distinct values (normalized, unless its transform reads raw text) and each record's
        position among them (-1: missing)."""
        raw = joined_text(select_columns(frame, part)) if isinstance(part, list) else frame[part]
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        values = pd.Series(uniques)
        return codes, values if transform in _RAW else normalize_distinct(values, self.normalizers)

    def _part(self, frame: pd.DataFrame, part: Any, transform: Any,
              function: Callable[[pd.Series], pd.Series] | None) -> tuple[np.ndarray, pd.Series]:
        codes, values = self._distinct(frame, part, transform)
        if function is not None:
            values = function(values)
        blank = text_array(values).is_null().to_numpy(zero_copy_only=False)
        # A code of -1 reads the appended last entry: missing stays missing.
        return np.where(np.append(blank, True)[codes], -1, codes), values

    def values(self, frame: pd.DataFrame) -> pd.Series:
        """The key of each record as text (parts joined by ``|``); missing
        where a part is: what records meet on, to inspect a blocking."""
        parts = self._parts(frame)
        texts = [pd.Series(np.append(values.astype(str).to_numpy(object), [None])[codes], index=frame.index,
                           dtype=object) for codes, values, _ in parts]
        text = texts[0]
        for part in texts[1:]:
            text = text + "|" + part
        present = np.logical_and.reduce([codes >= 0 for codes, _, _ in parts])
        return text.where(present, None)

    def _hashed_parts(self, frame: pd.DataFrame, shared: dict | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each part as ``(present, hashes)``, a value per record: dates and years hashed
        from their day numbers, not written out as text (one parse for every key that
        reads a column), Soundex codes from the codes, not joined into text; other parts
        from their values (see :meth:`_parts`)."""
        shared = {} if shared is None else shared

        def hashed(part: Any, transform: Any, function: Any) -> tuple[np.ndarray, np.ndarray]:
            if transform in _SOUNDEX:
                sounds = ("soundex hashes", repr(part), transform, repr(self.normalizers))
                if sounds not in shared:
                    codes, values = self._distinct(frame, part, transform)
                    present, hashes = _soundex_hashes(values, word_set=transform == "soundex-set")
                    shared[sounds] = np.append(present, False)[codes], hashes[codes]
                return shared[sounds]
            if transform not in _RAW:
                codes, _, hashes = self._cached_part(frame, shared, part, transform, function)
                return codes >= 0, hashes[codes]
            name = ("day numbers", repr(part))
            if name not in shared:
                ordinals = parse_dates(joined_text(select_columns(frame, part)) if isinstance(part, list)
                                       else frame[part])
                known = np.isfinite(ordinals)
                shared[name] = known, np.where(known, ordinals, 0).astype(np.int64)
            known, days = shared[name]
            number = days if transform == "date" else year_and_month(days)[0]
            return known, mix64(number.astype(np.uint64) ^ _DAY_NUMBER_SALT[transform])

        return [hashed(*p) for p in zip(self.parts, self.transform, self._functions)]

    def _record_key(self, record: Mapping[Hashable, Any], row: int, shared: dict) -> np.ndarray:
        """The key of one record (row ``row`` of a frame), in Python: each part as :meth:`_hashed_parts` finds
        it (its hash kept in ``shared`` for the other keys of a union that read it)."""
        combined = np.zeros(1, dtype=np.uint64)
        for part, transform, function in zip(self.parts, self.transform, self._functions):
            transform, name = self._part_name(part, transform)
            name = ("record", row, *name)
            if name not in shared:
                shared[name] = self._record_part(record, part, transform, function)
            if shared[name] is None:
                return np.zeros(1, dtype=np.uint64)
            combined = fold64(combined, shared[name])
        return salted_keys(combined, self._salt)

    def _record_part(self, record: Mapping[Hashable, Any], part: Any, transform: Any,
                     function: Callable[[pd.Series], pd.Series] | None) -> np.ndarray | None:
        """The hash of one record's part (an array of one), None where it has none."""
        value = joined_value([record[c] for c in part]) if isinstance(part, list) else record[part]
        if is_na(value):
            return None
        if transform in _RAW:
            try:
                date = parse_date(value)
            except (ValueError, OverflowError):
                return None
            if date is None:
                return None
            day = np.array([date.toordinal()], dtype=np.int64)
            number = day if transform == "date" else year_and_month(day)[0]
            return mix64(number.astype(np.uint64) ^ _DAY_NUMBER_SALT[transform])
        value = normalize_one(value, self.normalizers)
        if transform in _SOUNDEX:
            codes = [code for code in soundex_codes(_words(value)) if code]
            if transform == "soundex-set":
                codes = sorted(set(codes))
            if not codes:
                return None
            hashed = np.zeros(1, dtype=np.uint64)
            for code in text_hashes(pa.array(codes, pa.string())):
                hashed = fold64(hashed, code)
            return hashed
        if function is not None and value is not None:
            value = function(pd.Series([value], dtype=object)).iloc[0]
        if as_text(value) is None:
            return None
        return text_hashes(pa.array([value if type(value) is str else str(value)], pa.string()))

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        shared = {} if shared is None else shared
        if len(frame) <= FEW_VALUES:  # (record by record: a column's fixed costs exceed a few records' Python)
            for column in self.columns:  # (each column's values taken once for every key of a union)
                if ("record values", column) not in shared:
                    shared[("record values", column)] = frame[column].tolist()
            rows = zip(*(shared[("record values", c)] for c in self.columns))
            return np.array([self._record_key(dict(zip(self.columns, row)), i, shared) for i, row in enumerate(rows)],
                            dtype=np.uint64).reshape(len(frame), 1)
        combined = np.zeros(len(frame), dtype=np.uint64)
        present = np.ones(len(frame), dtype=bool)
        for known, hashes in self._hashed_parts(frame, shared):
            present &= known
            combined = fold64(combined, hashes)
        return salted_keys(combined, self._salt, present)[:, None]
