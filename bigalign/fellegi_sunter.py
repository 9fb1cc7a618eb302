"""Learned scoring: a Fellegi–Sunter model on Nazca's treatments, fitted without labels.

Each treatment's distance is cut into *comparison levels*: level 0 the
closest (by default, equal), then one level per cut point, the farthest
last; a missing value is its own level, neutral in the model. A pair of
records has an *agreement pattern*, one level per treatment.

For each treatment and level, ``m`` is the probability of that level among
matches and ``u`` among non-matches; ``prior`` is the probability that two
records drawn at random match. ``u`` comes from record pairs drawn at random
from the cross product (nearly all non-matches); ``m`` from
expectation–maximisation over the candidate pairs with ``u`` held fixed, as
Splink does, and the prior from the candidates too, the other pairs of the
cross product counting as non-matches. EM needs only the count of each
agreement pattern, however many pairs there are: a few levels on a few
treatments make at most a few thousand patterns.

A pair's *match weight* is ``log2(prior / (1 − prior)) + Σ log2(m / u)`` over
its treatments (a missing value adds 0), its match probability
``2^w / (1 + 2^w)``; each term is the treatment's contribution, which
explains the link.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import em
from .comparisons import (
    MAX_JOINT_LEVELS,
    Comparison,
    compared,
    compared_patterns,
    group_level_names,
    grouped_as_found,
    joint_size,
    make_comparisons,
    record_matches,
)
from .em import MISSING, levels_of
from .scorers import FitData, Scorer
from .treatments import Treatment
from .weights import (
    best_threshold,
    distance_threshold,
    match_probability,
    quality_curve,
    value_hashes,
    weight_distance,
    weighted_links,
)

logger = logging.getLogger("bigalign")

__all__ = ["FellegiSunter"]

# Times u and the dependence among non-matches are counted again on the random pairs, each weighted by
# how little it looks like a match (see FellegiSunter.fit_levels).
U_CORRECTIONS = 2
# The weight of m's prior, in matches (see FellegiSunter._pseudo_matches).
PSEUDO_MATCHES = 1.0
# Points of the expected-quality curve a summary keeps (a curve to draw: a few hundred are plenty).
SUMMARY_CURVE_POINTS = 400


class FellegiSunter(Scorer):
    """A Fellegi–Sunter model of the treatments' comparison levels: a :class:`~bigalign.scorers.Scorer`
    that ``learns``.

    Parameters
    ----------
    cuts : mapping or sequence, optional
        Cut points per treatment (by position in the treatments, or by the
        attribute's name), in the metric's own units (normalized when the
        treatment is). A treatment not named gets cut points chosen from
        the distances of random pairs (:func:`choose_cuts`).
    max_iterations, tolerance : int, float
        EM stops after ``max_iterations`` or when no parameter moves by
        more than ``tolerance``.
    random_pairs : int
        Record pairs drawn from the cross product to estimate ``u``.
    seed : int
        Of the random pairs: the same seed, the same model.
    labels : DataFrame, optional
        Pairs known to match (columns ``align_id`` and ``target_id``): m is
        then their levels' frequencies among the candidates, not EM's (the
        prior is still fitted, by EM with m held).
    term_frequencies : sequence, optional
        Treatments (by position or attribute name) whose equal level is
        weighted by how common the value is: two records that share a
        common surname agree by chance more often than two that share a
        rare one. Their ``u`` for that pair is the value's frequency among
        the records of both sets, not the level's average.
    groups : mapping or "auto"
        Per group name, treatments (by position or name) weighed as one
        comparison, their joint levels (:mod:`bigalign.comparisons`).
        ``"auto"`` (the default): those the likely matches show dependent
        after a first fit, kept when the model then finds more records'
        counterparts, one each (:func:`~bigalign.comparisons.grouped_as_found`);
        ``{}``: none.

    Attributes (after fitting)
    --------------------------
    cuts_ : list of list of float
        Per treatment.
    comparisons_ : list of Comparison
        The terms of the match weight: each treatment, or a group in place
        of its members (``grouped_by_``: ``"job"``, ``"data"`` or None).
    m_, u_ : list of numpy.ndarray
        Per comparison, the probability of each level among matches and non-matches.
    prior_ : float
        The probability that two records drawn at random (from the cross
        product) match.
    expected_matches_ : float
        Matches among the candidates, as the model expects them (Σ of their
        match probabilities).
    iterations_ : int
    known_m_ : list of numpy.ndarray or None
        When pairs known to match (``labels``, or a run's truth) are among
        the candidates: their levels' frequencies, m as labels give it —
        the fitted m's check (or, with ``labels``, m itself).
    known_pairs_ : int
        How many known pairs were among the candidates.
    term_frequencies_ : dict
        Per treatment with term frequencies, the sorted hashes of its
        values and each one's frequency (see :meth:`count_terms`).
    groups_ : list of list of int
        Comparisons that depend on each other among random pairs; each
        member after the first is scored with its u given an earlier
        member's level (``conditional_u_``, see :meth:`log_u`).
    """

    learns = True
    grouped_by_: str | None
    groups_found_: list[dict[str, Any]] = []  # (groups tried, kept or not: see comparisons.grouped_as_found)
    # per blocking rule (or for all the candidates): its pattern levels, counts and share of matches
    _views: list[tuple[np.ndarray, np.ndarray, float]]

    def __init__(self, cuts: Mapping[Any, Sequence[float]] | Sequence[Sequence[float] | None] | None = None, *,
                 max_iterations: int = 200, tolerance: float = 1e-6, random_pairs: int = 200_000, seed: int = 0,
                 labels: pd.DataFrame | None = None, term_frequencies: Sequence[int | str] | None = None,
                 groups: Mapping[str, Sequence[int | str]] | str = "auto"):
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise ValueError(f"FellegiSunter: 'max_iterations' must be a positive integer, got {max_iterations!r}")
        if not 0 < tolerance < 1:
            raise ValueError(f"FellegiSunter: 'tolerance' must be in (0, 1), got {tolerance!r}")
        if not isinstance(random_pairs, int) or random_pairs < 1:
            raise ValueError(f"FellegiSunter: 'random_pairs' must be a positive integer, got {random_pairs!r}")
        if labels is not None:
            if not isinstance(labels, pd.DataFrame) or not {"align_id", "target_id"} <= set(labels.columns):
                raise ValueError("FellegiSunter: 'labels' must be a DataFrame with columns align_id and target_id")
            if not len(labels):
                raise ValueError("FellegiSunter: 'labels' holds no pair")
        if not (groups == "auto" or isinstance(groups, Mapping) and all(
                isinstance(name, str) and isinstance(members, Sequence) and not isinstance(members, str)
                for name, members in groups.items())):
            raise ValueError(f"FellegiSunter: 'groups' must be 'auto' or a mapping of a group's name "
                             f"to its treatments, got {groups!r}")
        self.groups: str | dict[str, list[int | str]] = groups if isinstance(groups, str) else {
            name: list(members) for name, members in groups.items()}
        self.cuts, self.max_iterations, self.tolerance = cuts, max_iterations, tolerance
        self.random_pairs, self.seed, self.labels = random_pairs, seed, labels
        self.term_frequencies = list(term_frequencies or [])
        self.term_frequencies_: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.weight_counts_: tuple[np.ndarray, np.ndarray] | None = None

    # -- levels -------------------------------------------------------------
    @staticmethod
    def _positions(treatments: Sequence[Treatment]) -> dict[Any, int]:
        """Treatments by attribute name and by position."""
        by_name: dict[Any, int] = {str(t): i for i, t in enumerate(treatments)}
        by_name.update({i: i for i in range(len(treatments))})
        return by_name

    def term_treatments(self, treatments: Sequence[Treatment]) -> list[int]:
        """The positions of the treatments with term frequencies."""
        by_name = self._positions(treatments)
        unknown = [k for k in self.term_frequencies if k not in by_name]
        if unknown:
            raise ValueError(f"FellegiSunter: term frequencies for {unknown[0]!r}, which is no treatment; "
                             f"treatments are {[str(t) for t in treatments]}")
        return sorted({by_name[k] for k in self.term_frequencies})

    def term_hashes(self, encoded: Sequence[pd.DataFrame]) -> dict[int, np.ndarray]:
        """Per treatment with term frequencies, the hash of each record's
        encoded value (a treatment's encoded columns: ``encoded[k]``)."""
        return {k: value_hashes(encoded[k]) for k in self.term_frequencies_}

    def count_terms(self, treatments: Sequence[Treatment], counts: Mapping[int, pd.Series], records: int) -> None:
        """``term_frequencies_`` from, per treatment with term frequencies,
        the count of each value hash among ``records`` records of both sets."""
        self.term_frequencies_ = {}
        for k in self.term_treatments(treatments):
            ordered = counts[k].sort_index()  # (searched by hash)
            frequencies = ordered.to_numpy(np.float64) / max(records, 1)
            self.term_frequencies_[k] = (ordered.index.to_numpy(np.uint64), frequencies)

    def _given_comparisons(self, treatments: Sequence[Treatment]) -> list[Comparison]:
        """The treatments as comparisons, in the groups given (none with ``"auto"``)."""
        by_name = self._positions(treatments)
        groups = []
        for name, members in ({} if isinstance(self.groups, str) else self.groups).items():
            unknown = [k for k in members if k not in by_name]
            if unknown:
                raise ValueError(f"FellegiSunter: group {name!r} names {unknown[0]!r}, which is no treatment; "
                                 f"treatments are {[str(t) for t in treatments]}")
            groups.append((name, sorted({by_name[k] for k in members})))
        try:
            return make_comparisons([str(t) for t in treatments], groups, self.term_treatments(treatments))
        except ValueError as err:
            raise ValueError(f"FellegiSunter: {err}") from None

    def _given_cuts(self, treatments: Sequence[Treatment]) -> list[list[float] | None]:
        if self.cuts is None:
            return [None] * len(treatments)
        if isinstance(self.cuts, Mapping):
            by_name = self._positions(treatments)
            unknown = [k for k in self.cuts if k not in by_name]
            if unknown:
                raise ValueError(f"FellegiSunter: cuts for {unknown[0]!r}, which is no treatment; treatments are "
                                 f"{[str(t) for t in treatments]}")
            given: list[list[float] | None] = [None] * len(treatments)
            for key, cuts in self.cuts.items():
                given[by_name[key]] = sorted(float(c) for c in cuts)
            return given
        if len(self.cuts) != len(treatments):
            raise ValueError(f"FellegiSunter: {len(self.cuts)} lists of cuts for {len(treatments)} treatments")
        return [None if c is None else sorted(float(x) for x in c) for c in self.cuts]

    def levels(self, distances: np.ndarray) -> np.ndarray:
        """``(pairs, treatments)`` comparison levels of distances, with the fitted cut points."""
        return np.column_stack([em.comparison_levels(distances[:, k], cuts) for k, cuts in enumerate(self.cuts_)])

    def compared(self, levels: np.ndarray) -> np.ndarray:
        """``(pairs, comparisons)`` levels of ``(pairs, treatments)`` levels (a group's: its joint level)."""
        return compared(levels, self.comparisons_, [len(c) + 1 for c in self.cuts_])

    def _comparison_levels(self) -> list[int]:
        """How many levels each comparison has."""
        sizes = [joint_size(c.members, [len(cuts) + 1 for cuts in self.cuts_]) for c in self.comparisons_]
        for comparison, size in zip(self.comparisons_, sizes):
            if size > MAX_JOINT_LEVELS:
                raise ValueError(f"FellegiSunter: group {comparison.name!r} has {size:,} joint levels, more than "
                                 f"{MAX_JOINT_LEVELS:,}: fewer members, or fewer levels (cut points)")
        return [size if c.grouped else size - 1 for c, size in zip(self.comparisons_, sizes)]

    # -- fitting ------------------------------------------------------------
    def fitted(self, data: FitData | None, treatments: Sequence[Treatment],
               threshold: float | str) -> "FellegiSunter":
        """A copy fitted on a run's ``data``: cut points from random pairs and a sample of the candidates,
        u from the random pairs, m and the prior from the candidates' pattern counts (EM per blocking rule),
        term frequencies from the records; linking at ``threshold`` (a match probability, or ``"auto"``)."""
        if data is None:
            raise ValueError("FellegiSunter: fitting needs the run's records and candidates")
        model = copy.copy(self)
        positions = model.term_treatments(treatments)
        model.comparisons_ = model._given_comparisons(treatments)
        random_distances = data.random_distances()
        model.choose_cuts(treatments, random_distances, data.candidate_sample(positions))
        counts = data.pattern_counts(model.levels, data.known_hashes(model.labels), data.left_out is not None)
        n_a, n_b = data.records

        def fit(fitting: FellegiSunter) -> None:
            fitting.fit_levels(model.levels(random_distances), counts, records=min(n_a, n_b),
                               left_out=data.left_out, population=data.population)

        fit(model)

        def matches_per_record(fitting: FellegiSunter) -> tuple[float, float]:
            weights, scale, records = data.candidate_weights(
                lambda distances, _: fitting.match_weights(fitting.levels(distances)))
            best, beyond = record_matches(match_probability(weights), records)
            return best * float(scale[0]), beyond * float(scale[0])

        # ("auto": the groups the likely matches show; not in a deduplication, where a record has as many
        # counterparts as its entity has other records, and the best candidate's matches do not say more)
        if model.groups == "auto" and not data.dedupe and model._views:
            model = grouped_as_found(model, [str(t) for t in treatments], positions, fit, min(n_a, n_b),
                                     matches_per_record)
        if positions:  # how common each value is, then what the model expects of its links with them
            term_counts, records = data.term_counts(positions)
            model.count_terms(treatments, term_counts, records)
            weights, scale, _ = data.candidate_weights(
                lambda distances, terms: model.match_weights(model.levels(distances), terms))
            model.expect_weights(weights, scale)
        model.threshold_ = model.probability_threshold(threshold)
        model.distance_threshold_ = distance_threshold(model.threshold_)
        return model

    def check_treatments(self, treatments: Sequence[Treatment]) -> None:
        self.term_treatments(treatments)
        self._given_cuts(treatments)
        self._given_comparisons(treatments)

    def check_threshold(self, threshold: Any) -> float | str:
        if threshold == "auto":
            return "auto"
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
                or not 0 < threshold < 1:
            raise ValueError(f"with a learned model, a match probability in (0, 1) or 'auto', got {threshold!r}")
        return float(threshold)

    def random_rows(self, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the ``random_pairs`` pairs drawn (with ``seed``) from sets of ``n_a`` and ``n_b`` records."""
        rng = np.random.default_rng(self.seed)
        return rng.integers(0, n_a, self.random_pairs), rng.integers(0, n_b, self.random_pairs)

    def choose_cuts(self, treatments: Sequence[Treatment], random_distances: np.ndarray,
                    candidate_distances: np.ndarray | None = None) -> None:
        """``cuts_``: the given ones, or :func:`choose_cuts` of the distances
        of random pairs (and of a sample of the candidates, when given)."""
        given = self._given_cuts(treatments)
        self.cuts_ = [g if g is not None else em.choose_cuts(
            random_distances[:, k], None if candidate_distances is None else candidate_distances[:, k])
            for k, g in enumerate(given)]

    def fit_levels(self, random_levels: np.ndarray, candidate_patterns: pd.DataFrame,
                   records: int | None = None, left_out: Sequence[set[int]] | None = None,
                   population: float | None = None) -> "FellegiSunter":
        """``u`` from the levels of random pairs, ``m`` by EM over the
        candidates' pattern counts (see :func:`pattern_counts`), then the
        prior; ``records``, the smaller set's size, starts EM at that many
        matches.

        The prior is the probability that two records drawn at random match
        — the population ``u`` was drawn from, of ``population`` pairs (the
        cross product; by default the candidates are all of it, and the
        random pairs are taken as non-matches): it is
        fitted with m and u held, the pairs that are not candidates counting
        as non-matches. (The share of matches among the candidates would
        count the agreement on the blocked columns twice: once in being a
        candidate, once in u, and pairs that agree on nothing but a block key
        would be linked.)

        Pattern counts with a column ``"known"`` (1: a pair known to match)
        give ``known_m_``; with ``labels``, m is ``known_m_``.

        With ``left_out`` (per blocking rule, the treatments that read a
        column the rule blocked on), the patterns carry the rules that
        selected each pair in a column ``"rules"`` (bit ``r``: rule ``r``),
        and EM runs once per rule, over all the pairs it selected, without
        the treatments it left out — the pairs a rule selected agree on its
        columns whether they match or not, which would fool EM — as Splink
        trains per blocking rule; each m is the average of the rules that
        estimated it (weighted by their expected matches).
        """
        if getattr(self, "comparisons_", None) is None:  # (fitted apart from a run: each treatment on its own)
            self.comparisons_ = make_comparisons([str(k) for k in range(len(self.cuts_))], [])
        if not hasattr(self, "grouped_by_"):
            self.grouped_by_ = "job" if any(c.grouped for c in self.comparisons_) else None
        random_levels = self.compared(random_levels)
        candidate_patterns = compared_patterns(candidate_patterns, self.comparisons_, [len(c) + 1 for c in self.cuts_])
        if left_out is not None:  # (a group is left out with any of its members)
            left_out = [{c for c, comparison in enumerate(self.comparisons_) if set(comparison.members) & out}
                        for out in left_out]
        n_levels = self._comparison_levels()
        pairs = float(candidate_patterns["count"].sum())
        start = min(records or pairs / 10, pairs / 2)
        self.known_m_, self.known_pairs_ = None, 0
        if "known" in candidate_patterns.columns:
            known = candidate_patterns[candidate_patterns["known"] == 1]
            self.known_pairs_ = int(known["count"].sum())
            if self.known_pairs_:
                counts = known["count"].to_numpy(np.float64)
                self.known_m_ = [em.level_frequencies(known[k].to_numpy(np.int64), n, counts)
                                 for k, n in enumerate(n_levels)]
            candidate_patterns = em.summed_patterns(candidate_patterns.drop(columns="known"))
        patterns = em.summed_patterns(candidate_patterns.drop(columns="rules", errors="ignore"))
        if self.labels is not None and self.known_m_ is None:
            raise ValueError("FellegiSunter: none of the labelled pairs is a candidate pair")
        iterations, not_matches = 0, None
        for correction in range(U_CORRECTIONS + 1):
            self.u_ = [em.level_frequencies(random_levels[:, k], n, not_matches) for k, n in enumerate(n_levels)]
            self.groups_, self.conditional_u_ = em.dependence(random_levels, n_levels, not_matches)
            if self.labels is not None:
                assert self.known_m_ is not None
                self.m_, matches = self.known_m_, float(self.known_pairs_)
                self._views = []  # (m from labels: nothing to group from)
            elif left_out is None:
                fit = em.em_fit(patterns, self.log_u(levels_of(patterns)), n_levels, self.max_iterations,
                                self.tolerance, start, self._pseudo_matches())
                self.m_, matches = fit.m, fit.prior * pairs
                self._views = [(levels_of(patterns), patterns["count"].to_numpy(np.float64), fit.prior)]
                iterations += fit.iterations
            else:
                self.m_, more, matches, self._views = em.m_per_rule(
                    candidate_patterns, n_levels, left_out, self.groups_, start, self.log_u, self._pseudo_matches(),
                    self.max_iterations, self.tolerance)
                iterations += more
            # The random pairs of a small cross product hold matches (3,000 × 4,500 records with 3,000
            # matches: one random pair in 5,000, a third of those close on a title): u counted on them
            # takes matches for chance agreement, and their agreeing on everything for dependence, and
            # the evidence of a match falls below the prior. The matches the candidates hold, over the
            # population, are the share to expect among random pairs: each counts in u as a non-match
            # only as much as it is not one — judged with the treatments independent, or the matches'
            # agreeing on all of them, taken for dependence, would hide them.
            share = min(0.5, matches / max(population or pairs, 1.0))
            if correction == U_CORRECTIONS or population is None or share * len(random_levels) < 1:
                break
            random_log_u = self.log_u(random_levels, dependent=False)
            with np.errstate(over="ignore"):
                not_matches = 1.0 - 1.0 / (1.0 + np.exp(-(np.log(share / (1 - share))
                                                          + em.log_ratios(random_levels, self.m_, random_log_u))))
        self.patterns_: pd.DataFrame = patterns
        self.prior_, more = em.population_prior(patterns, self.m_, self.log_u(levels_of(patterns)),
                                                 population or pairs, start, self.max_iterations)
        self.iterations_ = iterations + more
        self.expected_matches_ = float((patterns["count"] * self.probabilities(patterns)).sum())
        return self

    # -- scores -------------------------------------------------------------
    def _pseudo_matches(self) -> list[np.ndarray]:
        """m's prior: :data:`PSEUDO_MATCHES` matches spread over the levels as non-matches spread (u), which
        says nothing either way — so a level no match reaches weighs about −log2(matches), not −40 bits."""
        return [PSEUDO_MATCHES * u for u in self.u_]

    def log_u(self, levels: np.ndarray, dependent: bool = True) -> np.ndarray:
        """``(pairs, comparisons)`` ln u of each comparison's level (0 where
        missing): a member of a dependent group after its first takes its u
        given the level of the nearest earlier member whose value is known
        (unless not ``dependent``)."""
        out = np.zeros(levels.shape, dtype=np.float64)
        for k, u in enumerate(self.u_):
            out[:, k] = em.missing_reads_zero(np.log(u))[levels[:, k]]
        for group in self.groups_ if dependent else []:
            for position, j in enumerate(group[1:], start=1):
                given = np.full(len(levels), -1)
                for k in group[:position]:  # the nearest earlier known member wins
                    given[levels[:, k] != MISSING] = k
                for k in group[:position]:
                    rows = (given == k) & (levels[:, j] != MISSING)
                    out[rows, j] = np.log(self.conditional_u_[(k, j)][levels[rows, k], levels[rows, j]])
        return out

    def contributions(self, levels: np.ndarray, terms: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
        """``(pairs, comparisons)`` weight of each comparison's level (of the ``(pairs, treatments)``
        ``levels``), log2(m/u) (u given a dependent comparison's level, see :meth:`log_u`); 0 where
        missing. With ``terms`` (per treatment with term frequencies, each
        pair's value hash, as :meth:`term_hashes` gives them), an equal
        level's u is the value's frequency."""
        return self._contributions(self.compared(levels), terms)

    def _contributions(self, levels: np.ndarray, terms: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
        """:meth:`contributions` of comparisons' levels."""
        out = -self.log_u(levels) / np.log(2)
        for k, (hashes, frequencies) in self.term_frequencies_.items():
            if terms is None or k not in terms:
                continue
            c = next(c for c, comparison in enumerate(self.comparisons_) if k in comparison.members)  # (k's own)
            equal = np.flatnonzero(levels[:, c] == 0)
            at = np.minimum(np.searchsorted(hashes, terms[k][equal]), max(len(hashes) - 1, 0))
            found = hashes[at] == terms[k][equal] if len(hashes) else np.zeros(len(equal), dtype=bool)
            out[equal[found], c] = -np.log2(frequencies[at[found]])
        for k, m in enumerate(self.m_):
            known = levels[:, k] != MISSING
            out[known, k] += np.log2(m[levels[known, k]])
        return out

    def explanation_columns(self, treatments: Sequence[Treatment], distances: np.ndarray,
                            terms: Mapping[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The columns that explain pairs' match weights: ``prior_weight``, then per treatment its
        ``": distance"`` and ``": level"``, and per comparison its ``": weight"`` (log2(m/u); a group's
        after its members, with its own ``": level"``, the members' joint level); the weights and the
        prior's add up to the match weight (``terms``: as :meth:`contributions` reads them)."""
        levels = self.levels(distances)
        joint = self.compared(levels)
        contributions = self._contributions(joint, terms)
        columns = {"prior_weight": np.full(len(distances), self.prior_weight_)}
        for c, comparison in enumerate(self.comparisons_):
            for k in comparison.members:
                columns[f"{treatments[k]}: distance"] = distances[:, k]
                columns[f"{treatments[k]}: level"] = levels[:, k]
            if comparison.grouped:
                columns[f"{comparison.name}: level"] = joint[:, c]
            columns[f"{comparison.name}: weight"] = contributions[:, c]
        return columns

    def pair_scores(self, treatments: Sequence[Treatment], distances: np.ndarray,
                    terms: Mapping[int, np.ndarray]) -> np.ndarray:
        return weight_distance(self.match_weights(self.levels(distances), terms))

    def report_weights(self, distances: np.ndarray, terms: Mapping[int, np.ndarray]
                       ) -> tuple[float, np.ndarray, list[str]]:
        return self.prior_weight_, self.contributions(self.levels(distances), terms), \
            [c.name for c in self.comparisons_]

    def as_written(self, links: pd.DataFrame) -> pd.DataFrame:
        return weighted_links(links)

    def summary(self, treatments: Sequence[Treatment], auto: bool) -> dict[str, Any]:
        """Per comparison (``"treatments"``: each treatment, or a group with its ``members``), its levels'
        cut points, m, u, weight and candidate pairs (and m among the candidates known to match, when some
        are), and the precision and recall the model expects at each threshold."""
        curve = self.expected_quality()
        if len(curve) > SUMMARY_CURVE_POINTS:
            curve = curve.iloc[np.unique(np.linspace(0, len(curve) - 1, SUMMARY_CURVE_POINTS).astype(int))]
        known_m = list(self.known_m_) if self.known_m_ else [None] * len(self.comparisons_)
        levels, counts = levels_of(self.patterns_), self.patterns_["count"].to_numpy(np.float64)
        comparisons = []
        for i, (comparison, m, u, k) in enumerate(zip(self.comparisons_, self.m_, self.u_, known_m)):
            members = [str(treatments[j]) for j in comparison.members]
            cuts = [] if comparison.grouped else self.cuts_[comparison.members[0]]
            term = comparison.members[0] if not comparison.grouped else None
            comparisons.append({
                "attribute": comparison.name, "members": members, "cuts": cuts,
                "levels": group_level_names(members, [em.level_names(self.cuts_[j]) for j in comparison.members])
                if comparison.grouped else em.level_names(cuts), "m": m.tolist(),
                "u": u.tolist(), "weights": np.log2(m / u).tolist(), "known_m": None if k is None else k.tolist(),
                "pairs": np.bincount(levels[:, i][levels[:, i] != MISSING], counts[levels[:, i] != MISSING],
                                     minlength=len(m)).tolist(),
                "term_frequencies": term in self.term_frequencies_,
                "distinct_values": len(self.term_frequencies_[term][0]) if term in self.term_frequencies_ else None,
                "depends_on": next((g[:g.index(i)] for g in self.groups_ if i in g[1:]), [])})
        return {"prior": self.prior_, "prior_weight": self.prior_weight_, "iterations": self.iterations_,
                "expected_matches": self.expected_matches_, "threshold": self.threshold_, "auto_threshold": auto,
                "m_from": "labels" if self.labels is not None else "EM", "known_pairs": self.known_pairs_,
                "grouped_by": self.grouped_by_, "groups_found": self.groups_found_, "treatments": comparisons,
                "expected": {k: curve[k].tolist() for k in curve.columns}}

    @property
    def prior_weight_(self) -> float:
        """The prior's log-odds: every pair's weight starts there."""
        return float(np.log2(self.prior_ / (1 - self.prior_)))

    def match_weights(self, levels: np.ndarray, terms: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
        """Log2 Bayes factor of each pair (its ``(pairs, treatments)`` levels), prior included (``terms``:
        see :meth:`contributions`)."""
        return self.prior_weight_ + self.contributions(levels, terms).sum(axis=1)

    def probabilities(self, patterns: pd.DataFrame) -> np.ndarray:
        """The match probability of each agreement pattern (rows of the comparisons' pattern counts)."""
        return match_probability(self._pattern_weights(patterns))

    def _pattern_weights(self, patterns: pd.DataFrame) -> np.ndarray:
        """:meth:`match_weights` of the comparisons' pattern counts (no term frequencies)."""
        return self.prior_weight_ + self._contributions(levels_of(patterns)).sum(axis=1)

    def probability_threshold(self, threshold: float | str) -> float:
        """The match probability links need: ``threshold``, or with ``"auto"`` the best F1 the model expects
        (:func:`~bigalign.weights.best_threshold`, logged with what it expects)."""
        if threshold != "auto":
            return float(threshold)
        probability, expected = best_threshold(self.expected_quality())
        logger.info("threshold %.4g: the match probability with the best F1 the model expects (precision %.4f, "
                    "recall %.4f, F1 %.4f)", probability, expected["precision"], expected["recall"], expected["f1"])
        return probability

    def expect_weights(self, weights: np.ndarray, counts: np.ndarray) -> None:
        """The match weights of the candidates (term frequencies applied),
        each standing for ``counts`` pairs (a sample's weights count
        1 / its share): what :meth:`expected_quality` reads with term
        frequencies. Weights are rounded to 0.001 bit and counted once each."""
        table = pd.DataFrame({"w": np.round(np.asarray(weights, dtype=np.float64), 3),
                              "n": np.broadcast_to(np.asarray(counts, dtype=np.float64), np.shape(weights))})
        summed = table.groupby("w", sort=True)["n"].sum()
        self.weight_counts_ = (summed.index.to_numpy(np.float64), summed.to_numpy(np.float64))

    def expected_quality(self) -> pd.DataFrame:
        """What the model expects of links at each threshold, without any truth (:func:`quality_curve` of
        its candidates' weights). With term frequencies, the candidates' weights are those
        :meth:`expect_weights` was given (a pattern's weight then depends on the values)."""
        if self.term_frequencies_:
            if self.weight_counts_ is None:
                raise ValueError("FellegiSunter: with term frequencies, expect_weights() gives the candidates' "
                                 "weights first")
            return quality_curve(*self.weight_counts_)
        return quality_curve(self._pattern_weights(self.patterns_), self.patterns_["count"].to_numpy(np.float64))
