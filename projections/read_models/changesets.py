"""ChangeSet read model: every ChangeSet of a store with its state, and its audit trail.

Serves the admin API (list, detail, audit export) and the storefront's flag evaluation
(queries/flags.py reads the flag key, rollout and holdout of live ChangeSets). Every ChangeSet
event carries the same audit fields — actor, previous and new state, reason, metadata, at — so
each handler writes one audit row and then what that event changes on the ChangeSet's row.
"""

from __future__ import annotations

import json

from domain.changeset import ChangeSet
from projections.projection import Projection, handles


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class ChangeSetList(Projection):
    name = "changesets"
    tables = ("rm_changesets", "rm_changeset_audit")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_changesets ("
            "changeset_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, state TEXT NOT NULL, "
            "approval_status TEXT NOT NULL, action_type TEXT NOT NULL, flag_key TEXT, workflow_id TEXT, "
            "rollout_pct DOUBLE PRECISION NOT NULL, holdout_pct DOUBLE PRECISION NOT NULL, risk_level TEXT NOT NULL, "
            "problem TEXT NOT NULL, recommendation_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "expires_at TEXT, started_at TEXT, ended_at TEXT, contract TEXT NOT NULL, evidence TEXT, "
            "approval TEXT NOT NULL, latest_metrics TEXT NOT NULL, proof_result TEXT, latest_decision TEXT, "
            "second_opinion TEXT, version BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_changesets_store_state ON rm_changesets (store_id, state)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_changeset_audit ("
            "changeset_id TEXT NOT NULL, store_id TEXT NOT NULL, position BIGINT NOT NULL, at TEXT NOT NULL, "
            "actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL, action TEXT NOT NULL, previous_state TEXT, "
            "new_state TEXT NOT NULL, reason TEXT, metadata TEXT NOT NULL, PRIMARY KEY (changeset_id, position))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_changeset_audit_store ON rm_changeset_audit (store_id, at)")

    # --- shared --------------------------------------------------------------------------------
    def _audit(self, tx, event, action: str, store_id: str | None = None) -> None:
        values = (str(event.originator_id), event.originator_version, event.at, event.actor["kind"],
                  event.actor["id"], action, getattr(event, "previous_state", None),
                  getattr(event, "new_state", "DRAFT"), event.reason, _json(getattr(event, "metadata", {}) or {}))
        if store_id is not None:
            tx.execute("INSERT INTO rm_changeset_audit (changeset_id, position, at, actor_kind, actor_id, action, "
                       "previous_state, new_state, reason, metadata, store_id) VALUES "
                       "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", (*values, store_id))
            return
        # later events do not name the store: it is on the ChangeSet's row
        tx.execute("INSERT INTO rm_changeset_audit (changeset_id, position, at, actor_kind, actor_id, action, "
                   "previous_state, new_state, reason, metadata, store_id) SELECT %s, %s, %s, %s, %s, %s, %s, %s, "
                   "%s, %s, store_id FROM rm_changesets WHERE changeset_id = %s", (*values, str(event.originator_id)))

    def _transition(self, tx, event, action: str, **changes) -> None:
        self._audit(tx, event, action)
        tx.update("rm_changesets", {"changeset_id": str(event.originator_id)}, set={
            "state": event.new_state, "updated_at": event.at, "version": event.originator_version, **changes,
        })

    # --- handlers, one per event ---------------------------------------------------------------
    @handles(ChangeSet.Created)
    def drafted(self, tx, event) -> None:
        contract = event.contract
        plan = contract["action_plan"]
        tx.insert("rm_changesets", {
            "changeset_id": str(event.originator_id), "store_id": str(event.store_id), "state": "DRAFT",
            "approval_status": "pending", "action_type": plan["type"],
            "flag_key": plan["implementation"].get("flag_key"), "workflow_id": plan["implementation"].get("workflow_id"),
            "rollout_pct": float(plan["rollout_percentage"]), "holdout_pct": float(contract["proof_plan"]["holdout_pct"]),
            "risk_level": contract["guardrails"]["risk_level"], "problem": contract["hypothesis"]["problem"],
            "recommendation_id": event.recommendation_id, "created_at": event.at, "updated_at": event.at,
            "expires_at": None, "started_at": None, "ended_at": None, "contract": _json(contract),
            "evidence": None if event.evidence is None else _json(event.evidence),
            "approval": _json({"status": "pending"}), "latest_metrics": "{}", "proof_result": None,
            "latest_decision": None, "second_opinion": None, "version": event.originator_version,
        })
        self._audit(tx, event, "drafted", store_id=str(event.store_id))

    @handles(ChangeSet.SubmittedForApproval)
    def submitted(self, tx, event) -> None:
        self._transition(tx, event, "submitted_for_approval", expires_at=event.expires_at,
                         approval=_json({"status": "pending", "expires_at": event.expires_at}))

    @handles(ChangeSet.Approved)
    def approved(self, tx, event) -> None:
        approval = {"status": "approved", "by": event.actor, "at": event.at, "notes": event.reason,
                    "forced": event.metadata.get("forced", False),
                    "guardrail_confirmation": event.metadata.get("guardrail_confirmation"),
                    "violations": event.metadata.get("violations", [])}
        self._transition(tx, event, "approved", approval_status="approved", approval=_json(approval))

    @handles(ChangeSet.Rejected)
    def rejected(self, tx, event) -> None:
        approval = {"status": "rejected", "by": event.actor, "at": event.at, "notes": event.reason}
        self._transition(tx, event, "rejected", approval_status="rejected", approval=_json(approval))

    @handles(ChangeSet.Expired)
    def expired(self, tx, event) -> None:
        self._transition(tx, event, "expired", approval_status="expired",
                         approval=_json({"status": "expired", "expires_at": event.metadata.get("expires_at")}))

    @handles(ChangeSet.Activated)
    def activated(self, tx, event) -> None:
        self._transition(tx, event, "activated", started_at=event.at)

    @handles(ChangeSet.MeasuringStarted)
    def measuring(self, tx, event) -> None:
        self._transition(tx, event, "measuring_started")

    @handles(ChangeSet.Proven)
    def proven(self, tx, event) -> None:
        self._transition(tx, event, "proven", ended_at=event.at, proof_result=_json(event.metadata))

    @handles(ChangeSet.RolledBack)
    def rolled_back(self, tx, event) -> None:
        self._transition(tx, event, "rolled_back", ended_at=event.at)

    @handles(ChangeSet.MadePermanent)
    def made_permanent(self, tx, event) -> None:
        self._transition(tx, event, "made_permanent")

    @handles(ChangeSet.DecisionRecorded)
    def decision(self, tx, event) -> None:
        decision = {"action": event.metadata["action"], "rule": event.metadata["rule"], "reason": event.reason,
                    "numbers": event.metadata["numbers"], "at": event.at}
        metrics = {k: v for k, v in event.metadata["numbers"].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._transition(tx, event, "decision_recorded", latest_decision=_json(decision), latest_metrics=_json(metrics))

    @handles(ChangeSet.SecondOpinionRecorded)
    def second_opinion(self, tx, event) -> None:
        self._transition(tx, event, "second_opinion_recorded", second_opinion=_json({**event.metadata, "at": event.at}))
