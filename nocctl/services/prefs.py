"""Operator preferences: each person's defaults for the listing commands (the dashboard
configuration): a client, severities, statuses, an output format and a time zone.

Setting them needs no capability, only that the person exists: they are their own
dashboard. A preferred client must be one the person can see. Listing services read them
with `load(session, actor)` inside their own transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import BadInput, NotFound
from nocctl.lifecycle import ALERT_ACTIVE, ALERT_STATUSES
from nocctl.models import OperatorPref, Person
from nocctl.services import access, audit
from nocctl.services.rbac import Actor, Caller, authenticate
from nocctl.vocabulary import SEVERITIES

KEYS = ("client", "severity", "status", "format", "timezone")
FORMATS = ("table", "json", "ndjson", "csv")
ACTIVE_STATUSES = ALERT_ACTIVE  # what `status active` stands for

# key -> OperatorPref column
_COLUMNS = {
    "client": "default_client",
    "severity": "severity_filter",
    "status": "status_filter",
    "format": "output_format",
    "timezone": "timezone",
}


@dataclass(frozen=True)
class Prefs:
    """One person's preferences; empty values mean "not set". `statuses` are alert statuses."""

    client: str | None = None
    severities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    format: str | None = None
    timezone: str | None = None

    def for_listing(self, client_given: bool, severities_given: bool, statuses_given: bool) -> Prefs:
        """What a listing applies: each filter preference only where the user gave no
        filter of its kind; format and time zone as they are."""
        return Prefs(None if client_given else self.client, () if severities_given else self.severities,
                     () if statuses_given else self.statuses, self.format, self.timezone)

    def as_dict(self) -> dict[str, Any]:
        """Keyed like `prefs set` (client, severity, status, format, timezone)."""
        return {"client": self.client, "severity": list(self.severities) or None,
                "status": list(self.statuses) or None, "format": self.format, "timezone": self.timezone}


NO_PREFS = Prefs()


def _from_row(row: OperatorPref | None) -> Prefs:
    if row is None:
        return NO_PREFS
    return Prefs(row.default_client, tuple(row.severity_filter or ()), tuple(row.status_filter or ()),
                 row.output_format, row.timezone)


def load(session: Session, actor: Actor) -> Prefs:
    """The actor's preferences, read inside the caller's transaction (NO_PREFS when none)."""
    return _from_row(session.get(OperatorPref, (actor.tenant_id, actor.person_id)))


def check_key(key: str) -> str:
    name = (key or "").strip().lower()
    if name not in KEYS:
        raise BadInput(f"unknown preference {key!r}", "one of: " + ", ".join(KEYS))
    return name


def _names(value: str, vocabulary: tuple[str, ...], what: str, extra: dict[str, tuple[str, ...]] | None = None,
           ) -> list[str]:
    """A comma list of names from `vocabulary` (any case), in vocabulary order, no repeats."""
    wanted: set[str] = set()
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name = part.upper()
        if extra and part.lower() in extra:
            wanted.update(extra[part.lower()])
        elif name in vocabulary:
            wanted.add(name)
        else:
            allowed = ", ".join(vocabulary + tuple(extra or ()))
            raise BadInput(f"unknown {what} {part!r}", f"give a comma list of: {allowed}")
    if not wanted:
        raise BadInput(f"no {what} given", "use `nocctl prefs unset` to clear the preference")
    return [name for name in vocabulary if name in wanted]


def _visible_client(session: Session, actor: Actor, code: str) -> str:
    """The code of a client the actor can see: the client itself or one of its sites."""
    try:
        return access.load(session, actor).client(session, code).code
    except NotFound:  # the same answer for a client that exists but is hidden: no leak
        # Worded for a preference: the client must be one of the person's own view.
        raise NotFound(f"no client {code!r} that you can see", "see `nocctl org list --kind client`") from None


def _zone(value: str) -> str:
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(f"unknown time zone {value!r}", "use an IANA name such as UTC, Asia/Kolkata or Europe/London"
                       ) from None
    return name


def _parse(session: Session, actor: Actor, key: str, value: str) -> Any:
    """The stored form of `value` for `key`, or BadInput/NotFound."""
    text = (value or "").strip()
    if key == "client":
        if not text:
            raise BadInput("no client given", "use `nocctl prefs unset client` to clear the preference")
        return _visible_client(session, actor, text)
    if key == "severity":
        return _names(text, SEVERITIES, "severity")
    if key == "status":
        return _names(text, ALERT_STATUSES, "status", {"active": ACTIVE_STATUSES})
    if key == "format":
        if text.lower() not in FORMATS:
            raise BadInput(f"unknown format {value!r}", "one of: " + ", ".join(FORMATS))
        return text.lower()
    return _zone(text)


def _view(row: OperatorPref | None) -> dict[str, Any]:
    data = _from_row(row).as_dict()
    data["updated_at"] = row.updated_at if row is not None else None
    return data


def _lock_own_row(session: Session, actor: Actor) -> OperatorPref | None:
    """The actor's preference row, with their person row locked so that two concurrent
    first `set`s of one person do not both insert."""
    session.execute(select(Person.id).where(Person.id == actor.person_id).with_for_update())
    return session.get(OperatorPref, (actor.tenant_id, actor.person_id), populate_existing=True)


def show(session: Session, caller: Caller) -> dict[str, Any]:
    """The caller's preferences: every key (None when unset) and `updated_at`."""
    with session.begin():
        actor = authenticate(session, caller)
        return _view(session.get(OperatorPref, (actor.tenant_id, actor.person_id)))


def set_pref(session: Session, caller: Caller, key: str, value: str) -> dict[str, Any]:
    """Set one preference of the caller (validated), audited as CONFIG_CHANGE."""
    key = check_key(key)
    with session.begin():
        actor = authenticate(session, caller)
        stored = _parse(session, actor, key, value)
        row = _lock_own_row(session, actor)
        if row is None:
            row = OperatorPref(tenant_id=actor.tenant_id, person_id=actor.person_id, updated_at=clock.now())
            session.add(row)
        if getattr(row, _COLUMNS[key]) != stored:  # a new row holds None; `stored` never is
            setattr(row, _COLUMNS[key], stored)
            row.updated_at = clock.now()
            audit.record(session, actor, "CONFIG_CHANGE", "operator_pref", actor.person_id,
                         {"change": "prefs set", "key": key, "value": stored})
        session.flush()
        return _view(row)


def unset(session: Session, caller: Caller, key: str) -> dict[str, Any]:
    """Clear one preference of the caller (nothing happens when it was not set)."""
    key = check_key(key)
    with session.begin():
        actor = authenticate(session, caller)
        row = _lock_own_row(session, actor)
        if row is not None and getattr(row, _COLUMNS[key]) is not None:
            setattr(row, _COLUMNS[key], None)
            row.updated_at = clock.now()
            audit.record(session, actor, "CONFIG_CHANGE", "operator_pref", actor.person_id,
                         {"change": "prefs unset", "key": key, "value": None})
            session.flush()
        return _view(row)


__all__ = ["ACTIVE_STATUSES", "FORMATS", "KEYS", "NO_PREFS", "Prefs", "check_key", "load", "set_pref",
           "show", "unset"]
