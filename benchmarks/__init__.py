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
