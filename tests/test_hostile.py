"""bigalign probed as careless users, hostile users and operators of shared clusters would.

Each test is the regression test of one defect: it goes through the command
line or the public API, on a real cluster where one is involved.
"""

import importlib.util
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
from test_cli import BIGALIGN, GOOD, ROOT, TREATMENTS, failing, small_person_job, write_job
from test_cli import bigalign as run_cli
from test_distances import lev

import bigalign
from bigalign import Treatment
from bigalign.errors import RecordError
from bigalign.io import InputError
from bigalign.jobs import JobError, load_job

pytestmark = pytest.mark.integration


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
    treatments = TREATMENTS.replace('metric = "exact"', 'metric = "mymetrics:first_letter"', 1)
    job = write_job(tmp_path, GOOD, GOOD, treatments)
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
    text = "\n".join(line for line in job.read_text().splitlines()
                     if line.strip() not in ("[targetset]", 'path = "b.csv"'))
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
    strict = TREATMENTS.replace('units = "km"', 'units = "km"\ninvalid = "error"')
    job = write_job(tmp_path / "strict", rows, GOOD, strict)
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
    assert [(r["set"], r["id"], r["reason"]) for r in links.attrs["rejects"]] == [("alignset", 2, "not a number")]
    assert "rejects" not in bigalign.align(b, b.copy(), [Treatment(("lat", "lon"), "geographical")], 10).attrs


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
        # a service that speaks first, but not Dask's protocol (Dask's client would try to allocate exabytes)
        chatty = socket.socket()
        chatty.bind(("127.0.0.1", 0))
        chatty.listen()

        def banner():
            for _ in range(2):
                connection, _ = chatty.accept()
                connection.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n")
                connection.close()

        threading.Thread(target=banner, daemon=True).start()
        cases = [(["--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2"],
                  "cannot reach a Dask scheduler"),
                 (["--scheduler", f"tcp://127.0.0.1:{http_port}", "--connect-timeout", "3"],
                  "did not answer as a Dask scheduler within 3 s"),
                 (["--scheduler", f"tcp://127.0.0.1:{chatty.getsockname()[1]}"],
                  "answered, but not as a Dask scheduler"),
                 (["--scheduler", "tls://127.0.0.1:8786"], "a tls:// scheduler needs tls_ca_file, tls_cert"),
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
    if importlib.util.find_spec("s3fs") is None:  # the missing backend is named
        with pytest.raises(InputError, match=r"s3://bucket/links.csv: this kind of URL needs the package s3fs: "
                                             r"pip install 'bigalign\[s3\]' \(or pip install s3fs\)"):
            run_job(load_job(str(job)), client=client, show_progress=False)


def test_inputs_and_outputs_under_urls_round_trip_through_fsspec(tmp_path):
    """Both sets read from an object store (fsspec's in-memory one: workers as threads of this
    process share it), the links and clusters written back there."""
    from bigalign.runner import run_job

    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    for name in ("a.csv", "b.csv"):
        with fsspec.open(f"memory://inputs/{name}", "wb") as f:
            f.write((tmp_path / name).read_bytes())
        (tmp_path / name).unlink()
    job.write_text(job.read_text().replace('path = "a.csv"', 'path = "memory://inputs/a*.csv"')
                   .replace('path = "b.csv"', 'path = "memory://inputs/b.csv"')
                   .replace('path = "out/links.csv"', 'path = "memory://outputs/links.csv"\nrun_dir = "out"')
                   + '[clusters]\npath = "memory://outputs/clusters.parquet"\n[cluster]\nprocesses = false\n')
    summary = run_job(load_job(str(job)), show_progress=False)
    assert summary.records["alignset"]["read"] == 3 and summary.links == 3
    with fsspec.open("memory://outputs/links.csv", "r") as f:
        links = pd.read_csv(f)
    with fsspec.open("memory://outputs/clusters.parquet", "rb") as f:
        clusters = pd.read_parquet(f)
    assert sorted(zip(links["align_id"], links["target_id"])) == [(1, 1), (2, 2), (3, 3)]
    assert len(clusters) == 6 and clusters["cluster_id"].nunique() == 3
    assert not (tmp_path / "memory:").exists()


def test_a_script_without_a_main_guard_aligns_few_records_and_is_told_what_to_do_with_many(tmp_path):
    (tmp_path / "script.py").write_text(textwrap.dedent("""\
        import sys

        import pandas as pd
        import bigalign
        import bigalign.cluster
        from bigalign.blocking import KeyBlocking

        if sys.argv[1] == "many":  # (no record under the cut: as inputs too large to align without a cluster)
            bigalign.cluster.NO_CLUSTER_RECORDS = 0
        a = pd.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
        print(bigalign.align(a, a.copy(), {"name": {"metric": "exact"}}, threshold=0, blocking=KeyBlocking("name")))
        """))
    few = subprocess.run([sys.executable, "script.py", "few"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert few.returncode == 0  # (no cluster: nothing started, nothing imported the script again)
    assert few.stdout.split() == ["align_id", "target_id", "distance", "0", "1", "1", "0.0", "1", "2", "2", "0.0"]
    many = subprocess.run([sys.executable, "script.py", "many"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert many.returncode != 0
    assert "ClusterError: could not start a local cluster" in many.stderr
    assert "if __name__ == \"__main__\":" in many.stderr


def test_the_library_prints_nothing(client, capfd):
    from bigalign.blocking import KeyBlocking

    a = pd.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
    links = bigalign.align(a, a.copy(), {"name": {"metric": "exact"}}, threshold=0, blocking=KeyBlocking("name"),
                           client=client)
    assert len(links) == 2
    out, err = capfd.readouterr()
    assert out == "" and "dashboard" not in err


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


def test_a_sparse_column_does_not_wreck_a_deduplication():
    rng = np.random.default_rng(0)
    names = ["anna", "boris", "chloe", "denis", "emma", "felix", "gina", "hugo", "iris", "jules"]
    rows, truth = [], []
    for k in range(40):
        name = f"{names[k % 10]} {names[(k * 7 + 3) % 10]}son"
        middle = "marie" if k % 10 == 0 else None  # mostly empty, as second given names are
        dob = f"{1 + k % 28:02d}/{1 + k % 12:02d}/19{50 + k}"
        rows.append([f"r{k}a", name, middle, dob])
        typo = name[:3] + name[4:] if rng.random() < 0.5 else name
        rows.append([f"r{k}b", typo, middle, dob])
        truth.append((f"r{k}a", f"r{k}b"))
    people = pd.DataFrame(rows, columns=["id", "name", "middle_name", "dob"])
    treatments = [Treatment("name", "levenshtein", normalized=True),
                  Treatment("middle_name", "levenshtein", normalized=True),
                  Treatment("dob", "temporal", normalized=True, scale=365)]
    links = bigalign.align(people, people, treatments, threshold=0.3, uniq=False)
    assert sorted(map(tuple, links[["align_id", "target_id"]].values.tolist())) == sorted(truth)
    # the distance of a pair without a middle name is that of the attributes both hold, on the full scale
    for k in (0, 1, 2):
        a, b = people.iloc[2 * k], people.iloc[2 * k + 1]
        name = lev(a["name"], b["name"]) / max(len(a["name"]), len(b["name"]))
        expected = name if k == 0 else name * 3 / 2  # r0 holds a middle name (equal), r1 and r2 do not
        distance = links.loc[links["align_id"] == a["id"], "distance"].iloc[0]
        assert distance == pytest.approx(expected, rel=1e-6)
    # Nazca's rule on demand: a missing value at a fixed distance
    strict = [Treatment("middle_name", "levenshtein", normalized=True, missing=1)] + treatments[::2]
    assert len(bigalign.align(people, people, strict, threshold=0.3, uniq=False)) == 4


def test_a_treatment_names_a_column_per_set(tmp_path, scheduler):
    (tmp_path / "a.csv").write_text("id,name,mailing_street\n1,Ann,rue de la Paix\n2,Bob,avenue Foch\n")
    (tmp_path / "b.csv").write_text("id,name,street\n7,Ann,avenue Foch\n8,Ann,rue de la paix\n9,Bob,avenue Foch\n")
    job = tmp_path / "job.toml"
    job.write_text(textwrap.dedent("""\
        threshold = 0.5
        [alignset]
        path = "a.csv"
        [targetset]
        path = "b.csv"
        [[treatments]]
        column = { align = "mailing_street", target = "street" }
        normalizers = ["lunormalize"]
        metric = "levenshtein"
        [blocking]
        kind = "key"
        columns = "name"
        [output]
        path = "out/links.csv"
        """))
    run_cli("run", job, "--scheduler", scheduler)
    links = pd.read_csv(tmp_path / "out/links.csv")
    assert links[["align_id", "target_id"]].values.tolist() == [[1, 8], [2, 9]]
    # the API takes the same form
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    api = bigalign.align(a, b, [Treatment({"align": "mailing_street", "target": "street"}, "levenshtein",
                                          normalizers=["lunormalize"])], threshold=0.5)
    assert api[["align_id", "target_id"]].values.tolist() == [[1, 8], [2, 7]]  # (no blocking: 7 and 9 tie)
    bad = job.read_text().replace('target = "street"', 'target = "road"')
    job.write_text(bad)
    result = run_cli("validate", job, check=False)
    assert result.returncode == 2 and "b.csv: treatments[0]: column 'road' not found" in result.stderr


def test_inputs_that_deserve_a_clear_word(tmp_path, scheduler):
    # a byte order mark is not part of the id column's name; a NUL byte in an id rejects the row;
    # rows with undecodable bytes count as read
    rows = [b"\xef\xbb\xbfid,name,dob,lat,lon", GOOD[0].encode(), b"2\x00x,Bob,01/01/1990,45.76,4.83",
            b"3,C\xffy,02/02/1992,43.30,5.37", b"4,Di,02/02/1992,43.30,5.37"]
    job = write_job(tmp_path, [b""], GOOD, TREATMENTS)
    (tmp_path / "a.csv").write_bytes(b"\n".join(rows) + b"\n")
    result = run_cli("run", job, "--scheduler", scheduler)
    assert "alignset: 4 rows read, 2 kept, 2 rejected" in result.stdout
    rejects = pd.read_csv(tmp_path / "out/rejects.csv", dtype=str)
    assert sorted(rejects[["row", "column"]].values.tolist()) == [["3", "id"], ["4", "name"]]
    assert "identifier with a NUL byte" in rejects["reason"].tolist()
    # a header that names a column twice
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS, header="id,name,dob,lat,name")
    result = run_cli("validate", job, check=False)
    assert result.returncode == 2 and "a.csv: column 'name' appears 2 times in the header" in result.stderr
    # the files of a Parquet set disagree on a column's type
    (tmp_path / "parts").mkdir()
    frame = pd.DataFrame({"id": [1, 2], "name": ["Ann", "Bob"]})
    frame.to_parquet(tmp_path / "parts/1.parquet")
    frame.astype({"id": str}).to_parquet(tmp_path / "parts/2.parquet")
    job = write_job(tmp_path, GOOD, GOOD, '[[treatments]]\ncolumn = "name"\nmetric = "exact"\n')
    job.write_text(job.read_text().replace('path = "a.csv"', 'path = "parts/*.parquet"'))
    result = run_cli("validate", job, check=False)
    assert result.returncode == 2 and "alignset: column 'id' is int64 in" in result.stderr
    assert "1.parquet but " in result.stderr and "string in " in result.stderr and "2.parquet" in result.stderr


def test_rejected_rows_are_numbered_whatever_the_threads(tmp_path):
    from bigalign.io import SetSpec
    from bigalign.sources import FileSource

    lines = ["id,name,dob,lat,lon"] + [f"{i},N{i},01/01/1990,1,1" for i in range(1, 60001)]
    bad = {1000: "x,y", 45000: "a,b,c,d,e,f,g"}
    for number, text in bad.items():
        lines[number - 1] = text  # row `number` of the file (the header is row 1)
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    source = FileSource(SetSpec(name="alignset", path=str(tmp_path / "big.csv")))
    staged = source.stage(str(tmp_path / "big.csv"), 0, [], str(tmp_path))
    assert [r["row"] for r in staged.rejects] == sorted(bad)
    assert staged.rows_read == 60000 and staged.rows_kept == 59998


def test_a_metric_and_a_blocking_of_ones_own_named_in_a_job(tmp_path):
    """A Metric and a Blocking subclass from a module on the path, used as the built-ins are."""
    (tmp_path / "a.csv").write_text("id,name\n1,Robert\n2,Roberta\n3,Alice\n4,Bob\n")
    (tmp_path / "b.csv").write_text("id,name\n7,ROBin\n8,alison\n9,Zed\n")
    job = tmp_path / "job.toml"
    job.write_text(textwrap.dedent("""\
        threshold = 0
        uniq = false
        [alignset]
        path = "a.csv"
        [targetset]
        path = "b.csv"
        [[treatments]]
        column = "name"
        metric = "bigalign_plugins:FirstLetters"
        letters = 3
        [blocking]
        kind = "bigalign_plugins:ByInitial"
        column = "name"
        [output]
        path = "out/links.csv"
        """))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    refused = subprocess.run(BIGALIGN + ["validate", str(job)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--allow-module bigalign_plugins" in refused.stderr
    result = subprocess.run(BIGALIGN + ["run", str(job), "--allow-module", "bigalign_plugins", "--workers", "2"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    links = pd.read_csv(tmp_path / "out/links.csv")
    assert links[["align_id", "target_id"]].values.tolist() == [[1, 7], [2, 7], [3, 8]]
    loaded = load_job(str(job), allow_modules=["bigalign_plugins"])
    metric = loaded.alignment.treatments[0].metric
    assert type(metric).__name__ == "FirstLetters" and metric.letters == 3
    assert type(loaded.alignment.blocking).__name__ == "ByInitial"
    with pytest.raises(JobError, match=r"treatments\[0\]\.leters: unknown key"):
        job.write_text(job.read_text().replace("letters = 3", "leters = 3"))
        load_job(str(job), allow_modules=["bigalign_plugins"])
