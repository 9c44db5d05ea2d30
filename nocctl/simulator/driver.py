"""The demo's driver: one run against an empty, migrated database, through the services that
run in production (DESIGN §1: the simulator is a client of the services, as the command line
is; no service imports it).

The organisation, the people, on-call schedules, escalation policies and maintenance windows
are set up through the services, the day before the traffic starts. The traffic (`Traffic`)
is then *replayed in simulated time*: the clock advances in cron-sized steps (`STEP`); at each
step the records that occurred in it go through the real ingest pipeline as NDJSON native
records, the escalation pass runs as cron would, and the NOC engineers of the shift work the
incidents (acknowledge, assign, start, resolve, close) through the incident service, with a
few manual escalations and two incidents opened by hand. Every SNAPSHOT_STEP the operational
feeds (`Feeds`) updated since go through feed ingest and the snapshot pass runs, raising and
resolving the derived alerts. Rows therefore carry the times they would have had. Progress
goes to a callback; nothing is printed."""
from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from nocctl import clock
from nocctl.config import Settings
from nocctl.lifecycle import ACKNOWLEDGED, INCIDENT_OPEN, RESOLVED
from nocctl.models import Alert, BusinessUnit, Incident, IncidentAlert
from nocctl.services import alerts, escalation, incidents, maintenance, notify, oncall, org, people, snapshot, tenants
from nocctl.services.ingest.feed_ingest import FeedIngest
from nocctl.services.ingest.pipeline import Ingest, Options
from nocctl.services.ingest.reader import read_documents
from nocctl.services.rbac import Caller
from nocctl.simulator.feeds import Feeds
from nocctl.simulator.organisation import GRANTS, IN_CHARGE, NOC_ENGINEERS, ORG
from nocctl.simulator.plan import DAY, HOUR, IST_SECONDS, Plan, windows
from nocctl.simulator.traffic import Traffic
from nocctl.vocabulary import SEVERITIES, SEVERITY_RANK

STEP = 1800  # simulated seconds between two cron passes (`escalate run` every 10 minutes)
# Simulated seconds between two snapshot passes over the month (cron runs it every 5 minutes;
# every 5 minutes of a month is 8,640 passes, too slow for a first command): each pass's
# window is this long, so the windows tile the month and every geofence and security event
# is counted once. Every 6 hours costs a 30-day demo about 4 s more CPU than no snapshots
# (every 2 hours: about 10 s). The last pass, at the end, uses the configured window
# (`snapshot.window`), so `nocctl status` right after the demo is fresh.
SNAPSHOT_STEP = 6 * HOUR
SHIFT_TURN = 12 * HOUR  # the NOC's tenant-wide rotation: day and night shifts

# Tables whose rows mean "somebody uses this database" (a database only `init`-ed is fine).
DATA_TABLES = ("business_unit", "alert", "incident", "maintenance_window", "oncall_schedule", "escalation_policy",
               "ingest_reject", "feed_record", "snapshot")


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
    """What a run did, for the command's summary line."""

    records: int = 0  # native records generated and ingested
    ingest: dict[str, int] = field(default_factory=dict)  # the ingest summary
    escalations: int = 0  # by the escalation pass
    manual_escalations: int = 0  # by an engineer
    incidents_by_status: dict[str, int] = field(default_factory=dict)
    feed_records: dict[str, int] = field(default_factory=dict)  # feed records ingested, by kind
    snapshot_passes: int = 0
    snapshots: int = 0  # snapshot rows written
    derived_created: int = 0  # derived alerts the snapshot passes raised …
    derived_resolved: int = 0  # … and resolved
    seconds: float = 0.0


@dataclass
class IncidentPlan:
    """What the shift means to do about one incident."""

    assignee: str
    resolve: int | None = None  # when it will be resolved (None: not decided yet)
    resolved: bool = False


def quiet_settings(settings: Settings) -> Settings:
    """The settings without the `[notify]` section: the demo's made-up escalations must
    never page anyone through the channels of a real configuration."""
    return replace(settings, file={k: v for k, v in settings.file.items() if k != "notify"})


class Demo:
    """One demo run against an empty, migrated database."""

    def __init__(self, engine: Engine, settings: Settings, caller: Caller, admin: str, plan: Plan,
                 options: Options, on_progress: Callable[[int, int, int], None] = lambda done, total, records: None
                 ) -> None:
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
        self.result = Result()
        self.windows = windows(plan)
        self.agenda: list[tuple[int, int, str, tuple[Any, ...]]] = []  # (when, order, action, arguments): a heap
        self.order = itertools.count()
        self.incident_plans: dict[int, IncidentPlan] = {}
        self.feeds = Feeds(plan)
        self.feed_records = self.feeds.out  # (updated_at, kind, record), in time order once built
        self.feed_times: list[int] = []
        self.feed_index = 0
        self.feed_ingests: dict[str, FeedIngest] = {}

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
        acme_store_managers = ("vikram.nair", "meera.iyer", "karthik.s")
        oncall.add_schedule(self.write(), self.caller, "acme-stores", "ACME", acme_store_managers, shift_start, "7d")
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

    def _act(self, at: int, action: str, args: tuple[Any, ...]) -> None:
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
                    Alert.status == ACKNOWLEDGED, Alert.severity.in_(("HIGH", "MEDIUM")),
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
                                                         Alert.status != RESOLVED)
                                  .order_by(Alert.first_seen_at)).all()
        lead, sla = self.as_person("noc.lead"), self.settings.sla
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
        self.incident_plans[made["id"]] = IncidentPlan("asha.rao" if story == "biometrics" else "sana.khan", resolve)
        self.schedule(at + self.ops.randint(3 * 60, 12 * 60), "acknowledge", made["id"])
        self.schedule(resolve, "resolve", made["id"])

    def _incident_move(self, at: int, action: str, incident_id: int) -> None:
        plan = self.incident_plans[incident_id]
        if plan.resolved and action in ("acknowledge", "assign", "start"):
            return  # cleared before anyone got to it
        outcomes = incidents.act(self.write(), self.engineer_at(at), action, [incident_id],
                                 assignee=plan.assignee if action == "assign" else None)
        if not all(o.ok for o in outcomes):
            return
        if action == "acknowledge":
            self.schedule(at + self.ops.randint(2 * 60, 10 * 60), "assign", incident_id)
        elif action == "assign":
            self.schedule(at + self.ops.randint(5 * 60, 30 * 60), "start", incident_id)
        elif action == "resolve":
            plan.resolved = True
            self.schedule(at + DAY + self.ops.randint(0, 6 * HOUR), "close", incident_id)

    def _plan_incidents(self, now: int) -> None:
        """What the shift will do about the open incidents: acknowledge a new one within
        minutes, assign it to the site in-charge, start work, resolve once its alerts have cleared
        (mostly soon after; sometimes hours later, when the paperwork waits), resolve a stale
        one after 14h."""
        firing = func.sum(case((Alert.status != RESOLVED, 1), else_=0))
        site = aliased(BusinessUnit)
        with self.read() as session:
            rows = session.execute(
                select(Incident.id, Incident.created_at, site.code, firing)
                .outerjoin(site, site.id == Incident.site_id)
                .outerjoin(IncidentAlert, IncidentAlert.incident_id == Incident.id)
                .outerjoin(Alert, Alert.id == IncidentAlert.alert_id)
                .where(Incident.status.in_(INCIDENT_OPEN))
                .group_by(Incident.id, Incident.created_at, site.code).order_by(Incident.id)).all()
        for incident_id, created_at, site_code, alerts_firing in rows:
            created = int(created_at.timestamp())
            plan = self.incident_plans.get(incident_id)
            if plan is None:  # a new one: the shift acknowledges it and hands it to the site in-charge
                plan = self.incident_plans[incident_id] = IncidentPlan(IN_CHARGE.get(site_code, "noc.lead"))
                delay = max(60, int(self.ops.lognormvariate(math.log(7 * 60), 0.7)))
                self.schedule(max(created + delay, now + self.ops.randint(60, 600)), "acknowledge", incident_id)
            if plan.resolve is not None:
                continue
            if not alerts_firing:
                late = self.ops.random() < 0.08
                delay = int(self.ops.uniform(2, 6) * HOUR) if late else \
                    max(120, int(self.ops.lognormvariate(math.log(15 * 60), 0.8)))
                plan.resolve = now + delay
            elif now >= created + 14 * HOUR:
                plan.resolve = now + self.ops.randint(5 * 60, 30 * 60)
            else:
                continue
            self.schedule(plan.resolve, "resolve", incident_id)

    # -------------------------------------------------- the run

    def _forget_pass_runs(self) -> None:
        """The passes ran in simulated time, not from cron: `nocctl doctor` right after the
        demo says they never ran (a fresh install's information) rather than that cron
        stopped minutes ago."""
        from sqlalchemy import delete

        from nocctl.models import PassRun

        with self.engine.begin() as conn:
            conn.execute(delete(PassRun.__table__))

    def run(self) -> Result:
        """Set up, stream the traffic, run the notification pass at the end; the clock is
        back to `NOC_NOW` or the real time afterwards, whatever happens."""
        started = time.monotonic()
        try:
            self.setup()
            auto = self.options.incidents
            opening = SEVERITIES[:SEVERITY_RANK[auto.min_severity.upper()] + 1] if auto is not None else ()
            traffic = Traffic(self.plan, self.windows, opening)
            traffic.build()
            records = traffic.records()
            self.result.records = len(records)
            self.feed_times = [at for at, _, _ in self.feeds.build()]
            self._stream(traffic, records)
            end = self.plan.end
            clock.set_now(end)
            notify.run(self.engine, self.settings, end)  # as cron would: with no channels, it sends nothing
            self._forget_pass_runs()
            self._census()
        finally:
            clock.set_now(None)  # back to NOC_NOW or the real time
        self.result.seconds = round(time.monotonic() - started, 2)
        return self.result

    # -------------------------------------------------- the feeds and the snapshot pass

    def snapshot_instants(self, start: int, end: int) -> list[int]:
        """When the snapshot pass runs: every SNAPSHOT_STEP on the epoch within the period,
        then at the end."""
        first = start - start % SNAPSHOT_STEP + SNAPSHOT_STEP
        return [*range(first, end, SNAPSHOT_STEP), end]

    def _snapshot(self, at: int, last: bool) -> bool:
        """The feed records updated up to `at` through feed ingest (one transaction), then
        the snapshot pass at `at`, as cron would run it: a window of SNAPSHOT_STEP, the last
        one of the configured size. True when it raised alerts."""
        upto = bisect.bisect_right(self.feed_times, at, self.feed_index)
        by_kind: dict[str, list[bytes]] = {}
        for _, kind, record in self.feed_records[self.feed_index:upto]:
            by_kind.setdefault(kind, []).append(json.dumps(record).encode() + b"\n")
        self.feed_index = upto
        with self.write() as session, session.begin():  # every feed polled now, in one transaction
            for kind, lines in by_kind.items():
                runner = self.feed_ingests.get(kind)
                if runner is None:
                    runner = self.feed_ingests[kind] = FeedIngest(self.write, self.caller,
                                                                  Options(kind=kind, batch_size=5000))
                runner.run(read_documents(lines, f"demo {kind} feed"), session=session)
        config = self.settings.snapshot if last else replace(self.settings.snapshot, window=SNAPSHOT_STEP)
        summary = snapshot.run(self.engine, config, self.caller, datetime.fromtimestamp(at, UTC),
                               correlation_window=self.options.correlation_window, incidents=self.options.incidents)
        self.result.snapshot_passes += 1
        self.result.snapshots += summary.snapshots_created
        self.result.derived_created += summary.alerts_created
        self.result.derived_resolved += summary.alerts_resolved
        return summary.alerts_created > 0

    def _stream(self, traffic: Traffic, records: list[tuple[int, int, dict[str, Any]]]) -> None:
        """Simulated time, one cron step after the other. Within a step the clock stops
        where something must happen at its own instant: an alert that may open an incident
        arrives (so the incident opens seconds after its alert, with its SLA target from
        then), or a person acts; the records that occurred up to there are ingested first.
        At the end of the step the escalation pass runs, then the shift plans its work."""
        start, end = traffic.start, traffic.end
        ingest = Ingest(self.write, self.caller, replace(self.options, batch_size=max(self.options.batch_size, 5000)))
        for name, story in traffic.stories.items():
            self.schedule(story.at, "open incident", name, story.keys)
        at = start + int(self.ops.uniform(20, 40) * HOUR)
        while at < end:
            local_hour = (at + IST_SECONDS) // HOUR % 24  # engineers escalate in office hours
            self.schedule(at if 9 <= local_hour <= 18 else at + (11 - local_hour) % 24 * HOUR, "escalate")
            at += int(self.ops.uniform(24, 48) * HOUR)
        arrivals, next_arrival, index = traffic.arrivals, 0, 0
        times = [r[0] for r in records]
        passes, next_pass = self.snapshot_instants(start, end), 0
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
                if next_pass < len(passes):
                    cut = min(cut, passes[next_pass])
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
                if next_pass < len(passes) and passes[next_pass] <= cut:
                    next_pass += 1
                    # The derived alerts it raises may open incidents: the shift looks again.
                    arrived = self._snapshot(cut, next_pass == len(passes)) or arrived
                if cut >= now:
                    break
            summary, _ = escalation.run(self.engine, self.settings, self.caller, clock.now())
            self.result.escalations += summary.escalated
            # Only an arrival opens an incident, and only a waiting one needs another look.
            if arrived or any(plan.resolve is None for plan in self.incident_plans.values()):
                self._plan_incidents(now)
            self.on_progress(now - start, end - start, index)
        self.result.ingest = ingest.summary.as_dict()
        self.result.feed_records = {kind: run.summary.received for kind, run in sorted(self.feed_ingests.items())}

    def _census(self) -> None:
        with self.read() as session:
            self.result.incidents_by_status = {status: count for status, count in session.execute(
                select(Incident.status, func.count()).group_by(Incident.status).order_by(Incident.status))}


def run(engine: Engine, settings: Settings, caller: Caller, admin: str, plan: Plan, options: Options,
        on_progress: Callable[[int, int, int], None] = lambda done, total, records: None) -> Result:
    """Set up the demo organisation and stream the traffic of `plan` into an empty,
    migrated database. Call `existing_data` first: this does not check again."""
    return Demo(engine, settings, caller, admin, plan, options, on_progress).run()
