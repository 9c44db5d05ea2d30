"""The demo's operational feeds: what the facility-management systems of the twelve sites
report beside the alerts — helpdesk tickets, work orders, the guards' and staff's shifts with
their check-ins, the device inventory with its states and sync health, geofence and
security events — as the feed records `nocctl ingest --kind KIND` takes (the shape of
`examples/feeds/*.ndjson`), each stamped with the `updated_at` its source system gave it.

The snapshot pass counts them as they stand when it runs, so the driver ingests each record
at the first snapshot instant at or after its `updated_at` (a source polled as often as the
pass runs) and then runs the pass. The device inventory reports changes (down, up, sync
health falling and recovering), not heartbeats: its status is what counts.

Drawn from a `random.Random` seeded from the plan's seed (apart from the alert traffic's):
the same seed and end give the same records."""
from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from typing import Any

from nocctl import clock
from nocctl.simulator.kinds import PROFILES, pick, poisson
from nocctl.simulator.organisation import NOISE, SITES
from nocctl.simulator.plan import DAY, HOUR, IST_SECONDS, Plan

MINUTE = 60
# Ticket priorities: how often, and the resolution SLA (seconds) the helpdesk sets as due_at.
PRIORITIES = (("P1", 1), ("P2", 3), ("P3", 4), ("P4", 2))
TICKET_SLA = {"P1": 4 * HOUR, "P2": 8 * HOUR, "P3": 24 * HOUR, "P4": 72 * HOUR}
TICKET_TITLES = ("Chiller tripped, floor temperature rising", "Washroom exhaust fan noisy", "DG set fuel sensor faulty",
                 "Dock shutter motor jammed", "Water leak near the server room", "Lift stuck between floors",
                 "Lights out in the parking bay", "Access card reader not working", "Pantry RO unit leaking",
                 "Fire panel showing a fault", "CCTV monitor blank in the security cabin", "AC not cooling")
WORK_ORDER_TITLES = ("Monthly fire extinguisher inspection", "Replace compressor contactor", "Deep cleaning, zone B",
                     "Pest control round", "DG set preventive maintenance", "Repaint walkway markings",
                     "UPS battery health check", "Replace door closer, staff entrance", "HVAC filter change")
# People on shift at each kind of site (IST hours: start, length), by people group.
GUARD_SHIFTS = ((6, 8), (14, 8), (22, 8))
STAFF = {"ACME": (("security-guards", 2), ("housekeeping", 2)),
         "GLOBEX": (("security-guards", 3), ("housekeeping", 1)),
         "INITECH": (("security-guards", 2), ("housekeeping", 2), ("technicians", 1))}
GROUP_SHIFTS = {"housekeeping": ((7, 8),), "technicians": ((9, 9),)}
BADGE = {"security-guards": "g", "housekeeping": "hk", "technicians": "tech"}
# The device inventory of a site: (id, device type, name).
DEVICES = (("nvr-01", "nvr", "Network video recorder"), ("gw-01", "gateway", "Site gateway"),
           ("acs-01", "access-control", "Staff entrance ACS panel"), ("bio-01", "biometric", "Biometric terminal 1"),
           ("bio-02", "biometric", "Biometric terminal 2"), ("bms-01", "bms-gateway", "BMS gateway"),
           ("hh-01", "guard-handheld", "Guard tour handheld 1"), ("hh-02", "guard-handheld", "Guard tour handheld 2"))
SECURITY_EVENTS = (("DOOR_FORCED", "HIGH", "Door forced open outside operating hours", 3),
                   ("DOOR_HELD_OPEN", "MEDIUM", "Door held open for more than 5 minutes", 5),
                   ("TAILGATING", "LOW", "Two entries on one badge at the staff door", 4),
                   ("INVALID_BADGE", "INFO", "Expired badge presented at the turnstile", 5),
                   ("PANIC_BUTTON", "CRITICAL", "Panic button pressed at reception", 0.15))
# The campus with a sync problem: its handhelds lose sync now and then.
SYNC_TROUBLE = {"INITECH-HYD": 0.5, "GLOBEX-BOM-WH2": 0.25}

Record = tuple[int, str, dict[str, Any]]  # (updated_at, kind, feed record)


def _iso(at: float) -> str:
    text = clock.isoformat(datetime.fromtimestamp(int(at), UTC))
    assert text is not None  # (an instant in, text out)
    return text


def _office_hour(rng: random.Random, day_start: int) -> int:
    """An instant of the IST day starting at `day_start`, weighted by the office-hours profile."""
    hour = rng.choices(range(24), PROFILES["day"])[0]
    return day_start + hour * HOUR + rng.randrange(HOUR)


class Feeds:
    """The feed records of the plan's period, in `updated_at` order (`build`)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.rng = random.Random(f"{plan.seed}:feeds")
        self.start, self.end = int(plan.start.timestamp()), int(plan.end.timestamp())
        self.out: list[Record] = []
        self.serial = {"FM-": 10000, "WO-": 4400, "gf-": 90000, "sec-": 30000}
        self.outages: dict[tuple[str, str], list[tuple[int, int]]] = {}  # (site, device) -> down periods
        self.sync_trouble: dict[str, list[tuple[int, int]]] = {}  # site -> periods its handhelds lag

    def _next(self, prefix: str) -> str:
        self.serial[prefix] += 1
        return f"{prefix}{self.serial[prefix]}"

    def _emit(self, at: float, kind: str, record: dict[str, Any]) -> None:
        at = int(at)
        if self.start < at <= self.end:
            self.out.append((at, kind, {"id": record.pop("id"), "updated_at": _iso(at), **record}))

    def _days(self) -> range:
        """The starts (UTC instants of IST midnight) of the local days that touch the period."""
        first = (self.start + IST_SECONDS) // DAY * DAY - IST_SECONDS
        return range(first - DAY, self.end, DAY)

    # -------------------------------------------------- the kinds

    def tickets(self, site: str, day: int) -> None:
        rng = self.rng
        for _ in range(poisson(rng, 1.4 * NOISE.get(site, 1.0))):
            opened = _office_hour(rng, day)
            priority = pick(rng, PRIORITIES)
            sla = TICKET_SLA[priority]
            due = opened + sla
            fixed = None if rng.random() < 0.015 else opened + max(20 * MINUTE, int(rng.lognormvariate(
                math.log(sla * 0.45), 0.8)))
            base = {"site": site, "priority": priority, "opened_at": _iso(opened), "due_at": _iso(due),
                    "title": rng.choice(TICKET_TITLES)}
            ticket = self._next("FM-")
            self._emit(opened + rng.randint(60, 5 * MINUTE), "ticket",
                       {"id": ticket, **base, "status": "OPEN", "escalated": False})
            started = opened + rng.randint(10 * MINUTE, 90 * MINUTE)
            if fixed is None or started < fixed:
                self._emit(started, "ticket", {"id": ticket, **base, "status": "IN_PROGRESS", "escalated": False})
            escalated = opened + int(sla * rng.uniform(0.6, 0.9))
            late = fixed is None or fixed > escalated
            if late and rng.random() < 0.5:  # the client chases it
                self._emit(escalated, "ticket", {"id": ticket, **base, "status": "IN_PROGRESS", "escalated": True})
            else:
                late = False
            if fixed is not None:
                self._emit(fixed, "ticket", {"id": ticket, **base, "status": "RESOLVED", "escalated": late,
                                             "closed_at": _iso(fixed)})

    def work_orders(self, site: str, day: int) -> None:
        rng = self.rng
        for _ in range(poisson(rng, 1.0 * NOISE.get(site, 1.0) ** 0.5)):
            created = _office_hour(rng, day)
            span = rng.choice((4, 8, 24, 48, 72)) * HOUR
            base = {"site": site, "due_at": _iso(created + span), "title": rng.choice(WORK_ORDER_TITLES)}
            order = self._next("WO-")
            self._emit(created, "work_order", {"id": order, **base, "status": "OPEN"})
            if rng.random() < 0.05:
                self._emit(created + rng.randint(HOUR, 8 * HOUR), "work_order",
                           {"id": order, **base, "status": "CANCELLED"})
                continue
            assigned = created + rng.randint(20 * MINUTE, 4 * HOUR)
            started = assigned + rng.randint(30 * MINUTE, 6 * HOUR)
            done = created + max(HOUR, int(rng.lognormvariate(math.log(span * 0.6), 0.7)))
            for at, status in ((assigned, "ASSIGNED"), (started, "IN_PROGRESS")):
                if at < done:
                    self._emit(at, "work_order", {"id": order, **base, "status": status})
            if rng.random() > 0.02:  # a few are left open
                self._emit(done, "work_order", {"id": order, **base, "status": "COMPLETED",
                                                "completed_at": _iso(done)})

    def shifts(self, site: str, day: int) -> None:
        """The roster (published the evening before), each check-in, and the guards' geofence
        ENTER/EXIT; now and then someone is late, never turns up, or leaves the geofence."""
        rng = self.rng
        noise = NOISE.get(site, 1.0)
        spread = math.sqrt(noise)  # a noisy site's staff is a little less punctual, not three times
        client = site.split("-")[0]
        local_date = datetime.fromtimestamp(day + IST_SECONDS, UTC).date()
        weekday = local_date.weekday()
        for group, headcount in STAFF[client]:
            if group == "technicians" and weekday >= 5:
                continue
            for number, (hour, length) in enumerate(GUARD_SHIFTS if group == "security-guards"
                                                    else GROUP_SHIFTS[group]):
                begin, finish = day + hour * HOUR, day + (hour + length) * HOUR
                for post in range(1, headcount + 1):
                    person = f"{BADGE[group]}-{SITES.index(site) + 1:02d}{number}{post}"
                    shift_id = f"SHIFT-{site}-{local_date:%Y%m%d}-{group[0].upper()}{number + 1}{post}"
                    base = {"site": site, "person": person, "group": group, "shift_start": _iso(begin),
                            "shift_end": _iso(finish)}
                    self._emit(begin - rng.randint(10, 14) * HOUR, "attendance", {"id": shift_id, **base})
                    roll = rng.random()
                    if roll < 0.02 * spread:
                        continue  # never turned up
                    if roll < 0.08 * spread:
                        checked_in = begin + rng.randint(16 * MINUTE, 70 * MINUTE)  # late
                    else:
                        checked_in = begin - rng.randint(0, 15 * MINUTE) + rng.randint(0, 10 * MINUTE)
                    self._emit(checked_in + rng.randint(5, 90), "attendance",
                               {"id": shift_id, **base, "checked_in_at": _iso(checked_in)})
                    if group != "security-guards":
                        continue
                    self._geofence(site, person, "ENTER", checked_in)
                    if rng.random() < (0.12 if hour == 22 else 0.04) * noise:
                        out = rng.randint(checked_in + 30 * MINUTE, finish - 30 * MINUTE)
                        self._geofence(site, person, "BREACH", out, {"distance_m": rng.randint(120, 900)})
                        self._geofence(site, person, "ENTER", out + rng.randint(5 * MINUTE, 40 * MINUTE))
                    self._geofence(site, person, "EXIT", finish + rng.randint(0, 12 * MINUTE))

    def _geofence(self, site: str, person: str, event: str, at: int, metadata: dict[str, Any] | None = None) -> None:
        record = {"id": self._next("gf-"), "site": site, "person": person, "event": event, "occurred_at": _iso(at)}
        self._emit(at + self.rng.randint(2, 40), "geofence", {**record, "metadata": metadata} if metadata else record)

    def security(self, site: str, day: int) -> None:
        rng = self.rng
        weights = [w for *_, w in SECURITY_EVENTS]
        for _ in range(poisson(rng, 0.35 * NOISE.get(site, 1.0))):
            hour = rng.choices(range(24), PROFILES["night"])[0]
            at = day + hour * HOUR + rng.randrange(HOUR)
            event, severity, message, _ = rng.choices(SECURITY_EVENTS, weights)[0]
            self._emit(at + rng.randint(5, 120), "security", {"id": self._next("sec-"), "site": site, "event": event,
                                                             "severity": severity, "occurred_at": _iso(at),
                                                             "message": message})

    def device_troubles(self, site: str) -> None:
        """When each device of the site is down, and when its handhelds lag in their sync."""
        rng = self.rng
        days = self.plan.days
        for device, _, _ in DEVICES:
            periods = []
            for _ in range(poisson(rng, 0.05 * NOISE.get(site, 1.0) * days)):
                at = rng.randint(self.start, self.end)
                length = int(rng.lognormvariate(math.log(50 * MINUTE), 1.0))
                if rng.random() < 0.1:
                    length = int(rng.uniform(4, 14) * HOUR)  # waiting for a technician
                periods.append((at, at + max(10 * MINUTE, length)))
            self.outages[(site, device)] = sorted(periods)
        trouble = []
        for _ in range(poisson(rng, SYNC_TROUBLE.get(site, 0.05) * days)):
            at = rng.randint(self.start, self.end)
            trouble.append((at, at + int(rng.uniform(2, 10) * HOUR)))
        self.sync_trouble[site] = trouble

    def build(self) -> list[Record]:
        """Every record, in updated_at order (ties: as generated)."""
        for site in SITES:
            self.device_troubles(site)
            for day in self._days():
                self.tickets(site, day)
                self.work_orders(site, day)
                self.shifts(site, day)
                self.security(site, day)
            self.devices(site)
        self.out.sort(key=lambda r: r[0])
        return self.out

    # -------------------------------------------------- devices

    def devices(self, site: str) -> None:
        """The inventory reports each device once at the start, then every change: down (as
        soon as it drops), up again, its sync health falling and recovering."""
        troubles = self.sync_trouble.get(site, [])
        for device, kind, _ in DEVICES:
            changes = [self.start + 60]
            for begin, finish in self.outages.get((site, device), ()):
                changes += [begin + 60, finish]
            if kind == "guard-handheld":
                changes += [at for begin, finish in troubles for at in (begin, finish)]
            for at in sorted(set(changes)):
                self._emit(at, "device", self._device(site, device, at))

    def _device(self, site: str, device: str, at: int) -> dict[str, Any]:
        """What the inventory says of a device at `at`. Its status is authoritative (no
        last_seen_at: it reports changes, not heartbeats); a device that is down reports no
        sync health."""
        kind, name = next((k, n) for d, k, n in DEVICES if d == device)
        record: dict[str, Any] = {"id": f"{site}:{device}", "site": site, "device_type": kind, "name": name}
        if any(b <= at < e for b, e in self.outages.get((site, device), ())):
            return {**record, "status": "OFFLINE"}
        health = 99.0 - (SITES.index(site) * 7 + DEVICES.index((device, kind, name)) * 3) % 9
        if kind == "guard-handheld" and any(b <= at < e for b, e in self.sync_trouble.get(site, ())):
            health = 35.0 + (at // HOUR * 13 + SITES.index(site)) % 40
        return {**record, "status": "ONLINE", "sync_health": health}
