"""``align``: the public entry point.

Without a blocking, the alignment is computed in memory: the global alignment
matrix of the two sets, chunk by chunk over the alignset so that memory stays
bounded. With a blocking, or with dask DataFrames as input, the alignment runs
as a Dask graph (:mod:`bigalign.pipeline`) on a distributed client.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import pandas as pd

from .em import add_pattern_counts, pattern_counts
from .evaluate import isin_sorted
from .fellegi_sunter import FellegiSunter
from .matching import LINK_COLUMNS, best_match_per_item, links_under_threshold, one_to_one, sort_links
from .records import as_records, is_dask, record_hashes
from .scorers import Scorer, WeightedDistance
from .spec import Alignment, SpecError, make_alignment
from .treatments import (
    Treatment,
    global_alignment_matrix,
    set_aside_invalid,
    treatment_pair_distances,
)
from .weights import term_counts, value_hashes

if TYPE_CHECKING:  # (dask and the blockings load only when a blocking is used)
    import dask.dataframe as dd
    from distributed import Client

    from .blocking import Blocking

logger = logging.getLogger("bigalign")

__all__ = ["Records", "Treatments", "align", "align_in_memory", "align_learned", "align_sets"]

# Cells of the global alignment matrix computed at once in memory.
_CHUNK_CELLS = 8_000_000


def _alignment(treatments: Treatments, **values: Any) -> Alignment:
    """The :class:`~bigalign.spec.Alignment` of the Python entry points' arguments; an error names the
    argument."""
    try:
        return make_alignment(treatments, **values)
    except SpecError as err:
        raise ValueError(f"{err.name}: {err}") from None


def align_in_memory(alignset: pd.DataFrame, targetset: pd.DataFrame, treatments: list[Treatment],
                    threshold: float, uniq: bool = True, one_to_one_links: bool = False,
                    dedupe: bool = False, explain: bool = False) -> pd.DataFrame:
    """Brute-force alignment of two record frames (first column: identifier);
    with ``explain``, each treatment's distance on every link."""
    encoded_a = [t.encode(alignset) for t in treatments]
    encoded_b = encoded_a if dedupe else [t.encode(targetset, "target") for t in treatments]
    align_ids = alignset.iloc[:, 0].to_numpy()
    target_ids = targetset.iloc[:, 0].to_numpy()
    rows = max(1, _CHUNK_CELLS // max(1, len(targetset)))
    parts = []
    for start in range(0, len(alignset), rows):
        chunk = [e.iloc[start:start + rows] for e in encoded_a]
        matrix = global_alignment_matrix(treatments, chunk, encoded_b)
        i, j, d = links_under_threshold(matrix, threshold)
        if dedupe:  # each unordered pair once (smaller id first), never a record with itself
            keep = align_ids[i + start] < target_ids[j]
            i, j, d = i[keep], j[keep], d[keep]
        parts.append(pd.DataFrame({"align_id": align_ids[i + start], "target_id": target_ids[j], "distance": d}))
    links = pd.concat(parts, ignore_index=True)[LINK_COLUMNS]
    links = one_to_one(links) if one_to_one_links else best_match_per_item(links) if uniq else sort_links(links)
    if explain:
        return _explained(links, treatments, encoded_a, encoded_b, align_ids, target_ids, WeightedDistance())
    return links


def _explained(links: pd.DataFrame, treatments: list[Treatment], encoded_a: list[pd.DataFrame],
               encoded_b: list[pd.DataFrame], align_ids: np.ndarray, target_ids: np.ndarray,
               scorer: Scorer) -> pd.DataFrame:
    """Links with the ``scorer``'s explanation columns (computed for the links alone)."""
    ia = pd.Index(align_ids).get_indexer(links["align_id"])
    ib = pd.Index(target_ids).get_indexer(links["target_id"])
    distances = treatment_pair_distances(treatments, encoded_a, encoded_b, ia, ib)
    terms = {k: h[ia] for k, h in scorer.term_hashes(encoded_a).items()}
    return links.assign(**scorer.explanation_columns(treatments, distances, terms))


# What a set of records may be: a frame, a dask frame, or Nazca's nested lists.
Records = Union[pd.DataFrame, "dd.DataFrame", Sequence[Sequence[Any]]]
# Treatments: Nazca's dict form, a list of mappings (the job-file form) or of Treatments.
Treatments = Union[Mapping[Any, Mapping[str, Any]], Sequence[Union[Treatment, Mapping[str, Any]]], Treatment]


def _cross_product_distances(treatments: list[Treatment], encoded_a: list[pd.DataFrame],
                             encoded_b: list[pd.DataFrame], keep: Callable[[np.ndarray, np.ndarray], np.ndarray]
                             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows of the align side, rows of the target side and each treatment's
    distance of every pair of the cross product, chunk by chunk (``keep(i,
    j)``: the pairs to consider)."""
    n_b = len(encoded_b[0])
    rows = max(1, _CHUNK_CELLS // max(1, n_b))
    for start in range(0, len(encoded_a[0]), rows):
        chunk = [e.iloc[start:start + rows] for e in encoded_a]
        distances = np.column_stack([t.metric.cdist(a, b, t.normalized).ravel()
                                     for t, a, b in zip(treatments, chunk, encoded_b)])
        i = np.repeat(np.arange(len(chunk[0])), n_b) + start
        j = np.tile(np.arange(n_b), len(chunk[0]))
        mask = keep(i, j)
        yield i[mask], j[mask], distances[mask]


class _CrossProduct:
    """What a scorer is fitted on in memory (see :class:`~bigalign.scorers.FitData`): every pair of the
    two sets is a candidate (a deduplication's unordered pairs once, smaller id first)."""

    # (no blocking rules; the candidates are the whole population)
    left_out: list[set[int]] | None = None
    population: float | None = None

    def __init__(self, treatments: list[Treatment], encoded_a: list[pd.DataFrame], encoded_b: list[pd.DataFrame],
                 align_ids: np.ndarray, target_ids: np.ndarray, dedupe: bool, scorer: Scorer):
        self.treatments, self.encoded_a, self.encoded_b = treatments, encoded_a, encoded_b
        self.align_ids, self.target_ids, self.dedupe, self.scorer = align_ids, target_ids, dedupe, scorer
        self.records = (len(align_ids), len(target_ids))
        self.positions: Sequence[int] = []

    def keep(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        # a deduplication's unordered pairs once (smaller id first), never a record with itself
        return self.align_ids[i] < self.target_ids[j] if self.dedupe else np.ones(len(i), dtype=bool)

    def pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return _cross_product_distances(self.treatments, self.encoded_a, self.encoded_b, self.keep)

    def random_distances(self) -> np.ndarray:
        return treatment_pair_distances(self.treatments, self.encoded_a, self.encoded_b,
                                        *self.scorer.random_rows(*self.records))

    def candidate_sample(self, positions: Sequence[int]) -> None:
        # (the candidates are the cross product: its near misses are the random pairs' own)
        self.positions = positions
        return None

    def known_hashes(self, labels: pd.DataFrame | None) -> np.ndarray | None:
        if labels is None:
            return None
        from .pipeline.schema import pair_hashes

        return np.sort(pair_hashes(labels["align_id"], labels["target_id"], self.dedupe))

    def pattern_counts(self, levels: Callable[[np.ndarray], np.ndarray], known: np.ndarray | None,
                       per_rule: bool) -> pd.DataFrame:
        from .pipeline.schema import combined_hashes

        rid_a, rid_b = record_hashes(pd.Series(self.align_ids)), record_hashes(pd.Series(self.target_ids))

        def counted(i: np.ndarray, j: np.ndarray, level: np.ndarray) -> pd.DataFrame:
            if known is None:
                return pattern_counts(level)
            is_known = isin_sorted(combined_hashes(rid_a[i], rid_b[j], self.dedupe), known)
            return pattern_counts(np.column_stack([level, is_known])).rename(columns={level.shape[1]: "known"})

        return add_pattern_counts([counted(i, j, levels(distances)) for i, j, distances in self.pairs()])

    def term_counts(self, positions: Sequence[int]) -> tuple[dict[int, pd.Series], int]:
        sets = [self.encoded_a] if self.dedupe else [self.encoded_a, self.encoded_b]
        n_a, n_b = self.records
        return {k: term_counts([encoded[k] for encoded in sets]) for k in positions}, n_a if self.dedupe else n_a + n_b

    def candidate_weights(self, weights: Callable[[np.ndarray, Mapping[int, np.ndarray]], np.ndarray]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hashes = {k: value_hashes(self.encoded_a[k]) for k in self.positions}
        every, records = [], []
        for i, _, distances in self.pairs():
            every.append(weights(distances, {k: h[i] for k, h in hashes.items()}))
            records.append(i)
        return np.concatenate(every), np.ones(1), np.concatenate(records)


def align_learned(alignset: pd.DataFrame, targetset: pd.DataFrame, alignment: Alignment
                  ) -> tuple[pd.DataFrame, Scorer]:
    """Every pair of the two frames scored by the alignment's scorer fitted on them (in memory): the links,
    and the fitted scorer.

    With a Fellegi–Sunter model, links are the pairs whose match probability is at least the threshold
    (``"auto"``: the one the model expects to give the best F1), with their ``match_weight`` and
    ``match_probability``; with ``explain``, the prior's weight and each treatment's distance, level and
    weight (they add up, with the prior's weight, to the match weight).
    """
    treatments, dedupe = list(alignment.treatments), alignment.dedupe
    encoded_a = [t.encode(alignset) for t in treatments]
    encoded_b = encoded_a if dedupe else [t.encode(targetset, "target") for t in treatments]
    align_ids = alignset.iloc[:, 0].to_numpy()
    target_ids = targetset.iloc[:, 0].to_numpy()
    data = _CrossProduct(treatments, encoded_a, encoded_b, align_ids, target_ids, dedupe, alignment.scorer)
    fitted = alignment.scorer.fitted(data, treatments, alignment.threshold)
    hashes = fitted.term_hashes(encoded_a)
    parts = []
    for i, j, distances in data.pairs():
        distance = fitted.pair_scores(treatments, distances, {k: h[i] for k, h in hashes.items()})
        linked = distance <= fitted.distance_threshold_
        parts.append(pd.DataFrame({"align_id": align_ids[i[linked]], "target_id": target_ids[j[linked]],
                                   "distance": distance[linked]}))
    links = pd.concat(parts, ignore_index=True)
    links = one_to_one(links) if alignment.one_to_one else best_match_per_item(links) if alignment.uniq \
        else sort_links(links)
    if alignment.explain:
        links = _explained(links, treatments, encoded_a, encoded_b, align_ids, target_ids, fitted)
    return fitted.as_written(links), fitted


def align(alignset: Records, targetset: Records, treatments: Treatments, threshold: float | str,
          uniq: bool = True, id_column: Hashable | None = None, *, blocking: Blocking | str | None = None,
          one_to_one: bool = False, client: Client | str | os.PathLike | None = None,
          npartitions: int | None = None, max_block_pairs: int | None = None, max_task_pairs: int | None = None,
          model: FellegiSunter | None = None, explain: bool = False) -> pd.DataFrame:
    """Align ``alignset`` on ``targetset``.

    Parameters
    ----------
    alignset, targetset : pandas.DataFrame, dask DataFrame or nested lists
        Records: an identifier (the first column, or ``id_column``) and
        attributes. Pass the same object twice (with ``uniq=False``) to
        deduplicate one set: each unordered pair under the threshold is then
        returned once, smaller id first, and no record with itself.
    treatments : mapping or list
        Nazca's dict form ``{attribute: {"metric": ..., ...}}``, or a list of
        :class:`~bigalign.treatments.Treatment`.
    threshold : float
        Pairs whose global distance is at most ``threshold`` are links.
    uniq : bool
        Keep only the best target of each align item (ties: smallest target
        id); otherwise every pair under the threshold.
    id_column : label, optional
        The identifier column of frames, when not the first.
    blocking : Blocking or "auto", optional
        Without one, every pair is compared in memory. With one, the
        alignment runs on Dask (see :func:`bigalign.pipeline.align_distributed`);
        ``"auto"`` chooses a union of keys from the treatments and the data
        (see :mod:`bigalign.pipeline.choose`).
    one_to_one : bool
        No target used twice (greedy on distance); implies ``uniq``.
    client : distributed.Client, str, optional
        For the Dask path: a client, a scheduler address, or a scheduler file;
        by default ``Client()`` semantics (``DASK_SCHEDULER_ADDRESS``, else a
        ``LocalCluster``).
    npartitions : int, optional
        For the Dask path: partitions of each set read from memory.
    max_block_pairs : int, optional
        For the Dask path: blocks with more candidate pairs are left out
        (and counted); by default every block is scored, in bounded chunks.
    max_task_pairs : int, optional
        For the Dask path: blocks with more pairs are split into tiles scored
        by several tasks (default: :data:`bigalign.pipeline.MAX_TASK_PAIRS`).
    model : FellegiSunter, optional
        Score pairs with a Fellegi–Sunter model of the treatments' levels,
        fitted on the sets without labels, instead of the weighted distance:
        ``threshold`` is then a match probability, or ``"auto"``, and links
        carry ``match_weight`` and ``match_probability`` (see
        :func:`align_learned`; with a blocking, fitted on the candidates).
        The model passed is not changed: the fitted copy is
        ``links.attrs["model"]``.
    explain : bool
        Each link carries, per treatment, ``"{attribute}: distance"`` (the
        metric's, before the weight); with a model also ``": level"`` and
        ``": weight"`` (log2(m/u)), and ``prior_weight``: the prior's weight
        and the treatments' add up to the link's match weight.

    Returns
    -------
    pandas.DataFrame
        Columns ``align_id``, ``target_id``, ``distance``, sorted by align id,
        distance and target id. ``attrs["rejects"]``, when records were set
        aside by treatments with ``invalid="reject"``, lists them (set, id,
        column, reason, value); with the default, an unreadable value is an
        error that names the set, record and column.
    """
    dedupe = alignset is targetset
    if isinstance(blocking, str) and blocking == "auto":  # (chosen on the cluster from the data: see choose.py)
        from .blocking import AutoBlocking

        blocking = AutoBlocking()
    alignment = _alignment(treatments, scorer=model, blocking=blocking, threshold=threshold, uniq=uniq,
                           one_to_one=one_to_one, dedupe=dedupe, max_block_pairs=max_block_pairs,
                           max_task_pairs=max_task_pairs, explain=explain)
    treatment_list = list(alignment.treatments)
    rejects = []
    if not is_dask(alignset):  # values checked here, before any cluster starts
        alignset, set_aside = set_aside_invalid(as_records(alignset, id_column, "alignset"), treatment_list,
                                                "alignset")
        rejects.append(set_aside)
    if dedupe:
        targetset = alignset
    elif not is_dask(targetset):
        targetset, set_aside = set_aside_invalid(as_records(targetset, id_column, "targetset"), treatment_list,
                                                 "targetset", "target")
        rejects.append(set_aside)
    scorer = alignment.scorer
    if blocking is not None or is_dask(alignset) or is_dask(targetset):
        from .pipeline import align_distributed
        from .pipeline.choose import resolve_blocking

        run = align_distributed(alignset, targetset, alignment, id_column=id_column if is_dask(alignset) else None,
                                client=client, npartitions=npartitions, prepare=resolve_blocking)
        links, scorer = run.links, run.scorer
    elif scorer.learns:
        links, scorer = align_learned(alignset, targetset, alignment)
    else:  # (the weighted distance in memory: the global alignment matrix, chunk by chunk)
        links = align_in_memory(alignset, targetset, treatment_list, float(alignment.threshold), uniq=uniq,
                                one_to_one_links=one_to_one, dedupe=dedupe, explain=explain)
    if scorer.learns:
        links.attrs["model"] = scorer
    set_aside = [r for frame in rejects for r in frame.to_dict("records")]
    if set_aside:  # (records, not a frame: pandas compares the attrs of frames it combines)
        links.attrs["rejects"] = set_aside
        logger.warning("%d records set aside (values their treatments cannot read): see links.attrs['rejects']",
                       len(set_aside))
    return links


def align_sets(sets: Mapping[str, Records], treatments: Treatments, threshold: float | str, *,
               blocking: Blocking | None = None, link_type: str = "link_and_dedupe",
               id_column: Hashable | None = None, model: FellegiSunter | None = None,
               client: Client | str | os.PathLike | None = None, explain: bool = False) -> pd.DataFrame:
    """Link several sets together and/or deduplicate within them.

    ``sets`` maps each set's name to its records (as for :func:`align`);
    ``link_type`` says which pairs are compared, with Splink's names:
    ``"link_only"`` (across the sets), ``"dedupe_only"`` (within each),
    ``"link_and_dedupe"`` (both). The sets are aligned as one (encoded and
    blocked once, one ``model``), on Dask; without a ``blocking``, every pair.

    Returns every pair under the threshold, once: ``align_set``,
    ``align_id``, ``target_set``, ``target_id`` (the smaller set, then id,
    first; ids as text), then ``distance`` (or ``match_weight`` and
    ``match_probability``). :func:`bigalign.cluster_links` (with
    ``sets=list(sets)``) makes the entities.
    """
    from .blocking import CrossProductBlocking
    from .cluster import connect_for_records
    from .matching import set_names
    from .pipeline import run_alignment, to_dask
    from .pipeline.encode import set_union

    names = [str(name) for name in sets]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"sets: at least two, with distinct names, got {names}")
    alignment = _alignment(treatments, scorer=model, blocking=blocking or CrossProductBlocking(), several_sets=True,
                           threshold=threshold, uniq=False, link_type=link_type, explain=explain)
    treatment_list = list(alignment.treatments)
    frames, rejects = [], []
    for name, records in sets.items():
        if not is_dask(records):  # (as align: checked here, set aside as the treatments say)
            records, set_aside = set_aside_invalid(as_records(records, id_column, str(name)), treatment_list,
                                                   str(name))
            rejects += set_aside.to_dict("records")
        frames.append(to_dask(records, id_column if is_dask(records) else None, str(name)))
    union = set_union(frames)
    in_memory = None if any(is_dask(records) for records in sets.values()) else sum(map(len, sets.values()))
    with connect_for_records(client, in_memory) as active:
        run = run_alignment(active, union, union, alignment)
    links = set_names(run.scorer.as_written(run.links), names)
    if rejects:
        links.attrs["rejects"] = rejects
    return links
