"""The report's charts, written as SVG text: marks where the data puts them, ticks a reader can use."""

import re
import xml.etree.ElementTree as ET

import pytest

from bigalign.charts import Axis, Chart, _nice_step, _number, svg

NS = {"s": "http://www.w3.org/2000/svg"}


def _rects(text: str) -> dict[str, dict]:
    root = ET.fromstring(text)
    return {g.get("id"): g.find("s:rect", NS).attrib for g in root.iter("{http://www.w3.org/2000/svg}g")
            if g.get("id") and g.find("s:rect", NS) is not None}


def test_bars_stand_on_zero_with_heights_in_proportion():
    chart = Chart("t", x=Axis(categories=["a", "b", "c"]), y=Axis("n"))
    chart.bars("bar", range(3), [1.0, 2.0, 4.0], "#000")
    rects = _rects(svg([chart]))
    assert list(rects) == ["bar-0", "bar-1", "bar-2"]
    bottoms = {round(float(r["y"]) + float(r["height"]), 1) for r in rects.values()}
    assert len(bottoms) == 1  # all from the same baseline, 0
    heights = [float(rects[f"bar-{k}"]["height"]) for k in range(3)]
    assert heights == pytest.approx([heights[0], 2 * heights[0], 4 * heights[0]], rel=1e-3)
    assert '<title>b: 2</title>' in svg([chart])  # the value on hover


def test_log_axis_equal_ratios_are_equal_lengths_and_ticks_are_powers():
    chart = Chart(x=Axis(categories=["a", "b", "c"]), y=Axis(scale="log"))
    chart.bars("bar", range(3), [10.0, 100.0, 1000.0], "#000")
    text = svg([chart])
    tops = [float(_rects(text)[f"bar-{k}"]["y"]) for k in range(3)]
    assert tops[0] - tops[1] == pytest.approx(tops[1] - tops[2], abs=0.02)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', text)
    assert labels == ["10", "100", "1,000"]


def test_ticks_and_numbers():
    assert [_nice_step(v) for v in (0.07, 0.3, 2.2, 24, 400)] == [0.1, 0.5, 2.5, 25, 500]
    assert _number(1024.0) == "1,024" and _number(0.25, 0.05) == "0.25" and _number(0.5, 0.25) == "0.50"
    assert Chart()._ticks(Axis(), 0.0, 1.02) == [(0.0, "0.00"), (0.25, "0.25"), (0.5, "0.50"), (0.75, "0.75"),
                                                 (1.0, "1.00")]
    assert [label for _, label in Chart()._ticks(Axis(), -0.3, 2.1)] == ["0.0", "0.5", "1.0", "1.5", "2.0"]
    symlog = Axis(scale="symlog")
    assert [label for _, label in Chart()._ticks(symlog, 0.0, symlog.transform(5000))] == ["0", "10", "100", "1,000"]
    with pytest.raises(ValueError, match="scale must be"):
        Axis(scale="logit")


def test_same_data_same_text_and_marks_are_found_by_id():
    def draw() -> str:
        chart = Chart("quality", x=Axis("threshold"), y=Axis(limits=(0, 1.02)))
        chart.line("quality-f1", [0, 0.5, 1], [0.2, 0.9, 0.4], "#0a0", label="f1", steps=True)
        chart.point("quality-best", 0.5, 0.9, "black")
        chart.vline("quality-threshold", 0.4, "#999")
        return svg([chart, Chart("empty", note="nothing here")], columns=2)

    text = draw()
    assert text == draw()
    ET.fromstring(text)  # well-formed
    for gid in ("quality-f1", "quality-best", "quality-threshold"):
        assert f'<g id="{gid}">' in text
    # steps: each value held until the next x, so 2 points more per step
    polyline = re.search(r'<polyline points="([^"]+)"', text).group(1).split()
    assert len(polyline) == 5
    assert "nothing here" in text and 'width="1280"' in text
