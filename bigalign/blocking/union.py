"""Union of blockings: the candidates of each, every pair once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .base import Blocking

__all__ = ["UnionBlocking"]


class UnionBlocking(Blocking):
    """Candidates of several blockings together.

    Their slots are laid side by side; a pair is scored in the first slot it
    shares over all of them, so it is scored once even when several blockings
    propose it.
    """

    name = "union"

    def __init__(self, blockings: Sequence[Blocking]):
        flat: list[Blocking] = []
        for b in blockings:
            if not isinstance(b, Blocking):
                raise TypeError(f"UnionBlocking takes blockings, not {b!r}")
            flat.extend(b.blockings())
        if not flat:
            raise ValueError("UnionBlocking needs at least one blocking")
        self.of = flat

    def blockings(self) -> list[Blocking]:
        return list(self.of)

    @property
    def columns(self) -> list:  # type: ignore[override]
        return list(dict.fromkeys(c for b in self.of for c in b.columns))

    @property
    def n_slots(self) -> int:
        return sum(b.n_slots for b in self.of)

    def slot_ranges(self) -> list[tuple[int, int]]:
        ends = np.cumsum([b.n_slots for b in self.of])
        return [(int(e - b.n_slots), int(e)) for b, e in zip(self.of, ends)]

    def fit(self, alignset: Any, targetset: Any) -> "UnionBlocking":
        for b in self.of:
            b.fit(alignset, targetset)
        return self

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        shared = {} if shared is None else shared  # e.g. a date several exact keys read
        return np.hstack([b.keys(frame, side, shared) for b in self.of])

    def extra(self, frame: pd.DataFrame) -> pd.DataFrame:
        # (only members with columns of their own: keys have none, and an empty frame each costs a lookup 50 µs)
        own = [b.extra(frame).add_prefix(f"u{i}:") for i, b in enumerate(self.of)
               if type(b).extra is not Blocking.extra]
        return pd.concat(own, axis=1) if own else pd.DataFrame(index=frame.index)

    def member_extra(self, i: int, extra: pd.DataFrame) -> pd.DataFrame:
        if not len(extra.columns):  # (keys alone: nothing to select, and this is called per pair chunk)
            return extra
        prefix = f"u{i}:"
        own = extra[[c for c in extra.columns if c.startswith(prefix)]]
        return own.rename(columns=lambda c: c[len(prefix):])

    def shared_members(self, keys_a, keys_b, extra_a, extra_b, ia, ib):
        mask = np.zeros(len(ia), dtype=np.uint32)
        for i, (b, (lo, hi)) in enumerate(zip(self.of, self.slot_ranges())):
            own = b.first_shared_slot(keys_a[:, lo:hi], keys_b[:, lo:hi], self.member_extra(i, extra_a),
                                      self.member_extra(i, extra_b), ia, ib)
            mask |= (own < b.n_slots).astype(np.uint32) << np.uint32(i)
        return mask

    def first_shared_slot(self, keys_a, keys_b, extra_a, extra_b, ia, ib):
        first = np.full(len(ia), self.n_slots, dtype=np.int64)
        for i, (b, (lo, hi)) in enumerate(zip(self.of, self.slot_ranges())):
            own = b.first_shared_slot(keys_a[:, lo:hi], keys_b[:, lo:hi], self.member_extra(i, extra_a),
                                      self.member_extra(i, extra_b), ia, ib)
            first = np.where(own < b.n_slots, np.minimum(first, own + lo), first)
        return first
