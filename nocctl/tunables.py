"""The tunables of the config file, parsed into typed, frozen objects (DESIGN §2).

One class (or function, for a single value) per section or top-level tunable, with its
defaults, parsing and checks. `config.Settings` parses each the first time it is asked for
and keeps the result (`settings.correlation_window`, `.auto_incidents`, `.sla`, `.snapshot`,
`.retention`, `.notify`, `.ingest`): each section is parsed once per process, and only by the
commands that use it, so a bad `[notify]` fails `notify run`, never `alert list`. A bad value
is BadInput (exit 65) naming its key.

Plain Python, no SQLAlchemy: the command line reads settings before the database layer is
imported (`--help` stays instant). The notification channels are parsed by
`services/channels.py`, imported only when `[notify]` is read."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from nocctl import clock
from nocctl.errors import BadInput
from nocctl.vocabulary import SEVERITIES

if TYPE_CHECKING:
    from nocctl.config import Settings
    from nocctl.services.channels import Channel

_Number = TypeVar("_Number", int, float)

# The documented defaults of the tunables (the README's Configuration section; `config show`
# prints them merged with the file). A table of the file is merged key by key over its default.
DEFAULTS: Final[dict[str, Any]] = {
    "correlation_window": "10m",
    "incident_min_severity": "CRITICAL",
    "sla": {"CRITICAL": "4h", "HIGH": "8h", "MEDIUM": "24h", "LOW": "72h"},
    # The snapshot pass: its window, and the thresholds of the alerts it derives from feeds.
    "snapshot": {
        "window": "5m",
        "device_offline_after": "15m",  # a device unseen this long is offline (unless its record says)
        "attendance_grace": "15m",  # a shift started this long ago without a check-in is missing
        "late_rate": 0.25,  # ATTENDANCE_ANOMALY when more of a site's check-ins are late
        "late_min_shifts": 4,  # … among at least this many shifts
        "sync_health_min": 80,  # SYNC_DEGRADED under this device sync health (0-100)
    },
    # Retention ages. Alerts and incidents are kept unless an archive age is set for them
    # (`alerts`, `incidents`): they are then written to an archive file before deletion.
    "retention": {"snapshots": "30d", "event_keys": "30d", "notifications": "30d", "rejects": "30d"},
    # Ingest limits: a record (an NDJSON line, an array element, a document) larger than
    # this is a reject; so is an event time this far ahead of the clock (a host clock gone
    # wrong, or a typo in the year), which would sort before everything real for ever.
    "ingest": {"max_record_size": "1MiB", "max_future_skew": "10m"},
}


def _duration(value: Any, what: str) -> int:
    """Seconds, from whatever the file holds (parse_duration says what is wrong with it)."""
    return clock.parse_duration(value, what)


# ---------------------------------------------------------------- correlation window

def correlation_window(value: Any) -> int:
    """`correlation_window`: seconds within which alerts of a place join one group."""
    return _duration(value, "correlation_window")


DEFAULT_CORRELATION_WINDOW: Final = correlation_window(DEFAULTS["correlation_window"])  # 600 s


# ---------------------------------------------------------------- incidents

@dataclass(frozen=True)
class Sla:
    """The `[sla]` table: the SLA target of each severity, in seconds (None: no target).
    A key that is not a severity is refused when the file is loaded (`check_known_keys`)."""

    targets: Mapping[str, int | None] = field(default_factory=dict)

    def seconds(self, severity: str) -> int | None:
        return self.targets.get(severity.upper())

    @classmethod
    def parse(cls, table: Any) -> Sla:
        if not isinstance(table, dict):
            raise BadInput("sla: must be a table of durations by severity", 'e.g. [sla] CRITICAL = "4h"')
        targets: dict[str, int | None] = {}
        for severity in SEVERITIES:
            value = table.get(severity)
            none = value in (None, "", 0, "none")  # no SLA for that severity
            targets[severity] = None if none else _duration(value, f"sla.{severity}")
        return cls(targets)


@dataclass(frozen=True)
class AutoIncidents:
    """Automatic incidents (`incident_min_severity`, `[sla]`): ingest opens one for a new
    correlation group once one of its alerts is at least `min_severity`."""

    min_severity: str = "CRITICAL"
    sla: Sla = field(default_factory=Sla)


def incident_min_severity(value: Any) -> str | None:
    """`incident_min_severity`, checked: a severity, or None when turned off (`"none"`)."""
    level = str(value or "none").upper()
    if level in ("NONE", "OFF"):
        return None
    if level not in SEVERITIES:
        raise BadInput(f"incident_min_severity {level!r} in the config is not a severity",
                       "one of " + ", ".join(SEVERITIES) + ", or none")
    return level


# ---------------------------------------------------------------- snapshot

@dataclass(frozen=True)
class SnapshotConfig:
    """The `[snapshot]` section: the pass's window and the thresholds of the derived alerts
    (durations in seconds). Unknown keys are refused when the file is loaded (`check_known_keys`)."""

    window: int = 300
    device_offline_after: int = 900
    attendance_grace: int = 900
    late_rate: float = 0.25
    late_min_shifts: int = 4
    sync_health_min: float = 80.0

    @classmethod
    def of(cls, settings: Any, window: str | None = None) -> SnapshotConfig:
        """From the merged `[snapshot]` table; `window` (the --window option) wins over the file."""
        if not isinstance(settings, dict):
            raise BadInput("snapshot: must be a table of settings", 'e.g. [snapshot] window = "5m"')

        def number(key: str, kind: type[_Number], low: float, high: float | None = None) -> _Number:
            value = settings.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or \
                    (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise BadInput(f"snapshot.{key} in the config must be a number {bound}, not {value!r}")
            return kind(value)

        return cls(
            window=_duration(window or settings.get("window"), "--window" if window else "snapshot.window"),
            device_offline_after=_duration(settings.get("device_offline_after"), "snapshot.device_offline_after"),
            attendance_grace=_duration(settings.get("attendance_grace"), "snapshot.attendance_grace"),
            late_rate=number("late_rate", float, 0, 1),
            late_min_shifts=number("late_min_shifts", int, 1),
            sync_health_min=number("sync_health_min", float, 0, 100),
        )


# ---------------------------------------------------------------- retention

RETENTION_PURGED: Final = ("snapshots", "event_keys", "notifications", "rejects")
RETENTION_ARCHIVED: Final = ("incidents", "alerts")  # in this order: an archived incident frees its alerts
RETENTION_KEYS: Final = (*RETENTION_PURGED, *RETENTION_ARCHIVED, "archive_dir", "archive_gzip", "batch_size")
RETENTION_BATCH: Final = 10_000


def default_archive_dir() -> Path:
    from nocctl.config import data_home

    return data_home() / "nocctl" / "archive"


@dataclass(frozen=True)
class RetentionPolicy:
    """The `[retention]` section: the age of each kind of row (seconds; None: kept for
    ever), where archives go, and the delete batch size."""

    ages: dict[str, int | None]
    archive_dir: Path
    gzip: bool = True
    batch_size: int = RETENTION_BATCH

    def cutoffs(self, now: datetime) -> dict[str, datetime | None]:
        return {kind: None if age is None else now - timedelta(seconds=age) for kind, age in self.ages.items()}

    @property
    def archives(self) -> bool:
        return any(self.ages[kind] is not None for kind in RETENTION_ARCHIVED)

    @classmethod
    def parse(cls, raw: Any) -> RetentionPolicy:
        """The merged `[retention]` table, checked: a bad value names its key."""
        if not isinstance(raw, dict):
            raise BadInput("retention: must be a table of settings", 'e.g. [retention] snapshots = "30d"')
        check_section_keys("retention", raw)  # done at load for the file; here for settings made in code
        ages: dict[str, int | None] = {}
        for kind in (*RETENTION_PURGED, *RETENTION_ARCHIVED):
            value = raw.get(kind)
            if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
                ages[kind] = None
            elif isinstance(value, bool) or not isinstance(value, (str, int)):
                raise BadInput(f"retention.{kind} {value!r} is not a duration", 'use e.g. "30d", "12h" or "never"')
            else:
                ages[kind] = clock.parse_duration(str(value), f"retention.{kind}")
        directory = raw.get("archive_dir")
        if directory is not None and (not isinstance(directory, str) or not directory.strip()):
            raise BadInput(f"retention.archive_dir {directory!r} is not a directory path")
        compress = raw.get("archive_gzip", True)
        if not isinstance(compress, bool):
            raise BadInput(f"retention.archive_gzip {compress!r} must be true or false")
        batch = raw.get("batch_size", RETENTION_BATCH)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise BadInput(f"retention.batch_size {batch!r} must be a whole number of rows above 0")
        path = Path(directory).expanduser() if directory else default_archive_dir()
        return cls(ages, path, compress, batch)


# ---------------------------------------------------------------- notify

NOTIFY_MAX_ATTEMPTS: Final = 6
NOTIFY_BACKOFF: Final = "1m"
NOTIFY_MAX_BACKOFF: Final = "1h"
NOTIFY_PARALLEL_CHANNELS: Final = 8
NOTIFY_MAX_PARALLEL_CHANNELS: Final = 64
NOTIFY_KEYS: Final = ("max_attempts", "backoff", "max_backoff", "parallel_channels", "channels")


@dataclass(frozen=True)
class NotifyConfig:
    """The `[notify]` section: the channels by name, the retry policy of the outbox, and how
    many channels `notify run` delivers to at once (`parallel_channels`; 1: one message at a
    time, as before)."""

    channels: dict[str, Channel]
    max_attempts: int = NOTIFY_MAX_ATTEMPTS
    backoff: int = 60  # seconds
    max_backoff: int = 3600
    parallel_channels: int = NOTIFY_PARALLEL_CHANNELS

    def delay(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed attempt: backoff·2^(attempts−1),
        at most max_backoff."""
        exponent = max(attempts - 1, 0)
        if exponent >= 62 or self.backoff << exponent >= self.max_backoff:
            return self.max_backoff
        return self.backoff << exponent

    @classmethod
    def parse(cls, raw: Any, config_path: Path | None) -> NotifyConfig:
        """The `[notify]` section (absent: defaults and no channels), validated. Bad values:
        BadInput naming the exact key and the file to fix, never repeating a secret."""
        from nocctl.services.channels import parse_channels
        from nocctl.services.config_checks import ConfigReader

        reader = ConfigReader(config_path)
        section = reader.table({} if raw is None else raw, "notify")
        reader.no_unknown_keys(section, NOTIFY_KEYS, "notify", "")
        max_attempts = section.get("max_attempts", NOTIFY_MAX_ATTEMPTS)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise reader.error("notify.max_attempts", "must be a whole number of at least 1")
        backoff = reader.duration(section.get("backoff", NOTIFY_BACKOFF), "notify.backoff")
        max_backoff = reader.duration(section.get("max_backoff", NOTIFY_MAX_BACKOFF), "notify.max_backoff")
        if max_backoff < backoff:
            raise reader.error("notify.max_backoff", "must not be shorter than notify.backoff")
        parallel = section.get("parallel_channels", NOTIFY_PARALLEL_CHANNELS)
        if isinstance(parallel, bool) or not isinstance(parallel, int) or \
                not 1 <= parallel <= NOTIFY_MAX_PARALLEL_CHANNELS:
            raise reader.error("notify.parallel_channels",
                               f"must be a whole number from 1 to {NOTIFY_MAX_PARALLEL_CHANNELS}")
        channels = parse_channels(reader, section.get("channels", {}))
        return cls(channels, max_attempts, backoff, max_backoff, parallel)


# ---------------------------------------------------------------- audit anchoring

def audit_key_file(value: Any, config_path: Path | None = None) -> Path | None:
    """`audit_key_file`: the file of the key that signs audit checkpoints (`nocctl audit
    checkpoint`), or None when not set. `~` is expanded; a relative path is taken from the
    directory of the config file that names it. The file itself is read (and its mode
    checked) only by the commands that sign or verify."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise BadInput(f"audit_key_file {value!r} in the config is not a file path",
                       'e.g. audit_key_file = "/etc/nocctl/audit.key"')
    path = Path(value.strip()).expanduser()
    if not path.is_absolute() and config_path is not None:
        path = config_path.parent / path
    return path


# ---------------------------------------------------------------- ingest

_SIZE = re.compile(r"^\s*(\d+)\s*(|b|kib|kb|k|mib|mb|m|gib|gb|g)\s*$", re.IGNORECASE)
_SIZE_FACTOR = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
                "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def parse_size(value: Any, what: str) -> int:
    """`1MiB`, `512KiB`, `2m`, or plain bytes -> bytes (> 0). Units are binary (KB = KiB)."""
    match = _SIZE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if match is None or int(match.group(1)) == 0:
        raise BadInput(f"{what} {value!r} is not a size", "use e.g. 1MiB, 512KiB or a number of bytes")
    return int(match.group(1)) * _SIZE_FACTOR[match.group(2).lower()]


@dataclass(frozen=True)
class IngestLimits:
    """The `[ingest]` section, parsed."""

    max_record_bytes: int
    max_future_skew: int  # seconds

    @classmethod
    def parse(cls, section: Any) -> IngestLimits:
        if not isinstance(section, dict):
            raise BadInput("ingest: must be a table of settings", 'e.g. [ingest] max_record_size = "1MiB"')
        check_section_keys("ingest", section)  # done at load for the file; here for settings made in code
        return cls(parse_size(section["max_record_size"], "ingest.max_record_size"),
                   clock.parse_duration(section["max_future_skew"], "ingest.max_future_skew"))

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        """Kept for callers written before `settings.ingest`."""
        return settings.ingest


# ---------------------------------------------------------------- the keys of the file

#: Every key the top level of the config file may hold (DESIGN §2): the settings that flags
#: and the environment also give, then the tunables and their tables.
TOP_LEVEL_KEYS: Final = ("database_url", "tenant", "actor", "audit_key_file", "correlation_window",
                         "incident_min_severity", "sla", "snapshot", "retention", "ingest", "notify")
#: The keys of each table. `[notify.channels.NAME]` tables are checked by services/channels.py
#: when `[notify]` is read (the channel's type decides its keys).
SECTION_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "sla": SEVERITIES,
    "snapshot": tuple(DEFAULTS["snapshot"]),
    "retention": RETENTION_KEYS,
    "ingest": tuple(DEFAULTS["ingest"]),
    "notify": NOTIFY_KEYS,
}


def did_you_mean(word: str, choices: tuple[str, ...]) -> str | None:
    """The choice `word` is most likely a typo of (case aside: `critical` is `CRITICAL`), or None."""
    import difflib  # only on an error: not on every command's start-up

    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def check_known_keys(file: Mapping[str, Any], config_path: Path | None) -> None:
    """The one rule for the keys of the config file: a key nocctl does not read, at the top
    level or in one of its tables, is BadInput (exit 65) naming the key and the file, with
    the key it most likely meant. A typo must not leave a setting at its default unnoticed.
    Run on every load (`config.resolve`), so every command refuses such a file; the values
    are still checked only by the commands that read them."""
    shown = str(config_path) if config_path else "the config file"
    for key, value in file.items():
        if key not in TOP_LEVEL_KEYS:
            if isinstance(value, dict):  # `[notfy]`: a table's name, not a top-level setting
                raise BadInput(f"unknown table [{key}] in the config{_hint(key, tuple(SECTION_KEYS))}",
                               f"rename or remove the [{key}] table of {shown}")
            raise BadInput(f"unknown key \"{key}\" in the config{_hint(key, TOP_LEVEL_KEYS)}",
                           f"fix the top level of {shown} (before any [table])")
    for section in SECTION_KEYS:
        check_section_keys(section, file.get(section), config_path)


def check_section_keys(section: str, table: Any, config_path: Path | None = None) -> None:
    """The rule of `check_known_keys` for one table (not a table: its parser says so)."""
    if not isinstance(table, dict):
        return
    allowed = SECTION_KEYS[section]
    for key in table:
        if key not in allowed:
            raise BadInput(f"{section}: unknown key \"{key}\"{_hint(key, allowed)}",
                           f"fix the [{section}] section of {config_path or 'the config file'}")


def _hint(key: str, allowed: tuple[str, ...]) -> str:
    """What `key` most likely meant: a close allowed key; in a table, a top-level setting
    written below a [table] header (TOML puts it in that table); else the allowed keys."""
    meant = did_you_mean(key, allowed)
    if meant is not None:
        return f" (did you mean \"{meant}\"?)"
    if allowed is not TOP_LEVEL_KEYS and key in TOP_LEVEL_KEYS and key not in SECTION_KEYS:
        return " (a top-level key: move it above the first [table])"
    return f" (one of: {', '.join(sorted(allowed))})"


DEFAULT_INGEST: Final = IngestLimits.parse(DEFAULTS["ingest"])  # 1 MiB, 600 s
DEFAULT_SNAPSHOT: Final = SnapshotConfig.of(DEFAULTS["snapshot"])
