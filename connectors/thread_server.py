"""A uvicorn server in a background thread, on a socket bound here: the sandbox's two APIs
(``connectors.sandbox.server``) and the console inside the daemon (``sync.web.server``).

Here, not in ``sync``, because the sandbox may not import ``sync``; ``sync`` may import
``connectors``. Binding the socket ourselves makes port 0 give a known port before the
server starts, and an address already taken a one-line ``PortUnavailable``.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

__all__ = ["PortUnavailable", "ThreadServer"]


class PortUnavailable(OSError):
    """A server's address cannot be listened on (most often: another program has the port);
    the message names the address and why."""


class ThreadServer:
    """One uvicorn server (``config``: everything but the address) on ``host``:``port``, run
    in a daemon thread by ``start()``; ``url`` and ``port`` tell where (port 0 picks a free
    one). uvicorn installs signal handlers only in the main thread: signals stay with the
    caller, who calls ``stop()`` on the way out. ``label`` names the server in errors."""

    def __init__(
        self,
        config: uvicorn.Config,
        host: str,
        port: int,
        *,
        label: str,
        thread_name: str | None = None,
    ) -> None:
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else every
        # keep-alive answer waits ~40 ms for a delayed ACK).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(128)
        except OSError as exc:
            self.socket.close()
            raise PortUnavailable(
                exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self.label = label
        self.port = int(self.socket.getsockname()[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name=thread_name, daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def wait_started(self, deadline: float) -> None:
        """Return once the server accepts connections; ``RuntimeError`` if its thread ended
        first, ``TimeoutError`` once ``deadline`` (``time.monotonic()``) has passed."""
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"{self.label} on {self.url} did not start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.label} on {self.url} did not start in time")
            time.sleep(0.01)

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (several servers stop at once)."""
        self.server.should_exit = True

    def stop(self) -> None:
        """Stop the server and wait for its thread (forcing it after 10 s); close the socket."""
        self.server.should_exit = True
        if self.thread.ident is None:  # never started: a server after another failed to bind
            self.socket.close()
            return
        self.thread.join(timeout=10)
        if self.thread.is_alive():  # pragma: no cover - a stuck connection
            self.server.force_exit = True
            self.thread.join(timeout=5)
        self.socket.close()
