"""The benchmark runners run (quick mode), so that they cannot rot."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]


def test_compare_quick_mode_writes_its_table(tmp_path):
    output = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks.compare", "--sizes", "2000", "--output", str(output),
                    "--time-limit", "300"], cwd=ROOT, check=True, capture_output=True, timeout=900)
    text = output.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "records per side" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| bigalign", "| bigalign_distance", "| splink", "| splink_keys",
                                                   "| recordlinkage", "| nazca"]
    for row in rows[:2]:  # the demo's learned model (its fitting timed), and the weighted distance
        cells = row.split(" | ")
        assert cells[2] == "ok" and float(cells[12]) >= 0.98  # F1
    assert float(rows[0].split(" | ")[7]) > 0 and rows[1].split(" | ")[7] == "—"  # fit s
    for row in rows[2:]:
        assert row.split(" | ")[2] in ("ok", "not installed (pip install -e '.[bench]')")


def test_kernel_benchmark_runs():
    out = subprocess.run([sys.executable, "-m", "benchmarks.kernels", "--n", "300"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    assert out.count("\n| ") == 6  # header and five kernels


def test_scaling_benchmark_writes_its_table(tmp_path):
    # Larger sets as samples side by side (as 10M is made of 1M samples): ids and truths stay apart.
    output, data = tmp_path / "SCALING.md", tmp_path / "data"
    subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--sizes", "3000", "--sample", "1000", "--workers",
                    "1", "--output", str(output), "--data", str(data)], cwd=ROOT, check=True, capture_output=True,
                   timeout=600)
    text = output.read_text()
    assert "--sample 1000" in text
    row = [line for line in text.splitlines() if line.startswith("| 3,000")][0].split(" | ")
    assert row[1] == "1"  # one worker
    assert re.search(r"candidates \d+ \(\d+\.\d\)", row[-1])  # a stage's seconds, and the cores it kept busy
    # the sets kept (three samples), and each key's block pairs per record counted from them
    assert len(list((data / "3000-1000").glob("alignset-*.parquet"))) == 3
    table = subprocess.run([sys.executable, "-m", "benchmarks.key_density", "--data", str(data), "--sizes", "3000",
                            "--sample", "1000"], cwd=ROOT, check=True, capture_output=True, text=True,
                           timeout=300).stdout
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert [r[0] for r in rows][:2] == ["| soc_sec_id (exact)", "| date_of_birth (date) + address (exact)"]
    value = {r[0].lstrip("| "): float(r[1].rstrip(" |")) for r in rows}
    assert len(rows) == 8 and all(0 < value[r[0].lstrip("| ")] < 2 for r in rows)
    # the union's candidates: each pair once (fewer than the keys' pairs added up, more than any key's)
    per_key = [value[r[0].lstrip("| ")] for r in rows[:6]]
    assert max(per_key) < value["union: candidate pairs per align record"] < sum(per_key)
    assert float(row[5]) >= 0.98 and float(row[8]) >= 0.97  # pair completeness, F1 over the three samples
    # the run counts its candidates and the true pairs among them as the keys do (the run's 32-bit block keys
    # may add a pair where two keys' low bits meet: none among 9,000 records)
    assert value["union: candidate pairs per align record"] == round(int(row[4].replace(",", "")) / 3000, 3)
    assert abs(value["union: pair completeness"] - float(row[5])) <= 5e-4  # (the run's table: 3 decimals)
    # the demo with keys for large populations: a third part to each key on Soundex codes
    steady = subprocess.run([sys.executable, "-m", "benchmarks.key_density", "--data", str(data), "--sizes", "3000",
                             "--sample", "1000", "--job", "benchmarks/steady_keys.toml"], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=300).stdout
    keys = [line.split(" | ")[0].lstrip("| ") for line in steady.splitlines()[2:]]
    assert len(keys) == 9 and "given_name surname (soundex-set) + street_number (exact) + postcode (exact)" in keys
    subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--sizes", "3000", "--sample", "1000", "--workers",
                    "1", "--output", str(output), "--data", str(data), "--job", "benchmarks/steady_keys.toml",
                    "--append"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    section = output.read_text().split("# Scaling")[-1]
    assert "--job benchmarks/steady_keys.toml" in section and "benchmarks/steady_keys.toml's treatments" in section
    assert float(section.split("| 3,000 | 1 | ")[1].split(" | ")[6]) >= 0.97  # F1


def test_dense_blocks_benchmark_runs():
    out = subprocess.run([sys.executable, "-m", "benchmarks.dense_blocks", "--n", "2000", "--dense-block-pairs", "100",
                          "--repeat", "1"], cwd=ROOT, check=True, capture_output=True, text=True, timeout=600).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "scoring" not in line]
    assert [r[0] for r in rows] == ["| pair by pair", "| dense blocks"]
    assert int(rows[0][4]) == 0 and int(rows[1][4]) > 0 and rows[0][5] == rows[1][5]  # dense blocks; links


def test_startup_benchmark_runs_three_ways_with_the_same_links():
    out = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--sizes", "1000"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| 1,000")]
    assert [r[2] for r in rows] == ["no cluster", "cluster of 2 threads in-process", "2 worker processes"] * 2
    # (links compared inside)


def test_entities_benchmark_writes_its_table(tmp_path):
    output = tmp_path / "ENTITIES.md"
    subprocess.run([sys.executable, "-m", "benchmarks.entities", "--sizes", "2000", "--repeat", "2", "--output",
                    str(output)], cwd=ROOT, check=True, capture_output=True, timeout=600)
    rows = [line.split(" | ") for line in output.read_text().splitlines() if line.startswith("| ")
            and "records" not in line]
    assert [r[0] for r in rows] == ["| bigalign_entities", "| splink_entities"]
    assert rows[0][2] == "ok" and float(rows[0][12]) >= 0.98 and float(rows[0][13]) >= 0.98  # pair F1, B-cubed F1
    runs = [float(w) for w in rows[0][4].split(", ")]  # each run's wall time; the median run's shown
    assert len(runs) == 2 and abs(float(rows[0][3]) - min(runs)) <= 0.05  # (of two runs, the faster)
    assert rows[1][2] in ("ok", "not installed (pip install -e '.[bench]')")


def test_shape_benchmark_compares_the_model_with_what_dask_reports():
    # (50k records per side: at 4k the model overstated Dask's bytes 1.6×, too small a run for its shape)
    out = subprocess.run([sys.executable, "-m", "benchmarks.shape", "--n", "50000", "--workers", "2"], cwd=ROOT,
                         check=True, capture_output=True, text=True, timeout=600).stdout
    rows = {r.split(" | ")[0][2:]: r.strip(" |").split(" | ")[1:] for r in out.splitlines() if r.startswith("| ")}
    assert rows["tasks: candidates"][0] == rows["tasks: candidates"][1]  # the partitions the graph chooses
    model, dask = (int(v.replace(",", "")) for v in rows["P2P bytes: all shuffles"][:2])
    assert 0.8 < model / dask < 1.2


def test_movers_benchmark_compares_the_model_with_and_without_groups(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.movers", "--n", "3000", "--movers", "0.3", "--relatives",
                           "0", "--workers", "1", "--data", str(tmp_path)], cwd=ROOT, check=True, capture_output=True,
                          text=True, timeout=600)
    table = done.stdout[done.stdout.index("3,000 × 3,000"):]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| 0.3 | 0 |")]
    assert [r[2] for r in rows[:4]] == ["none", "auto", "home", "distance"]
    assert rows[0][3] == "(none)" and rows[2][3] == "home" and "address" in rows[1][3]
    f1 = {r[2]: float(r[4]) for r in rows}
    # F1: movers found with their address as one comparison, by the job or as the model finds it
    assert f1["home"] > f1["none"] + 0.1 and f1["auto"] > f1["none"] + 0.1


def test_value_sets_benchmark_compares_several_names_with_one(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.value_sets", "--n", "3000", "--workers", "1", "--data",
                           str(tmp_path)], cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in done.stdout.splitlines()
            if line.startswith(("| one |", "| several |"))}
    assert rows["one"][1] == rows["one"][2] == rows["several"][2] == "3,000"  # records: a person each
    assert int(rows["several"][1].replace(",", "")) > 6000  # rows: 1–5 names a person
    # the copies written under another of their person's names are found by the set's best pair
    assert float(rows["several"][8]) > float(rows["one"][8]) + 0.05  # F1


def test_index_benchmark_links_batches_as_full_runs_do(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.index_batches", "--n", "3000", "--batches", "100,500",
                          "--data", str(tmp_path), "--lookups", "20"], cwd=ROOT, check=True, capture_output=True,
                         text=True, timeout=600).stdout
    rows = [line for line in out.splitlines() if re.match(r"\| (100|500) \|", line)]
    assert len(rows) == 2 and all(row.endswith("| yes |") for row in rows)  # (the batch's links: the run's)
    assert "link / full run" in out and re.search(r"Index\.match, one record at a time .*p50 [\d.]+ ms, p99", out)
