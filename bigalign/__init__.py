"""bigalign: data alignment (record linkage) for very large sets, on Dask.

The pipeline, one room a stage: :mod:`~bigalign.io` (read) →
:mod:`~bigalign.normalize` → :mod:`~bigalign.blocking` → :mod:`~bigalign.pipeline`
(encode, candidates, scoring with :mod:`~bigalign.treatments` and
:mod:`~bigalign.distances`, reduce) → :mod:`~bigalign.io` (write); the values
they share (text, dates, Soundex, coordinates) are :mod:`~bigalign.values`.
"""

from typing import TYPE_CHECKING, Any

from .errors import BigalignError, ClusterError, InputError, InvalidValueError, JobError, RecordError

if TYPE_CHECKING:
    from .aligner import align, align_sets
    from .blocking import Blocking
    from .distances import METRICS, Metric, cdist, cpdist
    from .entities import cluster_links
    from .sources import read_set
    from .treatments import Treatment, global_alignment_matrix, make_treatments

__all__ = ["METRICS", "BigalignError", "Blocking", "ClusterError", "InputError", "InvalidValueError", "JobError",
           "Metric", "RecordError", "Treatment", "align", "align_sets", "cdist", "cluster_links", "cpdist",
           "global_alignment_matrix", "make_treatments", "read_set"]
__version__ = "0.1.0"

# Where each public name lives. Loaded when first asked for, not with the package: the
# command sets its process's allocator before anything imports Arrow (see __main__), and
# the blockings import scikit-learn, the clusters dask.
_HOME = {"align": "aligner", "align_sets": "aligner", "Blocking": "blocking", "METRICS": "distances",
         "Metric": "distances", "cdist": "distances", "cpdist": "distances", "cluster_links": "entities",
         "Treatment": "treatments", "global_alignment_matrix": "treatments", "make_treatments": "treatments",
         "read_set": "sources"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'bigalign' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
