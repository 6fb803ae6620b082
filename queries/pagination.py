"""Keyset pagination: bounded pages and opaque cursors.

A cursor is the sort key of the last row of a page (unique, because every sort
ends in an id), encoded so that clients treat it as a token and do not build
their own. The next page is "rows after that key", which stays correct while
rows are added, unlike an offset.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Generic, TypeVar

from domain.errors import InvalidValue
from queries.model import QueryModel

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

T = TypeVar("T")


class Page(QueryModel, Generic[T]):
    items: tuple[T, ...]
    next_cursor: str | None  # None on the last page


def check_limit(limit: int, *, most: int = MAX_PAGE_SIZE) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= most:
        raise InvalidValue("limit", f"must be between 1 and {most}", code="query.invalid_limit")
    return limit


def encode_cursor(key: tuple[str, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> tuple[str, ...]:
    """The sort key inside `cursor`; InvalidValue("cursor") for anything this module did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (AttributeError, TypeError, UnicodeError, ValueError, binascii.Error):
        key = None
    if not (isinstance(key, list) and len(key) == size and all(_storable(part) for part in key)):
        raise InvalidValue("cursor", "not a cursor of this list", code="query.invalid_cursor")
    return tuple(key)


def _storable(part: object) -> bool:
    """Text a database will take as a parameter: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if not isinstance(part, str) or "\x00" in part:
        return False
    try:
        part.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def page_of(rows: list, limit: int, key_of, to_item) -> Page:
    """A page from up to limit + 1 fetched rows: the extra row only says that there is a next page."""
    items = rows[:limit]
    more = len(rows) > limit
    next_cursor = encode_cursor(key_of(items[-1])) if more else None
    return Page(items=tuple(to_item(row) for row in items), next_cursor=next_cursor)
