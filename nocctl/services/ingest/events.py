"""What an ingest batch holds: its events (records placed on a client and site, with their
dedup key, time and event key) and, per dedup key, the triggers of a round; and the keys
that identify them (DESIGN §3)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from nocctl.services.ingest.formats import Record


@dataclass(slots=True)
class Event:
    """One record placed on its client and site, with its key and time."""

    record: Record
    client_id: int | None  # None: an acknowledge/resolve naming only its dedup_key
    site_id: int | None
    dedup_key: str
    occurred_at: datetime
    event_key: bytes | None


@dataclass
class Trigger:
    """The triggers of one key in a round: the first and latest events, how many."""

    first: Event
    latest: Event
    count: int = 1
    first_seen: datetime = field(default=None)  # type: ignore[assignment]
    window_id: int | None = None
    all_suppressed: bool = True


def default_dedup_key(alert_type: str, unit_code: str, entity_type: str | None, entity_id: str | None) -> str:
    """md5 of `alert_type|site-or-client code|entity_type|entity_id` (DESIGN §3)."""
    return hashlib.md5(f"{alert_type}|{unit_code}|{entity_type or ''}|{entity_id or ''}".encode()).hexdigest()


def event_key(dedup_key: str, record: Record, occurred_at: datetime) -> bytes | None:
    """What identifies this event of the key (its id, else its time), so a replay of it is
    recognised; None when nothing does."""
    if record.event_id is not None:
        marker = "id:" + record.event_id
    elif record.occurred_at is not None:
        marker = occurred_at.isoformat()
    else:
        return None  # nothing identifies this event: it always counts
    return hashlib.md5(f"{dedup_key}|{record.action}|{marker}".encode()).digest()
