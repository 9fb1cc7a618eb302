"""Sets read by SPARQL: a real Oxigraph server on loopback (the `oxigraph` package's `oxigraph serve`),
loaded with Turtle made from jobs/data; RDF files queried locally with the same queries."""

import csv
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from test_cli import BIGALIGN as BIGALIGN_COMMAND
from test_cli import ROOT, bigalign

from bigalign.jobs import load_job
from bigalign.sparql import page_query, projected_variables, split_query

# the server's command, beside this interpreter (a virtual environment's bin need not be on PATH)
OXIGRAPH = shutil.which("oxigraph", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
pytestmark = [pytest.mark.system,
              pytest.mark.skipif(OXIGRAPH is None, reason="needs the oxigraph package (pip install -e '.[test]')")]

PREFIXES = ("@prefix dcterms: <http://purl.org/dc/terms/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
            "@prefix dbr: <http://dbpedia.org/resource/> .\n@prefix dbo: <http://dbpedia.org/ontology/> .\n"
            "@prefix geo: <http://www.w3.org/2003/01/geo/wgs84_pos#> .\n"
            "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n")


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def turtle() -> str:
    """jobs/data's novelists and cities as DBpedia states them (as the jobs' queries ask), with
    English labels and a writer of another category that the queries must leave out."""
    lines = [PREFIXES]
    with open(ROOT / "jobs/data/french_novelists.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lines.append(f"<{row['uri']}> dcterms:subject dbr:Category:French_novelists ; "
                         f"rdfs:label {_literal(row['name'])}@fr, {_literal(row['name'] + ' (novelist)')}@en .")
    lines.append('dbr:Someone dcterms:subject dbr:Category:French_poets ; rdfs:label "Paul Verlaine"@fr .')
    # a city whose latitude no metric can read: a reject, at its row of the ordered results (the first)
    lines.append('dbr:Nowhere a dbo:City ; dbo:country dbr:France ; rdfs:label "Nulle part"@fr ; geo:lat "north" ;'
                 ' geo:long "2.0"^^xsd:float .')
    with open(ROOT / "jobs/data/cities_dbpedia.csv") as f:
        for row in csv.DictReader(f):
            lines.append(f"<{row['uri']}> a dbo:City ; dbo:country dbr:France ; rdfs:label {_literal(row['name'])}@fr ;"
                         f' geo:lat "{row["latitude"]}"^^xsd:float ; geo:long "{row["longitude"]}"^^xsd:float .')
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_oxigraph(directory: Path, data: str | None = None) -> tuple[subprocess.Popen, str]:
    """``oxigraph serve`` on a free loopback port, loaded with ``data`` (Turtle; :func:`turtle` by default);
    its query URL."""
    port = _free_port()
    server = subprocess.Popen([OXIGRAPH, "serve", "--location", str(directory), "--bind", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            load = urllib.request.Request(f"{base}/store?default", (turtle() if data is None else data).encode(),
                                          {"Content-Type": "text/turtle"})
            urllib.request.urlopen(load, timeout=5).close()
            return server, f"{base}/query"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("oxigraph serve did not start")


@pytest.fixture(scope="module")
def scheduler(client):
    return client.scheduler.address


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    server, url = start_oxigraph(tmp_path_factory.mktemp("oxigraph"))
    yield url
    server.kill()
    server.wait()


@pytest.fixture(scope="module")
def frozen_goncourt(tmp_path_factory, scheduler) -> list[str]:
    """The links of jobs/goncourt_offline.toml (the frozen copy of DBpedia's answer), sorted."""
    out = tmp_path_factory.mktemp("frozen") / "links.nt"
    assert "links written: 50" in bigalign("run", "jobs/goncourt_offline.toml", "--scheduler", scheduler,
                                           "--output", out).stdout
    return sorted(out.read_text().splitlines())


@pytest.fixture(scope="module")
def labels_endpoint(tmp_path_factory):
    """An endpoint of the seed's novelists and cities with all their names (jobs/data's *_labels.ttl)."""
    data = "\n".join((ROOT / "jobs/data" / name).read_text() for name in ("french_novelists_labels.ttl",
                                                                          "cities_dbpedia_labels.ttl"))
    server, url = start_oxigraph(tmp_path_factory.mktemp("oxigraph-labels"), data)
    yield url
    server.kill()
    server.wait()


def local_job(tmp_path: Path, name: str, endpoint: str, extra: str = "", page_size: int = 10000) -> Path:
    """jobs/NAME.toml with DBpedia's endpoint replaced by ``endpoint`` and its paths made absolute."""
    text = (ROOT / "jobs" / f"{name}.toml").read_text().replace("page_size = 10000", f"page_size = {page_size}")
    text = text.replace('sparql = "https://dbpedia.org/sparql"', f'sparql = "{endpoint}"\n{extra}')
    text = text.replace('"data/', f'"{ROOT}/jobs/data/')
    job = tmp_path / f"{name}.toml"
    job.write_text(text)
    return job


def test_queries_are_split_paged_and_their_variables_read():
    query = ("# the seed's\nPREFIX dbr: <http://dbpedia.org/resource/>\nBASE <http://x/>\n"
             "select ?w (str(?n) AS ?name) {}")
    prologue, select = split_query(query)
    assert prologue.endswith("BASE <http://x/>\n") and select.startswith("select")
    assert projected_variables(query) == ["w", "name"]
    assert projected_variables("SELECT DISTINCT * WHERE { ?a ?b ?c }") is None
    assert page_query(query, ["w", "name"], 30, 2).endswith("}\nORDER BY ?w ?name\nLIMIT 30 OFFSET 60")
    for bad, found in (("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "CONSTRUCT"), ("PREFIX a: <x:>\n", "nothing"),
                       ("ASK { ?s ?p ?o }", "ASK")):
        with pytest.raises(ValueError, match=f"must be a SELECT; it is '{found}'"):
            split_query(bad)


def test_goncourt_from_an_endpoint_in_pages_gives_the_links_of_the_frozen_answer(tmp_path, endpoint, scheduler,
                                                                                  frozen_goncourt):
    job = local_job(tmp_path, "goncourt", endpoint, page_size=30)
    live = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "live.nt")
    assert "targetset: 100 rows read, 100 kept" in live.stdout  # 4 pages of 30; the poet and English labels left out
    assert "links written: 50" in live.stdout
    assert sorted((tmp_path / "live.nt").read_text().splitlines()) == frozen_goncourt


def test_cities_from_an_endpoint_give_the_links_of_the_frozen_answer(tmp_path, endpoint, scheduler):
    live = bigalign("run", local_job(tmp_path, "cities", endpoint), "--scheduler", scheduler, "--output",
                    tmp_path / "live.nt")  # (owl:sameAs, as the job writes them)
    assert "precision 1.0000, recall 1.0000, F1 1.0000" in live.stdout
    assert "alignset: 47 rows read, 46 kept, 1 rejected" in live.stdout
    [reject] = pd.read_csv(tmp_path / "rejects.csv").to_dict("records")
    assert reject["file"] == f"{endpoint} (page 1 of 1)" and reject["row"] == 1
    assert reject["column"] == "latitude, longitude" and "Nowhere" not in reject["value"]
    frozen = bigalign("run", "jobs/cities_offline.toml", "--scheduler", scheduler, "--output", tmp_path / "frozen.nt")
    assert "F1 1.0000" in frozen.stdout
    triples = sorted((tmp_path / "live.nt").read_text().splitlines())
    assert len(triples) == 46 and triples == sorted((tmp_path / "frozen.nt").read_text().splitlines())
    assert ("<http://fr.dbpedia.org/resource/Paris> <http://www.w3.org/2002/07/owl#sameAs> "
            "<https://sws.geonames.org/3000544/> .") in triples


def test_rdf_files_answer_the_same_query_locally(tmp_path, endpoint, scheduler, frozen_goncourt):
    import pyoxigraph as ox

    (tmp_path / "dump.ttl").write_text(turtle())
    # the same triples as N-Triples, in two files read together by one query
    triples = list(ox.parse(turtle().encode(), format=ox.RdfFormat.TURTLE))
    for k, part in enumerate((triples[::2], triples[1::2])):
        (tmp_path / f"part{k}.nt").write_bytes(ox.serialize(part, format=ox.RdfFormat.N_TRIPLES))
    results = {}
    for name, path in (("ttl", tmp_path / "dump.ttl"), ("nt", tmp_path / "part*.nt")):
        job = local_job(tmp_path, "goncourt", endpoint)
        job.write_text(job.read_text().replace(f'sparql = "{endpoint}"', f'path = "{path}"')
                       .replace("page_size = 10000\n", "literal_details = true\n"))
        result = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / f"{name}.nt")
        assert "targetset: 100 rows read, 100 kept" in result.stdout
        results[name] = sorted((tmp_path / f"{name}.nt").read_text().splitlines())
    assert results["ttl"] == results["nt"] == frozen_goncourt
    # each literal's language and datatype, when asked
    from bigalign.io import open_file
    from bigalign.sparql import read_rdf

    query = (ROOT / "jobs/goncourt.toml").read_text().split('query = """')[1].split('"""')[0]
    [rows] = list(read_rdf([str(tmp_path / "dump.ttl")], query, True, open_file, 1000))
    assert list(rows.columns) == ["writer", "writer_lang", "writer_datatype", "name", "name_lang", "name_datatype"]
    assert len(rows) == 100 and set(rows["name_lang"]) == {"fr"} and rows["writer_lang"].isna().all()
    assert set(rows["name_datatype"]) == {"http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"}


@pytest.mark.parametrize("name, rows, records, links", [("goncourt_labels", 341, 100, 50),
                                                       ("cities_labels", 178, 46, 46)])
def test_an_endpoint_s_entities_of_several_names_are_records_of_several_values(tmp_path, labels_endpoint, scheduler,
                                                                              name, rows, records, links):
    """Pages of 25 rows: an entity's names straddle pages, read by different workers, and make one record."""
    job = local_job(tmp_path, name, labels_endpoint, page_size=25)
    live = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "live.nt")
    assert f"{rows} rows read, {rows} kept, {records} records of several values" in live.stdout
    offline = bigalign("run", f"jobs/{name}_offline.toml", "--scheduler", scheduler, "--output",
                       tmp_path / "offline.nt")
    single = bigalign("run", f"jobs/{name.replace('_labels', '')}_offline.toml", "--scheduler", scheduler,
                      "--output", tmp_path / "single.nt")
    assert f"links written: {links}" in live.stdout and f"links written: {links}" in single.stdout
    found = {kind: sorted((tmp_path / f"{kind}.nt").read_text().splitlines()) for kind in ("live", "offline", "single")}
    assert found["live"] == found["offline"] == found["single"]
    if name == "cities_labels":
        assert "F1 1.0000" in live.stdout and "F1 1.0000" in offline.stdout


@pytest.mark.parametrize("change, message", [
    (("FILTER(lang(?name) = 'fr')", "FILTER(lang(?name) = 'fr'"), "rejected the query (HTTP 400): error at"),
    (("SELECT ?writer ?name WHERE {", "SELECT ?nobody ?writer ?name WHERE { OPTIONAL { ?writer <x:no> ?nobody }"),
     "row 1 of the query's results (http://127.0.0.1:PORT/query (page 1 of 1)) has no value for the identifier "
     "?nobody"),
    (("SELECT ?writer ?name WHERE {", "CONSTRUCT { ?writer <x:y> ?name } WHERE {"),
     "targetset.query: the query must be a SELECT; it is 'CONSTRUCT'"),
    (("page_size = 10000", 'page_size = 10000\nid = "who"'),
     "targetset: the query on http://127.0.0.1:PORT/query: id variable 'who' not found; variables are "
     "['writer', 'name']"),
])
def test_a_query_at_fault_is_named_before_the_alignment(tmp_path, endpoint, scheduler, change, message):
    job = local_job(tmp_path, "goncourt", endpoint)
    job.write_text(job.read_text().replace(*change))
    result = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "links.nt", check=False)
    port = endpoint.split(":")[2].split("/")[0]
    assert result.returncode == 2 and message.replace("PORT", port) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "links.nt").exists()


def test_an_endpoint_that_is_down_is_named_after_its_retries(tmp_path, scheduler):
    job = local_job(tmp_path, "goncourt", f"http://127.0.0.1:{_free_port()}/query", "retries = 1\ntimeout = 2")
    result = bigalign("run", job, "--scheduler", scheduler, check=False)
    assert result.returncode == 2 and "did not answer after 2 tries (timeout 2 s)" in result.stderr
    assert "Connection refused" in result.stderr and "Traceback" not in result.stderr


class _Flaky(http.server.ThreadingHTTPServer):
    """A proxy in front of the endpoint: it fails the first try of each page (503), or, once
    ``kill_after`` requests have gone through, kills the endpoint (an endpoint that dies mid-read)."""

    def __init__(self, upstream: str, server: subprocess.Popen | None, kill_after: int | None):
        self.upstream, self.server, self.kill_after = upstream, server, kill_after
        self.seen: dict[bytes, int] = {}
        self.forwarded = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _FlakyHandler)


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        proxy: _Flaky = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with proxy.lock:
            tries = proxy.seen[body] = proxy.seen.get(body, 0) + 1
            if proxy.kill_after is not None and proxy.forwarded >= proxy.kill_after:
                proxy.server.kill()
            proxy.forwarded += 1
        if proxy.kill_after is None and b"OFFSET" in body and tries == 1:
            self.send_error(503, "busy")
            return
        try:
            request = urllib.request.Request(proxy.upstream, body, dict(self.headers))
            with urllib.request.urlopen(request, timeout=10) as reply:
                answer, status = reply.read(), reply.status
        except OSError:
            self.send_error(502, "the endpoint is gone")
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def _serve(proxy: _Flaky) -> str:
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{proxy.server_address[1]}/query"


def test_pages_that_fail_once_are_read_again(tmp_path, endpoint, scheduler):
    proxy = _Flaky(endpoint, None, None)
    try:
        job = local_job(tmp_path, "goncourt", _serve(proxy), page_size=30)
        result = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "links.nt")
    finally:
        proxy.shutdown()
    assert "targetset: 100 rows read, 100 kept" in result.stdout and "links written: 50" in result.stdout
    assert sorted(n for n in proxy.seen.values()) == [1, 1, 2, 2, 2, 2]  # probe, count; 4 pages tried twice


def test_an_endpoint_killed_mid_read_gives_a_clear_error_and_no_half_written_output(tmp_path, scheduler):
    server, url = start_oxigraph(tmp_path / "oxigraph")
    proxy = _Flaky(url, server, kill_after=3)  # probe, count and one page; then the endpoint dies
    try:
        job = local_job(tmp_path, "goncourt", _serve(proxy), "retries = 1", page_size=30)
        result = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "links.nt", check=False)
    finally:
        proxy.shutdown()
        server.kill()
        server.wait()
    assert result.returncode == 2 and "did not answer after 2 tries" in result.stderr, result.stderr
    assert "HTTP 502" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "links.nt").exists()
    assert not list(tmp_path.glob("**/*.part")) and not list(tmp_path.glob("**/.links*"))


def test_the_web_application_samples_a_set_from_an_endpoint(tmp_path, endpoint):
    """The data page's SPARQL source: the query's variables as columns, a sample of its rows."""
    from bigalign.app.server import App, running
    from bigalign.app.workspace import Workspace

    workspace = Workspace(str(tmp_path))
    workspace.open_text(local_job(tmp_path, "goncourt", endpoint).read_text())
    query = workspace.raw()["targetset"]["query"]
    workspace.set_sources({"targetset.source": "sparql", "targetset.sparql": endpoint, "targetset.query": query,
                           "targetset.id": "writer"})
    app = App(workspace, None, None)
    with running(app) as url:
        page = urllib.request.urlopen(f"{url}/data?token={app.token}", timeout=60).read().decode()
    sample = page[page.index('id="sample-targetset"'):]
    assert "<th>writer</th><th>name</th>" in sample and "over the first 100 records" in sample
    assert "<td>http://fr.dbpedia.org/resource/Adrien_Bertrand</td><td>Adrien Bertrand</td>" in sample


class _Lying(http.server.ThreadingHTTPServer):
    """A proxy in front of the endpoint that changes what it is told: ``count`` (the number its count query
    answers, or any text), ``limit_times`` (pages asked with LIMIT × this), or ``answer`` (a fixed body with
    its status and type for every query), ``trickle`` (the answer one byte a second)."""

    def __init__(self, upstream: str, count=None, limit_times=1, answer=None, trickle=False):
        self.upstream, self.count, self.limit_times, self.answer, self.trickle = (
            upstream, count, limit_times, answer, trickle)
        self.asked = threading.Event()
        super().__init__(("127.0.0.1", 0), _LyingHandler)


class _LyingHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        import json
        import re
        import urllib.parse

        proxy: _Lying = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        proxy.asked.set()
        if proxy.answer is not None:
            status, kind, answer = proxy.answer
        else:
            query = urllib.parse.parse_qs(body.decode())["query"][0]
            if proxy.limit_times != 1:
                query = re.sub(r"LIMIT (\d+)", lambda m: f"LIMIT {int(m.group(1)) * proxy.limit_times}", query)
            request = urllib.request.Request(proxy.upstream, urllib.parse.urlencode({"query": query}).encode(),
                                             {"Accept": "application/sparql-results+json"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                status, kind, answer = 200, "application/sparql-results+json", reply.read()
            if proxy.count is not None and "COUNT(*)" in query:
                answer = json.dumps({"head": {"vars": ["rows"]}, "results": {"bindings": [
                    {"rows": {"type": "literal", "value": str(proxy.count)}}]}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        try:
            if proxy.trickle and (proxy.trickle is True or proxy.trickle.encode() in body):
                for byte in answer:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1)
            else:
                self.wfile.write(answer)
        except OSError:
            pass


@pytest.mark.parametrize("lie, message", [
    ({"count": 30}, "gave 31 rows or more for page 1 of 1 where its count of 30 rows promised 30: the data "
                    "changed while it was read"),
    ({"count": 60}, "gave 31 rows or more for page 2 of 2 where its count of 60 rows promised 30"),
    ({"count": 300}, "of 10 where its count of 300 rows promised 30"),  # (page 4 with 10 rows, or a later empty one)
    ({"limit_times": 10}, "of 4, asked with LIMIT 30: it does not honour LIMIT"),  # (pages 1-3, read in parallel)
    ({"count": "many"}, "counted the query's rows as 'many', not a number"),
    ({"answer": (200, "application/json", b'{"hello": "world"}')},
     "answered JSON that is not SPARQL results (no 'head')"),
    ({"answer": (200, "application/sparql-results+json", b'{"head": {"vars": ["a"]}, "results": {"bindings": '
                                                         b'[{"a": 3}]}}')},
     "answered JSON that is not SPARQL results (bindings that are not terms with a type and a value)"),
    ({"answer": (200, "application/sparql-results+json", b'\xff\xfe{"head": 1}')}, "text that is not UTF-8"),
    ({"answer": (404, "text/html", b"<html><body>internal admin page: SECRET-INTERNAL</body></html>")},
     "rejected the query (HTTP 404)\n"),
])
def test_an_endpoint_that_says_what_it_does_not_give_is_an_error(tmp_path, endpoint, scheduler, lie, message):
    """Counts are checked against the pages (a page is never over its LIMIT, never short of what was counted),
    answers against the shape of SPARQL results; an error page's HTML is never shown."""
    proxy = _Lying(endpoint, **lie)
    try:
        job = local_job(tmp_path, "goncourt", _serve(proxy), "retries = 0", page_size=30)
        result = bigalign("run", job, "--scheduler", scheduler, "--output", tmp_path / "links.nt", check=False)
    finally:
        proxy.shutdown()
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "SECRET" not in result.stderr
    assert not (tmp_path / "links.nt").exists()


def test_an_endpoint_that_trickles_its_answer_is_cut_off_at_the_timeout(tmp_path, endpoint):
    import signal

    proxy = _Lying(endpoint, trickle=True)
    try:
        job = local_job(tmp_path, "goncourt", _serve(proxy), "retries = 0\ntimeout = 3")
        result = bigalign("validate", job, check=False)  # (within the test's time limit: no hang)
        assert result.returncode == 2 and "the answer took longer than the timeout, 3 s" in result.stderr
        # Ctrl-C while it trickles: the command stops at once, the first time
        job.write_text(job.read_text().replace("timeout = 3", "timeout = 300"))
        proxy.asked.clear()
        process = subprocess.Popen([sys.executable, "-m", "bigalign", "validate", str(job)], cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proxy.asked.wait(60)
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 130 and "bigalign: interrupted" in stderr
    finally:
        proxy.shutdown()
    # a run whose pages trickle (read by Dask's threads, no cluster): the same
    proxy = _Lying(endpoint, trickle="OFFSET")
    try:
        job = local_job(tmp_path, "goncourt", _serve(proxy), "retries = 0\ntimeout = 300")
        process = subprocess.Popen([sys.executable, "-m", "bigalign", "run", str(job), "--output",
                                    str(tmp_path / "links.nt")], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        assert proxy.asked.wait(60)
        time.sleep(8)  # (the probe and the count, then the pages: trickling)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 130 and "bigalign: interrupted" in stderr, stderr
        assert not (tmp_path / "links.nt").exists()
    finally:
        proxy.shutdown()


GRAPH_LINKS = """PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX a: <http://knowledgeweb.semanticweb.org/heterogeneity/alignment#>
SELECT ?a ?b ?measure WHERE { GRAPH <http://example.org/links/prix> {
  ?a owl:sameAs ?b . OPTIONAL { ?link rdf:reifies <<( ?a owl:sameAs ?b )>> ; a:measure ?measure } } }"""


def _graph(query_url: str) -> list[tuple]:
    request = urllib.request.Request(query_url, urllib.parse.urlencode({"query": GRAPH_LINKS}).encode(),
                                     {"Accept": "application/sparql-results+json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        bindings = json.loads(reply.read())["results"]["bindings"]
    return sorted((b["a"]["value"], b["b"]["value"], b.get("measure", {}).get("value")) for b in bindings)


def _write_back_job(tmp_path: Path, name: str, update: str, scored: bool) -> Path:
    text = (ROOT / "jobs" / f"{name}.toml").read_text().replace('"data/', f'"{ROOT}/jobs/data/')
    text = re.sub(r'path = "\.\./out/[a-z_]+/links\.nt"', f'path = "{tmp_path}/{name}.nt"', text)
    text = text.replace('format = "ntriples"\n', "")
    text = text.replace("[output]\n", f'[output]\nsparql_update = "{update}"\ngraph = "http://example.org/links/prix"\n'
                        + ('format = "rdf12"\n' if scored else ""))
    job = tmp_path / f"{name}.toml"
    job.write_text(text)
    return job


class _Truncating(http.server.BaseHTTPRequestHandler):
    """A proxy that passes on the first half of an update only: what a connection cut mid-request delivers."""

    upstream = ""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(self.upstream, body[:len(body) // 2],
                                         {"Content-Type": self.headers["Content-Type"]})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                status, answer = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, answer = err.code, err.read()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def test_a_batch_linked_against_an_index_writes_its_links_back_as_a_run_does(tmp_path, client):
    from bigalign.index import build_index, link_batch

    server, query_url = start_oxigraph(tmp_path / "store", "")
    try:
        job = _write_back_job(tmp_path, "cities_offline", query_url.replace("/query", "/update"), scored=True)
        build_index(load_job(str(job)), str(tmp_path / "index"), client=client)
        summary = link_batch(load_job(str(job)), str(tmp_path / "index"), str(ROOT / "jobs/data/cities_dbpedia.csv"),
                             client=client)
        links = _graph(query_url)
        written = sorted(line.split(" ")[:3:2] for line in (tmp_path / "cities_offline.nt").read_text()
                         .splitlines() if line.startswith("<") and "sameAs" in line)
        assert summary.links == len(links) == 46 and [[f"<{a}>", f"<{b}>"] for a, b, _ in links] == written
        assert all(0 < float(measure) <= 1 for *_, measure in links)
        assert summary.files["graph"].startswith("<http://example.org/links/prix> at http://127.0.0.1:")
    finally:
        server.kill()
        server.wait()


def test_links_written_back_replace_a_named_graph_whole_and_a_failed_write_leaves_it(tmp_path, scheduler):
    server, query_url = start_oxigraph(tmp_path / "store", "")
    try:
        update = query_url.replace("/query", "/update").replace("http://", "http://${OX_USER}:${OX_PASSWORD}@")
        env = {**os.environ, "OX_USER": "linker", "OX_PASSWORD": "s3cr:t/@pw"}
        # scored links of the Goncourt job: the graph then holds its 50 links and their measures
        job = _write_back_job(tmp_path, "goncourt_offline", update, scored=True)
        run = subprocess.run(BIGALIGN_COMMAND + ["run", str(job), "--scheduler", scheduler], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        links = _graph(query_url)
        written = sorted(line.split(" ")[:3:2] for line in (tmp_path / "goncourt_offline.nt").read_text()
                         .splitlines() if line.startswith("<") and "sameAs" in line)
        assert len(links) == 50 and [[f"<{a}>", f"<{b}>"] for a, b, _ in links] == written
        assert all(measure is not None and 0 < float(measure) <= 1 for *_, measure in links)
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["files"]["graph"] == f"<http://example.org/links/prix> at {update}"  # (${NAME}: no secret)
        for text in (run.stdout, run.stderr, (tmp_path / "summary.json").read_text(),
                     (tmp_path / "report.html").read_text()):
            assert "s3cr" not in text and "linker" not in text
        # the cities' links into the same graph: replaced whole (none of the writers' are left)
        cities = _write_back_job(tmp_path, "cities_offline", update, scored=False)
        assert subprocess.run(BIGALIGN_COMMAND + ["run", str(cities), "--scheduler", scheduler], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600).returncode == 0
        replaced = _graph(query_url)
        assert len(replaced) == 46 and all("geonames" in b and m is None for _, b, m in replaced)
        # a write cut in the middle: the service refuses it, the run says so, the graph keeps the cities'
        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Truncating)
        _Truncating.upstream = query_url.replace("/query", "/update")
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        cut = _write_back_job(tmp_path, "goncourt_offline", f"http://127.0.0.1:{proxy.server_address[1]}/update",
                              scored=True)
        failed = subprocess.run(BIGALIGN_COMMAND + ["run", str(cut), "--scheduler", scheduler], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        assert failed.returncode == 2 and "refused the update of graph <http://example.org/links/prix>" in failed.stderr
        assert "the graph is as it was" in failed.stderr and "Traceback" not in failed.stderr
        assert _graph(query_url) == replaced
        assert len((tmp_path / "goncourt_offline.nt").read_text().splitlines()) == 200  # the file is written
        proxy.shutdown()
    finally:
        server.kill()
        server.wait()
