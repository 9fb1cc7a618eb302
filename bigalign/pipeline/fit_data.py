"""What a scorer that learns is fitted on, from a run's candidates on the cluster.

:class:`CandidateData` is the :class:`~bigalign.scorers.FitData` of a run:
each of its methods computes, on the workers where the pairs are, what the
scorer asks for (random pairs' distances, a sample of the candidates, their
agreement patterns, term counts), and brings back only counts and samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from ..blocking.base import Blocking
from ..blocking.cross import CrossProductBlocking
from ..em import add_pattern_counts
from ..evaluate import cross_product
from ..scorers import Scorer
from ..treatments import Treatment
from .encode import encode_records, encoded_sample, sample_records
from .schema import pair_hashes, treatment_value
from .scoring import candidate_patterns, candidate_sample, partition_term_counts

__all__ = ["MODEL_SAMPLE_PAIRS", "MODEL_SAMPLE_RECORDS", "CandidateData", "random_pair_distances"]

# Records of each set whose random pairs give a model's u (pairs are drawn among them).
MODEL_SAMPLE_RECORDS = 5_000
# Candidate pairs whose distances place the cut points a model chooses.
MODEL_SAMPLE_PAIRS = 200_000


def random_pair_distances(scorer: Scorer, treatments: Sequence[Treatment], encoded_a: dd.DataFrame,
                          encoded_b: dd.DataFrame, counts: tuple[int, int], as_read: bool = False) -> Any:
    """The distances of the random pairs that give a model's ``u`` (delayed):
    pairs of samples of both sets, chosen by id hash and ordered by it (so the
    same records and pairs whatever the partitions). They need the encoded
    sets only, so a cluster computes them while the blocking runs; a task per
    treatment (the two word-level Levenshteins of the demo took 86% of one
    task's second at 100k, the other thread idle without a cluster).

    With ``as_read``, the two sets are records as read (the same in a deduplication), and the sampled
    records alone are encoded: the same distances, before a set is encoded (a blocking chosen for the
    run fits its model with them, then hands them to the run)."""
    samples: list[Any] = []
    sides = (("align", "alignset"), ("target", "targetset"))
    for encoded, n, (side, name) in zip((encoded_a, encoded_b), counts, sides):
        share = min(1.0, MODEL_SAMPLE_RECORDS / max(1, n))
        if as_read:
            if samples and encoded is encoded_a:  # (a deduplication: one set, encoded as the run encodes it)
                samples.append(samples[0])
                break
            meta = encode_records(encoded._meta, treatments, CrossProductBlocking(), side, name)
            encoded = encoded.map_partitions(encoded_sample, share, treatments, side, name, meta=meta,
                                             enforce_metadata=False)
        else:
            encoded = encoded.map_partitions(sample_records, share, meta=encoded._meta)
        samples.append(dask.delayed(_sample_set, pure=True)(encoded.to_delayed()))
    distances = dask.delayed(_sample_pair_distances, pure=True)
    return dask.delayed(np.column_stack, pure=True)([distances(scorer.random_rows, treatments, k, *samples)
                                                     for k in range(len(treatments))])


def _sample_set(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True).sort_values("rid", kind="mergesort").reset_index(drop=True)


def _sample_pair_distances(rows: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
                           treatments: Sequence[Treatment], k: int, sample_a: pd.DataFrame,
                           sample_b: pd.DataFrame) -> np.ndarray:
    """Treatment ``k``'s distances of the random pairs (``rows``) of the samples."""
    a, b = treatment_value(sample_a, k), treatment_value(sample_b, k)
    return treatments[k].metric.cpdist(a, b, treatments[k].normalized, *rows(len(sample_a), len(sample_b)))


class CandidateData:
    """What a scorer that learns is fitted on (see :class:`~bigalign.scorers.FitData`), from a run's
    candidates on the cluster: the pairs with their values (``joined``) and treatment distances
    (``distances``), kept on the workers, read there; only counts, a sample and term tables come back."""

    def __init__(self, client: Any, treatments: Sequence[Treatment], blocking: Blocking, encoded: tuple,
                 joined: dd.DataFrame, distances: dd.DataFrame, dedupe: bool, truth_hashes: Any,
                 candidates: int, counts: tuple[int, int], random_pairs: Any):
        self.client, self.treatments, self.dedupe, self.truth_hashes = client, treatments, dedupe, truth_hashes
        self.encoded, self.candidates, self.random_pairs = encoded, candidates, random_pairs
        self.records = counts
        self.population: float | None = float(cross_product(*counts, dedupe))
        self.parts = list(zip(joined.to_delayed(), distances.to_delayed()))
        # EM per rule of the blocking (a union's members), without the treatments that read its columns
        self.left_out: list[set[int]] | None = [
            {k for k, t in enumerate(treatments) if _columns_of(t) & set(map(str, m.columns))}
            for m in blocking.blockings()]
        self.sampled: list[tuple[np.ndarray, dict[int, np.ndarray], np.ndarray]] = []

    def random_distances(self) -> np.ndarray:
        return self.random_pairs.result()

    def candidate_sample(self, positions: Sequence[int]) -> np.ndarray:
        share = min(1.0, MODEL_SAMPLE_PAIRS / max(1, self.candidates))
        sample_of = dask.delayed(candidate_sample, pure=True)
        self.sampled = self.client.gather(self.client.compute([
            sample_of(part, each, self.treatments, self.dedupe, share, positions) for part, each in self.parts]))
        return np.concatenate([drawn for drawn, _, _ in self.sampled])

    def known_hashes(self, labels: pd.DataFrame | None) -> np.ndarray | None:
        if labels is None:
            return self.truth_hashes
        return np.sort(pair_hashes(labels["align_id"], labels["target_id"], self.dedupe))

    def pattern_counts(self, levels: Callable[[np.ndarray], np.ndarray], known: np.ndarray | None,
                       per_rule: bool) -> pd.DataFrame:
        patterns = dask.delayed(candidate_patterns, pure=True)
        return add_pattern_counts(self.client.gather(self.client.compute([
            patterns(part, each, levels, self.dedupe, per_rule, known) for part, each in self.parts])))

    def term_counts(self, positions: Sequence[int]) -> tuple[dict[int, pd.Series], int]:
        """How many records of both sets hold each value."""
        encoded_a, encoded_b = self.encoded
        sets = [encoded_a] if self.dedupe else [encoded_a, encoded_b]
        count = dask.delayed(partition_term_counts, pure=True)
        every = pd.concat(self.client.gather(self.client.compute([count(part, self.treatments, positions)
                                                                  for encoded in sets
                                                                  for part in encoded.to_delayed()])),
                          ignore_index=True)
        n_a, n_b = self.records
        return ({k: every[every["treatment"] == k].groupby("hash")["count"].sum() for k in positions},
                n_a if self.dedupe else n_a + n_b)

    def candidate_weights(self, weights: Callable[[np.ndarray, Mapping[int, np.ndarray]], np.ndarray]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sampled candidates' weights with their values, each standing for candidates / sampled."""
        positions = self.sampled[0][1].keys() if self.sampled else []
        terms = {k: np.concatenate([hashes[k] for _, hashes, _ in self.sampled]) for k in positions}
        drawn = weights(np.concatenate([drawn for drawn, _, _ in self.sampled]), terms)
        return (drawn, np.full(1, self.candidates / max(1, len(drawn))),
                np.concatenate([records for _, _, records in self.sampled]))


def _columns_of(treatment: Treatment) -> set[str]:
    """The columns a treatment reads, on either side."""
    return {str(c) for a in (treatment.attribute, treatment.target_attribute)
            for c in (a if isinstance(a, tuple) else (a,))}
