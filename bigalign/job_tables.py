"""The tables of a job file, each read and checked by one function.

A :class:`TableReader` reads the keys of one table and names the file and key
in every error; :class:`UserCode` is the user code a job names, allowed by
module, imported only when resolving (see :mod:`bigalign.jobs`). The
parameters of the alignment itself are declared in :mod:`bigalign.spec`.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .blocking import BLOCKINGS, Blocking, UnionBlocking
from .errors import InputError, JobError
from .io import SetSpec, is_url
from .rql import parse_query
from .sparql import RDF_EXTENSIONS, split_query
from .sql import check_query, redact, shown_url
from .values.languages import check_lang

__all__ = ["ClusterSpec", "ClustersSpec", "NotImported", "NotImportedBlocking", "OutputSpec", "TableReader",
           "UserCode", "import_object", "is_import_path", "job_relative", "output_format", "read_blocking",
           "read_cluster", "read_clusters", "read_output", "read_set", "read_several_sets", "set_spec"]

# A worker process's memory before any record (Python, pandas, Arrow, Dask, rapidfuzz, scikit-learn and
# bigalign imported: 286 MiB measured on a local cluster's worker), and the least memory_limit a job may give
# one (it pauses at 80% of it).
WORKER_LIBRARIES = 290 << 20
MIN_WORKER_MEMORY = 512 << 20


@dataclass(frozen=True)
class OutputSpec:
    path: str
    format: str = "parquet"
    align_uri: str | None = None
    target_uri: str | None = None
    run_dir: str | None = None  # by default the links' directory; required for a URL
    dask_report: bool | None = None  # Dask's performance report; None: when the cluster is remote
    # Links written to the table ``table`` of the database ``sql`` (a SQLAlchemy URL) instead of a file.
    sql: str | None = None
    table: str | None = None
    # The links also written into the named ``graph`` of a SPARQL 1.1 Update service (replaced whole).
    sparql_update: str | None = None
    graph: str | None = None


@dataclass(frozen=True)
class ClustersSpec:
    """``[clusters]``: the entities the links make (see :func:`bigalign.cluster_links`)."""

    path: str
    format: str = "parquet"
    threshold: float | None = None  # cluster on links at least this strong (stricter than the linking's)
    max_size: int | None = None  # components of more records cut back, strongest links first


@dataclass(frozen=True)
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
    connect_timeout: float = 10  # seconds to reach a scheduler
    # a local cluster of worker processes, or one in this process; None: by input size (small: no cluster at all)
    processes: bool | None = None




def import_object(path: str) -> Any:
    """``"package.module:name"`` → the object, imported explicitly."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:name'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {path!r}: {err}") from None


class NotImported:
    """User code a job names, checked but not imported (``resolve=False``):
    it stands where the object would be and refuses to be called."""

    def __init__(self, path: str):
        self.path = path
        self.__name__ = path

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.path} was not imported (the job was loaded without resolving user code)")

    def __repr__(self) -> str:
        return f"NotImported({self.path!r})"


class NotImportedBlocking(Blocking):
    """A blocking of the user's that a job names, checked but not imported (``resolve=False``)."""

    def __init__(self, path: str):
        self.path = path


def is_import_path(value: Any) -> bool:
    return isinstance(value, str) and ":" in value and not value.startswith("prefix:")


class UserCode:
    """The user code of one job: allowed by module, imported only when resolving."""

    def __init__(self, allowed: Collection[str], resolve: bool):
        self.allowed, self.resolve = set(allowed), resolve
        self.named: list[str] = []

    def get(self, path: str, reader: "TableReader", key: str) -> Any:
        module, _, name = path.partition(":")
        parts = module.split(".")
        if not name.isidentifier() or not all(p.isidentifier() for p in parts):
            raise reader.error(key, f"{path!r} is not a built-in name nor an import path 'package.module:name'")
        if parts[0] not in self.allowed:
            raise reader.error(key, f"{path!r} is user code from module {parts[0]!r}, which this run does not "
                                    f"allow; pass --allow-module {parts[0]} to run it if you trust that module")
        self.named.append(path)
        if not self.resolve:
            # find_spec of a top-level name locates it without running it
            if importlib.util.find_spec(parts[0]) is None:
                raise reader.error(key, f"cannot import {path!r}: no module named {parts[0]!r}")
            return NotImported(path)
        try:
            return import_object(path)
        except ValueError as err:
            raise reader.error(key, str(err)) from None


class TableReader:
    """Reads keys of one table, remembering where it is for messages."""

    def __init__(self, job_path: str, table: Mapping[str, Any], where: str):
        if not isinstance(table, Mapping):
            raise JobError(f"{job_path}: {where or 'top level'}: expected a table, got {table!r}")
        self.job_path, self.table, self.where = job_path, dict(table), where
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> JobError:
        name = f"{self.where}.{key}" if self.where else key
        return JobError(f"{self.job_path}: {name}: {message}", field=name)

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


def job_relative(job_dir: str, path: str) -> str:
    return path if "://" in path or os.path.isabs(path) else os.path.normpath(os.path.join(job_dir, path))


def _query_spec(reader: TableReader, name: str, job_dir: str) -> SetSpec:
    """A set read by a SPARQL SELECT: on an endpoint (``sparql``), or over RDF files (``path``)."""
    endpoint = reader.get("sparql", str)
    path = reader.get("path", str)
    if (endpoint is None) == (path is None):
        raise reader.error("sparql", "give either 'sparql' (an endpoint's URL) or 'path' (RDF files), not both")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise reader.error("sparql", f"an endpoint's URL starts with http:// or https://, got {endpoint!r}")
    query = reader.get("query", str, required=True)
    try:
        split_query(query)
    except ValueError as err:
        raise reader.error("query", str(err)) from None
    paging = _paging(reader) if endpoint is not None else {}
    lang = reader.get("lang", list)
    try:
        lang = None if lang is None else check_lang(lang)
    except ValueError as err:
        raise reader.error("lang", str(err)) from None
    spec = SetSpec(name=name, path=endpoint or job_relative(job_dir, path), format="rdf", id=reader.get("id", str),
                   sparql=endpoint, query=query, literal_details=reader.get("literal_details", bool, False),
                   lang=lang,
                   multivalued=reader.get("multivalued", bool, True), **paging)
    reader.done()
    return spec


def _paging(reader: TableReader) -> dict[str, Any]:
    """An endpoint's or an instance's ``page_size``, ``timeout`` (seconds) and ``retries``, as given."""
    paging: dict[str, Any] = {}
    for key, kinds, least in (("page_size", int, 1), ("timeout", (int, float), 0.001), ("retries", int, 0)):
        value = reader.get(key, kinds)
        if value is not None and value < least:
            raise reader.error(key, f"must be at least {least}, got {value!r}")
        if value is not None:
            paging[key] = float(value) if key == "timeout" else value
    return paging


def _rql_spec(reader: TableReader, name: str) -> SetSpec:
    """A set read by an RQL query from a CubicWeb instance (``rql``: its URL)."""
    url = reader.get("rql", str, required=True)
    if not url.startswith(("http://", "https://")):
        raise reader.error("rql", f"a CubicWeb instance's URL starts with http:// or https://, got {shown_url(url)!r}")
    query = reader.get("query", str, required=True)
    try:
        parse_query(query, "")
    except InputError as err:
        raise reader.error("query", str(err).removeprefix(": ")) from None
    spec = SetSpec(name=name, path=shown_url(url), format="rql", id=reader.get("id", str),
                   columns=_names(reader.get("columns", list)), rql=url, query=query,
                   multivalued=reader.get("multivalued", bool, False), **_paging(reader))
    reader.done()
    return spec


def _sql_spec(reader: TableReader, name: str) -> SetSpec:
    """A set read from a database: its ``table`` or ``query``, in partitions of ``index_col``."""
    url = reader.get("sql", str, required=True)
    if "://" not in url:
        raise reader.error("sql", f"a SQLAlchemy URL such as 'postgresql://user@host/db', got {redact(url)!r}")
    table, query = reader.get("table", str), reader.get("query", str)
    if (table is None) == (query is None):
        raise reader.error("table", "give either 'table' (a table's name) or 'query' (a SELECT), not both")
    if query is not None:
        try:
            check_query(query, "")
        except InputError as err:
            raise reader.error("query", str(err).removeprefix(": ")) from None
    id_column, npartitions = reader.get("id", str), reader.get("npartitions", int)
    index_col = reader.get("index_col", str) or id_column
    if index_col is None:
        raise reader.error("index_col", "is required (an indexed column whose ranges make the partitions) "
                                        "unless 'id' names one")
    if npartitions is not None and npartitions < 1:
        raise reader.error("npartitions", f"must be at least 1, got {npartitions!r}")
    multivalued = reader.get("multivalued", bool, False)
    reader.done()
    return SetSpec(name=name, path=redact(url), format="sql", id=id_column, sql=url, table=table, query=query,
                   index_col=index_col, npartitions=npartitions, multivalued=multivalued)


def read_set(reader: TableReader, name: str, job_dir: str) -> SetSpec:
    if "sql" in reader.table:
        return _sql_spec(reader, name)
    if "rql" in reader.table:
        return _rql_spec(reader, name)
    path_value = reader.table.get("path")
    rdf = isinstance(path_value, str) and os.path.splitext(path_value)[1].lower() in RDF_EXTENSIONS
    if "sparql" in reader.table or "query" in reader.table or reader.table.get("format") == "rdf" or rdf:
        return _query_spec(reader, name, job_dir)
    path = reader.get("path", str, required=True)
    if not path.strip():
        raise reader.error("path", "is empty: name the set's file, files (a glob) or URL")
    path = job_relative(job_dir, path)
    default_format = "parquet" if path.endswith((".parquet", ".pq")) else "tsv" if path.endswith(".tsv") else "csv"
    fmt = reader.get("format", str, default_format)
    if fmt not in ("csv", "tsv", "parquet"):
        raise reader.error("format", f"must be 'csv', 'tsv', 'parquet' or 'rdf', got {fmt!r}")
    delimiter = reader.get("delimiter", str, "\t" if fmt == "tsv" else ",")
    if len(delimiter) != 1:
        raise reader.error("delimiter", f"must be one character, got {delimiter!r}")
    spec = SetSpec(name=name, path=path, format="parquet" if fmt == "parquet" else "csv",
                   id=reader.get("id", str), delimiter=delimiter, encoding=reader.get("encoding", str, "utf-8"),
                   header=reader.get("header", bool, True), columns=_names(reader.get("columns", list)),
                   multivalued=reader.get("multivalued", bool, False))
    try:
        "".encode(spec.encoding)
    except LookupError:
        raise reader.error("encoding", f"unknown encoding {spec.encoding!r}") from None
    reader.done()
    return spec


def _names(columns: list | None) -> tuple[str, ...] | None:
    return None if columns is None else tuple(map(str, columns))


def set_spec(job_path: str, name: str, table: Mapping[str, Any]) -> SetSpec:
    """One set of a job (``[alignset]``'s table, say), validated as :func:`load_job` does."""
    return read_set(TableReader(job_path, table, name), name, os.path.dirname(os.path.abspath(job_path)))


def _transform(value: Any, code: UserCode, reader: TableReader) -> Any:
    """A key transform by name ("soundex", "prefix:3"), by import path, or one per key part."""
    if isinstance(value, list):
        return [_transform(v, code, reader) for v in value]
    return code.get(value, reader, "transform") if is_import_path(value) else value


def read_blocking(reader: TableReader, code: UserCode) -> Blocking:
    kind = reader.get("kind", str, required=True)
    if kind == "union":
        members = reader.get("of", list, required=True)
        reader.done()
        if not members:
            raise reader.error("of", "needs at least one blocking")
        return UnionBlocking([read_blocking(TableReader(reader.job_path, m, f"{reader.where}.of[{i}]"), code)
                              for i, m in enumerate(members)])
    if kind in BLOCKINGS:
        cls: Any = BLOCKINGS[kind]
    elif is_import_path(kind):  # a Blocking of the user's
        cls = code.get(kind, reader, "kind")
        if isinstance(cls, NotImported):  # (validate: checked, not imported; its keys are its own)
            return NotImportedBlocking(kind)
        if not (isinstance(cls, type) and issubclass(cls, Blocking)):
            raise reader.error("kind", f"{kind!r} is not a subclass of bigalign.blocking.Blocking")
    else:
        raise reader.error("kind", f"unknown blocking {kind!r}; expected one of {sorted(BLOCKINGS) + ['union']} "
                                   "or the import path of a Blocking")
    if reader.table.get("columns") in ("", []):
        raise reader.error("columns", "is empty: name the column (or columns) the blocking reads")
    params = {}
    for key, kinds in (cls.parameters or {k: object for k in reader.rest()}).items():
        value = reader.get(key, kinds)
        if value is not None:
            params[key] = _transform(value, code, reader) if key == "transform" else value
    reader.done()
    try:
        return cls(**params)
    except (ValueError, TypeError) as err:
        raise JobError(f"{reader.job_path}: {reader.where}: {err}", field=reader.where) from None


_FORMATS_BY_EXTENSION = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".nt": "ntriples",
                         ".rdf": "alignment"}


def _uri_template(reader: TableReader, key: str) -> str | None:
    """A URI template substitutes ``{id}`` and nothing else (no attribute, no format spec)."""
    template = reader.get(key, str)
    if template is None:
        return None
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as err:
        raise reader.error(key, f"not a URI template: {err}") from None
    if not fields or any(f != ("id", "", None) for f in fields) or "{{" in template or "}}" in template:
        raise reader.error(key, f"a URI template holds '{{id}}' and no other field, got {template!r}")
    return template


def _sql_output(reader: TableReader, job_dir: str) -> OutputSpec:
    """Links written to a database's table (the run's own files to ``run_dir``)."""
    url, table = reader.get("sql", str, required=True), reader.get("table", str, required=True)
    run_dir = reader.get("run_dir", str)
    if "path" in reader.table:
        raise reader.error("path", "give either 'path' (a file) or 'sql' and 'table' (a database's table), not both")
    if run_dir is None:
        raise reader.error("run_dir", "the links go to a database: name a local directory for the run's report, "
                                      "rejects and staging")
    output = OutputSpec(path=f"{redact(url)} table {table}", sql=url, table=table,
                        run_dir=job_relative(job_dir, run_dir), dask_report=reader.get("dask_report", bool))
    reader.used.add("explain")  # (the alignment's: see spec.PARAMETERS)
    reader.done()
    return output


def _write_back(reader: TableReader) -> dict[str, str]:
    """``sparql_update`` (a SPARQL 1.1 Update service's URL) and the ``graph`` (an IRI) it replaces."""
    url, graph = reader.get("sparql_update", str), reader.get("graph", str)
    if url is None:
        if graph is not None:
            raise reader.error("graph", "names the graph 'sparql_update' writes the links into: give that too")
        return {}
    if not url.startswith(("http://", "https://")):
        raise reader.error("sparql_update", f"a SPARQL Update service's URL starts with http:// or https://, got "
                                            f"{shown_url(url)!r}")
    if graph is None or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+", graph):
        raise reader.error("graph", f"the IRI of the graph the links replace is required with 'sparql_update' "
                                    f"(such as \"http://example.org/links/goncourt\"), got {graph!r}")
    return {"sparql_update": url, "graph": graph}


def output_format(path: str, given: str | None) -> str:
    """The format the links are written in: ``given`` (a job's ``format``), else what the path's extension
    says, else Parquet; a given format that the extension contradicts is refused."""
    extension = os.path.splitext(path)[1].lower()
    implied = _FORMATS_BY_EXTENSION.get(extension)
    if given is not None and given not in ("parquet", "csv", "ntriples", "rdf12", "alignment"):
        raise ValueError(f"must be 'parquet', 'csv', 'ntriples', 'rdf12' or 'alignment', got {given!r}")
    if given is not None and implied is not None and given != implied and (given, implied) != ("rdf12", "ntriples"):
        raise ValueError(f"is {given!r} but the output {path!r} ends in {extension!r} ({implied}): change one or "
                         "the other")
    return given or implied or "parquet"


def read_output(reader: TableReader, job_dir: str) -> OutputSpec:
    if "sql" in reader.table:
        return _sql_output(reader, job_dir)
    path = job_relative(job_dir, reader.get("path", str, required=True))
    try:
        fmt = output_format(path, reader.get("format", str))
    except ValueError as err:
        raise reader.error("format", str(err)) from None
    run_dir = reader.get("run_dir", str)
    output = OutputSpec(path=path, format=fmt, align_uri=_uri_template(reader, "align_uri"),
                        target_uri=_uri_template(reader, "target_uri"),
                        run_dir=job_relative(job_dir, run_dir) if run_dir else None,
                        dask_report=reader.get("dask_report", bool), **_write_back(reader))
    reader.used.add("explain")  # (the alignment's: see spec.PARAMETERS)
    reader.done()
    if is_url(path):
        if output.run_dir is None or is_url(output.run_dir):
            raise reader.error("run_dir", f"the links go to {path}: name a local directory for the run's "
                                          "report, rejects and staging")
    else:
        if os.path.isdir(path):
            raise reader.error("path", f"{path!r} is a directory; name the links file")
        existing = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
            raise reader.error("path", f"cannot write under {existing!r}")
    return output


def _positive(reader: TableReader, key: str, value: Any, minimum: float = 0, strict: bool = True) -> None:
    if value is None:
        return
    if isinstance(value, float) and math.isnan(value) or (value <= minimum if strict else value < minimum):
        bound = f"greater than {minimum}" if strict else f"at least {minimum}"
        raise reader.error(key, f"must be {bound}, got {value!r}")


def read_several_sets(top: TableReader, tables: list, path: str, job_dir: str) -> list[SetSpec]:
    """``[[sets]]``: at least two, each with a name of its own."""
    for key in ("alignset", "targetset", "dedupe"):
        if key in top.table:
            raise top.error(key, "a job with [[sets]] names all its sets there (and deduplicates within them as "
                                 "link_type says)")
    if len(tables) < 2:
        raise top.error("sets", f"needs at least two [[sets]] tables, got {len(tables)}")
    specs: list[SetSpec] = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise top.error("sets", f"[{i}] must be a table")
        reader = TableReader(path, table, f"sets[{i}]")
        name = reader.get("name", str, required=True)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or name in [s.name for s in specs]:
            raise reader.error("name", f"must be distinct names of letters, digits, '_' and '-', got {name!r}")
        specs.append(read_set(TableReader(path, {k: v for k, v in table.items() if k != "name"}, f"sets[{i}]"), name,
                               job_dir))
    return specs


def read_clusters(reader: TableReader, output: OutputSpec, job_dir: str, learned: bool,
              threshold: float | str) -> ClustersSpec:
    links = output.path
    stem = links[:-len(os.path.splitext(links)[1])] if os.path.splitext(links)[1] else links
    if output.sql is not None:  # (no file of links to stand beside: the run's directory)
        stem = os.path.join(output.run_dir or "", "links")
    path = reader.get("path", str)
    # the format the path's extension says, else the links' (RDF links' scores: the clusters' RDF is N-Triples)
    implied = _FORMATS_BY_EXTENSION.get(os.path.splitext(path)[1].lower()) if path else None
    fmt = reader.get("format", str, implied or {"alignment": "ntriples", "rdf12": "ntriples"}.get(output.format,
                                                                                        output.format))
    if fmt not in ("parquet", "csv", "ntriples"):
        raise reader.error("format", f"must be 'parquet', 'csv' or 'ntriples', got {fmt!r}")
    if implied is not None and fmt != implied:
        raise reader.error("format", f"is {fmt!r} but the path {path!r} says {implied!r}")
    extension = {"parquet": ".parquet", "csv": ".csv", "ntriples": ".nt"}[fmt]
    spec = ClustersSpec(path=job_relative(job_dir, path) if path else os.path.join(os.path.dirname(stem),
                                                                           "clusters" + extension),
                        format=fmt, threshold=reader.get("threshold", (int, float)),
                        max_size=reader.get("max_size", int))
    if spec.threshold is not None:
        if learned and not 0 < spec.threshold < 1:
            raise reader.error("threshold", f"with a learned model, a match probability in (0, 1), got "
                                            f"{spec.threshold!r}")
        if not learned and not isinstance(threshold, str) and not 0 <= spec.threshold <= threshold:
            raise reader.error("threshold", f"a distance at most the linking's ({threshold}), got "
                                            f"{spec.threshold!r}")
    _positive(reader, "max_size", spec.max_size, 2, strict=False)
    if os.path.abspath(spec.path) == os.path.abspath(links) if not is_url(links) else spec.path == links:
        raise reader.error("path", "is the links' path; name another file")
    reader.done()
    return spec


def read_cluster(reader: TableReader, job_dir: str) -> ClusterSpec:
    files = {key: job_relative(job_dir, value) for key in ("scheduler_file", "tls_ca_file", "tls_cert", "tls_key")
             if (value := reader.get(key, str))}
    cluster = ClusterSpec(
        workers=reader.get("workers", int), threads=reader.get("threads", int, 1),
        memory_limit=reader.get("memory_limit", str), scheduler=reader.get("scheduler", str),
        dashboard_address=reader.get("dashboard_address", str, "127.0.0.1:8787"),
        connect_timeout=reader.get("connect_timeout", (int, float), 10), processes=reader.get("processes", bool),
        **files)
    _positive(reader, "workers", cluster.workers, 1, strict=False)
    _positive(reader, "threads", cluster.threads, 1, strict=False)
    _positive(reader, "connect_timeout", cluster.connect_timeout)
    if cluster.memory_limit is not None and cluster.memory_limit != "auto":
        from dask.utils import parse_bytes

        try:
            limit = parse_bytes(cluster.memory_limit)
        except ValueError:
            raise reader.error("memory_limit", f"must be a size such as '4GiB' or 'auto', "
                                               f"got {cluster.memory_limit!r}") from None
        if limit < MIN_WORKER_MEMORY:
            raise reader.error("memory_limit", f"{cluster.memory_limit!r} is too little for a worker: its libraries "
                                               f"alone take ~{WORKER_LIBRARIES >> 20} MiB and it pauses at 80% of "
                                               f"its limit; give at least {MIN_WORKER_MEMORY >> 20} MiB ('bigalign "
                                               "plan' estimates what a run needs per worker)")
    tls = [k for k in ("tls_ca_file", "tls_cert", "tls_key") if getattr(cluster, k)]
    if tls and len(tls) < 3:
        missing = sorted({"tls_ca_file", "tls_cert", "tls_key"} - set(tls))
        raise reader.error(missing[0], f"TLS needs tls_ca_file, tls_cert and tls_key together; {tls} given")
    if (cluster.scheduler or "").startswith("tls://") and not tls:
        import dask.config

        if not dask.config.get("distributed.comm.tls.ca-file", None):  # (TLS from Dask's configuration)
            raise reader.error("scheduler", "a tls:// scheduler needs tls_ca_file, tls_cert and tls_key")
    reader.done()
    return cluster
