"""The review pages' data: links a page at a time from the output file, the
two records of each from the run's staged Parquet, and the marks a reviewer
gives them.

Nothing loads a whole output: a links file is read one column at a time
(the one a page is sorted or filtered by, kept as the order of the rows),
and a page's rows are taken from the row groups that hold them; records
are found by an index of their ids (one column read once per run), then
read from the row groups that hold them.
"""

from __future__ import annotations

import glob
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import BigalignError, InputError
from ..io import LINK_ROW_GROUP_ROWS, atomic_path
from ..treatments import Treatment, treatment_pair_distances
from ..values.sets import RANK_PREFIX, as_value_sets, records_of_rows, shown_tagged
from .workspace import value_text

__all__ = ["Labels", "LinksPage", "LinksPager", "RecordIndex", "float_or_none", "marks_of", "records_of_side",
           "side_by_side", "unlinked_candidates"]

# Row groups kept decoded between pages (pages sorted by score touch the same ones): a bounded
# memory, whatever the size of the file (16 of 65,536 rows: a million links).
CACHED_ROW_GROUPS = 16
# Score columns, by preference: a learned model's probability, else the weighted distance.
SCORE_COLUMNS = ("match_probability", "distance")


@dataclass
class LinksPage:
    rows: pd.DataFrame  # the page's links, in order, with their row number in the file as ``row``
    total: int  # links that pass the filter
    score: str  # the score column (``match_probability`` or ``distance``)


class _RowGroups:
    """A Parquet file read by row groups, the last ones used kept decoded."""

    def __init__(self, path: str):
        self.file = pq.ParquetFile(path)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.rows = int(self.starts[-1])
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def column(self, name: str) -> np.ndarray:
        return self.file.read(columns=[name]).column(0).to_numpy(zero_copy_only=False)

    def group(self, g: int) -> pa.Table:
        with self._lock:
            if g in self._cache:
                self._cache.move_to_end(g)
                return self._cache[g]
        table = self.file.read_row_group(g)
        with self._lock:
            self._cache[g] = table
            while len(self._cache) > CACHED_ROW_GROUPS:
                self._cache.popitem(last=False)
        return table

    def take(self, rows: np.ndarray) -> pa.Table:
        """Rows ``rows`` (numbers in the file), in that order."""
        groups = np.searchsorted(self.starts, rows, side="right") - 1
        pieces, order = [], []
        for g in np.unique(groups):
            mine = np.flatnonzero(groups == g)
            pieces.append(self.group(int(g)).take(pa.array(rows[mine] - self.starts[g])))
            order.append(mine)
        if not pieces:
            return self.file.schema_arrow.empty_table()
        table = pa.concat_tables(pieces)
        return table.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))


def _parquet_of(path: str, cache_dir: str) -> str:
    """The links file itself when Parquet; a CSV one converted once (next to the run's files)."""
    if path.endswith((".parquet", ".pq")):
        return path
    converted = os.path.join(cache_dir, "review-links.parquet")
    if not os.path.exists(converted) or os.path.getmtime(converted) < os.path.getmtime(path):
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"align_id": pa.string(), "target_id": pa.string()}))
        with atomic_path(converted) as tmp:
            pq.write_table(table, tmp, row_group_size=LINK_ROW_GROUP_ROWS)
    return converted


class LinksPager:
    """Pages of a links file (Parquet or CSV), sorted and filtered by its
    score or by a treatment's distance (``explain`` columns)."""

    def __init__(self, path: str, cache_dir: str):
        if not os.path.exists(path):
            raise InputError(f"{path}: no links yet; run the job first")
        self.path = path
        self.mtime = os.path.getmtime(path)
        self.groups = _RowGroups(_parquet_of(path, cache_dir))
        names = self.groups.file.schema_arrow.names
        self.score = next((c for c in SCORE_COLUMNS if c in names), None)
        if self.score is None or "align_id" not in names or "target_id" not in names:
            raise InputError(f"{path}: not a links file (align_id, target_id and a score column)")
        self.distances = [c for c in names if c.endswith(": distance")]
        self._columns: dict[str, np.ndarray] = {}
        self._orders: dict[str, np.ndarray] = {}

    @property
    def rows(self) -> int:
        return self.groups.rows

    def column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self.groups.column(name).astype(np.float64)
        return self._columns[name]

    def linked(self, align_ids: Sequence[str], target_ids: Sequence[str]) -> np.ndarray:
        """Which of these pairs are links (two columns of the file read)."""
        wanted = pa.array(list(align_ids), pa.string())
        table = self.groups.file.read(columns=["align_id", "target_id"])
        table = table.filter(pc.is_in(pc.cast(table.column("align_id"), pa.string()), value_set=wanted))
        found = set(zip(table.column("align_id").cast(pa.string()).to_pylist(),
                        table.column("target_id").cast(pa.string()).to_pylist()))
        return np.array([(a, t) in found for a, t in zip(align_ids, target_ids)], bool)

    def _order(self, key: str, values: np.ndarray) -> np.ndarray:
        if key not in self._orders:  # (stable, NaN last: the same page for the same request)
            self._orders[key] = np.argsort(values, kind="stable")
        return self._orders[key]

    def page(self, number: int, size: int = 50, sort: str = "", descending: bool = False,
             low: float | None = None, high: float | None = None, near: float | None = None) -> LinksPage:
        """Page ``number`` (from 0) of the links whose ``sort`` column (the
        score, or a treatment's ``": distance"`` column) lies in [low, high];
        ``near`` orders them by their score's gap to that threshold instead."""
        assert self.score is not None
        sort = sort if sort in self.distances else self.score
        values = self.column(sort)
        if near is not None:
            gaps = np.abs(self.column(self.score) - near)
            order = self._order(f"near:{near}", gaps)
        else:
            order = self._order(sort, values)
            if descending:  # (NaN stays last)
                present = order[~np.isnan(values[order])]
                order = np.concatenate([present[::-1], order[len(present):]])
        if low is not None or high is not None:
            kept = np.ones(len(values), bool)
            if low is not None:
                kept &= values >= low
            if high is not None:
                kept &= values <= high
            order = order[kept[order]]
        chosen = order[number * size:(number + 1) * size]
        rows = self.groups.take(chosen).to_pandas()
        rows.insert(0, "row", chosen)
        return LinksPage(rows=rows, total=len(order), score=self.score)


class RecordIndex:
    """Records of one set by id, from the run's staged Parquet files
    (``staging/<set>-*.parquet``: the job's columns, as read)."""

    def __init__(self, staging_dir: str, name: str):
        self.files = [_RowGroups(p) for p in sorted(glob.glob(os.path.join(staging_dir, f"{name}-*.parquet")))]
        if not self.files:
            raise InputError(f"{staging_dir}: no staged records of {name}")
        ids, places = [], []
        for k, f in enumerate(self.files):
            column = f.file.schema_arrow.names[0]
            values = pc.cast(f.file.read(columns=[column]).column(0), pa.string())
            ids.append(values.to_numpy(zero_copy_only=False))
            places.append(np.column_stack([np.full(len(values), k), np.arange(len(values))]))
        self.index = pd.Index(np.concatenate(ids))
        self.places = np.concatenate(places)
        self.columns = [c for c in self.files[0].file.schema_arrow.names
                        if c not in ("_file", "_row") and not c.startswith(RANK_PREFIX)]

    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{id: {column: value}}`` of the ids found; the rows of an id that several rows hold (a multivalued
        set's) made one record of value sets, as the run made it."""
        unique = self.index.is_unique
        positions = self.index.get_indexer(list(ids)) if unique else self.index.get_indexer_for(list(ids))
        tables = []
        for k in np.unique(self.places[positions[positions >= 0], 0]):
            mine = positions[(positions >= 0) & (self.places[np.maximum(positions, 0), 0] == k)]
            tables.append(self.files[k].take(self.places[mine, 1]).to_pandas())
        if not tables:
            return {}
        table = pd.concat(tables, ignore_index=True)
        if not unique:
            details = any(f"{c}_lang" in self.columns for c in self.columns)
            table = records_of_rows(table.sort_values(["_file", "_row"], kind="stable"), self.columns[0], details)
        return {str(record[self.columns[0]]): record for record in table[self.columns].to_dict("records")}


class Labels:
    """A reviewer's marks: ``labels.csv`` with ``align_id, target_id, match``
    (1 a match, 0 not one), the form ``bigalign evaluate`` and a model's
    ``labels`` read (``match`` keeps the pairs marked 1)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[tuple[str, str], int]:
        if not os.path.exists(self.path):
            return {}
        frame = pd.read_csv(self.path, dtype=str, keep_default_na=False)  # (an id "NA" is an id)
        return {(a, t): int(m) for a, t, m in frame[["align_id", "target_id", "match"]].itertuples(index=False)}

    def mark(self, align_id: str, target_id: str, match: int | None) -> dict[tuple[str, str], int]:
        """Mark a pair (``None`` removes its mark); written at once, atomically."""
        with self._lock:
            marks = self.read()
            if match is None:
                marks.pop((align_id, target_id), None)
            else:
                marks[(align_id, target_id)] = int(match)
            frame = pd.DataFrame([(a, t, m) for (a, t), m in sorted(marks.items())],
                                 columns=["align_id", "target_id", "match"])
            with atomic_path(self.path) as tmp:
                frame.to_csv(tmp, index=False)
            return marks


def marks_of(marks: Mapping[tuple[str, str], int], rows: pd.DataFrame) -> list[int | None]:
    return [marks.get((str(a), str(t))) for a, t in zip(rows["align_id"], rows["target_id"])]


def records_of_side(rows: pd.DataFrame, side: str, default: str,
                    records: Callable[[str], RecordIndex]) -> list[dict[str, Any]]:
    """The records of one side of a page's links, from the staged set each belongs to (``records``: a set's
    :class:`RecordIndex` by name)."""
    ids = rows[f"{side}_id"].astype(str).tolist()
    names = rows[f"{side}_set"].astype(str).tolist() if f"{side}_set" in rows else [default] * len(ids)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in sorted(set(names)):
        mine = [i for i, n in zip(ids, names) if n == name]
        found.update({(name, i): record for i, record in records(name).records(mine).items()})
    return [found.get((n, i), {}) for n, i in zip(names, ids)]


def side_by_side(rows: pd.DataFrame, score: str, found_a: list[dict], found_b: list[dict],
                 treatments: Sequence[Treatment], side: str, marks: Sequence[Any]) -> list[dict[str, Any]]:
    """Each link of a page (``rows``) with its two records, its mark, and per treatment both normalized
    values and the distance (none when the records no longer fit the treatments)."""
    a, b = as_value_sets(pd.DataFrame(found_a)), as_value_sets(pd.DataFrame(found_b))
    attributes = []
    try:
        distances = treatment_pair_distances(treatments, [t.encode(a) for t in treatments],
                                             [t.encode(b, side) for t in treatments])
        for k, t in enumerate(treatments):
            attributes.append({"name": str(t), "align": t.normalize(a), "target": t.normalize(b, side),
                               "distances": distances[:, k]})
    except (BigalignError, KeyError, ValueError, TypeError):
        attributes = []  # (records the job no longer describes: the records themselves are still shown)
    return [{"align_id": align_id, "target_id": target_id, "score": float(rows[score].iloc[i]),
             "mark": marks[i], "align": shown_record(found_a[i]), "target": shown_record(found_b[i]),
             "attributes": [{"name": at["name"], "align": value_text(at["align"], i),
                             "target": value_text(at["target"], i), "distance": float(at["distances"][i])}
                            for at in attributes]}
            for i, (align_id, target_id) in enumerate(zip(rows["align_id"].astype(str),
                                                          rows["target_id"].astype(str)))]


def shown_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the review shows it: a value set as ``{a; b}``, each value with its language tag when the
    set kept them (``literal_details``: ``name_lang`` beside ``name``) as ``{Wien@de; Vienna@en}``."""
    shown_values: dict[str, Any] = {}
    for column, value in record.items():
        tags = record.get(f"{column}_lang")
        if isinstance(value, (list, tuple, np.ndarray)) or (isinstance(tags, str) and tags and value is not None):
            value = shown_tagged(value, tags)
        shown_values[column] = value
    return {c: v for c, v in shown_values.items() if not (c.endswith("_lang") and c[:-5] in record)}


def unlinked_candidates(near: list[dict], pager: LinksPager, labels: pd.DataFrame) -> list[dict[str, Any]]:
    """Candidates near the threshold that are not links (from the report's data), with their marks
    (``labels``: :meth:`Labels.read`), to mark as matches."""
    pairs = pd.DataFrame(near)
    if pairs.empty or not {"align_id", "target_id"} <= set(pairs.columns):
        return []
    pairs["align_id"], pairs["target_id"] = pairs["align_id"].astype(str), pairs["target_id"].astype(str)
    pairs = pairs[~pager.linked(pairs["align_id"], pairs["target_id"])]
    marks = marks_of(labels, pairs)
    return [{"align_id": a, "target_id": t, "distance": d, "mark": m}
            for a, t, d, m in zip(pairs["align_id"], pairs["target_id"], pairs.get("distance", np.nan), marks)]


def float_or_none(text: str | None) -> float | None:
    """A page's number argument (a bound of the scores shown), or None when empty or not a number."""
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
