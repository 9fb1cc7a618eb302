"""Sets read by RQL from a real CubicWeb instance on loopback (CubicWeb 5, a minimal cube with the seed's
``Location`` type, loaded with the frozen geonames cities: ``tests/cubicweb_instance.py``), never a mock."""

import csv
import os
import shutil

import pandas as pd
import pytest
from cubicweb_instance import CITIES, Instance, cubicweb_ctl, free_port
from test_cli import ROOT, bigalign

from bigalign.errors import InputError
from bigalign.job_tables import set_spec
from bigalign.rql import count_query, page_query, parse_query
from bigalign.sources import source_of
from bigalign.treatments import make_treatments

pytestmark = pytest.mark.system

QUERY = ('Any GID, N, LAT, LONG WHERE X is Location, X name N, X country C, C name "France", X longitude LONG, '
         'X latitude LAT, X population > 1000, X feature_class "P", X geonameid GID')
CREDENTIALS = "http://${CW_USER}:${CW_PASSWORD}@"


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    try:
        cubicweb_ctl()
    except RuntimeError as err:
        pytest.skip(f"CubicWeb could not be installed here: {err}")
    served = Instance(tmp_path_factory.mktemp("cubicweb"))
    served.create()
    served.start()
    yield served
    served.stop()


@pytest.fixture
def logged_in(instance, monkeypatch):
    monkeypatch.setenv("CW_USER", "admin")
    monkeypatch.setenv("CW_PASSWORD", instance.password)
    return instance.url.replace("http://", CREDENTIALS)


def rql_source(tmp_path, url, query=QUERY, **keys):
    table = {"rql": url, "query": query, **keys}
    return source_of(set_spec(str(tmp_path / "job.toml"), "targetset", table))


def test_queries_are_paged_in_a_total_order():
    assert parse_query(QUERY, "t")[0] == ["GID", "N", "LAT", "LONG"]
    assert page_query(QUERY, "t", 25, 2, 26).startswith("Any GID, N, LAT, LONG ORDERBY GID, N, LAT, LONG LIMIT 26 "
                                                        "OFFSET 50 WHERE X is Location")
    assert page_query("Any N, X ORDERBY N DESC WHERE X name N", "t", 10, 0) == \
        "Any N, X ORDERBY N DESC, X LIMIT 10 OFFSET 0 WHERE X name N"
    assert count_query(QUERY, "t").startswith("Any COUNT(GID) WHERE X is Location")
    for query, message in (("Any COUNT(X) WHERE X is Location", "select variables only"),
                           ("Any N LIMIT 5 WHERE X name N", "has LIMIT"),
                           ("DISTINCT Any N, X WHERE X name N", "DISTINCT with several variables"),
                           ("Location X", "must read 'Any <variables>")):
        with pytest.raises(InputError, match=message):
            parse_query(query, "t")


def test_a_set_read_by_rql_in_pages_is_the_instance_s_rows(tmp_path, logged_in):
    """62 cities in pages of 25 (three tasks), each row as the frozen file has it; columns named by the set."""
    source = rql_source(tmp_path, logged_in, columns=["geonameid", "name", "latitude", "longitude"],
                        page_size=25)
    units = source.describe()
    assert source.rows == 62 and len(units) == 3 and units[0].endswith("(page 1 of 3)")
    assert "${CW_PASSWORD}" in units[0] and os.environ["CW_PASSWORD"] not in units[0]
    frames = [frame for k, unit in enumerate(units) for frame, _ in source.batches(unit, k, source.header(unit), [])]
    read = pd.concat(frames, ignore_index=True)
    with open(CITIES, newline="") as f:
        frozen = pd.DataFrame(list(csv.DictReader(f)))
    assert list(read.columns) == ["geonameid", "name", "latitude", "longitude"]
    assert read["geonameid"].tolist() == sorted(read["geonameid"].tolist(), key=int)  # (ordered by GID)
    merged = read.astype(str).merge(frozen, on="geonameid", suffixes=("", "_file"))
    assert len(merged) == 62 and (merged["name"] == merged["name_file"]).all()
    assert (merged["latitude"].astype(float) == merged["latitude_file"].astype(float)).all()
    # in Python, the same set read whole, as the frozen file is
    import bigalign

    table = {"rql": logged_in, "query": QUERY, "columns": ["geonameid", "name", "latitude", "longitude"],
             "page_size": 25}
    from_instance = bigalign.read_set(table).astype(str).sort_values("geonameid", ignore_index=True)
    from_file = bigalign.read_set({"path": str(CITIES)}).astype(str).sort_values("geonameid", ignore_index=True)
    assert from_instance[["geonameid", "name"]].equals(from_file[["geonameid", "name"]])
    # (and the variables' own names when the set gives none; too few names for them, an error)
    named = rql_source(tmp_path, logged_in)
    named.describe()
    assert named.header("") == ["GID", "N", "LAT", "LONG"]
    with pytest.raises(InputError, match="targetset.columns: 2 names for the query's 4 variables"):
        rql_source(tmp_path, logged_in, columns=["geonameid", "name"]).describe()


def test_the_seed_s_cities_job_reads_geonames_by_rql_with_the_offline_job_s_links(tmp_path, logged_in, instance):
    """jobs/cities_rql.toml, its instance's port the test's: the links of jobs/cities_offline.toml, byte for
    byte; the credentials, read from the environment, in none of the run's files."""
    job = tmp_path / "cities_rql.toml"
    text = (ROOT / "jobs" / "cities_rql.toml").read_text().replace("127.0.0.1:8080", f"127.0.0.1:{instance.port}")
    text = text.replace('"data/', f'"{ROOT}/jobs/data/').replace("../out/cities_rql", str(tmp_path / "rql"))
    job.write_text(text)
    offline = tmp_path / "offline.toml"
    offline.write_text((ROOT / "jobs" / "cities_offline.toml").read_text().replace('"data/', f'"{ROOT}/jobs/data/')
                       .replace("../out/cities_offline", str(tmp_path / "offline")))
    bigalign("run", job, "--workers", "2")  # (CW_USER and CW_PASSWORD set: see logged_in)
    bigalign("run", offline, "--workers", "2")
    links = (tmp_path / "rql" / "links.nt").read_bytes()
    assert links == (tmp_path / "offline" / "links.nt").read_bytes() and links.count(b"\n") == 46
    for path in (tmp_path / "rql").rglob("*"):
        if path.is_file():
            assert instance.password.encode() not in path.read_bytes(), path


def test_what_goes_wrong_is_named(tmp_path, instance, logged_in, monkeypatch):
    """The instance's own message for a bad query, an unknown entity type or attribute; an instance down; a
    login missing or refused; bad values to the rejects with their page and row — and never the password."""
    for query, message in ((QUERY.replace("X is Location", "X is"), "RQLSyntaxError"),
                           (QUERY.replace("Location", "Locatio"), "unknown entity type Locatio"),
                           (QUERY.replace("X name N", "X nme N"), "unknown relation `nme`")):
        with pytest.raises(InputError, match=message) as raised:
            rql_source(tmp_path, logged_in, query=query).describe()
        assert "rejected the RQL query" in str(raised.value) and instance.password not in str(raised.value)
    with pytest.raises(InputError, match=r"did not answer after 2 tries \(timeout 2 s\)"):
        rql_source(tmp_path, f"http://127.0.0.1:{free_port()}/", retries=1, timeout=2).describe()
    with pytest.raises(InputError, match="asks for a login"):
        rql_source(tmp_path, instance.url).describe()
    monkeypatch.setenv("CW_PASSWORD", "not-" + instance.password)
    with pytest.raises(InputError, match="refused the login") as raised:
        rql_source(tmp_path, logged_in).describe()
    assert "${CW_PASSWORD}" in str(raised.value) and "not-" not in str(raised.value)
    monkeypatch.setenv("CW_PASSWORD", instance.password)
    # the name where a number is wanted: each row a reject, named by its page and row
    source = rql_source(tmp_path, logged_in, query=QUERY.replace("GID, N, LAT, LONG", "GID, N, N2, LONG")
                        .replace("X name N,", "X name N, X name N2,"), page_size=25)
    units = source.describe()
    position = make_treatments([{"column": ["N2", "LONG"], "metric": "geographical", "units": "km"}])
    staged = source.stage(units[1], 1, position, str(tmp_path))
    assert staged.rows_read == 25 and staged.rows_kept == 0
    assert staged.rejects[0]["file"].endswith("(page 2 of 3)") and staged.rejects[0]["row"] == 26


def test_the_data_page_reads_a_set_by_rql(tmp_path, logged_in):
    """The web application's Data page: the targetset from the instance, its sample shown, the job written with
    the URL as typed (the credentials' variables, not their values)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    playwright = pytest.importorskip("playwright.sync_api")
    if chromium is None:
        pytest.skip("needs Debian's chromium (.ci/run installs it)")
    from bigalign.app.server import App, running
    from bigalign.app.workspace import Workspace

    workspace = Workspace(str(tmp_path / "ws"))
    app = App(workspace, None, None)
    with running(app) as url, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/data?token={app.token}")
        page.fill("[name='alignset.path']", str(ROOT / "jobs" / "data" / "cities_dbpedia.csv"))
        page.check("[name='targetset.source'][value='rql']")
        page.fill("[name='targetset.rql']", logged_in)
        page.fill("[name='targetset.query']", QUERY)
        page.fill("[name='targetset.id']", "GID")
        page.click("#save-sources")
        assert workspace.raw()["targetset"] == {"rql": logged_in, "query": QUERY, "id": "GID"}
        sample = page.inner_text("#sample-targetset")
        assert "Chateauroux" in sample and "GID" in sample and os.environ["CW_PASSWORD"] not in page.content()
        browser.close()
