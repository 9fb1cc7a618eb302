"""A job written back as TOML: what the editor saves and what the CLI then reads.

Python reads TOML (``tomllib``) but does not write it; a job holds only
tables, arrays of tables, strings, numbers, booleans and arrays of these,
which is all this writes. ``tomllib.loads(dumps(job)) == job`` (tested).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "value"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _string(text: str) -> str:
    # A query reads best as a multi-line string; anything a literal multi-line string cannot hold
    # is written as a basic string, whose escapes JSON's match for the code points a job holds.
    if "\n" in text and "'''" not in text and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        return "'''\n" + text + "'''"
    return json.dumps(text, ensure_ascii=False)


def value(item: Any) -> str:
    """One value as TOML writes it (an inline table for a mapping)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isnan(item):
            return "nan"
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {value(v)}" for k, v in item.items()) + " }"
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise TypeError(f"cannot write {item!r} as TOML")


def _is_table_array(entry: Any) -> bool:
    return isinstance(entry, list) and bool(entry) and all(isinstance(v, Mapping) for v in entry)


def _table(table: Mapping[str, Any], path: list[str], out: list[str]) -> None:
    # A table's own keys first, then its tables, then its arrays of tables (TOML's order).
    for key, entry in table.items():
        if not isinstance(entry, Mapping) and not _is_table_array(entry):
            out.append(f"{_key(key)} = {value(entry)}")
    for key, entry in table.items():
        if isinstance(entry, Mapping):
            out.extend(["", f"[{'.'.join(map(_key, path + [key]))}]"])
            _table(entry, path + [key], out)
    for key, entry in table.items():
        if _is_table_array(entry):
            for item in entry:
                out.extend(["", f"[[{'.'.join(map(_key, path + [key]))}]]"])
                _table(item, path + [key], out)


def dumps(job: Mapping[str, Any]) -> str:
    """The TOML text of ``job`` (a mapping as ``tomllib`` returns)."""
    out: list[str] = []
    _table(job, [], out)
    return "\n".join(out).lstrip("\n") + "\n"
