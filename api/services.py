"""Everything a request handler may use, built once per API process from the settings.

Routers get these through `Depends(services)`; nothing in `api/` holds business rules —
commands go to the bus, reads go to the query services.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from fastapi import Request

from api.auth import Authenticator
from api.mailer import LogMailer, Mailer, SmtpMailer
from api.metrics import ApiMetrics
from api.ratelimit import RateLimiter, SignInLockouts, limiter_for
from api.settings import ApiSettings
from autopilot.telemetry.log import TelemetryLog
from autopilot.warehouse.store import Warehouse
from autopilot.worker import AnalyticsWorker
from commands.application import TrafiApplication
from commands.bus import CommandBus
from domain import tokens
from projections import registry
from projections.projection import Projection
from projections.read_models.access import record_api_key_use
from projections.status import ProjectionStatus, projection_status
from projections.views import ViewStore
from queries.changesets import ChangeSetQueries
from autopilot.flags.exposures import ExposureWriter, batch_exposure_recorder
from autopilot.flags.service import StorefrontFlags
from projections.kafka.relay import KafkaRelay
from projections.worker import ProjectionWorker
from projections.webhooks.deliverer import WebhookDeliverer
from commands.payments.reconciler import RefundReconciler
from commands.payments.registry import configured_providers
from commands.payments.service import PaymentService
from queries.admin_catalog import AdminCatalogQueries
from queries.access import AccessQueries
from queries.accounts import AccountQueries
from queries.audit import AuditService
from queries.carts import CartQueries
from queries.catalogue import CatalogueQueries
from queries.customers import CustomerListQueries, CustomerQueries
from queries.dashboard import DashboardQueries
from queries.orders import OrderQueries
from queries.stock import StockQueries
from queries.wishlist import WishlistQueries
from queries.store_settings import StoreSettingsQueries

log = logging.getLogger("trafi.api")


@dataclass
class Queries:
    orders: OrderQueries
    carts: CartQueries
    catalogue: CatalogueQueries
    stock: StockQueries
    customers: CustomerQueries
    dashboard: DashboardQueries
    audit: AuditService
    access: AccessQueries
    admin_catalog: AdminCatalogQueries
    store_settings: StoreSettingsQueries
    accounts: AccountQueries
    wishlist: WishlistQueries
    customer_list: CustomerListQueries

    @classmethod
    def over(cls, app: TrafiApplication, views: ViewStore) -> Queries:
        return cls(
            orders=OrderQueries(views), carts=CartQueries(views), catalogue=CatalogueQueries(views),
            stock=StockQueries(views), customers=CustomerQueries(views), dashboard=DashboardQueries(views),
            audit=AuditService(app), access=AccessQueries(views),
            admin_catalog=AdminCatalogQueries(views, app), store_settings=StoreSettingsQueries(app),
            accounts=AccountQueries(app), wishlist=WishlistQueries(app), customer_list=CustomerListQueries(views),
        )


@dataclass
class Services:
    settings: ApiSettings
    app: TrafiApplication
    bus: CommandBus
    views: ViewStore
    queries: Queries
    auth: Authenticator
    limiter: RateLimiter
    metrics: ApiMetrics
    mailer: Mailer
    projections: list[Projection]
    lockouts: SignInLockouts = field(default_factory=SignInLockouts)  # customer sign-in, per process
    worker: ProjectionWorker | None = None
    deliverer: WebhookDeliverer | None = None  # outbound webhooks, beside the embedded projections
    payments: PaymentService | None = None
    refunds: RefundReconciler | None = None  # embedded: retries refunds the provider has not answered yet
    telemetry: TelemetryLog | None = None  # storefront events (POST /v1/events); opened by build_services
    analytics: AnalyticsWorker | None = None  # embedded: owns and feeds the warehouse (settings.embedded_analytics)
    flags: StorefrontFlags | None = None  # live ChangeSets' flags, evaluated in process
    exposures: ExposureWriter | None = None  # writes the flags' first exposures off the request path
    owns_app: bool = field(default=True, repr=False)

    def token(self, kind: str, token_id: UUID, generation: int = 0) -> str:
        return tokens.derive(self.settings.secret_key, kind, token_id, generation)

    def projection_lag(self) -> list[ProjectionStatus]:
        return [projection_status(self.app, self.views, p) for p in self.projections]

    def relay_lag(self) -> list[ProjectionStatus]:
        """The Kafka relay's status, where this deployment has one (not part of readiness: the API
        serves from the read models whatever the relay does)."""
        return [projection_status(self.app, self.views, KafkaRelay())] if self.settings.kafka else []

    def start(self) -> None:
        if self.settings.embedded_projections and self.worker is None:
            self.worker = ProjectionWorker(self.app, self.views, self.projections).start()
        if self.settings.embedded_projections and self.settings.webhooks_embedded and self.deliverer is None:
            self.deliverer = WebhookDeliverer(self.views, self.settings.webhook_delivery()).start()
        if self.settings.embedded_projections and self.refunds is None and self.payments is not None:
            self.refunds = RefundReconciler(self.payments, self.views, self.settings.refund_retry_s).start()
        if self.settings.embedded_analytics and self.analytics is None:
            self.analytics = _embedded_analytics(self)

    @property
    def warehouse(self) -> Warehouse | None:
        """The analytics warehouse, when this process owns it."""
        return self.analytics.warehouse if self.analytics is not None else None

    def close(self) -> None:
        if self.exposures is not None:
            self.exposures.close()  # written out first; a later evaluation would start it again
        if self.analytics is not None:
            self.analytics.stop()
            self.analytics = None
        if self.refunds is not None:
            self.refunds.stop()
            self.refunds = None
        if self.deliverer is not None:
            self.deliverer.stop()
            self.deliverer = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.telemetry is not None:
            self.telemetry.close()
        if self.owns_app:
            self.views.close()
            self.app.close()


def _embedded_analytics(services: Services) -> AnalyticsWorker | None:
    """Open the warehouse and feed it from a thread of this process (docs/analytics.md)."""
    from autopilot.warehouse.commerce import PaymentFees
    from autopilot.warehouse.feeder import WarehouseFeeder

    settings = services.settings
    try:
        warehouse = Warehouse(settings.warehouse_path)
    except Exception as error:  # another process owns the file (`serve --workers N`): serve without it
        log.warning("analytics warehouse %s not opened, analytics routes answer 503: %s", settings.warehouse_path, error)
        return None
    fees = PaymentFees(settings.payment_fee_bp, settings.payment_fee_fixed_minor)
    feeder = WarehouseFeeder(warehouse, app=services.app, telemetry=services.telemetry, fees=fees)
    return AnalyticsWorker(warehouse, feeder, jobs=None if settings.analytics_jobs else []).start()


def record_key_usage(views: ViewStore):
    def record(store_id: UUID, key_id: UUID, at: datetime) -> None:
        try:
            record_api_key_use(views, store_id, key_id, at)
        except Exception as error:  # bookkeeping must never fail a request
            log.warning("could not record API key usage: %s", error)

    return record


def build_services(
    settings: ApiSettings, *, app: TrafiApplication | None = None, views: ViewStore | None = None,
    mailer: Mailer | None = None,
) -> Services:
    owns_app = app is None
    app = app or TrafiApplication(settings.event_store)
    views = views or ViewStore(settings.event_store)
    projections = registry.select(None)
    with views.schema_transaction() as tx:  # the read models' tables exist before the first query
        for projection in projections:
            projection.setup(tx)
    if mailer is None:
        mailer = (SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
                  if settings.smtp_host else LogMailer())
    bus = CommandBus(app)
    metrics = ApiMetrics()
    limiter = limiter_for(settings.redis_url)
    services = Services(
        settings=settings, app=app, bus=bus, views=views, queries=Queries.over(app, views),
        auth=Authenticator(app, record_usage=record_key_usage(views)), limiter=limiter, metrics=metrics,
        mailer=mailer, projections=projections, owns_app=owns_app,
        payments=PaymentService(bus, configured_providers(settings), settings.payment_provider),
        telemetry=TelemetryLog.open(settings.event_store),
    )
    metrics.watch(bus_stats=lambda: bus.stats, projection_lag=lambda: services.projection_lag() + services.relay_lag(),
                  rate_limited=lambda: limiter.refused)
    metrics.watch_event_flow(services.telemetry.totals)
    services.exposures = ExposureWriter(batch_exposure_recorder(services.telemetry),
                                        on_failure=lambda batch: services.flags.forget(batch))
    services.flags = StorefrontFlags(ChangeSetQueries(views), services.exposures.submit)
    return services


async def services(request: Request) -> Services:  # async: no thread-pool hand-off for a lookup
    return request.app.state.services
