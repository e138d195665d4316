"""structlog, configured once: JSON lines in production, console in a terminal.

A last processor masks any known secret that reached a log value, as a safety net; the
code itself never logs secrets.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_secrets: list[str] = []

CELERY_PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def redact_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace any registered secret inside a string value with ``[redacted]``."""
    if not _secrets:
        return event_dict
    for key, value in event_dict.items():
        if isinstance(value, str):
            for secret in _secrets:
                if secret in value:
                    value = value.replace(secret, "[redacted]")
            event_dict[key] = value
    return event_dict


def configure_logging(
    level: str = "INFO", fmt: str = "auto", secrets: Iterable[str | None] = ()
) -> None:
    """Set up structlog and the stdlib root logger (Celery's own lines) the same way."""
    _secrets[:] = [s for s in secrets if s and len(s) >= 4]
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_logger_name,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.processors.format_exc_info],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Celery's "Task relay.drain[...] received" and "... succeeded" lines, one pair per
    # drain, would be ticks rather than work; drains that did work log their own line.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in CELERY_PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
