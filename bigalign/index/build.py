"""Building an index: a job's targetset (or a deduplication's set) staged, encoded and written once."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from ..blocking import AutoBlocking
from ..blocking.base import Blocking
from ..errors import JobError
from ..fellegi_sunter import FellegiSunter
from ..io import is_url
from ..jobs import Job, check_inputs
from ..pipeline.encode import encode_records
from ..pipeline.timing import timed
from ..runner import cluster_for, generate_inputs
from ..staging import stage_inputs
from ..values.sets import is_value_sets
from .entities import ENTITY_COLUMNS, update_entities
from .store import (
    INDEX_FORMAT,
    filesystem,
    indexed_set,
    job_tables,
    read_manifest,
    scoring_tables,
    write_edges,
    write_json,
    write_layer,
    write_model,
    write_table,
)

__all__ = ["build_index", "check_indexable", "index_lines", "write_entities"]


def check_indexable(job: Job) -> None:
    if job.several:
        raise JobError(f"{job.path}: an index is of one set (a targetset, or a deduplicated set); this job links "
                       "several sets (their index is not built yet)")
    if isinstance(job.alignment.blocking, AutoBlocking):
        raise JobError(f"{job.path}: blocking: kind = \"auto\" is chosen again by each run; an index keeps its "
                       "keys: write them in the job (bigalign plan JOB --suggest prints the [blocking] to paste)")
    learned = [b.name for b in job.alignment.blocking.blockings() if type(b).fit is not Blocking.fit]
    if learned:
        raise JobError(f"{job.path}: blocking: {learned[0]} learns its keys from both sets; an index needs "
                       "keys that each record gives alone (key, minhash, kdtree, sorted neighbourhood)")


def write_entities(to: str, name: str, update: Any) -> None:
    """A deduplication layer's entity tables (see :mod:`.entities`)."""
    write_table(update.entities, f"{to}/{name}/entities.parquet")
    write_table(update.issued, f"{to}/{name}/issued.parquet")
    write_table(update.changes, f"{to}/{name}/changes.parquet")


def refuse_value_sets(records: Any, name: str) -> None:
    """An index holds records of one value per attribute: a set whose records hold several (a query's
    labels in many languages) is refused before anything is written."""
    sets = [str(c) for c, dtype in records.dtypes.items() if is_value_sets(dtype)]
    if sets:
        raise JobError(f"{name}: records hold several values of {', '.join(sets)}; an index keeps one value per "
                       "attribute: choose one in the query (a language, SAMPLE), or align with 'bigalign run'")


def build_index(job: Job, to: str, client: Any = None, show_progress: bool = False) -> dict[str, Any]:
    """Index the job's targetset at ``to`` (a directory or an fsspec URL); return the manifest.

    With a scorer that learns, the model is fitted as a run fits it, on the job's sets, and stored with the
    index. A deduplication's index also holds its links and entities, as a run of the job clusters them.
    """
    check_indexable(job)
    to = to if is_url(to) else os.path.abspath(to)
    started = time.perf_counter()
    generate_inputs(job)
    alignment, dedupe = job.alignment, job.alignment.dedupe
    names = ["alignset", "targetset"] if alignment.scorer.learns and not dedupe else [indexed_set(job)]
    files = check_inputs(job, sets=names)
    fs, root = filesystem(to)
    previous = read_manifest(fs, root, missing_ok=True)
    number = (previous or {}).get("version", 0) + 1
    version = f"v{number}-{uuid.uuid4().hex[:8]}"
    seconds: dict[str, float] = {}
    side, set_name = ("align", "alignset") if dedupe else ("target", "targetset")
    with cluster_for(job, client, files) as active:
        with timed(seconds, "stage"):
            records, counts = stage_inputs(active, job, files, os.path.join(job.run_dir, "index-rejects.csv"),
                                           show_progress)
            for name in names:
                refuse_value_sets(records[name], name)
        model, links = None, None
        if alignment.scorer.learns or dedupe:
            from ..pipeline import run_alignment

            with timed(seconds, "model" if not dedupe else "links"):
                target = records[set_name]
                run = run_alignment(active, records["alignset"], target, alignment, score=dedupe)
            model = run.scorer if alignment.scorer.learns else None
            links = run.links if dedupe else None
        with timed(seconds, "encode"):
            target = records[set_name]
            meta = encode_records(target._meta, alignment.treatments, alignment.blocking, side, set_name)
            encoded = active.persist(target.map_partitions(encode_records, alignment.treatments, alignment.blocking,
                                                           side, set_name, meta=meta, enforce_metadata=False))
            layer = write_layer(active, encoded, alignment.blocking, to, version)
        if dedupe:
            with timed(seconds, "entities"):
                ids = active.compute(encoded[["id", "rid"]]).result()
                entities = _index_entities(job, run.scorer, links, ids, to, version, number, layer)
    if isinstance(model, FellegiSunter):  # (the one scorer that learns)
        write_model(fs, f"{root}/{version}", model)
    manifest = {
        "format": INDEX_FORMAT, "version": number,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job": job_tables(job),
        "scoring": scoring_tables(job), "layers": [layer], "records": layer["records"],
        "block_rows": layer["block_rows"], "staged": counts[set_name],
        "model_path": version if model is not None else None,
        "model": None if model is None else model.summary(alignment.treatments, alignment.threshold == "auto"),
        "seconds": {**seconds, "total": time.perf_counter() - started},
    }
    if dedupe:
        manifest.update(entities=version, clusters=entities)
    write_json(f"{to}/manifest.json", manifest)
    return manifest


def _index_entities(job: Job, scorer: Any, links: pd.DataFrame, ids: pd.DataFrame, to: str, version: str,
                    number: int, layer: dict[str, Any]) -> int:
    """Write a deduplication's links (as the run writes them, with their records' id hashes) and its
    entities; return how many entities."""
    rid = pd.Series(ids["rid"].to_numpy(np.uint64), index=ids["id"].astype(str).to_numpy())
    written = scorer.as_written(links).assign(
        rid_a=rid.reindex(links["align_id"].astype(str)).to_numpy(np.uint64),
        rid_b=rid.reindex(links["target_id"].astype(str)).to_numpy(np.uint64))
    write_edges(written, to, version, layer)
    nobody = pd.DataFrame({c: pd.Series(dtype=np.uint64 if c in ("rid", "component") else object)
                           for c in ENTITY_COLUMNS})
    clusters = job.clusters
    update = update_entities(nobody, pd.DataFrame({"cluster_id": pd.Series(dtype=object),
                                                   "born": pd.Series(dtype=np.int64)}),
                             ids, np.empty(0, np.uint64), lambda rids: written.iloc[:0], written, number,
                             clusters.threshold if clusters else None, clusters.max_size if clusters else None)
    write_entities(to, version, update)
    return int(update.entities["cluster_id"].nunique())


def index_lines(manifest: dict[str, Any], to: str) -> list[str]:
    """What the command line prints of a built or updated index."""
    what = "the deduplicated set" if manifest["job"].get("dedupe") else "the targetset"
    entities = f", {manifest['clusters']} entities" if manifest.get("clusters") is not None else ""
    return [f"indexed: {manifest['records']} records of {what} ({manifest['block_rows']} block rows, "
            f"{len(manifest['layers'])} layer(s){entities}) → {to}, version {manifest['version']}",
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in manifest["seconds"].items())]
