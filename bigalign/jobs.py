"""Job files: a TOML description of an alignment, validated in one place.

A job file is data. It may name user code (a normalizer, a metric, a key
transform) by import path, ``"package.module:function"``, but only from
modules the person running it allows (``--allow-module mypkg``, or
``allow_modules=`` in Python): a job file alone runs nothing but bigalign's
built-ins. Loading a job never imports nor calls user code when ``resolve``
is false (what ``bigalign validate`` does); a run imports the allowed modules
when it starts. Relative paths are relative to the job file. Every error names
the file and the key at fault.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .blocking import Blocking, CrossProductBlocking
from .errors import BigalignError, InputError, JobError
from .evaluate import DEDUPE_ONLY, LINK_ONLY, cross_product
from .io import RDF_WRITERS, SetSpec, expand_paths, is_url
from .job_scoring import read_scorer, read_treatments
from .job_tables import (
    ClusterSpec,
    ClustersSpec,
    OutputSpec,
    TableReader,
    UserCode,
    job_relative,
    read_blocking,
    read_cluster,
    read_clusters,
    read_output,
    read_set,
    read_several_sets,
)
from .records import attribute_columns
from .scorers import Scorer
from .sources import Source, source_of
from .spec import PARAMETERS, Alignment, SpecError, make_alignment
from .treatments import Treatment

__all__ = ["ClusterSpec", "ClustersSpec", "Job", "JobError", "OutputSpec", "check_inputs", "load_job"]


@dataclass(frozen=True)
class Job:
    """A validated job: its :class:`~bigalign.spec.Alignment`, where the records come from (the sets'
    specs, and their :attr:`sources`), and where the results go. Frozen."""

    path: str
    alignment: Alignment
    alignset: SetSpec
    targetset: SetSpec | None
    output: OutputSpec
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    checkpoint: bool = False
    truth: str | None = None
    generate: dict | None = None
    raw: dict = field(default_factory=dict)  # the job file as read (the web application edits it)
    user_code: tuple[str, ...] = ()  # import paths the job names
    clusters: ClustersSpec | None = None
    # [[sets]]: several sets (then aligned as one deduplicated set, pairs chosen by link_type)
    several: tuple[SetSpec, ...] | None = None

    @cached_property
    def sources(self) -> dict[str, Source]:
        """Each set's :class:`~bigalign.sources.Source`, by name: one object, which remembers what its
        ``describe()`` learned (an endpoint's rows, a table's columns) for the rest of the run."""
        return {spec.name: source_of(spec) for spec in self.sets()}

    @property
    def name(self) -> str:
        """The job's name: its file's, without the extension (what scored RDF links say made them)."""
        return os.path.splitext(os.path.basename(self.path))[0]

    @property
    def run_dir(self) -> str:
        """Where the run writes beside its output: report, rejects, staging (a
        local directory, also when the links go to an object store)."""
        return self.output.run_dir or os.path.dirname(os.path.abspath(self.output.path))

    def sets(self) -> list[SetSpec]:
        if self.several:
            return list(self.several)
        return [self.alignset] if self.targetset is None else [self.alignset, self.targetset]

    def cross_product(self, kept: Mapping[str, int]) -> int:
        """The pairs a blocking chooses from, with ``kept`` records per set."""
        if not self.several:
            return cross_product(kept["alignset"], kept.get("targetset", kept["alignset"]),
                                 self.alignment.dedupe)
        sizes = [kept[spec.name] for spec in self.several]
        within = sum(n * (n - 1) // 2 for n in sizes)
        across = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
        return {LINK_ONLY: across, DEDUPE_ONLY: within}.get(self.alignment.link_type, within + across)



def _alignment(top: TableReader, output_table: Mapping[str, Any], treatments: list[Treatment], scorer: Scorer,
               blocking: Blocking, several: bool) -> Alignment:
    """The job's :class:`~bigalign.spec.Alignment`: its parameters read at their keys, checked as
    :data:`~bigalign.spec.PARAMETERS` declares them, each error named by its key."""
    values = {}
    for name, parameter in PARAMETERS.items():
        where, _, key = parameter.key.rpartition(".")
        table = output_table if where == "output" else top.table
        if not where:
            top.used.add(key)  # (a key of the top level: known, given or not)
        if key in table:
            values[name] = table[key]
    try:
        return make_alignment(treatments, scorer=scorer, blocking=blocking, several_sets=several, **values)
    except SpecError as err:
        key = PARAMETERS[err.name].key if err.name in PARAMETERS else \
            f"{err.name}.column" if err.name.startswith("treatments[") else err.name
        raise JobError(f"{top.job_path}: {key}: {err}", field=key) from None


def _generate(top: TableReader, dedupe: bool) -> dict | None:
    """``[generate]``: the demo's data, written on a first run."""
    generate = top.get("generate", dict)
    if generate is None:
        return None
    g = TableReader(top.job_path, generate, "generate")
    kind = g.get("kind", str, required=True)
    if kind not in ("person_records", "person_entities"):
        raise g.error("kind", f"must be 'person_records' or 'person_entities', got {kind!r}")
    if kind == "person_entities" and not dedupe:
        raise g.error("kind", "'person_entities' writes sets whose records are people with several records "
                              "each: set dedupe = true, or name several [[sets]]")
    generate = {"kind": kind, "n": g.get("n", int, required=True), "seed": g.get("seed", int, 0),
                "duplicates": g.get("duplicates", (int, float), 0.8)}
    g.done()
    return generate


def load_job(path: str, overrides: Mapping[str, Any] | None = None, *, allow_modules: Collection[str] = (),
             resolve: bool = True) -> Job:
    """Read and validate a job file.

    ``overrides`` replaces top-level keys and keys of ``[cluster]`` and
    ``[output]`` (the command line's ``--workers``, ``--scheduler``,
    ``--output``). ``allow_modules`` names the top-level modules whose code
    the job may name; with ``resolve=False`` that code is checked, not
    imported (see the module docstring).
    """
    if os.path.isdir(path):
        raise JobError(f"{path}: is a directory, not a job file")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise JobError(f"{path}: no such job file") from None
    except tomllib.TOMLDecodeError as err:
        raise JobError(f"{path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JobError(f"{path}: cannot read the job file: {err}") from None
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    job_dir = os.path.dirname(os.path.abspath(path))
    code = UserCode(allow_modules, resolve)
    top = TableReader(path, raw, "")
    set_tables = top.get("sets", list)
    several = None if set_tables is None else read_several_sets(top, set_tables, path, job_dir)
    if several is None and "link_type" in raw:
        raise top.error("link_type", "says how several sets are paired: name them in [[sets]] tables")
    if several is not None:
        alignset, targetset = several[0], None
    else:
        alignset = read_set(TableReader(path, top.get("alignset", dict, required=True), "alignset"), "alignset",
                             job_dir)
        dedupe = top.get("dedupe", bool, False)
        target_table = top.get("targetset", dict)
        if dedupe and target_table is not None:
            raise top.error("targetset", "a deduplication job has no targetset")
        if not dedupe and target_table is None:
            raise top.error("targetset", "is required (or set dedupe = true, or name several [[sets]])")
        targetset = None if dedupe else read_set(TableReader(path, target_table, "targetset"), "targetset", job_dir)
    treatment_tables = top.get("treatments", list, required=True)
    if not treatment_tables:
        raise top.error("treatments", "needs at least one [[treatments]] table")
    treatments, treatment_model = read_treatments(path, treatment_tables, code)
    scorer = read_scorer(TableReader(path, top.get("model", dict, {}), "model"), treatment_model, job_dir)
    if several is not None:
        several = [_tagged(spec, treatments) for spec in several]
        alignset = several[0]
    else:
        alignset = _tagged(alignset, treatments)
        targetset = None if targetset is None else _tagged(targetset, treatments)
    blocking_table = top.get("blocking", dict)
    # without one: the cross product, when the sets are small enough (checked once they are read)
    blocking = CrossProductBlocking() if blocking_table is None else read_blocking(TableReader(path, blocking_table,
                                                                                       "blocking"), code)
    output_table = top.get("output", dict, required=True)
    output = read_output(TableReader(path, output_table, "output"), job_dir)
    alignment = _alignment(top, output_table, treatments, scorer, blocking, several is not None)
    if alignment.explain and output.format in RDF_WRITERS:
        raise JobError(f"{path}: output.explain: explanations are columns: write the links as 'parquet' or 'csv'",
                       field="output.explain")
    cluster = read_cluster(TableReader(path, top.get("cluster", dict, {}), "cluster"), job_dir)
    clusters_table = top.get("clusters", dict)
    clusters = None if clusters_table is None else read_clusters(TableReader(path, clusters_table, "clusters"), output,
                                                              job_dir, scorer.learns, alignment.threshold)
    truth = top.get("truth", str)
    job = Job(path=path, alignment=alignment, alignset=alignset, targetset=targetset, output=output,
              cluster=cluster, checkpoint=top.get("checkpoint", bool, False),
              truth=job_relative(job_dir, truth) if truth else None, generate=_generate(top, alignment.dedupe), raw=raw,
              user_code=tuple(code.named), clusters=clusters, several=None if several is None else tuple(several))
    top.done()
    _no_tags(path, job)
    _outputs_are_not_inputs(job, raw)
    return job



def _tagged(spec: SetSpec, treatments: list[Treatment]) -> SetSpec:
    """A set read by a query stages each value's language and datatype when a treatment keeps some
    languages (``lang``); a file's or a database's values have none, and are compared whole."""
    if spec.format != "rdf" or spec.literal_details or all(t.lang is None for t in treatments):
        return spec
    return replace(spec, literal_details=True)


def _no_tags(path: str, job: Job) -> None:
    """A treatment that keeps some languages reads at least one set that has them."""
    if any(spec.format == "rdf" for spec in job.sets()):
        return
    for i, t in enumerate(job.alignment.treatments):
        if t.lang is not None:
            raise JobError(f"{path}: treatments[{i}].lang: keeps literals by their language tags, which only a set "
                           "read by a SPARQL query (an endpoint or RDF files) has", field=f"treatments[{i}].lang")


# What a run writes in its directory (beside the links and clusters, which have paths of their own).
RUN_FILES = ("rejects.csv", "summary.json", "report.html", "report-data.json", "candidates.json",
             "dask-report.html", "staging", "checkpoint", "downloads")


def _outputs_are_not_inputs(job: Job, raw: Mapping[str, Any]) -> None:
    """No output of the run (links, clusters, the run's files and directory) is a file the job reads: the job
    file, a set's files, the truth, the labels. A run writes its outputs whole at the end, replacing what was
    there: an input named as an output would be lost."""
    job_dir = os.path.dirname(os.path.abspath(job.path))
    inputs: dict[str, str] = {os.path.realpath(job.path): "the job file"}
    for spec in job.sets():
        if spec.sql is None and spec.sparql is None and not is_url(spec.path):
            for path in expand_paths(spec.path) or [spec.path]:
                inputs[os.path.realpath(path)] = f"a file of the {spec.name}"
    if job.truth and not is_url(job.truth):
        inputs[os.path.realpath(job.truth)] = "the truth"
    labels = (raw.get("model") or {}).get("labels")
    if isinstance(labels, str) and not is_url(labels):
        inputs[os.path.realpath(job_relative(job_dir, labels))] = "the labels"
    outputs = [("output.path", job.output.path)] if job.output.sql is None else []
    if job.clusters is not None:
        outputs.append(("clusters.path", job.clusters.path))
    files = list(outputs)  # (the links and clusters, named by the job)
    run_dir = job.run_dir
    if not is_url(run_dir):
        outputs.append(("output.run_dir" if job.output.run_dir else "output.path", run_dir))
        outputs += [("output.run_dir" if job.output.run_dir else "output.path", os.path.join(run_dir, name))
                    for name in RUN_FILES]
    for key, path in outputs:
        if is_url(path):
            continue
        found = inputs.get(os.path.realpath(path))
        if found is not None:
            raise JobError(f"{job.path}: {key}: the run would write {path!r}, which is {found}: the run would "
                           "destroy it; write the output elsewhere", field=key)
    own = {os.path.realpath(os.path.join(run_dir, name)) for name in RUN_FILES} if not is_url(run_dir) else set()
    for key, path in files:
        if not is_url(path) and os.path.realpath(path) in own:
            raise JobError(f"{job.path}: {key}: {path!r} is where the run writes its own "
                           f"{os.path.basename(path)}: name the file otherwise", field=key)


def check_inputs(job: Job, remote: bool = True, sets: Collection[str] | None = None) -> dict[str, list[str]]:
    """Files present and columns present, before any cluster starts.

    Returns the files of each set (of the sets named in ``sets``, by default all).
    Raises :class:`InputError` naming the file and the column at fault.
    ``remote=False`` leaves endpoints and databases unasked (what a page
    shows while it is typed).
    """
    files: dict[str, list[str]] = {}
    for spec in job.sets():
        source = job.sources[spec.name]
        if sets is not None and spec.name not in sets:
            continue
        if not remote and source.remote:
            continue
        try:
            files[spec.name] = source.describe(job.path)
            for where, names in source.headers(files[spec.name]):
                _check_columns(job, spec, where, names, source.kind_of_column)
        except BigalignError as err:  # (the web application shows it beside the set's source)
            err.field = err.field or f"{spec.name}.{source.key}"
            raise
    return files


def _check_columns(job: Job, spec: SetSpec, where: str, names: list[str], kind: str) -> None:
    """The id, the treatments' and the blocking's columns (``kind``: or variables) are among ``names``."""
    if spec.id is not None and spec.id not in names:
        raise InputError(f"{where}: id {kind} {spec.id!r} not found; {kind}s are {names}", field=f"{spec.name}.id")
    for i, t in enumerate(job.alignment.treatments):
        attribute = t.side_attribute("target" if spec.name == "targetset" else "align")
        try:
            attribute_columns(_Header(names), attribute)
        except KeyError:
            raise InputError(f"{where}: treatments[{i}]: {kind} {attribute!r} not found; {kind}s are {names}",
                             field=f"treatments[{i}].column") from None
    for column in job.alignment.blocking.columns:
        if column not in names:
            raise InputError(f"{where}: blocking: {kind} {column!r} not found; {kind}s are {names}",
                             field="blocking")


class _Header:
    """Just enough of a frame for :func:`attribute_columns`."""

    def __init__(self, names: list[str]):
        self.columns = names
        self.shape = (0, len(names))
