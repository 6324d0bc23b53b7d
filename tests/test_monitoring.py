"""Control charts of the stage KPIs (research.monitoring).

Expected values come from published worked examples (source and printed precision beside each value) or
from R (qcc 2.7, Scrucca 2004) as recorded in the test suite of the ``mistat`` Python package
(Kenett, Zacks & Gedeck 2022, ``mistat/qcc/tests/test_qcc_R.py``, "TestComparisonWithR").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from research import monitoring as mon
from research.config import KPI
from research.errors import AnalysisError

ROOT = Path(__file__).resolve().parents[1]

# NIST/SEMATECH e-Handbook of Statistical Methods, §6.3.2.2 "Individuals Control Charts", flow-rate example
# (https://www.itl.nist.gov/div898/handbook/pmc/section3/pmc322.htm): first 10 batches.
NIST_FLOWRATE = [49.6, 47.6, 49.9, 51.3, 47.8, 51.2, 52.6, 52.4, 53.6, 52.1]

# Montgomery, D. C., Introduction to Statistical Quality Control (6th ed., 2009), Example 6.5, Table 6.6:
# viscosity of an aircraft primer paint, 15 batches (= R qcc ``viscosity`` example in mistat's R comparison).
MONTGOMERY_VISCOSITY = [33.75, 33.05, 34.00, 33.81, 33.46, 34.02, 33.68, 33.27, 33.49, 33.20, 33.62, 33.00,
                        33.54, 33.12, 33.84]

# Montgomery (2009), Example 7.1, Table 7.1: nonconforming orange-juice cans in 30 samples of n = 50
# (the same data as NIST e-Handbook §6.3.3.2; R qcc dataset ``orangejuice``, trial samples).
ORANGE_JUICE = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22, 8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12,
                7, 13, 9, 6]
# Montgomery (2009), Example 7.1 continued, Table 7.2: 24 samples after the machine adjustment
# (R qcc dataset ``orangejuice2``, trial samples).
ORANGE_JUICE_2 = [9, 6, 12, 5, 6, 4, 6, 3, 7, 6, 2, 4, 3, 6, 5, 4, 8, 5, 6, 7, 5, 6, 3, 5]

# Pyzdek & Keller, The Handbook for Quality Management (2nd ed., McGraw-Hill 2013), Table 9.6
# "Raw Data for p Chart": bruised peaches per shipment, 1 or 2 crates of 250 (varying n); totals 8000, 1544.
PEACH_BRUISED = [47, 42, 55, 51, 46, 61, 39, 44, 41, 51, 88, 101, 101, 40, 48, 47, 50, 48, 57, 45, 43, 105, 98,
                 100, 96]
PEACH_N = [250] * 10 + [500] * 3 + [250] * 8 + [500] * 4


def _kpi(**kw) -> KPI:
    base = {"code": "k", "stage": "S1", "name": {"en": "K", "lt": "K"}, "definition": {"en": "d", "lt": "d"},
            "direction": "max", "timestamp": "inquiry_at"}
    base.update(kw)
    return KPI.model_validate(base)


RESPONSE = dict(code="inquiry_response_time", kind="duration", start="inquiry_at", end="response_at",
                unit="hours", target=24.0, log_transform=True)


# --- textbook limits -----------------------------------------------------------------------------------
def test_xmr_limits_nist_flowrate_example():
    lim = mon.xmr_limits(values=NIST_FLOWRATE)
    # NIST §6.3.2.2 prints Xbar = 50.81, MRbar = 1.8778, UCL = 55.8041, LCL = 45.8159 (4 decimals; NIST
    # uses 3*(MRbar/1.128), i.e. E2 = 3/1.128 as here).
    assert_allclose(lim.center, 50.81, atol=5e-5)
    assert_allclose(lim.mr_bar, 1.8778, atol=5e-5)
    assert_allclose(lim.ucl, 55.8041, atol=5e-5)
    assert_allclose(lim.lcl, 45.8159, atol=5e-5)
    assert_allclose(lim.ucl - lim.center, mon.E2 * lim.mr_bar, rtol=1e-12)
    assert_allclose(mon.E2, 2.66, atol=5e-3)  # tabulated E2 for n = 2 (printed to 2 decimals)


def test_xmr_limits_montgomery_viscosity_and_r_qcc():
    lim = mon.xmr_limits(values=MONTGOMERY_VISCOSITY)
    # Montgomery (2009) Example 6.5 prints x̄ = 33.52, MR̄ = 0.48, UCL = 34.80, LCL = 32.24 and for the
    # moving-range chart UCL = D4·MR̄ = 3.267(0.48) = 1.57 (2 decimals).
    assert_allclose([lim.center, lim.mr_bar, lim.ucl, lim.lcl, lim.mr_ucl],
                    [33.52, 0.48, 34.80, 32.24, 1.57], atol=5e-3)
    # R qcc 2.7: qcc(x, type = "xbar.one") -> center 33.52333, std.dev 0.4261651, limits 32.24484 34.80183
    # (qcc also estimates sigma as MR̄ / 1.128).
    assert_allclose([lim.center, lim.sigma, lim.lcl, lim.ucl], [33.52333, 0.4261651, 32.24484, 34.80183],
                    rtol=1e-6)


def test_p_chart_montgomery_orange_juice_and_r_qcc():
    counts = np.array(ORANGE_JUICE)
    lim = mon.p_chart_limits(counts=counts, sizes=np.full(30, 50))
    # Montgomery (2009) Example 7.1 prints p̄ = 0.2313, UCL = 0.4102, LCL = 0.0524 (4 decimals);
    # NIST §6.3.3.2 shows the same chart.
    assert_allclose([lim["center"].iloc[0], lim["ucl"].iloc[0], lim["lcl"].iloc[0]], [0.2313, 0.4102, 0.0524],
                    atol=5e-5)
    # R qcc 2.7: qcc(D[trial], sizes = size[trial], type = "p") -> center 0.2313333, limits 0.05242755 0.4102391
    assert_allclose([lim["center"].iloc[0], lim["lcl"].iloc[0], lim["ucl"].iloc[0]],
                    [0.2313333, 0.05242755, 0.4102391], rtol=1e-6)
    # Samples 15 and 23 plot above the UCL (Montgomery; qcc violations beyondLimits UCL = 15, 23).
    found = mon.western_electric(z=lim["z"], rules=["we1"])
    assert found["position"].tolist() == [14, 22]
    assert found["side"].tolist() == ["above", "above"]
    # Revised limits without samples 15 and 23: Montgomery prints p̄ = 0.2150, UCL = 0.3893, LCL = 0.0407;
    # R qcc 2.7: center 0.215, limits 0.04070284 0.3892972.
    keep = np.ones(30, dtype=bool)
    keep[[14, 22]] = False
    rev = mon.p_chart_limits(counts=counts, sizes=np.full(30, 50), baseline=keep)
    assert_allclose([rev["center"].iloc[0], rev["ucl"].iloc[0], rev["lcl"].iloc[0]], [0.2150, 0.3893, 0.0407],
                    atol=5e-5)
    assert_allclose([rev["center"].iloc[0], rev["lcl"].iloc[0], rev["ucl"].iloc[0]],
                    [0.215, 0.04070284, 0.3892972], rtol=1e-6)


def test_p_chart_lcl_floored_at_zero_montgomery_table_7_2():
    lim = mon.p_chart_limits(counts=ORANGE_JUICE_2, sizes=[50] * 24)
    # Montgomery (2009) Example 7.1 (new limits after the adjustment) prints p̄ = 0.1108, UCL = 0.2440,
    # LCL = 0 (the formula gives a negative value); R qcc 2.7: center 0.1108333, limits 0 0.2440207.
    assert_allclose([lim["center"].iloc[0], lim["ucl"].iloc[0], lim["lcl"].iloc[0]], [0.1108333, 0.2440207, 0.0],
                    rtol=1e-6, atol=1e-12)


def test_p_chart_varying_sample_size_pyzdek_peaches():
    lim = mon.p_chart_limits(counts=PEACH_BRUISED, sizes=PEACH_N)
    # Pyzdek & Keller (2013) Table 9.6 totals: 1544 bruised of 8000 -> p̄ = 0.193 (p̄ = ΣD/Σn, not the mean
    # of the 25 proportions, which is 0.1925).
    assert_allclose(lim["center"].iloc[0], 1544 / 8000, rtol=1e-12)
    # Limits by the book's formula p̄ ± 3·sqrt(p̄(1-p̄)/n) for the two crate counts, evaluated by hand:
    # n = 250: 0.193 ± 0.074880 -> 0.118120, 0.267880; n = 500: 0.193 ± 0.052948 -> 0.140052, 0.245948.
    n250 = np.array(PEACH_N) == 250
    assert_allclose(lim.loc[n250, "ucl"].unique(), [0.267880], atol=5e-7)
    assert_allclose(lim.loc[n250, "lcl"].unique(), [0.118120], atol=5e-7)
    assert_allclose(lim.loc[~n250, "ucl"].unique(), [0.245948], atol=5e-7)
    assert_allclose(lim.loc[~n250, "lcl"].unique(), [0.140052], atol=5e-7)


def test_ppk_montgomery_one_sided_example():
    # Montgomery (2009) §8.3.1: bottle bursting strength, x̄ = 264 psi, s = 32 psi, LSL = 200 psi:
    # Cpl = (264 - 200) / (3·32) = 0.67 (2 decimals).
    assert_allclose(mon.ppk(mean=264, sd=32, target=200, direction="min"), 0.67, atol=5e-3)
    assert_allclose(mon.ppk(mean=264, sd=32, target=200, direction="min"), 64 / 96, rtol=1e-12)
    assert_allclose(mon.ppk(mean=16, sd=2, target=20, direction="max"), 4 / 6, rtol=1e-12)


# --- run rules -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("z, rule, expected", [
    ([0, 3.1, 0, -3.5, 2.9], "we1", [(1, "above"), (3, "below")]),
    ([2.5, 0, 2.1, 0, -2.2, -2.3], "we2", [(2, "above"), (5, "below")]),
    ([1.5, 1.2, 0.5, 1.1, 1.3, 0], "we3", [(4, "above")]),
    ([0.1] * 7 + [0.2, 0.3, -0.1], "we4", [(7, "above"), (8, "above")]),
    ([0.1] * 7 + [0.0, 0.3], "we4", []),  # a point on the centre line breaks the run
    ([1.5, np.nan, 1.5, 0.2, 1.2, 1.4], "we3", [(5, "above")]),  # gaps are skipped, not counted
])
def test_western_electric_rules_on_constructed_patterns(z, rule, expected):
    found = mon.western_electric(z=z, rules=[rule])
    assert list(zip(found["position"], found["side"], strict=True)) == expected
    assert (found["rule"] == rule).all()


def test_western_electric_rejects_unknown_rule():
    with pytest.raises(AnalysisError, match="unknown run rule"):
        mon.western_electric(z=[0.0], rules=["nelson9"])


# --- KPI values and charts on small records --------------------------------------------------------------
def _records(*, seed: int = 7, months: int = 18, per_month: int = 40, shift_from: int | None = None,
             empty_month: int | None = None) -> pd.DataFrame:
    """Service records with lognormal response times (median 8 h); after ``shift_from`` the median is 16 h."""
    rng = np.random.default_rng(seed)
    month = np.repeat(np.arange(months), per_month)
    if empty_month is not None:
        month = month[month != empty_month]
    n = month.size
    start = pd.Timestamp("2024-01-01")
    inquiry = pd.to_datetime([start + pd.DateOffset(months=int(m)) for m in month]) + pd.to_timedelta(
        rng.uniform(0, 27, n), unit="D")
    median = np.where(month >= (shift_from if shift_from is not None else months + 1), 16.0, 8.0)
    response = inquiry + pd.to_timedelta(median * np.exp(rng.normal(0, 0.6, n)), unit="h")
    signed = response + pd.to_timedelta(rng.uniform(2, 10, n), unit="D")
    planned = (signed + pd.to_timedelta(30, unit="D")).normalize()
    actual = signed + pd.to_timedelta(rng.normal(25, 5, n), unit="D")
    complaint = (rng.uniform(size=n) < 0.06).astype(int)
    complaint_at = pd.Series(actual + pd.to_timedelta(5, unit="D")).where(complaint == 1)
    resolved = complaint_at + pd.to_timedelta(rng.uniform(1, 6, n), unit="D")
    return pd.DataFrame({
        "order_id": [f"O{i:04d}" for i in range(n)], "client_id": [f"C{i % 50:03d}" for i in range(n)],
        "origin": np.where(rng.uniform(size=n) < 0.4, "foreign", "lithuanian"),
        "inquiry_at": inquiry, "response_at": response, "contract_signed_at": signed,
        "planned_delivery": planned, "actual_delivery": actual,
        "contract_terms_met": (rng.uniform(size=n) < 0.96).astype(int), "complaint": complaint,
        "complaint_at": complaint_at, "complaint_resolved_at": resolved})


def test_kpi_values_duration_rate_and_on_time():
    rec = pd.DataFrame({
        "order_id": ["a", "b", "c"],
        "inquiry_at": pd.to_datetime(["2024-01-03 09:00", "2024-01-20 10:00", "2024-02-01 08:00"]),
        "response_at": pd.to_datetime(["2024-01-03 15:30", None, "2024-02-02 08:00"]),
        "planned_delivery": pd.to_datetime(["2024-03-01", "2024-03-05", "2024-03-10"]),
        "actual_delivery": pd.to_datetime(["2024-03-01 16:00", "2024-03-06 09:00", None]),
        "complaint": [0, 1, 0]})
    t = mon.kpi_values(records=rec, kpi=_kpi(**RESPONSE))
    assert t["order_id"].tolist() == ["a", "c"]  # b has no response: not counted
    assert_allclose(t["value"], [6.5, 24.0])
    assert t["month"].tolist() == ["2024-01", "2024-02"]
    rate = mon.kpi_values(records=rec, kpi=_kpi(code="c", kind="rate", column="complaint", unit="share"))
    assert_allclose(rate["value"], [0, 1, 0])
    # planned dates at midnight mean "by the end of that day": a delivery at 16:00 on the day is on time
    on_time = mon.kpi_values(records=rec, kpi=_kpi(code="o", kind="on_time_rate", actual="actual_delivery",
                                                   planned="planned_delivery", unit="share", direction="min"))
    assert on_time["order_id"].tolist() == ["a", "b"] and on_time["value"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("change, message", [
    ({"response_at": pd.to_datetime(["2024-01-02", None, None])}, "before"),
    ({"inquiry_at": pd.to_datetime([None, None, "2024-01-01"])}, "no 'inquiry_at'"),
    ({"complaint": [0, 2, 1]}, "expected 0 or 1"),
    ({"inquiry_at": ["2024-01-01", "2024-01-02", "2024-01-03"]}, "expected datetime64"),
])
def test_kpi_values_bad_input_is_one_clear_line(change, message):
    rec = pd.DataFrame({"order_id": ["a", "b", "c"],
                        "inquiry_at": pd.to_datetime(["2024-01-03", "2024-01-04", "2024-01-05"]),
                        "response_at": pd.to_datetime(["2024-01-04", None, "2024-01-06"]), "complaint": [0, 1, 0]})
    rec = rec.assign(**change)
    kpi = _kpi(code="c", kind="rate", column="complaint", unit="share") if "complaint" in change else _kpi(**RESPONSE)
    with pytest.raises(AnalysisError, match=message) as err:
        mon.kpi_values(records=rec, kpi=kpi)
    assert "\n" not in str(err.value)


def test_planted_shift_in_response_time_is_flagged():
    kpi = _kpi(**RESPONSE)
    res = mon.monitor_kpi(records=_records(shift_from=12), kpi=kpi, baseline_months=6)
    assert res.shift_detected_month is not None
    assert "2025-01" <= res.shift_detected_month <= "2025-03"  # shift starts in month 13 = 2025-01
    assert res.status == "out_of_control"
    pts = res.chart.points
    assert pts["baseline"].sum() == 6 and res.chart.scale == "log"
    # the chart's value column is the monthly geometric mean
    jan = res.values.loc[res.values["month"] == "2024-01", "value"]
    assert_allclose(pts.loc[pts["month"] == "2024-01", "value"].iloc[0], np.exp(np.log(jan).mean()), rtol=1e-12)


def test_no_shift_no_signal_and_capability():
    kpi = _kpi(**RESPONSE)
    res = mon.monitor_kpi(records=_records(seed=11), kpi=kpi, baseline_months=6)
    recent = res.values.loc[res.values["month"].isin(res.capability.months), "value"].to_numpy()
    assert res.capability.months == ("2025-04", "2025-05", "2025-06")
    assert_allclose(res.capability.share_within_target, np.mean(recent <= 24.0), rtol=1e-12)
    assert_allclose(res.capability.ppk, (np.log(24) - np.log(recent).mean()) / (3 * np.log(recent).std(ddof=1)),
                    rtol=1e-12)
    expected = "out_of_control" if res.chart.signals["month"].isin(res.capability.months).any() else (
        "on_target" if res.capability.capability >= 1 else "warning")
    assert res.status == expected


def test_month_without_orders_is_a_gap_with_a_note():
    kpi = _kpi(**RESPONSE)
    res = mon.monitor_kpi(records=_records(empty_month=8), kpi=kpi, baseline_months=6)
    pts = res.chart.points.set_index("month")
    assert pts.loc["2024-09", "n"] == 0 and np.isnan(pts.loc["2024-09", "statistic"])
    assert len(pts) == 18  # the gap month keeps its place on the time axis
    gap = [n for n in res.notes if n.key == "gap_months"]
    assert len(gap) == 1 and "2024-09" in gap[0].text("en") and "2024-09" in gap[0].text("lt")
    assert not res.chart.signals["month"].eq("2024-09").any()


def _subgroups(stat, n=40):
    months = [str(p) for p in pd.period_range("2024-01", periods=len(stat), freq="M")]
    stat = np.asarray(stat, dtype=float)
    return pd.DataFrame({"month": months, "n": np.where(np.isnan(stat), 0, n), "events": np.nan, "mean": stat,
                         "statistic": stat, "value": stat})


def test_sustained_shift_needs_three_flagged_months_in_a_row():
    kpi = _kpi(**{**RESPONSE, "log_transform": False})
    # baseline 10/11 alternating (centre 10.5, MR̄ 1, limits 10.5 ± 2.66); one outlier, then a lasting shift
    stat = [10, 11] * 3 + [20, 10.5, 11, 10] + [20, 21, 20, 21]
    chart = mon.control_chart(subgroups=_subgroups(stat), kpi=kpi, baseline_months=6)
    assert chart.signals.loc[chart.signals["chart"] == "individuals", "month"].min() == "2024-07"
    assert mon.sustained_shift_start(chart) == "2024-11"
    assert mon.sustained_shift_start(chart, run=1) == "2024-07"
    # a gap month inside the run is skipped, not a break
    stat_gap = [10, 11] * 3 + [10.5, 20, np.nan, 21, 20]
    chart = mon.control_chart(subgroups=_subgroups(stat_gap), kpi=kpi, baseline_months=6)
    assert mon.sustained_shift_start(chart) == "2024-08"


def test_thin_baseline_gets_a_note():
    kpi = _kpi(**{**RESPONSE, "log_transform": False})
    chart = mon.control_chart(subgroups=_subgroups([10, 11] * 5, n=4), kpi=kpi, baseline_months=6)
    thin = [n for n in chart.notes if n.key == "thin_baseline"]
    assert len(thin) == 1 and thin[0].values["n"] == 24
    rate = _kpi(code="c", kind="rate", column="complaint", unit="share", target=0.08)
    sub = _subgroups([0.02] * 8, n=50).assign(events=1.0)
    chart = mon.control_chart(subgroups=sub, kpi=rate, baseline_months=6)  # 300 orders, p̄ = 0.02: 6 events
    assert [n.key for n in chart.notes] == ["thin_baseline"]


def test_kpi_without_target_has_status_no_target_and_a_note():
    kpi = _kpi(**{**RESPONSE, "target": None})
    res = mon.monitor_kpi(records=_records(), kpi=kpi, baseline_months=6)
    assert res.status == "no_target"
    assert np.isnan(res.capability.capability)
    assert any(n.key == "no_target" for n in res.notes)
    assert "no target" in [n for n in res.notes if n.key == "no_target"][0].text("en")


def test_fewer_than_two_baseline_subgroups_is_an_analysis_error():
    kpi = _kpi(**RESPONSE)
    rec = _records(months=4)
    rec = rec.loc[rec["inquiry_at"] >= "2024-02-01"]  # first month 2024-02, second 2024-03 missing below
    rec = rec.loc[(rec["inquiry_at"] < "2024-03-01") | (rec["inquiry_at"] >= "2024-04-01")]
    with pytest.raises(AnalysisError, match="at least 2 are needed"):
        mon.monitor_kpi(records=rec, kpi=kpi, baseline_months=2)


def test_p_chart_kpi_and_group_charts(demo_cfg):
    rec = _records()
    res = mon.monitor_kpis(records=rec, cfg=demo_cfg, by_group=True, baseline_months=6)
    assert list(res.status["kpi"]) == [k.code for k in demo_cfg.kpis]
    assert list(res.status.columns[:6]) == ["stage", "kpi", "status", "mean", "target", "capability"]
    assert set(res.status["status"]) <= set(mon.STATUSES)
    complaint = next(k for k in res.kpis if k.kpi.code == "complaint_rate")
    assert complaint.chart.kind == "p" and {c.group for c in complaint.charts} == {"all", "foreign", "lithuanian"}
    pts = complaint.chart.points
    with_orders = pts["n"] > 0
    # stepped limits: every month's limits follow its own n (p̄ from the baseline)
    p_bar = complaint.chart.center
    assert_allclose(pts.loc[with_orders, "ucl"],
                    np.minimum(1, p_bar + 3 * np.sqrt(p_bar * (1 - p_bar) / pts.loc[with_orders, "n"])), rtol=1e-12)
    assert set(res.monthly["group"]) == {"all", "foreign", "lithuanian"}
    summary = mon.results_summary(res)
    assert set(summary["kpi_status"]) == {k.code for k in demo_cfg.kpis}
    json.dumps(summary)  # plain JSON types only


def test_no_service_records_gives_an_empty_result(demo_cfg):
    res = mon.monitor_kpis(records=None, cfg=demo_cfg)
    assert res.skipped == "no_records" and res.kpis == ()
    assert res.status.empty and list(res.status.columns) == mon.STATUS_COLUMNS
    assert res.monthly.empty and res.signals.empty
    assert mon.results_summary(res)["kpi_status"] == {}


def test_figures_draw(demo_cfg):
    import matplotlib

    matplotlib.use("Agg")
    from research.plots import monitoring as plots

    res = mon.monitor_kpis(records=_records(shift_from=12, empty_month=8), cfg=demo_cfg, baseline_months=6)
    for k in res.kpis:
        fig = plots.control_chart_figure(k.chart, kpi=k.kpi, lang="lt")
        assert len(fig.axes) == (2 if k.chart.kind == "xmr" else 1)
    fig = plots.status_overview(res.status, cfg=demo_cfg, lang="en")
    assert len(fig.axes) >= 1


def test_model_link_uses_the_model_factor_priorities(demo_cfg, monkeypatch, tmp_path):
    from research import paths
    from research.io import write_table

    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path)
    res = mon.monitor_kpis(records=_records(), cfg=demo_cfg, baseline_months=6)
    assert mon.model_link(cfg=demo_cfg, result=res) is None  # model not run yet
    factors = pd.DataFrame({"factor": ["S1_RESP", "S1_ACCESS", "S1_RESP"], "group": ["all", "all", "foreign"],
                            "priority": [0.4, 1.0, 0.9], "rank": [2, 1, 1], "quadrant": ["a", "b", "c"]})
    write_table(factors, demo_cfg.paths.processed_table("model_factors"))
    link = mon.model_link(cfg=demo_cfg, result=res)
    first = link.loc[link["kpi"] == "inquiry_response_time"]
    assert first["factor"].tolist() == ["S1_ACCESS", "S1_RESP"]  # by the model's rank
    assert_allclose(first["priority"], [1.0, 0.4])
    assert len(link) == sum(len(k.factors) for k in demo_cfg.kpis)


def test_monitoring_feeds_kpi_status_back_into_the_model_diagram(demo_cfg, monkeypatch, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from research import paths
    from research.io import write_table
    from research.plots.model import STATUS_COLOURS, model_diagram

    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path)
    res = mon.monitor_kpis(records=_records(shift_from=12), cfg=demo_cfg, baseline_months=6)
    assert mon.model_with_status(cfg=demo_cfg, result=res) is None  # model not run yet
    cat = demo_cfg.factors
    factors = pd.DataFrame({"stage": cat["stage"], "factor": cat["factor"], "label": cat["label_en"],
                            "group": "all", "weight": 1 / 18, "weight_stage": 1 / 6,
                            "priority": np.linspace(1, 0, 18), "rank": np.arange(1, 19), "quadrant": "x"})
    write_table(factors, demo_cfg.paths.processed_table("model_factors"))
    weights, kpis, top = mon.model_with_status(cfg=demo_cfg, result=res, top_n=2)
    assert top == ["S1_RESP", "S1_NEEDS"] and len(weights) == 18
    expected = res.status.drop_duplicates("kpi").set_index("kpi")["status"]
    assert kpis.set_index("kpi")["status"].to_dict() == expected.to_dict()
    fig = model_diagram(weights=weights, kpis=kpis, stage_labels={s.code: s.label.en for s in demo_cfg.stages},
                        highlight=top)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [mon.status_label(s, "en") for s in STATUS_COLOURS
                                                          if (kpis["status"] == s).any()]


def test_locale_has_both_languages_for_every_key():
    import yaml

    texts = yaml.safe_load((ROOT / "src" / "research" / "locales" / "monitoring.yaml").read_text(encoding="utf-8"))
    missing = [k for k, v in texts.items() if not (isinstance(v, dict) and v.get("en") and v.get("lt"))]
    assert missing == []


@pytest.mark.parametrize("lang", ["en", "lt"])
def test_report_helpers_show_every_part(demo_cfg, monkeypatch, lang):
    import matplotlib

    matplotlib.use("Agg")
    from research import report
    from research.report import Reporter

    shown: list[str] = []
    monkeypatch.setattr(report, "_html", shown.append)
    monkeypatch.setattr(report, "_display", lambda obj: None)
    cfg = demo_cfg.model_copy(update={"language": lang})
    kpis = [k if k.code != "delivery_lead_time" else k.model_copy(update={"target": None}) for k in cfg.kpis]
    cfg = cfg.model_copy(update={"kpis": kpis})
    rep = Reporter(cfg, "monitoring")
    res = mon.monitor_kpis(records=_records(shift_from=12, empty_month=8), cfg=cfg, baseline_months=6, by_group=True)
    mon.show_overview(rep, res)
    mon.show_kpis(rep, res)
    mon.show_status(rep, res)
    mon.show_model_link(rep, res)
    html = "\n".join(shown)
    assert html.count("<h3>") == len(cfg.kpis)
    assert mon.Note("no_target", "delivery_lead_time").text(lang) in html
    assert "2024-09" in html  # the gap month is named in a note
    assert res.status.set_index("kpi").loc["delivery_lead_time", "status"] == "no_target"


# --- demo study end to end (slow) ------------------------------------------------------------------------
def _prepared_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("monitoring_out")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(out)}
    subprocess.run([sys.executable, "-m", "research.cli", "prepare", "--study", "studies/demo/study.yaml"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    if not (ROOT / "src" / "research" / "data.py").is_file() or not (ROOT / "data" / "raw" / "demo").is_dir():
        pytest.skip("research.data or the demo data are not there yet")
    return _prepared_demo(tmp_path_factory)


def _in_subprocess(out: Path, code: str) -> str:
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(out)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.slow
def test_demo_planted_process_shift_is_flagged(demo_output):
    truth = json.loads((ROOT / "data" / "raw" / "demo" / "truth.json").read_text(encoding="utf-8"))
    shift = truth["service_records"]["process_shift"]
    code = ("import json; from research.config import load_study; from research import monitoring as m; "
            "cfg = load_study('studies/demo/study.yaml'); "
            "r = m.monitor_kpis(records=m.load_service_records(cfg), cfg=cfg); "
            "print(json.dumps(m.results_summary(r)))")
    summary = json.loads(_in_subprocess(demo_output, code))
    start = pd.Period(shift["start_month"], freq="M")
    for kpi in shift["kpis"]:
        detected = summary["shift_detected_month"][kpi]
        assert detected is not None, f"{kpi}: planted shift from {start} not flagged"
        # flagged from the month the shift starts, at the latest when rule 4 (8 in a row) completes
        assert start <= pd.Period(detected, freq="M") <= start + 7, (kpi, detected)
        assert summary["kpi_status"][kpi] == "out_of_control"


@pytest.mark.slow
def test_notebook_runs_on_demo(demo_output, tmp_path):
    code = ("from pathlib import Path; from notebook_runner import execute_notebook; "
            f"execute_notebook('05_quality_monitoring', Path({str(tmp_path)!r}), study='studies/demo/study.yaml')")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(demo_output),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    results = json.loads((demo_output / "reports" / "demo" / "results" / "monitoring.json").read_text())
    assert set(results["results"]["kpi_status"].values()) <= set(mon.STATUSES)
    assert set(results["results"]) >= {"kpi_status", "signals", "shift_detected_month"}
    for name in ("kpi_status", "kpi_monthly"):
        assert (demo_output / "data" / "processed" / "demo" / f"{name}.parquet").is_file()


@pytest.mark.slow
def test_notebook_skips_a_study_without_service_records(tmp_path):
    study = ROOT / "studies" / "example-it" / "study.yaml"
    if not study.is_file():
        pytest.skip("the example study without service records is not there")
    out = tmp_path / "out"
    code = ("from pathlib import Path; from notebook_runner import execute_notebook; "
            f"execute_notebook('05_quality_monitoring', Path({str(tmp_path)!r}), "
            "study='studies/example-it/study.yaml')")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(out),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    study_id = next(p.name for p in (out / "reports").iterdir())
    results = json.loads((out / "reports" / study_id / "results" / "monitoring.json").read_text())["results"]
    assert results["skipped"] == "no_records"
    assert results["kpi_status"] == {} and results["signals"] == {} and results["shift_detected_month"] == {}
