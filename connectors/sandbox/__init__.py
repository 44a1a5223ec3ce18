"""Sandbox servers: a PMM-like source and an e-Kinerja-like target on loopback.

Both follow docs/apis.md, independently of the connectors and mappings, with seeded
synthetic data (:func:`generate_world`) and switchable faults (:class:`Faults`). Tests
start them with :func:`running_sandbox`; :func:`serve_forever` serves them until
SIGINT/SIGTERM for a person trying the service on one machine.
"""

from __future__ import annotations

from connectors.sandbox.ekinerja_app import TargetStore, create_ekinerja_app
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_world
from connectors.sandbox.pmm_app import create_pmm_app
from connectors.sandbox.server import Sandbox, running_sandbox, serve_forever
from connectors.sandbox.world import Defect, SandboxWorld

__all__ = [
    "Defect",
    "Faults",
    "Sandbox",
    "SandboxWorld",
    "TargetStore",
    "create_ekinerja_app",
    "create_pmm_app",
    "generate_world",
    "running_sandbox",
    "serve_forever",
]
