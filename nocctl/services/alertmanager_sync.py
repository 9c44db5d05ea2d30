"""`nocctl alertmanager sync`: keep the alerts of an Alertmanager integration as true as
Alertmanager's own view (DESIGN §4a).

Alertmanager's webhook never tells of a silenced or inhibited alert: it is muted before
the notification is built, so it neither pages nor ever sends its "resolved" (its issue
#226), and an alert that ended while silenced simply vanishes. Its `GET /api/v2/alerts`
array does say: each alert's `status.state` is `suppressed` (with the silences and the
inhibiting alerts) or `active`, and an alert that ended is no longer in it. This pass reads
that array and, for the integration's active `am:` alerts (dedup key `am:` + fingerprint,
source alertmanager, within the integration's noc:ingest scope):

- reported `suppressed` (a silence or an inhibition) → SUPPRESSED (`lifecycle.ALERT_HOLD`:
  from NEW or ESCALATED; an alert someone acknowledged or assigned stays theirs), with the
  silence ids, the inhibiting fingerprints and when the silence ends in its metadata;
- reported `active` while SUPPRESSED → NEW (`lifecycle.ALERT_SURFACE`: the silence ended
  and it still fires), unless a maintenance window of nocctl holds it now;
- not reported at all → RESOLVED (`lifecycle.ALERT_MOVES["resolve"]`), at the pass's now;
- anything else (`unprocessed`, an unknown state, an alert Alertmanager has and nocctl
  has not) is left alone: the pass changes a status only on Alertmanager's word.

It runs as the system, like the other cron passes (no person: the audit rows name the
login and host, and the integration in their details), and it can touch nothing outside
the integration's scope. Three guards keep a gap in Alertmanager's view from resolving
what still fires: an Alertmanager up for less than `settle` seconds (it keeps alerts in
memory only, so after a restart its array is empty until Prometheus re-sends them) has
its vanished alerts left alone; an alert created after the array was read is never
"vanished"; a malformed answer changes nothing (exit 65).

The HTTP reads happen under the pass lock but before the transaction: no database lock is
held while Alertmanager answers."""
from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound, TemporaryFailure, UsageError
from nocctl.lifecycle import ALERT_ACTIVE_SQL, ALERT_HOLD, ALERT_MOVES, ALERT_SURFACE, SUPPRESSED, alert_resolved
from nocctl.models import Alert, Integration
from nocctl.services import access, audit, maintenance, passes
from nocctl.services.ingest import formats
from nocctl.services.passes import TenantRef
from nocctl.services.rbac import Actor, Caller

ALERTS = Alert.__table__
RESOLVE = ALERT_MOVES["resolve"]
SOURCE = "alertmanager"  # the source formats gives Alertmanager's records
KEY_PREFIX = "am:"
DEFAULT_TIMEOUT = 10.0  # seconds per HTTP request
DEFAULT_SETTLE = 300  # seconds Alertmanager must have been up before a vanished alert is resolved
MAX_BODY = 256 * 1024 * 1024  # bytes of one answer (a few hundred thousand alerts)
BY = "alertmanager sync"


@dataclass
class Summary:
    reported: int = 0  # alerts in Alertmanager's array (every client's)
    suppressed: int = 0
    unsuppressed: int = 0
    resolved: int = 0
    unchanged: int = 0  # the integration's active am: alerts left as they were

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Reported:
    """One alert of Alertmanager's array, as the pass needs it."""

    state: dict[str, Any]  # formats.am_state: state, silencedBy, inhibitedBy
    silenced_until: datetime | None = None


@dataclass
class View:
    """What Alertmanager said: its alerts by dedup key, when it started, when we asked."""

    alerts: dict[str, Reported]
    count: int
    up_since: datetime | None
    asked_at: datetime  # nocctl's clock when the alerts were asked for (alerts created later are not "vanished")
    notes: list[str] = field(default_factory=list)  # warnings for the log
    duration_ms: int = 0  # of the whole pass, lock and HTTP included


# ---------------------------------------------------------------- Alertmanager's API

class Endpoint:
    """An Alertmanager base URL (`http://host:9093`, or with its --web.route-prefix). A
    user:password in it becomes basic auth and is never shown (`shown`)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--url {self._hide(url)!r} is not an http(s) URL",
                             "give Alertmanager's base URL, e.g. http://127.0.0.1:9093")
        self.auth = None
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        path = parts.path.rstrip("/")
        if path.endswith(("/api/v2", "/api/v2/alerts")):
            path = path[:path.rindex("/api/v2")]  # given the API's URL: take its base
        self.base = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
        self.shown = self.base
        self.timeout = timeout

    @staticmethod
    def _hide(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.password is None:
            return url
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[-1]}"))

    def get(self, path: str) -> Any:
        """The JSON answer of `GET base + path`: unreachable, a timeout or a 5xx → exit 75,
        another non-200 or an answer that is not JSON → exit 65."""
        url = self.base + path
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "nocctl"})
        if self.auth:
            request.add_header("Authorization", self.auth)
        shown = self.shown + path
        retry = "the next run tries again"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s) only
                body = response.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise TemporaryFailure(f"Alertmanager at {shown} answered HTTP {exc.code}", retry) from None
            raise BadInput(f"Alertmanager at {shown} answered HTTP {exc.code} {exc.reason}",
                           "is --url Alertmanager's base URL (as in its --web.external-url)?") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, (TimeoutError, socket.timeout)):
                reason = f"no answer within {self.timeout:g}s"
            raise TemporaryFailure(f"Alertmanager at {shown} is unreachable: {reason}", retry) from None
        if len(body) > MAX_BODY:
            raise BadInput(f"Alertmanager at {shown} answered more than {MAX_BODY // (1024 * 1024)} MiB")
        try:
            return json.loads(body)
        except ValueError:
            raise BadInput(f"Alertmanager at {shown} did not answer JSON",
                           "is --url Alertmanager's base URL (not Prometheus, not a login page)?") from None


def _instant(value: Any) -> datetime | None:
    try:
        return formats.instant(value, "time") if isinstance(value, str) else None
    except formats.RecordError:
        return None


def read(endpoint: Endpoint) -> View:
    """Alertmanager's alerts (`/api/v2/alerts`), when it started (`/api/v2/status`), and the
    ends of the silences that mute any of them (`/api/v2/silences`). Any alert that cannot
    be read makes the whole answer bad (exit 65): a partial view would resolve alerts that
    still fire."""
    asked_at = clock.now()
    answer = endpoint.get("/api/v2/alerts")
    shown = endpoint.shown + "/api/v2/alerts"
    if not isinstance(answer, list):
        raise BadInput(f"Alertmanager at {shown} did not answer an array of alerts",
                       "is --url Alertmanager's base URL (API v2, Alertmanager 0.16 or later)?")
    alerts: dict[str, Reported] = {}
    for number, alert in enumerate(answer, 1):
        try:
            if not isinstance(alert, dict) or not isinstance(alert.get("status"), dict):
                raise formats.RecordError("not an alert of API v2 (no status object)")
            fingerprint = alert.get("fingerprint")
            if not isinstance(fingerprint, str) or not fingerprint:
                labels = alert.get("labels")
                if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                    raise formats.RecordError("neither a fingerprint nor labels")
                fingerprint = formats.am_fingerprint(labels)
            state = formats.am_state(alert["status"])
        except formats.RecordError as exc:
            raise BadInput(f"Alertmanager at {shown}: alert {number} of {len(answer)}: {exc}",
                           "nothing was changed") from None
        alerts[KEY_PREFIX + fingerprint] = Reported(state)
    status = endpoint.get("/api/v2/status")
    up_since = _instant(status.get("uptime")) if isinstance(status, dict) else None
    view = View(alerts, len(answer), up_since, asked_at)
    if any(r.state["silencedBy"] for r in alerts.values()):
        silences = endpoint.get("/api/v2/silences")
        ends = {s["id"]: _instant(s.get("endsAt")) for s in silences if isinstance(s, dict)
                and isinstance(s.get("id"), str)} if isinstance(silences, list) else {}
        for key, reported in alerts.items():
            until = [ends[i] for i in reported.state["silencedBy"] if ends.get(i) is not None]
            if until:
                alerts[key] = dataclasses.replace(reported, silenced_until=max(u for u in until if u is not None))
    return view


# ---------------------------------------------------------------- the pass

@dataclass(frozen=True)
class Target:
    """The integration synced: its row and what it may reach."""

    id: int
    name: str
    person_id: int
    username: str


def _integration(session: Session, tenant_id: int, name: str) -> Target:
    row = session.execute(select(Integration.id, Integration.name, Integration.format, Integration.person_id,
                                 Integration.revoked_at)
                          .where(Integration.tenant_id == tenant_id, Integration.name == name)).first()
    if row is None:
        raise NotFound(f"no integration {name!r}", "see `nocctl integration list`")
    if row.format != "alertmanager":
        raise UsageError(f"integration {name!r} is a {row.format} integration",
                         "`alertmanager sync` keeps the alerts of an alertmanager integration")
    if row.revoked_at is not None:
        raise Conflict(f"integration {name!r} is revoked", "its alerts are no longer Alertmanager's to change")
    return Target(row.id, row.name, row.person_id, f"integration:{row.name}")


def _metadata(current: Any, reported: Reported) -> dict[str, Any]:
    """The alert's metadata with Alertmanager's present status (and the silence's end)."""
    data = dict(current) if isinstance(current, dict) else {}
    data["status"] = reported.state
    if reported.silenced_until is not None and reported.state["state"] == "suppressed":
        data["silencedUntil"] = clock.isoformat(reported.silenced_until)
    else:
        data.pop("silencedUntil", None)
    return data


def _sync_tenant(session: Session, tenant: TenantRef, caller: Caller, name: str, view: View, endpoint: Endpoint,
                 now: datetime, settle: int, summary: Summary) -> None:
    target = _integration(session, tenant.id, name)
    system = Actor(tenant.id, None, "system", caller.os_user, caller.host)  # type: ignore[arg-type]
    # The integration's reach, by the one scope rule: what its identity may ingest for.
    reach = access.load(session, Actor(tenant.id, target.person_id, target.username, "", "")).coverage(access.INGEST)
    rules = maintenance.Rulebook(maintenance.load_rules(session, tenant.id))
    # Alertmanager's uptime is on the real clock (NOC_NOW and --now move only nocctl's).
    real_now = datetime.now(UTC)
    settled = settle <= 0 or (view.up_since is not None and view.up_since <= real_now - timedelta(seconds=settle))
    if not settled:
        view.notes.append(f"Alertmanager has been up since {clock.isoformat(view.up_since)}, less than the settle "
                          f"time: alerts it no longer reports are left for a later run")
    rows = session.execute(
        select(ALERTS.c.id, ALERTS.c.dedup_key, ALERTS.c.status, ALERTS.c.client_id, ALERTS.c.site_id,
               ALERTS.c.alert_type, ALERTS.c.entity_type, ALERTS.c.entity_id, ALERTS.c["metadata"].label("meta"),
               ALERTS.c.first_seen_at, ALERTS.c.created_at)
        .where(ALERTS.c.tenant_id == tenant.id, text(ALERT_ACTIVE_SQL), ALERTS.c.source == SOURCE,
               ALERTS.c.dedup_key.startswith(KEY_PREFIX, autoescape=True),
               reach.where(ALERTS.c.client_id, ALERTS.c.site_id))
        .order_by(ALERTS.c.dedup_key)).all()  # ingest's lock order: concurrent writers cannot deadlock
    details = {"by": BY, "integration": target.name, "url": endpoint.shown}
    entries: list[audit.Entry] = []
    for row in rows:
        reported = view.alerts.get(row.dedup_key)
        moved: tuple[Any, dict[str, Any], dict[str, Any]] | None = None  # (move, fields, audit details)
        if reported is None:
            # Gone from Alertmanager: it ended (its "resolved" was muted, or never sent).
            if settled and row.created_at <= view.asked_at:
                note = f"resolved by {BY}: no longer reported by Alertmanager at {endpoint.shown}"
                at = max(now, row.first_seen_at)
                moved = (RESOLVE, alert_resolved(at, None, row.first_seen_at, note), {"at": clock.isoformat(at)})
        elif reported.state["state"] == "suppressed":
            more = {"silenced_by": reported.state["silencedBy"], "inhibited_by": reported.state["inhibitedBy"],
                    "silenced_until": clock.isoformat(reported.silenced_until)}
            if row.status in ALERT_HOLD.allowed:
                moved = (ALERT_HOLD, {"status": ALERT_HOLD.to, "metadata": _metadata(row.meta, reported)}, more)
            elif row.status == SUPPRESSED and _metadata(row.meta, reported) != row.meta:
                _write(session, row.id, (SUPPRESSED,), {"metadata": _metadata(row.meta, reported)})
        elif (reported.state["state"] == "active" and row.status in ALERT_SURFACE.allowed
              and rules.covering(row.client_id, row.site_id, row.alert_type, now, row.entity_type, row.entity_id,
                                 row.meta) is None):
            moved = (ALERT_SURFACE, {"status": ALERT_SURFACE.to, "metadata": _metadata(row.meta, reported)}, {})
        if moved is None or not _write(session, row.id, moved[0].allowed, moved[1]):
            summary.unchanged += 1  # (or moved by someone else meanwhile: theirs stands)
            continue
        move, fields, more = moved
        if move is RESOLVE:
            summary.resolved += 1
        elif move is ALERT_HOLD:
            summary.suppressed += 1
        else:
            summary.unsuppressed += 1
        entries.append(audit.Entry(move.audit_action, "alert", row.id,
                                   {"from": row.status, "to": fields["status"], **details, **more},
                                   row.client_id, row.site_id))
    audit.record_many(session, system, entries, at=now)


def _write(session: Session, alert_id: int, allowed: tuple[str, ...], fields: dict[str, Any]) -> bool:
    """Set `fields` on the alert if it is still in one of the `allowed` statuses (a
    conditional UPDATE: an engineer's move made meanwhile wins). Whether it changed."""
    changed = session.execute(update(ALERTS).where(ALERTS.c.id == alert_id, ALERTS.c.status.in_(allowed))
                              .values(**fields).returning(ALERTS.c.id)).scalar()
    return changed is not None


def lock_name(integration: str) -> str:
    """The pass lock: one per integration, so the syncs of two Alertmanagers never wait for
    each other (integration names are letters, digits and _ . -: safe in a file name)."""
    return f"alertmanager-sync-{integration}"


def run(engine: Engine, caller: Caller, integration: str, url: str, now: datetime, dry_run: bool = False,
        timeout: float = DEFAULT_TIMEOUT, settle: int = DEFAULT_SETTLE) -> tuple[Summary, View]:
    """Sync the alerts of `integration` (of the caller's tenant) with the Alertmanager at
    `url`, under the integration's pass lock (a second runner exits 75), in one
    transaction (rolled back on a dry run). Everything it writes is stamped `now`."""
    endpoint = Endpoint(url, timeout)
    summary = Summary()
    with passes.running(engine, lock_name(integration), now, dry_run) as job:
        ours = [t for t in job.tenants if t.slug == caller.tenant]
        if not ours:
            raise NotFound(f"tenant {caller.tenant!r} does not exist",
                           f"run `nocctl --tenant {caller.tenant} init` to create it")
        with Session(job.engine) as session:  # the integration first: a typo costs no HTTP request
            _integration(session, ours[0].id, integration)
        view = read(endpoint)
        summary.reported = view.count
        dataclasses.replace(job, tenants=ours).each_tenant(
            lambda session, tenant: _sync_tenant(session, tenant, caller, integration, view, endpoint, now, settle,
                                                 summary))
    view.duration_ms = job.duration_ms
    return summary, view
