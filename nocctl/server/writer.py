"""Group commit: one writer thread writes what concurrent requests bring, many requests per
transaction, and answers each of them only once that transaction has committed.

The request threads parse and authenticate; each hands its records to the writer as a `Job`
and waits for its `Outcome`. The writer takes every job waiting (up to `MAX_GROUP_REQUESTS`
requests and `MAX_GROUP_RECORDS` records), and in one transaction:

1. runs one ingest per key (`Ingest` with the integration's identity, through
   `integrations.acting_as`): the requests' records one after the other as one batch, in a
   savepoint, with the integration's scope as the defaults of records that name no unit;
   bad records are the pipeline's per-record rejects (dead letters), so one request's bad
   data never fails another's;
2. commits, then answers every job of the group.

An integration's run goes on over the groups of `REFRESH` (1 s), as `nocctl ingest` goes on
over the batches of a file: the key is looked up again (`integrations.resolve_key`, in the
writing transaction) and the identity, scope, maintenance windows and the clients and sites
it placed records on read again once it is older (the units in one query with the new run's
first group). So a key revoked, or rotated past its grace, is refused from at most 1 s after
the change committed (the request threads' cache only decides whether a request is queued at
all), and the per-group cost is the records' own, not that of reading who sends them.

If the database refuses the group (unavailable, locked past the wait bound, its schema
missing), every job of the group is answered `unavailable` (503 + Retry-After: the sender
retries, and de-duplication and event keys make the retry safe); nothing is retried here,
since a retry would meet the same database. Any other failure (a bug outside the pipeline's
per-record isolation) is retried one job at a time, so it costs only the request that
reaches it (`internal`, 500).

A request waits at most `timeout` seconds for the writer to take its job; a job not taken
by then is withdrawn and answered `unavailable`, so it is never written after its 503. A
job already being written waits for its group (whose database waits are bounded by the
same timeout, `server.writer_engine`), so its answer says what happened.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from nocctl.errors import NocError, NotFound, PermissionDenied, TemporaryFailure, UsageError, from_database_error
from nocctl.server.logs import logger
from nocctl.server.metrics import Metrics
from nocctl.services import integrations
from nocctl.services.ingest.options import Options, Reject, Summary
from nocctl.services.ingest.pipeline import Ingest
from nocctl.services.integrations import Resolved

MAX_GROUP_REQUESTS = 512
MAX_GROUP_RECORDS = 20_000
# Seconds an integration's ingest run goes on over groups before the key is looked up and its
# identity, scope and maintenance windows read again: how long a revoked or rotated-out key
# may still be taken, a new maintenance window or site go unseen by the server.
REFRESH = 1.0
MAX_RUNS = 1024

# What a job's answer can be (the app turns each into a status code).
OK = "ok"
UNAUTHORIZED = "unauthorized"  # the key stopped working (revoked, rotated) before the group began
FORBIDDEN = "forbidden"  # the integration's identity may no longer ingest (its grant is gone)
UNAVAILABLE = "unavailable"  # the database refused the group, or the writer did not take the job in time
INTERNAL = "internal"  # a bug reached by this request alone


@dataclass
class Outcome:
    status: str
    rejects: list[Reject] = field(default_factory=list)
    message: str = ""


@dataclass(eq=False)
class Job:
    """One request's records for the writer: (record or RecordError, source, line, raw)
    items as `batches.parse_batches` makes them, all with this job's unique `source`."""

    key: str
    resolved: Resolved  # as the request thread's cache found it; the writer looks it up again
    source: str
    items: list[tuple[Any, str, int | None, object]]
    outcome: Outcome | None = None
    taken: bool = False  # by the writer, into a group (else a timed-out request withdraws it)
    done: threading.Event = field(default_factory=threading.Event)

    def answer(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.set()


class _GroupRefused(Exception):
    """The database refused the group: every job in it is answered `unavailable`."""


class Writer:
    """The one writer thread. `session_factory` makes write sessions (on SQLite they begin
    with BEGIN IMMEDIATE); `options` are the ingest settings, the integration's scope is
    laid over them per integration."""

    def __init__(self, session_factory: Callable[[], Session], options: Options, os_user: str, host: str,
                 metrics: Metrics):
        self.session_factory = session_factory
        self.options = options
        self.os_user, self.host = os_user, host
        self.metrics = metrics
        self.queue: deque[Job] = deque()
        self.runs: dict[str, _Run] = {}  # by key: the writer thread's alone
        self.ready = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="nocctl-writer", daemon=True)
        self.log = logger()

    # ------------------------------------------------------------ the request threads' side

    def start(self) -> None:
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def submit(self, job: Job, timeout: float) -> Outcome:
        """Queue `job` and wait for its answer (see the module's docstring for the bound)."""
        with self.ready:
            if self.stopping:
                return Outcome(UNAVAILABLE, message="the server is shutting down")
            self.queue.append(job)
            self.metrics.queued.set(len(self.queue))
            self.ready.notify()
        if job.done.wait(timeout):
            return job.outcome  # type: ignore[return-value]  # set before done
        with self.ready:
            if not job.taken:  # withdrawn: it is never written after its 503
                self.queue.remove(job)
                self.metrics.queued.set(len(self.queue))
                return Outcome(UNAVAILABLE, message=f"the database did not take the request within {timeout:g} s")
        # Being written: the group's database waits are bounded by the same timeout.
        if job.done.wait(timeout + 5):
            return job.outcome  # type: ignore[return-value]
        return Outcome(UNAVAILABLE, message="the database did not answer in time; the request may have been"
                                            " stored, and sending it again is safe")

    def stop(self, timeout: float) -> bool:
        """Write what is queued, then end the thread; whether it ended within `timeout`."""
        with self.ready:
            self.stopping = True
            self.ready.notify()
        self.thread.join(timeout)
        return not self.thread.is_alive()

    # ------------------------------------------------------------ the writer thread

    def _take(self) -> list[Job] | None:
        with self.ready:
            while not self.queue:
                if self.stopping:
                    return None
                self.ready.wait()
            group: list[Job] = []
            records = 0
            while self.queue and len(group) < MAX_GROUP_REQUESTS:
                job = self.queue[0]
                if group and records + len(job.items) > MAX_GROUP_RECORDS:
                    break
                self.queue.popleft()
                job.taken = True
                group.append(job)
                records += len(job.items)
            self.metrics.queued.set(len(self.queue))
            return group

    def _run(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            try:
                self.write(group)
            except BaseException as exc:  # never leave a request waiting on a writer that died
                for job in group:
                    if not job.done.is_set():
                        job.answer(Outcome(INTERNAL, message=f"internal error: {type(exc).__name__}"))
                self.log.error("writer failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                if not isinstance(exc, Exception):
                    raise

    def write(self, group: list[Job]) -> None:
        """Write `group` in one transaction and answer each job (see the module's docstring)."""
        started = time.monotonic()
        try:
            outcomes = self._write_group(group)
        except _GroupRefused as refused:
            self.metrics.group_failures.labels("unavailable").inc()
            for job in group:
                job.answer(Outcome(UNAVAILABLE, message=str(refused)))
            return
        except Exception as exc:  # noqa: BLE001 - a bug (the database's refusals are _GroupRefused): find its request
            self.metrics.group_failures.labels("internal").inc()
            if len(group) > 1:
                self.log.warning("group failed, writing its requests one at a time", requests=len(group),
                                 error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
                for job in group:
                    self.write([job])
                return
            self.log.error("request failed", source=group[0].source, error=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc())
            group[0].answer(Outcome(INTERNAL, message=f"internal error: {type(exc).__name__}"))
            return
        self.metrics.group_seconds.observe(time.monotonic() - started)
        self.metrics.group_requests.observe(len(group))
        self.metrics.group_records.observe(sum(len(job.items) for job in group))
        for job, outcome in zip(group, outcomes, strict=True):
            job.answer(outcome)

    def _write_group(self, group: list[Job]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        counts: list[tuple[str, Summary]] = []
        try:
            with self.session_factory() as session:
                session.begin()
                now = time.monotonic()
                by_key: dict[str, tuple[_Run, list[Job]]] = {}
                for job in group:
                    run = self._run_of(session, job.key, now)
                    if run.resolved is None or run.resolved.format != job.resolved.format:
                        outcomes[id(job)] = Outcome(UNAUTHORIZED)
                    else:
                        by_key.setdefault(job.key, (run, []))[1].append(job)
                for key, (run, jobs) in by_key.items():
                    outcomes.update(self._ingest(session, key, run, jobs, counts))
                commit_started = time.monotonic()
                session.commit()
                self.metrics.commit.observe(time.monotonic() - commit_started)
        except Exception as exc:
            self.runs.clear()  # what they read may have been rolled back: start afresh
            # The database's own refusals (down, locked past the wait, no schema, a login
            # without the rights): the sender should retry later. Anything else is a bug.
            mapped = exc if isinstance(exc, NocError) else from_database_error(exc)
            if isinstance(mapped, (TemporaryFailure, NotFound, PermissionDenied, UsageError)):
                self.log.warning("database refused a group", requests=len(group), error=str(mapped))
                raise _GroupRefused(f"database unavailable: {mapped.message}") from exc
            raise
        for integration, summary in counts:  # once committed: what the metrics say was stored, was
            for outcome, count in summary.as_dict().items():
                if outcome != "received" and count:
                    self.metrics.events.labels(integration, outcome).inc(count)
        return [outcomes[id(job)] for job in group]

    def _run_of(self, session: Session, key: str, now: float) -> _Run:
        """The ingest run of `key`'s integration, begun (the key looked up in `session`'s
        transaction) when there is none younger than `REFRESH`."""
        run = self.runs.get(key)
        if run is None or run.until <= now:
            # The units the ended run placed records on are read again with the new run's
            # first group, in one query (not one per group that names a unit it has not seen).
            known = [code for code, unit in run.ingest.units.items() if unit is not None] if run and run.ingest else []
            run = _Run(integrations.resolve_key(session, key), now + REFRESH, units=known)
            if len(self.runs) >= MAX_RUNS:
                self.runs.clear()
            self.runs[key] = run
        return run

    def _ingest(self, session: Session, key: str, run: _Run, jobs: list[Job],
                counts: list[tuple[str, Summary]]) -> dict[int, Outcome]:
        """One integration's jobs of the group, as one batch (a savepoint) under its
        identity and scope."""
        resolved = run.resolved
        assert resolved is not None  # `_write_group` answered the jobs of an invalid key
        run.rejects = {job.source: [] for job in jobs}
        batch = [item for job in jobs for item in job.items]
        try:
            with integrations.acting_as(resolved, self.os_user, self.host) as caller:
                if run.ingest is None:  # the run's first group: its identity is authenticated in it
                    # The format is kept with each dead letter (`ingest rejects retry` parses it
                    # again so); the scope's unit is the default of records that name none.
                    defaults = resolved.defaults()
                    options = replace(self.options, input_format=resolved.format, client=defaults["client"],
                                      site=defaults["site"])
                    run.ingest = Ingest(self.session_factory, caller, options, run.reject)
                    run.ingest.expect_units(run.units)
                before = run.ingest.summary.as_dict()
                run.ingest.run(batches=[batch] if batch else [], session=session)
        except PermissionDenied as exc:  # the batch's savepoint is rolled back: nothing of it stays
            self.runs.pop(key, None)
            self.log.warning("integration may not ingest", integration=resolved.name, error=str(exc))
            return {id(job): Outcome(FORBIDDEN, message=f"integration {resolved.name!r} may not ingest")
                    for job in jobs}
        after = run.ingest.summary.as_dict()
        counts.append((resolved.name, Summary(**{k: after[k] - before[k] for k in after})))
        return {id(job): Outcome(OK, run.rejects[job.source]) for job in jobs}


@dataclass(eq=False)
class _Run:
    """An integration's ingest run, continued over the groups of `REFRESH` seconds: its
    identity, scope and maintenance windows are read in its first group (as `nocctl
    ingest` reads them once for a whole file)."""

    resolved: Resolved | None  # None: the key is no longer valid
    until: float  # monotonic time
    units: list[str] = field(default_factory=list)  # codes the previous run knew: read again at once
    ingest: Ingest | None = None
    rejects: dict[str, list[Reject]] = field(default_factory=dict)  # the current group's, by job source

    def reject(self, reject: Reject) -> None:
        self.rejects[reject.source].append(reject)
