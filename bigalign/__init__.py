"""bigalign: data alignment (record linkage) for very large sets, on Dask.

The pipeline, one room a stage: :mod:`~bigalign.io` (read) →
:mod:`~bigalign.normalize` → :mod:`~bigalign.blocking` → :mod:`~bigalign.pipeline`
(encode, candidates, scoring with :mod:`~bigalign.treatments` and
:mod:`~bigalign.distances`, reduce) → :mod:`~bigalign.io` (write); the values
they share (text, dates, Soundex, coordinates) are :mod:`~bigalign.values`.
"""

from typing import Any

from .aligner import align, align_sets
from .distances import METRICS, Metric, cdist, cpdist
from .errors import BigalignError, ClusterError, InputError, InvalidValueError, JobError, RecordError
from .treatments import Treatment, global_alignment_matrix, make_treatments

__all__ = ["METRICS", "BigalignError", "Blocking", "ClusterError", "InputError", "InvalidValueError", "JobError",
           "Metric", "RecordError", "Treatment", "align", "align_sets", "cdist", "cluster_links", "cpdist",
           "global_alignment_matrix", "make_treatments"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The blockings import scikit-learn, the clusters dask: loaded when first asked for, not with the package.
    if name == "Blocking":
        from .blocking import Blocking

        return Blocking
    if name == "cluster_links":
        from .entities import cluster_links

        return cluster_links
    raise AttributeError(f"module 'bigalign' has no attribute {name!r}")
