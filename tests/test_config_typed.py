"""The typed settings (`nocctl/tunables.py`, read through `config.Settings`): the documented
defaults, overrides from the config file, the same one-line errors as before, a bad section
that leaves the others readable, and each section parsed once."""
from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl import clock, config, tunables
from nocctl.config import Settings
from nocctl.errors import BadInput, ExitCode
from nocctl.tunables import AutoIncidents, IngestLimits, NotifyConfig, RetentionPolicy, Sla, SnapshotConfig

DAY = 86400


def settings_from(tmp_path: Path, monkeypatch, text: str) -> Settings:
    path = tmp_path / "typed.toml"
    path.write_text(text)
    monkeypatch.setenv("NOC_CONFIG", str(path))
    return config.resolve()


def bad(settings: Settings, accessor: str) -> BadInput:
    with pytest.raises(BadInput) as raised:
        getattr(settings, accessor)
    assert raised.value.exit_code == ExitCode.DATA_ERROR == 65
    assert "\n" not in str(raised.value)
    return raised.value


# ---------------------------------------------------------------- defaults

def test_defaults_are_the_documented_ones(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, "")
    assert config.DEFAULTS["correlation_window"] == "10m"
    assert settings.correlation_window == 600 == tunables.DEFAULT_CORRELATION_WINDOW
    assert settings.sla == Sla({"CRITICAL": 4 * 3600, "HIGH": 8 * 3600, "MEDIUM": 24 * 3600, "LOW": 72 * 3600,
                                "INFO": None})
    assert settings.sla.seconds("high") == 8 * 3600 and settings.sla.seconds("INFO") is None
    assert settings.auto_incidents == AutoIncidents("CRITICAL", settings.sla)
    # The class defaults are the parsed documented defaults: `SnapshotConfig()` is what no file gives.
    assert settings.snapshot == SnapshotConfig() == tunables.DEFAULT_SNAPSHOT
    assert settings.snapshot == SnapshotConfig(window=300, device_offline_after=900, attendance_grace=900,
                                               late_rate=0.25, late_min_shifts=4, sync_health_min=80.0)
    assert settings.retention == RetentionPolicy(
        {"snapshots": 30 * DAY, "event_keys": 30 * DAY, "notifications": 30 * DAY, "rejects": 30 * DAY,
         "incidents": None, "alerts": None}, tmp_path / "data" / "nocctl" / "archive", True, 10_000)
    assert not settings.retention.archives
    assert settings.notify == NotifyConfig({}) == NotifyConfig({}, max_attempts=6, backoff=60, max_backoff=3600)
    assert settings.ingest == IngestLimits(1024 * 1024, 600) == tunables.DEFAULT_INGEST
    assert IngestLimits.from_settings(settings) is settings.ingest  # the entry point of earlier callers


def test_no_config_file_at_all_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("NOC_CONFIG")
    settings = config.resolve()
    assert settings.config_path is None
    assert (settings.correlation_window, settings.snapshot, settings.ingest) == \
        (600, SnapshotConfig(), tunables.DEFAULT_INGEST)


# ---------------------------------------------------------------- overrides

def test_overrides_from_the_config_file(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, """
correlation_window = "15m"
incident_min_severity = "high"
[sla]
CRITICAL = "1h"
LOW = "none"
[snapshot]
window = "1h"
late_rate = 0.5
late_min_shifts = 2
[retention]
snapshots = "7d"
notifications = "never"
alerts = "365d"
archive_dir = "~/archive"
archive_gzip = false
batch_size = 500
[notify]
max_attempts = 3
backoff = "30s"
max_backoff = "10m"
[notify.channels.pager]
type = "command"
command = "true"
[ingest]
max_record_size = "64KiB"
max_future_skew = 120
""")
    assert settings.correlation_window == 900
    assert settings.sla.targets == {"CRITICAL": 3600, "HIGH": 8 * 3600, "MEDIUM": 24 * 3600, "LOW": None,
                                    "INFO": None}
    assert settings.auto_incidents == AutoIncidents("HIGH", settings.sla)
    assert settings.snapshot == SnapshotConfig(window=3600, late_rate=0.5, late_min_shifts=2)
    policy = settings.retention
    assert policy.ages == {"snapshots": 7 * DAY, "event_keys": 30 * DAY, "notifications": None, "rejects": 30 * DAY,
                           "incidents": None, "alerts": 365 * DAY}
    assert (policy.archive_dir, policy.gzip, policy.batch_size, policy.archives) == \
        (Path("~/archive").expanduser(), False, 500, True)
    notify = settings.notify
    assert (notify.max_attempts, notify.backoff, notify.max_backoff, list(notify.channels)) == (3, 30, 600, ["pager"])
    assert notify.delay(1) == 30 and notify.delay(10) == 600
    assert settings.ingest == IngestLimits(64 * 1024, 120)
    # The raw values stay readable as before (`config show`, callers not switched yet).
    assert settings.get("correlation_window") == "15m"
    assert settings.get("snapshot")["device_offline_after"] == "15m"


@pytest.mark.parametrize("value", ['"none"', '"off"', '"NONE"', '""', "false"])
def test_incident_min_severity_none_turns_automatic_incidents_off(tmp_path, monkeypatch, value):
    settings = settings_from(tmp_path, monkeypatch, f'incident_min_severity = {value}\n[sla]\nHIGH = "soon"\n')
    assert settings.auto_incidents is None  # and the (bad) [sla] table is not read for it


def test_no_sla_values(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, '[sla]\nCRITICAL = 0\nHIGH = ""\nMEDIUM = 7200\nINFO = "2h"\n')
    assert settings.sla.targets == {"CRITICAL": None, "HIGH": None, "MEDIUM": 7200, "LOW": 72 * 3600, "INFO": 7200}
    with pytest.raises(BadInput, match=r'^sla: unknown key "URGENT" \(one of: CRITICAL, HIGH, INFO, LOW, MEDIUM\)'):
        settings_from(tmp_path, monkeypatch, '[sla]\nURGENT = "whenever"\n')  # was ignored: now refused


def test_the_window_option_wins_over_the_file(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, '[snapshot]\nwindow = "soon"\nlate_rate = 0.5\n')
    assert settings.snapshot_for("15m") == SnapshotConfig(window=900, late_rate=0.5)  # the file's window unread
    assert str(bad(settings, "snapshot")).startswith("snapshot.window 'soon' is not a duration")
    with pytest.raises(BadInput, match=r"^--window 'later' is not a duration"):
        settings.snapshot_for("later")
    fine = settings_from(tmp_path, monkeypatch, "")
    assert fine.snapshot_for(None) is fine.snapshot_for("") is fine.snapshot


# ---------------------------------------------------------------- errors, as before

@pytest.mark.parametrize("text, accessor, message", [
    ('correlation_window = "soon"\n', "correlation_window",
     "correlation_window 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
    ("correlation_window = 0\n", "correlation_window", "correlation_window 0 must be longer than zero"),
    ('incident_min_severity = "urgent"\n', "auto_incidents",
     ("incident_min_severity 'URGENT' in the config is not a severity; one of CRITICAL, HIGH, MEDIUM, LOW, INFO,"
      " or none")),
    ('[sla]\nHIGH = "soon"\n', "sla", "sla.HIGH 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
    ('[sla]\nHIGH = "soon"\n', "auto_incidents", "sla.HIGH 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
    ('sla = "4h"\n', "sla", 'sla: must be a table of durations by severity; e.g. [sla] CRITICAL = "4h"'),
    ("[snapshot]\nlate_rate = 3\n", "snapshot",
     "snapshot.late_rate in the config must be a number between 0 and 1, not 3"),
    ("[snapshot]\nlate_min_shifts = true\n", "snapshot",
     "snapshot.late_min_shifts in the config must be a number at least 1, not True"),
    ('[snapshot]\nattendance_grace = "soon"\n', "snapshot",
     "snapshot.attendance_grace 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
    ('[retention]\nsnapshots = "soon"\n', "retention",
     "retention.snapshots 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
    ("[retention]\nnotifications = true\n", "retention",
     "retention.notifications True is not a duration; use e.g. \"30d\", \"12h\" or \"never\""),
    ("[retention]\nbatch_size = 0\n", "retention", "retention.batch_size 0 must be a whole number of rows above 0"),
    ('retention = "30d"\n', "retention", 'retention: must be a table of settings; e.g. [retention] snapshots = "30d"'),
    ("[notify]\nmax_attempts = 0\n", "notify",
     "notify.max_attempts: must be a whole number of at least 1; fix the [notify] section of {path}"),
    ('[notify.channels.page]\ntype = "pager"\n', "notify",
     'notify.channels.page: "type" must be one of webhook, command, smtp; fix the [notify] section of {path}'),
    ('[ingest]\nmax_record_size = "huge"\n', "ingest",
     "ingest.max_record_size 'huge' is not a size; use e.g. 1MiB, 512KiB or a number of bytes"),
    ('[ingest]\nmax_future_skew = "soon"\n', "ingest",
     "ingest.max_future_skew 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d"),
])
def test_a_bad_value_is_one_bad_input_naming_its_key(tmp_path, monkeypatch, text, accessor, message):
    settings = settings_from(tmp_path, monkeypatch, text)
    assert str(bad(settings, accessor)) == message.format(path=settings.config_path)


@pytest.mark.parametrize("text, message", [
    ('correlation_windw = "5m"\n',
     ('unknown key "correlation_windw" in the config (did you mean "correlation_window"?); fix the top level of {path}'
     " (before any [table])")),
    ('[retention]\nsnapshot = "7d"\n',
     'retention: unknown key "snapshot" (did you mean "snapshots"?); fix the [retention] section of {path}'),
    ('[notify]\nretries = 3\n',
     (f'notify: unknown key "retries" (one of: {", ".join(sorted(tunables.NOTIFY_KEYS))}); fix the [notify]'
     " section of {path}")),
    ('[ingest]\nmax_recordsize = "1MiB"\n',
     'ingest: unknown key "max_recordsize" (did you mean "max_record_size"?); fix the [ingest] section of {path}'),
    ('[sla]\ncritical = "1h"\n',
     'sla: unknown key "critical" (did you mean "CRITICAL"?); fix the [sla] section of {path}'),
    ('[snapshot]\nwindw = "1h"\n',
     'snapshot: unknown key "windw" (did you mean "window"?); fix the [snapshot] section of {path}'),
    ('[sla]\ntenant = "x"\n',
     'sla: unknown key "tenant" (a top-level key: move it above the first [table]); fix the [sla] section of {path}'),
    ('[pagerduty]\napi_key = 1\n',
     ("unknown table [pagerduty] in the config (one of: ingest, notify, retention, sla, snapshot);"
      " rename or remove the [pagerduty] table of {path}")),
])
def test_an_unknown_key_is_refused_when_the_file_is_loaded(tmp_path, monkeypatch, text, message):
    """Every command loads the file through `config.resolve`: a typo is exit 65 for all of them,
    naming the key, the file and the key it most likely meant."""
    path = tmp_path / "typed.toml"
    path.write_text(text)
    monkeypatch.setenv("NOC_CONFIG", str(path))
    with pytest.raises(BadInput) as raised:
        config.resolve()
    assert raised.value.exit_code == 65
    assert str(raised.value) == message.format(path=path)
    kept = config.resolve(keep_problem=True)  # `nocctl doctor` reports it and reads the rest
    assert str(kept.problem) == message.format(path=path) and kept.file == tomllib.loads(text)


def test_a_file_that_does_not_parse_is_kept_as_the_problem(tmp_path, monkeypatch):
    path = tmp_path / "broken.toml"
    path.write_text("[unclosed\n")
    monkeypatch.setenv("NOC_CONFIG", str(path))
    kept = config.resolve(keep_problem=True)
    assert kept.problem is not None and "is not valid TOML" in kept.problem.message
    assert (kept.config_path, kept.file) == (path, {})


def test_the_sections_own_parsers_apply_the_same_rule():
    """Settings made in code (not from a file) meet the same rule in the section's parser."""
    with pytest.raises(BadInput, match=r'^retention: unknown key "snapshot" \(did you mean "snapshots"\?\)'):
        RetentionPolicy.parse({"snapshot": "7d"})
    with pytest.raises(BadInput, match=r'^ingest: unknown key "max_recordsize"'):
        IngestLimits.parse({"max_recordsize": "1MiB"})


def test_the_readme_and_the_examples_use_only_known_keys():
    root = Path(__file__).resolve().parent.parent
    blocks = re.findall(r"```toml\n(.*?)```", (root / "README.md").read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        tunables.check_known_keys(tomllib.loads(block), None)


@pytest.mark.parametrize("accessor, text", [
    ("snapshot", "[snapshot]\nlate_rate = 3\n"), ("snapshot", '[snapshot]\nwindow = "soon"\n'),
    ("snapshot", "[snapshot]\nsync_health_min = 101\n"),
    ("retention", '[retention]\nalerts = "0d"\n'), ("retention", '[retention]\nincidents = "1y"\n'),
    ("retention", '[retention]\narchive_gzip = "yes"\n'), ("retention", '[retention]\narchive_dir = ""\n'),
    ("retention", 'retention = "30d"\n'),
    ("notify", '[notify]\nbackoff = "2h"\n'), ("notify", 'notify = "yes"\n'),
    ("notify", '[notify.channels.hook]\ntype = "webhook"\n'),
])
def test_the_errors_are_those_of_the_parsers_they_replace(tmp_path, monkeypatch, accessor, text):
    """While services/feed_conditions, retention and notify keep their own parsers (or once
    they are aliases of these), both say exactly the same."""
    from nocctl.services import feed_conditions, notify, retention

    settings = settings_from(tmp_path, monkeypatch, text)
    legacy = {"snapshot": lambda: feed_conditions.Config.of(settings.get("snapshot")),
              "retention": lambda: retention.load_policy(settings),
              "notify": lambda: notify.load_config(settings)}[accessor]
    ours = bad(settings, accessor)
    with pytest.raises(BadInput) as theirs:
        legacy()
    assert (ours.message, ours.remedy) == (theirs.value.message, theirs.value.remedy)


# ---------------------------------------------------------------- one section at a time

BROKEN = """
incident_min_severity = "urgent"
[snapshot]
late_rate = 3
[retention]
snapshots = "soon"
[notify]
max_attempts = 0
"""


def test_a_bad_section_leaves_the_others_readable(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, BROKEN + '[ingest]\nmax_future_skew = "1h"\n')
    for accessor in ("auto_incidents", "snapshot", "retention", "notify"):
        bad(settings, accessor)
    assert settings.correlation_window == 600
    assert settings.sla == Sla.parse(config.DEFAULTS["sla"])
    assert settings.ingest == IngestLimits(1024 * 1024, 3600)
    assert settings.effective()["notify"] == {"max_attempts": 0}  # `config show` still shows it all


def test_commands_that_do_not_read_a_bad_section_run(admin_cli, db_url, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN.replace('incident_min_severity = "urgent"', 'incident_min_severity = "none"'))
    env = {"NOC_CONFIG": str(path)}
    assert admin_cli("org", "import", str(ORG), env=env).exit_code == 0
    listed = admin_cli("alert", "list", env=env)
    assert listed.exit_code == 0, listed.stderr
    shown = admin_cli("config", "show", env=env)
    assert shown.exit_code == 0, shown.stderr
    ingested = admin_cli("ingest", input=ndjson(alert()), env=env)
    assert ingested.exit_code == 0, ingested.stderr
    failed = admin_cli("notify", "run", env=env)
    assert failed.exit_code == 65 and failed.stderr.count("\n") == 1 and "notify.max_attempts" in failed.stderr


def test_a_bad_sla_stops_ingest_before_any_input_is_read(admin_cli, db_url, tmp_path):
    path = tmp_path / "sla.toml"
    path.write_text('incident_min_severity = "high"\n[sla]\nLOW = "soon"\n')
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    result = admin_cli("ingest", input=ndjson(alert(severity="CRITICAL")), env={"NOC_CONFIG": str(path)})
    assert result.exit_code == 65, result.stderr
    assert result.stderr == "nocctl: error: sla.LOW 'soon' is not a duration; use e.g. 90m, 2h, 1h30m, 7d\n"
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]


def test_automatic_incidents_take_their_sla_from_the_typed_settings(admin_cli, db_url, tmp_path):
    path = tmp_path / "sla.toml"
    path.write_text('incident_min_severity = "high"\n[sla]\nHIGH = "90m"\n')
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    result = admin_cli("ingest", input=ndjson(alert()), env={"NOC_CONFIG": str(path)})
    assert result.exit_code == 0, result.stderr
    [incident] = json.loads(admin_cli("incident", "list", "--format", "json").stdout)
    created, target = (datetime.fromisoformat(incident[key]) for key in ("created_at", "sla_target"))
    assert (target - created).total_seconds() == 5400


# ---------------------------------------------------------------- parsed once

def test_each_section_is_parsed_once(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, '[notify.channels.pager]\ntype = "command"\ncommand = "true"\n')
    calls: list[str] = []
    real = clock.parse_duration

    def counting(value, what="duration"):
        calls.append(what)
        return real(value, what)

    monkeypatch.setattr(clock, "parse_duration", counting)
    for _ in range(3):
        assert settings.correlation_window == 600
        assert settings.snapshot.window == 300
        assert settings.auto_incidents is settings.auto_incidents
        assert settings.notify is settings.notify
        assert settings.retention is settings.retention
        assert settings.ingest is settings.ingest
    assert sorted(calls) == sorted(set(calls)), calls  # no duration parsed twice
    assert calls.count("correlation_window") == 1 and calls.count("sla.CRITICAL") == 1
    assert calls.count("notify.backoff") == 1 and calls.count("retention.snapshots") == 1


def test_a_bad_section_fails_each_time_it_is_read(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, '[retention]\nsnapshots = "soon"\n')
    assert str(bad(settings, "retention")) == str(bad(settings, "retention"))


def test_settings_are_frozen_and_replace_parses_again(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, "[notify]\nmax_attempts = 0\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tenant = "other"  # type: ignore[misc]
    bad(settings, "notify")
    quiet = dataclasses.replace(settings, file={k: v for k, v in settings.file.items() if k != "notify"})
    assert quiet.notify == NotifyConfig({})  # what the demo does to the [notify] section
    other = dataclasses.replace(settings, file={"correlation_window": "1m"})
    assert (settings.correlation_window, other.correlation_window) == (600, 60)


def test_reading_settings_imports_no_database_layer():
    import subprocess
    import sys

    probe = ("import sys\nfrom nocctl import config\ns = config.Settings('sqlite://', 'default', None, None, {})\n"
             "s.correlation_window, s.auto_incidents, s.snapshot, s.retention, s.ingest, s.notify\n"
             "print(sorted(m for m in ('sqlalchemy', 'jinja2', 'alembic', 'psycopg') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_misspelt_table_is_named_as_a_table_with_what_it_meant(tmp_path, monkeypatch):
    path = tmp_path / "typed.toml"
    path.write_text('[notfy]\nmax_attempts = 3\n')
    monkeypatch.setenv("NOC_CONFIG", str(path))
    with pytest.raises(BadInput) as raised:
        config.resolve()
    assert str(raised.value) == (f'unknown table [notfy] in the config (did you mean "notify"?);'
                                 f" rename or remove the [notfy] table of {path}")


def test_a_misspelt_channel_type_says_what_it_meant(tmp_path, monkeypatch):
    settings = settings_from(tmp_path, monkeypatch, '[notify.channels.hook]\ntype = "webhok"\nurl = "https://x/y"\n')
    error = bad(settings, "notify")
    assert 'notify.channels.hook: "type" must be one of' in error.message
    assert error.message.endswith('(did you mean "webhook"?)')
