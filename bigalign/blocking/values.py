"""Blocking records that hold several values: a record is in the block of each of its values' keys.

Each slot of a positional blocking (an exact key, a MinHash band) becomes
``positions`` slots that hold a record's distinct keys there, smallest first;
all the positions of a slot meet one another in the block shuffle. A pair
that shares several keys meets in several blocks: it is kept in the block of
the smallest key it shares in the first slot it shares, so that each pair is
still scored once, whatever the partitioning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import JobError
from ..values.sets import value_rows
from .base import Blocking

__all__ = ["MAX_POSITIONS", "ValueSetBlocking", "with_value_sets"]

logger = logging.getLogger("bigalign")

# Distinct keys a record holds in one slot, at most (its smallest ones): what a record's narrow rows carry
# grows with the square of it.
MAX_POSITIONS = 16


class ValueSetBlocking(Blocking):
    """``inner``, a positional blocking, on records that hold value sets in its columns (see the module)."""

    asymmetric = False

    def __init__(self, inner: Blocking, positions: int):
        if inner.asymmetric:
            raise ValueError(f"{type(inner).__name__} gives a record a neighbourhood, not a key per value")
        self.inner, self.positions = inner, int(positions)
        self.name = inner.name

    @property
    def columns(self) -> list:  # type: ignore[override]
        return list(self.inner.columns)

    @property
    def n_slots(self) -> int:
        return self.inner.n_slots * self.positions

    def slot_groups(self) -> np.ndarray:
        return np.repeat(np.arange(self.inner.n_slots) * self.positions, self.positions)

    def fit(self, alignset: Any, targetset: Any) -> "ValueSetBlocking":
        self.inner.fit(alignset, targetset)
        return self

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        rows, owners = value_rows(frame[[c for c in dict.fromkeys(self.columns) if c in frame.columns]])
        assert isinstance(rows, pd.DataFrame)
        keys = self.inner.keys(rows, side)
        out = np.zeros((len(frame), self.n_slots), dtype=np.uint64)
        for slot in range(self.inner.n_slots):
            own, key = owners, keys[:, slot]
            present = key != 0
            own, key = own[present], key[present]
            order = np.lexsort((key, own))
            own, key = own[order], key[order]
            distinct = np.ones(len(key), dtype=bool)
            distinct[1:] = (own[1:] != own[:-1]) | (key[1:] != key[:-1])
            own, key = own[distinct], key[distinct]
            starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]]) if len(own) else np.empty(0, np.int64)
            rank = np.arange(len(own)) - np.repeat(starts, np.diff(np.r_[starts, len(own)]))
            kept = rank < self.positions
            out[own[kept], slot * self.positions + rank[kept]] = key[kept]
        return out

    def first_shared_slot(self, keys_a: np.ndarray, keys_b: np.ndarray, extra_a: pd.DataFrame,
                          extra_b: pd.DataFrame, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """The position, in ``b``'s keys, of the smallest key the pair shares in the first slot it shares."""
        first = np.full(len(ia), self.n_slots, dtype=np.int64)
        width = self.positions
        for slot in reversed(range(self.inner.n_slots)):  # the smallest shared slot is written last
            mine = keys_a[:, slot * width:(slot + 1) * width][ia]
            theirs = keys_b[:, slot * width:(slot + 1) * width][ib]
            best = np.full(len(ia), np.iinfo(np.uint64).max, dtype=np.uint64)
            found = np.full(len(ia), -1, dtype=np.int64)
            for q in range(width):
                key = theirs[:, q]
                better = (key != 0) & (mine == key[:, None]).any(axis=1) & (key < best)
                best[better], found[better] = key[better], q
            first[found >= 0] = slot * width + found[found >= 0]
        return first

    def describe(self) -> dict[str, Any]:
        described = dict(self.inner.describe())
        described["blocking"] = f"{described['blocking']}, each of a record's values (up to {self.positions} keys)"
        return described


def with_value_sets(blocking: Blocking, most_values: Mapping[str, int]) -> Blocking:
    """``blocking`` with each member that reads a value set column (``most_values``: the most values a
    record holds in each) made a :class:`ValueSetBlocking`, of as many positions as a record can have keys
    there (:data:`MAX_POSITIONS` at most). A neighbourhood (k-means, kd-tree) reads one value per record."""
    from .union import UnionBlocking

    members = []
    for member in blocking.blockings():
        sets = [c for c in dict.fromkeys(member.columns) if most_values.get(c, 1) > 1]
        if not sets or isinstance(member, ValueSetBlocking):
            members.append(member)
            continue
        if member.asymmetric:
            raise JobError(f"the blocking {member.name or type(member).__name__} on {', '.join(map(str, sets))}: "
                           "records hold several values there, and a neighbourhood reads one value per record; "
                           "block on keys or MinHash, or choose the values in the query")
        positions = int(np.prod([most_values[c] for c in sets]))
        if positions > MAX_POSITIONS:
            logger.warning("blocking %s: records hold up to %s values; each record is blocked on its %d smallest "
                           "keys there", member.name or type(member).__name__,
                           ", ".join(f"{most_values[c]} in {c}" for c in sets), MAX_POSITIONS)
        members.append(ValueSetBlocking(member, min(positions, MAX_POSITIONS)))
    if len(members) == 1 and blocking.blockings() == [blocking]:
        return members[0]
    return UnionBlocking(members) if any(m is not b for m, b in zip(members, blocking.blockings())) else blocking

