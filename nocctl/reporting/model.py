"""The presentation model of a report: the numbers of `services.reports.build()` turned into
what a reader sees — titles, key figures, tables of formatted cells, the daily sparkline,
chart geometry and the definitions. The table, Markdown and HTML templates all render this
one model, so they never disagree. Plain dicts and lists only: the templates use
StrictUndefined, so a key missing here fails loudly instead of printing nothing."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nocctl.clock import format_duration
from nocctl.reporting import charts
from nocctl.vocabulary import SEVERITIES

DASH = "—"
TITLES = {
    "mttr": "MTTR — mean time to resolve",
    "mtta": "MTTA — mean time to acknowledge",
    "frequency": "Alert frequency",
    "sla": "SLA compliance",
    "noisy": "Noisy sites",
}
REPORT_TITLES = {"mttr": "MTTR report", "mtta": "MTTA report", "frequency": "Alert frequency report",
                 "sla": "SLA compliance report", "noisy": "Noisy sites report", "weekly": "Weekly NOC report"}
SPARKS = "▁▂▃▄▅▆▇█"
UP, DOWN = "▲", "▼"
# What the model adds to a section's definition (the DESIGN §7 text is in vocabulary).
MORE_DEFINITIONS = {
    "frequency": "A day marked partial is one the window does not cover whole, or that has not ended when the "
                 "report is made: its counts are not comparable with a full day's.",
    "sla": "By client: the same counts for each client. Breached incidents: latest past their target first; "
           "late by = resolved (or closed) − target, or report time − target while still open.",
}
CHART_LIMIT = 15  # bars in one chart; the table next to it lists every row


# ---------------------------------------------------------------- cells

def duration(seconds: float | None) -> str:
    """Two units at most, rounded: 3725 → 1h2m, 396285 → 4d14h, 45.4 → 45s; none → —."""
    if seconds is None:
        return DASH
    value = float(seconds)
    step = 3600 if value >= 86400 else 60 if value >= 3600 else 1
    return format_duration(round(value / step) * step)


def percent(fraction: float | None) -> str:
    return DASH if fraction is None else f"{fraction * 100:.1f}%"


def count(value: int | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def zone_name(at: datetime) -> str:
    """The zone's abbreviation at `at` (IST, CET, EDT, UTC), or UTC±hh:mm where the zone
    has none."""
    name = at.tzname() or ""
    if name and name[0] not in "+-":
        return name
    offset = at.utcoffset() or timedelta()
    sign, minutes = ("-" if offset < timedelta() else "+"), abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def when(text: str | None, zone: ZoneInfo, short: bool = False) -> str:
    """An instant as a reader says it in `zone`, to the minute: "Mon 23 Nov 2026 00:00"
    (short: "Mon 23 Nov 00:00"); none → —."""
    at = instant(text)
    if at is None:
        return DASH
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}" + ("" if short else f" {local:%Y}") + f" {local:%H:%M}"


def span(since: str, until: str, zone: ZoneInfo) -> str:
    """A window in `zone`: "Mon 23 Nov 2026 00:00 – Mon 30 Nov 2026 00:00 IST (Asia/Kolkata)",
    each end with its own abbreviation when a DST change falls inside."""
    start, end = instant(since), instant(until)
    assert start is not None and end is not None
    first, last = zone_name(start.astimezone(zone)), zone_name(end.astimezone(zone))
    named = "" if zone.key in (first, "UTC") else f" ({zone.key})"
    if first == last:
        return f"{when(since, zone)} – {when(until, zone)} {last}{named}"
    return f"{when(since, zone)} {first} – {when(until, zone)} {last}{named}"


def stamp(text: str, zone: ZoneInfo) -> str:
    """One instant with its zone: "Fri 4 Dec 2026 18:07 IST"."""
    at = instant(text)
    assert at is not None
    return f"{when(text, zone)} {zone_name(at.astimezone(zone))}"


def period(since: str, until: str) -> str:
    """"the previous 7 days" for a window of whole days, else "the previous 36h"."""
    start, end = instant(since), instant(until)
    assert start is not None and end is not None
    seconds = (end - start).total_seconds()
    if seconds % 86400 == 0:
        days = int(seconds // 86400)
        return "the previous day" if days == 1 else f"the previous {days} days"
    return f"the previous {duration(seconds)}"


def sparkline(values: Sequence[int]) -> str:
    """One character a value: ▁ for none, and the seven others in equal steps up to the
    peak (█), so a day with a single alert still stands out from an empty one."""
    peak = max(values, default=0)
    top = len(SPARKS) - 1
    return "".join(SPARKS[0] if v <= 0 else SPARKS[max(1, min(top, math.ceil(v * top / peak)))] for v in values)


def _fact(label: str, value: str) -> dict[str, str]:
    """A key figure with no comparison (see `_highlight`)."""
    return {"label": label, "value": value, "change": "", "previous": "", "tone": ""}


STACK_COLUMNS = 5  # a table this wide becomes one card per row on a phone
LONG_COLUMNS = ("title", "type")  # free text or long codes: may break anywhere, never squeezed to nothing


def _table(caption: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], empty: str,
           note: str = "") -> dict:
    """`columns` as (name, "left" | "right"); `note`: a line under the table ("… and 3
    more"); `stack`: wide enough to be shown a card per row on a narrow screen."""
    return {"caption": caption,
            "columns": [{"name": name, "align": align, "long": name in LONG_COLUMNS} for name, align in columns],
            "rows": [list(row) for row in rows], "empty": empty, "note": note,
            "stack": len(columns) >= STACK_COLUMNS}


def _block(chart: dict | None, *tables: dict) -> dict:
    """A chart and the table(s) it draws: kept together on screen and on paper."""
    return {"chart": chart, "tables": list(tables)}


def _severity_class(severity: str) -> str:
    return "sev-" + severity.lower() if severity in SEVERITIES else "bar"


def _section(kind: str, facts, blocks: Sequence[dict], trend, definitions: Mapping[str, str]) -> dict:
    definition = definitions[kind] + (" " + MORE_DEFINITIONS[kind] if kind in MORE_DEFINITIONS else "")
    return {"kind": kind, "title": TITLES[kind], "anchor": kind, "facts": list(facts), "blocks": list(blocks),
            "tables": [t for b in blocks for t in b["tables"]],  # Markdown and text: the tables alone
            "trend": trend, "definition": definition}


# ---------------------------------------------------------------- sections

def _durations(kind: str, data: Mapping[str, Any], definitions) -> dict:
    verb = "resolved" if kind == "mttr" else "acknowledged"
    to = "resolve" if kind == "mttr" else "acknowledge"
    overall = data["overall"]

    def stats_row(label: str, stats: Mapping[str, Any]) -> list[str]:
        return [label, count(stats["count"]), duration(stats["mean_seconds"]), duration(stats["p50_seconds"]),
                duration(stats["p90_seconds"])]

    def columns(first: str):
        return [(first, "left"), (verb, "right"), ("mean", "right"), ("p50", "right"), ("p90", "right")]

    facts = [_fact(verb, count(overall["count"])), _fact("mean", duration(overall["mean_seconds"])),
             _fact("p50", duration(overall["p50_seconds"])), _fact("p90", duration(overall["p90_seconds"]))]
    severities = data["by_severity"]
    clients = data["by_client"]
    by_severity = _table("By severity", columns("severity"),
                         [stats_row("all", overall)] + [stats_row(sev, s) for sev, s in severities.items()],
                         f"No alerts {verb} in the window.")
    by_client = _table("By client", columns("client"), [stats_row(code, s) for code, s in clients.items()],
                       f"No alerts {verb} in the window.")
    blocks = [_block(charts.bars(f"Mean time to {to} by severity",
                                 [(sev, s["mean_seconds"] or 0, duration(s["mean_seconds"]), _severity_class(sev))
                                  for sev, s in severities.items()], f"No alerts {verb} in the window."),
                     by_severity)]
    chart = None
    if clients:
        ranked = sorted(clients.items(), key=lambda kv: (-(kv[1]["mean_seconds"] or 0), kv[0]))
        chart = charts.bars(f"Mean time to {to} by client" + _limited(len(ranked)),
                            [(code, s["mean_seconds"] or 0, duration(s["mean_seconds"]), "bar")
                             for code, s in ranked[:CHART_LIMIT]], "")
    blocks.append(_block(chart, by_client))
    return _section(kind, facts, blocks, None, definitions)


def _limited(total: int) -> str:
    return f" (top {CHART_LIMIT} of {total})" if total > CHART_LIMIT else ""


def _share(part: int, whole: int) -> str:
    return percent(part / whole) if whole else DASH


def _day(entry: Mapping[str, Any], zone: ZoneInfo) -> str:
    """A by-day row's day: "Mon 2026-11-23", and why it is partial when it is."""
    label = entry["day"]
    with contextlib.suppress(ValueError):
        label = f"{datetime.fromisoformat(label):%a} {label}"
    if not entry.get("partial"):
        return label
    start, end = entry.get("since"), entry.get("until")
    parts = []
    if start and when(start, zone)[-5:] != "00:00":
        parts.append("from " + when(start, zone)[-5:])
    if end and when(end, zone)[-5:] != "00:00":
        parts.append("to " + when(end, zone)[-5:])
    return f"{label} (partial{': ' + ', '.join(parts) if parts else ', day not over'})"


def _frequency(data: Mapping[str, Any], definitions) -> dict:
    by_type, by_severity, by_day = data["by_type"], data["by_severity"], data["by_day"]
    zone = ZoneInfo(data["time_zone"])
    alerts = sum(v["alerts"] for v in by_type.values())
    events = sum(v["events"] for v in by_type.values())
    busiest = max(by_day, key=lambda d: d["alerts"], default=None)
    facts = [_fact("alerts", count(alerts)), _fact("events", count(events)),
             _fact("alert types", count(len(by_type))),
             _fact("busiest day",
                   f"{busiest['day']} ({busiest['alerts']:,})" if busiest and busiest["alerts"] else DASH)]
    partial = [d["day"] for d in by_day if d.get("partial")]
    trend = {"label": "alerts per day", "spark": sparkline([d["alerts"] for d in by_day]),
             "first": by_day[0]["day"] if by_day else DASH, "last": by_day[-1]["day"] if by_day else DASH,
             "peak": count(max((d["alerts"] for d in by_day), default=0)),
             "partial": ("partial: " + ", ".join(partial)) if partial else ""}
    none = "No alerts in the window."
    types = list(by_type.items())
    blocks = [
        _block(charts.line(f"Alerts and events per day ({data['time_zone']})", [d["day"] for d in by_day],
                           [("alerts", [d["alerts"] for d in by_day], "alerts"),
                            ("events", [d["events"] for d in by_day], "events")],
                           partial=[bool(d.get("partial")) for d in by_day]),
               _table(f"By day ({data['time_zone']})", [("day", "left"), ("alerts", "right"), ("events", "right")],
                      [[_day(d, zone), count(d["alerts"]), count(d["events"])] for d in by_day], none,
                      "Partial: the window or the clock cut the day short." if partial else "")),
        _block(charts.bars("Alerts by severity", [(sev, v["alerts"], count(v["alerts"]), _severity_class(sev))
                                                  for sev, v in by_severity.items()], none),
               _table("By severity",
                      [("severity", "left"), ("alerts", "right"), ("events", "right"), ("share", "right")],
                      [[sev, count(v["alerts"]), count(v["events"]), _share(v["alerts"], alerts)]
                       for sev, v in by_severity.items()], none)),
        _block(charts.bars("Alerts by type" + _limited(len(types)),
                           [(t, v["alerts"], count(v["alerts"]), "bar") for t, v in types[:CHART_LIMIT]], none),
               _table("By type", [("type", "left"), ("alerts", "right"), ("events", "right"), ("share", "right")],
                      [[t, count(v["alerts"]), count(v["events"]), _share(v["alerts"], alerts)]
                       for t, v in by_type.items()], none)),
    ]
    return _section("frequency", facts, blocks, trend, definitions)


def _sla(data: Mapping[str, Any], definitions, zone: ZoneInfo) -> dict:
    met, breached, pending = data["met"], data["breached"], data["pending"]
    total = met + breached + pending
    facts = [_fact("compliance", percent(data["compliance"])), _fact("met", count(met)),
             _fact("breached", count(breached)), _fact("pending", count(pending))]
    none = "No incidents with an SLA target in the window."
    blocks = [_block(charts.bars("Incidents by outcome", [("met", met, count(met), "ok"),
                                                          ("breached", breached, count(breached), "bad"),
                                                          ("pending", pending, count(pending), "pending")], none),
                     _table("Incidents with an SLA target",
                            [("incidents", "right"), ("met", "right"), ("breached", "right"), ("pending", "right"),
                             ("compliance", "right")],
                            [[count(total), count(met), count(breached), count(pending),
                              percent(data["compliance"])]], ""))]
    clients = data.get("by_client")
    if clients is not None:
        judged = [(code, c) for code, c in clients.items() if c["compliance"] is not None]
        chart = charts.bars("Compliance by client" + _limited(len(judged)),
                            [(code, c["compliance"], percent(c["compliance"]), "ok" if c["breached"] == 0 else "bad")
                             for code, c in sorted(judged, key=lambda kv: (kv[1]["compliance"], kv[0]))[:CHART_LIMIT]],
                            "", scale=1.0) if judged else None
        blocks.append(_block(chart, _table(
            "By client", [("client", "left"), ("met", "right"), ("breached", "right"), ("pending", "right"),
                          ("compliance", "right")],
            [[code, count(c["met"]), count(c["breached"]), count(c["pending"]), percent(c["compliance"])]
             for code, c in clients.items()], none)))
    breaches = data.get("breaches")
    if breaches is not None:
        listed = breaches["incidents"]
        more = breaches["total"] - len(listed)
        blocks.append(_block(None, _table(
            f"Breached incidents ({zone.key})",
            [("incident", "right"), ("title", "left"), ("client", "left"), ("severity", "left"),
             ("target", "left"), ("outcome", "left"), ("late by", "right")],
            [[f"#{i['id']}", i["title"], i["client"] or DASH, i["severity"], when(i["sla_target"], zone, short=True),
              f"open ({i['status'].lower()})" if i["open"] else "resolved " + when(i["resolved_at"], zone, short=True),
              duration(i["late_seconds"])] for i in listed],
            "No incident breached its SLA in the window.",
            f"… and {more:,} more breached incident{'s' if more != 1 else ''}." if more > 0 else "")))
    return _section("sla", facts, blocks, None, definitions)


def _noisy(data: Mapping[str, Any], definitions) -> dict:
    sites, total = data["sites"], data["total_alerts"]
    top = sites[0] if sites else None
    facts = [_fact("alerts", count(total)), _fact("sites listed", count(len(sites))),
             _fact("noisiest site", f"{top['site']} ({percent(top['share'])})" if top else DASH)]
    table = _table("Sites by alerts",
                   [("#", "right"), ("site", "left"), ("client", "left"), ("alerts", "right"), ("events", "right"),
                    ("suppressed", "right"), ("share", "right")],
                   [[str(rank), s["site"], s["client"] or DASH, count(s["alerts"]), count(s["events"]),
                     count(s["suppressed"]), percent(s["share"])] for rank, s in enumerate(sites, 1)],
                   "No alerts at any site in the window.")
    chart = charts.bars("Alerts by site" + _limited(len(sites)),
                        [(s["site"], s["alerts"], f"{s['alerts']:,} ({percent(s['share'])})", "bar")
                         for s in sites[:CHART_LIMIT]], "No alerts at any site in the window.")
    return _section("noisy", facts, [_block(chart, table)], None, definitions)


BUILDERS = {"mttr": lambda d, defs, z: _durations("mttr", d, defs),
            "mtta": lambda d, defs, z: _durations("mtta", d, defs),
            "frequency": lambda d, defs, z: _frequency(d, defs), "sla": _sla,
            "noisy": lambda d, defs, z: _noisy(d, defs)}


def _highlight(label: str, value: str, change: str = "", previous: str = "", tone: str = "") -> dict[str, str]:
    """A key figure: `change` ("▲ +96, +8.4%"), `previous` (its value before) and `tone`
    (better, worse or same) when the previous period is known."""
    return {"label": label, "value": value, "change": change, "previous": previous, "tone": tone}


def _compare(label: str, figure: Mapping[str, Any], show, kind: str, higher_is_better: bool) -> dict[str, str]:
    value, previous, delta = figure["value"], figure["previous"], figure["delta"]
    if delta is None:
        return _highlight(label, show(value), "no previous value" if previous is None and value is not None else "",
                          "" if previous is None else show(previous), "")
    if delta == 0:
        return _highlight(label, show(value), "= no change", show(previous), "same")
    arrow, sign = (UP, "+") if delta > 0 else (DOWN, "−")
    if kind == "count":
        text = f"{sign}{abs(delta):,}" + (f", {sign}{abs(delta) / previous * 100:.1f}%" if previous else "")
    elif kind == "duration":
        text = sign + duration(abs(delta))
    else:  # a fraction: the change in percentage points
        text = f"{sign}{abs(delta) * 100:.1f} pts"
    tone = "better" if (delta > 0) == higher_is_better else "worse"
    return _highlight(label, show(value), f"{arrow} {text}", show(previous), tone)


def _highlights(sections: Mapping[str, Any], kpis: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The weekly report's key figures at a glance, one from each section it has, each
    against the previous period when the document has `kpis`."""
    out = []
    if kpis is not None:
        out += [_compare("alerts", kpis["alerts"], count, "count", False),
                _compare("events", kpis["events"], count, "count", False),
                _compare("MTTA (mean)", kpis["mtta_mean_seconds"], duration, "duration", False),
                _compare("MTTR (mean)", kpis["mttr_mean_seconds"], duration, "duration", False),
                _compare("SLA compliance", kpis["sla_compliance"], percent, "fraction", True)]
    else:
        if "frequency" in sections:
            freq = sections["frequency"]
            out.append(_highlight("alerts", count(sum(v["alerts"] for v in freq["by_type"].values()))))
            out.append(_highlight("events", count(sum(v["events"] for v in freq["by_type"].values()))))
        if "mtta" in sections:
            out.append(_highlight("MTTA (mean)", duration(sections["mtta"]["overall"]["mean_seconds"])))
        if "mttr" in sections:
            out.append(_highlight("MTTR (mean)", duration(sections["mttr"]["overall"]["mean_seconds"])))
        if "sla" in sections:
            out.append(_highlight("SLA compliance", percent(sections["sla"]["compliance"])))
    if "noisy" in sections:
        sites = sections["noisy"]["sites"]
        out.append(_highlight("noisiest site", sites[0]["site"] if sites else DASH))
    return out


def view(document: Mapping[str, Any], report: str, definitions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The presentation model of `report` (a section or `weekly`) from a built document."""
    if definitions is None:
        from nocctl.vocabulary import REPORT_DEFINITIONS as definitions
    sections = document["sections"]
    zone = ZoneInfo(document["time_zone"])
    since, until = document["window"]["since"], document["window"]["until"]
    kpis = document.get("kpis") if report == "weekly" else None
    return {
        "report": report,
        "title": REPORT_TITLES[report],
        "window": {"since": since, "until": until, "text": span(since, until, zone)},
        "time_zone": document["time_zone"],
        "daily": "frequency" in sections,  # the only section counting days in the time zone
        "client": document["client"],
        "scope": f"client {document['client']}" if document["client"] else "all clients",
        "generated_at": document["generated_at"],
        "generated": stamp(document["generated_at"], zone),
        "highlights": _highlights(sections, kpis) if report == "weekly" else [],
        "compared": (f"Change against {period(kpis['previous_window']['since'], kpis['previous_window']['until'])}: "
                     + span(kpis["previous_window"]["since"], kpis["previous_window"]["until"], zone))
                    if kpis else "",
        "sections": [BUILDERS[kind](data, definitions, zone) for kind, data in sections.items()],
    }
