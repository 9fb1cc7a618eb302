"""The command line as a user drives it: subprocesses, a real cluster, real files."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bigalign.evaluate import link_quality
from bigalign.jobs import load_job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
BIGALIGN = [sys.executable, "-m", "bigalign"]


def bigalign(*args, cwd=ROOT, check=True):
    result = subprocess.run(BIGALIGN + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def scheduler(client):
    return client.scheduler.address


def test_goncourt_job_links_winners_to_their_uris(tmp_path, scheduler):
    out = tmp_path / "goncourt.nt"
    result = bigalign("run", "jobs/goncourt_offline.toml", "--scheduler", scheduler, "--output", out)
    assert "links written: 50" in result.stdout
    triples = out.read_text().splitlines()
    assert len(triples) == 50
    same_as = "<http://www.w3.org/2002/07/owl#sameAs>"
    assert (f"<http://example.org/goncourt/Marcel%20Proust> {same_as} "
            "<http://fr.dbpedia.org/resource/Marcel_Proust> .") in triples
    assert (f"<http://example.org/goncourt/J%C3%A9r%C3%B4me%20et%20Jean%20Tharaud> {same_as} "
            "<http://fr.dbpedia.org/resource/J%C3%A9r%C3%B4me_Tharaud> .") in triples


def test_run_starts_its_own_local_cluster_or_none_for_small_inputs(tmp_path):
    result = bigalign("run", "jobs/cities_offline.toml", "--output", tmp_path / "cities.csv")
    assert "no cluster: Dask's threads in this process" in result.stderr and "dashboard at" not in result.stderr
    assert "F1 1.0000" in result.stdout and len(pd.read_csv(tmp_path / "cities.csv")) == 46
    # Written under a temporary name, then given the umask's permissions (not mkstemp's 0600).
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "cities.csv").stat().st_mode & 0o777 == 0o666 & ~mask
    job = small_person_job(tmp_path, n=1000)
    alone = bigalign("run", job)
    links = pd.read_parquet(tmp_path / "links.parquet")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dashboard"] == "" and summary["memory"]["align"] > 0
    for processes in ("true", "false"):  # a local cluster of worker processes, or one in this process
        job.write_text(job.read_text().split("\n[cluster]")[0] + f"\n[cluster]\nworkers = 2\nprocesses = {processes}\n")
        result = bigalign("run", job)
        assert "dashboard at http://127.0.0.1:" in result.stderr
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "links.parquet"), links)
        assert result.stdout.split("time:")[0] == alone.stdout.split("time:")[0]


def test_what_runs_a_job_that_names_no_scheduler(tmp_path, monkeypatch):
    """No cluster for small inputs, unless the job asks for one or for Dask's performance report;
    worker processes above the cut, which shrinks as cores grow."""
    import dataclasses

    from bigalign import runner
    from bigalign.jobs import check_inputs

    job = load_job(str(small_person_job(tmp_path, n=500)))
    runner.generate_inputs(job)
    files = check_inputs(job)
    assert runner.local_cluster(job, files) == "none"
    for processes, kind in ((True, "processes"), (False, "threads")):
        asked = dataclasses.replace(job, cluster=dataclasses.replace(job.cluster, processes=processes))
        assert runner.local_cluster(asked, files) == kind
    reported = dataclasses.replace(job, output=dataclasses.replace(job.output, dask_report=True))
    assert runner.local_cluster(reported, files) == "processes"
    size = sum(os.path.getsize(p) for paths in files.values() for p in paths)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runner, "NO_CLUSTER_BYTES", size + 1)
    assert runner.local_cluster(job, files) == "none"
    monkeypatch.setattr(os, "cpu_count", lambda: 8)  # (the cut divided by cores − 1)
    assert runner.local_cluster(job, files) == "processes"


def test_cities_job_with_geographical_neighbourhoods(tmp_path, scheduler):
    out = tmp_path / "cities.csv"
    result = bigalign("run", "jobs/cities_offline.toml", "--scheduler", scheduler, "--output", out)
    assert "precision 1.0000, recall 1.0000, F1 1.0000" in result.stdout
    links = pd.read_csv(out)
    truth = pd.read_csv(ROOT / "jobs/data/cities_truth.csv")
    assert link_quality(links, truth).f1 == 1.0
    evaluated = bigalign("evaluate", out, ROOT / "jobs/data/cities_truth.csv")
    assert "f1: 1.0000" in evaluated.stdout and "true_positives: 46" in evaluated.stdout


def demo_text(directory, n, learned=False):
    """jobs/demo_keys.toml (the demo, its keys written) on ``n`` records written in ``directory``, on the
    test's cluster; with the weighted distance (threshold 3.5) unless ``learned``."""
    text = (ROOT / "jobs/demo_keys.toml").read_text()
    text = text.replace("n = 50000", f"n = {n}").replace("../out/demo/", str(directory) + "/")
    text = text.replace("[cluster]\nworkers = 2", "")
    if not learned:
        text = text.replace('threshold = "auto"', "threshold = 3.5").replace('[model]\nkind = "fellegi-sunter"\n', "")
    return text


def small_person_job(tmp_path, n=3000, learned=False, **extra):
    text = demo_text(tmp_path, n, learned)
    for key, value in extra.items():
        text = text.replace(f"\n{key} = ", f"\n{key} = {value}\n#")
    job = tmp_path / "people.toml"
    job.write_text(text)
    return job


def test_validate_plan_run_and_evaluate_a_person_job(tmp_path, scheduler):
    job = small_person_job(tmp_path)
    validated = bigalign("validate", job)
    assert validated.stdout.strip().endswith("valid")
    plan = bigalign("plan", job, "--scheduler", scheduler)
    assert "candidate pairs:" in plan.stdout and "estimate for the full run on 2 worker(s)" in plan.stdout
    # a job this small runs without a cluster, and its plan says so
    assert "estimate for the full run in this process, without a cluster" in bigalign("plan", job).stdout
    figures = json.loads((tmp_path / "candidates.json").read_text())
    # the demo's blocking keeps ≥ 99% of the true pairs with < 0.1% of the cross product
    assert figures["pair_completeness"] >= 0.99 and figures["candidate_pairs"] > 0
    assert figures["reduction_ratio"] > 0.999
    # and without labels, on the likely matches kind = "auto" chooses on (the same with a cluster or not); with
    # the weighted distance, whose links through the wide net include records' best wrong pairs under 3.5, an
    # estimate under the truth (a learned model's, within 0.01: test_auto_blocking.py)
    estimated = figures["estimated_pair_completeness"]
    assert figures["pair_completeness"] - 0.03 <= estimated["value"] <= figures["pair_completeness"] + 0.002
    assert f"estimated pair completeness: {estimated['value']:.4f}, without labels" in plan.stdout
    assert estimated["likely_matches"] > 1000
    assert not (tmp_path / "links.parquet").exists()
    run = bigalign("run", job, "--scheduler", scheduler)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["blocking"]["candidate_pairs"] == figures["candidate_pairs"]
    assert summary["records"]["alignset"] == {"files": 1, "read": 3000, "kept": 3000, "rejected": 0,
                                              "rejected_by_reason": {}}
    assert summary["quality"]["f1"] >= 0.98
    assert f"F1 {summary['quality']['f1']:.4f}" in run.stdout
    assert (tmp_path / "dask-report.html").stat().st_size > 10_000
    links = pd.read_parquet(tmp_path / "links.parquet")
    assert len(links) == summary["links"] and list(links.columns) == ["align_id", "target_id", "distance"]
    evaluated = bigalign("evaluate", tmp_path / "links.parquet", tmp_path / "truth.csv", "--job", job)
    assert f"f1: {summary['quality']['f1']:.4f}" in evaluated.stdout
    assert f"pair_completeness: {figures['pair_completeness']:.4f}" in evaluated.stdout
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def write_job(tmp_path, a_rows, b_rows, treatments, header="id,name,dob,lat,lon", threshold="1.0",
              blocking='kind = "key"\ncolumns = "name"'):
    (tmp_path / "a.csv").write_bytes(("\n".join([header] + a_rows) + "\n").encode() if isinstance(a_rows[0], str)
                                     else b"\n".join([header.encode()] + a_rows) + b"\n")
    (tmp_path / "b.csv").write_text("\n".join([header] + b_rows) + "\n")
    job = tmp_path / "job.toml"
    job.write_text(textwrap.dedent(f"""\
        threshold = {threshold}
        [alignset]
        path = "a.csv"
        [targetset]
        path = "b.csv"
        {treatments}
        [blocking]
        {blocking}
        [output]
        path = "out/links.csv"
        format = "csv"
        """))
    return job


GOOD = ["1,Ann,14/08/1991,48.85,2.35", "2,Bob,01/01/1990,45.76,4.83", "3,Cy,02/02/1992,43.30,5.37"]
TREATMENTS = '[[treatments]]\ncolumn = "name"\nmetric = "exact"\n' \
             '[[treatments]]\ncolumn = "dob"\nmetric = "temporal"\nnormalized = true\nscale = 365\n' \
             '[[treatments]]\ncolumn = ["lat", "lon"]\nmetric = "geographical"\nunits = "km"\nnormalized = true\n' \
             'scale = 100\n'


def run_rejecting(tmp_path, scheduler, a_rows):
    job = write_job(tmp_path, a_rows, GOOD, TREATMENTS)
    result = bigalign("run", job, "--scheduler", scheduler)
    rejects = pd.read_csv(tmp_path / "out/rejects.csv", dtype=str)
    return result, rejects


def test_only_the_columns_a_job_reads_are_staged(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD, GOOD, '[[treatments]]\ncolumn = "dob"\nmetric = "temporal"\n',
                    threshold="0", blocking='kind = "key"\ncolumns = "name"')
    assert "links written: 3" in bigalign("run", job, "--scheduler", scheduler).stdout
    staged = pd.read_parquet(tmp_path / "out/staging/alignset-00000.parquet")
    assert list(staged.columns) == ["id", "name", "dob", "_file", "_row"]


def test_malformed_csv_row_is_rejected_with_its_row(tmp_path, scheduler):
    result, rejects = run_rejecting(tmp_path, scheduler, GOOD[:1] + ["2,Bob,01/01/1990,45.76,4.83,extra"] + GOOD[2:])
    assert "alignset: 3 rows read, 2 kept, 1 rejected (1 malformed row)" in result.stdout
    assert rejects.loc[0, "row"] == "3" and rejects.loc[0, "file"].endswith("a.csv")
    assert "6 fields, expected 5" in rejects.loc[0, "reason"]
    assert "links written: 2" in result.stdout


def test_undecodable_bytes_are_rejected_with_row_and_column(tmp_path, scheduler):
    rows = [GOOD[0].encode(), "2,B".encode() + b"\xff\xfe" + b"b,01/01/1990,45.76,4.83", GOOD[2].encode()]
    job = write_job(tmp_path, rows, GOOD, TREATMENTS)
    result = bigalign("run", job, "--scheduler", scheduler)
    rejects = pd.read_csv(tmp_path / "out/rejects.csv", dtype=str)
    assert rejects[["row", "column"]].values.tolist() == [["3", "name"]]
    assert "not utf-8" in rejects.loc[0, "reason"]
    assert "1 rejected" in result.stdout


def test_unparsable_dates_and_bad_coordinates_are_rejected(tmp_path, scheduler):
    result, rejects = run_rejecting(tmp_path, scheduler, [GOOD[0], "2,Bob,31/02/1990,45.76,4.83",
                                                           "3,Cy,02/02/1992,95.0,5.37"])
    assert rejects[["row", "column", "reason"]].values.tolist() == [
        ["3", "dob", "unparsable date"], ["4", "lat, lon", "coordinates out of range"]]
    assert rejects.loc[0, "value"] == "31/02/1990"
    assert "alignset: 3 rows read, 1 kept, 2 rejected (1 unparsable date, 1 coordinates out of range)" in result.stdout


def failing(tmp_path, scheduler, job, *args):
    result = bigalign("run", job, "--scheduler", scheduler, *args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out/links.csv").exists()
    return result.stderr


def test_missing_file_and_unknown_column_are_named(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS)
    (tmp_path / "b.csv").unlink()
    assert "targetset.path: no file matches" in failing(tmp_path, scheduler, job)
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS.replace('column = "dob"', 'column = "birth"'))
    message = failing(tmp_path, scheduler, job)
    assert "a.csv: treatments[1]: column 'birth' not found" in message


def test_empty_set_and_duplicate_ids_are_errors(tmp_path, scheduler):
    job = write_job(tmp_path, ["1,Ann,31/02/1991,48.85,2.35"], GOOD, TREATMENTS)
    message = failing(tmp_path, scheduler, job)
    assert "alignset: no record left to align" in message and "1 rows rejected" in message
    job = write_job(tmp_path, GOOD + ["2,Bo,01/01/1990,45.76,4.83"], GOOD, TREATMENTS)
    message = failing(tmp_path, scheduler, job)
    assert "alignset: duplicate identifier '2' in column 'id'" in message
    assert "a.csv row 3" in message and "a.csv row 5" in message


def test_wrong_types_in_the_job_name_the_key(tmp_path, scheduler):
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS, threshold='"low"')
    assert "job.toml: threshold: must be a number, or 'auto' with a learned model, got 'low'" in failing(
        tmp_path, scheduler, job)
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS.replace('metric = "exact"', 'metric = "exact"\nweight = "2"'))
    assert "treatments[0].weight: must be int or float, got '2'" in failing(tmp_path, scheduler, job)
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS.replace('"exact"', '"levenstein"'))
    assert "treatments[0]: unknown metric 'levenstein'" in failing(tmp_path, scheduler, job)
    job = write_job(tmp_path, GOOD, GOOD, TREATMENTS,
                    blocking='kind = "minhash_lsh"\ncolumns = ["name"]\ntreshold = 0.4')
    assert "blocking.treshold: unknown key" in failing(tmp_path, scheduler, job)
    validated = bigalign("validate", job, check=False)
    assert validated.returncode == 2 and "blocking.treshold" in validated.stderr


def test_a_composite_key_in_a_job_file(tmp_path, scheduler):
    blocking = 'kind = "key"\ncolumns = ["name", "dob"]\ntransform = ["prefix:2", "date"]'
    job = write_job(tmp_path, GOOD, [r.replace("Ann", "Anne") for r in GOOD], TREATMENTS, threshold="1.5",
                    blocking=blocking)
    blocking = load_job(str(job)).alignment.blocking
    assert blocking.parts == ["name", "dob"] and blocking.transform == ["prefix:2", "date"]
    bigalign("run", job, "--scheduler", scheduler)
    links = pd.read_csv(tmp_path / "out/links.csv", dtype=str)
    # "Ann" and "Anne" share the key (first two letters, same date) and are 1 apart
    assert links[["align_id", "target_id"]].values.tolist() == [["1", "1"], ["2", "2"], ["3", "3"]]


def test_a_job_without_blocking_compares_every_pair(tmp_path, scheduler):
    """No [blocking]: the cross product, scored as bigalign.align scores it in memory, on a cluster in the run's
    own process (small inputs) and on worker processes alike; too many pairs: refused before any is formed."""
    from bigalign import align

    job = small_person_job(tmp_path, n=1200)
    text = job.read_text()
    text = text[:text.index("[blocking]")] + text[text.index("[output]"):]
    job.write_text(text)
    threads = bigalign("run", job)  # (small inputs: threads in the run's process)
    assert "pair completeness of the blocking: 1.0000" in threads.stdout
    in_process = pd.read_parquet(tmp_path / "links.parquet")
    job.write_text(text + "\n[cluster]\nprocesses = true\n")
    bigalign("run", job)
    pd.testing.assert_frame_equal(in_process, pd.read_parquet(tmp_path / "links.parquet"))
    a = pd.read_csv(tmp_path / "people_a.csv", dtype=str, keep_default_na=False).replace("", None)
    b = pd.read_parquet(tmp_path / "people_b.parquet")
    expected = align(a, b, load_job(str(job)).alignment.treatments, 3.5, id_column="rec_id")
    pd.testing.assert_frame_equal(in_process, expected.astype({"align_id": in_process["align_id"].dtype,
                                                               "target_id": in_process["target_id"].dtype}))
    (tmp_path / "big").mkdir()
    big = small_person_job(tmp_path / "big", n=5000)
    text = big.read_text()
    big.write_text(text[:text.index("[blocking]")] + text[text.index("[output]"):])
    refused = failing(tmp_path / "big", scheduler, big)
    assert "no [blocking]: 5,000 × 5,000 records make 25,000,000 pairs" in refused
    assert f"bigalign plan {big}" in refused and not (tmp_path / "big" / "links.parquet").exists()


def test_staged_sets_are_read_in_partitions_of_whole_row_groups(tmp_path, monkeypatch):
    # two partitions per worker thread, more when the set is larger than their limit; every row read once
    from bigalign import staging

    frame = pd.DataFrame({"rec_id": [f"r{k}" for k in range(1000)], "v": range(1000)})
    paths = []
    for k in range(2):
        paths.append(str(tmp_path / f"part-{k}.parquet"))
        frame.iloc[500 * k:500 * (k + 1)].to_parquet(paths[-1], index=False, row_group_size=50)
    monkeypatch.setattr(staging, "MAX_PARTITION_ROWS", 100)
    many = staging.read_staged(paths, threads=2)
    assert many.npartitions == 10 and many.compute()["v"].tolist() == list(range(1000))
    monkeypatch.setattr(staging, "MAX_PARTITION_ROWS", 1_000_000)
    few = staging.read_staged(paths, threads=2)
    assert few.npartitions == 4 and few.compute()["v"].tolist() == list(range(1000))
