"""The Dask graph of an alignment, built from the stage functions (what a learning scorer reads: fit_data)."""

from __future__ import annotations

import copy
import logging
import math
import uuid
import warnings
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from ..blocking.base import Blocking
from ..blocking.values import with_value_sets
from ..cluster import connect_for_records, progress_bars, shuffle_method, worker_threads
from ..matching import best_match_per_item, sort_links
from ..matching import one_to_one as one_to_one_links
from ..records import is_dask
from ..scorers import Scorer
from ..spec import Alignment
from ..treatments import Treatment
from ..values.sets import is_value_sets, largest_sets, sets_as_text
from .candidates import DENSE_BLOCK_PAIRS, MAX_TASK_PAIRS, candidate_pairs, candidate_tile
from .checkpoint import Checkpoint
from .clusters import (
    MERGE_FAN_IN,
    ClusterStats,
    cluster_ids,
    cluster_records,
    cluster_stats,
    link_forest,
    linked_records,
    merge_forests,
    oversized_edges,
    oversized_nodes,
    split_oversized,
    strong_links,
)
from .encode import block_rows, encode_records, to_dask
from .fit_data import CandidateData, random_pair_distances
from .reduce import best_match
from .schema import (
    ALIGN,
    ALIGN_SIDE,
    EXTRA_PREFIX,
    KEY_PREFIX,
    TARGET,
    TARGET_SIDE,
    part_of,
)
from .scoring import (
    pair_distances,
    score_dense_blocks,
    score_pairs,
)
from .stats import AlignmentRun, BlockStats
from .timing import timed

__all__ = ["align_distributed", "run_alignment", "run_clustering", "sent_once"]

logger = logging.getLogger("bigalign")

# Candidate pairs per partition of the scoring stage.
SCORE_PAIRS_PER_PARTITION = 150_000
# Narrow rows (record × block key) per partition of the block shuffle.
BLOCK_ROWS_PER_PARTITION = 1_000_000


def _encoded_sets(client: Any, align_dd: dd.DataFrame, target_dd: dd.DataFrame, treatments: Sequence[Treatment],
                  blocking: Blocking, dedupe: bool) -> tuple[dd.DataFrame, dd.DataFrame]:
    """Both sets encoded, persisted on the workers: read by the block shuffle and the join."""
    # Keys unique to the run: a run that follows another on the same data must not
    # meet keys of the same name that the scheduler is still forgetting.
    run = uuid.uuid4().hex

    def encoded(records: dd.DataFrame, side: str, name: str) -> dd.DataFrame:
        meta = encode_records(records._meta, treatments, blocking, side, name)
        return records.map_partitions(encode_records, treatments, blocking, side, name, meta=meta,
                                      enforce_metadata=False, token=f"encode_records-{run}")

    encoded_a = encoded(align_dd, "align", "alignset")
    if dedupe and not any(b.asymmetric for b in blocking.blockings()):
        # One set whose positional keys are alike on both sides of a pair: encoded once, not twice.
        encoded_a = client.persist(encoded_a)
        return encoded_a, encoded_a
    encoded_b = encoded(target_dd, "target", "alignset" if dedupe else "targetset")
    return tuple(client.persist([encoded_a, encoded_b]))


def _shuffled_blocks(encoded_a: dd.DataFrame, encoded_b: dd.DataFrame, blocking: Blocking,
                     shuffle_partitions: int | None, records: int, threads: int,
                     method: str | None) -> tuple[dd.DataFrame, int]:
    """Narrow rows of both sets, shuffled so that each partition holds whole
    blocks of both (same key → same partition). One shuffle of both sides: a
    block's rows end on one worker, with nothing to transfer before pairing.
    A deduplication encoded once (see :func:`_encoded_sets`) shuffles its
    rows once, as the align side, and :func:`candidate_pairs` pairs them with
    themselves."""

    def narrow(encoded: dd.DataFrame, side: str) -> dd.DataFrame:
        return encoded.map_partitions(block_rows, blocking, side, meta=block_rows(encoded._meta, blocking, side))

    if shuffle_partitions is None:
        # Enough partitions to keep every worker thread busy, none too large.
        shuffle_partitions = max(2 * threads, math.ceil(records * blocking.n_slots / BLOCK_ROWS_PER_PARTITION))
    if encoded_b is encoded_a:  # one set keyed alike on both sides: shuffled once, paired with itself
        both = narrow(encoded_a, "align")
    else:
        both = dd.concat([narrow(encoded_a, "align"), narrow(encoded_b, "target")])
    return both.shuffle(on="key", npartitions=shuffle_partitions, shuffle_method=method), shuffle_partitions


def _values(encoded: dd.DataFrame, side: str) -> dd.DataFrame:
    """The id, id hash and encoded values of a set, named for one side of a pair; value sets as text (see
    :func:`~bigalign.values.sets.sets_as_text`: they cross the P2P shuffle of the joins so)."""
    columns = [c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]
    values = encoded[columns].rename(columns={c: f"{side}:{c}" for c in columns})
    sets = [f"{side}:{c}" for c in columns if is_value_sets(encoded.dtypes[c])]
    if not sets:
        return values
    return values.map_partitions(sets_as_text, sets, meta=sets_as_text(values._meta, sets))


def _joined_pairs(pairs: dd.DataFrame, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame,
                  npartitions: int, method: str | None) -> dd.DataFrame:
    """Candidate pairs with both records' encoded values: two hash joins on
    the id hashes, so a record's values travel once per pair it has. The
    join on the align side comes last: all the pairs of an align record end
    in one partition, where its best match can be chosen for good.

    Without a cluster (``method`` "tasks": every record in this process),
    only the pairs are shuffled, on the align record, and each of their
    partitions takes its records' values from both sets whole, which nothing
    moves (1M × 1M: 1.2–1.7 s against 3.5–4.3 s, half the CPU time)."""
    if method == "tasks":
        pairs = pairs.shuffle(on="rid_a", npartitions=npartitions, shuffle_method=method)
        values = [_values(encoded, side) for encoded, side in ((encoded_b, TARGET_SIDE), (encoded_a, ALIGN_SIDE))]
        whole = [dask.delayed(_indexed, pure=True)(v.to_delayed(), side)
                 for v, side in zip(values, (TARGET_SIDE, ALIGN_SIDE))]
        meta = pd.concat([pairs._meta] + [v._meta for v in values], axis=1)
        return pairs.map_partitions(_with_values, *whole, meta=meta, enforce_metadata=False)
    with_b = pairs.merge(_values(encoded_b, TARGET_SIDE), left_on="rid_b", right_on=f"{TARGET_SIDE}:rid",
                         how="inner", npartitions=npartitions, broadcast=False, shuffle_method=method)
    return with_b.merge(_values(encoded_a, ALIGN_SIDE), left_on="rid_a", right_on=f"{ALIGN_SIDE}:rid", how="inner",
                        npartitions=npartitions, broadcast=False, shuffle_method=method)


def _carrying(method: str | None, *encoded: dd.DataFrame) -> str | None:
    """The shuffle method of the dense blocks' join, which carries encoded records whole: Dask's task
    shuffle for value sets (its P2P shuffle goes through Arrow tables, and pandas cannot rebuild an Arrow
    list type from its name; the pairs' joins carry them as text, see :func:`_values`)."""
    if any(is_value_sets(dtype) for frame in encoded for dtype in frame.dtypes):
        return "tasks"
    return method


def _indexed(parts: list[pd.DataFrame], side: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One side's values whole, with their id hashes sorted and the rows in
    that order: what :func:`_with_values` looks pairs up in (a numpy search
    of arrays nobody writes: pandas' hash index, built by the first lookups
    of two threads at once, came out "not unique" at 1M × 1M). Arrow columns
    in one chunk: a take from several chunks joins them first, each time."""
    values = pd.concat(parts, ignore_index=True)
    for column in values.columns:
        array = values[column].array
        if isinstance(array, pd.arrays.ArrowExtensionArray):
            whole = pa.array(array)  # (the array's own chunks, not a copy)
            values[column] = type(array)(whole.combine_chunks() if isinstance(whole, pa.ChunkedArray) else whole)
    rids = values[f"{side}:rid"].to_numpy(np.uint64)
    order = np.argsort(rids, kind="stable")
    return values, rids[order], order


def _with_values(pairs: pd.DataFrame, side_b: tuple, side_a: tuple) -> pd.DataFrame:
    """The pairs and their records' values (see :func:`_indexed`); every record of a pair is in its set."""
    pairs = pairs.reset_index(drop=True)
    taken = []
    for (values, sorted_rids, order), column in ((side_b, "rid_b"), (side_a, "rid_a")):
        wanted = pairs[column].to_numpy(np.uint64)
        at = np.minimum(np.searchsorted(sorted_rids, wanted), max(0, len(sorted_rids) - 1))
        if len(wanted) and not np.array_equal(sorted_rids[at], wanted):
            raise RuntimeError(f"a candidate pair's {column} is in no record of its set")
        taken.append(values.iloc[order[at]].reset_index(drop=True))
    return pd.concat([pairs, *taken], axis=1)


def _dense_members(members: dd.DataFrame, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame,
                   npartitions: int, method: str | None) -> dd.DataFrame:
    """The members of dense blocks with their encoded records, shuffled so that each block is in one partition."""
    method = _carrying(method, encoded_a, encoded_b)
    both = [members[members["side"] == side].merge(encoded, on="rid", how="inner", shuffle_method=method)
            for side, encoded in ((ALIGN, encoded_a), (TARGET, encoded_b))]
    return dd.concat(both).shuffle(on="key", npartitions=npartitions, shuffle_method=method)


def _select_rids(encoded: pd.DataFrame, rids: np.ndarray) -> pd.DataFrame:
    return encoded.loc[np.isin(encoded["rid"].to_numpy(), rids), ["rid", "id"]]


def _with_ids(client: Any, stats: BlockStats, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame) -> None:
    """Put the record ids in the report's largest blocks (tasks know id hashes)."""
    if not stats.largest_blocks:
        return
    found = {}
    for encoded, column in ((encoded_a, 4), (encoded_b, 5)):
        rids = np.array([b[column] for b in stats.largest_blocks], dtype=np.uint64)
        meta = encoded._meta[["rid", "id"]]
        ids = client.compute(encoded.map_partitions(_select_rids, rids, meta=meta)).result()
        found[column] = dict(zip(ids["rid"].to_numpy(np.uint64).tolist(), ids["id"].tolist()))
    stats.largest_blocks = [b[:4] + (found[4].get(b[4], b[4]), found[5].get(b[5], b[5]))
                            for b in stats.largest_blocks]


def _compute_candidates(client: Any, block_parts: list, blocking: Blocking, dedupe: bool,
                        max_block_pairs: int | None, max_task_pairs: int, truth_hashes: Any,
                        dense_block_pairs: int | None, show_progress: bool,
                        rules: bool, link_type: str) -> tuple[list, list, BlockStats]:
    """Candidate pairs (and members of dense blocks) of every shuffled
    partition, then the pairs of the tiles of the largest blocks."""
    futures = client.compute([dask.delayed(candidate_pairs, pure=True)(part, blocking, dedupe, max_block_pairs,
                                                                       max_task_pairs, truth_hashes, dense_block_pairs,
                                                                       rules, link_type)
                              for part in block_parts])
    progress_bars(futures, show_progress)
    partition_stats = client.gather(client.map(part_of, futures, part="stats"))
    pairs = client.map(part_of, futures, part="pairs")
    members = client.map(part_of, futures, part="members")
    tiles = []
    for future, own in zip(futures, partition_stats):
        if own.split_blocks:  # large blocks: several tasks each
            heavy = client.submit(part_of, future, part="heavy")
            for key, n_pairs in own.split_blocks:
                n_tiles = math.ceil(n_pairs / max_task_pairs)
                tiles += [client.submit(candidate_tile, heavy, key, t, n_tiles, blocking, dedupe, truth_hashes, rules,
                                        link_type) for t in range(n_tiles)]
    if tiles:
        progress_bars(tiles, show_progress)
        partition_stats += client.gather(client.map(part_of, tiles, part="stats"))
        pairs += client.map(part_of, tiles, part="pairs")
    return pairs, members, sum(partition_stats, BlockStats())


def _value(value: Any) -> Any:
    return value


def _held(client: Any, value: Any) -> Any:
    """A future of ``value``, sent once and read by many tasks.

    A task that returns it, not scattered data: the Active Memory Manager keeps
    one replica of scattered data, and a worker that dies with it would take it
    for good (every task that reads it cancelled); a task's value is computed
    again from the graph.
    """
    with sent_once():
        return client.submit(_value, value, key=f"held-{uuid.uuid4().hex}")


@contextmanager
def sent_once() -> Iterator[None]:
    """Data in a graph on purpose, sent once: Dask's warning against large graphs is for data sent again and
    again."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        yield


@dataclass
class _Blocked:
    """What the blocking stage leaves to the scoring: the candidate pairs (and members of dense blocks),
    both sets encoded, the figures, and (for a scorer that learns) the random pairs' distances."""

    pairs: dd.DataFrame | None
    members: dd.DataFrame | None
    encoded_a: dd.DataFrame
    encoded_b: dd.DataFrame
    stats: BlockStats
    counts: tuple[int, int]
    shuffle_partitions: int = 0
    random_pairs: Any = None


def _for_value_sets(client: Any, blocking: Blocking, align_dd: dd.DataFrame, target_dd: dd.DataFrame) -> Blocking:
    """The blocking, each member that reads value set columns made to key every value (see
    :func:`~bigalign.blocking.values.with_value_sets`), as many keys a record as it holds values there."""
    wanted = {str(c) for c in blocking.columns}
    most: dict[str, int] = {}
    for records in {id(align_dd): align_dd, id(target_dd): target_dd}.values():
        sets = [c for c in records.columns if str(c) in wanted and is_value_sets(records.dtypes[c])]
        if sets:
            sizes = client.compute(records[sets].map_partitions(largest_sets, meta=pd.Series(dtype=np.int64)))
            for column, size in sizes.result().groupby(level=0).max().items():
                most[str(column)] = max(most.get(str(column), 0), int(size))
    return with_value_sets(blocking, most) if most else blocking


def _random_pairs(client: Any, scorer: Scorer, treatments: Sequence[Treatment], encoded_a: dd.DataFrame,
                  encoded_b: dd.DataFrame, counts: tuple[int, int], options: dict[str, Any]) -> Any:
    """The future of the random pairs' distances a model is fitted on: as given, else computed."""
    if not scorer.learns:
        return None
    if options["random_pairs"] is not None:
        return options["random_pairs"]
    return client.compute(random_pair_distances(scorer, treatments, encoded_a, encoded_b, counts))


def _blocked(client: Any, align_dd: dd.DataFrame | None, target_dd: dd.DataFrame | None,
             treatments: Sequence[Treatment], blocking: Blocking, scorer: Scorer, dedupe: bool,
             options: dict[str, Any], checkpoint: Checkpoint | None, seconds: dict[str, float],
             with_pairs: bool) -> _Blocked:
    """The candidate pairs of a run: from the ``checkpoint`` when it holds them, else blocked (and written
    to it); ``options``: :func:`_compute_candidates`' own. Without ``with_pairs`` (a plan whose scorer
    learns nothing), the pairs are counted, not kept."""
    if checkpoint is not None and checkpoint.has_candidates():
        logger.info("resuming from the checkpoint in %s (candidate pairs already computed)", checkpoint.directory)
        pairs_dd, members_dd, encoded_a, encoded_b, stats = checkpoint.read()
        counts = tuple(f.result() for f in client.compute([encoded_a.shape[0], encoded_b.shape[0]]))
        random_pairs = _random_pairs(client, scorer, treatments, encoded_a, encoded_b, counts, options)
        return _Blocked(pairs_dd, members_dd, encoded_a, encoded_b, stats, counts, options["shuffle_partitions"],
                        random_pairs)
    if align_dd is None or target_dd is None:
        raise ValueError("the records are needed when no checkpoint holds the candidate pairs")
    with timed(seconds, "fit"):
        blocking.fit(align_dd, target_dd)
    with timed(seconds, "candidates"):
        # Counted before encoding (Parquet metadata gives it), so that the shuffle starts
        # as the first partitions are encoded; on this client, not the default one.
        counts = tuple(f.result() for f in client.compute([align_dd.shape[0], target_dd.shape[0]]))
        encoded_a, encoded_b = _encoded_sets(client, align_dd, target_dd, treatments, blocking, dedupe)
        random_pairs = _random_pairs(client, scorer, treatments, encoded_a, encoded_b, counts, options)
        threads = worker_threads(client)
        blocks, n = _shuffled_blocks(encoded_a, encoded_b, blocking, options["shuffle_partitions"], sum(counts),
                                     threads, shuffle_method(client))
        pairs, members, stats = _compute_candidates(client, blocks.to_delayed(), blocking, dedupe,
                                                    options["max_block_pairs"], options["max_task_pairs"],
                                                    options["truth_hashes"], options["dense_block_pairs"],
                                                    options["show_progress"], scorer.learns, options["link_type"])
        _with_ids(client, stats, encoded_a, encoded_b)
    if not with_pairs:
        return _Blocked(None, None, encoded_a, encoded_b, stats, counts, n)
    meta = pd.DataFrame({"rid_a": np.empty(0, np.uint64), "rid_b": np.empty(0, np.uint64)})
    if scorer.learns:
        meta["rules"] = np.empty(0, np.uint32)
    pairs_dd = dd.from_delayed(pairs, meta=meta, verify_meta=False)
    members_dd = dd.from_delayed(members, meta=client.gather(members[0]).iloc[:0], verify_meta=False)
    if checkpoint is not None:
        with timed(seconds, "checkpoint"):
            checkpoint.write(client, {"pairs": pairs, "members": members, "encoded-a": encoded_a.to_delayed(),
                                      "encoded-b": encoded_b.to_delayed()}, stats, options["show_progress"])
    return _Blocked(pairs_dd, members_dd, encoded_a, encoded_b, stats, counts, n, random_pairs)


def run_alignment(client: Any, align_dd: dd.DataFrame | None, target_dd: dd.DataFrame | None,
                  alignment: Alignment, *, show_progress: bool = False, score: bool = True,
                  truth_hashes: np.ndarray | None = None, checkpoint: Checkpoint | None = None,
                  shuffle_partitions: int | None = None, dense_block_pairs: int | None = DENSE_BLOCK_PAIRS,
                  final_links: Callable[[list], Any] | None = None, random_pairs: Any = None) -> AlignmentRun:
    """Build and run the graph of ``alignment`` on ``client``; return the links (sorted) and stats.

    Records of several sets come as one deduplicated set whose records carry
    their set's index (column ``_set``); the alignment's ``link_type`` then
    says which pairs are candidates (across the sets, within each, or both),
    and the links carry ``align_set`` and ``target_set``.

    The alignment's scorer is fitted on the run's candidates when it learns
    (a Fellegi–Sunter model: the threshold is then a match probability or
    ``"auto"``, and the links' ``distance`` is 1 − their match probability);
    the run holds the fitted copy. One-to-one links are chosen by the caller,
    among the best per align record.

    ``score=False`` is a plan: the blocking alone, candidates counted (and
    known pairs among them, with ``truth_hashes``), the scorer fitted,
    nothing scored. With a
    ``checkpoint``, the candidate pairs and encoded sets are written there
    before they are scored, or read from there when a previous run wrote them.
    Blocks of at least ``dense_block_pairs`` pairs are scored as dense matrices
    (``None``: every block by pairs); the links are the same either way.
    With the alignment's ``explain``, links carry the scorer's explanation
    columns. Without ``uniq``, ``final_links`` is called with the futures of
    the links' partitions (as scored: unsorted, a model's ``distance``) before
    this process gathers and sorts them: a next stage can start on the
    cluster meanwhile. ``random_pairs``: the distances of the random pairs a
    model's u is fitted on, when already computed (a future of
    :func:`~bigalign.pipeline.fit_data.random_pair_distances` of these sets).
    """
    treatments, scorer = alignment.treatments, alignment.scorer
    blocking = copy.deepcopy(alignment.blocking)  # (fitted for this run: the alignment's stays as it was given)
    if align_dd is not None and target_dd is not None:
        blocking = _for_value_sets(client, blocking, align_dd, target_dd)
    uniq, dedupe, explain = alignment.uniq or alignment.one_to_one, alignment.dedupe, alignment.explain
    seconds: dict[str, float] = {}
    if scorer.learns or explain:
        dense_block_pairs = None  # (a model, an explanation: per pair; every block goes the pair path)
    if truth_hashes is not None:
        truth_hashes = np.sort(np.asarray(truth_hashes, dtype=np.uint64))  # searched, not hashed, by the tasks
        truth_hashes = _held(client, truth_hashes)
    options = {"max_block_pairs": alignment.max_block_pairs,
               "max_task_pairs": alignment.max_task_pairs or MAX_TASK_PAIRS, "truth_hashes": truth_hashes,
               "dense_block_pairs": dense_block_pairs, "show_progress": show_progress,
               "link_type": alignment.link_type, "shuffle_partitions": shuffle_partitions, "random_pairs": random_pairs}
    found = _blocked(client, align_dd, target_dd, treatments, blocking, scorer, dedupe, options, checkpoint, seconds,
                     with_pairs=score or scorer.learns)
    empty = pd.DataFrame(columns=["align_id", "target_id", "distance"])
    if found.pairs is None:
        return AlignmentRun(empty, found.stats, seconds, found.shuffle_partitions,
                            scorer=scorer.fitted(None, treatments, alignment.threshold), blocking=blocking)
    method = shuffle_method(client)
    npartitions = max(2 * worker_threads(client), math.ceil(found.stats.candidate_pairs / SCORE_PAIRS_PER_PARTITION))
    joined = _joined_pairs(found.pairs, found.encoded_a, found.encoded_b, npartitions, method)
    distances = None
    if scorer.learns:
        with timed(seconds, "model"):
            # The pairs and their distances are read three times (a sample for the cut points, the
            # patterns, the scores): computed once, kept on the workers.
            joined = client.persist(joined)
            meta = pd.DataFrame({str(k): np.empty(0, np.float64) for k in range(len(treatments))})
            distances = client.persist(joined.map_partitions(pair_distances, treatments, dedupe, meta=meta))
            fitted = scorer.fitted(CandidateData(client, treatments, blocking, (found.encoded_a, found.encoded_b),
                                                  joined, distances, dedupe, truth_hashes,
                                                  found.stats.candidate_pairs, found.counts, found.random_pairs),
                                   treatments, alignment.threshold)
    else:
        fitted = scorer.fitted(None, treatments, alignment.threshold)
    if not score:
        return AlignmentRun(empty, found.stats, seconds, found.shuffle_partitions, scorer=fitted, blocking=blocking)
    links, stats, best_rejected = _scored_links(client, found, joined, distances, treatments, blocking, fitted, uniq,
                                                dedupe, truth_hashes, explain, final_links, show_progress, seconds)
    return AlignmentRun(links, stats, seconds, found.shuffle_partitions, best_rejected, fitted, blocking)


def _scored_links(client: Any, found: _Blocked, joined: dd.DataFrame, distances: dd.DataFrame | None,
                  treatments: Sequence[Treatment], blocking: Blocking, scorer: Scorer, uniq: bool, dedupe: bool,
                  truth_hashes: Any, explain: bool, final_links: Callable[[list], Any] | None, show_progress: bool,
                  seconds: dict[str, float]) -> tuple[pd.DataFrame, BlockStats, np.ndarray | None]:
    """Score the joined pairs (and dense blocks) with the fitted ``scorer``, keep the best per align record
    (with ``uniq``); return the links under the threshold, the figures, and (with ``uniq``) the distance of
    each align record's best candidate over the threshold."""
    assert found.members is not None  # (blocked with its pairs)
    threads, method = worker_threads(client), shuffle_method(client)
    threshold = scorer.distance_threshold_
    stats = found.stats
    with timed(seconds, "score"):
        # (the scorer goes to the workers once, not in every task: a model's term tables are large)
        shipped = _held(client, scorer)
        scored = dask.delayed(score_pairs, pure=True)
        futures = client.compute([scored(part, treatments, threshold, uniq, dedupe, truth_hashes, shipped, explain,
                                         each)
                                  for part, each in zip(joined.to_delayed(), repeat(None) if distances is None
                                                        else distances.to_delayed())])
        if stats.dense_blocks:
            futures += client.compute([
                dask.delayed(score_dense_blocks, pure=True)(part, treatments, blocking, threshold, uniq, truth_hashes)
                for part in _dense_members(found.members, found.encoded_a, found.encoded_b, 2 * threads,
                                           method).to_delayed()])
        progress_bars(futures, show_progress)
        stats = stats + sum(client.gather(client.map(part_of, futures, part="stats")), BlockStats())
        parts = client.map(part_of, futures, part="links")
    with timed(seconds, "best_match"):
        # Pairs scored by pairs are partitioned on the align record (see _joined_pairs): the best
        # of each partition are final, unless dense blocks or a deduplication's orientation mix them.
        if uniq and len(parts) > 1 and (stats.dense_blocks or dedupe):
            # Shuffle the pre-reduced links on the align id, then keep the best per item.
            meta = client.gather(parts[0]).iloc[:0]
            links_dd = dd.from_delayed(parts, meta=meta, verify_meta=False)
            reduced = links_dd.shuffle(on="align_id", npartitions=min(len(parts), 2 * threads),
                                       shuffle_method=method).map_partitions(best_match, meta=meta)
            links = client.compute(reduced).result()
        else:
            if not uniq and final_links is not None:  # (without uniq, each task's links are final)
                final_links(parts)
            links = pd.concat(client.gather(parts), ignore_index=True)
        del futures, parts
    # (The best per item again: what keeps the links right whatever partitioning a join strategy
    # produced; after the reduces above, a sort.)
    links = best_match_per_item(links) if uniq else sort_links(links)
    best_rejected = None
    if uniq:
        linked = links["distance"].to_numpy() <= threshold
        best_rejected = links["distance"].to_numpy()[~linked]
        links = links[linked].reset_index(drop=True)
    return links, stats, best_rejected


def align_distributed(alignset: Any, targetset: Any, alignment: Alignment, *, id_column: Hashable | None,
                      client: Any, npartitions: int | None,
                      prepare: Callable[..., tuple[Alignment, Any]] | None = None) -> AlignmentRun:
    """:func:`bigalign.align` on Dask (see its documentation): the run, its links as the scorer writes them.
    ``prepare(client, a, b, alignment)`` gives the alignment to run once the sets are on the cluster (a
    blocking of kind ``"auto"`` chosen: :func:`~bigalign.pipeline.choose.resolve_blocking`)."""
    if alignment.blocking is None:
        raise ValueError("aligning dask DataFrames needs a blocking")
    dedupe = alignment.dedupe
    a = to_dask(alignset, id_column, "alignset", npartitions)
    b = a if dedupe else to_dask(targetset, id_column, "targetset", npartitions)
    in_memory = None if is_dask(alignset) or is_dask(targetset) else len(alignset) + (not dedupe) * len(targetset)
    with connect_for_records(client, in_memory) as active:
        if prepare is not None:
            alignment = prepare(active, a, b, alignment)[0]
        run = run_alignment(active, a, b, alignment)
    links = one_to_one_links(run.links) if alignment.one_to_one else run.links
    run.links = run.scorer.as_written(links)
    return run


def run_clustering(client: Any, link_parts: Sequence[Any], id_parts: dict[int, Sequence[Any]],
                   sets: Sequence[str], dedupe: bool, threshold: float | None = None,
                   max_size: int | None = None) -> tuple[list[Any], ClusterStats]:
    """The clusters of the links (``link_parts``: delayed partitions) on ``client``.

    Returns futures of the (set, id, cluster_id) frames — of every record in
    ``id_parts`` (set index → delayed partitions of its ids), or of the linked
    ones when it is empty — and the clustering's figures. Only forests travel
    (a node, its root, its id); the links stay where they are.
    """
    with sent_once():  # (links from the client, when they come from there; kept for a second pass)
        links = client.persist([dask.delayed(strong_links, pure=True)(part, threshold) for part in link_parts])
    level = client.compute([dask.delayed(link_forest, pure=True)(part, sets, dedupe) for part in links])
    rounds = 0
    while len(level) > 1:  # a tree of merges: ⌈log₈ partitions⌉ rounds, whatever the graph's diameter
        level = [client.submit(merge_forests, *level[i:i + MERGE_FAN_IN], pure=False)
                 for i in range(0, len(level), MERGE_FAN_IN)]
        rounds += 1
    [forest] = level
    split = 0
    if max_size is not None:
        big, split = client.submit(oversized_nodes, forest, max_size, pure=False).result()
        if split:  # (the oversized components' links are few: gathered in one task)
            big = _held(client, big)
            edges = client.compute([dask.delayed(oversized_edges, pure=True)(part, sets, dedupe, big)
                                    for part in links])
            forest = client.submit(split_oversized, forest, client.submit(_concat, *edges, pure=False), max_size,
                                   pure=False)
    named = client.submit(cluster_ids, forest, sets, pure=False)
    if id_parts:
        parts = client.compute([dask.delayed(cluster_records, pure=True)(ids, s, sets, named)
                                for s, of_set in sorted(id_parts.items()) for ids in of_set])
        records = sum(client.gather(client.map(len, parts, pure=False)))
    else:
        parts = [client.submit(linked_records, named, sets, pure=False)]
        records = 0
    stats = client.submit(cluster_stats, named, records, rounds, split, pure=False).result()
    return parts, stats


def _concat(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)
