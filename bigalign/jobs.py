"""Job files: a TOML description of an alignment, validated in one place.

A job file is data, never code: user functions (a normalizer, a metric, a key
transform) are named by import path, ``"package.module:function"``, and
imported explicitly. Relative paths are relative to the job file. Every error
names the file and the key at fault.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .blocking import (Blocking, KDTreeBlocking, KeyBlocking, MiniBatchKMeansBlocking, MinHashLSHBlocking,
                       UnionBlocking)
from .io import InputError, SetSpec, expand_paths, read_header
from .records import attribute_columns
from .treatments import Treatment

__all__ = ["ClusterSpec", "Job", "JobError", "OutputSpec", "load_job", "check_inputs", "import_object"]


class JobError(ValueError):
    """A job file that is not valid; the message names the file and key."""


@dataclass
class OutputSpec:
    path: str
    format: str = "parquet"
    align_uri: str | None = None
    target_uri: str | None = None


@dataclass
class ClusterSpec:
    workers: int | None = None
    threads: int = 1
    memory_limit: str | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    dashboard_address: str = "127.0.0.1:8787"
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass
class Job:
    """A validated job."""

    path: str
    threshold: float
    alignset: SetSpec
    targetset: SetSpec | None
    treatments: list[Treatment]
    blocking: Blocking
    output: OutputSpec
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    uniq: bool = True
    one_to_one: bool = False
    dedupe: bool = False
    max_block_pairs: int | None = None
    max_task_pairs: int | None = None
    checkpoint: bool = False
    truth: str | None = None
    generate: dict | None = None
    raw: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> str:
        """Where the run writes beside its output: report, rejects, staging."""
        return os.path.dirname(os.path.abspath(self.output.path))

    def sets(self) -> list[SetSpec]:
        return [self.alignset] if self.targetset is None else [self.alignset, self.targetset]


def import_object(path: str) -> Any:
    """``"package.module:name"`` → the object, imported explicitly."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:name'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {path!r}: {err}") from None


class _Reader:
    """Reads keys of one table, remembering where it is for messages."""

    def __init__(self, job_path: str, table: Mapping[str, Any], where: str):
        if not isinstance(table, Mapping):
            raise JobError(f"{job_path}: {where or 'top level'}: expected a table, got {table!r}")
        self.job_path, self.table, self.where = job_path, dict(table), where
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> JobError:
        name = f"{self.where}.{key}" if self.where else key
        return JobError(f"{self.job_path}: {name}: {message}")

    def get(self, key: str, kinds: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.table:
            if required:
                raise self.error(key, "is required")
            return default
        value = self.table[key]
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise self.error(key, f"must be {expected}, got {value!r}")
        return value

    def rest(self) -> dict[str, Any]:
        """Keys not read yet (options passed on to a metric)."""
        return {k: v for k, v in self.table.items() if k not in self.used}

    def done(self, allowed_extra: bool = False) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown and not allowed_extra:
            raise self.error(unknown[0], f"unknown key; expected one of {sorted(self.used)}")


def _path(job_dir: str, path: str) -> str:
    return path if "://" in path or os.path.isabs(path) else os.path.normpath(os.path.join(job_dir, path))


def _set_spec(reader: _Reader, name: str, job_dir: str) -> SetSpec:
    path = _path(job_dir, reader.get("path", str, required=True))
    default_format = "parquet" if path.endswith((".parquet", ".pq")) else "tsv" if path.endswith(".tsv") else "csv"
    fmt = reader.get("format", str, default_format)
    if fmt not in ("csv", "tsv", "parquet"):
        raise reader.error("format", f"must be 'csv', 'tsv' or 'parquet', got {fmt!r}")
    delimiter = reader.get("delimiter", str, "\t" if fmt == "tsv" else ",")
    if len(delimiter) != 1:
        raise reader.error("delimiter", f"must be one character, got {delimiter!r}")
    spec = SetSpec(name=name, path=path, format="parquet" if fmt == "parquet" else "csv",
                   id=reader.get("id", str), delimiter=delimiter, encoding=reader.get("encoding", str, "utf-8"),
                   header=reader.get("header", bool, True), columns=reader.get("columns", list))
    try:
        "".encode(spec.encoding)
    except LookupError:
        raise reader.error("encoding", f"unknown encoding {spec.encoding!r}") from None
    reader.done()
    return spec


def _callable_or_name(value: Any) -> Any:
    if isinstance(value, str) and ":" in value:
        return import_object(value)
    return value


def _transform(value: Any) -> Any:
    """A key transform by name ("soundex", "prefix:3"), by import path, or one per key part."""
    if isinstance(value, list):
        return [_transform(v) for v in value]
    return value if str(value).startswith("prefix:") else _callable_or_name(value)


def _normalizers(reader: _Reader, key: str) -> list[Any]:
    specs = reader.get(key, list, [])
    result = []
    for spec in specs:
        if isinstance(spec, Mapping) and ":" in str(spec.get("name", "")):
            params = dict(spec)
            function = import_object(params.pop("name"))
            result.append(function(**params) if params else function)
        else:
            result.append(_callable_or_name(spec))
    return result


def _treatment(reader: _Reader) -> Treatment:
    column = reader.get("column", (str, list), required=True)
    attribute = tuple(column) if isinstance(column, list) else column
    try:
        metric = _callable_or_name(reader.get("metric", str, required=True))
        normalizers = _normalizers(reader, "normalizers")
        weight = reader.get("weight", (int, float), 1.0)
        normalized = reader.get("normalized", bool, False)
        return Treatment(attribute, metric, normalizers=normalizers, weight=weight, normalized=normalized,
                         **reader.rest())
    except JobError:
        raise
    except (ValueError, TypeError) as err:
        raise JobError(f"{reader.job_path}: {reader.where}: {err}") from None


_BLOCKINGS: dict[str, tuple[type, dict[str, type | tuple[type, ...]]]] = {
    "minhash_lsh": (MinHashLSHBlocking, {"columns": (list, str), "threshold": (int, float), "num_perm": int,
                                         "bands": int, "rows": int, "ngram": int, "words": bool, "seed": int,
                                         "normalizers": list}),
    "key": (KeyBlocking, {"columns": (str, list), "transform": (str, list), "normalizers": list}),
    "kmeans": (MiniBatchKMeansBlocking, {"columns": list, "n_clusters": int, "overlap": int,
                                         "radius": (int, float), "sample_size": int, "random_state": int}),
    "kdtree": (KDTreeBlocking, {"columns": list, "radius_km": (int, float)}),
}


def _blocking(reader: _Reader) -> Blocking:
    kind = reader.get("kind", str, required=True)
    if kind == "union":
        members = reader.get("of", list, required=True)
        reader.done()
        if not members:
            raise reader.error("of", "needs at least one blocking")
        return UnionBlocking([_blocking(_Reader(reader.job_path, m, f"{reader.where}.of[{i}]"))
                              for i, m in enumerate(members)])
    if kind not in _BLOCKINGS:
        raise reader.error("kind", f"unknown blocking {kind!r}; expected one of {sorted(_BLOCKINGS) + ['union']}")
    cls, schema = _BLOCKINGS[kind]
    params = {}
    for key, kinds in schema.items():
        value = reader.get(key, kinds)
        if value is not None:
            params[key] = _transform(value) if key == "transform" else value
    reader.done()
    try:
        return cls(**params)
    except (ValueError, TypeError) as err:
        raise JobError(f"{reader.job_path}: {reader.where}: {err}") from None


def load_job(path: str, overrides: Mapping[str, Any] | None = None) -> Job:
    """Read and validate a job file.

    ``overrides`` replaces top-level keys and keys of ``[cluster]`` and
    ``[output]`` (the command line's ``--workers``, ``--scheduler``,
    ``--output``).
    """
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise JobError(f"{path}: no such job file") from None
    except tomllib.TOMLDecodeError as err:
        raise JobError(f"{path}: not valid TOML: {err}") from None
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    job_dir = os.path.dirname(os.path.abspath(path))
    top = _Reader(path, raw, "")
    threshold = top.get("threshold", (int, float), required=True)
    dedupe = top.get("dedupe", bool, False)
    uniq = top.get("uniq", bool, not dedupe)
    if dedupe and uniq:
        raise top.error("uniq", "deduplication returns every pair under the threshold: set uniq = false")
    alignset = _set_spec(_Reader(path, top.get("alignset", dict, required=True), "alignset"), "alignset", job_dir)
    target_table = top.get("targetset", dict)
    if dedupe and target_table is not None:
        raise top.error("targetset", "a deduplication job has no targetset")
    if not dedupe and target_table is None:
        raise top.error("targetset", "is required (or set dedupe = true)")
    targetset = None if dedupe else _set_spec(_Reader(path, target_table, "targetset"), "targetset", job_dir)
    treatment_tables = top.get("treatments", list, required=True)
    if not treatment_tables:
        raise top.error("treatments", "needs at least one [[treatments]] table")
    treatments = [_treatment(_Reader(path, t, f"treatments[{i}]")) for i, t in enumerate(treatment_tables)]
    blocking = _blocking(_Reader(path, top.get("blocking", dict, required=True), "blocking"))
    output_reader = _Reader(path, top.get("output", dict, required=True), "output")
    output = OutputSpec(path=_path(job_dir, output_reader.get("path", str, required=True)),
                        format=output_reader.get("format", str, "parquet"),
                        align_uri=output_reader.get("align_uri", str), target_uri=output_reader.get("target_uri", str))
    if output.format not in ("parquet", "csv", "ntriples"):
        raise output_reader.error("format", f"must be 'parquet', 'csv' or 'ntriples', got {output.format!r}")
    output_reader.done()
    cluster_reader = _Reader(path, top.get("cluster", dict, {}), "cluster")
    cluster = ClusterSpec(
        workers=cluster_reader.get("workers", int), threads=cluster_reader.get("threads", int, 1),
        memory_limit=cluster_reader.get("memory_limit", str), scheduler=cluster_reader.get("scheduler", str),
        scheduler_file=cluster_reader.get("scheduler_file", str),
        dashboard_address=cluster_reader.get("dashboard_address", str, "127.0.0.1:8787"),
        tls_ca_file=cluster_reader.get("tls_ca_file", str), tls_cert=cluster_reader.get("tls_cert", str),
        tls_key=cluster_reader.get("tls_key", str),
    )
    for key in ("scheduler_file", "tls_ca_file", "tls_cert", "tls_key"):
        if getattr(cluster, key):
            setattr(cluster, key, _path(job_dir, getattr(cluster, key)))
    if cluster.workers is not None and cluster.workers < 1:
        raise cluster_reader.error("workers", f"must be at least 1, got {cluster.workers}")
    cluster_reader.done()
    truth = top.get("truth", str)
    generate = top.get("generate", dict)
    if generate is not None:
        g = _Reader(path, generate, "generate")
        if g.get("kind", str, required=True) != "person_records":
            raise g.error("kind", "the only generator is 'person_records'")
        generate = {"n": g.get("n", int, required=True), "seed": g.get("seed", int, 0),
                    "duplicates": g.get("duplicates", (int, float), 0.8)}
        g.done()
    max_block_pairs = top.get("max_block_pairs", int)
    job = Job(path=path, threshold=float(threshold), alignset=alignset, targetset=targetset, treatments=treatments,
              blocking=blocking, output=output, cluster=cluster, uniq=uniq,
              one_to_one=top.get("one_to_one", bool, False), dedupe=dedupe, max_block_pairs=max_block_pairs,
              checkpoint=top.get("checkpoint", bool, False), max_task_pairs=top.get("max_task_pairs", int),
              truth=_path(job_dir, truth) if truth else None, generate=generate, raw=raw)
    top.done()
    return job


def check_inputs(job: Job) -> dict[str, list[str]]:
    """Files present and columns present, before any cluster starts.

    Returns the files of each set. Raises :class:`InputError` naming the file
    and the column at fault.
    """
    files: dict[str, list[str]] = {}
    for spec in job.sets():
        paths = expand_paths(spec.path)
        if not paths:
            raise InputError(f"{job.path}: {spec.name}.path: no file matches {spec.path!r}")
        files[spec.name] = paths
        for path in paths:
            names = read_header(spec, path)
            if spec.id is not None and spec.id not in names:
                raise InputError(f"{path}: id column {spec.id!r} not found; columns are {names}")
            for i, t in enumerate(job.treatments):
                try:
                    attribute_columns(_Header(names), t.attribute)
                except KeyError:
                    raise InputError(f"{path}: treatments[{i}]: column {t.attribute!r} not found; "
                                     f"columns are {names}") from None
            for column in job.blocking.columns:
                if column not in names:
                    raise InputError(f"{path}: blocking: column {column!r} not found; columns are {names}")
    return files


class _Header:
    """Just enough of a frame for :func:`attribute_columns`."""

    def __init__(self, names: list[str]):
        self.columns = names
        self.shape = (0, len(names))
