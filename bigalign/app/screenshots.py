"""``bigalign serve --screenshots DIR``: a picture of every page, for a reader
who does not run the application.

On generated person records (``bigalign.datasets``), in a temporary
directory: a job with two treatments and a key blocking is planned and run
on a local cluster, two links are marked, then Debian's Chromium, headless,
takes each page as a person sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ..cluster import quiet_shuffle_logs
from ..datasets import person_records
from ..errors import InputError

__all__ = ["take_screenshots"]

PAGES = ["data", "treatments", "blocking", "run", "review", "job"]

JOB = """threshold = 0.4
uniq = true

[alignset]
path = "people_a.csv"
id = "rec_id"

[targetset]
path = "people_b.parquet"
id = "rec_id"

[[treatments]]
column = ["given_name", "surname"]
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true
weight = 2

[[treatments]]
column = "date_of_birth"
metric = "temporal"
normalized = true
scale = 365

[[treatments]]
column = "suburb"
metric = "jaro_winkler"

[blocking]
kind = "union"
[[blocking.of]]
kind = "key"
columns = "date_of_birth"
transform = "date"
[[blocking.of]]
kind = "minhash_lsh"
columns = ["surname"]
threshold = 0.5

[output]
path = "out/links.parquet"
explain = true
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return str(shutil.which(name))
    raise InputError("screenshots need Chromium on the PATH (Debian: apt install chromium)")


def take_screenshots(directory: str, records: int = 2000) -> list[str]:
    """Write ``<page>.png`` for each page into ``directory``; return their paths."""
    from distributed import LocalCluster

    from .commands import Command
    from .server import App, running
    from .workspace import Workspace

    quiet_shuffle_logs()
    chromium = _chromium()
    os.makedirs(directory, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory() as root, \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0") as cluster:
        sets = person_records(records, seed=1)
        sets.alignset.to_csv(os.path.join(root, "people_a.csv"), index=False)
        sets.targetset.to_parquet(os.path.join(root, "people_b.parquet"), index=False)
        workspace = Workspace(root)
        workspace.open_text(JOB)
        app = App(workspace, cluster.scheduler_address, cluster.dashboard_link)
        for kind in ("plan", "run"):
            command = app.commands[kind] = Command(kind, workspace.job_path, cluster.scheduler_address)
            if command.wait(600) != "succeeded":
                raise RuntimeError(f"the screenshots' {kind} failed:\n" + "\n".join(command.lines))
        page = app.pager().page(0)
        for (align_id, target_id), match in zip(page.rows[["align_id", "target_id"]].astype(str).itertuples(
                index=False), (1, 0)):
            app.labels.mark(align_id, target_id, match)
        with running(app) as url:
            for name in PAGES:
                path = os.path.abspath(os.path.join(directory, f"{name}.png"))
                subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                f"--user-data-dir={os.path.join(root, 'chromium')}", "--window-size=1280,1500",
                                "--virtual-time-budget=5000", f"--screenshot={path}",
                                f"{url}/{name}?token={app.token}"],
                               check=True, capture_output=True, timeout=120)
                paths.append(path)
    return paths
