"""``[blocking] kind = "auto"`` and ``bigalign plan --suggest``: rules drawn from the treatments, their pairs
counted exactly, the union chosen to cover the likely matches, and the recall estimated without labels."""

import dataclasses
import random
import subprocess
import sys
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from bigalign.blocking import AutoBlocking, UnionBlocking
from bigalign.blocking.auto import Rule, candidate_rules, choose_rules
from bigalign.cluster import NoCluster
from bigalign.datasets import person_records
from bigalign.jobs import load_job
from bigalign.pipeline import run_alignment
from bigalign.pipeline.choose import _rule_costs, _sample_pairs, choose_blocking
from bigalign.runner import run_job
from bigalign.scorers import WeightedDistance

ROOT = Path(__file__).resolve().parents[1]
DEMO = (ROOT / "jobs" / "demo.toml").read_text()
KEYS = (ROOT / "jobs" / "demo_keys.toml").read_text()
# The demo's hand-written keys (jobs/demo_keys.toml's [blocking]), against which a choice is measured.
HAND_KEYS = KEYS[KEYS.index("[blocking]"):KEYS.index("# What agreeing at each level")]


def demo_job(folder: Path, blocking: str) -> Path:
    """The demo job (learned model, threshold auto) on the generated files in ``folder``, with ``blocking``."""
    text = DEMO[:DEMO.index("[blocking]")] + blocking + "\n" + DEMO[DEMO.index("# What agreeing at each level"):]
    text = text.replace("../out/demo/", "").replace('path = "links.parquet"', 'path = "out/links.parquet"')
    text = text[:text.index("[generate]")] + text[text.index("[alignset]"):]
    job = folder / f"job-{abs(hash(blocking)) % 10**6}.toml"
    job.write_text(text)
    return job


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people")
    data = person_records(6000, seed=11)
    data.alignset.to_csv(folder / "people_a.csv", index=False)
    data.targetset.to_parquet(folder / "people_b.parquet", index=False)
    data.truth.to_csv(folder / "truth.csv", index=False)
    return folder, data


def test_the_rules_come_from_the_treatments(people):
    job = load_job(str(demo_job(people[0], '[blocking]\nkind = "auto"\n')))
    assert isinstance(job.alignment.blocking, AutoBlocking) and job.alignment.blocking.max_pairs_per_record == 5
    rules = candidate_rules(job.alignment.treatments)
    labels = [rule.label for rule in rules]
    assert labels[:6] == ["soundex-set(given_name+surname)", "exact(given_name)", "exact(surname)",
                          "date(date_of_birth)", "year(date_of_birth)", "soundex-set(street_number+address)"]
    assert "date(date_of_birth) & exact(suburb)" in labels and len(labels) == len(set(labels))
    assert not any("given_name) & exact(surname)" in label for label in labels)  # (one treatment's keys apart)
    toml = Rule((("given_name", "surname"), "date_of_birth"), ("soundex-set", "date")).toml()
    assert toml == ('[[blocking.of]]\nkind = "key"\ncolumns = [["given_name", "surname"], "date_of_birth"]\n'
                    'transform = ["soundex-set", "date"]\n')


def test_the_demo_chooses_its_blocking_and_its_keys_version_differs_in_that_alone():
    """jobs/demo.toml (what the README runs first) chooses its blocking; jobs/demo_keys.toml (what an index,
    the engine's benchmarks and the tests of byte-identical links read) is the same job with the keys
    written by hand."""
    demo = load_job(str(ROOT / "jobs" / "demo.toml"))
    assert isinstance(demo.alignment.blocking, AutoBlocking)
    assert isinstance(load_job(str(ROOT / "jobs" / "demo_keys.toml")).alignment.blocking, UnionBlocking)

    def without_the_blocking(text):  # (after the header's comment; the blocking and its comment left out)
        body = text[text.index("threshold = "):]
        return body[:body.index("# A pair is a candidate")] + body[body.index("# What agreeing at each level"):]

    assert without_the_blocking(DEMO) == without_the_blocking(KEYS)


@pytest.mark.integration
def test_counted_pairs_are_the_pairs_the_pipeline_forms(people):
    """Each rule's pairs, counted from the sampled records' keys in the targets, equal the candidates a run
    of that rule makes when the samples are the whole sets (a deduplication's too); from a third of the
    alignset, within 15%."""
    folder, data = people
    job = load_job(str(demo_job(folder, '[blocking]\nkind = "auto"\n')))
    rules = candidate_rules(job.alignment.treatments)
    picked = [rules[i] for i in (1, 3, 4, 9)] + [r for r in rules if len(r.parts) == 2][:4] + [
        r for r in rules if r.label == "minhash(given_name+surname, 0.6)"]
    a = dd.from_pandas(data.alignset, npartitions=3, sort=False)
    b = dd.from_pandas(data.targetset, npartitions=2, sort=False)
    client = NoCluster(2)
    third = data.alignset.iloc[::3].reset_index(drop=True)
    for dedupe, (left, right) in ((False, (a, b)), (True, (a, a))):
        whole = (len(data.alignset), len(right), len(right))
        both = np.ones(len(data.alignset), dtype=bool) if dedupe else None
        exact, rows, keys = _rule_costs(client, data.alignset, right, picked, whole, dedupe, 10**9, both)
        # (MinHash: block pairs, of which the samples' pairs tell the share made: each pair once)
        made = _sample_pairs(data.alignset, keys, rows, picked, list(range(len(picked))), dedupe)[1]
        estimated = _rule_costs(client, third, right, picked, whole, dedupe, 10**9, both[::3] if dedupe else None)[0]
        for r, rule in enumerate(picked):
            alignment = dataclasses.replace(job.alignment, blocking=rule.blocking, dedupe=dedupe, uniq=False,
                                            scorer=WeightedDistance(), threshold=3.5)
            formed = run_alignment(client, left, right, alignment, score=False).stats
            if rule.kind == "minhash_lsh":
                assert exact["pairs"].iloc[r] == formed.block_pairs, (rule.label, dedupe)
                assert round(exact["pairs"].iloc[r] * made[r]) == formed.candidate_pairs, (rule.label, dedupe)
                assert exact["largest"].iloc[r] == formed.largest_block_pairs, (rule.label, dedupe)
                continue
            assert exact["pairs"].iloc[r] == formed.candidate_pairs, (rule.label, dedupe)
            assert exact["largest"].iloc[r] == formed.largest_block_pairs, (rule.label, dedupe)
            assert abs(estimated["pairs"].iloc[r] - formed.candidate_pairs) <= 0.15 * formed.candidate_pairs + 30


def test_the_greedy_cover_counts_shared_pairs_once():
    """Two rules finding the same matches with the same pairs: the second adds nothing and is not chosen;
    a third, covering the rest, is, while the budget allows."""
    rules = [Rule(("a",), ("exact",)), Rule(("b",), ("exact",)), Rule(("c",), ("exact",))]
    costs = pd.DataFrame({"pairs": [100, 100, 300], "largest": [2, 2, 2]})
    covered = np.array([[1, 1, 0]] * 90 + [[0, 0, 1]] * 10, dtype=bool)
    same = np.arange(10, dtype=np.uint64)
    choice = choose_rules(rules, costs, covered, np.ones(100), [same, same, np.arange(10, 40, dtype=np.uint64)],
                          10, 1000, budget=500, largest_allowed=100)
    assert [r.label for r in choice.chosen] == ["exact(a)", "exact(c)"]
    assert choice.pair_completeness == 1.0 and choice.estimated_pairs == 400
    poorer = choose_rules(rules, costs, covered, np.ones(100), [same, same, np.arange(10, 40, dtype=np.uint64)], 10,
                          1000, budget=350, largest_allowed=100)
    assert [r.label for r in poorer.chosen] == ["exact(a)"] and poorer.pair_completeness == 0.9
    low, high = poorer.interval
    assert low < 0.9 < high


@pytest.mark.integration
def test_auto_chooses_a_blocking_that_finds_the_matches_and_estimates_its_recall(people, tmp_path):
    """kind = "auto", learned model, threshold auto: the links' F1 within 0.002 of the demo's hand-written
    keys, at most twice their candidates; the estimated pair completeness within 0.01 of the true one."""
    folder, _ = people
    for name in ("people_a.csv", "people_b.parquet", "truth.csv"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    hand_job = demo_job(tmp_path, HAND_KEYS)
    hand = run_job(load_job(str(hand_job)), show_progress=False)
    (tmp_path / "out" / "links.parquet").rename(tmp_path / "hand.parquet")
    auto = run_job(load_job(str(demo_job(tmp_path, '[blocking]\nkind = "auto"\n'))), show_progress=False)
    chosen = auto.blocking["chosen"]
    assert chosen["chosen"] and auto.quality["f1"] >= hand.quality["f1"] - 0.002
    assert auto.blocking["candidate_pairs"] <= 2 * hand.blocking["candidate_pairs"]
    assert abs(chosen["pair_completeness"] - auto.blocking["pair_completeness"]) <= 0.01
    assert "choose blocking" in auto.seconds


def product_titles(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Records of products: a title of three to six coined words and a brand; each copy (in the targetset,
    among n / 2 records that match none) loses or gains a word, swaps two and has a typo in one or two of
    them (its first letter too), and its brand misspelt in two copies of five: neither the title nor
    its Soundex is a key that finds them."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(3000)]

    def typo(word: str) -> str:
        i, kind = rng.randrange(len(word)), rng.random()
        if kind < 0.4:
            return word[:i] + rng.choice(letters) + word[i + 1:]
        if kind < 0.7 and len(word) > 3:
            return word[:i] + word[i + 1:]
        return word[:i] + rng.choice(letters) + word[i:]

    a, b, truth = [], [], []
    for i in range(n):
        title, brand = [rng.choice(words) for _ in range(rng.randint(3, 6))], rng.choice(words[:200])
        a.append({"id": f"a{i}", "title": " ".join(title), "brand": brand})
        copy = list(title)
        if rng.random() < 0.5 and len(copy) > 3:
            copy.pop(rng.randrange(len(copy)))
        if rng.random() < 0.3:
            copy.insert(rng.randrange(len(copy) + 1), rng.choice(words))
        if rng.random() < 0.5:
            x, y = rng.sample(range(len(copy)), 2)
            copy[x], copy[y] = copy[y], copy[x]
        for _ in range(rng.randint(1, 2)):
            j = rng.randrange(len(copy))
            copy[j] = typo(copy[j])
        b.append({"id": f"b{i}", "title": " ".join(copy), "brand": brand if rng.random() < 0.6 else typo(brand)})
        truth.append({"align_id": f"a{i}", "target_id": f"b{i}"})
    for i in range(n // 2):
        b.append({"id": f"c{i}", "title": " ".join(rng.choice(words) for _ in range(rng.randint(3, 6))),
                  "brand": rng.choice(words[:200])})
    return pd.DataFrame(a), pd.DataFrame(b).sample(frac=1, random_state=seed), pd.DataFrame(truth)


@pytest.mark.integration
def test_auto_chooses_minhash_where_no_key_finds_the_matches(tmp_path):
    """Titles that lose, gain and swap words, with typos: kind = "auto" chooses MinHash LSH on them (no key
    rule within the budget reaches a third of the likely matches) and, with the learned model and threshold
    auto, finds about what a hand-written MinHash blocking finds (at 128 permutations, its recall is a little
    higher: auto hashes with 64); its estimate of the pair completeness within 0.01."""
    align, target, truth = product_titles(3000, seed=5)
    align.to_csv(tmp_path / "a.csv", index=False)
    target.to_csv(tmp_path / "b.csv", index=False)
    truth.to_csv(tmp_path / "truth.csv", index=False)
    job = ('truth = "truth.csv"\nuniq = true\nthreshold = "auto"\n[alignset]\npath = "a.csv"\nid = "id"\n'
           '[targetset]\npath = "b.csv"\nid = "id"\n[[treatments]]\ncolumn = "title"\n'
           'normalizers = ["lunormalize", "simplify"]\nmetric = "jaccard"\n[[treatments]]\ncolumn = "brand"\n'
           'metric = "levenshtein"\nnormalized = true\n[model]\nkind = "fellegi-sunter"\n')
    (tmp_path / "auto.toml").write_text(job + '[blocking]\nkind = "auto"\n[output]\npath = "auto/links.csv"\n')
    (tmp_path / "hand.toml").write_text(job + '[blocking]\nkind = "minhash_lsh"\ncolumns = ["title"]\n'
                                        'threshold = 0.3\n[output]\npath = "hand/links.csv"\n')
    auto = run_job(load_job(str(tmp_path / "auto.toml")), show_progress=False)
    hand = run_job(load_job(str(tmp_path / "hand.toml")), show_progress=False)
    chosen = auto.blocking["chosen"]
    assert any(label.startswith("minhash(title") for label in chosen["chosen"])
    keys = [row for row in chosen["rules"]
            if not row["rule"].startswith("minhash") and row["pairs"] <= chosen["budget"]]
    assert keys and max(row["recall"] for row in keys) < 0.34
    assert auto.blocking["pair_completeness"] >= 0.97 and auto.quality["f1"] >= min(0.98, hand.quality["f1"] - 0.01)
    assert abs(chosen["pair_completeness"] - auto.blocking["pair_completeness"]) <= 0.01


@pytest.mark.integration
def test_auto_chooses_neighbourhoods_on_coordinates(tmp_path):
    """The seed's cities: kind = "auto" draws kd-tree neighbourhoods from the geographical treatment (its
    scale, 25 km, and a fifth of it), counts their pairs as the run makes them (within the radius, not
    every pair of the cells around), and finds the links of the hand-written 25 km neighbourhoods."""
    text = (ROOT / "jobs" / "cities_offline.toml").read_text().replace('"data/', f'"{ROOT / "jobs" / "data"}/')
    hand = text.replace('path = "../out/cities_offline/links.nt"', 'path = "hand/links.csv"')
    auto = hand[:hand.index("[blocking]")] + '[blocking]\nkind = "auto"\n\n' + hand[hand.index("[output]"):]
    (tmp_path / "hand.toml").write_text(hand)
    (tmp_path / "auto.toml").write_text(auto.replace("hand/links.csv", "auto/links.csv"))
    summary = run_job(load_job(str(tmp_path / "auto.toml")), show_progress=False)
    hand_run = run_job(load_job(str(tmp_path / "hand.toml")), show_progress=False)
    assert any(label.startswith("kdtree(latitude+longitude") for label in summary.blocking["chosen"]["chosen"])
    pairs = {row["rule"]: row["pairs"] for row in summary.blocking["chosen"]["rules"]}
    # (counted as the run makes them, within the radius: the samples are the whole sets)
    assert pairs["kdtree(latitude+longitude, 25 km)"] == hand_run.blocking["candidate_pairs"]
    assert "kdtree(latitude+longitude, 5 km)" in pairs
    assert (tmp_path / "auto" / "links.csv").read_text() == (tmp_path / "hand" / "links.csv").read_text()


@pytest.mark.integration
def test_plan_suggest_prints_the_rules_the_union_and_its_toml(people, tmp_path):
    folder, _ = people
    for name in ("people_a.csv", "people_b.parquet", "truth.csv"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    hand_job = demo_job(tmp_path, HAND_KEYS)
    done = subprocess.run([sys.executable, "-m", "bigalign", "plan", str(hand_job), "--suggest", "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("rule ") < out.index("blocking chosen (kind = \"auto\"") < out.index("# paste into the job:")
    own = float(out.split("the job's own blocking: estimated pair completeness ")[1].split()[0])
    true = float(out.split("pair completeness: ")[1].split()[0])
    assert abs(own - true) <= 0.01
    pasted = out[out.index("[blocking]\nkind = \"union\""):]
    job = demo_job(tmp_path, pasted)
    assert isinstance(load_job(str(job)).alignment.blocking, UnionBlocking)


@pytest.mark.integration
def test_the_same_blocking_on_one_and_three_workers(people):
    folder, data = people
    job = load_job(str(demo_job(folder, '[blocking]\nkind = "auto"\n')))
    chosen = []
    for workers in (1, 3):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            a = dd.from_pandas(data.alignset, npartitions=4, sort=False)
            b = dd.from_pandas(data.targetset, npartitions=3, sort=False)
            choice = choose_blocking(client, a, b, job.alignment)
        chosen.append(([rule.label for rule in choice.chosen], choice.pair_completeness, choice.estimated_pairs))
    assert chosen[0] == chosen[1] and len(chosen[0][0]) >= 2


def test_an_index_of_an_auto_blocking_is_refused(people, tmp_path):
    from bigalign.errors import JobError
    from bigalign.index import build_index

    job = load_job(str(demo_job(people[0], '[blocking]\nkind = "auto"\n')))
    with pytest.raises(JobError, match="write them in the job"):
        build_index(job, str(tmp_path / "index"))
