"""StoreContext: the tenant (and actor) every command and query runs in."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class StoreContext:
    store_id: UUID  # comes from the authenticated API key, never from the request body
    actor: str = "system"  # who acts: "system", "user:<id>", "apikey:<id>", "autopilot"
