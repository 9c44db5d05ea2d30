"""Settings resolution: command-line flag > environment > config file > default (DESIGN §2).

The config file is TOML: `NOC_CONFIG` > `$XDG_CONFIG_HOME/nocctl/config.toml`
(`~/.config/nocctl/config.toml`) > `/etc/nocctl/config.toml`.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nocctl.errors import BadInput

SYSTEM_CONFIG = Path("/etc/nocctl/config.toml")

# Defaults of the tunables other parts read through `Settings.get`.
DEFAULTS: dict[str, Any] = {
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

# Keys whose values (and everything inside them) are secret. HTTP headers carry tokens.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|headers)", re.IGNORECASE)


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
    def from_settings(cls, settings: Settings) -> IngestLimits:
        from nocctl.clock import parse_duration

        section = settings.get("ingest")
        unknown = set(section) - set(DEFAULTS["ingest"])
        if unknown:
            raise BadInput(f"unknown key(s) in [ingest]: {', '.join(sorted(unknown))}",
                           "the keys are " + ", ".join(DEFAULTS["ingest"]))
        return cls(parse_size(section["max_record_size"], "ingest.max_record_size"),
                   parse_duration(section["max_future_skew"], "ingest.max_future_skew"))


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_database_url() -> str:
    return f"sqlite:///{data_home() / 'nocctl' / 'noc.db'}"


def config_candidates() -> list[Path]:
    if os.environ.get("NOC_CONFIG"):
        return [Path(os.environ["NOC_CONFIG"])]
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config_home / "nocctl" / "config.toml", SYSTEM_CONFIG]


def load_config_file() -> tuple[Path | None, dict[str, Any]]:
    """The first config file that exists, parsed. `NOC_CONFIG` naming a missing file is an error."""
    candidates = config_candidates()
    for path in candidates:
        if path.exists() and not path.is_dir():
            try:
                with path.open("rb") as handle:
                    return path, tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
            except OSError as exc:
                raise BadInput(f"cannot read config file {path}: {exc.strerror}") from None
    if os.environ.get("NOC_CONFIG"):
        raise BadInput(f"config file {candidates[0]} (from NOC_CONFIG) does not exist")
    return None, {}


@dataclass
class Settings:
    database_url: str
    tenant: str
    actor: str | None
    config_path: Path | None
    file: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """A tunable from the config file, else its default."""
        value = self.file.get(key, DEFAULTS.get(key))
        if isinstance(value, dict) and isinstance(DEFAULTS.get(key), dict):
            return {**DEFAULTS[key], **value}
        return value

    def effective(self) -> dict[str, Any]:
        """Everything in force, secrets masked (for `config show`)."""
        shown = {
            "database_url": mask_url(self.database_url),
            "tenant": self.tenant,
            "actor": self.actor,
            "config_file": str(self.config_path) if self.config_path else None,
        }
        for key in sorted(set(DEFAULTS) | set(self.file)):
            if key not in ("database_url", "tenant", "actor"):
                shown[key] = self.get(key)
        return mask_secrets(shown)


def resolve(db: str | None = None, tenant: str | None = None, actor: str | None = None) -> Settings:
    """Build the settings from flags (arguments), environment and the config file."""
    path, file = load_config_file()
    sources: dict[str, str] = {}

    def pick(name: str, flag: str | None, env: str, default: str | None) -> str | None:
        for origin, value in (("flag", flag), ("env", os.environ.get(env)), ("config", file.get(name))):
            if value:
                sources[name] = origin
                return str(value)
        sources[name] = "default"
        return default

    url = pick("database_url", db, "NOC_DATABASE_URL", None) or default_database_url()
    slug = pick("tenant", tenant, "NOC_TENANT", "default") or "default"
    who = pick("actor", actor, "NOC_ACTOR", None)
    return Settings(url, slug, who, path, file, sources)


def mask_url(url: str) -> str:
    """Hide the password of a database URL: postgresql://noc:***@host/db, also when it is
    given as a query parameter (`?password=…`, which libpq accepts)."""
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)  # `*`: libpq allows an empty user
    return re.sub(r"([?&](?:password|passwd|sslpassword)=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def mask_secrets(value: Any, key: str = "", hidden: bool = False) -> Any:
    """Mask every value under a secret-looking key (whatever its type, and everything
    inside a secret table), and the password of any URL."""
    hidden = hidden or bool(_SECRET_KEY.search(key))
    if isinstance(value, dict):
        return {k: mask_secrets(v, k, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, key, hidden) for v in value]
    if hidden and value not in (None, "") and not isinstance(value, bool):
        return "***"
    if key == "url" and isinstance(value, str):
        return mask_endpoint(value)
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def mask_endpoint(url: str) -> str:
    """A webhook URL down to scheme and host: its path and query often are the token
    (https://hooks.example.com/services/T0/B0/XYZ)."""
    match = re.match(r"([a-z][a-z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)(.*)", url, re.IGNORECASE)
    if match is None:
        return "***"
    return match.group(1) + match.group(2) + ("/***" if match.group(3) not in ("", "/") else match.group(3))
