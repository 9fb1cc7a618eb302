"""Treatments weighed as one comparison: a group's joint levels, the groups found among likely matches and
kept when the model then finds more records' counterparts, one each, and what they change on people who
moved between the two sets (their address fields disagree together) beside relatives at one address."""

import json
import re

import numpy as np
import pytest

import bigalign
from bigalign.comparisons import (
    Comparison,
    MatchDependence,
    choose_groups,
    compared,
    group_level_names,
    make_comparisons,
    record_matches,
)
from bigalign.datasets import person_records
from bigalign.em import MISSING, pattern_counts
from bigalign.errors import JobError
from bigalign.evaluate import link_quality
from bigalign.fellegi_sunter import FellegiSunter
from bigalign.jobs import load_job

# People compared field by field, as a newcomer writes it: no soc_sec_id (nothing that survives a move).
TREATMENTS = [
    {"column": "given_name", "metric": "jaro_winkler", "normalizers": ["lunormalize"]},
    {"column": "surname", "metric": "jaro_winkler", "normalizers": ["lunormalize"]},
    {"column": "date_of_birth", "metric": "temporal"},
    {"column": "street_number", "metric": "exact"},
    {"column": "address", "metric": "levenshtein", "normalized": True, "normalizers": ["lunormalize", "simplify"]},
    {"column": "suburb", "metric": "jaro_winkler"},
    {"column": "postcode", "metric": "exact"},
]
ADDRESS = ["street_number", "address", "suburb", "postcode"]


def blocking():
    from bigalign.blocking import KeyBlocking, UnionBlocking

    return UnionBlocking([KeyBlocking(["surname", "date_of_birth"], ["soundex", "year"]),
                          KeyBlocking(["given_name", "date_of_birth"], ["soundex", "date"]),
                          KeyBlocking(["address", "street_number"])])


def test_a_group_takes_its_first_member_s_place():
    names = ["name", "born", "street", "city", "zip"]
    comparisons = make_comparisons(names, [("home", [4, 2, 3])])
    assert comparisons == [Comparison("name", (0,)), Comparison("born", (1,)), Comparison("home", (2, 3, 4))]
    for groups, message in (([("name", [2, 3])], "name of a treatment"), ([("home", [2])], "2 to 5"),
                            ([("home", [2, 3]), ("place", [3, 4])], "in two groups")):
        with pytest.raises(ValueError, match=message):
            make_comparisons(names, groups)
    with pytest.raises(ValueError, match="term frequencies"):
        make_comparisons(names, [("home", [2, 3])], with_terms=[3])


def test_a_group_s_level_is_its_members_joint_state():
    """Members' levels (an exact metric: 2 levels; a distance: 4) become one level per joint state: all
    at their closest first, all at their farthest last, a missing member a state of its own, every member
    missing: missing."""
    comparisons = [Comparison("home", (0, 1))]
    levels = np.array([[0, 0], [0, 1], [0, 3], [1, 3], [MISSING, 0], [MISSING, MISSING], [1, 0]])
    joint = compared(levels, comparisons, [2, 4])[:, 0]
    names = group_level_names(["zip", "street"], [["= 0", "far"], ["= 0", "≤ 0.1", "≤ 0.3", "far"]])
    assert [names[level] if level != MISSING else None for level in joint] == [
        "zip = 0, street = 0", "zip = 0, street ≤ 0.1", "zip = 0, street far", "zip far, street far",
        "zip missing, street = 0", None, "zip far, street = 0"]
    assert joint[0] == 0 and joint[3] == len(names) - 1 == 3 * 5 - 1


def test_treatments_that_disagree_together_among_matches_are_found():
    """Matches of which a fifth moved (treatments 2 and 3 far together): found, judged on the others;
    treatments 0 and 1, independent among matches, are not grouped."""
    rng = np.random.default_rng(0)
    n = 20_000
    moved = rng.random(n) < 0.2
    levels = np.column_stack([(rng.random(n) < 0.1).astype(int), (rng.random(n) < 0.1).astype(int),
                              np.where(moved, 1, (rng.random(n) < 0.05).astype(int)),
                              np.where(moved, 1, (rng.random(n) < 0.05).astype(int)),
                              (rng.random(n) < 0.1).astype(int)])
    patterns = pattern_counts(levels)
    pattern_levels = patterns.drop(columns="count").to_numpy()
    counts = patterns["count"].to_numpy(np.float64)

    def weigh(levels):  # an independent fit's weights: agreeing +5 bits, disagreeing -3 bits
        return np.where(levels == MISSING, 0.0, np.where(levels == 0, 5.0, -3.0))

    assert MatchDependence([(pattern_levels, counts, 0.5)], weigh, [2] * 5).seeds() == [[2, 3]]
    assert MatchDependence([(pattern_levels, counts, 0.5)], weigh, [2] * 5, apart=[3]).seeds() == []
    # two treatments too few to tell matches from non-matches: nothing grouped
    assert MatchDependence([(pattern_levels[:, 2:4], counts, 0.5)], weigh, [2, 2]).seeds() == []


def test_a_record_has_one_counterpart():
    """Each record's best candidate's match probability, summed, and the rest of its candidates'."""
    probabilities = np.array([0.9, 0.8, 0.1, 0.5, 0.25])
    records = np.array([7, 3, 7, 3, 9], dtype=np.uint64)
    assert record_matches(probabilities, records) == pytest.approx((0.9 + 0.8 + 0.25, 0.1 + 0.5))
    assert record_matches(np.zeros(0), np.zeros(0, np.uint64)) == (0.0, 0.0)


def test_a_group_is_kept_when_the_model_is_better_for_it():
    """Seeds kept when they gain enough over the groups kept before them, grown while a joinable
    treatment gains enough again; a seed that gains nothing is tried, said, and not grown."""
    def joinable(group, groups):
        return {(3, 4): [5, 6], (3, 4, 5): [6]}.get(tuple(group), [])

    worth = {(): 100.0, ((0, 1),): 101.0, ((3, 4),): 150.0, ((3, 4, 5),): 170.0, ((3, 4, 6),): 152.0,
             ((3, 4, 5, 6),): 172.0}
    asked = []

    def gains(groups):
        asked.append(groups)
        return worth[tuple(tuple(g) for g in groups)]

    chosen, tried = choose_groups([[0, 1], [3, 4]], joinable, gains, least=5.0, join_least=5.0)
    assert chosen == [[3, 4, 5]]
    assert tried == [([0, 1], 1.0), ([3, 4, 5], 70.0)]
    assert [[0, 1], 2] not in asked and [[0, 1, 2]] not in asked  # (the names' seed was not grown)
    # a member joins a founded group for less than founding one needs
    asked.clear()
    chosen, tried = choose_groups([[0, 1], [3, 4]], joinable, gains, least=5.0, join_least=1.0)
    assert chosen == [[3, 4, 5, 6]]
    assert tried == [([0, 1], 1.0), ([3, 4, 5, 6], 72.0)]


@pytest.fixture(scope="module")
def movers():
    return person_records(3000, seed=1, movers=0.3)


def f1(links, people) -> float:
    return link_quality(links.astype({"align_id": str, "target_id": str}), people.truth.astype(str)).f1


def test_people_who_moved_are_linked_when_their_address_is_one_comparison(movers):
    """Under independence each of a mover's four address fields counts against the match and most movers
    are lost; as one comparison, moving costs what it costs among matches, once. The groups the data
    shows — the two names (swapped among matches) and three of the address's fields (the postcode, an
    exact match of two levels, far in a fifth of the matches by typos, does not meet them more than
    chance) — are tried by default: the address's is kept (the model finds the movers' counterparts, one
    each), the names' is not (it finds none more)."""
    def run(groups):
        model = FellegiSunter(groups=groups)
        links = bigalign.align(movers.alignset, movers.targetset, TREATMENTS, blocking=blocking(),
                               threshold="auto", model=model, uniq=True, explain=True)
        return links, f1(links, movers)

    apart, f1_apart = run({})
    grouped, f1_grouped = run({"home": ADDRESS})
    found, f1_found = run("auto")
    tried = found.attrs["model"].groups_found_
    assert [(g["members"], g["kept"]) for g in tried] == [(["given_name", "surname"], False), (ADDRESS[:3], True)]
    assert tried[1]["records"] > 400  # (of 2,400 true pairs, 30% of them movers)
    assert f1_grouped > f1_apart + 0.1 and f1_found > f1_apart + 0.1, (f1_apart, f1_grouped, f1_found)
    weight_columns = sorted(c for c in found.columns if c.endswith(": weight"))
    assert weight_columns == ["date_of_birth: weight", "given_name: weight", "postcode: weight",
                              "street_number & address & suburb: weight", "surname: weight"]
    # a group is one term of the weight, its level beside its members' own
    total = found[weight_columns].sum(axis=1) + found["prior_weight"]
    np.testing.assert_allclose(total, found["match_weight"], rtol=1e-12)
    assert {"home: level", "home: weight", "suburb: level", "suburb: distance"} <= set(grouped.columns)
    # a mover, linked: all four fields far, one finite penalty
    far = grouped[grouped["home: level"] == grouped["home: level"].max()]
    assert len(far) > 300 and np.isfinite(far["home: weight"]).all() and (far["home: weight"] > -8).all()


def test_relatives_at_one_address_are_not_taken_for_people_who_moved():
    """Relatives at the address of a copied person (twins among them): the pairs the names and birth date
    call matches hold none of them, and the pairs the address and surname call matches hold them, who
    differ on the given name and birth — taken for dependence among matches, those two would make a
    group that links relatives: no group is kept. With movers too, the address's group is, and the
    relatives stay unlinked as much as apart."""
    relatives = person_records(3000, seed=2, relatives=0.5)
    both = person_records(3000, seed=1, movers=0.3, relatives=0.5)

    def run(people, groups):
        model = FellegiSunter(groups=groups)
        links = bigalign.align(people.alignset, people.targetset, TREATMENTS, blocking=blocking(),
                               threshold="auto", model=model, uniq=True)
        return model_of(links), link_quality(links.astype({"align_id": str, "target_id": str}),
                                             people.truth.astype(str))

    def model_of(links):
        return links.attrs["model"]

    model, quality = run(relatives, "auto")
    assert not any(g["kept"] for g in model.groups_found_) and quality.f1 == run(relatives, {})[1].f1
    model, quality = run(both, "auto")
    apart = run(both, {})[1]
    assert [g["members"] for g in model.groups_found_ if g["kept"]] == [ADDRESS[:3]]
    assert quality.f1 > apart.f1 + 0.1 and quality.precision >= apart.precision, (quality, apart)


def test_data_without_dependence_keeps_its_treatments_apart():
    """People who did not move, their names compared word order free (a swap is no disagreement): no
    treatments disagree together among matches, and none is grouped."""
    people = person_records(3000, seed=2)
    treatments = [{"column": ["given_name", "surname"], "metric": "levenshtein", "normalized": True,
                   "normalizers": ["lunormalize", "simplify"]}] + TREATMENTS[2:]
    model = FellegiSunter(groups="auto")
    links = bigalign.align(people.alignset, people.targetset, treatments, blocking=blocking(), threshold="auto",
                           model=model, uniq=True, explain=True)
    assert sorted(c for c in links.columns if c.endswith(": weight")) == sorted(
        ["given_name+surname: weight"] + [f"{t['column']}: weight" for t in TREATMENTS[2:]])


def test_a_job_groups_treatments_and_the_report_shows_the_group(tmp_path, movers):
    movers.alignset.to_csv(tmp_path / "a.csv", index=False)
    movers.targetset.to_csv(tmp_path / "b.csv", index=False)
    movers.truth.to_csv(tmp_path / "truth.csv", index=False)
    treatments = ""
    for t in TREATMENTS:
        column = t["column"]
        treatments += f'[[treatments]]\ncolumn = "{column}"\nmetric = "{t["metric"]}"\n'
        treatments += "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items() if k not in ("column", "metric"))
        treatments += 'group = "home"\n' if column in ADDRESS else ""
    job = tmp_path / "job.toml"
    job.write_text(f'threshold = "auto"\nuniq = true\ntruth = "truth.csv"\n[alignset]\npath = "a.csv"\nid = "rec_id"\n'
                   f'[targetset]\npath = "b.csv"\nid = "rec_id"\n{treatments}'
                   '[blocking]\nkind = "key"\ncolumns = ["surname", "date_of_birth"]\ntransform = ["soundex", "year"]\n'
                   '[model]\nkind = "fellegi-sunter"\n[output]\npath = "out/links.csv"\n')
    from bigalign.runner import run_job

    summary = run_job(load_job(str(job)), show_progress=False)
    model = summary.model
    home = next(t for t in model["treatments"] if t["attribute"] == "home")
    assert model["grouped_by"] == "job" and home["members"] == ADDRESS
    assert home["levels"][0] == "street_number ≤ 0, address ≤ 0, suburb ≤ 0, postcode ≤ 0"
    assert sum(home["pairs"]) == summary.blocking["candidate_pairs"]
    # `bigalign plan` and the report show the group's levels its candidates reach (of 3 × 6 × 6 × 3)
    from bigalign.planner import model_lines

    shown = [line for line in model_lines(model) if line.strip().startswith("home ")]
    assert len(shown) == sum(pairs > 0 for pairs in home["pairs"]) < len(home["m"])
    report = (tmp_path / "out" / "report.html").read_text()
    assert "home is one comparison of street_number, address, suburb, postcode (grouped by the job)" in report
    # what the automatic threshold expected of its candidates, checked against the truth
    check = re.search(r"expected precision ([\d.]+) and recall ([\d.]+); the truth gives precision ([\d.]+) and "
                      r"recall ([\d.]+)", report)
    expected_precision, expected_recall, true_precision, true_recall = map(float, check.groups())
    assert abs(expected_precision - true_precision) <= 0.01 and abs(expected_recall - true_recall) <= 0.01, \
        check.groups()
    # the groups the model finds itself (the job names none): kept or not, said in the summary, the plan's
    # model lines and the report
    found = tmp_path / "found.toml"
    found.write_text(job.read_text().replace('group = "home"\n', "").replace("out/links.csv", "found/links.csv"))
    model = run_job(load_job(str(found)), show_progress=False).model
    assert model["grouped_by"] == "data"
    assert [(g["members"], g["kept"]) for g in model["groups_found"]] == [(ADDRESS[:3], True)]
    lines = model_lines(model)
    assert any(line.strip().startswith("street_number, address, suburb disagree together among likely matches: one "
                                       "comparison (the model finds") for line in lines), lines
    report = (tmp_path / "found" / "report.html").read_text()
    assert "street_number &amp; address &amp; suburb is one comparison of street_number, address, suburb (found in " \
           "the data" in report
    # what a job may not say
    alone = job.read_text().replace('group = "home"\n', "").replace('column = "surname"\n',
                                                                     'column = "surname"\ngroup = "home"\n')
    bad = tmp_path / "bad.toml"
    for text, message in ((alone, "group 'home' has one treatment"),
                          (job.read_text().replace('"home"', '"surname"'), "has the name of a treatment"),
                          (job.read_text().replace('"fellegi-sunter"', '"fellegi-sunter"\ngroups = "none"'),
                           "treatments name a 'group'"),
                          (job.read_text().replace('"fellegi-sunter"', '"fellegi-sunter"\ngroups = "suggest"'),
                           "must be 'auto'")):
        bad.write_text(text)
        with pytest.raises(JobError, match=message):
            load_job(str(bad))
