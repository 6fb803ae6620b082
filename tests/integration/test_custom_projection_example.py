"""The worked example of docs/custom-projections.md, on SQLite and PostgreSQL — and the doc kept in sync with it."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import eventsourcing.domain
import pytest

from api import cli
from commands.catalog import ChangeProductDetails
from commands.checkout import Checkout
from commands.orders import CancelOrder
from docs.examples.sales_by_hour import HourlySales, SalesByHour, sales_by_hour
from projections import registry
from projections.rebuild import rebuild
from projections.runner import ProjectionHalted, ProjectionRunner
from projections.status import projection_status
from projections.testing import clean_build, table_rows
from projections.worker import ProjectionWorker
from tests.factories import ready_cart

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 11, hour, minute, tzinfo=UTC)


class Clock:
    """Stands in for the event library's clock, so events carry the timestamps a test chooses."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(at(8))
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", fake)
    return fake


def categorise(bus, shop, sku: str, categories: list[str]) -> None:
    title = {"MUG-1": "Mug", "BOOK-1": "Book", "TEE-M": "Tee"}[sku]
    bus.execute(ChangeProductDetails(product_id=shop.products[sku], title=title, categories=categories), shop.ctx)


def place(bus, shop, clock, when: datetime, lines: dict[str, int]) -> UUID:
    clock.now = when
    return UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, lines)), shop.ctx).data["order_id"])


def cancel(bus, shop, clock, when: datetime, order_id: UUID) -> None:
    clock.now = when
    bus.execute(CancelOrder(order_id=order_id, reason="changed mind"), shop.ctx)


def the_day(shop, views) -> list[HourlySales]:
    return sales_by_hour(views, shop.ctx.store_id, at(0), at(23))


# The test shop's prices include German VAT (19 % standard, 7 % reduced), so
# net revenue = price − the tax in it, rounded half-up per line; profit = net − unit cost × quantity.
KITCHEN_2_MUGS = (2, 3000 - 479, 3000 - 479 - 2 * 600)  # 2 × 1500; tax 3000 × 19/119 = 478.99
BOOKS_1_BOOK = (1, 2400 - 157, 2400 - 157 - 1400)  # reduced rate: 2400 × 7/107 = 157.01
TEE_1 = (1, 2900 - 463, 2900 - 463 - 900)  # 2900 × 19/119 = 463.03
MUG_1 = (1, 1500 - 239, 1500 - 239 - 600)  # 1500 × 19/119 = 239.496
TEES_3 = (3, 8700 - 1389, 8700 - 1389 - 3 * 900)  # 8700 × 19/119 = 1389.08
ZERO = (0, 0, 0)


def rows(*expected: tuple) -> list[HourlySales]:
    return [HourlySales(hour, category, "EUR", *figures) for hour, category, figures in expected]


def test_hourly_figures_equal_the_lines_computed_by_hand(app, bus, shop, views, clock):
    categorise(bus, shop, "MUG-1", ["kitchen"])
    categorise(bus, shop, "BOOK-1", ["gifts", "books"])  # stored sorted: "books" is its category
    # TEE-M has no category: "uncategorised".
    place(bus, shop, clock, at(9, 15), {"MUG-1": 2, "BOOK-1": 1})
    place(bus, shop, clock, at(9, 40), {"TEE-M": 1})
    mixed = place(bus, shop, clock, at(10, 5), {"MUG-1": 1, "TEE-M": 3})
    place(bus, shop, clock, at(10, 30), {"BOOK-1": 1})
    runner = ProjectionRunner(app, views, SalesByHour())
    runner.catch_up()
    assert the_day(shop, views) == rows(
        (at(9), "books", BOOKS_1_BOOK), (at(9), "kitchen", KITCHEN_2_MUGS), (at(9), "uncategorised", TEE_1),
        (at(10), "books", BOOKS_1_BOOK), (at(10), "kitchen", MUG_1), (at(10), "uncategorised", TEES_3),
    )

    cancel(bus, shop, clock, at(11, 20), mixed)  # taken out of 10:00, the hour it was placed in
    clock.now = at(12)
    categorise(bus, shop, "MUG-1", ["gifts"])  # later mugs count as gifts; earlier ones stay kitchen
    place(bus, shop, clock, at(12, 10), {"MUG-1": 1})
    runner.catch_up()
    assert the_day(shop, views) == rows(
        (at(9), "books", BOOKS_1_BOOK), (at(9), "kitchen", KITCHEN_2_MUGS), (at(9), "uncategorised", TEE_1),
        (at(10), "books", BOOKS_1_BOOK), (at(10), "kitchen", ZERO), (at(10), "uncategorised", ZERO),
        (at(12), "gifts", MUG_1),
    )
    # [since, until) by the hour's start; other stores' sales never show.
    assert [r.hour for r in sales_by_hour(views, shop.ctx.store_id, at(10), at(12))] == [at(10)] * 3
    assert sales_by_hour(views, UUID(int=0), at(0), at(23)) == []


def test_rebuild_equals_live_and_a_clean_build(app, bus, shop, views, clock, tmp_path):
    categorise(bus, shop, "MUG-1", ["kitchen"])
    first = place(bus, shop, clock, at(9, 15), {"MUG-1": 2, "TEE-M": 1})
    place(bus, shop, clock, at(10, 5), {"BOOK-1": 1})
    projection = SalesByHour()
    ProjectionRunner(app, views, projection).catch_up()
    cancel(bus, shop, clock, at(10, 20), first)
    place(bus, shop, clock, at(10, 40), {"MUG-1": 1})
    ProjectionRunner(app, views, projection).catch_up()
    live = table_rows(views, projection)
    assert live["ex_sales_by_hour"] and live["ex_sales_order_parts"] and live["ex_sales_categories"]

    result = rebuild(app, views, projection)
    assert result.position == views.position("sales_by_hour") == app.recorder.max_notification_id()
    assert table_rows(views, projection) == live == clean_build(app, projection, tmp_path)


def test_registered_by_env_var_and_operated_from_the_cli(app, bus, shop, views, monkeypatch, capsys):
    monkeypatch.setenv("TRAFI_PROJECTIONS", "docs.examples.sales_by_hour:SalesByHour")
    [projection] = registry.select(["sales_by_hour"])
    assert type(projection) is SalesByHour

    monkeypatch.setenv("TRAFI_EVENT_STORE", app.config.kind)
    monkeypatch.setenv("TRAFI_SQLITE_PATH", app.config.sqlite_path)
    monkeypatch.setenv("TRAFI_POSTGRES_DSN", app.config.postgres_dsn)
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx)
    assert cli.main(["projections", "status", "sales_by_hour"]) == 0
    assert "behind" in capsys.readouterr().out
    assert cli.main(["projections", "rebuild", "sales_by_hour"]) == 0
    assert f"now at position {app.recorder.max_notification_id()}" in capsys.readouterr().out
    assert cli.main(["projections", "status", "--json", "sales_by_hour"]) == 0
    assert '"state": "current"' in capsys.readouterr().out
    now = datetime.now(UTC)
    assert [r.units for r in sales_by_hour(views, shop.ctx.store_id, now - timedelta(days=1), now)] == [1]


def test_a_handler_bug_halts_at_the_event_and_resumes_after_the_fix(app, bus, shop, views, clock):
    class Buggy(SalesByHour):  # same name, same tracking row: the deploy that shipped the bug
        def cancelled(self, tx, event):
            raise KeyError("reason")

    categorise(bus, shop, "MUG-1", ["kitchen"])
    order_id = place(bus, shop, clock, at(9, 15), {"MUG-1": 2})
    cancel(bus, shop, clock, at(9, 30), order_id)
    place(bus, shop, clock, at(9, 45), {"TEE-M": 1})
    [cancelled] = app.recorder.select_notifications(start=1, limit=10, topics=["trafi.order.cancelled.v1"])

    for _ in range(2):  # the retry halts at the same event: it is never skipped
        with pytest.raises(ProjectionHalted) as halted:
            ProjectionRunner(app, views, Buggy()).catch_up()
        assert halted.value.position < cancelled.id
        assert f"event {cancelled.id}, trafi.order.cancelled.v1" in halted.value.error
    # Nothing at or after the failing event was applied: the order still counts, the later one not yet.
    assert the_day(shop, views) == rows((at(9), "kitchen", KITCHEN_2_MUGS))
    assert projection_status(app, views, SalesByHour()).state == "halted"

    ProjectionRunner(app, views, SalesByHour()).catch_up()  # the fix deployed
    assert the_day(shop, views) == rows((at(9), "kitchen", ZERO), (at(9), "uncategorised", TEE_1))
    assert projection_status(app, views, SalesByHour()).state == "current"


def test_embedded_worker_keeps_it_current(app, bus, shop, views):
    worker = ProjectionWorker(app, views, [SalesByHour()], poll_interval_s=0.02).start()
    try:
        bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"TEE-M": 2})), shop.ctx)
        worker.wake()
        deadline = time.monotonic() + 10
        while views.position("sales_by_hour") < app.recorder.max_notification_id() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    with views.read() as tx:
        assert tx.execute("SELECT SUM(units) FROM ex_sales_by_hour").fetchone()[0] == 2


def test_the_doc_quotes_the_example_and_its_test_verbatim():
    """Every ```python block of the doc that starts with `# <path>` is cut from that file (`# …` separates cuts)."""
    doc = (ROOT / "docs" / "custom-projections.md").read_text(encoding="utf-8")
    quoted: dict[str, int] = {}
    for block in re.findall(r"```python\n(.*?)```", doc, re.S):
        first, _, body = block.partition("\n")
        if not re.fullmatch(r"# [\w/.-]+\.py", first):
            continue
        source = (ROOT / first[2:]).read_text(encoding="utf-8")
        for cut in re.split(r"^\s*# …\n", body, flags=re.M):
            assert cut.strip() and cut in source, f"{first[2:]} no longer contains:\n{cut}"
        quoted[first[2:]] = quoted.get(first[2:], 0) + 1
    assert set(quoted) == {"docs/examples/sales_by_hour.py", "tests/integration/test_custom_projection_example.py"}
