"""An index of a set, persisted once, and batches of new records linked against it.

:func:`build_index` stages the job's targetset (or a deduplication's set), encodes its records and computes
their block keys as a run does, and writes them as Parquet: the block rows in buckets of their key (a batch
reads only the buckets its own keys fall in, and in them only the rows of its keys), the encoded records in
buckets of their id hash; a scorer that learns is fitted as a run fits it and stored as JSON and Parquet; a
deduplication's index also keeps its links and each record's entity (:mod:`.entities`). A manifest (JSON)
says what the job was, so that a batch of another job is refused with what differs. Each change writes a
new version beside the old ones and switches the manifest last (:mod:`.store`): a reader keeps the version
it opened, a failed build or update leaves the old one.

:func:`link_batch` stages and encodes only the new records, pairs them with the index rows their keys name
exactly as a run's candidate stage does, scores the pairs with the stored scorer, and writes links, summary
and report as a run does: the links are those a full run of the job would give those records against the
indexed set (:mod:`.reader`, :mod:`.batch`). :meth:`Index.match` answers one record at a time.
"""

from .batch import link_batch, update_index
from .build import build_index, index_lines
from .reader import Index
from .store import INDEX_FORMAT

__all__ = ["INDEX_FORMAT", "Index", "build_index", "index_lines", "link_batch", "update_index"]
