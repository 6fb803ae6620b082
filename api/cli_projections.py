"""`trafi projections run|status|rebuild`: operating the read side from a shell."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Callable

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from projections import registry
from projections.rebuild import rebuild
from projections.status import projection_status
from projections.views import ViewStore
from projections.worker import ProjectionWorker


def open_stores() -> tuple[TrafiApplication, ViewStore]:
    config = EventStoreConfig.from_env()
    return TrafiApplication(config), ViewStore(config)


def _select(names: list[str] | None):
    try:
        return registry.select(names)
    except KeyError as unknown:
        raise SystemExit(f"trafi projections: {unknown.args[0]}") from None


def run_until_sigterm(run: Callable[[], None], stop: Callable[[], None], *close: Callable[[], None]) -> int:
    """Run a worker loop in the foreground until SIGTERM (docker stop, systemd) or Ctrl-C.

    SIGTERM only asks the loop to stop: it ends between batches, nothing half-applied to clean up.
    """
    signal.signal(signal.SIGTERM, lambda *_: stop())
    try:
        run()
    except KeyboardInterrupt:
        pass
    finally:
        for closing in close:
            closing()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    projections = _select(args.names)
    if args.source == "kafka":
        return _run_from_kafka(projections, args)
    app, views = open_stores()
    worker = ProjectionWorker(app, views, projections, batch_size=args.batch_size)
    logging.getLogger("trafi").info("running projections: %s", ", ".join(p.name for p in projections))
    return run_until_sigterm(worker.run, lambda: worker.stop(timeout=0), views.close, app.close)


def _run_from_kafka(projections: list, args: argparse.Namespace) -> int:
    from api.cli_relay import require_kafka
    from projections.kafka.consumer import KafkaProjectionConsumer

    if not args.names:
        raise SystemExit("trafi projections run --source kafka: name the projections to run from Kafka")
    config = require_kafka()
    app, views = open_stores()
    try:
        # One group member for all the named projections; every replica runs the same list.
        consumer = KafkaProjectionConsumer(app, views, projections, config, batch_size=args.batch_size)
    except ValueError as refused:
        views.close()
        app.close()
        raise SystemExit(f"trafi projections run: {refused}") from None
    logging.getLogger("trafi").info("running projections from %s: %s", config.events_topic, consumer.name)
    return run_until_sigterm(consumer.run, consumer.stop, views.close, app.close)


def _with_relay(projections: list, names: list[str] | None) -> list:
    """The relay's status sits beside the projections' wherever Kafka is configured."""
    from projections.kafka.config import KafkaConfig
    from projections.kafka.relay import RELAY_NAME, KafkaRelay

    if KafkaConfig.from_env() is not None and (not names or RELAY_NAME in names):
        return [*projections, KafkaRelay()]
    return projections


def cmd_status(args: argparse.Namespace) -> int:
    from projections.kafka.relay import RELAY_NAME

    names = [n for n in args.names if n != RELAY_NAME]
    projections = _with_relay(_select(names) if names or not args.names else [], args.names)
    app, views = open_stores()
    try:
        statuses = [projection_status(app, views, p) for p in projections]
    finally:
        views.close()
        app.close()
    if args.json:
        for status in statuses:
            print(json.dumps(status.as_dict()))
    else:
        print(f"{'projection':<24} {'source':<6} {'state':<8} {'position':>10} {'lag events':>11} {'lag s':>8}"
              f" {'copies':>7} {'dead':>5}  last error")
        for s in statuses:
            print(f"{s.name:<24} {s.source:<6} {s.state:<8} {s.position:>10} {s.lag_events:>11} {s.lag_seconds:>8.1f}"
                  f" {s.duplicates:>7} {s.dead_letters:>5}  {s.last_error or ''}")
    # Non-zero when something is halted, so monitoring can alert on the exit code.
    return 1 if any(s.last_error for s in statuses) else 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    [projection] = _select([args.name])
    app, views = open_stores()
    refusal = projection.rebuild_refusal(app, views)
    if refusal and not args.force:
        print(f"refusing to rebuild {projection.name}: {refusal} (--force to rebuild anyway)", file=sys.stderr)
        views.close()
        app.close()
        return 1
    head = app.recorder.max_notification_id() or 0
    bar = tqdm(total=head, unit="pos", unit_scale=True, desc=f"rebuild {projection.name}", file=sys.stderr)

    def progress(applied: int, position: int, log_head: int) -> None:
        bar.total = max(bar.total, log_head)
        bar.set_postfix(events=applied, refresh=False)
        bar.update(position - bar.n)

    try:
        result = rebuild(app, views, projection, batch_size=args.batch_size, progress=progress)
    except Exception as error:
        bar.close()
        print(f"rebuild of {projection.name} failed, the live read model is untouched: {error}", file=sys.stderr)
        return 1
    finally:
        views.close()
        app.close()
    bar.close()
    print(f"rebuilt {result.name}: {result.events_applied} events in {result.seconds:.1f} s "
          f"({result.events_per_second:,.0f} events/s), now at position {result.position}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("projections", help="run, inspect and rebuild read models")
    actions = parser.add_subparsers(dest="action", required=True)

    run = actions.add_parser("run", help="keep projections current (all of them when no names are given)")
    run.add_argument("names", nargs="*")
    run.add_argument("--batch-size", type=int, default=500)
    run.add_argument("--source", choices=("log", "kafka"), default="log",
                     help="the database log (default) or the Kafka events topic (TRAFI_KAFKA_BOOTSTRAP)")
    run.set_defaults(func=cmd_run)

    status = actions.add_parser("status", help="position, lag and last error per projection")
    status.add_argument("names", nargs="*")
    status.add_argument("--json", action="store_true", help="one JSON object per line")
    status.set_defaults(func=cmd_status)

    again = actions.add_parser("rebuild", help="rebuild one projection from position 0 and swap it in")
    again.add_argument("name")
    again.add_argument("--batch-size", type=int, default=2000)
    again.add_argument("--force", action="store_true", help="rebuild even when the projection advises against it")
    again.set_defaults(func=cmd_rebuild)
