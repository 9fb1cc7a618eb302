"""The distributed alignment: one module a stage, the graph built in one place.

::

    records ─► encode_records ─► block_rows ─► P2P shuffle ─► candidate_pairs
               (normalize,       (one narrow    on block key   (first shared slot:
                encode, keys;     row per key)                  each pair once)
                persisted)                                           │
    best_match ◄─ score_pairs ◄─ hash join of the pairs with ◄───────┘
    (only with    (global        both encoded sets, on id hashes, the
     dense         distances,    align side last
     blocks or     best per      (large blocks: score_dense_blocks)
     dedupe)       align record)

Only narrow rows (a block key, a slot, a record's id hash and block keys)
cross the block shuffle, once per key of a record; a record's encoded values
travel once per candidate pair it has, by a hash join of the pairs with the
encoded sets. The join on the align side comes last, so all the pairs of an
align record meet in one ``score_pairs`` task, whose best match is final;
the ``best_match`` shuffle on the align id is needed only when dense blocks
or a deduplication's orientation spread them. Blocks of many pairs are
scored as one dense matrix each (``score_dense_blocks``); blocks too large
for one task are paired by several ``candidate_tile`` tasks. Every kernel is
a pure function of its partitions, named after its stage (the dashboard
shows ``encode_records``, ``block_rows``, ``candidate_pairs``,
``candidate_tile``, ``score_pairs``, ``score_dense_blocks``, ``best_match``).
A pair's distance is computed element-wise, identically in both forms, and
the first-shared-slot rule does not depend on partitioning, so the links are
the same whatever the number of workers, threads or partitions.

The modules: :mod:`.schema` (the frames' columns, what tasks return),
:mod:`.encode`, :mod:`.candidates`, :mod:`.scoring`, :mod:`.reduce` (the
stages, pure functions of partitions), :mod:`.stats` (what the report
reads), :mod:`.checkpoint`, and :mod:`.graph` (``run_alignment``: the
graph from the stage functions).
"""


# The stages are imported when first named (PEP 562): a batch against an index, or one record looked up,
# uses a few pure stage functions and never Dask's dataframes, whose import takes ~0.7 s more.
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..errors import RecordError

if TYPE_CHECKING:
    from .candidates import CHUNK_PAIRS, DENSE_BLOCK_PAIRS, MAX_TASK_PAIRS, candidate_pairs, candidate_tile
    from .checkpoint import Checkpoint
    from .encode import ROWS_PER_PARTITION, block_rows, encode_records, to_dask
    from .graph import align_distributed, run_alignment
    from .reduce import best_match
    from .schema import pair_hashes
    from .scoring import score_dense_blocks, score_pairs
    from .stats import AlignmentRun, BlockStats, distance_bins, distance_histogram
    from .timing import cpu_measured, timed

_MODULE_OF = {
    "CHUNK_PAIRS": "candidates", "DENSE_BLOCK_PAIRS": "candidates", "MAX_TASK_PAIRS": "candidates",
    "candidate_pairs": "candidates", "candidate_tile": "candidates", "Checkpoint": "checkpoint",
    "ROWS_PER_PARTITION": "encode", "block_rows": "encode", "encode_records": "encode", "to_dask": "encode",
    "align_distributed": "graph", "run_alignment": "graph", "best_match": "reduce", "pair_hashes": "schema",
    "score_dense_blocks": "scoring", "score_pairs": "scoring", "AlignmentRun": "stats", "BlockStats": "stats",
    "distance_bins": "stats", "distance_histogram": "stats", "cpu_measured": "timing", "timed": "timing",
}

__all__ = ["CHUNK_PAIRS", "DENSE_BLOCK_PAIRS", "MAX_TASK_PAIRS", "ROWS_PER_PARTITION", "AlignmentRun", "BlockStats",
           "Checkpoint", "RecordError", "align_distributed", "best_match", "block_rows", "candidate_pairs",
           "candidate_tile", "cpu_measured", "distance_bins", "distance_histogram", "encode_records", "pair_hashes",
           "run_alignment", "score_dense_blocks", "score_pairs", "timed", "to_dask"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value  # (once: later lookups find it)
    return value
