"""Sets read from SQL databases, links written back to them.

A set is a table or a SELECT on a database reachable by a SQLAlchemy URL,
read in partitions by an indexed column with Dask's ``read_sql_table`` /
``read_sql_query`` (one query per partition, ``WHERE index_col`` between two
bounds, run by the workers). Credentials stay out of job files: ``${NAME}`` in
a URL is read from the environment when connecting, percent-encoded (so a
password may hold ``@ / :``; the drivers' own variables, such as PostgreSQL's
``PGPASSWORD``, work as usual); every message and report shows the URL with
its password masked, as SQLAlchemy reads the URL.

A set's query is one SELECT: it is refused when it holds several statements
or closes the subquery it is read as, and the database is read in read-only
transactions (PostgreSQL and MySQL: the session's default), so that no job
file can write to a database it reads.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
import uuid
from typing import Any

import pandas as pd

from .errors import InputError

logger = logging.getLogger("bigalign")

# Rows per partition when a set does not say how many partitions to read.
ROWS_PER_PARTITION = 250_000

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PARAMETER = re.compile(r"(?i)pass|pwd|secret|token|key")
_SECRET_QUERY = re.compile(r"(?i)[?&][^=&]*(?:pass|pwd|secret|token|key)[^=&]*=")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it masked (and query parameters that look like one), for
    messages and reports: the URL as SQLAlchemy reads it, so that a password holding ``/`` is masked whole."""
    return _URL.sub(lambda match: _redact_url(match.group(0)), text)


def _redact_url(url: str) -> str:
    if "@" not in url and not _SECRET_QUERY.search(url):
        return url
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # (not a URL SQLAlchemy reads, or no SQLAlchemy: its scheme alone)
        return url.partition("://")[0] + "://***"
    query = {k: "***" if _SECRET_PARAMETER.search(k) else v for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def expand(url: str, what: str, named: str | None = None) -> str:
    """The URL with each ``${NAME}`` replaced by the environment's value, percent-encoded (the value is never
    shown); ``named``: the URL as messages name it (by default, the database URL, its password masked)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise InputError(f"{what}: {named or 'the database URL ' + redact(url)} reads ${{{name}}} from the "
                             "environment, which does not set it")
        return urllib.parse.quote(os.environ[name], safe="")

    return _VARIABLE.sub(value, url)


def shown_url(url: str) -> str:
    """A URL as written, its userinfo's password masked unless it is read from the environment (``${NAME}``:
    the name is no secret)."""
    def mask(match: re.Match) -> str:
        password = match.group(2)
        return match.group(0) if _VARIABLE.fullmatch(password) else match.group(0).replace(":" + password + "@",
                                                                                           ":***@")
    return re.sub(r"(//[^/:@\s]*):([^@/\s]*)@", mask, url)


def _scrubbed(message: str, url: str) -> str:
    """A driver's message with the URL's secrets masked (the environment's values it read, its password)."""
    for name in _VARIABLE.findall(url):
        for secret in {os.environ.get(name, ""), urllib.parse.quote(os.environ.get(name, ""), safe="")} - {""}:
            message = message.replace(secret, "***")
    return redact(message)


def check_query(query: str, what: str) -> None:
    """A set's query is one SELECT read as a subquery: no second statement, no parenthesis it did not open
    (outside string literals, quoted names and comments)."""
    text = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\$(\w*)\$.*?\$\1\$", " ", query,
                  flags=re.DOTALL)
    if not re.match(r"\s*(?:SELECT|WITH)\b", text, re.IGNORECASE):
        raise InputError(f"{what}: the query must be one SELECT (or WITH … SELECT)")
    if ";" in text.rstrip().rstrip(";"):
        raise InputError(f"{what}: the query must be one SELECT; it holds several statements (';')")
    depth = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            raise InputError(f"{what}: the query closes a parenthesis it did not open: it must be one SELECT")
    if depth:
        raise InputError(f"{what}: the query leaves a parenthesis open")


def read_only(url: str) -> dict[str, Any]:
    """What makes a connection read-only where the driver allows it at connection (``create_engine``'s
    keywords): PostgreSQL's and MySQL's sessions default to read-only transactions."""
    scheme = url.partition("://")[0].split("+")[0]
    if scheme in ("postgresql", "postgres"):
        return {"connect_args": {"options": "-c default_transaction_read_only=on"}}
    if scheme in ("mysql", "mariadb"):
        return {"connect_args": {"init_command": "SET SESSION TRANSACTION READ ONLY"}}
    return {}


def _with_driver(url: str) -> str:
    """``postgresql://`` through psycopg 3 when that is the driver installed (SQLAlchemy's default is psycopg2)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
        return f"postgresql://{rest}"
    return url


def connection_url(url: str, what: str) -> str:
    """What SQLAlchemy (and Dask) connect with: variables expanded, the driver chosen."""
    return _with_driver(expand(url, what))


def engine(url: str, what: str, readonly: bool = False) -> Any:
    """A SQLAlchemy engine for the URL (read-only where :func:`read_only` can); a missing package is named."""
    try:
        import sqlalchemy as sa
    except ImportError:
        raise InputError(f"{what}: reading a database needs SQLAlchemy and the database's driver: "
                         f"pip install 'bigalign[sql]'") from None
    try:
        return sa.create_engine(connection_url(url, what), **(read_only(url) if readonly else {}))
    except ImportError as err:
        raise InputError(f"{what}: the database URL {redact(url)} needs a driver that is not installed "
                         f"({_scrubbed(str(err), url)}); pip install 'bigalign[sql]' installs PostgreSQL's "
                         "(psycopg)") from None
    except Exception as err:  # (SQLAlchemy's ArgumentError and the like: a URL it cannot read)
        raise InputError(f"{what}: cannot use the database URL {redact(url)}: {_scrubbed(str(err), url)}") from None


def source(table: str | None, query: str | None, quote: Any = str) -> str:
    """The FROM clause of a set: its table (``quote``: the dialect's quoting of a name), or its SELECT as a
    subquery."""
    return quote(table) if table is not None else f"({query}) AS bigalign_set"


def describe(url: str, table: str | None, query: str | None, what: str) -> tuple[list[str], int]:
    """The columns of a table or SELECT and its number of rows, asked of the database."""
    import sqlalchemy as sa

    if query is not None:
        check_query(query, what)
    db = engine(url, what, readonly=True)
    try:
        with db.connect() as connection:
            if table is not None and not sa.inspect(connection).has_table(table):
                tables = sa.inspect(connection).get_table_names()
                raise InputError(f"{what}: the database {redact(url)} has no table {table!r}; it has {tables}")
            origin = source(table, query, db.dialect.identifier_preparer.quote)
            columns = list(connection.execute(sa.text(f"SELECT * FROM {origin} LIMIT 0")).keys())
            rows = connection.execute(sa.text(f"SELECT COUNT(*) FROM {origin}")).scalar_one()
    except sa.exc.SQLAlchemyError as err:
        raise InputError(f"{what}: the database {redact(url)}: {_scrubbed(_message(err), url)}") from None
    finally:
        db.dispose()
    return columns, int(rows)


def read(url: str, table: str | None, query: str | None, index_col: str, columns: list[str],
         npartitions: int, what: str) -> Any:
    """The set as a Dask DataFrame of ``npartitions`` partitions by ranges of
    ``index_col`` (Dask asks the database for its bounds), the index column
    back among the columns."""
    import dask
    import dask.dataframe as dd
    import sqlalchemy as sa

    connect = connection_url(url, what)
    if query is not None:
        check_query(query, what)
    select: Any = sa.select(*[sa.column(c) for c in columns]).select_from(
        sa.table(table) if table is not None else sa.text(source(None, query)))
    try:
        if table is not None:
            frame = dd.read_sql_table(table, connect, index_col, npartitions=npartitions,
                                      columns=[c for c in columns if c != index_col], engine_kwargs=read_only(url))
        else:
            frame = dd.read_sql_query(select, connect, index_col, npartitions=npartitions,
                                      engine_kwargs=read_only(url))
    except TypeError:
        # Dask cuts ranges of a numeric or date column only; the ranges of a text column (an id such as
        # "rec-12") follow the database's collation, not Python's order: such a set is read in one query.
        logger.info("%s: index_col %r is neither a number nor a date: read in one partition (name a numeric "
                    "index_col to read it in parallel)", what, index_col)
        meta = _read_whole(select.limit(1), connect, read_only(url)).iloc[:0]  # (types as a row gives them)
        return dd.from_delayed([dask.delayed(_read_whole)(select, connect, read_only(url))], meta=meta,
                               verify_meta=False)
    return frame.reset_index()


def _read_whole(select: Any, url: str, engine_kwargs: dict[str, Any]) -> pd.DataFrame:
    import sqlalchemy as sa

    db = sa.create_engine(url, **engine_kwargs)
    try:
        with db.connect() as connection:
            return pd.read_sql(select, connection)
    finally:
        db.dispose()


def _message(err: Exception) -> str:
    """The database's own first line about an error (its driver's, not SQLAlchemy's wrapping)."""
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]


def write_links(links: pd.DataFrame, url: str, table: str, what: str = "output") -> None:
    """Write the links to ``table``, replacing it whole: into a new table first,
    which then takes the name in one transaction (a failed write leaves the
    table as it was)."""
    import sqlalchemy as sa

    db = engine(url, what)
    staging = f"bigalign_{uuid.uuid4().hex[:12]}"
    quote = db.dialect.identifier_preparer.quote
    try:
        links.to_sql(staging, db, index=False)
        with db.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {quote(table)}"))
            connection.execute(sa.text(f"ALTER TABLE {quote(staging)} RENAME TO {quote(table)}"))
    except sa.exc.SQLAlchemyError as err:
        raise InputError(f"{what}: cannot write the links to table {table!r} of {redact(url)}: "
                         f"{_scrubbed(_message(err), url)}") from None
    finally:
        try:  # (gone when renamed; left over only when the write failed)
            with db.begin() as connection:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {quote(staging)}"))
        except sa.exc.SQLAlchemyError:
            pass  # (the database is gone: the error above says so)
        db.dispose()
