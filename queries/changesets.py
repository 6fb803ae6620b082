"""ChangeSets as the admin sees them: list, detail, audit trail (JSON or CSV), and the live ones'
flags for the storefront (read model `changesets`)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from commands.context import StoreContext
from domain.errors import NotFound
from projections.read_models.timestamps import utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel

# A ChangeSet's flag serves its experiment while it runs; once PROVEN or PERMANENT everyone but
# the global holdout gets the change; ROLLED_BACK (and anything else) serves control to all.
EXPERIMENT_STATES = ("ACTIVE", "MEASURING")
SHIPPED_STATES = ("PROVEN", "PERMANENT")

_SUMMARY = ("changeset_id, state, approval_status, action_type, flag_key, workflow_id, rollout_pct, holdout_pct, "
            "risk_level, problem, recommendation_id, created_at, updated_at, expires_at, started_at, ended_at, "
            "latest_decision, version")
_DETAIL = f"{_SUMMARY}, contract, evidence, approval, latest_metrics, proof_result, second_opinion"


class ChangeSetSummary(QueryModel):
    changeset_id: UUID
    state: str
    approval_status: str
    action_type: str
    flag_key: str | None
    workflow_id: str | None
    rollout_pct: float
    holdout_pct: float
    risk_level: str
    problem: str
    recommendation_id: UUID | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None  # the approval request's deadline, once submitted
    started_at: datetime | None
    ended_at: datetime | None
    latest_decision: dict[str, Any] | None  # the decider's last verdict: action, rule, reason, numbers, at
    version: int


class ChangeSetDetail(ChangeSetSummary):
    contract: dict[str, Any]  # hypothesis, action_plan, guardrails, rollback_plan, proof_plan (AUTOPILOT.md §3)
    evidence: dict[str, Any] | None
    approval: dict[str, Any]
    latest_metrics: dict[str, float]
    proof_result: dict[str, Any] | None
    second_opinion: dict[str, Any] | None  # the hierarchical model's shrunken estimate


class AuditEntry(QueryModel):
    changeset_id: UUID
    position: int
    at: datetime
    actor_kind: str  # system | user | autopilot
    actor_id: str
    action: str
    previous_state: str | None
    new_state: str
    reason: str | None
    metadata: dict[str, Any]  # the numbers at that moment


AUDIT_CSV_COLUMNS = ("changeset_id", "position", "at", "actor_kind", "actor_id", "action", "previous_state",
                     "new_state", "reason", "metadata")


class LiveFlag(QueryModel):
    changeset_id: UUID
    flag_key: str
    state: str
    rollout_pct: float
    holdout_pct: float


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _loads(text: str | None):
    return None if text is None else json.loads(text)


def _summary_fields(row: tuple) -> dict[str, Any]:
    (changeset_id, state, approval_status, action_type, flag_key, workflow_id, rollout_pct, holdout_pct, risk_level,
     problem, recommendation_id, created_at, updated_at, expires_at, started_at, ended_at, latest_decision,
     version) = row[:18]
    return dict(changeset_id=changeset_id, state=state, approval_status=approval_status, action_type=action_type,
                flag_key=flag_key, workflow_id=workflow_id, rollout_pct=rollout_pct, holdout_pct=holdout_pct,
                risk_level=risk_level, problem=problem, recommendation_id=recommendation_id,
                created_at=_time(created_at), updated_at=_time(updated_at), expires_at=_time(expires_at),
                started_at=_time(started_at), ended_at=_time(ended_at), latest_decision=_loads(latest_decision),
                version=version)


class ChangeSetQueries(ReadModelQueries):
    projection_name = "changesets"

    def list(self, ctx: StoreContext, *, states: list[str] | None = None, min_position: int | None = None,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> list[ChangeSetSummary]:
        sql = f"SELECT {_SUMMARY} FROM rm_changesets WHERE store_id = %s"
        params: list[Any] = [str(ctx.store_id)]
        if states:
            sql += f" AND state IN ({', '.join(['%s'] * len(states))})"
            params += states
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(sql + " ORDER BY created_at DESC, changeset_id", params).fetchall()
        return [ChangeSetSummary(**_summary_fields(row)) for row in rows]

    def detail(self, ctx: StoreContext, changeset_id: UUID, *, min_position: int | None = None,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> ChangeSetDetail:
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(f"SELECT {_DETAIL} FROM rm_changesets WHERE store_id = %s AND changeset_id = %s",
                             (str(ctx.store_id), str(changeset_id))).fetchone()
        if row is None:
            raise NotFound("changeset", changeset_id)
        contract, evidence, approval, latest_metrics, proof_result, second_opinion = row[18:]
        return ChangeSetDetail(**_summary_fields(row), contract=json.loads(contract), evidence=_loads(evidence),
                               approval=json.loads(approval), latest_metrics=json.loads(latest_metrics),
                               proof_result=_loads(proof_result), second_opinion=_loads(second_opinion))

    def audit(self, ctx: StoreContext, changeset_id: UUID | None = None, *, since: datetime | None = None,
              until: datetime | None = None, min_position: int | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> list[AuditEntry]:
        """The audit trail of one ChangeSet, or of the whole store (oldest first)."""
        sql = ("SELECT changeset_id, position, at, actor_kind, actor_id, action, previous_state, new_state, reason, "
               "metadata FROM rm_changeset_audit WHERE store_id = %s")
        params: list[Any] = [str(ctx.store_id)]
        if changeset_id is not None:
            sql += " AND changeset_id = %s"
            params.append(str(changeset_id))
        with self.reading(min_position, timeout_s) as tx:
            if changeset_id is not None and tx.execute(
                    "SELECT 1 FROM rm_changesets WHERE store_id = %s AND changeset_id = %s",
                    (str(ctx.store_id), str(changeset_id))).fetchone() is None:
                raise NotFound("changeset", changeset_id)
            rows = tx.execute(sql + " ORDER BY at, changeset_id, position", params).fetchall()
        entries = [AuditEntry(changeset_id=r[0], position=r[1], at=_time(r[2]), actor_kind=r[3], actor_id=r[4],
                              action=r[5], previous_state=r[6], new_state=r[7], reason=r[8],
                              metadata=json.loads(r[9])) for r in rows]
        # ISO instants with offsets compare as text only in UTC: filter on the parsed times
        return [e for e in entries if (since is None or e.at >= since) and (until is None or e.at < until)]

    def live_flags(self, store_id: UUID, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[LiveFlag]:
        """Flags of the store's ChangeSets that change something for someone right now."""
        states = EXPERIMENT_STATES + SHIPPED_STATES
        with self.reading(None, timeout_s) as tx:
            rows = tx.execute(
                "SELECT changeset_id, flag_key, state, rollout_pct, holdout_pct FROM rm_changesets "
                f"WHERE store_id = %s AND flag_key IS NOT NULL AND state IN ({', '.join(['%s'] * len(states))}) "
                "ORDER BY started_at, changeset_id", (str(store_id), *states),
            ).fetchall()
        return [LiveFlag(changeset_id=r[0], flag_key=r[1], state=r[2], rollout_pct=r[3], holdout_pct=r[4])
                for r in rows]

    def stores_with(self, states: tuple[str, ...]) -> list[UUID]:
        """Stores having a ChangeSet in one of `states` (what a scheduled job has to visit)."""
        with self.reading(None, DEFAULT_TIMEOUT_S) as tx:
            rows = tx.execute(f"SELECT DISTINCT store_id FROM rm_changesets WHERE state IN "
                              f"({', '.join(['%s'] * len(states))}) ORDER BY store_id", states).fetchall()
        return [UUID(r[0]) for r in rows]

    def pending_past(self, store_id: UUID, moment: datetime) -> list[UUID]:
        """ChangeSets whose approval request has expired by `moment` (the expiry job's work)."""
        with self.reading(None, DEFAULT_TIMEOUT_S) as tx:
            rows = tx.execute("SELECT changeset_id, expires_at FROM rm_changesets WHERE store_id = %s AND "
                              "state = 'PENDING_APPROVAL' AND expires_at IS NOT NULL", (str(store_id),)).fetchall()
        return [UUID(r[0]) for r in rows if datetime.fromisoformat(r[1]) <= moment]


SALES_WINDOW_DAYS = 28


def recent_daily_units(views, store_id: UUID, skus: list[str], now: datetime,
                       days: int = SALES_WINDOW_DAYS) -> dict[str, float]:
    """Units sold per day per SKU over the last `days` days of paid orders (dashboard read model),
    for the days-of-cover guardrail."""
    if not skus:
        return {}
    since = utc_text(now - timedelta(days=days))
    with views.read() as tx:
        rows = tx.execute(
            "SELECT l.sku, SUM(l.quantity) FROM rm_dashboard_lines l JOIN rm_dashboard_orders o "
            "ON o.order_id = l.order_id WHERE o.store_id = %s AND o.paid = 1 AND o.placed_at >= %s "
            f"AND l.sku IN ({', '.join(['%s'] * len(skus))}) GROUP BY l.sku",
            (str(store_id), since, *skus),
        ).fetchall()
    return {sku: float(units) / days for sku, units in rows}


def audit_csv(entries: list[AuditEntry]) -> str:
    """The audit trail as CSV: one row per entry, metadata as a JSON cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_CSV_COLUMNS)
    for e in entries:
        writer.writerow([e.changeset_id, e.position, e.at.isoformat(), e.actor_kind, e.actor_id, e.action,
                         e.previous_state or "", e.new_state, e.reason or "",
                         json.dumps(e.metadata, separators=(",", ":"), sort_keys=True)])
    return out.getvalue()
