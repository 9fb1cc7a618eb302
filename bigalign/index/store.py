"""How an index lies on disk (or an object store): its manifest, its layers of buckets, its model.

An index is a directory of versions. Each version's layer holds, as Hive-style Parquet buckets (one file a
bucket, its rows sorted by the hash it is bucketed by, in row groups whose hash ranges a reader prunes by),
the block rows of the records it added (``keys/bucket=B``: by routing key), their encoded values
(``records/``: by id hash) and, in a deduplication's index, the links they made (``edges/``: each link
under both its records' id hashes), the id hashes it removed (``removed.parquet``), and in a deduplication
the whole table of entities at that version (``entities.parquet``, ``issued.parquet``) and what changed
(``changes.parquet``).
``manifest.json``, written last, lists the layers: a reader keeps the version it opened.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import dask
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..blocking.base import Blocking
from ..cluster import shuffle_method
from ..comparisons import Comparison
from ..errors import InputError
from ..fellegi_sunter import FellegiSunter
from ..io import atomic_path, is_url
from ..jobs import Job
from ..pipeline.encode import block_rows
from ..pipeline.schema import EXTRA_PREFIX, KEY_PREFIX
from ..weights import distance_threshold

__all__ = ["BUCKETS", "INDEX_FORMAT", "ROWS_PER_BUCKET", "differences", "filesystem", "job_tables", "read_manifest",
           "read_model", "scoring_tables", "write_edges", "write_json", "write_layer", "write_model"]

# (2: a learned model's comparisons, its groups of treatments; 3: each bucket file's rows sorted by the hash it
# is bucketed by, hashes stored plain; 4: one file a bucket, in row groups of ROWS_PER_GROUP rows)
INDEX_FORMAT = "bigalign-index/4"
# Rows of a bucket, about: a build writes a file a bucket, so that a batch lists and opens few files.
ROWS_PER_BUCKET = 200_000
# Rows of a row group of a bucket's file: a batch reads the groups whose hash range holds one of its keys, so
# a few records read a few groups. Smaller groups would read less for a few keys, but each group read costs
# ~0.15 ms more to decode (10 columns): 16,384 rows add ~25% to a whole bucket's read (a large batch's).
ROWS_PER_GROUP = 16_384
# Each part of a layer: the manifest's count of its buckets.
BUCKETS = {"keys": "key_buckets", "records": "record_buckets", "edges": "edge_buckets"}


def indexed_set(job: Job) -> str:
    """The set an index holds: the targetset, or the deduplicated set."""
    return "alignset" if job.alignment.dedupe else "targetset"


def job_tables(job: Job) -> dict[str, Any]:
    """What an index depends on in a job: the treatments (less their weights, which act on scores
    only), the blocking, the scorer's table, how the indexed set's records are identified, and in a
    deduplication what makes its entities."""
    raw = job.raw
    tables = {"treatments": [{k: v for k, v in t.items() if k != "weight"} for t in raw.get("treatments", [])],
              "blocking": raw.get("blocking"), "model": raw.get("model"),
              "targetset_id": (raw.get(indexed_set(job)) or {}).get("id")}
    if job.alignment.dedupe:
        tables.update(dedupe=True, threshold=raw.get("threshold"),
                      weights=[t.get("weight") for t in raw.get("treatments", [])],
                      clusters={k: v for k, v in (raw.get("clusters") or {}).items() if k in ("threshold", "max_size")})
    return json.loads(json.dumps(tables, default=str))


def scoring_tables(job: Job) -> dict[str, Any]:
    """What a lookup scores with when no job is given (see :meth:`Index.match`): the job's treatments,
    blocking, model and threshold, and the alignset's id column."""
    raw = job.raw
    return json.loads(json.dumps({"treatments": raw.get("treatments", []), "blocking": raw.get("blocking"),
                                  "model": raw.get("model"), "threshold": raw.get("threshold"),
                                  "alignset_id": (raw.get("alignset") or {}).get("id")}, default=str))


def differences(indexed: Any, wanted: Any, where: str = "") -> list[str]:
    """Where two job tables differ, by key path."""
    if isinstance(indexed, dict) and isinstance(wanted, dict):
        return [d for k in sorted(set(indexed) | set(wanted), key=str)
                for d in differences(indexed.get(k), wanted.get(k), f"{where}.{k}" if where else str(k))]
    if isinstance(indexed, list) and isinstance(wanted, list) and len(indexed) == len(wanted):
        return [d for i, (a, b) in enumerate(zip(indexed, wanted)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if indexed == wanted else [f"{where}: the index has {indexed!r}, the job {wanted!r}"]


def filesystem(path: str) -> tuple[Any, str]:
    return fsspec.core.url_to_fs(path) if is_url(path) else (fsspec.filesystem("file"), os.path.abspath(path))


def write_json(path: str, value: Any) -> None:
    """JSON, whole or not at all (a local file renamed into place; an object store's object written once)."""
    text = json.dumps(value, indent=2, default=str)
    if is_url(path):
        with fsspec.open(path, "w") as f:
            f.write(text)
        return
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_table(frame: pd.DataFrame, path: str) -> None:
    """A table of the index as Parquet, in row groups of :data:`ROWS_PER_GROUP` rows. Its hashes and key
    codes (unsigned integers: random bits) are stored plain, neither compressed nor in a dictionary: they
    would not shrink, and a large batch reads every group of its buckets — decoding is most of its reading."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    hashes = {field.name for field in table.schema if pa.types.is_unsigned_integer(field.type)}
    with fsspec.open(path, "wb") as f:
        pq.write_table(table, f, row_group_size=ROWS_PER_GROUP,
                       use_dictionary=[n for n in table.column_names if n not in hashes],
                       compression={n: "none" if n in hashes else "snappy" for n in table.column_names})


def _write_buckets(frame: pd.DataFrame, column: str, buckets: int, directory: str, part: int) -> int:
    """Write a partition's rows by bucket of ``column`` (``bucket=B/part-P.parquet``, as Hive lays out
    partitions: a reader selects buckets by directory), each file's rows sorted by ``column`` (a reader
    finds the rows of a value by bisection; the rows of one value in the order of their other hashes: the same
    file whatever partitions the rows came in); return the rows written."""
    frame = frame.drop(columns="_bucket", errors="ignore")
    values = frame[column].to_numpy(np.uint64)
    bucket = (values % np.uint64(buckets)).astype(np.int64)
    ties = [frame[c].to_numpy() for c in ("slot", "rid", "rid_a", "rid_b") if c in frame.columns and c != column]
    order = np.lexsort((*ties[::-1], values, bucket))
    bounds = np.flatnonzero(np.diff(bucket[order])) + 1
    for rows in np.split(order, bounds) if len(order) else []:
        write_table(frame.iloc[rows], f"{directory}/bucket={bucket[rows[0]]}/part-{part:05d}.parquet")
    return len(frame)


def write_layer(active: Any, encoded: Any, blocking: Blocking, to: str, name: str,
                removed: np.ndarray | None = None) -> dict[str, Any]:
    """Write a layer of the index: encoded records (a dask frame on ``active``, a frame, or None) and the id
    hashes the layer removes from the layers before it (``removed``)."""
    layer: dict[str, Any] = {"path": name, "records": 0, "block_rows": 0, "key_buckets": 1, "record_buckets": 1,
                             "removed": 0}
    if encoded is not None:
        layer.update(_write_records(active, encoded, blocking, f"{to}/{name}"))
    if removed is not None and len(removed):
        layer["removed"] = len(np.unique(removed))
        write_table(pd.DataFrame({"rid": np.unique(removed).astype(np.uint64)}), f"{to}/{name}/removed.parquet")
    return layer


def write_edges(links: pd.DataFrame, to: str, name: str, layer: dict[str, Any]) -> None:
    """A deduplication layer's links (``rid_a``, ``rid_b`` and the links' columns), each written under both its
    records' id hashes (``node``): the links of a set of records are read from those records' buckets."""
    both = pd.concat([links.assign(node=links["rid_a"]), links.assign(node=links["rid_b"])], ignore_index=True)
    layer["edges"], layer["edge_buckets"] = len(links), max(1, math.ceil(len(both) / ROWS_PER_BUCKET))
    _write_buckets(both, "node", layer["edge_buckets"], f"{to}/{name}/edges", 0)


def _write_records(active: Any, encoded: Any, blocking: Blocking, directory: str) -> dict[str, int]:
    """Encoded records' block rows by key bucket and values by id hash bucket, under ``directory``."""
    local = isinstance(encoded, pd.DataFrame)
    rows = block_rows(encoded, blocking, "target") if local else encoded.map_partitions(
        block_rows, blocking, "target", meta=block_rows(encoded._meta, blocking, "target"))
    values = encoded[[c for c in encoded.columns if not c.startswith((KEY_PREFIX, EXTRA_PREFIX))]]
    n_records, n_rows = (len(encoded), len(rows)) if local else \
        (f.result() for f in active.compute([encoded.shape[0], rows.shape[0]]))
    key_buckets = max(1, math.ceil(n_rows / ROWS_PER_BUCKET))
    record_buckets = max(1, math.ceil(n_records / ROWS_PER_BUCKET))
    parts = ((rows, "key", key_buckets, "keys"), (values, "rid", record_buckets, "records"))
    if local:
        for frame, column, buckets, part in parts:
            _write_buckets(frame, column, buckets, f"{directory}/{part}", 0)
    else:  # (each bucket's rows brought to one partition first: one file a bucket, whatever the partitions)
        write, method = dask.delayed(_write_buckets, pure=False), shuffle_method(active)
        chunks = [(chunk, column, buckets, part) for frame, column, buckets, part in parts
                  for chunk in _by_bucket(frame, column, buckets, method).to_delayed()]
        for written in active.compute([write(chunk, column, buckets, f"{directory}/{part}", i)
                                       for i, (chunk, column, buckets, part) in enumerate(chunks)]):
            written.result()
    return {"records": int(n_records), "block_rows": int(n_rows), "key_buckets": key_buckets,
            "record_buckets": record_buckets}


def _by_bucket(frame: Any, column: str, buckets: int, method: str | None) -> Any:
    """A Dask frame's rows moved so that each bucket of ``column`` is in one partition (Dask's shuffle)."""
    def bucket_of(chunk: pd.DataFrame) -> pd.DataFrame:
        return chunk.assign(_bucket=(chunk[column].to_numpy(np.uint64) % np.uint64(buckets)).astype(np.int64))

    with_bucket = frame.map_partitions(bucket_of, meta=bucket_of(frame._meta))
    return with_bucket.shuffle(on="_bucket", npartitions=max(1, min(buckets, frame.npartitions)),
                               shuffle_method=method)


def read_manifest(fs: Any, root: str, missing_ok: bool = False) -> dict[str, Any] | None:
    path = f"{root}/manifest.json"
    if not fs.exists(path):
        if missing_ok:
            return None
        raise InputError(f"{root}: no index here (no manifest.json); build one with 'bigalign index JOB --to DIR'")
    with fs.open(path, "r") as f:
        manifest = json.load(f)
    if manifest.get("format") != INDEX_FORMAT:
        raise InputError(f"{root}: an index of format {manifest.get('format')!r}; this bigalign reads "
                         f"{INDEX_FORMAT!r}: build it again ('bigalign index JOB --to DIR')")
    return manifest


def write_model(fs: Any, base: str, model: FellegiSunter) -> None:
    """A fitted model's scoring state: JSON, and its term frequency tables as Parquet."""
    state = {"cuts": model.cuts_, "m": [m.tolist() for m in model.m_], "u": [u.tolist() for u in model.u_],
             "prior": model.prior_, "groups": model.groups_, "threshold": model.threshold_,
             "conditional_u": [[k, j, table.tolist()] for (k, j), table in model.conditional_u_.items()],
             "term_frequencies": sorted(model.term_frequencies_), "grouped_by": model.grouped_by_,
             "comparisons": [[c.name, list(c.members)] for c in model.comparisons_]}
    with fs.open(f"{base}/model.json", "w") as f:
        json.dump(state, f)
    if model.term_frequencies_:
        terms = pd.concat([pd.DataFrame({"treatment": k, "hash": hashes, "frequency": frequencies})
                           for k, (hashes, frequencies) in model.term_frequencies_.items()], ignore_index=True)
        with fs.open(f"{base}/model-terms.parquet", "wb") as f:
            terms.to_parquet(f, index=False)


def read_model(fs: Any, base: str) -> FellegiSunter:
    with fs.open(f"{base}/model.json", "r") as f:
        state = json.load(f)
    model = FellegiSunter()
    model.cuts_ = state["cuts"]
    model.comparisons_ = [Comparison(name, tuple(members)) for name, members in state["comparisons"]]
    model.grouped_by_ = state["grouped_by"]
    model.m_, model.u_ = [np.asarray(m) for m in state["m"]], [np.asarray(u) for u in state["u"]]
    model.prior_, model.groups_ = state["prior"], state["groups"]
    model.conditional_u_ = {(k, j): np.asarray(table) for k, j, table in state["conditional_u"]}
    model.threshold_ = state["threshold"]
    model.distance_threshold_ = distance_threshold(model.threshold_)
    model.term_frequencies_ = {}
    if state["term_frequencies"]:
        with fs.open(f"{base}/model-terms.parquet", "rb") as f:
            terms = pd.read_parquet(f)
        for k in state["term_frequencies"]:
            mine = terms[terms["treatment"] == k]
            model.term_frequencies_[k] = (mine["hash"].to_numpy(np.uint64), mine["frequency"].to_numpy(np.float64))
    return model
