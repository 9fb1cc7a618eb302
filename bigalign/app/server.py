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
import logging
import math
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import jinja2
import pandas as pd
import tornado.escape
import tornado.httputil
import tornado.ioloop
import tornado.web

from ..errors import BigalignError, JobError
from ..io import write_links
from ..job_scoring import treatment_spec
from ..jobs import load_job
from .review import (
    LinksPager,
    float_or_none,
    marks_of,
    records_of_side,
    side_by_side,
    unlinked_candidates,
)
from .state import BATCH, App, read_json
from .uploads import MultipartFile, multipart_boundary, upload_name
from .workspace import (
    BLOCKING_KINDS,
    METRIC_NAMES,
    NORMALIZER_NAMES,
    SIDES,
    preview,
    profile,
    set_errors,
    treatments_form,
)

__all__ = ["App", "make_app", "running"]

HERE = os.path.dirname(__file__)
PAGE_SIZE = 50
# An upload is streamed to disk, so its size is bounded by the disk, not by memory; past this, a clear 413.
MAX_UPLOAD_BYTES = 64 << 30
logger = logging.getLogger("bigalign")
T = TypeVar("T")
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


class Page(tornado.web.RequestHandler):
    """A page of the application (``name``: its template and its place in the menu)."""

    name = ""

    def initialize(self, app: App) -> None:
        self.app = app
        self.ws = app.workspace

    def prepare(self) -> None:
        self._check_host()
        self._check_token()
        if self.request.path not in ("/job", "/download/job.toml"):
            try:
                self.ws.raw()
            except JobError:  # (edited by hand into something else than TOML: mend it on the job page)
                self.redirect("/job")

    def _check_host(self) -> None:
        """A request for another host name is refused (DNS rebinding: a remote name pointed at loopback)."""
        hosts = self.app.hosts
        if hosts is not None and self.request.host_name.strip("[]").lower() not in hosts:
            raise tornado.web.HTTPError(403, f"this application answers to {', '.join(sorted(hosts))} only")

    def _check_token(self) -> None:
        token = self.app.token.encode()
        given = self.get_argument("token", None)
        if not hmac.compare_digest((given or self.get_cookie("bigalign_token") or "").encode(), token):
            raise tornado.web.HTTPError(403, "an access token is needed: open the URL bigalign serve printed")
        if given:
            self.set_cookie("bigalign_token", self.app.token, httponly=True, samesite="Strict")

    @property
    def xsrf_token(self) -> bytes:
        return self.app.xsrf.encode()

    def check_origin(self) -> None:
        """A request from another site's page (its Origin, or Sec-Fetch-Site, when the browser says it) is
        refused."""
        origin = self.request.headers.get("Origin")
        if origin is not None and origin != f"{self.request.protocol}://{self.request.host}":
            raise tornado.web.HTTPError(403, "a request from another site's page is refused")
        if self.request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise tornado.web.HTTPError(403, "a request from another site's page is refused")

    def check_xsrf_cookie(self) -> None:
        """A request that changes anything comes from the application's own pages: its Origin is the page's,
        and it carries the form token only those pages show."""
        self.check_origin()
        given = self.get_argument("_xsrf", None) or self.request.headers.get("X-Xsrftoken") or ""
        if not hmac.compare_digest(given.encode(), self.xsrf_token):
            raise tornado.web.HTTPError(403, "the form's token is missing or wrong: reload the page")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Tornado's log of a failed request, the access token masked in its URI."""
        uri = _redacted(self.request.uri or "")
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                logging.getLogger("tornado.general").warning("%d %s %s: %s", value.status_code, self.request.method,
                                                             uri, value.log_message)
            return
        logger.error("uncaught exception %s %s", self.request.method, uri, exc_info=(typ, value, tb))

    async def off_loop(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a thread: what may wait (an endpoint, a large file) never holds the pages."""
        return await tornado.ioloop.IOLoop.current().run_in_executor(None, work, *args)

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

    async def show(self, errors: dict[str, str] | None = None, remote: bool = False, **context: Any) -> None:
        """Render the page. The job's errors are checked in a thread, and endpoints and databases asked only
        when ``remote`` (the data page, a start): a slow endpoint holds that page alone."""
        try:
            raw = self.ws.raw()
        except JobError as err:
            raw, errors = {}, {"job": str(err), **(errors or {})}
        if errors is None:
            errors = set_errors(await self.off_loop(self.ws.errors, remote), raw)
        self.finish(_templates.get_template(f"{self.name}.html").render(
            current=self.name, nav=NAV, raw=raw, errors=errors, dashboard=self.app.dashboard,
            scheduler=self.app.scheduler or "the job's cluster",
            commands={kind: c.as_dict() for kind, c in self.app.commands.items()}, xsrf=self.xsrf_form_html(),
            xsrf_token=self.app.xsrf, metrics=METRIC_NAMES, normalizers=NORMALIZER_NAMES,
            blocking_kinds=BLOCKING_KINDS, **context))

    async def apply(self, change: Any) -> None:
        """Save a form's change; a value the form cannot read is shown beside its field."""
        try:
            change()
        except JobError as err:
            await self.show(errors={err.field or "": str(err)})
            return
        self.redirect(self.request.path, status=303)


def _redacted(uri: str) -> str:
    """A request's URI for a log: the access token masked."""
    path, _, query = uri.partition("?")
    if not query:
        return uri
    pairs = [(k, "***" if k == "token" else v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{urllib.parse.urlencode(pairs, safe='*')}"


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log, with the token masked."""
    status = handler.get_status()
    log = logging.getLogger("tornado.access")
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    log.log(level, "%d %s %s (%s) %.2fms", status, handler.request.method, _redacted(handler.request.uri or ""),
            handler.request.remote_ip, 1000.0 * handler.request.request_time())


class Home(Page):
    def get(self) -> None:
        self.redirect("/data")


class DataPage(Page):
    name = "data"

    async def get(self) -> None:
        raw = self.ws.raw()
        sets = {}
        for side in SIDES:
            if side not in raw:
                continue
            view: dict[str, Any] = {"table": raw[side]}
            try:
                records = await self.off_loop(self.app.sample, side)
                view.update(columns=list(records.columns), rows=records.head(10).to_dict("records"),
                            profile=profile(records), sampled=len(records))
            except BigalignError as err:
                view["error"] = str(err)
            sets[side] = view
        await self.show(sets=sets, several="sets" in raw, remote=True)

    async def post(self) -> None:
        await self.apply(lambda: self.ws.set_sources(self.form()))


@tornado.web.stream_request_body
class Upload(Page):
    """A file sent by the data page's form, streamed to ``uploads/<side>/`` (its size bounded by the disk).

    The form's token is in the action's query: the body is read after the checks."""

    def prepare(self) -> None:
        super().prepare()
        side = self.path_args[0]
        if side not in (*SIDES, BATCH):
            raise tornado.web.HTTPError(404)
        length = int(self.request.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            raise tornado.web.HTTPError(413, f"an upload is at most {MAX_UPLOAD_BYTES >> 30} GiB; "
                                             "give the file's path instead")
        self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)  # type: ignore[union-attr]
        directory = os.path.join(self.ws.root, "uploads", side)
        os.makedirs(directory, exist_ok=True)
        self.parts = MultipartFile(multipart_boundary(self.request.headers.get("Content-Type", "")), directory)

    def data_received(self, chunk: bytes) -> None:
        self.parts.feed(chunk)

    async def post(self, side: str) -> None:
        upload = self.parts.finish()
        back = "/run" if side == BATCH else "/data"
        if upload is None:
            self.redirect(back, status=303)
            return
        filename, tmp = upload
        name = upload_name(filename, side)
        os.replace(tmp, os.path.join(self.ws.root, "uploads", side, name))
        if side != BATCH:
            self.ws.set_path(side, f"uploads/{side}/{name}")
        else:  # (a batch of new records: linked against the workspace's index at once)
            try:
                self.app.link_batch(f"uploads/{side}/{name}", add=self.get_argument("add", "") == "1")
            except JobError as err:
                self.name = "run"
                await self.show(errors={"task": str(err)}, **self.app.run_page())
                return
        self.redirect(back, status=303)

    def on_finish(self) -> None:
        parts = getattr(self, "parts", None)
        if parts is not None:
            parts.discard()

    on_connection_close = on_finish


class TreatmentsPage(Page):
    name = "treatments"

    async def get(self) -> None:
        await self.show(rows=self.ws.treatment_rows())

    async def post(self) -> None:
        await self.apply(lambda: self.ws.set_treatments(self.form(), self.get_body_argument("action", "")))


class Preview(Page):
    """Each treatment of the form (not saved) on sample records: values as read, normalized, and distances."""

    name = "preview"

    async def post(self) -> None:
        self.finish(await self.off_loop(self._previews, self.form()))

    def _previews(self, form: dict[str, str]) -> dict[str, str]:
        previews: list[dict[str, Any]] = []
        try:
            raw = treatments_form(self.ws.raw(), form)
            samples = {side: self.app.sample(side) for side in SIDES if side in raw}
        except BigalignError as err:
            return {"error": str(err)}
        align = samples.get("alignset")
        target = samples.get("targetset", align)
        for i, table in enumerate(raw.get("treatments", [])):
            try:
                treatment = treatment_spec(self.ws.job_path, i, table)
                previews.append({"rows": preview(treatment, align, target)})
            except (BigalignError, KeyError, ValueError, TypeError) as err:
                message = str(err) if isinstance(err, BigalignError) else f"cannot compute: {err}"
                previews.append({"error": message})
        return {"html": _templates.get_template("preview.html").render(previews=previews)}


class BlockingPage(Page):
    name = "blocking"

    def suggestion(self) -> dict[str, Any] | None:
        """The blocking the last ``plan --suggest`` chose (``candidates.json``), if any."""
        return (read_json(os.path.join(self.ws.run_dir(), "candidates.json")) or {}).get("blocking_choice")

    async def get(self) -> None:
        await self.show(rows=self.ws.blocking_rows(), suggestion=self.suggestion())

    async def post(self) -> None:
        action, suggestion = self.get_body_argument("action", ""), self.suggestion()
        if action == "use-suggestion" and suggestion:
            await self.apply(lambda: self.ws.use_blocking(suggestion["blocking"]))
            return
        await self.apply(lambda: self.ws.set_blocking(self.form(), action))


class Start(Page):
    """Start ``plan`` or ``run`` on the saved job, when it is valid."""

    async def post(self, kind: str) -> None:
        back = "/blocking" if kind in ("plan", "suggest") else "/run"
        errors = await self.off_loop(self.ws.errors, True)
        if not errors:
            try:  # (a suggestion is `bigalign plan --suggest`)
                arguments = {"index": ["--to", "index"], "suggest": ["--suggest"]}.get(kind, [])
                self.app.start("plan" if kind == "suggest" else kind, arguments)
            except JobError as err:
                errors = {"task": str(err)}
        if errors:
            self.name = back.strip("/")
            await self.show(errors=set_errors(errors, self.ws.raw()), rows=self.ws.blocking_rows(),
                            **self.app.run_page())
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

    async def get(self) -> None:
        await self.show(**self.app.run_page())

    async def post(self) -> None:
        await self.apply(lambda: self.ws.set_output(self.form()))


class ReviewPage(Page):
    name = "review"

    async def get(self) -> None:
        try:
            pager = self.app.pager()
        except BigalignError as err:
            await self.show(problem=str(err))
            return
        query = {k: self.get_argument(k, "") for k in ("sort", "desc", "low", "high", "near")}
        number = max(0, int(self.get_argument("page", "0") or 0))
        threshold = self._threshold(pager)
        near = threshold if query["near"] else None
        page = pager.page(number, PAGE_SIZE, sort=query["sort"], descending=bool(query["desc"]),
                          low=float_or_none(query["low"]), high=float_or_none(query["high"]), near=near)
        links = await self.off_loop(self._side_by_side, page.rows, page.score)
        report_data = read_json(os.path.join(self.ws.run_dir(), "report-data.json")) or {}
        unlinked = unlinked_candidates(report_data.get("near_threshold", []), pager, self.app.labels.read())
        await self.show(page=page, links=links, number=number, pages=max(1, -(-page.total // PAGE_SIZE)), query=query,
                  distances=pager.distances, threshold=threshold, unlinked=unlinked,
                  total_links=pager.rows)

    def _threshold(self, pager: LinksPager) -> float | None:
        summary = read_json(os.path.join(self.ws.run_dir(), "summary.json")) or {}
        model = summary.get("model") or {}
        if pager.score == "match_probability":
            return model.get("threshold")
        threshold = self.ws.raw().get("threshold")
        return float(threshold) if isinstance(threshold, (int, float)) else None

    def _side_by_side(self, rows: pd.DataFrame, score: str) -> list[dict[str, Any]]:
        """Each link's two records, and per treatment both normalized values and the distance."""
        if rows.empty:
            return []
        raw = self.ws.raw()
        one_set = bool(raw.get("dedupe")) or "sets" in raw  # (all the records have the alignset's columns)
        try:
            found_a = records_of_side(rows, "align", "alignset", self.app.records)
            found_b = records_of_side(rows, "target", "alignset" if one_set else "targetset", self.app.records)
            treatments = list(load_job(self.ws.job_path, resolve=False).alignment.treatments)
        except BigalignError as err:
            return [{"align_id": a, "target_id": t, "error": str(err)}
                    for a, t in zip(rows["align_id"].astype(str), rows["target_id"].astype(str))]
        return side_by_side(rows, score, found_a, found_b, treatments, "align" if one_set else "target",
                            marks_of(self.app.labels.read(), rows))


class Mark(Page):
    def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "a mark is JSON: align_id, target_id, match") from None
        match = body.get("match")
        if match not in (0, 1, None) or "align_id" not in body or "target_id" not in body:
            raise tornado.web.HTTPError(400, "a mark is align_id, target_id and match: 1, 0 or null")
        marks = self.app.labels.mark(str(body["align_id"]), str(body["target_id"]), match)
        self.finish({"marks": len(marks)})


class Match(Page):
    """``POST /match?k=5``: a JSON record, or a list of records (column → value), and its best matches in the
    workspace's index, as :meth:`bigalign.index.Index.match` gives them. It changes nothing: the access token
    is asked (in the URL, ``token=``), not the form token, so that other programs can ask."""

    def check_xsrf_cookie(self) -> None:
        self.check_origin()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        self.finish({"error": error.log_message if isinstance(error, tornado.web.HTTPError) and error.log_message
                     else self._reason})

    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise tornado.web.HTTPError(400, "the body is a JSON record (column → value), or a list of them") from None
        records = body if isinstance(body, list) else [body]
        if not records or not all(isinstance(r, dict) for r in records):
            raise tornado.web.HTTPError(400, "the body is a JSON record (column → value), or a list of them")
        try:
            index = self.app.index()
        except BigalignError as err:
            raise tornado.web.HTTPError(404, str(err)) from None
        try:  # (a record the treatments cannot read, a k that is no number)
            found = await self.off_loop(index.match, pd.DataFrame(records), max(1, int(self.get_argument("k", "5"))))
        except (BigalignError, ValueError) as err:
            raise tornado.web.HTTPError(400, str(err)) from None
        self.finish({"matches": json.loads(found.to_json(orient="records"))})


class JobPage(Page):
    name = "job"

    async def get(self) -> None:
        await self.show(text=self.ws.text() if os.path.exists(self.ws.job_path) else "")

    async def post(self) -> None:
        files = self.request.files.get("file")
        text = files[0]["body"].decode("utf-8", "replace") if files else self.get_body_argument("text", "")
        try:
            self.ws.open_text(text)
        except JobError as err:
            await self.show(errors={"job": str(err)}, text=text)
            return
        self.redirect("/job", status=303)


class Download(Page):
    """The job, the marks, the report, the links as CSV, Parquet or N-Triples (converted on the server), and
    the last batch's report, links, clusters and changes."""

    def get(self, name: str) -> None:
        ws = self.ws
        run_dir = ws.run_dir()
        if name == "job.toml":
            return self._send(ws.job_path, "application/toml", name)
        if name == "labels.csv":
            return self._send(ws.labels_path, "text/csv", name)
        if name in ("report.html", "batch-report.html"):
            return self._send(os.path.join(run_dir, *name.split("-")), "text/html", None)
        if re.fullmatch(r"batch-(links|clusters)\.(csv|parquet|nt)|batch-changes\.csv", name):
            return self._send(os.path.join(run_dir, *name.split("-")), "application/octet-stream", name)
        match = re.fullmatch(r"links\.(csv|parquet|nt|rdf)", name)
        if not match:
            raise tornado.web.HTTPError(404)
        fmt = {"csv": "csv", "parquet": "parquet", "nt": "ntriples", "rdf": "alignment"}[match.group(1)]
        source = ws.links_path()
        if not os.path.exists(source):
            raise tornado.web.HTTPError(404, "no links yet")
        if source.endswith(f".{match.group(1)}"):
            return self._send(source, "application/octet-stream", name)
        links = pd.read_parquet(source) if source.endswith(".parquet") else pd.read_csv(source, dtype={
            "align_id": str, "target_id": str}, keep_default_na=False, na_values=[""])
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
        (r"/", Home),
        (r"/data", DataPage), (r"/upload/(\w+)", Upload), (r"/treatments", TreatmentsPage),
        (r"/treatments/preview", Preview), (r"/blocking", BlockingPage), (r"/start/(plan|run|index|suggest)", Start),
        (r"/cancel/(plan|run|index|link)", Cancel), (r"/task/(plan|run|index|link)", Task), (r"/run", RunPage),
        (r"/review", ReviewPage), (r"/mark", Mark), (r"/match", Match), (r"/job", JobPage),
        (r"/download/([\w.-]+)", Download),
    ]
    routes = [r if len(r) == 3 else (r[0], r[1], {"app": app}) for r in routes]
    return tornado.web.Application(routes, static_path=os.path.join(HERE, "static"), xsrf_cookies=True,
                                   log_function=_log_request)


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread of its own while the block runs (on ``port``, or a free one); yield its
    URL."""
    if not port:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
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
