"""The WSGI application of `nocctl serve` (DESIGN §4a): a few routes, no framework.

    POST /v2/enqueue            PagerDuty Events v2; the key is the event's routing_key
    POST /api/v1/alertmanager   Alertmanager (and Grafana) webhook; Bearer key or basic-auth password
    POST /api/v1/alerts         native records: NDJSON, a JSON array or one document; Bearer key
    GET  /-/healthy             the process serves (and its writer runs)
    GET  /-/ready               the database answers and its schema is this nocctl's
    GET  /metrics               Prometheus text

Status codes. 200 (202 on /v2/enqueue, as PagerDuty) only once the transaction holding the
records has committed. 400: the body is not JSON, or some of its records were rejected —
the others were stored, the rejected ones kept as dead letters (`nocctl ingest rejects
list`); the body says which (as Loki and Prometheus' remote write answer a partly refused
push). 401: no key, or a key that is unknown or revoked (one answer for all). 403: a valid
key sent to another format's route (the body names the right one), or an integration
whose identity may no longer ingest. 404/405: no such route or method. 413: a body over
the limit (Content-Length first; a chunked body is counted as it is read). 503 with
Retry-After: the database is unavailable or locked, or did not take the request within
the request timeout — safe to send again (de-duplication, event keys).

A body is stored (as dead letters) only once its key is known: unauthenticated bytes never
reach the database. On /v2/enqueue the key is inside the body, so a body that is not one
JSON object is answered 400 without a dead letter; the routing_key is never stored.
"""
from __future__ import annotations

import base64
import binascii
import io
import itertools
import json
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from nocctl.errors import from_database_error
from nocctl.server import writer as w
from nocctl.server.keys import KeyCache
from nocctl.server.logs import logger
from nocctl.server.metrics import CONTENT_TYPE, Metrics
from nocctl.services import integrations
from nocctl.services.ingest import formats, reader
from nocctl.services.ingest.batches import parse_batches
from nocctl.services.ingest.events import default_dedup_key
from nocctl.services.ingest.formats import Record

RETRY_AFTER = "5"  # seconds; Alertmanager and the PagerDuty clients retry a 5xx by themselves
READ_PIECE = 64 * 1024
MAX_ERRORS = 100  # reasons listed in a 400's body at most (all are in the dead-letter table)

# path -> (method, the integration format it takes; None: a probe)
ROUTES: dict[str, tuple[str, str | None]] = {
    integrations.PATHS["pagerduty"]: ("POST", "pagerduty"),
    integrations.PATHS["alertmanager"]: ("POST", "alertmanager"),
    integrations.PATHS["native"]: ("POST", "native"),
    "/-/healthy": ("GET", None),
    "/-/ready": ("GET", None),
    "/metrics": ("GET", None),
}

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Limits:
    max_body: int  # bytes of a request body
    request_timeout: float  # seconds a request waits for the writer
    max_record: int  # bytes of one record (`[ingest] max_record_size`)


class Reply(Exception):
    """An answer decided early (raised from the helpers, caught once in `App.__call__`)."""

    def __init__(self, code: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()):
        super().__init__(code)
        self.code, self.body, self.headers = code, body, list(headers)


def _unauthorized(message: str = "invalid or revoked integration key") -> Reply:
    # One body for an unknown and a revoked key: a refusal never says which.
    return Reply(401, {"status": "unauthorized", "message": message}, [("WWW-Authenticate", 'Bearer realm="nocctl"')])


def _unavailable(message: str) -> Reply:
    return Reply(503, {"status": "unavailable", "message": message}, [("Retry-After", RETRY_AFTER)])


def header_key(environ: dict[str, Any]) -> str | None:
    """The key of `Authorization: Bearer KEY`, or the password of basic auth (the user name
    when the password is empty: some senders have a field for one only)."""
    scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or user or None
    return None


class App:
    """The WSGI callable. `writer` takes the records; `keys` finds integrations by key;
    `ready()` says why the server is not ready (None: ready)."""

    def __init__(self, writer: w.Writer, keys: KeyCache, metrics: Metrics, limits: Limits,
                 ready: Callable[[], str | None]):
        self.writer, self.keys, self.metrics, self.limits, self.ready = writer, keys, metrics, limits, ready
        self.stopping = False  # set at SIGTERM: /-/ready answers 503 (connections close once answered: server)
        self.run_id = uuid.uuid4().hex[:8]
        self.numbers = itertools.count(1)
        self.log = logger()

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        started = time.monotonic()
        path = environ.get("PATH_INFO", "")
        route = path if path in ROUTES else "other"
        fields: dict[str, Any] = {}
        try:
            code, body, headers, content_type = self._dispatch(environ, path, fields)
        except Reply as reply:
            code, body, headers, content_type = reply.code, self._encode(reply.body), reply.headers, None
        except Exception as exc:  # noqa: BLE001 - a request never takes the server down; logged with its traceback
            self.log.error("request failed", path=path, error=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc())
            code, body, headers, content_type = 500, self._encode(
                {"status": "error", "message": f"internal error: {type(exc).__name__}"}), [], None
        headers = [("Content-Type", content_type or "application/json"), ("Content-Length", str(len(body))),
                   *headers]
        start_response(f"{code} {HTTPStatus(code).phrase}", headers)
        elapsed = time.monotonic() - started
        self.metrics.requests.labels(route, str(code)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        length = environ.get("CONTENT_LENGTH", "")
        self.log.info("request", method=environ.get("REQUEST_METHOD"), path=path, status=code,
                      ms=round(elapsed * 1000, 2), remote=environ.get("REMOTE_ADDR"),
                      **({"length": int(length)} if length.isdigit() else {}), **fields)
        return [body]

    @staticmethod
    def _encode(body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False).encode() + b"\n"

    def _dispatch(self, environ: dict[str, Any], path: str,
                  fields: dict[str, Any]) -> tuple[int, bytes, list[tuple[str, str]], str | None]:
        found = ROUTES.get(path)
        if found is None:
            raise Reply(404, {"status": "not found", "message": f"no route {path}",
                              "routes": sorted(ROUTES)})
        method, fmt = found
        if environ.get("REQUEST_METHOD") != method:
            raise Reply(405, {"status": "method not allowed", "message": f"{path} takes {method}"},
                        [("Allow", method)])
        if fmt is None:
            return self._probe(path)
        if environ.get("HTTP_CONTENT_ENCODING", "identity").lower() not in ("", "identity"):
            raise Reply(415, {"status": "unsupported media type", "message": "send the body uncompressed"})
        source = f"POST {path} from {environ.get('REMOTE_ADDR', '?')} (request {self.run_id}-{next(self.numbers)})"
        if fmt == "pagerduty":
            code, answer = self._enqueue(environ, source, fields)
        else:
            code, answer = self._webhook(environ, fmt, source, fields)
        return code, self._encode(answer), [], None

    # ------------------------------------------------------------ probes

    def _probe(self, path: str) -> tuple[int, bytes, list[tuple[str, str]], str | None]:
        if path == "/metrics":
            return 200, self.metrics.render(), [], CONTENT_TYPE
        if path == "/-/healthy":
            if not self.writer.alive():
                raise Reply(500, {"status": "unhealthy", "message": "the writer thread has stopped"})
            return 200, self._encode({"status": "healthy"}), [], None
        if self.stopping:
            raise _unavailable("shutting down")
        reason = self.ready()
        if reason is not None:
            raise _unavailable(reason)
        return 200, self._encode({"status": "ready"}), [], None

    # ------------------------------------------------------------ the body and the key

    def _body(self, environ: dict[str, Any]) -> bytes:
        """The request body, at most `max_body` bytes (413 beyond)."""
        limit = self.limits.max_body
        too_large = Reply(413, {"status": "payload too large",
                                "message": f"the body is larger than the {reader.size_text(limit)} limit"
                                           " (nocctl serve --max-body)"})
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                if int(length) > limit:
                    raise too_large
            except ValueError:
                raise Reply(400, {"status": "bad request", "message": "Content-Length is not a number"}) from None
        stream = environ["wsgi.input"]
        parts, size = [], 0
        while True:  # counted as it is read: a chunked body has no Content-Length
            piece = stream.read(min(READ_PIECE, limit + 1 - size))
            if not piece:
                break
            size += len(piece)
            if size > limit:
                raise too_large
            parts.append(piece)
        return b"".join(parts)

    def _integration(self, key: str | None, fmt: str, fields: dict[str, Any]) -> integrations.Resolved:
        if not key:
            raise _unauthorized("an integration key is required"
                                + (': the event\'s "routing_key"' if fmt == "pagerduty"
                                   else ": `Authorization: Bearer KEY` or the basic-auth password"))
        fields["key_prefix"] = integrations.key_prefix(key)
        try:
            resolved = self.keys.resolve(key)
        except Exception as exc:
            mapped = from_database_error(exc)
            if mapped is None:
                raise
            raise _unavailable(f"database unavailable: {mapped.message}") from exc
        if resolved is None:
            raise _unauthorized()
        fields["integration"] = resolved.name
        if resolved.format != fmt:
            raise Reply(403, {"status": "forbidden",
                              "message": f"the key of integration {resolved.name!r} is for"
                                         f" {integrations.HOW[resolved.format]}"})
        return resolved

    def _submit(self, key: str, resolved: integrations.Resolved, source: str, items: list,
                fields: dict[str, Any]) -> w.Outcome:
        fields["received"] = len(items)
        outcome = self.writer.submit(w.Job(key, resolved, source, items), self.limits.request_timeout)
        if outcome.status == w.UNAVAILABLE:
            raise _unavailable(outcome.message)
        if outcome.status == w.UNAUTHORIZED:
            raise _unauthorized()
        if outcome.status == w.FORBIDDEN:
            raise Reply(403, {"status": "forbidden", "message": outcome.message})
        if outcome.status == w.INTERNAL:
            raise Reply(500, {"status": "error", "message": outcome.message})
        fields["rejected"] = len(outcome.rejects)
        return outcome

    # ------------------------------------------------------------ PagerDuty Events v2

    def _enqueue(self, environ: dict[str, Any], source: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = self._body(environ)
        documents = list(reader.read_documents(reader.pieces(io.BytesIO(body)), source, self.limits.max_record))
        problem = None
        if not documents:
            problem = "the body is empty"
        elif len(documents) > 1:
            problem = "the body must be one event (a JSON object)"
        elif documents[0].error is not None:
            problem = documents[0].error
        elif not isinstance(documents[0].value, dict):
            problem = f"an event must be a JSON object, not {type(documents[0].value).__name__}"
        if problem is not None:  # no key could be read: nothing is kept
            raise Reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": [problem]})
        event: dict[str, Any] = documents[0].value
        key = event.pop("routing_key", None)  # a secret: never stored with the event
        resolved = self._integration(key if isinstance(key, str) else None, "pagerduty", fields)
        [(_, record)] = formats.records_with_items(event, "pagerduty")
        dedup_key = record.dedup_key if isinstance(record, Record) else None
        if isinstance(record, Record) and dedup_key is None:
            dedup_key = _default_key(record, resolved)
            if dedup_key is not None:
                record = record._replace(dedup_key=dedup_key)
                event["dedup_key"] = dedup_key  # a dead letter retried later keeps the key the sender was given
        raw = json.dumps(event, ensure_ascii=False)
        outcome = self._submit(key, resolved, source, [(record, source, documents[0].line, raw)], fields)
        if outcome.rejects:
            return 400, {"status": "invalid event", "message": "Event object is invalid",
                         "errors": [r.reason for r in outcome.rejects]}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    # ------------------------------------------------------------ webhooks and native records

    def _webhook(self, environ: dict[str, Any], fmt: str, source: str,
                 fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = header_key(environ)
        resolved = self._integration(key, fmt, fields)
        assert key is not None  # `_integration` refuses a missing key
        body = self._body(environ)
        documents = reader.read_documents(reader.pieces(io.BytesIO(body)), source, self.limits.max_record)
        items = [item for batch in parse_batches(documents, formats.records_with_items, fmt, MAX_BATCH)
                 for item in batch]
        if not items:
            raise Reply(400, {"status": "invalid request", "message": "the body holds no records"})
        outcome = self._submit(key, resolved, source, items, fields)
        counts = {"received": len(items), "accepted": len(items) - len(outcome.rejects),
                  "rejected": len(outcome.rejects)}
        if not outcome.rejects:
            return 200, {"status": "success", **counts}
        errors = [f"line {r.line}: {r.reason}" if r.line and fmt == "native" else r.reason
                  for r in outcome.rejects[:MAX_ERRORS]]
        return 400, {"status": "invalid records",
                     "message": f"{len(outcome.rejects)} of {len(items)} record(s) rejected and kept as dead letters"
                                " (`nocctl ingest rejects list`); the others were stored: do not send them again",
                     **counts, "errors": errors}


MAX_BATCH = 10**9  # one request is one batch (its size is bounded by the body limit)


def _default_key(record: Record, resolved: integrations.Resolved) -> str | None:
    """The key a trigger without a dedup_key is filed under, returned to the sender so it can
    acknowledge and resolve it: nocctl's default (DESIGN §3, `events.default_dedup_key`) of
    its type, unit and entity, the unit as the pipeline places it (`Ingest._place`: the
    record's site, else its client, else the integration's scope). Repeats of the event then
    de-duplicate, and a retry after a 503 finds the same alert. None when the record names
    no unit (the pipeline rejects it)."""
    defaults = resolved.defaults()
    unit = record.site or record.client or defaults["site"] or defaults["client"]
    if unit is None or record.alert_type is None:
        return None
    return default_dedup_key(record.alert_type, unit, record.entity_type, record.entity_id)
