"""Geometry of the inline SVG charts of the HTML report. Only numbers and the labels to
print are computed here; `report.html` draws the elements, so every label goes through
Jinja2's autoescaping like the rest of the page. The charts scale with their `viewBox`."""
from __future__ import annotations

import math
from collections.abc import Sequence

WIDTH = 440
CHAR = 8.0  # generous width of a 12px character (codes are mostly capitals), to size value columns
LABEL_CHAR = 8.8  # the same for a label left of its bar: capitals like W, O, M are wider still
BAR, GAP, PAD = 18, 8, 4


SIDE_LABEL = 20  # characters: longer labels go on a line of their own above the bar
LINE_CHARS = 48  # characters of a label line above a bar (the chart is WIDTH wide)
LINE = 15  # height of a label line above a bar


def wrap_label(label: str, size: int = LINE_CHARS) -> list[str]:
    """A long label as lines of at most `size` characters, broken after `_`, `-`, `.`, `/`
    or a space when one is near the end of a line, anywhere otherwise: the whole label is
    printed, never cut."""
    lines = []
    rest = label
    while len(rest) > size:
        cut = max(rest.rfind(ch, 0, size) for ch in "_-./ ")
        cut = cut + 1 if cut >= size // 2 else size
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines + [rest] if rest or not lines else lines


def bars(title: str, items: Sequence[tuple[str, float, str, str]], empty_text: str,
         scale: float | None = None) -> dict:
    """Horizontal bars: `items` as (label, value, value as text, css class), scaled to the
    largest value, or to `scale` (a fraction's 1.0: a 25% bar is a quarter of the track).
    Short labels sit left of their bar; when any label is longer than SIDE_LABEL characters
    every label goes above its bar, wrapped, so nothing is cut (on screen or on paper)."""
    items = list(items)
    stacked = any(len(str(label)) > SIDE_LABEL for label, *_ in items)
    value_width = min(max([len(text) for _, _, text, _ in items] + [3]) * CHAR + 10, 140)
    label_width = 0.0 if stacked else max([len(str(label)) for label, *_ in items] + [4]) * LABEL_CHAR + 12
    plot = WIDTH - label_width - value_width
    peak = scale or max((float(value or 0) for _, value, _, _ in items), default=0) or 1.0
    out = []
    y = PAD
    for label, value, text, cls in items:
        amount = max(float(value or 0), 0.0)
        width = plot * amount / peak
        if amount > 0:
            width = max(width, 1.0)
        if stacked:
            wrapped = wrap_label(str(label))
            lines = [{"text": line, "y": _n(y + LINE * k + LINE / 2)} for k, line in enumerate(wrapped)]
            y += LINE * len(wrapped) + 2
        else:
            lines = [{"text": str(label), "y": _n(y + BAR / 2)}]
        out.append({"label": str(label), "text": text, "cls": cls, "y": _n(y), "mid": _n(y + BAR / 2),
                    "width": _n(width), "value_x": _n(label_width + width + 6), "lines": lines})
        y += BAR + GAP
    return {"kind": "bars", "title": title, "width": WIDTH, "height": _n(y - GAP + PAD if items else 2 * PAD),
            "label_x": 0 if stacked else _n(label_width - 8), "anchor": "start" if stacked else "end",
            "x0": _n(label_width), "plot": _n(plot), "bar": BAR, "bars": out, "empty": not items,
            "empty_text": empty_text}


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
         height: int = 220, partial: Sequence[bool] = ()) -> dict:
    """A daily trend: one polyline per series (name, values per day, css class) over the
    days, the first series shaded, dots with a tooltip while there are few enough days.
    `partial` (per day): a band behind each day the window or the clock cut short, its dots
    hollow, so a short last day does not read as a drop."""
    left, right, top, bottom = 44, WIDTH - 22, 12, height - 30  # room for the last day's label
    n = len(days)
    peak = max((float(v) for _, values, _ in series for v in values), default=0)
    ymax, step = nice_top(peak)

    def x(i: int) -> float:
        return left + (right - left) * (i / (n - 1) if n > 1 else 0.5)

    def y(value: float) -> float:
        return bottom - (bottom - top) * (float(value) / ymax)

    def is_partial(i: int) -> bool:
        return bool(partial[i]) if i < len(partial) else False

    half = (right - left) / (2 * (n - 1)) if n > 1 else (right - left) / 2
    bands = [{"x": _n(max(left, x(i) - half)), "width": _n(min(right, x(i) + half) - max(left, x(i) - half)),
              "title": f"{days[i]}: partial day"} for i in range(n) if is_partial(i)]
    lines = []
    for name, values, cls in series:
        points = [(x(i), y(v)) for i, v in enumerate(values)]
        lines.append({"name": name, "cls": cls, "points": " ".join(f"{_n(px)},{_n(py)}" for px, py in points),
                      "dots": [{"x": _n(px), "y": _n(py), "partial": is_partial(i),
                                "title": f"{days[i]}: {int(values[i]):,} {name}"
                                         + (" (partial day)" if is_partial(i) else "")}
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
            "bands": bands, "empty": n == 0, "empty_text": "No days in the window."}


def _n(value: float) -> float | int:
    """Coordinates with one decimal (and no `.0`), to keep the SVG small."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value
