"""Read-your-writes: wait until a read model has caught up with a command.

A command's result carries `position`, the notification id of its last event.
A read model that has applied everything up to that position reflects the
command; a client that must see its own write passes that position as
`min_position` to any query method, which then waits (up to `timeout_s`)
before it reads. Waiting is polling the projection's tracking row: cheap,
and it works the same for in-process runners and worker processes.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import ClassVar, Iterator

from domain.errors import DomainError, InvalidValue
from projections.views import ViewStore, ViewTransaction

DEFAULT_TIMEOUT_S = 2.0
_FIRST_POLL_S = 0.002
_MAX_POLL_S = 0.05


class ReadModelBehind(DomainError):
    """The read model did not reach the asked-for position in time; the write is not visible yet."""

    code = "query.read_model_behind"

    def __init__(self, projection: str, position: int, reached: int, timeout_s: float):
        super().__init__(
            f"read model {projection} is at position {reached}, not yet at {position}, after {timeout_s:g} s",
            field="position",
        )
        self.projection = projection
        self.position = position
        self.reached = reached


def _check_wait(position: int, timeout_s: float) -> None:
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise InvalidValue("position", "must be a non-negative notification id", code="query.invalid_position")
    if not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s < 0:
        raise InvalidValue("timeout_s", "must be a non-negative number of seconds", code="query.invalid_timeout")


def wait_for_position(
    views: ViewStore, projection_name: str, position: int, timeout_s: float = DEFAULT_TIMEOUT_S
) -> int:
    """Return the projection's position once it is >= `position`; raise ReadModelBehind after `timeout_s`."""
    _check_wait(position, timeout_s)
    deadline = time.monotonic() + timeout_s
    pause = _FIRST_POLL_S
    while True:
        reached = views.position(projection_name)
        if reached >= position:
            return reached
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadModelBehind(projection_name, position, reached, timeout_s)
        # Short first pauses: an in-process runner usually catches up within milliseconds.
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_POLL_S)


class ReadModelQueries:
    """Base of every query service: the view store, read-your-writes, and one consistent read."""

    projection_name: ClassVar[str]

    def __init__(self, views: ViewStore):
        self.views = views

    @contextmanager
    def reading(self, min_position: int | None, timeout_s: float) -> Iterator[ViewTransaction]:
        """Wait for `min_position` (if given), then read inside one read-only transaction.

        A query made of several statements (a page, then its lines) sees one snapshot:
        ViewStore.read() is a snapshot on both databases.
        """
        if min_position is not None:
            wait_for_position(self.views, self.projection_name, min_position, timeout_s)
        with self.views.read() as tx:
            yield tx
