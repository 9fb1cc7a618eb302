"""What every blocking shares: keys, slots, and the first-shared-slot rule.

A blocking gives each record a fixed number of *slots*, each holding a 64-bit
key (0: no key). Records are routed to blocks by key; two records whose keys
meet form a candidate pair. A pair can meet in several slots (several LSH
bands, or two blockings of a union); it is scored only in the first slot it
shares, so each candidate pair is scored once without a global de-duplication.

Two kinds of slots:

* *positional* (MinHash bands, exact keys): slot ``j`` of an align record
  meets slot ``j`` of a target record;
* *asymmetric* (k-means and grid neighbourhoods): an align record has one key
  in slot 0, a target record has the keys of its neighbourhood in slots
  ``0..m-1``; the pair shares slot ``j`` when the target's slot ``j`` holds
  the align record's key.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Blocking", "mix64", "salted_keys", "hash_values"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a fast avalanching bijection on uint64."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def salted_keys(values: np.ndarray, salt: str, present: np.ndarray | None = None) -> np.ndarray:
    """64-bit keys from uint64 values, distinct per ``salt``; 0 where absent."""
    seed = np.uint64(zlib.crc32(salt.encode()) | (1 << 40))
    keys = mix64(np.asarray(values, dtype=np.uint64) ^ mix64(np.array([seed]))[0])
    keys[keys == 0] = 1
    if present is not None:
        keys[~present] = 0
    return keys


def hash_values(values: pd.Series) -> np.ndarray:
    """Deterministic uint64 hashes of values as text (the same in every process)."""
    return pd.util.hash_array(values.to_numpy(dtype=object), categorize=False)


class Blocking:
    """Base class of blockings.

    Subclasses set ``n_slots`` and ``asymmetric`` and implement :meth:`keys`;
    ``columns`` names the record columns they read. ``name`` is the kind a
    job file gives (``[blocking] kind = "..."``) and ``parameters`` the types
    of the keys it may set there, each a constructor argument: declared once,
    read by the job reader. A blocking of your own, a subclass named by import
    path (``kind = "mypkg.blocks:ByPrefix"``), is used as the built-ins are.
    """

    name = ""
    parameters: dict[str, type | tuple[type, ...]] = {}
    asymmetric = False
    columns: Sequence[Any] = ()

    @property
    def n_slots(self) -> int:
        raise NotImplementedError

    def fit(self, alignset: Any, targetset: Any) -> "Blocking":
        """Learn what the blocking needs from the data (k-means centroids)."""
        return self

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        """``(len(frame), n_slots)`` uint64 keys of records; ``side`` is
        ``"align"`` or ``"target"``. ``shared`` is a dict the members of a
        union share on one frame, for work several of them would repeat
        (the key parts of :class:`KeyBlocking`)."""
        raise NotImplementedError

    def extra(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Columns the blocking needs beside the keys (coordinates)."""
        return pd.DataFrame(index=frame.index)

    def member_extra(self, i: int, extra: pd.DataFrame) -> pd.DataFrame:
        """The columns of :meth:`extra` that belong to member ``i`` of :meth:`blockings`."""
        return extra

    def first_shared_slot(self, keys_a: np.ndarray, keys_b: np.ndarray, extra_a: pd.DataFrame,
                          extra_b: pd.DataFrame, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """For each pair ``(ia[k], ib[k])`` of rows of ``keys_a`` / ``keys_b``
        (``(n, n_slots)`` record keys), the first slot the two share;
        ``n_slots`` when they share none."""
        first = np.full(len(ia), self.n_slots, dtype=np.int64)
        own = keys_a[:, 0][ia]
        for slot in reversed(range(self.n_slots)):  # the smallest shared slot is written last
            if self.asymmetric:
                hit = (keys_b[:, slot][ib] == own) & (own != 0)
            else:
                mine = keys_a[:, slot][ia]
                hit = (mine == keys_b[:, slot][ib]) & (mine != 0)
            first[hit] = slot
        return first

    def shared_members(self, keys_a: np.ndarray, keys_b: np.ndarray, extra_a: pd.DataFrame,
                       extra_b: pd.DataFrame, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """For each pair, a bit mask of the members of :meth:`blockings` that put it in a block
        (bit ``i``: member ``i``); what a model learns per blocking rule."""
        shared = self.first_shared_slot(keys_a, keys_b, extra_a, extra_b, ia, ib) < self.n_slots
        return shared.astype(np.uint32)

    def candidate_pairs(self, a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(ia, ib)`` of rows of ``a`` and ``b`` (the rows of one
        partition: a ``key`` column and the columns of :meth:`extra`) that
        meet in a block."""
        left = pd.DataFrame({"key": a["key"].to_numpy(), "ia": np.arange(len(a))})
        right = pd.DataFrame({"key": b["key"].to_numpy(), "ib": np.arange(len(b))})
        pairs = left.merge(right, on="key", how="inner", sort=False)
        return pairs["ia"].to_numpy(), pairs["ib"].to_numpy()

    def blockings(self) -> list["Blocking"]:
        """The simple blockings this one is made of (itself, or a union's)."""
        return [self]

    def describe(self) -> dict[str, Any]:
        """What the run report says of this blocking (MinHash adds its bands and rows)."""
        return {"blocking": f"{type(self).__name__} on {', '.join(map(str, self.columns))}"}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
