"""`trafi serve` (the HTTP API under uvicorn) and `trafi stores create` (a new store and its keys)."""

from __future__ import annotations

import argparse
import getpass
import os

from api.bootstrap import bootstrap_store
from api.settings import ApiSettings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.logs import configure_json_logging

    os.environ.setdefault("TRAFI_DATA_DIR", args.data_dir)
    os.environ.setdefault("TRAFI_SQLITE_PATH", os.path.join(args.data_dir, "events.sqlite"))
    configure_json_logging()
    uvicorn.run(
        "api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_config=None, access_log=False, proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    return 0


def cmd_create_store(args: argparse.Namespace) -> int:
    from commands.application import TrafiApplication
    from commands.bus import CommandBus

    os.environ.setdefault("TRAFI_DATA_DIR", args.data_dir)
    os.environ.setdefault("TRAFI_SQLITE_PATH", os.path.join(args.data_dir, "events.sqlite"))
    settings = ApiSettings.from_env()
    password = args.owner_password or os.environ.get("TRAFI_OWNER_PASSWORD") or getpass.getpass("owner password: ")
    app = TrafiApplication(settings.event_store)
    try:
        store = bootstrap_store(
            CommandBus(app), settings.secret_key, slug=args.slug, name=args.name, currency=args.currency,
            origin_country=args.country, prices_include_tax=not args.prices_exclude_tax,
            owner_email=args.owner_email, owner_password=password,
        )
    finally:
        app.close()
    print(f"store       {args.slug} ({store.store_id})")
    print(f"owner       {args.owner_email} (sign in: POST /v1/admin/sessions)")
    print(f"publishable {store.publishable_key}")
    print(f"secret      {store.secret_key}")
    print("The keys are shown once; only their hashes are stored.")
    return 0


def register(sub) -> None:
    data_dir = os.environ.get("TRAFI_DATA_DIR", "trafi-data")
    serve = sub.add_parser("serve", help="serve the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--data-dir", default=data_dir)
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-For from --forwarded-allow-ips")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)

    stores = sub.add_parser("stores", help="create stores")
    actions = stores.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="open a store with an owner, a publishable and a secret key")
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.add_argument("--currency", default="EUR")
    create.add_argument("--country", default="DE", help="origin country for tax")
    create.add_argument("--prices-exclude-tax", action="store_true")
    create.add_argument("--owner-email", required=True)
    create.add_argument("--owner-password", help="default: $TRAFI_OWNER_PASSWORD, else asked")
    create.add_argument("--data-dir", default=data_dir)
    create.set_defaults(func=cmd_create_store)
