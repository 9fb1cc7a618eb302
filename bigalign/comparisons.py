"""What a learned model weighs: one treatment's comparison levels, or a group of treatments as one comparison.

Under the Fellegi–Sunter model's independence, each disagreeing treatment is separate evidence
against a match. Some fields move together: a person who moved disagrees on street number,
street, suburb and postcode at once, and four penalties sink a true match below a stranger who
lives at the address. A *group* makes those treatments one comparison whose levels are their
joint levels — each member at one of its own levels, or missing — each joint level with its own m
and u: moving costs what moving costs among matches, once, and each member keeps the gradation of
its levels. A group is missing only when every member is.

Groups are the job's (``group = "home"`` on treatments) or found in the data: treatments that
disagree together among likely matches far more often than independence says
(:func:`dependent_among_matches`, read from the candidates' pattern counts after a first fit) —
said by default, applied with ``[model] groups = "auto"``.
Pure functions of level matrices and pattern counts; the model (:mod:`bigalign.fellegi_sunter`)
drives them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .em import MISSING

__all__ = ["MAX_GROUP", "MAX_JOINT_LEVELS", "Comparison", "compared", "compared_patterns", "dependent_among_matches",
           "group_level_names", "joint_levels", "joint_size", "make_comparisons", "shown_levels"]

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


def dependent_among_matches(views: Sequence[tuple[np.ndarray, np.ndarray, float]],
                            weigh: Callable[[np.ndarray], np.ndarray], n_levels: Sequence[int],
                            apart: Sequence[int] = ()) -> list[list[int]]:
    """Treatments that disagree together among likely matches. ``views``: per blocking rule (or for all
    the candidates), its pairs' pattern levels (one column a treatment; missing where the rule blocked on
    it: its pairs agree there by selection, matches or not), their counts and its share of matches, as
    its EM saw them; ``weigh``: a fitted model's log2 m/u of each level of such levels. Treatments
    ``apart`` are never grouped.

    For two treatments, a pattern's likely matches are its pairs times its match probability judged on
    the *other* treatments (the two tested would call the matches that disagree on both non-matches: a
    fit under independence hides the very dependence looked for). They are linked when those matches
    far on both (the farthest level) are more than :data:`MATCH_DEPENDENCE_FACTOR` times what
    independence gives, and at least :data:`MATCH_DEPENDENCE_MIN` and :data:`MATCH_DEPENDENCE_SHARE`
    of them. The strongest link is merged first, and the merged group is then judged as one unit
    (its members all far: the unit far) — with a treatment linked to one of its members on their own —,
    until no link is left, a group of at most :data:`MAX_GROUP`,
    :data:`MIN_COMPARISONS` comparisons at least.
    """
    if not views:
        return []
    levels = np.concatenate([view[0] for view in views])
    counts = np.concatenate([view[1] for view in views])
    contributions = weigh(levels)
    levels[:, list(apart)] = MISSING
    n = levels.shape[1]
    far = levels == (np.asarray(n_levels) - 1)
    known = levels != MISSING
    total_weight = contributions.sum(axis=1) + np.concatenate(
        [np.full(len(view[0]), np.log2(view[2] / (1 - view[2]))) for view in views])

    def strength(a: list[int], b: list[int]) -> float | None:
        """How much more often than independence says units ``a`` and ``b`` (treatments) are far
        together among the matches the other treatments find; None below the thresholds."""
        with np.errstate(over="ignore"):
            likely = counts / (1.0 + np.exp2(-(total_weight - contributions[:, a + b].sum(axis=1))))
        # a unit is far when its known members all are (and one is known)
        far_a, far_b = ((known[:, u].any(axis=1) & (far[:, u] | ~known[:, u]).all(axis=1)) for u in (a, b))
        both_known = known[:, a].any(axis=1) & known[:, b].any(axis=1)
        total = float(likely[both_known].sum())
        if total <= 0:
            return None
        p_a, p_b = (float(likely[both_known & f].sum()) / total for f in (far_a, far_b))
        both = float(likely[both_known & far_a & far_b].sum())
        if both < max(MATCH_DEPENDENCE_MIN, MATCH_DEPENDENCE_SHARE * total) \
                or both <= MATCH_DEPENDENCE_FACTOR * p_a * p_b * total:
            return None
        return both / max(p_a * p_b * total, 1e-300)

    # Agglomerative: the strongest link first, then the merged unit judged as one (left out together:
    # a mover's other address fields would otherwise vote against the match each time).
    # A merge also needs two of the units' treatments linked on their own: judged without a whole unit,
    # the matches found grow with non-matches (relatives, neighbours) whose fields all differ.
    linked = {(i, j) for i in range(n) for j in range(i + 1, n) if strength([i], [j]) is not None}
    units = [[k] for k in range(n)]
    while len(units) > MIN_COMPARISONS:
        best: tuple[float, int, int] | None = None
        for i in range(len(units)):
            for j in range(i + 1, len(units)):
                if len(units[i]) + len(units[j]) <= MAX_GROUP \
                        and joint_size(units[i] + units[j], n_levels) <= MAX_JOINT_LEVELS and any(
                        (min(a, b), max(a, b)) in linked for a in units[i] for b in units[j]):
                    found = strength(units[i], units[j])
                    if found is not None and (best is None or found > best[0]):
                        best = (found, i, j)
        if best is None:
            break
        _, i, j = best
        units[i] = sorted(units[i] + units.pop(j))
    return sorted(u for u in units if len(u) > 1)
