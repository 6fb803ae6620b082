"""`trafi relay run`: publish the event log to Kafka, for as long as the process lives."""

from __future__ import annotations

import argparse
import logging

from api.cli_projections import open_stores, run_until_sigterm
from projections.kafka.config import KafkaConfig
from projections.kafka.relay import KafkaRelay
from projections.worker import ProjectionWorker


def require_kafka() -> KafkaConfig:
    config = KafkaConfig.from_env()
    if config is None:
        raise SystemExit("trafi: set TRAFI_KAFKA_BOOTSTRAP (host:port of the Kafka brokers)")
    return config


def cmd_run(args: argparse.Namespace) -> int:
    config = require_kafka()
    app, views = open_stores()
    relay = KafkaRelay(config)
    # The relay is a projection: the same worker loop, woken by the event store's NOTIFY,
    # retrying (from the same event) while the broker is away.
    worker = ProjectionWorker(app, views, [relay], batch_size=args.batch_size, retry_halted_s=args.retry_s)
    logging.getLogger("trafi").info("relaying the event log to %s on %s", config.events_topic, config.bootstrap)
    return run_until_sigterm(worker.run, lambda: worker.stop(timeout=0), relay.close, views.close, app.close)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("relay", help="publish the event log to Kafka (TRAFI_KAFKA_BOOTSTRAP)")
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="relay every event, in log order, until SIGTERM")
    run.add_argument("--batch-size", type=int, default=2000)
    run.add_argument("--retry-s", type=float, default=2.0, help="seconds between attempts while the broker is away")
    run.set_defaults(func=cmd_run)
