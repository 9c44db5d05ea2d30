"""Typed reads of one section of the config file (TOML tables as `tomllib` gives them): each
check returns the value with its type or raises BadInput (exit 65) naming the exact key and
the file to fix. No error repeats a value: it may be a secret (a webhook URL, a password).

The `[notify]` section is read with it (`services/notify.py` for the retry policy,
`services/channels.py` for the channels)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from nocctl import clock
from nocctl.errors import BadInput


@dataclass(frozen=True)
class ConfigReader:
    """Checks values of the `[section]` of the config file at `config_path` (None: no file)."""

    config_path: Path | None
    section: str = "notify"

    def error(self, where: str, problem: str) -> BadInput:
        """The error for key `where` (dotted, e.g. `notify.channels.mail.timeout`)."""
        file = str(self.config_path) if self.config_path else "the config file"
        return BadInput(f"{where}: {problem}", f"fix the [{self.section}] section of {file}")

    def table(self, value: object, where: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(where, "must be a table")
        return value

    def no_unknown_keys(self, table: Mapping[str, object], allowed: Iterable[str], where: str, what: str) -> None:
        extra = sorted(set(table) - set(allowed))
        if extra:
            raise self.error(where, f"unknown key \"{extra[0]}\" {what} (one of: {', '.join(sorted(allowed))})")

    def optional_text(self, table: Mapping[str, object], key: str, where: str) -> str | None:
        """A non-empty string, or None when the key is absent."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, f"\"{key}\" must be a non-empty string")
        return value

    def text(self, table: Mapping[str, object], key: str, where: str, required_by: str) -> str:
        """A non-empty string that `required_by` (e.g. a channel type) needs."""
        value = self.optional_text(table, key, where)
        if value is None:
            raise self.error(where, f"{required_by} needs \"{key}\"")
        return value

    def flag(self, table: Mapping[str, object], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(where, f"\"{key}\" must be true or false")
        return value

    def duration(self, value: object, where: str) -> int:
        """Seconds, from a duration such as "30s" or a number of seconds."""
        if not isinstance(value, bool) and isinstance(value, (str, int)):
            try:
                return clock.parse_duration(str(value), where)
            except BadInput:
                pass
        raise self.error(where, "must be a duration longer than zero, such as \"30s\", \"1m\" or \"1h\"")
