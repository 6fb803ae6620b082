"""The HTTP API under test: the real app on the real stores, in-process or under uvicorn.

`api` gives a TestClient over the app (embedded projections running), a bootstrapped
store with its keys and catalogue, and a second store for tenant-isolation checks.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import NewStore, bootstrap_store
from api.services import Services, build_services
from api.settings import ApiSettings, Rate
from commands.context import StoreContext
from tests.conftest import make_config
from tests.factories import Shop, fill_store

SECRET = b"test-secret-key"
OWNER_PASSWORD = "owner-password-123"


@dataclass
class ApiStore:
    keys: NewStore
    shop: Shop
    owner_email: str

    @property
    def ctx(self) -> StoreContext:
        return self.shop.ctx

    @property
    def storefront(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.publishable_key}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.secret_key}"}


@dataclass
class Api:
    client: TestClient
    services: Services
    store: ApiStore
    other: ApiStore  # another tenant

    @property
    def bus(self):
        return self.services.bus


def open_api_store(services: Services, *, stock: int = 100) -> ApiStore:
    slug = f"shop-{uuid4().hex[:8]}"
    email = f"owner@{slug}.example"
    keys = bootstrap_store(services.bus, services.settings.secret_key, slug=slug, name=f"Shop {slug}",
                           owner_email=email, owner_password=OWNER_PASSWORD)
    shop = fill_store(services.bus, StoreContext(keys.store_id, actor="test"), stock=stock)
    return ApiStore(keys=keys, shop=shop, owner_email=email)


def api_settings(config, **overrides) -> ApiSettings:
    defaults = dict(
        event_store=config, secret_key=SECRET, storefront_rate=Rate(1000, 1000), admin_rate=Rate(1000, 1000),
        anonymous_rate=Rate(1000, 1000),
    )
    return ApiSettings(**{**defaults, **overrides})


@pytest.fixture
def api_config(store_kind, tmp_path, request):
    from tests.conftest import create_pg_database, drop_pg_database

    pg_name = create_pg_database() if store_kind == "postgres" else None
    yield make_config(store_kind, tmp_path, pg_name, pool_size=20)
    if pg_name:
        drop_pg_database(pg_name)


@pytest.fixture
def mail_server():
    """A real SMTP server (aiosmtpd) on a free port; `messages` holds what it received."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Collect(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    controller.messages = handler.messages
    yield controller
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api(api_config, mail_server):
    settings = api_settings(api_config, smtp_host="127.0.0.1", smtp_port=mail_server.port)
    services = build_services(settings)
    store, other = open_api_store(services), open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield Api(client=client, services=services, store=store, other=other)


@pytest.fixture
def live_server(api_config):
    """The app under uvicorn on a free port (a real socket), for end-to-end tests."""
    import uvicorn

    settings = api_settings(api_config)
    services = build_services(settings)
    store = open_api_store(services)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services=services), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store
    server.should_exit = True
    thread.join(timeout=15)
