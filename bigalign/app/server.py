"""The web application's server: Tornado handlers rendering Jinja2 pages.

Tornado and Jinja2 come with ``distributed`` (its dashboard is a Tornado
server), so the application adds no dependency and runs beside a Dask
client in one process. Pages are rendered on the server and work as plain
forms; a little JavaScript (``static/app.js``, shipped in the package)
follows a running command, previews treatments as they are typed and saves
review marks without reloading.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import tornado.escape
import tornado.web

from ..errors import BigalignError, JobError
from ..io import atomic_path, expand_paths, is_url, write_links
from ..jobs import load_job, treatment_spec
from ..treatments import treatment_pair_distances
from .commands import Command
from .review import Labels, LinksPager, RecordIndex, marks_of
from .workspace import (
    BLOCKING_KINDS,
    METRIC_NAMES,
    NORMALIZER_NAMES,
    SIDES,
    Workspace,
    preview,
    profile,
    sample,
    set_errors,
    treatments_form,
    value_text,
)

__all__ = ["App", "make_app", "running"]

HERE = os.path.dirname(__file__)
PAGE_SIZE = 50
NAV = [("data", "Data"), ("treatments", "Treatments"), ("blocking", "Blocking & plan"), ("run", "Run"),
       ("review", "Review"), ("job", "Job file")]


def _format(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                                autoescape=True, trim_blocks=True, lstrip_blocks=True)
_templates.filters["fmt"] = _format


class App:
    """What the handlers share: the workspace, the cluster's address, the command running."""

    def __init__(self, workspace: Workspace, scheduler: str | None, dashboard: str | None, token: str | None = None):
        self.workspace, self.scheduler, self.dashboard, self.token = workspace, scheduler, dashboard, token
        self.commands: dict[str, Command] = {}  # the last plan and the last run
        self.labels = Labels(workspace.labels_path)
        self._pagers: dict[str, LinksPager] = {}
        self._records: dict[tuple[str, str, float], RecordIndex] = {}
        self._samples: dict[str, tuple[str, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def start(self, kind: str) -> Command:
        with self._lock:
            for command in self.commands.values():
                if command.state in ("running", "cancelling"):
                    raise JobError(f"a {command.kind} is already running: cancel it first", field="task")
            self.commands[kind] = Command(kind, self.workspace.job_path, self.scheduler)
            return self.commands[kind]

    def sample(self, side: str) -> pd.DataFrame:
        """The first records of a set (see :func:`~.workspace.sample`), read again when its source changes."""
        spec = self.workspace.spec(side)
        files = [] if spec.sparql or spec.sql else expand_paths(spec.path)
        key = repr(spec) + repr([(f, os.path.getmtime(f)) for f in files if not is_url(f)])
        if self._samples.get(side, ("",))[0] != key:
            self._samples[side] = (key, sample(spec))
        return self._samples[side][1]

    def pager(self) -> LinksPager:
        path = self.workspace.links_path()
        pager = self._pagers.get(path)
        if pager is None or not os.path.exists(path) or os.path.getmtime(path) != pager.mtime:
            pager = self._pagers[path] = LinksPager(path, self.workspace.run_dir())
        return pager

    def records(self, name: str) -> RecordIndex:
        staging = os.path.join(self.workspace.run_dir(), "staging")
        key = (staging, name, os.path.getmtime(staging) if os.path.exists(staging) else 0.0)
        if key not in self._records:
            self._records = {k: v for k, v in self._records.items() if k[:2] != key[:2]}
            self._records[key] = RecordIndex(staging, name)
        return self._records[key]


class Page(tornado.web.RequestHandler):
    """A page of the application (``name``: its template and its place in the menu)."""

    name = ""

    def initialize(self, app: App) -> None:
        self.app = app
        self.ws = app.workspace

    def prepare(self) -> None:
        self._check_token()
        if self.request.path not in ("/job", "/download/job.toml"):
            try:
                self.ws.raw()
            except JobError:  # (edited by hand into something else than TOML: mend it on the job page)
                self.redirect("/job")

    def _check_token(self) -> None:
        token = self.app.token
        if token is None:
            return
        given = self.get_argument("token", None) or self.get_cookie("bigalign_token") or ""
        if not hmac.compare_digest(given, token):
            raise tornado.web.HTTPError(403, "an access token is needed: open the URL bigalign serve printed")
        if self.get_argument("token", None):
            self.set_cookie("bigalign_token", token, httponly=True, samesite="Strict")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        if "exc_info" in kwargs and not isinstance(kwargs["exc_info"][1], tornado.web.HTTPError):
            reason = f"{reason}: {kwargs['exc_info'][1]!r} (a bug in bigalign: please report it)"
        elif "exc_info" in kwargs and kwargs["exc_info"][1].log_message:
            reason = kwargs["exc_info"][1].log_message
        self.finish(f"<!doctype html><title>bigalign — {status_code}</title>"
                    f"<p>{tornado.escape.xhtml_escape(reason)}</p><p><a href='/data'>back</a></p>")

    def form(self) -> dict[str, str]:
        return {k: self.get_body_argument(k) for k in self.request.body_arguments}

    def show(self, errors: dict[str, str] | None = None, **context: Any) -> None:
        try:
            raw = self.ws.raw()
        except JobError as err:
            raw, errors = {}, {"job": str(err), **(errors or {})}
        if errors is None:
            errors = set_errors(self.ws.errors(), raw)
        self.finish(_templates.get_template(f"{self.name}.html").render(
            current=self.name, nav=NAV, raw=raw, errors=errors, dashboard=self.app.dashboard,
            scheduler=self.app.scheduler or "the job's cluster",
            commands={kind: c.as_dict() for kind, c in self.app.commands.items()}, xsrf=self.xsrf_form_html(),
            metrics=METRIC_NAMES, normalizers=NORMALIZER_NAMES, blocking_kinds=BLOCKING_KINDS, **context))

    def apply(self, change: Any) -> None:
        """Save a form's change; a value the form cannot read is shown beside its field."""
        try:
            change()
        except JobError as err:
            self.show(errors={err.field or "": str(err)})
            return
        self.redirect(self.request.path, status=303)


class DataPage(Page):
    name = "data"

    def get(self) -> None:
        raw = self.ws.raw()
        sets = {}
        for side in SIDES:
            if side not in raw:
                continue
            view: dict[str, Any] = {"table": raw[side]}
            try:
                records = self.app.sample(side)
                view.update(columns=list(records.columns), rows=records.head(10).to_dict("records"),
                            profile=profile(records), sampled=len(records))
            except BigalignError as err:
                view["error"] = str(err)
            sets[side] = view
        self.show(sets=sets, several="sets" in raw)

    def post(self) -> None:
        self.apply(lambda: self.ws.set_sources(self.form()))


class Upload(Page):
    def post(self, side: str) -> None:
        if side not in SIDES:
            raise tornado.web.HTTPError(404)
        files = self.request.files.get("file")
        if not files:
            self.redirect("/data", status=303)
            return
        upload = files[0]
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(upload["filename"])) or f"{side}.csv"
        path = os.path.join(self.ws.root, "uploads", name)
        with atomic_path(path, private=True) as tmp, open(tmp, "wb") as f:
            f.write(upload["body"])
        self.ws.set_path(side, f"uploads/{name}")
        self.redirect("/data", status=303)


class TreatmentsPage(Page):
    name = "treatments"

    def get(self) -> None:
        self.show(rows=self.ws.treatment_rows())

    def post(self) -> None:
        self.apply(lambda: self.ws.set_treatments(self.form(), self.get_body_argument("action", "")))


class Preview(Page):
    """Each treatment of the form (not saved) on sample records: values as read, normalized, and distances."""

    name = "preview"

    def post(self) -> None:
        form = self.form()
        previews: list[dict[str, Any]] = []
        try:
            raw = treatments_form(self.ws.raw(), form)
            samples = {side: self.app.sample(side) for side in SIDES if side in raw}
        except BigalignError as err:
            self.finish({"error": str(err)})
            return
        align = samples.get("alignset")
        target = samples.get("targetset", align)
        for i, table in enumerate(raw.get("treatments", [])):
            try:
                treatment = treatment_spec(self.ws.job_path, i, table)
                previews.append({"rows": preview(treatment, align, target)})
            except (BigalignError, KeyError, ValueError, TypeError) as err:
                message = str(err) if isinstance(err, BigalignError) else f"cannot compute: {err}"
                previews.append({"error": message})
        html = _templates.get_template("preview.html").render(previews=previews)
        self.finish({"html": html})


class BlockingPage(Page):
    name = "blocking"

    def get(self) -> None:
        self.show(rows=self.ws.blocking_rows())

    def post(self) -> None:
        self.apply(lambda: self.ws.set_blocking(self.form(), self.get_body_argument("action", "")))


class Start(Page):
    """Start ``plan`` or ``run`` on the saved job, when it is valid."""

    def post(self, kind: str) -> None:
        back = "/blocking" if kind == "plan" else "/run"
        errors = self.ws.errors()
        if not errors:
            try:
                self.app.start(kind)
            except JobError as err:
                errors = {"task": str(err)}
        if errors:
            self.name = back.strip("/")
            self.show(errors=set_errors(errors, self.ws.raw()), rows=self.ws.blocking_rows())
            return
        self.redirect(back, status=303)


class Cancel(Page):
    def post(self, kind: str) -> None:
        if kind in self.app.commands:
            self.app.commands[kind].cancel()
        self.finish({"ok": True})


class Task(Page):
    def get(self, kind: str) -> None:
        command = self.app.commands.get(kind)
        self.finish({"command": command.as_dict() if command else None})


class RunPage(Page):
    name = "run"

    def get(self) -> None:
        summary = os.path.join(self.ws.run_dir(), "summary.json")
        self.show(summary=_read_json(summary), report=os.path.exists(os.path.join(self.ws.run_dir(), "report.html")))

    def post(self) -> None:
        self.apply(lambda: self.ws.set_output(self.form()))


def _read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


class ReviewPage(Page):
    name = "review"

    def get(self) -> None:
        try:
            pager = self.app.pager()
        except BigalignError as err:
            self.show(problem=str(err))
            return
        query = {k: self.get_argument(k, "") for k in ("sort", "desc", "low", "high", "near")}
        number = max(0, int(self.get_argument("page", "0") or 0))
        threshold = self._threshold(pager)
        near = threshold if query["near"] else None
        page = pager.page(number, PAGE_SIZE, sort=query["sort"], descending=bool(query["desc"]),
                          low=_float(query["low"]), high=_float(query["high"]), near=near)
        links = self._side_by_side(page.rows, page.score)
        report_data = _read_json(os.path.join(self.ws.run_dir(), "report-data.json")) or {}
        unlinked = self._unlinked(report_data.get("near_threshold", []), pager)
        self.show(page=page, links=links, number=number, pages=max(1, -(-page.total // PAGE_SIZE)), query=query,
                  distances=pager.distances, threshold=threshold, unlinked=unlinked,
                  total_links=pager.rows)

    def _threshold(self, pager: LinksPager) -> float | None:
        summary = _read_json(os.path.join(self.ws.run_dir(), "summary.json")) or {}
        model = summary.get("model") or {}
        if pager.score == "match_probability":
            return model.get("threshold")
        threshold = self.ws.raw().get("threshold")
        return float(threshold) if isinstance(threshold, (int, float)) else None

    def _records_of(self, rows: pd.DataFrame, side: str, default: str) -> list[dict[str, Any]]:
        """The records of one side of a page's links, from the staged set each belongs to."""
        ids = rows[f"{side}_id"].astype(str).tolist()
        names = rows[f"{side}_set"].astype(str).tolist() if f"{side}_set" in rows else [default] * len(ids)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for name in sorted(set(names)):
            mine = [i for i, n in zip(ids, names) if n == name]
            found.update({(name, i): record for i, record in self.app.records(name).records(mine).items()})
        return [found.get((n, i), {}) for n, i in zip(names, ids)]

    def _side_by_side(self, rows: pd.DataFrame, score: str) -> list[dict[str, Any]]:
        """Each link's two records, and per treatment both normalized values and the distance."""
        if rows.empty:
            return []
        raw = self.ws.raw()
        one_set = bool(raw.get("dedupe")) or "sets" in raw  # (all the records have the alignset's columns)
        align_ids = rows["align_id"].astype(str).tolist()
        target_ids = rows["target_id"].astype(str).tolist()
        try:
            found_a = self._records_of(rows, "align", "alignset")
            found_b = self._records_of(rows, "target", "alignset" if one_set else "targetset")
            job = load_job(self.ws.job_path, resolve=False)
        except BigalignError as err:
            return [{"align_id": a, "target_id": t, "error": str(err)} for a, t in zip(align_ids, target_ids)]
        a, b = pd.DataFrame(found_a), pd.DataFrame(found_b)
        side = "align" if one_set else "target"
        attributes = []
        try:
            encoded_a = [t.encode(a) for t in job.treatments]
            encoded_b = [t.encode(b, side) for t in job.treatments]
            distances = treatment_pair_distances(job.treatments, encoded_a, encoded_b)
            for k, t in enumerate(job.treatments):
                attributes.append({"name": str(t), "align": t.normalize(a), "target": t.normalize(b, side),
                                   "distances": distances[:, k]})
        except (BigalignError, KeyError, ValueError, TypeError):
            attributes = []  # (records the job no longer describes: the records themselves are still shown)
        marks = marks_of(self.app.labels.read(), rows)
        return [{"align_id": align_id, "target_id": target_id, "score": float(rows[score].iloc[i]),
                 "mark": marks[i], "align": found_a[i], "target": found_b[i],
                 "attributes": [{"name": at["name"], "align": value_text(at["align"], i),
                                 "target": value_text(at["target"], i), "distance": float(at["distances"][i])}
                                for at in attributes]}
                for i, (align_id, target_id) in enumerate(zip(align_ids, target_ids))]

    def _unlinked(self, near: list[dict], pager: LinksPager) -> list[dict[str, Any]]:
        """Candidates near the threshold that are not links (from the report's data), to mark as matches."""
        pairs = pd.DataFrame(near)
        if pairs.empty or not {"align_id", "target_id"} <= set(pairs.columns):
            return []
        pairs["align_id"], pairs["target_id"] = pairs["align_id"].astype(str), pairs["target_id"].astype(str)
        linked = pager.linked(pairs["align_id"], pairs["target_id"])
        pairs = pairs[~linked]
        marks = marks_of(self.app.labels.read(), pairs)
        return [{"align_id": a, "target_id": t, "distance": d, "mark": m}
                for a, t, d, m in zip(pairs["align_id"], pairs["target_id"], pairs.get("distance", np.nan), marks)]


class Mark(Page):
    def post(self) -> None:
        body = json.loads(self.request.body or b"{}")
        match = body.get("match")
        if match not in (0, 1, None):
            raise tornado.web.HTTPError(400, "match is 1, 0 or null")
        marks = self.app.labels.mark(str(body["align_id"]), str(body["target_id"]), match)
        self.finish({"marks": len(marks)})


class JobPage(Page):
    name = "job"

    def get(self) -> None:
        self.show(text=self.ws.text() if os.path.exists(self.ws.job_path) else "")

    def post(self) -> None:
        files = self.request.files.get("file")
        text = files[0]["body"].decode("utf-8", "replace") if files else self.get_body_argument("text", "")
        try:
            self.ws.open_text(text)
        except JobError as err:
            self.show(errors={"job": str(err)}, text=text)
            return
        self.redirect("/job", status=303)


class Download(Page):
    """The job, the marks, the report, and the links as CSV, Parquet or N-Triples (converted on the server)."""

    def get(self, name: str) -> None:
        ws = self.ws
        run_dir = ws.run_dir()
        if name == "job.toml":
            return self._send(ws.job_path, "application/toml", name)
        if name == "labels.csv":
            return self._send(ws.labels_path, "text/csv", name)
        if name == "report.html":
            return self._send(os.path.join(run_dir, name), "text/html", None)
        match = re.fullmatch(r"links\.(csv|parquet|nt)", name)
        if not match:
            raise tornado.web.HTTPError(404)
        fmt = {"csv": "csv", "parquet": "parquet", "nt": "ntriples"}[match.group(1)]
        source = ws.links_path()
        if not os.path.exists(source):
            raise tornado.web.HTTPError(404, "no links yet")
        if source.endswith(f".{match.group(1)}"):
            return self._send(source, "application/octet-stream", name)
        links = pd.read_parquet(source) if source.endswith(".parquet") else pd.read_csv(source, dtype={
            "align_id": str, "target_id": str})
        output = ws.raw().get("output", {})
        converted = os.path.join(run_dir, "downloads", name)
        write_links(links, converted, fmt, output.get("align_uri"), output.get("target_uri"))
        self._send(converted, "application/octet-stream", name)

    def _send(self, path: str, kind: str, attachment: str | None) -> None:
        if not os.path.exists(path):
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", kind)
        if attachment:
            self.set_header("Content-Disposition", f'attachment; filename="{attachment}"')
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                self.write(chunk)
        self.finish()


def make_app(app: App) -> tornado.web.Application:
    """The Tornado application of ``app``'s pages."""
    routes: list[Any] = [
        (r"/", tornado.web.RedirectHandler, {"url": "/data"}),
        (r"/data", DataPage), (r"/upload/(\w+)", Upload), (r"/treatments", TreatmentsPage),
        (r"/treatments/preview", Preview), (r"/blocking", BlockingPage), (r"/start/(plan|run)", Start),
        (r"/cancel/(plan|run)", Cancel), (r"/task/(plan|run)", Task), (r"/run", RunPage),
        (r"/review", ReviewPage), (r"/mark", Mark), (r"/job", JobPage), (r"/download/([\w.]+)", Download),
    ]
    routes = [r if len(r) == 3 else (r[0], r[1], {"app": app}) for r in routes]
    return tornado.web.Application(routes, static_path=os.path.join(HERE, "static"), xsrf_cookies=True,
                                   cookie_secret=secrets.token_hex(16))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread of its own while the block runs; yield its URL."""
    port = port or free_port(host)
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        state["server"] = make_app(app).listen(port, address=host)
        state["loop"] = loop
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, daemon=True, name="bigalign-serve")
    thread.start()
    ready.wait(10)
    try:
        yield f"http://{host}:{port}"
    finally:
        loop = state["loop"]
        loop.call_soon_threadsafe(state["server"].stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
