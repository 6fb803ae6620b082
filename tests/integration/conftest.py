"""Fixtures of the Kafka tests: a real broker (Tansu), durable on S3 when a test restarts it,
and a PostgreSQL event store with its view store."""

from __future__ import annotations

import pytest

from commands.application import TrafiApplication
from projections.views import ViewStore
from tests.conftest import create_pg_database, drop_pg_database, make_config
from tests.kafka_broker import S3Server, TansuBroker


@pytest.fixture
def broker(tmp_path):
    tansu = TansuBroker(log_path=tmp_path / "tansu.log")
    yield tansu
    tansu.kill()


@pytest.fixture(scope="module")
def s3():
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def durable_broker(s3, tmp_path):
    tansu = TansuBroker(s3=s3, log_path=tmp_path / "tansu.log")
    yield tansu
    tansu.kill()


@pytest.fixture
def pg():
    name = create_pg_database()
    app = TrafiApplication(make_config("postgres", None, name, pool_size=10))
    views = ViewStore(app.config)
    yield app, views
    views.close()
    app.close()
    drop_pg_database(name)
