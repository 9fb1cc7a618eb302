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

import dataclasses
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import dask
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from .blocking.base import Blocking
from .errors import InputError, JobError
from .fellegi_sunter import FellegiSunter
from .io import atomic_path, is_url, write_links
from .job_tables import set_spec
from .jobs import Job, check_inputs
from .matching import best_match_per_item, one_to_one, sort_links
from .pipeline.candidates import candidate_pairs
from .pipeline.encode import block_rows, encode_records
from .pipeline.graph import AlignmentRun, timed
from .pipeline.schema import ALIGN_SIDE, EXTRA_PREFIX, KEY_PREFIX, TARGET_SIDE
from .pipeline.scoring import score_pairs
from .pipeline.stats import BlockStats
from .runner import RunSummary, cluster_for, generate_inputs, stage_inputs
from .scorers import Scorer

__all__ = ["INDEX_FORMAT", "Index", "build_index", "link_batch"]

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
            target, blocking = records["targetset"], alignment.blocking
            meta = encode_records(target._meta, alignment.treatments, blocking, "target", "targetset")
            encoded = active.persist(target.map_partitions(encode_records, alignment.treatments, blocking,
                                                           "target", "targetset", meta=meta, enforce_metadata=False))
            rows = encoded.map_partitions(block_rows, blocking, "target",
                                          meta=block_rows(encoded._meta, blocking, "target"))
            n_records, n_rows = (f.result() for f in active.compute([encoded.shape[0], rows.shape[0]]))
            key_buckets = max(1, math.ceil(n_rows / ROWS_PER_BUCKET))
            record_buckets = max(1, math.ceil(n_records / ROWS_PER_BUCKET))
            values = encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]]
            base = f"{root}/{version}"
            write = dask.delayed(_write_buckets, pure=False)
            for written in active.compute([write(part, column, buckets, f"{to}/{version}/{name}", i)
                                           for frame, column, buckets, name in ((rows, "key", key_buckets, "keys"),
                                                                                (values, "rid", record_buckets,
                                                                                 "records"))
                                           for i, part in enumerate(frame.to_delayed())]):
                written.result()
    if isinstance(model, FellegiSunter):  # (the one scorer that learns)
        _write_model(fs, base, model)
    manifest = {
        "format": INDEX_FORMAT, "version": (previous or {}).get("version", 0) + 1, "path": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job": _tables_of(job),
        "records": int(n_records), "block_rows": int(n_rows), "key_buckets": key_buckets,
        "record_buckets": record_buckets, "staged": counts["targetset"],
        "model": None if model is None else model.summary(alignment.treatments, alignment.threshold == "auto"),
        "seconds": {**seconds, "total": time.perf_counter() - started},
    }
    _write_json(f"{to}/manifest.json", manifest)
    return manifest


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

    def __init__(self, path: str):
        self.fs, self.root = _filesystem(path)
        manifest = _read_manifest(self.fs, self.root)
        assert manifest is not None
        self.manifest = manifest
        self.base = f"{self.root}/{manifest['path']}"

    @classmethod
    def open(cls, path: str) -> "Index":
        return cls(path)

    def _read(self, part: str, column: str, wanted: np.ndarray, buckets: int) -> pd.DataFrame:
        """The rows of ``part`` whose ``column`` is among ``wanted``, from their buckets alone."""
        wanted = np.unique(np.asarray(wanted, dtype=np.uint64))
        chosen = np.unique((wanted % np.uint64(buckets)).astype(np.int64)).tolist()
        dataset = pads.dataset(f"{self.base}/{part}", filesystem=self.fs, format="parquet", partitioning="hive")
        table = dataset.to_table(filter=pads.field("bucket").isin(chosen)
                                 & pads.field(column).isin(pa.array(wanted, pa.uint64())))
        return table.drop_columns(["bucket"]).to_pandas()

    def block_rows(self, keys: np.ndarray) -> pd.DataFrame:
        """The indexed records' block rows of these routing keys."""
        return self._read("keys", "key", keys, self.manifest["key_buckets"])

    def records(self, rids: np.ndarray) -> pd.DataFrame:
        """The indexed records (id, id hash, encoded values) of these id hashes."""
        return self._read("records", "rid", rids, self.manifest["record_buckets"])

    def scorer(self, job: Job) -> Scorer:
        """The scorer a batch scores with: the stored model, or the job's weighted distance at its threshold."""
        if job.alignment.scorer.learns:
            return _read_model(self.fs, self.base)
        return job.alignment.scorer.fitted(None, job.alignment.treatments, job.alignment.threshold)

    def check(self, job: Job) -> None:
        """Refuse a job the index was not built for, saying what differs."""
        differences = _differences(self.manifest["job"], _tables_of(job))
        if differences:
            raise JobError(f"{job.path}: the index at {self.root} was built for another job ("
                           + "; ".join(differences[:5]) + "); build the index again for this job")


def link_records(index: Index, records: pd.DataFrame, job: Job, scorer: Scorer
                 ) -> tuple[pd.DataFrame, BlockStats, np.ndarray | None, int]:
    """Link ``records`` (staged: the id first) against ``index``: the links (best per record with ``uniq``,
    under the threshold), the blocking's figures, the best rejected distances, and how many index rows the
    records' keys touched."""
    alignment = job.alignment
    encoded = encode_records(records, alignment.treatments, alignment.blocking, "align", "alignset")
    mine = block_rows(encoded, alignment.blocking, "align")
    theirs = index.block_rows(mine["key"].to_numpy(np.uint64))
    found = candidate_pairs(pd.concat([mine, theirs.astype(mine.dtypes.to_dict())], ignore_index=True),
                            alignment.blocking, False, alignment.max_block_pairs, None,
                            dense_block_pairs=None, rules=scorer.learns, link_type=alignment.link_type)
    pairs = found.pairs
    values = [_values(index.records(pairs["rid_b"].to_numpy(np.uint64)), TARGET_SIDE),
              _values(encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]],
                      ALIGN_SIDE)]
    joined = pairs.merge(values[0], left_on="rid_b", right_on=f"{TARGET_SIDE}:rid", how="inner").merge(
        values[1], left_on="rid_a", right_on=f"{ALIGN_SIDE}:rid", how="inner")
    uniq = alignment.uniq or alignment.one_to_one
    scored = score_pairs(joined, alignment.treatments, scorer.distance_threshold_, uniq, False, None, scorer,
                         alignment.explain)
    links = best_match_per_item(scored.links) if uniq else sort_links(scored.links)
    best_rejected = None
    if uniq:
        linked = links["distance"].to_numpy() <= scorer.distance_threshold_
        best_rejected = links["distance"].to_numpy()[~linked]
        links = links[linked].reset_index(drop=True)
    return links, found.stats + scored.stats, best_rejected, len(theirs)


def _values(encoded: pd.DataFrame, side: str) -> pd.DataFrame:
    return encoded.rename(columns={c: f"{side}:{c}" for c in encoded.columns})


def link_batch(job: Job, index_path: str, records: str, client: Any = None, show_progress: bool = False,
               output: str | None = None) -> RunSummary:
    """Link the records at ``records`` (read as the job reads its alignset) against the index; write links,
    summary and report as a run does (``output``: the links' path, by default the job's)."""
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
    cross = len(batch) * index.manifest["records"]
    summary.blocking = {"cross_product": cross, "blocks": stats.blocks, "block_pairs": stats.block_pairs,
                        "candidate_pairs": stats.candidate_pairs,
                        "candidate_share_of_cross_product": stats.candidate_pairs / max(1, cross),
                        "largest_block_pairs": stats.largest_block_pairs,
                        "largest_block_share": stats.largest_block_pairs / max(1, stats.block_pairs),
                        "excluded_blocks": stats.excluded_blocks, "excluded_pairs": stats.excluded_pairs,
                        "links_under_threshold": stats.links_under_threshold,
                        "index": {"path": index.root, "version": index.manifest["version"],
                                  "block_rows_read": touched}}
    with atomic_path(paths["summary"]) as tmp, open(tmp, "w") as f:
        json.dump(summary.as_dict(), f, indent=2, default=str)
    from .report import save_report_data, write_report

    save_report_data(job, AlignmentRun(links, stats, seconds, 0, best_rejected, scorer), links, run_dir)
    write_report(run_dir)
    return summary


def index_lines(manifest: Mapping[str, Any], to: str) -> list[str]:
    """What the command line prints of a built index."""
    return [f"indexed: {manifest['records']} records of the targetset ({manifest['block_rows']} block rows in "
            f"{manifest['key_buckets']} key buckets) → {to}, version {manifest['version']}",
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in manifest["seconds"].items())]
