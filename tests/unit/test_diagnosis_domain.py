"""StoreDiagnosis: at most 5 active recommendations, best first; retired when superseded, unsupported
or dismissed; a dismissed one rests for 30 days; history replays to the same state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.diagnosis import MAX_ACTIVE, StoreDiagnosis, diagnosis_id, plan
from domain.errors import Conflict, InvalidValue, NotFound

AT = datetime(2026, 4, 1, 3, tzinfo=timezone.utc)


def candidate(key: str, score: float) -> dict:
    return {"key": key, "score": score, "title": key.split(":")[0], "evidence": {"finding": {}}}


def run(n: int) -> dict:
    return {"run_id": f"run-{n}", "findings": []}


def active_keys(diagnosis: StoreDiagnosis) -> list[str]:
    return [r["key"] for r in diagnosis.active_recommendations]


def test_one_diagnosis_per_store():
    store = uuid4()
    assert StoreDiagnosis.start(store).id == diagnosis_id(store) == diagnosis_id(store)
    assert diagnosis_id(store) != diagnosis_id(uuid4())


def test_a_run_issues_at_most_five_best_first():
    diagnosis = StoreDiagnosis.start(uuid4())
    candidates = [candidate(f"p{i}:store", score) for i, score in enumerate([5, 90, 40, 70, 10, 60, 20])]
    changes = diagnosis.record_run(run=run(1), candidates=candidates, supported=[], at=AT)
    assert len(changes.issue) == MAX_ACTIVE
    assert active_keys(diagnosis) == ["p1:store", "p3:store", "p5:store", "p2:store", "p6:store"]
    assert all(r["run_id"] == "run-1" and r["issued_at"] == AT.isoformat() for r in diagnosis.active_recommendations)


def test_the_same_key_twice_in_a_run_is_one_recommendation():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate("a:store", 3), candidate("a:store", 9)], supported=[], at=AT)
    assert [r["score"] for r in diagnosis.active_recommendations] == [9]


def test_a_later_run_keeps_what_still_holds_and_retires_the_rest_with_the_reason():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate(k, s) for k, s in
                                                   [("a:store", 50), ("b:store", 40), ("c:store", 30), ("d:store", 20),
                                                    ("e:store", 10)]], supported=[], at=AT)
    ids = {r["key"]: r["recommendation_id"] for r in diagnosis.active_recommendations}
    # Run 2: a is found again; b is not found but its evidence still holds; c is gone; f is new and better than e.
    changes = diagnosis.record_run(
        run=run(2), candidates=[candidate("a:store", 55), candidate("f:store", 35)],
        supported=[ids["b:store"], ids["d:store"], ids["e:store"]], at=AT + timedelta(days=1),
    )
    assert dict(changes.retire) == {ids["c:store"]: "no_longer_supported"}
    assert active_keys(diagnosis) == ["a:store", "b:store", "f:store", "d:store", "e:store"]
    assert diagnosis.active[ids["a:store"]]["run_id"] == "run-1"  # kept as issued: same id, first evidence
    # Run 3: a better one arrives while five are active and supported: the weakest is superseded.
    f_id = next(r["recommendation_id"] for r in diagnosis.active_recommendations if r["key"] == "f:store")
    changes = diagnosis.record_run(
        run=run(3), candidates=[candidate("g:store", 100)],
        supported=[ids["a:store"], ids["b:store"], ids["d:store"], ids["e:store"], f_id], at=AT + timedelta(days=2),
    )
    assert dict(changes.retire) == {ids["e:store"]: "superseded"}
    assert active_keys(diagnosis) == ["g:store", "a:store", "b:store", "f:store", "d:store"]


def test_a_dismissed_recommendation_rests_for_thirty_days():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate("a:store", 50)], supported=[], at=AT)
    (rec_id,) = diagnosis.active
    diagnosis.dismiss(rec_id, by="user:1", note="we ship free already", at=AT + timedelta(hours=1))
    assert diagnosis.active == {} and diagnosis.retired == {rec_id: "dismissed"}
    with pytest.raises(Conflict) as refused:
        diagnosis.dismiss(rec_id, by="user:1", note=None, at=AT)
    assert refused.value.code == "recommendation.not_active"
    with pytest.raises(NotFound):
        diagnosis.dismiss(uuid4(), by="user:1", note=None, at=AT)
    diagnosis.record_run(run=run(2), candidates=[candidate("a:store", 50)], supported=[], at=AT + timedelta(days=29))
    assert diagnosis.active == {}
    diagnosis.record_run(run=run(3), candidates=[candidate("a:store", 50)], supported=[], at=AT + timedelta(days=31))
    assert active_keys(diagnosis) == ["a:store"] and rec_id not in diagnosis.active  # a new recommendation, new id


def test_recording_the_same_run_twice_changes_nothing():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate("a:store", 50)], supported=[], at=AT)
    pending = len(diagnosis.pending_events)
    again = diagnosis.record_run(run=run(1), candidates=[candidate("b:store", 80)], supported=[], at=AT)
    assert again.issue == [] and len(diagnosis.pending_events) == pending


@pytest.mark.parametrize("bad_run,bad_candidates", [({}, []), (run(1), [{"score": 1}]), (run(1), [{"key": "a"}])])
def test_malformed_runs_are_refused(bad_run, bad_candidates):
    with pytest.raises(InvalidValue):
        StoreDiagnosis.start(uuid4()).record_run(run=bad_run, candidates=bad_candidates, supported=[], at=AT)


def test_the_aggregate_itself_refuses_a_sixth_active_recommendation():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate(f"k{i}:store", 10 + i) for i in range(5)], supported=[],
                         at=AT)
    with pytest.raises(Conflict) as refused:
        diagnosis._check_room()
    assert refused.value.code == "diagnosis.too_many_recommendations"


def test_history_replays_to_the_same_state():
    diagnosis = StoreDiagnosis.start(uuid4())
    diagnosis.record_run(run=run(1), candidates=[candidate("a:store", 50), candidate("b:store", 20)], supported=[],
                         at=AT)
    diagnosis.dismiss(next(iter(diagnosis.active)), by="user:1", note=None, at=AT)
    events = diagnosis.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed.active == diagnosis.active and replayed.retired == diagnosis.retired
    assert replayed.dismissed == diagnosis.dismissed and replayed.last_run == diagnosis.last_run
    assert [type(e).TOPIC for e in events] == [
        "trafi.diagnosis.created.v1", "trafi.diagnosis.run_completed.v1", "trafi.diagnosis.recommendation_issued.v1",
        "trafi.diagnosis.recommendation_issued.v1", "trafi.diagnosis.recommendation_retired.v1",
    ]


def test_plan_is_pure_and_ranks_by_score_then_key():
    decided = plan({}, [candidate("b:store", 5), candidate("a:store", 5)], set(), {}, AT)
    assert [c["key"] for c in decided.issue] == ["a:store", "b:store"] and decided.retire == []
