"""A metric and a blocking of a user's own, as the README shows how to write them."""

import numpy as np
import pandas as pd

from bigalign import Blocking, Metric
from bigalign.blocking.base import hash_values, salted_keys


class FirstLetters(Metric):
    """0 when the first ``letters`` letters agree (case aside), else 1."""

    name = "first_letters"
    bounded = True
    parameters = {"letters": int}

    def __init__(self, letters: int = 1, missing: float | None = None):
        super().__init__(missing)
        self.letters = letters

    def encode(self, values: pd.Series) -> pd.DataFrame:
        # The first letters as a number (a hash, exact in float64), NaN where missing.
        text = values.astype("string").str.strip().str.lower().str[: self.letters]
        code = (hash_values(text.fillna("")) % np.uint64(2**52)).astype(np.float64)
        return pd.DataFrame({"v": np.where(text.fillna("") == "", np.nan, code)}, index=values.index)

    def _cdist(self, a, b, normalized):
        return (a["v"].to_numpy()[:, None] != b["v"].to_numpy()[None, :]).astype(np.float32)

    def _cpdist(self, a, b, ia, ib, normalized):
        return (a["v"].to_numpy()[ia] != b["v"].to_numpy()[ib]).astype(np.float32)


class ByInitial(Blocking):
    """Records meet when a column starts with the same letter."""

    name = "by_initial"
    parameters = {"column": str}

    def __init__(self, column: str):
        self.column = column
        self.columns = [column]

    @property
    def n_slots(self) -> int:
        return 1

    def keys(self, frame, side, shared=None):
        initial = frame[self.column].astype("string").str.strip().str[:1].str.lower()
        present = (initial.notna() & (initial != "")).to_numpy(dtype=bool)
        return salted_keys(hash_values(initial.fillna("")), "by_initial", present)[:, None]
