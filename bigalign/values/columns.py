"""Columns of values: what a missing value is, text as Arrow, and work done once per distinct value.

One definition of *missing* for the whole library: None, NA, NaT, NaN and
text that is blank (white space only) say nothing about a record. Text
columns are Arrow strings (:data:`TEXT`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["FEW_VALUES", "TEXT", "arrow_text", "is_missing", "is_na", "map_distinct", "select_columns"]

# The dtype of text columns: Arrow strings, missing values NaN (pandas 3's default string dtype).
TEXT = (pd.StringDtype("pyarrow", na_value=np.nan) if int(pd.__version__.split(".")[0]) >= 3
        else pd.StringDtype("pyarrow"))


# Below this many values, Python on each value is faster than a column's pandas and Arrow calls (~20-50 µs
# each, a dozen for a normalizer or a key): what a lookup of one record pays.
FEW_VALUES = 16


def select_columns(frame: pd.DataFrame, labels: list) -> pd.DataFrame:
    """``frame[labels]``, made from the columns themselves: pandas' selection by a list costs ~0.5 ms
    whatever the rows, which the lookup of one record paid a dozen times."""
    if len(set(labels)) < len(labels):
        return frame[labels]
    return pd.DataFrame({c: frame[c] for c in labels}, index=frame.index)


def arrow_text(values: Any) -> pa.Array | None:
    """Values (a Series, an array) as one Arrow string array, missing ones
    null; None when they are not all text."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        text = pa.array(values.array)  # (its own Arrow data: no conversion, a fiftieth of the time on few values)
    elif values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        try:
            text = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
    else:
        return None
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    return text if text.type == pa.string() else text.cast(pa.string())


def is_na(value: Any) -> bool:
    """None, NA, NaT or NaN: what pandas counts as missing (blank text is a value to it; see :func:`is_missing`)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def is_missing(value: Any) -> bool:
    """None, NA, NaT, NaN or blank text: a value that says nothing."""
    return is_na(value) or (isinstance(value, str) and not value.strip())


def map_distinct(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """Apply ``func`` to each distinct non-missing value of ``values``."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    mapped[:-1] = [func(u) for u in uniques.tolist()]  # a list iterates faster than an Arrow array
    mapped[-1] = None
    return pd.Series(mapped[codes], index=values.index, dtype=object)
