"""The specification of an alignment: one frozen object, built and validated in one place.

A job file (:func:`bigalign.jobs.load_job`) and the Python entry points
(:func:`bigalign.align`, :func:`bigalign.align_sets`) are translations into an
:class:`Alignment`. Each parameter's constraint is declared once, in
:data:`PARAMETERS`; :func:`make_alignment` checks them, then the rules that
tie parameters together, and raises :class:`SpecError` naming the parameter,
which each entry point words as its caller knows it (a job key, an argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .evaluate import LINK_AND_DEDUPE, LINK_TYPES
from .scorers import Scorer, WeightedDistance
from .treatments import Treatment, make_treatments

__all__ = ["PARAMETERS", "Alignment", "Parameter", "SpecError", "make_alignment"]


class SpecError(ValueError):
    """A parameter of an alignment that cannot work: ``name`` (a :data:`PARAMETERS` name, or
    ``treatments[i]``) and why."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Parameter:
    """One parameter of an alignment: its name (``align()``'s argument), its job key, the types it takes,
    its default, and its range or choices."""

    name: str
    key: str
    kinds: tuple[type, ...]
    default: Any
    doc: str
    least: float | None = None
    choices: tuple[str, ...] | None = None

    def check(self, value: Any) -> Any:
        """``value`` (``None``: the default) if it is one this parameter takes, else a :class:`SpecError`."""
        if value is None:
            return self.default
        if bool not in self.kinds and isinstance(value, bool) or not isinstance(value, self.kinds):
            expected = " or ".join(kind.__name__ for kind in self.kinds)
            raise SpecError(self.name, f"must be {expected}, got {value!r}")
        if self.least is not None and isinstance(value, (int, float)) and value < self.least:
            raise SpecError(self.name, f"must be at least {self.least}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise SpecError(self.name, f"must be one of {list(self.choices)}, got {value!r}")
        return value


PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    # (the threshold's constraint is the scorer's: a distance, or a match probability or "auto")
    Parameter("threshold", "threshold", (int, float, str), None, "what a link's score must reach"),
    Parameter("uniq", "uniq", (bool,), None, "only the best target of each align record (by default: unless "
                                             "deduplicating)"),
    Parameter("one_to_one", "one_to_one", (bool,), False, "no target linked twice (greedy on the score)"),
    Parameter("dedupe", "dedupe", (bool,), False, "one set, aligned with itself"),
    Parameter("link_type", "link_type", (str,), LINK_AND_DEDUPE, "with several sets: which pairs are candidates",
              choices=tuple(LINK_TYPES)),
    Parameter("max_block_pairs", "max_block_pairs", (int,), None, "blocks with more pairs are left out",
              least=1),
    Parameter("max_task_pairs", "max_task_pairs", (int,), None, "blocks with more pairs are split into tiles",
              least=1),
    Parameter("explain", "output.explain", (bool,), False, "each treatment's part on every link"),
)}


@dataclass(frozen=True)
class Alignment:
    """What is aligned with what, and how: the treatments, the scorer and its threshold, the blocking
    (``None``: every pair, in memory), which links are kept, and the run's limits. Frozen: what a run
    fits is a copy (see :meth:`~bigalign.scorers.Scorer.fitted`)."""

    treatments: tuple[Treatment, ...]
    scorer: Scorer
    threshold: float | str
    blocking: Any
    uniq: bool
    one_to_one: bool
    dedupe: bool
    several_sets: bool
    link_type: str
    max_block_pairs: int | None
    max_task_pairs: int | None
    explain: bool


def make_alignment(treatments: Any, *, scorer: Scorer | None = None, blocking: Any = None,
                   several_sets: bool = False, **values: Any) -> Alignment:
    """The :class:`Alignment` of ``treatments`` (any form :func:`~bigalign.treatments.make_treatments`
    reads), the ``scorer`` (by default the weighted distance), the ``blocking`` and ``values`` (by
    :data:`PARAMETERS` name; missing: the default), checked.

    ``several_sets``: the records are several sets aligned as one deduplicated set. Raises
    :class:`SpecError`.
    """
    treatments = make_treatments(treatments)
    scorer = scorer or WeightedDistance()
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise SpecError(unknown[0], f"unknown parameter; expected one of {sorted(PARAMETERS)}")
    checked = {name: parameter.check(values.get(name)) for name, parameter in PARAMETERS.items()}
    if checked["threshold"] is None:
        raise SpecError("threshold", "is required")
    try:
        threshold = scorer.check_threshold(checked.pop("threshold"))
    except ValueError as err:
        raise SpecError("threshold", str(err)) from None
    try:
        scorer.check_treatments(treatments)
    except ValueError as err:
        raise SpecError("model", str(err)) from None
    dedupe = checked["dedupe"] = checked["dedupe"] or several_sets
    if checked["uniq"] is None:
        checked["uniq"] = not dedupe
    if dedupe and (checked["uniq"] or checked["one_to_one"]):
        name = "uniq" if checked["uniq"] else "one_to_one"
        raise SpecError(name, f"deduplication and several sets return every pair under the threshold: {name} "
                              "must be false")
    for i, t in enumerate(treatments):
        if dedupe and t.target_attribute != t.attribute:
            raise SpecError(f"treatments[{i}]", "a deduplication has one set, so one column; several sets: the "
                                                "same column in every set")
    return Alignment(treatments=tuple(treatments), scorer=scorer, threshold=threshold, blocking=blocking,
                     several_sets=several_sets, **checked)

