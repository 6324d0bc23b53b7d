"""Figures of the client survey: diverging Likert bars, importance vs performance dots, effect-size forest.

Every function takes an aggregated table of :mod:`research.survey` (never one row per respondent) and
returns a matplotlib ``Figure``. Axis texts come from ``locales/survey.yaml`` in the requested language;
data labels (item, factor and group names) are drawn as plain text (``$`` escaped so mathtext never
interprets them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import i18n
from . import PALETTE, localise_axes, new_figure

__all__ = ["likert_bars", "importance_performance", "effect_forest"]


def _t(key: str, lang: str) -> str:
    return i18n.label("survey", key, lang)


def _plain(text: object, width: int = 48) -> str:
    # at most four lines: a label of thousands of characters must not swallow the figure
    return "\n".join(textwrap.wrap(str(text).replace("$", r"\$"), width=width, max_lines=4, placeholder=" …")) or " "


def _group_colours(groups: Sequence[str]) -> dict[str, tuple]:
    return dict(zip(groups, sns.color_palette(PALETTE, n_colors=max(len(groups), 3)), strict=False))


def likert_bars(percentages: pd.DataFrame, *, item_labels: Mapping[str, str] | None = None,
                group_labels: Mapping[str, str] | None = None, include_all: bool = False,
                lang: str = "en") -> Figure:
    """Diverging stacked bars: the share of every scale point per item and group, centred on the midpoint.

    Parameters
    ----------
    percentages
        :func:`research.survey.likert_percentages` output (``variable, group, value, percent``). Items
        keep their order of appearance; within an item one bar per group (the groups' order of
        appearance). Points below the scale midpoint extend to the left, points above to the right, and
        the middle point of an odd scale is split evenly across zero.
    item_labels, group_labels
        Display names of the items and groups (default: the codes).
    include_all
        Also draw the ``all`` rows when the table has group levels (default: groups only).
    """
    items = list(dict.fromkeys(percentages["variable"]))
    groups = list(dict.fromkeys(percentages["group"]))
    if len(groups) > 1 and not include_all:
        groups = [g for g in groups if g != "all"]
    points = np.sort(percentages["value"].unique())
    mid = (points.min() + points.max()) / 2
    colours = mpl.colormaps["RdBu"](np.linspace(0.1, 0.9, len(points)))
    wide = (percentages.pivot_table(index=["variable", "group"], columns="value", values="percent",
                                    aggfunc="first", sort=False)
            .reindex(columns=points).fillna(0.0))
    rows = [(i, g) for i in items for g in groups if (i, g) in wide.index]
    n_rows = len(rows)
    fig, ax = new_figure(width=10.0, height=max(3.0, 1.3 + 0.28 * n_rows))
    y = np.arange(n_rows)[::-1]
    shares = wide.loc[rows].to_numpy()
    below = points < mid
    centre = points == mid
    # left edge of the stack: everything below the midpoint plus half the neutral share
    left = -(shares[:, below].sum(axis=1) + shares[:, centre].sum(axis=1) / 2)
    for k, point in enumerate(points):
        ax.barh(y, shares[:, k], left=left, color=colours[k], edgecolor="white", linewidth=0.4, height=0.8,
                label=f"{point:g}")
        left = left + shares[:, k]
    ax.axvline(0, color="black", linewidth=0.8)
    glab = group_labels or {}
    ilab = item_labels or {}
    ax.set_yticks(y, [_plain(f"{ilab.get(i, i)} — {glab.get(g, g)}", 60) for i, g in rows], fontsize=7)
    lim = max(50.0, float(np.nanmax(np.abs(np.concatenate([left, left - shares.sum(axis=1)])))))
    ax.set_xlim(-lim * 1.02, lim * 1.02)
    ticks = ax.get_xticks()
    ax.set_xticks(ticks, [f"{abs(t):.0f}" for t in ticks])
    ax.set_xlabel(_t("fig_percent", lang))
    ax.set_title(_t("fig_likert_title", lang))
    ax.legend(title=_t("fig_scale_point", lang), ncols=len(points), loc="lower center",
              bbox_to_anchor=(0.5, 1.02 + 0.6 / max(n_rows, 1)), frameon=False, fontsize=8)
    return localise_axes(fig, lang)


def importance_performance(ipa: pd.DataFrame, *, factor_labels: Mapping[str, str] | None = None,
                           group_labels: Mapping[str, str] | None = None, lang: str = "en") -> Figure:
    """Dot plot of mean importance and mean performance per factor and group, joined by the gap.

    Parameters
    ----------
    ipa
        The ``ipa_items`` table (:func:`research.survey.ipa_gaps`): ``factor, group, importance,
        performance``. Factors keep their order (top to bottom); each group is a colour, slightly offset.
        Filled circles are importance, open diamonds performance.
    """
    factors = list(dict.fromkeys(ipa["factor"]))
    groups = list(dict.fromkeys(ipa["group"]))
    colours = _group_colours(groups)
    glab = group_labels or {}
    flab = factor_labels or {}
    fig, ax = new_figure(width=9.0, height=max(3.5, 1.4 + 0.42 * len(factors)))
    base = {f: len(factors) - 1 - k for k, f in enumerate(factors)}
    # first group on top, as in the legend
    offsets = np.linspace(0.25, -0.25, len(groups)) if len(groups) > 1 else np.zeros(1)
    for off, g in zip(offsets, groups, strict=True):
        sub = ipa[ipa["group"] == g]
        yy = sub["factor"].map(base).to_numpy(dtype=float) + off
        ax.hlines(yy, sub["performance"], sub["importance"], color=colours[g], linewidth=1.2, alpha=0.8)
        ax.scatter(sub["importance"], yy, color=colours[g], marker="o", s=28, zorder=3)
        ax.scatter(sub["performance"], yy, facecolor="white", edgecolor=colours[g], marker="D", s=26,
                   linewidth=1.2, zorder=3)
    ax.set_yticks(list(base.values()), [_plain(flab.get(f, f), 45) for f in base], fontsize=8)
    ax.set_xlabel(_t("fig_mean_rating", lang))
    ax.set_title(_t("fig_ipa_title", lang))
    handles = [Line2D([], [], marker="o", linestyle="", color="grey", label=_t("importance", lang)),
               Line2D([], [], marker="D", linestyle="", markerfacecolor="white", color="grey",
                      label=_t("performance", lang))]
    handles += [Patch(color=colours[g], label=_plain(glab.get(g, g), 30)) for g in groups]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.04), ncols=min(len(handles), 4),
              frameon=False, fontsize=8)
    return localise_axes(fig, lang)


def effect_forest(comparison: pd.DataFrame, *, alpha: float = 0.05, effect: str | None = None,
                  ci_low: str | None = None, ci_high: str | None = None,
                  item_labels: Mapping[str, str] | None = None, lang: str = "en") -> Figure:
    """Forest plot of an effect size per item with its 95% CI; items with ``p_adj < alpha`` are highlighted.

    Parameters
    ----------
    comparison
        :func:`research.survey.compare_groups` output (``variable``, ``effect``, the CI columns,
        ``p_adj``). Rows with a missing effect (see their ``note``) are left out. For Kruskal-Wallis tables
        use ``effect="epsilon_squared", ci_low=None, ci_high=None``. With ``effect=None`` the columns are
        chosen from the table: ``r_rb`` with its CI, else ``epsilon_squared`` without one.
    """
    if effect is None:
        if "r_rb" in comparison.columns:
            effect, ci_low, ci_high = "r_rb", "r_rb_ci_low", "r_rb_ci_high"
        else:
            effect, ci_low, ci_high = "epsilon_squared", None, None
    rows = comparison.dropna(subset=[effect]).reset_index(drop=True)
    n = len(rows)
    fig, ax = new_figure(width=8.5, height=max(3.0, 1.2 + 0.3 * n))
    y = np.arange(n)[::-1]
    colours = sns.color_palette(PALETTE, n_colors=3)
    significant = rows["p_adj"].lt(alpha).fillna(False).to_numpy()
    colour = [colours[1] if s else colours[0] for s in significant]
    if ci_low and ci_high:
        ax.hlines(y, rows[ci_low], rows[ci_high], color=colour, linewidth=1.4)
    ax.scatter(rows[effect], y, color=colour, s=30, zorder=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ilab = item_labels or {}
    ax.set_yticks(y, [_plain(ilab.get(v, v), 55) for v in rows["variable"]], fontsize=7)
    ax.set_xlabel(_t(f"fig_axis_{effect}", lang))
    ax.set_title(_t("fig_forest_title", lang))
    shown_alpha = f"{alpha:g}".replace(".", "," if lang == "lt" else ".")
    ax.legend(handles=[Patch(color=colours[1], label=i18n.text("survey", "fig_significant", lang, alpha=shown_alpha)),
                       Patch(color=colours[0], label=_t("fig_not_significant", lang))],
              loc="lower center", bbox_to_anchor=(0.5, 1.04), ncols=2, frameon=False, fontsize=8)
    return localise_axes(fig, lang)
