"""Terminal tables (issue 16): on a terminal every listing is coloured by severity and state
(never with NO_COLOR), fitted to the terminal's width (COLUMNS honoured; free text cut
with `…`, rows never wrapped), with times to the second in the preferred time zone and
ages (`12m ago`) where the question is "how long ago". Pipes, `-o` files and the other
formats stay exact and complete.

The terminal tests run nocctl as a real process on a pseudo-terminal (the helper of the
output hygiene tests) and measure what the terminal received in display columns,
independently of nocctl's own measuring: colour sequences take none, East Asian wide
characters two."""
from __future__ import annotations

import json
import os
import re
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest

from ingest_helpers import ORG, alert, ndjson
from nocctl import output
from test_output_hygiene import on_terminal

NOW = "2026-03-01T10:12:30Z"
SEEN = "2026-03-01T10:00:00.123456Z"  # with microseconds: tables show seconds only
LONG = "camera feed lost on the north gate; the site in charge was called twice and " * 3
WIDE = "北門のカメラが応答しません。現場責任者に連絡してください。" * 2
TITLE = "North gate camera offline at Whitefield, guards report the NVR rebooting every few minutes"
SGR = re.compile(r"\x1b\[[0-9;]*m")
MICROSECONDS = re.compile(r"\d\d:\d\d:\d\d\.\d")


def columns_of(line: str) -> int:
    """Display columns of a line as a terminal counts them."""
    text = SGR.sub("", line)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def lines_of(received: bytes) -> list[str]:
    return received.decode().replace("\r\n", "\n").split("\n")


@pytest.fixture
def queue(admin_cli):
    """Three alerts (a CRITICAL with a long message, a MEDIUM with a wide-character message,
    a LOW) first seen 12 minutes before NOW, and an incident with a long title."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    records = ndjson(alert(entity="cam-01", severity="CRITICAL", message=LONG, at=SEEN),
                     alert(entity="cam-02", severity="MEDIUM", message=WIDE, at=SEEN),
                     alert(entity="cam-03", severity="LOW", message="fan noise", at=SEEN))
    result = admin_cli("ingest", "-", input=records, env={"NOC_NOW": NOW})
    assert result.exit_code == 0, result.stderr
    result = admin_cli("incident", "create", "--title", TITLE, "--severity", "CRITICAL", "--site", "ACME-BLR-WF",
                       env={"NOC_NOW": "2026-03-01T10:02:00Z"})
    assert result.exit_code == 0, result.stderr
    return admin_cli


@pytest.fixture
def term_env(db_url):
    """A colour terminal at NOW: no NO_COLOR, a TERM that takes colour."""
    env = {**os.environ, "NOC_DATABASE_URL": db_url, "NOC_NOW": NOW, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    env.pop("COLUMNS", None)
    return env


def row_of(lines: list[str], needle: str) -> str:
    return next(line for line in lines if needle in SGR.sub("", line))


# ---------------------------------------------------------------- on a terminal


@pytest.mark.parametrize("size, columns_env", [(80, None), (200, "80")], ids=["terminal-80", "COLUMNS=80"])
def test_alert_list_fits_80_columns_truncates_the_message_and_colours_critical(queue, term_env, size, columns_env):
    if columns_env:
        term_env["COLUMNS"] = columns_env  # COLUMNS wins over the terminal's own size
    code, received = on_terminal(["alert", "list"], term_env, columns=size)
    assert code == 0, received.decode(errors="replace")
    lines = lines_of(received)
    table = [line for line in lines if line.strip()]
    assert table and max(columns_of(line) for line in table) <= 80
    critical = row_of(lines, "CRITICAL")
    plain = SGR.sub("", critical)
    assert plain.endswith("…") and "camera feed lost" in plain and LONG.strip() not in plain
    assert "\x1b[1;31mCRITICAL\x1b[0m" in critical  # red bold
    assert "\x1b[33mMEDIUM\x1b[0m" in row_of(lines, "MEDIUM")  # yellow
    assert "\x1b[1mNEW\x1b[0m" in critical  # a state that needs someone: bold
    assert "12m ago" in plain  # first seen, as an age
    assert not MICROSECONDS.search(received.decode())
    wide = SGR.sub("", row_of(lines, "MEDIUM"))
    assert "北門のカメラ" in wide and wide.endswith("…") and columns_of(wide) <= 80


def test_no_color_keeps_the_fit_and_drops_the_colour(queue, term_env):
    term_env["NO_COLOR"] = "1"
    code, received = on_terminal(["alert", "list"], term_env, columns=80)
    assert code == 0
    assert b"\x1b[" not in received
    lines = [line for line in lines_of(received) if line.strip()]
    assert max(columns_of(line) for line in lines) <= 80
    assert row_of(lines, "CRITICAL").endswith("…")


def test_incident_list_fits_with_its_age_and_deadline(queue, term_env):
    code, received = on_terminal(["incident", "list"], term_env, columns=80)
    assert code == 0, received.decode(errors="replace")
    lines = lines_of(received)
    assert max(columns_of(line) for line in lines if line.strip()) <= 80
    row = row_of(lines, "North gate")
    plain = SGR.sub("", row)
    assert "\x1b[1;31mCRITICAL\x1b[0m" in row and "\x1b[1mNEW\x1b[0m" in row
    assert plain.split("  ")[-1] != TITLE and "North gate" in plain and "…" in plain
    assert "10m ago" in plain  # created 10:02, now 10:12:30
    assert "in 3h49m" in plain  # the SLA target: CRITICAL, 4h after creation


def test_status_fits_the_terminal_too(queue, term_env):
    # status draws its table through the same style: at 40 columns it is fitted, not wrapped
    code, received = on_terminal(["status"], term_env, columns=40)
    assert code == 0, received.decode(errors="replace")
    table = [line for line in lines_of(received)
             if line.strip() and not line.startswith(("status by", "no snapshots"))]
    assert table and max(columns_of(line) for line in table) <= 40


def test_absolute_times_on_a_terminal_are_to_the_second_in_the_preferred_zone(queue, term_env):
    assert queue("prefs", "set", "timezone", "Asia/Kolkata").exit_code == 0
    code, received = on_terminal(["audit", "list"], term_env, columns=80)
    assert code == 0, received.decode(errors="replace")
    lines = lines_of(received)
    assert max(columns_of(line) for line in lines if line.strip()) <= 80
    assert "2026-03-01T15:32:00+05:30" in row_of(lines, "INCIDENT")  # the incident, created at 10:02Z
    assert not MICROSECONDS.search(received.decode())


def test_an_output_file_written_from_a_terminal_is_complete_and_plain(queue, term_env, tmp_path):
    target = tmp_path / "alerts.txt"
    code, received = on_terminal(["alert", "list", "-o", str(target)], term_env, columns=80)
    assert code == 0, received.decode(errors="replace")
    text = target.read_text()
    assert "\x1b" not in text and LONG.strip() in text and "…" not in text
    assert "2026-03-01T10:00:00Z" in text and "ago" not in text  # absolute, to the second
    code, received = on_terminal(["alert", "list", "--format", "json"], term_env, columns=80)
    assert code == 0 and b"\x1b[" not in received
    assert LONG.strip() in {row["message"] for row in json.loads(received.replace(b"\r\n", b"\n"))}


# ---------------------------------------------------------------- piped


def test_a_piped_table_is_complete_uncoloured_and_to_the_second(queue):
    result = queue("alert", "list", env={"NOC_NOW": NOW})
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "…" not in result.stdout and "ago" not in result.stdout
    assert LONG.strip() in result.stdout and WIDE in result.stdout
    assert "2026-03-01T10:00:00Z" in result.stdout and not MICROSECONDS.search(result.stdout)
    assert {"duplicate_count", "first_seen_at", "message"} <= set(result.stdout.splitlines()[0].split())
    data = json.loads(queue("alert", "list", "--format", "json").stdout)
    assert {row["first_seen_at"] for row in data} == {SEEN}  # the data itself keeps them


def test_a_piped_table_shows_the_preferred_zone_in_every_listing(queue):
    assert queue("prefs", "set", "timezone", "Asia/Kolkata").exit_code == 0
    listed = queue("incident", "list").stdout
    assert "2026-03-01T15:32:00+05:30" in listed  # created_at
    audit = queue("audit", "list").stdout  # a listing without preference filters
    assert "2026-03-01T15:32:00+05:30" in row_of(audit.splitlines(), "INCIDENT_CREATE")
    assert "2026-03-01T10:02:00Z" in queue("audit", "list", "--format", "csv").stdout  # the data stays UTC


# ---------------------------------------------------------------- the renderer


def test_ages_read_as_a_person_says_them():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert [output.age(now - timedelta(seconds=s), now) for s in (0, 45, 720, 3600, 11_100, 90_000, 3_456_000)] == [
        "0s ago", "45s ago", "12m ago", "1h ago", "3h05m ago", "1d01h ago", "40d ago"]
    assert output.age(now + timedelta(minutes=30), now) == "in 30m"


def test_table_times_drop_microseconds_and_keep_the_offset():
    instant = datetime(2026, 3, 1, 10, 0, 0, 999_999, tzinfo=UTC)
    assert output.table_time(instant) == "2026-03-01T10:00:00Z"
    assert output.table_time(instant, "Asia/Kolkata") == "2026-03-01T15:30:00+05:30"


def test_the_widest_free_text_gives_way_first_and_short_columns_are_kept():
    rows = [{"id": 7, "status": "NEW", "title": "t" * 60, "reason": "r" * 30, "site": "ACME-BLR-WF"}]
    style = output.TableStyle(width=70)
    text = output.render_rows(rows, ("id", "status", "title", "reason", "site"), "table", style=style)
    line = text.splitlines()[2]
    assert columns_of(line) <= 70 and "ACME-BLR-WF" in line
    title, reason = (next(w for w in line.split() if w.startswith(c)) for c in "tr")
    # the title (60) gave way alone down to the reason's 30, then both in turn
    assert title.endswith("…") and reason.endswith("…") and abs(len(title) - len(reason)) <= 1
    wider = output.render_rows(rows, ("id", "status", "title", "reason", "site"), "table",
                               style=output.TableStyle(width=100)).splitlines()[2]
    assert "r" * 30 in wider and "t" * 40 in wider and columns_of(wider) <= 100


def test_colour_follows_the_column_name_in_any_listing():
    rows = [{"state": "active", "severity": "HIGH", "name": "x"}]
    text = output.render_rows(rows, ("state", "severity", "name"), "table", style=output.TableStyle(colour=True))
    assert "\x1b[36mactive\x1b[0m" in text and "\x1b[31mHIGH\x1b[0m" in text
    assert "\x1b" not in output.render_rows(rows, ("state", "severity", "name"), "table")
