"""bigalign: data alignment (record linkage) for very large sets, on Dask.

The pipeline, one module a stage: :mod:`~bigalign.io` (read) →
:mod:`~bigalign.normalize` → :mod:`~bigalign.blocking` → block alignment with
:mod:`~bigalign.treatments` and :mod:`~bigalign.distances` →
:mod:`~bigalign.matching` (reduce) → :mod:`~bigalign.io` (write); the Dask
graph is built in :mod:`~bigalign.pipeline`.
"""

from .aligner import align
from .distances import METRICS, InvalidValueError, cdist, cpdist
from .treatments import Treatment, global_alignment_matrix

__all__ = sorted(["align", "cdist", "cpdist", "global_alignment_matrix", "InvalidValueError", "METRICS", "Treatment"])
__version__ = "0.1.0"
