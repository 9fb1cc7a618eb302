"""Sets read from a database, links written back: a real PostgreSQL server (Debian's package, which
.ci/run installs) started by the fixture in a temporary directory, on loopback, with a password."""

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest
from test_cli import demo_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[::-1]), None) \
    or (os.path.dirname(shutil.which("initdb")) if shutil.which("initdb") else None)
pytestmark = [pytest.mark.system, pytest.mark.skipif(BIN is None, reason="needs PostgreSQL's server (Debian's "
                                                                         "postgresql; .ci/run installs it)")]
SECRET = "BIGALIGN_TEST_PG_PASSWORD"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own: user bigalign, a random password, scram on 127.0.0.1."""
    import sqlalchemy as sa

    base = tempfile.mkdtemp(prefix="bigalign-pg-")
    password = secrets.token_hex(12)
    with open(os.path.join(base, "pw"), "w") as f:
        f.write(password)
    as_user = []
    if os.geteuid() == 0:  # (the server refuses to run as root)
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(os.path.join(base, "pw"), "postgres")
    data, port = os.path.join(base, "data"), _free_port()
    subprocess.run(as_user + [os.path.join(BIN, "initdb"), "-D", data, "-U", "bigalign", "--pwfile",
                              os.path.join(base, "pw"), "--auth-local=trust", "--auth-host=scram-sha-256", "-E",
                              "UTF8", "--locale=C"], check=True, capture_output=True)
    server = subprocess.Popen(as_user + [os.path.join(BIN, "postgres"), "-D", data, "-p", str(port), "-k", base,
                                         "-c", "listen_addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://bigalign:{password}@127.0.0.1:{port}/postgres"
    engine = sa.create_engine(url)
    for _ in range(200):
        try:
            with engine.connect():
                break
        except sa.exc.OperationalError:
            time.sleep(0.1)
    else:
        server.kill()
        raise RuntimeError("postgres did not start")
    yield {"engine": engine, "port": port, "password": password}
    engine.dispose()
    server.terminate()
    server.wait()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def scheduler(client):
    return client.scheduler.address


def _run(*args, env=None, check=True):
    result = subprocess.run([sys.executable, "-m", "bigalign", *map(str, args)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_sets_read_from_postgresql_in_partitions_and_links_written_back(tmp_path, postgres, scheduler):
    import sqlalchemy as sa

    files, db = tmp_path / "files", tmp_path / "db"
    files.mkdir()
    # The demo on files first: its generated sets are then loaded into the database as they are.
    (files / "job.toml").write_text(demo_text(files, 3000))
    _run("run", files / "job.toml", "--scheduler", scheduler)
    people_a = pd.read_csv(files / "people_a.csv", dtype=str, keep_default_na=False)
    people_b = pd.read_parquet(files / "people_b.parquet")
    for frame, table in ((people_a, "people_a"), (people_b, "people_b")):
        frame.insert(0, "row_no", range(1, len(frame) + 1))
        frame.to_sql(table, postgres["engine"], index=False, if_exists="replace")
    url = f"postgresql://bigalign:${{{SECRET}}}@127.0.0.1:{postgres['port']}/postgres"
    text = demo_text(db, 3000).replace("[generate]", "#").replace('kind = "person_records"', "")
    text = text.replace("n = 3000\nseed = 0\n", "").replace(f'"{db}/truth.csv"', f'"{files}/truth.csv"')
    text = text.replace(f'[alignset]\npath = "{db}/people_a.csv"\nformat = "csv"\nid = "rec_id"',
                        f'[alignset]\nsql = "{url}"\ntable = "people_a"\nid = "rec_id"\nindex_col = "row_no"\n'
                        f"npartitions = 3")
    text = text.replace(f'[targetset]\npath = "{db}/people_b.parquet"\nformat = "parquet"\nid = "rec_id"',
                        f'[targetset]\nsql = "{url}"\nquery = "SELECT * FROM people_b WHERE rec_id IS NOT NULL"\n'
                        f'id = "rec_id"\nindex_col = "row_no"\nnpartitions = 2')
    text = text.replace(f'[output]\npath = "{db}/links.parquet"\nformat = "parquet"',
                        f'[output]\nsql = "{url}"\ntable = "links"\nrun_dir = "{db}"')
    (tmp_path / "db.toml").write_text(text)
    env = {**os.environ, SECRET: postgres["password"]}
    run = _run("run", tmp_path / "db.toml", "--scheduler", scheduler, env=env)
    summary = pd.read_json(db / "summary.json", typ="series")
    assert summary["records"]["alignset"]["files"] == 3 and summary["records"]["targetset"]["files"] == 2
    assert summary["records"]["alignset"]["read"] == 3000
    assert f"links written: {summary['links']} → postgresql://bigalign:***@127.0.0.1" in run.stdout
    # the links read back from the table are the file run's
    written = pd.read_sql_table("links", postgres["engine"]).sort_values(["align_id", "target_id"])
    expected = pd.read_parquet(files / "links.parquet").sort_values(["align_id", "target_id"])
    pd.testing.assert_frame_equal(written.reset_index(drop=True), expected.reset_index(drop=True))
    # the password is nowhere: not in the output, the report, the summary, the rejects
    assert postgres["password"] not in run.stdout + run.stderr
    for path in db.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".csv", ".txt"):
            assert postgres["password"].encode() not in path.read_bytes(), path
    # written again, the table is replaced whole, and no table of the write is left behind
    from bigalign.sql import write_links

    write_links(expected.head(3), url.replace(f"${{{SECRET}}}", postgres["password"]), "links")
    pd.testing.assert_frame_equal(pd.read_sql_table("links", postgres["engine"]), expected.head(3).reset_index(
        drop=True))
    assert sorted(sa.inspect(postgres["engine"]).get_table_names()) == ["links", "people_a", "people_b"]


@pytest.mark.parametrize("change, message", [
    (None, f"reads ${{{SECRET}}} from the environment, which does not set it"),
    (('table = "people_a"', 'table = "nobody"'), "has no table 'nobody'"),
    (('table = "people_a"', 'query = "SELECT * FROM people_a WHERE"'), "postgres: syntax error at or near"),
    (('index_col = "row_no"', 'index_col = "rowno"'), "index_col 'rowno' not found"),
])
def test_a_database_at_fault_is_named_before_the_alignment(tmp_path, postgres, scheduler, change, message):
    pd.DataFrame({"row_no": [1, 2], "rec_id": ["a", "b"], "name": ["ann", "bob"]}).to_sql(
        "people_a", postgres["engine"], index=False, if_exists="replace")
    url = f"postgresql://bigalign:${{{SECRET}}}@127.0.0.1:{postgres['port']}/postgres"
    text = (f'threshold = 0\ndedupe = true\n[alignset]\nsql = "{url}"\ntable = "people_a"\nid = "rec_id"\n'
            f'index_col = "row_no"\n'
            f'[[treatments]]\ncolumn = "name"\nmetric = "exact"\n[output]\npath = "{tmp_path}/links.csv"\n')
    if change:
        text = text.replace(*change)
    (tmp_path / "job.toml").write_text(text)
    env = {**os.environ, SECRET: postgres["password"]} if change else {
        k: v for k, v in os.environ.items() if k != SECRET}
    result = _run("run", tmp_path / "job.toml", "--scheduler", scheduler, env=env, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and postgres["password"] not in result.stderr


def test_a_bad_value_is_a_reject_numbered_by_the_index_column(tmp_path, postgres, scheduler):
    pd.DataFrame({"row_no": [3, 7, 9], "rec_id": ["a", "b", "c"], "dob": ["1990-01-02", "yesterday", "1991-02-03"]}
                 ).to_sql("dated", postgres["engine"], index=False, if_exists="replace")
    url = f"postgresql://bigalign:${{{SECRET}}}@127.0.0.1:{postgres['port']}/postgres"
    (tmp_path / "job.toml").write_text(
        f'threshold = 0\ndedupe = true\n[alignset]\nsql = "{url}"\ntable = "dated"\nid = "rec_id"\n'
        f'index_col = "row_no"\nnpartitions = 2\n[[treatments]]\ncolumn = "dob"\nmetric = "temporal"\n'
        f'[output]\npath = "{tmp_path}/links.csv"\n')
    result = _run("run", tmp_path / "job.toml", "--scheduler", scheduler,
                  env={**os.environ, SECRET: postgres["password"]})
    assert "alignset: 3 rows read, 2 kept, 1 rejected" in result.stdout
    [reject] = pd.read_csv(tmp_path / "rejects.csv").to_dict("records")
    assert reject["row"] == 7 and reject["column"] == "dob" and reject["value"] == "yesterday"
    assert reject["file"].startswith("alignset: table 'dated' of postgresql://bigalign:***@127.0.0.1:")
    assert reject["file"].endswith("(partition 2 of 2 by row_no)")


def test_a_job_cannot_write_to_the_database_it_reads(tmp_path, postgres, scheduler):
    import sqlalchemy as sa

    pd.DataFrame({"row_no": [1, 2], "rec_id": ["a", "b"], "name": ["ann", "bob"]}).to_sql(
        "people", postgres["engine"], index=False, if_exists="replace")
    pd.DataFrame({"x": [1, 2, 3]}).to_sql("victim", postgres["engine"], index=False, if_exists="replace")
    with postgres["engine"].begin() as connection:  # (one SELECT that writes all the same)
        connection.execute(sa.text("CREATE OR REPLACE FUNCTION wipe() RETURNS int AS "
                                   "'DELETE FROM victim; SELECT 1' LANGUAGE sql"))
    url = f"postgresql://bigalign:${{{SECRET}}}@127.0.0.1:{postgres['port']}/postgres"
    env = {**os.environ, SECRET: postgres["password"]}
    for query, message in (
            ("SELECT * FROM people) AS x; COMMIT; DROP TABLE IF EXISTS victim; COMMIT; SELECT * FROM (SELECT * "
             "FROM people", "alignset.query: the query must be one SELECT; it holds several statements (';')"),
            ("SELECT * FROM people) AS x, (SELECT pg_sleep(0)", "closes a parenthesis it did not open"),
            ("SELECT * FROM people WHERE wipe() = 1", "cannot execute DELETE in a read-only transaction")):
        (tmp_path / "job.toml").write_text(
            f'threshold = 0\ndedupe = true\n[alignset]\nsql = "{url}"\nquery = "{query}"\nid = "rec_id"\n'
            f'index_col = "row_no"\n[[treatments]]\ncolumn = "name"\nmetric = "exact"\n'
            f'[output]\npath = "{tmp_path}/links.csv"\n')
        for command in ("validate", "run"):
            result = _run(command, tmp_path / "job.toml", *(("--scheduler", scheduler) if command == "run" else ()),
                          env=env, check=False)
            assert result.returncode == 2 and message in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        assert pd.read_sql_table("victim", postgres["engine"])["x"].tolist() == [1, 2, 3]
    assert "victim" in sa.inspect(postgres["engine"]).get_table_names()


def test_passwords_of_every_form_are_masked_in_the_output_and_the_report(tmp_path, postgres, scheduler):
    """A password with '/', '@' and ':' from the environment (percent-encoded when substituted), one with a raw
    '/' (which SQLAlchemy reads), one as ``?password=``: each connects, and is shown nowhere."""
    import sqlalchemy as sa

    password = "pa/ss@w:rd"
    with postgres["engine"].begin() as connection:
        connection.execute(sa.text("DROP ROLE IF EXISTS reader"))
        connection.execute(sa.text(f"CREATE ROLE reader LOGIN PASSWORD '{password}'"))
        connection.execute(sa.text("DROP ROLE IF EXISTS slash"))
        connection.execute(sa.text("CREATE ROLE slash LOGIN PASSWORD 'sla/sh'"))
    pd.DataFrame({"row_no": [1, 2, 3], "rec_id": ["a", "b", "c"], "name": ["ann", "bob", "ann"]}).to_sql(
        "named", postgres["engine"], index=False, if_exists="replace")
    with postgres["engine"].begin() as connection:
        connection.execute(sa.text("GRANT SELECT ON named TO reader, slash"))
    host = f"127.0.0.1:{postgres['port']}/postgres"
    for k, (url, secret) in enumerate(((f"postgresql://reader:${{{SECRET}}}@{host}", password),
                                       (f"postgresql://slash:sla/sh@{host}", "sla/sh"),
                                       (f"postgresql://reader@{host}?password=${{{SECRET}}}", password))):
        out = tmp_path / f"job{k}"
        out.mkdir()
        (out / "job.toml").write_text(
            f'threshold = 0\ndedupe = true\n[alignset]\nsql = "{url}"\ntable = "named"\nid = "rec_id"\n'
            f'index_col = "row_no"\n[[treatments]]\ncolumn = "name"\nmetric = "exact"\n'
            f'[output]\npath = "{out}/links.csv"\n')
        result = _run("run", out / "job.toml", "--scheduler", scheduler, env={**os.environ, SECRET: password})
        assert "links written: 1" in result.stdout
        for path in out.rglob("*"):
            if path.is_file() and path.suffix in (".html", ".json", ".csv"):
                text = path.read_text()
                assert secret not in text and "sla/sh" not in text and "pa%2Fss" not in text, path
        report = (out / "report-data.json").read_text()
        assert "postgresql://reader:***@127.0.0.1" in report or "postgresql://slash:***@127.0.0.1" in report \
            or "password=***" in report
