"""`nocctl ingest`: alerts in, from files or stdin, in any of the supported formats; with
`--kind`, the records of an operational feed (tickets, work orders, attendance, devices,
geofence and security events) through the same machinery."""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from nocctl import output, private
from nocctl.cli.common import App, collector_eased, emit_rows, listing_options, note, pass_app
from nocctl.cli.inputs import InputFile
from nocctl.vocabulary import FEED_KINDS

if TYPE_CHECKING:
    from nocctl.tunables import AutoIncidents

FORMATS = ("auto", "native", "alertmanager", "pagerduty")
KINDS = ("alert", *FEED_KINDS)


def incident_level(app: App) -> str | None:
    """The configured `incident_min_severity`, checked; None when turned off."""
    auto = app.settings.auto_incidents
    return None if auto is None else auto.min_severity


def auto_incidents(app: App) -> AutoIncidents | None:
    """Automatic incidents as configured (`incident_min_severity = "none"` turns them off),
    as the ingest pipeline takes them."""
    return app.settings.auto_incidents


class _Progress:
    """`received N` on a terminal's stderr, redrawn in place; silent when piped."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, summary) -> None:
        if self.enabled:
            rate = summary.received / max(time.monotonic() - self.started, 1e-9)
            click.echo(f"\ringesting: {summary.received:,} records ({rate:,.0f}/s)", err=True, nl=False)
            self.shown = True

    def done(self) -> None:
        if self.shown:
            click.echo("\r\033[K", err=True, nl=False)


class RejectsFile:
    """`--rejects FILE`: the raw text of each rejected record appended, one per line, the
    file synced once the run ends. If it cannot be written (disk full, a quota), what this
    run appended is cut off again — no half line — and the run goes on: every reject is
    still in the dead-letter table. The failure is told once, and the exit status says it.
    A file created here is 0600 whatever the umask (it holds raw records: `nocctl.private`);
    an existing one is appended to as it is."""

    def __init__(self, path: str):
        from nocctl.errors import UsageError

        self.path = path
        try:
            self.handle = os.fdopen(private.open_file(path, os.O_WRONLY | os.O_APPEND), "ab")
        except OSError as exc:
            raise UsageError(f"cannot write the rejects file {path}: {output.reason(exc)}",
                             output.path_remedy(exc, os.path.dirname(path) or ".")) from None
        self.start = self.handle.tell()
        self.failed: str | None = None

    def write(self, raw: str) -> None:
        if self.failed is None:
            try:
                self.handle.write(raw.replace("\r", " ").replace("\n", " ").encode("utf-8", "backslashreplace") + b"\n")
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = output.reason(exc)
        note(f"nocctl: error: cannot write the rejects file {self.path}: {self.failed}; it is left as it was"
             " before this run, and every reject is kept in the dead-letter table (`nocctl ingest rejects list`)")
        with contextlib.suppress(OSError):
            self.handle.truncate(self.start)

    def close(self) -> None:
        if self.failed is None:
            try:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            except OSError as exc:
                self._fail(exc)
        try:
            self.handle.close()
        except OSError:
            with contextlib.suppress(OSError):  # the buffer could not be flushed: cut it off again through the path
                os.truncate(self.path, self.start)


def _sources(files: tuple[str, ...]):
    """(name, binary pieces) for each input; `-` or nothing is stdin."""
    from nocctl.services.ingest.reader import pieces

    for name in files or ("-",):
        if name == "-":
            yield "<stdin>", pieces(sys.stdin.buffer)
        else:
            try:
                handle = open(name, "rb")  # noqa: SIM115 - the `with` below closes it
            except OSError as exc:
                from nocctl.errors import NotFound

                raise NotFound(f"cannot open {name}: {exc.strerror}") from None
            with handle:
                yield name, pieces(handle)


class IngestGroup(click.Group):
    """`ingest [FILES]…` ingests; `ingest rejects …` reaches the dead-letter commands (a file
    named like a subcommand can be given as ./rejects)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            click.Command.parse_args(self, ctx, [])  # the group's own options keep their defaults
            ctx._protected_args, ctx.args = args[:1], args[1:]
            return ctx.args
        ctx.allow_interspersed_args = True  # options may follow the files, as for any command
        click.Command.parse_args(self, ctx, args)  # positionals are FILES
        return []


@click.group(cls=IngestGroup, invoke_without_command=True)
@click.argument("files", nargs=-1, type=InputFile())
@click.option("--kind", type=click.Choice(KINDS, case_sensitive=False), default="alert", show_default=True,
              help="What the records are: alerts, or the records of an operational feed.")
@click.option("--format", "input_format", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Input format of alerts; auto detects it per document.")
@click.option("--client", metavar="CODE", help="Client for records that name neither client nor site.")
@click.option("--site", metavar="CODE", help="Site for records that name neither client nor site.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, writable=True),
              help="Append the raw text of every rejected record to FILE (one per line), to fix and re-ingest.")
@click.option("--strict", is_flag=True, help="All or nothing: commit nothing if any record is bad.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=5000, show_default=True,
              help="Records per transaction.")
@click.option("--dry-run", is_flag=True, help="Process everything, report the counts, commit nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_context
def ingest(ctx, files, kind, input_format, client, site, rejects_path, strict, batch_size, dry_run, as_json):
    """Ingest alerts, or with --kind feed records, from FILES (NDJSON, a JSON array or JSON
    documents; `-` or none: stdin).

    \b
    Formats: native records, Alertmanager webhook payloads and /api/v2/alerts arrays,
    PagerDuty Events v2 (trigger, acknowledge, resolve).
    Native record: {"alert_type", "severity", "message", "client" and/or "site",
    "entity_type", "entity_id", "metadata", "occurred_at", "action", "dedup_key",
    "source", "event_id"}.

    Duplicates of an active alert are merged; events seen before (same event_id, or same
    occurred_at) are counted as replayed and change nothing.

    \b
    --kind ticket|work_order|attendance|device|geofence|security: feed records, each with
    "id", "updated_at" and "site" or "client" plus the fields of its kind (see the README),
    upserted by (kind, id); the newest updated_at wins, so feeds replay in any order.
    Summary: received, inserted, updated, unchanged, rejected.

    Bad records are reported on stderr, kept in the dead-letter table (`nocctl ingest
    rejects list`) and never stop the good ones. Exit 0: all accepted; 65: some rejected
    (the rest committed); 75: database unavailable or locked (safe to retry).

    A path examples/… that does not exist here reads the example shipped with nocctl
    (examples/alerts.ndjson, examples/feeds/tickets.ndjson, …) from any directory.
    """
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    from nocctl import log
    from nocctl.services.ingest.batches import read_batches
    from nocctl.services.ingest.reader import read_documents

    # Everything that can be wrong with the settings is found before any input is read.
    limits = app.settings.ingest
    kind = kind.lower()
    parse: Callable[[Any, str], Iterator[tuple[Any, Any]]]
    make: Callable[[Any], Any]
    if kind == "alert":
        from nocctl.services.ingest import formats

        window = app.settings.correlation_window
        incident_level(app)  # `incident_min_severity` and `[sla]` parsed and checked now, used below
        from nocctl.services.ingest.events import with_keys

        parse, how, make = with_keys(formats.records_with_items, client, site), input_format, formats.Record._make
    else:
        if input_format != "auto":
            raise click.UsageError(f"--format {input_format} applies to alerts, not to --kind {kind}", ctx=ctx)
        from nocctl.services.ingest import feeds

        parse, how, make = feeds.records_with_items, kind, feeds.FeedItem._make
    rejects_file = RejectsFile(rejects_path) if rejects_path else None
    progress = _Progress(sys.stderr.isatty() and app.verbosity >= 0)

    def on_reject(reject) -> None:
        where = f"{reject.source}:{reject.line}" if reject.line else reject.source
        note(f"nocctl: {where}: rejected: {reject.reason}")
        if rejects_file is not None:
            rejects_file.write(reject.raw)

    started = time.monotonic()
    try:
        with collector_eased():
            documents = (doc for name, chunks in _sources(files)
                         for doc in read_documents(chunks, name, limits.max_record_bytes))
            # The first batch is parsed, and a long input's reader process forked, before the
            # database layer is imported: the reader then shares a small interpreter, not the
            # writer's (see batches.forked).
            batches = read_batches(documents, parse, how, batch_size, make)
            from nocctl.services.ingest.pipeline import Ingest, Options

            gc.freeze()  # the database layer too (collector_eased)
            if kind == "alert":
                options = Options(input_format, client, site, batch_size, dry_run, strict, window,
                                  incidents=auto_incidents(app), max_future_skew=limits.max_future_skew)
                runner = Ingest
            else:
                from nocctl.services.ingest.feed_ingest import FeedIngest

                options = Options(client=client, site=site, batch_size=batch_size, dry_run=dry_run, strict=strict,
                                  kind=kind, max_future_skew=limits.max_future_skew)
                runner = FeedIngest
            run = runner(lambda: app.session(write=True), app.caller(), options, on_reject, progress)
            summary = run.run(batches=batches)
    finally:
        progress.done()
        if rejects_file is not None:
            rejects_file.close()
    elapsed = time.monotonic() - started
    counts = summary.as_dict()
    if as_json:
        click.echo(json.dumps(counts))
    unmatched = counts.get("unmatched", 0)  # feeds have no acknowledge/resolve events
    log.get().info("ingest summary", kind=kind, **counts, dry_run=dry_run, strict=strict,
                   seconds=round(elapsed, 3), records_per_second=round(summary.received / max(elapsed, 1e-9)))
    if unmatched:
        note(f"nocctl: {unmatched} acknowledge/resolve event(s) matched no alert in a state they apply to")
    if strict and summary.rejected:
        note("nocctl: --strict: nothing was committed")
    if run.internal_errors:
        from nocctl.errors import NocError

        raise NocError(f"internal error: {run.internal_errors} record(s) could not be processed; they are kept as"
                       " dead letters with reason `internal error: …`",
                       "see `nocctl ingest rejects list`, report the reason, and retry them once fixed")
    if rejects_file is not None and rejects_file.failed:
        ctx.exit(75)
    if summary.rejected:
        ctx.exit(65)


@ingest.group()
def rejects():
    """The dead-letter table: records that could not be ingested."""


@rejects.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include rejects already re-processed.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True,
              help="At most this many (newest first).")
@listing_options
@pass_app
def rejects_list(app: App, show_all, limit, fmt, out):
    """List rejected records with their reason and source line."""
    from nocctl.services.ingest import rejects as service

    rows = service.list_rejects(app.session(), app.caller(), show_all, limit)
    emit_rows(rows, service.COLUMNS if fmt == "table" else service.COLUMNS + ("raw",), fmt, out)


@rejects.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_context
def rejects_retry(ctx, ids, as_json):
    """Re-process pending rejects (all, or the given IDS), e.g. after fixing the org.

    Records that now go through are marked RETRIED; the others stay pending with the new
    reason. Exit 65 if any is still rejected."""
    app: App = ctx.obj
    from nocctl.services.ingest import rejects as service

    settings = app.settings
    outcome = service.retry(lambda: app.session(write=True), app.caller(), ids, settings.correlation_window,
                            auto_incidents(app),
                            on_reject=lambda r: note(f"nocctl: reject {r.source}: still rejected: {r.reason}"),
                            max_future_skew=settings.ingest.max_future_skew)
    if as_json:
        click.echo(json.dumps(outcome))
    else:
        click.echo(f"retried {outcome['retried']}: {outcome['accepted']} accepted, "
                   f"{outcome['rejected']} still rejected")
    if outcome["rejected"]:
        ctx.exit(65)


COMMANDS = (ingest,)
