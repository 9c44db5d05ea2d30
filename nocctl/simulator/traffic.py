"""The demo's alert traffic: the problems of the whole period — background problems site by
site and hour by hour, correlated bursts, devices rebooting during maintenance, and the
scripted stories — expanded into the native records a monitoring feed would send (triggers,
repeats while a problem fires, acknowledge and resolve events), in time order.

Everything is drawn from `random.Random`s seeded from the plan's seed: the same seed and end
give the same records."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from nocctl import clock
from nocctl.services.ingest.pipeline import default_dedup_key
from nocctl.simulator.kinds import KINDS, PROFILES, SHIFT_NAMES, Kind, pick, poisson, time_to_ack, time_to_repair
from nocctl.simulator.organisation import NOISE, SITES
from nocctl.simulator.plan import DAY, HOUR, IST, Plan, Window

Delay = int | None | Literal["draw"]  # seconds; None: never; "draw": drawn from the kind
BURSTS_PER_SITE_DAY = 0.08
REPEAT_HORIZON = 6 * HOUR  # a monitor stops repeating an alert that has fired this long


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
class Story:
    """A scripted story the shift lead opens an incident over, at `at`, with the alerts of
    `keys` (site, dedup key) that are still open then."""

    at: int
    keys: list[tuple[str, str]]


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
        self.stories: dict[str, Story] = {}  # the incidents the shift lead opens by hand, by name
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

    def add(self, kind: Kind, site: str, at: int, severity: str | None = None, resolve_after: Delay = "draw",
            ack_after: Delay = "draw", entity: str | None = None, resend: int | None = None,
            repeats: int = 8) -> Problem:
        """One problem of `kind` at `site` from `at`: the severity, delays ("draw": from the
        kind's distributions; None: never) and entity are drawn unless given."""
        rng = self.rng
        severity = severity or pick(rng, kind.severities)
        if isinstance(resolve_after, str):  # "draw"
            resolve_after = time_to_repair(rng, kind.repair, severity)
        if isinstance(ack_after, str):
            held = self._in_window(site, kind.alert_type, at)  # nobody acknowledges what maintenance holds
            ack_after = None if held else time_to_ack(rng, severity, resolve_after)
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
                    for _ in range(poisson(rng, lam)):
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
            for _ in range(poisson(rng, rate * self.plan.days)):
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
        m1 = self.plan.story_at(5.5, 0.7, 17)  # the shift lead opens an incident over each story then
        bio, camera = KINDS[1], KINDS[0]
        keys = []
        for i, site in enumerate(("ACME-BLR-WF", "ACME-BLR-KOR", "ACME-CHN")):
            p = self.add(bio, site, m1 - 50 * 60 + i * 11 * 60, "HIGH", int(4.5 * HOUR) + i * 300, 15 * 60, "bio-03",
                         repeats=6)
            keys.append((site, default_dedup_key(p.alert_type, site, p.entity_type, p.entity_id)))
        self.stories["biometrics"] = Story(m1, keys)
        m2 = self.plan.story_at(3.5, 0.45, 41)
        p = self.add(camera, "GLOBEX-BOM-WH2", m2 - 2 * HOUR, "MEDIUM", None, 25 * 60, "cam-13", resend=15 * 60,
                     repeats=8)
        self.stories["camera"] = Story(m2, [("GLOBEX-BOM-WH2",
                                             default_dedup_key(p.alert_type, p.site, p.entity_type, p.entity_id))])

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
                last, at = min(cleared, p.at + REPEAT_HORIZON), float(p.at)
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
