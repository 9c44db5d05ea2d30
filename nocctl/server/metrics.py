"""What `GET /metrics` shows (Prometheus text format, `prometheus_client`): requests by
route and status code, their latency, events by integration and outcome, the size of each
group the writer commits and how long its commit takes, and the writer's queue.

One registry per server (not the library's global one), so a test or a second app in the
same process starts from zero."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: a request answered from one group commit takes a few milliseconds; a database
# that waits on a lock takes up to the request timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nocctl_serve_requests", "HTTP requests answered, by route and status code.",
                                ("route", "code"), registry=r)
        self.latency = Histogram("nocctl_serve_request_duration_seconds",
                                 "Time from the request handed to the application to its answer, by route.",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=r)
        self.events = Counter("nocctl_serve_events",
                              "Records received, by integration and outcome (created, deduplicated, suppressed,"
                              " acknowledged, resolved, replayed, unmatched, rejected).",
                              ("integration", "outcome"), registry=r)
        self.group_requests = Histogram("nocctl_serve_group_requests", "Requests written in one transaction.",
                                        buckets=SIZE_BUCKETS, registry=r)
        self.group_records = Histogram("nocctl_serve_group_records", "Records written in one transaction.",
                                       buckets=SIZE_BUCKETS, registry=r)
        self.commit = Histogram("nocctl_serve_commit_seconds", "Time of each group's COMMIT.",
                                buckets=LATENCY_BUCKETS, registry=r)
        self.group_seconds = Histogram("nocctl_serve_group_seconds",
                                       "Time to write one group, from BEGIN to the end of COMMIT.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.group_failures = Counter("nocctl_serve_group_failures",
                                      "Groups the database refused, by reason (unavailable, internal).",
                                      ("reason",), registry=r)
        self.queued = Gauge("nocctl_serve_queued_requests", "Requests waiting for the writer.", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
