"""The command bus: one entry point that runs a handler in a unit of work.

For every command it
  1. prefetches the aggregates the command names (one query),
  2. replays the first result if the idempotency key was seen before,
  3. runs the handler, which calls aggregate methods (business rules live there),
  4. saves everything — including the idempotency record — in one transaction,
  5. on a version conflict, starts again from 1 against fresh state, a bounded
     number of times with jittered backoff, then gives up with `Conflict`.
     A retry waits in a lane: commands of this process retrying on the same
     aggregates take turns instead of storming a hot one (a popular SKU's
     stock item), so contention costs a queue, not a cascade of failures.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from eventsourcing.persistence import IntegrityError, OperationalError

from commands.application import TrafiApplication
from commands.base import Command
from commands.context import StoreContext
from commands.handlers import HANDLERS
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.errors import Conflict, DomainError
from domain.idempotency import IdempotencyRecord

log = logging.getLogger("trafi.commands")


class IdempotencyKeyReused(DomainError):
    code = "idempotency.key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request", field="Idempotency-Key")


@dataclass(frozen=True)
class CommandResult:
    position: int | None  # notification id of the command's last event (read-your-writes)
    data: dict = field(default_factory=dict)
    replayed: bool = False  # True when an idempotency key returned a stored result


@dataclass
class BusStats:
    commands: int = 0
    retries: int = 0
    conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class ContentionLanes:
    """Striped in-process locks keyed by aggregate id; taken in sorted order, so never deadlocking."""

    def __init__(self, stripes: int = 256):
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, aggregate_ids):
        stripes = sorted({hash(agg_id) % len(self._locks) for agg_id in aggregate_ids})
        for stripe in stripes:
            self._locks[stripe].acquire()
        try:
            yield
        finally:
            for stripe in reversed(stripes):
                self._locks[stripe].release()


def fingerprint(command: Command) -> str:
    body = f"{type(command).__name__}:{command.model_dump_json()}"
    return hashlib.sha256(body.encode()).hexdigest()


class CommandBus:
    def __init__(
        self,
        app: TrafiApplication,
        *,
        handlers: dict[type[Command], Callable] | None = None,
        max_attempts: int = 30,
        backoff_s: float = 0.002,
        max_backoff_s: float = 0.1,
    ):
        self.app = app
        self.handlers = HANDLERS if handlers is None else handlers
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.stats = BusStats()
        self.lanes = ContentionLanes()

    def execute(
        self, command: Command, ctx: StoreContext, *, idempotency_key: str | None = None,
        request_fingerprint: str | None = None,
    ) -> CommandResult:
        """Run `command` for the store in `ctx`.

        `request_fingerprint` says what "the same request" means for the key: by
        default the command itself, but the HTTP API passes a hash of the request
        (route, path, body, caller), because a command may hold ids the server chose
        afresh for each attempt.
        """
        handler = self.handlers[type(command)]
        request_print = request_fingerprint or fingerprint(command)
        record_id = ids.idempotency_id(ctx.store_id, idempotency_key) if idempotency_key else None
        self.stats.add(commands=1)
        contended: set = set()  # aggregates this command lost a race on
        for attempt in range(1, self.max_attempts + 1):
            with self.lanes.hold(contended):
                result, lost_on = self._attempt(command, ctx, handler, idempotency_key, record_id, request_print)
            if result is not None:
                return result
            contended |= lost_on
            self.stats.add(retries=1)
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** min(attempt, 10))
            time.sleep(random.uniform(0, delay))
        self.stats.add(conflicts=1)
        raise Conflict(
            f"{type(command).__name__} kept conflicting with concurrent changes after "
            f"{self.max_attempts} attempts; retry the request",
            code="command.conflict",
        )

    def _attempt(self, command, ctx, handler, idempotency_key, record_id, request_print) -> tuple[CommandResult | None, set]:
        """One try. Returns the result, or None and the ids of the aggregates it lost a race on."""
        uow = UnitOfWork(self.app, ctx)
        uow.load([*command.aggregate_ids(ctx), *([record_id] if record_id else [])])
        if record_id:
            replay = self._replay(uow, record_id, request_print)
            if replay:
                return replay, set()
        data = handler(command, uow) or {}
        if record_id:
            uow.add(IdempotencyRecord(
                id=record_id, store_id=ctx.store_id, key=idempotency_key,
                fingerprint=request_print, result=data,
            ))
        try:
            return CommandResult(position=uow.commit(), data=data), set()
        except (IntegrityError, OperationalError) as error:
            # IntegrityError: someone saved a newer version first. "database is locked":
            # SQLite's writer contention. Both: try again. Any other OperationalError is
            # an outage (the recorder has already retried it), not a race.
            if isinstance(error, OperationalError) and "locked" not in str(error):
                raise
            log.debug("%s lost a race: %s", type(command).__name__, error)
            return None, {aggregate.id for aggregate in uow.changed()}

    @staticmethod
    def _replay(uow: UnitOfWork, record_id, request_print: str) -> CommandResult | None:
        record = uow.find(IdempotencyRecord, record_id)
        if record is None:
            return None
        if record.fingerprint != request_print:
            raise IdempotencyKeyReused()
        return CommandResult(position=uow.positions.get(record_id), data=record.result, replayed=True)
