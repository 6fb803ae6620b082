"""Admin dashboard: revenue, orders, average order value, top products, new vs returning customers.

Today, this week and this month in the merchant's time zone, each against the period
before (read model `dashboard_metrics`; definitions in queries/dashboard.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, admin_route, require
from api.commanding import MinPosition
from api.examples import DASHBOARD_EXAMPLE, example
from api.services import Services, services
from queries.dashboard import DEFAULT_TOP_PRODUCTS, MAX_TOP_PRODUCTS, Dashboard

router = APIRouter(prefix="/v1/admin/dashboard", tags=["admin: dashboard"])

# The shape of an IANA name (`Europe/Berlin`, `America/Argentina/Buenos_Aires`, `UTC`, `Etc/GMT+1`);
# whether the zone exists is the query's check (422 `query.unknown_time_zone`).
TZ_NAME = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"


@router.get("", summary="Sales dashboard: today, this week, this month, each against the period before",
            response_model=Dashboard, responses=example(DASHBOARD_EXAMPLE), **admin_route("dashboard:read"))
def dashboard(
    principal: Principal = Depends(require("dashboard:read")), svc: Services = Depends(services),
    tz: Annotated[str, Query(min_length=1, max_length=64, pattern=TZ_NAME,
                             description="IANA time zone whose midnights bound the periods")] = "UTC",
    compare: Annotated[Literal["same_point", "full"], Query(
        description="`same_point`: the previous period up to the same point in it; `full`: all of it")] = "same_point",
    top_products: Annotated[int, Query(ge=1, le=MAX_TOP_PRODUCTS, description="How many top products")] = DEFAULT_TOP_PRODUCTS,
    min_position: MinPosition = None,
):
    return svc.queries.dashboard.metrics(principal.ctx, tz=tz, compare=compare, top_products=top_products,
                                         min_position=min_position)
