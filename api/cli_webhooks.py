"""`trafi webhooks deliver`: the outbound-webhook deliverer as a worker process.

    trafi webhooks deliver [--once] [--concurrency N] [--timeout S]

Sends what the `outbound_webhooks` projection queued (it runs with the other
projections: embedded in `trafi serve`, or in `trafi projections run`). Run as many
deliverers as you like against one PostgreSQL database: they never send the same
delivery at the same time. Settings come from the environment (api/settings.py:
TRAFI_SECRET_KEY — the same as the API's, endpoint secrets derive from it —
and TRAFI_WEBHOOKS_*). `--once` attempts what is due now and exits (for cron);
without it the worker runs until SIGTERM. Set TRAFI_WEBHOOKS_EMBEDDED=0 on API
processes whose deliveries these workers take over.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal

from api.settings import ApiSettings
from projections.views import ViewStore
from projections.webhooks.deliverer import WebhookDeliverer

log = logging.getLogger("trafi.webhooks")


def cmd_deliver(args: argparse.Namespace) -> int:
    settings = ApiSettings.from_env()
    options = settings.webhook_delivery()
    overrides = {name: value for name, value in (("concurrency", args.concurrency), ("timeout_s", args.timeout))
                 if value is not None}
    options = dataclasses.replace(options, **overrides)
    views = ViewStore(settings.event_store)
    deliverer = WebhookDeliverer(views, options)
    try:
        if args.once:
            attempted = deliverer.run_once()
            log.info("attempted %d webhook deliveries", attempted)
            return 0
        # SIGTERM (docker stop, systemd) stops claiming; requests in flight finish or time out.
        signal.signal(signal.SIGTERM, lambda *_: deliverer.request_stop())
        log.info("delivering webhooks (%d in flight at most)", options.concurrency)
        try:
            deliverer.run()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        deliverer.close()
        views.close()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("webhooks", help="outbound webhooks: run the deliverer")
    actions = parser.add_subparsers(dest="action", required=True)
    deliver = actions.add_parser("deliver", help="send queued webhook deliveries (until SIGTERM, or --once)")
    deliver.add_argument("--once", action="store_true", help="attempt what is due now, then exit")
    deliver.add_argument("--concurrency", type=_positive_int, help="requests in flight (TRAFI_WEBHOOKS_CONCURRENCY)")
    deliver.add_argument("--timeout", type=_positive_float, help="seconds per request (TRAFI_WEBHOOKS_TIMEOUT_S)")
    deliver.set_defaults(func=cmd_deliver)
