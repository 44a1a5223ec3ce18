"""The cursor-paged listings both APIs serve (``limit``, ``cursor``, ``next_cursor``), walked
one way for the source and the target alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors._http import data_list
from connectors.errors import FatalError

__all__ = ["paginate"]


def paginate(
    get: Callable[[Mapping[str, str | int]], dict[str, Any]],
    path: str,
    filters: Mapping[str, str | int],
    *,
    page_size: int,
    server: str,
) -> Iterator[dict[str, Any]]:
    """Every item of the listing at ``path``, page after page: ``get(params)`` asks for one
    page (its JSON object), and the next page is asked for only when this one is consumed.

    The cursor is sent with the same filters (the contracts allow both ways). A cursor that is
    not a non-empty string, or one already followed, would loop forever: ``server`` (who
    broke the contract, as the message names it) sent it, and the walk stops with a
    ``FatalError``.
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        params: dict[str, str | int] = {**filters, "limit": page_size}
        if cursor is not None:
            params["cursor"] = cursor
        body = get(params)
        yield from data_list(body, "GET", path)
        next_cursor = body.get("next_cursor")
        if next_cursor is None:
            return
        if not isinstance(next_cursor, str) or not next_cursor or next_cursor in seen:
            raise FatalError(f"GET {path}: {server} sent an unusable or repeated next_cursor")
        seen.add(next_cursor)
        cursor = next_cursor
