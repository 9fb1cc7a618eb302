"""Entities that keep their ids: a deduplication's clusters, updated batch by batch.

Clusters are recomputed whole, but only those a batch touches: the connected components (on the links
clustering keeps) that hold a record the batch removes, replaces or links to. Each such component's
records and links (those stored, and the batch's) are clustered as a full run clusters them (the same
links, the same cut of oversized components), so after any sequence of batches the clusters are those of one
run on all the records. Their ids then carry over: each old id goes, oldest first, to the new cluster
holding most of its records — a cluster keeps its id when it grows, a merge keeps the oldest one, and the
part of a split that keeps most records (on a tie, its namesake record) keeps it; a cluster left without one
gets a new id, the id of its first record (as a run names it, suffixed ``~2``, ``~3``… if that id was ever
given). Every record whose cluster id changes is listed, with why: ``merged``, ``split``, ``removed``,
``replaced``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..entities import cluster_links
from ..pipeline.clusters import strong_links

__all__ = ["CHANGE_COLUMNS", "ENTITY_COLUMNS", "EntityUpdate", "update_entities"]

ENTITY_COLUMNS = ["id", "rid", "component", "cluster_id"]
CHANGE_COLUMNS = ["id", "old_cluster_id", "new_cluster_id", "why"]


@dataclass(frozen=True)
class EntityUpdate:
    """What :func:`update_entities` gives: the new entity and issued-id tables, the changes, the batch's
    records' clusters (id, cluster_id), and the batch's links they were made from."""

    entities: pd.DataFrame
    issued: pd.DataFrame
    changes: pd.DataFrame
    batch: pd.DataFrame
    links: pd.DataFrame
    version: int

    @property
    def new_ids(self) -> pd.Series:
        """The cluster ids this update gave for the first time."""
        return self.issued["cluster_id"][self.issued["born"].to_numpy() == self.version]


def _components(members: pd.DataFrame, links: pd.DataFrame) -> np.ndarray:
    """Each member's connected component under ``links`` (``rid_a``, ``rid_b``): its smallest id hash."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rids = members["rid"].to_numpy(np.uint64)
    at = pd.Index(rids)
    a, b = at.get_indexer(links["rid_a"].to_numpy(np.uint64)), at.get_indexer(links["rid_b"].to_numpy(np.uint64))
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(rids), len(rids)))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1 if len(labels) else 0, np.iinfo(np.uint64).max, dtype=np.uint64)
    np.minimum.at(smallest, labels, rids)
    return smallest[labels]


def _clustered(members: pd.DataFrame, links: pd.DataFrame, threshold: float | None,
               max_size: int | None) -> pd.DataFrame:
    """``members`` (id, rid) with their ``component`` and ``name``: the cluster a run gives them (its first
    record's id), from their links (as a run writes them) as the job's ``[clusters]`` says."""
    kept = strong_links(links, threshold)
    members = members.assign(component=_components(members, kept))
    clusters = cluster_links(kept, members["id"], dedupe=True, max_size=max_size)
    names = pd.Series(clusters["cluster_id"].to_numpy(object), index=clusters["id"].to_numpy(object))
    return members.assign(name=names.reindex(members["id"].to_numpy(object)).to_numpy(object))


def _lasting_ids(parts: pd.DataFrame, issued: pd.DataFrame, version: int) -> tuple[pd.Series, pd.DataFrame]:
    """Each part's (``name``) lasting id, from its records' ``old`` ids: oldest id first, to the part holding
    most of its records (then the part holding the record it is named after, then the part of the smallest
    name); parts left without one get a new id. Returns the id per name and the ids issued now."""
    born = pd.Series(issued["born"].to_numpy(np.int64), index=issued["cluster_id"].to_numpy(object))
    holders = parts[parts["old"].notna()]
    offers = holders.assign(namesake=holders["id"].astype(str).to_numpy() == holders["old"].to_numpy()).groupby(
        ["name", "old"], sort=False).agg(n=("namesake", "size"), namesake=("namesake", "any")).reset_index()
    offers = offers.assign(born=born.reindex(offers["old"]).to_numpy(), label=offers["name"].astype(str))
    offers = offers.sort_values(["born", "old", "n", "namesake", "label"], ascending=[True, True, False, False, True],
                                kind="stable")
    chosen: dict[object, str] = {}
    given: set[str] = set()
    for name, old in zip(offers["name"].tolist(), offers["old"].tolist()):
        if name not in chosen and old not in given:
            chosen[name], given = old, given | {old}
    taken = set(born.index)
    new: list[str] = []
    for name in sorted((n for n in pd.unique(parts["name"]) if n not in chosen), key=str):
        candidate, k = str(name), 1
        while candidate in taken:
            k += 1
            candidate = f"{name}~{k}"
        chosen[name] = candidate
        taken.add(candidate)
        new.append(candidate)
    return pd.Series(chosen, dtype=object), pd.DataFrame({"cluster_id": pd.Series(new, dtype=object),
                                                          "born": np.full(len(new), version, np.int64)})


def update_entities(entities: pd.DataFrame, issued: pd.DataFrame, added: pd.DataFrame, removed: np.ndarray,
                    links_of: Callable[[np.ndarray], pd.DataFrame], new_links: pd.DataFrame, version: int,
                    threshold: float | None, max_size: int | None) -> EntityUpdate:
    """The entities after a batch: ``entities`` (see :data:`ENTITY_COLUMNS`) and ``issued`` (cluster_id, born)
    before it; ``added`` records (id, rid; a replaced record's rid is also in ``removed``); ``links_of``:
    the stored links of records (by id hash), read for the components the batch touches; ``new_links``:
    the batch's (as a run writes them, with ``rid_a``, ``rid_b``); the version being written; the job's
    ``[clusters]`` threshold and max_size."""
    removed = np.unique(np.asarray(removed, dtype=np.uint64))
    strong = strong_links(new_links, threshold)
    old_rids = entities["rid"].to_numpy(np.uint64)
    touched_rids = np.concatenate([removed, strong["rid_a"].to_numpy(np.uint64), strong["rid_b"].to_numpy(np.uint64)])
    touched = entities["component"][np.isin(old_rids, touched_rids)].unique()
    affected = np.isin(entities["component"].to_numpy(np.uint64), touched)
    before = entities[affected]
    staying = before[~np.isin(before["rid"].to_numpy(np.uint64), removed)]
    members = pd.concat([staying[["id", "rid"]], added[["id", "rid"]]], ignore_index=True)
    member_rids = members["rid"].to_numpy(np.uint64)
    old_links = links_of(staying["rid"].to_numpy(np.uint64)) if len(staying) else new_links.iloc[:0]
    old_links = old_links if len(old_links) else new_links.iloc[:0]
    old_links = old_links[np.isin(old_links["rid_a"].to_numpy(np.uint64), member_rids)
                          & np.isin(old_links["rid_b"].to_numpy(np.uint64), member_rids)
                          & ~np.isin(old_links["rid_a"].to_numpy(np.uint64), removed)
                          & ~np.isin(old_links["rid_b"].to_numpy(np.uint64), removed)]
    links = pd.concat([frame for frame in (old_links, new_links) if len(frame)], ignore_index=True) \
        if len(old_links) or len(new_links) else new_links
    parts = _clustered(members, links, threshold, max_size)
    previous = pd.Series(before["cluster_id"].to_numpy(object), index=before["rid"].to_numpy(np.uint64))
    parts["old"] = previous.reindex(parts["rid"].to_numpy(np.uint64)).to_numpy(object)
    ids, new_ids = _lasting_ids(parts, issued, version)
    parts["cluster_id"] = ids.reindex(parts["name"].to_numpy(object)).to_numpy(object)
    changed = parts[parts["old"].notna() & (parts["old"] != parts["cluster_id"])]
    replaced = np.isin(changed["rid"].to_numpy(np.uint64), removed)
    kept_old = np.isin(changed["cluster_id"].to_numpy(object), previous.to_numpy(object))
    why = np.where(replaced, "replaced", np.where(kept_old, "merged", "split"))
    gone = before[np.isin(before["rid"].to_numpy(np.uint64), removed)
                  & ~np.isin(before["rid"].to_numpy(np.uint64), added["rid"].to_numpy(np.uint64))]
    changes = pd.concat([
        pd.DataFrame({"id": changed["id"].to_numpy(object), "old_cluster_id": changed["old"].to_numpy(object),
                      "new_cluster_id": changed["cluster_id"].to_numpy(object), "why": why}),
        pd.DataFrame({"id": gone["id"].to_numpy(object), "old_cluster_id": gone["cluster_id"].to_numpy(object),
                      "new_cluster_id": None, "why": "removed"})], ignore_index=True)
    after = pd.concat([entities[~affected], parts[ENTITY_COLUMNS]], ignore_index=True)
    after = after.astype({"rid": np.uint64, "component": np.uint64, "cluster_id": object})
    batch = parts[np.isin(parts["rid"].to_numpy(np.uint64), added["rid"].to_numpy(np.uint64))]
    return EntityUpdate(after.sort_values("rid", kind="stable").reset_index(drop=True),
                        pd.concat([issued, new_ids], ignore_index=True), changes.astype({"new_cluster_id": object}),
                        batch[["id", "cluster_id"]].reset_index(drop=True), new_links, version)
