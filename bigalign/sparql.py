"""Sets read by a SPARQL SELECT: from an endpoint, or from RDF files.

The SELECT's variables are the set's columns: an IRI as its text, a literal as
its lexical form (with its language and datatype in ``<var>_lang`` and
``<var>_datatype`` when asked), a blank node as ``_:label``, an unbound
variable as a missing value.

An endpoint is read in pages: the query wrapped as a subquery, ordered by all
its variables (so that pages do not overlap, whatever order the endpoint would
give) with ``LIMIT``/``OFFSET``; the rows are counted first, so the pages are
known in advance and worker tasks read them in parallel, each with a timeout
and retries. RDF files are loaded into an in-memory store (Oxigraph's, through
``pyoxigraph``) and queried there with the same query: a job moves between a
dump and an endpoint by changing ``path`` to ``sparql``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .sql import expand, shown_url
from .values.columns import TEXT
from .values.languages import tag_ranks
from .values.sets import RANK_PREFIX

RESULTS_JSON = "application/sparql-results+json"
# File name extensions of RDF files, and the formats pyoxigraph reads them in.
RDF_EXTENSIONS = {".ttl": "TURTLE", ".nt": "N_TRIPLES", ".nq": "N_QUADS", ".rdf": "RDF_XML", ".owl": "RDF_XML",
                  ".trig": "TRIG", ".n3": "N3", ".jsonld": "JSON_LD"}

# The query's prologue: comments, BASE and PREFIX declarations, before the query form.
_PROLOGUE = re.compile(r"\A(?:\s+|#[^\n]*\n?|BASE\s*<[^>]*>|PREFIX\s+[^\s:]*:\s*<[^>]*>)*", re.IGNORECASE)
_FORM = re.compile(r"[A-Za-z]+")


def split_query(query: str) -> tuple[str, str]:
    """(prologue, SELECT query) of a query; an error if it is no SELECT."""
    prologue = _PROLOGUE.match(query)
    end = prologue.end() if prologue else 0
    form = _FORM.match(query, end)
    if form is None or form.group(0).upper() != "SELECT":
        found = form.group(0) if form else query[end:end + 20].strip() or "nothing"
        raise ValueError(f"the query must be a SELECT; it is {found!r}")
    return query[:end], query[end:]


def projected_variables(query: str) -> list[str] | None:
    """The variables a SELECT names, in its order (``None`` for ``SELECT *``): an
    endpoint may give a wrapped query's variables in another order, and the
    first one is the set's identifier by default."""
    _, select = split_query(query)
    text = re.sub(r"\A\s*SELECT\s+(?:DISTINCT\s+|REDUCED\s+)?", "", select, flags=re.IGNORECASE)
    names: list[str] = []
    depth, k = 0, 0
    while k < len(text):
        c = text[k]
        if depth == 0 and (c == "*"):
            return None
        if depth == 0 and (c == "{" or re.match(r"(?i)WHERE\b", text[k:k + 6])):
            break
        if c == "(":
            if depth == 0:
                start = k
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:  # (expression AS ?name): the name after the last AS
                found = re.findall(r"(?i)\bAS\s+[?$]([A-Za-z0-9_]+)", text[start:k])
                names += found[-1:]
        elif depth == 0 and c in "?$":
            name = re.match(r"[A-Za-z0-9_]+", text[k + 1:])
            if name:
                names.append(name.group(0))
                k += len(name.group(0))
        k += 1
    return names


def count_query(query: str) -> str:
    prologue, select = split_query(query)
    return f"{prologue}\nSELECT (COUNT(*) AS ?rows) WHERE {{\n{select}\n}}"


def page_query(query: str, variables: Sequence[str], size: int, page: int, limit: int | None = None) -> str:
    """The query's ``page``-th page of ``size`` rows, ordered by all its variables (``limit`` rows asked, if
    not ``size``)."""
    prologue, select = split_query(query)
    order = " ".join(f"?{v}" for v in variables)
    return (f"{prologue}\nSELECT * WHERE {{\n{select}\n}}\nORDER BY {order}\n"
            f"LIMIT {size if limit is None else limit} OFFSET {page * size}")


def probe_query(query: str) -> str:
    """The query with no row: what an endpoint answers gives the variables (and checks the query)."""
    prologue, select = split_query(query)
    return f"{prologue}\nSELECT * WHERE {{\n{select}\n}}\nLIMIT 0"


# -- endpoints -----------------------------------------------------------------
class _NotResults(ValueError):
    """An answer that is not SPARQL JSON results (an error page, another API): trying again will not help."""


def request(endpoint: str, query: str, what: str, timeout: float, retries: int) -> dict:
    """The JSON results of ``query`` on ``endpoint`` (``what``: the set, for messages).

    ``timeout`` is a deadline for each try as a whole: connecting, waiting and
    reading the answer (an endpoint that trickles its answer is cut off). A
    connection that fails, times out or gets a server error is tried again
    (``retries`` times, waiting longer each time); a query the endpoint rejects
    is not, nor an answer that is not SPARQL results, and its message is shown.
    """
    body = urllib.parse.urlencode({"query": query}).encode()
    headers = {"Accept": RESULTS_JSON, "Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "bigalign"}
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
        deadline = time.monotonic() + timeout
        try:
            with urllib.request.urlopen(urllib.request.Request(endpoint, body, headers), timeout=timeout) as reply:
                data = read_within(reply, deadline, timeout)
            return _results(json.loads(data.decode("utf-8")))
        except urllib.error.HTTPError as err:
            message = _error_text(err)
            if err.code < 500 and err.code not in (408, 429):
                raise InputError(f"{what}: the SPARQL endpoint {endpoint} rejected the query (HTTP {err.code})"
                                 f"{': ' + message if message else ''}") from None
            last = f"HTTP {err.code}{': ' + message if message else ''}"
        except (urllib.error.URLError, OSError) as err:  # refused, unreachable, timed out
            last = str(getattr(err, "reason", err))
        except UnicodeDecodeError:
            raise InputError(f"{what}: the SPARQL endpoint {endpoint} answered with text that is not UTF-8, "
                             "which SPARQL JSON results are") from None
        except _NotResults as err:
            raise InputError(f"{what}: the SPARQL endpoint {endpoint} answered JSON that is not SPARQL "
                             f"results ({err})") from None
        except json.JSONDecodeError as err:  # (often an answer cut short: tried again)
            last = f"an answer that is not SPARQL JSON results ({err})"
    raise InputError(f"{what}: the SPARQL endpoint {endpoint} did not answer after {retries + 1} tries "
                     f"(timeout {timeout:g} s): {last}")


def replace_graph(url: str, graph: str, triples: Iterable[str], timeout: float) -> None:
    """Make the named ``graph`` of the SPARQL 1.1 Update service at ``url`` hold these N-Triples (1.2) lines
    and nothing else, in one request — ``DROP SILENT GRAPH`` then ``INSERT DATA`` — which the service
    applies whole or not at all: a failed write leaves the graph as it was. ``${NAME}`` in ``url`` is read
    from the environment; a user and password in it are sent as HTTP Basic authentication; messages show
    the URL as written, its password masked."""
    shown = shown_url(url)
    parts = urllib.parse.urlsplit(expand(url, "output.sparql_update", f"the SPARQL Update URL {shown}"))
    headers = {"Content-Type": "application/sparql-update", "User-Agent": "bigalign"}
    if parts.username:
        login = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    # (the URL without its user and password, which went into the header: the host as written, IPv6 too)
    target = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    body = "".join([f"DROP SILENT GRAPH <{graph}> ;\nINSERT DATA {{ GRAPH <{graph}> {{\n", *triples, "} }\n"])
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(urllib.request.Request(target, body.encode("utf-8"), headers),
                                    timeout=timeout) as reply:
            read_within(reply, deadline, timeout)
    except urllib.error.HTTPError as err:
        message = _error_text(err)
        raise InputError(f"output.sparql_update: {shown} refused the update of graph <{graph}> (HTTP {err.code})"
                         f"{': ' + message if message else ''}; the graph is as it was") from None
    except (urllib.error.URLError, OSError) as err:
        raise InputError(f"output.sparql_update: {shown} did not take the update of graph <{graph}> "
                         f"({getattr(err, 'reason', err)}); it applies an update whole or not at all, and the links "
                         "are in the run's file") from None


def read_within(reply: Any, deadline: float, timeout: float) -> bytes:
    """The answer's body, read before ``deadline`` (each wait for bytes bounded by the time left)."""
    sock = getattr(getattr(getattr(reply, "fp", None), "raw", None), "_sock", None)
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the answer took longer than the timeout, {timeout:g} s")
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = reply.read1(1 << 16)
        except TimeoutError:
            raise TimeoutError(f"the answer took longer than the timeout, {timeout:g} s") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _error_text(err: urllib.error.HTTPError) -> str:
    """What an endpoint says of an error: its plain-text or JSON message, first 300 characters; never the body
    of an HTML page (the server may not be an endpoint at all, and its pages are not for this message)."""
    kind = (err.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind not in ("text/plain", "application/json", "application/sparql-results+json", ""):
        return ""
    try:
        text = err.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""
    if re.search(r"(?i)<html|<!doctype", text):
        return ""
    return " ".join(text.split())[:300]


def _results(answer: Any) -> dict:
    """``answer`` when it has the shape of SELECT results (head.vars, results.bindings)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("head"), dict):
        raise _NotResults("no 'head'")
    results = answer.get("results", {"bindings": []})
    if not isinstance(results, dict) or not isinstance(results.get("bindings"), list):
        raise _NotResults("no 'results' with 'bindings'")
    if not all(isinstance(b, dict) and all(isinstance(t, dict) and "value" in t and "type" in t
                                           for t in b.values()) for b in results["bindings"]):
        raise _NotResults("bindings that are not terms with a type and a value")
    return answer


def describe_endpoint(endpoint: str, query: str, what: str, timeout: float, retries: int) -> tuple[list[str], int]:
    """The variables of the query and the number of rows it gives, asked of the endpoint."""
    try:
        probe, count = probe_query(query), count_query(query)
    except ValueError as err:
        raise InputError(f"{what}: {err}") from None
    variables = request(endpoint, probe, what, timeout, retries)["head"].get("vars")
    named = projected_variables(query)
    if isinstance(variables, list) and named is not None and variables and set(named) == set(variables):
        variables = named
    if not variables or not isinstance(variables, list):
        raise InputError(f"{what}: the SPARQL endpoint {endpoint} gave no variables for the query")
    bindings = request(endpoint, count, what, timeout, retries)["results"]["bindings"]
    counted = bindings[0].get("rows", {}).get("value") if bindings else "0"
    try:
        rows = int(counted)
    except (TypeError, ValueError):
        raise InputError(f"{what}: the SPARQL endpoint {endpoint} counted the query's rows as {counted!r}, "
                         "not a number") from None
    if rows < 0:
        raise InputError(f"{what}: the SPARQL endpoint {endpoint} counted {rows} rows")
    return [str(v) for v in variables], rows


# A term: (value, language, datatype, whether it is a literal).
Term = tuple[Any, Any, Any, bool]
_NO_TERM: Term = (None, None, None, False)


def _term(binding: dict | None) -> Term:
    """A term of SPARQL JSON results."""
    if binding is None:
        return _NO_TERM
    if binding["type"] == "bnode":
        return "_:" + binding["value"], None, None, False
    if binding["type"] == "uri":
        return binding["value"], None, None, False
    return binding["value"], binding.get("xml:lang"), binding.get("datatype"), True


def results_frame(variables: Sequence[str], rows: Sequence[Sequence[Term]], literal_details: bool,
                  lang: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows' terms as text columns (with each variable's language and datatype when asked); with
    ``lang``, a text literal in none of its languages is missing, and each variable has its rank column."""
    frame: dict[str, Any] = {}
    for k, name in enumerate(variables):
        terms = [row[k] for row in rows]
        if lang is not None:  # (IRIs and blank nodes are kept, first)
            ranks = np.where([t[3] for t in terms], tag_ranks([t[1] for t in terms], [t[2] for t in terms], lang), 0)
            terms = [t if r >= 0 else _NO_TERM for t, r in zip(terms, ranks)]
        frame[name] = pd.array([t[0] for t in terms], dtype=TEXT)
        if literal_details:
            frame[f"{name}_lang"] = pd.array([t[1] for t in terms], dtype=TEXT)
            frame[f"{name}_datatype"] = pd.array([t[2] for t in terms], dtype=TEXT)
        if lang is not None:
            frame[RANK_PREFIX + name] = np.maximum(ranks, 0).astype(np.int16)
    return pd.DataFrame(frame)


def read_page(endpoint: str, query: str, variables: Sequence[str], size: int, page: int, rows: int, what: str,
              timeout: float, retries: int, literal_details: bool, lang: Sequence[str] | None = None) -> pd.DataFrame:
    """Page ``page`` of the query's ``rows`` (as counted), read from the endpoint.

    A page must hold the rows the count promised it, no more and no fewer: the
    last page asks for one row more, so that rows added since the count are
    seen; an endpoint that gives more than a page's LIMIT, or fewer rows than
    counted, is an error (the data changed while it was read, or the endpoint
    pages otherwise than it counts), never a silently different set.
    """
    expected = max(0, min(size, rows - page * size))
    last = (page + 1) * size >= rows
    limit = expected + 1 if last else size
    answer = request(endpoint, page_query(query, variables, size, page, limit), what, timeout, retries)
    bindings = answer["results"]["bindings"]
    pages = max(1, -(-rows // size))
    if len(bindings) > limit:
        raise InputError(f"{what}: the SPARQL endpoint {endpoint} gave {len(bindings)} rows for page {page + 1} "
                         f"of {pages}, asked with LIMIT {limit}: it does not honour LIMIT")
    if len(bindings) != expected:
        raise InputError(f"{what}: the SPARQL endpoint {endpoint} gave {len(bindings)} rows"
                         f"{' or more' if len(bindings) > expected else ''} for page {page + 1} of {pages} where "
                         f"its count of {rows} rows promised {expected}: the data changed while it was read, or "
                         "the endpoint counts otherwise than it pages; run again")
    table = [[_term(b.get(v)) for v in variables] for b in bindings]
    return results_frame(variables, table, literal_details, lang)


# -- RDF files -----------------------------------------------------------------
def _pyoxigraph() -> Any:
    try:
        import pyoxigraph
    except ImportError:
        raise InputError("reading RDF files needs the package pyoxigraph: pip install pyoxigraph") from None
    return pyoxigraph


def query_variables(query: str, what: str) -> list[str]:
    """The variables of a SELECT, checked by Oxigraph's parser (on an empty store)."""
    ox = _pyoxigraph()
    try:
        split_query(query)
        return [v.value for v in ox.Store().query(query).variables]
    except (ValueError, SyntaxError) as err:
        raise InputError(f"{what}: the query is not valid SPARQL: {err}") from None


def columns(variables: Sequence[str], literal_details: bool) -> list[str]:
    """The columns of a query's rows: its variables, each followed by its language and datatype when asked."""
    if not literal_details:
        return list(variables)
    return [c for v in variables for c in (v, f"{v}_lang", f"{v}_datatype")]


def read_rdf(paths: Sequence[str], query: str, literal_details: bool, open_file: Any,
             batch_rows: int, lang: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
    """The query's rows over the RDF files (loaded together in one in-memory store), in batches."""
    ox = _pyoxigraph()
    store = ox.Store()
    for path in paths:
        extension = "." + path.rsplit(".", 1)[-1].lower()
        if extension not in RDF_EXTENSIONS:
            raise InputError(f"{path}: not a known RDF file name extension ({', '.join(sorted(RDF_EXTENSIONS))})")
        with open_file(path) as f:
            try:
                store.bulk_load(f.read(), format=getattr(ox.RdfFormat, RDF_EXTENSIONS[extension]))
            except (SyntaxError, ValueError) as err:
                raise InputError(f"{path}: not valid {RDF_EXTENSIONS[extension].replace('_', '-')}: {err}") from None
    solutions = store.query(query)
    variables = [v.value for v in solutions.variables]
    rows: list[list[Term]] = []
    for solution in solutions:
        rows.append([_oxigraph_term(solution[v]) for v in variables])
        if len(rows) == batch_rows:
            yield results_frame(variables, rows, literal_details, lang)
            rows = []
    if rows:
        yield results_frame(variables, rows, literal_details, lang)


def _oxigraph_term(term: Any) -> Term:
    if term is None:
        return _NO_TERM
    kind = type(term).__name__
    if kind == "BlankNode":
        return "_:" + term.value, None, None, False
    if kind == "Literal":
        return term.value, term.language, term.datatype.value, True
    return term.value, None, None, False
