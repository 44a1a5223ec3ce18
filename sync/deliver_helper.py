"""The delivery helper: the second process of a run with ``[sync] overlap``.

Started by ``run`` or the daemon (``sync.bootstrap.helper_launcher``) as ``python -m
sync.deliver_helper`` once the walk's first page is committed; reads what to deliver and its
settings on stdin, delivers the period beside the walk (``Engine.deliver_beside``: the
two-worker protocol) and tells its parent its progress and summary on stdout
(``sync.pipeline.overlap``). It stops, starting no new request, when the parent says so or
goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.errors import FatalError
from sync.bootstrap import App, build_app
from sync.logs import configure_logging
from sync.pipeline.overlap import Channel, exit_now, helper_summary
from sync.pipeline.summary import RunSummary
from sync.settings import ConfigError, Settings

__all__ = ["main", "serve"]


def serve(app: App, channel: Channel, extra: Callable[[], dict[str, Any]] | None = None) -> int:
    """Deliver the period of ``channel.request`` beside the walk; tell the parent how it
    went. Returns the exit code (1: e-Kinerja refused us, as for ``run``; 2: a bug)."""
    request = channel.request
    engine = app.engine
    channel.watch(engine.deliverer.stop.set)
    summary = RunSummary(
        run_id=str(request["run_id"]), period=str(request["period"]), dry_run=False
    )
    try:
        engine.deliver_beside(summary.period, (), summary, channel.progress)
    except FatalError as exc:
        channel.flush()
        channel.tell({"error": {"message": exc.message, "exit_code": 1, "problem": "target"}})
        return 1
    except Exception as exc:  # a bug: said to the parent in one line, which reports it
        channel.flush()
        message = f"unexpected {type(exc).__name__} in the delivery process: {exc}"[:500]
        channel.tell({"error": {"message": message, "exit_code": 2, "problem": "bug"}})
        return 2
    channel.flush()
    channel.tell({"summary": helper_summary(summary), "extra": extra() if extra else {}})
    return 0


def main() -> None:
    channel = Channel()
    request = channel.request
    setup = request.get("logging") or {}
    configure_logging(
        json=setup.get("json"),
        level=setup.get("level", "WARNING"),
        fields={**(setup.get("fields") or {}), "process": "delivery"},
    )
    try:
        settings = Settings(**request["settings"])
        with build_app(settings, actor=str(request.get("actor", "cli")), create_store=False) as app:
            code = serve(app, channel)
    except (ConfigError, Exception) as exc:  # before delivery began: the parent delivers all
        message = f"the delivery process could not start: {type(exc).__name__}: {exc}"[:500]
        channel.tell({"error": {"message": message, "exit_code": 2, "problem": "bug"}})
        code = 2
    exit_now(code)


if __name__ == "__main__":
    main()
