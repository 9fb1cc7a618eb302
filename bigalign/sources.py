"""Sources: where a set's records come from, read in units, staged as Parquet.

A set's table in a job (``[alignset]``…) names one source: files (CSV or
Parquet, local or fsspec URLs), RDF files queried together by SPARQL, a
SPARQL endpoint or a CubicWeb instance (RQL) read in pages, or a database
read in partitions. Each is a
:class:`Source` registered in :data:`SOURCES`, and the rest of bigalign
only calls the interface:

- :meth:`Source.describe`: the source is there, its *units* (files, pages,
  partitions: a task each), its columns (a query's variables, a table's
  columns) and rows where it tells them;
- :meth:`Source.headers` (what the job's columns are checked against),
  :meth:`Source.header` and :meth:`Source.batches`: each unit's column
  names and records, with each row's number in its unit;
- :meth:`Source.stage`: one unit read, its rejects set aside, its good rows
  written as Parquet (the task a run maps over the units);
- :meth:`Source.sample`, :meth:`Source.input_bytes` (what decides whether a
  run needs a cluster) and :meth:`Source.fingerprint` (what a checkpoint
  depends on).

A new source is one class: the four abstract methods a kind reads with,
and its name in :data:`SOURCES`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import rql, sparql
from .errors import InputError
from .io import (
    BATCH_ROWS,
    ROW_GROUP_ROWS,
    SetSpec,
    csv_records,
    expand_paths,
    file_header,
    is_url,
    open_file,
    parquet_types,
)
from .job_tables import set_spec
from .records import attribute_columns, record_hashes
from .sql import ROWS_PER_PARTITION, describe
from .sql import read as read_sql
from .treatments import Treatment
from .values.columns import TEXT
from .values.sets import RANK_PREFIX, records_of_rows

__all__ = ["SOURCES", "DatabaseSource", "EndpointSource", "FileSource", "QUERY_ROW_BYTES", "RdfSource", "RqlSource",
           "Source", "StagedFile", "read_set", "source_of", "stage_file"]

# What a row of a query's results counts for, against the input size under which a run needs no cluster
# (a record of the demo's CSV is ~120 bytes).
QUERY_ROW_BYTES = 200


@dataclass
class StagedFile:
    """What staging one unit of a source produced."""

    source: str
    parquet: str | None
    rows_read: int = 0
    rows_kept: int = 0
    rejects: list[dict] = field(default_factory=list)
    # hashes of the kept records' ids: distinct hashes prove distinct ids, cheaply
    id_hashes: np.ndarray | None = None


class Source(ABC):
    """Where one set's records come from (its :class:`~bigalign.io.SetSpec`: the job's table)."""

    # The job's key that names the source: its errors are shown beside that field.
    key: ClassVar[str] = "path"
    # Asked over the network (not asked while a form is typed).
    remote: ClassVar[bool] = False
    # Columns or variables (in messages).
    kind_of_column: ClassVar[str] = "column"

    def __init__(self, spec: SetSpec):
        self.spec = spec
        # What describe() learns when the source tells it (the spec, the job's, stays as written).
        self.columns: list[str] | None = None if spec.columns is None else list(spec.columns)
        self.rows: int | None = None
        self.npartitions: int | None = spec.npartitions
        self.page_size = spec.page_size

    @abstractmethod
    def describe(self, job_path: str | None = None) -> list[str]:
        """Check that the source is there; its units (labels for messages, a task each). The source learns
        its columns and rows when it tells them."""

    @abstractmethod
    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        """(where, column names) to check the job's columns against: each file, or the query once."""

    @abstractmethod
    def batches(self, unit: str, index: int, names: list[str], rejects: list[dict],
                rows: pd.DataFrame | None = None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """The records of unit ``index`` in frames, with each row's number in its unit; rows that cannot be
        read at all go to ``rejects``."""

    @abstractmethod
    def header(self, unit: str) -> list[str]:
        """The column names of one unit."""

    def staged_units(self, units: list[str]) -> list[str]:
        """The units staging reads, a task each."""
        return units

    def partitions(self, columns: list[str] | None) -> list | None:
        """Delayed frames of the units, when Dask reads them (a database's); else None."""
        return None

    def input_bytes(self, units: Sequence[str]) -> float | None:
        """What the set weighs against a run's no-cluster cut; None: not known here (an object store)."""
        return (self.rows or 0) * QUERY_ROW_BYTES

    def fingerprint(self, units: Sequence[str]) -> list:
        """What the set's records depend on, beside the job: a checkpoint made of other inputs is not read."""
        return []

    def sample(self, rows: int) -> pd.DataFrame:
        """The first ``rows`` records (of the first unit), as read for staging, the id first."""
        units = self.describe()
        names = self.header(units[0])
        frames, count = [], 0
        for frame, _ in self.batches(units[0], 0, names, []):
            frames.append(frame.head(rows - count))
            count += len(frames[-1])
            if count >= rows:
                break
        records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)
        id_column = self.spec.id or names[0]
        return _records(records[[id_column] + [c for c in records.columns if c != id_column]], self.spec)

    def stage(self, unit: str, index: int, treatments: Sequence[Treatment], staging_dir: str,
              columns: Sequence[str] | None = None, rows: pd.DataFrame | None = None) -> StagedFile:
        """Read one unit, set its rejects aside, write the good rows as Parquet.

        ``unit`` names it in messages (a file, a page of an endpoint's rows,
        a partition of a database's, whose ``rows`` Dask read). The staged
        frame has the id first, the attribute columns as text (CSV) or as
        stored, then ``_file`` and ``_row`` (where each record came from, for
        messages). With ``columns`` (the columns the job reads), only those
        are staged; all are when one is missing (an attribute given by
        position counts every column).
        """
        spec = self.spec
        result = StagedFile(source=unit, parquet=None)
        names = self.header(unit)
        id_column = spec.id or names[0]
        if id_column not in names:
            raise InputError(f"{unit}: id column {id_column!r} not found; columns are {names}")
        if columns is not None and not set(columns) <= set(names):
            columns = None
        if columns is not None and spec.literal_details:  # (each value's language and datatype beside it)
            columns = [*columns, *(f"{c}{detail}" for c in columns for detail in ("_lang", "_datatype"))]
        keep = [id_column] + [c for c in names if c != id_column and (columns is None or c in columns)]
        target = os.path.join(staging_dir, f"{spec.name}-{index:05d}.parquet")
        writer = None
        hashes = []
        try:
            for frame, numbers in self.batches(unit, index, names, result.rejects, rows):
                result.rows_read += len(frame)
                frame = frame[keep + [c for c in frame.columns if c.startswith(RANK_PREFIX)]]
                self.check_ids(frame, numbers, id_column, unit)
                frame, numbers = _validate(frame, numbers, id_column, treatments, spec, unit, result.rejects)
                frame["_file"] = np.int32(index)
                frame["_row"] = numbers
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    # Written once and read once, on local disk: no dictionaries, no compression, no
                    # statistics (nothing filters on them) — written in a third of LZ4's time, read
                    # faster, twice as large (the demo's 1M records: 123 MB instead of 60).
                    writer = pq.ParquetWriter(target + ".part", table.schema, use_dictionary=False,
                                              compression="none", write_statistics=False)
                writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP_ROWS)
                result.rows_kept += len(frame)
                hashes.append(record_hashes(frame[id_column]))
        finally:
            if writer is not None:
                writer.close()
        if writer is not None:
            os.chmod(target + ".part", 0o600)  # raw records: for the user only
            os.replace(target + ".part", target)
            result.parquet = target
        # Rows set aside before validation were read too.
        result.rows_read += sum(1 for r in result.rejects
                                if r["reason"].startswith(("malformed", "bytes that are not")))
        result.id_hashes = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        return result

    def check_ids(self, frame: pd.DataFrame, numbers: np.ndarray, id_column: str, unit: str) -> None:
        """A row without an identifier is a reject (see :func:`_validate`), unless the source says otherwise."""


def stage_file(source: Source, unit: str, index: int, treatments: Sequence[Treatment], staging_dir: str,
               columns: Sequence[str] | None = None, rows: pd.DataFrame | None = None) -> StagedFile:
    """:meth:`Source.stage` as a task (its name is the stage's on Dask's dashboard)."""
    return source.stage(unit, index, treatments, staging_dir, columns, rows)


class FileSource(Source):
    """CSV or Parquet files: a path, a glob or an fsspec URL; a file a unit."""

    def describe(self, job_path: str | None = None) -> list[str]:
        spec = self.spec
        paths = expand_paths(spec.path)
        if not paths:
            where = f"{job_path}: " if job_path else ""
            raise InputError(f"{where}{spec.name}.path: no file matches {spec.path!r}", field=f"{spec.name}.path")
        return paths

    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        for path in units:
            yield path, file_header(self.spec, path)
        if self.spec.format == "parquet" and len(units) > 1:
            _check_same_types(self.spec, list(units))

    def header(self, unit: str) -> list[str]:
        return file_header(self.spec, unit)

    def batches(self, unit: str, index: int, names: list[str], rejects: list[dict],
                rows: pd.DataFrame | None = None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        if self.spec.format == "parquet":
            start = 1
            with open_file(unit) as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
                    frame = batch.to_pandas()
                    yield frame, np.arange(start, start + len(frame))
                    start += len(frame)
        else:
            yield from csv_records(self.spec, unit, names, rejects)

    def input_bytes(self, units: Sequence[str]) -> float | None:
        if any(is_url(p) for p in units):
            return None
        return float(sum(os.path.getsize(p) for p in units))

    def fingerprint(self, units: Sequence[str]) -> list:
        return [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in units if not is_url(p)]


class _QuerySource(Source):
    """A SPARQL SELECT's rows: its variables are the columns, and a row's identifier is never missing."""

    kind_of_column = "variable"

    def header(self, unit: str) -> list[str]:
        if self.columns is None:
            raise ValueError(f"{self.spec.name}: the query's columns are read by describe() first")
        return sparql.columns(self.columns, self.spec.literal_details)

    def check_ids(self, frame: pd.DataFrame, numbers: np.ndarray, id_column: str, unit: str) -> None:
        if frame[id_column].isna().any():
            row = int(numbers[np.flatnonzero(frame[id_column].isna().to_numpy())[0]])
            raise InputError(f"{self.spec.name}: row {row} of the query's results ({unit}) has no value for the "
                             f"identifier ?{id_column}; make it required in the query, or choose another id")


class RdfSource(_QuerySource):
    """RDF files loaded together into an in-memory store and queried there: one unit."""

    def describe(self, job_path: str | None = None) -> list[str]:
        paths = FileSource(self.spec).describe(job_path)
        self.columns = sparql.query_variables(self.spec.query or "", self.spec.name)
        return paths

    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        yield f"{self.spec.name}: the query on {self.spec.path}", self.header(self.spec.path)

    def staged_units(self, units: list[str]) -> list[str]:
        return [self.spec.path]  # (the files are read together, by one query)

    def batches(self, unit: str, index: int, names: list[str], rejects: list[dict],
                rows: pd.DataFrame | None = None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        assert self.spec.query is not None
        start = 1
        for frame in sparql.read_rdf(expand_paths(unit), self.spec.query, self.spec.literal_details, open_file,
                                     BATCH_ROWS, self.spec.lang):
            yield frame, np.arange(start, start + len(frame))
            start += len(frame)

    def input_bytes(self, units: Sequence[str]) -> float | None:
        return FileSource(self.spec).input_bytes(units)

    def fingerprint(self, units: Sequence[str]) -> list:
        return FileSource(self.spec).fingerprint(units)


class _PagedSource(Source):
    """A query's rows counted by :meth:`describe`, then read in pages of ``page_size`` rows, a page a unit
    (:meth:`page`), numbered in the ordered result."""

    remote = True

    def pages(self) -> int:
        """The pages of the rows (at least one: an empty result is read too)."""
        return max(1, -(-(self.rows or 0) // self.page_size))

    @abstractmethod
    def page(self, index: int) -> pd.DataFrame:
        """The rows of page ``index``."""

    def batches(self, unit: str, index: int, names: list[str], rejects: list[dict],
                rows: pd.DataFrame | None = None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        frame = self.page(index)
        start = index * self.page_size + 1  # rows numbered in the ordered result
        yield frame, np.arange(start, start + len(frame))

    def sample(self, rows: int) -> pd.DataFrame:
        self.describe()
        self.page_size = rows  # (the first page is the sample)
        return super().sample(rows)

    def fingerprint(self, units: Sequence[str]) -> list:
        return [self.spec.path, self.spec.query, self.rows]


class EndpointSource(_PagedSource, _QuerySource):
    """A SPARQL endpoint: the query's rows counted first, then read in pages, a page a unit."""

    key = "sparql"

    def describe(self, job_path: str | None = None) -> list[str]:
        spec = self.spec
        # The endpoint tells the variables and counts the rows: the pages are the set's "files".
        self.columns, self.rows = sparql.describe_endpoint(spec.sparql or "", spec.query or "", spec.name,
                                                           spec.timeout, spec.retries)
        return [f"{spec.sparql} (page {k + 1} of {self.pages()})" for k in range(self.pages())]

    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        yield f"{self.spec.name}: the query on {self.spec.sparql}", self.header(self.spec.path)

    def page(self, index: int) -> pd.DataFrame:
        spec = self.spec
        assert spec.sparql is not None and spec.query is not None and self.columns is not None
        return sparql.read_page(spec.sparql, spec.query, self.columns, self.page_size, index, self.rows or 0,
                                spec.name, spec.timeout, spec.retries, spec.literal_details, spec.lang)


class RqlSource(_PagedSource):
    """A CubicWeb instance answering an RQL query: its rows counted first, then read in pages, a page a unit;
    columns named by the query's variables (or the set's ``columns``)."""

    key = "rql"
    kind_of_column = "variable"

    def describe(self, job_path: str | None = None) -> list[str]:
        spec = self.spec
        assert spec.rql is not None and spec.query is not None
        variables, self.rows = rql.describe_instance(spec.rql, spec.query, spec.name, spec.timeout, spec.retries)
        if spec.columns is not None and len(spec.columns) != len(variables):
            raise InputError(f"{spec.name}.columns: {len(spec.columns)} names for the query's {len(variables)} "
                             f"variables ({', '.join(variables)})", field=f"{spec.name}.columns")
        self.columns = list(spec.columns or variables)
        return [f"{spec.path} (page {k + 1} of {self.pages()})" for k in range(self.pages())]

    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        yield f"{self.spec.name}: the RQL query on {self.spec.path}", self.header("")

    def header(self, unit: str) -> list[str]:
        if self.columns is None:
            raise ValueError(f"{self.spec.name}: the query's columns are read by describe() first")
        return list(self.columns)

    def page(self, index: int) -> pd.DataFrame:
        spec = self.spec
        assert spec.rql is not None and spec.query is not None and self.columns is not None
        return rql.read_page(spec.rql, spec.query, self.columns, self.page_size, index, self.rows or 0, spec.name,
                             spec.timeout, spec.retries)


class DatabaseSource(Source):
    """A database's table or SELECT (a SQLAlchemy URL), read by Dask in partitions of ``index_col``."""

    key = "sql"
    remote = True

    def _where(self) -> str:
        spec = self.spec
        return f"{spec.name}: {'table ' + repr(spec.table) if spec.table else 'the query'} of {spec.path}"

    def describe(self, job_path: str | None = None) -> list[str]:
        spec = self.spec
        assert spec.sql is not None
        self.columns, rows = describe(spec.sql, spec.table, spec.query, spec.name)
        if spec.index_col not in self.columns:
            raise InputError(f"{self._where()}: index_col {spec.index_col!r} not found; columns are {self.columns}")
        self.rows = rows
        self.npartitions = spec.npartitions or max(1, -(-rows // ROWS_PER_PARTITION))
        return [f"{self._where()} (partition {k + 1} of {self.npartitions} by {spec.index_col})"
                for k in range(self.npartitions)]

    def headers(self, units: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
        yield self._where(), self.header("")

    def header(self, unit: str) -> list[str]:
        if self.columns is None:
            raise ValueError(f"{self.spec.name}: the table's columns are read by describe() first")
        return list(self.columns)

    def partitions(self, columns: list[str] | None) -> list | None:
        spec = self.spec
        assert spec.sql is not None and self.columns is not None and spec.index_col is not None
        assert self.npartitions is not None
        wanted = [c for c in self.columns if columns is None or c in columns or c in (spec.id or self.columns[0],
                                                                                       spec.index_col)]
        return read_sql(spec.sql, spec.table, spec.query, spec.index_col, wanted, self.npartitions,
                        spec.name).to_delayed()

    def batches(self, unit: str, index: int, names: list[str], rejects: list[dict],
                rows: pd.DataFrame | None = None) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        assert rows is not None, "a database's partitions are read by Dask (see partitions())"
        numbers = rows[self.spec.index_col] if self.spec.index_col in rows else pd.Series(dtype=object)
        yield rows, (numbers.to_numpy(np.int64) if pd.api.types.is_integer_dtype(numbers)
                     else np.arange(1, len(rows) + 1))

    def sample(self, rows: int) -> pd.DataFrame:
        raise InputError(f"{self.spec.name}: a database's table is sampled when it runs; no preview here")

    def fingerprint(self, units: Sequence[str]) -> list:
        return [self.spec.path, self.spec.table, self.spec.query, self.rows]


# The kinds of source, by name: what a set's table says it reads (see source_of).
SOURCES: dict[str, type[Source]] = {"files": FileSource, "rdf": RdfSource, "sparql": EndpointSource,
                                    "rql": RqlSource, "sql": DatabaseSource}


def source_of(spec: SetSpec) -> Source:
    """The source a set's table names: ``sql``, ``sparql``, ``rql``, RDF files (``format = "rdf"``), or files."""
    kind = "sql" if spec.sql is not None else "sparql" if spec.sparql is not None else \
        "rql" if spec.rql is not None else "rdf" if spec.format == "rdf" else "files"
    return SOURCES[kind](spec)


def read_set(table: Mapping[str, Any], name: str = "targetset") -> pd.DataFrame:
    """The records of a set described as a job's set table (``{"rql": URL, "query": "Any …"}``,
    ``{"sparql": …}``, ``{"sql": …, "table": …}``, ``{"path": …}``: see the README's sources), read whole in
    this process, the identifier first — for :func:`bigalign.align` in Python. A row that cannot be read
    is an error naming its unit and row."""
    import dask  # (not with the module: the command reads sources before it needs Dask)

    source = source_of(set_spec(os.path.join(os.getcwd(), "python"), name, table))
    units = source.describe()
    rejects: list[dict] = []
    partitions = source.partitions(None)  # (a database's, read by Dask)
    frames = list(dask.compute(*partitions)) if partitions is not None else [
        frame for index, unit in enumerate(source.staged_units(units))
        for frame, _ in source.batches(unit, index, source.header(unit), rejects)]
    if rejects:
        first = rejects[0]
        raise InputError(f"{first['file']}: row {first['row']}: {first['reason']} ({len(rejects)} rows unread)")
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=source.header(units[0]))
    id_column = source.spec.id or records.columns[0]
    return _records(records[[id_column] + [c for c in records.columns if c != id_column]], source.spec)


def _records(rows: pd.DataFrame, spec: SetSpec) -> pd.DataFrame:
    """Rows read in this process (the identifier first) as records: the rows of an identifier made one
    record of value sets when the set is multivalued, as a run makes them."""
    if spec.multivalued:
        return records_of_rows(rows, rows.columns[0], spec.literal_details)
    return rows.drop(columns=[c for c in rows.columns if c.startswith(RANK_PREFIX)])


def _check_same_types(spec: SetSpec, paths: list[str]) -> None:
    """The files of one Parquet set agree on the type of each column (else Arrow fails mid-run)."""
    first = parquet_types(paths[0])
    for path in paths[1:]:
        types = parquet_types(path)
        for column, kind in types.items():
            if column in first and first[column] != kind:
                raise InputError(f"{spec.name}: column {column!r} is {first[column]} in {paths[0]} but {kind} "
                                 f"in {path}; the files of a set must agree")


def _validate(frame: pd.DataFrame, numbers: np.ndarray, id_column: str, treatments: Sequence[Treatment],
              spec: SetSpec, path: str, rejects: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows every treatment can read, the others set aside in ``rejects`` (or an error, as a treatment's
    ``invalid`` says); rows without an identifier, or with a NUL byte in it, too."""
    bad = np.zeros(len(frame), dtype=bool)
    ids = frame[id_column]
    text = ids.astype(TEXT)  # (Arrow's string kernels: str would give Python objects, ten times slower)
    missing_id = ids.isna().to_numpy() | (text.str.strip() == "").fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(missing_id):
        rejects.append({"set": spec.name, "file": path, "row": int(numbers[i]), "column": id_column,
                        "reason": "missing identifier", "value": ""})
    nul = text.str.contains("\x00", regex=False).fillna(False).to_numpy(dtype=bool) & ~missing_id
    for i in np.flatnonzero(nul):
        rejects.append({"set": spec.name, "file": path, "row": int(numbers[i]), "column": id_column,
                        "reason": "identifier with a NUL byte", "value": repr(text.iloc[i])[:200]})
    bad |= missing_id | nul
    side = "target" if spec.name == "targetset" else "align"
    for t in treatments:
        if t.metric.reads_every_value:
            continue
        columns = attribute_columns(frame, t.side_attribute(side))
        reasons, values = t.reject_reasons(frame, side)
        invalid = (reasons != None) & ~bad  # noqa: E711 (element-wise)
        shown = [values[i] for i in np.flatnonzero(invalid)]
        if t.invalid == "error" and shown:
            first = int(np.flatnonzero(invalid)[0])
            raise InputError(f"{path}: row {int(numbers[first])}, column {', '.join(columns)}: {reasons[first]}: "
                             f"{shown[0]!r} (the treatment says invalid = \"error\")")
        for i, value in zip(np.flatnonzero(invalid), shown):
            rejects.append({"set": spec.name, "file": path, "row": int(numbers[i]), "column": ", ".join(columns),
                            "reason": reasons[i], "value": str(value)[:200]})
        bad |= invalid
    return frame[~bad].reset_index(drop=True), numbers[~bad]
