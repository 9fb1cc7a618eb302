"""Files: how a set is described (:class:`SetSpec`), files read (with their rejects), links written atomically.

Local paths and fsspec URLs alike. CSV files are read by Arrow batch by
batch, as bytes decoded per column, so that rows a parser cannot split and
bytes that do not decode are set aside as *rejects*, each with its file,
row and column. What reads a set's records as a whole, whatever its source
(files, RDF, an endpoint, a database), and stages them as Parquet, is
:mod:`bigalign.sources`.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import InputError
from .values.columns import TEXT

__all__ = ["BATCH_ROWS", "InputError", "REJECT_COLUMNS", "ROW_GROUP_ROWS", "SetSpec", "atomic_path", "csv_records",
           "expand_paths", "file_header", "is_url", "open_file", "parquet_types", "process_lock", "read_pairs",
           "read_table", "RDF_WRITERS", "write_clusters", "write_links"]

REJECT_COLUMNS = ["set", "file", "row", "column", "reason", "value"]
# Rows read at once while staging.
BATCH_ROWS = 200_000
# Rows per Parquet row group of staged files: one partition each when read back.
ROW_GROUP_ROWS = 25_000
# Rows per row group of a links file.
LINK_ROW_GROUP_ROWS = 65_536


@dataclass(frozen=True)
class SetSpec:
    """How to read one set of records."""

    name: str
    path: str
    format: str = "csv"
    id: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    columns: tuple[str, ...] | None = None  # the names of the columns of files without a header
    # A SPARQL SELECT: run on the endpoint ``sparql``, or over the RDF files at ``path`` (format "rdf").
    sparql: str | None = None
    query: str | None = None
    page_size: int = 10_000  # rows per page read from an endpoint
    timeout: float = 60.0  # seconds per request to an endpoint
    retries: int = 3  # more tries of a request that failed for want of an answer
    literal_details: bool = False  # each variable's language and datatype, as <var>_lang and <var>_datatype
    # Language tags of the literals kept, in order of preference ("": a literal without one); None: all.
    lang: tuple[str, ...] | None = None
    # Rows of one identifier make one record whose columns hold value sets (a query's rows: by default).
    multivalued: bool = False
    # An RQL query (``query``) on the CubicWeb instance at ``rql``, read in pages as an endpoint's.
    rql: str | None = None
    # A database (a SQLAlchemy URL): its ``table``, or ``query`` (a SQL SELECT), read in ``npartitions``
    # ranges of ``index_col`` (by default: as many as its rows need).
    sql: str | None = None
    table: str | None = None
    index_col: str | None = None
    npartitions: int | None = None


# The object stores' fsspec backends that bigalign's extras install: extra → (package, protocols).
BACKENDS = {"s3": ("s3fs", ("s3", "s3a")), "gcs": ("gcsfs", ("gs", "gcs")), "azure": ("adlfs", ("abfs", "abfss", "az"))}


def is_url(path: str) -> bool:
    """An fsspec URL (``s3://``, ``gs://``, ``memory://``…), not a local path."""
    return "://" in path and not path.startswith("file://")


def _filesystem(url: str) -> Any:
    """fsspec's filesystem of a URL; a missing backend is named (e.g. s3fs for s3://)."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)[0]
    except ImportError as err:
        protocol = url.split("://", 1)[0].lower()
        for extra, (package, protocols) in BACKENDS.items():
            if protocol in protocols:
                raise InputError(f"{url}: this kind of URL needs the package {package}: pip install "
                                 f"'bigalign[{extra}]' (or pip install {package})") from None
        raise InputError(f"{url}: this kind of URL needs a package that is not installed ({err})") from None
    except ValueError as err:  # an unknown protocol
        raise InputError(f"{url}: {err}") from None


def expand_paths(path: str) -> list[str]:
    """A path, a glob or an fsspec URL → the files it names (sorted)."""
    if is_url(path):
        fs = _filesystem(path)
        paths = fs.glob(path) if glob.has_magic(path) else ([path] if fs.exists(path) else [])
        return sorted(fs.unstrip_protocol(p) for p in paths)
    local = path[len("file://"):] if path.startswith("file://") else path
    if os.path.isdir(local):
        raise InputError(f"{path}: is a directory; name its files (a glob such as {os.path.join(path, '*.csv')})")
    matches = sorted(glob.glob(local)) if glob.has_magic(local) else ([local] if os.path.exists(local) else [])
    return [m for m in matches if not os.path.isdir(m)]


@contextmanager
def open_file(path: str, mode: str = "rb") -> Iterator[Any]:
    """A local file or an fsspec URL, opened."""
    if is_url(path):
        with _filesystem(path).open(path, mode) as f:
            yield f
    else:
        with open(path[len("file://"):] if path.startswith("file://") else path, mode) as f:
            yield f


def file_header(spec: SetSpec, path: str) -> list[str]:
    """Column names of one input file (CSV or Parquet)."""
    if spec.format == "parquet":
        with open_file(path) as f:
            names = list(pq.ParquetFile(f).schema_arrow.names)
    elif not spec.header:
        if not spec.columns:
            raise InputError(f"{path}: without a header, 'columns' must name the columns")
        names = list(spec.columns)
    else:
        with open_file(path) as f:
            first = f.readline()
        try:
            # (a byte order mark is not part of the first name: Arrow's reader skips it too)
            text = first.decode(spec.encoding).rstrip("\r\n").removeprefix("\ufeff")
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: row 1 (header): bytes that are not {spec.encoding}: {err.reason}") from None
        if not text:
            raise InputError(f"{path}: empty file, no header")
        names = next(csv.reader([text], delimiter=spec.delimiter))
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"{path}: column {repeated[0]!r} appears {names.count(repeated[0])} times in the header; "
                         "columns need distinct names")
    return names


def parquet_types(path: str) -> dict[str, str]:
    """The Arrow type of each column of a Parquet file."""
    with open_file(path) as f:
        schema = pq.ParquetFile(f).schema_arrow
    return {name: str(schema.field(name).type) for name in schema.names}


def _csv_batches(spec: SetSpec, path: str, names: list[str],
                 rejects: list[dict]) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """Batches of a CSV file as text columns, with their 1-based file row numbers."""
    skipped: list[int] = []

    def invalid_row(row: Any) -> str:
        rejects.append({"set": spec.name, "file": path, "row": row.number, "column": "",
                        "reason": f"malformed row: {row.actual_columns} fields, expected {row.expected_columns}",
                        "value": row.text[:200]})
        skipped.append(row.number)
        return "skip"

    # One thread: Arrow numbers the rows it rejects only when it reads in order.
    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if spec.header else 0, block_size=1 << 24,
                             use_threads=False)
    parse = pacsv.ParseOptions(delimiter=spec.delimiter, invalid_row_handler=invalid_row)
    # Bytes: decoding is done here, per column, to name the row and column of bad bytes.
    convert = pacsv.ConvertOptions(column_types={n: pa.binary() for n in names}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    first_row = 2 if spec.header else 1
    with open_file(path) as f:
        reader = pacsv.open_csv(f, read_options=read, parse_options=parse, convert_options=convert)
        line = first_row
        for batch in reader:
            n = batch.num_rows
            # Physical row numbers: skipped rows (already recorded) leave gaps.
            gaps = np.array([r for r in skipped if r >= line], dtype=np.int64)
            numbers = np.arange(line, line + n + len(gaps), dtype=np.int64)
            numbers = (numbers[~np.isin(numbers, gaps)] if len(gaps) else numbers)[:n]
            line = int(numbers[-1]) + 1 if n else line
            yield batch, numbers


def _decode(batch: pa.RecordBatch, encoding: str, spec: SetSpec, path: str, numbers: np.ndarray,
            rejects: list[dict]) -> tuple[pd.DataFrame, np.ndarray]:
    bad = np.zeros(batch.num_rows, dtype=bool)
    out = {}
    for column, array in zip(batch.schema.names, batch.columns):
        if encoding.replace("-", "").lower() == "utf8":
            try:  # the fast path: arrow validates the whole column at once
                out[column] = array.cast(pa.string()).to_pandas(types_mapper={pa.string(): TEXT}.get)
                continue
            except pa.ArrowInvalid:
                pass
        values = array.to_pylist()
        decoded: list[Any] = []
        for i, v in enumerate(values):
            if v is None:
                decoded.append(None)
                continue
            try:
                decoded.append(v.decode(encoding))
            except UnicodeDecodeError as err:
                decoded.append(None)
                if not bad[i]:
                    rejects.append({"set": spec.name, "file": path, "row": int(numbers[i]), "column": column,
                                    "reason": f"bytes that are not {encoding}: {err.reason}", "value": repr(v[:60])})
                bad[i] = True
        out[column] = pd.Series(decoded, dtype=object)
    return pd.DataFrame(out)[~bad].reset_index(drop=True), numbers[~bad]


def csv_records(spec: SetSpec, path: str, names: list[str],
                rejects: list[dict]) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The records of a CSV file in frames of text columns, with their 1-based file row numbers; malformed
    rows and undecodable bytes go to ``rejects``."""
    for batch, numbers in _csv_batches(spec, path, names, rejects):
        yield _decode(batch, spec.encoding, spec, path, numbers, rejects)


def _read_text_csv(f: Any) -> pd.DataFrame:
    """A CSV file as text (an empty cell is missing, "NA" is text): by Arrow's reader, as Arrow text (a
    million pairs of ids in 0.04 s; as Python strings, 0.6 s holding the interpreter); a file it refuses is
    read again by pandas', whose error names the line."""
    try:
        names = pacsv.open_csv(f).schema.names
        if len(set(names)) < len(names):  # (pandas names repeated columns apart: a.1)
            raise ValueError("repeated column names")
        f.seek(0)
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                                       strings_can_be_null=True)
        return pacsv.read_csv(f, convert_options=convert).to_pandas(types_mapper={pa.string(): TEXT}.get)
    except (pa.ArrowException, ValueError):
        f.seek(0)
        return pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""])


def read_table(path: str, columns: Sequence[str], what: str) -> pd.DataFrame:
    """A CSV or Parquet file (CSV as text) that must have ``columns``."""
    try:
        with open_file(path) as f:
            if path.endswith((".parquet", ".pq")):
                frame = pd.read_parquet(f)
            else:
                frame = _read_text_csv(f)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise InputError(f"{path}: cannot read {what} from it ({err})") from None
    missing = set(columns) - set(frame.columns)
    if missing:
        raise InputError(f"{path}: {what} need columns {list(columns)}; missing {sorted(missing)}")
    return frame


def read_pairs(path: str) -> pd.DataFrame:
    """Pairs from a CSV or Parquet file with ``align_id`` and ``target_id`` (as text).

    A ``match`` column (the web application's marks: 1 a match, 0 not one)
    keeps the pairs marked as matches.
    """
    pairs = read_table(path, ["align_id", "target_id"], "pairs")
    if "match" in pairs.columns:
        marks = pairs["match"].astype(str).str.strip().str.lower()
        unknown = ~marks.isin(["1", "0", "true", "false"])
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0]) + 2  # (the header is row 1)
            raise InputError(f"{path}: row {row}: column 'match' must be 1 or 0, got {pairs['match'].iloc[row - 2]!r}")
        pairs = pairs[marks.isin(["1", "true"]).to_numpy()].reset_index(drop=True)
    return pairs.astype({"align_id": str, "target_id": str})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask can only be read by setting it


@contextmanager
def atomic_path(path: str, private: bool = False) -> Iterator[str]:
    """A temporary name beside ``path``, renamed to it only on success;
    ``private`` files (raw records) are readable by the user only.

    The temporary name holds this host and process: what a killed process
    left beside ``path`` (its process gone) is removed by the next write."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    owner = f"{socket.gethostname()}-{os.getpid()}"
    _remove_leftovers(directory, os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{owner}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        # mkstemp's 0600 would hide results from the user's group
        os.chmod(tmp, 0o600 if private else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _remove_leftovers(directory: str, name: str) -> None:
    """Remove the temporary files of writes to ``name`` whose process, on this host, is gone."""
    host = socket.gethostname()
    for leftover in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.{glob.escape(host)}-*.tmp")):
        pid = os.path.basename(leftover)[len(name) + len(host) + 3:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.remove(leftover)
            except OSError:
                pass  # (removed by another write meanwhile, or not ours to remove)


@contextmanager
def process_lock(path: str, what: str, timeout: float = 600.0) -> Iterator[None]:
    """Hold the lock file ``path`` (host and process inside) while the block runs: one holder at a time,
    the others wait up to ``timeout`` seconds; a lock whose process, on this host, is gone (killed) is
    taken over. ``what`` names the locked thing in the error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            try:
                with open(path) as f:
                    host, _, pid = f.read().partition(" ")
            except OSError:
                continue  # (released meanwhile)
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.remove(path)  # (its holder was killed)
                continue
            if time.monotonic() > deadline:
                raise InputError(f"{what}: process {pid or '?'} on {host or '?'} has held it for over {timeout:.0f} "
                                 f"s ({path}); remove that file if no such process runs") from None
            time.sleep(0.05)
    with os.fdopen(fd, "w") as f:
        f.write(f"{socket.gethostname()} {os.getpid()}")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's process)
        return True
    return True


# Characters an IRI keeps as they are; everything else (spaces, <, >, quotes) is escaped.
_IRI_SAFE = ":/?#[]@!$&'()*+,;=%~"


def _iri(template: str, record_id: Any) -> str:
    """A record's IRI: ``{id}`` in ``template`` replaced by the escaped id (only ``{id}``: a template is data,
    never a format string)."""
    return template.replace("{id}", urllib.parse.quote(str(record_id), safe=_IRI_SAFE))


_SAME_AS = "<http://www.w3.org/2002/07/owl#sameAs>"


def _ntriples(links: pd.DataFrame, align_uri: str, target_uri: str, source: str = "") -> Iterator[str]:
    for a, t in zip(links["align_id"].tolist(), links["target_id"].tolist()):
        yield f"<{_iri(align_uri, a)}> {_SAME_AS} <{_iri(target_uri, t)}> .\n"


def _float_literal(value: np.float32) -> str:
    """An xsd:float: the shortest text that reads back as the same single-precision number."""
    return np.format_float_positional(value, unique=True, trim="0")


def _scored_ntriples(links: pd.DataFrame, align_uri: str, target_uri: str, source: str = "") -> Iterator[str]:
    """N-Triples 1.2: each link's ``owl:sameAs``, and a reifier of it (an RDF 1.2 triple term) with the link's
    measure (the Alignment format's, see :func:`link_measures`) and the job that made it."""
    measure = "<http://knowledgeweb.semanticweb.org/heterogeneity/alignment#measure>"
    reifies, made_by = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#reifies>", "<http://purl.org/dc/terms/source>"
    job = '"' + source.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for k, (a, t, score) in enumerate(zip(links["align_id"].tolist(), links["target_id"].tolist(),
                                         link_measures(links).astype(np.float32))):
        triple = f"<{_iri(align_uri, a)}> {_SAME_AS} <{_iri(target_uri, t)}>"
        yield (f"{triple} .\n_:link{k} {reifies} <<( {triple} )>> .\n"
               f"_:link{k} {measure} \"{_float_literal(score)}\"^^<http://www.w3.org/2001/XMLSchema#float> .\n"
               f"_:link{k} {made_by} {job} .\n")


# The Alignment API's format (the OAEI's): RDF/XML, a Cell per link with its measure (a confidence in [0, 1]).
_ALIGNMENT_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns="http://knowledgeweb.semanticweb.org/heterogeneity/alignment#"
         xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:xsd="http://www.w3.org/2001/XMLSchema#">
<Alignment>
  <xml>yes</xml>
  <level>0</level>
  <type>**</type>
"""
_ALIGNMENT_TAIL = "</Alignment>\n</rdf:RDF>\n"


def link_measures(links: pd.DataFrame) -> np.ndarray:
    """Each link's confidence in [0, 1]: its match probability when a model scored it; with the weighted
    distance, 1 / (1 + distance) (1 for equal records, the distances' order kept)."""
    if "match_probability" in links.columns:
        return links["match_probability"].to_numpy(np.float64)
    return 1.0 / (1.0 + links["distance"].to_numpy(np.float64))


def _alignment(links: pd.DataFrame, align_uri: str, target_uri: str, source: str = "") -> Iterator[str]:
    yield _ALIGNMENT_HEAD
    measures = link_measures(links).astype(np.float32)
    for a, t, measure in zip(links["align_id"].tolist(), links["target_id"].tolist(), measures):
        entity1, entity2 = quoteattr(_iri(align_uri, a)), quoteattr(_iri(target_uri, t))
        yield (f"  <map><Cell><entity1 rdf:resource={entity1}/><entity2 rdf:resource={entity2}/>"
               f"<relation>=</relation><measure rdf:datatype=\"http://www.w3.org/2001/XMLSchema#float\">"
               f"{_float_literal(measure)}</measure></Cell></map>\n")
    yield _ALIGNMENT_TAIL


# Writers of the links' RDF formats, by the name an [output] table gives.
RDF_WRITERS = {"ntriples": _ntriples, "rdf12": _scored_ntriples, "alignment": _alignment}


def _cluster_ntriples(clusters: pd.DataFrame, uris: dict[str, str]) -> Iterator[str]:
    same_as = _SAME_AS
    several = len(uris) > 1  # (then cluster ids read "set:id")
    for name, record, cluster in zip(clusters["set"].tolist(), clusters["id"].tolist(),
                                     clusters["cluster_id"].tolist()):
        canonical_set, canonical = str(cluster).split(":", 1) if several else (name, cluster)
        if (canonical_set, str(canonical)) == (name, str(record)):
            continue  # (a record is the same as itself: no triple)
        yield f"<{_iri(uris[name], record)}> {same_as} <{_iri(uris[canonical_set], canonical)}> .\n"


def write_clusters(clusters: pd.DataFrame, path: str, format: str, uris: dict[str, str]) -> None:
    """Write clusters (set, id, cluster_id) as Parquet, CSV or N-Triples
    (``owl:sameAs`` from each record to its cluster's first record, the URIs
    from the template of each of the job's sets in ``uris``), atomically."""
    if is_url(path):
        with tempfile.TemporaryDirectory() as local:
            staged = os.path.join(local, os.path.basename(path.rstrip("/")) or "clusters")
            write_clusters(clusters, staged, format, uris)
            _filesystem(path).put_file(staged, path)
    elif format == "ntriples":
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.writelines(_cluster_ntriples(clusters, uris))
    else:
        write_links(clusters, path, format)


def write_links(links: pd.DataFrame, path: str, format: str, align_uri: str | None = None,
                target_uri: str | None = None, source: str = "") -> None:
    """Write links as Parquet, CSV, N-Triples (``owl:sameAs``), N-Triples 1.2 (each link's triple reified
    with its :func:`link_measures` and the job, ``source``) or the Alignment format (RDF/XML, each with its
    measure), atomically; to an fsspec URL, as one whole object once written."""
    if is_url(path):
        fs = _filesystem(path)
        with tempfile.TemporaryDirectory() as local:
            staged = os.path.join(local, os.path.basename(path.rstrip("/")) or "links")
            write_links(links, staged, format, align_uri, target_uri, source)
            fs.put_file(staged, path)
        return
    with atomic_path(path) as tmp:
        if format == "parquet":
            # (row groups of LINK_ROW_GROUP_ROWS: a reader, the review pages say, reads a page's rows alone)
            links.to_parquet(tmp, index=False, row_group_size=LINK_ROW_GROUP_ROWS)
        elif format == "csv":
            links.to_csv(tmp, index=False)
        elif format in RDF_WRITERS:
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(RDF_WRITERS[format](links, align_uri or "{id}", target_uri or "{id}", source))
        else:
            raise ValueError(f"unknown output format {format!r}")
