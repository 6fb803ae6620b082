"""The diagnosis' scheduled job: every store, once a day, in the analytics worker (autopilot/worker.py).

Importing this module registers it; the worker imports the modules named in its JOB_MODULES.
"""

from __future__ import annotations

from datetime import datetime

from autopilot.diagnosis.engine import DiagnosisResult, diagnose_all_stores
from autopilot.worker import register_job
from commands.bus import CommandBus

DAILY_S = 24 * 3600
JOB_NAME = "diagnosis.daily"


def daily_diagnosis(warehouse, app, now: datetime) -> list[DiagnosisResult]:
    """(warehouse, TrafiApplication, now) → every store with recent visitors diagnosed and its run recorded."""
    with warehouse.reading() as cur:
        return diagnose_all_stores(cur, CommandBus(app), now)


JOB = register_job(JOB_NAME, DAILY_S, daily_diagnosis)
