"""CSV of the reports: one flat table per report, numbers raw (seconds, fractions), blanks
for none. Every row says what it counts in `scope` and `key` (`overall` has no key), so the
weekly report is the five tables stacked under a leading `report` column, each row filling
the columns of its own report."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from nocctl.reporting import sections_of

STATS = ("count", "mean_seconds", "p50_seconds", "p90_seconds")
COLUMNS = {
    "mttr": ("scope", "key", *STATS),
    "mtta": ("scope", "key", *STATS),
    "frequency": ("scope", "key", "alerts", "events"),
    "sla": ("scope", "key", "met", "breached", "pending", "compliance"),
    "noisy": ("scope", "key", "client", "alerts", "events", "suppressed", "share"),
}
WEEKLY = ("report", "scope", "key", *STATS, "alerts", "events", "client", "suppressed", "share", "met", "breached",
          "pending", "compliance")


def rows(kind: str, data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    if kind in ("mttr", "mtta"):
        yield {"scope": "overall", "key": "", **data["overall"]}
        for sev, stats in data["by_severity"].items():
            yield {"scope": "severity", "key": sev, **stats}
        for code, stats in data["by_client"].items():
            yield {"scope": "client", "key": code, **stats}
    elif kind == "frequency":
        for scope, part in (("type", data["by_type"]), ("severity", data["by_severity"])):
            for name, counts in part.items():
                yield {"scope": scope, "key": name, "alerts": counts["alerts"], "events": counts["events"]}
        for day in data["by_day"]:
            yield {"scope": "day", "key": day["day"], "alerts": day["alerts"], "events": day["events"]}
    elif kind == "sla":
        yield {"scope": "overall", "key": "", **{k: data[k] for k in ("met", "breached", "pending", "compliance")}}
        for code, counts in data.get("by_client", {}).items():
            yield {"scope": "client", "key": code, **counts}
    elif kind == "noisy":
        yield {"scope": "overall", "key": "", "alerts": data["total_alerts"]}
        for site in data["sites"]:
            yield {"scope": "site", "key": site["site"], **{k: site[k] for k in COLUMNS["noisy"][2:]}}
    else:
        raise ValueError(f"unknown report {kind!r}")


def _cell(value: Any) -> Any:
    """Blank for none; a string a spreadsheet would run as a formula neutralised (OWASP:
    `output.csv_cell`), numbers raw."""
    from nocctl.output import csv_cell

    return "" if value is None else csv_cell(value)


def render_csv(document: Mapping[str, Any], report: str) -> str:
    from nocctl.output import csv_text

    sections = document["sections"]
    if report == "weekly":
        lines = ({"report": kind, **row} for kind in sections_of(report) for row in rows(kind, sections[kind]))
        return csv_text(WEEKLY, ([_cell(line.get(c)) for c in WEEKLY] for line in lines))
    columns = COLUMNS[report]
    return csv_text(columns, ([_cell(row.get(c)) for c in columns] for row in rows(report, sections[report])))
