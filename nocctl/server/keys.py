"""The request threads' cache of integration keys: a request with a key found here is
queued for the writer, which looks the key up again inside the transaction that writes
(`writer`), so the cache never lets a revoked key store anything. It only spares the
database a lookup per request, and a key nobody has is answered 401 without queuing.

An entry lives `TTL` seconds. A key revoked meanwhile is still queued for at most that long
and then refused by the writer (401); a new key is never in the cache before it exists (keys
are random), so caching unknown keys delays nothing."""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from nocctl.services import integrations
from nocctl.services.integrations import Resolved

TTL = 5.0  # seconds
MAX_ENTRIES = 4096


class KeyCache:
    def __init__(self, session_factory: Callable[[], Session], ttl: float = TTL):
        self.session_factory = session_factory
        self.ttl = ttl
        self.entries: dict[bytes, tuple[Resolved | None, float]] = {}
        # One lookup at a time: a burst of requests with a new key costs one query, and the
        # request threads never hold more than one connection of the pool between them.
        self.lock = threading.Lock()

    def resolve(self, key: str) -> Resolved | None:
        """The integration of `key` (None: unknown, malformed, revoked). Database errors
        are raised (the app answers 503)."""
        if integrations.key_prefix(key) is None:
            return None
        digest = hashlib.sha256(key.encode()).digest()  # the cache holds no key
        found = self.entries.get(digest)
        if found is not None and found[1] > time.monotonic():
            return found[0]
        with self.lock:
            found = self.entries.get(digest)
            if found is not None and found[1] > time.monotonic():
                return found[0]
            with self.session_factory() as session:
                resolved = integrations.resolve_key(session, key)
                session.rollback()
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[digest] = (resolved, time.monotonic() + self.ttl)
            return resolved
