"""Geometry of the inline SVG charts of the HTML report. Only numbers and the labels to
print are computed here; `report.html` draws the elements, so every label goes through
Jinja2's autoescaping like the rest of the page. The charts scale with their `viewBox`."""
from __future__ import annotations

import math
from collections.abc import Sequence

WIDTH = 440
CHAR = 7.2  # rough width of a 12px character, to size the label columns
BAR, GAP, PAD = 18, 8, 4
MAX_LABEL = 24  # characters of a bar label before it is cut (the full label is its tooltip)


def _cut(label: str, size: int = MAX_LABEL) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def bars(title: str, items: Sequence[tuple[str, float, str, str]], empty_text: str) -> dict:
    """Horizontal bars: `items` as (label, value, value as text, css class)."""
    items = list(items)
    labels = [_cut(str(label)) for label, *_ in items]
    label_width = min(max([len(s) for s in labels] + [4]) * CHAR + 12, MAX_LABEL * CHAR + 12)
    value_width = min(max([len(text) for _, _, text, _ in items] + [3]) * CHAR + 10, 140)
    plot = WIDTH - label_width - value_width
    peak = max((float(value or 0) for _, value, _, _ in items), default=0) or 1.0
    out = []
    for i, ((label, value, text, cls), shown) in enumerate(zip(items, labels, strict=True)):
        amount = max(float(value or 0), 0.0)
        width = plot * amount / peak
        if amount > 0:
            width = max(width, 1.0)
        y = PAD + i * (BAR + GAP)
        out.append({"label": str(label), "short": shown, "text": text, "cls": cls, "y": _n(y),
                    "mid": _n(y + BAR / 2), "width": _n(width), "value_x": _n(label_width + width + 6)})
    return {"kind": "bars", "title": title, "width": WIDTH, "height": _n(2 * PAD + len(items) * (BAR + GAP) - GAP),
            "label_x": _n(label_width - 8), "x0": _n(label_width), "plot": _n(plot), "bar": BAR, "bars": out,
            "empty": not items, "empty_text": empty_text}


def nice_top(peak: float, ticks: int = 4) -> tuple[float, float]:
    """(top of the axis, tick step): a 1-2-5 step with at most `ticks` steps to cover `peak`."""
    if peak <= 0:
        return 1.0, 1.0
    raw = peak / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1.0)  # counts: no fractional ticks
    return step * math.ceil(peak / step), step


def line(title: str, days: Sequence[str], series: Sequence[tuple[str, Sequence[float], str]],
         height: int = 220) -> dict:
    """A daily trend: one polyline per series (name, values per day, css class) over the
    days, the first series shaded, dots with a tooltip while there are few enough days."""
    left, right, top, bottom = 44, WIDTH - 12, 12, height - 30
    n = len(days)
    peak = max((float(v) for _, values, _ in series for v in values), default=0)
    ymax, step = nice_top(peak)

    def x(i: int) -> float:
        return left + (right - left) * (i / (n - 1) if n > 1 else 0.5)

    def y(value: float) -> float:
        return bottom - (bottom - top) * (float(value) / ymax)

    lines = []
    for name, values, cls in series:
        points = [(x(i), y(v)) for i, v in enumerate(values)]
        lines.append({"name": name, "cls": cls, "points": " ".join(f"{_n(px)},{_n(py)}" for px, py in points),
                      "dots": [{"x": _n(px), "y": _n(py), "title": f"{days[i]}: {int(values[i]):,} {name}"}
                               for i, (px, py) in enumerate(points)] if n <= 62 else []})
    area = ""
    if n > 1 and series:
        first = [(x(i), y(v)) for i, v in enumerate(series[0][1])]
        area = (f"M{_n(first[0][0])},{_n(bottom)} " + " ".join(f"L{_n(px)},{_n(py)}" for px, py in first)
                + f" L{_n(first[-1][0])},{_n(bottom)} Z")
    every = max(1, math.ceil(n / 8))
    x_ticks = [{"x": _n(x(i)), "label": days[i][5:]} for i in range(0, n, every)]
    y_ticks = [{"y": _n(y(k * step)), "label": f"{int(k * step):,}"} for k in range(round(ymax / step) + 1)]
    return {"kind": "line", "title": title, "width": WIDTH, "height": height, "left": left, "right": right,
            "top": top, "bottom": bottom, "series": lines, "area": area, "x_ticks": x_ticks, "y_ticks": y_ticks,
            "empty": n == 0, "empty_text": "No days in the window."}


def _n(value: float) -> float | int:
    """Coordinates with one decimal (and no `.0`), to keep the SVG small."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value
