"""The school messages in ``/metrics``, read from the outbox at every scrape (so they are right
after a restart, and count what ``schools actions --send`` sent as well as the daemon)."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import Session

from state.notices import NoticeState, notice_counts
from state.store import StateStore

__all__ = ["SchoolMessageCollector"]

log = structlog.get_logger("ekinerja_sync.health")

PREFIX = "ekinerja_sync"


class SchoolMessageCollector(Collector):
    """Messages to schools per channel: sent, failed (given up), refused tries, waiting."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        messages = CounterMetricFamily(
            f"{PREFIX}_school_messages",
            "Messages to schools (their action lists) by channel (email, webhook) and outcome: "
            "sent; failed (refused for good, or out of tries); refused (each try a server "
            "refused, retried or not); uncertain (the sender stopped mid-send: maybe arrived).",
            labels=["channel", "outcome"],
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_school_messages_waiting",
            "Messages to schools written and not sent yet (a refusing server keeps them here).",
            labels=["channel"],
        )
        try:
            with Session(self.store.engine) as session:
                counts = notice_counts(session)
        except Exception as exc:  # the endpoint answers even when the store does not
            log.warning("metrics.store_unavailable", error=type(exc).__name__)
            return
        for channel in sorted(set(counts) | {"email", "webhook"}):
            by = counts.get(channel, {})
            messages.add_metric([channel, "sent"], by.get(NoticeState.SENT.value, 0))
            messages.add_metric([channel, "failed"], by.get(NoticeState.FAILED.value, 0))
            messages.add_metric([channel, "refused"], by.get("failed_attempts", 0))
            messages.add_metric([channel, "uncertain"], by.get(NoticeState.UNCERTAIN.value, 0))
            waiting.add_metric([channel], by.get(NoticeState.PENDING.value, 0))
        yield messages
        yield waiting
