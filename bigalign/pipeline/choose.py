"""``kind = "auto"``: the blocking chosen on the cluster from the job's treatments and data.

Two samples stand for the sets: align records and target records drawn by their id's hash (the same
whatever the partitioning), √(:data:`SAMPLE_RECORDS` × targets) of each, so that about
:data:`SAMPLE_RECORDS` of the sampled align records have their match among the sampled targets. Only the
samples' counts, keys and likely matches come back to this process (and the align sample itself):

1. each candidate rule's keys of the align sample counted among the target sample (through a filter of
   2²⁰ slots, then a search): each rule's pairs and largest block, scaled to the two sets (exact when the
   samples are whole), and the pairs of the samples, so that a rule's pairs already made by the chosen
   rules are not counted twice;
2. the two samples aligned through a wide net — each key of at most :data:`NET_PAIRS_PER_RECORD` pairs a
   record, and each key over it with its most selective partner —, the job's scorer fitted on them as a
   run fits it: its links are the likely matches, weighted by their match probability (the weighted
   distance: 1 each); which rules put each one in a block is read from the keys of its two records.

Then :func:`~bigalign.blocking.auto.choose_rules` chooses the union. The recall it estimates is relative
to the net: a match that no rule of the net finds is not seen.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ..blocking import Blocking, KDTreeBlocking, UnionBlocking
from ..blocking.auto import (
    AutoBlocking,
    BlockingChoice,
    Rule,
    candidate_rules,
    choose_rules,
)
from ..cluster import worker_threads
from ..errors import JobError
from ..fellegi_sunter import FellegiSunter
from ..records import text_or_str
from ..spec import Alignment
from ..values.sets import is_value_sets
from .candidates import LARGEST_BLOCK_PAIRS
from .encode import in_share
from .fit_data import random_pair_distances
from .graph import run_alignment, sent_once
from .schema import combined_hashes, record_keys
from .timing import timed

__all__ = ["NET_PAIRS_PER_RECORD", "SAMPLE_RECORDS", "choose_blocking", "resolve_blocking"]

# Likely matches are sought for about as many align records as this, among a sample of the targetset (both
# drawn by id hash, of √(SAMPLE_RECORDS · targets) records each: the align sample grows as the target
# sample's share falls, so that about as many of their matches are in it, and the two together are as small
# as they can be): a match's rules do not depend on which pairs are drawn.
SAMPLE_RECORDS = 2000
ALIGN_SALT, TARGET_SALT = 0x616C69676E, 0x746172676574
# The net's rules: at most this many pairs per record each (at least four times the budget's).
NET_PAIRS_PER_RECORD = 100
# Records of a sample a partition holds at least (see _partitions).
SAMPLE_PARTITION_RECORDS = 10_000
# MinHash LSH is a candidate on text of at least this many words a record, on average in the sample.
MINHASH_MIN_WORDS = 1.5


def resolve_blocking(client: Any, align_dd: Any, target_dd: Any,
                     alignment: Alignment) -> tuple[Alignment, BlockingChoice | None]:
    """The alignment with its blocking chosen when it is ``"auto"`` (and the choice), else as it is."""
    if not isinstance(alignment.blocking, AutoBlocking):
        return alignment, None
    choice = choose_blocking(client, align_dd, target_dd, alignment)
    return dataclasses.replace(alignment, blocking=choice.blocking), choice


def _key_table(sample: pd.DataFrame, rules: list[Rule]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per rule, the sampled records' keys: each record's keys (a column a slot, 0: none; a key rule has one,
    a MinHash rule one a band), the distinct keys (sorted), and how many sampled records hold each."""
    shared: dict = {}
    table = []
    for rule in rules:
        keys = rule.blocking.keys(sample, "align", shared)
        distinct, counts = np.unique(keys[keys != 0], return_counts=True)
        table.append((keys, distinct, counts.astype(np.int64)))
    return table


def _with_itself(rule: Rule, sample: pd.DataFrame, align_keys: np.ndarray, both: np.ndarray, shared: dict) -> int:
    """In a deduplication, the blocks the sampled records that are also among the targets share with
    themselves (pairs of a record with itself, which the counts hold and a run does not make); ``shared``:
    as for :meth:`~bigalign.blocking.Blocking.keys`, across the rules."""
    target_keys = rule.blocking.keys(sample, "target", shared)
    own = 0
    for s in range(align_keys.shape[1]):
        mine = align_keys[both, s]
        own += int(((target_keys[both] == mine[:, None]) & (mine[:, None] != 0)).any(axis=1).sum())
    return own


def _sample_hits(own: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``own`` (keys of target records) holding one of ``keys`` (sorted), and where in ``keys``.
    Keys are hashes: their low bits first rule out most rows (a sample's keys fill about 2% of 2²⁰ slots),
    and only the rest is searched (7× faster than searching every row at 1M records)."""
    slots = np.zeros(1 << 20, dtype=bool)
    slots[(keys & np.uint64(0xFFFFF)).astype(np.int64)] = True
    maybe = np.flatnonzero(slots[(own & np.uint64(0xFFFFF)).astype(np.int64)] & (own != 0))
    # (searched in order: a sorted search walks the keys once, 2.4x faster than in the rows' order when
    # the keys are many, a MinHash rule's bands)
    queries = own[maybe]
    order = np.argsort(queries)
    at = np.empty(len(maybe), dtype=np.int64)
    at[order] = np.minimum(np.searchsorted(keys, queries[order]), max(0, len(keys) - 1))
    hit = keys[at] == queries if len(keys) else np.zeros(len(maybe), dtype=bool)
    return maybe[hit], at[hit]


def _target_keys(part: pd.DataFrame, rules: list[Rule]) -> list[np.ndarray]:
    """Per rule, the keys of a target partition's records (a column a slot: a record's keys in a row)."""
    shared: dict = {}
    return [rule.blocking.keys(part, "target", shared) for rule in rules]


def _distinct_keys(table: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per rule, the sample's distinct keys (of :func:`_key_table`): what the target partitions look for."""
    return [keys for _, keys, _ in table]


def _target_pass(part: pd.DataFrame, keys_of: list[np.ndarray], rules: list[Rule], distinct: list[np.ndarray],
                 cap: int) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Per rule, how many records of a target partition (``keys_of``: their keys, see :func:`_target_keys`)
    hold each of the sample's ``distinct`` keys (sorted); and those records (rule, key, rid; and a
    neighbourhood's their coordinates, lat and lon) for the rules that have at most ``cap`` of them here (the
    others make too many pairs to be chosen; a row of key 0 says so)."""
    counts, rows = [], []
    rid = record_keys(part.iloc[:, 0])
    for r, (rule, own, keys) in enumerate(zip(rules, keys_of, distinct)):
        found, at = _sample_hits(own.ravel(), keys)
        counts.append(np.bincount(at, minlength=len(keys)).astype(np.int64))
        if len(found) > cap:
            found = np.empty(0, np.int64)
            rows.append(pd.DataFrame({"rule": [r], "key": [np.uint64(0)], "rid": [np.uint64(0)]}))
        record = found // own.shape[1]
        coordinates = rule.blocking.extra(part).to_numpy(np.float64)[record] if rule.kind == "kdtree" \
            else np.full((len(found), 2), np.nan)
        rows.append(pd.DataFrame({"rule": np.full(len(found), r, np.int32), "key": own.ravel()[found],
                                  "rid": rid[record], "lat": coordinates[:, 0], "lon": coordinates[:, 1]}))
    return counts, pd.concat(rows, ignore_index=True).astype({"rule": np.int32, "key": np.uint64, "rid": np.uint64,
                                                              "lat": np.float64, "lon": np.float64})


def _rule_costs(client: Any, sample: pd.DataFrame, targets: dd.DataFrame, rules: list[Rule],
                sizes: tuple[int, int, int], dedupe: bool, cap: int,
                both: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[np.ndarray]]:
    """Each rule's pairs and largest block, from the align sample's keys counted in ``targets`` (the
    targetset, or a sample of it), scaled to the two sets (``sizes``: the alignset's records, the
    targetset's, and those of ``targets``): exact when both are whole. In a deduplication, ``both`` says
    which sampled records are also among ``targets`` (a record is not paired with itself). Also the target
    rows holding the sampled records' keys (see :func:`_target_pass`), and the sampled records' keys of
    each rule (computed once: a MinHash rule's are the costly part)."""
    n_a, n_b, t = sizes
    # (one graph: the sample's keys are computed while the targets' are, on two cores at once; only the
    # distinct ones go to the target partitions)
    table_task = dask.delayed(_key_table)(sample, rules)
    distinct = dask.delayed(_distinct_keys)(table_task)
    passes = [dask.delayed(_target_pass)(part, dask.delayed(_target_keys)(part, rules), rules, distinct, cap)
              for part in targets.to_delayed()]
    with sent_once():  # (the sample, in the graph once)
        table, *results = (f.result() for f in client.compute([table_task, *passes]))
    scale_a, scale_b = n_a / max(1, len(sample)), n_b / max(1, t)
    costs = []
    shared: dict = {}  # (the sample's keys as targets, in a deduplication: a date parsed once for every rule)
    for r, (keys, _, held) in enumerate(table):
        in_b = np.sum([counts[r] for counts, _ in results], axis=0) if results else np.zeros(len(held), np.int64)
        if dedupe:  # (ordered pairs of two samples of one set, less each record with itself, halved)
            itself = _with_itself(rules[r], sample, keys, both, shared) if both is not None else 0
            pairs = (float((held * in_b).sum()) - itself) * scale_a * scale_b / 2
            whole = in_b * scale_b
            largest = float((whole * np.maximum(whole - 1, 0) / 2).max()) if len(in_b) else 0.0
        else:
            pairs = float((held * in_b).sum()) * scale_a * scale_b
            largest = float((np.maximum(1.0, held * scale_a) * in_b * scale_b).max()) if len(in_b) else 0.0
        costs.append((pairs, largest))
    rows = pd.concat([frame for _, frame in results], ignore_index=True) if results else \
        pd.DataFrame({"rule": np.empty(0, np.int32), "key": np.empty(0, np.uint64), "rid": np.empty(0, np.uint64)})
    return pd.DataFrame(costs, columns=["pairs", "largest"]), rows, [keys for keys, _, _ in table]


def _partitions(client: Any, records: int, most: int | None = None) -> int:
    """Partitions of a sample: one a worker thread, of at least :data:`SAMPLE_PARTITION_RECORDS` records
    (each partition computes its distinct values' keys and encodings again: four partitions of 11,000
    records where two would do cost the choice 1.5 s of 7 at 1M, on two threads)."""
    wanted = max(1, min(worker_threads(client), math.ceil(records / SAMPLE_PARTITION_RECORDS)))
    return wanted if most is None else min(wanted, most)


def _drawn(part: pd.DataFrame, share: float, salt: int) -> pd.DataFrame:
    """The records whose id hash (mixed with ``salt``: the two sets are drawn apart, even where their ids are
    the same) falls in the first ``share`` of the hash range: the same whatever the partitioning."""
    return part[in_share(record_keys(part.iloc[:, 0]) ^ np.uint64(salt), share)]


def _sampled(client: Any, a: dd.DataFrame, share: float) -> pd.DataFrame:
    """The alignset's sample (see :func:`_drawn`), in this process, ordered by id."""
    sample = client.compute(a.map_partitions(_drawn, share, ALIGN_SALT, meta=a._meta)).result()
    return sample.sort_values(sample.columns[0], kind="stable").reset_index(drop=True)


def _sample_pairs(sample: pd.DataFrame, sample_keys: list[np.ndarray], rows: pd.DataFrame, rules: list[Rule],
                  usable: list[int], dedupe: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """Per rule, the sorted hashes of the pairs it makes between the sampled records and the target ``rows``
    holding their keys (see :func:`_target_pass`; ``sample_keys``: the sampled records' keys of each
    rule); and the share of its counted pairs (block pairs) that are pairs the run makes: 1 for a key, less
    for a MinHash rule (a similar pair shares several bands, and is made once) and for a neighbourhood
    (the pairs of its cells farther apart than the radius are not made); only ``usable`` rules."""
    rid = record_keys(sample.iloc[:, 0])
    pairs = [np.empty(0, np.uint64) for _ in sample_keys]
    made = np.ones(len(sample_keys))
    for r in usable:
        keys = sample_keys[r]
        present = keys != 0
        at = np.broadcast_to(np.arange(len(sample))[:, None], keys.shape)[present]
        mine = pd.DataFrame({"key": keys[present], "rid_a": rid[at], "row_a": at})
        met = mine.merge(rows[rows["rule"] == r], on="key")
        if dedupe:  # (a record with itself: neither counted nor made)
            met = met[met["rid_a"] != met["rid"]]
        counted = len(met)
        blocking = rules[r].blocking
        if isinstance(blocking, KDTreeBlocking) and counted:
            targets = pd.DataFrame({"_lat": met["lat"].to_numpy(), "_lon": met["lon"].to_numpy()})
            met = met[blocking.within_radius(blocking.extra(sample), targets, met["row_a"].to_numpy(),
                                             np.arange(counted))]
        rid_a, rid_b = met["rid_a"].to_numpy(np.uint64), met["rid"].to_numpy(np.uint64)
        pairs[r] = np.unique(combined_hashes(rid_a, rid_b, dedupe))
        if (keys.shape[1] > 1 or rules[r].kind == "kdtree") and counted:
            made[r] = len(np.unique(combined_hashes(rid_a, rid_b, False))) / counted
    return pairs, made


def _likely_matches(client: Any, sample: pd.DataFrame, b: dd.DataFrame, alignment: Alignment,
                    net: list[Rule], random_pairs: Any) -> pd.DataFrame:
    """The sample's links to the targetset's sample ``b`` through the net, the job's scorer fitted on them
    (u from ``random_pairs``: the distances of the run's own random pairs of the two sets): align_id,
    target_id, weight (the match probability; 1 with the weighted distance)."""
    scorer = alignment.scorer
    if isinstance(scorer, FellegiSunter) and scorer.groups == "auto":
        # (the likely matches are weighed, not linked: the group search, 3-4 s of the choice at 1M, is left to
        # the run; the same likely matches on the demo)
        scorer = copy.copy(scorer)
        scorer.groups = {}
    # (a learned model weighs each link by its match probability; the weighted distance weighs every link
    # under its threshold alike, so a job that keeps each record's best link stands on those alone: every
    # pair under 3.5 made the hand-written keys' estimate 0.933 where they keep 0.995 of the true pairs)
    best_only = alignment.uniq and not alignment.scorer.learns and not alignment.dedupe
    narrowed = dataclasses.replace(alignment, blocking=UnionBlocking([rule.blocking for rule in net]),
                                   uniq=best_only, one_to_one=False, explain=False, dedupe=False,
                                   link_type="link_only", scorer=scorer)
    with sent_once():  # (the sample, sent to the workers once: every step of the run reads it there)
        sample_dd = client.persist(dd.from_pandas(sample, npartitions=_partitions(client, len(sample)),
                                                  sort=False))
    run = run_alignment(client, sample_dd, b, narrowed, random_pairs=random_pairs)
    links = run.links
    if alignment.dedupe:  # (the sample is of the set itself: not a record with itself)
        links = links[links["align_id"].astype(str) != links["target_id"].astype(str)]
    weight = 1.0 - links["distance"].to_numpy(np.float64) if alignment.scorer.learns else np.ones(len(links))
    return pd.DataFrame({"align_id": links["align_id"].to_numpy(object), "target_id": links["target_id"].to_numpy(
        object), "weight": weight})


def _coverage(client: Any, sample: pd.DataFrame, sample_keys: list[np.ndarray], b: dd.DataFrame, rules: list[Rule],
              likely: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray]:
    """Which rule puts each likely match in a block (likely matches × rules; ``sample_keys``: the sampled
    records' keys of each rule); the matched targets, and each likely match's rows in the sample and in
    them."""
    ids = set(likely["target_id"].astype(str))

    def matched(part: pd.DataFrame) -> pd.DataFrame:
        return part[part.iloc[:, 0].astype(str).isin(ids)]

    targets = client.compute(b.map_partitions(matched, meta=b._meta)).result()
    at_a = pd.Index(sample.iloc[:, 0].astype(str)).get_indexer(likely["align_id"].astype(str))
    at_b = pd.Index(targets.iloc[:, 0].astype(str)).get_indexer(likely["target_id"].astype(str))
    covered = np.zeros((len(likely), len(rules)), dtype=bool)
    shared: dict = {}
    for r, rule in enumerate(rules):
        blocking = rule.blocking
        keys_b = blocking.keys(targets, "target", shared)
        covered[:, r] = blocking.first_shared_slot(sample_keys[r], keys_b, blocking.extra(sample),
                                                   blocking.extra(targets), at_a, at_b) < blocking.n_slots
    return covered, targets, at_a, at_b


def _net(rules: list[Rule], pairs: np.ndarray, largest: np.ndarray, cap: float, largest_allowed: float) -> list[int]:
    """The wide net's rules: each single key within ``cap`` pairs; each single key over it, with the key of
    another treatment that makes the fewest pairs together within it (a key of the net finds what any two
    keys holding it would; one partner per key keeps the net's keys few: each is a block row per record
    and an EM run of the model fitted on it)."""
    fits = (pairs > 0) & (pairs <= cap) & (largest <= largest_allowed)
    single = {(rule.parts[0], rule.transforms[0]): r for r, rule in enumerate(rules) if len(rule.parts) == 1}
    chosen = [r for r, rule in enumerate(rules) if len(rule.parts) == 1 and fits[r]]
    for s, rule in enumerate(rules):
        if len(rule.parts) != 1 or fits[s]:
            continue
        key = (rule.parts[0], rule.transforms[0])
        partners = [r for r, other in enumerate(rules) if len(other.parts) == 2 and fits[r]
                    and key in zip(other.parts, other.transforms)
                    and not any(fits[single[m]] for m in zip(other.parts, other.transforms) if m in single)]
        if partners:
            chosen.append(min(partners, key=lambda r: (pairs[r], r)))
    return sorted(set(chosen))


def _worth_hashing(rules: list[Rule], sample: pd.DataFrame) -> tuple[list[Rule], list[str]]:
    """The rules without MinHash LSH on text of one word a record or less (in the sample): keys and their
    Soundex suit a word; a MinHash rule is for names and titles of several words, which lose, gain or
    swap words, and its signatures are the costliest keys to compute."""
    kept, dropped = [], []
    words_of: dict[Any, float] = {}  # (a column's words a record, on average: counted in Arrow, once)
    for rule in rules:
        if rule.kind == "minhash_lsh":
            columns = rule.columns[0] if isinstance(rule.columns[0], list) else [rule.columns[0]]
            for c in columns:
                if c not in words_of:
                    counts = pc.count_substring_regex(text_or_str(sample[c]), r"\S+")
                    words_of[c] = float(pc.sum(counts).as_py() or 0) / len(sample) if len(sample) else 0.0
            if sum(words_of[c] for c in columns) < MINHASH_MIN_WORDS:
                dropped.append(rule.label)
                continue
        kept.append(rule)
    notes = [f"MinHash LSH left out on one word a record or less: {', '.join(dropped)}"] if dropped else []
    return kept, notes


def _block_rows(rule: Rule, n_a: int, n_b: int) -> int:
    """The block rows a rule adds to a run (what the block shuffle carries): a row per record and slot it
    holds a key in (a neighbourhood's targets, one per cell around theirs)."""
    blocking = rule.blocking
    target_slots = blocking.n_slots
    align_slots = 1 if blocking.asymmetric else blocking.n_slots
    return n_a * align_slots + n_b * target_slots


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
    several = sorted({str(c) for frame in (a, b) for c, dtype in frame.dtypes.items() if is_value_sets(dtype)})
    if several:
        raise JobError(f"blocking: kind = \"auto\" does not choose on records of several values per attribute "
                       f"yet ({', '.join(several)}); name the keys", field="blocking")
    dedupe = alignment.dedupe
    n_a, n_b = (int(f.result()) for f in client.compute([a.shape[0], b.shape[0]]))
    target_share = min(1.0, math.sqrt(SAMPLE_RECORDS * max(1, n_b)) / max(1, n_b))
    # (the random pairs a model's u is fitted on, of the whole sets: the net's model fitted with them, then
    # the run's, computed once)
    random_pairs = client.compute(random_pair_distances(alignment.scorer, alignment.treatments, a, b, (n_a, n_b),
                                                        as_read=True)) if alignment.scorer.learns else None
    steps: dict[str, float] = {}
    budget = auto.budget(n_a)
    with timed(steps, "count"):  # (and the pairs the samples make, for the rules' overlaps)
        sample = _sampled(client, a, min(1.0, SAMPLE_RECORDS / max(1, n_a * target_share)))
        rules, notes = _worth_hashing(rules, sample)
        targets_drawn = b.map_partitions(_drawn, target_share, TARGET_SALT, meta=b._meta)
        targets_drawn = client.persist(targets_drawn.repartition(
            npartitions=_partitions(client, round(n_b * target_share), targets_drawn.npartitions)))
        t = int(client.compute(targets_drawn.shape[0]).result())
        # (a rule within the budget makes about this many pairs of the two samples at most)
        cap = int(4 * len(sample) * target_share * max(1.0, budget / max(1, n_a))) + 100
        both = None
        if dedupe:
            both = np.zeros(len(sample), dtype=bool)
            both[_drawn(sample, target_share, TARGET_SALT).index.to_numpy()] = True
        costs, rows, sample_keys = _rule_costs(client, sample, targets_drawn, rules, (n_a, n_b, t), dedupe, cap,
                                               both)
    largest_allowed = alignment.max_block_pairs or LARGEST_BLOCK_PAIRS
    pairs, largest = costs["pairs"].to_numpy(np.float64), costs["largest"].to_numpy(np.float64)
    net_cap = max(NET_PAIRS_PER_RECORD, 4 * budget / max(1, n_a)) * n_a
    net = [rules[r] for r in _net(rules, pairs, largest, net_cap, largest_allowed)]
    if not net:
        raise JobError("blocking: kind = \"auto\" found no rule of the treatments' columns that makes pairs "
                       f"within {net_cap:,.0f}; name the blocking", field="blocking")
    with timed(steps, "likely matches"):
        likely = _likely_matches(client, sample, targets_drawn, alignment, net, random_pairs)
        covered, targets, at_a, at_b = _coverage(client, sample, sample_keys, targets_drawn, rules, likely)
    overflowed = set(rows["rule"][rows["key"] == 0].tolist())
    counted_over = [r for r, rule in enumerate(rules) if rule.kind != "key"]  # (block pairs: more than made)
    usable = [r for r in range(len(rules)) if 0 < pairs[r] and largest[r] <= largest_allowed
              and r not in overflowed and (pairs[r] <= budget or r in counted_over)]
    sample_pairs, made = _sample_pairs(sample, sample_keys, rows[rows["key"] != 0], rules, usable, dedupe)
    # (a MinHash rule's and a neighbourhood's pairs as the run makes them: see _sample_pairs)
    costs = costs.assign(pairs=pairs * made, rows=[_block_rows(rule, n_a, 0 if dedupe else n_b) for rule in rules])
    choice = choose_rules(rules, costs, covered, likely["weight"].to_numpy(np.float64), sample_pairs, len(sample),
                          n_a, budget, largest_allowed)
    if not choice.chosen:
        raise JobError(f"blocking: kind = \"auto\" found no rule within the budget ({budget:,.0f} pairs) that "
                       f"puts the {len(likely)} likely matches of {len(sample)} sampled records in blocks; raise "
                       "max_pairs_per_record, or name the blocking", field="blocking")
    if compare is not None and len(likely):
        own = _completeness_of(compare, sample, targets, at_a, at_b, likely["weight"].to_numpy(np.float64))
        choice.compared = own
        choice.notes.append(f"the job's own blocking: estimated pair completeness {own:.4f} on the same likely "
                            "matches")
    choice.notes += notes
    choice.random_pairs = random_pairs
    choice.seconds = time.perf_counter() - clock
    choice.notes.append(f"{len(rules)} rules: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    choice.notes.append(f"likely matches: {len(likely)} links of {len(sample)} sampled records to "
                        f"{target_share:.1%} of the targetset, through {len(net)} rules of at most "
                        f"{net_cap / max(1, n_a):,.0f} pairs a record")
    if math.isfinite(choice.pair_completeness) and choice.pair_completeness < 0.95:
        choice.notes.append("the union misses more than 5% of the likely matches within the budget: raise "
                            "max_pairs_per_record to find more")
    return choice
