"""Running a command from a request: idempotency, read-your-writes, replay headers.

`Idempotency-Key` works on every mutating route. The key is scoped to the store; what
counts as "the same request" is the route, its path parameters, the parsed body and
the caller — not the command, which may hold ids the server picked afresh. Same key,
same request: the first response again (marked `Idempotent-Replayed: true`); same key,
another request: 422 `idempotency.key_reused`. Responses of mutating routes are built
from the command's result alone, which is what makes a replay identical.

`X-Trafi-Position` on a response is the position of the command's last event; pass it
as `min_position` to a GET to read your own write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from commands.base import Command
from commands.bus import CommandResult
from commands.context import StoreContext
from domain.errors import InvalidValue

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Any unique string (a UUID is ideal). Retrying with the same key and body returns the first response.",
)]

async def _min_position(request: Request, min_position: Annotated[int | None, Query(
    ge=0, le=2**62,
    description="Wait (up to 2 s) until the read model has applied this position — the `X-Trafi-Position` of your write",
)] = None) -> int | None:
    # A position the event store has not reached yet was never returned by a write: waiting for it
    # would only time out, so it is refused at once.
    if min_position is None:
        return None
    head = await run_in_threadpool(request.app.state.services.app.recorder.max_notification_id)
    if min_position > (head or 0):
        raise InvalidValue("min_position", "no write has reached this position yet", code="query.position_not_written")
    return min_position


MinPosition = Annotated[int | None, Depends(_min_position)]


def request_fingerprint(request: Request, payload: BaseModel | None, actor: str) -> str:
    """What "the same request" is, as an HMAC keyed by the server's secret.

    Keyed, because the fingerprint is stored with the command's events and a body
    may hold a password: a plain hash of it would be a guessable password hash.
    """
    route = request.scope.get("route")
    parts = {
        "method": request.method,
        "route": getattr(route, "path", request.url.path),
        "path": request.path_params,
        "body": payload.model_dump(mode="json") if payload is not None else None,
        "actor": actor,
    }
    secret = request.app.state.services.settings.secret_key
    return hmac.new(secret, json.dumps(parts, sort_keys=True, default=str).encode(), hashlib.sha256).hexdigest()


@dataclass
class CommandGateway:
    request: Request
    response: Response
    idempotency_key: str | None

    def run(self, command: Command, ctx: StoreContext, *, payload: BaseModel | None = None) -> CommandResult:
        bus = self.request.app.state.services.bus
        fingerprint = request_fingerprint(self.request, payload, ctx.actor) if self.idempotency_key else None
        result = bus.execute(command, ctx, idempotency_key=self.idempotency_key, request_fingerprint=fingerprint)
        answered(result, self.response)
        return result


def answered(result: CommandResult, response: Response) -> dict:
    """The result's data, with its position (and replay) in the headers, as `CommandGateway.run` does."""
    if result.position is not None:
        response.headers["X-Trafi-Position"] = str(result.position)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result.data


async def command_gateway(request: Request, response: Response, idempotency_key: IdempotencyKey = None) -> CommandGateway:
    return CommandGateway(request, response, idempotency_key)
