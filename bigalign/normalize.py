"""Normalizers: pure functions over a column of values.

Every normalizer is a small object with explicit parameters; calling it on a
:class:`pandas.Series` returns a new Series. Missing values (None, NaN) stay
missing. The work is done once per *distinct* value, which is what makes
normalizing millions of skewed values (names, streets) cheap; the built-in
normalizers do it in Arrow for ASCII text, in Python for the rest.

A treatment names its normalizers by name (``"simplify"``), by a mapping
(``{"name": "remove_after", "sub": "("}``, the form job files use), by an
instance (``remove_after("(")``) or by any callable taking one value and
returning one value (Nazca's form), which is applied to each distinct value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import UserCodeError
from .values.columns import FEW_VALUES, TEXT, arrow_text, is_missing, is_na, map_distinct
from .values.text import strip_accents

__all__ = [
    "Normalizer",
    "lower",
    "lunormalize",
    "make_normalizer",
    "map_distinct",
    "normalize_column",
    "normalize_distinct",
    "normalize_one",
    "remove_after",
    "rgxformat",
    "roundstr",
    "simplify",
    "tokenize",
    "unormalize",
]


class Normalizer:
    """Base class: subclasses define :meth:`normalize_value`, and may define
    :meth:`normalize_values` to do a whole list in one comprehension."""

    name = "normalizer"
    # Every value maps to a value, never to a missing one: true of the built-ins,
    # not assumed of others (a value turned missing then skips the rest of a chain).
    keeps_values = False
    # Whether normalize_ascii does this normalizer's work.
    normalizes_ascii = False

    def normalize_value(self, value: Any) -> Any:
        raise NotImplementedError

    def normalize_values(self, values: list) -> list:
        """:meth:`normalize_value` of each of a list of non-missing values."""
        return [self.normalize_value(v) for v in values]

    def normalize_ascii(self, text: pa.Array) -> pa.Array:
        """:meth:`normalize_values` of ASCII text, at once in Arrow (when
        :attr:`normalizes_ascii`): the same strings, without a Python loop."""
        raise NotImplementedError

    def __call__(self, values: pd.Series) -> pd.Series:
        return normalize_column(values, [self])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{self.name}({params})"


class unormalize(Normalizer):
    """Strip accents: Latin letters become ASCII; other scripts are kept."""

    name = "unormalize"
    keeps_values = True
    normalizes_ascii = True

    def normalize_value(self, value: Any) -> str:
        return strip_accents(value)

    def normalize_values(self, values: list) -> list:
        return [v if type(v) is str and v.isascii() else strip_accents(v) for v in values]

    def normalize_ascii(self, text: pa.Array) -> pa.Array:
        return text


class lunormalize(Normalizer):
    """:class:`unormalize`, then lower-case."""

    name = "lunormalize"
    keeps_values = True
    normalizes_ascii = True

    def normalize_value(self, value: Any) -> str:
        return strip_accents(value).lower()

    def normalize_values(self, values: list) -> list:
        return [v.lower() if type(v) is str and v.isascii() else strip_accents(v).lower() for v in values]

    def normalize_ascii(self, text: pa.Array) -> pa.Array:
        return pc.ascii_lower(text)


class lower(Normalizer):
    """Lower-case."""

    name = "lower"
    keeps_values = True
    normalizes_ascii = True

    def normalize_value(self, value: Any) -> str:
        return str(value).lower()

    def normalize_values(self, values: list) -> list:
        return [str(v).lower() for v in values]

    def normalize_ascii(self, text: pa.Array) -> pa.Array:
        return pc.ascii_lower(text)


STOPWORDS = {
    # Nazca's list, so that ``simplify`` gives Nazca's words by default.
    "french": frozenset(
        "alors au aucuns aussi autre aux avant avec avoir bon car ce cela ces ceux chaque ci comme comment "
        "dans de dedans dehors depuis des deux devrait doit donc dos droite du début elle elles en encore "
        "essai est et eu eux fait faites fois font force haut hors ici il ils je juste la le les leur lui "
        "là ma maintenant mais me mes moi moins mon mot même ne ni nommés nos notre nous nouveaux on ou où "
        "par parce parole pas personnes peu peut pièce plupart pour pourquoi quand que quel quelle quelles "
        "quels qui sa sans se ses seulement si sien son sont sous soyez sujet sur ta tandis te tellement tels "
        "tes toi ton tous tout trop très tu un une valeur voie voient vont vos votre vous vu ça étaient état "
        "étions été être".split()
    ),
    "english": frozenset(
        "a an and are as at be but by for from has have he her his i in is it its of on or "
        "she that the their them they this to was were will with".split()
    ),
}

_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)


class simplify(Normalizer):
    """Lower-case, punctuation to spaces, collapsed spaces, stop-words removed.

    As Nazca's ``simplify``, it removes French stop-words by default (Nazca's
    list: ``"de graaff street"`` → ``"graaff street"``); it also turns every
    Unicode punctuation mark and symbol into a space, where Nazca only
    removes ASCII's.

    Parameters
    ----------
    remove_stopwords : bool
        Drop the stop-words of ``language`` (``False`` keeps every word).
    language : {"french", "english"}
    lemmas : mapping, optional
        Word → lemma dictionary applied to each word.
    """

    name = "simplify"
    keeps_values = True

    def __init__(self, remove_stopwords: bool = True, language: str = "french",
                 lemmas: Mapping[str, str] | None = None):
        if language not in STOPWORDS:
            raise ValueError(f"simplify: unknown language {language!r}; expected one of {sorted(STOPWORDS)}")
        if not isinstance(remove_stopwords, bool):
            raise ValueError(f"simplify: 'remove_stopwords' must be true or false, got {remove_stopwords!r}")
        self.remove_stopwords = remove_stopwords
        self.language = language
        self.lemmas = dict(lemmas) if lemmas else None

    def normalize_value(self, value: Any) -> str:
        return self.normalize_values([value])[0]

    def normalize_values(self, values: list) -> list:
        sub = _PUNCTUATION.sub
        words = [sub(" ", str(v).lower()).split() for v in values]
        if self.lemmas:
            lemmas = self.lemmas
            words = [[lemmas.get(w, w) for w in ws] for ws in words]
        if self.remove_stopwords:
            stop = STOPWORDS[self.language]
            words = [[w for w in ws if w not in stop] for ws in words]
        return [" ".join(ws) for ws in words]

    @property
    def normalizes_ascii(self) -> bool:  # type: ignore[override]
        return not self.lemmas

    def normalize_ascii(self, text: pa.Array) -> pa.Array:
        # In ASCII, the words are the runs of letters and digits.
        text = pc.utf8_trim(pc.replace_substring_regex(pc.ascii_lower(text), "[^a-z0-9]+", " "), " ")
        if not self.remove_stopwords:
            return text
        lists = pc.split_pattern(text, " ")
        words = pc.list_flatten(lists)
        kept = pc.invert(pc.is_in(words, pa.array(sorted(STOPWORDS[self.language]))))
        owner = pc.list_parent_indices(lists).filter(kept).to_numpy()
        offsets = np.zeros(len(text) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner, minlength=len(text)), out=offsets[1:])
        kept_lists = pa.LargeListArray.from_arrays(pa.array(offsets), words.filter(kept).cast(pa.string()))
        return pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), pc.binary_join(kept_lists, " "))

class tokenize(Normalizer):
    """Split into word tokens (a regular expression finds them).

    The tokens are returned joined by single spaces: the form that every
    token-based metric reads, and one that stays a plain string column when
    records are shuffled between workers.
    """

    name = "tokenize"
    keeps_values = True

    def __init__(self, regexp: str = r"\w+(?:['’-]\w+)*"):
        self.regexp = regexp
        self._compiled = re.compile(regexp, re.UNICODE)

    def normalize_value(self, value: Any) -> str:
        return " ".join(self._compiled.findall(str(value)))

    def __repr__(self) -> str:
        return f"tokenize(regexp={self.regexp!r})"


class remove_after(Normalizer):
    """Remove the text from ``sub`` on (case-insensitive), then strip."""

    name = "remove_after"
    keeps_values = True

    def __init__(self, sub: str):
        if not isinstance(sub, str) or not sub:
            raise ValueError("remove_after: 'sub' must be a non-empty string")
        self.sub = sub

    def normalize_value(self, value: Any) -> str:
        text = str(value)
        at = text.lower().find(self.sub.lower())
        return text if at < 0 else text[:at].strip()


class roundstr(Normalizer):
    """Round a number to ``ndigits`` and return it as a string."""

    name = "roundstr"
    keeps_values = True

    def __init__(self, ndigits: int = 0):
        self.ndigits = int(ndigits)

    def normalize_value(self, value: Any) -> str:
        number = round(float(value), self.ndigits)
        return str(int(number)) if self.ndigits <= 0 else str(number)


class rgxformat(Normalizer):
    """Reformat a value with a regular expression and a template.

    ``output`` is a :meth:`str.format` template over the named groups, e.g.
    ``rgxformat(r"(?P<d>\\d+)/(?P<m>\\d+)/(?P<y>\\d+)", "{y}-{m}-{d}")``.
    A value that does not match is returned unchanged.
    """

    name = "rgxformat"
    keeps_values = True

    def __init__(self, regexp: str, output: str):
        self.regexp = regexp
        self.output = output
        self._compiled = re.compile(regexp)

    def normalize_value(self, value: Any) -> str:
        text = str(value)
        match = self._compiled.search(text)
        return self.output.format(**match.groupdict()) if match else text

    def __repr__(self) -> str:
        return f"rgxformat(regexp={self.regexp!r}, output={self.output!r})"


class _ValueFunction(Normalizer):
    """A user callable applied to each distinct value."""

    def __init__(self, func: Callable[[Any], Any]):
        self.func = func
        self.name = getattr(func, "__name__", type(func).__name__)

    def normalize_value(self, value: Any) -> Any:
        try:
            return self.func(value)
        except Exception as err:  # (the user's code: said as such, with the value, not as bigalign's bug)
            raise UserCodeError(f"the normalizer {self.name!r} failed on {value!r}: {type(err).__name__}: "
                                f"{err}") from None

    def __repr__(self) -> str:
        return self.name


NORMALIZERS: dict[str, type[Normalizer]] = {
    cls.name: cls
    for cls in (unormalize, lunormalize, lower, simplify, tokenize, remove_after, roundstr, rgxformat)
}


def make_normalizer(spec: Any) -> Normalizer:
    """Build a normalizer from a name, a ``{"name": ..., **params}`` mapping,
    an instance, or a callable on one value."""
    if isinstance(spec, Normalizer):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("name", None)
        if name not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {name!r}; known: {sorted(NORMALIZERS)}")
        try:
            return NORMALIZERS[name](**params)
        except TypeError as err:
            raise ValueError(f"normalizer {name!r}: {err}") from None
    if callable(spec):
        return _ValueFunction(spec)
    raise TypeError(f"a normalizer is a name, a mapping, a Normalizer or a callable, not {spec!r}")


def _normalize_text(text: pa.Array, normalizers: Sequence[Normalizer]) -> pa.Array:
    """A chain of normalizers on distinct text values: in Arrow for the ASCII
    ones, in Python for the others (accents to strip) and for a few values."""
    if len(text) <= FEW_VALUES and not text.null_count:
        values = text.to_pylist()
        for normalizer in normalizers:
            values = normalizer.normalize_values(values)
        return pa.array(values, type=pa.string())
    ascii_rows = pc.string_is_ascii(text).to_numpy(zero_copy_only=False)
    fast = text if ascii_rows.all() else text.filter(ascii_rows)
    for normalizer in normalizers:
        fast = normalizer.normalize_ascii(fast)
    if ascii_rows.all():
        return fast
    others = text.filter(~ascii_rows).to_pylist()
    for normalizer in normalizers:
        others = normalizer.normalize_values(others)
    order = np.concatenate([np.flatnonzero(ascii_rows), np.flatnonzero(~ascii_rows)])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return pa.concat_arrays([fast.cast(pa.string()), pa.array(others, type=pa.string())]).take(position)


def normalize_one(value: Any, normalizers: Sequence[Normalizer]) -> Any:
    """A chain of normalizers on one value that is not missing: what :func:`normalize_distinct` gives it
    (None where it gives a missing value), without a column's fixed costs (a lookup's record)."""
    arrow = type(value) is str and all(n.normalizes_ascii for n in normalizers)  # (its chain goes on with "")
    for normalizer in normalizers:
        value = normalizer.normalize_values([value])[0]
        if not arrow and not normalizer.keeps_values and is_missing(value):
            return None
    return value


def normalize_column(values: pd.Series, normalizers: Sequence[Normalizer]) -> pd.Series:
    """Apply a chain of normalizers in order, to each distinct value once (a
    value a normalizer turns into a missing one stays missing). Text that the
    built-in normalizers read comes back as Arrow text."""
    if not normalizers:
        return values
    if len(values) <= FEW_VALUES:  # (value by value: factorizing and Arrow's kernels cost a lookup ~1 ms a column)
        given = [None if is_na(v) else v for v in values.tolist()]
        each = [None if v is None else normalize_one(v, normalizers) for v in given]
        if all(n.normalizes_ascii for n in normalizers) and all(type(v) is str for v in given if v is not None):
            return pd.Series(pd.array(each, dtype=TEXT), index=values.index)
        return pd.Series(each, index=values.index, dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    normalized = _normalized_distinct(pd.Series(uniques), normalizers)
    if isinstance(normalized, np.ndarray):
        return pd.Series(np.append(normalized, [None])[codes], index=values.index, dtype=object)
    return pd.Series(TEXT.__from_arrow__(normalized.take(pa.array(codes, mask=codes < 0))), index=values.index)


def normalize_distinct(values: pd.Series, normalizers: Sequence[Normalizer]) -> pd.Series:
    """:func:`normalize_column` of values already distinct (none missing): each is normalized as it is."""
    if not normalizers:
        return values
    normalized = _normalized_distinct(values, normalizers)
    if isinstance(normalized, np.ndarray):
        return pd.Series(normalized, index=values.index, dtype=object)
    return pd.Series(TEXT.__from_arrow__(normalized), index=values.index)


def _normalized_distinct(values: pd.Series, normalizers: Sequence[Normalizer]) -> pa.Array | np.ndarray:
    """Distinct values normalized: Arrow text when the normalizers read text in Arrow, else objects."""
    text = arrow_text(values) if all(n.normalizes_ascii for n in normalizers) else None
    if text is not None:
        return _normalize_text(text, normalizers)
    current = values.tolist()
    positions = None  # where ``current`` sits in ``values``, once values went missing
    for normalizer in normalizers:
        current = normalizer.normalize_values(current)
        if not normalizer.keeps_values:
            kept = [i for i, v in enumerate(current) if not is_missing(v)]
            if len(kept) < len(current):
                positions = kept if positions is None else [positions[i] for i in kept]
                current = [current[i] for i in kept]
    mapped = np.full(len(values), None, dtype=object)
    mapped[slice(None) if positions is None else positions] = current
    return mapped
