"""An index of a targetset, persisted once, and batches of new records linked against it.

:func:`build_index` stages the job's targetset, encodes its records and
computes their block keys as a run does, and writes them as Parquet: the block
rows in buckets of their key (a batch reads only the buckets its own keys fall
in, and in them only the rows of its keys), the encoded records in buckets of
their id hash (a batch reads only its candidates' buckets); a scorer that
learns is fitted as a run fits it (on the job's alignset and targetset) and
stored as JSON and Parquet; a manifest (JSON) says what the job was, so that a
batch of another job is refused with what differs. Each build writes a new
version beside the old ones and switches the manifest last: a reader keeps the
version it opened, a failed build leaves the old one.

:func:`link_batch` stages and encodes only the new records, pairs them with
the index rows their keys name exactly as a run's candidate stage does, scores
the pairs with the stored scorer, and writes links, summary and report as a
run does: the links are those a full run of the job would give those records
against the indexed set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import dask
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .blocking import CrossProductBlocking
from .blocking.base import Blocking
from .errors import InputError, JobError
from .fellegi_sunter import FellegiSunter
from .io import atomic_path, is_url, process_lock, write_links
from .job_tables import TableReader, UserCode, read_blocking, read_treatments, set_spec
from .jobs import Job, check_inputs
from .matching import best_match_per_item, one_to_one, sort_links
from .pipeline.candidates import candidate_pairs
from .pipeline.encode import block_rows, encode_records
from .pipeline.graph import AlignmentRun, timed
from .pipeline.schema import ALIGN_SIDE, EXTRA_PREFIX, KEY_PREFIX, TARGET_SIDE, record_keys
from .pipeline.scoring import score_pairs
from .pipeline.stats import BlockStats
from .runner import RunSummary, blocking_figures, cluster_for, generate_inputs, stage_inputs
from .scorers import Scorer, WeightedDistance
from .spec import Alignment, make_alignment

__all__ = ["INDEX_FORMAT", "Index", "build_index", "link_batch", "update_index"]

logger = logging.getLogger("bigalign")

INDEX_FORMAT = "bigalign-index/1"
# Rows of a bucket, about: a batch reads whole buckets (the rows of its keys in them), so buckets are
# small enough that a batch's few keys read little, large enough that a build writes few files.
ROWS_PER_BUCKET = 200_000


def _tables_of(job: Job) -> dict[str, Any]:
    """What an index depends on in a job: the treatments (less their weights, which act on scores
    only), the blocking, the scorer's table, and how the targetset's records are identified."""
    raw = job.raw
    return json.loads(json.dumps({
        "treatments": [{k: v for k, v in t.items() if k != "weight"} for t in raw.get("treatments", [])],
        "blocking": raw.get("blocking"), "model": raw.get("model"),
        "targetset_id": (raw.get("targetset") or {}).get("id"),
    }, default=str))


def _scoring_tables(job: Job) -> dict[str, Any]:
    """What a lookup scores with when no job is given (see :meth:`Index.match`): the job's treatments,
    blocking, model and threshold, and the alignset's id column."""
    raw = job.raw
    return json.loads(json.dumps({"treatments": raw.get("treatments", []), "blocking": raw.get("blocking"),
                                  "model": raw.get("model"), "threshold": raw.get("threshold"),
                                  "alignset_id": (raw.get("alignset") or {}).get("id")}, default=str))


def _differences(indexed: Any, wanted: Any, where: str = "") -> list[str]:
    """Where two job tables differ, by key path."""
    if isinstance(indexed, dict) and isinstance(wanted, dict):
        return [d for k in sorted(set(indexed) | set(wanted), key=str)
                for d in _differences(indexed.get(k), wanted.get(k), f"{where}.{k}" if where else str(k))]
    if isinstance(indexed, list) and isinstance(wanted, list) and len(indexed) == len(wanted):
        return [d for i, (a, b) in enumerate(zip(indexed, wanted)) for d in _differences(a, b, f"{where}[{i}]")]
    return [] if indexed == wanted else [f"{where}: the index has {indexed!r}, the job {wanted!r}"]


def _check_indexable(job: Job) -> None:
    if job.targetset is None:
        raise JobError(f"{job.path}: an index is of a targetset; this job deduplicates (a deduplication's "
                       "index is not built yet)")
    learned = [b.name for b in job.alignment.blocking.blockings() if type(b).fit is not Blocking.fit]
    if learned:
        raise JobError(f"{job.path}: blocking: {learned[0]} learns its keys from both sets; an index needs "
                       "keys that each record gives alone (key, minhash, kdtree, sorted neighbourhood)")


def _filesystem(path: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(path) if is_url(path) else (fsspec.filesystem("file"), os.path.abspath(path))


def _write_json(path: str, value: Any) -> None:
    """JSON, whole or not at all (a local file renamed into place; an object store's object written once)."""
    text = json.dumps(value, indent=2, default=str)
    if is_url(path):
        with fsspec.open(path, "w") as f:
            f.write(text)
        return
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def _write_buckets(frame: pd.DataFrame, column: str, buckets: int, directory: str, part: int) -> int:
    """Write a partition's rows by bucket of ``column`` (``bucket=B/part-P.parquet``, as Hive lays out
    partitions: a reader selects buckets by directory); return the rows written."""
    bucket = (frame[column].to_numpy(np.uint64) % np.uint64(buckets)).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    bounds = np.flatnonzero(np.diff(bucket[order])) + 1
    for rows in np.split(order, bounds) if len(order) else []:
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        with fsspec.open(f"{directory}/bucket={bucket[rows[0]]}/part-{part:05d}.parquet", "wb") as f:
            pq.write_table(table, f)
    return len(frame)


def build_index(job: Job, to: str, client: Any = None, show_progress: bool = False) -> dict[str, Any]:
    """Index the job's targetset at ``to`` (a directory or an fsspec URL); return the manifest.

    With a scorer that learns, the model is fitted as a run fits it, on the job's alignset and targetset,
    and stored with the index.
    """
    _check_indexable(job)
    to = to if is_url(to) else os.path.abspath(to)
    started = time.perf_counter()
    generate_inputs(job)
    alignment = job.alignment
    names = ["alignset", "targetset"] if alignment.scorer.learns else ["targetset"]
    files = check_inputs(job, sets=names)
    fs, root = _filesystem(to)
    previous = _read_manifest(fs, root, missing_ok=True)
    version = f"v{(previous or {}).get('version', 0) + 1}-{uuid.uuid4().hex[:8]}"
    seconds: dict[str, float] = {}
    with cluster_for(job, client, files) as active:
        with timed(seconds, "stage"):
            records, counts = stage_inputs(active, job, files, os.path.join(job.run_dir, "index-rejects.csv"),
                                           show_progress)
        model = None
        if alignment.scorer.learns:
            from .pipeline import run_alignment

            with timed(seconds, "model"):
                run = run_alignment(active, records["alignset"], records["targetset"], alignment, score=False)
            model = run.scorer
        with timed(seconds, "encode"):
            target = records["targetset"]
            meta = encode_records(target._meta, alignment.treatments, alignment.blocking, "target", "targetset")
            encoded = active.persist(target.map_partitions(encode_records, alignment.treatments, alignment.blocking,
                                                           "target", "targetset", meta=meta, enforce_metadata=False))
            layer = _write_layer(active, encoded, alignment.blocking, to, version)
    if isinstance(model, FellegiSunter):  # (the one scorer that learns)
        _write_model(fs, f"{root}/{version}", model)
    manifest = {
        "format": INDEX_FORMAT, "version": (previous or {}).get("version", 0) + 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job": _tables_of(job),
        "scoring": _scoring_tables(job), "layers": [layer], "records": layer["records"],
        "block_rows": layer["block_rows"], "staged": counts["targetset"],
        "model_path": version if model is not None else None,
        "model": None if model is None else model.summary(alignment.treatments, alignment.threshold == "auto"),
        "seconds": {**seconds, "total": time.perf_counter() - started},
    }
    _write_json(f"{to}/manifest.json", manifest)
    return manifest


def _write_layer(active: Any, encoded: Any, blocking: Blocking, to: str, name: str,
                 removed: np.ndarray | None = None) -> dict[str, Any]:
    """Write a layer of the index: encoded records (a dask frame on ``active``, a frame, or None) and the id
    hashes the layer removes from the layers before it (``removed``)."""
    layer: dict[str, Any] = {"path": name, "records": 0, "block_rows": 0, "key_buckets": 1, "record_buckets": 1,
                             "removed": 0}
    if encoded is not None:
        layer.update(_write_records(active, encoded, blocking, f"{to}/{name}"))
    if removed is not None and len(removed):
        layer["removed"] = len(np.unique(removed))
        with fsspec.open(f"{to}/{name}/removed.parquet", "wb") as f:
            pq.write_table(pa.table({"rid": pa.array(np.unique(removed), pa.uint64())}), f)
    return layer


def _write_records(active: Any, encoded: Any, blocking: Blocking, directory: str) -> dict[str, int]:
    """Encoded records' block rows by key bucket and values by id hash bucket, under ``directory``."""
    local = isinstance(encoded, pd.DataFrame)
    rows = block_rows(encoded, blocking, "target") if local else encoded.map_partitions(
        block_rows, blocking, "target", meta=block_rows(encoded._meta, blocking, "target"))
    values = encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]]
    n_records, n_rows = (len(encoded), len(rows)) if local else \
        (f.result() for f in active.compute([encoded.shape[0], rows.shape[0]]))
    key_buckets = max(1, math.ceil(n_rows / ROWS_PER_BUCKET))
    record_buckets = max(1, math.ceil(n_records / ROWS_PER_BUCKET))
    parts = ((rows, "key", key_buckets, "keys"), (values, "rid", record_buckets, "records"))
    if local:
        for frame, column, buckets, part in parts:
            _write_buckets(frame, column, buckets, f"{directory}/{part}", 0)
    else:
        write = dask.delayed(_write_buckets, pure=False)
        for written in active.compute([write(chunk, column, buckets, f"{directory}/{part}", i)
                                       for frame, column, buckets, part in parts
                                       for i, chunk in enumerate(frame.to_delayed())]):
            written.result()
    return {"records": int(n_records), "block_rows": int(n_rows), "key_buckets": key_buckets,
            "record_buckets": record_buckets}


def _read_manifest(fs: Any, root: str, missing_ok: bool = False) -> dict[str, Any] | None:
    path = f"{root}/manifest.json"
    if not fs.exists(path):
        if missing_ok:
            return None
        raise InputError(f"{root}: no index here (no manifest.json); build one with 'bigalign index JOB --to DIR'")
    with fs.open(path, "r") as f:
        manifest = json.load(f)
    if manifest.get("format") != INDEX_FORMAT:
        raise InputError(f"{root}: an index of format {manifest.get('format')!r}; this bigalign reads "
                         f"{INDEX_FORMAT!r}")
    return manifest


def _write_model(fs: Any, base: str, model: FellegiSunter) -> None:
    """A fitted model's scoring state: JSON, and its term frequency tables as Parquet."""
    state = {"cuts": model.cuts_, "m": [m.tolist() for m in model.m_], "u": [u.tolist() for u in model.u_],
             "prior": model.prior_, "groups": model.groups_, "threshold": model.threshold_,
             "conditional_u": [[k, j, table.tolist()] for (k, j), table in model.conditional_u_.items()],
             "term_frequencies": sorted(model.term_frequencies_)}
    with fs.open(f"{base}/model.json", "w") as f:
        json.dump(state, f)
    if model.term_frequencies_:
        terms = pd.concat([pd.DataFrame({"treatment": k, "hash": hashes, "frequency": frequencies})
                           for k, (hashes, frequencies) in model.term_frequencies_.items()], ignore_index=True)
        with fs.open(f"{base}/model-terms.parquet", "wb") as f:
            terms.to_parquet(f, index=False)


def _read_model(fs: Any, base: str) -> FellegiSunter:
    with fs.open(f"{base}/model.json", "r") as f:
        state = json.load(f)
    model = FellegiSunter()
    model.cuts_ = state["cuts"]
    model.m_, model.u_ = [np.asarray(m) for m in state["m"]], [np.asarray(u) for u in state["u"]]
    model.prior_, model.groups_ = state["prior"], state["groups"]
    model.conditional_u_ = {(k, j): np.asarray(table) for k, j, table in state["conditional_u"]}
    model.threshold_ = state["threshold"]
    model.distance_threshold_ = 1.0 - model.threshold_
    model.term_frequencies_ = {}
    if state["term_frequencies"]:
        with fs.open(f"{base}/model-terms.parquet", "rb") as f:
            terms = pd.read_parquet(f)
        for k in state["term_frequencies"]:
            mine = terms[terms["treatment"] == k]
            model.term_frequencies_[k] = (mine["hash"].to_numpy(np.uint64), mine["frequency"].to_numpy(np.float64))
    return model


class Index:
    """An index opened at one version (see :func:`build_index`): its block rows and records read by key and
    by id hash."""

    def __init__(self, path: str, allow_modules: Collection[str] = ()):
        self.fs, self.root = _filesystem(path)
        manifest = _read_manifest(self.fs, self.root)
        assert manifest is not None
        self.manifest, self.layers = manifest, manifest["layers"]
        self.allow_modules = allow_modules
        # Per layer, the id hashes the later layers removed or replaced (sorted): its rows of those are gone.
        removed = [self._removed_by(layer) for layer in self.layers]
        self._gone = [np.unique(np.concatenate(removed[i + 1:] + [np.empty(0, np.uint64)]))
                      for i in range(len(self.layers))]
        # buckets read by lookups, kept: (layer, part, bucket) → the column's sorted values, the rows in that order
        self._buckets: dict[tuple[int, str, int], tuple[np.ndarray, pd.DataFrame]] = {}
        self._stored: tuple[Alignment, Scorer] | None = None

    @classmethod
    def open(cls, path: str, allow_modules: Collection[str] = ()) -> "Index":
        """The index at ``path``, at its current version (``allow_modules``: as a job's, for user code its
        treatments name)."""
        return cls(path, allow_modules)

    def _removed_by(self, layer: Mapping[str, Any]) -> np.ndarray:
        if not layer["removed"]:
            return np.empty(0, np.uint64)
        with self.fs.open(f"{self.root}/{layer['path']}/removed.parquet", "rb") as f:
            return pq.read_table(f)["rid"].to_numpy().astype(np.uint64)

    def _live(self, rows: pd.DataFrame, i: int) -> pd.DataFrame:
        """The rows of layer ``i`` whose record no later layer removed."""
        if not len(self._gone[i]) or not len(rows):
            return rows
        return rows[~np.isin(rows["rid"].to_numpy(np.uint64), self._gone[i])]

    def _read(self, part: str, column: str, wanted: np.ndarray) -> pd.DataFrame:
        """The live rows of ``part`` whose ``column`` is among ``wanted``, from their buckets alone."""
        wanted = np.unique(np.asarray(wanted, dtype=np.uint64))
        found = []
        for i, layer in enumerate(self.layers):
            if not layer["records"]:
                continue
            buckets = layer["key_buckets" if part == "keys" else "record_buckets"]
            chosen = np.unique((wanted % np.uint64(buckets)).astype(np.int64)).tolist()
            dataset = pads.dataset(f"{self.root}/{layer['path']}/{part}", filesystem=self.fs, format="parquet",
                                   partitioning="hive")
            table = dataset.to_table(filter=pads.field("bucket").isin(chosen)
                                     & pads.field(column).isin(pa.array(wanted, pa.uint64())))
            found.append(self._live(table.drop_columns(["bucket"]).to_pandas(), i))
        return pd.concat(found, ignore_index=True) if found else pd.DataFrame({column: np.empty(0, np.uint64),
                                                                              "rid": np.empty(0, np.uint64)})

    def block_rows(self, keys: np.ndarray) -> pd.DataFrame:
        """The indexed records' block rows of these routing keys."""
        return self._read("keys", "key", keys)

    def records(self, rids: np.ndarray) -> pd.DataFrame:
        """The indexed records (id, id hash, encoded values) of these id hashes."""
        return self._read("records", "rid", rids)

    def scorer(self, job: Job) -> Scorer:
        """The scorer a batch scores with: the stored model, or the job's weighted distance at its threshold."""
        if job.alignment.scorer.learns:
            return _read_model(self.fs, f"{self.root}/{self.manifest['model_path']}")
        return job.alignment.scorer.fitted(None, job.alignment.treatments, job.alignment.threshold)

    def stored_alignment(self) -> tuple[Alignment, Scorer]:
        """The indexed job's alignment (its treatments, blocking and threshold, every pair's explanation) and
        the scorer it was indexed with (the stored model, or the weighted distance at the job's threshold)."""
        if self._stored is None:
            tables, where = self.manifest["scoring"], f"{self.root}/manifest.json"
            code = UserCode(self.allow_modules, True)
            treatments, _, _ = read_treatments(where, tables["treatments"], code)
            blocking = CrossProductBlocking() if not tables["blocking"] else \
                read_blocking(TableReader(where, tables["blocking"], "blocking"), code)
            learned = (tables.get("model") or {}).get("kind") == "fellegi-sunter"
            scorer = _read_model(self.fs, f"{self.root}/{self.manifest['model_path']}") if learned \
                else WeightedDistance()
            alignment = make_alignment(treatments, scorer=scorer, blocking=blocking, threshold=tables["threshold"],
                                       uniq=False, explain=True)
            self._stored = alignment, scorer if learned else scorer.fitted(None, treatments, tables["threshold"])
        return self._stored

    def _kept(self, part: str, column: str, wanted: np.ndarray) -> pd.DataFrame:
        """As :meth:`_read`, from buckets read once and kept in memory, sorted (what lookups read)."""
        wanted = np.unique(np.asarray(wanted, dtype=np.uint64))
        found = []
        for i, layer in enumerate(self.layers):
            if not layer["records"]:
                continue
            buckets = np.uint64(layer["key_buckets" if part == "keys" else "record_buckets"])
            for bucket in np.unique((wanted % buckets).astype(np.int64)).tolist():
                if (i, part, bucket) not in self._buckets:
                    directory = f"{self.root}/{layer['path']}/{part}/bucket={bucket}"
                    rows = pads.dataset(directory, filesystem=self.fs, format="parquet").to_table().to_pandas() \
                        if self.fs.exists(directory) else pd.DataFrame({column: np.empty(0, np.uint64),
                                                                        "rid": np.empty(0, np.uint64)})
                    rows = self._live(rows, i)
                    values = rows[column].to_numpy(np.uint64)
                    order = np.argsort(values, kind="stable")
                    self._buckets[(i, part, bucket)] = values[order], rows.iloc[order].reset_index(drop=True)
                values, rows = self._buckets[(i, part, bucket)]
                mine = wanted[(wanted % buckets).astype(np.int64) == bucket]
                starts, stops = np.searchsorted(values, mine, "left"), np.searchsorted(values, mine, "right")
                at = [np.arange(start, stop) for start, stop in zip(starts, stops)]
                found.append(rows.iloc[np.concatenate(at).astype(np.int64) if at else np.empty(0, np.int64)])
        return pd.concat(found, ignore_index=True) if found else pd.DataFrame()

    def match(self, records: Mapping[str, Any] | pd.DataFrame, k: int = 5) -> pd.DataFrame:
        """The ``k`` best matches in the index of a record (a mapping of column to value) or of each record
        of a frame, without a cluster: ``align_id`` (the record's id, or its position), ``target_id``, the
        score (``distance``, or ``match_weight`` and ``match_probability``), ``linked`` (whether the job
        would link the pair), and each treatment's part (its distance; with a model, level and weight)."""
        frame = pd.DataFrame([dict(records)]) if isinstance(records, Mapping) else records.reset_index(drop=True)
        alignment, scorer = self.stored_alignment()
        needed = {str(c) for t in alignment.treatments
                  for c in (t.attribute if isinstance(t.attribute, tuple) else (t.attribute,))}
        missing = sorted((needed | set(map(str, alignment.blocking.columns))) - set(map(str, frame.columns)))
        if missing:
            raise InputError(f"a record to match needs the columns {missing} (the indexed job's treatments and "
                             f"blocking read them); it has {list(map(str, frame.columns))}")
        id_column = self.manifest["scoring"].get("alignset_id")
        if id_column in frame.columns:
            frame = frame[[id_column] + [c for c in frame.columns if c != id_column]]
        else:
            frame = frame.assign(_record=np.arange(len(frame)).astype(str))[["_record", *frame.columns]]
        links = link_pairs(self, frame, alignment, scorer, self._kept, np.inf, False)[0]
        links = sort_links(links).groupby("align_id", sort=False).head(k).reset_index(drop=True)
        links.insert(3, "linked", links["distance"].to_numpy() <= scorer.distance_threshold_)
        return scorer.as_written(links)

    def check(self, job: Job) -> None:
        """Refuse a job the index was not built for, saying what differs."""
        differences = _differences(self.manifest["job"], _tables_of(job))
        if differences:
            raise JobError(f"{job.path}: the index at {self.root} was built for another job ("
                           + "; ".join(differences[:5]) + "); build the index again for this job")


def link_pairs(index: Index, records: pd.DataFrame, alignment: Alignment, scorer: Scorer, read: Any,
               threshold: float, uniq: bool) -> tuple[pd.DataFrame, BlockStats, int]:
    """The candidate pairs of ``records`` (the id first) in ``index``, scored as a run scores them: paired
    as its candidate stage pairs them (the index rows of their keys, read by ``read``: the index's
    ``_read`` or ``_kept``), each pair's ``distance`` (and explanation, with the alignment's ``explain``),
    with ``uniq`` the best of each record, else those under ``threshold``; the blocking's and scoring's
    figures; and how many index rows the records' keys touched."""
    encoded = encode_records(records, alignment.treatments, alignment.blocking, "align", "alignset")
    mine = block_rows(encoded, alignment.blocking, "align")
    theirs = read("keys", "key", mine["key"].to_numpy(np.uint64))
    theirs = theirs[mine.columns].astype(mine.dtypes.to_dict()) if len(theirs) else mine.iloc[:0]
    found = candidate_pairs(pd.concat([mine, theirs], ignore_index=True), alignment.blocking, False,
                            alignment.max_block_pairs, None, dense_block_pairs=None, rules=scorer.learns,
                            link_type=alignment.link_type)
    pairs = found.pairs
    if not len(pairs):
        return (pd.DataFrame({"align_id": encoded["id"].iloc[:0], "target_id": encoded["id"].iloc[:0],
                              "distance": np.empty(0, np.float64)}), found.stats, len(theirs))
    targets = read("records", "rid", pairs["rid_b"].to_numpy(np.uint64))
    values = [_values(targets, TARGET_SIDE),
              _values(encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]],
                      ALIGN_SIDE)]
    joined = pairs.merge(values[0], left_on="rid_b", right_on=f"{TARGET_SIDE}:rid", how="inner").merge(
        values[1], left_on="rid_a", right_on=f"{ALIGN_SIDE}:rid", how="inner")
    scored = score_pairs(joined, alignment.treatments, threshold, uniq, False, None, scorer, alignment.explain)
    return scored.links, found.stats + scored.stats, len(theirs)


def link_records(index: Index, records: pd.DataFrame, job: Job, scorer: Scorer
                 ) -> tuple[pd.DataFrame, BlockStats, np.ndarray | None, int]:
    """Link ``records`` (staged: the id first) against ``index`` as the job would: the links (best per
    record with ``uniq``, under the threshold), the blocking's figures, the best rejected distances, and
    how many index rows the records' keys touched."""
    alignment = job.alignment
    uniq = alignment.uniq or alignment.one_to_one
    links, stats, touched = link_pairs(index, records, alignment, scorer, index._read, scorer.distance_threshold_,
                                       uniq)
    if not uniq:
        return sort_links(links), stats, None, touched
    links = best_match_per_item(links)
    linked = links["distance"].to_numpy() <= scorer.distance_threshold_
    return links[linked].reset_index(drop=True), stats, links["distance"].to_numpy()[~linked], touched


def _values(encoded: pd.DataFrame, side: str) -> pd.DataFrame:
    return encoded.rename(columns={c: f"{side}:{c}" for c in encoded.columns})


def link_batch(job: Job, index_path: str, records: str, client: Any = None, show_progress: bool = False,
               output: str | None = None, add: bool = False, replace: bool = False) -> RunSummary:
    """Link the records at ``records`` (read as the job reads its alignset) against the index; write links,
    summary and report as a run does (``output``: the links' path, by default the job's). With ``add``, the
    records join the index afterwards (see :func:`update_index`; ``replace``: those whose id it holds
    replace the old ones)."""
    index = Index.open(index_path)
    index.check(job)
    table = {**(job.raw.get("alignset") or {}), "path": records if is_url(records) else os.path.abspath(records)}
    batch_job = dataclasses.replace(job, alignset=set_spec(job.path, "alignset", table))
    if output is not None:
        batch_job = dataclasses.replace(batch_job, output=dataclasses.replace(job.output, path=output))
    files = check_inputs(batch_job, sets=["alignset"])
    run_dir = batch_job.run_dir
    os.makedirs(run_dir, exist_ok=True)
    paths = {"links": batch_job.output.path, "rejects": os.path.join(run_dir, "rejects.csv"),
             "summary": os.path.join(run_dir, "summary.json"), "report": os.path.join(run_dir, "report.html")}
    seconds: dict[str, float] = {}
    with cluster_for(batch_job, client, files) as active:
        with timed(seconds, "stage"):
            staged, counts = stage_inputs(active, batch_job, files, paths["rejects"], show_progress)
            batch = active.compute(staged["alignset"]).result()
    scorer = index.scorer(job)
    with timed(seconds, "score"):
        links, stats, best_rejected, touched = link_records(index, batch, job, scorer)
    links = one_to_one(links) if job.alignment.one_to_one else links
    with timed(seconds, "write"):
        write_links(scorer.as_written(links), paths["links"], batch_job.output.format, batch_job.output.align_uri,
                    batch_job.output.target_uri)
    summary = RunSummary(job=os.path.abspath(job.path), files=paths, links=len(links), seconds=seconds)
    summary.records = {**counts, "targetset": {**index.manifest["staged"], "indexed": index.manifest["records"]}}
    summary.model = index.manifest["model"]
    summary.blocking = {**blocking_figures(len(batch) * index.manifest["records"], stats),
                        "index": {"path": index.root, "version": index.manifest["version"],
                                  "block_rows_read": touched}}
    if add:
        with timed(seconds, "add"):
            updated = update_index(job, index_path, add=batch, replace=replace)
        summary.blocking["index"]["added_as_version"] = updated["version"]
    with atomic_path(paths["summary"]) as tmp, open(tmp, "w") as f:
        json.dump(summary.as_dict(), f, indent=2, default=str)
    from .report import save_report_data, write_report

    save_report_data(job, AlignmentRun(links, stats, seconds, 0, best_rejected, scorer), links, run_dir)
    write_report(run_dir)
    return summary


def _staged_targets(job: Job, records: str, client: Any) -> pd.DataFrame:
    """The records at ``records`` staged as the job stages its targetset (in a staging directory of this
    process's own: updates of one index may run at once)."""
    table = {**(job.raw.get("targetset") or {}), "path": records if is_url(records) else os.path.abspath(records)}
    os.makedirs(job.run_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".index-add-", dir=job.run_dir) as own:
        target_job = dataclasses.replace(job, targetset=set_spec(job.path, "targetset", table),
                                         output=dataclasses.replace(job.output, run_dir=own))
        files = check_inputs(target_job, sets=["targetset"])
        with cluster_for(target_job, client, files) as active:
            staged, counts = stage_inputs(active, target_job, files, os.path.join(own, "rejects.csv"), False)
            frame = active.compute(staged["targetset"]).result()
        if counts["targetset"]["rejected"]:  # (kept beside the run's own rejects, and said)
            kept = os.path.join(job.run_dir, "rejects-added.csv")
            os.replace(os.path.join(own, "rejects.csv"), kept)
            logger.warning("%d records of %s rejected, not added: see %s", counts["targetset"]["rejected"],
                           records, kept)
    return frame


def update_index(job: Job, path: str, add: pd.DataFrame | str | None = None, remove: Sequence[str] = (),
                 replace: bool = False, client: Any = None) -> dict[str, Any]:
    """Add records to the index (``add``: staged records, the id first, or a path read as the job reads its
    targetset) and remove others by id; return the new manifest.

    The change is a new layer and a new version: readers keep the version they opened, a failed update
    leaves the old one, and two updates at once take turns (a lock file beside the manifest; an index on
    an object store is updated by one process at a time, which this cannot check). An added record whose
    id is already in the index is refused, unless ``replace``: it then replaces the old one.
    """
    Index.open(path).check(job)
    if add is not None and any(t.target_attribute != t.attribute for t in job.alignment.treatments):
        raise JobError(f"{job.path}: treatments name a column per set; records added to the index are read "
                       "with the targetset's columns, so every treatment must name one column")
    if isinstance(add, str):
        add = _staged_targets(job, add, client)
    fs, root = _filesystem(path)
    lock = os.path.join(root, ".update.lock") if not is_url(path) else None
    with process_lock(lock, f"the index at {root}") if lock else contextlib.nullcontext():
        index = Index.open(path)  # (the latest version, now that no other update runs)
        manifest = dict(index.manifest)
        name = f"v{manifest['version'] + 1}-{uuid.uuid4().hex[:8]}"
        gone = record_keys(pd.Series(list(remove), dtype=object).astype(str)) if len(remove) else \
            np.empty(0, np.uint64)
        present = index.records(gone)["rid"].to_numpy(np.uint64) if len(gone) else gone
        missing = len(np.unique(gone)) - len(np.unique(present))
        if missing:
            raise InputError(f"{root}: {missing} of the ids to remove are not in the index")
        encoded = None
        if add is not None:
            encoded = encode_records(add, job.alignment.treatments, job.alignment.blocking, "target", "targetset")
            again = index.records(encoded["rid"].to_numpy(np.uint64))
            if len(again) and not replace:
                raise InputError(f"{root}: {len(again)} of the records to add are already in the index (ids "
                                 f"{again['id'].astype(str).head(5).tolist()}); replace them with --replace")
            present = np.concatenate([present, again["rid"].to_numpy(np.uint64)])
        layer = _write_layer(None, encoded, job.alignment.blocking, path if is_url(path) else root, name, present)
        manifest.update(version=manifest["version"] + 1, layers=manifest["layers"] + [layer],
                        records=manifest["records"] - len(np.unique(present)) + layer["records"],
                        block_rows=sum(layer_["block_rows"] for layer_ in manifest["layers"]) + layer["block_rows"],
                        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        _write_json(f"{path if is_url(path) else root}/manifest.json", manifest)
    return manifest


def index_lines(manifest: Mapping[str, Any], to: str) -> list[str]:
    """What the command line prints of a built index."""
    return [f"indexed: {manifest['records']} records of the targetset ({manifest['block_rows']} block rows, "
            f"{len(manifest['layers'])} layer(s)) → {to}, version {manifest['version']}",
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in manifest["seconds"].items())]
