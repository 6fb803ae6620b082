"""Base of every command model: one pydantic model per intention.

Pydantic checks shapes and types; the domain checks values and rules (and
says which, with a stable code), so each rule lives in exactly one place.
"""

from __future__ import annotations

from uuid import UUID

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from commands.context import StoreContext


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # A NUL cannot be stored in a PostgreSQL text column: once in an event it would halt every
        # projection that copies the text into a read model. Refused at the door, for every command.
        if _holds_nul(value):
            raise ValueError("must not contain NUL characters")
        return value

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        """Aggregates the handler will load first, fetched in one round trip."""
        return []


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


def aware(moment):
    """A field validator: a moment must carry its time zone (commands record instants, not wall times)."""
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone")
    return moment
