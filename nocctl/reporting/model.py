"""The presentation model of a report: the numbers of `services.reports.build()` turned into
what a reader sees — titles, key figures, tables of formatted cells, the daily sparkline,
chart geometry and the definitions. The table, Markdown and HTML templates all render this
one model, so they never disagree. Plain dicts and lists only: the templates use
StrictUndefined, so a key missing here fails loudly instead of printing nothing."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

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


def sparkline(values: Sequence[int]) -> str:
    """One character a value: ▁ for none, and the seven others in equal steps up to the
    peak (█), so a day with a single alert still stands out from an empty one."""
    peak = max(values, default=0)
    top = len(SPARKS) - 1
    return "".join(SPARKS[0] if v <= 0 else SPARKS[max(1, min(top, math.ceil(v * top / peak)))] for v in values)


def _fact(label: str, value: str) -> dict[str, str]:
    return {"label": label, "value": value}


def _table(caption: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], empty: str) -> dict:
    """`columns` as (name, "left" | "right")."""
    return {"caption": caption, "columns": [{"name": name, "align": align} for name, align in columns],
            "rows": [list(row) for row in rows], "empty": empty}


def _severity_class(severity: str) -> str:
    return "sev-" + severity.lower() if severity in SEVERITIES else "bar"


def _section(kind: str, facts, tables, charts_, trend, definitions: Mapping[str, str]) -> dict:
    return {"kind": kind, "title": TITLES[kind], "anchor": kind, "facts": list(facts), "tables": list(tables),
            "charts": list(charts_), "trend": trend, "definition": definitions[kind]}


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
    tables = [
        _table("By severity", columns("severity"),
               [stats_row("all", overall)] + [stats_row(sev, s) for sev, s in severities.items()],
               f"No alerts {verb} in the window."),
        _table("By client", columns("client"), [stats_row(code, s) for code, s in clients.items()],
               f"No alerts {verb} in the window."),
    ]
    graphs = [charts.bars(f"Mean time to {to} by severity",
                          [(sev, s["mean_seconds"] or 0, duration(s["mean_seconds"]), _severity_class(sev))
                           for sev, s in severities.items()], f"No alerts {verb} in the window.")]
    if clients:
        ranked = sorted(clients.items(), key=lambda kv: (-(kv[1]["mean_seconds"] or 0), kv[0]))
        graphs.append(charts.bars(f"Mean time to {to} by client" + _limited(len(ranked)),
                                  [(code, s["mean_seconds"] or 0, duration(s["mean_seconds"]), "bar")
                                   for code, s in ranked[:CHART_LIMIT]], ""))
    return _section(kind, facts, tables, graphs, None, definitions)


def _limited(total: int) -> str:
    return f" (top {CHART_LIMIT} of {total})" if total > CHART_LIMIT else ""


def _share(part: int, whole: int) -> str:
    return percent(part / whole) if whole else DASH


def _frequency(data: Mapping[str, Any], definitions) -> dict:
    by_type, by_severity, by_day = data["by_type"], data["by_severity"], data["by_day"]
    alerts = sum(v["alerts"] for v in by_type.values())
    events = sum(v["events"] for v in by_type.values())
    busiest = max(by_day, key=lambda d: d["alerts"], default=None)
    facts = [_fact("alerts", count(alerts)), _fact("events", count(events)),
             _fact("alert types", count(len(by_type))),
             _fact("busiest day",
                   f"{busiest['day']} ({busiest['alerts']:,})" if busiest and busiest["alerts"] else DASH)]
    trend = {"label": "alerts per day", "spark": sparkline([d["alerts"] for d in by_day]),
             "first": by_day[0]["day"] if by_day else DASH, "last": by_day[-1]["day"] if by_day else DASH,
             "peak": count(max((d["alerts"] for d in by_day), default=0))}
    none = "No alerts in the window."
    tables = [
        _table(f"By day ({data['time_zone']})", [("day", "left"), ("alerts", "right"), ("events", "right")],
               [[d["day"], count(d["alerts"]), count(d["events"])] for d in by_day], none),
        _table("By severity", [("severity", "left"), ("alerts", "right"), ("events", "right"), ("share", "right")],
               [[sev, count(v["alerts"]), count(v["events"]), _share(v["alerts"], alerts)]
                for sev, v in by_severity.items()], none),
        _table("By type", [("type", "left"), ("alerts", "right"), ("events", "right"), ("share", "right")],
               [[t, count(v["alerts"]), count(v["events"]), _share(v["alerts"], alerts)] for t, v in by_type.items()],
               none),
    ]
    types = list(by_type.items())
    graphs = [
        charts.line(f"Alerts and events per day ({data['time_zone']})", [d["day"] for d in by_day],
                    [("alerts", [d["alerts"] for d in by_day], "alerts"),
                     ("events", [d["events"] for d in by_day], "events")]),
        charts.bars("Alerts by severity", [(sev, v["alerts"], count(v["alerts"]), _severity_class(sev))
                                           for sev, v in by_severity.items()], none),
        charts.bars("Alerts by type" + _limited(len(types)),
                    [(t, v["alerts"], count(v["alerts"]), "bar") for t, v in types[:CHART_LIMIT]], none),
    ]
    return _section("frequency", facts, tables, graphs, trend, definitions)


def _sla(data: Mapping[str, Any], definitions) -> dict:
    met, breached, pending = data["met"], data["breached"], data["pending"]
    total = met + breached + pending
    facts = [_fact("compliance", percent(data["compliance"])), _fact("met", count(met)),
             _fact("breached", count(breached)), _fact("pending", count(pending))]
    tables = [_table("Incidents with an SLA target",
                     [("incidents", "right"), ("met", "right"), ("breached", "right"), ("pending", "right"),
                      ("compliance", "right")],
                     [[count(total), count(met), count(breached), count(pending), percent(data["compliance"])]], "")]
    graphs = [charts.bars("Incidents by outcome", [("met", met, count(met), "ok"),
                                                   ("breached", breached, count(breached), "bad"),
                                                   ("pending", pending, count(pending), "pending")],
                          "No incidents with an SLA target in the window.")]
    return _section("sla", facts, tables, graphs, None, definitions)


def _noisy(data: Mapping[str, Any], definitions) -> dict:
    sites, total = data["sites"], data["total_alerts"]
    top = sites[0] if sites else None
    facts = [_fact("alerts", count(total)), _fact("sites listed", count(len(sites))),
             _fact("noisiest site", f"{top['site']} ({percent(top['share'])})" if top else DASH)]
    tables = [_table("Sites by alerts",
                     [("#", "right"), ("site", "left"), ("client", "left"), ("alerts", "right"), ("events", "right"),
                      ("suppressed", "right"), ("share", "right")],
                     [[str(rank), s["site"], s["client"] or DASH, count(s["alerts"]), count(s["events"]),
                       count(s["suppressed"]), percent(s["share"])] for rank, s in enumerate(sites, 1)],
                     "No alerts at any site in the window.")]
    graphs = [charts.bars("Alerts by site" + _limited(len(sites)),
                          [(s["site"], s["alerts"], f"{s['alerts']:,} ({percent(s['share'])})", "bar")
                           for s in sites[:CHART_LIMIT]], "No alerts at any site in the window.")]
    return _section("noisy", facts, tables, graphs, None, definitions)


BUILDERS = {"mttr": lambda d, defs: _durations("mttr", d, defs), "mtta": lambda d, defs: _durations("mtta", d, defs),
            "frequency": _frequency, "sla": _sla, "noisy": _noisy}


def _highlights(sections: Mapping[str, Any]) -> list[dict[str, str]]:
    """The weekly report's key figures at a glance, one from each section it has."""
    out = []
    if "frequency" in sections:
        freq = sections["frequency"]
        out.append(_fact("alerts", count(sum(v["alerts"] for v in freq["by_type"].values()))))
        out.append(_fact("events", count(sum(v["events"] for v in freq["by_type"].values()))))
    if "mtta" in sections:
        out.append(_fact("MTTA (mean)", duration(sections["mtta"]["overall"]["mean_seconds"])))
    if "mttr" in sections:
        out.append(_fact("MTTR (mean)", duration(sections["mttr"]["overall"]["mean_seconds"])))
    if "sla" in sections:
        out.append(_fact("SLA compliance", percent(sections["sla"]["compliance"])))
    if "noisy" in sections:
        sites = sections["noisy"]["sites"]
        out.append(_fact("noisiest site", sites[0]["site"] if sites else DASH))
    return out


def view(document: Mapping[str, Any], report: str, definitions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The presentation model of `report` (a section or `weekly`) from a built document."""
    if definitions is None:
        from nocctl.vocabulary import REPORT_DEFINITIONS as definitions
    sections = document["sections"]
    return {
        "report": report,
        "title": REPORT_TITLES[report],
        "window": {"since": document["window"]["since"], "until": document["window"]["until"]},
        "time_zone": document["time_zone"],
        "daily": "frequency" in sections,  # the only section counting days in the time zone
        "client": document["client"],
        "scope": f"client {document['client']}" if document["client"] else "all clients",
        "generated_at": document["generated_at"],
        "highlights": _highlights(sections) if report == "weekly" else [],
        "sections": [BUILDERS[kind](data, definitions) for kind, data in sections.items()],
    }
