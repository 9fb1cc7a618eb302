"""Value sets: several values of one attribute in a record.

Linked data binds a property several times (labels in many languages,
``skos:altLabel``, two birth dates); a record then holds a *set* of values.
A value set column is an Arrow list column (:func:`value_sets`): it keeps its
type when every record of a partition holds one value, or none, it is
written to Parquet and shuffled as it is, and flattening it is one Arrow call.

Two value sets are compared value by value (:func:`set_pairs`), and the
distances of a pair's values are reduced to one (:func:`reduce_pairs`): the
best pair (the smallest distance, as Silk does), the worst, or their mean.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .columns import TEXT

__all__ = ["AGGREGATES", "RANK_PREFIX", "as_value_sets", "flatten", "group_by_id", "grouping", "has_value_sets",
           "is_value_sets", "largest_sets", "pack", "records_of_rows", "reduce_pairs", "set_pairs", "set_type",
           "sets_as_text", "shown", "shown_tagged", "single_values", "text_as_sets", "value_rows", "value_sets"]

# How the distances of two value sets' values make the pair's distance.
AGGREGATES = ("best", "worst", "mean")

# A hidden column per column of a query's rows when ``lang`` is given: each value's language's place in
# it, which orders a record's values (see :func:`group_by_id`); dropped once records are made.
RANK_PREFIX = "_rank:"


def is_value_sets(values: Any) -> bool:
    """Whether a column (Series, array or dtype) holds value sets (an Arrow list type)."""
    dtype = getattr(values, "dtype", values)
    return isinstance(dtype, pd.ArrowDtype) and (pa.types.is_list(dtype.pyarrow_dtype)
                                                 or pa.types.is_large_list(dtype.pyarrow_dtype))


def has_value_sets(values: pd.Series | pd.DataFrame) -> bool:
    """Whether a column, or any column of a frame, holds value sets."""
    if isinstance(values, pd.DataFrame):  # (its dtypes: taking each column costs a lookup's metrics ~1 ms)
        return any(is_value_sets(dtype) for dtype in values.dtypes.tolist())
    return is_value_sets(values)


def _list_array(values: pd.Series) -> pa.Array:
    array = pa.array(values.array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def flatten(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """A value set column's values in one column (text as Arrow strings, numbers as numpy), the record each
    belongs to (ascending), and how many each record holds (a missing set: none)."""
    array = _list_array(values)
    counts = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    owners = np.repeat(np.arange(len(array)), counts)
    flat = pc.list_flatten(array)
    if pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):
        column = pd.Series(pd.array(flat.cast(pa.string()), dtype=TEXT))
    else:
        column = pd.Series(flat.to_pandas())
    return column, owners, counts


def value_sets(values: Sequence[Any] | pd.Series, owners: np.ndarray, n: int) -> pd.Series:
    """Values (their records ``owners``, ascending) as ``n`` value sets; a record without a value holds a
    missing set."""
    counts = np.bincount(owners, minlength=n) if len(owners) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    flat = values.array if isinstance(values, pd.Series) else values
    items = flat if isinstance(flat, (pa.Array, pa.ChunkedArray)) else pa.array(flat, from_pandas=True)
    if isinstance(items, pa.ChunkedArray):
        items = items.combine_chunks()
    if pa.types.is_large_string(items.type):
        items = items.cast(pa.string())
    lists = pa.ListArray.from_arrays(pa.array(offsets), items, mask=pa.array(counts == 0))
    return pd.Series(pd.arrays.ArrowExtensionArray(lists))


def value_rows(values: pd.Series | pd.DataFrame) -> tuple[pd.Series | pd.DataFrame, np.ndarray]:
    """One row per value of each record, and the record of each row (ascending).

    The values of an attribute of several columns are their combinations
    (every latitude with every longitude a record holds); a record without a
    value in a column keeps one row, missing there.
    """
    frame = values.to_frame() if isinstance(values, pd.Series) else values
    owners = np.arange(len(frame))
    columns: dict[Any, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if is_value_sets(column):
            flat, _, counts = flatten(column)
            starts = np.cumsum(counts) - counts
        else:
            flat, counts, starts = column.reset_index(drop=True), np.ones(len(frame), np.int64), np.arange(len(frame))
        own = counts[owners]
        rows = np.maximum(own, 1)
        repeated = np.repeat(np.arange(len(owners)), rows)
        rank = np.arange(len(repeated)) - np.repeat(np.cumsum(rows) - rows, rows)
        owners = owners[repeated]
        columns = {c: v.take(repeated).reset_index(drop=True) for c, v in columns.items()}
        at = np.where(own[repeated] > 0, starts[owners] + rank, -1)
        columns[name] = pd.Series(flat.array.take(at, allow_fill=True))
    rows_frame = pd.DataFrame(columns)
    if isinstance(values, pd.Series):
        return rows_frame.iloc[:, 0].rename(values.name), owners
    return rows_frame, owners


def pack(encoded: pd.DataFrame, owners: np.ndarray, n: int, missing: np.ndarray) -> pd.DataFrame:
    """A metric's encoded values (a row per value) as ``n`` records' value sets, the ``missing`` values left
    out."""
    keep = ~missing
    columns = {}
    for c in encoded.columns:
        values = encoded[c].iloc[keep].reset_index(drop=True)
        items = pa.array(values.array, from_pandas=True)
        if pa.types.is_string(items.type) or pa.types.is_large_string(items.type):
            items = pc.replace_substring(items, _JOIN, " ")  # (the separator of sets as text)
        columns[c] = value_sets(items, owners[keep], n)
    return pd.DataFrame(columns)


def _sets_of(encoded: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Encoded records as one row per value (a record without a value keeps one missing row, so that each
    record has at least one), each record's first row and its number of rows."""
    if not has_value_sets(encoded):
        n = len(encoded)
        return encoded.reset_index(drop=True), np.arange(n), np.ones(n, dtype=np.int64)
    rows, owners = value_rows(encoded)
    assert isinstance(rows, pd.DataFrame)
    counts = np.bincount(owners, minlength=len(encoded))
    return rows, np.cumsum(counts) - counts, counts


def set_pairs(a: pd.DataFrame, b: pd.DataFrame, ia: np.ndarray,
              ib: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """The value pairs of record pairs ``(ia, ib)``: both sides as a row per value, the rows of each value
    pair, and where each record pair's value pairs start (their order: ``a``'s values, then ``b``'s)."""
    rows_a, start_a, count_a = _sets_of(a)
    rows_b, start_b, count_b = _sets_of(b)
    na, nb = count_a[ia], count_b[ib]
    sizes = na * nb
    starts = np.cumsum(sizes) - sizes
    pair = np.repeat(np.arange(len(ia)), sizes)
    within = np.arange(len(pair)) - starts[pair]
    xa = start_a[ia][pair] + within // nb[pair]
    xb = start_b[ib][pair] + within % nb[pair]
    return rows_a, rows_b, xa, xb, starts


def reduce_pairs(distances: np.ndarray, starts: np.ndarray, how: str) -> np.ndarray:
    """Each record pair's distance from its value pairs' (``starts``: where each pair's run begins; every
    run holds one value pair at least); a missing distance (NaN) is left out, and a pair without any is
    missing."""
    if not len(starts):
        return np.empty(0, dtype=np.float64)
    if how == "best":
        return np.fmin.reduceat(distances, starts)
    if how == "worst":
        return np.fmax.reduceat(distances, starts)
    known = ~np.isnan(distances)
    total = np.add.reduceat(np.where(known, distances, 0.0), starts)
    count = np.add.reduceat(known.astype(np.int64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def set_type(dtype: Any) -> pa.DataType:
    """The Arrow type of value sets of a column of ``dtype`` (text: strings)."""
    if isinstance(dtype, pd.ArrowDtype):
        return pa.list_(dtype.pyarrow_dtype)
    if pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        return pa.list_(pa.string())
    return pa.list_(pa.from_numpy_dtype(dtype))


def grouping(columns: Sequence[str], id_column: str, details: bool) -> tuple[list[list[str]], dict[str, str]]:
    """How :func:`group_by_id` groups rows of these ``columns``: the families (a column, with its
    ``_lang`` and ``_datatype`` columns when ``details``: a query's ``literal_details``) and the rank
    column of each column that has one."""
    ranks = {c[len(RANK_PREFIX):]: c for c in columns if c.startswith(RANK_PREFIX)}
    attributes = [c for c in columns if c not in (id_column, "_file", "_row") and not c.startswith(RANK_PREFIX)]
    detail = {f"{c}{suffix}" for c in attributes for suffix in ("_lang", "_datatype")} if details else set()
    families = [[c] + [d for d in (f"{c}_lang", f"{c}_datatype") if d in detail and d in attributes]
                for c in attributes if c not in detail]
    return families, ranks


def records_of_rows(rows: pd.DataFrame, id_column: str, details: bool) -> pd.DataFrame:
    """Rows (in their order) as records, in this process: one per identifier as a run makes them (see
    :func:`group_by_id`), a column where no record holds two values made single values again."""
    families, ranks = grouping(list(rows.columns), id_column, details)
    if not rows[id_column].duplicated().any():
        return rows.drop(columns=list(ranks.values()))
    records = group_by_id(rows, id_column, families, ranks)
    sizes = largest_sets(records)
    return single_values(records, [c for c, n in sizes.items() if n <= 1])


def group_by_id(part: pd.DataFrame, id_column: str, families: Sequence[Sequence[str]],
                ranks: dict[str, str] | None = None, order: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of a partition (whole identifiers: shuffled on ``id_column``) as one record per identifier
    whose columns hold value sets: each column's distinct values, in the rows' order (``order``: the columns
    that give it), missing ones left out. A *family* of columns (a SPARQL variable, its language and its
    datatype) is deduplicated as one, so that their sets stay aligned; ``ranks`` names, per column, a column
    of preference ranks (a language's place in ``lang``) that orders its values first. Other columns keep
    the first row's value."""
    part = part.sort_values(list(order), kind="stable").reset_index(drop=True) if order else \
        part.reset_index(drop=True)
    codes, uniques = pd.factorize(part[id_column], sort=False)
    n = len(uniques)
    first = np.full(n, len(part), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(part)))
    in_family = {c for family in families for c in family}
    out = {c: part[c].iloc[first].reset_index(drop=True) for c in part.columns
           if c not in in_family and c not in (ranks or {}).values()}
    for family in families:
        present = np.flatnonzero(part[family[0]].notna().to_numpy())
        rank = part[ranks[family[0]]].to_numpy()[present] if ranks and family[0] in ranks else np.zeros(len(present))
        present = present[np.lexsort((present, rank, codes[present]))]
        kept = pd.DataFrame({"_owner": codes[present], **{c: part[c].iloc[present].to_numpy() for c in family}})
        present = present[~kept.duplicated().to_numpy()]
        for c in family:
            out[c] = value_sets(part[c].iloc[present].reset_index(drop=True), codes[present], n).astype(
                pd.ArrowDtype(set_type(part[c].dtype)))
    return pd.DataFrame({c: out[c] for c in part.columns if c in out})


def largest_sets(part: pd.DataFrame) -> pd.Series:
    """The most values a record of the partition holds, per value set column."""
    return pd.Series({c: int(pc.max(pc.list_value_length(_list_array(part[c]))).as_py() or 0)
                      for c in part.columns if is_value_sets(part[c])}, dtype=np.int64)


def single_values(part: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Value set ``columns`` whose records hold one value at most, as columns of single values."""
    part = part.copy()
    for c in columns:
        array = _list_array(part[c])
        first = pc.list_element(pc.fill_null(array, pa.scalar([None], type=array.type)), 0)
        part[c] = (pd.Series(pd.array(first, dtype=TEXT), index=part.index)
                   if pa.types.is_string(first.type) or pa.types.is_large_string(first.type)
                   else pd.Series(first.to_pandas(), index=part.index))
    return part


def shown(value: Any) -> str:
    """A value as a person reads it in a report: a value set as ``{a; b}``, a missing value as ``∅``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "{" + "; ".join(shown(v) for v in value) + "}"
    return "∅" if pd.isna(value) else str(value)


def shown_tagged(value: Any, tags: Any) -> str:
    """A value (set) as :func:`shown` shows it, each value with its language tag when it has one:
    ``{Wien@de; Vienna@en; Vindobona}``."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if isinstance(tags, (list, tuple, np.ndarray)) and len(tags) == len(value):
            value = [v if t is None or pd.isna(t) or t == "" else f"{v}@{t}" for v, t in zip(value, tags)]
    elif isinstance(tags, str) and tags and not pd.isna(value):
        value = f"{value}@{tags}"
    return shown(value)


def as_value_sets(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame built from records (dicts) whose value sets came out as Python lists or arrays, with those
    columns made value set columns again."""
    frame = frame.copy()
    for c in frame.columns:
        column = frame[c]
        first = column.first_valid_index() if pd.api.types.is_object_dtype(column.dtype) else None
        if first is not None and isinstance(column.loc[first], (list, tuple, np.ndarray)):
            lists = [None if not isinstance(v, (list, tuple, np.ndarray)) else list(v) for v in column.tolist()]
            frame[c] = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(lists)), index=frame.index)
    return frame


# Value sets cross Dask's P2P shuffle as text: their values (exact as text: Arrow's casts of numbers to text
# and back are exact) joined by this character, which normalized text does not hold (see :func:`pack`); the
# column's name says the values' type, ``name[double]``. The shuffle goes through Arrow tables, and pandas
# cannot rebuild an Arrow list type from the name it stores in them.
_JOIN = "\x1f"
_CARRIED = re.compile(r"^(.*)\[(\w+)\]$")


def sets_as_text(part: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Value set ``columns`` as text, renamed ``column[type]`` (see :func:`text_as_sets`)."""
    out = {}
    for c in part.columns:
        if c not in columns:
            out[c] = part[c]
            continue
        array = _list_array(part[c])
        joined = pc.binary_join(pc.cast(array, pa.list_(pa.string())), _JOIN)
        out[f"{c}[{array.type.value_type}]"] = pd.Series(pd.array(joined, dtype=TEXT), index=part.index)
    return pd.DataFrame(out, index=part.index)


def text_as_sets(part: pd.DataFrame) -> pd.DataFrame:
    """The value sets :func:`sets_as_text` made text, as value sets under their own names."""
    carried = {c: _CARRIED.match(str(c)) for c in part.columns}
    if not any(carried.values()):
        return part
    out = {}
    for c, match in carried.items():
        if match is None:
            out[c] = part[c]
            continue
        text = pa.array(part[c].array)
        lists = pc.split_pattern(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text, _JOIN)
        out[match.group(1)] = pd.Series(pd.arrays.ArrowExtensionArray(
            pc.cast(lists, pa.list_(pa.type_for_alias(match.group(2))))), index=part.index)
    return pd.DataFrame(out, index=part.index)
