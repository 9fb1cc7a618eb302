"""What a learned model weighs: one treatment's comparison levels, or a group of treatments as one comparison.

Under the Fellegi–Sunter model's independence, each disagreeing treatment is separate evidence
against a match. Some fields move together: a person who moved disagrees on street number,
street, suburb and postcode at once, and four penalties sink a true match below a stranger who
lives at the address. A *group* makes those treatments one comparison whose levels are their
joint levels — each member at one of its own levels, or missing — each joint level with its own m
and u: moving costs what moving costs among matches, once, and each member keeps the gradation of
its levels. A group is missing only when every member is.

Groups are the job's (``group = "home"`` on treatments) or found in the data, by default: treatments
that disagree together among likely matches far more often than independence says
(:class:`MatchDependence`, read from the candidates' pattern counts after a first fit), kept when the
model fitted with them finds more records' counterparts, one each (:func:`record_matches` of each
record's candidates: relatives at one address, taken for people who moved, would be a record's second
counterpart) — :func:`grouped_as_found`. Pure functions of level matrices, pattern counts and match
probabilities; the model (:mod:`bigalign.fellegi_sunter`) drives them.
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .em import MISSING

logger = logging.getLogger("bigalign")

__all__ = ["MAX_GROUP", "MAX_JOINT_LEVELS", "Comparison", "MatchDependence", "choose_groups", "compared",
           "compared_patterns", "group_level_names", "grouped_as_found", "joint_levels", "joint_size",
           "make_comparisons", "record_matches", "shown_levels"]

# Members of a group at most, and its joint levels at most (the product of its members' levels, each
# with one more for missing): each has an m and a u, and a table of u given another comparison's level.
MAX_GROUP = 5
MAX_JOINT_LEVELS = 2048
# Treatments are grouped when likely matches disagree on both this many times more often than
# independence says (more than among non-matches: the pairs the other treatments call matches hold
# non-matches that agree on those, a household at one address, whose other fields all differ) ...
MATCH_DEPENDENCE_FACTOR = 2.5
# ... and at least this many likely matches (their probabilities summed) disagree on both, and at least
# this share of them: a group can only rescue the matches it concerns, and a rare coincidence (two
# relatives at one address) is not worth the joint levels' parameters.
MATCH_DEPENDENCE_MIN = 20.0
MATCH_DEPENDENCE_SHARE = 0.02
# Comparisons left at least, after grouping: EM tells matches from non-matches by conditionally
# independent evidence, and two comparisons are too few to tell them apart.
MIN_COMPARISONS = 3
# A treatment may join a group when it is far with the group this many times more often than independence
# says — fewer than to found one: the more of the matches the group is far on (a third of them moved), the
# less room above independence is left (3× at most) — and it joins when the model is better for it.
MATCH_EXTENSION_FACTOR = 1.5


@dataclass(frozen=True)
class Comparison:
    """One term of the match weight: a treatment (``members`` of one) or a group of treatments."""

    name: str
    members: tuple[int, ...]

    @property
    def grouped(self) -> bool:
        return len(self.members) > 1


def make_comparisons(names: Sequence[str], groups: Sequence[tuple[str, Sequence[int]]],
                     with_terms: Sequence[int] = ()) -> list[Comparison]:
    """The comparisons of treatments (their ``names``, in order) with ``groups`` (name, member positions):
    each group in place of its members, at its first member's place; every other treatment on its own
    (as those ``with_terms``, term frequencies, must be: they weigh a value, a group its agreement)."""
    taken: dict[int, str] = {}
    for name, members in groups:
        if set(members) & set(with_terms):
            raise ValueError(f"{names[sorted(set(members) & set(with_terms))[0]]!r} has term frequencies and is "
                             f"in group {name!r}: a group's levels are its members' joint levels, not values")
        if name in names:
            raise ValueError(f"group {name!r} has the name of a treatment; name it otherwise")
        if not 2 <= len(set(members)) <= MAX_GROUP:
            raise ValueError(f"group {name!r}: a group has 2 to {MAX_GROUP} treatments, got {len(set(members))}")
        for k in members:
            if k in taken:
                raise ValueError(f"treatment {names[k]!r} is in two groups, {taken[k]!r} and {name!r}")
            taken[k] = name
    first = {name: min(members) for name, members in groups}
    out = []
    for k, treatment in enumerate(names):
        if k not in taken:
            out.append(Comparison(treatment, (k,)))
        elif first[taken[k]] == k:
            out.append(Comparison(taken[k], tuple(sorted(dict(groups)[taken[k]]))))
    return out


@functools.lru_cache(maxsize=64)
def joint_levels(n_levels: tuple[int, ...]) -> np.ndarray:
    """The level of each joint state of members of ``n_levels`` levels (mixed radix, member ``i`` the digit
    ``i``, its state ``n_levels[i]`` missing): by fewer members at their farthest level, then fewer
    missing, then the members' levels summed as shares of their range — all at their closest level
    first, all at their farthest last. (Kept per shape, read-only: every scored partition reads it.)"""
    sizes = np.asarray(n_levels) + 1
    codes = np.arange(int(np.prod(sizes)))
    digits = (codes[:, None] // np.concatenate([[1], np.cumprod(sizes)[:-1]])) % sizes
    missing = digits == sizes - 1
    far = ~missing & (digits == sizes - 2)
    closeness = np.where(missing, 0.0, digits / np.maximum(sizes - 2, 1)).sum(axis=1)
    order = np.lexsort((codes, closeness, missing.sum(axis=1), far.sum(axis=1)))
    levels = np.empty(len(codes), dtype=np.int16)
    levels[order] = np.arange(len(codes))
    levels.flags.writeable = False
    return levels


def group_level_names(members: Sequence[str], member_levels: Sequence[Sequence[str]]) -> list[str]:
    """What each level of a group is, as people read it: each member's level (``street ≤ 0, suburb
    farther, postcode missing``; its ``member_levels``' names); the all-missing state is the group's
    missing value."""
    sizes = [len(names) + 1 for names in member_levels]
    names = [""] * int(np.prod(sizes))
    for code, level in enumerate(joint_levels(tuple(len(n) for n in member_levels)).tolist()):
        parts, rest = [], code
        for member, own, size in zip(members, member_levels, sizes):
            digit, rest = rest % size, rest // size
            parts.append(f"{member} {'missing' if digit == size - 1 else own[digit]}")
        names[level] = ", ".join(parts)
    return names


def shown_levels(comparison: dict) -> list[int]:
    """The levels of a comparison (as a model's summary describes it) worth showing: a treatment's all, a
    group's those its candidates reach (of its members' joint levels, most are never seen)."""
    if len(comparison.get("members", [])) < 2:
        return list(range(len(comparison["m"])))
    return [level for level, pairs in enumerate(comparison["pairs"]) if pairs > 0]


def compared(levels: np.ndarray, comparisons: Sequence[Comparison], n_levels: Sequence[int]) -> np.ndarray:
    """``(pairs, comparisons)`` levels from ``(pairs, treatments)`` levels (``n_levels``: each treatment's)."""
    out = np.empty((len(levels), len(comparisons)), dtype=np.int16)
    for c, comparison in enumerate(comparisons):
        if not comparison.grouped:
            out[:, c] = levels[:, comparison.members[0]]
            continue
        code, radix, everything_missing = np.zeros(len(levels), dtype=np.int64), 1, 0
        for k in comparison.members:
            level = levels[:, k].astype(np.int64)
            code += np.where(level == MISSING, n_levels[k], level) * radix
            everything_missing += n_levels[k] * radix
            radix *= n_levels[k] + 1
        joint = joint_levels(tuple(n_levels[k] for k in comparison.members))
        out[:, c] = np.where(code == everything_missing, MISSING, joint[code])
    return out


def joint_size(members: Sequence[int], n_levels: Sequence[int]) -> int:
    """How many levels a group of ``members`` has (treatments of ``n_levels`` levels)."""
    return int(np.prod([n_levels[k] + 1 for k in members]))


def compared_patterns(patterns: pd.DataFrame, comparisons: Sequence[Comparison], n_levels: Sequence[int]
                      ) -> pd.DataFrame:
    """Pattern counts of treatments' levels (one column a treatment, then ``count`` and any of ``rules``,
    ``known``) as those of the comparisons' levels, equal patterns summed."""
    extra = [c for c in patterns.columns if c in ("rules", "known")]
    treatment_columns = [c for c in patterns.columns if c != "count" and c not in extra]
    levels = compared(patterns[treatment_columns].to_numpy(np.int64), comparisons, n_levels)
    frame = pd.DataFrame(levels, columns=range(len(comparisons)))
    for column in extra + ["count"]:
        frame[column] = patterns[column].to_numpy()
    keys = [c for c in frame.columns if c != "count"]
    return frame.groupby(keys, sort=True, as_index=False)["count"].sum()


class MatchDependence:
    """Which treatments disagree together among likely matches, read from the candidates' pattern counts
    after a fit under independence. ``views``: per blocking rule (or for all the candidates), its pairs'
    pattern levels (one column a treatment; missing where the rule blocked on it: its pairs agree there by
    selection, matches or not), their counts and its share of matches, as its EM saw them; ``weigh``: the
    fit's log2 m/u of each level of such levels (one view at least). Treatments ``apart`` are never grouped.

    For two units (treatments, or groups of them), a pattern's likely matches are its pairs times its match
    probability judged on the *other* treatments (the two tested would call the matches that disagree on
    both non-matches: a fit under independence hides the very dependence looked for); the units are
    far together when those matches are far on both (each unit's known members at their farthest level)
    more than ``factor`` times as often as independence gives, at least :data:`MATCH_DEPENDENCE_MIN` and
    :data:`MATCH_DEPENDENCE_SHARE` of them.
    """

    def __init__(self, views: Sequence[tuple[np.ndarray, np.ndarray, float]],
                 weigh: Callable[[np.ndarray], np.ndarray], n_levels: Sequence[int], apart: Sequence[int] = ()):
        self.n_levels, self.apart = list(n_levels), set(apart)
        levels = np.concatenate([view[0] for view in views])
        self.counts = np.concatenate([view[1] for view in views])
        self.contributions = weigh(levels)
        levels[:, list(apart)] = MISSING
        self.far, self.known = levels == (np.asarray(n_levels) - 1), levels != MISSING
        self.total_weight = self.contributions.sum(axis=1) + np.concatenate(
            [np.full(len(view[0]), np.log2(view[2] / (1 - view[2]))) for view in views])

    def strength(self, a: list[int], b: list[int], factor: float) -> float | None:
        """How many times more often than independence says units ``a`` and ``b`` are far together among
        the matches the other treatments find; None below ``factor`` or too few."""
        with np.errstate(over="ignore"):
            likely = self.counts / (1.0 + np.exp2(-(self.total_weight - self.contributions[:, a + b].sum(axis=1))))
        known, far = self.known, self.far
        # a unit is far when its known members all are (and one is known)
        far_a, far_b = ((known[:, u].any(axis=1) & (far[:, u] | ~known[:, u]).all(axis=1)) for u in (a, b))
        both_known = known[:, a].any(axis=1) & known[:, b].any(axis=1)
        total = float(likely[both_known].sum())
        if total <= 0:
            return None
        p_a, p_b = (float(likely[both_known & f].sum()) / total for f in (far_a, far_b))
        both = float(likely[both_known & far_a & far_b].sum())
        if both < max(MATCH_DEPENDENCE_MIN, MATCH_DEPENDENCE_SHARE * total) or both <= factor * p_a * p_b * total:
            return None
        return both / max(p_a * p_b * total, 1e-300)

    def fits(self, group: Sequence[int], groups: Sequence[Sequence[int]] = ()) -> bool:
        """Whether ``group`` may be one comparison beside ``groups``: at most :data:`MAX_GROUP` members and
        :data:`MAX_JOINT_LEVELS` joint levels, :data:`MIN_COMPARISONS` comparisons left, none apart."""
        members = sum(len(g) for g in groups) + len(group)
        return (len(group) <= MAX_GROUP and joint_size(group, self.n_levels) <= MAX_JOINT_LEVELS
                and not set(group) & self.apart
                and len(self.n_levels) - members + len(groups) + 1 >= MIN_COMPARISONS)

    def seeds(self) -> list[list[int]]:
        """Groups of treatments far together (by :data:`MATCH_DEPENDENCE_FACTOR`): the strongest link
        merged first, the merged group then judged as one unit (left out together: a mover's other address
        fields would otherwise vote against the match each time) — a merge also needs two of its
        treatments linked on their own (judged without a whole unit, the matches found grow with
        non-matches, relatives and neighbours, whose fields all differ) — until no link is left."""
        n = len(self.n_levels)
        linked = {(i, j) for i in range(n) for j in range(i + 1, n)
                  if self.strength([i], [j], MATCH_DEPENDENCE_FACTOR) is not None}
        units = [[k] for k in range(n)]
        while True:
            best: tuple[float, int, int] | None = None
            for i in range(len(units)):
                for j in range(i + 1, len(units)):
                    merged = units[i] + units[j]
                    if self.fits(merged, [u for u in units if len(u) > 1 and u not in (units[i], units[j])]) and any(
                            (min(a, b), max(a, b)) in linked for a in units[i] for b in units[j]):
                        found = self.strength(units[i], units[j], MATCH_DEPENDENCE_FACTOR)
                        if found is not None and (best is None or found > best[0]):
                            best = (found, i, j)
            if best is None:
                return sorted(u for u in units if len(u) > 1)
            _, i, j = best
            units[i] = sorted(units[i] + units.pop(j))

    def joinable(self, group: list[int], groups: Sequence[Sequence[int]]) -> list[int]:
        """Treatments that may join ``group`` (beside ``groups``): far with it by
        :data:`MATCH_EXTENSION_FACTOR`, the strongest first."""
        taken = {k for g in groups for k in g} | set(group)
        found = [(strength, k) for k in range(len(self.n_levels)) if k not in taken and self.fits(group + [k], groups)
                 for strength in [self.strength(group, [k], MATCH_EXTENSION_FACTOR)] if strength is not None]
        return [k for _, k in sorted(found, key=lambda f: (-f[0], f[1]))]


def choose_groups(seeds: Sequence[list[int]], joinable: Callable[[list[int], list[list[int]]], list[int]],
                  gains: Callable[[list[list[int]]], float], least: float,
                  join_least: float) -> tuple[list[list[int]], list[tuple[list[int], float]]]:
    """Groups that a model weighing each as one comparison is better for: each of the ``seeds`` kept when
    it raises ``gains`` (of a set of groups: how good the model fitted with them is, see
    :func:`record_matches`) by ``least`` or more over the groups kept before it, grown by its
    ``joinable`` treatments (beside the groups kept) while each one added raises it by ``join_least`` or
    more again. Returns the groups kept, and each seed's group as tried with what it gained."""
    chosen: list[list[int]] = []
    tried: list[tuple[list[int], float]] = []
    score = gains([])
    for seed in seeds:
        if any(set(seed) & set(g) for g in chosen):
            continue
        group, best = seed, gains(chosen + [seed])
        while best >= score + least:  # (a seed worth nothing grows no further)
            grown = [(gains(chosen + [sorted(group + [k])]), k) for k in joinable(group, chosen)]
            top = max(grown, key=lambda g: g[0], default=None)
            if top is None or top[0] < best + join_least:
                break
            best, group = top[0], sorted(group + [top[1]])
        tried.append((group, best - score))
        if best >= score + least:
            chosen, score = chosen + [group], best
    return chosen, tried


def record_matches(probabilities: np.ndarray, records: np.ndarray) -> tuple[float, float]:
    """The matches a model expects of each record's best candidate, summed over the records, and beyond
    its best (its other candidates' match probabilities). A record has one counterpart: what a group adds
    to the first is people it finds, to the second relatives and neighbours it takes for them."""
    if not len(records):
        return 0.0, 0.0
    order = np.argsort(records, kind="stable")
    ordered = records[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    best = float(np.maximum.reduceat(probabilities[order], starts).sum())
    return best, float(probabilities.sum()) - best


def grouped_as_found(model: Any, names: Sequence[str], apart: Sequence[int], refit: Callable[[Any], None],
                     records: int, matches_per_record: Callable[[Any], tuple[float, float]]) -> Any:
    """A learned ``model`` (:class:`~bigalign.fellegi_sunter.FellegiSunter`, fitted without groups) with
    the treatments that disagree together among its likely matches as groups (:class:`MatchDependence` of
    each blocking rule's pairs as its EM saw them; those ``apart``, with term frequencies, left alone):
    each group fitted again by ``refit`` and kept when the model finds more records' counterparts, one
    each (``matches_per_record``: its expected matches of each record's best candidate, and beyond them —
    relatives and neighbours taken for matches —: the first less the second, :data:`MATCH_DEPENDENCE_SHARE`
    of them more at least), and expects no more matches than ``records``. The groups tried are said
    (logged, and in the model's ``groups_found_``)."""
    fitted: dict[tuple, tuple[Any, float]] = {}

    def gains(groups: list[list[int]]) -> float:
        key = tuple(sorted(tuple(g) for g in groups))
        if key not in fitted:
            grouped = model
            if key:
                grouped = copy.copy(model)
                grouped.comparisons_ = make_comparisons(names, [(" & ".join(names[k] for k in g), g) for g in key])
                grouped.grouped_by_ = "data"
                refit(grouped)
            best, beyond = matches_per_record(grouped)
            fitted[key] = grouped, best - beyond if grouped.expected_matches_ <= records else -np.inf
        return fitted[key][1]

    dependence = MatchDependence(model._views, model._contributions, model._comparison_levels(), apart)
    seeds = dependence.seeds()
    if not seeds:
        model.groups_found_ = []
        return model
    # A group must be worth its joint levels' parameters to be founded; a member far with a founded group
    # joins when it helps at all: a mover's postcode, far in a fifth of the matches by its typos too, adds
    # 375 counterparts of 138,000 with 15% moved, and apart it would count a move a second time.
    chosen, tried = choose_groups(seeds, dependence.joinable, gains,
                                  max(MATCH_DEPENDENCE_MIN, MATCH_DEPENDENCE_SHARE * max(gains([]), 0.0)),
                                  MATCH_DEPENDENCE_MIN)
    found = fitted[tuple(sorted(tuple(g) for g in chosen))][0]
    found.groups_found_ = [{"members": [names[k] for k in g], "records": round(gain, 1), "kept": g in chosen}
                           for g, gain in tried]
    for g, gain in tried:
        said = ", ".join(names[k] for k in g)
        if g in chosen:
            logger.warning("treatments %s disagree together among likely matches (people who moved?): weighed as "
                           "one comparison, their joint levels, the model finds %.0f more records' counterparts, "
                           "one each ([model] groups = \"none\" to weigh them apart)", said, gain)
        else:
            logger.info("treatments %s disagree together among likely matches, but weighed as one comparison the "
                        "model finds no more records' counterparts (%+.0f): weighed apart", said, gain)
    return found
