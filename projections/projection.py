"""A projection: a pinned name, the tables it owns, one handler per event type.

    class OrdersByStatus(Projection):
        name = "orders_by_status"          # pinned: it names the tracking row
        tables = ("rm_orders_by_status",)  # every table it owns; index names start with a table name

        def setup(self, tx):
            tx.execute("CREATE TABLE IF NOT EXISTS rm_orders_by_status (…)")

        @handles(Order.Created)
        def placed(self, tx, event):
            tx.execute("INSERT INTO rm_orders_by_status …", (…))

A handler receives the view transaction and the domain event. Its writes and
the projection's new position commit together (see runner.py).

Why `tables` is declared: a rebuild (rebuild.py) runs the same handlers against
fresh copies of those tables while the live ones keep serving, then swaps them
in. A projection writes and reads only its own tables; ordering across
projections is not guaranteed.
"""

from __future__ import annotations

from typing import Callable, Sequence

from projections.views import ViewTransaction

Handler = Callable[["Projection", ViewTransaction, object], None]


def handles(*event_classes: type) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of these event classes."""

    def mark(method: Handler) -> Handler:
        method.__trafi_topics__ = tuple(cls.TOPIC for cls in event_classes)
        return method

    return mark


class Projection:
    name: str = ""
    tables: tuple[str, ...] = ()
    # True when a failing batch says nothing about its events (the Kafka relay: the broker is
    # away): the runner retries the whole batch later instead of isolating the failing event.
    failures_are_transient: bool = False
    # True when the handlers depend on the order of the whole log, not only of each aggregate's
    # stream (the audit hash chain; webhooks matching endpoints as they were): such a projection
    # cannot run from Kafka, whose partitions keep only per-aggregate order.
    needs_log_order: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for topic in getattr(value, "__trafi_topics__", ()):
                    cls.handlers[topic] = attr

    @property
    def topics(self) -> tuple[str, ...] | None:
        """The topics to read from the log; None means every event."""
        return tuple(self.handlers)

    def setup(self, tx: ViewTransaction) -> None:
        """Create the tables this projection writes (idempotent: CREATE … IF NOT EXISTS)."""

    def rebuild_refusal(self, app, views) -> str | None:
        """Why rebuilding this projection now would do harm, or None. `--force` overrides it."""
        return None

    def apply(self, tx: ViewTransaction, event) -> None:
        getattr(self, self.handlers[type(event).TOPIC])(tx, event)

    def apply_batch(self, tx: ViewTransaction, notifications: Sequence, mapper) -> None:
        """Apply a batch of stored notifications inside one transaction.

        The default decodes each into its domain event and calls its handler.
        A projection that works on the stored bytes themselves (the audit hash
        chain) or wants to write a batch at once overrides this instead.
        """
        for notification in notifications:
            self.apply(tx, mapper.to_domain_event(notification))
