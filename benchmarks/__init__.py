"""Benchmarks of bigalign: kernels and scaling, run as modules, printing Markdown."""

from __future__ import annotations


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a Markdown table (numbers with thousands separators)."""
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def measured_process(command: list[str], cwd: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of the process tree of ``command`` (run as the ``bigalign`` command sets
    its process; warnings off); its stderr's end in the error when it fails."""
    import os
    import subprocess
    import tempfile
    import time

    import psutil

    from bigalign.__main__ import PROCESS_ENVIRONMENT

    clock = time.perf_counter()
    with tempfile.TemporaryFile() as errors:  # (a file, not a pipe: a full pipe would stop the process)
        process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=cwd,
                               env={**PROCESS_ENVIRONMENT, **os.environ, "PYTHONWARNINGS": "ignore"})
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, sum(p.memory_info().rss for p in [process] + process.children(recursive=True)))
            except psutil.Error:
                pass
            time.sleep(0.05)
        if process.returncode:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command[1:])} failed ({process.returncode}): "
                               f"{errors.read().decode()[-2000:]}")
    return time.perf_counter() - clock, peak / 2**20
