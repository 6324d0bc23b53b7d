"""Supervision in operation: control charts of the stage KPIs computed from the service records.

The study's supervision model names, for every service stage, KPIs with targets (``kpis`` in the study
config). This module turns the service records (one row per order) into those KPIs and watches them with
Shewhart control charts, so the model keeps supervising quality after the study ends.

Design choices (documented here once, referred to by the docstrings below)
-------------------------------------------------------------------------
Subgroups
    Calendar months of the KPI's ``timestamp`` column (optionally also per client group, the config's
    ``group.column``). Management reviews KPIs monthly and targets are monthly, so a month is the rational
    subgroup. A month with no orders is a *gap*: it is shown as a break in the chart, kept out of the limits
    and of the run rules (the rules look at consecutive *plotted* points), and reported in a note.
Times (``duration`` KPIs): XmR chart of monthly means
    One point per month: the mean of the orders' times, or, when the KPI has ``log_transform: true``, the
    mean of their natural logarithms (a geometric mean, for right-skewed times such as response times).
    Charting monthly means rather than individual orders is deliberate: single orders are dominated by
    order-to-order noise and are strongly skewed, whereas the process shifts the supervision model cares
    about move the monthly level; means of many orders are also close to normal, which the 3-sigma limits
    assume. The monthly order count varies, which an XmR chart of means tolerates while it varies
    moderately (Wheeler 2000, ch. 7; the moving range absorbs the extra variation); a month with fewer than
    half the median number of orders gets a note, because its mean varies more than the limits allow for.
    :func:`xmr_limits` works on any sequence, so individual orders can be charted too.

    Limits from the baseline: centre ``x̄``, ``MR̄`` = mean of ``|x_i - x_{i-1}|``,
    ``sigma = MR̄ / d2`` with ``d2 = 1.128``, ``UCL/LCL = x̄ ± 3·sigma = x̄ ± E2·MR̄`` with
    ``E2 = 3/d2 = 2.660``; moving-range chart ``UCL = D4·MR̄`` with ``D4 = 3.267``, LCL 0. For a time on
    its original scale the LCL is floored at 0 (times are non-negative).
Rates (``rate`` and ``on_time_rate`` KPIs): p-chart
    One point per month, ``p_i = D_i / n_i``; centre ``p̄ = ΣD / Σn`` over the baseline months; limits
    vary with the month's size, ``p̄ ± 3·sqrt(p̄(1-p̄)/n_i)``, the LCL floored at 0 and the UCL capped at 1.
Baseline
    The first ``analysis.monitoring.baseline_months`` calendar months of each KPI (from its first month
    with data) set the limits (phase I); later months are judged against them (phase II). At least two
    baseline months with orders are needed.
Run rules (Western Electric Co. 1956, Statistical Quality Control Handbook, pp. 25-28)
    On the standardised values ``z = (x - centre) / sigma``:
    ``we1`` one point beyond 3 sigma; ``we2`` 2 of 3 consecutive points beyond 2 sigma on the same side;
    ``we3`` 4 of 5 consecutive points beyond 1 sigma on the same side; ``we4`` 8 consecutive points on
    the same side of the centre line. A signal is attached to the point that completes the pattern, and
    that point must itself be part of it. The moving-range chart is checked against its UCL (``we1``).
Thin baselines
    A baseline with fewer than 30 orders (XmR) or fewer than 10 expected events or non-events (p-chart,
    ``Σn·min(p̄, 1-p̄)``) gives an imprecise centre line; the chart is still drawn, with a note that runs of
    signals may then reflect the baseline rather than a change of the process.
Shift detection
    ``shift_detected_month`` is the first month after the baseline that begins a *sustained* shift:
    ``SHIFT_RUN = 3`` consecutive plotted months flagged on the same side. With short baselines (6 months
    give only 5 moving ranges) single false alarms are not rare, and one flagged month is an outlier, not
    a shift; every signal is still listed, and ``first_signal_month`` is the first flagged month.
Capability against the KPI target (the latest ``recent_months`` months, default 3)
    Times: the share of orders within the target and a Ppk-style index on the chart's scale,
    ``(T - mean) / (3·s)`` for an upper target (``direction: max``), ``(mean - T) / (3·s)`` for a lower
    one, with the overall standard deviation ``s`` of the orders (hence Ppk, not Cpk; Montgomery 2009,
    §8.3). With ``log_transform`` the index is computed on ``ln(time)`` and ``ln(T)``.
    Rates: the share of good orders relative to the share the target requires,
    ``p / T`` for a lower target (``direction: min``) and ``(1 - p) / (1 - T)`` for an upper target.
    For both, ``capability >= 1`` means the target is met (times: at least 3 sigma inside it).
Status (the ``kpi_status`` table of docs/architecture.md)
    ``no_target`` when the KPI has no target (charts are still drawn); otherwise ``out_of_control`` when
    the KPI's chart of all clients has a signal (any enabled rule, on the individuals/p chart or the
    moving-range chart) in the latest ``recent_months`` months; otherwise
    ``on_target`` when ``capability >= 1`` and ``warning`` when not.

References
----------
Montgomery, D. C. (2009). *Introduction to Statistical Quality Control* (6th ed.). Wiley. §6.4 (individuals
chart), §7.2 (p-chart, variable sample size), §8.3 (capability ratios).
NIST/SEMATECH e-Handbook of Statistical Methods, §6.3.2.2 (individuals control charts) and §6.3.3.2
(proportions control charts). https://www.itl.nist.gov/div898/handbook/
Wheeler, D. J. (2000). *Understanding Variation: The Key to Managing Chaos* (2nd ed.). SPC Press.
Western Electric Company (1956). *Statistical Quality Control Handbook*. Indianapolis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config import KPI, StudyConfig
from .errors import AnalysisError

D2 = 1.128  # d2 for moving ranges of two points (Montgomery 2009, Appendix Table VI)
E2 = 3.0 / D2  # 2.660: individuals limits are x̄ ± E2·MR̄
D4 = 3.267  # moving-range chart UCL = D4·MR̄ (n = 2)
RULES = ("we1", "we2", "we3", "we4")
STATUSES = ("on_target", "warning", "out_of_control", "no_target")
ALL_GROUPS = "all"
SHIFT_RUN = 3  # consecutive flagged months that make a sustained shift (module docstring)
# Below these the baseline's centre line is too imprecise to trust runs of signals (a note says so):
THIN_BASELINE_ORDERS = 30  # XmR: orders in the baseline months (rule of thumb n >= 30)
THIN_BASELINE_EVENTS = 10  # p-chart: expected events (or non-events) in the baseline, n·min(p̄, 1 - p̄)
STATUS_COLUMNS = ["stage", "kpi", "status", "mean", "target", "capability", "kind", "unit", "direction",
                  "chart", "n_orders", "share_within_target", "ppk", "recent_from", "recent_to",
                  "signals_recent", "first_signal_month", "shift_detected_month", "note"]
MONTHLY_COLUMNS = ["stage", "kpi", "group", "month", "n", "value", "statistic", "scale", "center", "lcl",
                   "ucl", "sigma", "z", "mr", "mr_center", "mr_ucl", "baseline", "signal"]
SIGNAL_COLUMNS = ["stage", "kpi", "group", "month", "chart", "rule", "side", "baseline"]
_UNIT = {"hours": pd.Timedelta(hours=1), "days": pd.Timedelta(days=1)}


# --- small result objects -----------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """Something a reader must know about a KPI (a gap, a missing target, ...).

    ``key`` names a text in ``locales/monitoring.yaml``; ``values`` fill its placeholders.
    """

    key: str
    kpi: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en", group_labels: Mapping[str, str] | None = None) -> str:
        """The note in ``lang``; ``group_labels`` (``cfg.group_labels(lang)``) names the client groups."""
        from . import i18n

        values = dict(self.values)
        if values.get("group") == ALL_GROUPS:
            values["group"] = i18n.label("monitoring", "all_clients", lang)
        elif "group" in values and group_labels:
            values["group"] = group_labels.get(values["group"], values["group"])
        return i18n.text("monitoring", f"note_{self.key}", lang, kpi=self.kpi, **values)


@dataclass(frozen=True)
class XmRLimits:
    """Limits of an individuals / moving-range chart (see the module docstring for the formulas)."""

    center: float
    mr_bar: float
    sigma: float
    lcl: float
    ucl: float
    mr_ucl: float
    n_points: int


@dataclass(frozen=True)
class ControlChart:
    """One control chart of one KPI and client group.

    Attributes
    ----------
    kind
        ``"xmr"`` (times) or ``"p"`` (rates).
    scale
        ``"log"`` when ``statistic`` is a mean of natural logarithms, else ``"identity"``.
    points
        One row per calendar month from the first to the last month with data (gaps included, with
        ``n == 0`` and NaN statistic): ``month``, ``n``, ``value`` (the month's KPI on the original scale:
        mean time, geometric mean time for log-scale charts, or proportion), ``statistic`` (the charted
        value), ``center``, ``lcl``, ``ucl``, ``sigma`` (of the plotted point), ``z``, ``mr``, ``mr_center``,
        ``mr_ucl`` (XmR only), ``baseline`` (bool), ``signal`` (rules that flagged the point, ``"we1,we4"``).
    signals
        One row per rule violation: ``month``, ``chart`` (``individuals``, ``moving_range`` or ``p``),
        ``rule``, ``side`` (``above``/``below``), ``baseline``.
    """

    kpi: str
    group: str
    kind: str
    scale: str
    points: pd.DataFrame
    signals: pd.DataFrame
    center: float
    baseline_months: tuple[str, ...]
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Capability:
    """Performance of the latest months against the KPI target (see the module docstring).

    ``capability`` is the Ppk-style index (times) or the good-share ratio (rates); ``>= 1`` meets the target.
    """

    months: tuple[str, ...]
    n_orders: int
    mean: float
    target: float | None
    capability: float
    share_within_target: float
    ppk: float


@dataclass(frozen=True)
class KPIMonitoring:
    """Everything the monitoring notebook shows for one KPI."""

    kpi: KPI
    values: pd.DataFrame
    charts: tuple[ControlChart, ...]
    capability: Capability
    status: str
    shift_detected_month: str | None
    notes: tuple[Note, ...]
    first_signal_month: str | None = None

    @property
    def chart(self) -> ControlChart:
        """The chart of all clients (the one the status is based on)."""
        return next(c for c in self.charts if c.group == ALL_GROUPS)


@dataclass(frozen=True)
class MonitoringResult:
    """KPI monitoring of a study: per-KPI results and the tidy tables the notebook writes.

    ``status`` is the ``kpi_status`` table (docs/architecture.md), ``monthly`` the ``kpi_monthly`` table
    (one row per KPI, group and month), ``signals`` one row per rule violation. ``skipped`` is a reason
    when the study has no service records (then the tables are empty).
    """

    kpis: tuple[KPIMonitoring, ...]
    status: pd.DataFrame
    monthly: pd.DataFrame
    signals: pd.DataFrame
    baseline_months: int
    recent_months: int
    by_group: bool
    skipped: str | None = None

    @property
    def notes(self) -> tuple[Note, ...]:
        return tuple(n for k in self.kpis for n in k.notes)


# --- KPI values per order -----------------------------------------------------------------------
def _datetime_column(records: pd.DataFrame, column: str, kpi: KPI) -> pd.Series:
    if column not in records.columns:
        raise AnalysisError(f"service records: column {column!r} needed by KPI {kpi.code!r} is missing "
                            f"(columns present: {', '.join(map(str, records.columns))})")
    s = records[column]
    if not pd.api.types.is_datetime64_any_dtype(s):
        raise AnalysisError(f"service records: column {column!r} (KPI {kpi.code!r}) has dtype {s.dtype}; "
                            "expected datetime64 as written by research.data.prepare_study")
    return s


def _order_ids(records: pd.DataFrame) -> pd.Series:
    if "order_id" in records.columns:
        return records["order_id"].astype("string")
    return pd.Series(records.index.astype(str), index=records.index, dtype="string")


def _first_bad(records: pd.DataFrame, mask: pd.Series) -> str:
    ids = _order_ids(records)[mask]
    more = f" and {int(mask.sum()) - 1} more" if int(mask.sum()) > 1 else ""
    return f"order {ids.iloc[0]}{more}"


def _kpi_values(records: pd.DataFrame, kpi: KPI, group_column: str | None) -> tuple[pd.DataFrame, int]:
    if not isinstance(records, pd.DataFrame):
        raise AnalysisError(f"KPI {kpi.code!r}: service records must be a pandas DataFrame, got "
                            f"{type(records).__name__}")
    stamp = _datetime_column(records, kpi.timestamp, kpi)
    if kpi.kind == "duration":
        start = _datetime_column(records, kpi.start, kpi)
        end = _datetime_column(records, kpi.end, kpi)
        orphan = end.notna() & start.isna()
        if orphan.any():
            raise AnalysisError(f"service records, {_first_bad(records, orphan)}: KPI {kpi.code!r} has "
                                f"{kpi.end!r} but no {kpi.start!r} (expected both or only the start)")
        if kpi.unit not in _UNIT:
            raise AnalysisError(f"KPI {kpi.code!r}: kind 'duration' needs unit 'hours' or 'days', got {kpi.unit!r}")
        value = (end - start) / _UNIT[kpi.unit]
        negative = value < 0
        if negative.any():
            raise AnalysisError(f"service records, {_first_bad(records, negative)}: KPI {kpi.code!r}: "
                                f"{kpi.end!r} is before {kpi.start!r} (expected a non-negative duration)")
        keep = end.notna() & stamp.notna()
    elif kpi.kind == "rate":
        if kpi.column not in records.columns:
            raise AnalysisError(f"service records: column {kpi.column!r} needed by KPI {kpi.code!r} is "
                                "missing")
        raw = records[kpi.column]
        numeric = (raw.astype("Float64") if pd.api.types.is_bool_dtype(raw)
                   else pd.to_numeric(raw, errors="coerce").astype("Float64"))
        bad = (raw.notna() & ~numeric.isin([0, 1])).fillna(True).astype(bool)
        if bad.any():
            raise AnalysisError(f"service records, {_first_bad(records, bad)}: column {kpi.column!r} "
                                f"(KPI {kpi.code!r}) has value {raw[bad].iloc[0]!r}; expected 0 or 1")
        value = pd.Series(numeric.to_numpy(dtype=float, na_value=np.nan), index=records.index)
        keep = value.notna() & stamp.notna()
    else:  # on_time_rate
        actual = _datetime_column(records, kpi.actual, kpi)
        planned = _datetime_column(records, kpi.planned, kpi)
        # A plan given as a date (midnight) means "by the end of that day", so compare calendar dates then.
        date_only = bool((planned.dropna() == planned.dropna().dt.normalize()).all())
        if date_only:
            value = (actual.dt.normalize() <= planned).astype(float)
        else:
            value = (actual <= planned).astype(float)
        keep = actual.notna() & planned.notna() & stamp.notna()
    out = pd.DataFrame({"order_id": _order_ids(records), "timestamp": stamp,
                        "month": stamp.dt.to_period("M").astype("string"), "value": value.astype(float)})
    if group_column is not None:
        if group_column not in records.columns:
            raise AnalysisError(f"service records: group column {group_column!r} (config group.column) is "
                                "missing")
        out.insert(3, "group", records[group_column].astype("string"))
    out = out.loc[keep.to_numpy()].sort_values(["timestamp", "order_id"], kind="mergesort")
    return out.reset_index(drop=True), int((~keep).sum())


def kpi_values(*, records: pd.DataFrame, kpi: KPI, group_column: str | None = None) -> pd.DataFrame:
    """The KPI's value for every order it applies to, dated by the KPI's ``timestamp`` column.

    Parameters
    ----------
    records
        The ``service_records`` table (docs/architecture.md): one row per order, timestamps as datetime64,
        ``contract_terms_met`` and ``complaint`` as 0/1.
    kpi
        A KPI definition from the study config (``cfg.kpis``).
    group_column
        When given (the config's ``group.column``), the order's client group is kept as column ``group``.

    Returns
    -------
    pandas.DataFrame
        ``order_id``, ``timestamp``, ``month`` (``"YYYY-MM"``), [``group``], ``value`` sorted by time.
        ``value`` is, by ``kpi.kind``:

        * ``duration`` — ``(end - start)`` in ``kpi.unit`` (hours or days); orders without an end are not
          counted (e.g. orders without a complaint have no resolution time);
        * ``rate`` — the 0/1 ``column`` (orders where it is missing are not counted);
        * ``on_time_rate`` — 1 when ``actual <= planned`` (compared as calendar dates when every planned
          value is a date at midnight), 0 otherwise; undelivered orders are not counted.

        Orders whose ``timestamp`` is missing cannot be dated and are not counted.

    Raises
    ------
    AnalysisError
        A needed column is missing or not datetime64, a rate column holds values other than 0/1, an order
        has an end but no start, or an end lies before its start (one line naming the order).
    """
    return _kpi_values(records, kpi, group_column)[0]


# --- limits and run rules -----------------------------------------------------------------------
def xmr_limits(*, values: Sequence[float] | np.ndarray | pd.Series, d2: float = D2, d4: float = D4) -> XmRLimits:
    """Individuals and moving-range chart limits from a sequence of values (NaN = gap, skipped).

    ``center = mean(x)``, ``MR̄ = mean(|x_i - x_{i-1}|)`` over consecutive non-missing values,
    ``sigma = MR̄ / d2``, ``LCL/UCL = center ∓ 3·sigma`` (= ``center ∓ E2·MR̄``, ``E2 = 3/d2 = 2.660``),
    moving-range ``UCL = d4·MR̄``.

    Parameters
    ----------
    values
        The baseline values, in time order.
    d2, d4
        Control-chart constants for moving ranges of two points (defaults 1.128 and 3.267, Montgomery 2009,
        Appendix Table VI).

    Raises
    ------
    AnalysisError
        Fewer than two non-missing values (no moving range can be formed).

    Notes
    -----
    Validated against the NIST/SEMATECH e-Handbook §6.3.2.2 flow-rate example and Montgomery's aircraft
    primer paint viscosity example (R qcc 2.7 ``qcc(type = "xbar.one")``), see tests/test_monitoring.py.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size < 2:
        raise AnalysisError(f"XmR chart: {x.size} baseline value(s); at least 2 are needed to form a moving "
                            "range (lengthen the baseline: analysis.monitoring.baseline_months)")
    mr_bar = float(np.mean(np.abs(np.diff(x))))
    center = float(np.mean(x))
    sigma = mr_bar / d2
    return XmRLimits(center=center, mr_bar=mr_bar, sigma=sigma, lcl=center - 3 * sigma, ucl=center + 3 * sigma,
                     mr_ucl=d4 * mr_bar, n_points=int(x.size))


def p_chart_limits(*, counts: Sequence[float] | np.ndarray, sizes: Sequence[float] | np.ndarray,
                   baseline: Sequence[bool] | np.ndarray | None = None) -> pd.DataFrame:
    """p-chart centre line and limits for subgroups of varying size.

    ``p̄ = ΣD_i / Σn_i`` over the baseline subgroups; for every subgroup ``sigma_i = sqrt(p̄(1-p̄)/n_i)``,
    ``LCL_i = max(0, p̄ - 3·sigma_i)``, ``UCL_i = min(1, p̄ + 3·sigma_i)``.

    Parameters
    ----------
    counts, sizes
        Nonconforming (or "event") counts ``D_i`` and subgroup sizes ``n_i``; a size of 0 is a gap.
    baseline
        Which subgroups set ``p̄`` (default: all).

    Returns
    -------
    pandas.DataFrame
        ``p`` (NaN for gaps), ``center``, ``sigma``, ``lcl``, ``ucl``, ``z`` (``(p - p̄)/sigma``; 0 when both
        are 0), one row per subgroup.

    Raises
    ------
    AnalysisError
        Negative sizes, counts outside ``0..n``, or no baseline subgroup with orders.

    Notes
    -----
    Validated against Montgomery (2009) Example 7.1 (orange-juice cans; = NIST e-Handbook §6.3.3.2) and
    R qcc 2.7 ``qcc(type = "p")``, see tests/test_monitoring.py.
    """
    d = np.asarray(counts, dtype=float)
    n = np.asarray(sizes, dtype=float)
    if d.shape != n.shape:
        raise AnalysisError(f"p-chart: {d.size} counts but {n.size} sizes (expected one of each per subgroup)")
    if (n < 0).any() or (d < 0).any() or (d > n).any():
        raise AnalysisError("p-chart: counts must lie between 0 and the subgroup size, sizes must be >= 0")
    base = np.ones(d.shape, dtype=bool) if baseline is None else np.asarray(baseline, dtype=bool)
    used = base & (n > 0)
    if not used.any():
        raise AnalysisError("p-chart: no baseline subgroup with orders (expected at least one)")
    center = float(d[used].sum() / n[used].sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, d / n, np.nan)
        sigma = np.where(n > 0, np.sqrt(center * (1 - center) / n), np.nan)
        dev = p - center
        z = np.where(sigma > 0, dev / sigma, np.where(dev == 0, 0.0, np.sign(dev) * np.inf))
    z = np.where(np.isnan(p), np.nan, z)
    return pd.DataFrame({"p": p, "center": center, "sigma": sigma,
                         "lcl": np.maximum(0.0, center - 3 * sigma), "ucl": np.minimum(1.0, center + 3 * sigma),
                         "z": z})


def _window_count(flags: np.ndarray, window: int) -> np.ndarray:
    """Number of True values among the last ``window`` entries ending at each position."""
    cs = np.concatenate([[0], np.cumsum(flags, dtype=int)])
    idx = np.arange(1, flags.size + 1)
    return cs[idx] - cs[np.maximum(idx - window, 0)]


def western_electric(*, z: Sequence[float] | np.ndarray, rules: Iterable[str] = RULES) -> pd.DataFrame:
    """Western Electric run rules on standardised values (vectorised).

    Parameters
    ----------
    z
        ``(x - centre) / sigma`` in time order; NaN marks a gap and is skipped, so the rules look at
        consecutive plotted points.
    rules
        Any of ``we1`` (1 point beyond 3 sigma), ``we2`` (2 of 3 beyond 2 sigma, same side), ``we3`` (4 of 5
        beyond 1 sigma, same side), ``we4`` (8 in a row on one side of the centre line).

    Returns
    -------
    pandas.DataFrame
        ``position`` (index into ``z``), ``rule``, ``side`` (``above``/``below``), one row per violation,
        attached to the point completing the pattern (which must itself be part of the pattern). A point
        exactly on the centre line breaks a run (``we4``).

    References
    ----------
    Western Electric Company (1956), *Statistical Quality Control Handbook*, pp. 25-28; Montgomery (2009),
    §5.3.6.
    """
    rules = list(rules)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise AnalysisError(f"unknown run rule(s) {unknown}; expected some of {list(RULES)}")
    zz = np.asarray(z, dtype=float)
    present = np.flatnonzero(~np.isnan(zz))
    v = zz[present]
    spec = {"we1": (3.0, 1, 1), "we2": (2.0, 3, 2), "we3": (1.0, 5, 4), "we4": (0.0, 8, 8)}
    rows = []
    for rule in rules:
        threshold, window, needed = spec[rule]
        for side, sign in (("above", 1.0), ("below", -1.0)):
            beyond = sign * v > threshold
            hit = beyond & (_window_count(beyond, window) >= needed)
            rows.extend((int(present[i]), rule, side) for i in np.flatnonzero(hit))
    out = pd.DataFrame(rows, columns=["position", "rule", "side"])
    return out.sort_values(["position", "rule", "side"], kind="mergesort").reset_index(drop=True)


# --- charts of one KPI ------------------------------------------------------------------------------
def _month_range(months: pd.Series) -> list[str]:
    periods = pd.PeriodIndex(months.dropna().unique(), freq="M")
    return [str(p) for p in pd.period_range(periods.min(), periods.max(), freq="M")]


def monthly_subgroups(*, values: pd.DataFrame, kpi: KPI, months: Sequence[str] | None = None) -> pd.DataFrame:
    """Aggregate per-order KPI values (:func:`kpi_values`) into calendar-month subgroups.

    Returns one row per month from ``months`` (default: first to last month in ``values``, gaps included):
    ``month``, ``n`` (orders), ``events`` (sum of the 0/1 values; rates), ``mean`` (arithmetic mean, original
    units), ``statistic`` (the charted value: mean, mean of ``ln`` for log-transformed times, or proportion),
    ``value`` (``statistic`` on the original scale: equal to ``mean``, the geometric mean, or the proportion).

    Raises
    ------
    AnalysisError
        A log-transformed KPI with a time of 0 or less (``ln`` undefined).
    """
    months = list(months) if months is not None else _month_range(values["month"])
    x = values["value"].to_numpy(dtype=float)
    log = kpi.kind == "duration" and kpi.log_transform
    if log and (x <= 0).any():
        raise AnalysisError(f"KPI {kpi.code!r}: {int((x <= 0).sum())} order(s) with a time of 0 or less "
                            "cannot be log-transformed (set log_transform: false for this KPI)")
    frame = pd.DataFrame({"month": values["month"].to_numpy(), "x": x,
                          "lx": np.log(x) if log else x})
    agg = frame.groupby("month", sort=True).agg(n=("x", "size"), events=("x", "sum"), mean=("x", "mean"),
                                                statistic=("lx", "mean"))
    agg = agg.reindex(pd.Index(months, name="month"))
    agg["n"] = agg["n"].fillna(0).astype(int)
    agg["events"] = agg["events"].where(agg["n"] > 0, 0.0) if kpi.kind != "duration" else np.nan
    agg["value"] = np.exp(agg["statistic"]) if log else agg["statistic"]
    return agg.reset_index()[["month", "n", "events", "mean", "statistic", "value"]]


def _signals_frame(months: np.ndarray, found: pd.DataFrame, chart: str, baseline: np.ndarray) -> pd.DataFrame:
    pos = found["position"].to_numpy(dtype=int)
    return pd.DataFrame({"month": months[pos], "chart": chart, "rule": found["rule"].to_numpy(),
                         "side": found["side"].to_numpy(), "baseline": baseline[pos]})


def control_chart(*, subgroups: pd.DataFrame, kpi: KPI, baseline_months: int, rules: Iterable[str] = RULES,
                  group: str = ALL_GROUPS) -> ControlChart:
    """The KPI's control chart from monthly subgroups (:func:`monthly_subgroups`).

    Times get an XmR chart of the monthly statistic, rates a p-chart (module docstring). The first
    ``baseline_months`` rows (calendar months, gaps included) set the limits; run rules are evaluated on
    every month.

    Raises
    ------
    AnalysisError
        Fewer than two baseline months with orders.
    """
    rules = list(rules)
    sub = subgroups.reset_index(drop=True)
    months = sub["month"].to_numpy(dtype=object)
    baseline = np.arange(len(sub)) < baseline_months
    has = sub["n"].to_numpy() > 0
    base_used = int((baseline & has).sum())
    where = f"KPI {kpi.code!r}" + ("" if group == ALL_GROUPS else f", group {group!r}")
    if base_used < 2:
        span = f"{months[0]}..{months[min(baseline_months, len(months)) - 1]}" if len(months) else "none"
        raise AnalysisError(f"{where}: {base_used} baseline month(s) with orders ({span}); at least 2 are "
                            "needed to set control limits (raise analysis.monitoring.baseline_months)")
    notes: list[Note] = []
    gaps = [m for m, h in zip(months, has, strict=True) if not h]
    if gaps:
        notes.append(Note("gap_months", kpi.code, {"months": ", ".join(gaps), "group": group}))
    stat = sub["statistic"].to_numpy(dtype=float)
    if kpi.kind == "duration":
        lim = xmr_limits(values=stat[baseline])
        scale = "log" if kpi.log_transform else "identity"
        lcl = lim.lcl if scale == "log" else max(lim.lcl, 0.0)
        # MR between consecutive plotted points, consistent with the limits (gaps skipped).
        idx = np.flatnonzero(has)
        mr = np.full(len(sub), np.nan)
        mr[idx[1:]] = np.abs(np.diff(stat[idx]))
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = stat - lim.center
            z = dev / lim.sigma if lim.sigma > 0 else np.where(dev == 0, 0.0, np.sign(dev) * np.inf)
        if lim.sigma == 0:
            notes.append(Note("degenerate_limits", kpi.code, {"group": group}))
        # XmR limits do not widen for a month with few orders (unlike the p-chart), so say where that matters.
        n_orders = sub["n"].to_numpy()
        if n_orders[baseline].sum() < THIN_BASELINE_ORDERS:
            notes.append(Note("thin_baseline", kpi.code, {"group": group, "n": int(n_orders[baseline].sum()),
                                                           "months": base_used}))
        typical = float(np.median(n_orders[has]))
        small = has & (n_orders < 0.5 * typical)
        if small.any():
            notes.append(Note("small_months", kpi.code, {
                "group": group, "median": int(round(typical)),
                "months": ", ".join(f"{m} ({k})" for m, k in zip(months[small], n_orders[small], strict=True))}))
        points = sub.assign(scale=scale, center=lim.center, lcl=lcl, ucl=lim.ucl, sigma=lim.sigma, z=z, mr=mr,
                            mr_center=lim.mr_bar, mr_ucl=lim.mr_ucl, baseline=baseline)
        found = western_electric(z=z, rules=rules)
        mr_found = pd.DataFrame({"position": np.flatnonzero(mr > lim.mr_ucl), "rule": "we1", "side": "above"})
        signals = pd.concat([_signals_frame(months, found, "individuals", baseline),
                             _signals_frame(months, mr_found, "moving_range", baseline)], ignore_index=True)
        center, kind = lim.center, "xmr"
    else:
        lim = p_chart_limits(counts=sub["events"].to_numpy(dtype=float), sizes=sub["n"].to_numpy(dtype=float),
                             baseline=baseline)
        center = float(lim["center"].iloc[0])
        if center in (0.0, 1.0):
            notes.append(Note("degenerate_limits", kpi.code, {"group": group}))
        n_base = float(sub["n"].to_numpy()[baseline].sum())
        if n_base * min(center, 1 - center) < THIN_BASELINE_EVENTS:
            notes.append(Note("thin_baseline", kpi.code, {"group": group, "n": int(n_base), "months": base_used}))
        points = sub.assign(scale="identity", center=center, lcl=lim["lcl"].to_numpy(), ucl=lim["ucl"].to_numpy(),
                            sigma=lim["sigma"].to_numpy(), z=lim["z"].to_numpy(), mr=np.nan, mr_center=np.nan,
                            mr_ucl=np.nan, baseline=baseline)
        found = western_electric(z=points["z"].to_numpy(), rules=rules)
        signals = _signals_frame(months, found, "p", baseline)
        kind = "p"
    signals = signals.sort_values(["month", "chart", "rule", "side"], kind="mergesort").reset_index(drop=True)
    flagged = (signals.loc[signals["chart"] != "moving_range"].groupby("month")["rule"]
               .agg(lambda r: ",".join(sorted(set(r)))))
    points["signal"] = points["month"].map(flagged).astype("string").fillna("")
    if signals["baseline"].any():
        notes.append(Note("baseline_signals", kpi.code, {"group": group,
                                                           "months": ", ".join(sorted(set(signals.loc[
                                                               signals["baseline"], "month"])))}))
    points = points[["month", "n", "value", "statistic", "scale", "center", "lcl", "ucl", "sigma", "z", "mr",
                     "mr_center", "mr_ucl", "baseline", "signal"]]
    return ControlChart(kpi=kpi.code, group=group, kind=kind, scale=str(points["scale"].iloc[0]), points=points,
                        signals=signals, center=center,
                        baseline_months=tuple(str(m) for m in months[baseline]), notes=tuple(notes))


# --- capability and status ------------------------------------------------------------------------
def ppk(*, mean: float, sd: float, target: float, direction: str) -> float:
    """One-sided Ppk-style index: ``(T - mean)/(3·sd)`` for an upper target (``direction="max"``),
    ``(mean - T)/(3·sd)`` for a lower one; ``>= 1`` means the mean lies at least 3 sd inside the target.

    Notes
    -----
    Montgomery (2009), §8.3.1, one-sided process capability ratios ``C_pu`` / ``C_pl``; with the overall
    standard deviation of the orders it is the performance index ``P_pk``. Validated against Montgomery's
    printed example (see tests/test_monitoring.py).
    """
    if direction not in ("max", "min"):
        raise AnalysisError(f"ppk: direction {direction!r}; expected 'max' or 'min'")
    margin = (target - mean) if direction == "max" else (mean - target)
    if sd == 0 or not np.isfinite(sd):
        return float(np.inf if margin > 0 else (-np.inf if margin < 0 else np.nan))
    return float(margin / (3.0 * sd))


def capability(*, values: pd.DataFrame, kpi: KPI, months: Sequence[str]) -> Capability:
    """Capability of the orders in ``months`` against the KPI target (formulas in the module docstring).

    Returns NaN indices when the KPI has no target or no orders in ``months``.
    """
    months = tuple(months)
    v = values.loc[values["month"].isin(months), "value"].to_numpy(dtype=float)
    n = int(v.size)
    mean = float(v.mean()) if n else float("nan")
    target = kpi.target
    nan = float("nan")
    if target is None or n == 0:
        return Capability(months, n, mean, target, nan, nan, nan)
    if kpi.kind == "duration":
        within = float(np.mean(v <= target) if kpi.direction == "max" else np.mean(v >= target))
        if kpi.log_transform:
            if (v <= 0).any() or target <= 0:
                raise AnalysisError(f"KPI {kpi.code!r}: times and target must be positive for log_transform")
            x, t = np.log(v), float(np.log(target))
        else:
            x, t = v, float(target)
        sd = float(np.std(x, ddof=1)) if n > 1 else nan
        index = ppk(mean=float(x.mean()), sd=sd, target=t, direction=kpi.direction)
        return Capability(months, n, mean, target, index, within, index)
    if kpi.direction == "min":
        ratio = mean / target if target > 0 else float("inf")
    else:
        ratio = (1 - mean) / (1 - target) if target < 1 else nan
    return Capability(months, n, mean, target, float(ratio), mean if kpi.direction == "min" else 1 - mean, nan)


def status_of(*, kpi: KPI, recent_signals: int, capability_index: float) -> str:
    """The status rule of the ``kpi_status`` table (module docstring): no_target, out_of_control,
    on_target (capability >= 1) or warning."""
    if kpi.target is None:
        return "no_target"
    if recent_signals > 0:
        return "out_of_control"
    # NaN (no orders in the recent months) cannot show the target is met.
    return "on_target" if capability_index >= 1 else "warning"


def sustained_shift_start(chart: ControlChart, *, run: int = SHIFT_RUN) -> str | None:
    """First month after the baseline that starts a sustained shift, or None.

    A sustained shift is ``run`` consecutive plotted months (gaps skipped) all flagged by a run rule on the
    individuals / p chart on the same side of the centre line. One flagged month on its own is an outlier
    (it is still listed among the signals), not a shift.
    """
    if run < 1:
        raise AnalysisError(f"shift run = {run}; expected at least 1")
    pts = chart.points.reset_index(drop=True)
    plotted = pts.loc[(pts["n"] > 0) & ~pts["baseline"].astype(bool), "month"].to_numpy(dtype=object)
    sig = chart.signals.loc[(chart.signals["chart"] != "moving_range") & ~chart.signals["baseline"]]
    starts = []
    for side in ("above", "below"):
        flagged = np.isin(plotted, sig.loc[sig["side"] == side, "month"].to_numpy(dtype=object))
        ends = np.flatnonzero(_window_count(flagged, run) >= run)
        if ends.size:
            starts.append(str(plotted[ends[0] - run + 1]))
    return min(starts) if starts else None


def monitor_kpi(*, records: pd.DataFrame, kpi: KPI, baseline_months: int, rules: Iterable[str] = RULES,
                group_column: str | None = None, group_levels: Sequence[str] = (), by_group: bool = False,
                recent_months: int = 3, shift_run: int = SHIFT_RUN) -> KPIMonitoring:
    """Charts, capability, status and shift detection of one KPI.

    ``first_signal_month`` is the first month after the baseline flagged on the all-clients individuals /
    p chart; ``shift_detected_month`` the start of the first sustained shift there
    (:func:`sustained_shift_start` with ``run = shift_run``), or None.
    """
    if recent_months < 1:
        raise AnalysisError(f"recent_months = {recent_months}; expected at least 1")
    rules = list(rules)
    values, n_not_counted = _kpi_values(records, kpi, group_column if by_group else None)
    notes: list[Note] = []
    if values.empty:
        raise AnalysisError(f"KPI {kpi.code!r}: no order in the service records has the values it needs "
                            f"(timestamp {kpi.timestamp!r})")
    if n_not_counted:
        notes.append(Note("not_counted", kpi.code, {"n": n_not_counted, "total": n_not_counted + len(values)}))
    months = _month_range(values["month"])
    main = control_chart(subgroups=monthly_subgroups(values=values, kpi=kpi, months=months), kpi=kpi,
                         baseline_months=baseline_months, rules=rules)
    charts = [main]
    if by_group and group_column is not None:
        levels = list(group_levels) + sorted(set(values["group"].dropna()) - set(group_levels))
        for level in levels:
            part = values.loc[values["group"] == level]
            if part.empty:
                notes.append(Note("group_empty", kpi.code, {"group": level}))
                continue
            charts.append(control_chart(subgroups=monthly_subgroups(values=part, kpi=kpi, months=months), kpi=kpi,
                                        baseline_months=baseline_months, rules=rules, group=str(level)))
    for c in charts:
        notes.extend(c.notes)
    recent = tuple(months[-recent_months:])
    cap = capability(values=values, kpi=kpi, months=recent)
    main_signals = main.signals.loc[main.signals["chart"] != "moving_range"]
    recent_count = int(main.signals["month"].isin(recent).sum())
    after = main_signals.loc[~main_signals["baseline"], "month"]
    if kpi.target is None:
        notes.append(Note("no_target", kpi.code))
    return KPIMonitoring(kpi=kpi, values=values, charts=tuple(charts), capability=cap,
                         status=status_of(kpi=kpi, recent_signals=recent_count, capability_index=cap.capability),
                         shift_detected_month=sustained_shift_start(main, run=shift_run),
                         first_signal_month=str(after.min()) if len(after) else None, notes=tuple(notes))


def monitor_kpis(*, records: pd.DataFrame | None, cfg: StudyConfig, baseline_months: int | None = None,
                 by_group: bool | None = None, recent_months: int = 3) -> MonitoringResult:
    """Monitor every KPI of the study config on the service records.

    Parameters
    ----------
    records
        The ``service_records`` table, or None when the study has none (then the result is empty and says
        why in ``skipped``).
    cfg
        The study config (KPIs, group column, ``analysis.monitoring``).
    baseline_months, by_group
        Override ``analysis.monitoring.baseline_months`` / ``by_group`` (None = as in the config).
    recent_months
        Months at the end of the data judged for status and capability.

    Returns
    -------
    MonitoringResult
        Per-KPI results and the ``kpi_status``, ``kpi_monthly`` and signal tables.
    """
    params = cfg.analysis.monitoring
    baseline_months = int(baseline_months if baseline_months is not None else params.baseline_months)
    by_group = bool(by_group if by_group is not None else getattr(params, "by_group", False))
    if baseline_months < 2:
        raise AnalysisError(f"baseline_months = {baseline_months}; expected at least 2")
    skipped = None
    if records is None:
        skipped = "no_records"
    elif not cfg.kpis:
        skipped = "no_kpis"
    results: list[KPIMonitoring] = []
    if skipped is None:
        group_column = cfg.group.column if cfg.group else None
        levels = list(cfg.group.levels) if cfg.group else []
        for kpi in cfg.kpis:
            results.append(monitor_kpi(records=records, kpi=kpi, baseline_months=baseline_months,
                                       rules=params.rules, group_column=group_column, group_levels=levels,
                                       by_group=by_group and group_column is not None,
                                       recent_months=recent_months))
    status = _status_table(results)
    monthly = _monthly_table(results)
    signals = _signal_table(results)
    return MonitoringResult(kpis=tuple(results), status=status, monthly=monthly, signals=signals,
                            baseline_months=baseline_months, recent_months=recent_months, by_group=by_group,
                            skipped=skipped)


def kpi_status(*, records: pd.DataFrame | None, cfg: StudyConfig, baseline_months: int | None = None,
               by_group: bool | None = None, recent_months: int = 3) -> pd.DataFrame:
    """The ``kpi_status`` table: one row per stage and KPI (see :func:`monitor_kpis` and the module docstring).

    Columns ``stage, kpi, status, mean, target, capability`` (docs/architecture.md) followed by ``kind``,
    ``unit``, ``direction``, ``chart``, ``n_orders``, ``share_within_target``, ``ppk``, ``recent_from``,
    ``recent_to``, ``signals_recent``, ``first_signal_month``, ``shift_detected_month`` and ``note`` (English
    text).
    """
    return monitor_kpis(records=records, cfg=cfg, baseline_months=baseline_months, by_group=by_group,
                        recent_months=recent_months).status


def _status_table(results: Sequence[KPIMonitoring]) -> pd.DataFrame:
    rows = []
    for r in results:
        cap, k = r.capability, r.kpi
        recent = r.chart.signals["month"].isin(cap.months)
        rows.append({"stage": k.stage, "kpi": k.code, "status": r.status, "mean": cap.mean,
                     "target": np.nan if k.target is None else float(k.target), "capability": cap.capability,
                     "kind": k.kind, "unit": k.unit, "direction": k.direction, "chart": r.chart.kind,
                     "n_orders": cap.n_orders, "share_within_target": cap.share_within_target, "ppk": cap.ppk,
                     "recent_from": cap.months[0], "recent_to": cap.months[-1],
                     "signals_recent": int(recent.sum()), "first_signal_month": r.first_signal_month,
                     "shift_detected_month": r.shift_detected_month,
                     "note": "; ".join(n.text("en") for n in r.notes if n.key in ("no_target", "gap_months"))})
    out = pd.DataFrame(rows, columns=STATUS_COLUMNS)
    for col in ("stage", "kpi", "status", "kind", "unit", "direction", "chart", "recent_from", "recent_to",
                "first_signal_month", "shift_detected_month", "note"):
        out[col] = out[col].astype("string")
    for col in ("mean", "target", "capability", "share_within_target", "ppk"):
        out[col] = out[col].astype(float)
    for col in ("n_orders", "signals_recent"):
        out[col] = out[col].astype(int)
    return out


def _monthly_table(results: Sequence[KPIMonitoring]) -> pd.DataFrame:
    frames = [c.points.assign(stage=r.kpi.stage, kpi=r.kpi.code, group=c.group)
              for r in results for c in r.charts]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string" if c in ("stage", "kpi", "group", "month", "scale",
                                                                  "signal") else float)
                             for c in MONTHLY_COLUMNS})
    out = pd.concat(frames, ignore_index=True)[MONTHLY_COLUMNS]
    for col in ("stage", "kpi", "group", "month", "scale", "signal"):
        out[col] = out[col].astype("string")
    out["baseline"] = out["baseline"].astype(bool)
    return out


def _signal_table(results: Sequence[KPIMonitoring]) -> pd.DataFrame:
    frames = [c.signals.assign(stage=r.kpi.stage, kpi=r.kpi.code, group=c.group)
              for r in results for c in r.charts if len(c.signals)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "baseline" else "string") for c in SIGNAL_COLUMNS})
    out = pd.concat(frames, ignore_index=True)[SIGNAL_COLUMNS]
    for col in SIGNAL_COLUMNS[:-1]:
        out[col] = out[col].astype("string")
    return out


# --- inputs, outputs and results JSON -------------------------------------------------------------
def load_service_records(cfg: StudyConfig) -> pd.DataFrame | None:
    """The study's processed ``service_records`` table, or None when the config has no service records."""
    if cfg.data.service_records is None:
        return None
    from .data import load_processed

    return load_processed(cfg).service_records


def write_tables(*, cfg: StudyConfig, result: MonitoringResult) -> list:
    """Write ``kpi_status`` and ``kpi_monthly`` to ``data/processed/<study>/`` (parquet + CSV)."""
    from .io import write_table

    return [write_table(result.status, cfg.paths.processed_table("kpi_status")),
            write_table(result.monthly, cfg.paths.processed_table("kpi_monthly"))]


def results_summary(result: MonitoringResult) -> dict[str, Any]:
    """Key numbers for ``reports/<study>/results/monitoring.json`` (keys documented in docs/results.md).

    ``kpi_status``: {kpi: status}; ``signals``: {kpi: [{month, chart, rule, side, group}]} (all charts);
    ``shift_detected_month``: {kpi: start of the first sustained shift, "YYYY-MM" or None};
    ``first_signal_month``: {kpi: first flagged month after the baseline or None}; plus ``baseline_months``, ``recent_months``,
    ``by_group``, ``n_kpis``, ``n_out_of_control``, ``skipped``.
    """
    signals = {r.kpi.code: [{"month": str(s.month), "chart": str(s.chart), "rule": str(s.rule),
                             "side": str(s.side), "group": c.group}
                            for c in r.charts for s in c.signals.itertuples()] for r in result.kpis}
    return {"kpi_status": {r.kpi.code: r.status for r in result.kpis},
            "signals": signals,
            "shift_detected_month": {r.kpi.code: r.shift_detected_month for r in result.kpis},
            "first_signal_month": {r.kpi.code: r.first_signal_month for r in result.kpis},
            "capability": {r.kpi.code: r.capability.capability for r in result.kpis},
            "baseline_months": result.baseline_months, "recent_months": result.recent_months,
            "by_group": result.by_group, "n_kpis": len(result.kpis),
            "n_out_of_control": sum(r.status == "out_of_control" for r in result.kpis),
            "skipped": result.skipped}


def model_link(*, cfg: StudyConfig, result: MonitoringResult) -> pd.DataFrame | None:
    """KPI status next to the model factors each KPI measures (the KPI's ``factors``).

    Returns None unless the supervision model has been run for this study, i.e. its processed table
    ``model_factors`` (written by the model notebook) exists. Columns: ``stage``, ``kpi``, ``status``,
    ``factor``, ``factor_label``, and the factor's overall (``group == "all"``) ``priority`` (0-1, 1 = most
    urgent), ``rank`` (1 = first) and IPA ``quadrant`` from the model. Rows are ordered by KPI (config order)
    and the factor's rank.
    """
    from .io import read_table

    path = cfg.paths.processed_table("model_factors")
    if not path.is_file() or not result.kpis:
        return None
    factors = read_table(path)
    need = {"factor", "group", "priority", "rank"}
    if not need <= set(factors.columns):
        raise AnalysisError(f"{path}: missing column(s) {sorted(need - set(factors.columns))} (expected the "
                            "model notebook's model_factors table)")
    overall = factors.loc[factors["group"].astype(str) == ALL_GROUPS].drop_duplicates("factor").set_index("factor")
    labels = cfg.factors.set_index("factor")[f"label_{cfg.language}"].to_dict()
    rows = [{"stage": r.kpi.stage, "kpi": r.kpi.code, "status": r.status, "factor": f,
             "factor_label": labels.get(f, f),
             "priority": float(overall["priority"].get(f, np.nan)),
             "rank": overall["rank"].get(f, pd.NA),
             "quadrant": overall["quadrant"].get(f, pd.NA) if "quadrant" in overall else pd.NA,
             "_order": i}
            for i, r in enumerate(result.kpis) for f in r.kpi.factors]
    out = pd.DataFrame(rows).sort_values(["_order", "rank"], kind="mergesort", na_position="last")
    out = out.drop(columns="_order").reset_index(drop=True)
    return out.astype({"stage": "string", "kpi": "string", "status": "string", "factor": "string",
                       "factor_label": "string", "rank": "Int64", "quadrant": "string"})


# --- report helpers (used by notebooks/05_quality_monitoring.ipynb) ---------------------------------------
_STATUS_KEY = {"on_target": "on_target", "warning": "warning_status", "out_of_control": "out_of_control",
               "no_target": "no_target"}


def status_label(status: str, lang: str) -> str:
    """The status in the report language."""
    from . import i18n

    return i18n.label("monitoring", _STATUS_KEY.get(status, status), lang)


def _display_scale(chart: ControlChart, value: float) -> float:
    return float(np.exp(value)) if chart.scale == "log" else float(value)


def show_overview(rep, result: MonitoringResult) -> None:
    """Introduction and method (or, for a study without service records, a visible 'skipped' box)."""
    rep.paragraph("intro")
    if result.skipped is not None:
        rep.skip(rep.t(f"skip_{result.skipped}"))
        return
    rep.heading("method_heading")
    rep.paragraph("method", baseline=result.baseline_months)
    rep.paragraph("status_rule", recent=result.recent_months)
    if result.by_group:
        rep.paragraph("by_group_on")


def signal_table(chart: ControlChart, lang: str) -> pd.DataFrame:
    """The chart's rule violations with localised rule, chart and side names."""
    from . import i18n

    def lab(key: str) -> str:
        return i18n.label("monitoring", key, lang)

    s = chart.signals
    if s.empty:
        return pd.DataFrame(columns=["month", "chart", "side", "rule", "baseline"])
    rows = (s.assign(rule=[lab(f"rule_{r}") for r in s["rule"]])
            .groupby(["month", "chart", "side", "baseline"], sort=True)["rule"].agg("; ".join).reset_index())
    return pd.DataFrame({"month": rows["month"].astype(str),
                         "chart": [lab("moving_range") if c == "moving_range" else lab("individuals")
                                   for c in rows["chart"]],
                         "side": [lab(x) for x in rows["side"]], "rule": rows["rule"].astype(str),
                         "baseline": [lab("baseline") if b else "" for b in rows["baseline"]]})


def show_kpi(rep, k: KPIMonitoring) -> None:
    """Definition, target, chart(s), rule violations, capability, status and notes of one KPI."""
    from .plots import monitoring as plots

    lang, kpi, chart, cap = rep.lang, k.kpi, k.chart, k.capability
    unit = rep.label(f"unit_{kpi.unit}")
    chart_key = "chart_p" if chart.kind == "p" else ("chart_xmr_log" if chart.scale == "log" else "chart_xmr")
    rep.heading("kpi_heading", level=3, title=kpi.name(lang), kpi=kpi.code)
    rep.paragraph("kpi_definition", definition=kpi.definition(lang), unit=unit, chart=rep.label(chart_key),
                  n=len(k.values))
    if kpi.target is None:
        rep.paragraph("kpi_no_target")
    else:
        target = rep.num(kpi.target, 2) if kpi.unit == "share" else f"{rep.num(kpi.target, 1)} {unit}"
        rep.paragraph(f"kpi_target_{kpi.direction}", target=target)
    first, last = chart.baseline_months[0], chart.baseline_months[-1]
    pts = chart.points
    if chart.kind == "xmr":
        rep.paragraph("kpi_limits_xmr", first=first, last=last, center=_display_scale(chart, chart.center),
                      lcl=_display_scale(chart, float(pts["lcl"].iloc[0])),
                      ucl=_display_scale(chart, float(pts["ucl"].iloc[0])),
                      mr=rep.num(float(pts["mr_center"].iloc[0]), 3), mr_ucl=rep.num(float(pts["mr_ucl"].iloc[0]), 3),
                      mr_scale=rep.label("ln_units") if chart.scale == "log" else "",
                      scale_note=rep.label("log_scale_note") if chart.scale == "log" else "")
    else:
        rep.paragraph("kpi_limits_p", first=first, last=last, center=rep.num(chart.center, 3))
    rep.figure(plots.control_chart_figure(chart, kpi=kpi, lang=lang))
    if len(chart.signals):
        rep.paragraph("kpi_signals")
        rep.table(signal_table(chart, lang))
    else:
        rep.paragraph("kpi_no_signals")
    if k.first_signal_month:
        rep.paragraph("kpi_first_signal", month=k.first_signal_month)
    if k.shift_detected_month:
        rep.paragraph("kpi_shift", month=k.shift_detected_month, run=SHIFT_RUN)
    span = dict(first=cap.months[0], last=cap.months[-1], n=cap.n_orders)
    if kpi.target is None:
        rep.paragraph("kpi_capability_none", mean=cap.mean, unit=unit, **span)
    elif kpi.kind == "duration":
        rep.paragraph("kpi_capability_time", mean=cap.mean, unit=unit, cap=cap.capability,
                      share=rep.num(100 * cap.share_within_target, 0) + " %", **span)
    else:
        rep.paragraph("kpi_capability_rate", mean=rep.num(cap.mean, 3), target=rep.num(kpi.target, 3),
                      cap=cap.capability, **span)
    rep.paragraph("kpi_status_line", status=status_label(k.status, lang))
    names = rep.cfg.group_labels(lang)
    for note in k.notes:
        rep.callout(note.text(lang, group_labels=names), kind="info")
    groups = [c for c in k.charts if c.group != ALL_GROUPS]
    if groups:
        rep.heading("group_charts_heading", level=4)
        for c in groups:
            rep.figure(plots.control_chart_figure(c, kpi=kpi, lang=lang,
                                                  title=f"{kpi.name(lang)} — {names.get(c.group, c.group)}"))


def show_kpis(rep, result: MonitoringResult) -> None:
    """:func:`show_kpi` for every KPI, grouped under a heading per stage (stages in config order)."""
    for stage in rep.cfg.stages:
        ks = [k for k in result.kpis if k.kpi.stage == stage.code]
        if ks:
            rep.heading("stage_heading", stage=stage.code, label=stage.label(rep.lang))
        for k in ks:
            show_kpi(rep, k)


def status_display(status: pd.DataFrame, cfg: StudyConfig, lang: str) -> pd.DataFrame:
    """The ``kpi_status`` rows as shown in the report (KPI names and statuses localised)."""
    names = {k.code: k.name(lang) for k in cfg.kpis}
    return pd.DataFrame({"kpi_name": [names.get(k, k) for k in status["kpi"]],
                         "status": [status_label(s, lang) for s in status["status"]],
                         "mean": status["mean"].to_numpy(dtype=float),
                         "target": status["target"].to_numpy(dtype=float),
                         "capability": status["capability"].to_numpy(dtype=float),
                         "n_orders": status["n_orders"].to_numpy(dtype=int),
                         "signals_recent": status["signals_recent"].to_numpy(dtype=int),
                         "first_signal_month": status["first_signal_month"].fillna("–").astype(str),
                         "shift_detected_month": status["shift_detected_month"].fillna("–").astype(str)})


def show_status(rep, result: MonitoringResult) -> None:
    """A status table per stage, the counts by status and the overview figure."""
    from .plots import monitoring as plots

    if result.skipped is not None:
        return
    rep.heading("status_heading")
    counts = result.status["status"].value_counts()
    rep.paragraph("summary", n=len(result.status), n_out=int(counts.get("out_of_control", 0)),
                  n_warn=int(counts.get("warning", 0)), n_ok=int(counts.get("on_target", 0)),
                  n_none=int(counts.get("no_target", 0)))
    for stage in rep.cfg.stages:
        rows = result.status.loc[result.status["stage"] == stage.code]
        if len(rows):
            rep.paragraph("status_stage_caption", stage=stage.code, label=stage.label(rep.lang))
            rep.table(status_display(rows, rep.cfg, rep.lang), digits={"mean": 2, "target": 2, "capability": 2})
    rep.figure(plots.status_overview(result.status, cfg=rep.cfg, lang=rep.lang))


def model_with_status(*, cfg: StudyConfig, result: MonitoringResult, top_n: int | None = None):
    """The supervision model's diagram inputs with the KPIs' current status (feedback into the model).

    Returns ``(weights, kpis, top_factors)`` for :func:`research.plots.model.model_diagram`, or None when
    the model has not been run: ``weights`` are the model's overall factor rows (``model_factors``),
    ``kpis`` the KPI catalogue (:func:`research.model.kpi_catalogue`) with this run's ``status``, and
    ``top_factors`` the model's first ``top_n`` improvement areas.
    """
    from .io import read_table
    from .model import kpi_catalogue

    path = cfg.paths.processed_table("model_factors")
    if not path.is_file():
        return None
    factors = read_table(path)
    kpis = kpi_catalogue(cfg=cfg, factors=factors, kpi_status=result.status, lang=cfg.language)
    weights = factors.loc[factors["group"].astype(str) == ALL_GROUPS].drop_duplicates("factor")
    top_n = cfg.analysis.model.top_n if top_n is None else top_n
    top_factors = weights.sort_values("rank", kind="stable")["factor"].head(top_n).tolist()
    return weights.reset_index(drop=True), kpis, top_factors


def show_model_link(rep, result: MonitoringResult) -> None:
    """KPI status linked to the model factors each KPI measures, and the model diagram with the KPIs
    coloured by status (when the model has been run)."""
    if result.skipped is not None:
        return
    rep.heading("model_heading")
    link = model_link(cfg=rep.cfg, result=result)
    if link is None:
        rep.paragraph("model_absent")
        return
    rep.paragraph("model_link")
    names = {k.code: k.name(rep.lang) for k in rep.cfg.kpis}
    shown = link.assign(kpi=[names.get(k, k) for k in link["kpi"]],
                        status=[status_label(s, rep.lang) for s in link["status"]])
    shown = shown.drop(columns=["stage", "factor", "quadrant"]).rename(columns={"kpi": "kpi_name"})
    rep.table(shown, caption="model_caption", digits={"priority": 2})
    fed_back = model_with_status(cfg=rep.cfg, result=result)
    if fed_back is not None:
        from .plots.model import model_diagram

        weights, kpis, top_factors = fed_back
        rep.paragraph("model_diagram")
        stage_labels = {s.code: s.label(rep.lang) for s in rep.cfg.stages}
        rep.figure(model_diagram(weights=weights, kpis=kpis, stage_labels=stage_labels, highlight=top_factors,
                                 lang=rep.lang))


def record_results(rep, result: MonitoringResult) -> None:
    """Record the key numbers (:func:`results_summary`) and the notes (English) for the results JSON."""
    for key, value in results_summary(result).items():
        rep.record(key, value)
    rep.record("notes", [n.text("en") for n in result.notes])
