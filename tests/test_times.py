"""Times on the command line (issue 16, DESIGN §4): ISO 8601 with an offset, or relative to
the clock (NOC_NOW honoured) — `now`, `2h` / `-2h` ago, `+30m` ahead — through the one
parser, `clock.parse_instant`, for every --since/--until/--at/--start/--end/--now. A time
that cannot be read is a usage error (exit 2) naming the forms; times in data (ingested
records, NOC_NOW) stay strict ISO 8601."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import pytest

from ingest_helpers import ORG, alert, ndjson
from nocctl import clock
from nocctl.errors import BadInput, UsageError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fixed(monkeypatch):
    monkeypatch.setenv("NOC_NOW", "2026-03-01T17:30:00+05:30")  # 12:00Z


@pytest.mark.parametrize("text, delta", [
    ("now", timedelta(0)), ("NOW", timedelta(0)), (" now ", timedelta(0)),
    ("2h", -timedelta(hours=2)), ("-2h", -timedelta(hours=2)), ("30m", -timedelta(minutes=30)),
    ("1d", -timedelta(days=1)), ("45s", -timedelta(seconds=45)), ("1w", -timedelta(weeks=1)),
    ("1h30m", -timedelta(minutes=90)), ("+30m", timedelta(minutes=30)), ("+1d2h", timedelta(hours=26)),
    ("2H", -timedelta(hours=2)),
])
def test_relative_times_count_from_the_clock(fixed, text, delta):
    assert clock.parse_instant(text, "--since") == NOW + delta


def test_iso_times_are_read_as_before(fixed):
    assert clock.parse_instant("2026-03-01T08:00:00+05:30") == datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2", "3600", "2x", "h", "+", "-", "2 h", "tomorrow", "", "+-2h", "2h ago"])
def test_anything_else_is_a_usage_error_naming_the_forms(fixed, text):
    with pytest.raises(UsageError) as raised:
        clock.parse_instant(text, "--at")
    assert raised.value.exit_code == 2
    assert raised.value.message.startswith("--at ")
    assert raised.value.remedy == f"use {clock.TIME_FORMS}"


def test_a_time_too_far_away_is_a_usage_error(fixed):
    with pytest.raises(UsageError, match="too far away"):
        clock.parse_instant("99999999w")


def test_times_in_data_stay_strict_iso(monkeypatch):
    with pytest.raises(BadInput, match="is not an ISO 8601 time"):
        clock.parse_iso("2h", "occurred_at")
    monkeypatch.setenv("NOC_NOW", "2h")
    with pytest.raises(BadInput, match="NOC_NOW '2h' is not an ISO 8601 time"):
        clock.now()


def test_an_ingested_record_with_a_relative_time_is_rejected(admin_cli, fixed):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    result = admin_cli("ingest", input=ndjson(alert(at="2h")))
    assert result.exit_code == 65 and "occurred_at '2h' is not an ISO 8601 time" in result.stderr


@pytest.fixture
def noc(admin_cli, fixed):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def test_report_windows_take_relative_times(noc):
    result = noc("report", "mttr", "--since", "2h", "--until", "30m", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["window"] == {"since": "2026-03-01T10:00:00Z", "until": "2026-03-01T11:30:00Z"}


@pytest.mark.parametrize("command", [("audit", "list"), ("incident", "list"), ("snapshot", "list"),
                                     ("alert", "list")])
def test_listings_take_relative_times_and_refuse_bad_ones_with_exit_2(noc, command):
    assert noc(*command, "--since", "1d", "--until", "now", "--format", "json").exit_code == 0
    bad = noc(*command, "--since", "last tuesday")
    assert bad.exit_code == 2 and bad.stderr.startswith("nocctl: error: --since 'last tuesday' is not an ISO 8601")


def test_a_pass_takes_a_relative_now(noc):
    ok = noc("escalate", "run", "--now", "+1h", "--dry-run")
    assert ok.exit_code == 0, ok.stderr
    bad = noc("escalate", "run", "--now", "2026-03-01T10:00:00")
    assert bad.exit_code == 2 and "--now '2026-03-01T10:00:00' has no UTC offset" in bad.stderr


def _time_options():
    from nocctl.cli import cli as root

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
            return
        for param in command.params:
            if isinstance(param, click.Option) and param.metavar == "TIME":
                yield " ".join(path), param

    return list(walk(root, ()))


def test_every_time_option_says_it_takes_relative_times():
    """Each TIME option of a listing or report states the forms; --now of the passes and
    the maintenance, on-call and snooze times take them too (they go through parse_instant)."""
    options = _time_options()
    assert options
    for path, option in options:
        if option.name in ("since",):
            assert "ISO 8601 or relative (2h, 30m, 1d)" in (option.help or ""), (path, option.name)
