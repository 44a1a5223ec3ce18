"""The version of the installed package (``ekinerja-sync --version``, the daemon's start-up
event, ``/healthz`` and the ``ekinerja_sync_build_info`` metric)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("ekinerja-sync")
except PackageNotFoundError:  # pragma: no cover - run from a tree that was never installed
    VERSION = "0+unknown"
