"""The defects found when bigalign was probed again as a careless user, a hostile neighbour and an operator.

Each test is the regression test of one: through the command line or the public API, on a real cluster
where one is involved (the web application's are in ``test_app_hostile.py``, the database's in
``test_sql.py``, the endpoints' in ``test_sparql.py``).
"""

import os
import re
import socket
import subprocess
import sys

import dask
import pandas as pd
import pytest
from test_cli import GOOD, TREATMENTS, bigalign, demo_text, write_job

import bigalign as ba
from bigalign.datasets import person_records
from bigalign.errors import ClusterError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scheduler(client):
    return client.scheduler.address


def _unrelated_demo(tmp_path, n=4000):
    """The demo job, learned with ``threshold = "auto"``, on two sets of different people."""
    person_records(n, seed=11).alignset.to_csv(tmp_path / "people_a.csv", index=False)
    person_records(n, seed=12).targetset.to_parquet(tmp_path / "people_b.parquet", index=False)
    text = demo_text(tmp_path, n, learned=True)
    text = text.replace("[generate]", "[unused]").replace(f'truth = "{tmp_path}/truth.csv"\n', "")
    text = text.replace("[unused]\nkind = \"person_records\"\n", "").replace(f"n = {n}\nseed = 0\n", "")
    job = tmp_path / "job.toml"
    job.write_text(text)
    return job


def test_an_automatic_threshold_invents_no_link_between_unrelated_sets(tmp_path, scheduler):
    job = _unrelated_demo(tmp_path)
    for where in ((), ("--scheduler", scheduler)):
        result = bigalign("run", job, *where)
        links = pd.read_parquet(tmp_path / "links.parquet")
        assert (links["match_probability"] >= 0.5).all() and len(links) <= 2
        assert "links at match probability ≥ 0.5 (chosen as the best F1 the model expects)" in result.stdout
        assert "the model found almost no matches" in result.stdout
        assert "RuntimeWarning" not in result.stderr


def test_zero_candidates_with_the_learned_model_are_zero_links_and_a_report(tmp_path, scheduler):
    job = _unrelated_demo(tmp_path, 1000)
    text = job.read_text()
    text = text[:text.index("[blocking]")] + '[blocking]\nkind = "key"\ncolumns = "rec_id"\n' + \
        text[text.index("# What agreeing"):]
    job.write_text(text)
    for where in ((), ("--scheduler", scheduler)):
        result = bigalign("run", job, *where)
        assert "candidate pairs: 0" in result.stdout and "links written: 0" in result.stdout
        assert "no candidate pairs: no block holds records of both sides" in result.stdout
        assert (tmp_path / "report.html").exists()
        plan = bigalign("plan", job, *where)
        assert "candidate pairs: 0" in plan.stdout


@pytest.mark.parametrize("edit, key, what", [
    (('path = "out/links.csv"', 'path = "a.csv"'), "output.path", "a file of the alignset"),
    (('path = "out/links.csv"', 'path = "b.csv"'), "output.path", "a file of the targetset"),
    (('path = "out/links.csv"', 'path = "job.toml"'), "output.path", "the job file"),
    (('path = "out/links.csv"', 'path = "out/links.csv"\nrun_dir = "."\n[clusters]\npath = "truth.csv"'),
     "clusters.path", "the truth"),
    (('path = "out/links.csv"', 'path = "out/summary.json"'), "output.path", "is where the run writes its own"),
])
def test_an_output_that_is_an_input_is_refused(tmp_path, edit, key, what):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    (tmp_path / "truth.csv").write_text("align_id,target_id\n1,1\n")
    job.write_text(job.read_text().replace(*edit).replace("threshold = 1.0", 'threshold = 1.0\ntruth = "truth.csv"'))
    before = {name: (tmp_path / name).read_bytes() for name in ("a.csv", "b.csv", "job.toml", "truth.csv")}
    for command in ("validate", "run"):
        result = bigalign(command, job, check=False)
        assert result.returncode == 2 and f"{key}: " in result.stderr and what in result.stderr, result.stderr
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_one_block_too_large_to_pair_stops_the_plan_and_the_run_before_any_pair(tmp_path, scheduler):
    rows = [f"{i},n{i},01/01/1990,48.85,2.35" for i in range(5000)]
    job = write_job(tmp_path, rows, rows, '[[treatments]]\ncolumn = "name"\nmetric = "levenshtein"\n',
                    blocking='kind = "union"\n[[blocking.of]]\nkind = "key"\ncolumns = "name"\n'
                             '[[blocking.of]]\nkind = "key"\ncolumns = "lat"')
    for command, where in (("plan", ()), ("run", ()), ("run", ("--scheduler", scheduler))):
        result = bigalign(command, job, *where, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert ("one block of blocking.of[1] (KeyBlocking(parts=['lat'], transform=[None], "
                "normalizers=[lunormalize()])) holds 5,000 × 5,000 records: 25,000,000 pairs, over the "
                "20,000,000") in result.stderr
    job.write_text(job.read_text().replace("threshold = 1.0", "threshold = 1.0\nmax_block_pairs = 100000"))
    result = bigalign("run", job)
    assert "excluded blocks: 1 (25000000 pairs)" in result.stdout and "links written: 5000" in result.stdout


@pytest.mark.parametrize("interrupt_seen", [True, False])
def test_workers_paused_with_nothing_running_stop_the_run_with_the_reason(monkeypatch, interrupt_seen):
    """A worker paused by its memory monitor keeps the tasks it was given: the others idle, for ever. The
    watch interrupts the wait and cancels what it waits on: where the interrupt is not seen (a flag the
    main thread reads only when it runs Python), the cancellation ends the wait."""
    from distributed import Client, LocalCluster
    from distributed.core import Status

    import bigalign.cluster

    monkeypatch.setattr(bigalign.cluster, "PAUSED_SECONDS", 3.0)
    if not interrupt_seen:
        monkeypatch.setattr(bigalign.cluster._thread, "interrupt_main", lambda: None)
    people = person_records(3000, seed=1)
    # (the memory monitor would resume it at once: the process uses little memory)
    with dask.config.set({"distributed.worker.memory.pause": False}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=":0") as cluster, Client(cluster) as client:

        def pause(dask_worker):
            dask_worker.status = Status.paused  # (what the memory monitor does over its pause threshold)

        client.run(pause)
        with pytest.raises(ClusterError, match=r"1 of 1 workers paused over their memory's pause threshold "
                                               r"\(memory limit [\d,]+ MiB\) and nothing running for 3 s"):
            ba.align(people.alignset, people.targetset, [ba.Treatment("surname", "levenshtein")], 1,
                     blocking=ba.blocking.KeyBlocking("postcode"), client=client, id_column="rec_id")


def test_a_memory_limit_too_small_for_a_worker_is_refused(tmp_path):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    job.write_text(job.read_text() + '[cluster]\nmemory_limit = "300MB"\n')
    result = bigalign("validate", job, check=False)
    assert result.returncode == 2 and "cluster.memory_limit: '300MB' is too little for a worker" in result.stderr


def test_user_code_that_fails_is_named_with_its_values(tmp_path):
    job = write_job(tmp_path, GOOD, GOOD, '[[treatments]]\ncolumn = "name"\nmetric = "os:system"\n')
    result = bigalign("run", job, "--allow-module", "os", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"the metric 'system' failed on '(Ann|Bob|Cy)' and '\1': TypeError: system\(\) takes at most "
                     r"1 argument \(2 given\)", result.stderr)  # (whichever pair a thread scores first)
    job = write_job(tmp_path, GOOD, GOOD, '[[treatments]]\ncolumn = "name"\nmetric = "exact"\n'
                                          'normalizers = ["os:getcwd"]\n')
    result = bigalign("run", job, "--allow-module", "os", check=False)
    assert result.returncode == 2 and re.search(r"the normalizer 'getcwd' failed on '(Ann|Bob|Cy)': TypeError",
                                                result.stderr)


def test_a_report_whose_only_treatment_has_no_value(tmp_path):
    rows = ["1,Ann,,48.85,2.35", "2,Bob,,45.76,4.83"]
    job = write_job(tmp_path, rows, rows, '[[treatments]]\ncolumn = "dob"\nmetric = "levenshtein"\n',
                    blocking='kind = "key"\ncolumns = "lat"')
    result = bigalign("run", job)
    assert "links written: 0" in result.stdout
    assert "Candidates nearest the threshold" in (tmp_path / "out/report.html").read_text()


def test_what_a_killed_write_left_is_removed_by_the_next(tmp_path):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    out = tmp_path / "out"
    out.mkdir()
    left = [out / f".links.csv.{host}-{dead.pid}.x1y2.tmp", out / f".summary.json.{host}-{dead.pid}.k.tmp"]
    kept = [out / f".links.csv.{host}-{os.getpid()}.live.tmp", out / f".links.csv.otherhost-{dead.pid}.z.tmp"]
    for path in left + kept:
        path.write_bytes(b"x" * 1000)
    bigalign("run", job)
    assert not any(p.exists() for p in left) and all(p.exists() for p in kept)
    assert (out / "links.csv").exists()


def test_explicit_workers_start_a_cluster_and_the_dask_report_opens_offline(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(demo_text(tmp_path, 500).replace("[output]\n", "[output]\ndask_report = true\n"))
    result = bigalign("run", job, "--workers", "1")
    assert "Dask dashboard at http://127.0.0.1:" in result.stderr and "no cluster" not in result.stderr
    report = (tmp_path / "dask-report.html").read_text()
    assert "cdn.bokeh.org" not in report and "Bokeh" in report and len(report) > 500_000
    job.write_text(demo_text(tmp_path, 500))
    assert "no cluster" in bigalign("run", job).stderr
    assert "Dask dashboard at http://127.0.0.1:" in bigalign("run", job, "--dashboard").stderr
