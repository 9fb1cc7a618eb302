"""Scoring: the global distance of candidate pairs (pair by pair, or a large block as one dense matrix)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..blocking.base import Blocking
from ..em import pattern_counts
from ..evaluate import isin_sorted
from ..matching import best_match_per_item
from ..scorers import Scorer, WeightedDistance
from ..treatments import Treatment, global_alignment_matrix, treatment_pair_distances
from ..values.sets import text_as_sets
from ..weights import term_counts, value_hashes
from .candidates import first_slot_pairs
from .encode import in_share
from .schema import (
    ALIGN_SIDE,
    SET,
    TARGET_SIDE,
    ScoredLinks,
    combined_hashes,
    sides,
    strip_prefix,
    treatment_values,
)
from .stats import BlockStats, record_for_report

__all__ = ["candidate_patterns", "candidate_sample", "pair_distances", "partition_term_counts", "score_dense_blocks",
           "score_pairs", "score_records"]


def _distinct(frame: pd.DataFrame, side: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct records of one side of joined pairs (``{side}:`` columns),
    and each pair's record: values are tokenized, parsed... once per record."""
    codes, uniques = pd.factorize(frame[f"rid_{side}"].to_numpy())
    first = np.full(len(uniques), len(frame), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(frame)))
    prefix = f"{side}:"
    return text_as_sets(strip_prefix(frame, prefix, first)), codes


def _scored(stats: BlockStats, treatments: Sequence[Treatment], records_a: pd.DataFrame, records_b: pd.DataFrame,
            encoded_a: list, encoded_b: list, ra: np.ndarray, rb: np.ndarray, distance: np.ndarray,
            threshold: float, uniq: bool, truth_hashes: np.ndarray | None, scorer: Scorer, dedupe: bool = False,
            explanation: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Pairs ``(ra, rb)`` with their distances (and ``explanation``'s columns),
    counted and sampled for the report: all of them with ``uniq`` (reduced
    later), else those under the threshold."""
    # Series, not arrays: ids keep their (Arrow) dtype, which later sorts fast.
    align_ids, target_ids = records_a["id"].reset_index(drop=True), records_b["id"].reset_index(drop=True)
    true = None
    if truth_hashes is not None:
        true = isin_sorted(combined_hashes(records_a["rid"].to_numpy()[ra], records_b["rid"].to_numpy()[rb],
                                            dedupe), truth_hashes)
    under = distance <= threshold
    stats.links_under_threshold += int(under.sum())
    record_for_report(stats, treatments, encoded_a, encoded_b, ra, rb, distance, threshold,
                       align_ids, target_ids, true, scorer)
    keep = slice(None) if uniq else under
    sets = {} if SET not in records_a.columns else {"align_set": records_a[SET].to_numpy()[ra[keep]],
                                                     "target_set": records_b[SET].to_numpy()[rb[keep]]}
    return pd.DataFrame({"align_id": align_ids.take(ra[keep]).reset_index(drop=True),
                         "target_id": target_ids.take(rb[keep]).reset_index(drop=True),
                         "distance": distance[keep],
                         **{name: values[keep] for name, values in (explanation or {}).items()}, **sets})


def _records_of(joined: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """The distinct records of each side of joined pairs, and each pair's rows in them."""
    return (*_distinct(joined, ALIGN_SIDE), *_distinct(joined, TARGET_SIDE))


def _oriented(joined: pd.DataFrame, dedupe: bool) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """:func:`_records_of` joined pairs, as scored (see :func:`_orient`)."""
    return _orient(*_records_of(joined), dedupe)


def _orient(records_a: pd.DataFrame, ra: np.ndarray, records_b: pd.DataFrame, rb: np.ndarray,
            dedupe: bool) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Pairs ``(ra[k], rb[k])`` of records of two sides, as scored: in a deduplication, both sides' records
    in one frame, each pair (smaller id, larger id)."""
    if dedupe:  # a pair is reported as (smaller id, larger id); the sets are one
        records = pd.concat([records_a, records_b], ignore_index=True)
        # each record once (most are on both sides): its values are prepared once by each metric
        codes, uniques = pd.factorize(records["rid"].to_numpy())
        first = np.full(len(uniques), len(records), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(records)))
        records = records.iloc[first].reset_index(drop=True)
        ra, rb = codes[ra], codes[rb + len(records_a)]
        ids = records["id"].to_numpy()
        swap = ids[ra] > ids[rb]
        if SET in records.columns:  # several sets: (smaller set, its id) first
            sets = records[SET].to_numpy()
            swap = (sets[ra] > sets[rb]) | ((sets[ra] == sets[rb]) & swap)
        ra[swap], rb[swap] = rb[swap], ra[swap]
        records_a = records_b = records
    return records_a, ra, records_b, rb


def _values_of(records_a: pd.DataFrame, records_b: pd.DataFrame,
               treatments: Sequence[Treatment]) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Each treatment's values of both sides; the same frames when the sides are one set
    (a metric given the same frame twice prepares it once)."""
    encoded_a = treatment_values(records_a, treatments)
    return encoded_a, encoded_a if records_b is records_a else treatment_values(records_b, treatments)


def pair_distances(joined: pd.DataFrame, treatments: Sequence[Treatment], dedupe: bool) -> pd.DataFrame:
    """Each treatment's distance (before its weight) of each joined pair, in
    the pairs' order (column ``k``: treatment ``k``): what a model's fitting
    and its scoring both read, computed once."""
    records_a, ra, records_b, rb = _oriented(joined, dedupe)
    encoded_a, encoded_b = _values_of(records_a, records_b, treatments)
    distances = treatment_pair_distances(treatments, encoded_a, encoded_b, ra, rb)
    return pd.DataFrame(distances.reshape(len(joined), len(treatments)), index=joined.index,
                        columns=[str(k) for k in range(len(treatments))])


def candidate_patterns(joined: pd.DataFrame, distances: pd.DataFrame, levels_of: Callable[[np.ndarray], np.ndarray],
                       dedupe: bool, per_rule: bool = False, known_hashes: np.ndarray | None = None) -> pd.DataFrame:
    """The agreement patterns of candidate pairs (their :func:`pair_distances`
    cut into levels by ``levels_of``: a model's cut points) and their counts; with ``per_rule``, also
    by the blocking rules that selected them (a column ``"rules"``, a bit
    mask); with ``known_hashes`` (sorted
    :func:`~bigalign.pipeline.pair_hashes` of pairs known to match), also by
    whether the pair is one of them (a column ``"known"``)."""
    levels = levels_of(distances.to_numpy(np.float64))
    columns: dict[int | str, np.ndarray] = dict(enumerate(levels.T))
    if per_rule:
        columns["rules"] = joined["rules"].to_numpy(np.int64)
    if known_hashes is not None:
        hashes = combined_hashes(joined["rid_a"].to_numpy(np.uint64), joined["rid_b"].to_numpy(np.uint64), dedupe)
        columns["known"] = isin_sorted(hashes, known_hashes).astype(np.int64)
    counts = pattern_counts(np.column_stack(list(columns.values())))
    return counts.rename(columns=dict(enumerate(columns)))


def candidate_sample(joined: pd.DataFrame, distances: pd.DataFrame, treatments: Sequence[Treatment], dedupe: bool,
                     share: float, positions: Sequence[int]) -> tuple[np.ndarray, dict[int, np.ndarray], np.ndarray]:
    """The :func:`pair_distances` of the candidate pairs whose align record's hash falls in the first
    ``share`` of the hash range — every candidate of a sample of the records (what a record's best
    candidate is needs them all), which depends on the pairs only, not on how they are partitioned —, their
    value hashes of the treatments at ``positions`` (a model's, with term frequencies) and align records."""
    records = joined["rid_a"].to_numpy(np.uint64)
    # (the record hash mixed once more: the pair hashes are made of it, and must not follow the sample)
    chosen = in_share(records, share)
    drawn = distances.to_numpy(np.float64)[chosen]
    if not positions or not chosen.any():
        return drawn, {k: np.zeros(0, np.uint64) for k in positions}, records[chosen]
    records_a, ra, _, _ = _oriented(joined[chosen], dedupe)
    encoded_a = treatment_values(records_a, treatments)
    return drawn, {k: value_hashes(encoded_a[k])[ra] for k in positions}, records[chosen]


def partition_term_counts(encoded: pd.DataFrame, treatments: Sequence[Treatment],
                          positions: Sequence[int]) -> pd.DataFrame:
    """How many records of a partition hold each value (by hash) of the
    treatments at ``positions`` (columns ``treatment``, ``hash``, ``count``)."""
    values = treatment_values(encoded, treatments)
    counts = [term_counts([values[k]]) for k in positions]
    return pd.DataFrame({"treatment": np.repeat(np.asarray(positions, dtype=np.int64), [len(c) for c in counts]),
                         "hash": np.concatenate([c.index.to_numpy(np.uint64) for c in counts]),
                         "count": np.concatenate([c.to_numpy(np.int64) for c in counts])})


def score_pairs(joined: pd.DataFrame, treatments: Sequence[Treatment], threshold: float, uniq: bool,
                dedupe: bool, truth_hashes: np.ndarray | None = None,
                scorer: Scorer | None = None, explain: bool = False,
                distances: pd.DataFrame | None = None) -> ScoredLinks:
    """The ``distance`` of candidate pairs joined with both records'
    encoded values (``a:…``, ``b:…``), as the fitted ``scorer`` gives it
    (by default the weighted distance; a model's: 1 − the match
    probability; lower is better either way). With ``explain``, each link
    carries the scorer's explanation columns. The pairs'
    :func:`pair_distances`, when already computed, are not again.

    Returns the pairs under the threshold; with ``uniq``, the best pair of
    each align record, linked or not (its best rejected candidate is shown in
    the report; the threshold is applied after the last reduce).
    """
    return score_records(*_records_of(joined), treatments, threshold, uniq, dedupe, truth_hashes, scorer, explain,
                         distances)


def score_records(records_a: pd.DataFrame, ra: np.ndarray, records_b: pd.DataFrame, rb: np.ndarray,
                  treatments: Sequence[Treatment], threshold: float, uniq: bool, dedupe: bool,
                  truth_hashes: np.ndarray | None = None, scorer: Scorer | None = None, explain: bool = False,
                  distances: pd.DataFrame | None = None) -> ScoredLinks:
    """:func:`score_pairs` of pairs given as their records' rows ``(ra[k], rb[k])`` in ``records_a`` and
    ``records_b`` (an id, its hash ``rid`` and the encoded values, value sets as such): what a lookup in an
    index scores, its records already at hand, without joining them to the pairs first."""
    stats = BlockStats()
    records_a, ra, records_b, rb = _orient(records_a, ra, records_b, rb, dedupe)
    if not len(ra):
        return ScoredLinks(pd.DataFrame({"align_id": records_a["id"].iloc[:0], "target_id": records_b["id"].iloc[:0],
                                         "distance": np.empty(0, np.float64)}), stats)
    encoded_a, encoded_b = _values_of(records_a, records_b, treatments)
    scorer = scorer or WeightedDistance()
    each = (treatment_pair_distances(treatments, encoded_a, encoded_b, ra, rb) if distances is None
            else distances.to_numpy(np.float64))
    terms = {k: hashes[ra] for k, hashes in scorer.term_hashes(encoded_a).items()}
    distance = scorer.pair_scores(treatments, each, terms)
    explanation = scorer.explanation_columns(treatments, each, terms) if explain else None
    links = _scored(stats, treatments, records_a, records_b, encoded_a, encoded_b, ra, rb, distance, threshold,
                    uniq, truth_hashes, scorer, dedupe, explanation)
    return ScoredLinks(best_match_per_item(links) if uniq else links, stats)


def score_dense_blocks(members: pd.DataFrame, treatments: Sequence[Treatment], blocking: Blocking,
                       threshold: float, uniq: bool,
                       truth_hashes: np.ndarray | None = None) -> ScoredLinks:
    """Score whole large blocks (their members joined with the encoded
    records, shuffled on the block) with the dense global alignment matrix
    (the weighted distance: a scorer that learns scores pair by pair),
    keeping the pairs whose first shared slot is the block's: the same pairs
    and distances as the pair path, bit for bit."""
    stats = BlockStats()
    found = []
    for _, rows in members.groupby("key", sort=True):  # a few large blocks
        a, b = sides(rows)
        ia, ib = first_slot_pairs(a, b, blocking)
        encoded_a, encoded_b = treatment_values(a, treatments), treatment_values(b, treatments)
        distance = global_alignment_matrix(treatments, encoded_a, encoded_b)[ia, ib]
        found.append(_scored(stats, treatments, a, b, encoded_a, encoded_b, ia, ib, distance, threshold, uniq,
                             truth_hashes, WeightedDistance()))
    if not found:
        return ScoredLinks(pd.DataFrame({"align_id": members["id"].iloc[:0], "target_id": members["id"].iloc[:0],
                                         "distance": np.empty(0, np.float64)}), stats)
    links = pd.concat(found, ignore_index=True)
    return ScoredLinks(best_match_per_item(links) if uniq else links, stats)
