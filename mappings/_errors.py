"""Turning pydantic validation errors into one line a person can read."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe"]


def describe(error: ValidationError, limit: int = 3) -> str:
    """``field.path: message; ...`` for the first ``limit`` problems."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
