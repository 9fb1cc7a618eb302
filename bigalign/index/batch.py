"""Batches of new records against an index: linked as a run would link them, and added to it (or records
removed from it) as a new version."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, JobError
from ..io import atomic_path, is_url, process_lock, write_clusters
from ..job_tables import output_format, set_spec
from ..jobs import Job, check_inputs
from ..matching import best_match_per_item, one_to_one, sort_links
from ..pipeline.encode import encode_records
from ..pipeline.schema import record_keys
from ..pipeline.stats import AlignmentRun, BlockStats
from ..pipeline.timing import timed
from ..runner import RunSummary, blocking_figures, cluster_for, write_outputs
from ..scorers import Scorer
from ..staging import stage_inputs
from .build import refuse_value_sets, write_entities
from .entities import EntityUpdate, update_entities
from .reader import Index, encode_alignset, link_pairs
from .store import filesystem, indexed_set, write_edges, write_json, write_layer

__all__ = ["link_batch", "update_index"]

logger = logging.getLogger("bigalign")


@dataclasses.dataclass
class Batch:
    """A batch linked against an index: its links (as scored), the blocking's figures, the best rejected
    distances (with ``uniq``), how many index rows its keys touched; in a deduplication its entities."""

    links: pd.DataFrame
    stats: BlockStats
    best_rejected: np.ndarray | None
    touched: int
    entities: EntityUpdate | None = None


def link_records(index: Index, records: pd.DataFrame, job: Job, scorer: Scorer) -> Batch:
    """Link ``records`` (staged: the id first) against the index of a targetset as the job would: best per
    record with ``uniq``, under the threshold."""
    alignment = job.alignment
    uniq = alignment.uniq or alignment.one_to_one
    links, stats, touched = link_pairs(index, encode_alignset(records, alignment), alignment, scorer, index._read,
                                       scorer.distance_threshold_, uniq)
    if not uniq:
        return Batch(sort_links(links), stats, None, touched)
    links = best_match_per_item(links)
    linked = links["distance"].to_numpy() <= scorer.distance_threshold_
    return Batch(links[linked].reset_index(drop=True), stats, links["distance"].to_numpy()[~linked], touched)


def _dedupe_records(index: Index, job: Job, scorer: Scorer, encoded: pd.DataFrame | None, removed: np.ndarray,
                    version: int) -> Batch:
    """A deduplication's batch: ``encoded`` records linked with the index's (less ``removed``) and with each
    other; the entities after the batch, ``removed`` records gone (see :mod:`.entities`)."""
    alignment = job.alignment
    if encoded is not None and len(encoded):
        links, stats, touched = link_pairs(index, encoded, alignment, scorer, index._read,
                                           scorer.distance_threshold_, False, gone=removed)
    else:
        nothing = np.empty(0, np.uint64)
        links = pd.DataFrame({"align_id": pd.Series(dtype=object), "target_id": pd.Series(dtype=object),
                              "distance": np.empty(0), "rid_a": nothing, "rid_b": nothing})
        stats, touched = BlockStats(), 0
    links = sort_links(links).reset_index(drop=True)
    clusters = job.clusters
    added = encoded[["id", "rid"]] if encoded is not None else pd.DataFrame({"id": [], "rid": np.empty(0, np.uint64)})
    update = update_entities(index.entities(), index.issued(), added, removed, index.links_of,
                             scorer.as_written(links), version, clusters.threshold if clusters else None,
                             clusters.max_size if clusters else None)
    return Batch(links, stats, None, touched, update)


def _staged_records(job: Job, records: str, client: Any) -> pd.DataFrame:
    """The records at ``records`` staged as the job stages the indexed set (in a staging directory of this
    process's own: updates of one index may run at once)."""
    name = indexed_set(job)
    table = {**(job.raw.get(name) or {}), "path": records if is_url(records) else os.path.abspath(records)}
    os.makedirs(job.run_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".index-add-", dir=job.run_dir) as own:
        staged_job = dataclasses.replace(job, output=dataclasses.replace(job.output, run_dir=own))
        staged_job = dataclasses.replace(staged_job, alignset=set_spec(job.path, name, table)) if name == "alignset" \
            else dataclasses.replace(staged_job, targetset=set_spec(job.path, name, table))
        files = check_inputs(staged_job, sets=[name])
        with cluster_for(staged_job, client, files) as active:
            staged, counts = stage_inputs(active, staged_job, files, os.path.join(own, "rejects.csv"), False, True)
            frame = staged[name]
            refuse_value_sets(frame, name)
        if counts[name]["rejected"]:  # (kept beside the run's own rejects, and said)
            kept = os.path.join(job.run_dir, "rejects-added.csv")
            os.replace(os.path.join(own, "rejects.csv"), kept)
            logger.warning("%d records of %s rejected, not added: see %s", counts[name]["rejected"], records, kept)
    return frame


def _update(job: Job, path: str, add: pd.DataFrame | None, remove: Sequence[str], replace: bool
            ) -> tuple[dict[str, Any], Batch | None]:
    """:func:`update_index`, with a deduplication's batch (its links and entities) when there is one."""
    alignment = job.alignment
    fs, root = filesystem(path)
    to = path if is_url(path) else root
    lock = os.path.join(root, ".update.lock") if not is_url(path) else None
    with process_lock(lock, f"the index at {root}") if lock else contextlib.nullcontext():
        index = Index.open(path)  # (the latest version, now that no other update runs)
        manifest = dict(index.manifest)
        number, name = manifest["version"] + 1, f"v{manifest['version'] + 1}-{uuid.uuid4().hex[:8]}"
        gone = record_keys(pd.Series(list(remove), dtype=object).astype(str)) if len(remove) else \
            np.empty(0, np.uint64)
        present = index.records(gone)["rid"].to_numpy(np.uint64) if len(gone) else gone
        missing = len(np.unique(gone)) - len(np.unique(present))
        if missing:
            raise InputError(f"{root}: {missing} of the ids to remove are not in the index")
        encoded = None
        if add is not None:
            encoded = encode_alignset(add, alignment) if alignment.dedupe else \
                encode_records(add, alignment.treatments, alignment.blocking, "target", "targetset")
            again = index.records(encoded["rid"].to_numpy(np.uint64))
            if len(again) and not replace:
                raise InputError(f"{root}: {len(again)} of the records to add are already in the index (ids "
                                 f"{again['id'].astype(str).head(5).tolist()}); replace them with --replace")
            present = np.concatenate([present, again["rid"].to_numpy(np.uint64)])
        batch = _dedupe_records(index, job, index.scorer(job), encoded, present, number) if alignment.dedupe \
            else None
        layer = write_layer(None, encoded, alignment.blocking, to, name, present)
        if batch is not None:
            assert batch.entities is not None
            write_edges(batch.entities.links, to, name, layer)
            write_entities(to, name, batch.entities)
            manifest.update(entities=name, clusters=int(batch.entities.entities["cluster_id"].nunique()))
        manifest.update(version=number, layers=manifest["layers"] + [layer],
                        records=manifest["records"] - len(np.unique(present)) + layer["records"],
                        block_rows=sum(layer_["block_rows"] for layer_ in manifest["layers"]) + layer["block_rows"],
                        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_json(f"{to}/manifest.json", manifest)
    return manifest, batch


def update_index(job: Job, path: str, add: pd.DataFrame | str | None = None, remove: Sequence[str] = (),
                 replace: bool = False, client: Any = None) -> dict[str, Any]:
    """Add records to the index (``add``: staged records, the id first, or a path read as the job reads its
    indexed set) and remove others by id; return the new manifest.

    The change is a new layer and a new version: readers keep the version they opened, a failed update
    leaves the old one, and two updates at once take turns (a lock file beside the manifest; an index on
    an object store is updated by one process at a time, which this cannot check). An added record whose
    id is already in the index is refused, unless ``replace``: it then replaces the old one. In a
    deduplication's index, the added records are linked (with the index's and each other) and the entities
    updated; what changed is in the new version's ``changes.parquet``.
    """
    Index.open(path).check(job)
    if add is not None and any(t.target_attribute != t.attribute for t in job.alignment.treatments):
        raise JobError(f"{job.path}: treatments name a column per set; records added to the index are read "
                       "with the targetset's columns, so every treatment must name one column")
    if isinstance(add, str):
        add = _staged_records(job, add, client)
    return _update(job, path, add, remove, replace)[0]


def link_batch(job: Job, index_path: str, records: str, client: Any = None, show_progress: bool = False,
               output: str | None = None, add: bool = False, replace: bool = False) -> RunSummary:
    """Link the records at ``records`` (read as the job reads its alignset; a ``.toml`` file: a set's table,
    any source a set can be) against the index; write links, summary and report as a run does
    (``output``: a file the links go to instead of the job's output). With ``add``, the records join the index
    afterwards (see :func:`update_index`; ``replace``: those whose id it holds replace the old ones).

    Against a deduplication's index, the records are also linked with each other, and the batch's
    ``clusters`` (each record's lasting entity id) and ``changes.csv`` (the index's records whose entity id
    the batch changes: merged, split, replaced) are written beside the links; without ``add`` they say what
    adding the batch would do.
    """
    index = Index.open(index_path)
    index.check(job)
    batch_job = dataclasses.replace(job, alignset=set_spec(job.path, "alignset", _records_table(job, records)))
    if output is not None:  # (a file instead of the job's output, in the format its name says, as `run --output`)
        try:
            fmt = output_format(output, job.raw.get("output", {}).get("format"))
        except ValueError as err:
            raise JobError(f"--output: the job's output.format {err}") from None
        batch_job = dataclasses.replace(batch_job, output=dataclasses.replace(
            job.output, path=output, format=fmt, sql=None, table=None, sparql_update=None, graph=None))
    files = check_inputs(batch_job, sets=["alignset"])
    run_dir = batch_job.run_dir
    os.makedirs(run_dir, exist_ok=True)
    paths = {"links": batch_job.output.path, "rejects": os.path.join(run_dir, "rejects.csv"),
             "summary": os.path.join(run_dir, "summary.json"), "report": os.path.join(run_dir, "report.html")}
    seconds: dict[str, float] = {}
    with cluster_for(batch_job, client, files) as active:
        with timed(seconds, "stage"):
            staged, counts = stage_inputs(active, batch_job, files, paths["rejects"], show_progress, True)
            records_ = staged["alignset"]
            refuse_value_sets(records_, "alignset")
    scorer = index.scorer(job)
    added_as = None
    with timed(seconds, "score"):
        if job.alignment.dedupe and add:
            manifest, batch = _update(job, index_path, records_, (), replace)
            added_as = manifest["version"]
        elif job.alignment.dedupe:
            encoded = encode_alignset(records_, job.alignment)
            batch = _dedupe_records(index, job, scorer, encoded, np.empty(0, np.uint64), index.manifest["version"] + 1)
        else:
            batch = link_records(index, records_, job, scorer)
    assert batch is not None
    links = one_to_one(batch.links) if job.alignment.one_to_one else batch.links
    links = links.drop(columns=[c for c in ("rid_a", "rid_b") if c in links.columns])
    write_outputs(batch_job, scorer.as_written(links), seconds, paths)
    summary = RunSummary(job=os.path.abspath(job.path), files=paths, links=len(links), seconds=seconds)
    indexed = {**index.manifest["staged"], "indexed": index.manifest["records"]}
    summary.records = {**counts, indexed_set(job) if not job.alignment.dedupe else "index": indexed}
    summary.model = index.manifest["model"]
    summary.blocking = {**blocking_figures(len(records_) * index.manifest["records"], batch.stats),
                        "index": {"path": index.root, "version": index.manifest["version"],
                                  "block_rows_read": batch.touched, "bytes_read": index.bytes_read,
                                  "bytes": index.bytes_held()}}
    if batch.entities is not None:
        summary.entities = _write_entities(job, batch.entities, paths, run_dir, added_as is not None)
    if add and added_as is None:
        with timed(seconds, "add"):
            added_as = update_index(job, index_path, add=records_, replace=replace)["version"]
    if added_as is not None:
        summary.blocking["index"]["added_as_version"] = added_as
    with atomic_path(paths["summary"]) as tmp, open(tmp, "w") as f:
        json.dump(summary.as_dict(), f, indent=2, default=str)
    from ..report import save_report_data, write_report

    save_report_data(job, AlignmentRun(links, batch.stats, seconds, 0, batch.best_rejected, scorer), links, run_dir)
    write_report(run_dir)
    return summary


def _records_table(job: Job, records: str) -> dict[str, Any]:
    """The set table a batch's records are read with: the alignset's, at the path ``records``; or, from a
    ``.toml`` file, the set table it holds (any source: files, SPARQL, SQL)."""
    if records.endswith(".toml") and not is_url(records):
        import tomllib

        try:
            with open(records, "rb") as f:
                table = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InputError(f"{records}: cannot read the batch's set table: {err}") from None
        # (relative paths in it are relative to it, as a job's are to the job)
        if "path" in table and not is_url(str(table["path"])):
            table["path"] = os.path.join(os.path.dirname(os.path.abspath(records)), str(table["path"]))
        return table
    return {**(job.raw.get("alignset") or {}), "path": records if is_url(records) else os.path.abspath(records)}


def _write_entities(job: Job, update: EntityUpdate, paths: dict[str, str], run_dir: str,
                    added: bool) -> dict[str, Any]:
    """A deduplication batch's clusters and changes, beside its links; their figures for the summary."""
    fmt = job.clusters.format if job.clusters else "parquet"
    extension = {"parquet": ".parquet", "csv": ".csv", "ntriples": ".nt"}[fmt]
    paths["clusters"] = os.path.join(run_dir, "clusters" + extension)
    paths["changes"] = os.path.join(run_dir, "changes.csv")
    clusters = update.batch.assign(set="alignset")[["set", "id", "cluster_id"]]
    write_clusters(clusters, paths["clusters"], fmt, {"alignset": job.output.align_uri or "{id}"})
    with atomic_path(paths["changes"]) as tmp:
        update.changes.to_csv(tmp, index=False)
    new = update.batch["cluster_id"].isin(set(update.new_ids))
    return {"records": len(update.batch), "joined": int((~new).sum()),
            "new_clusters": int(update.batch["cluster_id"][new].nunique()), "changes_file": paths["changes"],
            "changes": {str(k): int(v) for k, v in update.changes["why"].value_counts().sort_index().items()},
            "clusters": int(update.entities["cluster_id"].nunique()), "added": added}
