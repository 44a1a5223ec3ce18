"""The in-process sandbox of the service tests: both sandbox apps behind httpx transports, an
application built by ``sync.bootstrap.build_app`` on them, and small tools for the tests.

- :class:`InProcessSandbox`: the PMM-like and e-Kinerja-like Starlette apps of one world, each
  behind a :class:`~tests.service.asgi.SyncASGITransport`; the target's API requests can be
  intercepted per test (:meth:`InProcessSandbox.intercept`) for answers the sandbox does not
  give by itself (a connection refused, a maintenance window in virtual time).
- :func:`app_for`: the application a CLI run would build, on those transports, with a ``sleep``
  that does not sleep (it records what it was asked to wait).
- :class:`VirtualClock`: monotonic time that advances only when something sleeps on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal
from sqlmodel import Session, select

from connectors.sandbox import (
    Faults,
    SandboxWorld,
    TargetStore,
    create_ekinerja_app,
    create_pmm_app,
)
from state import ledger
from state.models import DeliveryKind, OutboxEntry, SyncRecord
from sync.bootstrap import App, build_app
from sync.settings import load_settings
from tests.service.asgi import SyncASGITransport

__all__ = [
    "InProcessSandbox",
    "Sleeps",
    "VirtualClock",
    "app_for",
    "ledger_entries",
    "outbox_of",
    "record_of",
]

PMM_URL = "http://127.0.0.1:8701"
EKINERJA_URL = "http://127.0.0.1:8702"

# A handler sees each target API request first: it returns an answer of its own, or None to
# let the sandbox answer (it may also raise an httpx error, as a broken connection would).
Handler = Callable[[httpx.Request], httpx.Response | None]


class _Intercepting(httpx.BaseTransport):
    """A sandbox app's transport: counts API requests, lets a test's handler answer first."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.handler: Handler | None = None
        self.api_requests: list[tuple[str, str]] = []
        self.token_requests = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            with self._lock:
                self.token_requests += 1
        if request.url.path.startswith("/api/"):
            with self._lock:
                self.api_requests.append((request.method, request.url.path))
            if self.handler is not None:
                answer = self.handler(request)
                if answer is not None:
                    return answer
        return self.inner.handle_request(request)


@dataclass
class InProcessSandbox:
    """Both sandbox apps of ``world``; ``target`` is what e-Kinerja holds (``stats()``)."""

    world: SandboxWorld
    portal: BlockingPortal
    faults: Faults = field(default_factory=Faults)
    source_faults: Faults = field(default_factory=Faults)
    schema_version: int = 1

    def __post_init__(self) -> None:
        self.target = TargetStore()
        pmm = create_pmm_app(self.world, self.source_faults, schema_version=self.schema_version)
        ekinerja = create_ekinerja_app(self.world, self.target, self.faults)
        self.source_transport = _Intercepting(SyncASGITransport(pmm, self.portal))
        self.target_transport = _Intercepting(SyncASGITransport(ekinerja, self.portal))

    def intercept(self, handler: Handler | None) -> None:
        """Let ``handler`` see every target API request first (None: stop intercepting)."""
        self.target_transport.handler = handler

    def revoke_tokens(self) -> None:
        """Every access token given so far stops working (the token-expiry fault)."""
        answer = self.target_transport.inner.handle_request(
            httpx.Request("POST", f"{EKINERJA_URL}/_sandbox/tokens/revoke")
        )
        assert answer.status_code == 200

    @property
    def api_requests(self) -> list[tuple[str, str]]:
        """(method, path) of every target API request that reached the transport."""
        return list(self.target_transport.api_requests)

    @property
    def source_requests(self) -> list[tuple[str, str]]:
        """(method, path) of every source API request."""
        return list(self.source_transport.api_requests)


class Sleeps:
    """A ``sleep`` that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.hooks: list[Callable[[float], None]] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        for hook in self.hooks:
            hook(seconds)


class VirtualClock:
    """``time.monotonic`` for tests: advances only by ``sleep``."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(seconds, 0.0)


@contextmanager
def app_for(
    box: InProcessSandbox,
    state_url: str,
    *,
    sleep: Callable[[float], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    **sections: dict[str, Any],
) -> Iterator[App]:
    """The application over ``box``'s transports on the store at ``state_url``; ``sections``
    override settings like a config file would (``target={"concurrency": 4}``). ``sleep`` and
    ``monotonic``: virtual time (``VirtualClock``) for the waits and the delivery's clock."""
    overrides: dict[str, dict[str, Any]] = {
        "state": {"url": state_url},
        "source": {"base_url": PMM_URL, "page_size": 50},
        "target": {"base_url": EKINERJA_URL, "rate_limit_per_s": 0, "concurrency": 4},
        "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.2, "max_attempts": 5},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    with build_app(
        load_settings(None, overrides=overrides),
        source_transport=box.source_transport,
        target_transport=box.target_transport,
        sleep=sleep if sleep is not None else Sleeps(),
        monotonic=monotonic,
    ) as app:
        yield app


def record_of(app: App, period: str, nip: str, kind: DeliveryKind) -> SyncRecord:
    """The deliverable's row in ``sync_record`` (read afresh)."""
    with Session(app.store.engine) as session:
        row = session.get(SyncRecord, (nip, period, kind))
        assert row is not None, f"no {kind.value} of {nip} in {period}"
        return row


def outbox_of(app: App, period: str, nip: str, kind: DeliveryKind) -> list[OutboxEntry]:
    """The deliverable's outbox entries, oldest first."""
    with Session(app.store.engine) as session:
        return list(
            session.exec(
                select(OutboxEntry)
                .where(
                    OutboxEntry.nip == nip, OutboxEntry.period == period, OutboxEntry.kind == kind
                )
                .order_by(OutboxEntry.id)  # type: ignore[arg-type]
            )
        )


def ledger_entries(app: App, **filters: Any) -> list[ledger.LedgerEntry]:
    """Ledger entries matching ``filters`` (``state.ledger.query``), after checking that the
    chain verifies."""
    with Session(app.store.engine) as session:
        assert ledger.verify(session).ok
        return list(ledger.query(session, **filters))
