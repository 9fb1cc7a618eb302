"""Blocking without guessing: key rules drawn from the job's treatments, each rule's pairs counted from key
frequencies, and the union chosen to cover the most likely matches within a budget of pairs.

Pure functions of records and counts (the choice on a cluster is :mod:`bigalign.pipeline.choose`):

* :func:`candidate_rules` — keys on each treatment's columns with the transforms that suit its metric
  (exact and Soundex for text, a word-order-free Soundex for a name of several columns, the date and the
  year for dates), and every two of them from different treatments together;
* :func:`choose_rules` — a greedy set cover: while the budget allows, add the rule that covers the most
  likely-match weight not yet covered per pair it adds (pairs it shares with the rules already chosen
  are not counted again), until no rule adds :data:`MIN_GAIN` of the weight (and :data:`MIN_MATCHES`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .base import Blocking
from .kdtree import KDTreeBlocking
from .key import KeyBlocking
from .minhash import MinHashLSHBlocking
from .union import UnionBlocking

__all__ = ["DEFAULT_PAIRS_PER_RECORD", "AutoBlocking", "BlockingChoice", "Rule", "candidate_rules", "choice_lines",
           "choose_rules", "suggestion_lines"]

# The budget when a job gives none: candidate pairs per record of the alignset. The demo's hand-written keys
# make about one; a learned model needs a few more non-matches than matches to learn from.
DEFAULT_PAIRS_PER_RECORD = 5.0
# A rule is added while it covers at least this share of the likely matches that the chosen rules miss, and
# at least MIN_MATCHES of them (fewer is the sample's noise).
MIN_GAIN = 0.003
MIN_MATCHES = 3
# What a rule costs beside its pairs, in pairs per record of both sets: its block row for each record, which
# the block shuffle carries (measured on the demo at 1M: a key's rows cost about what half a pair a record
# costs to score).
ROW_PAIRS = 0.5
# MinHash LSH candidates on each text treatment: two S-curves (pairs of 3-gram Jaccard similarity 0.5 become
# candidates with probability 0.94 at the looser, 0.15 at the tighter), on signatures of 64 permutations
# (computed once for both: half the time of 128, the S-curves about as steep).
MINHASH_THRESHOLDS = (0.3, 0.6)
MINHASH_PERMUTATIONS = 64
# Text metrics whose values a Soundex key suits (names, words); others get exact keys only.
_SOUNDEX_METRICS = ("levenshtein", "jaro_winkler", "damerau_levenshtein", "char_levenshtein", "difflib", "soundex",
                    "jaccard")


class AutoBlocking(Blocking):
    """``[blocking] kind = "auto"``: a union of key rules chosen for each run from the job's treatments and
    its data (see :mod:`bigalign.pipeline.choose`), within ``max_pairs_per_record`` candidate pairs per
    record of the alignset (or ``max_pairs`` in all)."""

    name = "auto"
    parameters = {"max_pairs_per_record": (int, float), "max_pairs": int}

    def __init__(self, max_pairs_per_record: float = DEFAULT_PAIRS_PER_RECORD, max_pairs: int | None = None):
        if isinstance(max_pairs_per_record, bool) or not 0 < max_pairs_per_record < math.inf:
            raise ValueError(f"max_pairs_per_record must be a positive number, got {max_pairs_per_record!r}")
        if max_pairs is not None and (isinstance(max_pairs, bool) or max_pairs < 1):
            raise ValueError(f"max_pairs must be a positive integer, got {max_pairs!r}")
        self.max_pairs_per_record, self.max_pairs = float(max_pairs_per_record), max_pairs

    def budget(self, align_records: int) -> float:
        """The candidate pairs the chosen union may make."""
        return float(self.max_pairs) if self.max_pairs is not None else self.max_pairs_per_record * align_records

    @property
    def n_slots(self) -> int:
        raise TypeError("kind = \"auto\" is a blocking chosen for each run: it has no keys of its own")

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        raise TypeError("kind = \"auto\" is a blocking chosen for each run: it has no keys of its own")

    def __repr__(self) -> str:
        return f"AutoBlocking(max_pairs_per_record={self.max_pairs_per_record}, max_pairs={self.max_pairs})"


@dataclass(frozen=True)
class Rule:
    """A candidate rule: a key on parts (a column, or columns joined) with one transform each; or, with the
    transform ``"minhash"`` (one part: text columns pooled) or ``"kdtree"`` (one part: latitude and
    longitude), a MinHash LSH or a neighbourhood blocking, with ``options`` (threshold and permutations;
    radius)."""

    parts: tuple[Any, ...]
    transforms: tuple[str, ...]
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kind(self) -> str:
        return {"minhash": "minhash_lsh", "kdtree": "kdtree"}.get(self.transforms[0], "key")

    @property
    def blocking(self) -> Blocking:
        if self.kind == "minhash_lsh":
            return MinHashLSHBlocking(list(_columns(self.parts[0])), **dict(self.options))
        if self.kind == "kdtree":
            return KDTreeBlocking(list(self.parts[0]), **dict(self.options))
        return KeyBlocking(self.columns, transform=list(self.transforms))

    @property
    def columns(self) -> list[Any]:
        return [list(p) if isinstance(p, tuple) else p for p in self.parts]

    @property
    def label(self) -> str:
        if self.kind == "minhash_lsh":
            return f"minhash({'+'.join(_columns(self.parts[0]))}, {dict(self.options)['threshold']:g})"
        if self.kind == "kdtree":
            return f"kdtree({'+'.join(self.parts[0])}, {dict(self.options)['radius_km']:g} km)"
        return " & ".join(f"{t}({'+'.join(p) if isinstance(p, tuple) else p})"
                          for p, t in zip(self.parts, self.transforms))

    def table(self) -> dict[str, Any]:
        """The rule as a job's ``[[blocking.of]]`` table."""
        if self.kind != "key":
            return {"kind": self.kind, "columns": list(_columns(self.parts[0])), **dict(self.options)}
        one = len(self.parts) == 1 and not isinstance(self.parts[0], tuple)
        return {"kind": "key", "columns": self.columns[0] if one else self.columns,
                "transform": self.transforms[0] if one else list(self.transforms)}

    def toml(self) -> str:
        return "[[blocking.of]]\n" + "".join(f"{name} = {_toml(value)}\n" for name, value in self.table().items())


def _columns(part: Any) -> tuple[Any, ...]:
    return part if isinstance(part, tuple) else (part,)


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def candidate_rules(treatments: Sequence[Any]) -> list[Rule]:
    """The rules to choose from, drawn from the treatments that read the same columns in both sets: each
    treatment's keys, then every two keys of different treatments together, then MinHash LSH on each text
    treatment and neighbourhoods on coordinates (deterministic order)."""
    singles: list[tuple[int, Any, str]] = []
    others: list[Rule] = []
    for i, t in enumerate(treatments):
        if t.attribute != t.target_attribute:
            continue
        metric = t.metric.name
        columns = t.attribute
        if metric == "temporal" and not isinstance(columns, tuple):
            singles += [(i, columns, "date"), (i, columns, "year")]
        elif metric == "geographical":
            if isinstance(columns, tuple) and len(columns) == 2:
                others += [Rule((columns,), ("kdtree",), (("radius_km", radius),)) for radius in _radii(t.metric)]
        elif metric == "euclidean":
            continue  # (numbers: a k-means' neighbourhoods would suit them; not chosen yet)
        else:
            if isinstance(columns, tuple):
                singles += [(i, columns, "soundex-set")] + [(i, c, "exact") for c in columns]
            else:
                singles.append((i, columns, "exact"))
                if metric in _SOUNDEX_METRICS:
                    singles.append((i, columns, "soundex"))
            if metric in _SOUNDEX_METRICS:
                others += [Rule((columns,), ("minhash",), (("threshold", at), ("num_perm", MINHASH_PERMUTATIONS)))
                           for at in MINHASH_THRESHOLDS]
    rules = [Rule((part,), (transform,)) for _, part, transform in singles]
    for (i, p, s), (j, q, u) in itertools.combinations(singles, 2):
        if i != j:
            rules.append(Rule((p, q), (s, u)))
    return list(dict.fromkeys(rules + others))


def _radii(metric: Any) -> list[float]:
    """Neighbourhood radii (km) for a geographical treatment: its scale (beyond which a pair's distance says
    no more) and a fifth of it; without a scale, 5 and 25 km."""
    if metric.scale is None:
        return [5.0, 25.0]
    scale_km = float(metric.scale) / (1000.0 if metric.units == "m" else 1.0)
    return [scale_km / 5, scale_km]


@dataclass
class BlockingChoice:
    """What :func:`choose_rules` chose, and why: every rule's figures, the union, its estimated pairs and
    pair completeness (with a 95% interval), and what the estimate stood on."""

    rules: pd.DataFrame  # label, pairs, pairs_per_record, largest, recall, chosen (order, or -1), marginal_recall
    chosen: list[Rule]
    budget: float
    estimated_pairs: float
    pair_completeness: float
    interval: tuple[float, float]
    likely_matches: int
    sample: int
    align_records: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    compared: float | None = None  # another blocking's estimated pair completeness, on the same likely matches
    random_pairs: Any = None  # (the future of the random pairs' distances the run's model is fitted on, if any)

    @property
    def blocking(self) -> UnionBlocking:
        return UnionBlocking([rule.blocking for rule in self.chosen])

    def toml(self) -> str:
        return "[blocking]\nkind = \"union\"\n" + "".join(rule.toml() for rule in self.chosen)

    def as_dict(self) -> dict[str, Any]:
        return {"chosen": [rule.label for rule in self.chosen], "budget": self.budget,
                "blocking": {"kind": "union", "of": [rule.table() for rule in self.chosen]},
                "estimated_pairs": self.estimated_pairs, "pair_completeness": self.pair_completeness,
                "interval": list(self.interval), "likely_matches": self.likely_matches, "sample": self.sample,
                "seconds": self.seconds, "notes": self.notes, "compared": self.compared,
                "rules": self.rules.head(40).to_dict("records")}


def choose_rules(rules: Sequence[Rule], costs: pd.DataFrame, covered: np.ndarray, weights: np.ndarray,
                 sample_pairs: Sequence[np.ndarray], sample: int, align_records: int, budget: float,
                 largest_allowed: float) -> BlockingChoice:
    """The union within ``budget`` pairs that covers the most likely-match weight (greedy).

    ``costs``: per rule (index), its exact ``pairs`` and ``largest`` block, and the block ``rows`` it adds
    to a run (each costs :data:`ROW_PAIRS`; none if not given); ``covered``: which rule puts each likely
    match (row) in a block; ``weights``: each likely match's weight (its match probability);
    ``sample_pairs``: per rule, the sorted hashes of the pairs it makes for the sampled records, whose
    overlap with the rules already chosen discounts a rule's pairs."""
    total = float(weights.sum())
    usable = (costs["pairs"].to_numpy(np.float64) <= budget) & (costs["largest"].to_numpy(np.float64)
                                                                   <= largest_allowed)
    recall = (weights @ covered) / total if total else np.zeros(len(rules))
    rows = costs["rows"].to_numpy(np.float64) if "rows" in costs.columns else np.zeros(len(rules))
    chosen: list[int] = []
    marginal = np.full(len(rules), np.nan)
    taken = np.zeros(len(weights), dtype=bool)
    union = np.empty(0, np.uint64)
    spent = 0.0
    while True:
        best, best_score, best_cost = -1, 0.0, 0.0
        for r in np.flatnonzero(usable).tolist():
            if r in chosen:
                continue
            adds = covered[:, r] & ~taken
            gain = float(weights[adds].sum()) / total if total else 0.0
            own = sample_pairs[r]
            new_share = 1.0 if not len(own) else float((~np.isin(own, union, assume_unique=True)).mean())
            cost = float(costs["pairs"].iloc[r]) * new_share
            if gain < MIN_GAIN or adds.sum() < MIN_MATCHES or spent + cost > budget:
                continue
            score = gain / max(cost + ROW_PAIRS * rows[r], 1.0)
            if score > best_score:
                best, best_score, best_cost = int(r), score, cost
        if best < 0:
            break
        marginal[best] = float(weights[covered[:, best] & ~taken].sum()) / total
        chosen.append(best)
        taken |= covered[:, best]
        union = np.union1d(union, sample_pairs[best])
        spent += best_cost
    completeness = float(weights[taken].sum()) / total if total else 0.0
    # (the likely matches' weights as draws: their effective number sets the interval's width)
    effective = total ** 2 / float((weights ** 2).sum()) if total else 0.0
    half = 1.96 * math.sqrt(max(completeness * (1 - completeness), 0.25 / max(effective, 1)) / max(effective, 1))
    table = pd.DataFrame({
        "rule": [rule.label for rule in rules], "pairs": costs["pairs"].to_numpy(np.int64),
        "pairs_per_record": costs["pairs"].to_numpy(np.float64) / max(1, align_records),
        "largest": costs["largest"].to_numpy(np.int64), "recall": recall,
        "chosen": [chosen.index(r) if r in chosen else -1 for r in range(len(rules))], "marginal_recall": marginal})
    table = table.assign(_order=np.where(table["chosen"] >= 0, table["chosen"], len(rules))).sort_values(
        ["_order", "recall", "pairs"], ascending=[True, False, True], kind="stable").drop(columns="_order")
    return BlockingChoice(table.reset_index(drop=True), [rules[r] for r in chosen], budget, spent, completeness,
                          (max(0.0, completeness - half), min(1.0, completeness + half)), int(len(weights)),
                          sample, align_records)


def choice_lines(chosen: dict[str, Any]) -> list[str]:
    """What a run prints of the blocking it chose (``BlockingChoice.as_dict()``)."""
    low, high = chosen["interval"]
    return [f"blocking chosen (kind = \"auto\", {chosen['seconds']:.1f} s): " + " | ".join(chosen["chosen"]),
            f"  estimated pair completeness {chosen['pair_completeness']:.4f} (95%: {low:.4f}–{high:.4f}) on "
            f"{chosen['likely_matches']} likely matches of {chosen['sample']} sampled records; at most "
            f"{chosen['estimated_pairs']:,.0f} pairs of a budget of {chosen['budget']:,.0f}"]


def suggestion_lines(choice: BlockingChoice, shown: int = 25) -> list[str]:
    """What ``bigalign plan --suggest`` prints: the rules ranked, the union chosen, and its TOML."""
    lines = [f"{'rule':<58} {'pairs':>12} {'per record':>10} {'recall':>7} {'chosen':>6} {'adds':>7}"]
    for row in choice.rules.head(shown).itertuples():
        chosen = f"{row.chosen + 1}" if row.chosen >= 0 else ""
        adds = f"{row.marginal_recall:.4f}" if row.chosen >= 0 else ""
        lines.append(f"{row.rule[:58]:<58} {row.pairs:>12,} {row.pairs_per_record:>10.2f} {row.recall:>7.4f} "
                     f"{chosen:>6} {adds:>7}")
    if len(choice.rules) > shown:
        lines.append(f"(and {len(choice.rules) - shown} more rules)")
    lines += choice_lines(choice.as_dict()) + [*choice.notes, "", "# paste into the job:", choice.toml().rstrip()]
    return lines
