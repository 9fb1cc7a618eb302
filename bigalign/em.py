"""Comparison levels and the estimation of a Fellegi–Sunter model's parameters from them.

A treatment's distances are cut into levels (:func:`choose_cuts`,
:func:`comparison_levels`); pairs are counted by agreement pattern
(:func:`pattern_counts`); :func:`em_fit` finds m and the share of matches
among the patterns' pairs with u held, :func:`population_prior` the prior of
the cross product. Pure functions of numpy arrays and pattern counts: the
model (:mod:`bigalign.fellegi_sunter`) drives them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MISSING", "EMFit", "add_pattern_counts", "choose_cuts", "comparison_levels", "dependence", "em_fit",
           "level_frequencies", "level_names", "levels_of", "log_ratios", "m_per_rule", "pattern_counts",
           "population_prior", "summed_patterns"]

# The level of a pair where either value is missing.
MISSING = -1
# Cut points chosen from the data: where so few random pairs (non-matches, nearly all) are this
# close that agreeing this well says something. The closest (one random pair in a thousand) parts a typo
# from a look-alike: a street one letter off, whose level would otherwise hold every street a third off.
AUTO_QUANTILES = (0.001, 0.01, 0.1)
# Near misses: candidates closer than this share of the random pairs, but not equal.
NEAR_MISS_QUANTILE = 0.01
# Near misses among the candidates needed to give them a level of their own.
MIN_NEAR_MISSES = 50
# Two treatments are dependent when random pairs are close on both this many times more often than
# if they were independent (a zip code and its city, an e-mail address and the name it is made of).
DEPENDENCE_FACTOR = 2.0
# ... and at least this many random pairs are close on both (fewer: too few to tell).
DEPENDENCE_MIN_PAIRS = 20



def choose_cuts(random_distances: np.ndarray, candidate_distances: np.ndarray | None = None) -> list[float]:
    """Cut points for one treatment from the distances of random record
    pairs: equal (0), then the distances that only 0.1%, 1% and 10% of random
    pairs reach, when they lie between equal and the farthest (a metric that
    says 0 or 1 gets one cut). With the distances of (a sample of) the
    candidate pairs, one more cut splits the near misses (closer than all
    but 1% of random pairs) at their median: among the candidates they are
    mostly matches with a typo, whose weight should not be that of a pair
    barely closer than chance."""
    known = random_distances[np.isfinite(random_distances)]
    cuts = [0.0]
    if not len(known):
        return cuts
    top = known.max()
    *quantiles, near_miss = np.quantile(known, (*AUTO_QUANTILES, NEAR_MISS_QUANTILE))  # (one sort of the pairs)
    points = [float(q) for q in quantiles]
    if candidate_distances is not None:
        near = candidate_distances[(candidate_distances > 0) & (candidate_distances < near_miss)]
        if len(near) >= MIN_NEAR_MISSES:
            points.append(float(np.median(near)))
    for cut in sorted(points):
        if cuts[-1] < cut < top:
            cuts.append(float(cut))
    return cuts


def level_names(cuts: Sequence[float]) -> list[str]:
    """What each level of a treatment is, as people read it: ``≤ 0``, ``≤ 0.3``…, ``farther``."""
    return [f"≤ {cut:.4g}" for cut in cuts] + ["farther"]


def comparison_levels(distances: np.ndarray, cuts: Sequence[float]) -> np.ndarray:
    """The level of each distance: the number of cut points below it (≤ the
    first cut: level 0), ``MISSING`` where the distance is NaN."""
    levels = np.searchsorted(np.asarray(cuts, dtype=np.float64), distances, side="left").astype(np.int8)
    levels[np.isnan(distances)] = MISSING
    return levels


def add_pattern_counts(counts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The sum of several :func:`pattern_counts` (of the partitions of the candidates)."""
    both = pd.concat(counts, ignore_index=True)
    levels = [c for c in both.columns if c != "count"]
    return both.groupby(levels, sort=True, as_index=False)["count"].sum()


def pattern_counts(levels: np.ndarray) -> pd.DataFrame:
    """The distinct agreement patterns (rows of ``levels``, one column per
    treatment) and how many pairs have each: what EM reads."""
    frame = pd.DataFrame(levels)
    counts = frame.value_counts(sort=False).rename("count").reset_index()
    return counts.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)


@dataclass
class EMFit:
    m: list[np.ndarray]
    prior: float
    iterations: int



def level_frequencies(levels: np.ndarray, n_levels: int, counts: np.ndarray | None = None) -> np.ndarray:
    """Share of each level among the known ones (rows of pairs, or of
    patterns with their ``counts``); a level never seen gets half a pair, so
    that no weight is infinite."""
    # (shifted by one: the missing level, -1, counted in the first bin, dropped)
    counts = np.bincount(levels.astype(np.intp) + 1, weights=counts, minlength=n_levels + 1)[1:].astype(np.float64)
    counts[counts == 0] = 0.5
    return counts / counts.sum()


def dependence(random_levels: np.ndarray, n_levels: Sequence[int], weights: np.ndarray | None = None
               ) -> tuple[list[list[int]], dict[tuple[int, int], np.ndarray]]:
    """The treatments that depend on each other among random pairs (see :data:`DEPENDENCE_FACTOR`; the
    pairs far on every other treatment: not matches), as groups; and for each member after the first of a
    group, its u given each earlier member's level (``[(earlier, member)]``: a levels × levels table).
    With ``weights``, each random pair counts as much (as much as it is not a match)."""
    # Each pair's treatments where it is close, as the bits of one number: the pairs of every
    # closeness pattern counted once, and each couple of treatments read from four of the counts.
    close = np.zeros(len(random_levels), dtype=np.int64)
    for k, n in enumerate(n_levels):
        close |= ((random_levels[:, k] != MISSING) & (random_levels[:, k] < n - 1)).astype(np.int64) << k
    patterns = np.bincount(close, weights=weights, minlength=1 << len(n_levels))
    group_of = list(range(len(n_levels)))

    def root(k: int) -> int:
        while group_of[k] != k:
            k = group_of[k]
        return k

    for i in range(len(n_levels)):
        for j in range(i + 1, len(n_levels)):
            # Among the random pairs far on every other treatment: the few matches a small cross
            # product holds agree on everything, and would make every treatment look dependent.
            neither, only_i, only_j, both = (float(patterns[p]) for p in (0, 1 << i, 1 << j, (1 << i) | (1 << j)))
            far = neither + only_i + only_j + both
            if both >= DEPENDENCE_MIN_PAIRS and both > DEPENDENCE_FACTOR * ((only_i + both) / far) * (
                    (only_j + both) / far) * far:
                group_of[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for k in range(len(n_levels)):
        members.setdefault(root(k), []).append(k)
    groups = [g for g in members.values() if len(g) > 1]
    conditional_u = {}
    for group in groups:
        for position, j in enumerate(group[1:], start=1):
            for k in group[:position]:
                known = (random_levels[:, k] != MISSING) & (random_levels[:, j] != MISSING)
                cells = random_levels[known, k].astype(np.int64) * n_levels[j] + random_levels[known, j]
                table = 0.5 + np.bincount(cells, weights=None if weights is None else weights[known],
                                          minlength=n_levels[k] * n_levels[j]).reshape(
                    n_levels[k], n_levels[j])  # (half a pair: no u is 0)
                conditional_u[(k, j)] = table / table.sum(axis=1, keepdims=True)
    return groups, conditional_u


def em_fit(patterns: pd.DataFrame, log_u: np.ndarray, n_levels: list[int], max_iterations: int,
           tolerance: float, expected_matches: float, pseudo_matches: Sequence[np.ndarray] | None = None) -> EMFit:
    """m and the share of matches among the patterns' pairs by EM, u held
    fixed (``log_u``: ln u of each pattern's levels), missing levels neutral.
    With ``pseudo_matches`` (per treatment, per level), m is the posterior
    mean under that Dirichlet prior: a level the matches never reach keeps
    what the prior gives it, and its weight stays finite."""
    levels = levels_of(patterns)
    counts = patterns["count"].to_numpy(np.float64)
    # A start that says "matches mostly agree": 0.9 on the closest level, the rest falling with the level;
    # and as many matches as the smaller set has records (a record has at most one counterpart), which
    # keeps EM from settling on a large class of pairs that merely share a few attributes (a postcode).
    m = [_starting_m(n) for n in n_levels]
    prior = float(np.clip(expected_matches / max(counts.sum(), 1.0), 1e-9, 0.5))
    known = [levels[:, k] != MISSING for k in range(len(n_levels))]  # (the same every iteration)
    known_levels = [levels[known[k], k] for k in range(len(n_levels))]
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        p = 1.0 / (1.0 + np.exp(-(np.log(prior / (1 - prior)) + log_ratios(levels, m, log_u))))
        expected = counts * p
        new_prior = float(np.clip(expected.sum() / counts.sum(), 1e-12, 1 - 1e-12))
        new_m = []
        for k, n in enumerate(n_levels):
            if not len(known_levels[k]):  # (a treatment left out: its m stays)
                new_m.append(m[k])
                continue
            mass = np.bincount(known_levels[k], weights=expected[known[k]], minlength=n)
            mass = np.maximum(mass + (0.0 if pseudo_matches is None else pseudo_matches[k]), 1e-12)
            new_m.append(mass / mass.sum())
        change = max([abs(new_prior - prior)] + [float(np.abs(a - b).max()) for a, b in zip(new_m, m)])
        m, prior = new_m, new_prior
        if change < tolerance:
            break
    return EMFit(m=m, prior=prior, iterations=iterations)


@functools.cache
def _starting_m(n_levels: int) -> np.ndarray:
    """EM's first m of a comparison of ``n_levels`` levels (see :func:`em_fit`; the same for every fit:
    made once, read only)."""
    falling = np.geomspace(1.0, 0.1, n_levels - 1)
    m = np.r_[0.9, 0.1 * falling / falling.sum()]
    m.flags.writeable = False
    return m


def log_ratios(levels: np.ndarray, m: list[np.ndarray], log_u: np.ndarray) -> np.ndarray:
    """Σ ln(m/u) of each row of levels (a missing level adds 0)."""
    total = -log_u.sum(axis=1)
    for k in range(levels.shape[1]):
        total += missing_reads_zero(np.log(m[k]))[levels[:, k]]
    return total


def missing_reads_zero(table: np.ndarray) -> np.ndarray:
    """A table of values by level with a 0 after its last: indexed by levels, :data:`MISSING` (-1) reads
    it (one gather a column, no mask of the known levels)."""
    return np.append(table, 0.0)


def population_prior(patterns: pd.DataFrame, m: list[np.ndarray], log_u: np.ndarray, population: float,
                      expected_matches: float, max_iterations: int) -> tuple[float, int]:
    """The probability that a pair of the population matches, m and u held:
    EM's fixed point λ = Σ count × P(match | pattern, λ) / population, the
    population's pairs that are not among the patterns' counting as
    non-matches; and the iterations it took."""
    counts = patterns["count"].to_numpy(np.float64)
    log_ratio = log_ratios(levels_of(patterns), m, log_u)
    prior = float(np.clip(expected_matches / population, 1e-300, 0.5))
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        with np.errstate(over="ignore"):  # (a pattern far below any match: p = 0)
            p = 1.0 / (1.0 + np.exp(-(np.log(prior / (1 - prior)) + log_ratio)))
        new_prior = float(np.clip((counts * p).sum() / population, 1e-300, 1 - 1e-12))
        change = abs(new_prior - prior) / prior  # (relative: a prior over a cross product is tiny)
        prior = new_prior
        if change < 1e-9:
            break
    return prior, iterations


def m_per_rule(candidate_patterns: pd.DataFrame, n_levels: list[int], left_out: Sequence[set[int]],
               groups: Sequence[Sequence[int]], start: float, log_u: Callable[[np.ndarray], np.ndarray],
               pseudo_matches: Sequence[np.ndarray], max_iterations: int, tolerance: float
               ) -> tuple[list[np.ndarray], int, float, list[tuple[np.ndarray, np.ndarray, float]]]:
    """m by EM per blocking rule (``rules`` bits of the pattern counts; ``left_out``: per rule, the
    comparisons that read a column it blocked on, and with them those dependent on them among random
    pairs, ``groups``), each m the average of the rules that estimated it, weighted by their expected
    matches (a comparison no rule could estimate: EM over all the candidates); the iterations it took;
    the matches EM over all the candidates expects; and each rule's pairs as its EM saw them (levels,
    counts shared among the rules that selected them, share of matches: what
    :class:`~bigalign.comparisons.MatchDependence` reads)."""
    rules = candidate_patterns["rules"].to_numpy(np.int64)
    patterns = candidate_patterns.drop(columns="rules")
    level_columns = [c for c in patterns.columns if c != "count"]
    pairs = float(patterns["count"].sum())
    mass = [np.zeros(n) for n in n_levels]
    iterations, views = 0, []
    selected_by = sum((rules >> rule) & 1 for rule in range(len(left_out)))  # (rules a pair is a candidate of)
    for rule, excluded in enumerate(left_out):
        # (a comparison dependent on one the rule blocked on agrees with the rule as much)
        excluded = set(excluded) | {k for group in groups if set(group) & set(excluded) for k in group}
        mine = (rules >> rule) & 1 == 1
        own = patterns[mine].copy()
        if not len(own) or len(excluded) == len(n_levels):
            continue
        for k in excluded:
            own[level_columns[k]] = MISSING
        share = float(own["count"].sum()) / pairs
        fit = em_fit(own, log_u(levels_of(own)), n_levels, max_iterations, tolerance, start * share, pseudo_matches)
        iterations += fit.iterations
        views.append((levels_of(own), own["count"].to_numpy(np.float64) / selected_by[mine], fit.prior))
        matches = fit.prior * float(own["count"].sum())
        for k in set(range(len(n_levels))) - set(excluded):
            mass[k] += matches * fit.m[k]
    every = summed_patterns(patterns)
    overall = em_fit(every, log_u(levels_of(every)), n_levels, max_iterations, tolerance, start, pseudo_matches)
    m = [total / total.sum() if total.sum() > 0 else m for total, m in zip(mass, overall.m)]
    return m, iterations + overall.iterations, overall.prior * float(every["count"].sum()), views


def levels_of(patterns: pd.DataFrame) -> np.ndarray:
    """The level columns of pattern counts, as a matrix."""
    return patterns.drop(columns="count").to_numpy()


def summed_patterns(patterns: pd.DataFrame) -> pd.DataFrame:
    """Pattern counts with equal patterns summed (after a column was dropped)."""
    return patterns.groupby([c for c in patterns.columns if c != "count"], sort=True, as_index=False)["count"].sum()
