"""The alignment core against raw rapidfuzz, side by side in one run.

    python -m benchmarks.kernels [--n 2000]

A block of n × n records with three string attributes (~15 characters):
the core's global alignment matrix (three treatments, weighted sum, missing
values handled) against ``rapidfuzz.process.cdist`` called three times on the
same strings; and the pair form (``cpdist``) against ``process.cpdist``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import rapidfuzz
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, Levenshtein

from benchmarks import markdown_table
from bigalign import Treatment, global_alignment_matrix
from bigalign.datasets import person_records
from bigalign.treatments import global_pair_distances


def best_of(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        clock = time.perf_counter()
        function()
        times.append(time.perf_counter() - clock)
    return min(times)


def run(n: int) -> list[dict]:
    data = person_records(n, seed=5)
    a, b = data.alignset.fillna(""), data.targetset.fillna("")
    columns = ["surname", "address", "suburb"]
    rows = []
    for label, metric, scorer, dtype in [("char_levenshtein", "char_levenshtein", Levenshtein.distance, np.int32),
                                         ("jaro_winkler", "jaro_winkler", JaroWinkler.normalized_distance,
                                          np.float32)]:
        treatments = [Treatment(c, metric) for c in columns]
        ea = [t.encode(a) for t in treatments]
        eb = [t.encode(b) for t in treatments]
        raw_a = [a[c].tolist() for c in columns]
        raw_b = [b[c].tolist() for c in columns]
        core = best_of(lambda: global_alignment_matrix(treatments, ea, eb))
        raw = best_of(lambda: [process.cdist(x, y, scorer=scorer, dtype=dtype, workers=1)
                               for x, y in zip(raw_a, raw_b)])
        rows.append({"kernel": f"dense block, 3 × {label}", "pairs": n * n, "core_pairs_per_s": n * n / core,
                     "raw_pairs_per_s": n * n / raw, "ratio": core / raw})
        rng = np.random.default_rng(0)
        ia, ib = rng.integers(0, n, n * 50), rng.integers(0, n, n * 50)
        pairs_a = [np.asarray(x, dtype=object)[ia] for x in raw_a]
        pairs_b = [np.asarray(y, dtype=object)[ib] for y in raw_b]
        core = best_of(lambda: global_pair_distances(treatments, ea, eb, ia, ib))
        raw = best_of(lambda: [process.cpdist(x, y, scorer=scorer, dtype=dtype, workers=1)
                               for x, y in zip(pairs_a, pairs_b)])
        rows.append({"kernel": f"pairs, 3 × {label}", "pairs": len(ia), "core_pairs_per_s": len(ia) / core,
                     "raw_pairs_per_s": len(ia) / raw, "ratio": core / raw})
    # Nazca's word-order-free Levenshtein has no single rapidfuzz kernel: against plain Levenshtein.
    treatments = [Treatment(("given_name", "surname"), "levenshtein")]
    ea, eb = [treatments[0].encode(a)], [treatments[0].encode(b)]
    core = best_of(lambda: global_alignment_matrix(treatments, ea, eb))
    names_a = (a.given_name + " " + a.surname).tolist()
    names_b = (b.given_name + " " + b.surname).tolist()
    raw = best_of(lambda: process.cdist(names_a, names_b, scorer=Levenshtein.distance, dtype=np.int32, workers=1))
    rows.append({"kernel": "dense block, Nazca levenshtein on 2-word names (raw: plain Levenshtein)",
                 "pairs": n * n, "core_pairs_per_s": n * n / core, "raw_pairs_per_s": n * n / raw,
                 "ratio": core / raw})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    rows = run(args.n)
    print(f"# Kernels, one thread ({platform.machine()}, rapidfuzz {rapidfuzz.__version__}, n = {args.n})\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
