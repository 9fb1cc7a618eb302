"""The web application's review pages on a large output: the time to show a page.

    python -m benchmarks.review --links 1000000

A run directory is made as a run leaves it: ``--links`` links (Parquet, with
each treatment's distance) between two sets of as many records, staged as
``bigalign run`` stages them (Parquet in row groups), and the job file. The
application serves it from this process; each request is timed from the
client (``GET /review?...``: reading what the page needs, the two records
of each of its 50 links, their normalized values and distances, the HTML),
first on a fresh application (nothing read yet), then again, then other
pages, sorts and filters. Peak memory of the process is the server's and
the client's together.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import urllib.request

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import markdown_table
from bigalign.app.server import App, running
from bigalign.app.workspace import Workspace
from bigalign.io import ROW_GROUP_ROWS, write_links

JOB = """threshold = 0.5
uniq = true
[alignset]
path = "a.parquet"
[targetset]
path = "b.parquet"
[[treatments]]
column = "name"
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true
[[treatments]]
column = "city"
metric = "exact"
[output]
path = "out/links.parquet"
explain = true
"""

REQUESTS = [
    ("first page, nothing read yet", "page=0"),
    ("first page again", "page=0"),
    ("page 1,000 by score", "page=1000"),
    ("first page by name distance, descending", "page=0&sort=name%3A+distance&desc=1"),
    ("first page nearest the threshold", "page=0&near=1"),
    ("page 3 of scores in [0.2, 0.3]", "page=3&low=0.2&high=0.3"),
]


def write_run(root: str, n: int, seed: int = 0) -> None:
    """Two staged sets of ``n`` records and ``n`` links between them, as a run leaves them."""
    rng = np.random.default_rng(seed)
    words = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 7)) for _ in range(5000)])
    staging = os.path.join(root, "out", "staging")
    os.makedirs(staging)
    for name, prefix in (("alignset", "a"), ("targetset", "t")):
        ids = np.char.add(prefix, np.arange(n).astype(str))
        frame = pd.DataFrame({"id": ids, "name": np.char.add(np.char.add(words[rng.integers(0, 5000, n)], " "),
                                                               words[rng.integers(0, 5000, n)]),
                              "city": words[rng.integers(0, 300, n)]})
        frame["_file"], frame["_row"] = np.int32(0), np.arange(2, n + 2)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       os.path.join(staging, f"{name}-00000.parquet"), row_group_size=ROW_GROUP_ROWS)
    order = rng.permutation(n)
    name_distance, city_distance = rng.random(n), (rng.random(n) < 0.1).astype(float)
    links = pd.DataFrame({"align_id": np.char.add("a", np.arange(n).astype(str)),
                          "target_id": np.char.add("t", order.astype(str)),
                          "distance": (name_distance + city_distance) / 2,
                          "name: distance": name_distance, "city: distance": city_distance})
    write_links(links, os.path.join(root, "out", "links.parquet"), "parquet")
    with open(os.path.join(root, "job.toml"), "w") as f:
        f.write(JOB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as root:
        write_run(root, args.links)
        with running(App(Workspace(root), None, None)) as url:
            for what, query in REQUESTS:
                clock = time.perf_counter()
                with urllib.request.urlopen(f"{url}/review?{query}", timeout=600) as answer:
                    page = answer.read().decode()
                seconds = time.perf_counter() - clock
                if page.count('<article class="link"') != 50:
                    raise AssertionError(f"{what}: not a page of 50 links")
                rows.append({"request": what, "ms": 1000 * seconds})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.links:,} links, records of {args.links:,} per set; peak memory of the process {peak:,.0f} MiB")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
