"""What a Kafka-fed projection keeps beside its read model, in the same view database.

Written in the very transaction that applies a batch to the read model, so a
batch's rows, its offsets and its de-duplication state commit together or not
at all (the exactly-once effect):

* `trafi_kafka_offsets` — per projection and partition, the next offset to apply.
  The broker's own committed offsets are only informational (for lag tooling).
  -1: nothing consumed yet.
* `trafi_kafka_versions` — per projection and aggregate, the last version seen.
  The relay is at-least-once, so copies arrive; a version at or below this one
  is a copy (dropped), the next one is applied, a later one is early (held back:
  the relay re-sends from the missing event, so it will come again in order).
* `trafi_kafka_sources` — one row per projection that runs from Kafka: its
  hand-off position (events at or before it were applied from the database log
  before the switch) and counters of copies dropped and messages dead-lettered.
* `trafi_kafka_dead_letters` — every message parked in the dead-letter topic, and why.
"""

from __future__ import annotations

from datetime import datetime, timezone

from projections.views import POSITIONS_TABLE, ViewTransaction, claim_position

OFFSETS = "trafi_kafka_offsets"
VERSIONS = "trafi_kafka_versions"
SOURCES = "trafi_kafka_sources"
DEAD_LETTERS = "trafi_kafka_dead_letters"
TABLES = (SOURCES, OFFSETS, VERSIONS, DEAD_LETTERS)


def create_tables(tx: ViewTransaction) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {SOURCES} (consumer TEXT PRIMARY KEY, handoff_position BIGINT NOT NULL, "
        "duplicates BIGINT NOT NULL DEFAULT 0, held_back BIGINT NOT NULL DEFAULT 0, "
        "dead_letters BIGINT NOT NULL DEFAULT 0, started_at TEXT NOT NULL)"
    )
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {OFFSETS} (consumer TEXT NOT NULL, topic TEXT NOT NULL, "
        "kafka_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (consumer, topic, kafka_partition))"
    )
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS} (consumer TEXT NOT NULL, aggregate_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, PRIMARY KEY (consumer, aggregate_id))"
    )
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {DEAD_LETTERS} (consumer TEXT NOT NULL, topic TEXT NOT NULL, "
        "kafka_partition INTEGER NOT NULL, message_offset BIGINT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, "
        "PRIMARY KEY (consumer, topic, kafka_partition, message_offset))"
    )


def begin_source(tx: ViewTransaction, consumer: str) -> int:
    """Mark the projection as fed from Kafka; return its hand-off position.

    The first time, that is how far the database log had taken it: a projection
    switched from the log to Kafka skips what it already applied.
    """
    claim_position(tx, consumer)  # a log runner's batch in flight finishes first; the next one sees this row
    tx.execute(
        f"INSERT INTO {SOURCES} (consumer, handoff_position, started_at) "
        f"SELECT %s, COALESCE((SELECT position FROM {POSITIONS_TABLE} WHERE name = %s), 0), %s "
        "ON CONFLICT (consumer) DO NOTHING",
        (consumer, consumer, _now()),
    )
    return handoff_of(tx, consumer)


def handoff_of(tx: ViewTransaction, consumer: str) -> int | None:
    """None when the projection does not (or no longer, after a rebuild) run from Kafka."""
    row = tx.execute(f"SELECT handoff_position FROM {SOURCES} WHERE consumer = %s", (consumer,)).fetchone()
    return None if row is None else row[0]


def kafka_sourced(tx: ViewTransaction, consumer: str) -> bool:
    return handoff_of(tx, consumer) is not None


def stored_offsets(tx: ViewTransaction, consumer: str, topic: str) -> dict[int, int]:
    rows = tx.execute(
        f"SELECT kafka_partition, next_offset FROM {OFFSETS} WHERE consumer = %s AND topic = %s", (consumer, topic),
    ).fetchall()
    return dict(rows)


def lock_offsets(tx: ViewTransaction, consumer: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The stored next offset of each partition (-1: none yet), locked until the transaction ends.

    Two consumers that both believe they own a partition (one of them has not yet
    noticed a rebalance) take turns here, and the second sees what the first stored.
    """
    tx.executemany(
        f"INSERT INTO {OFFSETS} (consumer, topic, kafka_partition, next_offset) VALUES (%s, %s, %s, -1) "
        "ON CONFLICT (consumer, topic, kafka_partition) DO NOTHING",
        [(consumer, topic, p) for p in sorted(partitions)],
    )
    lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
    marks = ", ".join(["%s"] * len(partitions))
    rows = tx.execute(
        f"SELECT kafka_partition, next_offset FROM {OFFSETS} WHERE consumer = %s AND topic = %s "
        f"AND kafka_partition IN ({marks}) ORDER BY kafka_partition{lock}",
        (consumer, topic, *sorted(partitions)),
    ).fetchall()
    return dict(rows)


def store_offsets(tx: ViewTransaction, consumer: str, topic: str, next_offsets: dict[int, int]) -> None:
    tx.executemany(
        f"UPDATE {OFFSETS} SET next_offset = %s WHERE consumer = %s AND topic = %s AND kafka_partition = %s",
        [(offset, consumer, topic, partition) for partition, offset in sorted(next_offsets.items())],
    )


def last_versions(tx: ViewTransaction, consumer: str, aggregate_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(aggregate_ids), 500):
        chunk = aggregate_ids[start:start + 500]
        rows = tx.execute(
            f"SELECT aggregate_id, version FROM {VERSIONS} WHERE consumer = %s "
            f"AND aggregate_id IN ({', '.join(['%s'] * len(chunk))})", (consumer, *chunk),
        ).fetchall()
        found.update(rows)
    return found


def store_versions(tx: ViewTransaction, consumer: str, versions: dict[str, int]) -> None:
    tx.executemany(
        f"INSERT INTO {VERSIONS} (consumer, aggregate_id, version) VALUES (%s, %s, %s) "
        "ON CONFLICT (consumer, aggregate_id) DO UPDATE SET version = excluded.version",
        [(consumer, aggregate, version) for aggregate, version in sorted(versions.items())],
    )


def count(tx: ViewTransaction, consumer: str, *, duplicates: int, held_back: int, dead_letters: int) -> None:
    if duplicates or held_back or dead_letters:
        tx.execute(
            f"UPDATE {SOURCES} SET duplicates = duplicates + %s, held_back = held_back + %s, "
            "dead_letters = dead_letters + %s WHERE consumer = %s",
            (duplicates, held_back, dead_letters, consumer),
        )


def record_dead_letter(tx: ViewTransaction, consumer: str, topic: str, partition: int, offset: int, reason: str) -> None:
    tx.execute(
        f"INSERT INTO {DEAD_LETTERS} (consumer, topic, kafka_partition, message_offset, reason, at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (consumer, topic, kafka_partition, message_offset) DO NOTHING",
        (consumer, topic, partition, offset, reason, _now()),
    )


def advance_position(tx: ViewTransaction, consumer: str, position: int) -> None:
    """The highest log position applied: what `projections status` measures lag against.

    Partitions progress independently, so events below it may still be on their
    way in a slower partition; the per-partition truth is the offsets table.
    """
    tx.execute(
        f"INSERT INTO {POSITIONS_TABLE} (name, position, last_error, updated_at) VALUES (%s, %s, NULL, %s) "
        f"ON CONFLICT (name) DO UPDATE SET position = CASE WHEN excluded.position > {POSITIONS_TABLE}.position "
        f"THEN excluded.position ELSE {POSITIONS_TABLE}.position END, last_error = NULL, updated_at = excluded.updated_at",
        (consumer, position, _now()),
    )


def source_counters(tx: ViewTransaction, consumer: str) -> dict | None:
    row = tx.execute(
        f"SELECT handoff_position, duplicates, held_back, dead_letters FROM {SOURCES} WHERE consumer = %s",
        (consumer,),
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("handoff_position", "duplicates", "held_back", "dead_letters"), row))


def forget(tx: ViewTransaction, consumer: str) -> None:
    """After a rebuild from the log: the next Kafka consumer hands off from the rebuilt position."""
    for table in (SOURCES, OFFSETS, VERSIONS):
        tx.execute(f"DELETE FROM {table} WHERE consumer = %s", (consumer,))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
