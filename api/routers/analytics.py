"""Admin analytics from the DuckDB warehouse: the funnel (and one step by segment), the store overview.

Whoever owns the warehouse answers (docs/analytics.md): in embedded mode this process; when
TRAFI_ANALYTICS_URL is set, the analytics worker (`trafi analytics run`), to which the request is
forwarded as it came — method, path, query, Authorization and body. An unreachable worker, or a
process without a warehouse, is an unavailable dependency: 503 `analytics.unavailable` with
Retry-After, never a 500. Bad input is 422 naming the parameter.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import Principal, admin_route, require
from api.examples import example
from api.problems import ApiProblem
from api.services import Services, services
from autopilot.warehouse.queries import (
    DEFAULT_TOP_PRODUCTS, Filters, Funnel, FunnelBreakdown, Overview, Window, funnel, funnel_breakdown, overview,
)
from autopilot.warehouse.schema import FUNNEL_STEPS

router = APIRouter(prefix="/v1/admin/analytics", tags=["admin: analytics"])

DEFAULT_DAYS = 30
MAX_DAYS = 366
RETRY_AFTER_S = 5
FORWARD_TIMEOUT = httpx.Timeout(30.0, connect=2.0)
FORWARDED_HEADERS = ("authorization", "content-type", "x-request-id", "idempotency-key")

DateFrom = Annotated[date | None, Query(alias="from", description="First day (UTC), inclusive; default: 29 days "
                                                                   "before `to`")]
DateTo = Annotated[date | None, Query(alias="to", description="Last day (UTC), inclusive; default: today")]
Device = Annotated[Literal["desktop", "mobile", "tablet"] | None, Query(description="Only visitor-days on this device")]
Country = Annotated[str | None, Query(pattern=r"^[A-Z]{2}$", description="Only visitor-days from this country "
                                                                           "(ISO 3166-1 alpha-2)")]
Source = Annotated[str | None, Query(min_length=1, max_length=256, description="Only visitor-days from this traffic "
                                                                                "source (utm_source, referrer host or `direct`)")]
Step = Annotated[Literal[FUNNEL_STEPS] | None, Query(description="Break this step down by `by`")]
By = Annotated[Literal["device", "country", "source", "returning"] | None,
               Query(description="The segment to break `step` down by")]

UNAVAILABLE = {503: {"description": "The analytics warehouse is not reachable from here (Retry-After)"}}

FUNNEL_EXAMPLE = {
    "store_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f", "date_from": "2026-10-23", "date_to": "2026-11-21",
    "device": None, "country": None, "source": None, "unit": "visitor_day",
    "steps": [
        {"step": "visit", "visitors": 1200, "conversion_pct": None, "conversion_from_start_pct": 100.0,
         "drop_off": 0, "drop_off_pct": None},
        {"step": "product_view", "visitors": 780, "conversion_pct": 65.0, "conversion_from_start_pct": 65.0,
         "drop_off": 420, "drop_off_pct": 35.0},
    ],
}
OVERVIEW_EXAMPLE = {
    "store_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f", "date_from": "2026-10-23", "date_to": "2026-11-21",
    "previous_from": "2026-09-23", "previous_to": "2026-10-22", "currency": "EUR",
    "visitors": {"current": 950, "previous": 900, "change": 50, "change_pct": 5.56},
    "orders": {"current": 31, "previous": 28, "change": 3, "change_pct": 10.71},
    "margin": {"current_pct": 38.2, "previous_pct": 36.9, "change_points": 1.3},
    "top_products": [], "top_categories": [], "…": "sessions, page_views, revenue_minor, average_order_value_minor, "
    "gross_profit_minor, conversion_rate, cart_abandonment_rate",
}


# Days a store can have data for: outside, the default start or the period before would leave the
# calendar (year 1 minus 29 days), so such a date is refused rather than computed
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _window(date_from: date | None, date_to: date | None) -> Window:
    for name, day in (("query.from", date_from), ("query.to", date_to)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ApiProblem(422, "analytics.invalid_range", f"{day} is outside {EARLIEST_DAY} to {LATEST_DAY}",
                             field=name)
    end = date_to or datetime.now(timezone.utc).date()
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ApiProblem(422, "analytics.invalid_range", f"from ({start}) is after to ({end})", field="query.from")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApiProblem(422, "analytics.range_too_long",
                         f"from {start} to {end} is {(end - start).days + 1} days; at most {MAX_DAYS}",
                         field="query.to")
    return Window(start, end)


def _unavailable(reason: str) -> ApiProblem:
    return ApiProblem(503, "analytics.unavailable", f"analytics unavailable: {reason}",
                      headers={"Retry-After": str(RETRY_AFTER_S)})


async def forward(request: Request, base_url: str) -> Response:
    """The same request to the analytics worker; its answer as it is (a 503 when it cannot be reached)."""
    headers = {name: value for name, value in request.headers.items() if name.lower() in FORWARDED_HEADERS}
    try:
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT) as client:
            answer = await client.request(request.method, base_url + request.url.path, params=request.url.query,
                                          headers=headers, content=await request.body())
    except httpx.HTTPError as error:
        raise _unavailable(f"the analytics worker did not answer ({type(error).__name__})") from None
    kept = {name: value for name, value in answer.headers.items() if name.lower() in ("retry-after", "content-type")}
    return Response(content=answer.content, status_code=answer.status_code, headers=kept)


async def on_warehouse(request: Request, svc: Services, work):
    """Whoever owns the warehouse answers: forward to the analytics worker, or run `work(warehouse)`
    here off the event loop; 503 `analytics.unavailable` when neither can."""
    if svc.settings.analytics_url:
        return await forward(request, svc.settings.analytics_url)
    warehouse = svc.warehouse
    if warehouse is None:
        raise _unavailable("this process has no warehouse and TRAFI_ANALYTICS_URL is not set")
    return await run_in_threadpool(work, warehouse)


async def _answer(request: Request, svc: Services, query):
    """Forward, or run `query(cursor)` on this process's warehouse."""
    def read(warehouse):
        with warehouse.reading() as cur:
            return query(cur)

    return await on_warehouse(request, svc, read)


@router.get("/funnel", summary="The funnel: visitors per step, conversion and drop-off; or one step by segment",
            response_model=Funnel | FunnelBreakdown, responses={**example(FUNNEL_EXAMPLE), **UNAVAILABLE},
            **admin_route("dashboard:read"))
async def funnel_route(
    request: Request, date_from: DateFrom = None, date_to: DateTo = None, device: Device = None,
    country: Country = None, source: Source = None, step: Step = None, by: By = None,
    principal: Principal = Depends(require("dashboard:read")), svc: Services = Depends(services),
):
    window = _window(date_from, date_to)
    if (step is None) != (by is None):
        missing = "by" if by is None else "step"
        raise ApiProblem(422, "analytics.breakdown_incomplete", f"a breakdown needs both step and by; {missing} "
                         "is missing", field=f"query.{missing}")
    filters = Filters(device=device, country=country, source=source)
    store = str(principal.store_id)
    if step is not None:
        return await _answer(request, svc, lambda cur: funnel_breakdown(cur, store, window, step, by, filters))
    return await _answer(request, svc, lambda cur: funnel(cur, store, window, filters))


@router.get("/overview", summary="Store metrics for a date range against the period of equal length before it",
            response_model=Overview, responses={**example(OVERVIEW_EXAMPLE), **UNAVAILABLE},
            **admin_route("dashboard:read"))
async def overview_route(
    request: Request, date_from: DateFrom = None, date_to: DateTo = None,
    top_products: Annotated[int, Query(ge=1, le=50, description="How many top products and categories")] = DEFAULT_TOP_PRODUCTS,
    principal: Principal = Depends(require("dashboard:read")), svc: Services = Depends(services),
):
    window = _window(date_from, date_to)
    store = str(principal.store_id)
    return await _answer(request, svc, lambda cur: overview(cur, store, window, top=top_products))
