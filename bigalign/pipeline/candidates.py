"""Candidate pairs: each shuffled partition's whole blocks paired, each pair in the first slot both records share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..blocking.base import Blocking
from ..errors import JobError
from ..evaluate import LINK_AND_DEDUPE, LINK_ONLY, isin_sorted
from .schema import (
    KEY_PREFIX,
    SET,
    CandidateResult,
    column_matrix,
    columns_with_prefix,
    combined_hashes,
    extra_columns,
    sides,
)
from .stats import REPORT_BLOCKS, BlockStats

__all__ = ["CHUNK_PAIRS", "DENSE_BLOCK_PAIRS", "LARGEST_BLOCK_PAIRS", "MAX_TASK_PAIRS", "candidate_pairs",
           "candidate_tile", "first_slot_pairs", "paired_sides"]


# Block pairs generated at once inside a task: bounds a task's memory.
CHUNK_PAIRS = 2_000_000


# A block with more pairs than this is paired by several tasks.
MAX_TASK_PAIRS = 5_000_000


# Without ``max_block_pairs``, a block of more pairs than this stops the run before any pair is formed (a key
# that most records share: 10k records alike on both sides make 100M pairs, 6 GB and more). With it, blocks
# over it are left out and counted, and a larger value pairs larger blocks, tiled.
LARGEST_BLOCK_PAIRS = 20_000_000


# A block with at least this many pairs (and at most MAX_TASK_PAIRS) is scored as one
# dense matrix (rapidfuzz's cdist runs 10-30 times faster than its pair form).
DENSE_BLOCK_PAIRS = 10_000


def _block_pairs(a: pd.DataFrame, b: pd.DataFrame, extra_a: pd.DataFrame, extra_b: pd.DataFrame,
                 blocking: Blocking) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows meeting in a block, per simple blocking of a union."""
    all_ia, all_ib = [], []
    slot_a, slot_b = a["slot"].to_numpy(), b["slot"].to_numpy()
    key_a, key_b = a["key"].to_numpy(), b["key"].to_numpy()
    start = 0
    for i, simple in enumerate(blocking.blockings()):
        stop = start + simple.n_slots
        rows_a = np.flatnonzero((slot_a >= start) & (slot_a < stop))
        rows_b = np.flatnonzero((slot_b >= start) & (slot_b < stop))
        if len(rows_a) and len(rows_b):
            own_a, own_b = blocking.member_extra(i, extra_a), blocking.member_extra(i, extra_b)
            if len(own_a.columns):  # (a key alone has none: no frame to cut, a lookup's most frequent case)
                own_a, own_b = own_a.iloc[rows_a], own_b.iloc[rows_b]
            ia, ib = simple.candidate_pairs(key_a[rows_a], key_b[rows_b], own_a, own_b)
            all_ia.append(rows_a[ia])
            all_ib.append(rows_b[ib])
        start = stop
    if not all_ia:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(all_ia), np.concatenate(all_ib)


def first_slot_pairs(a: pd.DataFrame, b: pd.DataFrame, blocking: Blocking,
                     dedupe: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of rows meeting in a block whose block is the first slot
    they share: each pair is kept in one block only, whatever the partitioning.
    In a deduplication (``a`` and ``b`` one set), each unordered pair once
    (smaller id hash first), no record with itself."""
    extra_a, extra_b = extra_columns(a), extra_columns(b)
    ia, ib = _block_pairs(a, b, extra_a, extra_b, blocking)
    if dedupe:  # (before the slots are compared: a block of k records gives k² pairs, k(k-1)/2 of them wanted)
        ordered = a["rid"].to_numpy()[ia] < b["rid"].to_numpy()[ib]
        ia, ib = ia[ordered], ib[ordered]
    key_columns = columns_with_prefix(a, KEY_PREFIX)
    first = blocking.first_shared_slot(column_matrix(a, key_columns, np.uint64),
                                       column_matrix(b, key_columns, np.uint64), extra_a, extra_b, ia, ib)
    keep = first == b["slot"].to_numpy()[ib]
    return ia[keep], ib[keep]


def _rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame``'s rows ``rows`` on a new range index; ``frame`` itself when they are all its rows, in order (one
    chunk of a small partition, or of a lookup: no copy)."""
    whole = len(rows) == len(frame) and isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 \
        and frame.index.step == 1 and (not len(rows) or (rows[0] == 0 and (np.diff(rows) == 1).all()))
    return frame if whole else frame.iloc[rows].reset_index(drop=True)


def _pair_chunk(a: pd.DataFrame, rows_a: np.ndarray, b: pd.DataFrame, rows_b: np.ndarray, blocking: Blocking,
                dedupe: bool, stats: BlockStats, truth_hashes: np.ndarray | None,
                rules: bool = False, link_type: str = LINK_AND_DEDUPE) -> pd.DataFrame:
    """The candidate pairs ``(rid_a, rid_b)`` of the blocks on rows ``rows_a`` / ``rows_b``,
    with ``rules`` the members of a union that put each in a block (a bit each: what a learned
    model trains on, rule by rule); records of several sets paired as ``link_type`` says."""
    a, b = _rows(a, rows_a), _rows(b, rows_b)
    ia, ib = first_slot_pairs(a, b, blocking, dedupe)
    if dedupe and link_type != LINK_AND_DEDUPE:  # several sets: across them only, or within each only
        across = a[SET].to_numpy()[ia] != b[SET].to_numpy()[ib]
        keep = across if link_type == LINK_ONLY else ~across
        ia, ib = ia[keep], ib[keep]
    rid_a, rid_b = a["rid"].to_numpy()[ia], b["rid"].to_numpy()[ib]
    found = {}
    if rules:
        key_columns = columns_with_prefix(a, KEY_PREFIX)
        found["rules"] = blocking.shared_members(column_matrix(a, key_columns, np.uint64),
                                                 column_matrix(b, key_columns, np.uint64), extra_columns(a),
                                                 extra_columns(b), ia, ib)
    stats.candidate_pairs += len(rid_a)
    if truth_hashes is not None:
        stats.true_pairs_kept += int(isin_sorted(combined_hashes(rid_a, rid_b), truth_hashes).sum())
    return pd.DataFrame({"rid_a": rid_a, "rid_b": rid_b, **found})


def candidate_pairs(blocks: pd.DataFrame, blocking: Blocking, dedupe: bool, max_block_pairs: int | None,
                    max_task_pairs: int | None = MAX_TASK_PAIRS, truth_hashes: np.ndarray | None = None,
                    dense_block_pairs: int | None = DENSE_BLOCK_PAIRS, rules: bool = False,
                    link_type: str = LINK_AND_DEDUPE) -> CandidateResult:
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
    return paired_sides(*sides(blocks), blocking, dedupe, max_block_pairs, max_task_pairs, truth_hashes,
                        dense_block_pairs, rules, link_type)


def paired_sides(a: pd.DataFrame, b: pd.DataFrame, blocking: Blocking, dedupe: bool, max_block_pairs: int | None,
                 max_task_pairs: int | None = MAX_TASK_PAIRS, truth_hashes: np.ndarray | None = None,
                 dense_block_pairs: int | None = DENSE_BLOCK_PAIRS, rules: bool = False,
                 link_type: str = LINK_AND_DEDUPE) -> CandidateResult:
    """:func:`candidate_pairs` of the rows of each side apart (``b`` empty: a deduplication's one set), as a
    lookup in an index has them (two frames, not one to split)."""
    itself = dedupe and not len(b)
    if itself:  # a deduplication's set shuffled once: its blocks paired with themselves
        b = a
    stats = BlockStats()
    key_a, key_b = a["key"].to_numpy(np.uint64), b["key"].to_numpy(np.uint64)
    # One hash pass over both sides' keys (a deduplication's one side): block sizes are counts of their codes.
    codes, keys = pd.factorize(key_a if itself else np.concatenate([key_a, key_b]))
    code_a = codes[:len(a)]
    code_b = code_a if itself else codes[len(a):]
    size_a = np.bincount(code_a, minlength=len(keys))
    size_b = np.bincount(code_b, minlength=len(keys))
    # a block of k records of one set holds k(k-1)/2 pairs (a record alone, none)
    pairs = size_a * (size_a - 1) // 2 if itself else size_a * size_b
    shared = np.flatnonzero(pairs)  # most keys are held by one side only: a block of one record, no pair
    stats.blocks = len(shared)
    stats.block_pairs = int(pairs.sum())
    stats.largest_block_pairs = int(pairs.max()) if len(pairs) else 0
    log_sizes, counts = np.unique(np.floor(np.log2(pairs[shared])).astype(int), return_counts=True)
    stats.block_size_histogram = dict(zip(log_sizes.tolist(), counts.tolist()))
    slot_a, rid_a, rid_b = a["slot"].to_numpy(), a["rid"].to_numpy(), b["rid"].to_numpy()
    for k in shared[np.lexsort((keys[shared], -pairs[shared]))[:REPORT_BLOCKS]]:
        row_a, row_b = np.flatnonzero(code_a == k)[0], np.flatnonzero(code_b == k)[0]
        stats.largest_blocks.append((int(pairs[k]), int(size_a[k]), int(size_b[k]), int(slot_a[row_a]),
                                     int(rid_a[row_a]), int(rid_b[row_b])))
    if max_block_pairs is None and len(pairs) and pairs.max() > LARGEST_BLOCK_PAIRS:
        _too_large(blocking, a, code_a, size_a, size_b, pairs, itself)
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
                         blocking, dedupe, stats, truth_hashes, rules, link_type) for c in range(n_chunks)]
    return CandidateResult(found[0] if len(found) == 1 else pd.concat(found, ignore_index=True), stats, heavy,
                           members)


def _too_large(blocking: Blocking, a: pd.DataFrame, code_a: np.ndarray, size_a: np.ndarray, size_b: np.ndarray,
               pairs: np.ndarray, itself: bool) -> None:
    """Stop: the largest block of this partition, named, is over :data:`LARGEST_BLOCK_PAIRS`."""
    k = int(np.argmax(pairs))
    slot = int(a["slot"].iloc[int(np.flatnonzero(code_a == k)[0])])
    members, start = blocking.blockings(), 0
    for i, member in enumerate(members):
        if slot < start + member.n_slots:
            break
        start += member.n_slots
    where = f"of blocking.of[{i}] ({member!r})" if len(members) > 1 else f"of the blocking ({member!r})"
    records = f"{size_a[k]:,} records" if itself else f"{size_a[k]:,} × {size_b[k]:,} records"
    raise JobError(f"one block {where} holds {records}: {pairs[k]:,} pairs, over the {LARGEST_BLOCK_PAIRS:,} a "
                   "block may hold unless max_block_pairs says otherwise (its pairs would not fit in memory); "
                   "split it with a key of more columns, or set max_block_pairs: blocks over it are then left out "
                   "and counted (a value above this block's pairs pairs it, in tiles)", field="blocking")


def candidate_tile(heavy: tuple[pd.DataFrame, pd.DataFrame], key: int, tile: int, tiles: int, blocking: Blocking,
                   dedupe: bool, truth_hashes: np.ndarray | None = None, rules: bool = False,
                   link_type: str = LINK_AND_DEDUPE) -> CandidateResult:
    """The candidate pairs of tile ``tile`` of ``tiles`` of one large block:
    the align records whose id hash falls in the tile, against all the
    block's target records."""
    a, b = heavy
    in_tile = (a["rid"].to_numpy(np.uint64) % np.uint64(tiles)) == tile
    rows_a = np.flatnonzero((a["key"].to_numpy(np.uint64) == np.uint64(key)) & in_tile)
    rows_b = np.flatnonzero(b["key"].to_numpy(np.uint64) == np.uint64(key))
    stats = BlockStats()
    step = max(1, CHUNK_PAIRS // max(1, len(rows_b)))
    found = [_pair_chunk(a, rows_a[start:start + step], b, rows_b, blocking, dedupe, stats, truth_hashes, rules,
                         link_type) for start in range(0, max(1, len(rows_a)), step)]
    return CandidateResult(pd.concat(found, ignore_index=True), stats, None, None)
