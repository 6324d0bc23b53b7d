"""Figures of the monitoring notebook: XmR charts, p-charts and the KPI status overview.

Every function returns a matplotlib Figure; texts come from ``locales/monitoring.yaml`` in ``lang``.
Months sit on an ordinal axis (one slot per calendar month), so a month without orders is a visible gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .. import i18n
from ..config import KPI, StudyConfig
from ..monitoring import ControlChart
from . import localise_axes, new_figure

STATUS_COLOURS = {"on_target": "#029e73", "warning": "#de8f05", "out_of_control": "#d55e00", "no_target": "#949494"}
_STATUS_LABEL_KEY = {"on_target": "on_target", "warning": "warning_status", "out_of_control": "out_of_control",
                     "no_target": "no_target"}
SIGNAL_COLOUR = "#d55e00"
POINT_COLOUR = "#0173b2"


def _t(key: str, lang: str, **values) -> str:
    return i18n.text("monitoring", key, lang, **values)


def status_label(status: str, lang: str) -> str:
    """Localised status name."""
    return i18n.label("monitoring", _STATUS_LABEL_KEY.get(status, status), lang)


def _month_axis(ax, months: list[str], lang: str) -> None:
    step = max(1, int(np.ceil(len(months) / 12)))
    ticks = np.arange(0, len(months), step)
    ax.set_xticks(ticks)
    ax.set_xticklabels([months[i] for i in ticks], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(months) - 0.4)
    ax.set_xlabel(_t("fig_month", lang))


def _shade_baseline(ax, points: pd.DataFrame) -> None:
    n_base = int(points["baseline"].sum())
    if n_base:
        ax.axvspan(-0.5, n_base - 0.5, color="#dddddd", alpha=0.5, lw=0, zorder=0)


def _mark_signals(ax, x: np.ndarray, y: np.ndarray, flagged: np.ndarray, labels: list[str]) -> None:
    ax.scatter(x[flagged], y[flagged], s=70, facecolors="none", edgecolors=SIGNAL_COLOUR, linewidths=1.8, zorder=5)
    for xi, yi, label in zip(x[flagged], y[flagged], labels, strict=True):
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7,
                    color=SIGNAL_COLOUR)


def _rule_numbers(signal: pd.Series) -> list[str]:
    return [",".join(r.replace("we", "") for r in str(s).split(",") if r) for s in signal]


def control_chart_figure(chart: ControlChart, *, kpi: KPI, lang: str = "en", title: str | None = None) -> Figure:
    """XmR chart (individuals over moving range) or p-chart (stepped limits) of one KPI.

    The baseline months are shaded, points flagged by a run rule are ringed and labelled with the rule
    number(s) (1-4, Western Electric); log-scale XmR charts are drawn back-transformed on a log axis.
    """
    pts = chart.points.reset_index(drop=True)
    months = pts["month"].astype(str).tolist()
    x = np.arange(len(pts), dtype=float)
    unit = i18n.label("monitoring", f"unit_{kpi.unit}", lang)
    log = chart.scale == "log"
    back = np.exp if log else (lambda v: v)
    if chart.kind == "xmr":
        fig, (ax, ax_mr) = new_figure(8.5, 6.0, nrows=2, sharex=True, height_ratios=[2.2, 1])
    else:
        fig, ax = new_figure(8.5, 4.2)
        ax_mr = None
    _shade_baseline(ax, pts)
    y = back(pts["statistic"].to_numpy(dtype=float))
    ax.plot(x, y, marker="o", ms=4, color=POINT_COLOUR, lw=1.2, zorder=3)
    center = back(pts["center"].to_numpy(dtype=float))
    if chart.kind == "xmr":
        ax.plot(x, center, color="#333333", lw=1)
        ax.plot(x, back(pts["ucl"].to_numpy(dtype=float)), color=SIGNAL_COLOUR, lw=1, ls="--")
        ax.plot(x, back(pts["lcl"].to_numpy(dtype=float)), color=SIGNAL_COLOUR, lw=1, ls="--")
    else:
        ax.step(x, center, where="mid", color="#333333", lw=1)
        ax.step(x, pts["ucl"].to_numpy(dtype=float), where="mid", color=SIGNAL_COLOUR, lw=1, ls="--")
        ax.step(x, pts["lcl"].to_numpy(dtype=float), where="mid", color=SIGNAL_COLOUR, lw=1, ls="--")
    if kpi.target is not None:
        ax.axhline(kpi.target, color="#029e73", lw=1, ls=":")
    flagged = (pts["signal"].astype(str) != "").to_numpy()
    _mark_signals(ax, x, y, flagged, _rule_numbers(pts.loc[flagged, "signal"]))
    if log:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _pos: i18n.fmt_number(float(f"{v:.3g}"), 1, lang).removesuffix(
            ",0").removesuffix(".0"))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel(_t("fig_geo_mean", lang, unit=unit))
    elif chart.kind == "xmr":
        ax.set_ylabel(_t("fig_mean", lang, unit=unit))
    else:
        ax.set_ylabel(_t("fig_rate", lang))
    handles = [Line2D([], [], color=POINT_COLOUR, marker="o", ms=4, label=i18n.label("monitoring", "individuals",
                                                                                     lang)),
               Line2D([], [], color="#333333", lw=1, label=_t("fig_center", lang)),
               Line2D([], [], color=SIGNAL_COLOUR, lw=1, ls="--", label=_t("fig_limits", lang)),
               Patch(color="#dddddd", label=_t("fig_baseline", lang)),
               Line2D([], [], ls="", marker="o", mfc="none", mec=SIGNAL_COLOUR, label=_t("fig_signal", lang))]
    if kpi.target is not None:
        handles.append(Line2D([], [], color="#029e73", ls=":", label=_t("fig_target", lang)))
    fig.legend(handles=handles, fontsize=7, ncols=len(handles), loc="outside lower center", frameon=False)
    group = "" if chart.group == "all" else f" — {chart.group}"
    ax.set_title(title or f"{kpi.name(lang)}{group}")
    if ax_mr is not None:
        _shade_baseline(ax_mr, pts)
        mr = pts["mr"].to_numpy(dtype=float)
        ax_mr.plot(x, mr, marker="o", ms=3, color=POINT_COLOUR, lw=1)
        ax_mr.plot(x, pts["mr_center"].to_numpy(dtype=float), color="#333333", lw=1)
        ax_mr.plot(x, pts["mr_ucl"].to_numpy(dtype=float), color=SIGNAL_COLOUR, lw=1, ls="--")
        mr_flag = mr > pts["mr_ucl"].to_numpy(dtype=float)
        ax_mr.scatter(x[mr_flag], mr[mr_flag], s=60, facecolors="none", edgecolors=SIGNAL_COLOUR, linewidths=1.6)
        ax_mr.set_ylabel(_t("fig_mr", lang) + (" (ln)" if log else ""))
        ax_mr.set_ylim(bottom=0)
        _month_axis(ax_mr, months, lang)
        fig.align_ylabels([ax, ax_mr])
    else:
        _month_axis(ax, months, lang)
    return localise_axes(fig, lang)


def status_overview(status: pd.DataFrame, *, cfg: StudyConfig, lang: str = "en") -> Figure:
    """KPI status overview per stage: one row per KPI, its capability index as a dot coloured by status.

    KPIs without a target (or without a finite capability) sit at the left edge with a hollow marker.
    """
    stages = [s for s in cfg.stages if (status["stage"] == s.code).any()]
    n_rows = max(1, len(status))
    fig, axes = new_figure(8.0, 1.2 + 0.45 * n_rows + 0.35 * len(stages), nrows=max(1, len(stages)), sharex=True,
                           height_ratios=[max(1, int((status["stage"] == s.code).sum())) for s in stages] or [1])
    axes = np.atleast_1d(axes)
    names = {k.code: k.name(lang) for k in cfg.kpis}
    finite = status["capability"].replace([np.inf, -np.inf], np.nan).dropna()
    hi = float(np.clip(finite.max() if len(finite) else 1.5, 1.5, 5.0)) * 1.1
    for ax, stage in zip(axes, stages, strict=False):
        rows = status.loc[status["stage"] == stage.code].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        cap = rows["capability"].to_numpy(dtype=float)
        shown = np.clip(np.nan_to_num(cap, nan=0.0, posinf=hi, neginf=0.0), 0.0, hi)
        colours = [STATUS_COLOURS.get(s, "#949494") for s in rows["status"]]
        ax.hlines(y, 0, shown, color=colours, lw=3, alpha=0.5)
        hollow = ~np.isfinite(cap)
        ax.scatter(shown[~hollow], y[~hollow], c=[c for c, h in zip(colours, hollow, strict=True) if not h], s=60,
                   zorder=3)
        ax.scatter(shown[hollow], y[hollow], facecolors="none", edgecolors=[c for c, h in zip(colours, hollow,
                                                                                             strict=True) if h],
                   s=60, zorder=3)
        ax.axvline(1.0, color="#333333", lw=1, ls="--")
        ax.set_yticks(y)
        ax.set_yticklabels([f"{names.get(k, k)}\n({status_label(s, lang)})" for k, s in zip(rows["kpi"],
                                                                                            rows["status"],
                                                                                            strict=True)],
                           fontsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(f"{stage.code}: {stage.label(lang)}", fontsize=9, loc="left")
    axes[-1].set_xlim(0, hi)
    axes[-1].set_xlabel(_t("fig_status_x", lang))
    handles = [Patch(color=c, label=status_label(s, lang)) for s, c in STATUS_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    fig.suptitle(_t("fig_status_title", lang))
    return localise_axes(fig, lang)
