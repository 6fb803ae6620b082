"""The telemetry log on real SQLite files and the real PostgreSQL: de-duplication, durability,
all-or-nothing batches, flow counters, and positions that a reader can follow without missing a row."""

from __future__ import annotations

import os
import threading
import time

import pytest

from autopilot.telemetry.columns import TELEMETRY_COLUMNS
from autopilot.telemetry.log import US_PER_MINUTE, TelemetryLog, event_row
from commands.config import EventStoreConfig
from tests.conftest import create_pg_database, drop_pg_database, make_config

NOW_US = 1_795_000_000_000_000  # 2026-11-18, in microseconds since the epoch
STORE, OTHER = "5d9a7f0e-0c55-4f3e-9a55-3a8d4e1b2c01", "8e1b2c01-3a8d-4e1b-9a55-5d9a7f0e0c55"


def page_view(event_id: str, **fields) -> tuple:
    values = dict(event_id=event_id, kind="page_view", occurred_at_us=NOW_US - 1000, session_id="s", visitor_id="v",
                  url="https://shop.example/", traffic_source="direct")
    return event_row(**{**values, **fields})


@pytest.fixture
def config(store_kind, tmp_path):
    name = create_pg_database() if store_kind == "postgres" else None
    yield make_config(store_kind, tmp_path, name)
    if name:
        drop_pg_database(name)


@pytest.fixture
def telemetry(config):
    log = TelemetryLog.open(config)
    yield log
    log.close()


def column(rows: list[tuple], name: str) -> list:
    i = TELEMETRY_COLUMNS.index(name)
    return [r[i] for r in rows]


def test_sqlite_keeps_its_own_file_beside_the_event_store(tmp_path):
    log = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "data" / "events.sqlite")))
    log.append(STORE, [page_view("a")], NOW_US)
    log.close()
    assert (tmp_path / "data" / "telemetry.sqlite").exists()
    assert not (tmp_path / "data" / "events.sqlite").exists()  # the commerce log is nobody's business here


def test_an_in_memory_event_store_gets_a_throw_away_telemetry_file():
    log = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=":memory:"))
    log.append(STORE, [page_view("a")], NOW_US)
    path = log._db.path
    assert os.path.exists(path) and log.head() == 1
    log.close()
    assert not os.path.exists(path)


def test_rows_come_back_in_position_order_with_the_contract_columns(telemetry):
    result = telemetry.append(STORE, [page_view("a"), page_view("b", kind="add_to_cart", sku="MUG-1", quantity=2,
                                                                  price_minor=1890, currency="EUR")], NOW_US)
    assert result.accepted == ["a", "b"] and result.duplicates == []
    rows = telemetry.read(0, 10)
    assert [len(r) for r in rows] == [len(TELEMETRY_COLUMNS)] * 2
    assert column(rows, "position") == [1, 2] and telemetry.head() == 2
    assert column(rows, "store_id") == [STORE, STORE]
    assert column(rows, "received_at_us") == [NOW_US, NOW_US]
    second = dict(zip(TELEMETRY_COLUMNS, rows[1]))
    assert (second["kind"], second["sku"], second["quantity"], second["price_minor"]) == ("add_to_cart", "MUG-1", 2, 1890)
    assert telemetry.read(1, 10) == rows[1:] and telemetry.read(2, 10) == [] and telemetry.read(0, 1) == rows[:1]


def test_duplicates_within_a_batch_across_batches_and_per_store(telemetry):
    first = telemetry.append(STORE, [page_view("a"), page_view("b"), page_view("a")], NOW_US)
    assert (first.accepted, first.duplicates) == (["a", "b"], ["a"])
    again = telemetry.append(STORE, [page_view("b"), page_view("c"), page_view("c")], NOW_US)
    assert (again.accepted, again.duplicates) == (["c"], ["b", "c"])
    elsewhere = telemetry.append(OTHER, [page_view("a")], NOW_US)  # event ids are unique per store only
    assert elsewhere.accepted == ["a"]
    assert column(telemetry.read(0, 10), "event_id") == ["a", "b", "c", "a"]


def test_an_accepted_batch_is_there_for_a_fresh_log_on_the_same_database(config, telemetry):
    telemetry.append(STORE, [page_view(f"e{i}") for i in range(50)], NOW_US)
    telemetry.close()
    reopened = TelemetryLog.open(config)
    try:
        assert column(reopened.read(0, 100), "event_id") == [f"e{i}" for i in range(50)]
        assert reopened.append(STORE, [page_view("e7"), page_view("e50")], NOW_US).duplicates == ["e7"]
        assert reopened.head() == 51
    finally:
        reopened.close()


def test_a_batch_that_cannot_be_stored_leaves_nothing_behind(telemetry):
    telemetry.append(STORE, [page_view("before")], NOW_US)
    with pytest.raises(Exception):
        telemetry.append(STORE, [page_view("fine"), page_view("broken", kind=None)], NOW_US)  # kind is NOT NULL
    assert column(telemetry.read(0, 10), "event_id") == ["before"]
    assert telemetry.totals(STORE)[0].accepted == 1
    assert telemetry.append(STORE, [page_view("fine")], NOW_US).accepted == ["fine"]
    assert telemetry.head() == 2  # no position was lost to the failed batch


def test_a_failing_batch_does_not_fail_the_batches_committed_with_it(telemetry):
    """Group commit shares a transaction; a poisoned group is retried batch by batch."""
    results, errors = {}, {}
    start = threading.Barrier(8)

    def send(i: int) -> None:
        start.wait()
        events = [page_view(f"t{i}-{j}", kind=None if i == 3 and j == 1 else "page_view") for j in range(20)]
        try:
            results[i] = telemetry.append(STORE, events, NOW_US)
        except Exception as error:
            errors[i] = error

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) == {3} and len(results) == 7
    stored = column(telemetry.read(0, 1000), "event_id")
    assert len(stored) == 140 and not any(e.startswith("t3-") for e in stored)
    assert column(telemetry.read(0, 1000), "position") == list(range(1, 141))


def test_flow_counters_per_minute_and_in_total(telemetry):
    minute = NOW_US // US_PER_MINUTE
    telemetry.append(STORE, [page_view("a"), page_view("b"), page_view("a")], NOW_US, rejected=2)
    telemetry.append(STORE, [page_view("b")], NOW_US + US_PER_MINUTE)
    telemetry.record_refused_batch(STORE, NOW_US + US_PER_MINUTE)
    telemetry.append(OTHER, [page_view("x")], NOW_US - 3 * US_PER_MINUTE)
    flows = telemetry.flow(STORE, minute - 10, minute + 10)
    assert [(f.minute - minute, f.accepted, f.duplicates, f.rejected, f.refused_batches) for f in flows] == [
        (0, 2, 1, 2, 0), (1, 0, 1, 0, 1)]
    assert telemetry.flow(STORE, minute + 1, minute + 2)[0].minute == minute + 1  # [from, to)
    totals = {t.store_id: t for t in telemetry.totals()}
    assert (totals[STORE].accepted, totals[STORE].duplicates, totals[STORE].rejected, totals[STORE].refused_batches) \
        == (2, 2, 2, 1)
    assert totals[STORE].first_minute == minute and totals[STORE].last_accepted_at_us == NOW_US
    assert totals[OTHER].first_minute == minute - 3
    hour = (minute // 60) % 24
    assert telemetry.accepted_by_hour_of_day(STORE, minute - 1440, minute + 1440) == {hour: 2}


# --- positions a reader can follow ---------------------------------------------------------------


def _follow(telemetry: TelemetryLog, stop: threading.Event, seen: list[int], problems: list[str]) -> None:
    """The warehouse feeder's way: read after the highest position seen, never look back."""
    after = 0
    while True:
        done = stop.is_set()  # decided before the read: the last read sees every commit
        rows = telemetry.read(after, 500)
        positions = column(rows, "position")
        if positions and positions != list(range(after + 1, after + 1 + len(positions))):
            problems.append(f"after {after} read {positions[:5]}…")
        if positions:
            after = positions[-1]
            seen.extend(positions)
        elif done:
            return


@pytest.mark.slow
def test_a_reader_following_positions_misses_nothing_while_many_writers_commit(config, telemetry):
    """Writers in separate logs (separate connections, as separate API processes would have) commit
    batches at once; a reader that only remembers the highest position it has seen must still see
    every row, in a gap-free sequence. On PostgreSQL this is the table lock's doing: without it rows
    would commit out of position order and the reader would skip the late ones."""
    writers = [TelemetryLog.open(config) for _ in range(4)]
    stop, seen, problems, accepted = threading.Event(), [], [], []
    reader = threading.Thread(target=_follow, args=(telemetry, stop, seen, problems))
    reader.start()

    def write(log: TelemetryLog, name: str) -> None:
        for b in range(25):
            result = log.append(STORE, [page_view(f"{name}-{b}-{i}") for i in range(7)], NOW_US)
            accepted.extend(result.accepted)

    threads = [threading.Thread(target=write, args=(log, f"w{w}-{k}")) for w, log in enumerate(writers) for k in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        reader.join(timeout=60)
        for log in writers:
            log.close()
    assert not problems, problems[:5]
    assert len(accepted) == 8 * 25 * 7
    assert seen == list(range(1, len(accepted) + 1))
    assert sorted(column(telemetry.read(0, 10_000), "event_id")) == sorted(accepted)


@pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_write_lock_lets_readers_read(config, telemetry):
    """PostgreSQL's EXCLUSIVE lock blocks writers only: a read during a long write is not held up."""
    telemetry.append(STORE, [page_view("a")], NOW_US)
    holding = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with telemetry._db.writing():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    holding.wait(10)
    reader = TelemetryLog.open(config)
    try:
        started = time.monotonic()
        assert reader.head() == 1 and len(reader.read(0, 10)) == 1
        assert time.monotonic() - started < 2
    finally:
        release.set()
        holder.join()
        reader.close()
