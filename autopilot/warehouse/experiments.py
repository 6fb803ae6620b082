"""Per-arm sufficient statistics of every active experiment, in one pass over the warehouse (AUTOPILOT.md §5).

The unit is the visitor. A visitor is in an experiment when their first exposure to its flag
(`exposures`) falls in [window_start, window_end); their measurement window is
[first_exposed_at, window_end), their CUPED covariate window the 14 days before first exposure,
[first_exposed_at − 14 d, first_exposed_at). Per visitor, with the same definitions in both windows:

* conversion      1 when the visitor has a paid order placed in the window, else 0 (a proportion);
* revenue         Σ (revenue − refunded) of their paid orders placed in the window, minor units;
* gross profit    Σ order_profit.gross_profit_minor of those orders;
* margin rate     a ratio metric: numerator gross profit, denominator revenue (ArmStats' d sums);
* checkout errors declined payments (`payment_failures`) in the window; lower is better.

Revenue and gross profit are winsorised — capped from above — at `cap_percentile` of the metric
over the experiment's visitors of both arms together (zeros included; linear interpolation, as
numpy.percentile and DuckDB's quantile_cont), and so are their covariates, with the same cap, and
the margin rate's numerator and denominator. Visitors marked `multiple_variants` are in neither arm:
they are counted apart (Exposures.multiple_variant_units).

Speed: all experiments of a tick are computed together, with one table of windows joined in. The
feeder keeps, in each batch's transaction, the units per arm and the per-visitor sums of the few
exposed visitors with orders or declined payments (experiment_tables.py); an experiment whose window
holds every first exposure of its flag and all its units' activity reads those and never scans
`exposures`. Any other (a window ending in the past, exposures before its start, or tables left
behind by a writer that went around the feeder) is computed from the source tables: the units
counted, and the sums taken over the sparse join of orders/failures with the experiments' units. The
winsorisation caps come from the non-zero values alone plus the number of zeros, which their rank in
the pooled sample follows from. bench/experiment_stats.py measures it.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from autopilot.decider import (
    CHECKOUT_ERRORS,
    CONVERSION,
    GROSS_PROFIT_PER_VISITOR,
    Exposures,
    GuardrailMetric,
    MetricArms,
    hard_guardrails,
)
from autopilot.stats.sufficient import DEFAULT_CAP_PERCENTILE, ArmStats
from autopilot.warehouse import experiment_tables
from autopilot.warehouse.aggregates import VISITOR_KEY

REVENUE_PER_VISITOR = "revenue_per_visitor"
MARGIN_RATE = "margin_rate"
METRICS = (CONVERSION, REVENUE_PER_VISITOR, GROSS_PROFIT_PER_VISITOR, MARGIN_RATE, CHECKOUT_ERRORS)
COVARIATE_DAYS = experiment_tables.COVARIATE_DAYS
ARMS = ("treatment", "control")
_CAPPED = ("revenue", "profit")  # the per-visitor values winsorised (conversion and errors are counts)


@dataclass(frozen=True)
class ExperimentWindow:
    store_id: str
    flag_key: str
    window_start: datetime  # first exposures from here on count (aware, or naive UTC)
    window_end: datetime  # exclusive: the end of every unit's measurement window (e.g. now)
    cap_percentile: float = DEFAULT_CAP_PERCENTILE

    def __post_init__(self) -> None:
        if not 0 <= self.cap_percentile <= 100:
            raise ValueError(f"cap_percentile must be within [0, 100], got {self.cap_percentile}")
        if _naive_utc(self.window_end) <= _naive_utc(self.window_start):
            raise ValueError("window_end must be after window_start")


@dataclass(frozen=True)
class ExperimentStats:
    store_id: str
    flag_key: str
    metrics: Mapping[str, MetricArms]  # METRICS → the arms' sufficient statistics
    exposures: Exposures
    caps: Mapping[str, float | None]  # winsorisation caps in minor units: "revenue", "gross_profit"
    watermark: datetime | None  # the latest event time loaded for the store (UTC, aware)
    hours_since_last_data: float | None  # from the watermark to `now`; None when nothing was ever loaded
    window: ExperimentWindow | None = field(default=None, compare=False)

    def guardrails(self) -> tuple[GuardrailMetric, ...]:
        """The hard guardrails of §7 K1 from these statistics."""
        return hard_guardrails(self.metrics[GROSS_PROFIT_PER_VISITOR], self.metrics[CONVERSION],
                               self.metrics[CHECKOUT_ERRORS])


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


# --- SQL -----------------------------------------------------------------------------------------------

# Units per arm; visitors seen in several variants apart (in whichever variant was first).
_COUNTS = """
    SELECT w.idx, e.variant, e.multiple_variants, count(*) AS units
    FROM exposures e JOIN {windows} w ON e.store_id = w.store_id AND e.flag_key = w.flag_key
    WHERE e.first_exposed_at >= w.window_start AND e.first_exposed_at < w.window_end
      AND e.variant IN ('treatment', 'control')
    GROUP BY ALL"""

# What can make a visitor's values non-zero: paid orders and declined payments of the experiments' stores,
# keyed like exposures.visitor_key. Small: a few % of visitors order.
_ACTIVITY = f"""
    CREATE OR REPLACE TEMP TABLE {{activity}} AS
    SELECT {VISITOR_KEY} AS visitor_key, ts, revenue, profit, orders, failures FROM (
        SELECT store_id, visitor_id, placed_at AS ts, revenue_minor - refunded_minor AS revenue,
               gross_profit_minor AS profit, 1 AS orders, 0 AS failures
        FROM order_profit
        WHERE paid_at IS NOT NULL AND visitor_id IS NOT NULL AND store_id IN (SELECT store_id FROM {{windows}})
        UNION ALL
        SELECT store_id, visitor_id, failed_at, 0, 0, 0, 1
        FROM payment_failures WHERE visitor_id IS NOT NULL AND store_id IN (SELECT store_id FROM {{windows}}))"""

# The exposures of visitors with any activity: a semi-join on one integer key, which DuckDB turns into a
# filter inside the scan of `exposures`, so the rows of the other ~95 % of visitors are never materialised.
# Its own statement: inside a bigger query the optimiser may build the hash table on the exposures' side.
_HITS = """
    CREATE OR REPLACE TEMP TABLE {hits} AS
    SELECT store_id, flag_key, visitor_key, variant, first_exposed_at AS fe
    FROM exposures
    WHERE NOT multiple_variants AND visitor_key IN (SELECT visitor_key FROM {activity})"""

# Per unit with activity in [fe − 14 d, window end): the outcome (y_*) and covariate (x_*) values.
# Every other unit is all zeros, and only counted.
_VISITORS = f"""
    INSERT INTO {{visitors}} BY NAME
    SELECT w.idx, any_value(h.variant) AS variant,
           CAST(coalesce(sum(a.revenue) FILTER (WHERE a.ts >= h.fe), 0) AS DOUBLE) AS y_revenue,
           CAST(coalesce(sum(a.revenue) FILTER (WHERE a.ts < h.fe), 0) AS DOUBLE) AS x_revenue,
           CAST(coalesce(sum(a.profit) FILTER (WHERE a.ts >= h.fe), 0) AS DOUBLE) AS y_profit,
           CAST(coalesce(sum(a.profit) FILTER (WHERE a.ts < h.fe), 0) AS DOUBLE) AS x_profit,
           CAST(coalesce(max(a.orders) FILTER (WHERE a.ts >= h.fe), 0) AS DOUBLE) AS y_conversion,
           CAST(coalesce(max(a.orders) FILTER (WHERE a.ts < h.fe), 0) AS DOUBLE) AS x_conversion,
           CAST(coalesce(sum(a.failures) FILTER (WHERE a.ts >= h.fe), 0) AS DOUBLE) AS y_errors,
           CAST(coalesce(sum(a.failures) FILTER (WHERE a.ts < h.fe), 0) AS DOUBLE) AS x_errors
    FROM {{hits}} h
    JOIN {{windows}} w ON h.store_id = w.store_id AND h.flag_key = w.flag_key
    JOIN {{activity}} a ON a.visitor_key = h.visitor_key
    WHERE h.fe >= w.window_start AND h.fe < w.window_end AND h.variant IN ('treatment', 'control')
      AND a.ts >= h.fe - INTERVAL {COVARIATE_DAYS} DAY AND a.ts < w.window_end
    GROUP BY w.idx, h.visitor_key"""

_NEW_VISITORS = """
    CREATE OR REPLACE TEMP TABLE {visitors} (
        idx INTEGER, variant VARCHAR, y_revenue DOUBLE, x_revenue DOUBLE, y_profit DOUBLE, x_profit DOUBLE,
        y_conversion DOUBLE, x_conversion DOUBLE, y_errors DOUBLE, x_errors DOUBLE)"""

# The same values from the feeder's experiment_activity (experiment_tables.py), whose sums have no end.
_MAINTAINED = """
    SELECT w.idx, a.variant,
           CAST(a.y_revenue AS DOUBLE) AS y_revenue, CAST(a.x_revenue AS DOUBLE) AS x_revenue,
           CAST(a.y_profit AS DOUBLE) AS y_profit, CAST(a.x_profit AS DOUBLE) AS x_profit,
           CAST(a.y_orders > 0 AS DOUBLE) AS y_conversion, CAST(a.x_orders > 0 AS DOUBLE) AS x_conversion,
           CAST(a.y_errors AS DOUBLE) AS y_errors, CAST(a.x_errors AS DOUBLE) AS x_errors
    FROM experiment_activity a JOIN {windows} w ON a.store_id = w.store_id AND a.flag_key = w.flag_key
    WHERE a.first_exposed_at >= w.window_start AND a.first_exposed_at < w.window_end"""

# What the caps need of the maintained rows (the non-zero values), and the units with activity at or
# after the window's end (`late`): their experiment is computed from the source tables instead.
_MAINTAINED_CAPPED = """
    SELECT w.idx, CAST(a.y_revenue AS DOUBLE) AS y_revenue, CAST(a.y_profit AS DOUBLE) AS y_profit,
           a.last_activity_at >= w.window_end AS late
    FROM experiment_activity a JOIN {windows} w ON a.store_id = w.store_id AND a.flag_key = w.flag_key
    WHERE a.first_exposed_at >= w.window_start AND a.first_exposed_at < w.window_end
      AND (a.y_revenue <> 0 OR a.y_profit <> 0 OR a.last_activity_at >= w.window_end)"""

# Per experiment, the maintained unit counts and the first exposures' range.
_UNITS = """
    SELECT w.idx, u.treatment_units, u.control_units, u.multiple_variant_units,
           u.first_exposed_min >= w.window_start AND u.first_exposed_max < w.window_end AS covered
    FROM experiment_units u JOIN {windows} w ON u.store_id = w.store_id AND u.flag_key = w.flag_key"""


def _sums(y: str, x: str, d: str | None, prefix: str) -> list[str]:
    parts = [f"sum({y}) AS {prefix}_sum_y", f"sum({y} * {y}) AS {prefix}_sum_y2", f"sum({x}) AS {prefix}_sum_x",
             f"sum({x} * {x}) AS {prefix}_sum_x2", f"sum({x} * {y}) AS {prefix}_sum_xy"]
    if d is not None:
        parts += [f"sum({d}) AS {prefix}_sum_d", f"sum({d} * {d}) AS {prefix}_sum_d2", f"sum({y} * {d}) AS {prefix}_sum_yd"]
    return parts


_REV_Y, _REV_X = "least(v.y_revenue, c.cap_revenue)", "least(v.x_revenue, c.cap_revenue)"
_PRO_Y, _PRO_X = "least(v.y_profit, c.cap_profit)", "least(v.x_profit, c.cap_profit)"
# metric → (y, x, d) over the sparse visitors `v` and the caps `c`
_METRIC_SQL = {
    CONVERSION: ("v.y_conversion", "v.x_conversion", None),
    REVENUE_PER_VISITOR: (_REV_Y, _REV_X, None),
    GROSS_PROFIT_PER_VISITOR: (_PRO_Y, _PRO_X, None),
    MARGIN_RATE: (_PRO_Y, _PRO_X, _REV_Y),
    CHECKOUT_ERRORS: ("v.y_errors", "v.x_errors", None),
}
_SUM_FIELDS = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")


def _sums_sql(visitors: str, caps: str) -> str:
    columns = [part for index, (y, x, d) in enumerate(_METRIC_SQL.values()) for part in _sums(y, x, d, f"m{index}")]
    return f"""
        SELECT v.idx, v.variant, {", ".join(columns)}
        FROM ({visitors}) v JOIN {caps} c ON c.idx = v.idx
        GROUP BY v.idx, v.variant"""


def _percentile(nonzero: np.ndarray, n: int, p: float) -> float:
    """The percentile p (0–1) of n values of which `nonzero` are the non-zero ones (the rest are 0).

    Sorted, the pooled sample is: the negative values, then (n − non-zero) zeros, then the positive
    ones, so the value at any rank follows from a partial sort of one side. numpy.percentile and
    DuckDB's quantile_cont: h = (n − 1)·p, value = a[⌊h⌋] + (h − ⌊h⌋)·(a[⌈h⌉] − a[⌊h⌋]).
    """
    negative, positive = nonzero[nonzero < 0], nonzero[nonzero > 0]
    zeros = n - len(negative) - len(positive)

    def at(rank: int) -> float:
        if rank < len(negative):
            return float(np.partition(negative, rank)[rank])
        rank -= len(negative) + zeros
        return 0.0 if rank < 0 else float(np.partition(positive, rank)[rank])

    h = (n - 1) * p
    lo, hi = at(math.floor(h)), at(math.ceil(h))
    return lo + (hi - lo) * (h - math.floor(h))


def _caps(values: pa.Table, sizes: Sequence[int], percentiles: Sequence[float]) -> dict[int, tuple[float, float]]:
    """Per experiment with units: the caps of revenue and gross profit (`values`: idx, y_revenue, y_profit)."""
    idx = values.column("idx").to_numpy()
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    columns = [values.column(f"y_{name}").to_numpy()[order] for name in _CAPPED]
    bounds = np.searchsorted(idx, np.arange(len(sizes) + 1))
    caps = {}
    for i, n in enumerate(sizes):
        if n > 0:
            part = slice(bounds[i], bounds[i + 1])
            caps[i] = tuple(_percentile(column[part][column[part] != 0], n, percentiles[i]) for column in columns)
    return caps


# --- the pass ------------------------------------------------------------------------------------------


def experiment_stats(cursor, experiments: Sequence[ExperimentWindow], *, now: datetime | None = None,
                     ) -> dict[tuple[str, str], ExperimentStats]:
    """Sufficient statistics per arm of every experiment, keyed by (store_id, flag_key).

    `cursor`: a DuckDB connection or cursor on the warehouse (Warehouse.reading()); it sees the last
    committed batch. `now` (default: the clock) only serves hours_since_last_data. A few statements
    over all experiments at once, whatever their number.
    """
    experiments = list(experiments)
    keys = [(str(e.store_id), e.flag_key) for e in experiments]
    if len(set(keys)) != len(keys):
        raise ValueError("each (store_id, flag_key) may appear once")
    if not experiments:
        return {}
    now_utc = _naive_utc(now or datetime.now(timezone.utc))
    tag = secrets.token_hex(4)
    windows, fast_windows, slow_windows = f"exp_windows_{tag}", f"exp_fast_{tag}", f"exp_slow_{tag}"
    caps_table = f"exp_caps_{tag}"
    temps = {name: f"exp_{name}_{tag}" for name in ("activity", "hits", "visitors")}
    columns = {
        "store_id": pa.array([k[0] for k in keys], pa.string()),
        "flag_key": pa.array([k[1] for k in keys], pa.string()),
        "window_start": pa.array([_naive_utc(e.window_start) for e in experiments], pa.timestamp("us")),
        "window_end": pa.array([_naive_utc(e.window_end) for e in experiments], pa.timestamp("us")),
    }

    def register(name: str, chosen: Sequence[int]) -> None:
        cursor.register(name, pa.table({"idx": pa.array(chosen, pa.int32()),
                                        **{key: column.take(list(chosen)) for key, column in columns.items()}}))
        registered.add(name)

    registered: set[str] = set()
    everyone = range(len(experiments))
    register(windows, everyone)
    own = _begin(cursor)  # one snapshot: the feeder may commit a batch meanwhile
    try:
        arms: dict[tuple[int, str], int] = {}
        multiple = [0] * len(experiments)
        fast: list[int] = []
        capped = []  # the non-zero values the caps come from
        if experiment_tables.in_sync(cursor):
            # The feeder's tables hold every first exposure, and activity with no end: exact for an experiment
            # whose window holds all its first exposures and none of its units' activity after its end.
            units = {row[0]: row[1:] for row in cursor.execute(_UNITS.format(windows=windows)).fetchall()}
            fast = [idx for idx in everyone if idx not in units or units[idx][3]]
            if fast:
                register(fast_windows, fast)
                values = _arrow(cursor.execute(_MAINTAINED_CAPPED.format(windows=fast_windows)))
                late = set(np.unique(values.filter(values.column("late")).column("idx").to_numpy()).tolist())
                if late:
                    fast = [idx for idx in fast if idx not in late]
                    register(fast_windows, fast)
                    values = values.filter(pa.compute.is_in(values.column("idx"), pa.array(fast, pa.int32())))
                capped.append(values.select(["idx", "y_revenue", "y_profit"]))
            for idx in fast:
                if idx in units:
                    treatment, control, multiple[idx], _ = units[idx]
                    arms[(idx, "treatment")], arms[(idx, "control")] = treatment, control
        slow = sorted(set(everyone) - set(fast))
        if slow:  # from the source tables: the units' counts, then the sparse join of their activity
            register(slow_windows, slow)
            for idx, variant, is_multiple, count in cursor.execute(_COUNTS.format(windows=slow_windows)).fetchall():
                if is_multiple:
                    multiple[idx] += count
                else:
                    arms[(idx, variant)] = count
            cursor.execute(_NEW_VISITORS.format(visitors=temps["visitors"]))
            for statement in (_ACTIVITY, _HITS, _VISITORS):
                cursor.execute(statement.format(windows=slow_windows, **temps))
            capped.append(_arrow(cursor.execute(
                f"SELECT idx, y_revenue, y_profit FROM {temps['visitors']} WHERE y_revenue <> 0 OR y_profit <> 0")))
        n_units = [arms.get((i, "treatment"), 0) + arms.get((i, "control"), 0) for i in everyone]
        caps = _caps(pa.concat_tables(capped), n_units, [e.cap_percentile / 100 for e in experiments])
        cursor.register(caps_table, pa.table({
            "idx": pa.array(list(caps), pa.int32()),
            "cap_revenue": pa.array([c[0] for c in caps.values()], pa.float64()),
            "cap_profit": pa.array([c[1] for c in caps.values()], pa.float64()),
        }))
        registered.add(caps_table)
        sources = ([_MAINTAINED.format(windows=fast_windows)] if fast else []) + \
                  ([f"SELECT * FROM {temps['visitors']}"] if slow else [])
        result = _rows(cursor.execute(_sums_sql(" UNION ALL ".join(sources), caps_table))) if sources else []
        watermarks = dict(cursor.execute(
            f"SELECT store_id, last_event_at FROM data_watermarks WHERE store_id IN (SELECT store_id FROM {windows})"
        ).fetchall())
    except BaseException:
        if own:
            cursor.execute("ROLLBACK")  # the temporary tables go with it
        raise
    else:
        for name in temps.values():
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        if own:
            cursor.execute("COMMIT")
    finally:
        for name in registered:
            cursor.unregister(name)
    sums = {(row["idx"], row["variant"]): row for row in result}
    out: dict[tuple[str, str], ExperimentStats] = {}
    for idx, experiment in enumerate(experiments):
        metrics = {
            name: MetricArms(
                treatment=_arm(sums.get((idx, "treatment")), arms.get((idx, "treatment"), 0), index),
                control=_arm(sums.get((idx, "control")), arms.get((idx, "control"), 0), index),
                is_proportion=name == CONVERSION,
                higher_is_better=name != CHECKOUT_ERRORS,
            )
            for index, name in enumerate(_METRIC_SQL)
        }
        cap = caps.get(idx, (None, None))
        watermark = watermarks.get(keys[idx][0])
        out[keys[idx]] = ExperimentStats(
            store_id=keys[idx][0], flag_key=keys[idx][1], metrics=metrics,
            exposures=Exposures(arms.get((idx, "treatment"), 0), arms.get((idx, "control"), 0), multiple[idx]),
            caps={"revenue": cap[0], "gross_profit": cap[1]},
            watermark=None if watermark is None else watermark.replace(tzinfo=timezone.utc),
            hours_since_last_data=None if watermark is None else max(
                0.0, (now_utc - watermark) / timedelta(hours=1)),
            window=experiment,
        )
    return out


def _begin(cursor) -> bool:
    """Start a transaction unless the cursor is in one already; returns whether it started one."""
    try:
        cursor.execute("BEGIN TRANSACTION")
    except duckdb.TransactionException:
        return False
    return True


def _arrow(result) -> pa.Table:
    with warnings.catch_warnings():  # "an extra copy of the rows" of a DB-API result: a few columns
        warnings.simplefilter("ignore")
        return result.to_arrow_table()


def _rows(result) -> list[dict]:
    names = [column[0] for column in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def _arm(row: dict | None, n: int, index: int) -> ArmStats:
    if row is None:
        return ArmStats(n=n, sum_y=0.0, sum_y2=0.0)
    values = {name: row.get(f"m{index}_{name}") for name in _SUM_FIELDS}
    return ArmStats(n=n, **{name: float(value) if value is not None and not _nan(value) else 0.0
                            for name, value in values.items()})


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
