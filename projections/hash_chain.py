"""Tamper evidence: a hash chain over the event log, kept by a projection, and its verifier.

Every event in the log gets one chain entry:

    hash(n) = SHA-256( hash(n-1) ‖ canonical(position, originator id, version, topic, stored state) )

with hash(0) = 32 zero bytes. `canonical` is a length-prefixed concatenation
(big-endian integers, the id's 16 bytes, UTF-8 topic, the state exactly as
stored), so no two different events can encode to the same bytes. The chain
works on the stored bytes, never on decoded events: decoding (and upcasting)
may change with the code, the bytes must not change at all.

`verify()` recomputes every link from the log and compares it with the stored
chain up to the chain's position. It uses each entry's *stored* predecessor
hash, so a problem shows exactly where it is and the rest of the chain still
checks; the first problem is then classified:

  altered         the event's bytes (or topic, id, version) differ from what was hashed
  missing         the chain has an entry at a position where the log has no event
  reordered       the event (or its content) that was hashed here now sits at another position
  inserted        an event inside the chained range that was never chained
  chain_tampered  the chain entry itself was changed or deleted, the event is as hashed

What it cannot catch is documented in docs/auditing.md (in short: whoever can
rewrite both the log and the chain consistently; anchor the head hash elsewhere).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence
from uuid import UUID

from commands.application import TrafiApplication
from projections.projection import Projection
from projections.views import ViewStore, ViewTransaction

TABLE = "trafi_audit_chain"
GENESIS = bytes(32)

ALTERED = "altered"
MISSING = "missing"
REORDERED = "reordered"
INSERTED = "inserted"
CHAIN_TAMPERED = "chain_tampered"

_MAX_KEPT_ANOMALIES = 10_000  # beyond this the log is thoroughly broken; counting them is enough


def canonical_bytes(position: int, originator_id: UUID | str, version: int, topic: str, state: bytes | str | None) -> bytes:
    aggregate = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
    topic_bytes = (topic or "").encode("utf-8")
    # A hand-edited row may hold TEXT or NULL where bytes belong; hash what is there rather than crash.
    state = state.encode("utf-8") if isinstance(state, str) else bytes(state or b"")
    return b"".join((
        position.to_bytes(8, "big"),
        aggregate.bytes,
        version.to_bytes(8, "big"),
        len(topic_bytes).to_bytes(4, "big"), topic_bytes,
        len(state).to_bytes(8, "big"), state,
    ))


def chain_hash(previous: bytes, position: int, originator_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
    digest = hashlib.sha256(previous)
    digest.update(canonical_bytes(position, originator_id, version, topic, state))
    return digest.digest()


def _hash_of(notification, previous: bytes, position: int | None = None) -> bytes:
    """The link this stored event makes after `previous` (at its own position unless told otherwise)."""
    return chain_hash(
        previous, notification.id if position is None else position, notification.originator_id,
        notification.originator_version, notification.topic, notification.state,
    )


class AuditChain(Projection):
    name = "audit_chain"
    needs_log_order = True
    tables = (TABLE,)

    @property
    def topics(self) -> None:
        return None  # every event, whatever its type: a gap in the chain would be a blind spot

    def setup(self, tx: ViewTransaction) -> None:
        # The hash is hex TEXT: portable across both databases and readable when an auditor looks.
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "position BIGINT PRIMARY KEY, originator_id TEXT NOT NULL, version BIGINT NOT NULL, "
            "topic TEXT NOT NULL, hash TEXT NOT NULL)"
        )

    def rebuild_refusal(self, app, views) -> str | None:
        # A rebuild re-hashes the log as it is now: it would launder any tampering.
        result = verify(app, views)
        if result.ok:
            return None
        return (f"the chain shows {result.problem.kind} at position {result.problem.position}; "
                "rebuilding would erase that evidence")

    def apply(self, tx: ViewTransaction, event) -> None:
        raise TypeError("AuditChain hashes stored bytes; it is applied through apply_batch, never a decoded event")

    def apply_batch(self, tx: ViewTransaction, notifications: Sequence, mapper) -> None:
        if not notifications:
            return
        # One read per batch: the runner applies batches one at a time under the tracking-row lock.
        row = tx.execute(f"SELECT hash FROM {TABLE} ORDER BY position DESC LIMIT 1").fetchone()
        previous = bytes.fromhex(row[0]) if row else GENESIS
        rows = []
        for notification in notifications:
            previous = _hash_of(notification, previous)
            rows.append((
                notification.id, str(notification.originator_id), notification.originator_version,
                notification.topic, previous.hex(),
            ))
        tx.executemany(
            f"INSERT INTO {TABLE} (position, originator_id, version, topic, hash) VALUES (%s, %s, %s, %s, %s)", rows
        )


# --- verification --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainEntry:
    position: int
    originator_id: str
    version: int
    topic: str
    hash: bytes

    def describe(self) -> str:
        return f"{self.topic} of {self.originator_id} v{self.version}"


@dataclass(frozen=True)
class Problem:
    position: int
    kind: str
    detail: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int  # positions compared (chain entries, plus log events the chain lacks)
    position: int  # the chain's position: events after it are not chained yet
    head_hash: str | None  # the last entry's hash: anchor it outside the database
    problem: Problem | None = None  # the first one, in log order
    anomalies: int = 0  # positions that failed a check (one problem often shows at two)

    def summary(self) -> str:
        if self.ok:
            return (f"audit chain intact: {self.checked} events checked up to position {self.position}, "
                    f"head hash {self.head_hash or '-'}")
        more = f" ({self.anomalies} positions fail their check in total)" if self.anomalies > 1 else ""
        return f"audit chain BROKEN at position {self.problem.position}: {self.problem.kind} — {self.problem.detail}{more}"


@dataclass
class _Anomaly:
    position: int
    entry: ChainEntry | None
    event: object | None  # the stored notification at this position, if any
    previous: bytes  # the stored hash of the chain entry before this position
    hash_ok: bool = False
    bridged: bool = False  # the next entry links through this event: the event is as it was hashed


def verify(app: TrafiApplication, views: ViewStore, *, batch_size: int = 2000) -> Verification:
    """Recompute the chain from the log, up to the chain's position, and report the first problem."""
    position = views.position(AuditChain.name)
    previous = GENESIS  # the stored hash of the last chain entry walked
    pending: tuple[_Anomaly, bytes] | None = None  # a failed link and its recomputed hash, for the bridge test
    anomalies: list[_Anomaly] = []
    count = checked = 0
    last_entry = 0

    def note(anomaly: _Anomaly) -> None:
        nonlocal count
        count += 1
        if len(anomalies) < _MAX_KEPT_ANOMALIES:
            anomalies.append(anomaly)

    for entry, event in _merge(_chain(views, position, batch_size), _log(app, position, batch_size)):
        checked += 1
        if entry is not None:
            last_entry = entry.position
        if entry is not None and event is not None:
            recomputed = _hash_of(event, previous)
            hash_ok = recomputed == entry.hash
            same_columns = (str(event.originator_id), event.originator_version, event.topic) == (
                entry.originator_id, entry.version, entry.topic)
            if not hash_ok and pending is not None and _hash_of(event, pending[1]) == entry.hash:
                pending[0].bridged = True
            pending = None
            if not (hash_ok and same_columns):
                anomaly = _Anomaly(entry.position, entry, event, previous, hash_ok=hash_ok)
                note(anomaly)
                if not hash_ok:
                    pending = (anomaly, recomputed)
            previous = entry.hash
        elif entry is not None:  # the chain remembers an event the log no longer has
            note(_Anomaly(entry.position, entry, None, previous))
            pending = None
            previous = entry.hash
        else:  # an event in the chained range that the chain does not know
            anomaly = _Anomaly(event.id, None, event, previous)
            note(anomaly)
            # If the next entry links through this event, its chain entry was deleted.
            pending = (anomaly, _hash_of(event, previous))
    head = previous.hex() if checked and previous != GENESIS else None
    if not anomalies:
        return Verification(True, checked, position, head)
    return Verification(False, checked, position, head, _classify(anomalies[0], anomalies, last_entry), count)


def _classify(first: _Anomaly, anomalies: list[_Anomaly], last_entry: int) -> Problem:
    entry, event, at = first.entry, first.event, first.position
    if entry is None:
        if first.bridged:
            return Problem(at, CHAIN_TAMPERED, f"the chain entry of {_describe(event)} was deleted")
        return Problem(at, INSERTED, f"{_describe(event)} is in the log but was never chained: it was added afterwards")
    if event is not None and first.hash_ok:
        return Problem(at, CHAIN_TAMPERED, f"the chain entry was edited: it says {entry.describe()}, "
                                           f"but the event that matches its hash is {_describe(event)}")
    if first.bridged:
        return Problem(at, CHAIN_TAMPERED, f"the hash of this chain entry was changed; {_describe(event)} "
                                           "is as it was hashed (the next entry links to it)")
    moved = _moved_to(first, anomalies)
    if moved is not None:
        return Problem(at, REORDERED, f"{moved} that was hashed here ({entry.describe()})")
    if event is None:
        return Problem(at, MISSING, f"no event at this position; the chain recorded {entry.describe()}")
    differs = [name for name, ours, theirs in (
        ("aggregate id", str(event.originator_id), entry.originator_id),
        ("version", event.originator_version, entry.version),
        ("topic", event.topic, entry.topic),
    ) if ours != theirs]
    what = f"its {', '.join(differs)} and possibly its state" if differs else "its stored state"
    detail = f"{_describe(event)} does not match its hash: {what} changed since it was chained"
    if at == last_entry:
        detail += " (or, as this is the newest entry, its chain hash was changed: nothing links to it yet)"
    return Problem(at, ALTERED, detail)


def _moved_to(first: _Anomaly, anomalies: list[_Anomaly]) -> str | None:
    """Where the event, or the content, that was hashed at this position went (another failing position)."""
    entry = first.entry
    for other in anomalies:
        if other is first or other.event is None:
            continue
        moved = other.event
        if _hash_of(moved, first.previous, position=first.position) == entry.hash:
            return f"position {other.position} now holds the event"
        content = chain_hash(first.previous, first.position, entry.originator_id, entry.version, moved.topic, moved.state)
        if content == entry.hash:
            return f"position {other.position} now holds the topic and state"
    return None


def _describe(event) -> str:
    return f"{event.topic} of {event.originator_id} v{event.originator_version}"


def _chain(views: ViewStore, through: int, batch_size: int) -> Iterator[ChainEntry]:
    after = 0
    while True:
        with views.read() as tx:
            rows = tx.execute(
                f"SELECT position, originator_id, version, topic, hash FROM {TABLE} "
                "WHERE position > %s AND position <= %s ORDER BY position LIMIT %s",
                (after, through, batch_size),
            ).fetchall()
        for position, originator_id, version, topic, hex_hash in rows:
            yield ChainEntry(position, originator_id, version, topic, _unhex(hex_hash))
        if len(rows) < batch_size:
            return
        after = rows[-1][0]


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        return b""  # an edited, malformed hash: it simply matches nothing


def _log(app: TrafiApplication, through: int, batch_size: int) -> Iterator:
    after = 0
    while after < through:
        batch = app.recorder.select_notifications(start=after + 1, limit=batch_size, stop=through)
        yield from batch
        if len(batch) < batch_size:
            return
        after = batch[-1].id


def _merge(entries: Iterator[ChainEntry], events: Iterator) -> Iterator[tuple[ChainEntry | None, object | None]]:
    """Walk both sequences by position: (entry, event), either None where the other has no partner."""
    entry, event = next(entries, None), next(events, None)
    while entry is not None or event is not None:
        if event is None or (entry is not None and entry.position < event.id):
            yield entry, None
            entry = next(entries, None)
        elif entry is None or event.id < entry.position:
            yield None, event
            event = next(events, None)
        else:
            yield entry, event
            entry, event = next(entries, None), next(events, None)
