"""Figures of the expert evaluation: the experts x factors rank heat map and the factor weights by stage.

Every function takes the tidy tables of :mod:`research.experts` and returns a matplotlib ``Figure``;
axis texts come from ``locales/experts.yaml`` in the requested language, data labels (factor and stage
names, expert ids) are drawn as plain text (``$`` escaped so mathtext never interprets them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .. import i18n
from . import PALETTE, localise_axes, new_figure

__all__ = ["rank_heatmap", "weights_by_stage"]


def _t(key: str, lang: str) -> str:
    return i18n.label("experts", key, lang)


def _plain(text: object, width: int = 45) -> str:
    # at most four lines: a label of thousands of characters must not swallow the figure
    return "\n".join(textwrap.wrap(str(text).replace("$", r"\$"), width=width, max_lines=4, placeholder=" …")) or " "


def rank_heatmap(ranks: pd.DataFrame, *, factor_labels: Mapping[str, str] | None = None,
                 lang: str = "en") -> Figure:
    """Heat map of the experts' importance ranks (rows: factors by consensus, columns: experts).

    Parameters
    ----------
    ranks
        Factors x experts importance ranks (:func:`research.experts.importance_ranks`; 1 = most
        important). Rows are sorted by mean rank so that the consensus reads top to bottom; dark cells are
        important factors, so a disagreeing expert shows as a column out of pattern.
    factor_labels
        Display name of each factor code (default: the codes).
    """
    order = ranks.mean(axis=1).sort_values(kind="stable").index
    shown = ranks.loc[order]
    labels = [_plain(factor_labels.get(f, f) if factor_labels else f) for f in shown.index]
    n, m = shown.shape
    fig, ax = new_figure(width=max(6.0, 3.2 + 0.55 * m), height=max(3.5, 1.2 + 0.38 * n))
    values = shown.to_numpy(dtype=float)
    cells = np.vectorize(lambda v: i18n.fmt_number(v, 0 if float(v).is_integer() else 1, lang))(values)
    sns.heatmap(values, ax=ax, cmap="viridis_r", annot=cells if n * m <= 600 else False, fmt="",
                annot_kws={"size": 7}, linewidths=0.4, linecolor="white",
                cbar_kws={"label": _t("fig_rank_colour", lang)})
    ax.set_xticks(np.arange(m) + 0.5, [_plain(e, 12) for e in shown.columns], rotation=45, ha="right")
    ax.set_yticks(np.arange(n) + 0.5, labels, rotation=0, fontsize=8)
    ax.set_xlabel(_t("fig_expert", lang))
    ax.set_ylabel("")
    ax.set_title(_t("fig_heatmap_title", lang))
    return localise_axes(fig, lang)


def weights_by_stage(weights: pd.DataFrame, *, factor_labels: Mapping[str, str] | None = None,
                     stage_labels: Mapping[str, str] | None = None, lang: str = "en") -> Figure:
    """Horizontal bars of the factor weights with their bootstrap CIs, grouped and coloured by stage.

    Parameters
    ----------
    weights
        One method's rows of the ``expert_weights`` table: ``stage``, ``factor``, ``weight``, ``ci_low``,
        ``ci_high``. Stages keep their order of appearance; within a stage the largest weight is on top.
    factor_labels, stage_labels
        Display names of the factor and stage codes (default: the codes).
    """
    stages = list(dict.fromkeys(weights["stage"]))
    colours = dict(zip(stages, sns.color_palette(PALETTE, n_colors=max(len(stages), 3)), strict=False))
    rows = pd.concat([weights[weights["stage"] == s].sort_values("weight", ascending=False, kind="stable")
                      for s in stages], ignore_index=True)
    y = np.arange(len(rows))[::-1]
    fig, ax = new_figure(width=8.5, height=max(3.5, 1.0 + 0.36 * len(rows)))
    lower = (rows["weight"] - rows["ci_low"]).clip(lower=0).to_numpy(dtype=float)
    upper = (rows["ci_high"] - rows["weight"]).clip(lower=0).to_numpy(dtype=float)
    has_ci = np.isfinite(lower).all() and np.isfinite(upper).all()
    ax.barh(y, rows["weight"], color=[colours[s] for s in rows["stage"]], edgecolor="white",
            xerr=np.vstack([lower, upper]) if has_ci else None,
            error_kw={"ecolor": "#333333", "elinewidth": 1, "capsize": 2})
    ax.axvline(1 / len(rows), color="#777777", linestyle=":", linewidth=1)
    ax.set_yticks(y, [_plain(factor_labels.get(f, f) if factor_labels else f) for f in rows["factor"]],
                  fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: i18n.fmt_number(v, 2, lang)))
    ax.set_xlabel(_t("fig_weight_axis", lang))
    ax.set_title(_t("fig_weights_title", lang))
    handles = [Patch(color=colours[s], label=_plain(stage_labels.get(s, s) if stage_labels else s, 30))
               for s in stages]
    handles.append(Line2D([0], [0], color="#777777", linestyle=":", label=_t("fig_equal_weight", lang)))
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=True)
    return localise_axes(fig, lang)
