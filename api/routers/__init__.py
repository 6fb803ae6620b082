"""Every router of the API, in the order they appear in the OpenAPI document."""

from api.routers import admin_audit, admin_catalog, admin_dashboard, admin_orders, admin_settings, admin_stock
from api.routers import admin_access, buyer_orders, carts, catalogue, system
from api.routers import accounts, admin_customers, wishlist
from api.routers import admin_webhooks
from api.routers import payment_webhooks, payments

ROUTERS = [
    system.router,
    catalogue.router,
    carts.router,
    buyer_orders.router,
    payments.router,
    admin_access.router,
    admin_catalog.router,
    admin_stock.router,
    admin_orders.router,
    admin_settings.router,
    admin_dashboard.router,
    admin_audit.router,
    accounts.router,
    wishlist.router,
    admin_customers.router,
    admin_webhooks.router,
    payment_webhooks.router,
]
