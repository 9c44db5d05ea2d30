"""What an ingest batch holds: its events (records placed on a client and site, with their
dedup key, time and event key) and, per dedup key, the triggers of a round; and the keys
that identify them (DESIGN §3)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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


def record_keys(record: Record, client: str | None, site: str | None) -> tuple[str | None, bytes | None]:
    """(dedup key, event key) of `record` on the unit it names, else on the run's --client or
    --site (the writer's placing, `Ingest._place`, picks the same unit); (None, None) when it
    has neither a dedup_key nor a unit to make one from."""
    dedup_key = record.dedup_key
    if not dedup_key:
        site_code = record.site or (site if record.client is None else None)
        unit = site_code or record.client or (client if record.site is None else None)
        if unit is None or record.alert_type is None:
            return None, None
        dedup_key = default_dedup_key(record.alert_type, unit, record.entity_type, record.entity_id)
    # The event key reads the time only when the record gives one: never the writer's clock.
    return dedup_key, event_key(dedup_key, record, record.occurred_at)  # type: ignore[arg-type]


def with_keys(parse: Callable[[Any, str], Iterator[tuple[Any, Any]]], client: str | None,
              site: str | None) -> Callable[[Any, str], Iterator[tuple[Any, Any]]]:
    """`parse` (document, format -> (item, record or RecordError)) with each record's keys
    computed as it is parsed: in the reader process, which waits on the writer most of the
    time, rather than in the writer."""
    def parse_keyed(document: Any, how: str) -> Iterator[tuple[Any, Any]]:
        for item, parsed in parse(document, how):
            yield item, (parsed._replace(keys=record_keys(parsed, client, site)) if type(parsed) is Record else parsed)
    return parse_keyed
