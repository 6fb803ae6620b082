"""The edge of every request: credentials, rate limits, sizes, headers, request ids, CORS."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from api.settings import Rate
from tests.api.conftest import api_settings, open_api_store


def test_no_credential_is_401_with_a_bearer_challenge(api):
    response = api.client.get("/v1/products")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "auth.missing_credentials"


@pytest.mark.parametrize("token", ["nonsense", "trafi_pk_" + "0" * 72, "trafi_sk_" + "a" * 72])
def test_unknown_or_malformed_tokens_are_401(api, token):
    response = api.client.get("/v1/products", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["code"] == "auth.invalid_token"


def test_a_publishable_key_cannot_call_admin_routes(api):
    response = api.client.get("/v1/admin/orders", headers=api.store.storefront)
    assert response.status_code == 403 and response.json()["code"] == "auth.wrong_key_kind"


def test_security_headers_and_request_ids(api):
    response = api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["strict-transport-security"].startswith("max-age=")
    generated = api.client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 16
    problem = api.client.get("/v1/products", headers={"X-Request-Id": "req-42"}).json()
    assert problem["request_id"] == "req-42"


def test_bodies_over_the_limit_are_413_before_anything_runs(api):
    response = api.client.post("/v1/carts", content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                               headers={**api.store.storefront, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "request.too_large"


def test_bodies_streamed_without_a_length_are_cut_off_too(api):
    def chunks():
        for _ in range(20):
            yield b" " * 100_000

    response = api.client.post("/v1/carts", content=chunks(),
                               headers={**api.store.storefront, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_malformed_json_is_a_422_problem_not_a_500(api):
    response = api.client.post("/v1/carts", content=b"{not json", headers={**api.store.storefront,
                                                                          "Content-Type": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


def _limited_app(config, **settings):
    services = build_services(api_settings(config, **settings))
    return services, open_api_store(services)


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_key_over_its_rate_gets_429_with_retry_after(api_config):
    services, store = _limited_app(api_config, storefront_rate=Rate(1, 3))
    with TestClient(create_app(services=services)) as client:
        statuses = [client.get("/v1/products", headers=store.storefront).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        refused = client.get("/v1/products", headers=store.storefront)
        assert refused.headers["retry-after"] == "1" and refused.json()["code"] == "rate_limited"
        assert "trafi_rate_limited_total" in client.get("/metrics").text


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_rate_limits_are_shared_through_redis(api_config):
    """Two API processes (two apps here) on one Redis draw from the same bucket."""
    import uuid

    redis_url = "redis://127.0.0.1:6379/15"
    services_a, store = _limited_app(api_config, storefront_rate=Rate(0.01, 4), redis_url=redis_url)
    services_b = build_services(api_settings(api_config, storefront_rate=Rate(0.01, 4), redis_url=redis_url))
    with TestClient(create_app(services=services_a)) as a, TestClient(create_app(services=services_b)) as b:
        # A key the Redis database has never seen: the bucket starts full.
        assert uuid.UUID(str(store.keys.store_id))
        statuses = [client.get("/v1/products", headers=store.storefront).status_code for client in (a, b, a, b, a, b)]
        assert statuses == [200, 200, 200, 200, 429, 429]


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_cors_allows_only_configured_origins(api_config):
    services, store = _limited_app(api_config, cors_origins=("https://shop.example",))
    with TestClient(create_app(services=services)) as client:
        preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "Authorization, Idempotency-Key"}
        allowed = client.options("/v1/carts", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        denied = client.options("/v1/carts", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in denied.headers


def test_metrics_expose_route_latency_command_retries_and_projection_lag(api):
    api.client.get("/v1/products", headers=api.store.storefront)
    text = api.client.get("/metrics").text
    assert 'trafi_http_request_duration_seconds_count{method="GET",route="/v1/products",status="200"}' in text
    assert "trafi_command_retries_total" in text and "trafi_command_conflicts_total" in text
    assert 'trafi_projection_lag_events{projection="order_list"}' in text


def test_readyz_reports_the_store_and_every_projection(api):
    body = api.client.get("/readyz").json()
    assert body["event_store"] == "ok" and {p["name"] for p in body["projections"]} >= {"order_list", "cart_view"}


def test_a_nul_in_the_url_is_a_422_problem(api):
    for url in ("/v1/products/a%00b", "/v1/products?cursor=%00"):
        response = api.client.get(url, headers=api.store.storefront)
        assert response.status_code == 422 and response.json()["code"] == "request.nul_character", url
