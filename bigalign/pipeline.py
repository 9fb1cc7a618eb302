"""The Dask graph of an alignment, built in one place.

::

    records ─► encode_records ─► block_rows ─► P2P shuffle ─► candidate_pairs
               (normalize,       (one narrow    on block key   (first shared slot:
                encode, keys;     row per key)                  each pair once)
                persisted)                                           │
    best_match ◄─ score_pairs ◄─ hash join of the pairs with ◄───────┘
    (only with    (global        both encoded sets, on id hashes, the
     dense         distances,    align side last
     blocks or     best per      (large blocks: score_dense_blocks)
     dedupe)       align record)

Only narrow rows (a block key, a slot, a record's id hash and block keys)
cross the block shuffle, once per key of a record; a record's encoded values
travel once per candidate pair it has, by a hash join of the pairs with the
encoded sets. The join on the align side comes last, so all the pairs of an
align record meet in one ``score_pairs`` task, whose best match is final;
the ``best_match`` shuffle on the align id is needed only when dense blocks
or a deduplication's orientation spread them. Blocks of many pairs are
scored as one dense matrix each (``score_dense_blocks``); blocks too large
for one task are paired by several ``candidate_tile`` tasks. Every kernel is
a pure function of its partitions, named after its stage (the dashboard
shows ``encode_records``, ``block_rows``, ``candidate_pairs``,
``candidate_tile``, ``score_pairs``, ``score_dense_blocks``, ``best_match``). A pair's distance is computed
element-wise, identically in both forms, and the first-shared-slot rule does
not depend on partitioning, so the links are the same whatever the number of
workers, threads or partitions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
from distributed import progress

from .blocking.base import Blocking, mix64
from .cluster import connect
from .distances import InvalidValueError
from .errors import RecordError
from .evaluate import isin_sorted
from .matching import best_match_per_item, one_to_one as one_to_one_links, sort_links
from .records import TEXT, as_records, attribute_columns, record_hashes
from .treatments import Treatment, global_alignment_matrix, global_pair_distances, plain

__all__ = ["AlignmentRun", "BlockStats", "Checkpoint", "align_distributed", "best_match", "block_rows",
           "candidate_pairs", "candidate_tile", "distance_bins", "distance_histogram", "encode_records",
           "pair_hashes", "run_alignment", "score_dense_blocks", "score_pairs", "to_dask"]

logger = logging.getLogger("bigalign")

# Block pairs generated at once inside a task: bounds a task's memory.
CHUNK_PAIRS = 2_000_000
# A block with more pairs than this is paired by several tasks.
MAX_TASK_PAIRS = 5_000_000
# A block with at least this many pairs (and at most MAX_TASK_PAIRS) is scored as one
# dense matrix (rapidfuzz's cdist runs 10-30 times faster than its pair form).
DENSE_BLOCK_PAIRS = 10_000
# Candidate pairs per partition of the scoring stage.
SCORE_PAIRS_PER_PARTITION = 150_000
# Records per partition when a set is given in memory.
ROWS_PER_PARTITION = 25_000
# Narrow rows (record × block key) per partition of the block shuffle.
BLOCK_ROWS_PER_PARTITION = 1_000_000


def to_dask(records: Any, id_column: Hashable | None, name: str, npartitions: int | None = None) -> dd.DataFrame:
    """A dask DataFrame of records, identifier first."""
    if isinstance(records, dd.DataFrame):
        if id_column is not None:
            records = records[[id_column] + [c for c in records.columns if c != id_column]]
        return records
    frame = as_records(records, id_column, name)
    npartitions = npartitions or max(1, math.ceil(len(frame) / ROWS_PER_PARTITION))
    return dd.from_pandas(frame, npartitions=min(npartitions, len(frame)), sort=False)


def _treatment_prefix(i: int) -> str:
    return f"t{i}:"


def _compact_keys(keys: np.ndarray) -> np.ndarray:
    """32-bit keys (0 stays "no key"). Blocks are defined by these: two records
    meet in a slot exactly when their compact keys there are equal, so the
    first-shared-slot test below is exact, and rows stay small in the shuffle."""
    compact = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    compact[(compact == 0) & (keys != 0)] = 1
    return compact


def _routing_keys(blocking: Blocking, compact: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """The shuffle key: a positional slot meets only the same slot; the slots
    of an asymmetric blocking all meet its align records' slot 0."""
    group = np.empty(blocking.n_slots, dtype=np.uint64)
    start = 0
    for i, simple in enumerate(blocking.blockings()):
        stop = start + simple.n_slots
        group[start:stop] = (1 << 20) + i if simple.asymmetric else np.arange(start, stop)
        start = stop
    return (group[slots] << np.uint64(32)) | compact.astype(np.uint64)


def pair_hashes(align_ids: Any, target_ids: Any, dedupe: bool = False) -> np.ndarray:
    """uint64 hashes of (align id, target id) pairs, to count known pairs
    (in a deduplication, of unordered pairs)."""
    return _combined_hashes(record_hashes(pd.Series(align_ids)), record_hashes(pd.Series(target_ids)), dedupe)


def _combined_hashes(rid_a: np.ndarray, rid_b: np.ndarray, dedupe: bool = False) -> np.ndarray:
    if dedupe:  # a deduplication's pairs have no side: hashed in one order
        rid_a, rid_b = np.minimum(rid_a, rid_b), np.maximum(rid_a, rid_b)
    with np.errstate(over="ignore"):
        return mix64(rid_a * np.uint64(0x9E3779B97F4A7C15) ^ rid_b)


def _compact_text(values: pd.Series) -> Any:
    """Text kept as Arrow strings, not Python objects: half the memory of the
    persisted records, and cheaper to shuffle. Other values as they are."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.astype(TEXT).array
    values = values.to_numpy()
    if values.dtype != object:
        return values
    try:
        return pd.array(values, dtype=TEXT)
    except (TypeError, ValueError, pa.ArrowException):  # not all text
        return values


# The side column of the shuffled rows.
ALIGN, TARGET = 0, 1


def encode_records(part: pd.DataFrame, treatments: Sequence[Treatment], blocking: Blocking, side: str,
                   name: str) -> pd.DataFrame:
    """Normalize and encode a partition: one row per record with its id, id
    hash (``rid``), encoded values (``t{i}:…``), compact block keys (``k:{j}``)
    and blocking columns (``x:…``)."""
    ids = part.iloc[:, 0]
    columns: dict[str, Any] = {"id": _compact_text(ids), "rid": record_hashes(ids)}
    for i, t in enumerate(treatments):
        try:
            encoded = t.encode(part, side)
        except InvalidValueError as err:
            column = ", ".join(map(str, attribute_columns(part, t.side_attribute(side))))
            raise RecordError(
                f"{name}: record {plain(ids.iloc[err.row])!r}, column {column}: {err.reason}: {plain(err.value)!r}"
            ) from None
        for c in encoded.columns:
            columns[_treatment_prefix(i) + str(c)] = _compact_text(encoded[c])
    keys = _compact_keys(blocking.keys(part, side))
    for j in range(keys.shape[1]):
        columns[f"k:{j}"] = keys[:, j]
    for c, values in blocking.extra(part).items():
        columns[f"x:{c}"] = values.to_numpy()
    return pd.DataFrame(columns)


def _columns_with_prefix(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(prefix)]


def _strip(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return frame.rename(columns=lambda c: c[len(prefix):]).reset_index(drop=True)


def _extra(frame: pd.DataFrame) -> pd.DataFrame:
    return _strip(frame[_columns_with_prefix(frame, "x:")], "x:")


def block_rows(encoded: pd.DataFrame, blocking: Blocking, side: str) -> pd.DataFrame:
    """One narrow row per (record, block key): the routing ``key``, its
    ``slot``, the ``side``, the record's ``rid``, all its keys and blocking
    columns (what pairing and the first-shared-slot rule need; no values)."""
    key_columns = _columns_with_prefix(encoded, "k:")
    keys = encoded[key_columns].to_numpy(np.uint32)
    rows, slots = np.nonzero(keys)
    narrow = encoded[["rid"] + key_columns + _columns_with_prefix(encoded, "x:")].iloc[rows].reset_index(drop=True)
    narrow.insert(0, "side", np.int8(ALIGN if side == "align" else TARGET))
    narrow.insert(0, "slot", slots.astype(np.int16))
    narrow.insert(0, "key", _routing_keys(blocking, keys[rows, slots], slots))
    return narrow


# Blocks, and pairs near the threshold, each task keeps for the report.
REPORT_BLOCKS = 10
REPORT_PAIRS = 20
# Bins of the distance histograms: [0, 2 × threshold], the last bin taking everything above.
HISTOGRAM_BINS = 60


@dataclass
class BlockStats:
    """What one task (or, summed, the whole run) saw of its blocks and pairs."""

    blocks: int = 0
    block_pairs: int = 0
    largest_block_pairs: int = 0
    excluded_blocks: int = 0
    excluded_pairs: int = 0
    dense_blocks: int = 0
    candidate_pairs: int = 0
    links_under_threshold: int = 0
    true_pairs_kept: int = 0
    # log2 of block pairs → number of blocks
    block_size_histogram: dict[int, int] = field(default_factory=dict)
    # (pairs, align rows, target rows, slot, an align id, a target id) of the largest blocks;
    # tasks know records by id hash, the run puts the ids in
    largest_blocks: list[tuple] = field(default_factory=list)
    # distance histograms of scored candidates: "all", and "true"/"false" with a truth
    distance_histograms: dict[str, np.ndarray] = field(default_factory=dict)
    # candidates nearest the threshold, with per-treatment distances
    near_threshold: pd.DataFrame | None = None
    # (key, pairs) of the blocks set aside to be paired by several tasks
    split_blocks: list[tuple[int, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The statistics as JSON data (``near_threshold`` apart: a frame)."""
        data = {k: v for k, v in vars(self).items() if k != "near_threshold"}
        data["block_size_histogram"] = [[int(k), int(v)] for k, v in self.block_size_histogram.items()]
        data["distance_histograms"] = {k: np.asarray(v).tolist() for k, v in self.distance_histograms.items()}
        data["largest_blocks"] = [[v.item() if isinstance(v, np.generic) else v for v in b]
                                  for b in self.largest_blocks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "BlockStats":
        stats = cls(**{k: v for k, v in data.items() if k not in ("block_size_histogram", "distance_histograms",
                                                                  "largest_blocks", "split_blocks")})
        stats.block_size_histogram = {int(k): int(v) for k, v in data["block_size_histogram"]}
        stats.distance_histograms = {k: np.array(v) for k, v in data["distance_histograms"].items()}
        stats.largest_blocks = [tuple(b) for b in data["largest_blocks"]]
        stats.split_blocks = [tuple(b) for b in data["split_blocks"]]
        return stats

    def __add__(self, other: "BlockStats") -> "BlockStats":
        counts = ("blocks", "block_pairs", "excluded_blocks", "excluded_pairs", "dense_blocks", "candidate_pairs",
                  "links_under_threshold", "true_pairs_kept")
        total = BlockStats(**{k: getattr(self, k) + getattr(other, k) for k in counts})
        total.largest_block_pairs = max(self.largest_block_pairs, other.largest_block_pairs)
        total.block_size_histogram = dict(self.block_size_histogram)
        for k, v in other.block_size_histogram.items():
            total.block_size_histogram[k] = total.block_size_histogram.get(k, 0) + v
        total.largest_blocks = sorted(self.largest_blocks + other.largest_blocks, key=lambda b: (-b[0], b[3], b[4]))
        total.largest_blocks = total.largest_blocks[:REPORT_BLOCKS]
        total.split_blocks = self.split_blocks + other.split_blocks
        total.distance_histograms = {k: self.distance_histograms.get(k, 0) + other.distance_histograms.get(k, 0)
                                     for k in set(self.distance_histograms) | set(other.distance_histograms)}
        samples = [f for f in (self.near_threshold, other.near_threshold) if f is not None and len(f)]
        total.near_threshold = pd.concat(samples, ignore_index=True) if samples else None
        return total


def _block_pairs(a: pd.DataFrame, b: pd.DataFrame, blocking: Blocking) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows meeting in a block, per simple blocking of a union."""
    all_ia, all_ib = [], []
    slot_a, slot_b = a["slot"].to_numpy(), b["slot"].to_numpy()
    extra_a, extra_b = _extra(a), _extra(b)
    start = 0
    for i, simple in enumerate(blocking.blockings()):
        stop = start + simple.n_slots
        rows_a = np.flatnonzero((slot_a >= start) & (slot_a < stop))
        rows_b = np.flatnonzero((slot_b >= start) & (slot_b < stop))
        if len(rows_a) and len(rows_b):
            ia, ib = simple.candidate_pairs(
                blocking.member_extra(i, extra_a).iloc[rows_a].assign(key=a["key"].to_numpy()[rows_a]),
                blocking.member_extra(i, extra_b).iloc[rows_b].assign(key=b["key"].to_numpy()[rows_b]))
            all_ia.append(rows_a[ia])
            all_ib.append(rows_b[ib])
        start = stop
    if not all_ia:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(all_ia), np.concatenate(all_ib)


def _first_slot_pairs(a: pd.DataFrame, b: pd.DataFrame, blocking: Blocking) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of rows meeting in a block whose block is the first slot
    they share: each pair is kept in one block only, whatever the partitioning."""
    ia, ib = _block_pairs(a, b, blocking)
    key_columns = _columns_with_prefix(a, "k:")
    first = blocking.first_shared_slot(a[key_columns].to_numpy(np.uint64), b[key_columns].to_numpy(np.uint64),
                                       _extra(a), _extra(b), ia, ib)
    keep = first == b["slot"].to_numpy()[ib]
    return ia[keep], ib[keep]


def _pair_chunk(a: pd.DataFrame, rows_a: np.ndarray, b: pd.DataFrame, rows_b: np.ndarray, blocking: Blocking,
                dedupe: bool, stats: BlockStats, truth_hashes: np.ndarray | None) -> pd.DataFrame:
    """The candidate pairs ``(rid_a, rid_b)`` of the blocks on rows ``rows_a`` / ``rows_b``."""
    a, b = a.iloc[rows_a].reset_index(drop=True), b.iloc[rows_b].reset_index(drop=True)
    ia, ib = _first_slot_pairs(a, b, blocking)
    rid_a, rid_b = a["rid"].to_numpy()[ia], b["rid"].to_numpy()[ib]
    if dedupe:  # each unordered pair once, no self-pair
        keep = rid_a < rid_b
        rid_a, rid_b = rid_a[keep], rid_b[keep]
    stats.candidate_pairs += len(rid_a)
    if truth_hashes is not None:
        stats.true_pairs_kept += int(isin_sorted(_combined_hashes(rid_a, rid_b), truth_hashes).sum())
    return pd.DataFrame({"rid_a": rid_a, "rid_b": rid_b})


def _sides(blocks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    side = blocks["side"].to_numpy()
    return blocks[side == ALIGN].reset_index(drop=True), blocks[side == TARGET].reset_index(drop=True)


def candidate_pairs(blocks: pd.DataFrame, blocking: Blocking, dedupe: bool, max_block_pairs: int | None,
                    max_task_pairs: int | None = MAX_TASK_PAIRS, truth_hashes: np.ndarray | None = None,
                    dense_block_pairs: int | None = DENSE_BLOCK_PAIRS,
                    ) -> tuple[pd.DataFrame, BlockStats, tuple | None, pd.DataFrame]:
    """The candidate pairs of one shuffled partition (rows of both sides).

    Blocks are measured first; blocks over ``max_block_pairs`` are excluded
    and counted; blocks over ``max_task_pairs`` are set aside (returned as
    their rows, listed in ``stats.split_blocks``) for :func:`candidate_tile`
    tasks. The rest are paired in chunks of about ``CHUNK_PAIRS`` block pairs
    (whole blocks per chunk), so that memory stays bounded. Known pairs
    (``truth_hashes``, sorted: see :func:`pair_hashes`) among the candidates are counted.
    Blocks of ``dense_block_pairs`` pairs or more (not in a deduplication) are
    counted here but returned as their members (key, side, slot, id hash),
    to be scored as dense matrices by :func:`score_dense_blocks`.
    """
    a, b = _sides(blocks)
    stats = BlockStats()
    key_a, key_b = a["key"].to_numpy(np.uint64), b["key"].to_numpy(np.uint64)
    # One hash pass over both sides' keys: block sizes are counts of their codes.
    codes, keys = pd.factorize(np.concatenate([key_a, key_b]))
    code_a, code_b = codes[:len(a)], codes[len(a):]
    size_a = np.bincount(code_a, minlength=len(keys))
    size_b = np.bincount(code_b, minlength=len(keys))
    pairs = size_a * size_b
    shared = np.flatnonzero(pairs)  # most keys are held by one side only: a block of one record, no pair
    stats.blocks = len(shared)
    stats.block_pairs = int(pairs.sum())
    stats.largest_block_pairs = int(pairs.max()) if len(pairs) else 0
    log_sizes, counts = np.unique(np.floor(np.log2(pairs[shared])).astype(int), return_counts=True)
    stats.block_size_histogram = dict(zip(log_sizes.tolist(), counts.tolist()))
    for k in shared[np.lexsort((keys[shared], -pairs[shared]))[:REPORT_BLOCKS]]:
        row_a, row_b = np.flatnonzero(code_a == k)[0], np.flatnonzero(code_b == k)[0]
        stats.largest_blocks.append((int(pairs[k]), int(size_a[k]), int(size_b[k]), int(a["slot"].iloc[row_a]),
                                     int(a["rid"].iloc[row_a]), int(b["rid"].iloc[row_b])))
    usable = pairs > 0
    if max_block_pairs is not None:
        too_large = pairs > max_block_pairs
        stats.excluded_blocks, stats.excluded_pairs = int(too_large.sum()), int(pairs[too_large].sum())
        usable &= ~too_large
    valid_a, valid_b = usable[code_a], usable[code_b]
    keys, pairs = keys[usable], pairs[usable]
    heavy = None
    if max_task_pairs is not None and (pairs > max_task_pairs).any():
        split = pairs > max_task_pairs
        stats.split_blocks = [(int(k), int(p)) for k, p in zip(keys[split], pairs[split])]
        in_a, in_b = np.isin(key_a, keys[split]), np.isin(key_b, keys[split])
        heavy = (a[in_a].reset_index(drop=True), b[in_b].reset_index(drop=True))
        valid_a, valid_b = valid_a & ~in_a, valid_b & ~in_b
        keys, pairs = keys[~split], pairs[~split]
    members = pd.DataFrame({"key": np.empty(0, np.uint64), "side": np.empty(0, np.int8),
                            "slot": np.empty(0, np.int16), "rid": np.empty(0, np.uint64)})
    if dense_block_pairs is not None and not dedupe and (pairs >= dense_block_pairs).any():
        dense = pairs >= dense_block_pairs
        stats.dense_blocks = int(dense.sum())
        in_a, in_b = np.isin(key_a, keys[dense]), np.isin(key_b, keys[dense])
        members = pd.concat([side[["key", "side", "slot", "rid"]][rows] for side, rows in ((a, in_a), (b, in_b))],
                            ignore_index=True)
        for k in keys[dense]:  # a few large blocks: counted here, scored densely
            _pair_chunk(a, np.flatnonzero(key_a == k), b, np.flatnonzero(key_b == k), blocking, dedupe, stats,
                        truth_hashes)
        valid_a, valid_b = valid_a & ~in_a, valid_b & ~in_b
        pairs = pairs[~dense]
    n_chunks = max(1, math.ceil(int(pairs.sum()) / CHUNK_PAIRS))
    chunk_a = (key_a % np.uint64(n_chunks)).astype(np.int64)
    chunk_b = (key_b % np.uint64(n_chunks)).astype(np.int64)
    found = [_pair_chunk(a, np.flatnonzero(valid_a & (chunk_a == c)), b, np.flatnonzero(valid_b & (chunk_b == c)),
                         blocking, dedupe, stats, truth_hashes) for c in range(n_chunks)]
    return pd.concat(found, ignore_index=True), stats, heavy, members


def candidate_tile(heavy: tuple[pd.DataFrame, pd.DataFrame], key: int, tile: int, tiles: int, blocking: Blocking,
                   dedupe: bool, truth_hashes: np.ndarray | None = None) -> tuple[pd.DataFrame, BlockStats, None, None]:
    """The candidate pairs of tile ``tile`` of ``tiles`` of one large block:
    the align records whose id hash falls in the tile, against all the
    block's target records."""
    a, b = heavy
    in_tile = (a["rid"].to_numpy(np.uint64) % np.uint64(tiles)) == tile
    rows_a = np.flatnonzero((a["key"].to_numpy(np.uint64) == np.uint64(key)) & in_tile)
    rows_b = np.flatnonzero(b["key"].to_numpy(np.uint64) == np.uint64(key))
    stats = BlockStats()
    step = max(1, CHUNK_PAIRS // max(1, len(rows_b)))
    found = [_pair_chunk(a, rows_a[start:start + step], b, rows_b, blocking, dedupe, stats, truth_hashes)
             for start in range(0, max(1, len(rows_a)), step)]
    return pd.concat(found, ignore_index=True), stats, None, None


def pairs_of(result: tuple) -> pd.DataFrame:
    return result[0]


def stats_of(result: tuple) -> BlockStats:
    return result[1]


def heavy_of(result: tuple) -> tuple | None:
    return result[2]


def members_of(result: tuple) -> pd.DataFrame | None:
    return result[3]


def distance_bins(threshold: float) -> np.ndarray:
    """Edges of the distance histograms of a run."""
    top = 2 * threshold if np.isfinite(threshold) and threshold > 0 else 1.0
    return np.linspace(0.0, top, HISTOGRAM_BINS + 1)


def distance_histogram(distances: np.ndarray, threshold: float) -> np.ndarray:
    """Counts of distances over :func:`distance_bins`; the last bin takes everything above."""
    edges = distance_bins(threshold)
    clipped = np.minimum(np.asarray(distances, dtype=np.float64), edges[-1] - 1e-12 * edges[-1])
    return np.histogram(clipped, bins=edges)[0]


def _shown(row: pd.Series) -> str:
    return ", ".join("∅" if pd.isna(v) else str(v) for v in row.tolist())


def _record_for_report(stats: BlockStats, treatments: Sequence[Treatment], encoded_a: list, encoded_b: list,
                       ra: np.ndarray, rb: np.ndarray, distance: np.ndarray, threshold: float,
                       align_ids: pd.Series, target_ids: pd.Series, true: np.ndarray | None) -> None:
    groups = {"all": np.ones(len(distance), dtype=bool)}
    if true is not None:
        groups.update({"true": true, "false": ~true})
    for name, mask in groups.items():
        counts = distance_histogram(distance[mask], threshold)
        stats.distance_histograms[name] = stats.distance_histograms.get(name, 0) + counts
    if not np.isfinite(threshold):
        return
    nearest = np.argsort(np.abs(distance - threshold), kind="stable")[:REPORT_PAIRS]
    sample = {"align_id": align_ids.take(ra[nearest]).to_numpy(), "target_id": target_ids.take(rb[nearest]).to_numpy(),
              "distance": distance[nearest]}
    for i, t in enumerate(treatments):
        name = f"{i}: {t}"
        a, b = encoded_a[i].iloc[ra[nearest]], encoded_b[i].iloc[rb[nearest]]
        sample[f"{name} distance"] = t.cpdist(a.reset_index(drop=True), b.reset_index(drop=True))
        sample[f"{name} values"] = [f"{_shown(x)} | {_shown(y)}" for (_, x), (_, y) in zip(a.iterrows(), b.iterrows())]
    frame = pd.DataFrame(sample)
    stats.near_threshold = frame if stats.near_threshold is None else pd.concat([stats.near_threshold, frame])


def _distinct(frame: pd.DataFrame, side: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct records of one side of joined pairs (``{side}:`` columns),
    and each pair's record: values are tokenized, parsed... once per record."""
    codes, uniques = pd.factorize(frame[f"rid_{side}"].to_numpy())
    first = np.full(len(uniques), len(frame), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(frame)))
    return _strip(frame[_columns_with_prefix(frame, f"{side}:")].iloc[first], f"{side}:"), codes


def _treatment_values(records: pd.DataFrame, treatments: Sequence[Treatment]) -> list[pd.DataFrame]:
    """Each treatment's encoded values of ``records`` (their ``t{i}:`` columns)."""
    return [_strip(records[_columns_with_prefix(records, _treatment_prefix(i))], _treatment_prefix(i))
            for i in range(len(treatments))]


def _scored(stats: BlockStats, treatments: Sequence[Treatment], records_a: pd.DataFrame, records_b: pd.DataFrame,
            encoded_a: list, encoded_b: list, ra: np.ndarray, rb: np.ndarray, distance: np.ndarray,
            threshold: float, uniq: bool, truth_hashes: np.ndarray | None, dedupe: bool = False) -> pd.DataFrame:
    """Pairs ``(ra, rb)`` with their distances, counted and sampled for the
    report: all of them with ``uniq`` (reduced later), else those under the threshold."""
    # Series, not arrays: ids keep their (Arrow) dtype, which later sorts fast.
    align_ids, target_ids = records_a["id"].reset_index(drop=True), records_b["id"].reset_index(drop=True)
    true = None
    if truth_hashes is not None:
        true = isin_sorted(_combined_hashes(records_a["rid"].to_numpy()[ra], records_b["rid"].to_numpy()[rb],
                                            dedupe), truth_hashes)
    under = distance <= threshold
    stats.links_under_threshold += int(under.sum())
    _record_for_report(stats, treatments, encoded_a, encoded_b, ra, rb, distance, threshold,
                       align_ids, target_ids, true)
    keep = slice(None) if uniq else under
    return pd.DataFrame({"align_id": align_ids.take(ra[keep]).reset_index(drop=True),
                         "target_id": target_ids.take(rb[keep]).reset_index(drop=True),
                         "distance": distance[keep]})


def score_pairs(joined: pd.DataFrame, treatments: Sequence[Treatment], threshold: float, uniq: bool,
                dedupe: bool, truth_hashes: np.ndarray | None = None) -> tuple[pd.DataFrame, BlockStats]:
    """The global distance of candidate pairs joined with both records'
    encoded values (``a:…``, ``b:…``).

    Returns the pairs under the threshold; with ``uniq``, the best pair of
    each align record, linked or not (its best rejected candidate is shown in
    the report; the threshold is applied after the last reduce).
    """
    stats = BlockStats()
    records_a, ra = _distinct(joined, "a")
    records_b, rb = _distinct(joined, "b")
    if dedupe:  # a pair is reported as (smaller id, larger id); the sets are one
        records = pd.concat([records_a, records_b], ignore_index=True)
        ra, rb = ra.copy(), rb + len(records_a)
        swap = records["id"].to_numpy()[ra] > records["id"].to_numpy()[rb]
        ra[swap], rb[swap] = rb[swap], ra[swap]
        records_a = records_b = records
    if not len(joined):
        return pd.DataFrame({"align_id": records_a["id"].iloc[:0], "target_id": records_b["id"].iloc[:0],
                             "distance": np.empty(0, np.float64)}), stats
    encoded_a, encoded_b = _treatment_values(records_a, treatments), _treatment_values(records_b, treatments)
    distance = global_pair_distances(treatments, encoded_a, encoded_b, ra, rb)
    links = _scored(stats, treatments, records_a, records_b, encoded_a, encoded_b, ra, rb, distance, threshold,
                    uniq, truth_hashes, dedupe)
    return (best_match_per_item(links) if uniq else links), stats


def score_dense_blocks(members: pd.DataFrame, treatments: Sequence[Treatment], blocking: Blocking,
                       threshold: float, uniq: bool,
                       truth_hashes: np.ndarray | None = None) -> tuple[pd.DataFrame, BlockStats]:
    """Score whole large blocks (their members joined with the encoded
    records, shuffled on the block) with the dense global alignment matrix,
    keeping the pairs whose first shared slot is the block's: the same pairs
    and distances as the pair path, bit for bit."""
    stats = BlockStats()
    found = []
    for _, rows in members.groupby("key", sort=True):  # a few large blocks
        a, b = _sides(rows)
        ia, ib = _first_slot_pairs(a, b, blocking)
        encoded_a, encoded_b = _treatment_values(a, treatments), _treatment_values(b, treatments)
        distance = global_alignment_matrix(treatments, encoded_a, encoded_b)[ia, ib]
        found.append(_scored(stats, treatments, a, b, encoded_a, encoded_b, ia, ib, distance, threshold, uniq,
                             truth_hashes))
    if not found:
        return pd.DataFrame({"align_id": members["id"].iloc[:0], "target_id": members["id"].iloc[:0],
                             "distance": np.empty(0, np.float64)}), stats
    links = pd.concat(found, ignore_index=True)
    return (best_match_per_item(links) if uniq else links), stats


def links_of(result: tuple) -> pd.DataFrame:
    return result[0]


def best_match(links: pd.DataFrame) -> pd.DataFrame:
    """The reduce: best target per align id of a partition shuffled on align id."""
    return best_match_per_item(links)


@dataclass
class AlignmentRun:
    """Links of a run and what was seen on the way."""

    links: pd.DataFrame
    stats: BlockStats
    seconds: dict[str, float] = field(default_factory=dict)
    shuffle_partitions: int = 0
    # with uniq: the distance of each align record's best candidate when over the threshold
    best_rejected: np.ndarray | None = None


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
    encoded_b = encoded(target_dd, "target", "alignset" if dedupe else "targetset")
    return tuple(client.persist([encoded_a, encoded_b]))


def _shuffled_blocks(client: Any, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame, blocking: Blocking,
                     shuffle_partitions: int | None, records: int) -> tuple[dd.DataFrame, int]:
    """Narrow rows of both sets, shuffled so that each partition holds whole
    blocks of both (same key → same partition). One shuffle of both sides: a
    block's rows end on one worker, with nothing to transfer before pairing."""

    def narrow(encoded: dd.DataFrame, side: str) -> dd.DataFrame:
        return encoded.map_partitions(block_rows, blocking, side, meta=block_rows(encoded._meta, blocking, side))

    if shuffle_partitions is None:
        # Enough partitions to keep every worker thread busy, none too large.
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or 1
        shuffle_partitions = max(2 * threads, math.ceil(records * blocking.n_slots / BLOCK_ROWS_PER_PARTITION))
    both = dd.concat([narrow(encoded_a, "align"), narrow(encoded_b, "target")])
    return both.shuffle(on="key", npartitions=shuffle_partitions), shuffle_partitions


def _values(encoded: dd.DataFrame, side: str) -> dd.DataFrame:
    """The id, id hash and encoded values of a set, named for one side of a pair."""
    columns = [c for c in encoded.columns if not c.startswith(("k:", "x:"))]
    return encoded[columns].rename(columns={c: f"{side}:{c}" for c in columns})


def _joined_pairs(pairs: dd.DataFrame, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame,
                  npartitions: int) -> dd.DataFrame:
    """Candidate pairs with both records' encoded values: two hash joins on
    the id hashes, so a record's values travel once per pair it has. The
    join on the align side comes last: all the pairs of an align record end
    in one partition, where its best match can be chosen for good."""
    with_b = pairs.merge(_values(encoded_b, "b"), left_on="rid_b", right_on="b:rid", how="inner",
                         npartitions=npartitions, broadcast=False)
    return with_b.merge(_values(encoded_a, "a"), left_on="rid_a", right_on="a:rid", how="inner",
                        npartitions=npartitions, broadcast=False)


def _dense_members(members: dd.DataFrame, encoded_a: dd.DataFrame, encoded_b: dd.DataFrame,
                   npartitions: int) -> dd.DataFrame:
    """The members of dense blocks with their encoded records, shuffled so that each block is in one partition."""
    sides = [members[members["side"] == side].merge(encoded, on="rid", how="inner")
             for side, encoded in ((ALIGN, encoded_a), (TARGET, encoded_b))]
    return dd.concat(sides).shuffle(on="key", npartitions=npartitions)


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


def write_parquet_part(part: pd.DataFrame, path: str) -> None:
    """Write one partition; the name is final only once it is complete."""
    part.to_parquet(path + ".part", index=False)
    os.replace(path + ".part", path)


class Checkpoint:
    """The candidate pairs of a run and both encoded sets, written as Parquet
    with the blocking's statistics, valid for one fingerprint of the job and
    its inputs; a ``checkpoint.json`` manifest marks them complete."""

    parts = ("pairs", "members", "encoded-a", "encoded-b")

    def __init__(self, directory: str, fingerprint: str):
        self.directory, self.fingerprint = directory, fingerprint
        self.manifest = os.path.join(directory, "checkpoint.json")
        # Data only (JSON and Parquet), never pickles: a run directory is shared storage.
        self._stats = os.path.join(directory, "blocking-stats.json")
        self._near = os.path.join(directory, "near-threshold.parquet")

    def has_candidates(self) -> bool:
        try:
            with open(self.manifest) as f:
                return json.load(f).get("fingerprint") == self.fingerprint
        except (FileNotFoundError, json.JSONDecodeError):
            return False

    def write(self, client: Any, frames: dict[str, list], stats: BlockStats, show_progress: bool) -> None:
        if os.path.exists(self.manifest):
            os.remove(self.manifest)
        writes = []
        for name, parts in frames.items():
            directory = os.path.join(self.directory, name)
            if os.path.exists(directory):
                shutil.rmtree(directory)
            os.makedirs(directory)
            write = dask.delayed(write_parquet_part, pure=True)
            writes += [write(part, os.path.join(directory, f"part-{i:06d}.parquet")) for i, part in enumerate(parts)]
        writes = client.compute(writes)
        if show_progress:
            progress(writes)
            print(file=sys.stderr)
        client.gather(writes)
        if stats.near_threshold is not None:
            write_parquet_part(stats.near_threshold, self._near)
        elif os.path.exists(self._near):
            os.remove(self._near)
        with open(self._stats + ".part", "w") as f:
            json.dump(stats.as_json(), f)
        os.replace(self._stats + ".part", self._stats)
        with open(self.manifest + ".part", "w") as f:
            json.dump({"fingerprint": self.fingerprint}, f)
        os.replace(self.manifest + ".part", self.manifest)

    def read(self) -> tuple[dd.DataFrame, dd.DataFrame, dd.DataFrame, dd.DataFrame, BlockStats]:
        frames = [dd.read_parquet(os.path.join(self.directory, name)) for name in self.parts]
        with open(self._stats) as f:
            stats = BlockStats.from_json(json.load(f))
        if os.path.exists(self._near):
            stats.near_threshold = pd.read_parquet(self._near)
        return frames[0], frames[1], frames[2], frames[3], stats


def _compute_candidates(client: Any, block_parts: list, blocking: Blocking, dedupe: bool,
                        max_block_pairs: int | None, max_task_pairs: int, truth_hashes: Any,
                        dense_block_pairs: int | None, show_progress: bool) -> tuple[list, list, BlockStats]:
    """Candidate pairs (and members of dense blocks) of every shuffled
    partition, then the pairs of the tiles of the largest blocks."""
    futures = client.compute([dask.delayed(candidate_pairs, pure=True)(part, blocking, dedupe, max_block_pairs,
                                                                       max_task_pairs, truth_hashes, dense_block_pairs)
                              for part in block_parts])
    if show_progress:
        progress(futures)
        print(file=sys.stderr)
    partition_stats = client.gather(client.map(stats_of, futures))
    pairs = client.map(pairs_of, futures)
    members = client.map(members_of, futures)
    tiles = []
    for future, own in zip(futures, partition_stats):
        if own.split_blocks:  # large blocks: several tasks each
            heavy = client.submit(heavy_of, future)
            for key, n_pairs in own.split_blocks:
                n_tiles = math.ceil(n_pairs / max_task_pairs)
                tiles += [client.submit(candidate_tile, heavy, key, t, n_tiles, blocking, dedupe, truth_hashes)
                          for t in range(n_tiles)]
    if tiles:
        if show_progress:
            progress(tiles)
            print(file=sys.stderr)
        partition_stats += client.gather(client.map(stats_of, tiles))
        pairs += client.map(pairs_of, tiles)
    return pairs, members, sum(partition_stats, BlockStats())


def run_alignment(client: Any, align_dd: dd.DataFrame, target_dd: dd.DataFrame, treatments: Sequence[Treatment],
                  threshold: float, blocking: Blocking, uniq: bool = True, dedupe: bool = False,
                  max_block_pairs: int | None = None, max_task_pairs: int | None = MAX_TASK_PAIRS,
                  shuffle_partitions: int | None = None,
                  show_progress: bool = False, score: bool = True,
                  truth_hashes: np.ndarray | None = None, checkpoint: "Checkpoint | None" = None,
                  dense_block_pairs: int | None = DENSE_BLOCK_PAIRS) -> AlignmentRun:
    """Build and run the graph on ``client``; return the links (sorted) and stats.

    ``score=False`` is a plan: the blocking alone, candidates counted (and
    known pairs among them, with ``truth_hashes``), nothing scored. With a
    ``checkpoint``, the candidate pairs and encoded sets are written there
    before they are scored, or read from there when a previous run wrote them.
    Blocks of at least ``dense_block_pairs`` pairs are scored as dense matrices
    (``None``: every block by pairs); the links are the same either way.
    """
    seconds: dict[str, float] = {}
    if truth_hashes is not None:
        truth_hashes = np.sort(np.asarray(truth_hashes, dtype=np.uint64))  # searched, not hashed, by the tasks
        [truth_hashes] = client.scatter([truth_hashes], broadcast=True, hash=False)  # a key of this run only
    n = shuffle_partitions or 0
    if checkpoint is not None and checkpoint.has_candidates():
        logger.info("resuming from the checkpoint in %s (candidate pairs already computed)", checkpoint.directory)
        pairs_dd, members_dd, encoded_a, encoded_b, stats = checkpoint.read()
    else:
        clock = time.perf_counter()
        blocking.fit(align_dd, target_dd)
        seconds["fit"] = time.perf_counter() - clock
        clock = time.perf_counter()
        # Counted before encoding (Parquet metadata gives it), so that the shuffle starts
        # as the first partitions are encoded; on this client, not the default one.
        records = client.compute(align_dd.shape[0] + target_dd.shape[0]).result()
        encoded_a, encoded_b = _encoded_sets(client, align_dd, target_dd, treatments, blocking, dedupe)
        blocks, n = _shuffled_blocks(client, encoded_a, encoded_b, blocking, shuffle_partitions, records)
        pairs, members, stats = _compute_candidates(client, blocks.to_delayed(), blocking, dedupe, max_block_pairs,
                                                    max_task_pairs or MAX_TASK_PAIRS, truth_hashes,
                                                    dense_block_pairs, show_progress)
        _with_ids(client, stats, encoded_a, encoded_b)
        seconds["candidates"] = time.perf_counter() - clock
        if not score:
            return AlignmentRun(pd.DataFrame(columns=["align_id", "target_id", "distance"]), stats, seconds, n)
        meta = pd.DataFrame({"rid_a": np.empty(0, np.uint64), "rid_b": np.empty(0, np.uint64)})
        pairs_dd = dd.from_delayed(pairs, meta=meta, verify_meta=False)
        members_dd = dd.from_delayed(members, meta=client.gather(members[0]).iloc[:0], verify_meta=False)
        if checkpoint is not None:
            clock = time.perf_counter()
            checkpoint.write(client, {"pairs": pairs, "members": members, "encoded-a": encoded_a.to_delayed(),
                                      "encoded-b": encoded_b.to_delayed()}, stats, show_progress)
            seconds["checkpoint"] = time.perf_counter() - clock
    clock = time.perf_counter()
    threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or 1
    npartitions = max(2 * threads, math.ceil(stats.candidate_pairs / SCORE_PAIRS_PER_PARTITION))
    joined = _joined_pairs(pairs_dd, encoded_a, encoded_b, npartitions)
    futures = client.compute([dask.delayed(score_pairs, pure=True)(part, treatments, threshold, uniq, dedupe,
                                                                   truth_hashes)
                              for part in joined.to_delayed()])
    if stats.dense_blocks:
        futures += client.compute([
            dask.delayed(score_dense_blocks, pure=True)(part, treatments, blocking, threshold, uniq, truth_hashes)
            for part in _dense_members(members_dd, encoded_a, encoded_b, 2 * threads).to_delayed()])
    if show_progress:
        progress(futures)
        print(file=sys.stderr)
    stats = stats + sum(client.gather(client.map(stats_of, futures)), BlockStats())
    parts = client.map(links_of, futures)
    seconds["score"] = time.perf_counter() - clock
    clock = time.perf_counter()
    # Pairs scored by pairs are partitioned on the align record (see _joined_pairs): the best
    # of each partition are final, unless dense blocks or a deduplication's orientation mix them.
    if uniq and len(parts) > 1 and (stats.dense_blocks or dedupe):
        # Shuffle the pre-reduced links on the align id, then keep the best per item.
        meta = client.gather(parts[0]).iloc[:0]
        links_dd = dd.from_delayed(parts, meta=meta, verify_meta=False)
        reduced = links_dd.shuffle(on="align_id", npartitions=min(len(parts), 2 * threads)).map_partitions(
            best_match, meta=meta)
        links = client.compute(reduced).result()
    else:
        links = pd.concat(client.gather(parts), ignore_index=True)
    del futures, parts
    seconds["best_match"] = time.perf_counter() - clock
    # (The best per item again: a no-op after the reduces above, and what keeps
    # the links right whatever partitioning a join strategy produced.)
    links = best_match_per_item(links) if uniq else sort_links(links)
    best_rejected = None
    if uniq:
        linked = links["distance"].to_numpy() <= threshold
        best_rejected = links["distance"].to_numpy()[~linked]
        links = links[linked].reset_index(drop=True)
    return AlignmentRun(links, stats, seconds, n, best_rejected)


def align_distributed(alignset: Any, targetset: Any, treatments: Sequence[Treatment], threshold: float, *,
                      uniq: bool, blocking: Blocking | None, id_column: Hashable | None, one_to_one: bool,
                      client: Any, npartitions: int | None, dedupe: bool,
                      max_block_pairs: int | None = None, max_task_pairs: int | None = None) -> pd.DataFrame:
    """:func:`bigalign.align` on Dask; see its documentation."""
    if blocking is None:
        raise ValueError("aligning dask DataFrames needs a blocking")
    a = to_dask(alignset, id_column, "alignset", npartitions)
    b = a if dedupe else to_dask(targetset, id_column, "targetset", npartitions)
    with connect(client) as active:
        run = run_alignment(active, a, b, treatments, threshold, blocking, uniq=uniq or one_to_one, dedupe=dedupe,
                            max_block_pairs=max_block_pairs, max_task_pairs=max_task_pairs or MAX_TASK_PAIRS)
    return one_to_one_links(run.links) if one_to_one else run.links
