"""Every router of the API, in the order they appear in the OpenAPI document."""

from api.routers import buyer_orders, carts, catalogue, system

ROUTERS = [
    system.router,
    catalogue.router,
    carts.router,
    buyer_orders.router,
]
