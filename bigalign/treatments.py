"""Treatments and the global alignment matrix.

A :class:`Treatment` says how one attribute is compared: normalizers, a
metric, a weight, and whether distances are normalized to [0, 1]. The global
alignment matrix is the weighted sum of the treatments' distance matrices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .distances import Metric, make_metric
from .errors import InvalidValueError
from .normalize import Normalizer, make_normalizer, normalize_column
from .records import AttributeKey, attribute_columns, attribute_values
from .values.languages import check_lang, tag_ranks
from .values.sets import AGGREGATES, flatten, has_value_sets, pack, value_rows

__all__ = ["Treatment", "global_alignment_matrix", "global_pair_distances", "make_treatments", "plain",
           "set_aside_invalid", "explanation_columns", "global_distances", "treatment_pair_distances"]


class Treatment:
    """How one attribute is compared.

    Parameters
    ----------
    attribute : label, int, tuple or mapping
        The attribute: a column name, a position in the record (the
        identifier is position 0, as in Nazca), or a tuple of those for one
        attribute made of several columns (latitude, longitude). When the two
        sets name it differently: ``{"align": ..., "target": ...}``.
    metric : str, Metric or callable
        See :data:`bigalign.distances.METRICS`.
    normalizers : sequence
        Applied in order before the metric; see :mod:`bigalign.normalize`.
    weight : float
        Factor of this attribute in the global alignment matrix.
    normalized : bool
        Scale distances to [0, 1] (Nazca's ``matrix_normalized``), with a
        fixed per-pair or per-metric scale, never one that depends on a block.
    invalid : {"reject", "error"}, optional
        What becomes of a record whose value the metric cannot read (an
        unparsable date, coordinates that are text): set aside and reported,
        or an error naming the record and column. By default jobs reject
        (``rejects.csv``) and :func:`bigalign.align` fails.
    values : {"best", "worst", "mean"}
        When records hold several values of the attribute (value sets, read
        from linked data or ``multivalued`` files): a pair's distance is the
        smallest of its values' distances (the best pair, by default), the
        largest, or their mean. Records of one value each are compared as
        always.
    lang : list of str, optional
        The languages of the literals this treatment compares, in order of
        preference (``""``: a literal without a tag; "en" also keeps
        "en-GB"), read from the tags beside the attribute (``name_lang`` and
        ``name_datatype``: a query's ``literal_details``, which a job sets
        for it); text in other languages is left out, other literals (numbers,
        dates) kept. Records without the tags (a file's) are compared whole.
        One attribute of a set can compare French and English names while
        another reads every label.
    **options
        Given to the metric (``units``, ``granularity``, ``scale``,
        ``missing``, ``language``...).
    """

    def __init__(self, attribute: AttributeKey | Mapping[str, AttributeKey],
                 metric: str | Metric | Any = "levenshtein", *, normalizers: Sequence[Any] = (),
                 weight: float = 1.0, normalized: bool = False, invalid: str | None = None, values: str = "best",
                 lang: Sequence[str] | None = None, **options: Any):
        given: Any = attribute
        target: Any = attribute
        if isinstance(given, Mapping):
            if set(given) != {"align", "target"}:
                raise ValueError(f"treatment of {given!r}: a column per set is {{'align': ..., 'target': ...}}")
            attribute, target = given["align"], given["target"]
        attribute, target = (tuple(a) if isinstance(a, list) else a for a in (attribute, target))
        if isinstance(attribute, tuple) != isinstance(target, tuple) or (
                isinstance(attribute, tuple) and len(attribute) != len(target)):
            raise ValueError(f"treatment of {attribute!r}: the target's columns {target!r} do not match")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < np.inf:
            raise ValueError(f"treatment of {attribute!r}: 'weight' must be a positive finite number, got {weight!r}")
        if not isinstance(normalized, bool):
            raise ValueError(f"treatment of {attribute!r}: 'normalized' must be true or false, got {normalized!r}")
        if isinstance(normalizers, (str, Mapping)) or callable(normalizers):
            normalizers = [normalizers]
        self.attribute = attribute  # in the alignset
        self.target_attribute = target  # in the targetset (the same unless named apart)
        self.normalizers: list[Normalizer] = [make_normalizer(n) for n in normalizers]
        if values not in AGGREGATES:
            raise ValueError(f"treatment of {attribute!r}: 'values' must be one of {', '.join(AGGREGATES)}, got "
                             f"{values!r}")
        self.metric = make_metric(metric, **options)
        if values != "best":
            self.metric.values = values  # (the metric compares value sets: see Metric)
        self.values = values
        try:
            self.lang = None if lang is None else check_lang(lang)
        except ValueError as err:
            raise ValueError(f"treatment of {attribute!r}: 'lang' {err}") from None
        if self.lang is not None and (isinstance(attribute, tuple) or isinstance(target, tuple)):
            raise ValueError(f"treatment of {attribute!r}: 'lang' filters the literals of one column, not of "
                             "several")
        self.metric.check(attribute, normalized)
        self.metric.check(target, normalized)
        self.weight = float(weight)
        self.normalized = normalized
        if invalid not in (None, "reject", "error"):
            raise ValueError(f"treatment of {attribute!r}: 'invalid' must be 'reject' or 'error', got {invalid!r}")
        self.invalid = invalid
        self.options = dict(options)

    def side_attribute(self, side: str = "align") -> AttributeKey:
        """The attribute's column(s) in the alignset (``"align"``) or the targetset (``"target"``)."""
        return self.target_attribute if side == "target" else self.attribute

    def normalize(self, frame: pd.DataFrame, side: str = "align") -> pd.Series | pd.DataFrame:
        """The attribute's values in ``frame`` (records of one side) after the normalizers, a value a
        record; value sets stay sets of normalized values (those a normalizer empties left out)."""
        values, owners = self.value_rows(frame, side)
        if owners is None:
            return values
        rows = values if isinstance(values, pd.DataFrame) else values.to_frame()
        missing = rows.isna().to_numpy().any(axis=1) if len(rows.columns) else np.zeros(len(rows), bool)
        packed = pack(rows.reset_index(drop=True), owners, len(frame), missing)
        return packed if isinstance(values, pd.DataFrame) else packed.iloc[:, 0]

    def value_rows(self, frame: pd.DataFrame, side: str = "align") -> tuple[pd.Series | pd.DataFrame,
                                                                             np.ndarray | None]:
        """The attribute's normalized values, and the record of each when records hold value sets (a row
        per value: see :func:`~bigalign.values.sets.value_rows`; None: a row per record)."""
        values = attribute_values(frame, self.side_attribute(side))
        owners = None
        if self.lang is not None and f"{values.name}_lang" in frame.columns:  # (a file's values: no tags, all kept)
            values, owners = self._in_languages(frame, values, self.lang)
        elif has_value_sets(values):
            values, owners = value_rows(values)
        if not self.normalizers:
            return values, owners
        if isinstance(values, pd.DataFrame):
            return pd.DataFrame({c: normalize_column(values[c], self.normalizers) for c in values.columns},
                                index=values.index), owners
        return normalize_column(values, self.normalizers), owners

    def _in_languages(self, frame: pd.DataFrame, values: pd.Series,
                      lang: Sequence[str]) -> tuple[pd.Series, np.ndarray | None]:
        """The values in languages ``lang``, a record's in order of preference (see ``lang``)."""
        column = values.name
        tags, datatypes = frame[f"{column}_lang"], frame.get(f"{column}_datatype")
        if not has_value_sets(values):
            ranks = tag_ranks(tags, datatypes, lang)
            return values.where(pd.Series(ranks >= 0, index=values.index)), None
        values, owners, _ = flatten(values)  # (a value's tag and datatype are flattened alike: one family)
        ranks = tag_ranks(flatten(tags)[0], None if datatypes is None else flatten(datatypes)[0], lang)
        kept = np.flatnonzero(ranks >= 0)
        kept = kept[np.lexsort((kept, ranks[kept], owners[kept]))]
        return values.take(kept).reset_index(drop=True).rename(column), owners[kept]

    def encode(self, frame: pd.DataFrame, side: str = "align") -> pd.DataFrame:
        """Normalized and encoded values of the attribute (see Metric.encode); value sets stay sets of
        encoded values, missing ones left out."""
        values, owners = self.value_rows(frame, side)
        if owners is None:
            return self.metric.encode(values)
        try:
            encoded = self.metric.encode(values)
        except InvalidValueError as err:  # (said of the record the value is in)
            raise InvalidValueError(err.metric, int(owners[err.row]), err.value, err.reason) from None
        return pack(encoded.reset_index(drop=True), owners, len(frame), self.metric.is_missing(encoded))

    def reject_reasons(self, frame: pd.DataFrame, side: str = "align") -> tuple[np.ndarray, np.ndarray]:
        """Why the metric cannot read each record's value (None where it can), and the value at fault (the
        first such of a value set)."""
        values, owners = self.value_rows(frame, side)
        reasons = self.metric.reject_reasons(values)
        bad = np.flatnonzero(reasons != None)  # noqa: E711 (element-wise)
        found, shown = np.full(len(frame), None, dtype=object), np.full(len(frame), None, dtype=object)
        for i in bad[::-1]:  # (the first value of a record written last)
            record = i if owners is None else owners[i]
            found[record] = reasons[i]
            shown[record] = tuple(values.iloc[i]) if isinstance(values, pd.DataFrame) else values.iloc[i]
        return found, shown

    def cdist(self, a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
        """Weighted dense distances between encoded frames."""
        return self.weight * self.metric.cdist(a, b, self.normalized)

    def cpdist(self, a: pd.DataFrame, b: pd.DataFrame, ia: np.ndarray | None = None,
               ib: np.ndarray | None = None) -> np.ndarray:
        """Weighted distances of encoded pairs (rows ``ia`` of ``a`` with rows
        ``ib`` of ``b``, or aligned rows)."""
        return self.weight * self.metric.cpdist(a, b, self.normalized, ia, ib)

    def __str__(self) -> str:
        """The attribute as a person reads it: ``surname``, ``given_name+surname``
        (several columns), or ``last_name → surname`` (a column per set)."""
        def shown(attribute: AttributeKey) -> str:
            return "+".join(map(str, attribute)) if isinstance(attribute, tuple) else str(attribute)

        if self.target_attribute == self.attribute:
            return shown(self.attribute)
        return f"{shown(self.attribute)} → {shown(self.target_attribute)}"

    def __repr__(self) -> str:
        attribute = self.attribute if self.target_attribute == self.attribute else {
            "align": self.attribute, "target": self.target_attribute}
        return (f"Treatment({attribute!r}, {self.metric!r}, normalizers={self.normalizers!r}, "
                f"weight={self.weight}, normalized={self.normalized})")


# Nazca's spelling of treatment keys, accepted in the dict form.
_NAZCA_KEYS = {"normalization": "normalizers", "matrix_normalized": "normalized", "weighting": "weight"}


def _treatment_from_mapping(attribute: Any, spec: Mapping[str, Any]) -> Treatment:
    params = {_NAZCA_KEYS.get(k, k): v for k, v in spec.items()}
    params.update(params.pop("metric_params", None) or {})
    if "metric" not in params:
        raise ValueError(f"treatment of {attribute!r}: 'metric' is required")
    try:
        return Treatment(attribute, **params)
    except TypeError as err:
        raise ValueError(f"treatment of {attribute!r}: {err}") from None


def set_aside_invalid(records: pd.DataFrame, treatments: Sequence[Treatment], name: str, side: str = "align",
                      default: str = "error") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records whose values every treatment can read, and the others (set,
    id, column, reason, value); raises :class:`~bigalign.errors.RecordError`
    for a treatment whose ``invalid`` (else ``default``) is ``"error"``."""
    from .errors import RecordError

    bad = np.zeros(len(records), dtype=bool)
    rejects = []
    ids = records.iloc[:, 0]
    for t in treatments:
        if t.metric.reads_every_value:
            continue
        reasons, values = t.reject_reasons(records, side)
        rows = np.flatnonzero((reasons != None) & ~bad)  # noqa: E711 (element-wise)
        if not len(rows):
            continue
        column = ", ".join(map(str, attribute_columns(records, t.side_attribute(side))))
        shown = [values[i] for i in rows]
        if (t.invalid or default) == "error":
            raise RecordError(f"{name}: record {plain(ids.iloc[rows[0]])!r}, column {column}: {reasons[rows[0]]}: "
                              f"{plain(shown[0])!r} ({len(rows)} such records; Treatment(invalid='reject') "
                              "sets them aside)")
        rejects += [{"set": name, "id": plain(ids.iloc[i]), "column": column, "reason": reasons[i],
                     "value": str(plain(v))} for i, v in zip(rows, shown)]
        bad[rows] = True
    return records[~bad].reset_index(drop=True), pd.DataFrame(rejects, columns=["set", "id", "column", "reason",
                                                                                "value"])


def plain(value: Any) -> Any:
    """A numpy scalar (or a tuple of them) as the Python value it holds, for messages."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def make_treatments(treatments: Any) -> list[Treatment]:
    """Treatments from Nazca's dict form, a list of mappings, or Treatments.

    Nazca's form maps attributes to ``{"metric": ..., "normalization": [...],
    "weight": ..., "matrix_normalized": ...}``; a list of mappings names the
    attribute under ``"column"`` (the job-file form).
    """
    if isinstance(treatments, Treatment):
        return [treatments]
    if isinstance(treatments, Mapping):
        result = [_treatment_from_mapping(k, v) for k, v in treatments.items()]
    elif isinstance(treatments, Iterable):
        result = []
        for t in treatments:
            if isinstance(t, Treatment):
                result.append(t)
            elif isinstance(t, Mapping):
                spec = dict(t)
                if "column" not in spec:
                    raise ValueError(f"treatment {spec!r}: 'column' is required")
                result.append(_treatment_from_mapping(spec.pop("column"), spec))
            else:
                raise TypeError(f"a treatment is a Treatment or a mapping, not {t!r}")
    else:
        raise TypeError(f"treatments must be a mapping or a list, not {type(treatments).__name__}")
    if not result:
        raise ValueError("at least one treatment is needed")
    return result


def _weighted_sum(treatments: Sequence[Treatment], distances: Iterable[np.ndarray]) -> np.ndarray:
    """Σ weighted distances, a treatment without evidence (NaN: a missing
    value) left out and the sum scaled back to the full weight: the pair is
    judged on what both records hold. Without any evidence: inf."""
    full = sum(t.weight for t in treatments)
    pairs = iter(zip(treatments, distances))
    first, d = next(pairs)
    known = ~np.isnan(d)
    total, present = np.where(known, d, 0.0), np.where(known, first.weight, 0.0)
    for t, d in pairs:
        known = ~np.isnan(d)
        total += np.where(known, d, 0.0)
        present += np.where(known, t.weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present > 0, total * (full / present), np.inf)


def global_alignment_matrix(treatments: Sequence[Treatment], encoded_a: Sequence[pd.DataFrame],
                            encoded_b: Sequence[pd.DataFrame]) -> np.ndarray:
    """The weighted sum of the treatments' distance matrices (float64); a
    treatment with a missing value in a pair is left out of that pair's sum,
    which is scaled to the full weight (see :func:`_weighted_sum`)."""
    return _weighted_sum(treatments, (t.cdist(a, b) for t, a, b in zip(treatments, encoded_a, encoded_b)))


def treatment_pair_distances(treatments: Sequence[Treatment], encoded_a: Sequence[pd.DataFrame],
                             encoded_b: Sequence[pd.DataFrame], ia: np.ndarray | None = None,
                             ib: np.ndarray | None = None) -> np.ndarray:
    """``(pairs, treatments)``: each treatment's distance of pairs, before its
    weight (NaN: a value missing); ``t.weight *`` a column is what
    :func:`global_pair_distances` adds up."""
    return np.column_stack([t.metric.cpdist(a, b, t.normalized, ia, ib)
                            for t, a, b in zip(treatments, encoded_a, encoded_b)])


def global_pair_distances(treatments: Sequence[Treatment], encoded_a: Sequence[pd.DataFrame],
                          encoded_b: Sequence[pd.DataFrame], ia: np.ndarray | None = None,
                          ib: np.ndarray | None = None) -> np.ndarray:
    """The global distance of pairs (rows ``ia`` and ``ib``, or aligned rows);
    equal, bit for bit, to the corresponding cells of
    :func:`global_alignment_matrix`."""
    return global_distances(treatments, treatment_pair_distances(treatments, encoded_a, encoded_b, ia, ib))


def global_distances(treatments: Sequence[Treatment], distances: np.ndarray) -> np.ndarray:
    """The global distance of pairs from their :func:`treatment_pair_distances`."""
    return _weighted_sum(treatments, (t.weight * distances[:, k] for k, t in enumerate(treatments)))


def explanation_columns(treatments: Sequence[Treatment], distances: np.ndarray) -> dict[str, np.ndarray]:
    """The columns that explain pairs' weighted distances: per treatment ``"{attribute}: distance"``
    (the metric's, before the weight; NaN: a value missing). A learned model adds its own (see
    :meth:`~bigalign.fellegi_sunter.FellegiSunter.explanation_columns`)."""
    return {f"{t}: distance": distances[:, k] for k, t in enumerate(treatments)}
