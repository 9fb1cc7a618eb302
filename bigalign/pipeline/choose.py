"""``kind = "auto"``: the blocking chosen on the cluster from the job's treatments and data.

A sample of the alignset (:data:`SAMPLE_RECORDS` records, chosen by their id's hash: the same whatever the
partitioning) stands for it; the targetset is read where it is, three times (counts and a sample travel,
records do not):

1. each candidate rule's keys of the sampled records counted in the whole targetset: each rule's pairs
   (exact when the sample is the whole alignset, else the sample's pairs scaled to the alignset: the error
   is the sampling of align records alone) and its largest block;
2. the sample aligned with the whole targetset through a wide net — each key of at most
   :data:`NET_PAIRS_PER_RECORD` pairs a record, and two keys together where each alone is over it —, the
   job's scorer fitted on it as a run fits it: its links are the likely matches, weighted by their match
   probability (the weighted distance: 1 each); which rules put each one in a block is read from the keys
   of its two records;
3. each affordable rule's pairs for the sampled records (the target rows holding their keys), so that a
   rule's pairs already made by the chosen rules are not counted twice.

Then :func:`~bigalign.blocking.auto.choose_rules` chooses the union. The recall it estimates is relative
to the net: a match that no rule of the net finds is not seen.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from ..blocking import Blocking, UnionBlocking
from ..blocking.auto import (
    AutoBlocking,
    BlockingChoice,
    Rule,
    candidate_rules,
    choose_rules,
)
from ..errors import JobError
from ..spec import Alignment
from ..values.hashing import mix64
from .candidates import LARGEST_BLOCK_PAIRS
from .graph import run_alignment, timed
from .schema import combined_hashes, record_keys

__all__ = ["NET_PAIRS_PER_RECORD", "SAMPLE_RECORDS", "choose_blocking", "resolve_blocking"]

# Records of the alignset the likely matches are found for.
SAMPLE_RECORDS = 2000
# The net's rules: at most this many pairs per record each (at least four times the budget's).
NET_PAIRS_PER_RECORD = 100


def resolve_blocking(client: Any, align_dd: Any, target_dd: Any,
                     alignment: Alignment) -> tuple[Alignment, BlockingChoice | None]:
    """The alignment with its blocking chosen when it is ``"auto"`` (and the choice), else as it is."""
    if not isinstance(alignment.blocking, AutoBlocking):
        return alignment, None
    choice = choose_blocking(client, align_dd, target_dd, alignment)
    return dataclasses.replace(alignment, blocking=choice.blocking), choice


def _key_table(sample: pd.DataFrame, rules: list[Rule]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per rule, the sampled records' keys: each record's key (0: none), the distinct keys (sorted), and how
    many sampled records hold each."""
    shared: dict = {}
    table = []
    for rule in rules:
        keys = rule.blocking.keys(sample, "align", shared)[:, 0]
        distinct, counts = np.unique(keys[keys != 0], return_counts=True)
        table.append((keys, distinct, counts.astype(np.int64)))
    return table


def _target_counts(part: pd.DataFrame, rules: list[Rule], distinct: list[np.ndarray]) -> list[np.ndarray]:
    """Per rule, how many records of a target partition hold each of the sample's keys."""
    shared: dict = {}
    found = []
    for rule, keys in zip(rules, distinct):
        own = rule.blocking.keys(part, "target", shared)[:, 0]
        at = np.minimum(np.searchsorted(keys, own), max(0, len(keys) - 1))
        hit = (keys[at] == own) & (own != 0) if len(keys) else np.zeros(len(own), dtype=bool)
        found.append(np.bincount(at[hit], minlength=len(keys)).astype(np.int64))
    return found


def _rule_costs(client: Any, sample: pd.DataFrame, b: dd.DataFrame, rules: list[Rule], n_a: int,
                dedupe: bool) -> pd.DataFrame:
    """Each rule's pairs and largest block, from the sample's keys counted in the whole targetset: exact when
    the sample is the whole alignset, else the sample's pairs scaled to the alignset (a record's pairs are
    its key's targets: the error is the sampling of the alignset's records alone)."""
    table = _key_table(sample, rules)
    distinct = [keys for _, keys, _ in table]
    results = [f.result() for f in client.compute([dask.delayed(_target_counts)(part, rules, distinct)
                                                   for part in b.to_delayed()])]
    scale = n_a / max(1, len(sample))
    rows = []
    for r, (_, _, held) in enumerate(table):
        in_b = np.sum([result[r] for result in results], axis=0) if results else np.zeros(len(held), np.int64)
        if dedupe:  # (the targetset is the set itself: its counts are the keys' whole blocks)
            pairs = float((held * (in_b - 1)).sum()) * scale / 2
            largest = float((in_b * (in_b - 1) // 2).max()) if len(in_b) else 0.0
        else:
            pairs = float((held * in_b).sum()) * scale
            largest = float((np.maximum(1.0, held * scale) * in_b).max()) if len(in_b) else 0.0
        rows.append((pairs, largest))
    return pd.DataFrame(rows, columns=["pairs", "largest"])


def _sampled(client: Any, a: dd.DataFrame, share: float) -> pd.DataFrame:
    """The alignset's records whose id hash falls in the first ``share`` of the hash range (whatever the
    partitioning)."""

    def chosen(part: pd.DataFrame) -> pd.DataFrame:
        draw = mix64(record_keys(part.iloc[:, 0])) >> np.uint64(11)
        return part[draw.astype(np.float64) < share * 2.0 ** 53]

    sample = client.compute(a.map_partitions(chosen, meta=a._meta)).result()
    return sample.sort_values(sample.columns[0], kind="stable").reset_index(drop=True)


def _rows_with_keys(part: pd.DataFrame, rules: list[Rule], wanted: dict[int, np.ndarray]) -> pd.DataFrame:
    """A target partition's rows holding one of the sampled records' keys of a rule (rule, key, rid)."""
    shared: dict = {}
    nothing = np.empty(0, np.uint64)
    found = [pd.DataFrame({"rule": np.empty(0, np.int32), "key": nothing, "rid": nothing})]
    rid = record_keys(part.iloc[:, 0])
    for r, keys in wanted.items():
        own = rules[r].blocking.keys(part, "target", shared)[:, 0]
        hit = np.isin(own, keys)
        found.append(pd.DataFrame({"rule": np.full(int(hit.sum()), r, np.int32), "key": own[hit], "rid": rid[hit]}))
    return pd.concat(found, ignore_index=True)


def _sample_pairs(client: Any, sample: pd.DataFrame, b: dd.DataFrame, rules: list[Rule], usable: list[int],
                  dedupe: bool) -> list[np.ndarray]:
    """Per rule, the sorted hashes of the pairs it makes for the sampled records (only ``usable`` rules)."""
    rid = record_keys(sample.iloc[:, 0])
    keys = {r: rules[r].blocking.keys(sample, "align")[:, 0] for r in usable}
    wanted = {r: np.unique(k[k != 0]) for r, k in keys.items()}
    meta = _rows_with_keys(b._meta, rules, {})
    rows = client.compute(b.map_partitions(_rows_with_keys, rules, wanted, meta=meta)).result()
    pairs = [np.empty(0, np.uint64) for _ in rules]
    for r in usable:
        mine = pd.DataFrame({"key": keys[r], "rid_a": rid})[keys[r] != 0]
        theirs = rows[rows["rule"] == r]
        met = mine.merge(theirs, on="key")
        if dedupe:
            met = met[met["rid_a"] != met["rid"]]
        pairs[r] = np.unique(combined_hashes(met["rid_a"].to_numpy(np.uint64), met["rid"].to_numpy(np.uint64),
                                             dedupe))
    return pairs


def _likely_matches(client: Any, sample: pd.DataFrame, b: dd.DataFrame, alignment: Alignment,
                    net: list[Rule]) -> pd.DataFrame:
    """The sample's links to the targetset through the net, the job's scorer fitted on them: align_id,
    target_id, weight (the match probability; 1 with the weighted distance)."""
    narrowed = dataclasses.replace(alignment, blocking=UnionBlocking([rule.blocking for rule in net]), uniq=False,
                                   one_to_one=False, explain=False, dedupe=False, link_type="link_only")
    sample_dd = dd.from_pandas(sample, npartitions=max(1, min(8, len(sample) // 250)), sort=False)
    run = run_alignment(client, sample_dd, b, narrowed)
    links = run.links
    if alignment.dedupe:  # (the sample is of the set itself: not a record with itself)
        links = links[links["align_id"].astype(str) != links["target_id"].astype(str)]
    weight = 1.0 - links["distance"].to_numpy(np.float64) if alignment.scorer.learns else np.ones(len(links))
    return pd.DataFrame({"align_id": links["align_id"].to_numpy(object), "target_id": links["target_id"].to_numpy(
        object), "weight": weight})


def _coverage(client: Any, sample: pd.DataFrame, b: dd.DataFrame, rules: list[Rule],
              likely: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray]:
    """Which rule puts each likely match in a block (likely matches × rules); the matched targets, and each
    likely match's rows in the sample and in them."""
    ids = set(likely["target_id"].astype(str))

    def matched(part: pd.DataFrame) -> pd.DataFrame:
        return part[part.iloc[:, 0].astype(str).isin(ids)]

    targets = client.compute(b.map_partitions(matched, meta=b._meta)).result()
    at_a = pd.Index(sample.iloc[:, 0].astype(str)).get_indexer(likely["align_id"].astype(str))
    at_b = pd.Index(targets.iloc[:, 0].astype(str)).get_indexer(likely["target_id"].astype(str))
    covered = np.zeros((len(likely), len(rules)), dtype=bool)
    shared_a: dict = {}
    shared_b: dict = {}
    for r, rule in enumerate(rules):
        keys_a = rule.blocking.keys(sample, "align", shared_a)[:, 0][at_a]
        keys_b = rule.blocking.keys(targets, "target", shared_b)[:, 0][at_b]
        covered[:, r] = (keys_a == keys_b) & (keys_a != 0)
    return covered, targets, at_a, at_b


def _net(rules: list[Rule], pairs: np.ndarray, largest: np.ndarray, cap: float, largest_allowed: float) -> list[int]:
    """The wide net's rules: each single key within ``cap`` pairs, and each two keys together whose parts are
    each over it (two keys of the net together find nothing it does not)."""
    fits = (pairs > 0) & (pairs <= cap) & (largest <= largest_allowed)
    single = {(rule.parts[0], rule.transforms[0]): r for r, rule in enumerate(rules) if len(rule.parts) == 1}
    chosen = []
    for r, rule in enumerate(rules):
        if not fits[r]:
            continue
        members = [single.get(member) for member in zip(rule.parts, rule.transforms)]
        if len(members) == 1 or not any(m is not None and fits[m] for m in members):
            chosen.append(r)
    return chosen


def _completeness_of(blocking: Blocking, sample: pd.DataFrame, targets: pd.DataFrame, at_a: np.ndarray,
                     at_b: np.ndarray, weights: np.ndarray) -> float:
    """The share of the likely matches' weight that ``blocking`` puts in a block."""
    keys_a, keys_b = blocking.keys(sample, "align"), blocking.keys(targets, "target")
    shared = blocking.first_shared_slot(keys_a, keys_b, blocking.extra(sample), blocking.extra(targets), at_a,
                                        at_b) < blocking.n_slots
    return float(weights[shared].sum() / max(weights.sum(), 1e-300))


def choose_blocking(client: Any, a: dd.DataFrame, b: dd.DataFrame, alignment: Alignment,
                    compare: Blocking | None = None) -> BlockingChoice:
    """Choose the union of key rules for ``alignment`` (its blocking: an :class:`AutoBlocking`) on
    ``client``, from the staged sets ``a`` and ``b`` (a deduplication: ``b`` is ``a``); with ``compare``
    (a job's own blocking), its estimated pair completeness on the same likely matches is noted."""
    clock = time.perf_counter()
    auto = alignment.blocking
    assert isinstance(auto, AutoBlocking)
    if alignment.several_sets:
        raise JobError("blocking: kind = \"auto\" does not choose for several sets yet; name the keys",
                       field="blocking")
    rules = candidate_rules(alignment.treatments)
    if not rules:
        raise JobError("blocking: kind = \"auto\" chooses keys on the treatments' columns, and no treatment "
                       "reads text or dates under one name in both sets; name the blocking", field="blocking")
    dedupe = alignment.dedupe
    n_a = int(client.compute(a.shape[0]).result())
    steps: dict[str, float] = {}
    with timed(steps, "count"):
        sample = _sampled(client, a, min(1.0, SAMPLE_RECORDS / max(1, n_a)))
        costs = _rule_costs(client, sample, b, rules, n_a, dedupe)
    budget = auto.budget(n_a)
    largest_allowed = alignment.max_block_pairs or LARGEST_BLOCK_PAIRS
    pairs, largest = costs["pairs"].to_numpy(np.float64), costs["largest"].to_numpy(np.float64)
    net_cap = max(NET_PAIRS_PER_RECORD, 4 * budget / max(1, n_a)) * n_a
    net = [rules[r] for r in _net(rules, pairs, largest, net_cap, largest_allowed)]
    if not net:
        raise JobError("blocking: kind = \"auto\" found no rule of the treatments' columns that makes pairs "
                       f"within {net_cap:,.0f}; name the blocking", field="blocking")
    with timed(steps, "likely matches"):
        likely = _likely_matches(client, sample, b, alignment, net)
        covered, targets, at_a, at_b = _coverage(client, sample, b, rules, likely)
    with timed(steps, "overlaps"):
        usable = [r for r in range(len(rules)) if 0 < pairs[r] <= budget and largest[r] <= largest_allowed]
        sample_pairs = _sample_pairs(client, sample, b, rules, usable, dedupe)
    n_b = n_a if dedupe else int(client.compute(b.shape[0]).result())
    choice = choose_rules(rules, costs, covered, likely["weight"].to_numpy(np.float64), sample_pairs, len(sample),
                          n_a, budget, largest_allowed, n_a + (0 if dedupe else n_b))
    if not choice.chosen:
        raise JobError(f"blocking: kind = \"auto\" found no rule within the budget ({budget:,.0f} pairs) that "
                       f"puts the {len(likely)} likely matches of {len(sample)} sampled records in blocks; raise "
                       "max_pairs_per_record, or name the blocking", field="blocking")
    if compare is not None and len(likely):
        own = _completeness_of(compare, sample, targets, at_a, at_b, likely["weight"].to_numpy(np.float64))
        choice.compared = own
        choice.notes.append(f"the job's own blocking: estimated pair completeness {own:.4f} on the same likely "
                            "matches")
    choice.seconds = time.perf_counter() - clock
    choice.notes.append(f"{len(rules)} rules: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    choice.notes.append(f"likely matches: {len(likely)} links of {len(sample)} sampled records through {len(net)} "
                        f"rules of at most {net_cap / max(1, n_a):,.0f} pairs a record")
    if math.isfinite(choice.pair_completeness) and choice.pair_completeness < 0.95:
        choice.notes.append("the union misses more than 5% of the likely matches within the budget: raise "
                            "max_pairs_per_record to find more")
    return choice
