"""The FastAPI application: storefront, admin and operations routes under one roof.

`create_app()` reads the environment; tests and benchmarks pass settings or
ready-made services. Routers live in api/routers/, one area each.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import problems
from api.middleware import EdgeMiddleware
from api.openapi import document_problems
from api.routers import ROUTERS, events
from api.routers import diagnosis as diagnosis_routes
from api.routers import analytics as analytics_routes
from api.routers import autopilot as autopilot_routes
from api.routers import flags as flags_routes
from api.services import Services, build_services
from api.settings import ApiSettings

DESCRIPTION = """\
Trafi Core's HTTP API. **Storefront** routes take a publishable key (`Authorization: Bearer trafi_pk_…`);
**admin** routes take a secret key or an admin session, checked against the permission each route names
(`x-permission`). Every mutating route accepts an `Idempotency-Key`. Errors are RFC 9457 problem details
(`application/problem+json`) with a stable `code`, the `field` and the `reason`.
"""


def create_app(settings: ApiSettings | None = None, *, services: Services | None = None) -> FastAPI:
    settings = settings or (services.settings if services else ApiSettings.from_env())
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services.start()
        try:
            yield
        finally:
            services.close()

    app = FastAPI(
        title="Trafi Core API", version="1.0.0", description=DESCRIPTION, lifespan=lifespan,
        openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    app.state.services = services
    problems.install(app)
    app.include_router(events.router)  # first: routes are matched in order, and this is the busiest
    app.include_router(flags_routes.router)  # second: a storefront asks it on every page
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(diagnosis_routes.router)
    app.include_router(diagnosis_routes.run_router)
    app.include_router(analytics_routes.router)
    app.include_router(autopilot_routes.router)
    app.include_router(autopilot_routes.tick_router)
    if settings.bench_baseline:
        app.include_router(events.baseline_router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Customer-Session", "X-Request-Id"],
            expose_headers=["X-Request-Id", "X-Trafi-Position", "Idempotent-Replayed", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes, metrics=services.metrics)
    document_problems(app)
    return app
