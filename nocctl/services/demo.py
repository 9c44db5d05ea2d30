"""The demo (`nocctl demo`): a realistic organisation and weeks of alert traffic, played
through the code that runs in production, so that every listing and report has something
worth looking at.

The organisation, the people, on-call schedules, escalation policies and maintenance windows
are set up through the services. The traffic is generated with a seeded `random.Random`
(the same seed and end give the same data) and then *replayed in simulated time*: the clock
advances in cron-sized steps (`STEP`); at each step the records that occurred in it go
through the real ingest pipeline as NDJSON native records, the escalation pass runs as cron
would, and the NOC engineers of the shift work the incidents (acknowledge, start, resolve,
close) through the incident service. Rows therefore carry the times they would have had —
an incident opened by a burst on the 3rd is created on the 3rd, with its SLA target then.

The traffic: a diurnal pattern in India Standard Time per kind of alert (attendance at shift
changes, work orders in office hours, geofence breaches at night), a few noisy sites,
repeats of firing alerts (duplicates), correlated bursts (a site's gateway goes down and
its devices follow within minutes; a power failure), alerts inside the maintenance windows
(stored SUPPRESSED), acknowledge and resolve events with realistic delays and a long tail,
some alerts never resolved, a few manual escalations and two incidents opened by hand, one
of which misses its SLA.

Services take an engine and plain values and never print; progress goes to a callback."""
from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from nocctl import clock
from nocctl.models import Alert, AuditLog, BusinessUnit, Incident, IncidentAlert
from nocctl.services import (alerts, escalation, incidents, maintenance, notify, oncall, org, people, tenants)
from nocctl.services.ingest.pipeline import Ingest, Options, default_dedup_key
from nocctl.services.ingest.reader import read_documents
from nocctl.services.rbac import Caller
from nocctl.vocabulary import SEVERITIES, SEVERITY_RANK

UTC = timezone.utc
IST = timedelta(hours=5, minutes=30)
IST_SECONDS = 19800
HOUR, DAY = 3600, 86400
STEP = 1800  # simulated seconds between two cron passes (`escalate run` every 10 minutes)

# ---------------------------------------------------------------- the organisation

# examples/org.json (shipped inside the wheel too), plus the NOC's own shift engineers who
# are on call and work the incidents.
NOC_ENGINEERS = ("deepa.pillai", "imran.sheikh", "neha.kulkarni")


def _organisation() -> dict[str, list[dict[str, str]]]:
    from nocctl.resources import examples_dir

    document = json.loads((examples_dir() / "org.json").read_text(encoding="utf-8"))
    document["people"] += [
        {"username": "deepa.pillai", "name": "Deepa Pillai", "email": "deepa.pillai@example.com",
         "phone": "+91-80-4000-9001"},
        {"username": "imran.sheikh", "name": "Imran Sheikh", "email": "imran.sheikh@example.com",
         "phone": "+91-80-4000-9002"},
        {"username": "neha.kulkarni", "name": "Neha Kulkarni", "email": "neha.kulkarni@example.com",
         "phone": "+91-80-4000-9003"},
    ]
    return document


ORG = _organisation()
SITES = tuple(s["code"] for s in ORG["sites"])
CLIENT_OF = {s["code"]: s["client"] for s in ORG["sites"]}
IN_CHARGE = {s["code"]: s["in_charge"] for s in ORG["sites"]}
# Alerts per site relative to an ordinary one: a flaky warehouse, a busy store, a campus
# with a sync problem; small stores are quiet.
NOISE = {"GLOBEX-BOM-WH2": 3.0, "ACME-BLR-WF": 2.0, "INITECH-HYD": 1.8, "ACME-MYS": 0.6, "GLOBEX-AMD": 0.7}
GRANTS = ("noc:view_all_clients", "noc:ack_alerts", "noc:escalate", "noc:assign_incidents")
SHIFT_TURN = 12 * HOUR  # the NOC's tenant-wide rotation: day and night shifts

# Tables whose rows mean "somebody uses this database" (a database only `init`-ed is fine).
DATA_TABLES = ("business_unit", "alert", "incident", "maintenance_window", "oncall_schedule", "escalation_policy",
               "ingest_reject")

# ---------------------------------------------------------------- kinds of alerts

# Hourly weights in India Standard Time (index = hour).
PROFILES = {
    "flat": [1.0] * 24,
    "day": [0.25, 0.2, 0.2, 0.2, 0.25, 0.4, 0.7, 1.0, 1.4, 1.7, 1.8, 1.8, 1.6, 1.6, 1.7, 1.7, 1.5, 1.3, 1.1, 0.9,
            0.7, 0.5, 0.4, 0.3],
    "night": [1.6, 1.6, 1.5, 1.4, 1.2, 0.9, 0.5, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.4, 0.6, 0.9,
              1.2, 1.4, 1.6, 1.7],
    "shift": [0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 4.0, 2.0, 0.3, 0.1, 0.1, 0.1, 0.1, 0.2, 4.0, 2.0, 0.3, 0.1, 0.1, 0.1,
              0.1, 0.2, 4.0, 2.0],
}
SHIFT_NAMES = {6: "morning", 7: "morning", 14: "afternoon", 15: "afternoon", 22: "night", 23: "night"}


@dataclass(frozen=True)
class Kind:
    alert_type: str
    entity_type: str
    pool: str  # entity ids: `cam:24` → cam-01…cam-24; `TKT-` → a new id each time; `shift` → shift of the day
    severities: tuple[tuple[str, int], ...]
    per_day: float  # alerts per ordinary site per day
    profile: str
    resend: int  # minutes between repeats while it fires (0: sent once)
    repair: str  # fast | medium | slow
    source: str
    message: str  # {e}: the entity, {n}: a number


KINDS = (
    Kind("DEVICE_OFFLINE", "camera", "cam:24", (("HIGH", 1), ("MEDIUM", 6), ("LOW", 3)), 5.0, "flat", 10, "fast",
         "vms", "CCTV camera {e} offline: no heartbeat for {n} min"),
    Kind("DEVICE_OFFLINE", "biometric", "bio:4", (("HIGH", 3), ("MEDIUM", 5)), 1.2, "day", 15, "fast",
         "attendance", "Biometric terminal {e} not responding"),
    Kind("SYNC_DEGRADED", "sync_agent", "sync:2", (("MEDIUM", 4), ("LOW", 4), ("INFO", 2)), 1.6, "flat", 20,
         "medium", "sync-monitor", "Data sync from {e} lagging by {n} min"),
    Kind("ATTENDANCE_MISSING", "shift", "shift", (("MEDIUM", 6), ("HIGH", 2)), 1.4, "shift", 30, "medium",
         "attendance", "{n} guards not punched in for the {e} shift"),
    Kind("ATTENDANCE_ANOMALY", "guard", "G:40", (("LOW", 6), ("MEDIUM", 2)), 0.8, "day", 0, "slow", "attendance",
         "Irregular punch pattern for guard {e}"),
    Kind("GEOFENCE_BREACH", "guard", "G:40", (("HIGH", 5), ("MEDIUM", 3)), 0.7, "night", 5, "fast", "guard-tour",
         "Guard {e} left the site geofence while on duty"),
    Kind("WORK_ORDER_OVERDUE", "work_order", "WO-", (("MEDIUM", 5), ("LOW", 4)), 1.0, "day", 120, "slow",
         "fm-portal", "Work order {e} overdue by {n} h"),
    Kind("SLA_BREACH", "ticket", "TKT-", (("HIGH", 6), ("CRITICAL", 1)), 0.4, "day", 60, "slow", "helpdesk",
         "Ticket {e} breached its response SLA"),
    Kind("TICKET_ESCALATED", "ticket", "TKT-", (("MEDIUM", 4), ("HIGH", 3)), 0.4, "day", 0, "medium", "helpdesk",
         "Client escalated ticket {e}"),
    Kind("DEVICE_SPOOF", "biometric", "bio:4", (("HIGH", 3), ("CRITICAL", 1)), 0.08, "day", 0, "medium",
         "attendance", "Possible spoofed punch on terminal {e}"),
    Kind("SECURITY_ANOMALY", "door", "door:8", (("CRITICAL", 2), ("HIGH", 3)), 0.08, "night", 5, "medium",
         "access-control", "Door {e} forced open outside working hours"),
)

# Time to repair (median seconds, lognormal sigma) and the share never resolved.
REPAIR = {"fast": (20 * 60, 1.0), "medium": (90 * 60, 1.0), "slow": (10 * HOUR, 0.8)}
NEVER = {"fast": 0.01, "medium": 0.02, "slow": 0.05}
# Acknowledgement: probability and median delay per severity.
ACK = {"CRITICAL": (0.97, 6 * 60), "HIGH": (0.9, 12 * 60), "MEDIUM": (0.65, 40 * 60), "LOW": (0.3, 3 * HOUR),
       "INFO": (0.03, 6 * HOUR)}
BURSTS_PER_SITE_DAY = 0.08
REPEAT_HORIZON = 6 * HOUR  # a monitor stops repeating an alert that has fired this long


# ---------------------------------------------------------------- plan

@dataclass(frozen=True)
class Window:
    """A maintenance window of the demo, as the generator and `maintenance.add` see it."""

    scope: str  # client | site
    unit: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    types: tuple[str, ...] = ()  # empty: suppress all
    weekly_until: date | None = None

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(s for s in SITES if (CLIENT_OF[s] if self.scope == "client" else s) == self.unit)

    def occurrences(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        first, length = int(self.starts_at.timestamp()), int((self.ends_at - self.starts_at).total_seconds())
        period = 7 * DAY if self.weekly_until else None
        at = first
        while at <= end:  # India has no daylight saving: a weekly window is a fixed period
            if self.weekly_until and (datetime.fromtimestamp(at, UTC) + IST).date() > self.weekly_until:
                return
            if at + length > start:
                yield at, at + length
            if period is None:
                return
            at += period

    def holds(self, site: str, alert_type: str) -> bool:
        return site in self.sites and (not self.types or alert_type in self.types)


@dataclass
class Problem:
    """Something that went wrong at a site, and what the monitoring and the NOC did about it."""

    at: int
    site: str
    alert_type: str
    entity_type: str
    entity_id: str
    severity: str
    message: str
    source: str
    resolve_after: int | None  # None: never resolved
    ack_after: int | None  # None: never acknowledged by an event
    resend: int  # seconds between repeats; 0: none
    repeats: int  # at most this many repeats


@dataclass(frozen=True)
class Plan:
    end: datetime
    days: int
    seed: int

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def setup_at(self) -> datetime:
        """The organisation is set up the day before the traffic starts."""
        return (self.start - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)

    def story_at(self, days_before_end: float, share_of_span: float, minutes: int = 0) -> int:
        """An instant `days_before_end` before the end, or `share_of_span` of a short demo
        (plus `minutes`, so that stories do not all happen on the hour)."""
        span = self.days * DAY
        return int(self.end.timestamp() - min(days_before_end * DAY, share_of_span * span)) + minutes * 60


def windows(plan: Plan) -> list[Window]:
    """The weekly patching window of GLOBEX (Sunday 02:00–04:00 IST, every site of the
    client) and a one-off UPS replacement at ACME Whitefield that holds device alerts only."""
    local = (plan.setup_at + IST).date()
    sunday = local + timedelta(days=(6 - local.weekday()) % 7 or 7)
    weekly = datetime(sunday.year, sunday.month, sunday.day, 2, 0, tzinfo=UTC) - IST
    ups = datetime.fromtimestamp(plan.story_at(2, 0.4), UTC).replace(minute=0, second=0)
    return [
        Window("client", "GLOBEX", weekly, weekly + timedelta(hours=2),
               "Weekly WMS patching and UPS self-test, CHG-2210",
               weekly_until=(plan.end + IST).date() + timedelta(weeks=26)),
        Window("site", "ACME-BLR-WF", ups, ups + timedelta(hours=3), "UPS replacement, CHG-1042",
               types=("DEVICE_OFFLINE", "SYNC_DEGRADED")),
    ]


# ---------------------------------------------------------------- traffic

def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _pick(rng: random.Random, weights: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weights], [w[1] for w in weights])[0]


def _repair(rng: random.Random, profile: str, severity: str) -> int | None:
    """Seconds until the monitor reports the problem cleared; None: never. CRITICAL
    problems get everyone's attention: fixed sooner, never left to rot."""
    if severity != "CRITICAL" and rng.random() < NEVER[profile]:
        return None
    median, sigma = REPAIR[profile]
    if severity == "CRITICAL":
        median, sigma = min(median * 0.6, 40 * 60), 0.9
    seconds = rng.lognormvariate(math.log(median), sigma)
    if rng.random() < 0.04:  # the long tail: parts to order, a vendor visit
        seconds *= rng.uniform(3, 8) if severity == "CRITICAL" else rng.uniform(4, 15)
    return max(120, int(seconds))


def _ack(rng: random.Random, severity: str, resolve_after: int | None) -> int | None:
    chance, median = ACK[severity]
    if rng.random() >= chance:
        return None
    seconds = max(30, int(rng.lognormvariate(math.log(median), 0.9)))
    return seconds if resolve_after is None or seconds < resolve_after - 30 else None


class Traffic:
    """Builds the problems of the whole period, then expands them into records in time order."""

    def __init__(self, plan: Plan, windows: list[Window], opening: tuple[str, ...] = ("CRITICAL",)):
        self.plan = plan
        self.opening = opening  # severities that open an incident (config incident_min_severity)
        self.rng = random.Random(plan.seed)
        self.start, self.end = int(plan.start.timestamp()), int(plan.end.timestamp())
        self.windows = windows
        self.problems: list[Problem] = []
        self.serial = {"TKT-": 40000, "WO-": 88000}
        self.story_keys: dict[str, list[tuple[str, str]]] = {}  # story name -> [(site, dedup key)]
        self.arrivals: list[int] = []  # when alerts that may open an incident reach nocctl

    # -------------------------------------------------- building

    def _entity(self, kind: Kind, site: str, at: int) -> str:
        if kind.pool == "shift":
            local = datetime.fromtimestamp(at, UTC) + IST
            hour = local.hour
            name = SHIFT_NAMES.get(hour, "general")
            day = (local - timedelta(days=1)).date() if name == "night" and hour < 6 else local.date()
            return f"{name}-{day.isoformat()}"
        if kind.pool.endswith("-"):
            self.serial[kind.pool] += 1
            return f"{kind.pool}{self.serial[kind.pool]}"
        prefix, count = kind.pool.split(":")
        width = 3 if prefix == "G" else 2  # guards G-001…, devices cam-01…
        return f"{prefix}-{self.rng.randint(1, int(count)):0{width}d}"

    def _in_window(self, site: str, alert_type: str, at: int) -> bool:
        return any(w.holds(site, alert_type) and any(a <= at < b for a, b in w.occurrences(at - 7 * DAY, at))
                   for w in self.windows)

    def add(self, kind: Kind, site: str, at: int, severity: str | None = None, resolve_after: Any = "draw",
            ack_after: Any = "draw", entity: str | None = None, resend: int | None = None,
            repeats: int = 8) -> Problem:
        rng = self.rng
        severity = severity or _pick(rng, kind.severities)
        if resolve_after == "draw":
            resolve_after = _repair(rng, kind.repair, severity)
        if ack_after == "draw":
            ack_after = None if self._in_window(site, kind.alert_type, at) else _ack(rng, severity, resolve_after)
        entity = entity or self._entity(kind, site, at)
        number = rng.randint(3, 9) if kind.pool == "shift" else rng.randint(2, 30) if kind.pool == "WO-" else \
            rng.randint(5, 45)  # guards missing, hours overdue, minutes offline or lagging
        noisy = NOISE.get(site, 1.0) >= 1.8 and kind.entity_type == "camera"
        every = kind.resend * 60 if resend is None else resend
        problem = Problem(at, site, kind.alert_type, kind.entity_type, entity, severity,
                          kind.message.format(e=entity, n=number), kind.source, resolve_after, ack_after,
                          every // 2 if noisy else every, repeats * 2 if noisy else repeats)
        self.problems.append(problem)
        return problem

    def background(self) -> None:
        """Independent problems, site by site and hour by hour: Poisson counts with the
        kind's daily rate, its hourly profile (IST), weekends quieter in offices and stores."""
        rng = self.rng
        first_hour = self.start - self.start % HOUR
        for hour_start in range(first_hour, self.end, HOUR):
            local = datetime.fromtimestamp(hour_start, UTC) + IST
            weekend = local.weekday() >= 5
            for site in SITES:
                noise = NOISE.get(site, 1.0)
                for kind in KINDS:
                    lam = kind.per_day / 24 * PROFILES[kind.profile][local.hour] * noise
                    if weekend and kind.profile == "day":
                        lam *= 0.6
                    for _ in range(_poisson(rng, lam)):
                        at = hour_start + rng.randrange(HOUR)
                        if self.start < at <= self.end:
                            self.add(kind, site, at)

    def burst(self, site: str, at: int, outage: int, critical: bool = True, ack_after: int | None = None) -> None:
        """A correlated burst: the site's gateway (CRITICAL: an incident opens) or its mains
        power fails, and devices follow within minutes; all recover together."""
        rng = self.rng
        camera, bio, sync = KINDS[0], KINDS[1], KINDS[2]
        if ack_after is None:
            ack_after = max(60, int(rng.lognormvariate(math.log(8 * 60), 0.8)))
        if critical:
            head = Kind("DEVICE_OFFLINE", "gateway", "gw:1", (("CRITICAL", 1),), 0, "flat", 10, "fast", "nms",
                        "Site gateway {e} unreachable: every device behind it is offline")
            self.add(head, site, at, "CRITICAL", outage, ack_after if ack_after < outage else None, "gw-01",
                     repeats=12)
        else:
            head = Kind("POWER_FAILURE", "ups", "ups:1", (("HIGH", 1),), 0, "flat", 10, "fast", "bms",
                        "Mains power failure: site running on UPS {e}")
            self.add(head, site, at, "HIGH", outage, ack_after if ack_after < outage else None, "ups-01", repeats=12)
        cameras = rng.sample(range(1, 25), rng.randint(3, 7))
        for number in cameras:
            lag = rng.randint(20, 8 * 60)
            self.add(camera, site, at + lag, rng.choice(("HIGH", "MEDIUM")), outage - lag + rng.randint(0, 360),
                     None if rng.random() < 0.7 else "draw", f"cam-{number:02d}", repeats=12)
        if critical:
            lag = rng.randint(60, 6 * 60)
            self.add(bio, site, at + lag, "MEDIUM", outage - lag + rng.randint(0, 360), None,
                     f"bio-{rng.randint(1, 4):02d}", repeats=12)
            lag = rng.randint(5 * 60, 9 * 60)
            self.add(sync, site, at + lag, "MEDIUM", outage - lag + rng.randint(60, 600), None, "sync-01")

    def bursts(self) -> None:
        rng = self.rng
        for site in SITES:
            rate = BURSTS_PER_SITE_DAY * math.sqrt(NOISE.get(site, 1.0))
            for _ in range(_poisson(rng, rate * self.plan.days)):
                at = rng.randint(self.start, self.end)
                outage = int(rng.lognormvariate(math.log(45 * 60), 1.0))
                if rng.random() < 0.12:
                    outage = int(rng.uniform(4, 8) * HOUR)  # waiting for the ISP
                self.burst(site, at, max(600, outage), critical=rng.random() < 0.6)

    def maintenance_noise(self) -> None:
        """Devices rebooting during planned work: alerts inside the windows (SUPPRESSED at
        ingest). Most clear before the window ends; a few keep firing after it and surface."""
        rng = self.rng
        camera, sync = KINDS[0], KINDS[2]
        for window in self.windows:
            for begin, finish in window.occurrences(self.start, self.end):
                for site in window.sites:
                    for _ in range(rng.randint(3, 8)):
                        at = rng.randint(begin + 120, finish - 20 * 60)
                        kind = camera if rng.random() < 0.75 else sync
                        clears = finish - at - rng.randint(60, 15 * 60)
                        if rng.random() < 0.15:
                            clears = finish - at + rng.randint(15 * 60, 90 * 60)  # still down after the work
                        self.add(kind, site, at, rng.choice(("MEDIUM", "LOW")), clears, None, resend=15 * 60,
                                 repeats=10)
                    if window.types:  # a type the window does not hold still comes through
                        geofence = KINDS[5]
                        self.add(geofence, site, rng.randint(begin, finish - 60), "HIGH")
                # A camera taken down for replacement never reports again: its alert stays held.
                at = rng.randint(begin + 120, begin + 30 * 60)
                self.add(camera, rng.choice(window.sites), at, "LOW", None, None, f"cam-{rng.randint(25, 32):02d}",
                         resend=15 * 60, repeats=(finish - at) // (15 * 60) - 1)

    def story(self) -> None:
        """Scripted events that make the reports tell something, placed relative to the end
        (scaled down for short demos): a long outage at INITECH-HYD that breaks the CRITICAL
        SLA, a short one at GLOBEX-BOM-WH2 handled in time, failing biometric terminals at
        ACME (an incident opened by hand, resolved within SLA) and a flapping camera at
        GLOBEX-BOM-WH2 (an incident opened by hand, resolved late)."""
        self.burst("INITECH-HYD", self.plan.story_at(2, 0.55, 13), int(5 * HOUR + 10 * 60), True, 22 * 60)
        self.burst("GLOBEX-BOM-WH2", self.plan.story_at(1, 0.3, 29), 35 * 60, True, 6 * 60)
        m1 = self.plan.story_at(5.5, 0.7, 17)
        bio, camera = KINDS[1], KINDS[0]
        keys = []
        for i, site in enumerate(("ACME-BLR-WF", "ACME-BLR-KOR", "ACME-CHN")):
            p = self.add(bio, site, m1 - 50 * 60 + i * 11 * 60, "HIGH", int(4.5 * HOUR) + i * 300, 15 * 60, "bio-03",
                         repeats=6)
            keys.append((site, default_dedup_key(p.alert_type, site, p.entity_type, p.entity_id)))
        self.story_keys["biometrics"] = keys
        m2 = self.plan.story_at(3.5, 0.45, 41)
        p = self.add(camera, "GLOBEX-BOM-WH2", m2 - 2 * HOUR, "MEDIUM", None, 25 * 60, "cam-13", resend=15 * 60,
                     repeats=8)
        self.story_keys["camera"] = [("GLOBEX-BOM-WH2",
                                      default_dedup_key(p.alert_type, p.site, p.entity_type, p.entity_id))]

    def build(self) -> None:
        self.background()
        self.bursts()
        self.maintenance_noise()
        self.story()

    # -------------------------------------------------- records

    def records(self) -> list[tuple[int, int, dict[str, Any]]]:
        """Every record (occurred_at, order, native record), in time order. Problems are
        expanded in the order they start, so a problem that starts while an earlier one
        of the same entity still fires becomes one more repeat of it (as a real monitor's
        would), and its own acknowledge and resolve are not sent."""
        rng = random.Random(f"{self.plan.seed}:records")
        busy: dict[str, float] = {}
        out: list[tuple[int, int, dict[str, Any]]] = []

        def emit(at: float, record: dict[str, Any]) -> None:
            at = int(at)
            if self.start < at <= self.end:
                record["occurred_at"] = clock.isoformat(datetime.fromtimestamp(at, UTC))
                out.append((at, len(out), record))

        for p in sorted(self.problems, key=lambda p: (p.at, p.site, p.entity_id, p.alert_type)):
            key = default_dedup_key(p.alert_type, p.site, p.entity_type, p.entity_id)
            trigger = {"alert_type": p.alert_type, "severity": p.severity, "message": p.message, "site": p.site,
                       "entity_type": p.entity_type, "entity_id": p.entity_id, "source": p.source}
            if p.at < busy.get(key, 0):
                emit(p.at, dict(trigger))
                continue
            cleared = p.at + p.resolve_after if p.resolve_after is not None else math.inf
            busy[key] = cleared
            emit(p.at, dict(trigger))
            if p.severity in self.opening:
                self.arrivals.append(p.at + rng.randint(5, 40))  # the feed's delay
            if p.resend:
                last, at = min(cleared, p.at + REPEAT_HORIZON), p.at
                for _ in range(p.repeats):
                    at += p.resend * rng.uniform(0.8, 1.2)
                    if at >= last:
                        break
                    emit(at, dict(trigger))
            close = {"site": p.site, "dedup_key": key, "source": p.source}
            if p.ack_after is not None:
                emit(p.at + p.ack_after, {"action": "acknowledge", **close})
            if p.resolve_after is not None:
                emit(cleared, {"action": "resolve", **close})
        out.sort(key=lambda r: (r[0], r[1]))
        self.arrivals.sort()
        return out


# ---------------------------------------------------------------- the database

def existing_data(engine: Engine, admin: str) -> list[str]:
    """The tables that hold data (people other than `admin` count): the demo refuses to mix
    its made-up alerts into a database somebody uses."""
    present = set(inspect(engine).get_table_names())
    found = []
    with engine.connect() as connection:
        for table in DATA_TABLES:
            if table in present and connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():
                found.append(table)
        if "person" in present and connection.execute(
                text("SELECT 1 FROM person WHERE username <> :admin LIMIT 1"), {"admin": admin}).first():
            found.append("person")
    return found


@dataclass
class Result:
    tenant: str
    admin: str
    since: datetime
    until: datetime
    records: int = 0
    ingest: dict[str, int] = field(default_factory=dict)
    escalations: int = 0
    manual_escalations: int = 0
    manual_incidents: int = 0
    incident_moves: dict[str, int] = field(default_factory=dict)
    alerts_by_status: dict[str, int] = field(default_factory=dict)
    incidents_by_status: dict[str, int] = field(default_factory=dict)
    audit_rows: int = 0
    notifications: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def quiet_settings(settings: Any) -> Any:
    """The settings without the `[notify]` section: the demo's made-up escalations must
    never page anyone through the channels of a real configuration."""
    return replace(settings, file={k: v for k, v in settings.file.items() if k != "notify"})


class Demo:
    """One demo run against an empty, migrated database."""

    def __init__(self, engine: Engine, settings: Any, caller: Caller, admin: str, plan: Plan,
                 options: Options, on_progress: Callable[[int, int, int], None] = lambda done, total, records: None):
        from nocctl.db import make_sessionmaker

        self.engine = engine
        self.settings = quiet_settings(settings)
        self.caller = caller
        self.admin = admin
        self.plan = plan
        self.options = options
        self.on_progress = on_progress
        self.read = make_sessionmaker(engine)
        self.write = make_sessionmaker(engine.execution_options(sqlite_begin="IMMEDIATE"))
        self.ops = random.Random(f"{plan.seed}:operations")
        self.result = Result(caller.tenant, admin, plan.start, plan.end)
        self.windows = windows(plan)
        self.agenda: list[tuple[int, int, str, tuple]] = []  # (when, order, action, arguments): a heap
        self.order = itertools.count()
        self.incident_plans: dict[int, dict[str, Any]] = {}

    def as_person(self, username: str) -> Caller:
        return Caller(self.caller.tenant, username, self.caller.os_user, self.caller.host)

    def engineer_at(self, at: int) -> Caller:
        """The NOC engineer on shift: the tenant-wide schedule's rotation."""
        turn = (at - int(self.plan.setup_at.timestamp())) // SHIFT_TURN
        return self.as_person(NOC_ENGINEERS[turn % len(NOC_ENGINEERS)])

    # -------------------------------------------------- set-up

    def setup(self) -> None:
        """Tenant and admin, the organisation, grants, on-call, escalation policies and the
        maintenance windows, each through its service (and audited), the day before."""
        clock.set_now(self.plan.setup_at)
        tenants.initialise(self.write(), self.caller, self.admin)
        document = org.parse_org_file("demo organisation", json.dumps(ORG))
        org.import_org(self.write(), self.caller, document)
        for username in (*NOC_ENGINEERS, "noc.lead"):
            for capability in GRANTS:
                people.grant(self.write(), self.caller, username, capability)
        shift_start = self.plan.setup_at
        oncall.add_schedule(self.write(), self.caller, "noc-shifts", None, NOC_ENGINEERS, shift_start, "12h")
        oncall.add_schedule(self.write(), self.caller, "acme-stores", "ACME", ("vikram.nair", "meera.iyer", "karthik.s"),
                            shift_start, "7d")
        holiday = self.plan.setup_at + timedelta(days=min(10, self.plan.days) - 0.5)
        oncall.add_override(self.write(), self.caller, "noc-shifts", "noc.lead", holiday, holiday + timedelta(hours=12))
        escalation.set_policy(self.write(), self.caller, ["oncall,CRITICAL=10m,HIGH=30m",
                                                          "site_in_charge,CRITICAL=20m,HIGH=1h",
                                                          "user:noc.lead,CRITICAL=30m,HIGH=2h"])
        escalation.set_policy(self.write(), self.caller, ["oncall,CRITICAL=5m,HIGH=15m,MEDIUM=2h",
                                                          "client_owner,CRITICAL=15m,HIGH=30m,MEDIUM=4h"],
                              client_code="INITECH")
        for window in self.windows:
            maintenance.add(self.write(), self.caller, maintenance.NewWindow(
                window.scope, window.unit, window.starts_at, window.ends_at, window.reason,
                suppress_all=not window.types, alert_types=window.types,
                recurrence="weekly" if window.weekly_until else "none",
                weekdays=("sun",) if window.weekly_until else (), until=window.weekly_until, timezone="Asia/Kolkata"))

    # -------------------------------------------------- people at work

    def schedule(self, at: float, action: str, *args: Any) -> None:
        """Put a person's action on the agenda, at an instant of simulated time."""
        heapq.heappush(self.agenda, (int(at), next(self.order), action, args))

    def _act(self, at: int, action: str, args: tuple) -> None:
        if action == "open incident":
            self._manual_incident(at, *args)
        elif action == "escalate":
            self._manual_escalation(at)
        else:
            self._incident_move(at, action, args[0])

    def _manual_escalation(self, at: int) -> None:
        """An engineer escalates the acknowledged alert that has waited longest."""
        with self.read() as session:
            row = session.execute(
                select(Alert.id, Alert.first_seen_at).where(
                    Alert.status == "ACKNOWLEDGED", Alert.severity.in_(("HIGH", "MEDIUM")),
                    Alert.first_seen_at <= datetime.fromtimestamp(at - 2 * HOUR, UTC))
                .order_by(Alert.first_seen_at, Alert.dedup_key).limit(1)).first()
        if row is None:
            return
        hours = (at - row.first_seen_at.timestamp()) / HOUR
        outcomes = alerts.act(self.write(), self.engineer_at(at), "escalate", [row.id], escalate_to="noc.lead",
                              note=f"still open after {hours:.0f}h: needs the client's facility manager")
        self.result.manual_escalations += sum(o.ok for o in outcomes)

    def _manual_incident(self, at: int, story: str, keys: list[tuple[str, str]]) -> None:
        """The shift lead opens an incident over alerts of the story (those still open)."""
        with self.read() as session:
            ids = session.scalars(select(Alert.id).where(Alert.dedup_key.in_([k for _, k in keys]),
                                                         Alert.status != "RESOLVED")
                                  .order_by(Alert.first_seen_at)).all()
        lead, sla = self.as_person("noc.lead"), self.settings.get("sla")
        if story == "biometrics":
            made = incidents.create(self.write(), lead, "Biometric terminals failing at several ACME stores", ids,
                                    "HIGH", runbook="https://wiki.example.com/noc/runbooks/biometric-terminals",
                                    ticket="INC-2041", client="ACME", sla=sla)
            resolve = at + 5 * HOUR + 12 * 60  # within its 8h SLA
        else:
            made = incidents.create(self.write(), lead, "Camera cam-13 at Bhiwandi WH2 keeps dropping off", ids,
                                    "MEDIUM", ticket="INC-2057", work_order="WO-88412", site="GLOBEX-BOM-WH2",
                                    sla=sla)
            resolve = at + 30 * HOUR + 25 * 60  # the vendor came late: misses its 24h SLA
        self.result.manual_incidents += 1
        self.incident_plans[made["id"]] = {"resolve": resolve,
                                           "assignee": "asha.rao" if story == "biometrics" else "sana.khan"}
        self.schedule(at + self.ops.randint(3 * 60, 12 * 60), "acknowledge", made["id"])
        self.schedule(resolve, "resolve", made["id"])

    def _incident_move(self, at: int, action: str, incident_id: int) -> None:
        plan = self.incident_plans[incident_id]
        if plan.get("resolved") and action in ("acknowledge", "assign", "start"):
            return  # cleared before anyone got to it
        outcomes = incidents.act(self.write(), self.engineer_at(at), action, [incident_id],
                                 assignee=plan.get("assignee") if action == "assign" else None)
        if not all(o.ok for o in outcomes):
            return
        self.result.incident_moves[action] = self.result.incident_moves.get(action, 0) + 1
        if action == "acknowledge":
            self.schedule(at + self.ops.randint(2 * 60, 10 * 60), "assign", incident_id)
        elif action == "assign":
            self.schedule(at + self.ops.randint(5 * 60, 30 * 60), "start", incident_id)
        elif action == "resolve":
            plan["resolved"] = True
            self.schedule(at + DAY + self.ops.randint(0, 6 * HOUR), "close", incident_id)

    def _plan_incidents(self, now: int) -> None:
        """What the shift will do about the open incidents: acknowledge a new one within
        minutes, assign it to the site in-charge, start work, resolve once its alerts have cleared (mostly soon after;
        sometimes hours later, when the paperwork waits), resolve a stale one after 14h."""
        firing = func.sum(case((Alert.status != "RESOLVED", 1), else_=0))
        site = aliased(BusinessUnit)
        with self.read() as session:
            rows = session.execute(
                select(Incident.id, Incident.created_at, site.code, firing)
                .outerjoin(site, site.id == Incident.site_id)
                .outerjoin(IncidentAlert, IncidentAlert.incident_id == Incident.id)
                .outerjoin(Alert, Alert.id == IncidentAlert.alert_id)
                .where(Incident.status.in_(incidents.OPEN))
                .group_by(Incident.id, Incident.created_at, site.code).order_by(Incident.id)).all()
        for incident_id, created_at, site_code, alerts_firing in rows:
            created = int(created_at.timestamp())
            plan = self.incident_plans.get(incident_id)
            if plan is None:  # a new one: the shift acknowledges it and hands it to the site in-charge
                plan = self.incident_plans[incident_id] = {"assignee": IN_CHARGE.get(site_code, "noc.lead")}
                delay = max(60, int(self.ops.lognormvariate(math.log(7 * 60), 0.7)))
                self.schedule(max(created + delay, now + self.ops.randint(60, 600)), "acknowledge", incident_id)
            if "resolve" in plan:
                continue
            if not alerts_firing:
                late = self.ops.random() < 0.08
                delay = int(self.ops.uniform(2, 6) * HOUR) if late else \
                    max(120, int(self.ops.lognormvariate(math.log(15 * 60), 0.8)))
                plan["resolve"] = now + delay
            elif now >= created + 14 * HOUR:
                plan["resolve"] = now + self.ops.randint(5 * 60, 30 * 60)
            else:
                continue
            self.schedule(plan["resolve"], "resolve", incident_id)

    # -------------------------------------------------- the run

    def run(self) -> Result:
        started = time.monotonic()
        try:
            self.setup()
            auto = self.options.incidents
            opening = SEVERITIES[:SEVERITY_RANK[auto.min_severity.upper()] + 1] if auto is not None else ()
            traffic = Traffic(self.plan, self.windows, opening)
            traffic.build()
            records = traffic.records()
            self.result.records = len(records)
            self._stream(traffic, records)
            end = self.plan.end
            clock.set_now(end)
            self.result.notifications = notify.run(self.engine, self.settings, end)
            self._census()
        finally:
            clock.set_now(None)  # back to NOC_NOW or the real time
        self.result.seconds = round(time.monotonic() - started, 2)
        return self.result

    def _stream(self, traffic: Traffic, records: list[tuple[int, int, dict[str, Any]]]) -> None:
        """Simulated time, one cron step after the other. Within a step the clock stops
        where something must happen at its own instant: an alert that may open an incident
        arrives (so the incident opens seconds after its alert, with its SLA target from
        then), or a person acts; the records that occurred up to there are ingested first.
        At the end of the step the escalation pass runs, then the shift plans its work."""
        start, end = traffic.start, traffic.end
        ingest = Ingest(self.write, self.caller, replace(self.options, batch_size=max(self.options.batch_size, 5000)))
        for at, story in ((self.plan.story_at(5.5, 0.7, 17), "biometrics"),
                          (self.plan.story_at(3.5, 0.45, 41), "camera")):
            self.schedule(at, "open incident", story, traffic.story_keys[story])
        at = start + int(self.ops.uniform(20, 40) * HOUR)
        while at < end:
            local_hour = (at + IST_SECONDS) // HOUR % 24  # engineers escalate in office hours
            self.schedule(at if 9 <= local_hour <= 18 else at + (11 - local_hour) % 24 * HOUR, "escalate")
            at += int(self.ops.uniform(24, 48) * HOUR)
        arrivals, next_arrival, index = traffic.arrivals, 0, 0
        times = [r[0] for r in records]
        steps = -(-(end - start) // STEP)
        for step in range(1, steps + 1):
            now = min(start + step * STEP, end)
            arrived = False
            while True:
                cut = now
                if next_arrival < len(arrivals):
                    cut = min(cut, arrivals[next_arrival])
                if self.agenda:
                    cut = min(cut, self.agenda[0][0])
                clock.set_now(datetime.fromtimestamp(cut, UTC))
                upto = bisect.bisect_right(times, cut, index)
                if upto > index:
                    lines = [json.dumps(record).encode() + b"\n" for _, _, record in records[index:upto]]
                    ingest.run(read_documents(lines, "demo"))
                    index = upto
                while next_arrival < len(arrivals) and arrivals[next_arrival] <= cut:
                    next_arrival += 1
                    arrived = True
                while self.agenda and self.agenda[0][0] <= cut:
                    _, _, action, args = heapq.heappop(self.agenda)
                    self._act(cut, action, args)
                if cut >= now:
                    break
            summary, _ = escalation.run(self.engine, self.settings, self.caller, clock.now())
            self.result.escalations += summary.escalated
            # Only an arrival opens an incident, and only a waiting one needs another look.
            if arrived or any("resolve" not in plan for plan in self.incident_plans.values()):
                self._plan_incidents(now)
            self.on_progress(now - start, end - start, index)
        self.result.ingest = ingest.summary.as_dict()

    def _census(self) -> None:
        with self.read() as session:
            self.result.alerts_by_status = dict(session.execute(
                select(Alert.status, func.count()).group_by(Alert.status).order_by(Alert.status)).all())
            self.result.incidents_by_status = dict(session.execute(
                select(Incident.status, func.count()).group_by(Incident.status).order_by(Incident.status)).all())
            self.result.audit_rows = session.scalar(select(func.count()).select_from(AuditLog))


def run(engine: Engine, settings: Any, caller: Caller, admin: str, plan: Plan, options: Options,
        on_progress: Callable[[int, int, int], None] = lambda done, total, records: None) -> Result:
    """Set up the demo organisation and stream the traffic of `plan` into an empty,
    migrated database. Call `existing_data` first: this does not check again."""
    return Demo(engine, settings, caller, admin, plan, options, on_progress).run()
