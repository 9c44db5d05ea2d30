"""structlog to stderr: JSON lines off a terminal (cron, log files), the console renderer on
one (colours unless NO_COLOR). Configured by the root command, never at import time.

Console lines are for a terminal: every string in them is shown escaped and on one line
(`output.line`), so a logged alert message or file name cannot send escape sequences;
JSON lines keep the data exact (the JSON renderer escapes every control character)."""
from __future__ import annotations

import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor


class _Quoted:
    """A logged string that holds control characters: the console renderer shows a value
    that is no str by its repr, and Python's repr quotes and escapes every one of them."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def escape_for_console(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """No control character of a console line reaches the terminal: the message and the
    keys are escaped on one line (`output.line`), a string value holding one is shown by
    its repr (`'disk \\x1b[2J'`), structures by theirs (which escapes them too)."""
    from nocctl.output import line

    def value(item: object) -> object:
        return _Quoted(item) if isinstance(item, str) and line(item) != item else item

    return {line(str(key)): line(item) if key == "event" and isinstance(item, str) else value(item)
            for key, item in event_dict.items()}


def configure(log_format: str = "auto", verbosity: int = 0, command: str | None = None) -> None:
    import structlog

    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    escape: list[Processor] = []
    if log_format == "json":
        renderer: Processor = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty() and "NO_COLOR" not in os.environ)
        escape = [escape_for_console]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *escape,
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
