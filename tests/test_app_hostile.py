"""``bigalign serve`` against hostile pages and careless requests, in headless Chromium.

A second origin is a real server on another port of loopback; the browser is
Debian's Chromium driven by Playwright; the application serves from this
process, as in ``test_app.py``.
"""

import http.server
import logging
import os
import shutil
import threading
import urllib.error
import urllib.request

import pandas as pd
import pytest

from bigalign.app.server import App, running
from bigalign.app.workspace import Workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
pytestmark = pytest.mark.system

JOB = """threshold = 0.3
[alignset]
path = "a.csv"
[targetset]
path = "b.csv"
[[treatments]]
column = "name"
metric = "levenshtein"
[output]
path = "out/links.csv"
"""


@pytest.fixture()
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--host-resolver-rules=MAP rebound.example 127.0.0.1"])
        yield chromium
        chromium.close()


class _Pages(http.server.BaseHTTPRequestHandler):
    """Another origin: serves ``pages[path]`` as HTML."""

    pages: dict[str, str] = {}

    def do_GET(self):  # noqa: N802
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(handler) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _workspace(tmp_path) -> Workspace:
    workspace = Workspace(str(tmp_path / "ws"))
    pd.DataFrame({"id": ["1", "2"], "name": ["Paul", "Jacques"]}).to_csv(tmp_path / "ws" / "a.csv", index=False)
    pd.DataFrame({"id": ["1", "2"], "name": ["Pol", "Jack"]}).to_csv(tmp_path / "ws" / "b.csv", index=False)
    workspace.open_text(JOB)
    return workspace


@needs_chromium
def test_a_page_of_another_port_cannot_replace_the_job_nor_start_a_run(tmp_path, browser):
    """Cookie tossing: the other page sets an ``_xsrf`` cookie (cookies know no port) and posts the same value."""
    workspace = _workspace(tmp_path)
    app = App(workspace, None, None)
    _Pages.pages = {}
    evil, evil_url = _serve(_Pages)
    try:
        with running(app) as url:
            _Pages.pages["/attack"] = f"""<!doctype html><body>
<iframe name="sink"></iframe>
<form id="job" method="post" action="{url}/job" target="sink">
<input name="_xsrf" value="41414141"><textarea name="text">[output]\npath = "evil.pth"</textarea></form>
<form id="run" method="post" action="{url}/start/run" target="sink"><input name="_xsrf" value="41414141"></form>
<script>
document.cookie = "_xsrf=41414141; path=/";
document.getElementById("job").submit();
setTimeout(() => {{ document.getElementById("run").submit(); document.title = "sent"; }}, 500);
</script></body>"""
            before = workspace.text()
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/?token={app.token}")  # the user opened the application: its cookie is set
            assert page.title() == "bigalign — data"
            attack = context.new_page()
            attack.goto(f"{evil_url}/attack")
            attack.wait_for_function("document.title === 'sent'")
            attack.wait_for_timeout(1000)
            assert workspace.text() == before
            assert app.commands == {}
            # the same requests outside a browser: the cookie and field agree, the token is not the server's
            request = urllib.request.Request(f"{url}/job", data=b"_xsrf=41414141&text=x%3D1", headers={
                "Cookie": f"_xsrf=41414141; bigalign_token={app.token}"})
            with pytest.raises(urllib.error.HTTPError, match="403"):
                urllib.request.urlopen(request, timeout=10)
            assert workspace.text() == before
            # the application's own page still saves its form
            page.goto(f"{url}/job")
            page.fill("#job-text", before.replace("0.3", "0.4"))
            page.click("#save-job")
            assert workspace.raw()["threshold"] == 0.4
    finally:
        evil.shutdown()


@needs_chromium
def test_a_name_rebound_to_loopback_gets_no_page(tmp_path, browser):
    workspace = _workspace(tmp_path)
    app = App(workspace, None, None)
    with running(app) as url:
        port = url.rsplit(":", 1)[1]
        page = browser.new_page()
        answer = page.goto(f"http://rebound.example:{port}/data?token={app.token}")
        assert answer.status == 403 and "answers to 127.0.0.1, ::1, localhost only" in page.content()
        answer = page.goto(f"http://localhost:{port}/data?token={app.token}")
        assert answer.status == 200 and page.title() == "bigalign — data"


@needs_chromium
def test_a_slow_endpoint_holds_only_the_page_that_asked_it(tmp_path, browser):
    release, asked = threading.Event(), threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            asked.set()
            release.wait(120)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    endpoint, endpoint_url = _serve(Slow)
    workspace = _workspace(tmp_path)
    workspace.open_text(JOB.replace('path = "b.csv"', f'sparql = "{endpoint_url}/sparql"\n'
                                    'query = "SELECT ?id ?name WHERE { ?id <http://x/name> ?name }"\n'
                                    'retries = 0\ntimeout = 100'))
    app = App(workspace, None, None)
    try:
        with running(app) as url:
            context = browser.new_context()
            first = context.new_page()
            first.goto(f"{url}/job?token={app.token}")
            first.evaluate("location.href = '/data'")  # (not awaited: it waits for the endpoint)
            assert asked.wait(30)
            other = context.new_page()
            for path, title in (("/job", "bigalign — job"), ("/review", "bigalign — review"),
                                ("/treatments", "bigalign — treatments")):
                other.goto(f"{url}{path}", timeout=15000)
                assert other.title() == title
            assert not release.is_set() and first.title() != "bigalign — data"  # (still waiting)
            release.set()
            first.wait_for_function("document.title === 'bigalign — data'", timeout=60000)
            assert "HTTP 503" in first.inner_text("[id='error-targetset.sparql']")
    finally:
        release.set()
        endpoint.shutdown()


@needs_chromium
def test_two_uploads_of_one_name_stay_two_sets(tmp_path, browser):
    workspace = _workspace(tmp_path)
    app = App(workspace, None, None)
    for side, names in (("a", ["Paul", "Jacques"]), ("b", ["Pol", "Jack", "Michel"])):
        (tmp_path / side).mkdir()
        pd.DataFrame({"id": range(len(names)), "name": names}).to_csv(tmp_path / side / "people.csv", index=False)
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/data?token={app.token}")
        for set_name, side in (("alignset", "a"), ("targetset", "b")):
            page.set_input_files(f"#upload-{set_name}", str(tmp_path / side / "people.csv"))
            page.click(f"form[action^='/upload/{set_name}'] button")
        raw = workspace.raw()
        assert raw["alignset"] == {"path": "uploads/alignset/people.csv"}
        assert raw["targetset"] == {"path": "uploads/targetset/people.csv"}
        for set_name, side in (("alignset", "a"), ("targetset", "b")):
            stored = tmp_path / "ws" / raw[set_name]["path"]
            assert stored.read_bytes() == (tmp_path / side / "people.csv").read_bytes()
        assert page.locator("#sample-targetset .records tbody tr").count() == 3


def _multipart(url: str, filename: str, body, length: int, xsrf: str, cookie: str):
    """POST a file as the upload form does (``body``: bytes, or chunks of them)."""
    boundary = "----bigalignTestBoundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks():
        yield head
        yield from ([body] if isinstance(body, bytes) else body)
        yield tail

    # (a small body goes with the headers, in one write: a refusal that closes the connection finds it sent)
    data = head + body + tail if isinstance(body, bytes) else chunks()
    request = urllib.request.Request(f"{url}?_xsrf={xsrf}", data=data, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie,
        "Content-Length": str(len(head) + length + len(tail))})
    return urllib.request.build_opener(_NoRedirect).open(request, timeout=120)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_uploads_of_strange_names_and_of_any_size_land_in_the_workspace(tmp_path):
    workspace = _workspace(tmp_path)
    app = App(workspace, None, None)
    cookie = f"bigalign_token={app.token}"
    with running(app) as url:
        with pytest.raises(urllib.error.HTTPError, match="303"):
            _multipart(f"{url}/upload/alignset", "..", b"id,name\n1,Paul\n", 15, app.xsrf, cookie)
        assert workspace.raw()["alignset"] == {"path": "uploads/alignset/alignset.csv"}
        assert (tmp_path / "ws" / "uploads" / "alignset" / "alignset.csv").read_bytes() == b"id,name\n1,Paul\n"
        assert sorted(os.listdir(tmp_path)) == ["ws"]  # (nothing made beside the workspace)
        # 150 MB: past Tornado's 100 MB for a body held in memory; streamed to disk, boundary-like bytes kept
        line = b"1,Paul --\r\n------bigalignTestBoundar\r\n"
        count = 150 * (1 << 20) // len(line)
        with pytest.raises(urllib.error.HTTPError, match="303"):
            _multipart(f"{url}/upload/targetset", "big.csv", (line * 4096 for _ in range(count // 4096)),
                       len(line) * 4096 * (count // 4096), app.xsrf, cookie)
        stored = tmp_path / "ws" / "uploads" / "targetset" / "big.csv"
        assert stored.stat().st_size == len(line) * 4096 * (count // 4096)
        with open(stored, "rb") as f:
            assert f.read(len(line) * 3) == line * 3
        assert not [n for n in os.listdir(stored.parent) if n.startswith(".upload-")]
        # without the form's token: refused, nothing kept
        with pytest.raises(urllib.error.HTTPError, match="403"):
            _multipart(f"{url}/upload/targetset", "other.csv", b"x", 1, "41414141", cookie)
        assert sorted(os.listdir(stored.parent)) == ["big.csv"]


def test_tokens_never_crash_nor_reach_the_log(tmp_path, caplog):
    workspace = _workspace(tmp_path)
    app = App(workspace, None, None)
    with running(app) as url:
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{url}/data?token=%C3%A9t%C3%A9", timeout=10)
        with pytest.raises(urllib.error.HTTPError, match="403"):  # (a cookie the token is not)
            urllib.request.urlopen(urllib.request.Request(f"{url}/data", headers={
                "Cookie": "bigalign_token=wrong"}), timeout=10)
        caplog.set_level(logging.INFO)
        caplog.set_level(logging.INFO, logger="tornado")  # (Dask's logging settings quiet Tornado's)
        with pytest.raises(urllib.error.HTTPError, match="404"):  # (logged by Tornado: its URI masked)
            urllib.request.urlopen(f"{url}/download/links.csv?token={app.token}", timeout=10)

        def broken(*args):
            raise RuntimeError("a bug")

        app.labels.mark = broken
        request = urllib.request.Request(f"{url}/mark?token={app.token}", method="POST", headers={
            "X-XSRFToken": app.xsrf, "Content-Type": "application/json"},
            data=b'{"align_id": "1", "target_id": "2", "match": 1}')
        with pytest.raises(urllib.error.HTTPError, match="500"):
            urllib.request.urlopen(request, timeout=10)
    assert "a bug" in caplog.text and "/mark?token=***" in caplog.text
    assert "/download/links.csv?token=***: no links yet" in caplog.text
    assert app.token not in caplog.text


def test_ids_that_read_as_missing_stay_ids_in_marks_and_downloads(tmp_path):
    from bigalign.app.review import Labels

    labels = Labels(str(tmp_path / "labels.csv"))
    labels.mark("NA", "null", 1)
    labels.mark("nan", "None", 0)
    assert labels.mark("1", "2", 1) == {("NA", "null"): 1, ("nan", "None"): 0, ("1", "2"): 1}

    workspace = _workspace(tmp_path)
    workspace.open_text(JOB + 'align_uri = "http://a.example/{id}"\ntarget_uri = "http://b.example/{id}"\n')
    os.makedirs(tmp_path / "ws" / "out")
    (tmp_path / "ws" / "out" / "links.csv").write_text("align_id,target_id,distance\nNA,nan,0.1\nnull,2,\n")
    app = App(workspace, None, None)
    with running(app) as url:
        triples = urllib.request.urlopen(f"{url}/download/links.nt?token={app.token}", timeout=30).read().decode()
    assert triples.splitlines() == [
        "<http://a.example/NA> <http://www.w3.org/2002/07/owl#sameAs> <http://b.example/nan> .",
        "<http://a.example/null> <http://www.w3.org/2002/07/owl#sameAs> <http://b.example/2> ."]
