"""The run report's charts, written as SVG text.

A report is written at the end of every run, so its charts must cost nothing
next to a small job: drawing them with a plotting library took 4 of the 9
seconds of a 10k × 10k run (imports, text layout, ``tight_layout``). The charts
are few and plain — bars, lines, reference lines, on linear, log or symlog
scales, or categories — so they are written here directly: no dependency, a
few milliseconds each, the same text for the same data.

Every mark is a ``<g id="…">`` that tests (and readers' tools) can find, with a
``<title>`` that a browser shows on hover.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

FONT = 11  # px
CHAR = 0.6 * FONT  # the width of a character, near enough for laying out margins
INK = "#333333"
GRID = "#e6e6e6"


@dataclass
class Axis:
    """An axis: its scale (``linear``, ``log`` of ``base``, or ``symlog``: linear
    through 0, logarithmic beyond ±1), or its ``categories`` (placed at 0, 1, …),
    its label and, when given, its limits."""

    label: str = ""
    scale: str = "linear"
    base: float = 10.0
    categories: Sequence[str] | None = None
    limits: tuple[float, float] | None = None
    rotate: bool = False  # category labels at 30°, for long ones

    def __post_init__(self) -> None:
        if self.scale not in ("linear", "log", "symlog"):
            raise ValueError(f"scale must be 'linear', 'log' or 'symlog', not {self.scale!r}")

    def transform(self, value: float) -> float:
        if self.scale == "log":
            return math.log(value, self.base)
        if self.scale == "symlog":
            return math.copysign(math.log10(1 + abs(value)), value)
        return value

    def floor(self, values: list[float]) -> float:
        """The smallest value a bar may start from on this axis (0 has no place on a log scale)."""
        if self.scale == "log":
            positive = [v for v in values if v > 0]
            return min(positive) / self.base ** 0.25 if positive else 1.0
        return 0.0


@dataclass
class _Mark:
    gid: str
    kind: str  # rect | line | point | vline | hline
    points: list[tuple[float, float]]
    color: str
    title: str = ""
    opacity: float = 1.0
    dashed: bool = False


@dataclass
class Chart:
    """One panel: marks placed in data coordinates on an x and a y axis."""

    title: str = ""
    x: Axis = field(default_factory=Axis)
    y: Axis = field(default_factory=Axis)
    width: int = 640
    height: int = 320
    marks: list[_Mark] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, color)
    note: str = ""  # a line of text in the middle of an empty chart

    # -- marks ----------------------------------------------------------------
    def rect(self, gid: str, x0: float, x1: float, y0: float, y1: float, color: str, title: str = "",
             opacity: float = 1.0) -> None:
        self.marks.append(_Mark(gid, "rect", [(x0, y0), (x1, y1)], color, title, opacity))

    def bars(self, gid: str, x: Iterable[float], heights: Iterable[float], color: str | Sequence[str],
             widths: Sequence[float] | float = 0.8, align: str = "center", label: str = "",
             opacity: float = 1.0) -> None:
        """Vertical bars from 0 (or the log axis' floor), ``gid-0``, ``gid-1``, …"""
        heights = [float(h) for h in heights]
        floor = self.y.floor(heights)
        for k, (left, height) in enumerate(zip(x, heights)):
            width = widths if isinstance(widths, (int, float)) else widths[k]
            start = left - width / 2 if align == "center" else left
            paint = color if isinstance(color, str) else color[k]
            label_x = self.x.categories[k] if self.x.categories else _number(left)
            self.rect(f"{gid}-{k}", start, start + width, floor if self.y.scale == "log" else 0.0, height,
                      paint, f"{label_x}: {_number(height)}", opacity)
        if label:
            self.legend.append((label, color if isinstance(color, str) else color[0]))

    def line(self, gid: str, xs: Iterable[float], ys: Iterable[float], color: str, label: str = "",
             steps: bool = False) -> None:
        """A polyline; ``steps`` holds each value until the next x (the value at a step's right end)."""
        points = [(float(a), float(b)) for a, b in zip(xs, ys)]
        if steps and points:
            stepped = [points[0]]
            for (_, _), (x1, y1) in zip(points, points[1:]):
                stepped += [(stepped[-1][0], y1), (x1, y1)]
            points = stepped
        self.marks.append(_Mark(gid, "line", points, color, label))
        if label:
            self.legend.append((label, color))

    def point(self, gid: str, x: float, y: float, color: str, title: str = "") -> None:
        self.marks.append(_Mark(gid, "point", [(x, y)], color, title))

    def vline(self, gid: str, x: float, color: str, title: str = "", dashed: bool = True) -> None:
        self.marks.append(_Mark(gid, "vline", [(x, math.nan)], color, title, dashed=dashed))

    def hline(self, gid: str, y: float, color: str, title: str = "", dashed: bool = True) -> None:
        self.marks.append(_Mark(gid, "hline", [(math.nan, y)], color, title, dashed=dashed))

    # -- drawing --------------------------------------------------------------
    def _domain(self, axis: Axis, values: list[float], sticky: list[float]) -> tuple[float, float]:
        """The axis' range in transformed units: the data's, widened by 5% on a side unless a bar starts there."""
        if axis.categories is not None:
            return -0.6, len(axis.categories) - 0.4
        if axis.limits is not None:
            return axis.transform(axis.limits[0]), axis.transform(axis.limits[1])
        usable = [v for v in values if math.isfinite(v) and (axis.scale != "log" or v > 0)]
        if not usable:
            return 0.0, 1.0
        low, high = axis.transform(min(usable)), axis.transform(max(usable))
        if high == low:
            low, high = low - 0.5, high + 0.5
        pad = 0.05 * (high - low)
        sticky_t = {axis.transform(v) for v in sticky if axis.scale != "log" or v > 0}
        return (low if low in sticky_t else low - pad), (high if high in sticky_t else high + pad)

    def _ticks(self, axis: Axis, low: float, high: float) -> list[tuple[float, str]]:
        """(position in transformed units, label) of the axis' ticks."""
        if axis.categories is not None:
            return [(float(k), str(c)) for k, c in enumerate(axis.categories)]
        if axis.scale == "linear":
            step = _nice_step((high - low) / 5)
            first = math.ceil(low / step - 1e-9)
            return [(k * step, _number(k * step, step)) for k in range(first, int(math.floor(high / step + 1e-9)) + 1)]
        powers = list(range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1))
        if axis.scale == "symlog":  # 0, then 10, 100, … (transformed: log10(1 + v))
            values = [0.0] + [10.0 ** k for k in range(1, 16) if math.log10(1 + 10.0 ** k) <= high]
            return [(axis.transform(v), _number(v)) for v in values if axis.transform(v) >= low]
        every = max(1, math.ceil(len(powers) / 8))
        return [(float(k), _number(axis.base ** k)) for k in powers if k % every == 0]

    def render(self, left: float = 0.0, top: float = 0.0) -> str:
        """The chart as an SVG group placed at (``left``, ``top``)."""
        xs = [p[0] for m in self.marks for p in m.points]
        ys = [p[1] for m in self.marks for p in m.points]
        sticky_y = [0.0] + [self.y.floor(ys)] if any(m.kind == "rect" for m in self.marks) else []
        x0, x1 = self._domain(self.x, xs, [])
        y0, y1 = self._domain(self.y, ys, sticky_y)
        x_ticks, y_ticks = self._ticks(self.x, x0, x1), self._ticks(self.y, y0, y1)
        y_text = max((len(label) for _, label in y_ticks), default=1)
        x_text = max((len(label) for _, label in x_ticks), default=1) if self.x.rotate else 0
        margin_left = 14 + y_text * CHAR + (FONT + 6 if self.y.label else 0)
        margin_bottom = 22 + x_text * CHAR * 0.5 + (FONT + 6 if self.x.label else 0)
        margin_top = 8 + (FONT + 10 if self.title else 0)
        plot_w = max(40.0, self.width - margin_left - 12)
        plot_h = max(40.0, self.height - margin_top - margin_bottom)

        def px(v: float) -> float:
            t = v if self.x.categories is not None else self.x.transform(v)
            return margin_left + (t - x0) / (x1 - x0) * plot_w

        def py(v: float) -> float:
            t = v if self.y.categories is not None else self.y.transform(v)
            return margin_top + plot_h - (t - y0) / (y1 - y0) * plot_h

        out = [f'<g transform="translate({left:.1f},{top:.1f})" font-family="sans-serif" font-size="{FONT}" '
               f'fill="{INK}">']
        bottom, right = margin_top + plot_h, margin_left + plot_w
        for t, label in x_ticks:  # x ticks and their grid lines
            x = margin_left + (t - x0) / (x1 - x0) * plot_w
            if not margin_left - 0.5 <= x <= right + 0.5:
                continue
            out.append(f'<line x1="{x:.1f}" y1="{margin_top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
            if self.x.rotate:
                out.append(f'<text x="{x:.1f}" y="{bottom + 12:.1f}" text-anchor="end" '
                           f'transform="rotate(-30 {x:.1f} {bottom + 12:.1f})">{html.escape(label)}</text>')
            else:
                out.append(f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle">{html.escape(label)}</text>')
        for t, label in y_ticks:
            y = margin_top + plot_h - (t - y0) / (y1 - y0) * plot_h
            if not margin_top - 0.5 <= y <= bottom + 0.5:
                continue
            out.append(f'<line x1="{margin_left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
            out.append(f'<text x="{margin_left - 4:.1f}" y="{y + FONT * 0.35:.1f}" text-anchor="end">'
                       f'{html.escape(label)}</text>')
        clip = f"clip-{_slug(self)}"
        out.append(f'<clipPath id="{clip}"><rect x="{margin_left:.1f}" y="{margin_top:.1f}" width="{plot_w:.1f}" '
                   f'height="{plot_h:.1f}"/></clipPath><g clip-path="url(#{clip})">')
        for mark in self.marks:
            out.append(self._mark(mark, px, py, margin_left, right, margin_top, bottom))
        out.append("</g>")
        out.append(f'<rect x="{margin_left:.1f}" y="{margin_top:.1f}" width="{plot_w:.1f}" height="{plot_h:.1f}" '
                   f'fill="none" stroke="#999999"/>')
        if self.note:
            out.append(f'<text x="{margin_left + plot_w / 2:.1f}" y="{margin_top + plot_h / 2:.1f}" '
                       f'text-anchor="middle">{html.escape(self.note)}</text>')
        if self.title:
            out.append(f'<text x="{margin_left + plot_w / 2:.1f}" y="{FONT + 6:.1f}" text-anchor="middle" '
                       f'font-size="{FONT + 1}" font-weight="bold">{html.escape(self.title)}</text>')
        if self.x.label:
            out.append(f'<text x="{margin_left + plot_w / 2:.1f}" y="{self.height - 6:.1f}" text-anchor="middle">'
                       f'{html.escape(self.x.label)}</text>')
        if self.y.label:
            cy = margin_top + plot_h / 2
            out.append(f'<text x="{FONT:.1f}" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 {FONT:.1f} '
                       f'{cy:.1f})">{html.escape(self.y.label)}</text>')
        if self.legend:
            width = 30 + max(len(label) for label, _ in self.legend) * CHAR
            lx, ly = right - width - 6, margin_top + 6
            out.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="{width:.1f}" height="{8 + 16 * len(self.legend)}" '
                       f'fill="white" fill-opacity="0.85" stroke="#cccccc"/>')
            for k, (label, color) in enumerate(self.legend):
                y = ly + 12 + 16 * k
                out.append(f'<rect x="{lx + 6:.1f}" y="{y - 5:.1f}" width="14" height="8" fill="{color}"/>')
                out.append(f'<text x="{lx + 24:.1f}" y="{y + 3:.1f}">{html.escape(label)}</text>')
        out.append("</g>")
        return "".join(out)

    def _mark(self, mark: _Mark, px, py, left: float, right: float, top: float, bottom: float) -> str:  # type: ignore[no-untyped-def]
        title = f"<title>{html.escape(mark.title)}</title>" if mark.title else ""
        dash = ' stroke-dasharray="5,4"' if mark.dashed else ""
        if mark.kind == "rect":
            (a, b), (c, d) = mark.points
            xa, xb = sorted((_clamp(px(a), left, right), _clamp(px(c), left, right)))
            ya, yb = sorted((_clamp(py(b), top, bottom), _clamp(py(d), top, bottom)))
            opacity = f' fill-opacity="{mark.opacity}"' if mark.opacity < 1 else ""
            shape = (f'<rect x="{xa:.2f}" y="{ya:.2f}" width="{xb - xa:.2f}" height="{yb - ya:.2f}" '
                     f'fill="{mark.color}"{opacity} stroke="white" stroke-width="0.5"/>')
        elif mark.kind == "line":
            drawn = " ".join(f"{px(a):.2f},{py(b):.2f}" for a, b in mark.points
                             if math.isfinite(a) and math.isfinite(b))
            shape = f'<polyline points="{drawn}" fill="none" stroke="{mark.color}" stroke-width="1.5"/>'
        elif mark.kind == "point":
            (a, b), = mark.points
            shape = f'<circle cx="{px(a):.2f}" cy="{py(b):.2f}" r="4" fill="{mark.color}"/>'
        elif mark.kind == "vline":
            x = px(mark.points[0][0])
            shape = f'<line x1="{x:.2f}" y1="{top:.1f}" x2="{x:.2f}" y2="{bottom:.1f}" stroke="{mark.color}"{dash}/>'
        else:
            y = py(mark.points[0][1])
            shape = f'<line x1="{left:.1f}" y1="{y:.2f}" x2="{right:.1f}" y2="{y:.2f}" stroke="{mark.color}"{dash}/>'
        return f'<g id="{html.escape(mark.gid)}">{title}{shape}</g>'


def svg(charts: Sequence[Chart], columns: int = 1) -> str:
    """Charts laid out in a grid of ``columns`` as one SVG image."""
    rows = math.ceil(len(charts) / columns)
    width = max(c.width for c in charts) * columns
    height = sum(max(c.height for c in charts[r * columns:(r + 1) * columns]) for r in range(rows))
    parts, top = [], 0
    for r in range(rows):
        row = charts[r * columns:(r + 1) * columns]
        for k, chart in enumerate(row):
            parts.append(chart.render(left=k * max(c.width for c in charts), top=top))
        top += max(c.height for c in row)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')


def _slug(chart: Chart) -> str:
    """An id for the chart's clip path, unique in a page: from its first mark (gids are unique) or its title."""
    seed = chart.marks[0].gid if chart.marks else chart.title
    return "".join(c if c.isalnum() else "-" for c in seed)[:40] or "chart"


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low - 1), high + 1)


def _nice_step(raw: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, the first at least ``raw``."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 2.5, 5, 10) if f * power >= raw * (1 - 1e-9))


def _number(value: float, step: float | None = None) -> str:
    """A tick's label: plain digits with thousands separators, as many decimals as the step needs."""
    if step is not None and step < 1:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if round(step / 10.0 ** math.floor(
            math.log10(step)), 6) == 2.5 else 0))
        return f"{value:,.{decimals}f}"
    if abs(value) >= 1 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"
