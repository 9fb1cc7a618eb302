"""Sets read by RQL from a CubicWeb instance, as the seed read its geonames.

An RQL query (``Any U, N, LAT WHERE X is Location, X name N…``) selects
variables: they are the set's columns (named as selected, or as the set's
``columns`` says), its first the identifier unless ``id`` names another. The
instance answers over HTTP with its JSON export view (``/view?rql=…&vid=
jsonexport``); the query goes to the RQL processor itself (``rql:`` before it),
so that an error comes back with the instance's own message instead of a
full-text search's empty answer.

As an endpoint's SPARQL, the query is read in pages: its rows counted first
(``COUNT`` of the first variable), then pages ordered by all its variables (or
the query's own ``ORDERBY``) with ``LIMIT``/``OFFSET``, a task each, each
request with a timeout (a deadline for the whole answer) and retries.
Credentials, when the instance asks for a login, are in the URL, read from
the environment (``http://${CW_USER}:${CW_PASSWORD}@host/``): the session logs
in once per task, and the URL is shown with its password masked.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .errors import InputError
from .sparql import read_within
from .sql import expand, shown_url
from .values.columns import TEXT

__all__ = ["count_query", "page_query", "parse_query", "read_page", "describe_instance"]

# Any [selection] [GROUPBY …] [ORDERBY …] [LIMIT n] [OFFSET n] [WHERE …] [HAVING …]
_QUERY = re.compile(r"\A\s*(?P<distinct>DISTINCT\s+)?Any\s+(?P<selection>.+?)"
                    r"(?P<clauses>(?:\s+(?:GROUPBY|ORDERBY|LIMIT|OFFSET)\s+.+?)*)"
                    r"(?:\s+(?P<where>WHERE\s+.*))?\s*\Z", re.DOTALL)
_CLAUSE = re.compile(r"\s+(GROUPBY|ORDERBY|LIMIT|OFFSET)\s+(.+?)(?=\s+(?:GROUPBY|ORDERBY|LIMIT|OFFSET)\s|\Z)",
                     re.DOTALL)
_VARIABLE = re.compile(r"[A-Z][A-Za-z0-9_]*\Z")
# The instance's errors that trying again will not mend: the query's, or the user's rights.
_QUERY_ERRORS = ("RQLSyntaxError", "BadRQLQuery", "TypeResolverException", "Unauthorized", "QueryError")


def parse_query(query: str, what: str) -> tuple[list[str], dict[str, str], str]:
    """The selected variables of an RQL ``query``, its clauses before ``WHERE`` (``ORDERBY``…) and the rest
    from ``WHERE`` on; a query bigalign cannot page is an error naming ``what``."""
    match = _QUERY.match(query)
    if match is None:
        raise InputError(f"{what}: the RQL query must read 'Any <variables> [ORDERBY …] WHERE …', got {query!r}")
    selection = [v.strip() for v in match.group("selection").split(",")]
    for variable in selection:
        if not _VARIABLE.match(variable):
            raise InputError(f"{what}: the RQL query selects {variable!r}; select variables only (A, N, LAT…): "
                             "they are the set's columns")
    if len(set(selection)) < len(selection):
        raise InputError(f"{what}: the RQL query selects a variable twice: {', '.join(selection)}")
    clauses = {name: value.strip() for name, value in _CLAUSE.findall(match.group("clauses") or "")}
    for name in ("LIMIT", "OFFSET", "GROUPBY"):
        if name in clauses:
            raise InputError(f"{what}: the RQL query has {name}: bigalign reads it in pages of its own "
                             f"(page_size); remove {name}")
    if match.group("distinct"):
        if len(selection) > 1:  # (its rows are counted by the first variable's distinct values)
            raise InputError(f"{what}: the RQL query is DISTINCT with several variables, whose rows bigalign "
                             "cannot count; select one, or drop DISTINCT")
        clauses["DISTINCT"] = ""
    return selection, clauses, match.group("where") or ""


def count_query(query: str, what: str) -> str:
    """The query counting its rows (its first variable's values)."""
    selection, clauses, where = parse_query(query, what)
    return f"{'DISTINCT ' if 'DISTINCT' in clauses else ''}Any COUNT({selection[0]}) {where}".strip()


def page_query(query: str, what: str, size: int, page: int, limit: int | None = None) -> str:
    """Page ``page`` of ``size`` rows (``limit`` rows asked, by default ``size``), ordered by the query's
    ``ORDERBY`` or else by all its variables: pages that neither overlap nor leave a row out."""
    selection, clauses, where = parse_query(query, what)
    # (the query's own order first, then every variable: a total order, whatever ties it leaves)
    ordered = re.findall(r"[A-Z][A-Za-z0-9_]*", clauses.get("ORDERBY", ""))
    order = ", ".join(([clauses["ORDERBY"]] if "ORDERBY" in clauses else []) + [v for v in selection
                                                                               if v not in ordered])
    return (f"{'DISTINCT ' if 'DISTINCT' in clauses else ''}Any {', '.join(selection)} ORDERBY {order} "
            f"LIMIT {limit or size} OFFSET {page * size} {where}").strip()


class _Session:
    """Requests to one instance, logged in when its URL carries credentials (CubicWeb's form login, with its
    CSRF token)."""

    def __init__(self, url: str, what: str, timeout: float, retries: int):
        self.what, self.timeout, self.retries, self.shown = what, timeout, retries, shown_url(url)
        parts = urllib.parse.urlsplit(expand(url, what, f"the CubicWeb instance's URL {self.shown}"))
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        self.base: str = urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/", "", ""))
        self.login = (urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or ""))
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect())
        self.logged_in = not parts.username

    def _open(self, request: urllib.request.Request) -> tuple[bytes, str]:
        """The answer's body, and where the instance sends the client instead (a redirection's location, which
        is not followed: the instance names itself by another host than the URL's, and its cookies would
        not go there)."""
        deadline = time.monotonic() + self.timeout
        try:
            with self.opener.open(request, timeout=self.timeout) as reply:
                return read_within(reply, deadline, self.timeout), ""
        except urllib.error.HTTPError as err:
            if err.code in (301, 302, 303, 307, 308):
                return b"", err.headers.get("Location", "")
            raise

    def _log_in(self) -> None:
        self._open(urllib.request.Request(self.base + "login"))  # (the CSRF token, as a cookie)
        token = next((c.value or "" for c in self.cookies if c.name == "csrf_token"), "")
        body = urllib.parse.urlencode({"__login": self.login[0], "__password": self.login[1]}).encode()
        try:
            _, sent_to = self._open(urllib.request.Request(self.base + "login", body, {"X-CSRF-Token": token}))
        except urllib.error.HTTPError as err:
            if err.code not in (401, 403):
                raise
            sent_to = ""
        if not sent_to or _to_login(sent_to):
            raise InputError(f"{self.what}: the CubicWeb instance {self.shown} refused the login of the URL's user")
        self.logged_in = True

    def rows(self, rql: str) -> list[list[Any]]:
        """The rows of ``rql`` as the instance's JSON export gives them; tried again when the instance is down,
        times out or fails, not when it rejects the query (its message is shown)."""
        url = self.base + "view?" + urllib.parse.urlencode({"rql": "rql:" + rql, "vid": "jsonexport"})
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
            try:
                if not self.logged_in:
                    self._log_in()
                data, sent_to = self._open(urllib.request.Request(url, headers={"Accept": "application/json"}))
                if sent_to:
                    raise InputError(f"{self.what}: the CubicWeb instance {self.shown} asks for a login: give it in "
                                     "the URL, from the environment (http://${CW_USER}:${CW_PASSWORD}@host/)"
                                     if _to_login(sent_to) else f"{self.what}: the CubicWeb instance {self.shown} "
                                     f"sends the query elsewhere ({sent_to}): give the instance's own URL")
                return _rows(json.loads(data.decode("utf-8")))
            except InputError:
                raise
            except urllib.error.HTTPError as err:
                message, kind = _error_of(err)
                if kind in _QUERY_ERRORS or (err.code < 500 and err.code not in (408, 429)):
                    raise InputError(f"{self.what}: the CubicWeb instance {self.shown} rejected the RQL query "
                                     f"(HTTP {err.code}){': ' + message if message else ''}") from None
                last = f"HTTP {err.code}{': ' + message if message else ''}"
            except (urllib.error.URLError, OSError) as err:  # refused, unreachable, timed out
                last = str(getattr(err, "reason", err))
            except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
                raise InputError(f"{self.what}: the CubicWeb instance {self.shown} answered what is not its JSON "
                                 f"export of rows ({err})") from None
        raise InputError(f"{self.what}: the CubicWeb instance {self.shown} did not answer after {self.retries + 1} "
                         f"tries (timeout {self.timeout:g} s): {last}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # (the redirection comes back as an HTTPError, its location read by _Session._open)


def _to_login(location: str) -> bool:
    return urllib.parse.urlsplit(location).path.rstrip("/").endswith("/login")


def _error_of(err: urllib.error.HTTPError) -> tuple[str, str]:
    """The instance's message and exception class of an error (its JSON error body), first 300 characters."""
    try:
        body = json.loads(err.read(1 << 16).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return " ".join(str(body.get("errmsg", "")).split())[:300], str(body.get("exclass", ""))


def _rows(answer: Any) -> list[list[Any]]:
    if not isinstance(answer, list) or not all(isinstance(row, list) for row in answer):
        raise ValueError("not a list of rows")
    return answer


def describe_instance(url: str, query: str, what: str, timeout: float, retries: int) -> tuple[list[str], int]:
    """The query's variables and the number of rows it gives, asked of the instance (which checks the query)."""
    selection, _, _ = parse_query(query, what)
    counted = _Session(url, what, timeout, retries).rows(count_query(query, what))
    if len(counted) != 1 or len(counted[0]) != 1 or not isinstance(counted[0][0], int) or counted[0][0] < 0:
        raise InputError(f"{what}: the CubicWeb instance {shown_url(url)} counted the query's rows as {counted!r}")
    return selection, counted[0][0]


def read_page(url: str, query: str, columns: Sequence[str], size: int, page: int, rows: int, what: str,
              timeout: float, retries: int) -> pd.DataFrame:
    """Page ``page`` of the query's ``rows`` (as counted): the rows the count promised it, as text columns
    named ``columns`` (a value as the instance writes it in JSON; none: missing). The last page asks for one
    row more, so that rows added since the count are seen: a page of other size than promised is an error
    (the data changed while it was read), never a silently different set."""
    expected = max(0, min(size, rows - page * size))
    last = (page + 1) * size >= rows
    limit = expected + 1 if last else size
    found = _Session(url, what, timeout, retries).rows(page_query(query, what, size, page, limit))
    pages = max(1, -(-rows // size))
    if len(found) != expected:
        raise InputError(f"{what}: the CubicWeb instance {shown_url(url)} gave {len(found)} rows for page {page + 1} "
                         f"of {pages} where its count of {rows} rows promised {expected}: the data changed while it "
                         "was read; run again")
    if any(len(row) != len(columns) for row in found):
        raise InputError(f"{what}: the CubicWeb instance {shown_url(url)} gave rows of other than {len(columns)} "
                         "values, the query's variables")
    return pd.DataFrame({name: pd.array([_text(row[k]) for row in found], dtype=TEXT)
                         for k, name in enumerate(columns)})


def _text(value: Any) -> str | None:
    """A JSON value as text, as a file's cell would hold it (a number as Python writes it: 46.8147)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
