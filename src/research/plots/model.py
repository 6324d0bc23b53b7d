"""Figures of the supervision model: the model diagram, IPA grids, stage indices and the priority heat map.

Every function takes the model's tidy tables (see :mod:`research.model`) and returns a matplotlib
``Figure``; texts come from ``locales/model.yaml`` in the requested language, data labels (stage and
factor names) are drawn as plain text (matplotlib does not interpret markup, ``usetex`` stays off).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .. import i18n
from . import PALETTE, localise_axes, new_figure, setup_style

__all__ = ["ipa_scatter", "model_diagram", "priority_heatmap", "stage_index_plot"]

_ALL = "all"
# KPI box colours by monitoring status (research.monitoring.kpi_status); no status: light grey
STATUS_COLOURS = {"on_target": "#cfe8cf", "warning": "#fde5b5", "out_of_control": "#f5b7b1", "no_target": "#e5e5e5"}


def _t(key: str, lang: str) -> str:
    return i18n.label("model", key, lang)


def _plain(text: object) -> str:
    """Matplotlib mathtext treats ``$`` as a formula delimiter; escape it so labels print as typed."""
    return str(text).replace("$", r"\$")


def _wrap(text: object, width: int) -> str:
    # at most four lines: a label of thousands of characters must not swallow the diagram
    return "\n".join(textwrap.wrap(_plain(text), width=width, break_long_words=True, max_lines=4,
                                   placeholder=" …")) or " "


def _stage_colours(stages: list[str]) -> dict[str, tuple]:
    colours = sns.color_palette(PALETTE, n_colors=max(len(stages), 3))
    return {s: colours[i % len(colours)] for i, s in enumerate(stages)}


def _box(ax, x: float, y: float, w: float, h: float, text: str, *, face, edge="#333333", lw: float = 1.0,
         size: float = 8.0, weight: str = "normal") -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=face, edgecolor=edge, linewidth=lw))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, fontweight=weight,
            wrap=False, clip_on=True)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], colour) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, linewidth=0.8,
                                 color=colour, alpha=0.8, shrinkA=0, shrinkB=1))


def _kpi_target(row: pd.Series, lang: str) -> str:
    if pd.isna(row.get("target")):
        return _t("no_target", lang)
    sign = "≤" if row["direction"] == "max" else "≥"
    unit = row["unit"]
    if unit == "share":
        value = i18n.fmt_number(float(row["target"]) * 100, 0, lang) + " %"
    else:
        value = i18n.fmt_number(float(row["target"]), 0 if float(row["target"]).is_integer() else 1, lang)
        value += " " + _t(f"unit_{unit}", lang)
    return f"{_t('target_word', lang)} {sign} {value}"


def _padded(values: np.ndarray, share: float = 0.12) -> tuple[float, float]:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = max(share * (hi - lo), 0.1)
    return lo - pad, hi + pad


def _spread_labels(x: np.ndarray, y: np.ndarray, *, xlim: tuple[float, float], ylim: tuple[float, float],
                   min_gap: float = 0.035, width: float = 0.16, rounds: int = 60) -> np.ndarray:
    """Vertical label positions that keep labels of nearby points apart (a small deterministic repel).

    Distances are in axis fractions: labels whose points are closer than ``width`` horizontally are pushed
    apart vertically until they are ``min_gap`` apart (or ``rounds`` passes are done).
    """
    fx = (x - xlim[0]) / (xlim[1] - xlim[0])
    fy = (y - ylim[0]) / (ylim[1] - ylim[0])
    pos = fy.copy()
    order = np.lexsort((fx, fy))
    for _ in range(rounds):  # pairwise passes over at most a few dozen labels
        moved = False
        for a_i in range(len(order)):
            for b_i in range(a_i + 1, len(order)):
                a, b = order[a_i], order[b_i]
                if abs(fx[a] - fx[b]) < width and abs(pos[a] - pos[b]) < min_gap:
                    shift = (min_gap - abs(pos[a] - pos[b])) / 2 + 1e-4
                    lower, upper = (a, b) if pos[a] <= pos[b] else (b, a)
                    pos[lower] -= shift
                    pos[upper] += shift
                    moved = True
        if not moved:
            break
    pos = np.clip(pos, 0.06, 0.94)
    return ylim[0] + pos * (ylim[1] - ylim[0])


def model_diagram(*, weights: pd.DataFrame, kpis: pd.DataFrame, stage_labels: Mapping[str, str],
                  highlight: list[str] | None = None, lang: str = "en") -> Figure:
    """The supervision model as boxes and arrows: stages → factors (with weights) → KPIs.

    Parameters
    ----------
    weights
        ``stage``, ``factor``, ``label`` (display name), ``weight`` (overall) and ``weight_stage``.
    kpis
        The KPI catalogue (``stage``, ``kpi``, ``name``, ``target``, ``direction``, ``unit``, ``factors``
        as comma-separated codes); with a ``status`` column (from monitoring) the KPI boxes are coloured
        by status and a legend is drawn.
    stage_labels
        Display name of every stage code, in stage order.
    highlight
        Factor codes drawn with a thick red border (e.g. the top improvement areas).
    lang
        Language of the fixed texts.

    Returns
    -------
    Figure
        Three columns (stages, factors, KPIs) with one horizontal band per stage; the height grows with
        the number of factors, so any number of stages and factors stays readable.
    """
    setup_style()
    stages = list(stage_labels)
    colours = _stage_colours(stages)
    highlight = set(highlight or [])
    per_stage = {s: weights[weights["stage"] == s] for s in stages}
    kpi_stage = {s: kpis[kpis["stage"] == s] for s in stages}
    band = {s: max(len(per_stage[s]), len(kpi_stage[s]), 1) for s in stages}
    row_h, gap = 1.0, 0.6
    total = sum(band.values()) * row_h + gap * (len(stages) - 1)
    fig = plt.figure(figsize=(13, max(3.0, 0.48 * total + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.2, total + 0.9)
    ax.axis("off")
    xs, ws = {"stage": 0.1, "factor": 3.6, "kpi": 9.3}, {"stage": 2.6, "factor": 4.6, "kpi": 3.6}
    for col, key in (("stage", "diagram_stages"), ("factor", "diagram_factors"), ("kpi", "diagram_kpis")):
        ax.text(xs[col] + ws[col] / 2, total + 0.45, _t(key, lang), ha="center", va="center", fontsize=10,
                fontweight="bold")
    top = total
    for s in stages:
        height = band[s] * row_h
        colour = colours[s]
        light = (*colour[:3], 0.18)
        y0 = top - height
        stage_text = f"{_plain(s)}\n{_wrap(stage_labels[s], 26)}"
        stage_h = min(height - 0.1, 0.3 + 0.24 * stage_text.count("\n") + 0.24)
        stage_y = y0 + height / 2 - stage_h / 2
        _box(ax, xs["stage"], stage_y, ws["stage"], stage_h, stage_text, face=(*colour[:3], 0.35), size=8.5,
             weight="bold")
        factor_pos: dict[str, float] = {}
        for i, r in enumerate(per_stage[s].itertuples(index=False)):
            fy = top - (i + 1) * row_h + 0.12
            factor_pos[r.factor] = fy + 0.38
            w_text = f"w = {i18n.fmt_number(r.weight, 3, lang)}"
            text = f"{_wrap(r.label, 62)}\n{_plain(r.factor)} · {w_text}"
            strong = r.factor in highlight
            _box(ax, xs["factor"], fy, ws["factor"], 0.76, text, face=light, size=7,
                 edge="#c0392b" if strong else "#555555", lw=2.2 if strong else 0.8)
            _arrow(ax, (xs["stage"] + ws["stage"], stage_y + stage_h / 2), (xs["factor"], fy + 0.38), colour)
        for i, (_, row) in enumerate(kpi_stage[s].iterrows()):
            ky = top - (i + 1) * row_h + 0.12
            text = f"{_wrap(row['name'], 34)}\n{_kpi_target(row, lang)}"
            status = row.get("status")
            face = STATUS_COLOURS.get(str(status), "#f7f7f7") if isinstance(status, str) else "#f7f7f7"
            _box(ax, xs["kpi"], ky, ws["kpi"], 0.76, text, face=face, size=7)
            linked = [f.strip() for f in str(row.get("factors") or "").split(",") if f.strip()]
            for f in linked:
                if f in factor_pos:
                    _arrow(ax, (xs["factor"] + ws["factor"], factor_pos[f]), (xs["kpi"], ky + 0.38), colour)
        if per_stage[s].empty:
            ax.text(xs["factor"] + ws["factor"] / 2, top - 0.5, "–", ha="center", va="center")
        top = y0 - gap
    if highlight:
        ax.text(0.1, -0.1, _t("diagram_highlight", lang), fontsize=7.5, color="#c0392b", va="bottom")
    shown = [s for s in STATUS_COLOURS if "status" in kpis and (kpis["status"] == s).any()]
    if shown:
        from ..monitoring import status_label

        handles = [plt.Rectangle((0, 0), 1, 1, facecolor=STATUS_COLOURS[s], edgecolor="#333333") for s in shown]
        ax.legend(handles, [status_label(s, lang) for s in shown], loc="lower right", fontsize=7.5,
                  frameon=False, ncol=len(shown))
    return localise_axes(fig, lang)


def ipa_scatter(*, factors: pd.DataFrame, group_labels: Mapping[str, str], lang: str = "en") -> Figure:
    """Importance-performance grid per group with labelled quadrants (Martilla & James, 1977).

    Parameters
    ----------
    factors
        The model's factor table (``group``, ``stage``, ``factor``, ``importance``, ``performance``,
        ``importance_crosshair``, ``performance_crosshair``).
    group_labels
        Display name of every group to draw (panel order), e.g. the client groups and ``all``.
    lang
        Language of the fixed texts.

    Returns
    -------
    Figure
        One panel per group: performance on x, importance on y, points coloured by stage and labelled with
        the factor code; crosshairs dashed; the four quadrant names in the corners.
    """
    groups = [g for g in group_labels if g in set(factors["group"])]
    fig, axes = new_figure(5.4 * len(groups), 5.4, ncols=len(groups), squeeze=False, sharex=True, sharey=True)
    stages = list(dict.fromkeys(factors["stage"]))
    colours = _stage_colours(stages)
    shown = factors[factors["group"].isin(groups)]
    xlim = _padded(shown[["performance", "performance_crosshair"]].to_numpy(float))
    ylim = _padded(shown[["importance", "importance_crosshair"]].to_numpy(float))
    corner = {"concentrate_here": (0.02, 0.98, "left", "top"), "keep_up_good_work": (0.98, 0.98, "right", "top"),
              "low_priority": (0.02, 0.02, "left", "bottom"), "possible_overkill": (0.98, 0.02, "right", "bottom")}
    for ax, g in zip(axes[0], groups, strict=True):
        d = shown[shown["group"] == g]
        for s in stages:
            ds = d[d["stage"] == s]
            ax.scatter(ds["performance"], ds["importance"], s=36, color=colours[s], label=_plain(s),
                       edgecolor="white", linewidth=0.5, zorder=3)
        x, y = d["performance"].to_numpy(float), d["importance"].to_numpy(float)
        ly = _spread_labels(x, y, xlim=xlim, ylim=ylim)
        for xi, yi, li, code in zip(x, y, ly, d["factor"], strict=True):
            ax.annotate(_plain(code), (xi, yi), xytext=(xi + 0.012 * (xlim[1] - xlim[0]), li), fontsize=6.5,
                        va="center", zorder=4,
                        arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.5} if abs(li - yi) > 1e-9 else None)
        ax.axvline(float(d["performance_crosshair"].iloc[0]), color="#555555", ls="--", lw=1)
        ax.axhline(float(d["importance_crosshair"].iloc[0]), color="#555555", ls="--", lw=1)
        for code, (cx, cy, ha, va) in corner.items():
            ax.text(cx, cy, _t(code, lang), transform=ax.transAxes, ha=ha, va=va, fontsize=8, style="italic",
                    color="#444444", bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
        ax.set_title(_plain(group_labels[g]))
        ax.set_xlabel(_t("performance_axis", lang))
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    axes[0][0].set_ylabel(_t("importance_axis", lang))
    axes[0][-1].legend(title=_t("stage_legend", lang), fontsize=7, title_fontsize=8, loc="upper left",
                       bbox_to_anchor=(1.02, 1.0))
    return localise_axes(fig, lang)


def stage_index_plot(*, stage_index: pd.DataFrame, stage_labels: Mapping[str, str],
                     group_labels: Mapping[str, str], lang: str = "en") -> Figure:
    """Stage quality indices (0-100) by group with their bootstrap confidence intervals.

    Parameters
    ----------
    stage_index
        ``stage``, ``group``, ``index``, ``ci_low``, ``ci_high``.
    stage_labels
        Display name of every stage to draw (x order), e.g. the stages and ``all``.
    group_labels
        Display name of every group (legend order).
    lang
        Language of the fixed texts.
    """
    fig, ax = new_figure(max(6.0, 1.9 * len(stage_labels) + 2), 4.6)
    groups = [g for g in group_labels if g in set(stage_index["group"])]
    palette = sns.color_palette(PALETTE, n_colors=max(len(groups), 3))
    offsets = np.linspace(-0.25, 0.25, len(groups)) if len(groups) > 1 else np.zeros(1)
    stages = list(stage_labels)
    for k, g in enumerate(groups):
        d = stage_index[stage_index["group"] == g].set_index("stage").reindex(stages)
        x = np.arange(len(stages)) + offsets[k]
        y = d["index"].to_numpy(float)
        err = np.vstack([y - d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float) - y])
        colour = "#555555" if g == _ALL else palette[k]
        ax.errorbar(x, y, yerr=np.where(np.isnan(err), 0, err), fmt="o", capsize=4, color=colour,
                    label=_plain(group_labels[g]), markersize=6)
        for xi, yi in zip(x, y, strict=True):
            if np.isfinite(yi):
                ax.annotate(i18n.fmt_number(yi, 1, lang), (xi, yi), xytext=(6, 0), textcoords="offset points",
                            fontsize=7, va="center")
    ax.set_xticks(np.arange(len(stages)), [_wrap(stage_labels[s], 22) for s in stages], fontsize=8)
    ax.set_ylabel(_t("index_axis", lang))
    values = stage_index[["ci_low", "ci_high", "index"]].to_numpy(float)
    lo, hi = np.nanmin(values), np.nanmax(values)
    ax.set_ylim(max(0.0, lo - 8), min(100.0, hi + 8))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(_t("stage_index_title", lang))
    return localise_axes(fig, lang)


def priority_heatmap(*, factors: pd.DataFrame, group: str = _ALL, stage_labels: Mapping[str, str],
                     lang: str = "en") -> Figure:
    """Stage x factor heat map of the normalised priority index of one group.

    Rows are stages, columns the factor positions within a stage (stages may have different numbers of
    factors; empty cells stay blank); every cell shows the factor code and its priority (0-1).

    Parameters
    ----------
    factors
        The model's factor table (``group``, ``stage``, ``factor``, ``priority``).
    group
        The group shown (default ``all``).
    stage_labels
        Display name of every stage (row order).
    lang
        Language of the fixed texts.
    """
    d = factors[factors["group"] == group]
    stages = [s for s in stage_labels if s in set(d["stage"])]
    width = max(int(d.groupby("stage").size().max()), 1) if not d.empty else 1
    values = np.full((len(stages), width), np.nan)
    codes = np.full((len(stages), width), "", dtype=object)
    for i, s in enumerate(stages):
        ds = d[d["stage"] == s]
        values[i, :len(ds)] = ds["priority"].to_numpy(float)
        codes[i, :len(ds)] = ds["factor"].astype(str).to_numpy()
    fig, ax = new_figure(max(6.0, 1.6 * width + 2.5), max(2.5, 0.9 * len(stages) + 1.4))
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i in range(len(stages)):
        for j in range(width):
            if codes[i, j]:
                v = values[i, j]
                colour = "white" if np.isfinite(v) and v > 0.6 else "black"
                ax.text(j, i, f"{_plain(codes[i, j])}\n{i18n.fmt_number(v, 2, lang)}", ha="center", va="center",
                        fontsize=7.5, color=colour)
    ax.set_yticks(np.arange(len(stages)), [_wrap(stage_labels[s], 26) for s in stages], fontsize=8)
    ax.set_xticks(np.arange(width), [str(j + 1) for j in range(width)])
    ax.set_xlabel(_t("factor_position", lang))
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=_t("priority", lang), shrink=0.85)
    ax.set_title(_t("heatmap_title", lang))
    return localise_axes(fig, lang)
