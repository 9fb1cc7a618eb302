"""The Fellegi–Sunter model: EM against known parameters, u against the exact cross product,
explanations that add up, and an automatic threshold near the best one."""

import json

import numpy as np
import pandas as pd
import pytest

import bigalign
from bigalign.cluster import NoCluster
from bigalign.datasets import person_records
from bigalign.em import MISSING, choose_cuts, comparison_levels, pattern_counts
from bigalign.evaluate import link_quality
from bigalign.fellegi_sunter import FellegiSunter
from bigalign.treatments import make_treatments, treatment_pair_distances
from bigalign.weights import THRESHOLD_SLACK_BITS, best_threshold

PERSON_TREATMENTS = [
    {"column": ["given_name", "surname"], "metric": "levenshtein", "normalized": True,
     "normalizers": ["lunormalize", "simplify"]},
    {"column": "date_of_birth", "metric": "temporal", "normalized": True, "scale": 365},
    {"column": ["street_number", "address"], "metric": "levenshtein", "normalized": True},
    {"column": "suburb", "metric": "jaro_winkler"},
    {"column": "postcode", "metric": "exact"},
    {"column": "soc_sec_id", "metric": "char_levenshtein", "normalized": True},
]


def test_levels_and_pattern_counts():
    levels = comparison_levels(np.array([0.0, 0.05, 0.1, 0.5, np.nan, 1.0]), [0.0, 0.1])
    assert levels.tolist() == [0, 1, 1, 2, MISSING, 2]
    counts = pattern_counts(np.array([[0, 1], [0, 1], [2, MISSING]]))
    assert counts.values.tolist() == [[0, 1, 2], [2, MISSING, 1]]


def test_cut_points_from_random_pairs_and_the_candidates_near_misses():
    """Equal, then where 0.1%, 1% and 10% of random pairs are that close; the candidates' near misses
    (closer than all but 1% of random pairs, not equal) split at their median, in order among the rest;
    a cut at or beyond the farthest random pair is left out."""
    random_distances = np.arange(100_000) / 100_000  # (quantiles: 0.001, 0.01, 0.1, to 1e-5)
    assert choose_cuts(random_distances) == pytest.approx([0.0, 0.001, 0.01, 0.1], abs=1e-4)
    near = np.r_[np.zeros(500), np.full(40, 0.002), np.full(60, 0.004), np.full(500, 0.5)]
    assert choose_cuts(random_distances, near) == pytest.approx([0.0, 0.001, 0.004, 0.01, 0.1], abs=1e-4)
    assert choose_cuts(random_distances, near[:540]) == pytest.approx([0.0, 0.001, 0.01, 0.1], abs=1e-4)  # 40 near
    assert choose_cuts(np.r_[np.zeros(990), np.ones(10)]) == [0.0]  # (an exact metric: one cut)


def test_em_recovers_the_parameters_of_a_known_model():
    rng = np.random.default_rng(0)
    m = [np.array([0.85, 0.1, 0.05]), np.array([0.9, 0.1]), np.array([0.7, 0.2, 0.1])]
    u = [np.array([0.01, 0.09, 0.9]), np.array([0.2, 0.8]), np.array([0.05, 0.15, 0.8])]
    prior, n = 0.08, 400_000
    match = rng.random(n) < prior
    levels = np.column_stack([np.where(match, rng.choice(len(mk), n, p=mk), rng.choice(len(uk), n, p=uk))
                              for mk, uk in zip(m, u)])
    levels[rng.random(n) < 0.05, 1] = MISSING  # missing values: neutral
    random_levels = np.column_stack([rng.choice(len(uk), 1_000_000, p=uk) for uk in u])
    model = FellegiSunter()
    model.cuts_ = [[0.0, 0.1], [0.0], [0.0, 0.2]]  # (levels given directly: 3, 2 and 3 of them)
    model.fit_levels(random_levels, pattern_counts(levels))
    assert model.prior_ == pytest.approx(prior, abs=0.003)
    for fitted, true in zip(model.m_, m):
        np.testing.assert_allclose(fitted, true, atol=0.01)
    for fitted, true in zip(model.u_, u):
        np.testing.assert_allclose(fitted, true, atol=0.002)


def test_dependent_treatments_are_found_and_their_u_is_joint():
    """Treatments 1 and 2 agree together among non-matches (a city and its zip code): found from the
    random pairs, scored with u of the second given the first, and EM still recovers m and the prior."""
    rng = np.random.default_rng(2)
    m = [np.array([0.8, 0.15, 0.05]), np.array([0.85, 0.15]), np.array([0.9, 0.1]), np.array([0.9, 0.1])]
    u0, u3 = np.array([0.01, 0.09, 0.9]), np.array([0.05, 0.95])

    def non_matches(n):
        same_city = rng.random(n) < 0.1
        zip_code = np.where(same_city, rng.random(n) < 0.95, rng.random(n) < 0.01)  # zip agrees with the city
        return np.column_stack([rng.choice(3, n, p=u0), np.where(same_city, 0, 1), np.where(zip_code, 0, 1),
                                rng.choice(2, n, p=u3)])

    prior, n = 0.05, 300_000
    match = rng.random(n) < prior
    levels = non_matches(n)
    levels[match] = np.column_stack([rng.choice(len(mk), match.sum(), p=mk) for mk in m])
    model = FellegiSunter()
    model.cuts_ = [[0.0, 0.1], [0.0], [0.0], [0.0]]
    model.fit_levels(non_matches(1_000_000), pattern_counts(levels))
    assert model.groups_ == [[1, 2]]
    assert model.prior_ == pytest.approx(prior, abs=0.003)
    for fitted, true in zip(model.m_, m):
        np.testing.assert_allclose(fitted, true, atol=0.01)
    # agreeing on both is worth what agreeing on both is worth, not the sum of two independent agreements
    both = model.contributions(np.array([[2, 0, 0, 1]]))[0, 1:3].sum()
    assert both == pytest.approx(np.log2(m[1][0] * m[2][0] / (0.1 * 0.95)), abs=0.1)


def test_the_matches_among_random_pairs_of_a_small_cross_product_are_not_taken_for_chance(monkeypatch):
    """3,000 × 4,500 records with 3,000 matches: one random pair in 4,500 matches, a third of the random
    pairs close on the first treatment are matches, and they agree on the second too. Counted as
    non-matches, they made the first treatment's agreement look like chance and the two treatments look
    dependent (so the second said nothing), and the prior fell to nothing: no link at all. Weighted by
    how little they look like matches, u is that of the non-matches, no dependence is found, and the
    matches expected are the matches there are."""
    import bigalign.fellegi_sunter as fs

    rng = np.random.default_rng(4)
    m = [np.array([0.9, 0.1]), np.array([0.8, 0.2])]
    u = [np.array([0.0005, 0.9995]), np.array([0.004, 0.996])]
    population, matches = 3000 * 4500, 3000

    def drawn(n, match):
        return np.column_stack([np.where(match, rng.choice(2, n, p=mk), rng.choice(2, n, p=uk))
                                for mk, uk in zip(m, u)])

    random_levels = drawn(200_000, rng.random(200_000) < matches / population)
    candidates = pattern_counts(np.vstack([drawn(matches, np.ones(matches, bool)), drawn(6000, np.zeros(6000, bool))]))

    def fitted():
        model = FellegiSunter()
        model.cuts_ = [[0.0], [0.0]]
        return model.fit_levels(random_levels, candidates, records=3000, population=population)

    model = fitted()
    # (the matches that disagree on one of the two and agree on the other are about as likely chance)
    assert model.groups_ == [] and 0.7 * matches < model.expected_matches_ < 1.05 * matches
    for fitted_m, true in zip(model.m_, m):
        np.testing.assert_allclose(fitted_m, true, atol=0.02)
    assert model.u_[0][0] < 0.0006  # (the random pairs' own share close on it is ~0.0007)
    # the automatic threshold is the probability of a pattern: that pattern's pairs are linked, scored apart
    threshold, _ = best_threshold(model.expected_quality())
    weights = model.match_weights(fs.levels_of(model.patterns_))
    at = np.isclose(fs.match_probability(weights), threshold, rtol=0, atol=1e-12)
    assert at.any() and (fs.weight_distance(weights[at]) <= fs.distance_threshold(threshold)).all()
    assert (fs.weight_distance(weights[weights < weights[at].min()]) > fs.distance_threshold(threshold)).all()
    monkeypatch.setattr(fs, "U_CORRECTIONS", 0)
    uncorrected = fitted()
    assert uncorrected.groups_ == [[0, 1]] and uncorrected.expected_matches_ < 1


def test_a_level_no_match_reaches_weighs_what_the_matches_can_say(monkeypatch):
    """Matches that never disagree on a treatment (a generated identifier never corrupted), and four
    treatments that tell matches from non-matches: m of its farthest level is not ~0 (a veto of -22 bits
    here, -40 to -50 on the demo, which one typo in real data would meet) but what one pseudo-match
    spread as u gives: its weight about -log2(matches + 1), and never below."""
    import bigalign.fellegi_sunter as fs

    rng = np.random.default_rng(7)
    m = [np.array([0.9, 0.1, 0.0])] + [np.array([0.9, 0.1])] * 3
    u = [np.array([0.01, 0.09, 0.9])] + [np.array([0.02, 0.98])] * 3
    n, prior = 100_000, 0.05
    match = rng.random(n) < prior
    levels = np.column_stack([np.where(match, rng.choice(len(mk), n, p=mk), rng.choice(len(uk), n, p=uk))
                              for mk, uk in zip(m, u)])
    random_levels = np.column_stack([rng.choice(len(uk), 500_000, p=uk) for uk in u])

    def farthest_weight() -> tuple[float, float]:
        model = FellegiSunter()
        model.cuts_ = [[0.0, 0.1], [0.0], [0.0], [0.0]]
        model.fit_levels(random_levels, pattern_counts(levels))
        np.testing.assert_allclose(model.m_[0][:2], m[0][:2], atol=0.01)
        return model.contributions(np.array([[2, 0, 0, 0]]))[0, 0], model.expected_matches_

    weight, matches = farthest_weight()
    assert -np.log2(matches + 1) - 0.01 <= weight <= -np.log2(matches + 1) + 0.5
    monkeypatch.setattr(fs, "PSEUDO_MATCHES", 0.0)
    assert farthest_weight()[0] < weight - 5


def test_a_pair_as_probable_as_the_threshold_is_linked():
    """A link's score (1 / (1 + 2^w)) and the threshold's (from a probability) are computed apart: a pair
    whose probability is the threshold — the automatic one is always a pattern's — is linked (1 − p left
    out a third of them), and one 0.001 bit below it is not."""
    from bigalign.weights import distance_threshold, match_probability, weight_distance

    weights = np.linspace(-10, 12, 20_001)
    thresholds = np.array([distance_threshold(p) for p in match_probability(weights)])
    assert (weight_distance(weights) <= thresholds).all()
    assert (weight_distance(weights - 0.001) > thresholds).all()


def test_u_from_random_pairs_is_the_u_of_the_cross_product():
    data = person_records(150, seed=1)
    treatments = make_treatments(PERSON_TREATMENTS)
    a, b = data.alignset.reset_index(drop=True), data.targetset.reset_index(drop=True)
    encoded_a, encoded_b = [t.encode(a) for t in treatments], [t.encode(b) for t in treatments]
    cuts = [[0.0, 0.2], [0.0, 0.05], [0.0, 0.3], [0.0, 0.1], [0.0], [0.0, 0.2]]

    def fitted():  # (in memory: every pair of the cross product is a candidate)
        model = FellegiSunter(cuts, random_pairs=300_000, seed=3)
        return bigalign.align(a, b, treatments, threshold="auto", model=model).attrs["model"]

    model = fitted()
    ia, ib = np.repeat(np.arange(len(a)), len(b)), np.tile(np.arange(len(b)), len(a))
    exact = model.levels(treatment_pair_distances(treatments, encoded_a, encoded_b, ia, ib))
    for k, u in enumerate(model.u_):
        known = exact[:, k][exact[:, k] != MISSING]
        np.testing.assert_allclose(u, np.bincount(known, minlength=len(u)) / len(known), atol=0.005)
    # the same seed, the same model
    again = fitted()
    assert again.prior_ == model.prior_ and all((x == y).all() for x, y in zip(again.m_, model.m_))


@pytest.fixture(scope="module")
def people():
    return person_records(800, seed=5)


def test_explanations_add_up_to_the_match_weight(people):
    links = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold=0.5,
                           model=FellegiSunter(), explain=True)
    weights = links[[c for c in links.columns if c.endswith(": weight")]].sum(axis=1) + links["prior_weight"]
    np.testing.assert_allclose(weights, links["match_weight"], rtol=1e-12)
    np.testing.assert_allclose(links["match_probability"], 1 / (1 + 2.0 ** -links["match_weight"]), rtol=1e-12)
    assert (links["match_probability"] >= 0.5).all() and links["align_id"].is_unique
    levels = links[[c for c in links.columns if c.endswith(": level")]]
    assert levels.shape[1] == len(PERSON_TREATMENTS) and (levels >= MISSING).all().all()


def test_the_automatic_threshold_is_near_the_best_one(people):
    truth = people.truth.astype(str)
    auto = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold="auto",
                          model=FellegiSunter())
    f1_auto = link_quality(auto.astype({"align_id": str, "target_id": str}), truth).f1
    every = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold=1e-9,
                           model=FellegiSunter()).astype({"align_id": str, "target_id": str})
    best = max(link_quality(every[every["match_probability"] >= p], truth).f1
               for p in np.unique(every["match_probability"]))
    assert f1_auto >= best - 0.01 and f1_auto >= 0.97, (f1_auto, best)


def test_a_threshold_is_a_probability(people):
    with pytest.raises(ValueError, match="match probability"):
        bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold=3.5, model=FellegiSunter())
    with pytest.raises(ValueError, match="no treatment"):
        bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold="auto",
                       model=FellegiSunter({"nickname": [0.0]}))


def blocking():
    from bigalign.blocking import KeyBlocking, MinHashLSHBlocking, UnionBlocking

    return UnionBlocking([MinHashLSHBlocking(["given_name", "surname"], threshold=0.6),
                          KeyBlocking("date_of_birth", "date"), KeyBlocking("soc_sec_id")])


def test_on_a_cluster_the_same_model_and_links_whatever_the_workers(client, people):
    """Fitted on the blocked candidates: the same parameters and links on 2 workers and 3 partitions,
    on 3 workers and 7 partitions, and near the in-memory model's F1."""
    from distributed import Client, LocalCluster

    def run(c, npartitions):
        model = FellegiSunter(term_frequencies=["suburb"])
        links = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold="auto",
                               model=model, blocking=blocking(), client=c, npartitions=npartitions, explain=True)
        assert not hasattr(model, "m_")  # (the model passed is not changed: the fitted one is the links')
        return links.attrs["model"], links

    model, links = run(client, 3)
    with LocalCluster(n_workers=3, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as three:
        others = [run(three, 7)]
    # no cluster: two threads of this process (the pairs take their values from the sets whole)
    none = NoCluster(2)
    try:
        others.append(run(none, 4))
    finally:
        none.close()
    for other, again in others:
        pd.testing.assert_frame_equal(links, again)
        assert model.prior_ == other.prior_ and model.cuts_ == other.cuts_
        for (hashes, frequencies), (again_hashes, again_frequencies) in zip(model.term_frequencies_.values(),
                                                                             other.term_frequencies_.values()):
            assert (hashes == again_hashes).all() and (frequencies == again_frequencies).all()
        assert all((a == b).all() for a, b in zip(model.m_ + model.u_, other.m_ + other.u_))
    assert list(links.columns[:5]) == ["align_id", "target_id", "match_weight", "match_probability", "prior_weight"]
    assert "given_name+surname: level" in links.columns and "soc_sec_id: distance" in links.columns
    weights = links[[c for c in links.columns if c.endswith(": weight")]].sum(axis=1) + links["prior_weight"]
    np.testing.assert_allclose(weights, links["match_weight"], rtol=1e-12)
    f1 = link_quality(links.astype({"align_id": str, "target_id": str}), people.truth.astype(str)).f1
    assert f1 >= 0.98 and (links["match_probability"] >= 0.0).all()
    assert model.known_m_ is None  # (no truth, no labels: nothing to check m against)


def test_a_distance_model_explains_its_links_too(client, people):
    """With the weighted distance, the explanation is each treatment's distance: weighted and summed
    (missing values left out), they give the link's distance, on a cluster as in memory."""
    from bigalign.treatments import global_distances

    treatments = make_treatments(PERSON_TREATMENTS)
    for links in (bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold=3.5,
                                 blocking=blocking(), client=client, explain=True),
                  bigalign.align(people.alignset.head(300), people.targetset, PERSON_TREATMENTS, threshold=3.5,
                                 explain=True)):
        assert list(links.columns) == ["align_id", "target_id", "distance"] + [f"{t}: distance" for t in treatments]
        total = global_distances(treatments, links[[f"{t}: distance" for t in treatments]].to_numpy(np.float64))
        np.testing.assert_array_equal(total, links["distance"].to_numpy())
        assert links["suburb: distance"].isna().any()  # a missing value shows as such


def test_term_frequencies_weigh_a_common_value_less_than_a_rare_one():
    """Half the people are Martins: agreeing on Martin is worth log2(m / f(Martin)), f the share of
    records that are Martins, less than agreeing on a name held by two records only."""
    rng = np.random.default_rng(4)
    n = 600
    surnames = np.where(np.arange(n) % 2 == 0, "martin", [f"name{k:04d}" for k in range(n)])
    people = pd.DataFrame({"id": [f"p{k}" for k in range(n)], "surname": surnames,
                           "born": [f"{1 + k % 28:02d}/{1 + k % 12:02d}/{1950 + k % 40}" for k in range(n)],
                           "town": rng.choice([f"town{k}" for k in range(30)], n)})
    register = people.assign(id=[f"r{k}" for k in range(n)])
    treatments = [{"column": "surname", "metric": "exact"}, {"column": "born", "metric": "temporal"},
                  {"column": "town", "metric": "exact"}]
    links = bigalign.align(people, register, treatments, threshold="auto",
                           model=FellegiSunter(term_frequencies=["surname"]), explain=True)
    model = links.attrs["model"]
    assert len(links) == n and (links["align_id"].str[1:] == links["target_id"].str[1:]).all()
    weight = links.set_index("align_id")["surname: weight"]
    m_equal = model.m_[0][0]
    assert weight["p0"] == pytest.approx(np.log2(m_equal / (2 * n / 2 / (2 * n))), rel=1e-12)  # Martin: f = 1/2
    assert weight["p1"] == pytest.approx(np.log2(m_equal / (2 / (2 * n))), rel=1e-12)  # a name two records hold
    total = links[[c for c in links.columns if c.endswith(": weight")]].sum(axis=1) + links["prior_weight"]
    np.testing.assert_allclose(total, links["match_weight"], rtol=1e-12)
    with pytest.raises(ValueError, match="term frequencies for 'nickname'"):
        bigalign.align(people, register, treatments, threshold="auto",
                       model=FellegiSunter(term_frequencies=["nickname"]))


def test_labelled_pairs_give_m(people):
    """m from labelled pairs is their levels' frequencies, exactly; the prior is still fitted."""
    labels = people.truth.iloc[::3]
    links = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, threshold="auto",
                           model=FellegiSunter(labels=labels))
    model = links.attrs["model"]
    treatments = make_treatments(PERSON_TREATMENTS)
    a, b = people.alignset.reset_index(drop=True), people.targetset.reset_index(drop=True)
    ia = pd.Index(a.iloc[:, 0].astype(str)).get_indexer(labels["align_id"].astype(str))
    ib = pd.Index(b.iloc[:, 0].astype(str)).get_indexer(labels["target_id"].astype(str))
    levels = model.levels(treatment_pair_distances(treatments, [t.encode(a) for t in treatments],
                                                   [t.encode(b) for t in treatments], ia, ib))
    assert model.known_pairs_ == len(labels)
    for k, m in enumerate(model.m_):
        counts = np.bincount(levels[:, k][levels[:, k] != MISSING], minlength=len(m)).astype(float)
        counts[counts == 0] = 0.5
        np.testing.assert_allclose(m, counts / counts.sum(), rtol=1e-12)
    assert 0 < model.prior_ < 0.01
    f1 = link_quality(links.astype({"align_id": str, "target_id": str}), people.truth.astype(str)).f1
    assert f1 >= 0.98
    with pytest.raises(ValueError, match="labels"):
        FellegiSunter(labels=labels.rename(columns={"target_id": "t"}))


def test_a_job_with_a_learned_model_and_an_automatic_threshold(tmp_path, client):
    from test_cli import bigalign as run_cli
    from test_cli import small_person_job

    from bigalign.errors import JobError
    from bigalign.jobs import load_job

    job = small_person_job(tmp_path, n=2000, learned=True)
    text = job.read_text()
    assert 'threshold = "auto"' in text  # the demo as shipped: a learned model, an automatic threshold
    text = text.replace('[model]\nkind = "fellegi-sunter"\n', "")
    text = text.replace('scale = 365\nweight = 2', 'scale = 365\nweight = 2\nlevels = [0, 0.01]', 1)
    text = text.replace('column = "suburb"\n', 'column = "suburb"\nterm_frequency = true\n', 1)
    job.write_text(text.replace("[output]\n", "[output]\nexplain = true\n")
                   + '\n[model]\nkind = "fellegi-sunter"\nseed = 1\n')
    # plan fits the model on the candidates and prints it, without writing links
    plan = run_cli("plan", job, "--scheduler", client.scheduler.address)
    assert "model: Fellegi–Sunter (m by EM, u from random pairs)" in plan.stdout
    assert "date_of_birth                ≤ 0.01" in plan.stdout and not (tmp_path / "links.parquet").exists()
    planned = json.loads((tmp_path / "candidates.json").read_text())["model"]
    result = run_cli("run", job, "--scheduler", client.scheduler.address)
    assert "model: Fellegi–Sunter" in result.stdout and "chosen as the best F1 the model expects" in result.stdout
    assert "threshold" in result.stderr  # the choice is logged with its expectation
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quality"]["f1"] >= 0.98
    model = summary["model"]
    assert model["treatments"][1]["cuts"] == [0.0, 0.01]
    assert [t["term_frequencies"] for t in model["treatments"]] == [False, False, False, True, False, False]
    assert model["treatments"][3]["distinct_values"] > 100  # suburbs
    assert [t["m"] for t in model["treatments"]] == [t["m"] for t in planned["treatments"]]  # the same fit
    # the truth checks m: the fitted m is near the levels' frequencies among the true candidate pairs
    assert model["m_from"] == "EM" and model["known_pairs"] > 1500
    for t in model["treatments"]:
        assert abs(t["m"][0] - t["known_m"][0]) < 0.05, t
    links = pd.read_parquet(tmp_path / "links.parquet")
    assert list(links.columns[:5]) == ["align_id", "target_id", "match_weight", "match_probability", "prior_weight"]
    weights = links[[c for c in links.columns if c.endswith(": weight")]].sum(axis=1) + links["prior_weight"]
    np.testing.assert_allclose(weights, links["match_weight"], rtol=1e-12)
    # (links at the threshold's match weight, less a slack of rounding: see distance_threshold)
    threshold = model["threshold"]
    assert (links["match_weight"] >= np.log2(threshold / (1 - threshold)) - THRESHOLD_SLACK_BITS - 1e-9).all()
    page = (tmp_path / "report.html").read_text()
    assert "The learned model (Fellegi–Sunter)" in page and 'id="model"' in page
    assert "m among the" in page and "true candidate pairs" in page
    assert "suburb: an equal value's u is its frequency" in page and "postcode depends on suburb" in page
    for plot in ("plot-match-weights", "plot-expected", "plot-waterfalls"):
        assert f'id="{plot}"' in page
    assert 'id="waterfall-0-total"' in page and 'id="waterfall-3-total"' in page and 'id="match-weights-0"' in page
    # labelled pairs give m
    job.write_text(text + '\n[model]\nkind = "fellegi-sunter"\nseed = 1\nlabels = "truth.csv"\n')
    result = run_cli("run", job, "--scheduler", client.scheduler.address)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"]["m_from"] == "labels" and f"m from {summary['model']['known_pairs']} labelled pairs" \
        in result.stdout
    assert summary["quality"]["f1"] >= 0.98
    assert list(pd.read_parquet(tmp_path / "links.parquet").columns) == ["align_id", "target_id", "match_weight",
                                                                          "match_probability"]
    model = '\n[model]\nkind = "fellegi-sunter"\nseed = 1\n'
    for body, message in [(text + model.replace("fellegi-sunter", "bayes"), "model.kind: must be 'distance'"),
                          (text.replace('threshold = "auto"', "threshold = 3.5") + model,
                           "threshold: with a learned model"),
                          (text + '\n[model]\nkind = "distance"\n',
                           "'term_frequency' and 'group' belong to a \\[model\\] of kind"),
                          (text.replace("levels = [0, 0.01]", "").replace("term_frequency = true", "")
                           + '\n[model]\nkind = "distance"\n',
                           "'auto' needs a learned model"),
                          (text + model.replace("seed", "seeed"), "model.seeed: unknown key"),
                          (text + model + 'labels = "nowhere.csv"\n', "nowhere.csv"),
                          (text.replace('links.parquet"\nformat = "parquet"', 'links.nt"\nformat = "ntriples"')
                           .replace("[output]\n", "[output]\nexplain = true\n") + model,
                           "output.explain: explanations are columns")]:
        job.write_text(body)
        with pytest.raises(JobError, match=message):
            load_job(str(job))


def test_people_generated_otherwise_with_levels_and_threshold_chosen_by_the_model(client):
    """Other fields and noise than bigalign.datasets (tests/other_people.py): an e-mail address made of
    the name, a zip code that follows the city, initials, swapped day and month... The treatments a
    user would write, no level nor threshold given: F1 ≥ 0.99 on blocked candidates."""
    from other_people import other_people

    from bigalign.blocking import KeyBlocking, MinHashLSHBlocking, UnionBlocking

    data = other_people(4000, seed=0)
    treatments = [
        {"column": ["first", "last"], "metric": "levenshtein", "normalized": True, "normalizers": ["lunormalize"]},
        {"column": "born", "metric": "temporal"},
        {"column": "phone", "metric": "char_levenshtein"},
        {"column": "email", "metric": "char_levenshtein", "normalized": True},
        {"column": "city", "metric": "jaro_winkler"},
        {"column": "zip", "metric": "exact"},
    ]
    blocking = UnionBlocking([MinHashLSHBlocking(["first", "last"], threshold=0.5), KeyBlocking("phone"),
                              KeyBlocking(["born", "zip"]), KeyBlocking("email")])
    links = bigalign.align(data.alignset, data.targetset, treatments, threshold="auto", model=FellegiSunter(),
                           blocking=blocking, client=client)
    quality = link_quality(links.astype({"align_id": str, "target_id": str}), data.truth)
    assert quality.f1 >= 0.99, quality
    # the name and the e-mail address made of it, the city and its zip code: found dependent
    assert links.attrs["model"].groups_ == [[0, 3], [4, 5]]
    # a twelfth moved city: the city and zip code disagree together among matches too, but weighed as one
    # they find a record's counterpart or two more (fewer than 2%): tried, said, weighed apart
    assert [(g["members"], g["kept"]) for g in links.attrs["model"].groups_found_] == [(["city", "zip"], False)]


def test_deduplication_and_one_to_one_with_a_learned_model(client):
    """A deduplication scored by a model: each unordered pair once, smaller id first, the same pairs in
    memory and on blocked candidates (those the blocking keeps); one-to-one uses no record twice."""
    data = person_records(600, seed=3)
    both = pd.concat([data.alignset, data.targetset], ignore_index=True)
    brute = bigalign.align(both, both, PERSON_TREATMENTS, "auto", uniq=False, model=FellegiSunter())
    blocked = bigalign.align(both, both, PERSON_TREATMENTS, "auto", uniq=False, model=FellegiSunter(),
                             blocking=blocking(), client=client, npartitions=3)
    for links in (brute, blocked):
        assert (links.align_id < links.target_id).all() and not links.duplicated(["align_id", "target_id"]).any()
        quality = link_quality(links.astype({"align_id": str, "target_id": str}), data.truth.astype(str),
                               unordered=True)
        assert quality.f1 >= 0.98, quality
    single = bigalign.align(data.alignset, data.targetset, PERSON_TREATMENTS, "auto", one_to_one=True,
                            model=FellegiSunter(), blocking=blocking(), client=client)
    assert single["align_id"].is_unique and single["target_id"].is_unique and len(single) >= 0.97 * len(data.truth)
