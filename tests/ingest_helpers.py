"""Shared helpers of the ingest tests."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
ORG = ROOT / "examples" / "org.json"


def ndjson(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def alert(alert_type="DEVICE_OFFLINE", site="ACME-BLR-WF", entity="cam-01", at="2026-03-01T10:00:00Z", **extra) -> dict:
    record = {"alert_type": alert_type, "severity": "HIGH", "message": f"{alert_type} {entity}", "site": site,
              "entity_type": "device", "entity_id": entity, "occurred_at": at}
    record.update(extra)
    return record


def rows(db_url: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


ALERT_STATE = ("SELECT dedup_key, status, severity, message, duplicate_count, first_seen_at, last_seen_at,"
               " resolved_at, acknowledged_at, time_to_ack, time_to_resolve, maintenance_window_id, client_id,"
               " site_id FROM alert ORDER BY dedup_key, first_seen_at")


def state(db_url: str) -> list[tuple]:
    """What a user sees of the alerts, without ids, creation times and group UUIDs."""
    return [tuple(str(v) for v in r) for r in rows(db_url, ALERT_STATE)]
