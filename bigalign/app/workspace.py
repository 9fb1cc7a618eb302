"""The application's state: one job file in a directory, and what the pages read of it.

The editor holds a job as the mapping its TOML gives (``tomllib``); every form
changes some keys of it and saves it as ``job.toml`` at once, so the job the
page shows is the file the command line runs (``bigalign run job.toml``).
Validation is :func:`~bigalign.jobs.load_job` and
:func:`~bigalign.jobs.check_inputs` on that file: the page shows the
messages ``bigalign validate`` prints, beside the field each names.
"""

from __future__ import annotations

import copy
import math
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..blocking import BLOCKINGS
from ..distances import METRICS
from ..errors import BigalignError, JobError
from ..io import SetSpec, atomic_path
from ..job_tables import set_spec
from ..jobs import check_inputs, load_job
from ..normalize import NORMALIZERS
from ..records import attribute_values
from ..sources import source_of
from ..treatments import Treatment
from ..values.sets import shown
from .toml import dumps, value

__all__ = ["METRIC_NAMES", "NEW_JOB", "Workspace", "preview", "profile", "sample", "set_errors", "value_text"]

SIDES = ("alignset", "targetset")
METRIC_NAMES = sorted(METRICS)
NORMALIZER_NAMES = sorted(NORMALIZERS)
BLOCKING_KINDS = sorted(BLOCKINGS)
# Rows of each set the pages sample (columns, shares of missing and distinct values, previews).
SAMPLE_ROWS = 1_000

# A job the editor starts from: a learned model (no weights nor threshold to guess), the links as
# Parquet with each treatment's distance (the review pages read them), in the workspace's out/.
NEW_JOB: dict[str, Any] = {
    "threshold": "auto", "uniq": True,
    "alignset": {"path": ""}, "targetset": {"path": ""},
    "model": {"kind": "fellegi-sunter"},
    "output": {"path": "out/links.parquet", "explain": True},
}


def _number(text: str) -> Any:
    """A number typed in a form, or the text itself (which the job's validation then names)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _items(text: str, field: str) -> list[Any]:
    """A list typed as ``a, b`` (names), where an item may also be TOML:
    ``{ name = "simplify", remove_stopwords = false }``, ``["given_name", "surname"]``."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text + ","):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            item = text[start:i].strip()
            start = i + 1
            if not item:
                continue
            if item[0] in "[{\"'":
                try:
                    items.append(tomllib.loads(f"x = {item}")["x"])
                except tomllib.TOMLDecodeError as err:
                    raise JobError(f"{field}: {item!r} is not a TOML value: {err}", field=field) from None
            else:
                items.append(item)
    return items


def _names(text: str, field: str) -> Any:
    """``"a"`` → ``"a"``; ``"a, b"`` → ``["a", "b"]`` (several columns)."""
    items = _items(text, field)
    return items[0] if len(items) == 1 else items


def _shown(item: Any) -> str:
    """What :func:`_items` reads back as ``item``."""
    if item is None:
        return ""
    if isinstance(item, list):
        return ", ".join(v if isinstance(v, str) else value(v) for v in item)
    return str(item)


def _options(text: str, field: str) -> dict[str, Any]:
    """``scale = 365, units = "km"``: more keys of a treatment or a blocking, as TOML."""
    if not text.strip():
        return {}
    try:
        return tomllib.loads("options = {" + text + "}")["options"]
    except tomllib.TOMLDecodeError as err:
        raise JobError(f"{field}: not TOML keys and values such as 'scale = 365, units = \"km\"': {err}",
                       field=field) from None


def _options_text(table: Mapping[str, Any], shown: set[str]) -> str:
    rest = {k: v for k, v in table.items() if k not in shown}
    return value(rest)[2:-2] if rest else ""


def _several_values(table: dict[str, Any], form: Mapping[str, str], side: str, source: str) -> None:
    """The Data page's languages (a query's: "fr, en, " keeps French, English and untagged literals, in
    that order) and whether rows of one identifier make one record (a query's by default)."""
    table.pop("lang", None)
    table.pop("multivalued", None)
    if f"{side}.lang" in form and source != "rql":
        tags = [tag.strip() for tag in form[f"{side}.lang"].split(",")]
        if any(tags):
            table["lang"] = tags
    several = bool(form.get(f"{side}.multivalued"))
    if several != (source == "sparql" or (source != "rql" and "query" in table)):  # (only what differs)
        table["multivalued"] = several


class Workspace:
    """A directory holding the edited job (``job.toml``), uploaded files
    (``uploads/``) and the runs' output (``out/``)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(os.path.join(self.root, "uploads"), exist_ok=True)
        self.job_path = os.path.join(self.root, "job.toml")
        self.labels_path = os.path.join(self.root, "labels.csv")
        if not os.path.exists(self.job_path):
            self.save(NEW_JOB)

    # The job file ---------------------------------------------------------------------------------

    def raw(self) -> dict[str, Any]:
        """The job as saved; a file edited into something that is not TOML is an error (the job
        page shows it), never replaced."""
        try:
            with open(self.job_path, "rb") as f:
                return tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise JobError(f"{self.job_path}: not valid TOML: {err}", field="job") from None

    def save(self, raw: Mapping[str, Any]) -> None:
        with atomic_path(self.job_path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(raw))

    def text(self) -> str:
        with open(self.job_path, encoding="utf-8") as f:
            return f.read()

    def open_text(self, text: str) -> None:
        """Make ``text`` (a job file's) the edited job; its relative paths now
        start from the workspace."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise JobError(f"not valid TOML: {err}", field="job") from None
        self.save(raw)

    def errors(self, remote: bool = True) -> dict[str, str]:
        """What ``bigalign validate`` says of the saved job: ``{field: message}``
        (``""`` for a message that names no field), empty when it is valid;
        endpoints and databases left unasked unless ``remote``."""
        try:
            job = load_job(self.job_path, resolve=False)
            generated = [spec.path for spec in job.sets()] if job.generate else []
            if not generated or all(os.path.exists(path) for path in generated):  # (else the run makes them)
                check_inputs(job, remote)
        except BigalignError as err:
            return {err.field or "": str(err)}
        return {}

    def run_dir(self) -> str:
        raw = self.raw()
        output = raw.get("output", {})
        return os.path.join(self.root, output.get("run_dir") or os.path.dirname(output.get("path", "out/x")))

    def links_path(self) -> str:
        return os.path.join(self.root, self.raw().get("output", {}).get("path", "out/links.parquet"))

    # Forms: each changes the keys it shows -------------------------------------------------------

    def set_sources(self, form: Mapping[str, str]) -> None:
        raw = self.raw()
        for side in SIDES:
            if f"{side}.source" not in form:
                continue
            old = raw.get(side, {})
            table: dict[str, Any] = {}
            source = form[f"{side}.source"]
            if source in ("sparql", "rql"):  # (an endpoint or a CubicWeb instance, and its query)
                table = {source: form.get(f"{side}.{source}", "").strip(), "query": form.get(f"{side}.query", "")}
                if table[source] == old.get(source):  # (its columns' names, paging… carry over)
                    table.update({k: v for k, v in old.items() if k not in (source, "query", "id")})
            else:
                path = form.get(f"{side}.path", "").strip()
                table = {"path": path}
                # (a format, delimiter, header… of the same files carry over)
                if path == old.get("path"):
                    table.update({k: v for k, v in old.items() if k not in ("path", "id", "sparql", "rql", "query")})
                if form.get(f"{side}.query", "").strip():  # (RDF files, queried)
                    table["query"] = form[f"{side}.query"]
            if form.get(f"{side}.id", "").strip():
                table["id"] = form[f"{side}.id"].strip()
            _several_values(table, form, side, source)
            raw[side] = table
        self.save(raw)

    def set_path(self, side: str, path: str) -> None:
        raw = self.raw()
        raw[side] = {"path": path}
        self.save(raw)

    def set_treatments(self, form: Mapping[str, str], action: str = "") -> None:
        self.save(treatments_form(self.raw(), form, action))

    def set_blocking(self, form: Mapping[str, str], action: str = "") -> None:
        self.save(blocking_form(self.raw(), form, action))

    def use_blocking(self, table: Mapping[str, Any]) -> None:
        """The job's blocking replaced by ``table`` (a suggestion's)."""
        raw = self.raw()
        raw["blocking"] = copy.deepcopy(dict(table))
        self.save(raw)

    def set_output(self, form: Mapping[str, str]) -> None:
        raw = self.raw()
        output = raw.setdefault("output", {})
        fmt = form.get("output.format", "parquet")
        stem = os.path.splitext(output.get("path", "out/links.parquet"))[0]
        output["path"] = f"{stem}.{'csv' if fmt == 'csv' else 'parquet'}"
        output.pop("format", None)
        output["explain"] = True  # (the review shows each treatment's distance from the links file)
        self.save(raw)

    # What the pages show of the job ------------------------------------------------------------------

    def treatment_rows(self) -> list[dict[str, Any]]:
        rows = []
        for table in self.raw().get("treatments", []):
            column = table.get("column", "")
            align, target = (column.get("align"), column.get("target")) if isinstance(column, dict) else (column, "")
            rows.append({"column": _shown(align), "target_column": _shown(target),
                         "normalizers": _shown(table.get("normalizers")), "metric": str(table.get("metric", "")),
                         "weight": _shown(table.get("weight", "")), "normalized": bool(table.get("normalized")),
                         "group": str(table.get("group", "")),
                         "options": _options_text(table, {"column", "normalizers", "metric", "weight",
                                                          "normalized", "group"})})
        return rows

    def blocking_rows(self) -> list[dict[str, str]]:
        blocking = self.raw().get("blocking")
        if not blocking:
            return []
        members = blocking.get("of", []) if blocking.get("kind") == "union" else [blocking]
        return [{"kind": str(m.get("kind", "")), "columns": _shown(m.get("columns")),
                 "transform": _shown(m.get("transform")),
                 "options": _options_text(m, {"kind", "columns", "transform"})} for m in members]

    def spec(self, side: str) -> SetSpec:
        return set_spec(self.job_path, side, self.raw().get(side, {}))


def treatments_form(job: Mapping[str, Any], form: Mapping[str, str], action: str = "") -> dict[str, Any]:
    """The job with the treatments page's form: treatments, model, threshold, uniq (``action``: ``add``, or
    ``remove:<i>``)."""
    raw = copy.deepcopy(dict(job))
    treatments = []
    count = int(form.get("treatments.count", "0"))
    for i in range(count):
        if action == f"remove:{i}":
            continue
        key = f"treatments[{i}]"
        align = _names(form.get(f"{key}.column", ""), f"{key}.column")
        target = _names(form.get(f"{key}.target_column", ""), f"{key}.target_column")
        table: dict[str, Any] = {"column": {"align": align, "target": target} if target and target != align
                                 else align}
        normalizers = _items(form.get(f"{key}.normalizers", ""), f"{key}.normalizers")
        if normalizers:
            table["normalizers"] = normalizers
        table["metric"] = form.get(f"{key}.metric", "levenshtein")
        if form.get(f"{key}.weight", "").strip():
            table["weight"] = _number(form[f"{key}.weight"])
        if form.get(f"{key}.normalized"):
            table["normalized"] = True
        if form.get(f"{key}.group", "").strip():
            table["group"] = form[f"{key}.group"].strip()
        table.update(_options(form.get(f"{key}.options", ""), f"{key}.options"))
        treatments.append(table)
    if action == "add":
        treatments.append({"column": "", "metric": "levenshtein"})
    raw["treatments"] = treatments
    if form.get("model") == "fellegi-sunter":
        raw["model"] = raw.get("model") or {"kind": "fellegi-sunter"}
    else:
        raw.pop("model", None)
    threshold = form.get("threshold", "").strip()
    raw["threshold"] = "auto" if threshold == "auto" else _number(threshold)
    raw["uniq"] = bool(form.get("uniq"))
    return raw


def blocking_form(job: Mapping[str, Any], form: Mapping[str, str], action: str = "") -> dict[str, Any]:
    """The job with the blocking page's form (one member: that blocking; several: their union; none: no blocking)."""
    raw = copy.deepcopy(dict(job))
    members = []
    for i in range(int(form.get("blocking.count", "0"))):
        if action == f"remove:{i}":
            continue
        key = f"blocking[{i}]"
        columns = _names(form.get(f"{key}.columns", ""), f"{key}.columns")
        member: dict[str, Any] = {"kind": form.get(f"{key}.kind", "key"), "columns": columns}
        if form.get(f"{key}.transform", "").strip():
            member["transform"] = _names(form[f"{key}.transform"], f"{key}.transform")
        member.update(_options(form.get(f"{key}.options", ""), f"{key}.options"))
        if member["kind"] != "key" and isinstance(columns, str):
            member["columns"] = [columns]  # (the other kinds read a list)
        members.append(member)
    if action == "add":
        members.append({"kind": "key", "columns": ""})
    if not members:
        raw.pop("blocking", None)
    else:
        raw["blocking"] = members[0] if len(members) == 1 else {"kind": "union", "of": members}
    return raw


def form_field(field: str, blocking: Mapping[str, Any] | None) -> str:
    """The form's name of a job's key (``blocking.of[1].columns`` → ``blocking[1].columns``)."""
    if field.startswith("blocking.of["):
        return "blocking[" + field[len("blocking.of["):]
    if field.startswith("blocking.") and blocking and blocking.get("kind") != "union":
        return "blocking[0]." + field[len("blocking."):]
    return field


def set_errors(errors: Mapping[str, str], raw: Mapping[str, Any]) -> dict[str, str]:
    """The messages keyed by form field; a treatment's or blocking member's
    message with no key of its own goes to its first field."""
    shown = {}
    for field, message in errors.items():
        name = form_field(field, raw.get("blocking"))
        if re.fullmatch(r"treatments\[\d+\]", name):
            name += ".column"
        elif re.fullmatch(r"blocking\[\d+\]", name):
            name += ".columns"
        elif re.fullmatch(r"(alignset|targetset)", name):
            name += ".path"
        shown[name] = message
    return shown


def sample(spec: SetSpec, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first ``rows`` records of a set (of its first file, or the
    endpoint's first page), as read for staging."""
    return source_of(spec).sample(rows)


def profile(records: pd.DataFrame) -> list[dict[str, Any]]:
    """Per column: share of missing values (None, NaN, empty text) and of distinct values among the present."""
    result = []
    for column in records.columns:
        values = records[column]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        present = values[~missing]
        result.append({"column": column, "missing": float(missing.mean()) if len(values) else 0.0,
                       "distinct": present.astype(str).nunique() / len(present) if len(present) else 0.0})
    return result


def preview(treatment: Treatment, align: pd.DataFrame, target: pd.DataFrame, pairs: int = 5) -> list[dict[str, Any]]:
    """What a treatment does on sample records: for each of the first
    ``pairs`` align records, its nearest target record under this treatment
    alone, both values as read and normalized, and their distance."""
    align = align.head(pairs)
    read_a = attribute_values(align, treatment.side_attribute("align"))
    read_b = attribute_values(target, treatment.side_attribute("target"))
    shown_a, shown_b = treatment.normalize(align), treatment.normalize(target, "target")
    distances = treatment.metric.cdist(treatment.encode(align), treatment.encode(target, "target"),
                                       treatment.normalized)
    rows = []
    for i, row in enumerate(distances):
        if not len(row):  # (no target record to compare with)
            rows.append({"align": value_text(read_a, i), "align_normalized": value_text(shown_a, i), "target": "",
                         "target_normalized": "", "distance": float("nan")})
            continue
        j = 0 if np.isnan(row).all() else int(np.nanargmin(row))
        rows.append({"align": value_text(read_a, i), "align_normalized": value_text(shown_a, i),
                     "target": value_text(read_b, j), "target_normalized": value_text(shown_b, j),
                     "distance": float(row[j])})
    return rows


def value_text(values: pd.Series | pd.DataFrame, i: int) -> str:
    """Row ``i`` of an attribute's values as the pages show it: the columns of an attribute of several
    joined by " · ", a value set as ``{a; b}``, a missing value empty."""
    row = values.iloc[i]
    parts = list(row) if isinstance(values, pd.DataFrame) else [row]
    return " · ".join("" if v is None or (isinstance(v, float) and math.isnan(v)) else shown(v) for v in parts)
