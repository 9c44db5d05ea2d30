"""`nocctl serve` itself: the engines, the writer thread, the WSGI app on waitress, and the
shutdown.

Waitress reads every request whole in its event loop (the main thread) before a worker
thread runs the app, so a slow client holds a socket, never a thread; `channel_timeout`
(the request timeout) closes a connection silent for that long, a half-sent body too.

Shutdown (SIGTERM, SIGINT): the listening socket is closed at once (new connections are
refused), requests already received are answered (their connections then close), idle
keep-alive connections are closed, the writer writes what is queued, and the process exits
0. A request still arriving gets until the request timeout (plus 5 s) to finish; a second
signal stops waiting.
"""
from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nocctl.config import Settings
from nocctl.errors import TemporaryFailure, from_database_error
from nocctl.server.app import App, Limits
from nocctl.server.keys import KeyCache
from nocctl.server.logs import logger as server_logger
from nocctl.server.logs import route_waitress_logs
from nocctl.server.metrics import Metrics
from nocctl.server.writer import Writer
from nocctl.services.ingest.options import Options

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

BODY_SLACK = 64 * 1024  # waitress refuses bodies this far over the limit itself, before buffering them
DRAIN_GRACE = 5.0  # seconds beyond the request timeout that the shutdown waits for requests still arriving
SWITCH_INTERVAL = 0.001  # seconds (sys.setswitchinterval; see `serve`)
LOOP_TIMEOUT = 0.2  # seconds the event loop sleeps without traffic (a signal is noticed within it)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    threads: int
    max_body: int  # bytes
    request_timeout: int  # seconds


def writer_engine(url: str, timeout: int) -> Engine:
    """The writer's engine: SQLite transactions begin with BEGIN IMMEDIATE and wait at most
    `timeout` seconds for the write lock; PostgreSQL statements and lock waits are bounded
    by `timeout` too. So a locked or stuck database fails the group (503) within the request
    timeout instead of holding every request."""
    from sqlalchemy import event

    from nocctl.db import make_engine

    engine = make_engine(url)
    milliseconds = int(timeout * 1000)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_wait(dbapi_connection: Any, _record: Any) -> None:  # after db.make_engine's own listener
            dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

        return engine.execution_options(sqlite_begin="IMMEDIATE")

    @event.listens_for(engine, "connect")
    def _pg_wait(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {milliseconds}")
            cursor.execute(f"SET statement_timeout = {milliseconds}")
        dbapi_connection.commit()

    return engine


def serve(settings: Settings, options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT, then drain and return (exit 0)."""
    from waitress.server import create_server

    from nocctl.db import make_engine, make_sessionmaker
    from nocctl.services import schema
    from nocctl.services.rbac import os_login

    logger = server_logger()
    # Settings are checked before anything listens: a bad config exits 65 at once.
    ingest_options = Options(correlation_window=settings.correlation_window, incidents=settings.auto_incidents,
                             max_future_skew=settings.ingest.max_future_skew)
    limits = Limits(options.max_body, float(options.request_timeout), settings.ingest.max_record_bytes)
    read_engine = make_engine(settings.database_url)  # a missing SQLite file: exit 3 now, not 503 forever
    write_engine = writer_engine(settings.database_url, options.request_timeout)
    head = schema.head()
    metrics = Metrics()
    writer = Writer(make_sessionmaker(write_engine), ingest_options, os_login(), socket.gethostname(), metrics)

    def ready() -> str | None:
        try:
            current = schema.current(read_engine)
        except Exception as exc:  # noqa: BLE001 - any failure to read the schema means not ready
            mapped = from_database_error(exc)
            return f"database unavailable: {mapped.message if mapped else type(exc).__name__}"
        if current != head:
            return f"the database schema is {current or 'empty'}, this nocctl needs {head}: run `nocctl db upgrade`"
        if not writer.alive():
            return "the writer thread has stopped"
        return None

    app = App(writer, KeyCache(make_sessionmaker(read_engine)), metrics, limits, ready)
    route_waitress_logs()
    socket_map: dict[int, Any] = {}
    try:
        server = create_server(
            app, map=socket_map, host=options.host, port=options.port, threads=options.threads,
            # A connection silent for the request timeout is closed, looked for every second
            # (waitress's default looks every 30 s).
            channel_timeout=options.request_timeout, cleanup_interval=1,
            max_request_body_size=options.max_body + BODY_SLACK,
            ident="nocctl", expose_tracebacks=False, asyncore_use_poll=True,
        )
    except OSError as exc:
        raise TemporaryFailure(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
                               "is another server on that port? pick one with --listen HOST:PORT") from None
    # The writer gives up the GIL at every statement; with the event loop and the request
    # threads busy it waits up to the switch interval (5 ms by default) to get it back, per
    # statement. 1 ms: +10-15% single-event requests/s with 8 clients on 2 cores.
    sys.setswitchinterval(SWITCH_INTERVAL)
    writer.start()
    stop, hurry = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        # Only flags: the event loop (this thread) notices within LOOP_TIMEOUT and acts.
        (hurry if stop.is_set() else stop).set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    not_ready = ready()
    logger.info("serving", url=f"http://{_shown_host(server.effective_host)}:{server.effective_port}",
                threads=options.threads, max_body=options.max_body, request_timeout=options.request_timeout,
                **({"not_ready": not_ready} if not_ready else {}))
    try:
        _loop(socket_map, stop)
        logger.info("stopping: no new connections; answering the requests received")
        app.stopping = True
        _drain(server, socket_map, time.monotonic() + options.request_timeout + DRAIN_GRACE, hurry, logger)
        if not writer.stop(options.request_timeout + DRAIN_GRACE):
            logger.warning("the writer did not finish in time")
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=DRAIN_GRACE)
    finally:
        from waitress import wasyncore

        wasyncore.close_all(socket_map)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        read_engine.dispose()
        write_engine.dispose()
    logger.info("stopped")


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _loop(socket_map: dict[int, Any], stop: threading.Event) -> None:
    from waitress import wasyncore

    while not stop.is_set():
        wasyncore.loop(timeout=LOOP_TIMEOUT, map=socket_map, use_poll=True, count=1)


def _drain(server: Any, socket_map: dict[int, Any], deadline: float, hurry: threading.Event, logger: Any) -> None:
    """Close the listening socket, then run the event loop until every connection has had
    its received requests answered and sent (closing idle ones), or until `deadline`."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    wasyncore.dispatcher.close(server)  # the socket only: the trigger still wakes the loop for answers
    while True:
        busy = 0
        for channel in list(socket_map.values()):
            if not isinstance(channel, HTTPChannel):
                continue
            if channel.requests or channel.request is not None or channel.total_outbufs_len:
                busy += 1
            elif not channel.will_close:
                channel.will_close = True  # idle keep-alive: closed at the next turn of the loop
        if not any(isinstance(c, HTTPChannel) for c in socket_map.values()):
            return
        if hurry.is_set() or time.monotonic() >= deadline:
            logger.warning("stopping with connections still open", connections=busy)
            return
        wasyncore.loop(timeout=0.05, map=socket_map, use_poll=True, count=1)
