"""Clusters: the entities the links make, as pure functions of partitions.

A record is a node, keyed by a uint64 hash of its set and id; a link is an
edge. Each partition of links becomes a *forest*: every node it touches with
the root of its component there (the smallest key, so the root does not
depend on the order of the links). Forests merge by the same computation on
their node → root edges, which keep the connectivity of the links they stand
for; merged in a tree of fan-in :data:`MERGE_FAN_IN`, the partitions give
the components of the whole graph in ⌈log₈ partitions⌉ rounds, whatever its
diameter (a chain of a million records takes no more rounds than a pair).
The last merge names each component after its smallest record (the first
set that has one, then the smallest id) and measures the sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .schema import record_keys

__all__ = ["CLUSTER_COLUMNS", "ClusterStats", "MERGE_FAN_IN", "cluster_ids", "cluster_records", "cluster_stats",
           "link_forest", "linked_records", "merge_forests", "node_keys", "oversized_edges", "oversized_nodes",
           "sort_clusters", "split_oversized", "strong_links"]

# Forests merged by one task of the tree.
MERGE_FAN_IN = 8
# Largest clusters the report lists.
LARGEST_SHOWN = 10
CLUSTER_COLUMNS = ["set", "id", "cluster_id"]
_FOREST = {"node": np.uint64, "root": np.uint64, "set": np.int16}


def node_keys(ids: Any, set_index: int) -> np.ndarray:
    """A record's node key: its ``rid`` (see :func:`~bigalign.pipeline.schema.record_keys`)."""
    return record_keys(pd.Series(np.asarray(ids, dtype=object)), set_index)


def _set_indices(links: pd.DataFrame, side: str, default: int, sets: Sequence[str]) -> np.ndarray:
    column = f"{side}_set"
    if column not in links.columns:
        return np.full(len(links), default, dtype=np.int16)
    codes = pd.Categorical(links[column], categories=list(sets)).codes
    if (codes < 0).any():
        unknown = links[column][codes < 0].iloc[0]
        raise ValueError(f"links: {column} {unknown!r} is not one of the sets {list(sets)}")
    return codes.astype(np.int16)


def _link_nodes(links: pd.DataFrame, sets: Sequence[str], dedupe: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nodes of a partition of links (node, set, id) and its edges (a, b)."""
    sides = []
    for side, default in (("align", 0), ("target", 0 if dedupe else 1)):
        set_index = _set_indices(links, side, default, sets)
        ids = links[f"{side}_id"].to_numpy(object)
        keys = np.empty(len(links), dtype=np.uint64)
        for s in np.unique(set_index):
            at = set_index == s
            keys[at] = node_keys(ids[at], int(s))
        sides.append(pd.DataFrame({"node": keys, "set": set_index, "id": ids}))
    return pd.concat(sides, ignore_index=True), pd.DataFrame({"a": sides[0]["node"], "b": sides[1]["node"]})


def _components(nodes: pd.DataFrame, a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """``nodes`` (node, set, id; every end of an edge among them), each once,
    with the root of their component: its smallest node key."""
    nodes = nodes.sort_values("node", kind="stable").reset_index(drop=True)
    keys = nodes["node"].to_numpy(np.uint64)
    again = np.flatnonzero(keys[1:] == keys[:-1]) + 1
    if len(again):  # the same record seen twice — or two records whose keys collide (64 bits: vanishingly rare)
        ids, sets = nodes["id"].to_numpy(object), nodes["set"].to_numpy()
        other = (ids[again] != ids[again - 1]) | (sets[again] != sets[again - 1])
        if other.any():
            k = again[np.flatnonzero(other)[0]]
            raise ValueError(f"records {ids[k - 1]!r} and {ids[k]!r} have one node key: rename one")
        nodes = nodes.drop(index=again).reset_index(drop=True)
        keys = nodes["node"].to_numpy(np.uint64)
    from scipy.sparse import coo_matrix  # (here: a run without clusters never loads scipy's graphs)
    from scipy.sparse.csgraph import connected_components

    ia, ib = np.searchsorted(keys, a), np.searchsorted(keys, b)
    graph = coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)), shape=(len(keys), len(keys)))
    _, labels = connected_components(graph, directed=False)
    # keys are sorted: a component's smallest key is at its first node
    first = np.unique(labels, return_index=True)[1]
    roots = np.empty(len(first), dtype=np.uint64)
    roots[labels[first]] = keys[first]
    return nodes.assign(root=roots[labels])[["node", "root", "set", "id"]].astype(_FOREST)


def link_forest(links: pd.DataFrame, sets: Sequence[str], dedupe: bool) -> pd.DataFrame:
    """The forest of a partition of links: node, root, set (index) and id of
    every record they touch."""
    nodes, edges = _link_nodes(links, sets, dedupe)
    return _components(nodes, edges["a"].to_numpy(np.uint64), edges["b"].to_numpy(np.uint64))


def merge_forests(*forests: pd.DataFrame) -> pd.DataFrame:
    """One forest of several: each node → root edge keeps its links' connectivity."""
    every = pd.concat(forests, ignore_index=True)
    return _components(every[["node", "set", "id"]], every["node"].to_numpy(np.uint64),
                       every["root"].to_numpy(np.uint64))


def strong_links(links: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    """The links that clustering keeps: all, or those at least as strong as
    ``threshold`` (a match probability for a model's links, else a distance)."""
    if threshold is None:
        return links
    if "match_probability" in links.columns:
        return links[links["match_probability"].to_numpy() >= threshold]
    return links[links["distance"].to_numpy() <= threshold]


@dataclass
class ClusterStats:
    """What the clustering did, as the summary and the report show it."""

    records: int = 0  # every record clustered (with the sets' ids; else the linked ones)
    clusters: int = 0
    linked_records: int = 0  # records in a cluster of two or more
    rounds: int = 0  # merge rounds of the forests (⌈log₈ partitions of links⌉)
    split_clusters: int = 0  # components larger than max_size, split
    sizes: dict[int, int] = field(default_factory=dict)  # cluster size → clusters of that size
    largest: list[dict[str, Any]] = field(default_factory=list)  # cluster_id, size, a few member ids

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _strength_order(links: pd.DataFrame) -> np.ndarray:
    """Links from the strongest: highest match weight, or smallest distance; ties by node keys (see below)."""
    return (-links["match_weight"] if "match_weight" in links.columns else links["distance"]).to_numpy(np.float64)


def oversized_edges(links: pd.DataFrame, sets: Sequence[str], dedupe: bool,
                    big: np.ndarray) -> pd.DataFrame:
    """The edges of a partition of links inside oversized components
    (``big``: their nodes, sorted), with their strength."""
    _, edges = _link_nodes(links, sets, dedupe)
    a = edges["a"].to_numpy(np.uint64)
    at = np.minimum(np.searchsorted(big, a), max(0, len(big) - 1))
    keep = big[at] == a if len(big) else np.zeros(len(a), dtype=bool)
    return edges[keep].assign(order=_strength_order(links)[keep])


def oversized_nodes(forest: pd.DataFrame, max_size: int) -> tuple[np.ndarray, int]:
    """The nodes (sorted) of the components of more than ``max_size`` records, and how many those are."""
    sizes = forest["root"].value_counts()
    big = sizes.index[sizes.to_numpy() > max_size]
    return np.sort(forest["node"][forest["root"].isin(big)].to_numpy(np.uint64)), len(big)


def split_oversized(forest: pd.DataFrame, edges: pd.DataFrame, max_size: int) -> pd.DataFrame:
    """Components larger than ``max_size`` cut back: their links (``edges``,
    see :func:`oversized_edges`) joined from the strongest (ties by node
    keys), each join kept only while the cluster it makes has at most
    ``max_size`` records. A chain of weak links between two entities is the
    last thing joined, so it is what is left out."""
    big, _ = oversized_nodes(forest, max_size)
    inside = np.isin(forest["node"].to_numpy(np.uint64), big)
    members = forest[inside].sort_values("node").reset_index(drop=True)
    keys = members["node"].to_numpy(np.uint64)
    edges = edges.sort_values(["order", "a", "b"], kind="stable")
    parent = np.arange(len(keys))
    size = np.ones(len(keys), dtype=np.int64)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(np.searchsorted(keys, edges["a"].to_numpy(np.uint64)).tolist(),
                    np.searchsorted(keys, edges["b"].to_numpy(np.uint64)).tolist()):
        ra, rb = find(a), find(b)
        if ra != rb and size[ra] + size[rb] <= max_size:
            if rb < ra:  # (the smaller index, the smaller key, stays the root)
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
    roots = np.array([find(i) for i in range(len(keys))], dtype=np.int64)
    members["root"] = keys[roots]  # the smallest key of each part
    return pd.concat([forest[~inside], members], ignore_index=True)


def cluster_ids(forest: pd.DataFrame, sets: Sequence[str]) -> pd.DataFrame:
    """Each node's ``cluster_id``: the id of its cluster's first record (the
    first set that has one, then its smallest id); with several sets, as
    ``"set:id"``. Columns node, set, id, cluster_id, size, sorted by node."""
    canonical = [pd.DataFrame({"root": np.empty(0, np.uint64), "cluster_id": np.empty(0, object)})]  # (no link)
    for s in np.unique(forest["set"].to_numpy()):  # (ids of two sets may not compare with each other)
        of_set = forest[forest["set"].to_numpy() == s]
        first = _smallest_ids(of_set)
        canonical.append(pd.DataFrame({"root": first["root"], "cluster_id": _cluster_names(first["id"], s, sets)}))
    chosen = pd.concat(canonical, ignore_index=True).drop_duplicates("root")  # (sets in order: the first wins)
    sizes = forest["root"].value_counts()
    named = forest.sort_values("node").merge(chosen, on="root", how="left")
    return named.assign(size=sizes.reindex(named["root"]).to_numpy())[["node", "set", "id", "cluster_id", "size"]]


def _smallest_ids(nodes: pd.DataFrame) -> pd.DataFrame:
    """Each root's smallest id (``root``, ``id``): by Arrow's grouping where the ids are all text or all
    numbers (text in code-point order, as Python compares it; 3× faster than pandas' sort of objects)."""
    import pyarrow as pa

    try:
        table = pa.table({"root": nodes["root"].to_numpy(np.uint64), "id": pa.array(nodes["id"], from_pandas=True)})
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # (ids of mixed types: Python's order)
        first = nodes.sort_values(["root", "id"], kind="stable").drop_duplicates("root")
        return first[["root", "id"]]
    smallest = table.group_by("root").aggregate([("id", "min")]).to_pandas()
    return pd.DataFrame({"root": smallest["root"].to_numpy(np.uint64),
                         "id": smallest["id_min"].to_numpy(object)})


def _cluster_names(ids: Any, set_index: int, sets: Sequence[str]) -> np.ndarray:
    """Records' own cluster names: their id, or ``"set:id"`` when there are several sets."""
    ids = pd.Series(np.asarray(ids, dtype=object))
    return (ids.astype(str).radd(f"{sets[set_index]}:") if len(sets) > 1 else ids).to_numpy(object)


def cluster_records(ids: Any, set_index: int, sets: Sequence[str], named: pd.DataFrame) -> pd.DataFrame:
    """The clusters of a partition of one set's ids: from ``named`` (see
    :func:`cluster_ids`) when linked, else the record's own."""
    ids = np.asarray(ids)
    keys = node_keys(ids, set_index)
    nodes = named["node"].to_numpy(np.uint64)
    at = np.minimum(np.searchsorted(nodes, keys), max(0, len(nodes) - 1))
    linked = nodes[at] == keys if len(nodes) else np.zeros(len(keys), dtype=bool)
    cluster = _cluster_names(ids, set_index, sets).copy()
    cluster[linked] = named["cluster_id"].to_numpy(object)[at[linked]]
    return pd.DataFrame({"set": sets[set_index], "id": ids, "cluster_id": cluster})


def linked_records(named: pd.DataFrame, sets: Sequence[str]) -> pd.DataFrame:
    """The clusters of the linked records alone (when the sets' ids are not given)."""
    return pd.DataFrame({"set": np.asarray(sets, dtype=object)[named["set"].to_numpy()], "id": named["id"],
                         "cluster_id": named["cluster_id"]}).reset_index(drop=True)


def sort_clusters(clusters: pd.DataFrame) -> pd.DataFrame:
    """Clusters ordered by cluster id, set and id (ids of mixed types as
    text), with their columns ``set``, ``id``, ``cluster_id``. Ordered by
    Arrow (text by code point, as Python orders it): pandas' sort of object
    columns took 3 s for a million records."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = {name: clusters[name].astype(str) if clusters[name].dtype == object else clusters[name]
            for name in ("cluster_id", "set", "id")}
    order = pc.sort_indices(pa.table({name: pa.array(values) for name, values in keys.items()}),
                            sort_keys=[(name, "ascending") for name in keys])
    return clusters[CLUSTER_COLUMNS].take(order.to_numpy()).reset_index(drop=True)


def cluster_stats(named: pd.DataFrame, records: int, rounds: int, split: int) -> ClusterStats:
    """The figures of a clustering: ``named`` (the linked records, see
    :func:`cluster_ids`) and the count of all the records clustered."""
    per_cluster = named.drop_duplicates("cluster_id")[["cluster_id", "size"]]
    sizes = per_cluster["size"].value_counts()
    if records > len(named):  # (records without a link: each its own cluster)
        sizes = sizes.add(pd.Series({1: records - len(named)}), fill_value=0)
    sizes = {int(k): int(v) for k, v in sorted(sizes.items())}
    linked = sum(k * v for k, v in sizes.items() if k > 1)
    top = per_cluster.assign(name=per_cluster["cluster_id"].astype(str)).sort_values(
        ["size", "name"], ascending=[False, True]).head(LARGEST_SHOWN)
    shown = named[named["cluster_id"].isin(top["cluster_id"])]
    largest = [{"cluster_id": str(c), "size": int(n),
                "members": sorted(shown[shown["cluster_id"] == c]["id"].astype(str))[:5]}
               for c, n in zip(top["cluster_id"], top["size"])]
    return ClusterStats(records=max(records, len(named)), clusters=int(sum(sizes.values())), linked_records=linked,
                        rounds=rounds, split_clusters=split, sizes=sizes, largest=largest)
