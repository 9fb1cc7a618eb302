"""Records: an identifier plus attributes.

A set of records is held as a :class:`pandas.DataFrame` whose first column is
the identifier. Nazca-style nested lists ``[[id, attr1, attr2, ...], ...]``
become a frame with integer column labels ``0..n-1`` so that an attribute is
addressed by its index in the record, as in Nazca; a pandas frame keeps its
column names.

An *attribute key* is a column label, a position (``int``; the identifier is
position 0) or a tuple of those, which makes one attribute of several columns
(latitude, longitude).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from .values.columns import arrow_text, select_columns
from .values.hashing import text_hashes

AttributeKey = Union[Hashable, tuple]

__all__ = ["AttributeKey", "as_records", "attribute_values", "attribute_columns", "is_dask",
           "record_hashes", "text_or_str"]


def as_records(data: Any, id_column: Hashable | None = None, name: str = "records") -> pd.DataFrame:
    """Return ``data`` as a frame whose first column is the record identifier.

    Parameters
    ----------
    data : pandas.DataFrame or sequence of sequences
        The records. Nested lists follow Nazca: the first element of each
        record is its identifier.
    id_column : label, optional
        The identifier column of a frame, when it is not the first one.
    name : str
        How the set is called in error messages ("alignset", a file name).

    Raises
    ------
    ValueError
        If the set is empty, ragged, or its identifiers are missing or not
        unique.
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in data]
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
            raise ValueError(
                f"{name}: record {bad} has {len(rows[bad])} fields, record 0 has {len(rows[0])}"
            )
        frame = pd.DataFrame(rows, dtype=object).infer_objects()
    else:
        raise TypeError(f"{name}: expected a pandas DataFrame or a list of records, got {type(data).__name__}")
    if len(frame) == 0:
        raise ValueError(f"{name}: the set is empty")
    if id_column is not None:
        if id_column not in frame.columns:
            raise KeyError(f"{name}: id column {id_column!r} not found; columns are {list(frame.columns)}")
        frame = frame[[id_column] + [c for c in frame.columns if c != id_column]]
    frame = frame.reset_index(drop=True)
    ids = frame.iloc[:, 0]
    missing = ids.isna()
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {row}, column {frame.columns[0]!r}: missing identifier")
    duplicated = ids.duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0])
        raise ValueError(
            f"{name}: row {row}, column {frame.columns[0]!r}: duplicate identifier {ids.iloc[row]!r}"
        )
    return frame


def _column_label(frame: pd.DataFrame, key: Hashable) -> Hashable:
    if key in frame.columns:
        return key
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < frame.shape[1]:
        return frame.columns[key]
    raise KeyError(f"attribute {key!r} not found; columns are {list(frame.columns)}")


def attribute_columns(frame: pd.DataFrame, key: AttributeKey) -> list:
    """The column labels of ``frame`` that attribute ``key`` reads."""
    keys = key if isinstance(key, tuple) else (key,)
    return [_column_label(frame, k) for k in keys]


def attribute_values(frame: pd.DataFrame, key: AttributeKey) -> pd.Series | pd.DataFrame:
    """The values of one attribute: a Series, or a frame for a tuple key."""
    columns = attribute_columns(frame, key)
    if isinstance(key, tuple):
        return select_columns(frame, columns)
    return frame[columns[0]]


# Text as Arrow strings: pandas 3's default (NaN when missing); under pandas 2 the
# NA-semantics variant, the one Dask's P2P shuffle hands back as Arrow strings rather
# than as Python objects (dask.dataframe.backends.get_pandas_dataframe_from_pyarrow).
def is_dask(obj: Any) -> bool:
    """Whether ``obj`` is a dask collection (records to align on the cluster)."""
    return type(obj).__module__.startswith("dask")


def text_or_str(values: pd.Series) -> pa.Array:
    """Values as Arrow text: at once when they are text, else each as ``str``
    (missing ones null)."""
    text = arrow_text(values)
    if text is None:
        text = pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
                         for v in values.tolist()], type=pa.string())
    return text


def record_hashes(ids: pd.Series) -> np.ndarray:
    """uint64 hashes of record ids (as text): a record's identity between
    stages, cheaper to move and compare than its id and the same in every
    process."""
    return text_hashes(text_or_str(ids))
