"""Soundex codes of words, in English and French (one word at a time, or a list in numpy)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from .hashing import text_bytes
from .text import strip_accents

__all__ = ["SOUNDEX_CODES", "ascii_soundex_codes", "soundex_code", "soundex_codes"]


SOUNDEX_CODES = {
    "english": {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
                "L": "4", **dict.fromkeys("MN", "5"), "R": "6"},
    "french": {**dict.fromkeys("BP", "1"), **dict.fromkeys("CKQ", "2"), **dict.fromkeys("DT", "3"),
               "L": "4", **dict.fromkeys("MN", "5"), "R": "6", **dict.fromkeys("GJ", "7"),
               **dict.fromkeys("XZS", "8"), **dict.fromkeys("FV", "9")},
}
_NOT_LETTERS = re.compile(r"[^A-Z]")


@lru_cache(maxsize=1 << 16)  # words repeat: surnames, given names
def soundex_code(word: str, language: str = "english") -> str:
    """The four-character Soundex code of one word ("" if it has no letter).

    Accents are stripped first; hyphens, apostrophes, digits and other
    non-letters are ignored. Vowels separate equal codes; H and W do not.
    """
    letters = _NOT_LETTERS.sub("", strip_accents(word).upper())
    if not letters:
        return ""
    table = SOUNDEX_CODES[language]
    code = [letters[0]]
    previous = table.get(letters[0], "")
    for letter in letters[1:]:
        digit = table.get(letter, "")
        if digit and digit != previous:
            code.append(digit)
        if letter not in "HW":
            previous = digit
    return ("".join(code) + "000")[:4]


def _soundex_digit_tables() -> dict[str, np.ndarray]:
    tables = {}
    for language, codes in SOUNDEX_CODES.items():
        table = np.zeros(256, dtype=np.uint8)
        for letter, digit in codes.items():
            table[ord(letter)] = ord(digit)
        tables[language] = table
    return tables


_SOUNDEX_DIGITS = _soundex_digit_tables()


def soundex_codes(words: list[str], language: str = "english") -> list[str]:
    """:func:`soundex_code` of each word; ASCII words are coded together in numpy."""
    if not words:
        return []
    codes: list[Any] = [None] * len(words)
    ascii_rows = [i for i, w in enumerate(words) if w.isascii()]
    if len(ascii_rows) < len(words):
        for i in set(range(len(words))).difference(ascii_rows):
            codes[i] = soundex_code(words[i], language)
        if not ascii_rows:
            return codes
        words = [words[i] for i in ascii_rows]
    text = ascii_soundex_codes(words, language).astype("U4").tolist()
    if len(ascii_rows) == len(codes):
        return text
    for i, code in zip(ascii_rows, text):
        codes[i] = code
    return codes


def _characters(text: pa.Array) -> np.ndarray:
    """The bytes of each value of ``text`` (non-null), by position: row ``j`` holds
    the ``j``-th byte of every value, 0 past its end (read from Arrow's buffers)."""
    starts, lengths, data = text_bytes(text)
    chars = np.zeros((int(lengths.max(initial=0)), len(text)), dtype=np.uint8)
    for j in range(chars.shape[0]):  # (a pass per position: words are short)
        longer = np.flatnonzero(lengths > j)
        chars[j, longer] = data[starts[longer] + j]
    return chars


def ascii_soundex_codes(words: Sequence[str] | pa.Array, language: str = "english") -> np.ndarray:
    """:func:`soundex_code` of ASCII words (a list, or Arrow text without nulls), as fixed-width bytes
    (``S4``; ``b""`` for a word without a letter)."""
    text = words if isinstance(words, pa.Array) else pa.array(words, type=pa.string())
    if not len(text):
        return np.empty(0, dtype="S4")
    # Characters by position: row j holds the j-th character of every word
    # (running sums down the columns of this layout are fast).
    chars = _characters(text)
    chars = np.where((chars >= ord("a")) & (chars <= ord("z")), chars - 32, chars)
    letter = (chars >= ord("A")) & (chars <= ord("Z"))
    small = np.int16 if chars.shape[0] < 2**15 else np.int64
    n_words = chars.shape[1]
    if (letter | (chars == 0)).all():  # (normalized words: letters only, already in place)
        letters = chars
    else:  # letters moved to the front of each word, in order (non-letters are ignored)
        position = np.cumsum(letter, axis=0, dtype=small) - 1
        letters = np.zeros_like(chars)
        words_at = np.broadcast_to(np.arange(n_words), chars.shape)
        letters[position[letter], words_at[letter]] = chars[letter]
    digits = _SOUNDEX_DIGITS[language][letters]
    # The previous digit is that of the last letter before, H and W skipped (the first letter always counts).
    sets = (letters != ord("H")) & (letters != ord("W"))
    sets[0] = True
    depth = np.arange(chars.shape[0], dtype=small)[:, None]
    last_setter = np.maximum.accumulate(np.where(sets, depth, 0), axis=0)
    previous = np.take_along_axis(digits, last_setter, axis=0)
    emitted = (digits != 0) & (letters != 0)
    emitted[1:] &= digits[1:] != previous[:-1]
    emitted[0] = False
    # First letter, then the first three emitted digits, padded with zeros.
    out = np.full((n_words, 4), ord("0"), dtype=np.uint8)
    out[:, 0] = letters[0]
    rank = np.cumsum(emitted, axis=0, dtype=small)
    columns = np.arange(n_words)
    for r in (1, 2, 3):
        at = emitted & (rank == r)
        out[:, r] = np.where(at.any(axis=0), digits[at.argmax(axis=0), columns], ord("0"))
    out[letters[0] == 0] = 0  # no letter: ""
    return out.view("S4").ravel()
