"""Shared fixtures: the write side on SQLite (a temp file) and on the real local PostgreSQL.

PostgreSQL tests create their own uniquely named database and drop it afterwards,
so parallel workers never see each other's data.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

from commands.application import TrafiApplication
from commands.bus import CommandBus
from commands.config import EventStoreConfig
from commands.context import StoreContext
from projections.views import ViewStore
from tests.factories import seed_small_store

PG_ADMIN_DSN = os.environ.get("TRAFI_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_pg_database() -> str:
    name = f"trafi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_dsn(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture
def pg_database():
    name = create_pg_database()
    yield name
    drop_pg_database(name)


def make_config(kind: str, tmp_path, pg_name: str | None = None, pool_size: int = 10) -> EventStoreConfig:
    if kind == "sqlite":
        return EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "events.sqlite"))
    return EventStoreConfig(kind="postgres", postgres_dsn=pg_dsn(pg_name), pool_size=pool_size)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request):
    return request.param


@pytest.fixture
def app(store_kind, tmp_path, request):
    pg_name = create_pg_database() if store_kind == "postgres" else None
    application = TrafiApplication(make_config(store_kind, tmp_path, pg_name, pool_size=20))
    yield application
    application.close()
    if pg_name:
        drop_pg_database(pg_name)


@pytest.fixture
def bus(app):
    return CommandBus(app)


@pytest.fixture
def shop(bus):
    """A small seeded store: context, product ids and skus (see tests/factories.py)."""
    return seed_small_store(bus)


@pytest.fixture
def ctx(shop) -> StoreContext:
    return shop.ctx


@pytest.fixture
def views(app):
    """The view database beside the test's event store (read models and tracking positions)."""
    store = ViewStore(app.config)
    yield store
    store.close()
