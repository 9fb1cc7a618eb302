"""What crosses the stages: the columns of the frames tasks exchange, and what tasks return.

An *encoded* record (one row per record, :func:`~bigalign.pipeline.encode.encode_records`)
holds its ``id``, the hash of its id ``rid`` (how records are known between
stages), each treatment's encoded values under ``t{i}:``, its compact block
keys under ``k:`` and the columns its blocking needs under ``x:``. A joined
candidate pair holds both records' values under ``a:`` and ``b:``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..blocking.base import mix64
from ..records import record_hashes

__all__ = ["ALIGN", "ALIGN_SIDE", "EXTRA_PREFIX", "KEY_PREFIX", "SET", "SET_COLUMN", "TARGET", "TARGET_SIDE",
           "CandidateResult", "ScoredLinks", "columns_with_prefix", "combined_hashes", "extra_columns", "pair_hashes",
           "part_of", "record_keys", "sides", "strip_prefix", "treatment_prefix", "treatment_value",
           "treatment_values"]

KEY_PREFIX = "k:"  # a record's compact block key in each slot
EXTRA_PREFIX = "x:"  # the columns its blocking reads again when pairing
ALIGN_SIDE, TARGET_SIDE = "a", "b"  # a joined pair's two records: "a:…", "b:…"


# The side column of the shuffled rows.
ALIGN, TARGET = 0, 1


def treatment_prefix(i: int) -> str:
    return f"t{i}:"


def columns_with_prefix(frame: pd.DataFrame, prefix: str) -> list[str]:
    return [c for c in frame.columns if isinstance(c, str) and c.startswith(prefix)]


def column_matrix(frame: pd.DataFrame, columns: list[str], dtype: Any) -> np.ndarray:
    """``frame[columns].to_numpy(dtype)``, column by column (a selection by a list costs ~0.5 ms whatever the
    rows: what the lookup of one record pays)."""
    if not columns:
        return np.empty((len(frame), 0), dtype=dtype)
    return np.column_stack([frame[c].to_numpy(dtype) for c in columns])


def strip_prefix(frame: pd.DataFrame, prefix: str, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The columns of ``frame`` named with ``prefix``, without it (of ``rows`` only, if given), on a new
    range index."""
    # (built from the columns' arrays, not by selecting, renaming and re-indexing a frame: a fifth of the
    # time, which a lookup of one record pays a dozen times)
    columns = {c[len(prefix):]: frame[c].array for c in columns_with_prefix(frame, prefix)}
    if rows is not None:
        columns = {c: values.take(rows) for c, values in columns.items()}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame) if rows is None else len(rows)))


def extra_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return strip_prefix(frame, EXTRA_PREFIX)


def sides(blocks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    side = blocks["side"].to_numpy()
    return blocks[side == ALIGN].reset_index(drop=True), blocks[side == TARGET].reset_index(drop=True)


# The records of a job with several sets carry their set's index in this column (``_set`` as read).
SET = "set"
SET_COLUMN = "_set"


def record_keys(ids: Any, sets: Any = None) -> np.ndarray:
    """A record's identity between stages (``rid``): its id's hash, mixed
    with its set's index after the first set (``sets``: one index, or one
    per record), so that equal ids of two sets are two records."""
    hashes = record_hashes(pd.Series(ids) if not isinstance(ids, pd.Series) else ids)
    if sets is None:
        return hashes
    sets = np.broadcast_to(np.asarray(sets, dtype=np.uint64), hashes.shape)
    return np.where(sets == 0, hashes, pd.util.hash_array(hashes ^ sets))


def pair_hashes(align_ids: Any, target_ids: Any, dedupe: bool = False) -> np.ndarray:
    """uint64 hashes of (align id, target id) pairs, to count known pairs
    (in a deduplication, of unordered pairs)."""
    return combined_hashes(record_hashes(pd.Series(align_ids)), record_hashes(pd.Series(target_ids)), dedupe)


def combined_hashes(rid_a: np.ndarray, rid_b: np.ndarray, dedupe: bool = False) -> np.ndarray:
    if dedupe:  # a deduplication's pairs have no side: hashed in one order
        rid_a, rid_b = np.minimum(rid_a, rid_b), np.maximum(rid_a, rid_b)
    with np.errstate(over="ignore"):
        return mix64(rid_a * np.uint64(0x9E3779B97F4A7C15) ^ rid_b)


class CandidateResult(NamedTuple):
    """What a pairing task returns."""

    pairs: pd.DataFrame  # candidate pairs (rid_a, rid_b)
    stats: Any  # BlockStats
    heavy: tuple[pd.DataFrame, pd.DataFrame] | None  # rows of blocks too large for one task
    members: pd.DataFrame | None  # members of blocks to score as dense matrices


class ScoredLinks(NamedTuple):
    """What a scoring task returns."""

    links: pd.DataFrame
    stats: Any  # BlockStats


def part_of(result: tuple, part: str) -> Any:
    """One part of a task's result, as a task of its own (the rest stays on the worker)."""
    return getattr(result, part)


def treatment_values(records: pd.DataFrame, treatments: Sequence[Any]) -> list[pd.DataFrame]:
    """Each treatment's encoded values of ``records`` (their ``t{i}:`` columns)."""
    return [treatment_value(records, i) for i in range(len(treatments))]


def treatment_value(records: pd.DataFrame, i: int) -> pd.DataFrame:
    """Treatment ``i``'s encoded values of ``records`` (their ``t{i}:`` columns)."""
    return strip_prefix(records, treatment_prefix(i))
