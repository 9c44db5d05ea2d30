"""Matchers of a maintenance window, in Alertmanager's syntax (`amtool silence add`):
`name=value`, `name!=value`, `name=~regex`, `name!~regex`; a window's matchers are ANDed.

What a name reads: `type` the alert's type, `entity` its entity_id, `entity_type` its
entity_type; any other name a label: the Alertmanager label of that name (kept in
`metadata.labels` by ingest), else the top-level `metadata` key of that name (native
records). As in Alertmanager, a label the alert lacks reads as the empty string (so
`team!=db` holds an alert without `team`), and a regex is anchored at both ends
(`^(?:regex)$`: `edge-.*` does not match `my-edge-1`). Values are compared as text: a
number or boolean in native metadata as its JSON text (`3`, `true`); an object or array
reads as absent.

Matchers are checked when the window is added (a bad regex is a usage error naming it) and
compiled once when ingest loads the windows: matching costs a dictionary lookup and a
compare (or a compiled regex) per matcher, and only for windows whose scope and type
already cover the alert."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nocctl.errors import UsageError

OPERATORS = ("=", "!=", "=~", "!~")
FIELDS = ("type", "entity", "entity_type")  # the alert's own columns; every other name is a label
_SYNTAX = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
_REMEDY = "use NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, e.g. --match 'instance=~edge-.*'"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None  # compiled for =~ and !~

    def holds(self, actual: str) -> bool:
        if self.pattern is not None:
            return (self.pattern.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def make(name: str, op: str, value: str, given: str | None = None) -> Matcher:
    """One matcher from its parts; UsageError (exit 2) naming it when it cannot be one."""
    shown = given if given is not None else f"{name}{op}{value}"
    if op not in OPERATORS or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise UsageError(f"--match {shown!r} is not a matcher", _REMEDY)
    if name == "type" and op in ("=", "!="):
        value = _type_name(value)
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(f"(?:{value})", re.DOTALL)
        except re.error as exc:
            raise UsageError(f"--match {shown!r}: bad regular expression {value!r}: {exc}",
                             "regexes are anchored at both ends, as in Alertmanager") from None
    return Matcher(name, op, value, pattern)


def parse(text: str) -> Matcher:
    """`instance=~"edge-.*"` or `instance=~edge-.*` (double quotes optional, JSON escapes inside)."""
    found = _SYNTAX.fullmatch(text or "")
    if found is None:
        raise UsageError(f"--match {text!r} is not a matcher", _REMEDY)
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except ValueError:
            raise UsageError(f"--match {text!r}: bad quoted value {value}", 'escape " and \\ inside the quotes') \
                from None
    return make(name, op, value, text)


def parse_all(texts: Iterable[str]) -> list[Matcher]:
    """Matchers as typed, duplicates dropped, in the order given."""
    found: list[Matcher] = []
    for text in texts:
        matcher = parse(text)
        if all(m.as_dict() != matcher.as_dict() for m in found):
            found.append(matcher)
    return found


def from_stored(rows: Sequence[Mapping[str, str]] | None) -> tuple[Matcher, ...]:
    """The matchers of a stored window (the JSON column), compiled."""
    return tuple(make(r["name"], r["op"], r["value"]) for r in rows or ())


def _type_name(value: str) -> str:
    """`type=HostDown` means HOST_DOWN, as ingest spells types; a value that is no type name stays."""
    from nocctl.services.ingest.formats import RecordError, alert_type_name

    try:
        return alert_type_name(value, "alert type")
    except RecordError:
        return value


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def value_of(name: str, alert_type: str | None, entity_type: str | None, entity_id: str | None,
             metadata: Mapping[str, Any] | None) -> str:
    """What `name` reads on an alert ('' when it has no such field or label)."""
    if name == "type":
        return alert_type or ""
    if name == "entity":
        return entity_id or ""
    if name == "entity_type":
        return entity_type or ""
    if not metadata:
        return ""
    labels = metadata.get("labels")
    if isinstance(labels, dict) and name in labels:
        return _text(labels[name])
    return _text(metadata.get(name))


def all_hold(matchers: Sequence[Matcher], alert_type: str | None, entity_type: str | None, entity_id: str | None,
             metadata: Mapping[str, Any] | None) -> bool:
    return all(m.holds(value_of(m.name, alert_type, entity_type, entity_id, metadata)) for m in matchers)
