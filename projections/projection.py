"""A projection: a pinned name, the event types it wants, one handler per event type.

    class OrdersByStatus(Projection):
        name = "orders_by_status"          # pinned: it names the tables and the tracking row

        def setup(self, tx): tx.execute("CREATE TABLE IF NOT EXISTS …")

        @handles(Order.Created)
        def placed(self, tx, event): tx.execute("INSERT …", (…))

A handler receives the view transaction and the domain event. Its writes and
the projection's new position commit together (see runner.py).
"""

from __future__ import annotations

from typing import Callable

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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for topic in getattr(value, "__trafi_topics__", ()):
                    cls.handlers[topic] = attr

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.handlers)

    def setup(self, tx: ViewTransaction) -> None:
        """Create the tables this projection writes (idempotent)."""

    def apply(self, tx: ViewTransaction, event) -> None:
        getattr(self, self.handlers[type(event).TOPIC])(tx, event)
