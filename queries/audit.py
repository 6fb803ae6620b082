"""The auditor's time machine: any aggregate as it was, and history exported as envelopes.

Unlike the other query services this one reads the event log itself (through
the recorder's public API, never its tables): the log is what is being audited.

* `state_at(id, version=…)` / `state_at(id, as_of=…)`: the aggregate as it was.
  A timestamp is turned into a version by binary search over the aggregate's own
  stream (≈ log2(N) single-event reads), then the aggregate is rebuilt from the
  latest snapshot at or before that version plus at most a snapshot interval of
  events. Cost: a few milliseconds, whether the stream has 50 events or 500,000.
* `history(…)`: events in log order as envelopes (domain/envelope.py), filtered by
  store, aggregate and time range, streamed so an export never sits in memory.

Assumption, relied on by the binary search: within one aggregate, event
timestamps never decrease with the version. They are taken when the event is
triggered, after the previous version was loaded, so this holds as long as the
writers' clocks do not step backwards by more than the time between two
commands on the same aggregate (NTP slews, it does not step, in normal running).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Iterator
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.envelope import ENVELOPE_FIELDS, aggregate_type_of, build_envelope, json_safe, store_id_at_creation, utc_iso
from domain.errors import InvalidValue, NotFound
from queries.model import QueryModel
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, encode_cursor


def parse_moment(text: str | datetime) -> datetime:
    """An ISO-8601 moment (`2026-11-01T12:00:00Z`, any offset); without an offset it is taken as UTC."""
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidValue("as_of", f"not an ISO-8601 date-time: {text!r}", code="audit.invalid_moment") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class AuditService:
    def __init__(self, app: TrafiApplication, *, batch_size: int = 1000):
        self.app = app
        self.batch_size = batch_size

    # --- state at a version or a moment -------------------------------------------------------
    def state_at(self, aggregate_id: UUID, *, version: int | None = None, as_of: datetime | str | None = None) -> dict:
        """The aggregate at `version`, or as it stood at `as_of` (its last event at or before then).

        Neither given: its current state. Raises NotFound when the aggregate does
        not exist, has no such version, or did not exist yet at `as_of`.
        """
        if version is not None and as_of is not None:
            raise InvalidValue("as_of", "give a version or a moment, not both", code="audit.version_and_moment")
        if as_of is not None:
            version = self.version_at(aggregate_id, parse_moment(as_of))
        elif version is not None and version < 1:
            raise NotFound("aggregate", f"{aggregate_id} version {version}")
        try:
            aggregate = self.app.repository.get(aggregate_id, version=version, projector_func=_project)
        except AggregateNotFoundError:
            raise NotFound("aggregate", aggregate_id) from None
        if version is not None and aggregate.version != version:  # the library stops at the last one it has
            raise NotFound("aggregate", f"{aggregate_id} version {version}")
        return describe(aggregate)

    def version_at(self, aggregate_id: UUID, as_of: datetime) -> int:
        """The version of the aggregate's last event with timestamp <= as_of (binary search)."""
        as_of = parse_moment(as_of)
        latest = self._event(aggregate_id, desc=True)
        if latest is None:
            raise NotFound("aggregate", aggregate_id)
        if self._timestamp(latest) <= as_of:
            return latest.originator_version
        first = self._event(aggregate_id)
        if self._timestamp(first) > as_of:
            raise NotFound("aggregate", f"{aggregate_id} as of {utc_iso(as_of)}")
        # Invariant: the event at `low` happened at or before as_of, the one at `high` after it.
        low, high = first.originator_version, latest.originator_version
        while high - low > 1:
            middle = (low + high) // 2
            stored = self._event(aggregate_id, version=middle)
            if self._timestamp(stored) <= as_of:
                low = middle
            else:
                high = middle
        return low

    def _event(self, aggregate_id: UUID, *, version: int | None = None, desc: bool = False):
        if version is None:
            found = self.app.recorder.select_events(aggregate_id, desc=desc, limit=1)
        else:
            found = self.app.recorder.select_events(aggregate_id, gt=version - 1, lte=version, limit=1)
            if not found:
                # Versions are consecutive by construction; a hole means rows were removed.
                raise LookupError(f"aggregate {aggregate_id} has no version {version}: run `trafi audit verify`")
        return found[0] if found else None

    def _timestamp(self, stored) -> datetime:
        return self.app.mapper.to_domain_event(stored).timestamp

    # --- history as envelopes ---------------------------------------------------------------
    def history(
        self,
        *,
        store_id: UUID | None = None,
        aggregate_id: UUID | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> Iterator[dict]:
        """Envelopes in log order; `since` is inclusive, `until` exclusive.

        Reads the log up to its head at the start, in batches. The store of an event
        comes from its aggregate's creation event (version 1), which the scan always
        meets first because an aggregate's events are in version order in the log.
        """
        since = parse_moment(since) if since is not None else None
        until = parse_moment(until) if until is not None else None
        head = self.app.recorder.max_notification_id() or 0
        stores: dict[UUID, UUID | None] = {}
        position = 0
        while position < head:
            batch = self.app.recorder.select_notifications(start=position + 1, limit=self.batch_size, stop=head)
            if not batch:
                break
            for notification in batch:
                aggregate = notification.originator_id
                event = None
                if notification.originator_version == 1 and (aggregate_id is None or aggregate == aggregate_id):
                    event = self.app.mapper.to_domain_event(notification)
                    stores[aggregate] = store_id_at_creation(notification.topic, event)
                if aggregate_id is not None and aggregate != aggregate_id:
                    continue
                store = stores.get(aggregate)
                if store_id is not None and store != store_id:
                    continue
                if event is None:
                    event = self.app.mapper.to_domain_event(notification)
                if (since is not None and event.timestamp < since) or (until is not None and event.timestamp >= until):
                    continue
                yield build_envelope(
                    position=notification.id, aggregate_id=aggregate, version=notification.originator_version,
                    topic=notification.topic, event=event, store_id=store,
                )
            position = batch[-1].id

    # --- one store's view (the HTTP API) ------------------------------------------------------
    # The methods above read any aggregate by id, for operators and the CLI. These take the
    # caller's store: another store's aggregate is "not found", exactly like a missing one.
    def store_state_at(
        self, ctx: StoreContext, aggregate_id: UUID, *, version: int | None = None,
        as_of: datetime | str | None = None, min_position: int | None = None,
    ) -> AuditState:
        """`state_at` for an aggregate of the caller's store, credential hashes redacted.

        `min_position` is accepted like on every query and needs no waiting: this reads the log itself.
        """
        self._check_owned(ctx, aggregate_id)
        moment = in_range(as_of) if as_of is not None else None
        found = self.state_at(aggregate_id, version=version, as_of=moment)
        return AuditState(**{**found, "state": redacted(found["state"])})

    def store_history(
        self, ctx: StoreContext, aggregate_id: UUID, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None,
    ) -> Page[AuditEvent]:
        """One page of an aggregate's events, oldest first, as envelopes (credential hashes redacted).

        Reads the aggregate's own stream (an index range), never a scan of the whole log
        as `history()` does. A stream orders events by version, which is why
        `position` (the place in the whole log) is not given here.
        """
        check_limit(limit)
        after = _version_cursor(cursor) if cursor is not None else 0
        store = self._check_owned(ctx, aggregate_id)
        stored = self.app.recorder.select_events(aggregate_id, gt=after, limit=limit + 1)
        items = tuple(
            AuditEvent(**{**envelope, "data": redacted(envelope["data"])})
            for envelope in (
                build_envelope(position=None, aggregate_id=aggregate_id, version=event.originator_version,
                               topic=event.topic, event=self.app.mapper.to_domain_event(event), store_id=store)
                for event in stored[:limit]
            )
        )
        more = len(stored) > limit
        return Page(items=items, next_cursor=encode_cursor((str(items[-1].version),)) if more else None)

    def _check_owned(self, ctx: StoreContext, aggregate_id: UUID) -> UUID:
        """The aggregate's store (from its creation event), if it is the caller's; else NotFound."""
        first = self._event(aggregate_id)
        store = store_id_at_creation(first.topic, self.app.mapper.to_domain_event(first)) if first else None
        if store != ctx.store_id:
            raise NotFound("aggregate", aggregate_id)
        return store


class AuditState(QueryModel):
    aggregate_id: UUID
    aggregate_type: str
    version: int
    timestamp: datetime  # when this version was written
    created_at: datetime
    state: dict[str, Any]


class AuditEvent(QueryModel):
    """One event as an envelope (domain/envelope.py)."""

    event_id: UUID
    position: int | None
    store_id: UUID | None
    aggregate_type: str
    aggregate_id: UUID
    version: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]


REDACTED = "[redacted]"
# Hashes of passwords and tokens say nothing an auditor needs (that one changed is in the
# event type), and a password hash is worth an offline attack.
CREDENTIAL_FIELDS = frozenset({"password_hash", "secret_hash", "previous_hash", "token_hash"})


def redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in CREDENTIAL_FIELDS and v is not None else redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def in_range(text: datetime | str) -> datetime:
    """`parse_moment`, and in UTC: a moment at the edge of the calendar (year 1 at +14:00) is refused, not crashed on."""
    moment = parse_moment(text)
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidValue("as_of", "out of the supported range of dates", code="audit.invalid_moment") from None


def _version_cursor(cursor: str) -> int:
    (version,) = decode_cursor(cursor, 1)
    if not (version.isascii() and version.isdigit() and len(version) <= 18):
        raise InvalidValue("cursor", "not a cursor of this list", code="query.invalid_cursor")
    return int(version)


def describe(aggregate) -> dict:
    """What an auditor reads: identity, version, when that version was written, and the state (JSON-safe)."""
    return {
        "aggregate_id": str(aggregate.id),
        "aggregate_type": aggregate_type_of(type(aggregate).TOPIC),
        "version": aggregate.version,
        "timestamp": utc_iso(aggregate.modified_on),
        "created_at": utc_iso(aggregate.created_on),
        "state": {k: json_safe(v) for k, v in vars(aggregate).items() if not k.startswith("_")},
    }


def _project(aggregate, events):
    # A plain loop: the library's default projector checks a Protocol with isinstance() per event.
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


# --- writers ------------------------------------------------------------------------------------
def write_jsonl(envelopes: Iterable[dict], out: IO[str]) -> int:
    """One envelope per line. Returns how many were written."""
    count = 0
    for envelope in envelopes:
        out.write(json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_csv(envelopes: Iterable[dict], out: IO[str]) -> int:
    """A header of the envelope fields, one row per event; `data` is a JSON string."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ENVELOPE_FIELDS)
    count = 0
    for envelope in envelopes:
        row = dict(envelope, data=json.dumps(envelope["data"], ensure_ascii=False, separators=(",", ":")))
        writer.writerow([row[field] for field in ENVELOPE_FIELDS])
        count += 1
    return count
