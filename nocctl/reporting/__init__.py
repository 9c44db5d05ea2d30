"""Rendering of the reports (DESIGN §7): the data of `services.reports.build()` as a
terminal table, JSON, CSV, Markdown or one self-contained HTML file.

Every format renders from the same document; the human ones (table, markdown, html) go
through one presentation model (`model.py`) and a Jinja2 template in `reports/templates/`,
so they show the same numbers, the same way, with the definition under each section.
Only the standard library is imported here: the CLI imports this module for `--help`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMATS = ("table", "json", "csv", "markdown", "html")
SECTIONS = ("mttr", "mtta", "frequency", "sla", "noisy")
REPORTS = SECTIONS + ("weekly",)
TEMPLATES = {"table": "report.txt", "markdown": "report.md", "html": "report.html"}
# `-o FILE` without --format: the format its extension names.
EXTENSIONS = {".json": "json", ".csv": "csv", ".md": "markdown", ".markdown": "markdown", ".html": "html",
              ".htm": "html", ".txt": "table"}


def sections_of(report: str) -> tuple[str, ...]:
    """The sections of a report: itself, or all five for `weekly`."""
    if report == "weekly":
        return SECTIONS
    if report not in SECTIONS:
        raise ValueError(f"unknown report {report!r}")
    return (report,)


def format_for(path: str | None) -> str | None:
    """The format a file name implies (`weekly.html` → html), or None."""
    if not path or path == "-":
        return None
    lowered = path.lower()
    return next((fmt for ext, fmt in EXTENSIONS.items() if lowered.endswith(ext)), None)


def render(document: Mapping[str, Any], report: str, fmt: str) -> str:
    """The text of `report` (a section name or `weekly`) from `document`, the value of
    `services.reports.build()`, in `fmt`. JSON of one report is exactly its section's data;
    of `weekly`, the whole document."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    sections_of(report)
    if fmt == "json":
        from nocctl.output import to_json

        return to_json(document if report == "weekly" else document["sections"][report]) + "\n"
    if fmt == "csv":
        from nocctl.reporting.flat import render_csv

        return render_csv(document, report)
    from nocctl.reporting.model import view
    from nocctl.reporting.templating import render_template

    text = render_template(fmt, TEMPLATES[fmt], view(document, report))
    return text if text.endswith("\n") else text + "\n"  # a terminal prompt must not follow on its line
