"""(a) and (d) with overlap (issue 28): the engine's delivery helper, in the benchmark's rig.

``run`` starts its helper as ``python -m sync.deliver_helper`` over real HTTP clients; the
benchmark answers both APIs in-process (``bench.mocks``), which a second process cannot
share. So ``bench.engine_case --overlap`` gives the engine ``Launcher``, which starts this
module instead: the same helper (``sync.deliver_helper.serve``: the same request on stdin,
the same protocol, the same ``Engine.deliver_beside``) on a mock target of its own, whose
request counts come back with its summary and are added to the parent's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from bench.mocks import PmmMock, TargetMock
from bench.world import LeanWorld

__all__ = ["Launcher", "main"]

MODULE = "bench.overlap_case"


class Launcher:
    """The engine's ``overlap``: starts ``python -m bench.overlap_case`` with the run's
    settings; keeps the helpers started, to read their target's counts afterwards."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.helpers: list[Any] = []

    def __call__(
        self, period: str, run_id: str, progress: Callable[[str, int], None] | None
    ) -> Any:
        from sync.pipeline.overlap import spawn_helper
        from sync.settings import settings_payload

        request = {
            "period": period,
            "run_id": run_id,
            "actor": "cli",
            "settings": settings_payload(self.settings),
            "logging": {"json": True, "level": "CRITICAL"},
        }
        helper = spawn_helper([sys.executable, "-m", MODULE], request, progress)
        self.helpers.append(helper)
        return helper

    def target_counts(self) -> dict[str, int]:
        """The requests the helpers' mock targets answered, by kind."""
        counts: dict[str, int] = {}
        for helper in self.helpers:
            for kind, n in (helper.outcome.extra.get("target_counts") or {}).items():
                counts[kind] = counts.get(kind, 0) + int(n)
        return counts


def main() -> None:
    from sync.bootstrap import build_app
    from sync.deliver_helper import serve
    from sync.logs import configure_logging
    from sync.pipeline.overlap import Channel, exit_now
    from sync.settings import Settings

    channel = Channel()
    configure_logging(json=True, level="CRITICAL")
    settings = Settings(**channel.request["settings"])
    target = TargetMock()
    with build_app(
        settings,
        source_transport=PmmMock(LeanWorld(1)).transport(),
        target_transport=target.transport(),
        create_store=False,
    ) as app:
        code = serve(app, channel, extra=lambda: {"target_counts": dict(target.counts)})
    exit_now(code)


if __name__ == "__main__":
    main()
