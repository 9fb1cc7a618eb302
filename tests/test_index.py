"""An index of the targetset, and batches linked against it: the links a full run gives, byte for byte."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bigalign.datasets import person_records
from bigalign.errors import InputError, JobError
from bigalign.index import INDEX_FORMAT, Index, build_index, link_batch, store, update_index
from bigalign.index import batch as batch_module
from bigalign.jobs import load_job
from bigalign.pipeline.schema import record_keys
from bigalign.runner import run_job

# Whole builds and batches, a server: not the tier a developer runs on every change.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
# The demo job's treatments, blocking and model: the job a user indexes a register with.
DEMO = (ROOT / "jobs" / "demo_keys.toml").read_text()
TREATMENTS_AND_BLOCKING = DEMO[DEMO.index("# Names: word order free"):DEMO.index("# What agreeing at each level")]


def write_job(tmp_path: Path, alignset: str, learned: bool, explain: bool = False, extra: str = "") -> Path:
    threshold = '"auto"' if learned else "3.5"
    model = '[model]\nkind = "fellegi-sunter"\nseed = 1\n' if learned else ""
    job = tmp_path / "job.toml"
    job.write_text(f'threshold = {threshold}\n{extra}\n[alignset]\npath = "{alignset}"\nid = "rec_id"\n\n'
                   f'[targetset]\npath = "register.csv"\nid = "rec_id"\n\n{TREATMENTS_AND_BLOCKING}\n{model}\n'
                   f'[output]\npath = "out/links.parquet"\nexplain = {str(explain).lower()}\n')
    return job


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    data = person_records(3000, seed=21)
    data.targetset.to_csv(folder / "register.csv", index=False)
    data.alignset.to_csv(folder / "people.csv", index=False)
    data.alignset.iloc[:700].to_csv(folder / "batch.csv", index=False)
    return folder


def copy_inputs(people: Path, tmp_path: Path) -> None:
    for name in ("register.csv", "people.csv", "batch.csv"):
        (tmp_path / name).write_bytes((people / name).read_bytes())


def full_run(job_path: Path, alignset: str, tmp_path: Path) -> bytes:
    """The links of a full run of the job with ``alignset`` as its alignset."""
    job = load_job(str(job_path))
    job = dataclasses.replace(job, alignset=dataclasses.replace(job.alignset, path=str(tmp_path / alignset)),
                              output=dataclasses.replace(job.output, path=str(tmp_path / "full" / "links.parquet")))
    run_job(job, show_progress=False)
    return (tmp_path / "full" / "links.parquet").read_bytes()


def test_a_batch_gets_the_links_of_a_full_run(people, tmp_path, monkeypatch):
    """Weighted distance: a batch of 700 new records against an index of 3,000 gives the links a full
    run of 700 × 3,000 gives, byte for byte; and reads only the buckets of its keys."""
    monkeypatch.setattr(store, "ROWS_PER_BUCKET", 1000)  # (a few rows a bucket: many buckets)
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    manifest = build_index(load_job(str(job_path)), str(tmp_path / "index"))
    assert manifest["records"] == 3000 and manifest["layers"][0]["key_buckets"] > 10 and manifest["model"] is None
    summary = link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv"),
                         output=str(tmp_path / "batch" / "links.parquet"))
    batch = (tmp_path / "batch" / "links.parquet").read_bytes()
    assert batch == full_run(job_path, "batch.csv", tmp_path)
    assert 500 < summary.links <= 700 and summary.records["alignset"]["kept"] == 700
    read = summary.blocking["index"]["block_rows_read"]
    assert 0 < read < manifest["block_rows"] / 2  # (the rows of the batch's keys, not the index)
    report = (tmp_path / "batch" / "report.html").read_text()
    assert f"version 1: the batch's keys touched {read:,} of its block rows" in report
    # one record at a time, without a job nor a cluster: the same best target and distance as the batch's
    links = pd.read_parquet(tmp_path / "batch" / "links.parquet").set_index("align_id")
    records = pd.read_csv(tmp_path / "batch.csv", dtype=str, keep_default_na=False)
    index = Index.open(str(tmp_path / "index"))
    for _, record in records.iloc[:40].iterrows():
        found = index.match(record.to_dict(), k=3)
        assert len(found) <= 3 and (found["align_id"] == record["rec_id"]).all()  # (none: no shared key)
        assert found["distance"].is_monotonic_increasing
        assert "given_name+surname: distance" in found.columns or found.empty
        if record["rec_id"] in links.index:
            best = found.iloc[0]
            assert best["linked"] and best["target_id"] == links.loc[record["rec_id"], "target_id"]
            assert best["distance"] == links.loc[record["rec_id"], "distance"]
        else:
            assert not found["linked"].any()
    with pytest.raises(InputError, match=r"needs the columns \['address', 'date_of_birth'"):
        index.match({"given_name": "paul", "surname": "smith"})
    anonymous = index.match(records.iloc[:5].drop(columns="rec_id"), k=1)
    assert anonymous["align_id"].tolist() == ["0", "1", "2", "3", "4"][:len(anonymous)]


def bucket_files(index: Path, part: str = "keys") -> list[str]:
    return [str(f) for f in sorted(index.glob(f"v*/{part}/bucket=*/*.parquet"))]


def bucket_tables(index: Path) -> dict[str, pd.DataFrame]:
    """An index's bucket files, by bucket (each bucket one file)."""
    files = sorted(index.glob("v*/*/bucket=*/*.parquet"))
    assert len({f.parent for f in files}) == len(files) > 0
    return {str(f.parent.relative_to(index)).split("/", 1)[1]: pd.read_parquet(f) for f in files}


def test_a_batch_on_a_cluster_gets_the_links_it_gets_without_one(people, tmp_path, client):
    """An index built on a cluster holds the rows, in the order, of one built in this process, one file a
    bucket; the batch's records staged by the cluster's workers and read back by one of them: the same links,
    byte for byte, as in this process alone."""
    copy_inputs(people, tmp_path)
    register = pd.read_csv(tmp_path / "register.csv", dtype=str)
    for k in range(3):  # (a register in three files: a build of several partitions)
        register.iloc[k::3].to_csv(tmp_path / f"register-{k}.csv", index=False)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    job_path.write_text(job_path.read_text().replace('path = "register.csv"', 'path = "register-*.csv"'))
    build_index(load_job(str(job_path)), str(tmp_path / "index"), client=client)
    build_index(load_job(str(job_path)), str(tmp_path / "index-alone"))
    on_cluster, alone = bucket_tables(tmp_path / "index"), bucket_tables(tmp_path / "index-alone")
    assert on_cluster.keys() == alone.keys()
    for bucket, rows in on_cluster.items():
        pd.testing.assert_frame_equal(rows, alone[bucket], check_dtype=False)  # (text: pandas' str or string)
    links = {}
    for where, on in (("cluster", client), ("alone", None)):
        summary = link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv"),
                             client=on, output=str(tmp_path / where / "links.parquet"))
        links[where] = (tmp_path / where / "links.parquet").read_bytes()
        assert summary.records["alignset"]["kept"] == 700 and summary.links > 500
    assert links["cluster"] == links["alone"]


def test_a_few_records_read_a_few_row_groups(people, tmp_path, monkeypatch):
    """Each bucket file in row groups (here of 100 rows): a batch of 3 records reads only the groups whose
    hash range holds one of its keys — a small part of the index — and gets the links of a full run; its
    report says how much it read. A batch of 700 reads more. Lookups read and keep the groups their keys
    name, and find the rows of a key that span two groups."""
    monkeypatch.setattr(store, "ROWS_PER_GROUP", 100)
    copy_inputs(people, tmp_path)
    pd.read_csv(tmp_path / "batch.csv", dtype=str).iloc[:3].to_csv(tmp_path / "few.csv", index=False)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    build_index(load_job(str(job_path)), str(tmp_path / "index"))
    figures = {}
    for name in ("few", "batch"):
        summary = link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / f"{name}.csv"),
                             output=str(tmp_path / name / "links.parquet"))
        figures[name] = summary.blocking["index"]
    few = figures["few"]
    assert 0 < few["bytes_read"] < few["bytes"] / 10 and figures["batch"]["bytes_read"] > 5 * few["bytes_read"]
    assert (tmp_path / "few" / "links.parquet").read_bytes() == full_run(job_path, "few.csv", tmp_path)
    assert len(pd.read_parquet(tmp_path / "few" / "links.parquet")) == 3
    report = (tmp_path / "few" / "report.html").read_text()
    assert f"it read {few['bytes_read'] / 2**20:,.1f} MiB of the index's {few['bytes'] / 2**20:,.1f} MiB" in report
    # one record at a time, from the row groups its keys name (a key's rows may span two groups): the batch's
    # best target and distance
    links = pd.read_parquet(tmp_path / "batch" / "links.parquet").set_index("align_id")
    index = Index.open(str(tmp_path / "index"))
    groups = sum(len(index._footer(f, column)[1]) for part, column in (("keys", "key"), ("records", "rid"))
                 for f in bucket_files(tmp_path / "index", part))
    for n, (_, record) in enumerate(pd.read_csv(tmp_path / "batch.csv", dtype=str, keep_default_na=False)
                                    .iloc[:60].iterrows()):
        found = index.match(record.to_dict(), k=1)
        if record["rec_id"] in links.index:
            assert found["target_id"].tolist() == [links.loc[record["rec_id"], "target_id"]]
            assert found["distance"].tolist() == [links.loc[record["rec_id"], "distance"]]
        else:
            assert not found["linked"].any()
        if n == 2:  # (three records: the groups of their keys and targets, a few of the index's)
            assert 0 < len(index._groups) < groups / 5
    # a register of each record three times (each key's rows three or more: some span two groups): a lookup
    # reads every key's rows, as a batch does
    register = pd.read_csv(tmp_path / "register.csv", dtype=str)
    pd.concat([register.assign(rec_id=register["rec_id"] + f"-{k}") for k in range(3)]).to_csv(
        tmp_path / "register.csv", index=False)
    build_index(load_job(str(job_path)), str(tmp_path / "thrice"))
    index = Index.open(str(tmp_path / "thrice"))
    footers = [index._footer(f, "key") for f in bucket_files(tmp_path / "thrice")]
    spanning = [last for _, firsts, lasts, _ in footers for last, first in zip(lasts[:-1], firsts[1:]) if last == first]
    assert len(spanning) > 10
    for key in spanning:
        kept, read = index._kept("keys", "key", np.array([key])), index._read("keys", "key", np.array([key]))
        assert len(kept) == len(read) >= 3
        pd.testing.assert_frame_equal(*(f.sort_values(["rid", "slot"]).reset_index(drop=True) for f in (kept, read)))


def test_a_learned_model_is_stored_with_the_index_and_scores_the_batch(people, tmp_path):
    """Fellegi–Sunter: the model fitted when indexing (on the job's alignset and register) scores a batch;
    a batch of the job's own alignset gets the links and explanations of a full run, byte for byte — its
    suburb and postcode weighed as one comparison (a group)."""
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=True, explain=True)
    grouped = job_path.read_text().replace('column = "suburb"\n', 'column = "suburb"\ngroup = "place"\n')
    job_path.write_text(grouped.replace('column = "postcode"\n', 'column = "postcode"\ngroup = "place"\n'))
    manifest = build_index(load_job(str(job_path)), str(tmp_path / "index"))
    assert manifest["model"]["m_from"] == "EM" and 0 < manifest["model"]["threshold"] < 1
    stored = Index.open(str(tmp_path / "index")).scorer(load_job(str(job_path)))
    assert [c.name for c in stored.comparisons_] == [t["attribute"] for t in manifest["model"]["treatments"]]
    assert stored.comparisons_[3].name == "place" and stored.comparisons_[3].members == (3, 4)
    link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "people.csv"),
               output=str(tmp_path / "batch" / "links.parquet"))
    assert (tmp_path / "batch" / "links.parquet").read_bytes() == full_run(job_path, "people.csv", tmp_path)


def test_a_batch_of_another_job_is_refused_with_what_differs(people, tmp_path):
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    build_index(load_job(str(job_path)), str(tmp_path / "index"))
    job_path.write_text(job_path.read_text().replace('normalizers = ["lunormalize", "simplify"]',
                                                     'normalizers = ["lunormalize"]', 1))
    with pytest.raises(JobError, match=r"built for another job \(treatments\[0\]\.normalizers: the index has "
                                       r"\['lunormalize', 'simplify'\], the job \['lunormalize'\]\)"):
        link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv"))
    # weights and the threshold act on scores only: the same index serves
    job_path.write_text(job_path.read_text().replace('normalizers = ["lunormalize"]',
                                                     'normalizers = ["lunormalize", "simplify"]', 1)
                        .replace("weight = 3", "weight = 4").replace("threshold = 3.5", "threshold = 2.5"))
    assert link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv")).links > 500
    # an index another bigalign wrote in an older layout (its buckets unsorted): refused, saying what to do
    manifest = tmp_path / "index" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"{INDEX_FORMAT}"', '"bigalign-index/2"'))
    with pytest.raises(InputError, match=r"an index of format 'bigalign-index/2'; this bigalign reads "
                                         r"'bigalign-index/4': build it again"):
        link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv"))


def test_an_index_needs_keys_each_record_gives_alone(people, tmp_path):
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    text = job_path.read_text()
    start, end = text.index("[blocking]"), text.index("[output]")
    job_path.write_text(text[:start] + '[blocking]\nkind = "kmeans"\ncolumns = ["street_number"]\nn_clusters = 4\n\n'
                        + text[end:])
    with pytest.raises(JobError, match="learns its keys from both sets"):
        build_index(load_job(str(job_path)), str(tmp_path / "index"))


def test_the_commands_index_and_link(people, tmp_path):
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    command = [sys.executable, "-m", "bigalign"]
    built = subprocess.run(command + ["index", str(job_path), "--to", str(tmp_path / "index")], capture_output=True,
                           text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "indexed: 3000 records of the targetset" in built.stdout and "version 1" in built.stdout
    # (-X importtime: each module the command imports, said on stderr)
    linked = subprocess.run([sys.executable, "-X", "importtime", "-m", "bigalign", "link", str(job_path), "--index",
                             "index", "--records", "batch.csv", "--output", "batch/links.parquet"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert linked.returncode == 0, linked.stderr
    assert "links written:" in linked.stdout and (tmp_path / "batch" / "links.parquet").exists()
    imported = {line.rsplit("|", 1)[-1].strip() for line in linked.stderr.splitlines()
                if line.startswith("import time")}
    assert "bigalign.index.batch" in imported  # (a batch's command: no Dask dataframe, no SciPy, no worker process)
    assert not imported & {"dask.dataframe", "dask.array", "scipy", "distributed"}
    missing = subprocess.run(command + ["link", str(job_path), "--index", "nowhere", "--records", "batch.csv"],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert missing.returncode == 2 and "no index here" in missing.stderr and "Traceback" not in missing.stderr


def test_the_index_grows_and_shrinks_in_versions(people, tmp_path, monkeypatch):
    """Records added after a batch are linked by the next batch as a full run against the register and
    them would link them; ids are refused or replaced; records are removed by id; a failed update leaves
    the version readers had; a killed updater's lock is taken over."""
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    job = load_job(str(job_path))
    build_index(job, str(tmp_path / "index"))
    everyone = pd.read_csv(tmp_path / "people.csv", dtype=str, keep_default_na=False)
    everyone.iloc[700:1400].to_csv(tmp_path / "second.csv", index=False)
    summary = link_batch(job, str(tmp_path / "index"), str(tmp_path / "batch.csv"),
                         output=str(tmp_path / "first" / "links.parquet"), add=True)
    assert summary.blocking["index"]["added_as_version"] == 2
    assert Index.open(str(tmp_path / "index")).manifest["records"] == 3700
    link_batch(job, str(tmp_path / "index"), str(tmp_path / "second.csv"),
               output=str(tmp_path / "second" / "links.parquet"))
    register = pd.read_csv(tmp_path / "register.csv", dtype=str, keep_default_na=False)
    pd.concat([register, everyone.iloc[:700]]).to_csv(tmp_path / "grown.csv", index=False)
    grown = dataclasses.replace(job, targetset=dataclasses.replace(job.targetset, path=str(tmp_path / "grown.csv")))
    grown = dataclasses.replace(grown, alignset=dataclasses.replace(job.alignset, path=str(tmp_path / "second.csv")),
                                output=dataclasses.replace(job.output, path=str(tmp_path / "full" / "links.parquet")))
    run_job(grown, show_progress=False)
    assert (tmp_path / "second" / "links.parquet").read_bytes() == (tmp_path / "full" / "links.parquet").read_bytes()
    # an id the index holds: refused, or replacing the old record
    moved = everyone.iloc[[3]].assign(suburb="elsewhere")
    with pytest.raises(InputError, match=r"1 of the records to add are already in the index \(ids \['a3'\]\)"):
        update_index(job, str(tmp_path / "index"), add=moved)
    update_index(job, str(tmp_path / "index"), add=moved, replace=True)
    index = Index.open(str(tmp_path / "index"))
    assert index.manifest["records"] == 3700 and index.manifest["version"] == 3
    assert "elsewhere" in index.records(record_keys(pd.Series(["a3"]))).astype(str).values.ravel().tolist()
    # removed by id
    update_index(job, str(tmp_path / "index"), remove=["t5", "a3"])
    index = Index.open(str(tmp_path / "index"))
    assert index.manifest["records"] == 3698 and not len(index.records(record_keys(pd.Series(["t5", "a3"]))))
    with pytest.raises(InputError, match="1 of the ids to remove are not in the index"):
        update_index(job, str(tmp_path / "index"), remove=["t5"])
    # a failed update: the version readers had, and no lock left
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(batch_module, "write_json", broken)
    with pytest.raises(OSError, match="disk full"):
        update_index(job, str(tmp_path / "index"), remove=["t6"])
    monkeypatch.undo()
    assert Index.open(str(tmp_path / "index")).manifest["version"] == 4
    assert not (tmp_path / "index" / ".update.lock").exists()
    # a lock whose process is gone (killed) is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / "index" / ".update.lock").write_text(f"{socket.gethostname()} {dead.stdout.strip()}")
    assert update_index(job, str(tmp_path / "index"), remove=["t6"])["version"] == 5


def test_two_processes_adding_at_once_take_turns(people, tmp_path):
    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    build_index(load_job(str(job_path)), str(tmp_path / "index"))
    everyone = pd.read_csv(tmp_path / "people.csv", dtype=str, keep_default_na=False)
    everyone.iloc[:500].to_csv(tmp_path / "one.csv", index=False)
    everyone.iloc[500:1200].to_csv(tmp_path / "two.csv", index=False)
    command = [sys.executable, "-m", "bigalign", "index", str(job_path), "--to", str(tmp_path / "index")]
    adding = [subprocess.Popen(command + ["--add", name], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for name in ("one.csv", "two.csv")]
    results = [process.communicate(timeout=600) for process in adding]
    assert [process.returncode for process in adding] == [0, 0], results
    index = Index.open(str(tmp_path / "index"))
    assert index.manifest["version"] == 3 and index.manifest["records"] == 3000 + 500 + 700
    assert len(index.records(record_keys(everyone["rec_id"].iloc[:1200]))) == 1200


def test_the_web_application_answers_one_record_from_the_index(people, tmp_path):
    """``POST /match`` (the access token in the URL, a JSON record): the index's best matches, as
    ``Index.match`` gives them; refused without the token; a clear error without an index."""
    import json
    import urllib.error
    import urllib.request

    from bigalign.app.server import App, running
    from bigalign.app.workspace import Workspace

    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    app = App(Workspace(str(tmp_path)), None, None)
    people_a = pd.read_csv(tmp_path / "people.csv", dtype=str, keep_default_na=False)

    def post(url, body, token=app.token):
        request = urllib.request.Request(f"{url}/match?k=2&token={token}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    with running(app) as url:
        status, body = post(url, people_a.iloc[0].to_dict())
        assert status == 404 and "no index here" in body
        build_index(load_job(str(job_path)), str(tmp_path / "index"))
        index = Index.open(str(tmp_path / "index"))
        found = index.match(people_a.iloc[:50], k=2)  # (a frame: its records matched together)
        record = people_a[people_a["rec_id"] == found["align_id"].iloc[0]].iloc[0].to_dict()
        status, body = post(url, record)
        expected = index.match(record, k=2)
        assert status == 200 and [m["target_id"] for m in body["matches"]] == expected["target_id"].tolist()
        assert body["matches"][0]["linked"] and "given_name+surname: distance" in body["matches"][0]
        assert post(url, record, token="wrong")[0] == 403
        assert post(url, "not a record")[0] == 400


def test_an_index_on_an_fsspec_url(people, tmp_path):
    """The same index on an fsspec URL (memory://): built, linked against, grown, opened, asked."""
    copy_inputs(people, tmp_path)
    job = load_job(str(write_job(tmp_path, "people.csv", learned=False)))
    url = f"memory://bigalign-test-{tmp_path.name}/index"
    build_index(job, url)
    summary = link_batch(job, url, str(tmp_path / "batch.csv"), output=str(tmp_path / "url" / "links.parquet"),
                         add=True)
    build_index(job, str(tmp_path / "index"))
    link_batch(job, str(tmp_path / "index"), str(tmp_path / "batch.csv"),
               output=str(tmp_path / "disk" / "links.parquet"))
    assert (tmp_path / "url" / "links.parquet").read_bytes() == (tmp_path / "disk" / "links.parquet").read_bytes()
    assert summary.blocking["index"]["added_as_version"] == 2 and Index.open(url).manifest["records"] == 3700


def test_a_batch_read_from_a_database_through_a_set_table(people, tmp_path):
    """``--records batch.toml``: the batch is read as any set can be (here a SQLite table); its links are
    those of the same records read from a file."""
    import sqlalchemy

    copy_inputs(people, tmp_path)
    job_path = write_job(tmp_path, "people.csv", learned=False)
    build_index(load_job(str(job_path)), str(tmp_path / "index"))
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'arrivals.db'}")
    pd.read_csv(tmp_path / "batch.csv", dtype=str, keep_default_na=False).to_sql("people", engine, index=False)
    (tmp_path / "batch.toml").write_text(f'sql = "sqlite:///{tmp_path / "arrivals.db"}"\ntable = "people"\n'
                                         'id = "rec_id"\n')
    done = subprocess.run([sys.executable, "-m", "bigalign", "link", str(job_path), "--index", str(tmp_path / "index"),
                           "--records", str(tmp_path / "batch.toml"), "--output",
                           str(tmp_path / "from-sql" / "links.parquet")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    link_batch(load_job(str(job_path)), str(tmp_path / "index"), str(tmp_path / "batch.csv"),
               output=str(tmp_path / "from-file" / "links.parquet"))
    from_sql, from_file = (pd.read_parquet(tmp_path / d / "links.parquet") for d in ("from-sql", "from-file"))
    assert len(from_file) > 500
    pd.testing.assert_frame_equal(from_sql.astype({"align_id": str, "target_id": str}),
                                  from_file.astype({"align_id": str, "target_id": str}))


def test_a_batch_s_output_file_is_written_in_the_format_its_name_says(tmp_path):
    text = (ROOT / "jobs" / "cities_offline.toml").read_text().replace('"data/', f'"{ROOT}/jobs/data/')
    job_path = tmp_path / "cities.toml"
    job_path.write_text(text.replace('"../out/cities_offline/links.nt"', f'"{tmp_path}/links.nt"'))
    build_index(load_job(str(job_path)), str(tmp_path / "index"))
    records = str(ROOT / "jobs" / "data" / "cities_dbpedia.csv")
    link_batch(load_job(str(job_path)), str(tmp_path / "index"), records, output=str(tmp_path / "batch.csv"))
    written = pd.read_csv(tmp_path / "batch.csv")  # (a table, as `run --output links.csv` writes: not N-Triples)
    assert list(written.columns[:3]) == ["align_id", "target_id", "distance"] and len(written) == 46
    job_path.write_text(job_path.read_text().replace("[output]\n", '[output]\nformat = "ntriples"\n'))
    with pytest.raises(JobError, match=r"--output: the job's output.format is 'ntriples' but the output .*batch\.csv"
                                       r".* ends in '\.csv' \(csv\)"):
        link_batch(load_job(str(job_path)), str(tmp_path / "index"), records, output=str(tmp_path / "batch.csv"))
