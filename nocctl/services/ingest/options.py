"""What an ingest run is given and what it gives back: its `Options`, its `Summary`
(counts), each `Reject` it tells of; and the future-skew rule both alert and feed runs apply.
No database here: the pipeline (`pipeline.Ingest`, `feed_ingest.FeedIngest`) does the work."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nocctl import clock
from nocctl.tunables import DEFAULT_CORRELATION_WINDOW, DEFAULT_INGEST, AutoIncidents


@dataclass
class Options:
    input_format: str = "auto"
    client: str | None = None
    site: str | None = None
    batch_size: int = 1000
    dry_run: bool = False
    strict: bool = False
    correlation_window: int = DEFAULT_CORRELATION_WINDOW  # seconds
    keep_rejects: bool = True  # write bad records to the dead-letter table
    incidents: AutoIncidents | None = None  # None: open no incidents automatically
    system: bool = False  # act as the system (a cron pass): no person, tenant-wide, audited with login and host
    kind: str = "alert"  # or a feed kind (vocabulary.FEED_KINDS): see feed_ingest.FeedIngest
    max_future_skew: int = DEFAULT_INGEST.max_future_skew  # seconds an event time may be ahead of the clock
    # The run's instant: every row it writes is stamped with it (created_at, seen_at,
    # received_at, audit rows, incidents), and event times are bounded by it. A pass gives
    # its own; None (interactive ingest) reads `clock.now()` once per batch.
    now: datetime | None = None


@dataclass
class Summary:
    received: int = 0
    created: int = 0
    deduplicated: int = 0
    suppressed: int = 0
    resolved: int = 0
    acknowledged: int = 0
    replayed: int = 0
    rejected: int = 0
    unmatched: int = 0  # acknowledge/resolve events that found no alert in that state

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("received", "created", "deduplicated", "suppressed", "resolved",
                                              "acknowledged", "replayed", "unmatched", "rejected")}


@dataclass
class Reject:
    source: str
    line: int | None
    reason: str
    raw: str


def future_reason(field: str, at: datetime, now: datetime, skew: int) -> str:
    return (f"{field} {clock.isoformat(at)} is more than {clock.format_duration(skew)} ahead of the clock"
            f" ({clock.isoformat(now)}; setting ingest.max_future_skew)")
