"""Base of every command model: one pydantic model per intention.

Pydantic checks shapes and types; the domain checks values and rules (and
says which, with a stable code), so each rule lives in exactly one place.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from commands.context import StoreContext


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        """Aggregates the handler will load first, fetched in one round trip."""
        return []
