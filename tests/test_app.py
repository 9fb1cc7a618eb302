"""The web application (``bigalign serve``), end to end in headless Chromium.

The application serves from this process; plans and runs are the command
line's processes on the session's real cluster (worker processes on
loopback). Playwright drives Debian's Chromium, as a person would: forms,
buttons, downloads.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bigalign.app.screenshots import JOB as SCREENSHOTS_JOB
from bigalign.app.server import App, running
from bigalign.app.workspace import Workspace
from bigalign.datasets import person_records
from bigalign.jobs import load_job

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.system,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The demo's generated files: people_a.csv, people_b.parquet and the true pairs."""
    directory = tmp_path_factory.mktemp("data")
    sets = person_records(1500, seed=3)
    sets.alignset.to_csv(directory / "people_a.csv", index=False)
    sets.targetset.to_parquet(directory / "people_b.parquet", index=False)
    sets.truth.to_csv(directory / "truth.csv", index=False)
    return directory


@pytest.fixture()
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _wait_for_state(page, state: str, seconds: float = 180) -> None:
    page.wait_for_function(f"document.getElementById('task').dataset.state === '{state}'", timeout=seconds * 1000)


def _validate_message(job_path) -> str:
    """What ``bigalign validate`` prints for the job (its one-line error)."""
    done = subprocess.run([sys.executable, "-m", "bigalign", "validate", str(job_path)], capture_output=True,
                          text=True)
    return done.stderr.strip().removeprefix("bigalign: error: ")


def test_build_plan_run_review_download(client, data, tmp_path, browser):
    workspace = Workspace(str(tmp_path / "ws"))
    app = App(workspace, client.scheduler.address, client.dashboard_link)
    with running(app) as url:
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{url}/?token={app.token}")
        assert page.title() == "bigalign — data"
        assert page.get_attribute("#dashboard", "href") == client.dashboard_link

        # Data: the demo's two files; their columns, a sample, missing and distinct shares.
        page.fill("[name='alignset.path']", str(data / "people_a.csv"))
        page.fill("[name='alignset.id']", "rec_id")
        page.fill("[name='targetset.path']", str(data / "people_b.parquet"))
        page.fill("[name='targetset.id']", "rec_id")
        page.click("#save-sources")
        profile = page.inner_text("#sample-alignset .profile")
        assert "given_name" in profile and "soc_sec_id" in profile
        assert page.locator("#sample-targetset .records tbody tr").count() == 10
        assert "over the first 1000 records" in page.inner_text("#sample-alignset")

        # Treatments: two, with a weight that is not a number first.
        page.click("#nav-treatments")
        page.click("#add-treatment")
        page.click("#add-treatment")
        page.fill("[name='treatments[0].column']", "given_name, surname")
        page.fill("[name='treatments[0].normalizers']", "lunormalize, simplify")
        page.select_option("[name='treatments[0].metric']", "levenshtein")
        page.check("[name='treatments[0].normalized']")
        page.fill("[name='treatments[0].weight']", "2")
        page.fill("[name='treatments[1].column']", "date_of_birth")
        page.select_option("[name='treatments[1].metric']", "temporal")
        page.check("[name='treatments[1].normalized']")
        page.fill("[name='treatments[1].options']", "scale = 365")
        page.fill("[name='treatments[1].weight']", "heavy")
        page.check("[name='model'][value='distance']")
        page.fill("[name='threshold']", "0.5")
        page.click("#save-treatments")
        shown = page.inner_text("[id='error-treatments[1].weight']")
        assert shown == _validate_message(workspace.job_path)
        assert "treatments[1].weight: must be int or float, got 'heavy'" in shown
        page.fill("[name='treatments[1].weight']", "1")
        page.click("#save-treatments")
        assert page.locator(".error").count() == 0  # (no blocking yet: the cross product of small sets is allowed)
        # the live preview: normalized values of sample records and their nearest target
        page.wait_for_selector("#preview-0 table")
        first = page.locator("#preview-0 tbody tr").first.locator("td")
        align_value, normalized = first.nth(0).inner_text(), first.nth(1).inner_text()
        assert normalized == normalized.lower() and normalized.replace(" · ", " ").strip()
        assert align_value
        assert page.locator("#preview-1 tbody tr").count() == 5

        # Blocking: a key on the date of birth; plan.
        page.click("#nav-blocking")
        page.click("#add-blocking")
        page.select_option("[name='blocking[0].kind']", "key")
        page.fill("[name='blocking[0].columns']", "date_of_birth")
        page.fill("[name='blocking[0].transform']", "date")
        page.click("#save-blocking")
        assert page.locator(".error").count() == 0
        page.click("#plan")
        _wait_for_state(page, "succeeded")
        plan = page.inner_text("#output")
        assert "candidate pairs" in plan and "estimate for the full run" in plan
        assert "blocking" in page.inner_text("#stages")

        # Run on the cluster; the stages, then the summary.
        page.click("#nav-run")
        page.click("#start")
        _wait_for_state(page, "succeeded")
        page.wait_for_selector("#summary")
        stages = page.inner_text("#stages")
        assert "candidates" in stages and "score" in stages and "write" in stages
        links = pd.read_parquet(workspace.links_path())
        assert len(links) > 500
        assert f"{len(links)} links" in page.inner_text("#summary")

        # Review: a page of links, each two records side by side; mark the first wrong.
        page.click("#to-review")
        assert f"{len(links)} of {len(links)} links" in page.inner_text("#count")
        articles = page.locator("article.link")
        assert articles.count() == 50
        first_link = articles.first
        head = first_link.locator(".pair").inner_text()
        align_id, target_id = head.split(" → ")
        rows = first_link.locator(".side-by-side tbody tr")
        assert rows.nth(0).locator("th").inner_text() == "given_name+surname"
        assert rows.nth(1).locator("th").inner_text() == "date_of_birth"
        best = links.sort_values(["distance", "align_id"], kind="stable").iloc[0]
        assert float(rows.nth(0).locator("td").nth(2).inner_text() or 0) >= 0
        assert (align_id, target_id) == (str(best["align_id"]), str(best["target_id"]))
        first_link.locator("button.wrong").click()
        page.wait_for_function("document.querySelector('article.link').dataset.mark === '0'")
        marks = pd.read_csv(workspace.labels_path, dtype=str)
        assert marks.to_dict("records") == [{"align_id": align_id, "target_id": target_id, "match": "0"}]
        # a filter by score, and the next page
        page.fill("[name='low']", "0.1")
        page.click("#apply-filters")
        kept = int((links["distance"] >= 0.1).sum())
        assert page.inner_text("#count").startswith(f"{kept} of {len(links)} links")

        # Downloads: the links as CSV, and the job as TOML, which the command line reads.
        page.click("#nav-run")
        with page.expect_download() as download:
            page.click("#download-csv")
        csv_path = tmp_path / "links.csv"
        download.value.save_as(csv_path)
        downloaded = pd.read_csv(csv_path, dtype={"align_id": str, "target_id": str})
        pd.testing.assert_frame_equal(downloaded, links.astype({"align_id": str, "target_id": str}),
                                      check_dtype=False)
        # and in the Alignment format, scored: a cell a link, read back by an RDF parser
        with page.expect_download() as download:
            page.click("#download-rdf")
        download.value.save_as(tmp_path / "links.rdf")
        from test_scored_rdf import read_cells

        assert len(read_cells(tmp_path / "links.rdf")) == len(links)
        page.click("#nav-job")
        with page.expect_download() as download:
            page.click("#download-job")
        toml_path = tmp_path / "saved" / "job.toml"
        toml_path.parent.mkdir()
        download.value.save_as(toml_path)
        job = load_job(str(toml_path))
        assert [str(t) for t in job.alignment.treatments] == ["given_name+surname", "date_of_birth"]
        assert job.alignment.treatments[1].options == {"scale": 365} and job.alignment.threshold == 0.5
        assert job.alignment.blocking.columns == ["date_of_birth"]


def test_a_run_is_cancelled_from_the_page_and_leaves_no_links(client, tmp_path, browser):
    """Cancel is the command line's Ctrl-C: the run stops, nothing under a final name."""
    workspace = Workspace(str(tmp_path))
    workspace.open_text("""threshold = 0.5
[generate]
kind = "person_records"
n = 300000
[alignset]
path = "a.csv"
[targetset]
path = "b.parquet"
[[treatments]]
column = "surname"
metric = "levenshtein"
[blocking]
kind = "key"
columns = "surname"
[output]
path = "out/links.parquet"
""")
    app = App(workspace, client.scheduler.address, client.dashboard_link)
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/run?token={app.token}")
        page.click("#start")
        page.wait_for_selector("#cancel:not([hidden])")
        page.wait_for_function("document.getElementById('stages').textContent.includes('validate')")
        page.click("#cancel")
        _wait_for_state(page, "cancelled", 60)
        output = page.inner_text("#output")
        assert "bigalign: interrupted" in output or "did not stop within 10 s of the interrupt: killed" in output
    assert not os.path.exists(workspace.links_path())


def test_the_run_page_indexes_the_register_and_links_batches_against_it(client, data, tmp_path, browser):
    """Index the targetset, upload a batch of new records and link it (the links of `bigalign link`), then
    link another and add it: a new version of the index, said on the page."""
    workspace = Workspace(str(tmp_path / "ws"))
    for name in ("people_a.csv", "people_b.parquet"):
        shutil.copy(data / name, tmp_path / "ws" / name)
    workspace.open_text(SCREENSHOTS_JOB)  # (uniq; a union of a key and MinHash)
    people = pd.read_csv(data / "people_a.csv", dtype=str, keep_default_na=False)
    people.iloc[:300].to_csv(tmp_path / "monday.csv", index=False)
    people.iloc[300:400].assign(rec_id=lambda f: "new-" + f["rec_id"]).to_csv(tmp_path / "tuesday.csv", index=False)
    app = App(workspace, client.scheduler.address, client.dashboard_link)
    with running(app) as url:
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{url}/run?token={app.token}")
        assert page.inner_text("#index-state").startswith("No index yet")
        with page.expect_navigation():
            page.click("#start-index")
        _wait_for_state(page, "succeeded")
        page.wait_for_function("document.getElementById('index-state').textContent.startsWith('Index version 1')")
        assert page.inner_text("#index-state") == "Index version 1: 1500 records."

        page.set_input_files("#batch-file", str(tmp_path / "monday.csv"))
        with page.expect_navigation():
            page.click("#link-batch")
        _wait_for_state(page, "succeeded")
        page.wait_for_selector("#batch-summary")
        links = pd.read_parquet(tmp_path / "ws" / "out" / "batch" / "links.parquet")
        assert 150 < len(links) <= 300
        summary = json.loads((tmp_path / "ws" / "out" / "batch" / "summary.json").read_text())["blocking"]["index"]
        assert page.inner_text("#batch-summary").startswith(
            f"Last batch: 300 records, {len(links)} links, against index version 1 (its keys touched "
            f"{summary['block_rows_read']} block rows; it read {summary['bytes_read'] / 2**20:.1f} MiB of the index's "
            f"{summary['bytes'] / 2**20:.1f} MiB)")
        done = subprocess.run([sys.executable, "-m", "bigalign", "link", workspace.job_path, "--index",
                               str(tmp_path / "ws" / "index"), "--records", str(tmp_path / "monday.csv"), "--output",
                               str(tmp_path / "cli" / "links.parquet"), "--quiet"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        pd.testing.assert_frame_equal(links, pd.read_parquet(tmp_path / "cli" / "links.parquet"))
        with page.expect_download() as download:
            page.click("#batch-links")
        download.value.save_as(tmp_path / "downloaded.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "downloaded.parquet"), links)

        page.set_input_files("#batch-file", str(tmp_path / "tuesday.csv"))
        with page.expect_navigation():
            page.click("#link-and-add")
        _wait_for_state(page, "succeeded")
        page.wait_for_function("document.getElementById('index-state').textContent.startsWith('Index version 2')")
        assert page.inner_text("#index-state") == "Index version 2: 1600 records."
        assert "against index version 1" in page.inner_text("#batch-summary")
        assert "added as version 2" in page.inner_text("#batch-summary")


def test_the_blocking_page_suggests_a_blocking_and_uses_it(client, data, tmp_path, browser):
    """Suggest: `bigalign plan --suggest` on the saved job; the keys it chose, their estimated pair
    completeness, and the job's blocking replaced by them on request (the form then shows them)."""
    workspace = Workspace(str(tmp_path / "ws"))
    for name in ("people_a.csv", "people_b.parquet"):
        shutil.copy(data / name, tmp_path / "ws" / name)
    workspace.open_text(SCREENSHOTS_JOB)
    app = App(workspace, client.scheduler.address, client.dashboard_link)
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/blocking?token={app.token}")
        with page.expect_navigation():
            page.click("#suggest")
        _wait_for_state(page, "succeeded")
        page.wait_for_selector("#suggestion")
        shown = page.inner_text("#suggestion")
        chosen = json.loads((Path(workspace.run_dir()) / "candidates.json").read_text())["blocking_choice"]
        assert f"Suggested: {len(chosen['chosen'])} keys" in shown and "the job's own blocking" in shown
        assert "blocking chosen (kind = \"auto\"" in page.inner_text("#output")
        with page.expect_navigation():
            page.click("#use-suggestion")
        blocking = workspace.raw()["blocking"]
        assert blocking == chosen["blocking"] and blocking["kind"] == "union"
        assert page.locator("fieldset.member").count() == len(chosen["chosen"])
        assert load_job(workspace.job_path).alignment.blocking.blockings()[0].columns


def test_an_upload_and_a_job_file_opened_in_the_page(tmp_path, data, browser):
    workspace = Workspace(str(tmp_path / "ws"))
    app = App(workspace, None, None)
    with running(app) as url:
        page = browser.new_page()
        page.goto(f"{url}/data?token={app.token}")
        page.set_input_files("#upload-alignset", str(data / "people_a.csv"))
        page.click("form[action^='/upload/alignset'] button")
        assert workspace.raw()["alignset"] == {"path": "uploads/alignset/people_a.csv"}
        assert "given_name" in page.inner_text("#sample-alignset .profile")
        assert page.input_value("[name='alignset.path']") == "uploads/alignset/people_a.csv"
        # a job file opened: the pages show it, and what it lacks is named beside its field
        job = tmp_path / "mine.toml"
        job.write_text('threshold = 0.3\n[alignset]\npath = "uploads/alignset/people_a.csv"\nid = "rec_id"\n'
                       '[targetset]\npath = "nowhere/*.csv"\n[[treatments]]\ncolumn = "surname"\n'
                       'metric = "jaro_winkler"\n[output]\npath = "out/links.csv"\n')
        page.click("#nav-job")
        page.set_input_files("#job-file", str(job))
        page.click("#open-job button")
        assert "metric = \"jaro_winkler\"" in page.input_value("#job-text")
        page.click("#nav-data")
        assert page.inner_text("[id='error-targetset.path']").endswith(
            "targetset.path: no file matches '" + str(tmp_path / "ws" / "nowhere" / "*.csv") + "'")
        page.click("#nav-treatments")
        assert page.input_value("[name='treatments[0].column']") == "surname"
        # a group of treatments for the learned model: shown in its own field, and a group of one refused
        grouped = job.read_text().replace("threshold = 0.3", 'threshold = "auto"').replace(
            'metric = "jaro_winkler"\n', 'metric = "jaro_winkler"\n[[treatments]]\ncolumn = "suburb"\n'
            'metric = "jaro_winkler"\ngroup = "home"\n[[treatments]]\ncolumn = "postcode"\nmetric = "exact"\n'
            'group = "home"\n[model]\nkind = "fellegi-sunter"\n')
        job.write_text(grouped)
        page.click("#nav-job")
        page.set_input_files("#job-file", str(job))
        page.click("#open-job button")
        page.click("#nav-treatments")
        assert [page.input_value(f"[name='treatments[{i}].group']") for i in range(3)] == ["", "home", "home"]
        assert page.input_value("[name='treatments[1].options']") == ""
        page.fill("[name='treatments[2].group']", "")
        page.click("#save-treatments")
        assert "group 'home' has one treatment" in page.inner_text("main")
        assert workspace.raw()["treatments"][1]["group"] == "home" and "group" not in workspace.raw()["treatments"][2]
        # a TOML error stays in the text, named
        page.click("#nav-job")
        page.fill("#job-text", "threshold = [")
        page.click("#save-job")
        assert "not valid TOML" in page.inner_text("#error-job")
        # the file broken by hand: every page leads to the job page, where the text is kept to be mended
        with open(workspace.job_path, "a") as f:
            f.write("[output\n")
        page.goto(f"{url}/treatments")
        assert page.url.endswith("/job") and "not valid TOML" in page.inner_text("#error-job")
        assert page.input_value("#job-text").endswith("[output\n")


def test_bound_beyond_loopback_the_pages_ask_for_the_token(tmp_path):
    import urllib.error
    import urllib.request

    app = App(Workspace(str(tmp_path)), None, None, token="s3cret")
    with running(app) as url:
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{url}/job", timeout=10)
        with urllib.request.urlopen(f"{url}/job?token=s3cret", timeout=10) as answer:
            assert answer.status == 200 and "bigalign_token=s3cret" in answer.headers["Set-Cookie"]
        request = urllib.request.Request(f"{url}/job", headers={"Cookie": "bigalign_token=s3cret"})
        assert urllib.request.urlopen(request, timeout=10).status == 200


def test_marks_are_labelled_pairs_for_evaluate_and_the_model(tmp_path):
    from bigalign.app.review import Labels
    from bigalign.io import read_pairs

    labels = Labels(str(tmp_path / "labels.csv"))
    labels.mark("a1", "t1", 1)
    labels.mark("a2", "t9", 0)
    labels.mark("a3", "t3", 1)
    labels.mark("a3", "t3", None)
    assert (tmp_path / "labels.csv").read_text() == "align_id,target_id,match\na1,t1,1\na2,t9,0\n"
    assert read_pairs(str(tmp_path / "labels.csv")).to_dict("records") == [
        {"align_id": "a1", "target_id": "t1", "match": "1"}]
    (tmp_path / "links.csv").write_text("align_id,target_id,distance\na1,t1,0.1\na2,t9,0.2\n")
    evaluated = subprocess.run([sys.executable, "-m", "bigalign", "evaluate", str(tmp_path / "links.csv"),
                                str(tmp_path / "labels.csv")], capture_output=True, text=True, check=True)
    assert "precision: 0.5000" in evaluated.stdout and "recall: 1.0000" in evaluated.stdout
    (tmp_path / "bad.csv").write_text("align_id,target_id,match\na1,t1,maybe\n")
    with pytest.raises(ValueError, match="bad.csv: row 2: column 'match' must be 1 or 0, got 'maybe'"):
        read_pairs(str(tmp_path / "bad.csv"))


def test_an_endpoint_that_does_not_answer_is_named_beside_its_field(tmp_path, data):
    import urllib.request

    workspace = Workspace(str(tmp_path))
    workspace.open_text(f"""threshold = 0.3
[alignset]
path = "{data / 'people_a.csv'}"
[targetset]
sparql = "http://127.0.0.1:9/sparql"
query = "SELECT ?id ?surname WHERE {{ ?id <http://x/surname> ?surname }}"
retries = 0
timeout = 2
[[treatments]]
column = "surname"
metric = "jaro_winkler"
[output]
path = "out/links.csv"
""")
    app = App(workspace, None, None)
    with running(app) as url:
        page = urllib.request.urlopen(f"{url}/data?token={app.token}", timeout=60).read().decode()
    shown = page[page.index('id="error-targetset.sparql"'):].split(">", 1)[1].split("<", 1)[0]
    assert "http://127.0.0.1:9/sparql" in shown and "did not answer" in shown
    assert shown.replace("&#39;", "'") == _validate_message(workspace.job_path)


def test_serve_says_when_its_port_is_taken(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "bigalign", "serve", str(tmp_path), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"bigalign: error: cannot serve on 127.0.0.1:{port} (Address already in use): "
                                   "choose another --port")


def test_serve_prints_its_url_and_the_dashboards_and_serves_until_interrupted(tmp_path):
    import signal
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bigalign", "serve", str(tmp_path), "--port", str(port),
                               "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        served = server.stdout.readline().strip()
        assert re.fullmatch(rf"bigalign: serving {re.escape(str(tmp_path))} at "
                            rf"http://127\.0\.0\.1:{port}/\?token=[\w-]{{32}}", served)
        dashboard = server.stdout.readline().strip()
        assert dashboard.startswith("bigalign: Dask dashboard: http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError, match="403"):  # (on loopback too: no token, no page)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data", timeout=30)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        page = browser.open(served.split(" at ", 1)[1], timeout=30).read().decode()
        assert 'id="nav-data" class="current"' in page
        assert dashboard.split(": ", 2)[2] in page  # (the page links the same dashboard)
        assert "alignset.path: is empty" in page  # (a new job: what it lacks, beside its field)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    assert (tmp_path / "job.toml").exists()


def test_links_are_paged_alike_from_parquet_and_csv(tmp_path):
    from bigalign.app.review import LinksPager
    from bigalign.io import write_links

    links = pd.DataFrame({"align_id": ["a1", "a2", "a3", "a4", "a5"], "target_id": ["t1", "t2", "t3", "t4", "t5"],
                          "distance": [0.30, 0.10, float("nan"), 0.25, 0.20],
                          "name: distance": [0.0, 0.5, 0.2, 0.1, 0.4]})
    for name in ("links.parquet", "links.csv"):
        write_links(links, str(tmp_path / name), name.split(".")[1])
        pager = LinksPager(str(tmp_path / name), str(tmp_path))
        assert pager.score == "distance" and pager.distances == ["name: distance"] and pager.rows == 5

        def ids(page):
            return page.rows["align_id"].tolist()

        assert ids(pager.page(0, 2)) == ["a2", "a5"] and ids(pager.page(1, 2)) == ["a4", "a1"]
        assert ids(pager.page(2, 2)) == ["a3"]  # (no score: last)
        assert ids(pager.page(0, 5, descending=True)) == ["a1", "a4", "a5", "a2", "a3"]
        assert ids(pager.page(0, 5, sort="name: distance", descending=True)) == ["a2", "a5", "a3", "a4", "a1"]
        filtered = pager.page(0, 5, low=0.2, high=0.3)
        assert ids(filtered) == ["a5", "a4", "a1"] and filtered.total == 3
        assert ids(pager.page(0, 3, near=0.22)) == ["a5", "a4", "a1"]  # (gaps 0.02, 0.03, 0.08)
        assert pager.linked(["a1", "a1", "a9"], ["t1", "t2", "t1"]).tolist() == [True, False, False]
