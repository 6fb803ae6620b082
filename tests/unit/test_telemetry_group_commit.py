"""Group commit: concurrent writes share transactions, each caller gets its own result or error."""

from __future__ import annotations

import threading
import time

from autopilot.telemetry.group_commit import GroupCommit


class Ledger:
    """A stand-in for a transaction: slow enough that callers pile up, and able to fail."""

    def __init__(self, seconds: float = 0.01):
        self.groups: list[list[int]] = []
        self.committed: list[int] = []
        self.seconds = seconds
        self.active = 0
        self.overlaps = 0
        self._lock = threading.Lock()

    def write_group(self, works: list[int]) -> list[int]:
        with self._lock:
            self.active += 1
            self.overlaps += self.active > 1
        try:
            time.sleep(self.seconds)
            if any(w < 0 for w in works):
                raise ValueError(f"negative work in {works}")
            self.groups.append(list(works))
            self.committed.extend(works)
            return [w * 10 for w in works]
        finally:
            with self._lock:
                self.active -= 1


def run_concurrently(commit: GroupCommit, works: list[int]) -> tuple[dict, dict]:
    results, errors = {}, {}
    start = threading.Barrier(len(works))

    def call(work: int) -> None:
        start.wait()
        try:
            results[work] = commit.submit(work)
        except Exception as error:
            errors[work] = error

    threads = [threading.Thread(target=call, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a caller was left waiting"
    return results, errors


def test_a_lone_caller_writes_its_own_work():
    ledger = Ledger(seconds=0)
    assert GroupCommit(ledger.write_group).submit(4) == 40
    assert ledger.groups == [[4]]


def test_concurrent_callers_share_transactions_and_get_their_own_results():
    ledger = Ledger()
    results, errors = run_concurrently(GroupCommit(ledger.write_group), list(range(1, 41)))
    assert not errors
    assert results == {w: w * 10 for w in range(1, 41)}
    assert sorted(ledger.committed) == list(range(1, 41))
    assert len(ledger.groups) < 40 and max(len(g) for g in ledger.groups) > 1
    assert ledger.overlaps == 0  # one writer at a time


def test_a_failing_group_is_retried_one_by_one_so_only_the_culprit_fails():
    ledger = Ledger()
    works = [1, 2, 3, -4, 5, 6, 7, 8]
    results, errors = run_concurrently(GroupCommit(ledger.write_group), works)
    assert set(errors) == {-4} and isinstance(errors[-4], ValueError)
    assert results == {w: w * 10 for w in works if w > 0}
    assert sorted(ledger.committed) == [1, 2, 3, 5, 6, 7, 8]


def test_after_a_failure_the_next_caller_writes_again():
    ledger = Ledger(seconds=0)
    commit = GroupCommit(ledger.write_group)
    try:
        commit.submit(-1)
    except ValueError:
        pass
    assert commit.submit(2) == 20
