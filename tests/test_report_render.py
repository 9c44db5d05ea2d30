"""`nocctl report …` (DESIGN §7): every report in every format from the same data, the JSON
shapes, the templates (StrictUndefined, escaping, a self-contained HTML file), exports with
-o (noc:export, the EXPORT_DATA audit row), the error paths, and a client-scoped viewer's
numbers — against the backend under test."""
from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re

import pytest

from ingest_helpers import ORG, alert, ndjson, rows

NOW = "2026-03-01T10:00:00Z"
REPORTS = ("mttr", "mtta", "frequency", "sla", "noisy", "weekly")
FORMATS = ("table", "json", "csv", "markdown", "html")


def at(day: int, time: str) -> str:
    return f"2026-02-{day:02d}T{time}Z" if day <= 28 else f"2026-03-{day - 28:02d}T{time}Z"


@pytest.fixture
def noc(admin_cli, monkeypatch):
    """The example organisation and a small week of alerts and incidents, the report made at NOW.

    In the window [2026-02-22T10:00Z, NOW):
    - ACME-BLR-WF DEVICE_OFFLINE HIGH at 02-27 10:00 (+ one duplicate), acknowledged at +15m,
      resolved at +1h;
    - ACME-BLR-KOR DOOR_FORCED MEDIUM at 02-27 11:00, acknowledged at +45m, resolved at +3h;
    - GLOBEX-PNQ POWER_FAIL LOW at 02-28 08:00, acknowledged at +10m, resolved at +30m;
    - GLOBEX-BOM-WH1 TEMP_HIGH LOW at 02-26 20:00 (02-27 01:30 in Asia/Kolkata), open;
    - GLOBEX-PNQ POWER_FAIL INFO at 02-28 09:00, open;
    and ACME-MYS DEVICE_OFFLINE HIGH at 02-10, before the window.
    Incidents (SLA targets from the default config: HIGH 8h, LOW 72h): ACME HIGH created 02-27
    00:00 and resolved at 02:00 (met), GLOBEX HIGH created 02-28 00:00 and open (breached), ACME
    LOW created 03-01 08:00 (pending)."""
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    records = [
        alert("DEVICE_OFFLINE", "ACME-BLR-WF", "cam-01", at(27, "10:00:00"), dedup_key="k1"),
        alert("DEVICE_OFFLINE", "ACME-BLR-WF", "cam-01", at(27, "10:05:00"), dedup_key="k1"),
        alert("DOOR_FORCED", "ACME-BLR-KOR", "door-2", at(27, "11:00:00"), severity="MEDIUM", dedup_key="k2"),
        alert("POWER_FAIL", "GLOBEX-PNQ", "ups-1", at(28, "08:00:00"), severity="LOW", dedup_key="k3"),
        alert("TEMP_HIGH", "GLOBEX-BOM-WH1", "hvac-3", at(26, "20:00:00"), severity="LOW", dedup_key="k4"),
        alert("POWER_FAIL", "GLOBEX-PNQ", "ups-2", at(28, "09:00:00"), severity="INFO", dedup_key="k5"),
        alert("DEVICE_OFFLINE", "ACME-MYS", "cam-09", at(10, "09:00:00"), dedup_key="k0"),
        {"action": "acknowledge", "dedup_key": "k1", "occurred_at": at(27, "10:15:00")},
        {"action": "resolve", "dedup_key": "k1", "occurred_at": at(27, "11:00:00")},
        {"action": "acknowledge", "dedup_key": "k2", "occurred_at": at(27, "11:45:00")},
        {"action": "resolve", "dedup_key": "k2", "occurred_at": at(27, "14:00:00")},
        {"action": "acknowledge", "dedup_key": "k3", "occurred_at": at(28, "08:10:00")},
        {"action": "resolve", "dedup_key": "k3", "occurred_at": at(28, "08:30:00")},
    ]
    result = admin_cli("ingest", input=ndjson(*records))
    assert result.exit_code == 0, result.stderr

    def incident(when: str, *args: str) -> int:
        made = admin_cli("incident", "create", "--title", "t", *args, "--format", "json", env={"NOC_NOW": when})
        assert made.exit_code == 0, made.stderr
        return json.loads(made.stdout)["id"]

    met = incident(at(27, "00:00:00"), "--severity", "HIGH", "--client", "ACME")
    assert admin_cli("incident", "resolve", str(met), env={"NOC_NOW": at(27, "02:00:00")}).exit_code == 0
    incident(at(28, "00:00:00"), "--severity", "HIGH", "--client", "GLOBEX")
    incident(at(29, "08:00:00"), "--severity", "LOW", "--client", "ACME")
    return admin_cli


def report(noc, *args: str):
    result = noc("report", *args)
    assert result.exit_code == 0, result.stderr
    return result


def as_json(noc, *args: str):
    return json.loads(report(noc, *args, "--format", "json").stdout)


def one_line(text: str) -> str:
    return " ".join(text.split())


def weekly_document(noc, *args: str) -> dict:
    return as_json(noc, "weekly", *args)


def only(document: dict, report_name: str) -> dict:
    """The document `build()` makes for one report: the weekly one cut to its sections."""
    from nocctl.reporting import sections_of

    return {**document, "sections": {k: document["sections"][k] for k in sections_of(report_name)}}


# ---------------------------------------------------------------- every report, every format

@pytest.mark.parametrize("name", REPORTS)
def test_every_report_renders_in_every_format_from_the_same_data(noc, name):
    """Each output is what the renderer makes of the weekly document's sections: the single
    reports and `weekly` show the same numbers, and every template renders the real data
    (with StrictUndefined)."""
    from nocctl.reporting import render, sections_of
    from nocctl.vocabulary import REPORT_DEFINITIONS as DEFINITIONS

    document = only(weekly_document(noc), name)
    outputs = {}
    for fmt in FORMATS:
        result = noc("report", name, "--format", fmt)
        assert result.exit_code == 0, (fmt, result.stderr)
        assert result.stderr == ""
        assert result.stdout == render(document, name, fmt), fmt
        outputs[fmt] = result.stdout
    assert json.loads(outputs["json"]) == (document if name == "weekly" else document["sections"][name])
    assert next(csv.reader(io.StringIO(outputs["csv"])))[0] == ("report" if name == "weekly" else "scope")
    assert outputs["html"].startswith("<!DOCTYPE html>") and outputs["html"].rstrip().endswith("</html>")
    assert "<svg" in outputs["html"]
    assert re.search(r"^\| .* \|$", outputs["markdown"], flags=re.MULTILINE)
    # the definitions, in every human format
    for kind in sections_of(name):
        definition = one_line(DEFINITIONS[kind])
        assert definition in one_line(outputs["table"]), kind
        assert definition in one_line(outputs["markdown"]), kind
        assert definition in one_line(html_lib.unescape(outputs["html"])), kind


def test_weekly_json_is_the_whole_document_and_each_section_is_the_single_report(noc):
    document = weekly_document(noc)
    assert set(document) == {"window", "time_zone", "client", "generated_at", "sections", "kpis"}
    assert document["window"] == {"since": "2026-02-22T10:00:00Z", "until": NOW}
    assert (document["time_zone"], document["client"], document["generated_at"]) == ("UTC", None, NOW)
    assert list(document["sections"]) == ["mttr", "mtta", "frequency", "sla", "noisy"]
    for kind, data in document["sections"].items():
        assert as_json(noc, kind) == data, kind


# ---------------------------------------------------------------- JSON shapes (DESIGN §7)

WINDOW = {"since": "2026-02-22T10:00:00Z", "until": NOW}
NONE = {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}


def stats(count: int, mean: float, p50: float, p90: float) -> dict:
    return {"count": count, "mean_seconds": mean, "p50_seconds": p50, "p90_seconds": p90}


def test_json_shapes_and_numbers(noc):
    assert as_json(noc, "mttr") == {
        "window": WINDOW,
        "overall": stats(3, 5400.0, 3600.0, 9360.0),
        "by_severity": {"CRITICAL": NONE, "HIGH": stats(1, 3600.0, 3600.0, 3600.0),
                        "MEDIUM": stats(1, 10800.0, 10800.0, 10800.0), "LOW": stats(1, 1800.0, 1800.0, 1800.0),
                        "INFO": NONE},
        "by_client": {"ACME": stats(2, 7200.0, 7200.0, 10080.0), "GLOBEX": stats(1, 1800.0, 1800.0, 1800.0)},
    }
    mtta = as_json(noc, "mtta")
    assert list(mtta) == ["window", "overall", "by_severity", "by_client"]
    assert mtta["overall"] == stats(3, 1400.0, 900.0, 2340.0)
    assert list(mtta["by_severity"]) == ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
    frequency = as_json(noc, "frequency")
    assert list(frequency) == ["window", "time_zone", "by_type", "by_severity", "by_day"]
    assert frequency["by_type"] == {"DEVICE_OFFLINE": {"alerts": 1, "events": 2},
                                    "POWER_FAIL": {"alerts": 2, "events": 2},
                                    "DOOR_FORCED": {"alerts": 1, "events": 1},
                                    "TEMP_HIGH": {"alerts": 1, "events": 1}}
    assert [(d["day"], d["alerts"], d["events"]) for d in frequency["by_day"]] == [
        ("2026-02-22", 0, 0), ("2026-02-23", 0, 0), ("2026-02-24", 0, 0), ("2026-02-25", 0, 0),
        ("2026-02-26", 1, 1), ("2026-02-27", 2, 3), ("2026-02-28", 2, 2), ("2026-03-01", 0, 0)]
    sla = as_json(noc, "sla")
    assert {k: sla[k] for k in ("window", "met", "breached", "pending", "compliance")} == \
        {"window": WINDOW, "met": 1, "breached": 1, "pending": 1, "compliance": 0.5}
    assert list(sla) == ["window", "met", "breached", "pending", "compliance", "by_client", "breaches"]
    assert sla["by_client"] == {"ACME": {"met": 1, "breached": 0, "pending": 1, "compliance": 1.0},
                                "GLOBEX": {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0}}
    [late] = sla["breaches"]["incidents"]
    assert sla["breaches"]["total"] == 1
    assert {k: late[k] for k in ("client", "severity", "sla_target", "resolved_at", "open", "late_seconds")} == {
        "client": "GLOBEX", "severity": "HIGH", "sla_target": "2026-02-28T08:00:00Z", "resolved_at": None,
        "open": True, "late_seconds": 26 * 3600}
    assert [(d["day"], d["partial"]) for d in frequency["by_day"]][::7] == [("2026-02-22", True), ("2026-03-01", True)]
    assert not any(d["partial"] for d in frequency["by_day"][1:-1])
    assert frequency["by_day"][0]["since"] == WINDOW["since"] and frequency["by_day"][-1]["until"] == NOW
    noisy = as_json(noc, "noisy", "--top", "2")
    assert list(noisy) == ["window", "total_alerts", "sites"]
    assert noisy["total_alerts"] == 5 and len(noisy["sites"]) == 2
    assert noisy["sites"][0] == {"site": "GLOBEX-PNQ", "client": "GLOBEX", "alerts": 2, "events": 2, "suppressed": 0,
                                 "share": 0.4}


def test_tz_sets_the_days_of_the_trend(noc):
    frequency = as_json(noc, "frequency", "--tz", "Asia/Kolkata")
    assert frequency["time_zone"] == "Asia/Kolkata"
    days = {d["day"]: d["alerts"] for d in frequency["by_day"]}
    assert (days["2026-02-26"], days["2026-02-27"], days["2026-02-28"]) == (0, 3, 2)  # 20:00Z is 01:30 IST
    table = report(noc, "frequency", "--tz", "Asia/Kolkata").stdout
    assert "(Asia/Kolkata)" in table and "By day (Asia/Kolkata)" in table


# ---------------------------------------------------------------- CSV

def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_is_one_flat_table_per_report(noc):
    mttr = report(noc, "mttr", "--format", "csv").stdout
    assert mttr.splitlines()[:3] == ["scope,key,count,mean_seconds,p50_seconds,p90_seconds",
                                     "overall,,3,5400.0,3600.0,9360.0", "severity,CRITICAL,0,,,"]
    assert mttr.splitlines()[-2:] == ["client,ACME,2,7200.0,7200.0,10080.0", "client,GLOBEX,1,1800.0,1800.0,1800.0"]
    frequency = read_csv(report(noc, "frequency", "--format", "csv").stdout)
    assert list(frequency[0]) == ["scope", "key", "alerts", "events"]
    assert {(r["scope"], r["key"]): (r["alerts"], r["events"]) for r in frequency}[("day", "2026-02-27")] == ("2", "3")
    assert [r["scope"] for r in frequency].count("day") == 8
    assert report(noc, "sla", "--format", "csv").stdout == \
        "scope,key,met,breached,pending,compliance\noverall,,1,1,1,0.5\nclient,ACME,1,0,1,1.0\nclient,GLOBEX,0,1,0,0.0\n"
    noisy = read_csv(report(noc, "noisy", "--format", "csv").stdout)
    assert noisy[0] == {"scope": "overall", "key": "", "client": "", "alerts": "5", "events": "", "suppressed": "",
                        "share": ""}
    assert noisy[1] == {"scope": "site", "key": "GLOBEX-PNQ", "client": "GLOBEX", "alerts": "2", "events": "2",
                        "suppressed": "0", "share": "0.4"}
    weekly = read_csv(report(noc, "weekly", "--format", "csv").stdout)
    assert list(weekly[0])[:3] == ["report", "scope", "key"]
    assert [r["report"] for r in weekly if r["scope"] == "overall"] == ["mttr", "mtta", "sla", "noisy"]
    assert {r["report"] for r in weekly} == {"mttr", "mtta", "frequency", "sla", "noisy"}
    sla = next(r for r in weekly if r["report"] == "sla")
    assert (sla["met"], sla["compliance"], sla["alerts"], sla["count"]) == ("1", "0.5", "", "")


# ---------------------------------------------------------------- the terminal table

def test_table_shows_durations_percentages_sparkline_and_definitions(noc):
    mttr = report(noc, "mttr").stdout
    assert mttr.startswith("MTTR report\n===========\n"
                           "window Sun 22 Feb 2026 10:00 – Sun 1 Mar 2026 10:00 UTC · all clients"
                           " · generated Sun 1 Mar 2026 10:00 UTC\n")
    assert "resolved 3 · mean 1h30m · p50 1h · p90 2h36m" in mttr
    assert re.search(r"^MEDIUM +1 +3h +3h +3h$", mttr, flags=re.MULTILINE)
    assert re.search(r"^CRITICAL +0 +— +— +—$", mttr, flags=re.MULTILINE)
    frequency = report(noc, "frequency").stdout
    assert "alerts per day  ▁▁▁▁▅██▁  2026-02-22 … 2026-03-01, peak 2" in frequency
    sla = report(noc, "sla").stdout
    assert "compliance 50.0% · met 1 · breached 1 · pending 1" in sla
    noisy = report(noc, "noisy").stdout
    assert re.search(r"^ +1 +GLOBEX-PNQ +GLOBEX +2 +2 +0 +40\.0%$", noisy, flags=re.MULTILINE)
    weekly = report(noc, "weekly").stdout
    assert "alerts 5 (▲ +5, worse, was 0) · events 6 (▲ +6, worse, was 0) · MTTA (mean) 23m20s (no previous value) · " \
           "MTTR (mean) 1h30m (no previous value) · SLA compliance 50.0% (no previous value) · " \
           "noisiest site GLOBEX-PNQ" in weekly
    assert weekly.count("Definition: ") == 5


def test_empty_window_renders_cleanly(noc):
    window = ("--since", "2026-01-01T00:00:00Z", "--until", "2026-01-08T00:00:00Z")
    document = weekly_document(noc, *window)
    assert document["sections"]["mttr"]["overall"] == NONE
    assert document["sections"]["mttr"]["by_client"] == {}
    assert document["sections"]["sla"] == {"window": {"since": "2026-01-01T00:00:00Z", "until": "2026-01-08T00:00:00Z"},
                                           "met": 0, "breached": 0, "pending": 0, "compliance": None,
                                           "by_client": {}, "breaches": {"total": 0, "limit": 15, "incidents": []}}
    assert document["sections"]["noisy"]["sites"] == [] and document["sections"]["frequency"]["by_type"] == {}
    table = report(noc, "weekly", *window).stdout
    assert "resolved 0 · mean — · p50 — · p90 —" in table
    assert "No alerts resolved in the window." in table and "No alerts at any site in the window." in table
    assert "compliance — · met 0" in table and "alerts per day  ▁▁▁▁▁▁▁  " in table
    markdown = report(noc, "weekly", *window, "--format", "markdown").stdout
    assert "_No alerts in the window._" in markdown and "| all | 0 | — | — | — |" in markdown
    html = report(noc, "weekly", *window, "--format", "html").stdout
    assert "<svg" in html and "No alerts at any site in the window." in html
    csv_text = report(noc, "mttr", *window, "--format", "csv").stdout
    assert csv_text.splitlines()[1] == "overall,,0,,,"


# ---------------------------------------------------------------- HTML: one self-contained file

def test_html_is_one_self_contained_file(noc):
    html = report(noc, "weekly", "--format", "html").stdout
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<style>" in html and "@media print" in html and "@media (max-width" in html
    assert html.count("<svg") >= 6
    lowered = html.lower()
    assert "<script" not in lowered and "<link" not in lowered and "<img" not in lowered and "<iframe" not in lowered
    assert not re.search(r"\bsrc\s*=", lowered)
    assert re.findall(r"\bhref\s*=\s*[\"']?([^\"'\s>]*)", lowered) == \
        ["#mttr", "#mtta", "#frequency", "#sla", "#noisy"]
    assert "url(" not in lowered and "@import" not in lowered and "@font-face" not in lowered
    assert [u for u in re.findall(r"https?://[^\s\"'<>)]*", lowered) if u != "http://www.w3.org/2000/svg"] == []
    assert "//" not in re.sub(r"https?://www\.w3\.org/2000/svg", "", lowered).replace("-->", "")


# ---------------------------------------------------------------- templates: escaping, StrictUndefined

EVIL = "<script>alert(1)</script>"
BREAKER = "A|B\nC `x` *y* [z](javascript:alert(1)) \x1b[31mred"


def hostile_document() -> dict:
    """A document as build() makes it, with markup, table syntax, a newline and a terminal
    escape sequence where codes and types go (nothing user-controlled can put them there
    today: codes and types are validated; the templates must not rely on that)."""
    one = stats(1, 60.0, 60.0, 60.0)
    durations = {"window": WINDOW, "overall": one,
                 "by_severity": {s: one for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")},
                 "by_client": {EVIL: one, BREAKER: one}}
    counts = {"alerts": 1, "events": 2}
    return {"window": WINDOW, "time_zone": "UTC", "client": EVIL, "generated_at": NOW, "sections": {
        "mttr": durations, "mtta": durations,
        "frequency": {"window": WINDOW, "time_zone": "UTC", "by_type": {EVIL: counts, BREAKER: counts},
                      "by_severity": {s: counts for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")},
                      "by_day": [{"day": "2026-02-28", "alerts": 2, "events": 4}]},
        "sla": {"window": WINDOW, "met": 1, "breached": 1, "pending": 0, "compliance": 0.5,
                "by_client": {EVIL: {"met": 1, "breached": 1, "pending": 0, "compliance": 0.5}},
                "breaches": {"total": 3, "limit": 1, "incidents": [
                    {"id": 7, "title": EVIL + BREAKER, "client": BREAKER, "severity": "HIGH", "status": "NEW",
                     "created_at": WINDOW["since"], "sla_target": WINDOW["since"], "resolved_at": None, "open": True,
                     "late_seconds": 3600}]}},
        "noisy": {"window": WINDOW, "total_alerts": 2, "sites": [
            {"site": EVIL, "client": BREAKER, "alerts": 1, "events": 2, "suppressed": 0, "share": 0.5},
            {"site": BREAKER, "client": EVIL, "alerts": 1, "events": 2, "suppressed": 1, "share": 0.5}]},
    }}


def test_html_escapes_data():
    from nocctl.reporting import render

    html = render(hostile_document(), "weekly", "html")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"href\s*=\s*[\"']?javascript", html, flags=re.IGNORECASE)
    assert "\x1b" not in html and "A|B C `x`" in html  # control characters out, the newline a space
    for name in ("mttr", "frequency", "noisy"):
        single = render(only(hostile_document(), name), name, "html")
        assert "<script" not in single.lower() and "&lt;script&gt;" in single


def test_markdown_escapes_data_and_keeps_tables_whole():
    from nocctl.reporting import render

    markdown = render(hostile_document(), "weekly", "markdown")
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "\x1b" not in markdown
    assert "A\\|B C \\`x\\` \\*y\\* \\[z\\](javascript:alert(1))" in markdown
    lines = markdown.splitlines()
    for i, line in enumerate(lines):  # every row of a table has as many cells as its header
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            width = len(re.findall(r"(?<!\\)\|", line))
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                assert len(re.findall(r"(?<!\\)\|", lines[j])) == width, lines[j]
                j += 1
    assert not any(line.startswith(("C `x`", "C \\`x")) for line in lines)


def test_terminal_table_strips_control_characters():
    from nocctl.reporting import render

    text = render(hostile_document(), "weekly", "table")
    assert "\x1b" not in text
    assert "A|B C `x`" in text  # the newline became a space: one value, one line
    assert not any(line.startswith("C `x`") for line in text.splitlines())


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_templates_are_strict_about_missing_keys(fmt):
    import jinja2

    from nocctl.reporting import TEMPLATES
    from nocctl.reporting.model import view
    from nocctl.reporting.templating import environment, render_template
    from nocctl.vocabulary import REPORT_DEFINITIONS as DEFINITIONS

    assert environment(fmt).undefined is jinja2.StrictUndefined
    assert bool(environment(fmt).autoescape) is (fmt == "html")
    model = view(hostile_document(), "weekly", DEFINITIONS)
    assert render_template(fmt, TEMPLATES[fmt], model)
    del model["sections"][2]["trend"]["peak"]
    with pytest.raises(jinja2.UndefinedError):
        render_template(fmt, TEMPLATES[fmt], model)


def test_cells_and_sparkline():
    from nocctl.reporting.model import duration, percent, sparkline

    assert [duration(s) for s in (None, 0, 45.4, 125, 3725, 396285)] == ["—", "0s", "45s", "2m5s", "1h2m", "4d14h"]
    assert [percent(f) for f in (None, 0.0, 0.4, 1.0, 0.12345)] == ["—", "0.0%", "40.0%", "100.0%", "12.3%"]
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([0, 0]) == "▁▁" and sparkline([]) == "" and sparkline([3]) == "█"


# ---------------------------------------------------------------- -o: exports

def export_rows(db_url: str) -> list[tuple]:
    found = rows(db_url, "SELECT target_type, target_id, details FROM audit_log"
                         " WHERE action = 'EXPORT_DATA' ORDER BY id")
    return [(t, i, d if isinstance(d, dict) else json.loads(d)) for t, i, d in found]


def test_export_needs_noc_export_and_is_audited(noc, db_url, tmp_path):
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    target = out / "globex-sla.json"
    refused = noc("--as", "sana.khan", "report", "sla", "--client", "GLOBEX", "-o", str(target))
    assert refused.exit_code == 77, refused.stderr
    assert refused.stderr.startswith("nocctl: error: 'sana.khan' lacks noc:export") and refused.stdout == ""
    assert list(out.iterdir()) == []  # nothing written, not even a temporary file
    assert export_rows(db_url) == []

    assert noc("user", "grant", "sana.khan", "noc:export", "--client", "GLOBEX").exit_code == 0
    done = noc("--as", "sana.khan", "report", "sla", "--client", "GLOBEX", "-o", str(target))
    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"nocctl: wrote the sla report (json) to {target}\n"  # the format from the extension
    exported = json.loads(target.read_text())
    assert {k: exported[k] for k in ("window", "met", "breached", "pending", "compliance")} == \
        {"window": WINDOW, "met": 0, "breached": 1, "pending": 0, "compliance": 0.0}
    assert list(exported["by_client"]) == ["GLOBEX"]
    [(target_type, target_id, details)] = export_rows(db_url)
    assert (target_type, target_id) == ("report", "sla")
    assert details["file"] == str(target) and details["format"] == "json" and details["client"] == "GLOBEX"
    assert details["report"] == "sla" and details["since"] == WINDOW["since"]
    # a client-scoped export grant does not cover every client
    whole = out / "all.json"
    assert noc("--as", "sana.khan", "report", "sla", "-o", str(whole)).exit_code == 77 and not whole.exists()


def test_export_writes_the_file_in_the_chosen_format(noc, db_url, tmp_path):
    html = tmp_path / "weekly.html"
    done = noc("report", "weekly", "--tz", "Asia/Kolkata", "-o", str(html))
    assert done.exit_code == 0, done.stderr
    assert html.read_text(encoding="utf-8") == report(noc, "weekly", "--tz", "Asia/Kolkata", "--format", "html").stdout
    text = tmp_path / "weekly.out"
    assert noc("report", "weekly", "-o", str(text)).exit_code == 0  # unknown extension: table
    assert text.read_text(encoding="utf-8") == report(noc, "weekly").stdout
    forced = tmp_path / "mttr.html"
    assert noc("report", "mttr", "--format", "csv", "-o", str(forced)).exit_code == 0  # --format wins
    assert forced.read_text().startswith("scope,key,count,")
    assert [(d["report"], d["format"], d["file"], d["time_zone"]) for _, _, d in export_rows(db_url)] == [
        ("weekly", "html", str(html), "Asia/Kolkata"), ("weekly", "table", str(text), "UTC"),
        ("mttr", "csv", str(forced), "UTC")]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_export_to_stdout_with_dash_is_not_an_export(noc, db_url):
    result = report(noc, "sla", "-o", "-", "--format", "json")
    assert json.loads(result.stdout)["met"] == 1
    assert export_rows(db_url) == []


# ---------------------------------------------------------------- errors: one line, documented code

@pytest.fixture
def org(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.mark.parametrize("args, code, pattern", [
    (("frequency", "--tz", "Mars/Olympus"), 65,
     r"unknown time zone 'Mars/Olympus'; use an IANA name such as Asia/Kolkata or UTC"),
    (("mttr", "--since", "2026-03-01T00:00:00Z", "--until", "2026-02-01T00:00:00Z"), 65,
     r"--since must be before --until"),
    (("weekly", "--since", "2026-02-01"), 2, r"--since '2026-02-01' has no UTC offset; .*"),
    (("noisy", "--days", "7", "--since", "2026-02-01T00:00:00Z"), 65, r"give --since or --days, not both"),
    (("sla", "--client", "NOPE"), 3, r"no client 'NOPE'; see `nocctl org list`"),
    (("noisy", "--top", "0"), 2, r"Invalid value for '--top'.*"),
    (("mttr", "--format", "pdf"), 2, r"Invalid value for '--format'.*"),
    (("mttr", "-o", "/nonexistent-dir/x.html"), 2, r"Invalid value for '-o' / '--output': cannot write .*"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_errors_are_one_line_with_the_documented_exit_code(org, db_url, args, code, pattern):
    result = org("report", *args)
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.fullmatch(r"nocctl: error: " + pattern + r"\n", result.stderr), result.stderr
    assert export_rows(db_url) == []


def test_a_client_the_viewer_cannot_see_is_not_found(noc):
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    hidden = noc("--as", "sana.khan", "report", "mttr", "--client", "ACME")
    assert hidden.exit_code == 3 and "no client 'ACME'" in hidden.stderr
    nobody = noc("--as", "karthik.s", "report", "mttr")
    assert nobody.exit_code == 77 and "no view capability" in nobody.stderr


# ---------------------------------------------------------------- who sees what

def test_a_client_scoped_viewer_sees_only_that_clients_numbers(noc):
    assert noc("user", "grant", "sana.khan", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    result = noc("--as", "sana.khan", "report", "weekly", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    sections = document["sections"]
    assert sections["mttr"]["overall"] == stats(1, 1800.0, 1800.0, 1800.0)
    assert list(sections["mttr"]["by_client"]) == ["GLOBEX"] and list(sections["mtta"]["by_client"]) == ["GLOBEX"]
    assert sum(v["alerts"] for v in sections["frequency"]["by_type"].values()) == 3
    assert "DEVICE_OFFLINE" not in sections["frequency"]["by_type"]
    assert {k: sections["sla"][k] for k in ("met", "breached", "pending", "compliance")} == \
        {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0}
    assert sections["noisy"]["total_alerts"] == 3
    assert [(s["site"], s["client"]) for s in sections["noisy"]["sites"]] == \
        [("GLOBEX-PNQ", "GLOBEX"), ("GLOBEX-BOM-WH1", "GLOBEX")]
    table = noc("--as", "sana.khan", "report", "weekly").stdout
    assert "ACME" not in table


# ---------------------------------------------------------------- help

def test_help_states_each_definition():
    from click.testing import CliRunner

    from nocctl.cli import cli as root
    from nocctl.vocabulary import REPORT_DEFINITIONS as DEFINITIONS

    runner = CliRunner()
    for name in REPORTS:
        text = one_line(runner.invoke(root, ["report", name, "--help"]).stdout)
        kinds = ("mttr", "mtta", "frequency", "sla", "noisy") if name == "weekly" else (name,)
        assert all(one_line(DEFINITIONS[k]) in text for k in kinds), name
        assert "Examples:" in text and f"nocctl report {name}" in text


# ---------------------------------------------------------------- what a manager reads first

def test_times_are_human_in_the_report_zone_in_every_human_format(noc):
    """No ISO instants, no microseconds in HTML, Markdown or text; JSON keeps ISO instants."""
    from nocctl.reporting import render

    document = weekly_document(noc, "--tz", "Asia/Kolkata")
    document["window"] = {"since": "2026-02-22T10:00:00.123456Z", "until": "2026-03-01T10:00:00.654321Z"}
    document["generated_at"] = "2026-03-01T10:00:00.654321Z"
    header = "Sun 22 Feb 2026 15:30 – Sun 1 Mar 2026 15:30 IST (Asia/Kolkata)"
    for fmt in ("table", "markdown", "html"):
        text = render(document, "weekly", fmt)
        assert header in text, fmt
        assert "generated Sun 1 Mar 2026 15:30 IST" in text, fmt
        assert ".123456" not in text and ".654321" not in text and "T10:00:00" not in text, fmt
    assert json.loads(render(document, "weekly", "json"))["window"]["since"] == "2026-02-22T10:00:00.123456Z"


def test_zone_names_across_a_dst_change_and_without_an_abbreviation():
    from zoneinfo import ZoneInfo

    from nocctl.reporting.model import span, stamp

    assert span("2026-03-01T05:00:00Z", "2026-03-09T04:00:00Z", ZoneInfo("America/New_York")) == \
        "Sun 1 Mar 2026 00:00 EST – Mon 9 Mar 2026 00:00 EDT (America/New_York)"
    assert span("2026-03-01T00:00:00Z", "2026-03-08T00:00:00Z", ZoneInfo("UTC")) == \
        "Sun 1 Mar 2026 00:00 – Sun 8 Mar 2026 00:00 UTC"
    assert stamp("2026-03-01T00:00:00Z", ZoneInfo("Asia/Dubai")) in ("Sun 1 Mar 2026 04:00 UTC+04:00",
                                                                     "Sun 1 Mar 2026 04:00 GST")


def test_weekly_shows_change_breaches_sla_by_client_and_partial_days_in_every_format(noc):
    outputs = {fmt: report(noc, "weekly", "--format", fmt).stdout for fmt in ("table", "markdown", "html")}
    document = weekly_document(noc)
    kpis = document["kpis"]
    assert kpis["previous_window"] == {"since": "2026-02-15T10:00:00Z", "until": "2026-02-22T10:00:00Z"}
    assert kpis["alerts"] == {"value": 5, "previous": 0, "delta": 5}
    assert kpis["sla_compliance"] == {"value": 0.5, "previous": None, "delta": None}
    for fmt, text in outputs.items():
        plain = one_line(html_lib.unescape(text))
        assert "Change against the previous 7 days: Sun 15 Feb 2026 10:00 – Sun 22 Feb 2026 10:00 UTC" in plain, fmt
        assert "▲ +5" in plain and "was 0" in plain, fmt
        assert "Breached incidents (UTC)" in plain and "open (new)" in plain and "1d2h" in plain, fmt
        assert "Sat 28 Feb 08:00" in plain, fmt  # the target, in the zone
        assert "Sun 2026-02-22 (partial: from 10:00)" in plain and "Sun 2026-03-01 (partial: to 10:00)" in plain, fmt
    assert re.search(r"^GLOBEX +0 +1 +0 +0\.0%$", outputs["table"], flags=re.MULTILINE)
    assert "| GLOBEX | 0 | 1 | 0 | 0.0% |" in outputs["markdown"]
    html = outputs["html"]
    assert 'class="change worse"' in html and 'class="partial-band"' in html and 'class="dot alerts partial"' in html
    assert 'data-label="late by"' in html and '<table class="stack">' in html


def test_the_breached_list_says_how_many_more_and_escapes_titles():
    from nocctl.reporting import render

    document = hostile_document()
    for fmt in ("table", "markdown", "html"):
        text = render(document, "weekly", fmt)
        assert "… and 2 more breached incidents." in text, fmt
        assert "<script" not in text.lower() or fmt == "table", fmt
    assert "&lt;script&gt;alert(1)&lt;/script&gt;A|B C" in render(document, "sla", "html")


def test_long_bar_labels_are_wrapped_whole_never_cut():
    from nocctl.reporting import charts

    label = "BUILDING_MANAGEMENT_SYSTEM_CHILLER_PLANT_COMMUNICATION_LOSS"
    chart = charts.bars("t", [(label, 3, "3", "bar"), ("SHORT", 1, "1", "bar")], "")
    assert chart["anchor"] == "start" and chart["x0"] == 0
    lines = [line["text"] for line in chart["bars"][0]["lines"]]
    assert "".join(lines) == label and all(len(line) <= charts.LINE_CHARS for line in lines)
    assert charts.wrap_label("X" * 100) == ["X" * 48, "X" * 48, "X" * 4]
    side = charts.bars("t", [("ACME", 1, "1", "bar")], "")
    assert side["anchor"] == "end" and side["bars"][0]["lines"] == [{"text": "ACME", "y": side["bars"][0]["mid"]}]


def test_fraction_bars_are_drawn_against_the_whole_not_the_best():
    """SLA compliance by client: a client at 25% gets a quarter of the track even when it is
    the best one shown (a full bar would read as 100%)."""
    from nocctl.reporting import charts

    chart = charts.bars("t", [("ACME", 0.25, "25%", "bad"), ("INITECH", 0.05, "5%", "bad")], "", scale=1.0)
    acme, initech = chart["bars"]
    assert acme["width"] == pytest.approx(chart["plot"] * 0.25, abs=0.1)
    assert initech["width"] == pytest.approx(chart["plot"] * 0.05, abs=0.1)
    counts = charts.bars("t", [("ACME", 4, "4", "bar"), ("INITECH", 2, "2", "bar")], "")
    assert counts["bars"][0]["width"] == pytest.approx(counts["plot"], abs=0.1)  # counts: scaled to the largest
