"""An index opened at one version, and records paired and scored against it as a run pairs and scores them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..blocking import CrossProductBlocking
from ..errors import InputError, JobError
from ..job_scoring import read_treatments
from ..job_tables import TableReader, UserCode, read_blocking
from ..jobs import Job
from ..matching import sort_links
from ..pipeline.candidates import paired_sides
from ..pipeline.encode import block_rows, encode_records
from ..pipeline.schema import ALIGN, EXTRA_PREFIX, KEY_PREFIX, TARGET
from ..pipeline.scoring import score_records
from ..pipeline.stats import BlockStats
from ..scorers import Scorer, WeightedDistance
from ..spec import Alignment, make_alignment
from ..values.columns import select_columns
from ..values.sets import text_as_sets
from .store import BUCKETS, differences, filesystem, job_tables, read_manifest, read_model

__all__ = ["Index", "encode_alignset", "link_pairs"]


class Index:
    """An index opened at one version (see :func:`build_index`): its block rows and records read by key and
    by id hash; in a deduplication's index, its links by id hash and its entities."""

    def __init__(self, path: str, allow_modules: Collection[str] = ()):
        self.fs, self.root = filesystem(path)
        manifest = read_manifest(self.fs, self.root)
        assert manifest is not None
        self.manifest, self.layers = manifest, manifest["layers"]
        self.allow_modules = allow_modules
        # Per layer, the id hashes the later layers removed or replaced (sorted): its rows of those are gone.
        removed = [self._removed_by(layer) for layer in self.layers]
        self._gone = [np.unique(np.concatenate(removed[i + 1:] + [np.empty(0, np.uint64)]))
                      for i in range(len(self.layers))]
        # row groups read by lookups, kept: (file, group) → the column's values (sorted), the rows
        self._groups: dict[tuple[str, int], tuple[np.ndarray, pd.DataFrame]] = {}
        self._listed: dict[str, dict[int, list[str]]] = {}  # (a part's directory → its files by bucket)
        self._sizes: dict[str, int] = {}  # (a listed file → its bytes)
        # a file's footer, its row groups' first and last values of the column the file is sorted by, their bytes
        self._footers: dict[str, tuple[pq.FileMetaData, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.bytes_read = 0  # (of the row groups batches read: see :meth:`_read`)
        self._stored: tuple[Alignment, Scorer] | None = None
        self._entity_of: pd.Series | None = None  # (a dedup's lookups: each record's entity id, read once)

    @classmethod
    def open(cls, path: str, allow_modules: Collection[str] = ()) -> "Index":
        """The index at ``path``, at its current version (``allow_modules``: as a job's, for user code its
        treatments name)."""
        return cls(path, allow_modules)

    @property
    def dedupe(self) -> bool:
        """Whether this is the index of a deduplication (records with entities) rather than of a targetset."""
        return bool(self.manifest["job"].get("dedupe"))

    def _removed_by(self, layer: Mapping[str, Any]) -> np.ndarray:
        if not layer["removed"]:
            return np.empty(0, np.uint64)
        with self.fs.open(f"{self.root}/{layer['path']}/removed.parquet", "rb") as f:
            return pq.read_table(f)["rid"].to_numpy().astype(np.uint64)

    def _live(self, rows: pd.DataFrame, i: int) -> pd.DataFrame:
        """The rows of layer ``i`` whose records (a link's two) no later layer removed."""
        if not len(self._gone[i]) or not len(rows):
            return rows
        gone = np.zeros(len(rows), dtype=bool)
        for column in ("rid", "rid_a", "rid_b"):
            if column in rows.columns:
                gone |= np.isin(rows[column].to_numpy(np.uint64), self._gone[i])
        return rows[~gone]

    def _parts(self, part: str) -> list[tuple[int, int, str]]:
        """The layers holding rows of ``part``: (layer, its buckets, its directory)."""
        count = {"keys": "records", "records": "records", "edges": "edges"}[part]
        return [(i, layer[BUCKETS[part]], f"{self.root}/{layer['path']}/{part}")
                for i, layer in enumerate(self.layers) if layer.get(count)]

    def _files(self, directory: str) -> dict[int, list[str]]:
        """The Parquet files of a layer's part, by bucket (listed once: a version's layers do not change)."""
        if directory not in self._listed:
            files: dict[int, list[str]] = {}
            found = self.fs.find(directory, detail=True) if self.fs.exists(directory) else {}
            for path in sorted(found):
                if path.endswith(".parquet"):
                    files.setdefault(int(path.rsplit("bucket=", 1)[1].split("/", 1)[0]), []).append(path)
                    self._sizes[path] = int(found[path]["size"])
            self._listed[directory] = files
        return self._listed[directory]

    def _footer(self, path: str, column: str) -> tuple[pq.FileMetaData, np.ndarray, np.ndarray, np.ndarray]:
        """A bucket file's footer, and of each of its row groups the first and last ``column`` value and the
        bytes."""
        if path not in self._footers:
            with self.fs.open(path, "rb") as f:
                metadata = pq.ParquetFile(f).metadata
            at, groups = metadata.schema.names.index(column), map(metadata.row_group, range(metadata.num_row_groups))
            ranges, sizes = [], []
            for group in groups:  # (a group without statistics: any value may be in it)
                stats = group.column(at).statistics
                ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max
                              else (0, np.iinfo(np.uint64).max))
                sizes.append(sum(group.column(c).total_compressed_size for c in range(group.num_columns)))
            bounds = np.array(ranges, dtype=np.uint64).reshape(-1, 2)
            self._footers[path] = metadata, bounds[:, 0], bounds[:, 1], np.array(sizes, dtype=np.int64)
        return self._footers[path]

    def _groups_holding(self, path: str, column: str, wanted: np.ndarray) -> np.ndarray:
        """The row groups of a bucket file whose range of ``column`` holds one of ``wanted`` (sorted)."""
        _, firsts, lasts, _ = self._footer(path, column)
        return np.flatnonzero(np.searchsorted(wanted, lasts, "right") > np.searchsorted(wanted, firsts, "left"))

    def _bucket_files(self, part: str, wanted: np.ndarray) -> list[tuple[int, str, np.ndarray]]:
        """The files of ``part`` that the values ``wanted`` (sorted) fall in: (layer, file, its bucket's
        values of ``wanted``)."""
        found = []
        for i, buckets, directory in self._parts(part):
            bucket_of = (wanted % np.uint64(buckets)).astype(np.int64)
            for bucket, paths in self._files(directory).items():
                mine = wanted[bucket_of == bucket]
                found += [(i, path, mine) for path in paths if len(mine)]
        return found

    def _rows_in_file(self, path: str, column: str, wanted: np.ndarray) -> tuple[pa.Table, int]:
        """The rows of a bucket file (sorted by ``column``) whose ``column`` is among ``wanted`` (sorted), read
        from the row groups whose range holds one of them; and the bytes of those groups."""
        metadata, _, _, sizes = self._footer(path, column)
        groups = self._groups_holding(path, column, wanted)
        if not len(groups):
            return metadata.schema.to_arrow_schema().empty_table(), 0
        with self.fs.open(path, "rb") as f:
            table = pq.ParquetFile(f, metadata=metadata).read_row_groups(groups.tolist())
        held = table[column].to_numpy()
        starts, stops = np.searchsorted(held, wanted, "left"), np.searchsorted(held, wanted, "right")
        return table.take(concatenated_ranges(starts, stops)), int(sizes[groups].sum())

    def bytes_held(self) -> int:
        """The bytes of the files a batch reads from (block rows, records, links) in this version's layers."""
        return sum(self._sizes[path] for part in BUCKETS for _, _, directory in self._parts(part)
                   for paths in self._files(directory).values() for path in paths)

    def _read(self, part: str, column: str, wanted: np.ndarray) -> pd.DataFrame:
        """The live rows of ``part`` whose ``column`` is among ``wanted``, from their buckets' files alone, of
        those only the row groups that can hold them, read at once (Parquet's decoding and the bisections leave
        the interpreter free); the bytes of the groups read are counted in :attr:`bytes_read`."""
        reads = self._bucket_files(part, np.unique(np.asarray(wanted, dtype=np.uint64)))
        if not reads:
            return _no_rows(column)
        with ThreadPoolExecutor(min(len(reads), pa.io_thread_count())) as pool:
            tables, sizes = zip(*pool.map(lambda read: self._rows_in_file(read[1], column, read[2]), reads))
        self.bytes_read += sum(sizes)
        found = [self._live(pa.concat_tables([t for (i, _, _), t in zip(reads, tables) if i == layer]).to_pandas(),
                            layer) for layer in sorted({i for i, _, _ in reads})]
        return found[0] if len(found) == 1 else pd.concat(found, ignore_index=True)

    def block_rows(self, keys: np.ndarray) -> pd.DataFrame:
        """The indexed records' block rows of these routing keys."""
        return self._read("keys", "key", keys)

    def records(self, rids: np.ndarray) -> pd.DataFrame:
        """The indexed records (id, id hash, encoded values) of these id hashes."""
        return self._read("records", "rid", rids)

    def links_of(self, rids: np.ndarray) -> pd.DataFrame:
        """A deduplication's index: the live links of these records (each once)."""
        found = self._read("edges", "node", rids)
        if "rid_a" not in found.columns:
            return found.iloc[:0]
        return found.drop(columns="node").drop_duplicates(["rid_a", "rid_b"]).reset_index(drop=True)

    def entities(self) -> pd.DataFrame:
        """A deduplication's index: every record (``id``) with its entity's lasting ``cluster_id`` (and the
        ``rid`` and ``component`` that updates read)."""
        if not self.dedupe:
            raise InputError(f"{self.root}: the index of a targetset has no entities (those of a deduplication)")
        with self.fs.open(f"{self.root}/{self.manifest['entities']}/entities.parquet", "rb") as f:
            return pq.read_table(f).to_pandas()

    def issued(self) -> pd.DataFrame:
        """A deduplication's index: every cluster id ever given (``cluster_id``) and the version (``born``)."""
        with self.fs.open(f"{self.root}/{self.manifest['entities']}/issued.parquet", "rb") as f:
            return pq.read_table(f).to_pandas()

    def scorer(self, job: Job) -> Scorer:
        """The scorer a batch scores with: the stored model, or the job's weighted distance at its threshold."""
        if job.alignment.scorer.learns:
            return read_model(self.fs, f"{self.root}/{self.manifest['model_path']}")
        return job.alignment.scorer.fitted(None, job.alignment.treatments, job.alignment.threshold)

    def stored_alignment(self) -> tuple[Alignment, Scorer]:
        """The indexed job's alignment (its treatments, blocking and threshold, every pair's explanation) and
        the scorer it was indexed with (the stored model, or the weighted distance at the job's threshold)."""
        if self._stored is None:
            tables, where = self.manifest["scoring"], f"{self.root}/manifest.json"
            code = UserCode(self.allow_modules, True)
            treatments, _ = read_treatments(where, tables["treatments"], code)
            blocking = CrossProductBlocking() if not tables["blocking"] else \
                read_blocking(TableReader(where, tables["blocking"], "blocking"), code)
            learned = (tables.get("model") or {}).get("kind") == "fellegi-sunter"
            scorer = read_model(self.fs, f"{self.root}/{self.manifest['model_path']}") if learned \
                else WeightedDistance()
            alignment = make_alignment(treatments, scorer=scorer, blocking=blocking, threshold=tables["threshold"],
                                       uniq=False, explain=True)
            self._stored = alignment, scorer if learned else scorer.fitted(None, treatments, tables["threshold"])
        return self._stored

    def _kept(self, part: str, column: str, wanted: np.ndarray) -> pd.DataFrame:
        """As :meth:`_read`, from row groups read once and kept in memory (what lookups read: a freshly
        opened index answers its first lookups from the few groups they name, not from whole buckets)."""
        groups = [(i, path, group, mine)  # (layer, file, group, the values wanted of its bucket)
                  for i, path, mine in self._bucket_files(part, np.unique(np.asarray(wanted, dtype=np.uint64)))
                  for group in self._groups_holding(path, column, mine).tolist()]
        unread = [g for g in groups if (g[1], g[2]) not in self._groups]
        if len(unread) > 1:  # (read at once: Parquet's decoding leaves the interpreter free)
            with ThreadPoolExecutor(min(len(unread), pa.io_thread_count())) as pool:
                list(pool.map(lambda g: self._group(g[0], g[1], g[2], column), unread))
        found: list[pd.DataFrame] = []
        for i, path, group, mine in groups:
            values, rows = self._group(i, path, group, column)
            at = concatenated_ranges(np.searchsorted(values, mine, "left"), np.searchsorted(values, mine, "right"))
            if len(at) or not found:  # (a group without a row of these: nothing to take, nor to join)
                found.append(rows.iloc[at])
        if len(found) == 1:
            return found[0].reset_index(drop=True)
        return pd.concat(found, ignore_index=True) if found else _no_rows(column)

    def _group(self, layer: int, path: str, group: int, column: str) -> tuple[np.ndarray, pd.DataFrame]:
        """A row group of a bucket file, its live rows and their ``column`` (sorted), read once and kept."""
        if (path, group) not in self._groups:
            metadata = self._footer(path, column)[0]
            with self.fs.open(path, "rb") as f:
                rows = self._live(pq.ParquetFile(f, metadata=metadata).read_row_group(group).to_pandas(), layer)
            self._groups[(path, group)] = rows[column].to_numpy(np.uint64), rows.reset_index(drop=True)
        return self._groups[(path, group)]

    def match(self, records: Mapping[str, Any] | pd.DataFrame, k: int = 5) -> pd.DataFrame:
        """The ``k`` best matches in the index of a record (a mapping of column to value) or of each record
        of a frame, without a cluster: ``align_id`` (the record's id, or its position), ``target_id``, the
        score (``distance``, or ``match_weight`` and ``match_probability``), ``linked`` (whether the job
        would link the pair), each treatment's part (its distance; with a model, level and weight), and in a
        deduplication's index the ``cluster_id`` of the matched record's entity."""
        alignment, scorer = self.stored_alignment()
        needed = {str(c) for t in alignment.treatments
                  for c in (t.attribute if isinstance(t.attribute, tuple) else (t.attribute,))}
        given = list(map(str, records.keys() if isinstance(records, Mapping) else records.columns))
        missing = sorted((needed | set(map(str, alignment.blocking.columns))) - set(given))
        if missing:
            raise InputError(f"a record to match needs the columns {missing} (the indexed job's treatments and "
                             f"blocking read them); it has {given}")
        frame = _id_first(records, self.manifest["scoring"].get("alignset_id"))
        links = link_pairs(self, encode_alignset(frame, alignment), alignment, scorer, self._kept, np.inf, False)[0]
        links = sort_links(links)
        links = (links.head(k) if len(frame) == 1 else links.groupby("align_id", sort=False).head(k)
                 ).reset_index(drop=True)
        links.insert(3, "linked", links["distance"].to_numpy() <= scorer.distance_threshold_)
        if self.dedupe:
            if self._entity_of is None:  # (the version opened does not change: its entities neither)
                self._entity_of = self.entities().set_index("id")["cluster_id"]
            links.insert(4, "cluster_id", self._entity_of.reindex(links["target_id"].astype(str)).to_numpy())
        return scorer.as_written(links)

    def check(self, job: Job) -> None:
        """Refuse a job the index was not built for, saying what differs."""
        found = differences(self.manifest["job"], job_tables(job))
        if found:
            raise JobError(f"{job.path}: the index at {self.root} was built for another job ("
                           + "; ".join(found[:5]) + "); build the index again for this job")


def _no_rows(column: str) -> pd.DataFrame:
    """What a read finds where a part holds no row of the values wanted."""
    return pd.DataFrame({column: np.empty(0, np.uint64), "rid": np.empty(0, np.uint64)})


def concatenated_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The positions ``starts[j]`` to ``stops[j]`` (excluded) of every ``j``, in turn, as one array."""
    lengths = np.maximum(np.asarray(stops) - np.asarray(starts), 0)
    firsts = np.cumsum(lengths) - lengths  # (where each range begins in the result)
    return np.repeat(np.asarray(starts) - firsts, lengths) + np.arange(int(lengths.sum()))


def _id_first(records: Mapping[str, Any] | pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    """Records to match as a frame, their id first (without one, their position: ``_record``)."""
    if isinstance(records, Mapping):  # (one frame of objects, in its order: inferring each column's type cost ~0.5 ms)
        record = dict(records)
        record = ({id_column: record.pop(id_column)} if id_column in record else {"_record": "0"}) | record
        row = np.empty((1, len(record)), dtype=object)
        for j, value in enumerate(record.values()):  # (one by one: a value may be a list)
            row[0, j] = value
        return pd.DataFrame(row, columns=list(record), dtype=object)
    frame = records.reset_index(drop=True)
    if id_column in frame.columns:
        return select_columns(frame, [id_column] + [c for c in frame.columns if c != id_column])
    return pd.concat([pd.DataFrame({"_record": np.arange(len(frame)).astype(str)}), frame], axis=1)


def encode_alignset(records: pd.DataFrame, alignment: Alignment) -> pd.DataFrame:
    """Records (the id first) encoded as a run encodes its alignset (and a deduplication's one set)."""
    return encode_records(records, alignment.treatments, alignment.blocking, "align", "alignset")


def _rows_of(records: pd.DataFrame, rids: pd.Series) -> np.ndarray:
    """The row of ``records`` of each id hash (-1: none)."""
    held, wanted = records["rid"].to_numpy(np.uint64), rids.to_numpy(np.uint64)
    if not len(held):
        return np.full(len(wanted), -1, np.int64)
    order = np.argsort(held, kind="stable")
    at = np.minimum(np.searchsorted(held[order], wanted), len(held) - 1)
    return np.where(held[order][at] == wanted, order[at], -1)


def _record_values(encoded: pd.DataFrame) -> pd.DataFrame:
    return encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]]


def link_pairs(index: Index, encoded: pd.DataFrame, alignment: Alignment, scorer: Scorer, read: Any,
               threshold: float, uniq: bool, gone: np.ndarray | None = None
               ) -> tuple[pd.DataFrame, BlockStats, int]:
    """The candidate pairs of records (``encoded`` as a run encodes its alignset: :func:`encode_alignset`) in
    ``index``, scored as a run scores them: paired
    as its candidate stage pairs them (the index rows of their keys, read by ``read``: the index's
    ``_read`` or ``_kept``), each pair's ``distance`` (and explanation, with the alignment's ``explain``),
    with ``uniq`` the best of each record, else those under ``threshold``; the blocking's and scoring's
    figures; and how many index rows the records' keys touched.

    In a deduplication's index (``alignment.dedupe``), the records are also paired with each other, and
    each link is written as the run writes it (smaller id first), with its records' id hashes (``rid_a``,
    ``rid_b``); index records whose id hash is in ``gone`` (removed or replaced by this batch) are left out.
    """
    dedupe = alignment.dedupe
    mine = block_rows(encoded, alignment.blocking, "align")
    theirs = read("keys", "key", mine["key"].to_numpy(np.uint64))
    if len(theirs):  # (column by column: only those whose type differs are cast)
        theirs = pd.DataFrame({c: theirs[c] if theirs[c].dtype == kind else theirs[c].astype(kind)
                               for c, kind in mine.dtypes.items()} | {"side": np.int8(TARGET)})
    else:
        theirs = mine.iloc[:0].assign(side=np.int8(TARGET))
    if gone is not None and len(gone):
        theirs = theirs[~np.isin(theirs["rid"].to_numpy(np.uint64), gone)]
    found = paired_sides(mine, theirs, alignment.blocking, False, alignment.max_block_pairs, None,
                         dense_block_pairs=None, rules=scorer.learns, link_type=alignment.link_type)
    pairs, stats = found.pairs, found.stats
    if dedupe:  # (and the new records with each other, as the run pairs one set with itself)
        among = paired_sides(mine.assign(side=np.int8(ALIGN)), mine.iloc[:0], alignment.blocking, True,
                             alignment.max_block_pairs, None, dense_block_pairs=None, rules=scorer.learns)
        pairs, stats = pd.concat([pairs, among.pairs], ignore_index=True), stats + among.stats
    if not len(pairs):
        empty = {"rid_a": np.empty(0, np.uint64), "rid_b": np.empty(0, np.uint64)} if dedupe else {}
        return (pd.DataFrame({"align_id": encoded["id"].iloc[:0], "target_id": encoded["id"].iloc[:0],
                              "distance": np.empty(0, np.float64), **empty}), stats, len(theirs))
    targets = read("records", "rid", pairs["rid_b"].to_numpy(np.uint64))
    if dedupe:  # (either record of a pair may be new or indexed: one table of both)
        targets = pd.concat([_record_values(encoded), targets[~np.isin(targets["rid"].to_numpy(np.uint64),
                                                                       encoded["rid"].to_numpy(np.uint64))]],
                            ignore_index=True)
    records_b = text_as_sets(targets)
    records_a = records_b if dedupe else text_as_sets(encoded)  # (its keys too: scoring reads what it needs)
    ra, rb = _rows_of(records_a, pairs["rid_a"]), _rows_of(records_b, pairs["rid_b"])
    held = (ra >= 0) & (rb >= 0)
    scored = score_records(records_a, ra[held], records_b, rb[held], alignment.treatments, threshold, uniq, dedupe,
                           None, scorer, alignment.explain)
    links = scored.links
    if dedupe:
        by_id = pd.Series(targets["rid"].to_numpy(np.uint64), index=targets["id"].astype(str).to_numpy())
        links = links.assign(rid_a=by_id.reindex(links["align_id"].astype(str)).to_numpy(np.uint64),
                             rid_b=by_id.reindex(links["target_id"].astype(str)).to_numpy(np.uint64))
    return links, stats + scored.stats, len(theirs)
