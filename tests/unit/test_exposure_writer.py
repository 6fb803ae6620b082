"""The exposure writer: off the request path, batched, flushed, restarted after close, and a failed
write makes the evaluator forget the exposures so they are recorded at the next evaluation."""

from __future__ import annotations

import threading

from autopilot.flags.assignment import Assignment, Exposure, FlagEvaluator, FlagRule, Reason, Variant
from autopilot.flags.exposures import ExposureWriter

STORE = "00000000-0000-0000-0000-000000000001"


def _exposure(visitor: str) -> Exposure:
    return Exposure(STORE, "checkout.trust_badges", visitor, Assignment(Variant.TREATMENT, Reason.ROLLOUT, 1))


def test_exposures_are_written_in_batches_and_flush_waits_for_them():
    written, gate = [], threading.Event()

    def record(batch):
        gate.wait(5)
        written.append(list(batch))

    writer = ExposureWriter(record)
    writer.submit([_exposure("a")])
    writer.submit([_exposure("b"), _exposure("c")])  # queued while the first write waits
    assert not writer.flush(timeout=0.1)
    gate.set()
    assert writer.flush(timeout=5)
    assert sum(len(batch) for batch in written) == 3 and len(written) <= 2
    writer.close()
    writer.submit([_exposure("d")])  # used again after close: it writes on
    assert writer.flush(timeout=5) and written[-1] == [_exposure("d")]
    writer.close()


def test_a_failed_write_is_handed_back_so_the_evaluator_reports_it_again():
    rule = FlagRule("checkout.trust_badges", 50, 50)
    evaluator = FlagEvaluator({rule.flag_key: rule}, global_holdout_pct=0)
    visitor = next(v for v in (f"v{i}" for i in range(100))
                   if evaluator.assignments(STORE, v)[rule.flag_key].variant is not Variant.OFF)
    first = evaluator.first_exposures(STORE, visitor, evaluator.assignments(STORE, visitor))
    assert len(first) == 1 and evaluator.first_exposures(STORE, visitor, evaluator.assignments(STORE, visitor)) == []

    def broken(batch):
        raise OSError("disk full")

    writer = ExposureWriter(broken, on_failure=evaluator.forget)
    writer.submit(first)
    assert writer.flush(timeout=5)
    assert evaluator.first_exposures(STORE, visitor, evaluator.assignments(STORE, visitor)) == first
    writer.close()
