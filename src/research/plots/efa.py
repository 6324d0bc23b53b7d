"""Figures of the exploratory factor analysis: correlation heat map, scree plot with the parallel-analysis
band, loading heat map and a factor diagram (items -> factors).

Every function takes tables or matrices from :mod:`research.efa` and returns a matplotlib ``Figure``;
axis texts come from ``locales/efa.yaml`` in the requested language, data labels (item names) are drawn as
plain text (``$`` escaped so mathtext never interprets them).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import i18n
from . import PALETTE, localise_axes, new_figure

__all__ = ["correlation_heatmap", "scree_plot", "loading_heatmap", "factor_diagram"]


def _t(key: str, lang: str) -> str:
    return i18n.label("efa", key, lang)


def _plain(text: object, width: int = 40) -> str:
    # at most four lines: a label of thousands of characters must not swallow the figure
    return "\n".join(textwrap.wrap(str(text).replace("$", r"\$"), width=width, max_lines=4, placeholder=" …")) or " "


def _labels(index: Sequence, item_labels: Mapping[str, str] | None, width: int = 40) -> list[str]:
    return [_plain(item_labels.get(i, i) if item_labels else i, width) for i in index]


def correlation_heatmap(corr: pd.DataFrame, *, item_labels: Mapping[str, str] | None = None,
                        lang: str = "en") -> Figure:
    """Heat map of an item correlation matrix (lower triangle, diverging colours centred on 0).

    Parameters
    ----------
    corr
        Square correlation matrix with item names as index and columns.
    item_labels
        Display name of each item (default: the names).
    """
    p = corr.shape[0]
    mask = np.triu(np.ones((p, p), dtype=bool), k=1)
    fig, ax = new_figure(width=max(6.0, 2.5 + 0.42 * p), height=max(5.0, 2.0 + 0.38 * p))
    values = corr.to_numpy(dtype=float)
    annot = np.vectorize(lambda v: i18n.fmt_number(v, 2, lang))(values) if p <= 20 else False
    sns.heatmap(values, mask=mask, ax=ax, cmap="RdBu_r", vmin=-1, vmax=1, center=0,
                annot=annot, fmt="", annot_kws={"size": 6}, linewidths=0.3, linecolor="white",
                cbar_kws={"label": _t("fig_correlation", lang)})
    labels = _labels(corr.index, item_labels, 35)
    ax.set_xticks(np.arange(p) + 0.5, labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(p) + 0.5, labels, rotation=0, fontsize=7)
    ax.set_title(_t("fig_corr_title", lang))
    return localise_axes(fig, lang)


def scree_plot(observed: Sequence[float], *, simulated: Sequence[float] | None = None,
               simulated_upper: Sequence[float] | None = None, simulated_lower: Sequence[float] | None = None,
               n_factors: int | None = None, lang: str = "en") -> Figure:
    """Scree plot of the observed eigenvalues with the parallel-analysis band of random data.

    Parameters
    ----------
    observed
        Observed eigenvalues in decreasing order (e.g. of the reduced correlation matrix).
    simulated
        Mean (or median) eigenvalues of random data of the same size (parallel analysis).
    simulated_upper, simulated_lower
        Quantile band of the random eigenvalues (e.g. 95th and 5th percentiles); drawn as a shaded band.
    n_factors
        The chosen number of factors, marked with a vertical line.
    """
    observed = np.asarray(observed, dtype=float)
    x = np.arange(1, len(observed) + 1)
    colours = sns.color_palette(PALETTE, n_colors=3)
    fig, ax = new_figure(width=7.0, height=4.5)
    if simulated_upper is not None:
        upper = np.asarray(simulated_upper, dtype=float)
        lower = np.asarray(simulated_lower, dtype=float) if simulated_lower is not None else \
            np.asarray(simulated if simulated is not None else upper, dtype=float)
        ax.fill_between(x, lower, upper, color=colours[1], alpha=0.25, linewidth=0,
                        label=_t("fig_random_band", lang))
    if simulated is not None:
        ax.plot(x, np.asarray(simulated, dtype=float), "--", color=colours[1], label=_t("fig_random", lang))
    ax.plot(x, observed, "o-", color=colours[0], label=_t("fig_observed", lang))
    if n_factors:
        ax.axvline(n_factors, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(_t("fig_chosen", lang).format(k=n_factors), xy=(n_factors, ax.get_ylim()[1]),
                    xytext=(4, -12), textcoords="offset points", fontsize=8, color="0.3")
    ax.axhline(0, color="0.7", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xlabel(_t("fig_factor_number", lang))
    ax.set_ylabel(_t("fig_eigenvalue", lang))
    ax.set_title(_t("fig_scree_title", lang))
    ax.legend(loc="upper right", fontsize=8)
    return localise_axes(fig, lang)


def loading_heatmap(loadings: pd.DataFrame, *, cutoff: float = 0.3,
                    item_labels: Mapping[str, str] | None = None, lang: str = "en") -> Figure:
    """Heat map of a (sorted) pattern matrix; loadings below ``cutoff`` in absolute value are greyed."""
    p, k = loadings.shape
    values = loadings.to_numpy(dtype=float)
    annot = np.array([[i18n.fmt_number(v, 2, lang) if abs(v) >= cutoff else "" for v in row] for row in values])
    fig, ax = new_figure(width=max(5.0, 3.5 + 0.9 * k), height=max(4.0, 1.2 + 0.36 * p))
    sns.heatmap(values, ax=ax, cmap="RdBu_r", vmin=-1, vmax=1, center=0, annot=annot, fmt="",
                annot_kws={"size": 7}, linewidths=0.3, linecolor="white",
                cbar_kws={"label": _t("fig_loading", lang)})
    ax.set_xticks(np.arange(k) + 0.5, [_plain(c, 12) for c in loadings.columns], rotation=0)
    ax.set_yticks(np.arange(p) + 0.5, _labels(loadings.index, item_labels, 45), rotation=0, fontsize=7)
    ax.set_title(_t("fig_loadings_title", lang).format(cutoff=i18n.fmt_number(cutoff, 2, lang)))
    return localise_axes(fig, lang)


def factor_diagram(loadings: pd.DataFrame, *, cutoff: float = 0.3, phi: pd.DataFrame | None = None,
                   item_labels: Mapping[str, str] | None = None, lang: str = "en") -> Figure:
    """Path diagram: items (left) -> factors (right), one line per loading with ``|loading| >= cutoff``.

    Line width grows with the absolute loading; solid lines are positive, dashed negative. Factor
    correlations (``phi``) above ``cutoff`` are written between the factor boxes on the right.

    Parameters
    ----------
    loadings
        Items x factors pattern matrix, preferably sorted (:func:`research.efa.sorted_loadings`).
    phi
        Factor correlations (omit for orthogonal solutions).
    """
    p, k = loadings.shape
    values = loadings.to_numpy(dtype=float)
    height = max(4.0, 0.34 * p + 1.2)
    fig, ax = new_figure(width=9.0, height=height)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, p - 0.5)
    ax.axis("off")
    colours = sns.color_palette(PALETTE, n_colors=max(k, 3))
    item_y = np.arange(p)[::-1].astype(float)
    factor_y = np.linspace(p - 1, 0, k + 2)[1:-1] if k > 1 else np.array([(p - 1) / 2])
    x_item, x_factor = 0.42, 0.78
    for i, label in enumerate(_labels(loadings.index, item_labels, 45)):
        ax.text(x_item - 0.01, item_y[i], label, ha="right", va="center", fontsize=7,
                bbox={"boxstyle": "square,pad=0.2", "facecolor": "white", "edgecolor": "0.6", "linewidth": 0.5})
    for j, name in enumerate(loadings.columns):
        ax.text(x_factor + 0.01, factor_y[j], _plain(name, 10), ha="left", va="center", fontsize=9,
                fontweight="bold", bbox={"boxstyle": "circle,pad=0.3", "facecolor": colours[j],
                                         "alpha": 0.35, "edgecolor": colours[j]})
    for i in range(p):
        drawn = 0
        for j in range(k):
            lam = values[i, j]
            if not np.isfinite(lam) or abs(lam) < cutoff:
                continue
            drawn += 1
            ax.plot([x_item, x_factor], [item_y[i], factor_y[j]], color=colours[j],
                    linewidth=0.5 + 3.0 * abs(lam), linestyle="-" if lam >= 0 else "--", alpha=0.8)
            t = (0.28, 0.5, 0.65, 0.75)[min(drawn, 4) - 1]  # stagger the labels of one item's lines
            ax.text(x_item + t * (x_factor - x_item), item_y[i] + t * (factor_y[j] - item_y[i]),
                    i18n.fmt_number(lam, 2, lang), fontsize=6, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    if phi is not None and k > 1:
        lines = []
        names = list(loadings.columns)
        for a in range(k):
            for b in range(a + 1, k):
                r = float(phi.loc[names[a], names[b]])
                lines.append(f"{names[a]}–{names[b]}: {i18n.fmt_number(r, 2, lang)}")
        ax.text(0.99, -0.45, _t("fig_phi", lang) + "\n" + "\n".join(lines), ha="right", va="bottom",
                fontsize=7, color="0.25")
    handles = [Line2D([0], [0], color="0.3", linestyle="-", label=_t("fig_positive", lang)),
               Line2D([0], [0], color="0.3", linestyle="--", label=_t("fig_negative", lang))]
    ax.legend(handles=handles, loc="upper right", fontsize=7, frameon=False)
    ax.set_title(_t("fig_diagram_title", lang).format(cutoff=i18n.fmt_number(cutoff, 2, lang)))
    return localise_axes(fig, lang)
