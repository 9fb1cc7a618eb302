"""Matching: from distances to links.

A link is a pair whose global distance is at most the threshold. With
``uniq`` only the best target of each align item is kept; ties go to the
smallest target identifier, so the result never depends on the order in
which pairs were scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from .values.columns import FEW_VALUES, arrow_text

__all__ = ["LINK_COLUMNS", "links_under_threshold", "best_match_per_item", "one_to_one", "set_names", "sort_links"]

LINK_COLUMNS = ["align_id", "target_id", "distance"]


def links_under_threshold(matrix: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and distance of the cells ``<= threshold``."""
    rows, cols = np.nonzero(matrix <= threshold)
    return rows, cols, matrix[rows, cols]


# pandas' default string type (its inference: Arrow strings under pandas 3, objects under pandas 2)
_DEFAULT_TEXT = pd.Series([""]).dtype


def _canonical_dtypes(links: pd.DataFrame) -> pd.DataFrame:
    """Text identifiers as pandas' default string type (whichever storage the
    path they came through used), distances as float64."""
    for column in ("align_id", "target_id"):
        if pd.api.types.is_string_dtype(links[column]) and links[column].dtype != _DEFAULT_TEXT:
            links[column] = links[column].astype(_DEFAULT_TEXT)
    if links["distance"].dtype != np.float64:
        links["distance"] = links["distance"].astype(np.float64)
    return links


def set_names(links: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Links of several sets with their sets' names (for their indices), each record's set before its id."""
    by_index = np.asarray(names, dtype=object)
    rest = [c for c in links.columns if c not in ("align_set", "align_id", "target_set", "target_id")]
    named = links.assign(align_set=by_index[links["align_set"].to_numpy(np.int64)],
                         target_set=by_index[links["target_set"].to_numpy(np.int64)])
    return named[["align_set", "align_id", "target_set", "target_id"] + rest]


def sort_links(links: pd.DataFrame) -> pd.DataFrame:
    """Links in their canonical order (align id, distance, target id) and dtypes."""
    # Sorted before the dtypes change: pandas 2's default string type is objects, slow to sort.
    keys = ["align_id", "distance", "target_id"] + [c for c in ("align_set", "target_set") if c in links.columns]
    if len(links) <= FEW_VALUES:  # (a lookup's few links: pandas' sort by several keys costs ~1 ms; NaN last)
        rows = list(zip(*(links[k].tolist() for k in keys)))
        order = sorted(range(len(rows)), key=lambda i: [(True, 0.0) if v != v else (False, v) for v in rows[i]])
        links = links.iloc[order].reset_index(drop=True)
    else:
        links = links.sort_values(keys, kind="mergesort").reset_index(drop=True)
    return _canonical_dtypes(links)


def best_match_per_item(links: pd.DataFrame) -> pd.DataFrame:
    """Keep, for each align id, the closest target (ties: smallest target id);
    in the canonical order and dtypes of :func:`sort_links`."""
    # One stable sort by align id, then minima over each id's run of rows, and a sort of the few
    # tied rows: sorting every pair by three keys takes several times longer. Links already one
    # per align id (partitions reduced on their align records) are only sorted.
    distance = links["distance"].to_numpy(np.float64)
    if np.isnan(distance).any():  # (no distance: never the best)
        links = links[~np.isnan(distance)]
    links = links.sort_values("align_id", kind="mergesort").reset_index(drop=True)
    align = links["align_id"]
    text = arrow_text(align) if len(align) else None
    if text is not None:
        differs = pc.not_equal(text[1:], text[:-1]).to_numpy(zero_copy_only=False)
    else:
        values = align.to_numpy()
        differs = values[1:] != values[:-1]
    starts = np.flatnonzero(np.r_[True, differs]) if len(links) else np.empty(0, np.int64)
    if len(starts) < len(links):
        distance = links["distance"].to_numpy(np.float64)
        group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(links)]))
        closest = distance == np.minimum.reduceat(distance, starts)[group]
        kept, kept_group = np.flatnonzero(closest), group[closest]
        tied = np.r_[kept_group[1:] == kept_group[:-1], False] | np.r_[False, kept_group[1:] == kept_group[:-1]]
        if tied.any():
            ties = pd.DataFrame({"group": kept_group[tied], "target_id": links["target_id"].to_numpy()[kept[tied]],
                                 "row": kept[tied]}).sort_values(["group", "target_id"], kind="mergesort")
            first = ties["row"].to_numpy()[~ties["group"].duplicated().to_numpy()]
            kept = np.sort(np.concatenate([kept[~tied], first]))
        links = links.iloc[kept].reset_index(drop=True)
    return _canonical_dtypes(links)


def one_to_one(links: pd.DataFrame) -> pd.DataFrame:
    """Greedy one-to-one assignment: the closest pairs first, each align item
    and each target used once (ties: smallest align id, then target id)."""
    ordered = links.sort_values(["distance", "align_id", "target_id"], kind="mergesort")
    used_align: set = set()
    used_target: set = set()
    keep = np.zeros(len(ordered), dtype=bool)
    for k, (a, t) in enumerate(zip(ordered["align_id"].tolist(), ordered["target_id"].tolist())):
        if a not in used_align and t not in used_target:
            used_align.add(a)
            used_target.add(t)
            keep[k] = True
    return sort_links(ordered[keep])
