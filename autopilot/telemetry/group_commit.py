"""Group commit: writes that arrive while another is committing go together in the next transaction.

A durable commit waits for the disk (an fsync), and a log's writers take turns. One at a time, the
log could commit only as many batches per second as the disk syncs; grouped, every batch that
queued up during one sync shares the next. No thread of its own: the first caller to find nobody
writing becomes the writer, writes everything queued (its own work included), hands the writer's
role to the next one waiting, if any, and returns. The others wait for their result.

Each piece of work is still all-or-nothing: a group is one transaction. Should a group fail, each
of its pieces is written again on its own, so one bad piece cannot fail its neighbours.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

Work = TypeVar("Work")
Result = TypeVar("Result")


class _Ticket(Generic[Work, Result]):
    __slots__ = ("work", "woken", "lead", "result", "error")

    def __init__(self, work: Work):
        self.work = work
        self.woken = threading.Event()
        self.lead = False  # woken to write, not because the result is there
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Work, Result]):
    def __init__(self, write_group: Callable[[list[Work]], list[Result]]):
        """`write_group(works)` writes all of them in one transaction and returns their results in order."""
        self._write_group = write_group
        self._lock = threading.Lock()
        self._queue: list[_Ticket] = []
        self._writing = False

    def submit(self, work: Work) -> Result:
        ticket: _Ticket = _Ticket(work)
        with self._lock:
            self._queue.append(ticket)
            ticket.lead = not self._writing
            self._writing = True
        if not ticket.lead:
            ticket.woken.wait()
        if ticket.lead:
            self._write_queued()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _write_queued(self) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            self._write(group)
        finally:
            with self._lock:
                if self._queue:  # the role passes on: whoever queued while we wrote writes next
                    successor = self._queue[0]
                    successor.lead = True
                    successor.woken.set()
                else:
                    self._writing = False
            for ticket in group:
                ticket.lead = False
                ticket.woken.set()

    def _write(self, group: list[_Ticket]) -> None:
        try:
            results = self._write_group([t.work for t in group])
        except BaseException as error:
            if len(group) == 1:
                group[0].error = error
                return
            for ticket in group:  # a failed group: each on its own, so the culprit fails alone
                try:
                    ticket.result = self._write_group([ticket.work])[0]
                except BaseException as own_error:
                    ticket.error = own_error
            return
        for ticket, result in zip(group, results):
            ticket.result = result
