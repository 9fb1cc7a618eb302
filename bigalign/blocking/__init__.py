"""Blockings: which pairs of records are worth comparing."""

from .base import Blocking
from .kdtree import KDTreeBlocking
from .key import KeyBlocking
from .kmeans import MiniBatchKMeansBlocking
from .minhash import MinHashLSHBlocking
from .union import UnionBlocking

__all__ = ["Blocking", "KDTreeBlocking", "KeyBlocking", "MiniBatchKMeansBlocking", "MinHashLSHBlocking",
           "UnionBlocking"]
