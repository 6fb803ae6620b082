"""`trafi audit state|export|verify`: the auditor's tools from a shell.

    trafi audit state AGGREGATE_ID [--version N | --as-of 2026-11-01T12:00:00Z]
    trafi audit export [--store ID] [--aggregate ID] [--since ISO] [--until ISO] --format jsonl|csv [--output FILE]
    trafi audit verify [--json]

The event store comes from the environment (commands/config.py), as for every
`trafi` command. Also runnable on its own: `python -m api.cli_audit verify`.
Exit codes: 0 done / chain intact, 1 not found / chain broken, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from uuid import UUID

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from domain.errors import DomainError
from projections.hash_chain import AuditChain, verify
from projections.runner import ProjectionHalted, ProjectionRunner
from projections.views import ViewStore
from queries.audit import AuditService, parse_moment, write_csv, write_jsonl


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _moment(text: str):
    try:
        return parse_moment(text)
    except DomainError as error:
        raise argparse.ArgumentTypeError(error.reason) from None


def cmd_state(args: argparse.Namespace) -> int:
    app = TrafiApplication(EventStoreConfig.from_env())
    try:
        state = AuditService(app).state_at(args.aggregate_id, version=args.version, as_of=args.as_of)
    except DomainError as error:
        print(f"trafi audit state: {error.reason}", file=sys.stderr)
        return 1
    finally:
        app.close()
    print(json.dumps(state, indent=2, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    app = TrafiApplication(EventStoreConfig.from_env())
    write = write_jsonl if args.format == "jsonl" else write_csv
    try:
        envelopes = AuditService(app).history(
            store_id=args.store, aggregate_id=args.aggregate, since=args.since, until=args.until,
        )
        if args.output is None:
            try:
                write(envelopes, sys.stdout)
                sys.stdout.flush()
            except BrokenPipeError:  # `… | head`: the reader has seen enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        # Written beside the target and renamed at the end: a failed export never looks complete.
        partial = f"{args.output}.partial"
        with open(partial, "w", encoding="utf-8", newline="") as out:
            count = write(envelopes, out)
        os.replace(partial, args.output)
    finally:
        app.close()
    print(f"exported {count} events to {args.output}", file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    config = EventStoreConfig.from_env()
    app, views = TrafiApplication(config), ViewStore(config)
    halted = None
    try:
        try:
            # Chain what was appended since the chain last ran, so the whole log is checked.
            ProjectionRunner(app, views, AuditChain()).catch_up()
        except ProjectionHalted as error:
            halted = error  # still verify what is chained; the exit code says something is wrong
        result = verify(app, views)
    finally:
        views.close()
        app.close()
    if args.json:
        print(json.dumps({**asdict(result), "halted": str(halted) if halted else None}))
    else:
        print(result.summary())
        if halted:
            print(f"the chain could not be brought up to date: {halted}", file=sys.stderr)
    return 0 if result.ok and halted is None else 1


def _add_actions(actions: argparse._SubParsersAction) -> None:
    state = actions.add_parser("state", help="an aggregate as it was at a version or a moment (JSON)")
    state.add_argument("aggregate_id", type=_uuid)
    when = state.add_mutually_exclusive_group()
    when.add_argument("--version", type=int)
    when.add_argument("--as-of", type=_moment, help="ISO-8601, e.g. 2026-11-01T12:00:00Z (no offset: UTC)")
    state.set_defaults(func=cmd_state)

    export = actions.add_parser("export", help="history as event envelopes, in log order")
    export.add_argument("--store", type=_uuid)
    export.add_argument("--aggregate", type=_uuid)
    export.add_argument("--since", type=_moment, help="inclusive")
    export.add_argument("--until", type=_moment, help="exclusive")
    export.add_argument("--format", choices=("jsonl", "csv"), required=True)
    export.add_argument("--output", help="a file (default: standard output)")
    export.set_defaults(func=cmd_export)

    check = actions.add_parser("verify", help="check the event log against its hash chain")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_verify)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="state as of a moment, history exports, tamper evidence")
    _add_actions(parser.add_subparsers(dest="action", required=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trafi audit", description="the auditor's tools")
    _add_actions(parser.add_subparsers(dest="action", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
