"""Encode: records normalized and encoded once, with their block keys; the narrow rows of the block shuffle."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..blocking.base import Blocking, mix64
from ..blocking.cross import CrossProductBlocking
from ..errors import InvalidValueError, RecordError
from ..records import as_records, attribute_columns
from ..treatments import Treatment, plain
from ..values.columns import TEXT
from ..values.sets import is_value_sets
from .schema import (
    ALIGN,
    EXTRA_PREFIX,
    KEY_PREFIX,
    SET,
    SET_COLUMN,
    TARGET,
    column_matrix,
    columns_with_prefix,
    record_keys,
    treatment_prefix,
)

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["ROWS_PER_PARTITION", "block_rows", "encode_records", "encoded_sample", "in_share", "sample_records",
           "set_union", "to_dask"]


# Records per partition when a set is given in memory.
ROWS_PER_PARTITION = 25_000


def to_dask(records: Any, id_column: Hashable | None, name: str, npartitions: int | None = None) -> dd.DataFrame:
    """A dask DataFrame of records, identifier first."""
    import dask.dataframe as dd  # (not with the module: a batch's and a lookup's encoding need no Dask)

    if isinstance(records, dd.DataFrame):
        if id_column is not None:
            records = records[[id_column] + [c for c in records.columns if c != id_column]]
        return records
    frame = as_records(records, id_column, name)
    npartitions = npartitions or max(1, math.ceil(len(frame) / ROWS_PER_PARTITION))
    return dd.from_pandas(frame, npartitions=min(npartitions, len(frame)), sort=False)


def set_union(sets: Sequence[dd.DataFrame]) -> dd.DataFrame:
    """Several sets of records (identifier first) as one: ids as text, each
    record with its set's index (``_set``), to be aligned as one deduplicated
    set (see :func:`~bigalign.pipeline.run_alignment`'s ``link_type``)."""
    import dask.dataframe as dd

    parts = []
    for i, records in enumerate(sets):
        records = records.rename(columns={records.columns[0]: "_id"})
        parts.append(records.assign(_id=records["_id"].astype(str), **{SET_COLUMN: np.int16(i)}))
    return dd.concat(parts)


def _compact_keys(keys: np.ndarray) -> np.ndarray:
    """32-bit keys (0 stays "no key"). Blocks are defined by these: two records
    meet in a slot exactly when their compact keys there are equal, so the
    first-shared-slot test below is exact, and rows stay small in the shuffle."""
    compact = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    compact[(compact == 0) & (keys != 0)] = 1
    return compact


def _routing_keys(blocking: Blocking, compact: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """The shuffle key: a positional slot meets only the same slot (or the
    slots of its group: a slot's positions of several values); the slots of
    an asymmetric blocking all meet its align records' slot 0."""
    group = np.empty(blocking.n_slots, dtype=np.uint64)
    start = 0
    for i, simple in enumerate(blocking.blockings()):
        stop = start + simple.n_slots
        group[start:stop] = (1 << 20) + i if simple.asymmetric else start + simple.slot_groups()
        start = stop
    return (group[slots] << np.uint64(32)) | compact.astype(np.uint64)


def _compact_text(values: pd.Series) -> Any:
    """Text kept as Arrow strings, not Python objects: half the memory of the
    persisted records, and cheaper to shuffle. Other values as they are."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.astype(TEXT).array
    if is_value_sets(values):  # (Arrow lists already)
        return values.array
    values = values.to_numpy()
    if values.dtype != object:
        return values
    try:
        return pd.array(values, dtype=TEXT)
    except (TypeError, ValueError, pa.ArrowException):  # not all text
        return values


def encode_records(part: pd.DataFrame, treatments: Sequence[Treatment], blocking: Blocking, side: str,
                   name: str) -> pd.DataFrame:
    """Normalize and encode a partition: one row per record with its id, id
    hash (``rid``), encoded values (``t{i}:…``), compact block keys (``k:{j}``)
    and blocking columns (``x:…``)."""
    ids = part.iloc[:, 0]
    sets = part[SET_COLUMN].to_numpy(np.int16) if SET_COLUMN in part.columns else None
    columns: dict[str, Any] = {"id": _compact_text(ids), "rid": record_keys(ids, sets)}
    if sets is not None:
        columns[SET] = sets
    for i, t in enumerate(treatments):
        try:
            encoded = t.encode(part, side)
        except InvalidValueError as err:
            column = ", ".join(map(str, attribute_columns(part, t.side_attribute(side))))
            raise RecordError(
                f"{name}: record {plain(ids.iloc[err.row])!r}, column {column}: {err.reason}: {plain(err.value)!r}"
            ) from None
        for c in encoded.columns:
            columns[treatment_prefix(i) + str(c)] = _compact_text(encoded[c])
    keys = _compact_keys(blocking.keys(part, side))
    for j in range(keys.shape[1]):
        columns[f"{KEY_PREFIX}{j}"] = keys[:, j]
    for c, values in blocking.extra(part).items():
        columns[f"{EXTRA_PREFIX}{c}"] = values.to_numpy()
    return pd.DataFrame(columns)


def block_rows(encoded: pd.DataFrame, blocking: Blocking, side: str) -> pd.DataFrame:
    """One narrow row per (record, block key): the routing ``key``, its
    ``slot``, the ``side``, the record's ``rid``, all its keys and blocking
    columns (what pairing and the first-shared-slot rule need; no values)."""
    key_columns = columns_with_prefix(encoded, KEY_PREFIX)
    keys = column_matrix(encoded, key_columns, np.uint32)
    rows, slots = np.nonzero(keys)
    own = ["rid"] + [SET] * (SET in encoded.columns) + columns_with_prefix(encoded, EXTRA_PREFIX)
    # (one frame of the columns taken, not three joined: a lookup's record paid ~0.5 ms for the join; the keys of
    # one dtype make one block in it)
    return pd.DataFrame({"key": _routing_keys(blocking, keys[rows, slots], slots), "slot": slots.astype(np.int16),
                         "side": np.full(len(rows), ALIGN if side == "align" else TARGET, np.int8),
                         **{c: encoded[c].array.take(rows) for c in own},
                         **{c: keys[rows, j] for j, c in enumerate(key_columns)}})


def sample_records(encoded: pd.DataFrame, share: float) -> pd.DataFrame:
    """The encoded records whose id hash falls in the first ``share`` of the
    hash range: a sample that depends on the records only, not on how they
    are partitioned."""
    return encoded[in_share(encoded["rid"].to_numpy(np.uint64), share)]


def encoded_sample(part: pd.DataFrame, share: float, treatments: Sequence[Treatment], side: str,
                   name: str) -> pd.DataFrame:
    """The records of a partition as read (not encoded) that :func:`sample_records` draws from their
    encoding, encoded alone (their treatments' values, no keys): a sample without the set encoded whole."""
    sets = part[SET_COLUMN].to_numpy(np.int16) if SET_COLUMN in part.columns else None
    return encode_records(part[in_share(record_keys(part.iloc[:, 0], sets), share)], treatments,
                          CrossProductBlocking(), side, name)


def in_share(rid: np.ndarray, share: float) -> np.ndarray:
    """Whether each id hash falls in the first ``share`` of the hash range (a draw that depends on the
    records only, not on how they are partitioned)."""
    draw = mix64(rid) >> np.uint64(11)  # 53 bits: exact as a fraction
    return draw.astype(np.float64) < share * 2.0 ** 53
