"""`trafi payments reconcile`: retry refunds the payment provider has not confirmed yet.

    trafi payments reconcile [--once] [--interval S]

A refund is recorded as requested before the provider is called; one the provider
could not be reached for stays pending. This worker pays those out with the refund's
own idempotency key (so the provider pays each exactly once). The embedded API process
does the same every TRAFI_REFUND_RETRY_S; run this worker when projections run apart.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from api.settings import ApiSettings
from commands.application import TrafiApplication
from commands.bus import CommandBus
from commands.payments.reconciler import settle_once
from commands.payments.registry import configured_providers
from commands.payments.service import PaymentService
from projections.views import ViewStore

log = logging.getLogger("trafi.payments")


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = ApiSettings.from_env()
    app = TrafiApplication(settings.event_store)
    views = ViewStore(settings.event_store)
    service = PaymentService(CommandBus(app), configured_providers(settings), settings.payment_provider)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while True:
            settled = settle_once(service, views)
            log.info("settled %d pending refund(s)", settled)
            if args.once or stop.wait(args.interval):
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        views.close()
        app.close()


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("payments", help="payments: retry pending refunds")
    actions = parser.add_subparsers(dest="action", required=True)
    reconcile = actions.add_parser("reconcile", help="pay out pending refunds (until SIGTERM, or --once)")
    reconcile.add_argument("--once", action="store_true", help="one pass, then exit")
    reconcile.add_argument("--interval", type=float, default=60.0, help="seconds between passes")
    reconcile.set_defaults(func=cmd_reconcile)
