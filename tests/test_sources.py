"""Sources through their interface: the registry's choice, describe, headers, batches, stage, sample, what a
run weighs and what a checkpoint depends on (files and RDF here; endpoints and databases against real
servers in test_sparql.py and test_sql.py)."""

import os

import pandas as pd
import pytest

from bigalign import Treatment
from bigalign.errors import InputError
from bigalign.io import SetSpec
from bigalign.sources import SOURCES, DatabaseSource, EndpointSource, FileSource, RdfSource, RqlSource, source_of


def test_a_set_s_table_names_its_source():
    assert type(source_of(SetSpec(name="alignset", path="a.csv"))) is FileSource
    assert type(source_of(SetSpec(name="alignset", path="a.ttl", format="rdf", query="SELECT"))) is RdfSource
    assert type(source_of(SetSpec(name="alignset", path="", sparql="http://x/q", query="SELECT"))) is EndpointSource
    assert type(source_of(SetSpec(name="alignset", path="", sql="sqlite://", table="t"))) is DatabaseSource
    assert type(source_of(SetSpec(name="alignset", path="", rql="http://x/", query="Any X"))) is RqlSource
    assert set(SOURCES) == {"files", "rdf", "sparql", "rql", "sql"}
    assert [cls.remote for cls in SOURCES.values()] == [False, False, True, True, True]


def test_files_are_described_read_staged_and_sampled(tmp_path):
    (tmp_path / "a1.csv").write_bytes(b"id,name,dob\n1,Ann,14/08/1991\n2,Bob,yesterday\n3,Cy\n4,Di,01/01/1990\n")
    (tmp_path / "a2.csv").write_bytes(b"id,name,dob\n5,\xe9,02/02/1992\n6,Ed,03/03/1993\n")
    source = source_of(SetSpec(name="alignset", path=str(tmp_path / "a*.csv")))
    units = source.describe("job.toml")
    assert units == [str(tmp_path / "a1.csv"), str(tmp_path / "a2.csv")]
    assert list(source.headers(units)) == [(units[0], ["id", "name", "dob"]), (units[1], ["id", "name", "dob"])]
    staged = [source.stage(unit, k, [Treatment("dob", "temporal")], str(tmp_path), ["dob", "name"])
              for k, unit in enumerate(units)]
    assert [(s.rows_read, s.rows_kept) for s in staged] == [(4, 2), (2, 1)]
    assert [(r["file"], r["row"], r["column"]) for s in staged for r in s.rejects] == [
        (units[0], 4, ""), (units[0], 3, "dob"), (units[1], 2, "name")]  # (a malformed row: as it is parsed)
    frame = pd.read_parquet(staged[0].parquet)
    assert frame["id"].tolist() == ["1", "4"] and frame["_row"].tolist() == [2, 5]
    assert source.sample(2)["id"].tolist() == ["1", "2"]
    assert source.input_bytes(units) == sum(os.path.getsize(u) for u in units)
    before = source.fingerprint(units)
    (tmp_path / "a2.csv").write_bytes(b"id,name,dob\n5,Eve,02/02/1992\n")
    assert source.fingerprint(units) != before
    with pytest.raises(InputError, match=r"job.toml: alignset.path: no file matches '.*nothing\*.csv'"):
        source_of(SetSpec(name="alignset", path=str(tmp_path / "nothing*.csv"))).describe("job.toml")


def test_rdf_files_are_one_unit_read_by_one_query(tmp_path):
    (tmp_path / "d.ttl").write_text('<http://x/1> <http://x/name> "Ann"@en .\n<http://x/2> <http://x/name> "Bob" .\n')
    spec = SetSpec(name="targetset", path=str(tmp_path / "*.ttl"), format="rdf",
                   query="SELECT ?who ?name WHERE { ?who <http://x/name> ?name }")
    source = source_of(spec)
    units = source.describe()
    assert units == [str(tmp_path / "d.ttl")] and source.columns == ["who", "name"] and spec.columns is None
    assert source.staged_units(units) == [spec.path] and source.kind_of_column == "variable"
    assert list(source.headers(units)) == [(f"targetset: the query on {spec.path}", ["who", "name"])]
    staged = source.stage(spec.path, 0, [], str(tmp_path))
    assert sorted(pd.read_parquet(staged.parquet)["name"]) == ["Ann", "Bob"]



def _staged(job_path, in_memory):
    """A job's sets staged, read back by Dask (as a run reads them) or in memory (as a batch does)."""
    from bigalign.cluster import no_cluster
    from bigalign.jobs import check_inputs, load_job
    from bigalign.staging import stage_inputs

    job = load_job(str(job_path))
    with no_cluster(2) as client:
        records, counts = stage_inputs(client, job, check_inputs(job), str(job_path.parent / "rejects.csv"), False,
                                       in_memory)
        assert all(isinstance(frame, pd.DataFrame) == in_memory for frame in records.values())
        return {name: frame if in_memory else client.compute(frame).result() for name, frame in records.items()}, \
            counts


def test_a_set_staged_in_memory_is_the_set_a_run_reads(tmp_path):
    """A batch's few records, read back in this process without Dask's dataframes: the same columns, of the
    same types (text, numbers, dates, decimals; missing values), the same records of several values."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a1.csv").write_text("id,name,born,height,fee\n1,Ann,1990-01-02,1.5,2\n2,,1991-03-04,,\n3,Cy,,2,1\n")
    (tmp_path / "a2.csv").write_text("id,name,born,height,fee\n4,Dé,1992-05-06,1.7,3\n")
    pq.write_table(pa.table({
        "id": pa.array([10, 20, 30, 10], pa.int64()), "name": ["Ann", None, "Cy", "Anne"],
        "born": pa.array([datetime.date(1990, 1, 2), None, datetime.date(1993, 1, 1), datetime.date(1990, 1, 2)]),
        "height": [1.5, None, 1.8, 1.5], "fee": pa.array([decimal.Decimal("1.10"), None, decimal.Decimal("2.00"),
                                                          decimal.Decimal("1.10")], pa.decimal128(5, 2))}),
        tmp_path / "b.parquet")
    job = tmp_path / "job.toml"
    job.write_text('threshold = 0.5\n[alignset]\npath = "a*.csv"\n[targetset]\npath = "b.parquet"\n'
                   'multivalued = true\n[[treatments]]\ncolumn = "name"\nmetric = "levenshtein"\nnormalized = true\n'
                   '[[treatments]]\ncolumn = "height"\nmetric = "euclidean"\n'
                   '[[treatments]]\ncolumn = "fee"\nmetric = "euclidean"\n'
                   '[blocking]\nkind = "key"\ncolumns = ["born"]\n[output]\npath = "links.csv"\n')
    (by_dask, counts), (in_memory, counts_in_memory) = _staged(job, False), _staged(job, True)
    assert counts_in_memory == counts and set(in_memory) == {"alignset", "targetset"}
    for name, frame in in_memory.items():  # (the rows of a multivalued set: in the order of their shuffle)
        pd.testing.assert_frame_equal(frame.sort_values("id", kind="stable").reset_index(drop=True),
                                      by_dask[name].sort_values("id", kind="stable").reset_index(drop=True))
    assert in_memory["alignset"]["name"].tolist() == ["Ann", "", "Cy", "Dé"]  # (a CSV's empty value: empty text)
    assert in_memory["targetset"]["born"].isna().tolist() == [False, True, False]
    assert sorted(map(sorted, in_memory["targetset"]["name"].dropna())) == [["Ann", "Anne"], ["Cy"]]


@pytest.mark.parametrize("in_memory", [False, True])
def test_a_repeated_identifier_is_refused_where_it_is_however_the_set_is_read(tmp_path, in_memory):
    (tmp_path / "a.csv").write_text("id,name\n1,Paris\n2,London\n1,Parigi\n")
    job = tmp_path / "job.toml"
    job.write_text('threshold = 0.3\ndedupe = true\n[alignset]\npath = "a.csv"\n[[treatments]]\ncolumn = "name"\n'
                   'metric = "levenshtein"\n[output]\npath = "links.csv"\n')
    with pytest.raises(InputError, match=r"duplicate identifier '1' in column 'id' \(.*a\.csv row 2, .*a\.csv row 4\)"):
        _staged(job, in_memory)
