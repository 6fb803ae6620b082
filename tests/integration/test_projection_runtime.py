"""Operating projections: concurrent runners, the worker loop, status, blue/green rebuild, the CLI."""

from __future__ import annotations

import threading
import time
from uuid import UUID

import pytest

from api import cli
from commands.checkout import Checkout
from commands.orders import MarkOrderPaid, RefundOrder
from projections import registry
from projections.read_models.orders import OrderList
from projections.rebuild import rebuild
from projections.runner import ProjectionHalted, ProjectionRunner
from projections.status import projection_status
from projections.testing import clean_build, table_rows
from projections.worker import ProjectionWorker
from tests.factories import ready_cart, draft_experiment


def paid_order(bus, shop) -> UUID:
    order_id = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx).data["order_id"])
    bus.execute(MarkOrderPaid(order_id=order_id, amount=1990, reference="pi"), shop.ctx)
    return order_id


def refund_cents(bus, shop, order_id: UUID, times: int) -> None:
    # One-cent refunds: `refunded = refunded + amount` counts every event applied twice.
    for _ in range(times):
        bus.execute(RefundOrder(order_id=order_id, amount=1), shop.ctx)


def refunded(views, order_id: UUID) -> int:
    with views.read() as tx:
        return tx.execute("SELECT refunded FROM rm_orders WHERE order_id = %s", (str(order_id),)).fetchone()[0]


def test_two_runners_of_one_projection_never_apply_an_event_twice(app, bus, shop, views):
    order_id = paid_order(bus, shop)
    refund_cents(bus, shop, order_id, 60)
    runners = [ProjectionRunner(app, views, OrderList(), batch_size=3) for _ in range(4)]
    threads = [threading.Thread(target=r.catch_up) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refunded(views, order_id) == 60
    assert views.position("order_list") == app.recorder.max_notification_id()


def test_worker_brings_lag_back_to_zero_after_a_burst(app, bus, shop, views):
    worker = ProjectionWorker(app, views, [OrderList()], poll_interval_s=0.02).start()
    try:
        order_id = paid_order(bus, shop)
        refund_cents(bus, shop, order_id, 40)  # the burst
        head = app.recorder.max_notification_id()
        deadline = time.monotonic() + 10
        while views.position("order_list") < head and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    status = projection_status(app, views, OrderList())
    assert (status.lag_events, status.lag_seconds, status.state) == (0, 0.0, "current")
    assert refunded(views, order_id) == 40


def test_status_reports_lag_in_events_and_seconds_and_the_last_error(app, bus, shop, views):
    order_id = paid_order(bus, shop)
    runner = ProjectionRunner(app, views, OrderList())
    behind = projection_status(app, views, OrderList())
    assert behind.position == 0 and behind.lag_events == behind.head == app.recorder.max_notification_id()
    assert behind.lag_seconds > 0 and behind.state == "behind"
    runner.catch_up()

    class Broken(OrderList):
        def refunded(self, tx, event):
            raise ValueError("cannot refund")

    refund_cents(bus, shop, order_id, 1)
    with pytest.raises(ProjectionHalted):
        ProjectionRunner(app, views, Broken()).catch_up()
    halted = projection_status(app, views, OrderList())
    assert halted.state == "halted" and "cannot refund" in halted.last_error and halted.lag_events == 1


def test_rebuild_swaps_in_tables_equal_to_a_clean_build_while_live_keeps_serving(app, bus, shop, views, tmp_path):
    order_id = paid_order(bus, shop)
    refund_cents(bus, shop, order_id, 5)
    projection = OrderList()
    ProjectionRunner(app, views, projection).catch_up()
    # Corrupt the live table the way a buggy handler would have; a rebuild repairs it.
    with views.transaction() as tx:
        tx.execute("UPDATE rm_orders SET refunded = 999")

    served_during_rebuild = []

    def progress(applied, position, head):
        served_during_rebuild.append(refunded(views, order_id))  # live table still answers, unchanged
        if len(served_during_rebuild) == 1:
            refund_cents(bus, shop, order_id, 2)  # commands keep arriving mid-rebuild

    result = rebuild(app, views, projection, batch_size=4, progress=progress)
    assert served_during_rebuild and set(served_during_rebuild) == {999}
    assert result.position == views.position("order_list") == app.recorder.max_notification_id()
    assert refunded(views, order_id) == 7
    assert table_rows(views, projection) == clean_build(app, projection, tmp_path)
    # Indexes came across under their own names, and a second rebuild works the same way.
    rebuild(app, views, projection)
    assert table_rows(views, projection) == clean_build(app, projection, tmp_path)
    with views.read() as tx:
        if views.dialect == "sqlite":
            names = {r[0] for r in tx.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()}
        else:
            names = {r[0] for r in tx.execute("SELECT indexname FROM pg_indexes").fetchall()}
    assert "rm_orders_store_placed" in names and not any("__next" in n for n in names)


def test_a_failed_rebuild_leaves_the_live_read_model_untouched(app, bus, shop, views):
    order_id = paid_order(bus, shop)
    refund_cents(bus, shop, order_id, 3)
    ProjectionRunner(app, views, OrderList()).catch_up()
    before = table_rows(views, OrderList())
    position = views.position("order_list")

    class Broken(OrderList):
        def refunded(self, tx, event):
            raise ValueError("bug")

    with pytest.raises(ProjectionHalted):
        rebuild(app, views, Broken(), batch_size=2)
    assert table_rows(views, OrderList()) == before
    assert views.status("order_list") == (position, None)
    assert "order_list__next" not in views.tracking_rows()
    with views.read() as tx:
        leftovers = tx.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '%%__next%%'" if views.dialect == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE tablename LIKE '%%__next%%'"
        ).fetchall()
    assert leftovers == []


def test_every_built_in_projection_rebuilds_equal_to_its_live_self(app, bus, shop, views):
    from datetime import datetime, timezone

    from commands.diagnosis import RecordDiagnosisRun

    order_id = paid_order(bus, shop)
    refund_cents(bus, shop, order_id, 2)
    bus.execute(RecordDiagnosisRun(run={"run_id": "run-1", "findings": []}, candidates=[{"key": "a:store", "score": 1}],
                                   at=datetime.now(timezone.utc)), shop.ctx)  # for diagnosis_recommendations
    draft_experiment(bus, shop)  # for changesets
    for projection in registry.all_projections().values():
        ProjectionRunner(app, views, projection).catch_up()
        live = table_rows(views, projection)
        assert any(live.values()), f"{projection.name} wrote nothing for a store with orders"
        rebuild(app, views, projection)
        assert table_rows(views, projection) == live, projection.name


def test_cli_status_and_rebuild(app, bus, shop, views, monkeypatch, capsys):
    monkeypatch.setenv("TRAFI_EVENT_STORE", app.config.kind)
    monkeypatch.setenv("TRAFI_SQLITE_PATH", app.config.sqlite_path)
    monkeypatch.setenv("TRAFI_POSTGRES_DSN", app.config.postgres_dsn)
    paid_order(bus, shop)
    assert cli.main(["projections", "status", "order_list"]) == 0
    assert "behind" in capsys.readouterr().out
    assert cli.main(["projections", "rebuild", "order_list"]) == 0
    out = capsys.readouterr().out
    assert f"now at position {app.recorder.max_notification_id()}" in out
    assert cli.main(["projections", "status", "--json", "order_list"]) == 0
    assert '"state": "current"' in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown projection"):
        cli.main(["projections", "status", "no_such_projection"])
