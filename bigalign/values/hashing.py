"""64-bit hashes: of numbers (:func:`mix64`, :func:`fold64`) and of text
(:func:`text_hashes`, read from Arrow's buffers by :func:`text_bytes`).

They name records and block keys between stages and processes, so they are
the same in every process and on every run: no Python ``hash``, no salt.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["fold64", "mix64", "text_bytes", "text_hashes"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# FNV's 64-bit prime: what a hash is multiplied by before the next value is added (fold64).
_PRIME = np.uint64(0x100000001B3)
# The seed of a text's hash (mixed with its length), and the hash of a missing value.
_TEXT_SEED = np.uint64(0x9E3779B97F4A7C15)
_NULL_HASH = np.uint64(0x6E756C6C6E756C6C)
# Values hashed together: their temporaries stay in the CPU's caches (measured: 1M record ids
# hashed 2× faster in chunks of 32k than at once).
_CHUNK = 1 << 15


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a fast avalanching bijection on uint64."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def fold64(hashes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``hashes`` with ``values`` folded in (uint64 each): the next step of a hash of a sequence."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(hashes, dtype=np.uint64) * _PRIME + np.asarray(values, dtype=np.uint64))


def text_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrow text (or binary) as ``(starts, lengths, data)``: each value's first byte in
    ``data`` (the array's data buffer, as uint8, not copied) and its length in bytes."""
    wide = pa.types.is_large_string(text.type) or pa.types.is_large_binary(text.type)
    _, offsets, data = text.buffers()
    if offsets is None:  # (an empty array may have no buffers)
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    offsets = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)[text.offset:text.offset + len(text) + 1]
    offsets = offsets.astype(np.int64)
    return offsets[:-1], np.diff(offsets), np.frombuffer(data, dtype=np.uint8) if data is not None \
        else np.zeros(0, np.uint8)


def text_hashes(text: pa.Array) -> np.ndarray:
    """uint64 hashes of Arrow text, one per value (nulls: one constant).

    Read from the array's buffers eight bytes at a time (a pass per eight
    bytes of the longest value, over the values that long): no Python string
    is made, and numpy does the work outside the interpreter's lock. Equal
    texts get equal hashes in any array, chunk or slice.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)
            or pa.types.is_binary(text.type) or pa.types.is_large_binary(text.type)):
        raise TypeError(f"text_hashes: expected Arrow text, got {text.type}")
    n = len(text)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    starts, lengths, buffer = text_bytes(text)
    base, used = int(starts[0]), int(lengths.sum())
    # The bytes in use as little-endian words, from the first value's first byte, with a
    # zero word after the last (a value's last word may read past its end: masked below).
    data = np.zeros(used // 8 + 2, dtype="<u8")
    if used:
        data.view(np.uint8)[:used] = buffer[base:base + used]
    starts = starts - base
    hashes = np.empty(n, dtype=np.uint64)
    for first in range(0, n, _CHUNK):
        chunk = slice(first, first + _CHUNK)
        hashes[chunk] = _hashed_words(data, starts[chunk], lengths[chunk])
    if text.null_count:
        hashes[text.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return hashes


def _hashed_words(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The hashes of the values at ``starts`` (byte positions in ``data``, little-endian words) of ``lengths``."""
    with np.errstate(over="ignore"):
        hashes = mix64(lengths.astype(np.uint64) ^ _TEXT_SEED)
        rows = np.flatnonzero(lengths > 0)
        at = 0
        while rows.size:
            position = starts[rows] + at
            word_index, shift = position >> 3, (position & 7).astype(np.uint64) * np.uint64(8)
            # The next word's low bytes above this one's high bytes, shifted in two steps (a shift
            # by 64 is undefined; this one gives 0 for a value's word that starts on a boundary).
            word = (data[word_index] >> shift) | ((data[word_index + 1] << np.uint64(1)) << (np.uint64(63) - shift))
            left = lengths[rows] - at
            short = left < 8
            word[short] &= (np.uint64(1) << (left[short].astype(np.uint64) * np.uint64(8))) - np.uint64(1)
            hashes[rows] = fold64(hashes[rows], word)
            at += 8
            rows = rows[left > 8]
    return hashes
