"""The job tables that say how pairs are scored: ``[[treatments]]`` (each attribute's normalizers, metric
and weight, and what a learned model reads of it: cut points, term frequencies, groups) and ``[model]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from .distances import metric_class
from .errors import InputError, JobError
from .fellegi_sunter import FellegiSunter
from .io import read_pairs
from .job_tables import NotImported, TableReader, UserCode, is_import_path, job_relative
from .scorers import Scorer, WeightedDistance
from .treatments import Treatment

__all__ = ["MODEL_KEYS", "TreatmentModel", "read_levels", "read_scorer", "read_treatment", "read_treatments",
           "treatment_spec"]


def treatment_spec(job_path: str, index: int, table: Mapping[str, Any]) -> Treatment:
    """Treatment ``index`` of a job (a ``[[treatments]]`` table) as :func:`load_job` reads it (built-ins only)."""
    reader = TableReader(job_path, table, f"treatments[{index}]")
    reader.used.update(MODEL_KEYS)  # (a learned model's, read with the others: see read_treatments)
    return read_treatment(reader, UserCode((), True))


def _normalizers(reader: TableReader, key: str, code: UserCode) -> list[Any]:
    specs = reader.get(key, list, [])
    result = []
    for spec in specs:
        if isinstance(spec, Mapping) and is_import_path(spec.get("name")):
            params = dict(spec)
            factory = code.get(params.pop("name"), reader, key)
            # a factory with parameters makes the normalizer: called only when resolving
            result.append(factory(**params) if params and code.resolve else factory)
        elif is_import_path(spec):
            result.append(code.get(spec, reader, key))
        else:
            result.append(spec)
    return result


def read_levels(reader: TableReader) -> list[float] | None:
    """A treatment's cut points for the Fellegi–Sunter model (``levels = [0, 0.1]``)."""
    levels = reader.get("levels", list)
    if levels is not None and (not levels or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                                     and c >= 0 for c in levels)):
        raise reader.error("levels", f"must be a list of distances ≥ 0 (the cut points), got {levels!r}")
    return None if levels is None else [float(c) for c in levels]


def read_scorer(reader: TableReader, treatment_model: TreatmentModel, job_dir: str) -> Scorer:
    """``[model]``: kind = "distance" (the weighted distance, the default) or "fellegi-sunter"."""
    cuts, terms, groups = treatment_model
    kind = reader.get("kind", str, "distance")
    if kind not in ("distance", "fellegi-sunter"):
        raise reader.error("kind", f"must be 'distance' or 'fellegi-sunter', got {kind!r}")
    if kind == "distance":
        reader.done()
        if any(c is not None for c in cuts) or terms or groups:
            raise JobError(f"{reader.job_path}: treatments: 'levels', 'term_frequency' and 'group' belong to a "
                           "[model] of kind 'fellegi-sunter'")
        return WeightedDistance()
    options: dict[str, Any] = {key: value for key, kinds in (("max_iterations", int), ("tolerance", float),
                                                             ("random_pairs", int), ("seed", int))
                               if (value := reader.get(key, kinds)) is not None}
    labels = reader.get("labels", str)
    found = reader.get("groups", str)
    if found not in (None, "auto", "none"):
        raise reader.error("groups", f"must be 'auto' (the treatments likely matches show dependent, grouped when "
                                     f"the model is better for it: the default) or 'none', got {found!r}")
    if groups and found is not None:
        raise reader.error("groups", f"is {found!r}, but treatments name a 'group'")
    options["groups"] = groups or ({} if found == "none" else "auto")
    reader.done()
    if labels is not None:  # pairs known to match: m is theirs
        try:
            options["labels"] = read_pairs(job_relative(job_dir, labels))
        except InputError as err:
            raise reader.error("labels", str(err)) from None
    try:
        return FellegiSunter(cuts, term_frequencies=terms, **options)
    except ValueError as err:
        raise JobError(f"{reader.job_path}: model: {err}") from None


def read_treatment(reader: TableReader, code: UserCode) -> Treatment:
    column = reader.get("column", (str, list, dict), required=True)
    if column in ("", [], {}):
        raise reader.error("column", "is empty: name the attribute's column (or columns)")
    if isinstance(column, dict):  # a column per set: {align = "...", target = "..."}
        if set(column) != {"align", "target"}:
            raise reader.error("column", f"a column per set is {{ align = ..., target = ... }}, got {column!r}")
        attribute: Any = {side: tuple(c) if isinstance(c, list) else c for side, c in column.items()}
    else:
        attribute = tuple(column) if isinstance(column, list) else column
    metric = reader.get("metric", str, required=True)
    metric = code.get(metric, reader, "metric") if is_import_path(metric) else metric
    normalizers = _normalizers(reader, "normalizers", code)
    weight = reader.get("weight", (int, float), 1.0)
    normalized = reader.get("normalized", bool, False)
    invalid = reader.get("invalid", str)
    values = reader.get("values", str, "best")
    lang = reader.get("lang", list)
    try:
        if isinstance(metric, NotImported):  # (validate: its options are its own, checked when it is imported)
            reader.rest()
            return Treatment(attribute, metric, normalizers=normalizers, weight=weight, normalized=normalized,
                             invalid=invalid, values=values, lang=lang)
        options = {}
        for key, kinds in metric_class(metric).parameter_types().items():
            value = reader.get(key, kinds)
            if isinstance(value, float) and math.isnan(value):
                raise reader.error(key, "must be a number, got nan")
            if value is not None:
                options[key] = value
        reader.done()
        return Treatment(attribute, metric, normalizers=normalizers, weight=weight, normalized=normalized,
                         invalid=invalid, values=values, lang=lang, **options)
    except (ValueError, TypeError) as err:
        if isinstance(err, JobError):
            raise
        raise JobError(f"{reader.job_path}: {reader.where}: {err}", field=reader.where) from None


# What a treatment's table says of a learned model, beside the treatment itself.
MODEL_KEYS = ("levels", "term_frequency", "group")


class TreatmentModel(NamedTuple):
    """What ``[[treatments]]`` tables say of a learned model: per treatment its cut points (``levels``),
    the positions of those with term frequencies, and the groups (name → member positions)."""

    cuts: list[list[float] | None]
    terms: list[int]
    groups: dict[str, list[int]]


def read_treatments(job_path: str, tables: list, code: UserCode) -> tuple[list[Treatment], TreatmentModel]:
    """The ``[[treatments]]`` tables: the treatments, and what they say of a learned model."""
    readers = [TableReader(job_path, t, f"treatments[{i}]") for i, t in enumerate(tables)]
    cuts = [read_levels(r) for r in readers]
    terms = [i for i, r in enumerate(readers) if r.get("term_frequency", bool, False)]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(readers):
        group = r.get("group", str)
        if group == "":
            raise r.error("group", "is empty: name the group (treatments of one group name it alike)")
        if group is not None:
            groups.setdefault(group, []).append(i)
    alone = [name for name, members in groups.items() if len(members) < 2]
    if alone:
        raise JobError(f"{job_path}: treatments: group {alone[0]!r} has one treatment; a group is several "
                       "treatments weighed as one comparison", field="treatments")
    return [read_treatment(r, code) for r in readers], TreatmentModel(cuts, terms, groups)
