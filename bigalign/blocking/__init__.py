"""Blockings: which pairs of records are worth comparing."""

from .auto import AutoBlocking
from .base import Blocking
from .cross import CrossProductBlocking
from .kdtree import KDTreeBlocking
from .key import KeyBlocking
from .kmeans import MiniBatchKMeansBlocking
from .minhash import MinHashLSHBlocking
from .union import UnionBlocking

__all__ = ["BLOCKINGS", "AutoBlocking", "Blocking", "CrossProductBlocking", "KDTreeBlocking", "KeyBlocking",
           "MiniBatchKMeansBlocking", "MinHashLSHBlocking", "UnionBlocking"]

# The blockings a job file names by kind (a union's members are blockings of these kinds).
BLOCKINGS: dict[str, type[Blocking]] = {
    cls.name: cls for cls in (MinHashLSHBlocking, KeyBlocking, MiniBatchKMeansBlocking, KDTreeBlocking, AutoBlocking)}
