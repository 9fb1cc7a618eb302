"""Links written with their scores in RDF: the Alignment API's format (the OAEI's), RDF/XML that an RDF parser
reads back cell by cell, each measure the single-precision float (xsd:float) of the link's score."""

import urllib.parse

import numpy as np
import pandas as pd
import pyoxigraph
import pytest

from bigalign.errors import JobError
from bigalign.io import link_measures, write_links
from bigalign.jobs import load_job

ALIGN = "http://knowledgeweb.semanticweb.org/heterogeneity/alignment#"
CELLS = f"""PREFIX a: <{ALIGN}>
SELECT ?e1 ?e2 ?relation ?measure WHERE {{
  ?alignment a a:Alignment ; a:map ?cell .
  ?cell a a:Cell ; a:entity1 ?e1 ; a:entity2 ?e2 ; a:relation ?relation ; a:measure ?measure .
}}"""


def read_cells(path) -> pd.DataFrame:
    store = pyoxigraph.Store()
    with open(path, "rb") as f:
        store.load(f, pyoxigraph.RdfFormat.RDF_XML, base_iri="http://example.org/")
    rows = [(s["e1"].value, s["e2"].value, s["relation"].value, s["measure"]) for s in store.query(CELLS)]
    for _, _, _, measure in rows:
        assert measure.datatype.value == "http://www.w3.org/2001/XMLSchema#float"
    cells = pd.DataFrame([(e1, e2, r, m.value) for e1, e2, r, m in rows],
                         columns=["entity1", "entity2", "relation", "measure"])
    cells = cells.sort_values("entity1", ignore_index=True)
    cells["measure"] = cells["measure"].astype(np.float32)  # (what an xsd:float holds)
    return cells


def test_an_alignment_file_reads_back_its_links_and_measures(tmp_path):
    """A model's links: the measure is the match probability; ids escaped into IRIs, quotes and ampersands
    escaped in the XML; every measure reads back as the float written."""
    links = pd.DataFrame({"align_id": ["a&1", 'b"2', "c 3"], "target_id": ["x", "y", "z"],
                          "distance": [0.01, 0.2, 1 / 3], "match_probability": [0.99, 0.8, 2 / 3]})
    path = tmp_path / "links.rdf"
    write_links(links, str(path), "alignment", "http://a.example/{id}", "http://t.example/r/{id}")
    cells = read_cells(path)
    assert cells["entity1"].tolist() == ["http://a.example/a&1", "http://a.example/b%222", "http://a.example/c%203"]
    assert cells["entity2"].tolist() == ["http://t.example/r/x", "http://t.example/r/y", "http://t.example/r/z"]
    assert (cells["relation"] == "=").all()
    assert cells["measure"].tolist() == np.float32([0.99, 0.8, 2 / 3]).tolist()
    # a weighted distance's links: 1 / (1 + distance), 1 for equal records, in the distances' order
    distances = links.drop(columns="match_probability")
    assert link_measures(distances).tolist() == [1 / 1.01, 1 / 1.2, 0.75]
    write_links(distances, str(path), "alignment", "http://a.example/{id}", "http://t.example/r/{id}")
    assert read_cells(path)["measure"].tolist() == np.float32([1 / 1.01, 1 / 1.2, 0.75]).tolist()
    # no link: an alignment without a cell, still RDF/XML
    write_links(links.iloc[:0], str(path), "alignment", "{id}", "{id}")
    assert read_cells(path).empty


def test_a_job_writes_its_links_in_the_alignment_format(tmp_path):
    """The seed's cities, offline, written as an Alignment by the path's extension (``.rdf``): its 46 links
    with their measures, those of the same run's CSV; explanations (columns) are refused."""
    from test_cli import ROOT

    from bigalign.runner import run_job

    text = (ROOT / "jobs" / "cities_offline.toml").read_text().replace('"data/', f'"{ROOT}/jobs/data/')
    job = tmp_path / "job.toml"
    job.write_text(text.replace("../out/cities_offline/links.nt", str(tmp_path / "out" / "links.rdf")))
    run_job(load_job(str(job)), show_progress=False)
    job.write_text(text.replace("../out/cities_offline/links.nt", str(tmp_path / "csv" / "links.csv")))
    run_job(load_job(str(job)), show_progress=False)
    cells = read_cells(tmp_path / "out" / "links.rdf")
    plain = pd.read_csv(tmp_path / "csv" / "links.csv", dtype=str)
    assert len(cells) == len(plain) == 46
    iris = [urllib.parse.quote(a, safe=":/?#[]@!$&'()*+,;=%~") for a in plain["align_id"]]  # (as N-Triples)
    measures = np.float32(1 / (1 + plain["distance"].astype(float))).tolist()
    assert sorted(zip(cells["entity1"], cells["measure"])) == sorted(zip(iris, measures))
    assert set(cells["entity2"]) == {f"https://sws.geonames.org/{t}/" for t in plain["target_id"]}
    job.write_text(text.replace("../out/cities_offline/links.nt", str(tmp_path / "out" / "links.rdf"))
                   .replace("[output]\n", "[output]\nexplain = true\n"))
    with pytest.raises(JobError, match="explanations are columns"):
        load_job(str(job))


REIFIED = f"""PREFIX a: <{ALIGN}>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX dcterms: <http://purl.org/dc/terms/>
SELECT ?e1 ?e2 ?measure ?job WHERE {{
  ?e1 owl:sameAs ?e2 .
  ?link rdf:reifies <<( ?e1 owl:sameAs ?e2 )>> ; a:measure ?measure ; dcterms:source ?job .
}}"""


def test_links_in_rdf_1_2_carry_their_score_and_job_on_each_triple(tmp_path):
    """N-Triples 1.2 (``format = "rdf12"``, a path in ``.nt``): each owl:sameAs triple asserted, and a
    reifier of it (a triple term) with the link's measure and the job's name, as Oxigraph reads them; the
    same measures as the Alignment format's."""
    from test_cli import ROOT

    from bigalign.runner import run_job

    text = (ROOT / "jobs" / "goncourt_offline.toml").read_text().replace('"data/', f'"{ROOT}/jobs/data/')
    job = tmp_path / "prix.toml"
    job.write_text(text.replace('path = "../out/goncourt_offline/links.nt"\nformat = "ntriples"',
                                f'path = "{tmp_path}/links.nt"\nformat = "rdf12"'))
    run_job(load_job(str(job)), show_progress=False)
    job.write_text(text.replace('path = "../out/goncourt_offline/links.nt"\nformat = "ntriples"',
                                f'path = "{tmp_path}/links.rdf"'))
    run_job(load_job(str(job)), show_progress=False)
    store = pyoxigraph.Store()
    with open(tmp_path / "links.nt", "rb") as f:
        store.load(f, pyoxigraph.RdfFormat.N_TRIPLES)
    rows = [(s["e1"].value, s["e2"].value, s["measure"], s["job"].value) for s in store.query(REIFIED)]
    assert len(rows) == 50 and {job for *_, job in rows} == {"prix"}
    assert {m.datatype.value for _, _, m, _ in rows} == {"http://www.w3.org/2001/XMLSchema#float"}
    cells = read_cells(tmp_path / "links.rdf")
    assert sorted((e1, e2, np.float32(m.value)) for e1, e2, m, _ in rows) == sorted(
        zip(cells["entity1"], cells["entity2"], cells["measure"]))
    plain = [line for line in (tmp_path / "links.nt").read_text().splitlines() if "sameAs" in line
             and "reifies" not in line]
    assert len(plain) == 50  # the links themselves, asserted as the plain N-Triples are
