"""How far behind each projection is: what `trafi projections status` prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from commands.application import TrafiApplication
from projections.kafka import bookkeeping
from projections.projection import Projection
from projections.views import ViewStore


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int  # log entries after the position not yet looked at
    lag_seconds: float  # age of the oldest event this projection still has to apply
    last_error: str | None
    updated_at: str | None
    source: str = "log"  # or "kafka": fed by a consumer group (projections/kafka/consumer.py)
    duplicates: int = 0  # Kafka: copies dropped by (aggregate id, version)
    dead_letters: int = 0  # Kafka: messages parked in the dead-letter topic

    @property
    def state(self) -> str:
        if self.last_error:
            return "halted"
        return "current" if self.lag_events == 0 else "behind"

    def as_dict(self) -> dict:
        return {**self.__dict__, "state": self.state}


def projection_status(
    app: TrafiApplication, views: ViewStore, projection: Projection, *, now: datetime | None = None
) -> ProjectionStatus:
    position, error, updated = views.tracking_rows().get(projection.name, (0, None, None))
    head = app.recorder.max_notification_id() or 0
    lag_seconds = 0.0
    if position < head:
        oldest = app.recorder.select_notifications(
            start=position + 1, limit=1, stop=head, topics=projection.topics or ()
        )
        if oldest:
            occurred = app.mapper.to_domain_event(oldest[0]).timestamp
            lag_seconds = max(0.0, ((now or datetime.now(timezone.utc)) - occurred).total_seconds())
    with views.read() as tx:
        kafka = bookkeeping.source_counters(tx, projection.name)
    extra = {} if kafka is None else {
        "source": "kafka", "duplicates": kafka["duplicates"], "dead_letters": kafka["dead_letters"]}
    return ProjectionStatus(projection.name, position, head, max(0, head - position), lag_seconds, error, updated,
                            **extra)
