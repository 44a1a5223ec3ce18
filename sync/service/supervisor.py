"""``ekinerja-sync daemon --workers N``: worker 1 (the process systemd started) runs N-1 more.

Each worker is the same command in a process of its own (``daemon --worker K``, hidden), the
same config and environment, running its own ``Daemon``; they share the work on one
PostgreSQL store by the outbox claims and the period leases, each under its own name
(``sync.workers.worker_id``: host and pid). Worker 1 alone serves the endpoint.

Processes, not threads: each worker has its own interpreter (its own GIL), which is what
makes more of them faster. Started by ``subprocess`` once worker 1 is up, so the store exists
(``--create-store``) and the config has been checked before a second process reads it.

- A stop (SIGTERM, SIGINT) of worker 1 is forwarded as SIGTERM to the others at once (under
  systemd's ``KillMode=mixed`` only the main process gets it); each stops cleanly within
  ``stop_grace_s``, one still running after that is killed (nothing is lost: docs/design.md,
  invariant 1).
- A worker that ends by itself stops the lot, and worker 1 exits 1: systemd's
  ``Restart=on-failure`` starts them all again (simple, and the same every time).
- A worker whose supervisor is gone (killed with SIGKILL) stops by itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from types import TracebackType

import structlog

from sync.service.daemon import Daemon

__all__ = ["Supervisor", "watch_supervisor"]

log = structlog.get_logger("ekinerja_sync.daemon")

_POLL_S = 0.1


class Supervisor:
    """Worker 1's other workers, for a ``with`` block around ``daemon.run()``.

    ``command(k)`` is the argv of worker ``k``. After the block, ``failure`` says why the
    workers stopped when it was not asked for (a worker ended by itself), else None.
    """

    def __init__(self, daemon: Daemon, count: int, command: Callable[[int], list[str]]) -> None:
        self.daemon = daemon
        self.count = count
        self.command = command
        self.failure: str | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="workers", daemon=True)
        daemon.workers = self.counts

    def counts(self) -> tuple[int, int]:
        """(configured, alive) worker processes, worker 1 included."""
        children = list(self._children.values())
        return self.count, 1 + sum(child.poll() is None for child in children)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The daemon has stopped (or never started): the thread stops the others and ends.
        self._closing.set()
        self._thread.join(timeout=self.daemon.settings.daemon.stop_grace_s + 5)

    def _stop_asked(self) -> bool:
        return self.daemon.stopping or self._closing.is_set()

    def _watch(self) -> None:
        # Every child is started, watched and stopped from this one thread.
        while not (self.daemon.started.is_set() or self._stop_asked()):
            time.sleep(_POLL_S)
        if not self._stop_asked():
            self._start_children()
        while not self._stop_asked():
            self._check_children()
            time.sleep(_POLL_S)
        self._stop_children()

    def _start_children(self) -> None:
        for k in range(2, self.count + 1):
            try:
                # this interpreter, our own module and arguments (the CLI's _worker_command)
                child = subprocess.Popen(self.command(k), stdin=subprocess.DEVNULL)  # noqa: S603
            except OSError as exc:
                self._fail(f"worker {k} could not be started: {exc.strerror or exc}")
                return
            self._children[k] = child
            log.info("daemon.worker_started", child_worker=k, child_pid=child.pid)

    def _check_children(self) -> None:
        for k, child in self._children.items():
            code = child.poll()
            if code is not None:
                log.error(
                    "daemon.worker_exited",
                    child_worker=k,
                    child_pid=child.pid,
                    exit_code=code,
                    note="stopping the other workers; exit 1 (systemd restarts them all)",
                )
                self._fail(f"worker {k} (pid {child.pid}) ended by itself with exit code {code}")
                return

    def _fail(self, why: str) -> None:
        self.failure = why
        self.daemon.request_stop()

    def _stop_children(self) -> None:
        running = {k: c for k, c in self._children.items() if c.poll() is None}
        for child in running.values():
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.daemon.settings.daemon.stop_grace_s
        while running and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            running = {k: c for k, c in running.items() if c.poll() is None}
        for k, child in running.items():
            log.warning(
                "daemon.worker_killed",
                child_worker=k,
                child_pid=child.pid,
                note="still running after stop_grace_s; unsent requests stay in the outbox",
            )
            child.kill()
            child.wait()


def watch_supervisor(daemon: Daemon, supervisor_pid: int) -> None:
    """In workers 2..N: stop when worker 1 is gone (its process ended without stopping us:
    SIGKILL), instead of running on unsupervised."""

    def watch() -> None:
        while not daemon.stopping:
            if os.getppid() != supervisor_pid:
                log.warning("daemon.supervisor_gone", supervisor_pid=supervisor_pid)
                daemon.request_stop()
                return
            time.sleep(1.0)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
