"""Autopilot II (issue 8): flag evaluation, the storefront flags endpoint, one decider tick, a PyMC refit.

    PYTHONPATH=. python bench/autopilot.py            # about 3–4 minutes, ~6 GB at peak (the 10 M warehouse)
    PYTHONPATH=. python bench/autopilot.py --quick    # dry run with small sizes, under a minute
    PYTHONPATH=. python bench/autopilot.py --help

Options (defaults in brackets; --quick shrinks every size and round):
  --visitors N        distinct visitors per in-process evaluation round [200000]
  --flags N           live flags per store, in process and over HTTP [5]
  --rounds N          rounds of the in-process evaluation, each beside its baseline [5]
  --seconds S         measured time per route (flags and baseline), split in rounds of ~2.5 s [10]
  --clients N         closed-loop HTTP clients (aiohttp, keep-alive) [8]
  --new-share F       share of flags requests from a never-seen visitor (the rest repeat one) [0.5]
  --feed-warehouse    keep embedded mode's warehouse feeder in the server (default: off, as bench/ingest.py)
  --changesets N      active ChangeSets of the decider tick [100]
  --exposures N       exposures in the tick's warehouse [10000000]
  --groups N          groups of the hierarchical refit [100]
  --refits N          timed warm refits [3]
  --skip LIST         comma-separated parts not to run: flags, endpoint, decider, pymc

Progress goes to stderr; stdout is ONE JSON line. Every figure stands beside a baseline measured in the
same run, and their ratio.

1. `flag_evals_per_s`: in-process `FlagEvaluator(rules).evaluate(store_id, visitor_id)` with `--flags`
   live rules (different rollout/holdout splits) and a no-op `on_first_exposure` recorder, over
   `--visitors` distinct visitors per round (every call reports first exposures and churns the
   100 k-key LRU, the storefront's worst case). ONE EVALUATION = ONE FLAG FOR ONE VISITOR: the figure is
   flags × visitors per second; `visitor_evals_per_s` is the same calls counted per visitor (one
   `evaluate`, all flags). Baseline, rounds interleaved: a bare `hashlib.sha256(...).digest()` of the same
   key material, i.e. the flags' keys plus the global-holdout key per visitor — the floor of the work.
   Also `flag_evals_per_s_no_recorder` (no exposure callback: pure assignment).
2. `flags_endpoint_p95_ms`: GET /v1/storefront/flags?visitor_id=… with a publishable key, over HTTP,
   app under uvicorn (uvloop, httptools) in a subprocess, embedded SQLite (event store, read model and
   telemetry log in a fresh data directory). The store's `--flags` ChangeSets are created, submitted and
   approved through the admin API (POST /v1/admin/autopilot/changesets …/submit …/approve) and are ACTIVE.
   `--new-share` of the requests come from a new visitor, so the server appends first exposures to the
   telemetry log (durably) in the request; the rest repeat an earlier visitor. Baseline, rounds
   interleaved, same server and clients: GET /v1/noop (as bench/api_load.py). p50/p95/p99 over every
   request; also one round at a single client (unloaded latency). The exposures found in the telemetry log
   afterwards are counted.
3. `decider_tick_ms_100cs_10m` = the warehouse pass + `decide` for every ChangeSet. The pass is
   bench/experiment_stats.py's `measure` (its figure `decider_stats_ms_100cs_10m`, best of 3; baseline a
   bare GROUP BY count over the exposures); on its ExperimentStats this script builds each ChangeSet's
   TickInputs with `autopilot.decider_job.tick_inputs` (Bayesian proof plan, 14 days of runtime, so
   every rule up to "prove" is evaluated) and times `decide` over all of them, best of 5. The reads of the
   read model, the guardrail facts and the recording of decisions (one command per ChangeSet) are not in
   the figure.
4. `pymc_refit_s`: `HierarchicalLift().compile()` once (`pymc_compile_s`), one untimed refit, then
   `--refits` warm refits on `--groups` synthetic groups: best and median. Baseline: the closed-form
   DerSimonian–Laird random-effects estimate with the normal–normal shrinkage of every group
   (`hierarchical._start` + `shrink_groups` at the point estimate), numpy, best of 50.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import logger, merge_runs, pctl, r  # noqa: E402

log = logger("autopilot")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "bench-autopilot-secret"
STORE_ID = "00000000-0000-5000-8000-000000000001"
ROUND_SECONDS = 2.5
# (rollout %, holdout %) of the live flags, cycled: ramps at different stages
SPLITS = [(50.0, 50.0), (10.0, 50.0), (25.0, 25.0), (5.0, 10.0), (1.0, 5.0)]


# --- 1. in-process flag evaluation -------------------------------------------------------------------


def _rules(flags: int):
    from autopilot.flags.assignment import FlagRule

    return {f"bench.flag_{i}": FlagRule(f"bench.flag_{i}", *SPLITS[i % len(SPLITS)]) for i in range(flags)}


def measure_flag_evals(visitors: int, flags: int, rounds: int) -> dict:
    from autopilot.flags.assignment import GLOBAL_HOLDOUT_KEY, KEY_SEPARATOR, FlagEvaluator

    rules = _rules(flags)
    recorded = [0]

    def record(exposure) -> None:  # the no-op recorder: counts, stores nothing
        recorded[0] += 1

    keys = [*rules, GLOBAL_HOLDOUT_KEY]
    sha256 = hashlib.sha256

    def evaluator_round(ids: list[str], on_first_exposure) -> float:
        evaluator = FlagEvaluator(rules, on_first_exposure=on_first_exposure)
        evaluate = evaluator.evaluate
        started = time.perf_counter()
        for visitor in ids:
            evaluate(STORE_ID, visitor)
        return time.perf_counter() - started

    def baseline_round(ids: list[str]) -> float:
        prefixes = [f"{STORE_ID}{KEY_SEPARATOR}{key}{KEY_SEPARATOR}" for key in keys]
        started = time.perf_counter()
        for visitor in ids:
            for prefix in prefixes:
                sha256((prefix + visitor).encode()).digest()
        return time.perf_counter() - started

    evaluator_round([f"warm-{i}" for i in range(10_000)], record)  # warm-up
    with_recorder, bare, baseline = [], [], []
    for n in range(rounds):
        ids = [f"v-{n}-{uuid.uuid4().hex[:12]}" for _ in range(visitors)]  # a storefront-like visitor id
        baseline.append(baseline_round(ids))
        with_recorder.append(evaluator_round(ids, record))
        bare.append(evaluator_round(ids, None))
        log(f"flags round {n + 1}: {visitors * flags / with_recorder[-1]:,.0f} flag evals/s, "
            f"baseline {visitors * flags / baseline[-1]:,.0f}/s")
    per_visitor = visitors / statistics.median(with_recorder)
    baseline_per_visitor = visitors / statistics.median(baseline)
    return {
        "flag_evals_per_s": round(per_visitor * flags),
        "visitor_evals_per_s": round(per_visitor),
        "flag_evals_per_s_no_recorder": round(visitors * flags / statistics.median(bare)),
        "flag_evals_baseline_sha256_per_s": round(baseline_per_visitor * flags),
        "flag_evals_ratio_to_sha256": r(per_visitor / baseline_per_visitor, 3),
        "flag_evals_rounds_per_s": [round(visitors * flags / t) for t in with_recorder],
        "flag_eval_us_per_visitor": r(1e6 / per_visitor, 2),
        "flag_evals_first_exposures_recorded": recorded[0],
        "flags": flags, "visitors_per_round": visitors,
    }


# --- 2. the storefront flags endpoint over HTTP ----------------------------------------------------


def _contract(flag_key: str, rollout: float, holdout: float) -> dict:
    # as tests/integration/test_changesets_api.py `_contract`: no price change, so no guardrail blocks it
    return {
        "hypothesis": {"problem": "bench", "expected_outcome": "bench", "confidence": "low",
                       "data_evidence": [{"metric": "conversion", "value": 0.01}]},
        "action_plan": {"type": "feature_flag", "target_segment": "all visitors",
                        "implementation": {"flag_key": flag_key, "changes": []},
                        "rollout_strategy": "holdout", "rollout_percentage": rollout},
        "guardrails": {"profit_floor_min_margin_pct": 10, "stock_threshold": 0, "risk_level": "high"},
        "rollback_plan": {"procedure": "flag off", "estimated_rollback_time_minutes": 1},
        "proof_plan": {"primary_metrics": ["gross_profit_per_visitor"], "holdout_pct": holdout, "method": "bayesian",
                       "minimum_sample_size": 1000, "measurement_window_days": 14, "significance_threshold": 0.05},
    }


def _seed_store(data_dir: str):
    from api.bootstrap import bootstrap_store
    from commands.application import TrafiApplication
    from commands.bus import CommandBus
    from commands.config import EventStoreConfig

    app = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=os.path.join(data_dir, "events.sqlite")))
    try:
        return bootstrap_store(CommandBus(app), SECRET.encode(), slug="bench-autopilot", name="Bench",
                               owner_email="owner@bench.example", owner_password="bench-password-1")
    finally:
        app.close()


def _environment(data_dir: str, feed_warehouse: bool) -> dict[str, str]:
    env = {
        **os.environ, "PYTHONPATH": ROOT, "TRAFI_DATA_DIR": data_dir, "TRAFI_EVENT_STORE": "sqlite",
        "TRAFI_SQLITE_PATH": os.path.join(data_dir, "events.sqlite"), "TRAFI_SECRET_KEY": SECRET,
        "TRAFI_RATE_STOREFRONT": "1000000/1000000", "TRAFI_RATE_ADMIN": "1000000/1000000",
        "TRAFI_RATE_ANONYMOUS": "1000000/1000000", "TRAFI_LOG_LEVEL": "WARNING",
    }
    if not feed_warehouse:  # the scaled shape: an analytics worker elsewhere owns the warehouse
        env["TRAFI_ANALYTICS_URL"] = "http://127.0.0.1:9"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(predicate, what: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if predicate():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _create_changesets(base: str, keys, flags: int, server: subprocess.Popen) -> dict[str, list[float]]:
    """The store's ACTIVE ChangeSets, through the admin API; returns what they serve: flag → [rollout, holdout]."""
    import httpx

    admin = {"Authorization": f"Bearer {keys.secret_key}"}
    storefront = {"Authorization": f"Bearer {keys.publishable_key}"}
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(flags):
            flag_key = f"bench.flag_{i}"
            rollout, holdout = SPLITS[i % len(SPLITS)]
            created = client.post("/v1/admin/autopilot/changesets", headers=admin,
                                  json={"contract": _contract(flag_key, rollout, holdout)})
            assert created.status_code == 201, created.text
            changeset_id = created.json()["changeset_id"]
            _wait_until(lambda: client.get(f"/v1/admin/autopilot/changesets/{changeset_id}",
                                           headers=admin).status_code == 200, "the draft", server)
            submitted = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/submit", headers=admin)
            assert submitted.status_code == 200, submitted.text
            approved = client.post(f"/v1/admin/autopilot/changesets/{changeset_id}/approve", headers=admin,
                                   json={"notes": "bench"})
            assert approved.status_code == 200 and approved.json()["state"] == "ACTIVE", approved.text
        # the read model projected, and the storefront's rules refreshed (at most every second)
        _wait_until(lambda: len(client.get("/v1/storefront/flags", params={"visitor_id": "probe"},
                                           headers=storefront).json()["flags"]) == flags,
                    "the live flags", server)
        served = {}
        for changeset in client.get("/v1/admin/autopilot/changesets", headers=admin).json():
            served[changeset["flag_key"]] = [changeset["rollout_pct"], changeset["holdout_pct"]]
        log("live flags (rollout %, holdout %):", served)
    return served


async def _closed_loop(session, make_url, headers: dict, clients: int, seconds: float, check=None) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            url = make_url()
            started = time.perf_counter()
            try:
                async with session.get(url, headers=headers) as response:
                    body = await response.read()
                    status = response.status
            except Exception:  # a refused or broken connection is counted, not fatal
                status, body = 599, b""
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            if check is not None and status == 200:
                check(body)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return {"requests": len(latencies), "seconds": time.perf_counter() - started, "latencies_ms": latencies,
            "statuses": statuses}


async def _drive(base: str, publishable_key: str, flags: int, seconds: float, clients: int, new_share: float) -> dict:
    import aiohttp

    headers = {"Authorization": f"Bearer {publishable_key}"}
    rng = random.Random(8)
    prefix = uuid.uuid4().hex[:10]
    seen: list[str] = []
    wrong = [0]

    def flags_url() -> str:
        if not seen or rng.random() < new_share:
            visitor = f"v-{prefix}-{len(seen)}"
            seen.append(visitor)
        else:
            visitor = seen[rng.randrange(len(seen))]
        return f"{base}/v1/storefront/flags?visitor_id={visitor}"

    def check(body: bytes) -> None:
        if len(json.loads(body)["flags"]) != flags:
            wrong[0] += 1

    def noop_url() -> str:
        return f"{base}/v1/noop"

    rounds = max(1, round(seconds / ROUND_SECONDS))
    flag_runs, noop_runs = [], []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await _closed_loop(session, noop_url, {}, clients, 1.0)  # warm-up: connections, caches
        await _closed_loop(session, flags_url, headers, clients, 1.0, check)
        for _ in range(rounds):
            noop_runs.append(await _closed_loop(session, noop_url, {}, clients, seconds / rounds))
            flag_runs.append(await _closed_loop(session, flags_url, headers, clients, seconds / rounds, check))
        single_noop = await _closed_loop(session, noop_url, {}, 1, min(ROUND_SECONDS, seconds / rounds))
        single_flags = await _closed_loop(session, flags_url, headers, 1, min(ROUND_SECONDS, seconds / rounds), check)
    return {"flags": merge_runs(flag_runs), "noop": merge_runs(noop_runs), "single_flags": single_flags,
            "single_noop": single_noop, "rounds": rounds, "visitors": len(seen), "wrong_flag_count": wrong[0],
            "flags_rounds_rps": [x["requests"] / x["seconds"] for x in flag_runs]}


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _exposures_in_log(data_dir: str) -> int:
    from autopilot.telemetry.log import TELEMETRY_COLUMNS, TelemetryLog
    from commands.config import EventStoreConfig

    telemetry = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=os.path.join(data_dir, "events.sqlite")))
    column = TELEMETRY_COLUMNS.index("kind")
    count = position = 0
    try:
        while rows := telemetry.read(position, 50_000):
            count += sum(1 for row in rows if row[column] == "exposure")
            position = rows[-1][0]
    finally:
        telemetry.close()
    return count


def measure_endpoint(seconds: float, clients: int, flags: int, new_share: float, feed_warehouse: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="trafi-bench-autopilot-") as data_dir:
        keys = _seed_store(data_dir)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning"],
            cwd=ROOT, env=_environment(data_dir, feed_warehouse))
        try:
            import httpx

            _wait_until(lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200, "the server", server)
            served = _create_changesets(base, keys, flags, server)
            log(f"flags endpoint: {clients} clients, {seconds:g} s per route")
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runs = runner.run(_drive(base, keys.publishable_key, flags, seconds, clients, new_share))
        finally:
            server.terminate()
            server.wait(timeout=30)
        exposures = _exposures_in_log(data_dir)
    flags_run, noop_run = runs["flags"], runs["noop"]
    log("statuses: flags", flags_run["statuses"], "noop", noop_run["statuses"])
    bad = {s: n for run in (flags_run, noop_run, runs["single_flags"], runs["single_noop"])
           for s, n in run["statuses"].items() if s != 200}
    if bad or runs["wrong_flag_count"]:
        raise AssertionError(f"unexpected answers: {bad}, {runs['wrong_flag_count']} with a wrong flag count")
    flags_ms, noop_ms = flags_run["latencies_ms"], noop_run["latencies_ms"]
    p95, noop_p95 = pctl(flags_ms, 95), pctl(noop_ms, 95)
    return {
        "flags_endpoint_p95_ms": r(p95),
        "flags_endpoint_p50_ms": r(pctl(flags_ms, 50)), "flags_endpoint_p99_ms": r(pctl(flags_ms, 99)),
        "flags_endpoint_rps": r(flags_run["requests"] / flags_run["seconds"], 1),
        "flags_endpoint_rounds_rps": [r(x, 1) for x in runs["flags_rounds_rps"]],
        "noop_p95_ms": r(noop_p95), "noop_p50_ms": r(pctl(noop_ms, 50)), "noop_p99_ms": r(pctl(noop_ms, 99)),
        "noop_rps": r(noop_run["requests"] / noop_run["seconds"], 1),
        "flags_endpoint_p95_ratio_to_noop": r(p95 / noop_p95, 2),
        "flags_endpoint_single_client_p50_ms": r(pctl(runs["single_flags"]["latencies_ms"], 50)),
        "flags_endpoint_single_client_p95_ms": r(pctl(runs["single_flags"]["latencies_ms"], 95)),
        "noop_single_client_p95_ms": r(pctl(runs["single_noop"]["latencies_ms"], 95)),
        "flags_endpoint_requests": flags_run["requests"], "flags_endpoint_distinct_visitors": runs["visitors"],
        "exposures_in_telemetry_log": exposures,
        "endpoint_clients": clients, "endpoint_rounds": runs["rounds"], "endpoint_new_visitor_share": new_share,
        "warehouse_fed_in_server": feed_warehouse, "endpoint_flags_rollout_holdout_pct": served,
    }


# --- 3. one decider tick -----------------------------------------------------------------------------


def measure_decider(changesets: int, exposures: int) -> dict:
    from autopilot.decider import decide
    from autopilot.decider_job import TickSettings, tick_inputs
    from bench import experiment_stats as es

    kept: dict = {}
    figures = es.measure(changesets=changesets, exposures=exposures, seed=7,
                         on_result=lambda experiments, stats: kept.update(experiments=experiments, stats=stats))
    contract = _contract("bench.flag", 50.0, 50.0)
    settings = TickSettings()
    started_at = es.END - es.WINDOW
    inputs = []
    for window in kept["experiments"]:
        stats = kept["stats"][(window.store_id, window.flag_key)]
        detail = SimpleNamespace(contract=contract, rollout_pct=50.0, holdout_pct=50.0, started_at=started_at)
        inputs.append(tick_inputs(detail, stats, [], es.END, settings))
    actions: dict[str, int] = {}
    for decision in map(decide, inputs):  # warm-up, and what it decided
        actions[decision.rule] = actions.get(decision.rule, 0) + 1
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for one in inputs:
            decide(one)
        best = min(best, time.perf_counter() - started)
    decide_ms = best * 1000
    pass_ms = figures["decider_stats_ms_100cs_10m"]
    return {
        "decider_tick_ms_100cs_10m": r(pass_ms + decide_ms, 1),
        "decider_pass_ms": pass_ms, "decider_decide_ms": r(decide_ms, 2),
        "decider_decide_us_per_changeset": r(decide_ms * 1000 / len(inputs), 1),
        "decider_pass_baseline_group_by_ms": figures["baseline_ms"],
        "decider_pass_ratio_to_baseline": figures["ratio"],
        "decider_changesets": figures["changesets"], "decider_exposures": figures["exposures"],
        "decider_orders": figures["orders"], "decider_warehouse_build_s": figures["build_s"],
        "decider_rules_fired": actions,
    }


# --- 4. the hierarchical refit -----------------------------------------------------------------------


def _dersimonian_laird(est, se):
    """The closed-form random-effects estimate and every group's shrinkage at the point estimate."""
    import numpy as np

    from autopilot.stats.bayes import SKEPTICAL_LIFT_PRIOR_SD
    from autopilot.stats.hierarchical import _start, shrink_groups

    mu, _, tau = _start(est, se, SKEPTICAL_LIFT_PRIOR_SD)
    mean, sd, prob = shrink_groups(est, se, np.array([mu]), np.array([tau]))
    return mu, tau, mean


def measure_refit(groups: int, refits: int) -> dict:
    import numpy as np

    from autopilot.stats.hierarchical import HierarchicalLift

    rng = np.random.default_rng(11)
    se = rng.uniform(0.01, 0.06, groups)
    true = rng.normal(0.02, 0.03, groups)
    est = true + rng.normal(0, se)
    started = time.perf_counter()
    model = HierarchicalLift().compile()
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    model.refit(est, standard_errors=se)
    first_s = time.perf_counter() - started
    times, result = [], None
    for _ in range(refits):
        started = time.perf_counter()
        result = model.refit(est, standard_errors=se)
        times.append(time.perf_counter() - started)
    log(f"refits: {[round(t, 3) for t in times]} s (compile {compile_s:.1f} s)")
    best_dl = float("inf")
    for _ in range(50):
        started = time.perf_counter()
        mu_dl, tau_dl, _ = _dersimonian_laird(est, se)
        best_dl = min(best_dl, time.perf_counter() - started)
    refit_s = min(times)
    return {
        "pymc_refit_s": r(refit_s, 3), "pymc_refit_median_s": r(statistics.median(times), 3),
        "pymc_refits_s": [r(t, 3) for t in times], "pymc_first_refit_s": r(first_s, 3),
        "pymc_compile_s": r(compile_s, 2), "pymc_groups": groups, "pymc_steps": model.steps,
        "pymc_converged": result.converged,
        "dersimonian_laird_ms": r(best_dl * 1000, 3), "pymc_refit_ratio_to_dersimonian_laird": round(refit_s / best_dl),
        "pymc_mu_tau": [r(result.mu_mean, 4), r(result.tau_mean, 4)], "dersimonian_laird_mu_tau": [r(mu_dl, 4), r(tau_dl, 4)],
    }


# --- main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a dry run")
    parser.add_argument("--visitors", type=int, default=200_000)
    parser.add_argument("--flags", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--new-share", type=float, default=0.5)
    parser.add_argument("--feed-warehouse", action="store_true")
    parser.add_argument("--changesets", type=int, default=100)
    parser.add_argument("--exposures", type=int, default=10_000_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--refits", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: flags, endpoint, decider, pymc")
    args = parser.parse_args()
    if args.quick:
        args.visitors, args.rounds, args.seconds, args.exposures = 20_000, 2, 2.5, 200_000
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    out: dict = {}
    if "flags" not in skip:
        log(f"in-process evaluation: {args.visitors} visitors × {args.flags} flags, {args.rounds} rounds")
        out.update(measure_flag_evals(args.visitors, args.flags, args.rounds))
    if "pymc" not in skip:
        log(f"hierarchical refit: {args.groups} groups")
        out.update(measure_refit(args.groups, args.refits))
    if "endpoint" not in skip:
        out.update(measure_endpoint(args.seconds, args.clients, args.flags, args.new_share, args.feed_warehouse))
    if "decider" not in skip:
        log(f"decider tick: {args.changesets} ChangeSets, {args.exposures} exposures")
        out.update(measure_decider(args.changesets, args.exposures))
    out.update({"quick": args.quick, "cpus": os.cpu_count()})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
