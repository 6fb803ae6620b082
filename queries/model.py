"""Base of everything a query returns: immutable pydantic values."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class QueryModel(BaseModel):
    model_config = ConfigDict(frozen=True)
