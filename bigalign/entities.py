"""``cluster_links``: from pairs to entities.

The links of a deduplication, or of a linking of several sets, make a graph
whose connected components are the entities: every record gets the
``cluster_id`` of its component, the id of its first record (see
:func:`bigalign.pipeline.clusters.cluster_ids`). A component can chain
unrelated records through weak links (A~B~C~…): ``threshold`` clusters on
the stronger links only, and ``max_size`` cuts a component that grows too
large back into parts joined by its strongest links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .pipeline.clusters import (
    ClusterStats,
    cluster_ids,
    cluster_records,
    cluster_stats,
    link_forest,
    linked_records,
    oversized_edges,
    oversized_nodes,
    sort_clusters,
    split_oversized,
    strong_links,
)
from .records import is_dask

__all__ = ["cluster_links"]


def _set_names(links: Any, sets: Sequence[str] | None, dedupe: bool) -> list[str]:
    if sets is not None:
        names = [str(s) for s in sets]
    elif "align_set" in links.columns:
        raise ValueError("links name their sets (align_set, target_set): pass sets=[...] in the order that "
                         "chooses each cluster's id")
    else:
        names = ["alignset"] if dedupe else ["alignset", "targetset"]
    if len(set(names)) != len(names) or any(":" in s or not s for s in names):
        raise ValueError(f"sets must be distinct names without ':', got {names}")
    return names


def _ids_by_set(ids: Any, names: list[str]) -> dict[int, Any]:
    if ids is None:
        return {}
    if not isinstance(ids, Mapping):
        if len(names) > 1:
            raise ValueError(f"ids: a mapping of each set's ids ({names}) when there are several sets")
        ids = {names[0]: ids}
    unknown = set(map(str, ids)) - set(names)
    if unknown:
        raise ValueError(f"ids: {sorted(unknown)} are not among the sets {names}")
    return {names.index(str(name)): values for name, values in ids.items()}


def cluster_links(links: Any, ids: Any = None, *, dedupe: bool = False, sets: Sequence[str] | None = None,
                  threshold: float | None = None, max_size: int | None = None,
                  client: Any = None) -> pd.DataFrame:
    """The entities ``links`` make: each record with the id of its cluster.

    Parameters
    ----------
    links : pandas or dask DataFrame
        ``align_id``, ``target_id`` and ``distance`` (or a model's
        ``match_weight`` and ``match_probability``), as :func:`bigalign.align`
        returns them; with several sets, ``align_set`` and ``target_set``
        name each record's set.
    ids : array, Series, dask Series or mapping, optional
        Every record's id (per set name, when there are several): records
        without a link get their own cluster. Without it, only linked
        records are returned.
    dedupe : bool
        The links are within one set (both ids from it); else align ids are
        of the first set, target ids of the second.
    sets : list of str, optional
        The sets' names, in the order that chooses a cluster's id; by
        default ``["alignset"]`` (dedupe) or ``["alignset", "targetset"]``.
    threshold : float, optional
        Cluster on the links at least this strong only (a match probability
        for a model's links, else a distance): stricter than the linking's.
    max_size : int, optional
        Components of more records are cut back: their links joined from
        the strongest, each kept while its cluster stays within ``max_size``.
    client : distributed.Client, str, optional
        Compute on this cluster (by default only dask input is computed on
        one, see :func:`bigalign.cluster.connect`).

    Returns
    -------
    pandas.DataFrame
        ``set``, ``id``, ``cluster_id``: the id of the cluster's first record
        (first set that has one, then smallest id), as ``"set:id"`` when
        there are several sets. The same whatever the partitioning.
        ``attrs["clusters"]``: records, clusters, linked records, merge
        rounds, clusters split, the size distribution and the largest ones.
    """
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 2):
        raise ValueError(f"max_size must be an integer of at least 2, got {max_size!r}")
    names = _set_names(links, sets, dedupe)
    missing = {"align_id", "target_id"} - set(links.columns)
    if missing or not {"distance", "match_weight"} & set(links.columns):
        raise ValueError("links need align_id, target_id and distance (or match_weight and match_probability), "
                         f"got {list(links.columns)}")
    by_set = _ids_by_set(ids, names)
    if is_dask(links) or client is not None or any(is_dask(v) for v in by_set.values()):
        clusters, stats = _on_dask(links, by_set, names, dedupe, threshold, max_size, client)
    else:
        clusters, stats = _in_memory(links, by_set, names, dedupe, threshold, max_size)
    clusters = sort_clusters(clusters.infer_objects())
    clusters.attrs["clusters"] = stats.as_dict()
    return clusters


def _in_memory(links: pd.DataFrame, by_set: dict[int, Any], names: list[str], dedupe: bool,
               threshold: float | None, max_size: int | None) -> tuple[pd.DataFrame, ClusterStats]:
    kept = strong_links(links, threshold)
    forest = link_forest(kept, names, dedupe)
    split = 0
    if max_size is not None:
        big, split = oversized_nodes(forest, max_size)
        if split:
            forest = split_oversized(forest, oversized_edges(kept, names, dedupe, big), max_size)
    named = cluster_ids(forest, names)
    if by_set:
        clusters = pd.concat([cluster_records(np.asarray(v), s, names, named)
                              for s, v in sorted(by_set.items())], ignore_index=True)
    else:
        clusters = linked_records(named, names)
    return clusters, cluster_stats(named, len(clusters) if by_set else 0, 0, split)


def _on_dask(links: Any, by_set: dict[int, Any], names: list[str], dedupe: bool, threshold: float | None,
             max_size: int | None, client: Any) -> tuple[pd.DataFrame, ClusterStats]:
    import dask.dataframe as dd

    from .cluster import connect
    from .pipeline.graph import run_clustering

    def parts(frame: Any) -> list:
        if not is_dask(frame):
            frame = dd.from_pandas(frame if isinstance(frame, (pd.DataFrame, pd.Series)) else pd.Series(
                np.asarray(frame)), npartitions=max(1, min(64, len(frame) // 100_000)), sort=False)
        return frame.to_delayed()

    if client is None:  # (the user's client, when there is one: their frames may be on its cluster)
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            pass
    with connect(client) as active:
        futures, stats = run_clustering(active, parts(links), {s: parts(v) for s, v in by_set.items()}, names,
                                        dedupe, threshold, max_size)
        clusters = pd.concat(active.gather(futures), ignore_index=True)
    return clusters, stats
