"""Run both sandbox APIs on loopback: uvicorn servers in background threads.

``running_sandbox`` is for tests (ephemeral ports, clean stop); ``serve_forever`` is for a person
trying the service on one machine; ``main`` parses command-line options for it (a CLI command or
a ``__main__`` module can call it).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from connectors.sandbox.ekinerja_app import TargetStore, create_ekinerja_app
from connectors.sandbox.faults import Faults, quiet_dropped_connection_log
from connectors.sandbox.generator import DEFAULT_PERIODS, generate_world
from connectors.sandbox.pmm_app import create_pmm_app
from connectors.sandbox.ratewindow import RateWindow
from connectors.sandbox.world import SandboxWorld
from connectors.thread_server import PortUnavailable, ThreadServer

__all__ = ["PortUnavailable", "Sandbox", "running_sandbox", "serve_forever"]

_START_TIMEOUT_S = 10.0


@dataclass
class Sandbox:
    """Both running servers and the objects behind them (change ``faults`` at run time)."""

    world: SandboxWorld
    target: TargetStore
    faults: Faults
    """Faults of the target (e-Kinerja) server."""
    source_faults: Faults
    """Faults of the source (PMM) server."""
    pmm_url: str
    ekinerja_url: str
    rate_window: RateWindow
    """The target's arrivals per client and second (``stats()``: accepted, refused, worst)."""


def _server(app: Starlette, host: str, port: int, log_level: str) -> ThreadServer:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=log_level == "info",
        lifespan="off",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    return ThreadServer(config, host, port, label="sandbox server")


@contextlib.contextmanager
def _serving(
    world: SandboxWorld,
    *,
    host: str,
    pmm_port: int,
    ekinerja_port: int,
    faults: Faults | None,
    source_faults: Faults | None,
    token_ttl_s: int,
    schema_version: int,
    log_level: str,
) -> Iterator[Sandbox]:
    quiet_dropped_connection_log()
    store = TargetStore()
    target_faults = faults if faults is not None else Faults()
    pmm_faults = source_faults if source_faults is not None else Faults()
    pmm_app = create_pmm_app(
        world, pmm_faults, token_ttl_s=token_ttl_s, schema_version=schema_version
    )
    window = RateWindow()
    target_app = create_ekinerja_app(
        world, store, target_faults, token_ttl_s=token_ttl_s, window=window
    )
    servers: list[ThreadServer] = []
    try:
        servers.append(_server(pmm_app, host, pmm_port, log_level))
        servers.append(_server(target_app, host, ekinerja_port, log_level))
        for server in servers:
            server.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        for server in servers:
            server.wait_started(deadline)
        yield Sandbox(
            world=world,
            target=store,
            faults=target_faults,
            source_faults=pmm_faults,
            pmm_url=servers[0].url,
            ekinerja_url=servers[1].url,
            rate_window=window,
        )
    finally:
        for server in servers:  # both shut down at once, then wait for each
            server.request_stop()
        for server in servers:
            server.stop()


@contextlib.contextmanager
def running_sandbox(
    world: SandboxWorld,
    *,
    host: str = "127.0.0.1",
    pmm_port: int = 0,
    ekinerja_port: int = 0,
    faults: Faults | None = None,
    source_faults: Faults | None = None,
    token_ttl_s: int = 3600,
    schema_version: int = 1,
) -> Iterator[Sandbox]:
    """Both servers, accepting connections, for the ``with`` block; stopped cleanly after.

    Port 0 picks a free ephemeral port. ``faults`` apply to the target, ``source_faults`` to the
    source (each a fresh, all-off :class:`Faults` when not given).
    """
    with _serving(
        world,
        host=host,
        pmm_port=pmm_port,
        ekinerja_port=ekinerja_port,
        faults=faults,
        source_faults=source_faults,
        token_ttl_s=token_ttl_s,
        schema_version=schema_version,
        log_level="warning",
    ) as sandbox:
        yield sandbox


def serve_forever(
    world: SandboxWorld,
    *,
    host: str = "127.0.0.1",
    pmm_port: int = 8701,
    ekinerja_port: int = 8702,
    faults: Faults | None = None,
    token_ttl_s: int = 3600,
    schema_version: int = 1,
) -> None:
    """Serve both APIs until SIGINT or SIGTERM (call from the main thread)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _serving(
            world,
            host=host,
            pmm_port=pmm_port,
            ekinerja_port=ekinerja_port,
            faults=faults,
            source_faults=None,
            token_ttl_s=token_ttl_s,
            schema_version=schema_version,
            log_level="info",
        ) as sandbox:
            print(f"PMM sandbox:       {sandbox.pmm_url}", flush=True)
            print(f"e-Kinerja sandbox: {sandbox.ekinerja_url}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: a seeded world served on two local ports until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run the PMM and e-Kinerja sandbox servers.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pmm-port", type=int, default=8701)
    parser.add_argument("--ekinerja-port", type=int, default=8702)
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--teachers-per-school", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--period",
        action="append",
        dest="periods",
        help="a period code, YYYY-S (semester) or YYYY (year); repeat for more "
        f"(default: {' '.join(DEFAULT_PERIODS)})",
    )
    parser.add_argument("--schema-version", type=int, choices=(1, 2), default=1)
    parser.add_argument("--token-ttl-s", type=int, default=3600)
    args = parser.parse_args(argv)
    world = generate_world(
        schools=args.schools,
        teachers_per_school=args.teachers_per_school,
        seed=args.seed,
        periods=tuple(args.periods or DEFAULT_PERIODS),
        schema_version=args.schema_version,
    )
    serve_forever(
        world,
        host=args.host,
        pmm_port=args.pmm_port,
        ekinerja_port=args.ekinerja_port,
        token_ttl_s=args.token_ttl_s,
        schema_version=args.schema_version,
    )
