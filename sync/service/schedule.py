"""The daemon's schedule: its jobs declared on an APScheduler scheduler, and the scheduler's
log lines sent out as structlog events. All use of APScheduler is here.

Jobs, declared from ``[daemon]`` (``coalesce=True, max_instances=1``; no job store: the state
store holds the service's state, the schedule is the config):

- ``sync`` on ``sync_cron``, or every ``sync_every_s`` (then a first one at once);
- ``retry`` every ``retry_every_s``, and once at start-up, so what a stop (or a ``run``) left in
  the outbox goes out at once;
- ``reconcile`` on ``reconcile_cron``, by worker 1 only (a report, read from e-Kinerja N
  times over otherwise);
- ``notify`` on ``[notify] cron``, by worker 1 only (each school told once per change).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import (  # type: ignore[import-untyped]
    ThreadPoolExecutor as JobPool,
)
from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from sync.settings import DaemonSettings

__all__ = ["ScheduleError", "declare_jobs", "scheduler_logs"]

log = structlog.get_logger("ekinerja_sync.daemon")

# A job that fires while the process was busy or suspended still runs if this late (seconds).
_MISFIRE_GRACE_S = 300


class ScheduleError(ValueError):
    """A setting of the schedule cannot be used; the message names the key."""


def declare_jobs(
    config: DaemonSettings,
    timezone: ZoneInfo,
    *,
    worker: int,
    job: Callable[[str], Callable[[], None]],
    notify_cron: str = "",
) -> Any:
    """A scheduler (not started) with the jobs of ``config``; ``job(name)`` is what runs."""
    scheduler = BackgroundScheduler(
        timezone=timezone,
        executors={"default": JobPool(max_workers=3)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": _MISFIRE_GRACE_S,
        },
    )
    now = dt.datetime.now(timezone)
    if config.sync_every_s > 0:
        sync_trigger = IntervalTrigger(seconds=config.sync_every_s, timezone=timezone)
    elif config.sync_cron:
        sync_trigger = _cron("sync_cron", config.sync_cron, timezone)
    else:
        sync_trigger = None
    if sync_trigger is not None:
        # Every N seconds counts from start-up (a first sync at once); a cron waits its time.
        first = {"next_run_time": now} if config.sync_every_s > 0 else {}
        scheduler.add_job(job("sync"), sync_trigger, id="sync", name="sync", **first)
    scheduler.add_job(
        job("retry"),
        IntervalTrigger(seconds=config.retry_every_s, timezone=timezone),
        id="retry",
        name="retry",
        next_run_time=now,  # what a stop left in the outbox goes out at once
    )
    # Worker 1 alone reconciles: a report, read from e-Kinerja N times over otherwise.
    if config.reconcile_cron and worker == 1:
        scheduler.add_job(
            job("reconcile"),
            _cron("reconcile_cron", config.reconcile_cron, timezone),
            id="reconcile",
            name="reconcile",
        )
    # Worker 1 alone tells the schools (the outbox would keep two from sending one twice,
    # but one sender is simpler to read in the logs).
    if notify_cron and worker == 1:
        scheduler.add_job(
            job("notify"), _cron("notify.cron", notify_cron, timezone), id="notify", name="notify"
        )
    return scheduler


def _cron(key: str, expression: str, timezone: ZoneInfo) -> Any:
    try:
        return CronTrigger.from_crontab(expression, timezone=timezone)
    except ValueError as exc:
        raise ScheduleError(
            f"{key if '.' in key else 'daemon.' + key} = {expression!r} is not a cron "
            f"expression: {exc}"
        ) from None


class _ToStructlog(logging.Handler):
    """APScheduler logs through the standard library: its warnings (a missed run, a run
    skipped because the previous one still runs) go out as structlog events like the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        log.log(
            record.levelno, "scheduler." + record.levelname.lower(), message=record.getMessage()
        )


@contextlib.contextmanager
def scheduler_logs() -> Iterator[None]:
    """While it lasts, APScheduler's warnings go out as structlog events (and only there)."""
    logger = logging.getLogger("apscheduler")
    handler = _ToStructlog(logging.WARNING)
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved
