"""Checkpoints: the candidate pairs and encoded sets of a run, from which a run resumes.

Data only (JSON and Parquet), never pickles: a run directory is shared storage.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd

from ..cluster import progress_bars
from ..values.sets import is_value_sets, sets_as_text, text_as_sets
from .stats import BlockStats

__all__ = ["Checkpoint", "write_parquet_part"]


def write_parquet_part(part: pd.DataFrame, path: str) -> None:
    """Write one partition; the name is final only once it is complete. Value sets are written as text
    (:func:`~bigalign.values.sets.sets_as_text`: pandas reads no Arrow list type back from Parquet's
    metadata), which :meth:`Checkpoint.read` makes value sets again."""
    sets = [c for c in part.columns if is_value_sets(part[c])]
    (sets_as_text(part, sets) if sets else part).to_parquet(path + ".part", index=False)
    os.replace(path + ".part", path)


class Checkpoint:
    """The candidate pairs of a run and both encoded sets, written as Parquet
    with the blocking's statistics, valid for one fingerprint of the job and
    its inputs; a ``checkpoint.json`` manifest marks them complete."""

    parts = ("pairs", "members", "encoded-a", "encoded-b")

    def __init__(self, directory: str, fingerprint: str):
        self.directory, self.fingerprint = directory, fingerprint
        self.manifest = os.path.join(directory, "checkpoint.json")
        # Data only (JSON and Parquet), never pickles: a run directory is shared storage.
        self._stats = os.path.join(directory, "blocking-stats.json")
        self._near = os.path.join(directory, "near-threshold.parquet")

    def has_candidates(self) -> bool:
        try:
            with open(self.manifest) as f:
                return json.load(f).get("fingerprint") == self.fingerprint
        except (FileNotFoundError, json.JSONDecodeError):
            return False

    def write(self, client: Any, frames: dict[str, list], stats: BlockStats, show_progress: bool) -> None:
        if os.path.exists(self.manifest):
            os.remove(self.manifest)
        writes = []
        for name, parts in frames.items():
            directory = os.path.join(self.directory, name)
            if os.path.exists(directory):
                shutil.rmtree(directory)
            os.makedirs(directory)
            write = dask.delayed(write_parquet_part, pure=True)
            writes += [write(part, os.path.join(directory, f"part-{i:06d}.parquet")) for i, part in enumerate(parts)]
        writes = client.compute(writes)
        progress_bars(writes, show_progress)
        client.gather(writes)
        if stats.near_threshold is not None:
            write_parquet_part(stats.near_threshold, self._near)
        elif os.path.exists(self._near):
            os.remove(self._near)
        with open(self._stats + ".part", "w") as f:
            json.dump(stats.as_json(), f)
        os.replace(self._stats + ".part", self._stats)
        with open(self.manifest + ".part", "w") as f:
            json.dump({"fingerprint": self.fingerprint}, f)
        os.replace(self.manifest + ".part", self.manifest)

    def read(self) -> tuple[dd.DataFrame, dd.DataFrame, dd.DataFrame, dd.DataFrame, BlockStats]:
        frames = [dd.read_parquet(os.path.join(self.directory, name)) for name in self.parts]
        frames = [f.map_partitions(text_as_sets, meta=text_as_sets(f._meta)) for f in frames]
        with open(self._stats) as f:
            stats = BlockStats.from_json(json.load(f))
        if os.path.exists(self._near):
            stats.near_threshold = pd.read_parquet(self._near)
        return frames[0], frames[1], frames[2], frames[3], stats
