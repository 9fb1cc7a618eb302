"""Staging: every unit of every set read by a task (files, pages of an endpoint, partitions of a database),
its rejects set aside, its good rows written as Parquet; then read back as the sets' records, one per
identifier (the rows of an identifier made one record of value sets where the set is multivalued)."""

from __future__ import annotations

import math
import os
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .cluster import progress_bars, shuffle_method, worker_threads
from .io import REJECT_COLUMNS, InputError, SetSpec, atomic_path
from .jobs import Job
from .sources import StagedFile, stage_file
from .values.sets import RANK_PREFIX, group_by_id, grouping, largest_sets, single_values

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["MAX_PARTITION_ROWS", "read_staged", "read_staged_frame", "stage_inputs"]

# Records of a partition of a staged set, at most (see read_staged): from 250,000 to 1M, a 10M
# run's peak per worker went from 5.0 to 6.1 GB.
MAX_PARTITION_ROWS = 1_000_000

def _stage(client: Any, job: Job, files: dict[str, list[str]], staging_dir: str,
           show_progress: bool) -> dict[str, list[StagedFile]]:
    os.makedirs(staging_dir, mode=0o700, exist_ok=True)
    os.chmod(staging_dir, 0o700)  # raw records: for the user only, whatever the umask
    staged: dict[str, list[StagedFile]] = {}
    futures: dict[str, list[Any]] = {}
    # Keys of this run only: a scheduler takes equal keys from two clients for one task.
    run = uuid.uuid4().hex
    attributes = [k for t in job.alignment.treatments for a in (t.attribute, t.target_attribute)
                  for k in (a if isinstance(a, tuple) else (a,))]
    # Only what the job reads is staged (unless an attribute is a position, which counts every column).
    columns = None if any(isinstance(a, int) for a in attributes) else sorted(
        {str(a) for a in attributes} | {str(c) for c in job.alignment.blocking.columns})
    mapped = []  # (set, source, unit, index) of every unit, staged by one map: at once, without a cluster too
    for spec in job.sets():
        if spec.name not in files:  # (a set this stage does not read: an index's other side)
            continue
        futures[spec.name] = []  # (the sets' order)
        source = job.sources[spec.name]
        parts = source.partitions(columns)
        if parts is not None:  # a task per partition that Dask reads (from a database)
            stage = dask.delayed(stage_file, pure=False)
            treatments = job.alignment.treatments
            futures[spec.name] = client.compute([stage(source, label, k, treatments, staging_dir, columns, part,
                                                       dask_key_name=f"stage_file-{spec.name}-{k}-{run}")
                                                 for k, (label, part) in enumerate(zip(files[spec.name], parts))])
            continue
        # a task per file, per page of an endpoint's rows; RDF files in one, queried together
        mapped += [(spec.name, source, unit, i) for i, unit in enumerate(source.staged_units(files[spec.name]))]
    if mapped:
        names, sources, units, indexes = zip(*mapped)
        for name, future in zip(names, client.map(stage_file, sources, units, indexes,
                                                  treatments=job.alignment.treatments,
                                                  staging_dir=staging_dir, columns=columns, pure=False,
                                                  key=[f"stage_file-{set_name}-{i}-{run}"
                                                       for set_name, _, _, i in mapped])):
            futures[name].append(future)
    progress_bars([f for fs in futures.values() for f in fs], show_progress)
    for name, fs in futures.items():
        staged[name] = client.gather(fs)
    return staged


def _one_record_per_id(client: Any, spec: SetSpec, records: Any,
                       parts: list[StagedFile]) -> tuple[Any, int | None]:
    """The staged rows (a Dask or, read in memory, a pandas frame) as records, and how many records rows of
    one identifier made (None: a row each).
    The rows of one identifier are one record whose columns hold value sets when the set is
    ``multivalued`` (a query's rows, by default), else a repeated identifier is an error naming where it
    is. A set whose identifiers are distinct is left as it is (one value each)."""
    ranks = [c for c in records.columns if c.startswith(RANK_PREFIX)]
    hashes = np.sort(np.concatenate([s.id_hashes for s in parts]))
    if not (hashes[1:] == hashes[:-1]).any():  # distinct hashes: distinct ids (np.unique hashes: 100× slower)
        return (records.drop(columns=ranks) if ranks else records), None
    id_column = records.columns[0]
    computed = (lambda x: x) if isinstance(records, pd.DataFrame) else (lambda x: client.compute(x).result())
    if spec.multivalued:
        grouped = _grouped(client, records, id_column, spec)
        return grouped, int(computed(grouped.shape[0]))
    sources = [s.source for s in parts]
    counts = records[id_column].value_counts()
    duplicated = computed(counts[counts > 1])
    first = duplicated.index[0]
    rows = computed(records[records[id_column] == first][["_file", "_row"]])
    where = ", ".join(f"{sources[f]} row {r}" for f, r in zip(rows["_file"], rows["_row"]))
    raise InputError(f"{spec.name}: duplicate identifier {first!r} in column {id_column!r} ({where}); "
                     f"{len(duplicated)} identifiers are duplicated (multivalued = true on the set makes the rows "
                     "of an identifier one record with several values)")


def _grouped(client: Any, records: Any, id_column: str, spec: SetSpec) -> Any:
    """A multivalued set's rows shuffled on their identifier (a Dask frame; a pandas frame is grouped
    whole), then made one record each (see :func:`~bigalign.values.sets.group_by_id`): a variable, its
    language and datatype deduplicated as one. Kept on the workers; a column where no record holds two
    values stays a column of single values (the coordinates beside several labels: a neighbourhood
    blocking reads them)."""
    families, rank_of = grouping(list(records.columns), id_column, spec.literal_details)
    args = (id_column, families, rank_of, ["_file", "_row"])
    if isinstance(records, pd.DataFrame):
        grouped = group_by_id(records, *args)
        sizes = largest_sets(grouped)
    else:
        shuffled = records.shuffle(on=id_column, npartitions=records.npartitions, shuffle_method=shuffle_method(client))
        grouped = client.persist(shuffled.map_partitions(group_by_id, *args, meta=group_by_id(records._meta, *args),
                                                         enforce_metadata=False))
        sizes = client.compute(grouped.map_partitions(largest_sets, meta=pd.Series(dtype=np.int64))).result()
    single = [c for c, n in sizes.groupby(level=0).max().items() if n <= 1]
    if not single:
        return grouped
    if isinstance(grouped, pd.DataFrame):
        return single_values(grouped, single)
    meta = single_values(grouped._meta, single)
    return grouped.map_partitions(single_values, single, meta=meta, enforce_metadata=False)


def read_staged(paths: list[str], threads: int) -> dd.DataFrame:
    """Parquet files (a staged set), their row groups read together in partitions: two per
    worker thread, of at most ``MAX_PARTITION_ROWS`` rows. Large partitions, because the
    values a partition repeats are normalized, parsed and keyed once: encoding costs 1.5 times
    less per record at 250,000 records than at 25,000, and 10M × 10M takes 0.87 times the
    workers' CPU with partitions of 1M records than of 250,000 (benchmarks/SCALING.md); and
    the block shuffle's shards stay large as the sets grow."""
    import dask.dataframe as dd  # (not with the module: a batch's staging reads its few records without it)

    metadata = [pq.read_metadata(path) for path in paths]
    rows, row_groups = sum(m.num_rows for m in metadata), sum(m.num_row_groups for m in metadata)
    wanted = max(2 * threads, math.ceil(rows / MAX_PARTITION_ROWS))
    return dd.read_parquet(paths, split_row_groups=max(1, math.ceil(row_groups / wanted)))


def _as_dask_reads(kind: pa.DataType) -> Any:
    """The pandas type Dask's Parquet reader gives a column of this Arrow type (None: pandas' own)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.StringDtype("pyarrow")
    if pa.types.is_date(kind) or pa.types.is_decimal(kind):
        return pd.ArrowDtype(kind)
    return None


def read_staged_frame(paths: list[str]) -> pd.DataFrame:
    """Parquet files (a staged set) as one pandas frame, its columns of the types :func:`read_staged`'s
    partitions have: a set read in memory is the set a run reads."""
    return pq.read_table(paths).to_pandas(types_mapper=_as_dask_reads)


def stage_inputs(client: Any, job: Job, files: dict[str, list[str]], rejects_path: str,
                 show_progress: bool, in_memory: bool = False) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Stage every input file on the cluster; write the rejects; read the good rows back.

    Returns the records of each set (Dask frames; ``in_memory``: pandas frames, read by one task a set,
    for the few records of a batch, without Dask's dataframes) and, per set, the counts of the summary.
    """
    staged = _stage(client, job, files, os.path.join(job.run_dir, "staging"), show_progress)
    rejects = [r for parts in staged.values() for s in parts for r in s.rejects]
    with atomic_path(rejects_path, private=True) as tmp:  # raw values: for the user only
        pd.DataFrame(rejects, columns=REJECT_COLUMNS).to_csv(tmp, index=False)
    records, counts = {}, {}
    for name, parts in staged.items():
        set_rejects = [r for s in parts for r in s.rejects]
        counts[name] = {
            "files": len(parts), "read": sum(s.rows_read for s in parts), "kept": sum(s.rows_kept for s in parts),
            "rejected": len(set_rejects),
            "rejected_by_reason": dict(Counter(r["reason"].split(":")[0] for r in set_rejects)),
        }
        kept = [s.parquet for s in parts if s.parquet and s.rows_kept]
        if not kept:
            raise InputError(f"{name}: no record left to align in {[s.source for s in parts]} "
                             f"({len(set_rejects)} rows rejected, see {rejects_path})")
        read = client.submit(read_staged_frame, kept, pure=False).result() if in_memory else \
            read_staged(kept, worker_threads(client))
        records[name], made = _one_record_per_id(client, job.sources[name].spec, read, parts)
        if made is not None:  # (rows of one identifier made one record)
            counts[name]["records"] = made
    return records, counts

