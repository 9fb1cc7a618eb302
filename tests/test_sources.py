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
