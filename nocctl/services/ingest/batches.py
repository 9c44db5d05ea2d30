"""Records in batches, parsed in a second process when the input is long. No database
here, on purpose: the command line begins reading (and forks the reader process) before it
imports SQLAlchemy, so the reader shares little with the writer and the process tree stays
small (see `forked`)."""
from __future__ import annotations

import itertools
import json
import multiprocessing
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nocctl.services.ingest.formats import Record, RecordError
from nocctl.services.ingest.reader import Document

Parser = Callable[[Any, str], Iterator[tuple[Any, Any]]]  # document, format -> (item, record or RecordError)


def read_batches(documents: Iterable[Document], parse: Parser, how: str, batch_size: int,
                 make: Callable[[tuple], tuple] = Record._make) -> Iterator[list]:
    """The batches of `documents`, begun now: the first is parsed at once and, if the input
    goes on, the reader process forked at once, so both happen before the caller goes on."""
    stream = forked(parse_batches(documents, parse, how, batch_size), batch_size, make)
    first = next(stream, None)
    return iter(()) if first is None else itertools.chain([first], stream)


def parse_batches(documents: Iterable[Document], parse: Parser, how: str, size: int) -> Iterator[list]:
    """Parsed and normalised records, `size` at a time (CPU work, no database). Each is
    (record or RecordError, source, line, raw) where raw is the input text, or the JSON item
    when one document held several records."""
    batch: list[tuple[Any, str, int, object]] = []
    for document in documents:
        if document.error is not None:
            batch.append((RecordError(document.error), document.source, document.line, document.text))
        else:
            whole = document.value
            for item, record in parse(whole, how):
                batch.append((record, document.source, document.line, document.text if item is whole else item))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def forked(batches: Iterator[list], batch_size: int, make: Callable[[tuple], tuple] = Record._make) -> Iterator[list]:
    """The batches, the first parsed here and, when more input follows, the rest parsed by a
    forked child process: reading, JSON parsing and normalising then run on the other core
    while this one writes to the database. One alert from a script never forks. Records
    travel as plain tuples; `make` turns one back into its record type.

    The child is forked before this process has written anything (and, from the command
    line, before SQLAlchemy is imported), so it shares only a small interpreter and the first
    batch: every page either process touches after the fork is copied, and forked later the
    child kept its own copy of the writer's libraries, SQLite page cache and ORM state."""
    first = next(batches, None)
    if first is None:
        return
    if len(first) < batch_size:
        yield first
        return  # the input ended within the first batch
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(batches, sender, receiver), name="nocctl-ingest-reader",
                            daemon=True)
    # multiprocessing closes sys.stdin in a new child before it runs; the reader still has
    # the rest of stdin to read. Without a sys.stdin at the fork it closes nothing.
    stdin, sys.stdin = sys.stdin, None
    try:
        child.start()
    finally:
        sys.stdin = stdin
    sender.close()
    try:
        yield first
        while True:
            try:
                data = receiver.recv_bytes()
            except EOFError:
                raise RuntimeError("the ingest reader process ended unexpectedly") from None
            if not data:
                return
            payload = pickle.loads(data)
            if isinstance(payload, BaseException):
                raise payload
            yield [(RecordError(record) if type(record) is str else make(record), source, line, raw)
                   for record, source, line, raw in payload]
    finally:
        receiver.close()
        child.join(timeout=1)
        if child.is_alive():
            child.terminate()
            child.join()


def _produce(batches: Iterator[list], sender, receiver) -> None:
    """In the child: send each batch (records as plain tuples, errors as their reason, raw
    items as JSON text), then an empty message. A failure is sent as the exception."""
    # The read end came along with the fork: close it, so that when the parent dies (kill -9)
    # the next send fails and this process ends, releasing the database socket it inherited.
    receiver.close()
    try:
        for batch in batches:
            wire = [(str(record) if type(record) is RecordError else tuple(record), source, line,
                     raw if raw is None or isinstance(raw, (bytes, str)) else json.dumps(raw, default=str))
                    for record, source, line, raw in batch]
            sender.send_bytes(pickle.dumps(wire, protocol=pickle.HIGHEST_PROTOCOL))
        sender.send_bytes(b"")
    except BrokenPipeError:
        pass  # the parent is gone (killed, or stopped early): nothing to hand over
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, raised there
        try:
            sender.send_bytes(pickle.dumps(exc))
        except Exception:  # noqa: BLE001 - an exception that cannot be pickled
            sender.send_bytes(pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}")))
