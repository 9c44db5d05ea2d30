"""structlog to stderr: JSON lines off a terminal (cron, log files), the console renderer on
one (colours unless NO_COLOR). Configured by the root command, never at import time."""
from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structlog.typing import Processor


def configure(log_format: str = "auto", verbosity: int = 0, command: str | None = None) -> None:
    import structlog

    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    if log_format == "json":
        renderer: Processor = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and "NO_COLOR" not in os.environ)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(run_id=uuid.uuid4().hex[:12], **({"command": command} if command else {}))


def get(name: str | None = None):
    import structlog

    return structlog.get_logger(name)
