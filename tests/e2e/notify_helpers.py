"""For the school-message tests: a webhook receiver (a real HTTP server on loopback), a config
file for the CLI with the mail sink, and a sandbox world with one school that has nothing to
fix."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from connectors.sandbox import SandboxWorld, generate_world

PERIOD = "2026"
SECRET = "webhook-secret-for-the-tests-0123456789"


@dataclass
class Hook:
    """What a webhook receiver was sent: (headers, body) per request."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]


@contextmanager
def webhook_receiver() -> Iterator[Hook]:
    hook = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hook.received.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(hook.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def write_config(path: Path, state_url: str, pmm: str, target: str, smtp_port: int) -> Path:
    path.write_text(
        f"""
[state]
url = "{state_url}"
[source]
base_url = "{pmm}"
[target]
base_url = "{target}"
rate_limit_per_s = 0
[notify]
remind_days_before = []
retry_after_s = 0
[notify.smtp]
host = "127.0.0.1"
port = {smtp_port}
""",
        encoding="utf-8",
    )
    return path


def make_final(record: dict[str, Any]) -> None:
    """A record as a school would leave it fixed: plan approved, penilaian final and sound."""
    record["perencanaan"]["disetujui_pada"] = "2026-01-20T09:00:00+07:00"
    record["penilaian"]["status"] = "final"
    record["penilaian"]["hasil"] = {
        "rating_hasil_kerja": "sesuai_ekspektasi",
        "rating_perilaku": "sesuai_ekspektasi",
        "predikat": "baik",
    }
    record["penilaian"]["difinalkan_pada"] = None  # stamped by the world


def world_with_a_clean_school() -> tuple[SandboxWorld, str]:
    """A world whose first school without a deliberate defect has nothing to fix."""
    world = generate_world(schools=4, teachers_per_school=6, seed=11, periods=[PERIOD])
    broken = {d.npsn for d in world.defects}
    clean = next(s["npsn"] for s in world.schools if s["npsn"] not in broken)
    for record in world.records(PERIOD):
        if record["sekolah"]["npsn"] == clean and not record["dibatalkan"]:
            world.update_record(record["id"], make_final)
    return world, clean


def waiting_ids(world: SandboxWorld, npsn: str) -> list[str]:
    """Source ids of the school's records a person must still act on (not final or not
    approved, or deliberately broken)."""
    broken = {d.source_id for d in world.defects}
    return [
        r["id"]
        for r in world.records(PERIOD)
        if r["sekolah"]["npsn"] == npsn
        and not r["dibatalkan"]
        and (
            r["id"] in broken
            or r["penilaian"]["status"] != "final"
            or r["perencanaan"]["disetujui_pada"] is None
        )
    ]
