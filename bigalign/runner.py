"""Running a job end to end: stage → align → write → summarize.

Everything a run writes goes beside its output: ``rejects.csv`` (every row
set aside, with file, row, column and reason), ``summary.json``,
``dask-report.html`` (Dask's performance report, when asked or on a remote
cluster) and ``staging/`` (the
inputs as Parquet). Each file is written under a temporary name and renamed
when complete, so an interrupted run never leaves one that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import __version__
from .blocking import AutoBlocking, CrossProductBlocking
from .blocking.auto import choice_lines
from .cluster import (
    NoCluster,
    ProcessMemory,
    connect,
    cpu_clock,
    names_a_scheduler,
    no_cluster,
    under_cut,
)
from .entities import cluster_links
from .errors import JobError
from .evaluate import DEDUPE_ONLY, LINK_ONLY, cluster_quality, link_quality
from .io import RDF_WRITERS, InputError, atomic_path, read_table, write_clusters, write_links
from .jobs import Job, check_inputs
from .matching import one_to_one, set_names
from .pipeline.encode import set_union
from .pipeline.schema import combined_hashes, pair_hashes, record_keys
from .pipeline.timing import cpu_measured, timed
from .report import save_report_data, values_as_read, write_report
from .sparql import replace_graph
from .sql import shown_url
from .sql import write_links as write_links_to_table
from .staging import stage_inputs
from .values.columns import TEXT

if TYPE_CHECKING:
    import dask.dataframe as dd

    from .pipeline.checkpoint import Checkpoint

__all__ = ["RunSummary", "check_unblocked", "generate_inputs", "local_cluster", "run_job"]

# Pairs a job without [blocking] may compare: its cross product (about a minute of scoring on a laptop).
MAX_UNBLOCKED_PAIRS = 20_000_000
# Input files (together) under which a job that names no cluster runs without one (NoCluster: Dask's
# threads in this process), on two cores (fewer bytes on more: see cluster.under_cut):
# `python -m benchmarks.startup` (benchmarks/STARTUP.md) found no cluster 1.3–2.3× faster than two
# worker processes from 10k to 1M records per side (122–225 MB of files).
NO_CLUSTER_BYTES = 256 << 20
# The deadline of the links' write-back to a SPARQL Update service (one request: a million links are ~200 MB).
WRITE_BACK_SECONDS = 600.0
# A learned model expecting fewer matches than this share of the smaller set's records says so.
ALMOST_NO_MATCHES = 0.01


@dataclass
class RunSummary:
    """What a run did, as printed and as written to ``summary.json``."""

    job: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocking: dict[str, Any] = field(default_factory=dict)
    links: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    # CPU seconds per stage, of this process and the cluster's workers (per wall second: the cores kept busy)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    model: dict[str, Any] | None = None  # a learned model's parameters
    clusters: dict[str, Any] | None = None  # see ClusterStats
    entities: dict[str, Any] | None = None  # a batch against a deduplication's index: its lasting entity ids
    dashboard: str = ""
    memory: dict[str, float] = field(default_factory=dict)  # peak cluster memory (bytes) per stage

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def lines(self) -> list[str]:
        out = []
        for name, r in self.records.items():
            reasons = ", ".join(f"{n} {why}" for why, n in r["rejected_by_reason"].items()) or "none"
            made = f", {r['records']} records of several values" if "records" in r else ""
            out.append(f"{name}: {r['read']} rows read, {r['kept']} kept{made}, {r['rejected']} rejected ({reasons})")
        b = self.blocking
        out.append(f"blocks: {b['blocks']}, block pairs: {b['block_pairs']}, candidate pairs: {b['candidate_pairs']} "
                   f"({b['candidate_share_of_cross_product']:.3g} of the cross product)")
        out.append(f"largest block: {b['largest_block_pairs']} pairs, {b['largest_block_share']:.2%} of block pairs; "
                   f"excluded blocks: {b['excluded_blocks']} ({b['excluded_pairs']} pairs)")
        if "chosen" in b:
            out += choice_lines(b["chosen"])
        if self.model:
            m = self.model
            chosen = "chosen as the best F1 the model expects" if m["auto_threshold"] else "given"
            source = f"m from {m['known_pairs']} labelled pairs" if m["m_from"] == "labels" else "m by EM"
            out.append(f"model: Fellegi–Sunter, {source}, {m['iterations']} EM iterations, "
                       f"{m['expected_matches']:,.0f} matches expected among the candidates; "
                       f"links at match probability ≥ {m['threshold']:.4g} ({chosen})")
            fewest = min((r.get("records", r["kept"]) for r in self.records.values()), default=0)
            if not b["candidate_pairs"]:
                out.append("no candidate pairs: no block holds records of both sides, so the model had no pair "
                           "to learn m from and nothing was linked; choose blocking keys the sets share")
            elif m["expected_matches"] < ALMOST_NO_MATCHES * fewest:
                out.append(f"the model found almost no matches: {m['expected_matches']:,.1f} expected among "
                           f"{b['candidate_pairs']} candidate pairs for {fewest} records; check that the sets "
                           "describe the same entities and that the blocking brings their pairs together")
        out.append(f"links written: {self.links} → {self.files['links']}")
        if self.clusters:
            c = self.clusters
            largest = c["largest"][0]["size"] if c["largest"] else 1
            out.append(f"clusters: {c['clusters']} of {c['records']} records ({c['linked_records']} in clusters of "
                       f"2 or more, the largest of {largest}; {c['split_clusters']} split, {c['rounds']} merge "
                       f"round{'' if c['rounds'] == 1 else 's'}) → {self.files['clusters']}")
            if "quality" in c:
                q = c["quality"]
                out.append(f"clusters against the entities: pairwise precision {q['pair_precision']:.4f}, recall "
                           f"{q['pair_recall']:.4f}, F1 {q['pair_f1']:.4f}; B-cubed F1 {q['bcubed_f1']:.4f}")
        if self.entities:
            e = self.entities
            changes = ", ".join(f"{n} {why}" for why, n in e["changes"].items()) or "none"
            out.append(f"entities: {e['joined']} of the batch's {e['records']} records in existing clusters, "
                       f"{e['new_clusters']} new clusters; ids changed: {changes} → {e['changes_file']}"
                       + ("" if e["added"] else " (not added: what adding the batch would do)"))
        out.append("time: " + ", ".join(f"{k} {v:.1f} s" + (f" ({self.cpu_seconds[k] / v:.1f} cores)" if v >= 0.1
                                                               and k in self.cpu_seconds else "")
                                         for k, v in self.seconds.items()))
        if self.quality:
            q = self.quality
            out.append(f"against the truth: precision {q['precision']:.4f}, recall {q['recall']:.4f}, "
                       f"F1 {q['f1']:.4f}")
        if "pair_completeness" in b:
            out.append(f"pair completeness of the blocking: {b['pair_completeness']:.4f}")
        out.append(f"rejects: {self.files['rejects']}")
        out.append(f"report: {self.files['report']}")
        if "dask_report" in self.files:
            out.append(f"Dask performance report: {self.files['dask_report']}")
        return out


def generate_inputs(job: Job) -> None:
    """Write the generated data of a job's ``[generate]`` table, if missing."""
    if not job.generate:
        return
    paths = [spec.path for spec in job.sets()] + ([job.truth] if job.truth else [])
    if all(os.path.exists(p) for p in paths):
        return
    from .datasets import person_entities, person_records

    if job.generate["kind"] == "person_entities":  # the sets' records, each record's entity as the truth
        people = person_entities(job.generate["n"], seed=job.generate["seed"],
                                 sets=tuple(spec.name for spec in job.sets()))
        frames = list(people.sets.values()) + ([people.entities] if job.truth else [])
    else:
        data = person_records(job.generate["n"], seed=job.generate["seed"], duplicates=job.generate["duplicates"])
        frames = [data.alignset] + ([data.targetset] if job.targetset else []) + ([data.truth] if job.truth else [])
    for frame, path in zip(frames, paths):
        with atomic_path(path) as tmp:
            if path.endswith((".parquet", ".pq")):
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False, sep="\t" if path.endswith(".tsv") else ",")


def check_unblocked(job: Job, counts: dict[str, dict[str, Any]]) -> None:
    """A job without ``[blocking]`` compares every pair: refuse when that is
    more than :data:`MAX_UNBLOCKED_PAIRS`, before any pair is formed."""
    if not isinstance(job.alignment.blocking, CrossProductBlocking):
        return
    kept = {name: r.get("records", r["kept"]) for name, r in counts.items()}
    pairs = job.cross_product(kept)
    if pairs > MAX_UNBLOCKED_PAIRS:
        sizes = " × ".join(f"{n:,}" for n in kept.values())
        raise JobError(f"{job.path}: no [blocking]: {sizes} records make {pairs:,} pairs, more "
                       f"than the {MAX_UNBLOCKED_PAIRS:,} compared without one. Add a [blocking] table (README, "
                       f"Blockings), and measure it with 'bigalign plan {job.path}'")


def local_cluster(job: Job, files: dict[str, list[str]]) -> str:
    """What runs a job that names no scheduler: ``"processes"`` (a local
    cluster of worker processes), ``"threads"`` (a local cluster in this
    process) as ``[cluster] processes = true | false`` says, else
    ``"none"`` (:class:`~bigalign.cluster.NoCluster`) when its input files
    are under :data:`NO_CLUSTER_BYTES` together (on two cores; less on
    more) and no Dask performance report is asked for, and
    ``"processes"`` when they are not."""
    if job.cluster.processes is not None:
        return "processes" if job.cluster.processes else "threads"
    if job.output.dask_report:
        return "processes"
    size = 0.0
    for spec in job.sets():
        if spec.name not in files:  # (a set this run does not read)
            continue
        weight = job.sources[spec.name].input_bytes(files[spec.name])
        if weight is None:  # (an object store: read by workers)
            return "processes"
        size += weight
    return "none" if under_cut(size, NO_CLUSTER_BYTES) else "processes"


def cluster_for(job: Job, client: Any = None, files: dict[str, list[str]] | None = None) -> Any:
    """The :func:`~bigalign.cluster.connect` context of a job's ``[cluster]``
    (for small ``files``, none at all: see :func:`local_cluster`)."""
    where = client or job.cluster.scheduler_file or job.cluster.scheduler
    kind = "processes" if files is None else local_cluster(job, files)
    if not names_a_scheduler(where) and kind == "none":
        return no_cluster((job.cluster.workers or os.cpu_count() or 1) * job.cluster.threads)
    security = None
    if job.cluster.tls_ca_file:  # (the job reader requires the three files together)
        from distributed.security import Security

        security = Security(tls_ca_file=job.cluster.tls_ca_file, tls_client_cert=job.cluster.tls_cert,
                            tls_client_key=job.cluster.tls_key, require_encryption=True)
    return connect(where, n_workers=job.cluster.workers,
                   threads_per_worker=job.cluster.threads, memory_limit=job.cluster.memory_limit,
                   dashboard_address=job.cluster.dashboard_address, security=security,
                   timeout=job.cluster.connect_timeout, processes=kind == "processes")


def _fingerprint(job: Job, files: dict[str, list[str]]) -> str:
    """What the blocks of a run depend on: the job (less what only acts after
    scoring) and the inputs' names, sizes and modification times."""
    relevant = {k: v for k, v in job.raw.items() if k not in ("output", "cluster", "threshold", "uniq",
                                                                "one_to_one", "truth", "checkpoint")}
    stats = [item for spec in job.sets() for item in job.sources[spec.name].fingerprint(files[spec.name])]
    text = json.dumps([relevant, stats, __version__], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_truth(job: Job) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A job's truth: its true pairs, and each record's entity when the file
    gives them (set, id, entity; then the true pairs are the pairs of records
    of one entity that the job compares: across its two sets, within its set,
    or as its ``link_type`` says). With several sets, pairs carry
    ``align_set`` and ``target_set``, and only entities can say them."""
    assert job.truth is not None
    table = read_table(job.truth, [], "the truth")
    if "entity" not in table.columns:
        if job.several:
            raise InputError(f"{job.truth}: the truth of a job with several sets gives each record's entity "
                             f"(columns set, id, entity)")
        missing = sorted({"align_id", "target_id"} - set(table.columns))
        if missing:
            raise InputError(f"{job.truth}: pairs need columns ['align_id', 'target_id'] (or entities: "
                             f"['id', 'entity']); missing {missing}")
        return table.astype({"align_id": TEXT, "target_id": TEXT}), None
    if "id" not in table.columns:
        raise InputError(f"{job.truth}: entities need columns ['id', 'entity']; missing ['id']")
    entities = table.astype({"id": str})
    if "set" not in entities.columns:
        entities.insert(0, "set", job.alignset.name)
    sets = [spec.name for spec in job.sets()]
    members = entities[entities["set"].isin(sets)]
    first, second = entity_pairs(members["entity"].to_numpy(object))
    index = pd.Index(sets).get_indexer(members["set"]).astype(np.int64)
    ids, names = members["id"].to_numpy(object), members["set"].to_numpy(object)
    # Each pair once, oriented: (smaller set, its id) first; then the pairs the job compares.
    swap = (index[first] > index[second]) | ((index[first] == index[second]) & (ids[first] > ids[second]))
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    across = index[first] != index[second]
    if not job.alignment.dedupe:
        keep = (index[first] == 0) & (index[second] == 1)
    else:
        keep = {LINK_ONLY: across, DEDUPE_ONLY: ~across}.get(job.alignment.link_type, np.ones(len(first), dtype=bool))
    keep &= (index[first] != index[second]) | (ids[first] != ids[second])  # (a record given twice: no pair)
    first, second = first[keep], second[keep]
    found = pd.DataFrame({"align_id": ids[first], "target_id": ids[second]})
    if job.several:
        found["align_set"], found["target_set"] = names[first], names[second]
    return found, entities


def entity_pairs(entities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of positions whose entities are equal (each once), in O(pairs): the
    members of each entity made contiguous by a sort, then, per entity size k, the k(k-1)/2 pairs of
    all the entities of that size at once (a self-join on the entity took 1.8 s for a million)."""
    codes = pd.factorize(entities)[0]
    order = np.argsort(codes, kind="stable")
    order = order[codes[order] >= 0]  # (a record of no known entity matches nothing)
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(order) else order
    sizes = np.diff(np.r_[starts, len(order)])
    firsts, seconds = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for size in np.unique(sizes[sizes > 1]):
        i, j = np.triu_indices(int(size), 1)
        at = starts[sizes == size][:, None]
        firsts.append(order[(at + i).ravel()])
        seconds.append(order[(at + j).ravel()])
    return np.concatenate(firsts), np.concatenate(seconds)


def _truth_and_hashes(job: Job) -> tuple[pd.DataFrame, pd.DataFrame | None, np.ndarray]:
    """A job's truth (:func:`read_truth`) and its pairs' hashes."""
    truth, entities = read_truth(job)
    return truth, entities, truth_hashes(job, truth)


def truth_hashes(job: Job, truth: pd.DataFrame) -> np.ndarray:
    """The pipeline's hashes of the true pairs (see :func:`~bigalign.pipeline.pair_hashes`)."""
    if not job.several:
        return pair_hashes(truth["align_id"], truth["target_id"], dedupe=job.alignment.dedupe)
    sets = [spec.name for spec in job.several]
    keys = [record_keys(truth[f"{side}_id"].astype(str), truth[f"{side}_set"].map(sets.index).to_numpy())
            for side in ("align", "target")]
    return combined_hashes(keys[0], keys[1], dedupe=True)


def alignment_inputs(job: Job, records: dict[str, dd.DataFrame]) -> tuple[dd.DataFrame, dd.DataFrame]:
    """What the pipeline aligns: the two sets, one set twice, or several sets
    as one deduplicated set (ids as text, each record with its set's index)."""
    if not job.several:
        return records["alignset"], records.get("targetset", records["alignset"])
    union = set_union([records[spec.name] for spec in job.several])
    return union, union


def _set_qualified(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs whose ids say their set (``set:id``), to compare pairs of several sets."""
    if "align_set" not in pairs.columns:
        return pairs.astype({"align_id": TEXT, "target_id": TEXT})
    return pd.DataFrame({side: pairs[f"{side[:-3]}_set"].astype(str) + ":" + pairs[side].astype(str)
                         for side in ("align_id", "target_id")})


def _uris(job: Job) -> dict[str, str]:
    """The URI template of each of the job's sets, for N-Triples."""
    templates = {"alignset": job.output.align_uri, "targetset": job.output.target_uri}
    return {spec.name: templates.get(spec.name) or "{id}" for spec in job.sets()}


def _as_written(job: Job, parts: list) -> dd.DataFrame:
    """Links' partitions on the workers (futures, as scored) as the run writes them: a
    model's weights, the sets' names."""
    import dask.dataframe as dd

    links = dd.from_delayed(parts, verify_meta=False).map_partitions(job.alignment.scorer.as_written)
    if job.several:
        links = links.map_partitions(set_names, [spec.name for spec in job.several])
    return links


def _cluster(job: Job, client: Any, links: Any, records: dict[str, dd.DataFrame] | None,
             entities: pd.DataFrame | None, seconds: dict[str, float]) -> dict[str, Any]:
    """Cluster a run's links, write the clusters; return their figures (scored against
    ``entities`` when known). After a resumed run (no ``records``), the linked records alone."""
    assert job.clusters is not None
    with timed(seconds, "clusters"):
        names = [spec.name for spec in job.sets()]
        ids = None if records is None else {name: records[name][records[name].columns[0]] for name in names}
        clusters = cluster_links(links, ids, dedupe=job.alignment.dedupe, sets=names, threshold=job.clusters.threshold,
                                 max_size=job.clusters.max_size, client=client)
        figures = dict(clusters.attrs["clusters"])
        if entities is not None:
            figures["quality"] = cluster_quality(clusters, entities).as_dict()
        write_clusters(clusters, job.clusters.path, job.clusters.format, _uris(job))
    return figures


def _memory_sampler(active: Any) -> Any:
    """What samples the memory of a run's stages: the cluster's workers, or this process."""
    if isinstance(active, NoCluster):
        return ProcessMemory()
    from distributed.diagnostics import MemorySampler

    return MemorySampler()


def _staged(active: Any, job: Job, files: dict[str, list[str]], checkpoint: Checkpoint | None, rejects: str,
            show_progress: bool) -> tuple[dict[str, dd.DataFrame] | None, dict[str, dict[str, Any]]]:
    """The sets staged, and their counts; after a checkpoint that holds the candidates, the counts alone (the
    blocks are read from it, and the clusters of the linked records alone)."""
    counts_path = os.path.join(job.run_dir, "checkpoint", "records.json")
    if checkpoint is not None and checkpoint.has_candidates() and os.path.exists(counts_path):
        with open(counts_path) as f:
            return None, json.load(f)
    records, counts = stage_inputs(active, job, files, rejects, show_progress)
    check_unblocked(job, counts)
    if checkpoint is not None:
        os.makedirs(checkpoint.directory, exist_ok=True)
        with atomic_path(counts_path) as tmp, open(tmp, "w") as f:
            json.dump(counts, f)
    return records, counts


def blocking_figures(cross: int, stats: Any, true_pairs: int | None = None) -> dict[str, Any]:
    """What the summary says of the blocking, of a cross product of ``cross`` pairs (with the truth's
    ``true_pairs``: its pair completeness)."""
    figures = {
        "cross_product": cross, "blocks": stats.blocks, "block_pairs": stats.block_pairs,
        "candidate_pairs": stats.candidate_pairs,
        "candidate_share_of_cross_product": stats.candidate_pairs / max(1, cross),
        "largest_block_pairs": stats.largest_block_pairs,
        "largest_block_share": stats.largest_block_pairs / max(1, stats.block_pairs),
        "excluded_blocks": stats.excluded_blocks, "excluded_pairs": stats.excluded_pairs,
        "links_under_threshold": stats.links_under_threshold,
    }
    if true_pairs is not None:
        figures["pair_completeness"] = stats.true_pairs_kept / max(1, true_pairs)
    return figures


def _dask_report(job: Job, active: Any, reporting: ExitStack, paths: dict[str, str]) -> None:
    """Dask's performance report when asked, or when the cluster is remote (its dashboard may be gone when
    the run is read): rendering it costs about a second."""
    remote = not isinstance(active, NoCluster) and active.cluster is None
    if job.output.dask_report or (job.output.dask_report is None and remote):
        from distributed import performance_report

        # (bokeh's scripts inside the file: the report opens offline and on an air-gapped cluster)
        reporting.enter_context(performance_report(filename=paths["dask_report"], mode="inline"))
    else:
        del paths["dask_report"]


def write_outputs(job: Job, links: pd.DataFrame, seconds: dict[str, float], paths: dict[str, str]) -> None:
    """The links to the job's output (a file, a database's table), replacing what it held; then, with
    ``sparql_update``, into its graph as its RDF output writes them (N-Triples 1.2, scored, when that is its
    format; else owl:sameAs). A run's and a batch's (``bigalign link``) alike."""
    output = job.output
    with timed(seconds, "write"):
        if output.sql is not None:
            write_links_to_table(links, output.sql, output.table or "links")
        else:
            write_links(links, output.path, output.format, output.align_uri, output.target_uri, job.name)
    if output.sparql_update is not None and output.graph is not None:
        writer = RDF_WRITERS["rdf12" if output.format == "rdf12" else "ntriples"]
        with timed(seconds, "write back"):
            replace_graph(output.sparql_update, output.graph,
                          writer(links, output.align_uri or "{id}", output.target_uri or "{id}", job.name),
                          WRITE_BACK_SECONDS)
        paths["graph"] = f"<{output.graph}> at {shown_url(output.sparql_update)}"


def run_job(job: Job, client: Any = None, show_progress: bool = True) -> RunSummary:
    """Run a validated job; return its summary (``summary.lines()`` is what the command line prints)."""
    # (these import Dask's dataframes: not with this module, which a batch's command imports too)
    from .pipeline import Checkpoint, run_alignment
    from .pipeline.choose import resolve_blocking

    seconds: dict[str, float] = {}
    with timed(seconds, "validate"):
        generate_inputs(job)
        files = check_inputs(job)
    os.makedirs(run_dir := job.run_dir, exist_ok=True)
    paths = {"links": job.output.path, "rejects": os.path.join(run_dir, "rejects.csv"),
             "summary": os.path.join(run_dir, "summary.json"), "report": os.path.join(run_dir, "report.html"),
             "dask_report": os.path.join(run_dir, "dask-report.html")}
    cpu_seconds: dict[str, float] = {}
    with cluster_for(job, client, files) as active, ExitStack() as reporting, \
            ThreadPoolExecutor(2, thread_name_prefix="bigalign-aside") as aside, \
            cpu_measured(cpu_clock(active), cpu_seconds):
        memory = _memory_sampler(active)
        # Work of this process done aside while the cluster works: the truth (seconds for a million
        # records) while it stages the sets — once it is up: the reading holds the interpreter often,
        # and would slow its start —, the clusters and the links' quality while this process writes them.
        truth_read = aside.submit(_truth_and_hashes, job) if job.truth else None
        _dask_report(job, active, reporting, paths)
        summary = RunSummary(job=os.path.abspath(job.path), dashboard=active.dashboard_link or "", files=paths)
        checkpoint = Checkpoint(os.path.join(run_dir, "checkpoint"), _fingerprint(job, files)) if job.checkpoint \
            else None
        with memory.sample("stage", client=active, interval=0.2), timed(seconds, "stage"):
            staged, summary.records = _staged(active, job, files, checkpoint, paths["rejects"], show_progress)
        align_records, target_records = (None, None) if staged is None else alignment_inputs(job, staged)
        truth, entities, true_hashes = truth_read.result() if truth_read is not None else (None, None, None)
        clustered: list[Future] = []  # (a deduplication's: from the links its tasks left on the workers)

        def cluster_parts(parts: list) -> None:
            if job.clusters is not None and not job.alignment.one_to_one:
                clustered.append(aside.submit(_cluster, job, active, _as_written(job, parts), staged,
                                              entities, seconds))

        alignment, choice = job.alignment, None
        if isinstance(alignment.blocking, AutoBlocking) and staged is not None:  # (resumed: its blocks are read)
            with timed(seconds, "choose blocking"):
                alignment, choice = resolve_blocking(active, align_records, target_records, alignment)
        with memory.sample("align", client=active, interval=0.2):
            run = run_alignment(active, align_records, target_records, alignment, show_progress=show_progress,
                                checkpoint=checkpoint, truth_hashes=true_hashes, final_links=cluster_parts,
                                random_pairs=choice.random_pairs if choice is not None else None)
        seconds.update(run.seconds)
        if staged is not None:  # (the report's pairs with their values as read, tags and all: the records are here)
            run.stats.near_threshold = values_as_read(active, run.stats.near_threshold,
                                                      run.scorer.distance_threshold_, align_records, target_records,
                                                      job.alignment.treatments)
        links = one_to_one(run.links) if job.alignment.one_to_one else run.links
        written = run.scorer.as_written(links)
        if job.several:
            written = set_names(written, [spec.name for spec in job.several])
        if job.clusters is not None:
            if not clustered:  # (uniq, one_to_one: the links are final here only)
                clustered.append(aside.submit(_cluster, job, active, written, staged, entities, seconds))
            paths["clusters"] = job.clusters.path
        summary.model = run.scorer.summary(job.alignment.treatments, job.alignment.threshold == "auto")
        # (the links scored against the truth while they are written: writing holds the interpreter little)
        quality = None if truth is None else aside.submit(link_quality, _set_qualified(written),
                                                           _set_qualified(truth), unordered=job.alignment.dedupe)
        write_outputs(job, written, seconds, paths)
        if quality is not None:
            summary.quality = quality.result().as_dict()
        if clustered:
            summary.clusters = clustered[0].result()
    made = {name: r.get("records", r["kept"]) for name, r in summary.records.items()}
    summary.blocking = blocking_figures(job.cross_product(made),
                                        run.stats, None if truth is None else len(truth))
    if choice is not None:
        summary.blocking["chosen"] = choice.as_dict()
    summary.links = len(links)
    summary.seconds, summary.cpu_seconds = seconds, cpu_seconds
    samples = memory.to_pandas()
    summary.memory = {stage: float(samples[stage].max()) for stage in samples.columns}
    with atomic_path(paths["summary"]) as tmp, open(tmp, "w") as f:
        json.dump(summary.as_dict(), f, indent=2, default=str)
    save_report_data(job, run, links, run_dir)
    write_report(run_dir)
    return summary
