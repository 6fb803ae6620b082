"""schemathesis against the app's own OpenAPI document, every route.

No generated request may produce a 5xx, an undocumented status or content type, or a
response that breaks its documented schema. Credentials are real (the owner's secret
key on admin routes, the publishable key and a fresh customer session elsewhere),
so the fuzzing reaches the handlers rather than stopping at 401.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from commands.customers import RegisterCustomer
from domain import tokens
from domain.session import Session
from tests.api.conftest import api_settings, open_api_store
from tests.conftest import create_pg_database, drop_pg_database, make_config

EXAMPLES = 25

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    name = create_pg_database()
    services = build_services(api_settings(make_config("postgres", tmp_path_factory.mktemp("fuzz"), name)))
    store = open_api_store(services)
    customer_id = uuid.UUID(services.bus.execute(
        RegisterCustomer(email="fuzz@example.com", password="fuzz-password-1"), store.ctx).data["customer_id"])
    app = create_app(services=services)
    with TestClient(app):  # runs the lifespan: embedded projections keep the read models current
        yield app, services, store, customer_id
    drop_pg_database(name)


def fresh_customer_session(services, store, customer_id) -> str:
    """A new session per case: a fuzzed sign-out must not blind the cases after it."""
    session_id = uuid.uuid4()
    token = services.token("cs", session_id)
    services.app.save(Session.start(
        session_id, store_id=store.keys.store_id, subject_kind="customer", subject_id=customer_id,
        token_hash=tokens.token_hash(token), issued_at=datetime.now(timezone.utc), ttl_seconds=3600,
    ))
    return token


@pytest.mark.slow
@pytest.mark.postgres
def test_no_generated_request_breaks_the_contract(fuzz_target):
    app, services, store, customer_id = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures, covered = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        covered += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            headers = dict(store.admin if case.path.startswith("/v1/admin/") else store.storefront)
            headers["X-Customer-Session"] = fresh_customer_session(services, store, customer_id)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as failure:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    assert covered == sum(len(methods) for methods in app.openapi()["paths"].values())
    assert not failures, "\n\n".join(failures)
