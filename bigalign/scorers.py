"""How candidate pairs are scored: one interface, two scorers.

The pipeline (and the in-memory alignment) gives a scorer each pair's
treatment distances; the scorer turns them into the pair's ``distance``
(lower is better), says which pairs are links, explains them, and writes
them. :class:`WeightedDistance` is Nazca's weighted sum; the learned model,
:class:`~bigalign.fellegi_sunter.FellegiSunter`, is fitted first on what the
pipeline gives it (:class:`FitData`). Fitting returns a fitted copy: the
scorer a job or a caller holds is never changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from .treatments import Treatment, explanation_columns, global_distances

__all__ = ["FitData", "Scorer", "WeightedDistance"]


class FitData(Protocol):
    """What a run gives a scorer to fit on, computed when the scorer asks for it.

    ``records``: the records of each side; ``population``: the pairs of the
    cross product (``None``: the candidates are all of it); ``left_out``: per
    blocking rule, the treatments that read a column it blocked on
    (``None``: no rules).
    """

    dedupe: bool
    records: tuple[int, int]
    population: float | None
    left_out: list[set[int]] | None

    def random_distances(self) -> np.ndarray:
        """Each treatment's distance of random pairs of the two sets (the scorer's :meth:`Scorer.random_rows`)."""

    def candidate_sample(self, positions: Sequence[int]) -> np.ndarray | None:
        """Each treatment's distance of a sample of the candidates — every candidate of a sample of the
        align records — (``None``: none to place cut points with); the value hashes of the treatments at
        ``positions`` and each pair's align record are kept for :meth:`candidate_weights`."""

    def known_hashes(self, labels: pd.DataFrame | None) -> np.ndarray | None:
        """The sorted pair hashes of the pairs known to match: ``labels``', else the run's truth, if any."""

    def pattern_counts(self, levels: Callable[[np.ndarray], np.ndarray], known: np.ndarray | None,
                       per_rule: bool) -> pd.DataFrame:
        """The candidates' agreement patterns (``levels`` of their distances) and their counts; by known
        pair (a column ``known``) and, with ``per_rule``, by blocking rule (a column ``rules``)."""

    def term_counts(self, positions: Sequence[int]) -> tuple[dict[int, pd.Series], int]:
        """Per treatment at ``positions``, the count of each value hash among the records; and the records."""

    def candidate_weights(self, weights: Callable[[np.ndarray, Mapping[int, np.ndarray]], np.ndarray]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``weights(distances, value hashes)`` of the candidates (or of the sample taken), how many
        candidates each one stands for, and each one's align record (a key: equal for one record's pairs)."""


class Scorer(ABC):
    """Turns pairs' treatment distances into their ``distance`` and links.

    ``learns``: fitted on the run's candidates (the pipeline then keeps what
    fitting reads: each pair's blocking rules and treatment distances, random
    pairs; and scores large blocks pair by pair, not as dense matrices).
    After :meth:`fitted`: ``threshold_``, as the user reads it (a distance, a
    match probability), and ``distance_threshold_``, on ``distance``.
    """

    learns: ClassVar[bool] = False
    threshold_: float
    distance_threshold_: float

    @abstractmethod
    def check_threshold(self, threshold: Any) -> float | str:
        """``threshold`` if this scorer can link at it; else a ValueError that says what it can."""

    def check_treatments(self, treatments: Sequence[Treatment]) -> None:
        """A ValueError if this scorer names treatments that are not among ``treatments``."""

    @abstractmethod
    def fitted(self, data: FitData | None, treatments: Sequence[Treatment], threshold: float | str) -> "Scorer":
        """A copy fitted on ``data`` (read only by a scorer that ``learns``), linking at ``threshold``."""

    def random_rows(self, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the random record pairs (of sets of ``n_a`` and ``n_b`` records) fitting reads."""
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    def term_hashes(self, encoded: Sequence[pd.DataFrame]) -> dict[int, np.ndarray]:
        """Per treatment whose score reads the value itself (term frequencies), each record's value hash."""
        return {}

    @abstractmethod
    def pair_scores(self, treatments: Sequence[Treatment], distances: np.ndarray,
                    terms: Mapping[int, np.ndarray]) -> np.ndarray:
        """Each pair's ``distance`` from its ``(pairs, treatments)`` distances (``terms``: the align records'
        :meth:`term_hashes`, pair by pair)."""

    @abstractmethod
    def explanation_columns(self, treatments: Sequence[Treatment], distances: np.ndarray,
                            terms: Mapping[int, np.ndarray]) -> dict[str, np.ndarray]:
        """The columns that explain each pair's score."""

    def report_weights(self, distances: np.ndarray, terms: Mapping[int, np.ndarray]
                       ) -> tuple[float, np.ndarray, list[str]] | None:
        """For the report's pairs: the score's starting weight, each term's weight and the terms' names (a
        learned model's comparisons; ``None``: the weighted distances say it)."""
        return None

    def as_written(self, links: pd.DataFrame) -> pd.DataFrame:
        """Links (``distance``) as a run writes them."""
        return links

    def summary(self, treatments: Sequence[Treatment], auto: bool) -> dict[str, Any] | None:
        """What the summary and the report show of a fitted scorer (``None``: nothing beyond the job)."""
        return None


class WeightedDistance(Scorer):
    """Nazca's global distance: the sum of the treatments' weighted distances; a link is at most the
    threshold. Nothing to fit."""

    def check_threshold(self, threshold: Any) -> float:
        if threshold == "auto":
            raise ValueError("'auto' needs a learned model: [model] kind = \"fellegi-sunter\" in a job, "
                             "model=FellegiSunter() in Python")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
            raise ValueError(f"must be a number, or 'auto' with a learned model, got {threshold!r}")
        if not threshold >= 0:  # (NaN too)
            raise ValueError(f"must be at least 0, got {threshold!r}")
        return float(threshold)

    def fitted(self, data: FitData | None, treatments: Sequence[Treatment],
               threshold: float | str) -> "WeightedDistance":
        scorer = WeightedDistance()
        scorer.threshold_ = scorer.distance_threshold_ = self.check_threshold(threshold)
        return scorer

    def pair_scores(self, treatments: Sequence[Treatment], distances: np.ndarray,
                    terms: Mapping[int, np.ndarray]) -> np.ndarray:
        return global_distances(treatments, distances)

    def explanation_columns(self, treatments: Sequence[Treatment], distances: np.ndarray,
                            terms: Mapping[int, np.ndarray]) -> dict[str, np.ndarray]:
        return explanation_columns(treatments, distances)

    def __repr__(self) -> str:
        return "WeightedDistance()"
