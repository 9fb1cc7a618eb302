"""What the pages of the web application share: :class:`App`, the workspace and what is read from it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import InputError, JobError
from ..index import Index
from ..io import expand_paths, is_url
from ..sources import source_of
from .commands import Command
from .review import Labels, LinksPager, RecordIndex
from .workspace import Workspace, sample

__all__ = ["BATCH", "LOOPBACK", "App", "read_json"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# A batch of new records uploaded on the run page (to uploads/batch/), linked against the workspace's index;
# its links, report and summary go to batch/ in the run's directory.
BATCH = "batch"


def read_json(path: str) -> Any:
    """A JSON file's value; None when it is missing or unreadable (not written yet, or being replaced)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class App:
    """What the handlers share: the workspace, the cluster's address, the command running.

    ``token`` (random when not given) is asked of every request, on loopback
    too: any page a browser shows, from any port of this host, can send
    requests to the application. ``host`` is the address it is bound to:
    requests naming another host (a DNS name rebound to this address) are
    refused, unless it listens on every address (then the token alone guards).
    """

    def __init__(self, workspace: Workspace, scheduler: str | None, dashboard: str | None, token: str | None = None,
                 host: str = "127.0.0.1"):
        self.workspace, self.scheduler, self.dashboard = workspace, scheduler, dashboard
        self.token = token or secrets.token_urlsafe(24)
        self.hosts = None if host in ("0.0.0.0", "::", "") else {host.strip("[]").lower(), *LOOPBACK}
        # Forms carry a token derived from the access token: a page of another origin can set cookies for this
        # host (cookies know no port), but cannot read this one.
        self.xsrf = hmac.new(self.token.encode(), b"bigalign-xsrf", hashlib.sha256).hexdigest()
        self.commands: dict[str, Command] = {}  # the last plan and the last run
        self.labels = Labels(workspace.labels_path)
        self._pagers: dict[str, LinksPager] = {}
        self._records: dict[tuple[str, str, float], RecordIndex] = {}
        self._samples: dict[str, tuple[str, pd.DataFrame]] = {}
        self._index: tuple[float, Index] | None = None
        self._lock = threading.Lock()

    def start(self, kind: str, arguments: Sequence[str] = ()) -> Command:
        """Start ``bigalign KIND job.toml ARGUMENTS`` (one command at a time)."""
        with self._lock:
            for command in self.commands.values():
                if command.state in ("running", "cancelling"):
                    raise JobError(f"a {command.kind} is already running: cancel it first", field="task")
            self.commands[kind] = Command(kind, self.workspace.job_path, self.scheduler, arguments)
            return self.commands[kind]

    def latest(self, kinds: Sequence[str]) -> str:
        """Of these kinds of command, the one started last (the first kind when none was)."""
        started = [(self.commands[k].started, k) for k in kinds if k in self.commands]
        return max(started)[1] if started else kinds[0]

    def link_batch(self, records: str, add: bool) -> Command:
        """Start ``bigalign link`` of the workspace's job on ``records`` (a path in the workspace) against its
        index, writing the batch's links, report and summary to ``batch/`` in the run's directory."""
        output = self.workspace.raw().get("output", {})
        extension = ".csv" if str(output.get("path", "")).endswith(".csv") else ".parquet"
        batch = os.path.relpath(os.path.join(self.workspace.run_dir(), BATCH, "links" + extension),
                                self.workspace.root)
        return self.start("link", ["--index", "index", "--records", records, "--output", batch]
                          + (["--add"] if add else []))

    def sample(self, side: str) -> pd.DataFrame:
        """The first records of a set (see :func:`~.workspace.sample`), read again when its source changes."""
        spec = self.workspace.spec(side)
        files = [] if source_of(spec).remote else expand_paths(spec.path)
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

    def run_page(self) -> dict[str, Any]:
        """What the run page shows: the last run's and the last batch's summaries, the index's manifest, the
        command it follows."""
        run_dir = self.workspace.run_dir()
        return {"summary": read_json(os.path.join(run_dir, "summary.json")),
                "report": os.path.exists(os.path.join(run_dir, "report.html")),
                "batch": read_json(os.path.join(run_dir, BATCH, "summary.json")), "index": self.index_manifest(),
                "followed": self.latest(("run", "index", "link"))}

    def index_manifest(self) -> dict | None:
        """The workspace's index's manifest, when there is one."""
        try:
            return self.index().manifest
        except InputError:
            return None

    def index(self) -> Index:
        """The workspace's index (``index/``, built by ``bigalign index job.toml --to index``), opened again
        when a new version is written."""
        path = os.path.join(self.workspace.root, "index")
        manifest = os.path.join(path, "manifest.json")
        if not os.path.exists(manifest):
            raise InputError(f"{path}: no index here; build one with 'bigalign index job.toml --to index' in "
                             f"{self.workspace.root}")
        stamp = os.path.getmtime(manifest)
        if self._index is None or self._index[0] != stamp:
            self._index = (stamp, Index.open(path))
        return self._index[1]
