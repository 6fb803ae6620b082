"""The auditor's tools on SQLite and PostgreSQL: state as of a moment, envelope exports, the hash chain.

Tamper tests edit rows with raw SQL on the event store and the view database,
the way an attacker with database access would, and check that `verify` names
the first damaged position and what happened there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
import statistics
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4, uuid5

import psycopg
import pytest

from api import cli_audit
from commands.cart import AddToCart, ChangeCartLineQuantity, CreateCart
from commands.checkout import Checkout
from domain import ids
from domain.envelope import EVENT_ID_NAMESPACE, ENVELOPE_FIELDS, aggregate_type_of, build_envelope, json_safe, utc_iso
from domain.errors import NotFound
from domain.personal import PersonalData
from domain.stock import StockItem
from projections.hash_chain import AuditChain, verify
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.testing import table_rows
from queries.audit import AuditService
from tests.factories import ready_cart, seed_small_store

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def cli_env(app, monkeypatch):
    """Point the CLI (which reads its configuration from the environment) at the test's event store."""
    monkeypatch.setenv("TRAFI_EVENT_STORE", app.config.kind)
    monkeypatch.setenv("TRAFI_SQLITE_PATH", app.config.sqlite_path)
    monkeypatch.setenv("TRAFI_POSTGRES_DSN", app.config.postgres_dsn)


def now() -> datetime:
    return datetime.now(timezone.utc)


def log_positions(app, after: int = 0, through: int | None = None) -> list[int]:
    through = app.recorder.max_notification_id() if through is None else through
    return [n.id for n in app.recorder.select_notifications(after + 1, 1_000_000, stop=through)]


def stock_id(shop, sku: str) -> UUID:
    return ids.stock_item_id(shop.ctx.store_id, sku)


def checkout(bus, shop, lines: dict[str, int]) -> UUID:
    return UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, lines)), shop.ctx).data["order_id"])


# --- raw database access, as an attacker would have it ---------------------------------------------
def raw(app, statements: list[tuple[str, tuple]], fetch: bool = False):
    """Run statements in one transaction on the event store. `{events}`/`{pos}` name the table and position column."""
    table = app.recorder.events_table_name
    pos = "rowid" if app.config.kind == "sqlite" else "notification_id"
    statements = [(sql.format(events=table, pos=pos), params) for sql, params in statements]
    if app.config.kind == "sqlite":
        with closing(sqlite3.connect(app.config.sqlite_path)) as conn:
            rows = [conn.execute(sql.replace("%s", "?"), params).fetchall() for sql, params in statements]
            conn.commit()
    else:
        with psycopg.connect(app.config.postgres_dsn) as conn:
            rows = [conn.execute(sql, params).fetchall() if fetch else conn.execute(sql, params) for sql, params in statements]
    return rows if fetch else None


def row_at(app, position: int) -> tuple:
    [[row]] = raw(app, [("SELECT originator_id, originator_version, topic, state FROM {events} WHERE {pos} = %s",
                         (position,))], fetch=True)
    return row


# --- the envelope (pure) ------------------------------------------------------------------------------
def test_envelope_shape_ids_and_json_safe_data():
    aggregate, subject = uuid4(), uuid4()
    at = datetime(2026, 11, 21, 9, 0, 0, tzinfo=timezone(timedelta(hours=1)))

    class Event:  # the shape of a decoded library event
        def __init__(self, **attrs):
            self.__dict__.update(attrs)

    event = Event(
        originator_id=aggregate, originator_version=7, timestamp=at, originator_topic="trafi.cart.v1",
        sku="MUG-1", product_id=subject, email=PersonalData(subject, "a@example.com"),
        address=PersonalData(subject, {"city": "Köln", "since": at}), lines=[{"id": subject}], tags={"b", "a"},
    )
    envelope = build_envelope(position=1234, aggregate_id=aggregate, version=7, topic="trafi.cart.item_added.v1",
                              event=event, store_id=subject)
    assert tuple(envelope) == ENVELOPE_FIELDS
    assert envelope["event_id"] == str(uuid5(EVENT_ID_NAMESPACE, f"{aggregate}:7"))
    assert envelope["event_id"] != build_envelope(position=1235, aggregate_id=aggregate, version=8,
                                                  topic="trafi.cart.item_added.v1", event=event, store_id=None)["event_id"]
    assert envelope["aggregate_type"] == "cart" and envelope["store_id"] == str(subject)
    assert envelope["occurred_at"] == "2026-11-21T08:00:00.000000Z"  # converted to UTC, fixed width
    assert envelope["data"] == {
        "sku": "MUG-1", "product_id": str(subject), "email": "a@example.com",
        "address": {"city": "Köln", "since": "2026-11-21T08:00:00.000000Z"}, "lines": [{"id": str(subject)}],
        "tags": ["a", "b"],
    }
    json.dumps(envelope)  # JSON-safe all the way down
    assert aggregate_type_of("trafi.stock_item.reserved.v1") == "stock_item"
    assert aggregate_type_of("trafi.idempotency_record.recorded.v1") == "idempotency_record"
    with pytest.raises(TypeError):
        json_safe(object())  # unknown types are refused, never silently stringified


# --- state at a version or a moment ------------------------------------------------------------------
def test_stock_as_of_moments_between_checkouts(app, bus, shop):
    mug = stock_id(shop, "MUG-1")
    audit = AuditService(app)
    before = now()
    first = checkout(bus, shop, {"MUG-1": 3})
    between = now()
    checkout(bus, shop, {"MUG-1": 5})
    after = now()

    states = [audit.state_at(mug, as_of=moment) for moment in (before, between, after)]
    assert [(s["version"], s["state"]["on_hand"], s["state"]["reserved"]) for s in states] == [
        (2, 100, 0), (3, 100, 3), (4, 100, 8),
    ]
    assert states[1]["state"]["reservations"] == {str(first): 3}
    assert states[0]["aggregate_type"] == "stock_item" and states[0]["aggregate_id"] == str(mug)
    assert all(UTC_Z.match(s["timestamp"]) for s in states)
    assert states[0]["timestamp"] <= utc_iso(before) < states[1]["timestamp"] <= utc_iso(between)
    assert audit.state_at(mug, version=3) == states[1]
    assert audit.state_at(mug, as_of=utc_iso(between)) == states[1]  # ISO text is accepted too
    assert audit.state_at(mug) == states[2]  # neither version nor moment: now


def test_cart_lines_at_each_version(app, bus, shop):
    cart = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    for sku in ("MUG-1", "BOOK-1"):
        bus.execute(AddToCart(cart_id=cart, product_id=shop.products[sku], sku=sku, quantity=1), shop.ctx)
    bus.execute(ChangeCartLineQuantity(cart_id=cart, sku="MUG-1", quantity=4), shop.ctx)
    audit = AuditService(app)

    def lines(version):
        return {sku: line["quantity"] for sku, line in audit.state_at(cart, version=version)["state"]["lines"].items()}

    assert [lines(v) for v in (1, 2, 3, 4)] == [{}, {"MUG-1": 1}, {"MUG-1": 1, "BOOK-1": 1}, {"MUG-1": 4, "BOOK-1": 1}]
    assert audit.state_at(cart, version=2)["state"]["lines"]["MUG-1"]["product_id"] == str(shop.products["MUG-1"])


def test_unknown_or_not_yet_existing_aggregates_are_not_found(app, bus, shop):
    audit = AuditService(app)
    before = now()
    cart = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    with pytest.raises(NotFound):
        audit.state_at(cart, as_of=before)  # it did not exist yet
    with pytest.raises(NotFound):
        audit.state_at(uuid4())
    with pytest.raises(NotFound):
        audit.state_at(uuid4(), as_of=now())
    with pytest.raises(NotFound):
        audit.state_at(cart, version=2)  # it only has version 1
    assert audit.state_at(cart, as_of=now())["version"] == 1


def test_cli_state_prints_json_and_fails_on_unknown_ids(app, bus, shop, cli_env, capsys):
    mug = stock_id(shop, "MUG-1")
    moment = now()
    checkout(bus, shop, {"MUG-1": 2})

    assert cli_audit.main(["state", str(mug), "--as-of", utc_iso(moment)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["version"], printed["state"]["reserved"]) == (2, 0)
    assert cli_audit.main(["state", str(mug), "--version", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["reserved"] == 2
    assert cli_audit.main(["state", str(uuid4())]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_as_of_reconstruction_of_a_long_stream_is_fast(app, shop):
    mug = stock_id(shop, "MUG-1")
    item: StockItem = app.repository.get(mug)
    for _ in range(40):  # 4,000 more events, a snapshot every 100
        for _ in range(100):
            item.receive(1)
        app.save(item)
    target = 2_345
    [stored] = app.recorder.select_events(mug, gt=target - 1, lte=target)
    as_of = app.mapper.to_domain_event(stored).timestamp
    audit = AuditService(app)

    timings = []
    for _ in range(9):
        started = time.perf_counter()
        state = audit.state_at(mug, as_of=as_of)
        timings.append(time.perf_counter() - started)
    assert (state["version"], state["state"]["on_hand"]) == (target, 100 + target - 2)
    median_ms = statistics.median(timings) * 1000
    print(f"\nas-of reconstruction, {item.version} events, {app.config.kind}: median {median_ms:.2f} ms")
    assert median_ms < 50


# --- history export ------------------------------------------------------------------------------
def test_export_jsonl_and_csv_are_the_envelopes_of_the_log(app, bus, shop, cli_env, tmp_path, capsys):
    cart = ready_cart(bus, shop, {"MUG-1": 2})
    bus.execute(Checkout(cart_id=cart), shop.ctx)
    jsonl, table = tmp_path / "history.jsonl", tmp_path / "history.csv"

    assert cli_audit.main(["export", "--format", "jsonl", "--output", str(jsonl)]) == 0
    assert cli_audit.main(["export", "--format", "csv", "--output", str(table)]) == 0
    envelopes = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]

    assert [e["position"] for e in envelopes] == log_positions(app)
    store = str(shop.ctx.store_id)
    for envelope, notification in zip(envelopes, app.recorder.select_notifications(1, 1_000_000)):
        assert tuple(envelope) == ENVELOPE_FIELDS
        assert envelope["aggregate_id"] == str(notification.originator_id)
        assert envelope["version"] == notification.originator_version
        assert envelope["type"] == notification.topic
        assert envelope["aggregate_type"] == notification.topic.split(".")[1]
        assert envelope["event_id"] == str(uuid5(EVENT_ID_NAMESPACE, f"{notification.originator_id}:{notification.originator_version}"))
        assert envelope["store_id"] == store  # the store's own events included: a store is its own tenant
        assert UTC_Z.match(envelope["occurred_at"])
        assert envelope["occurred_at"] == utc_iso(app.mapper.to_domain_event(notification).timestamp)
        assert not {"originator_id", "originator_version", "timestamp", "originator_topic"} & set(envelope["data"])

    by_type = {e["type"]: e for e in envelopes if e["aggregate_id"] == str(cart)}
    assert by_type["trafi.cart.item_added.v1"]["data"] == {
        "sku": "MUG-1", "product_id": str(shop.products["MUG-1"]), "title": "Mug — MUG-1", "quantity": 2,
        "unit_price": 1500, "tax_class": "standard", "weight_grams": 400,
    }
    assert by_type["trafi.cart.buyer_identified.v1"]["data"]["email"] == "buyer@example.com"

    with table.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ENVELOPE_FIELDS
        rows = list(reader)
    assert [{**row, "position": int(row["position"]), "version": int(row["version"]), "data": json.loads(row["data"])}
            for row in rows] == envelopes

    assert cli_audit.main(["export", "--format", "jsonl", "--aggregate", str(cart)]) == 0  # to stdout
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["version"] for e in printed] == list(range(1, 7)) and {e["aggregate_id"] for e in printed} == {str(cart)}


def test_export_filters_by_store_and_time_range(app, bus, shop, cli_env, tmp_path):
    audit = AuditService(app)
    heads = [app.recorder.max_notification_id()]
    other = seed_small_store(bus, stock=5)
    heads.append(app.recorder.max_notification_id())
    since = now()
    checkout(bus, shop, {"BOOK-1": 1})
    until = now()
    heads.append(app.recorder.max_notification_id())
    checkout(bus, other, {"MUG-1": 1})
    heads.append(app.recorder.max_notification_id())
    checkout(bus, shop, {"TEE-M": 1})
    heads.append(app.recorder.max_notification_id())
    # Stretches of the log alternate between the stores: own, other, own (the window), other, own.
    stretches = [log_positions(app, after, through) for after, through in zip([0, *heads], heads)]
    own, theirs, window = stretches[0] + stretches[2] + stretches[4], stretches[1] + stretches[3], stretches[2]

    exported = list(audit.history(store_id=shop.ctx.store_id))
    assert [e["position"] for e in exported] == own
    assert {e["store_id"] for e in exported} == {str(shop.ctx.store_id)}
    assert [e["position"] for e in audit.history(store_id=other.ctx.store_id)] == theirs

    assert [e["position"] for e in audit.history(since=since, until=until)] == window
    assert [e["position"] for e in audit.history(store_id=other.ctx.store_id, since=since, until=until)] == []
    assert [e["position"] for e in audit.history(since=until)] == stretches[3] + stretches[4]
    out = tmp_path / "window.jsonl"
    assert cli_audit.main(["export", "--store", str(shop.ctx.store_id), "--since", utc_iso(since),
                           "--until", utc_iso(until), "--format", "jsonl", "--output", str(out)]) == 0
    assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == window


# --- the hash chain --------------------------------------------------------------------------------
def busy_log(bus, shop) -> None:
    for lines in ({"MUG-1": 1}, {"BOOK-1": 2}, {"MUG-1": 1, "TEE-M": 1}):
        checkout(bus, shop, lines)


def chain(app, views):
    return ProjectionRunner(app, views, AuditChain(), batch_size=7).catch_up()


def test_chain_covers_every_event_and_follows_the_documented_formula(app, bus, shop, views, cli_env, capsys):
    busy_log(bus, shop)
    caught_up = chain(app, views)
    assert caught_up.position == app.recorder.max_notification_id()

    # Recompute the head from raw rows with the formula of docs/auditing.md, independently of the code.
    head = bytes(32)
    rows = raw(app, [("SELECT {pos}, originator_id, originator_version, topic, state FROM {events} ORDER BY {pos}", ())],
               fetch=True)[0]
    for position, originator_id, version, topic, state in rows:
        topic_bytes = topic.encode()
        head = hashlib.sha256(
            head + position.to_bytes(8, "big") + UUID(str(originator_id)).bytes + version.to_bytes(8, "big")
            + len(topic_bytes).to_bytes(4, "big") + topic_bytes + len(state).to_bytes(8, "big") + bytes(state)
        ).digest()
    result = verify(app, views)
    assert (result.ok, result.checked, result.head_hash) == (True, len(rows), head.hex())
    with views.read() as tx:
        assert tx.execute("SELECT COUNT(*) FROM trafi_audit_chain").fetchone()[0] == len(rows)

    assert cli_audit.main(["verify"]) == 0
    assert capsys.readouterr().out.startswith(f"audit chain intact: {len(rows)} events checked")

    checkout(bus, shop, {"MUG-1": 1})  # the CLI chains what arrived since, then verifies it all
    assert cli_audit.main(["verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["position"] == app.recorder.max_notification_id() == report["checked"]

    live = table_rows(views, AuditChain())
    rebuild(app, views, AuditChain())
    assert table_rows(views, AuditChain()) == live  # deterministic: a rebuild of an intact log changes nothing


def pick(app, *, count: int) -> list[int]:
    """Positions in the middle of the log, each with events after it."""
    positions = log_positions(app)
    middle = len(positions) // 2
    return positions[middle: middle + 3 * count: 3][:count]


def alter_state(app, views):
    [p] = pick(app, count=1)
    original = bytes(row_at(app, p)[3])
    state = original.replace(b'"quantity":', b'"quantity":9', 1) if b'"quantity":' in original else original + b" "
    raw(app, [("UPDATE {events} SET state = %s WHERE {pos} = %s", (state, p))])
    return p, "altered"


def delete_event(app, views):
    [p] = pick(app, count=1)
    raw(app, [("DELETE FROM {events} WHERE {pos} = %s", (p,))])
    return p, "missing"


def swap_contents(app, views):
    p, q = pick(app, count=2)
    (_, _, topic_p, state_p), (_, _, topic_q, state_q) = row_at(app, p), row_at(app, q)
    raw(app, [
        ("UPDATE {events} SET topic = %s, state = %s WHERE {pos} = %s", (topic_q, state_q, p)),
        ("UPDATE {events} SET topic = %s, state = %s WHERE {pos} = %s", (topic_p, state_p, q)),
    ])
    return p, "reordered"


def swap_positions(app, views):
    p, q = pick(app, count=2)
    raw(app, [
        ("UPDATE {events} SET {pos} = -1 WHERE {pos} = %s", (p,)),
        ("UPDATE {events} SET {pos} = %s WHERE {pos} = %s", (p, q)),
        ("UPDATE {events} SET {pos} = %s WHERE {pos} = -1", (q,)),
    ])
    return p, "reordered"


def edit_chain_hash(app, views):
    [p] = pick(app, count=1)
    with views.transaction() as tx:
        tx.execute("UPDATE trafi_audit_chain SET hash = %s WHERE position = %s", ("ab" * 32, p))
    return p, "chain_tampered"


def edit_chain_topic(app, views):
    [p] = pick(app, count=1)
    with views.transaction() as tx:
        tx.execute("UPDATE trafi_audit_chain SET topic = %s WHERE position = %s", ("trafi.order.refunded.v1", p))
    return p, "chain_tampered"


def delete_chain_entry(app, views):
    [p] = pick(app, count=1)
    with views.transaction() as tx:
        tx.execute("DELETE FROM trafi_audit_chain WHERE position = %s", (p,))
    return p, "chain_tampered"


@pytest.mark.parametrize("tamper", [
    alter_state, delete_event, swap_contents, swap_positions, edit_chain_hash, edit_chain_topic, delete_chain_entry,
])
def test_verify_reports_the_first_tampered_position_and_what_happened(app, bus, shop, views, cli_env, capsys, tamper):
    busy_log(bus, shop)
    chain(app, views)
    assert verify(app, views).ok

    position, kind = tamper(app, views)

    result = verify(app, views)
    assert not result.ok
    assert (result.problem.position, result.problem.kind) == (position, kind), result.problem
    assert cli_audit.main(["verify"]) == 1
    assert f"BROKEN at position {position}: {kind}" in capsys.readouterr().out


def test_an_event_slipped_into_a_gap_of_the_log_is_reported_as_inserted(app, bus, shop, views, cli_env, capsys):
    busy_log(bus, shop)
    [gap] = pick(app, count=1)
    forged = row_at(app, gap)
    raw(app, [("DELETE FROM {events} WHERE {pos} = %s", (gap,))])  # a gap, as a rolled-back insert leaves on PostgreSQL
    chain(app, views)
    assert verify(app, views).ok

    raw(app, [("INSERT INTO {events} ({pos}, originator_id, originator_version, topic, state) "
               "VALUES (%s, %s, %s, %s, %s)", (gap, *forged))])
    result = verify(app, views)
    assert (result.problem.position, result.problem.kind) == (gap, "inserted")
    assert cli_audit.main(["verify"]) == 1


def test_rebuilding_a_tampered_chain_is_refused_unless_forced(app, bus, shop, views, cli_env, capsys):
    from api import cli

    busy_log(bus, shop)
    chain(app, views)
    assert cli.main(["projections", "rebuild", "audit_chain"]) == 0  # intact: a rebuild is harmless
    position, kind = alter_state(app, views)
    assert cli.main(["projections", "rebuild", "audit_chain"]) == 1
    assert f"{kind} at position {position}" in capsys.readouterr().err
    assert verify(app, views).problem.position == position  # the evidence is still there
    assert cli.main(["projections", "rebuild", "--force", "audit_chain"]) == 0
    assert verify(app, views).ok  # --force re-hashed the log as it is now: the evidence is gone
