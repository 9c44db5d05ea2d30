"""Settings resolution: command-line flag > environment > config file > default (DESIGN §2).

The config file is TOML: `NOC_CONFIG` > `$XDG_CONFIG_HOME/nocctl/config.toml`
(`~/.config/nocctl/config.toml`) > `/etc/nocctl/config.toml`.

The tunables are read through the typed accessors of `Settings` (`settings.correlation_window`,
`.auto_incidents`, `.sla`, `.snapshot`, `.retention`, `.notify`, `.ingest`, `.audit_key_file`;
the classes are in `nocctl/tunables.py`): each parses its section the first time it is read and keeps it.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nocctl import tunables
from nocctl.errors import BadInput
from nocctl.tunables import (  # DEFAULTS, IngestLimits and parse_size are also imported from here
    DEFAULTS,
    AutoIncidents,
    IngestLimits,
    NotifyConfig,
    RetentionPolicy,
    Sla,
    SnapshotConfig,
)
from nocctl.tunables import parse_size as parse_size

SYSTEM_CONFIG = Path("/etc/nocctl/config.toml")

# Keys whose values (and everything inside them) are secret. HTTP headers carry tokens.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential|headers)", re.IGNORECASE)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_database_url() -> str:
    return f"sqlite:///{data_home() / 'nocctl' / 'noc.db'}"


def config_candidates() -> list[Path]:
    if os.environ.get("NOC_CONFIG"):
        return [Path(os.environ["NOC_CONFIG"])]
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config_home / "nocctl" / "config.toml", SYSTEM_CONFIG]


def config_file_path() -> Path | None:
    """The config file in force: the first candidate that exists (None: none does)."""
    return next((path for path in config_candidates() if path.exists() and not path.is_dir()), None)


def read_config_file() -> tuple[Path | None, dict[str, Any]]:
    """The config file in force, parsed (its keys are checked by `resolve`). `NOC_CONFIG`
    naming a missing file is an error."""
    path = config_file_path()
    if path is None:
        if os.environ.get("NOC_CONFIG"):
            raise BadInput(f"config file {config_candidates()[0]} (from NOC_CONFIG) does not exist")
        return None, {}
    try:
        with path.open("rb") as handle:
            return path, tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Settings:
    """What is in force for one invocation. Frozen, so what an accessor parsed stays true:
    `dataclasses.replace` makes new settings, which parse again."""

    database_url: str
    tenant: str
    actor: str | None
    config_path: Path | None
    file: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    #: What is wrong with the config file, when `resolve(keep_problem=True)` kept it instead
    #: of raising (`nocctl doctor` reports it and goes on with the rest).
    problem: BadInput | None = field(default=None, compare=False)

    def get(self, key: str) -> Any:
        """A tunable from the config file (a table merged over its default), else its
        default: the raw TOML value. Prefer the typed accessors below."""
        value = self.file.get(key, DEFAULTS.get(key))
        if isinstance(value, dict) and isinstance(DEFAULTS.get(key), dict):
            return {**DEFAULTS[key], **value}
        return value

    # Parsed on first use and kept (cached_property writes the instance's __dict__, which a
    # frozen dataclass without slots has). A bad section raises each time it is read and
    # never affects the others.

    @cached_property
    def correlation_window(self) -> int:
        """`correlation_window` in seconds (default 600, from "10m")."""
        return tunables.correlation_window(self.get("correlation_window"))

    @cached_property
    def sla(self) -> Sla:
        """The `[sla]` targets by severity."""
        return Sla.parse(self.get("sla"))

    @cached_property
    def auto_incidents(self) -> AutoIncidents | None:
        """Automatic incidents, or None when `incident_min_severity = "none"` turns them
        off (the `[sla]` table is then not read)."""
        level = tunables.incident_min_severity(self.get("incident_min_severity"))
        return None if level is None else AutoIncidents(level, self.sla)

    @cached_property
    def snapshot(self) -> SnapshotConfig:
        """The `[snapshot]` section (see `snapshot_for` for the --window option)."""
        return SnapshotConfig.of(self.get("snapshot"))

    def snapshot_for(self, window: str | None) -> SnapshotConfig:
        """The `[snapshot]` section with the --window option, when given, instead of
        `snapshot.window` (which is then not read)."""
        return SnapshotConfig.of(self.get("snapshot"), window) if window else self.snapshot

    @cached_property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy.parse(self.get("retention"))

    @cached_property
    def notify(self) -> NotifyConfig:
        """The `[notify]` section: channels and retry policy (errors name this file)."""
        return NotifyConfig.parse(self.get("notify"), self.config_path)

    @cached_property
    def ingest(self) -> IngestLimits:
        return IngestLimits.parse(self.get("ingest"))

    @cached_property
    def audit_key_file(self) -> Path | None:
        """`audit_key_file`: the key of the audit checkpoints (None: not set); a relative
        path is taken from the config file's directory."""
        return tunables.audit_key_file(self.get("audit_key_file"), self.config_path)

    def check_values(self) -> None:
        """Read every typed value above but the channels (`notify`, checked on their own),
        raising the BadInput the command that reads it would (`nocctl doctor`)."""
        for name in ("correlation_window", "sla", "auto_incidents", "snapshot", "retention", "ingest",
                     "audit_key_file"):
            getattr(self, name)

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


def resolve(db: str | None = None, tenant: str | None = None, actor: str | None = None, *,
            keep_problem: bool = False) -> Settings:
    """Build the settings from flags (arguments), environment and the config file. A config
    file that cannot be read or parsed, or holds an unknown key, is BadInput (exit 65); with
    `keep_problem` it is kept in `Settings.problem` instead (the settings then use what could
    be read: nothing of a file that does not parse)."""
    problem: BadInput | None = None
    path: Path | None = None
    file: dict[str, Any] = {}
    try:
        path, file = read_config_file()
        tunables.check_known_keys(file, path)
    except BadInput as exc:
        if not keep_problem:
            raise
        problem = exc
        path = path or config_file_path()  # a file that does not parse: nothing of it is used
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
    return Settings(url, slug, who, path, file, sources, problem)


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
