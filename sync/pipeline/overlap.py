"""Overlap: a second, freshly started process delivers the period while this one walks it.

The engine starts the helper once the walk's first page (and its outbox rows) is committed;
the helper delivers beside the walk by the two-worker protocol that several workers already
share (the walk's period-wide lease, the outbox claims, the wait for a kepala sekolah's
record: ``Engine.deliver_beside``), so nothing it does needs trusting it more than another
worker. Processes, not threads: a thread shares the one GIL (a trial gave 0.91x), and a
fresh process, never a fork (forking while threads run can hang).

The pipe between the two (``HelperProcess``):

- stdin, parent to helper: one JSON line (what to deliver and the helper's settings), then
  nothing until ``stop`` (a line) or end of file: the parent stopped, or died (the kernel
  closes its end), and the helper starts no new request, finishes those in flight, exits;
- stdout, helper to parent: JSON lines, ``{"progress": [kind, n]}`` and at the end
  ``{"summary": {...}}`` (``helper_summary``) or ``{"error": {...}}`` (what stopped it).

A helper that dies (killed, crashed) leaves its claims to their owner's death being noticed
(``sync.workers.orphaned``): the parent delivers once more after it and takes them over.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, Protocol

import structlog

from sync.pipeline.summary import RunSummary

__all__ = [
    "Channel",
    "HelperOutcome",
    "HelperProcess",
    "Overlap",
    "exit_now",
    "helper_summary",
    "merge_helper",
    "python_argv",
    "spawn_helper",
]

log = structlog.get_logger("ekinerja_sync.engine")

Progress = Callable[[str, int], None]

# How long the parent waits for a helper told to stop before it kills it (nothing is lost:
# a killed helper's unanswered requests stay in the outbox, its claims are taken over).
_STOP_WAIT_S = 60.0
_POLL_S = 0.1
# The helper tells its progress in batches: a line per request would cost both processes.
_PROGRESS_EVERY_S = 0.2


@dataclass
class HelperOutcome:
    """What the helper told at its end: its summary (``helper_summary``), or the error that
    stopped it (``error``, ``exit_code``), or nothing (``died``: it ended without a word)."""

    summary: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0
    problem: str | None = None
    returncode: int | None = None
    died: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Overlap(Protocol):
    """Starts a helper delivering ``period`` (run ``run_id``) beside this process's walk."""

    def __call__(self, period: str, run_id: str, progress: Progress | None) -> HelperProcess: ...


def helper_summary(summary: RunSummary) -> dict[str, Any]:
    """The part of a helper's summary its parent adds to its own (``merge_helper``)."""
    return {
        "outcomes": [[k, o, n] for (k, o), n in summary.outcomes.items() if n],
        "requests_sent": summary.requests_sent,
        "target_unreachable": summary.target_unreachable,
        "rate_limited": summary.rate_limited,
        "busy": summary.busy,
        "throttle_wait_s": summary.throttle_wait_s,
        "left_throttled": summary.left_throttled,
    }


def merge_helper(summary: RunSummary, told: dict[str, Any]) -> None:
    """Add a helper's ``helper_summary`` to the run's: one summary covers both processes."""
    for kind, outcome, n in told.get("outcomes", []):
        summary.outcomes[(str(kind), str(outcome))] += int(n)
    summary.requests_sent += int(told.get("requests_sent", 0))
    summary.target_unreachable = summary.target_unreachable or told.get("target_unreachable")
    summary.rate_limited += int(told.get("rate_limited", 0))
    summary.busy += int(told.get("busy", 0))
    summary.throttle_wait_s = max(summary.throttle_wait_s, float(told.get("throttle_wait_s", 0)))
    summary.left_throttled += int(told.get("left_throttled", 0))


class HelperProcess:
    """A helper process and the two ends of its pipe (see the module)."""

    def __init__(self, process: subprocess.Popen[bytes], progress: Progress | None) -> None:
        self.process = process
        self._progress = progress
        self.outcome = HelperOutcome()
        self._reader = threading.Thread(target=self._read, name="overlap-helper", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        out = self.process.stdout
        assert out is not None
        for line in out:
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not ours (nothing else should write there)
            if not isinstance(message, dict):
                continue
            if "progress" in message and self._progress is not None:
                kind, n = message["progress"]
                with contextlib.suppress(Exception):  # a progress bar never stops delivery
                    self._progress(str(kind), int(n))
            elif "summary" in message:
                self.outcome.summary = message["summary"]
                self.outcome.extra = message.get("extra") or {}
            elif "error" in message:
                error = message["error"]
                self.outcome.error = str(error.get("message"))
                self.outcome.exit_code = int(error.get("exit_code", 2))
                self.outcome.problem = error.get("problem")

    def stop(self) -> None:
        """Ask the helper to start no new request (it finishes those in flight)."""
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            stdin.write(b"stop\n")
            stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()

    def finish(
        self, *, stop: bool = False, stop_when: Callable[[], bool] | None = None
    ) -> HelperOutcome:
        """Wait for the helper's end and say what it told. ``stop``: ask it to stop first;
        ``stop_when``: ask it to stop once that turns true (this process is stopping). A
        helper asked to stop and still running ``_STOP_WAIT_S`` later is killed."""
        stopped_at = None
        if stop:
            self.stop()
            stopped_at = time.monotonic()
        while self.process.poll() is None:
            if stopped_at is None and stop_when is not None and stop_when():
                self.stop()
                stopped_at = time.monotonic()
            if stopped_at is not None and time.monotonic() - stopped_at > _STOP_WAIT_S:
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=_POLL_S)
        # The helper's end: our end of its stdin is closed too (end of file is also a stop).
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        self._reader.join(timeout=10)
        outcome = self.outcome
        outcome.returncode = self.process.returncode
        outcome.died = outcome.summary is None and outcome.error is None
        return outcome


def spawn_helper(
    argv: Sequence[str], request: dict[str, Any], progress: Progress | None
) -> HelperProcess:
    """Start ``argv`` (a fresh interpreter, never a fork) and hand it ``request`` on stdin.
    Its stderr is ours (its log lines go where ours go)."""
    process = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        close_fds=True,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(request).encode() + b"\n")
        process.stdin.flush()
    except OSError:
        pass  # it died at once: ``finish`` says so
    return HelperProcess(process, progress)


def python_argv(module: str) -> list[str]:
    """The argv of ``python -P -m module`` in this interpreter (-P: the working directory is
    not put on sys.path; nothing there is code)."""
    return [sys.executable, "-P", "-m", module]


# -- the helper's side ---------------------------------------------------------------------


def exit_now(code: int) -> NoReturn:
    """End the helper once its work is told: at once, without waiting on the thread that
    reads stdin (blocked in a read, it would stop the interpreter's shutdown)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Channel:
    """The helper's end of the pipe: the request read, stop watched, progress and the end
    told. The protocol's stdout is kept apart from ``sys.stdout`` (pointed at stderr), so that
    nothing printed by accident breaks it."""

    def __init__(self, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
        if stdin is None:
            # Ctrl-C reaches the whole process group: the parent stops us over the pipe,
            # after its own requests in flight, instead of a traceback here.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._in = stdin or sys.stdin.buffer
        self._out = stdout or sys.stdout.buffer
        if stdout is None:
            sys.stdout = sys.stderr
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._told_at = 0.0
        self.request: dict[str, Any] = json.loads(self._in.readline() or b"{}")

    def watch(self, on_stop: Callable[[], None]) -> None:
        """Call ``on_stop`` when the parent says stop or goes away (end of file)."""

        def watch() -> None:
            while True:
                line = self._in.readline()
                if not line or line.strip() == b"stop":
                    on_stop()
                    return

        threading.Thread(target=watch, name="overlap-parent", daemon=True).start()

    def tell(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._out.write(data)
            self._out.flush()

    def progress(self, kind: str, n: int) -> None:
        """Counted, and told at most every ``_PROGRESS_EVERY_S`` (and by ``flush``)."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n
            due = time.monotonic() - self._told_at >= _PROGRESS_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self._told_at = time.monotonic()
        for kind, n in counts.items():
            self.tell({"progress": [kind, n]})
