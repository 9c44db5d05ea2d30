"""The kinds of alerts the demo's monitoring raises — type, entity, severities, how often per
site and day, at which hours (India Standard Time), how often a firing alert repeats — and
the draws that decide how long a problem lasts and whether, and when, someone acknowledges it."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from nocctl.simulator.plan import HOUR

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
REPAIR: dict[str, tuple[float, float]] = {"fast": (20 * 60, 1.0), "medium": (90 * 60, 1.0), "slow": (10 * HOUR, 0.8)}
NEVER = {"fast": 0.01, "medium": 0.02, "slow": 0.05}
# Acknowledgement: probability and median delay per severity.
ACK = {"CRITICAL": (0.97, 6 * 60), "HIGH": (0.9, 12 * 60), "MEDIUM": (0.65, 40 * 60), "LOW": (0.3, 3 * HOUR),
       "INFO": (0.03, 6 * HOUR)}


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def pick(rng: random.Random, weights: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weights], [w[1] for w in weights])[0]


def time_to_repair(rng: random.Random, speed: str, severity: str) -> int | None:
    """Seconds until the monitor reports the problem cleared (`speed`: the kind's `repair`);
    None: never. CRITICAL problems get everyone's attention: fixed sooner, never left to rot."""
    if severity != "CRITICAL" and rng.random() < NEVER[speed]:
        return None
    median, sigma = REPAIR[speed]
    if severity == "CRITICAL":
        median, sigma = min(median * 0.6, 40 * 60), 0.9
    seconds = rng.lognormvariate(math.log(median), sigma)
    if rng.random() < 0.04:  # the long tail: parts to order, a vendor visit
        seconds *= rng.uniform(3, 8) if severity == "CRITICAL" else rng.uniform(4, 15)
    return max(120, int(seconds))


def time_to_ack(rng: random.Random, severity: str, resolve_after: int | None) -> int | None:
    """Seconds until someone acknowledges the alert through its feed; None: nobody does
    (or not before it clears)."""
    chance, median = ACK[severity]
    if rng.random() >= chance:
        return None
    seconds = max(30, int(rng.lognormvariate(math.log(median), 0.9)))
    return seconds if resolve_after is None or seconds < resolve_after - 30 else None
