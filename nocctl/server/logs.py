"""The server's log lines: nocctl's structlog setup (`nocctl.log`: JSON off a terminal),
with the run's context carried into the request threads and the writer, and waitress's
standard-library logging sent the same way."""
from __future__ import annotations

import logging
from typing import Any

import structlog

from nocctl import log


def logger() -> Any:
    """nocctl's logger with the run's context (command, run_id) bound: threads do not
    inherit the context variables of the thread that configured logging."""
    return log.get().bind(**structlog.contextvars.get_contextvars())


class _ToStructlog(logging.Handler):
    def __init__(self, bound: Any):
        super().__init__()
        self.bound = bound

    def emit(self, record: logging.LogRecord) -> None:
        extra = {"traceback": logging.Formatter().formatException(record.exc_info)} if record.exc_info else {}
        self.bound.log(record.levelno, record.getMessage(), logger=record.name, **extra)


def route_waitress_logs() -> None:
    waitress = logging.getLogger("waitress")
    waitress.handlers[:] = [_ToStructlog(logger())]
    waitress.propagate = False
    waitress.setLevel(logging.INFO)
    # "Task queue depth is N": every thread busy. Here that is normal — the threads wait on
    # the group commit — and the writer's queue is in /metrics.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
