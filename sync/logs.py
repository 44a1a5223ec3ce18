"""Logging: structlog events, JSON lines for daemons and files, a readable console on a TTY.

Every event passes ``redact_secrets`` last before it is rendered: a secret never reaches a log
line, whatever a caller (or an exception's text) put in it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

__all__ = ["REDACTED", "configure_logging", "job_context", "logging_setup", "redact_secrets"]

REDACTED = "[REDACTED]"
# A key naming a secret: its value is masked whatever it is (also inside nested dicts).
_SECRET_KEY = re.compile(r"token|secret|authorization|password|passwd|api[_-]?key|cookie", re.I)
# Secrets inside text: "Bearer <token>", "access_token=...", '"client_secret": "..."', and
# the password of a URL ("postgresql://user:password@host").
_SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (
        re.compile(
            r"(?i)((?:access_|refresh_|id_)?token|client_secret|secret|password|passwd)"
            r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'&,;}\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
)


def _redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _redact_text(str(value))  # anything else is rendered as text anyway


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask the values of secret-named keys and secrets inside text."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


class _LineLogger(structlog.PrintLogger):
    """A line in one ``write``: the worker processes of ``daemon --workers`` share one stderr
    (the journal), and ``print``'s two writes (the text, then the newline; stderr is not
    buffered) would let another process's line in between."""

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _with_fields(fields: Mapping[str, Any]) -> structlog.types.Processor:
    def add(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    return add


_setup: dict[str, Any] = {}


def logging_setup() -> dict[str, Any]:
    """The last ``configure_logging``'s arguments (JSON-able); {}: never configured."""
    return dict(_setup)


def configure_logging(
    *, json: bool | None = None, level: str = "WARNING", fields: Mapping[str, Any] | None = None
) -> None:
    """Send structlog events to stderr; ``json=None`` picks JSON unless stderr is a terminal.

    ``fields`` go into every event, from every thread (the daemon's worker number: context
    variables bound in the main thread do not reach the scheduler's threads)."""
    use_json = not sys.stderr.isatty() if json is None else json
    # A helper process (``sync.deliver_helper``) logs as this one does: its setup travels.
    _setup.clear()
    _setup.update(json=use_json, level=level, fields=dict(fields or {}))
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *([_with_fields(dict(fields))] if fields else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Looked up at each use, not bound at configure time: stderr may be replaced later.
        logger_factory=lambda *_args: _LineLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextlib.contextmanager
def job_context(job: str | None) -> Iterator[None]:
    """While it lasts, every event of this thread carries ``job`` (the daemon's job, or the
    command outside the daemon): a context variable, merged into each event by
    ``configure_logging``. Threads started with a copy of the context (the delivery's
    senders) carry it too; a thread started without one does not (``threading.Thread``
    starts with an empty context)."""
    if job is None:
        yield
        return
    with structlog.contextvars.bound_contextvars(job=job):
        yield
