"""bigalign probed as careless users, hostile users and operators of shared clusters would.

Each test is the regression test of one defect: it goes through the command
line or the public API, on a real cluster where one is involved.
"""

import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap

import fsspec
import numpy as np
import pandas as pd
import pytest

import bigalign
from bigalign import Treatment
from bigalign.errors import RecordError
from bigalign.jobs import JobError, load_job

from test_cli import BIGALIGN, GOOD, ROOT, TREATMENTS, bigalign as run_cli, failing, small_person_job, write_job


@pytest.fixture(scope="module")
def scheduler(client):
    return client.scheduler.address


def test_two_jobs_at_once_on_one_scheduler_keep_their_own_inputs(tmp_path, scheduler):
    jobs = []
    for n in (300, 500):
        directory = tmp_path / f"job{n}"
        directory.mkdir()
        jobs.append((n, directory, small_person_job(directory, n=n)))
    for _, _, job in jobs:  # data generated beforehand: both runs start staging at once
        run_cli("validate", job)
    processes = [subprocess.Popen(BIGALIGN + ["run", str(job), "--scheduler", scheduler], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _, _, job in jobs]
    outputs = [p.communicate(timeout=600) for p in processes]
    for (n, directory, _), process, (stdout, stderr) in zip(jobs, processes, outputs):
        assert process.returncode == 0, stderr
        assert f"alignset: {n} rows read, {n} kept" in stdout
        links = pd.read_parquet(directory / "links.parquet")
        ids = set(pd.read_csv(directory / "people_a.csv", dtype=str)["rec_id"])
        assert set(links["align_id"].astype(str)) <= ids and len(links) > 0.9 * n * 0.8


NORMALIZER = 'normalizers = [{ name = "os:system", command = "touch PWNED" }]\n'


def test_a_job_file_runs_no_code_of_a_module_not_allowed(tmp_path):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS.replace('metric = "exact"\n', 'metric = "exact"\n' + NORMALIZER,
                                                             1))
    for command in ("validate", "run"):
        result = run_cli(command, job, cwd=tmp_path, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "'os:system' is user code from module 'os'" in result.stderr and "--allow-module os" in result.stderr
        assert not (tmp_path / "PWNED").exists()
    for path in ("builtins:eval", "subprocess:getoutput"):
        text = TREATMENTS.replace('metric = "exact"', f'metric = "{path}"', 1)
        with pytest.raises(JobError, match="user code from module"):
            load_job(str(write_job(tmp_path, GOOD, GOOD, text)))


def test_allowed_user_code_is_not_imported_by_validate(tmp_path):
    (tmp_path / "mymetrics.py").write_text(textwrap.dedent("""\
        import pathlib
        pathlib.Path("IMPORTED").touch()

        def first_letter(a, b):
            return float(str(a)[:1] != str(b)[:1])
        """))
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS.replace('metric = "exact"', 'metric = "mymetrics:first_letter"', 1))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run(BIGALIGN + ["validate", str(job), "--allow-module", "mymetrics"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "mymetrics:first_letter" in result.stdout and not (tmp_path / "IMPORTED").exists()
    result = subprocess.run(BIGALIGN + ["run", str(job), "--allow-module", "mymetrics", "--workers", "1"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "out/links.csv")) == 3


def uri_job(tmp_path, template):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    text = job.read_text().replace('format = "csv"', f'format = "csv"\nalign_uri = "{template}"')
    job.write_text(text)
    return job


def test_uri_templates_substitute_the_id_and_nothing_else(tmp_path):
    for template in ("http://x/{id.__class__.__mro__}", "http://x/{name}", "http://x/{id!r}", "http://x/{0}",
                     "http://x/"):
        with pytest.raises(JobError, match="output.align_uri"):
            load_job(str(uri_job(tmp_path, template)))
    assert load_job(str(uri_job(tmp_path, "http://x/{id}"))).output.align_uri == "http://x/{id}"


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_resumed_run_reads_no_pickle_from_the_run_directory(tmp_path, scheduler):
    job = small_person_job(tmp_path, n=400)
    job.write_text(job.read_text().replace("uniq = true", "uniq = true\ncheckpoint = true"))
    run_cli("run", job, "--scheduler", scheduler)
    first = pd.read_parquet(tmp_path / "links.parquet")
    checkpoint = tmp_path / "checkpoint"
    assert not list(checkpoint.rglob("*.pickle"))
    marker = tmp_path / "PWNED"
    (checkpoint / "blocking-stats.pickle").write_bytes(pickle.dumps(Payload(str(marker))))
    resumed = run_cli("run", job, "--scheduler", scheduler)
    assert "resuming from the checkpoint" in resumed.stderr and not marker.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "links.parquet"), first)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["blocking"]["candidate_pairs"] > 0


def test_deduplication_counts_known_pairs_whatever_their_order(tmp_path, scheduler):
    rows = ["1,Ann,14/08/1991,48.85,2.35", "2,Ann,14/08/1991,48.85,2.35", "3,Bob,01/01/1990,45.76,4.83",
            "4,Bob,01/01/1990,45.76,4.83", "5,Cy,02/02/1992,43.30,5.37", "6,Cy,02/02/1992,43.30,5.37"]
    job = write_job(tmp_path, rows, rows, TREATMENTS)
    text = "\n".join(line for line in job.read_text().splitlines() if line.strip() not in ("[targetset]", 'path = "b.csv"'))
    job.write_text("dedupe = true\nuniq = false\ntruth = \"truth.csv\"\n" + text)
    # the known pairs in both orders
    (tmp_path / "truth.csv").write_text("align_id,target_id\n2,1\n3,4\n6,5\n")
    result = run_cli("run", job, "--scheduler", scheduler)
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["blocking"]["pair_completeness"] == 1.0
    assert summary["quality"]["recall"] == 1.0 and summary["quality"]["precision"] == 1.0
    assert "pair completeness of the blocking: 1.0000" in result.stdout
    run_cli("plan", job, "--scheduler", scheduler)
    evaluated = run_cli("evaluate", tmp_path / "out/links.csv", tmp_path / "truth.csv", "--job", job)
    assert "recall: 1.0000" in evaluated.stdout and "pair_completeness: 1.0000" in evaluated.stdout


def test_zero_candidate_pairs_is_a_result(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD, [r.replace("Ann", "Zed").replace("Bob", "Yan").replace("Cy", "Xi") for r in GOOD],
                    TREATMENTS)
    result = run_cli("run", job, "--scheduler", scheduler)
    assert "candidate pairs: 0" in result.stdout and "links written: 0" in result.stdout
    assert (tmp_path / "out/report.html").exists()
    (tmp_path / "out/report.html").unlink()
    run_cli("report", tmp_path / "out")
    assert (tmp_path / "out/report.html").exists()


def test_coordinates_that_are_not_numbers_are_rejected(tmp_path, scheduler):
    rows = [GOOD[0], "2,Bob,01/01/1990,forty-eight,4.83", '3,Cy,02/02/1992,"48,85",5.37', "4,Di,02/02/1992,NaN,5.3",
            "5,Ed,02/02/1992,1e400,5.3", "6,Fa,02/02/1992,95.0,5.37"]
    job = write_job(tmp_path, rows, GOOD, TREATMENTS)
    result = run_cli("run", job, "--scheduler", scheduler)
    rejects = pd.read_csv(tmp_path / "out/rejects.csv", dtype=str)
    assert rejects[["row", "column", "reason"]].values.tolist() == [
        ["3", "lat, lon", "not a number"], ["4", "lat, lon", "not a number"], ["5", "lat, lon", "not a number"],
        ["6", "lat, lon", "not a number"], ["7", "lat, lon", "coordinates out of range"]]
    assert "6 rows read, 1 kept, 5 rejected (4 not a number, 1 coordinates out of range)" in result.stdout
    # a treatment may fail instead of rejecting
    (tmp_path / "strict").mkdir()
    job = write_job(tmp_path / "strict", rows, GOOD, TREATMENTS.replace('units = "km"', 'units = "km"\ninvalid = "error"'))
    message = failing(tmp_path / "strict", scheduler, job)
    assert "a.csv: row 3, column lat, lon: not a number: ('forty-eight', '4.83')" in message


def test_the_api_fails_cleanly_or_sets_aside_unreadable_values():
    a = pd.DataFrame({"id": [1, 2, 3], "lat": ["48.85", "forty-eight", 45.7], "lon": [2.35, 2.3, 4.8]})
    b = pd.DataFrame({"id": [1, 2], "lat": [48.85, 45.7], "lon": [2.35, 4.8]})
    with pytest.raises(RecordError, match=r"alignset: record 2, column lat, lon: not a number: \('forty-eight', 2.3\)"):
        bigalign.align(a, b, [Treatment(("lat", "lon"), "geographical", units="km")], threshold=10)
    links = bigalign.align(a, b, [Treatment(("lat", "lon"), "geographical", units="km", invalid="reject")],
                           threshold=10)
    assert links[["align_id", "target_id"]].values.tolist() == [[1, 1], [3, 2]]
    assert links.attrs["rejects"][["set", "id", "reason"]].values.tolist() == [["alignset", 2, "not a number"]]


@pytest.mark.parametrize("key, value, message", [
    ("threshold", "nan", "threshold: must be at least 0"),
    ("threshold", "-1", "threshold: must be at least 0"),
    ("max_task_pairs", "-1", "max_task_pairs: must be at least 1"),
    ("max_block_pairs", "-1", "max_block_pairs: must be at least 1"),
])
def test_values_that_cannot_work_are_refused_by_validate(tmp_path, key, value, message):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    job.write_text(f"{key} = {value}\n" + job.read_text().replace("threshold = 1.0\n", "threshold = 1.0\n"
                                                                   if key != "threshold" else ""))
    result = run_cli("validate", job, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("edit, message", [
    (('metric = "exact"', 'metric = "exact"\nweight = inf'), "'weight' must be a positive finite number"),
    (('metric = "exact"', 'metric = "exact"\nmissing = nan'), "missing: must be a number, got nan"),
    (('path = "out/links.csv"', 'path = "out"'), "output.path: "),
    (('path = "out/links.csv"', 'path = "a.csv/links.csv"'), "output.path: cannot write under"),
    (('format = "csv"', 'format = "parquet"'), "output.format: is 'parquet' but the output"),
    (('format = "csv"', 'format = "csv"\n[cluster]\nthreads = 0'), "cluster.threads: must be at least 1"),
    (('format = "csv"', 'format = "csv"\n[cluster]\nmemory_limit = "lots"'), "cluster.memory_limit: must be a size"),
    (('format = "csv"', 'format = "csv"\n[cluster]\ntls_cert = "c.pem"\ntls_key = "k.pem"'),
     "TLS needs tls_ca_file, tls_cert and tls_key together"),
    (('format = "csv"', 'format = "csv"\n[cluster]\nscheduler = "tls://127.0.0.1:1"'), "a tls:// scheduler needs"),
])
def test_settings_that_cannot_work_are_refused_by_validate(tmp_path, edit, message):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    (tmp_path / "out").mkdir()
    job.write_text(job.read_text().replace(*edit, 1))
    result = run_cli("validate", job, check=False)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_cluster_and_file_mistakes_are_one_line_each(tmp_path):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    import socket
    import threading

    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    # a web server (as the dashboard's port would be) answering where a scheduler is expected
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        http_port = int(line.split("port ")[1].split()[0])
        cases = [(["--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2"], "cannot reach a Dask scheduler"),
                 (["--scheduler", f"tcp://127.0.0.1:{http_port}", "--connect-timeout", "3"], "127.0.0.1"),
                 (["--scheduler", "missing-scheduler.json"], "no such scheduler file")]
        for args, message in cases:
            result = run_cli("run", job, *args, cwd=tmp_path, check=False)
            assert result.returncode == 2 and message in result.stderr, result.stderr
            assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    finally:
        server.kill()
    for args, message in [(["evaluate", "nope.csv", "truth.csv"], "nope.csv"),
                          (["report", "nowhere"], "nowhere: not the directory of a finished run"),
                          (["validate", str(tmp_path)], "is a directory, not a job file")]:
        result = run_cli(*args, cwd=tmp_path, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_cli("run", job, "--scheduler", scheduler, "--output", "mine.csv", cwd=elsewhere)
    assert len(pd.read_csv(elsewhere / "mine.csv")) == 3 and not (tmp_path / "mine.csv").exists()
    result = run_cli("run", job, "--scheduler", scheduler, "--output", "mine.parquet", cwd=elsewhere, check=False)
    assert result.returncode == 2 and "output.format: is 'csv' but the output" in result.stderr


def test_links_go_to_an_object_store_through_fsspec(tmp_path, client):
    from bigalign.runner import run_job

    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    job.write_text(job.read_text().replace('path = "out/links.csv"', 'path = "memory://bucket/links.csv"\n'
                                                                      'run_dir = "out"'))
    run_job(load_job(str(job)), client=client, show_progress=False)
    with fsspec.open("memory://bucket/links.csv", "r") as f:
        assert len(pd.read_csv(f)) == 3
    assert (tmp_path / "out/report.html").exists() and not (tmp_path / "memory:").exists()
    job.write_text(job.read_text().replace("memory://", "s3://"))
    with pytest.raises(Exception, match="s3fs|s3"):
        run_job(load_job(str(job)), client=client, show_progress=False)


def test_raw_records_are_for_the_user_only(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD + ["9,Zo,31/02/1991,1,1"], GOOD, TREATMENTS)
    old = os.umask(0o002)
    try:
        run_cli("run", job, "--scheduler", scheduler)
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert stat.S_IMODE((out / "staging").stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "rejects.csv").stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (out / "staging").iterdir())
    assert stat.S_IMODE((out / "links.csv").stat().st_mode) == 0o664
