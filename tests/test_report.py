"""The run report: rendered by headless Chromium, figures checked against the run's outputs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_cli import demo_text

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, client):
    directory = tmp_path_factory.mktemp("report")
    text = demo_text(directory, 3000)
    # and a MinHash member, whose S-curve the report draws
    text = text.replace("[output]", '[[blocking.of]]\nkind = "minhash_lsh"\ncolumns = ["given_name", "surname"]\n'
                                    'threshold = 0.7\n\n[output]')
    (directory / "job.toml").write_text(text)
    result = subprocess.run([sys.executable, "-m", "bigalign", "run", str(directory / "job.toml"), "--scheduler",
                             client.scheduler.address], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"report: {directory / 'report.html'}" in result.stdout
    return directory


def dom(path: Path) -> tuple[str, str]:
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", f"--user-data-dir={path.parent / 'chromium'}",
                             "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


@pytest.mark.system
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_chromium_with_every_plot_drawn(run_dir):
    page, log = dom(run_dir / "report.html")
    assert "Uncaught" not in log and "CONSOLE(" not in log  # no script error, no console message
    assert "<script" not in page and "http://" not in page.split("</style>")[0]  # self-contained
    data = json.loads((run_dir / "report-data.json").read_text())
    for plot in ("plot-stages", "plot-volumes", "plot-block-sizes", "plot-s-curve-0", "plot-distances",
                 "plot-quality"):
        block = re.search(rf'<div class="plot" id="{plot}">(.*?)</div>', page, re.S)
        assert block and "<svg" in block.group(1), plot
    summary = json.loads((run_dir / "summary.json").read_text())
    marks = lambda prefix: len(re.findall(rf'<g id="{prefix}-\d+"', page))  # noqa: E731
    assert marks("stage-seconds") == len(summary["seconds"])
    assert marks("stage-cores") == sum(summary["seconds"][s] >= 0.1 for s in summary["cpu_seconds"]) > 0
    assert marks("block-sizes") == len(data["block_size_histogram"])
    assert marks("volumes") == 4
    assert marks("distances-linked") == marks("distances-rejected") == len(data["distance_edges"]) - 1
    for gid in ("s-curve", "s-curve-threshold", "quality-precision", "quality-recall", "quality-f1", "quality-best"):
        assert f'<g id="{gid}"' in page, gid


def test_report_figures_match_the_run(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    data = json.loads((run_dir / "report-data.json").read_text())
    page = (run_dir / "report.html").read_text()
    links = pd.read_parquet(run_dir / "links.parquet")
    assert len(links) == summary["links"]
    assert f"{summary['links']:,} links written" in page
    b = summary["blocking"]
    assert sum(data["block_size_histogram"].values()) == b["blocks"]
    assert sum(data["distance_histograms"]["all"]) == b["candidate_pairs"]
    assert sum(data["distance_histograms"]["true"]) + sum(data["distance_histograms"]["false"]) == b["candidate_pairs"]
    assert data["largest_blocks"][0][0] == b["largest_block_pairs"]
    assert sum(data["link_distances"]) == len(links) == summary["links"]
    # Every align record with a candidate is either linked or has a best rejected candidate.
    assert sum(data["best_rejected_distances"]) > 0
    evaluated = subprocess.run([sys.executable, "-m", "bigalign", "evaluate", str(run_dir / "links.parquet"),
                                str(run_dir / "truth.csv")], capture_output=True, text=True, check=True).stdout
    f1 = float(re.search(r"^f1: ([0-9.]+)$", evaluated, re.M).group(1))
    assert f"<td>{f1:.4f}</td>" in page
    near = data["near_threshold"]
    weights = [t["weight"] for t in data["treatments"]]

    def global_distance(row):  # a treatment with a missing value (null) is left out, the sum scaled back
        present = [(int(k.split(":")[0]), v) for k, v in row.items() if k.endswith(" distance") and v is not None]
        return sum(v for _, v in present) * sum(weights) / sum(weights[i] for i, _ in present)

    assert near and all(abs(global_distance(r) - r["distance"]) < 1e-9 for r in near)
    assert any(v is None for r in near for v in r.values())  # (the generated data has missing values)
    # Rebuilt from the outputs alone, the report is the same file.
    before = page
    (run_dir / "report.html").unlink()
    rebuilt = subprocess.run([sys.executable, "-m", "bigalign", "report", str(run_dir)], capture_output=True,
                             text=True, check=True)
    assert rebuilt.stdout.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").read_text() == before
