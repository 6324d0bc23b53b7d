"""Figures, one module per analysis (``plots.experts``, ``plots.efa``, ``plots.survey``, ``plots.model``,
``plots.monitoring``). Every function returns a matplotlib ``Figure`` and draws aggregates, never one mark
per respondent, so figures stay light for any sample size. Fonts are matplotlib's bundled DejaVu (which
covers Lithuanian letters); nothing is downloaded.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = "colorblind"


def setup_style() -> None:
    """Apply the report style (seaborn whitegrid, colour-blind palette, deterministic SVG/PNG metadata)."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font="DejaVu Sans")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "svg.hashsalt": "research",
                         "figure.autolayout": False, "axes.titleweight": "bold"})


def new_figure(width: float = 8.0, height: float = 5.0, **kwargs):
    """A figure of the given size in inches (constrained layout)."""
    setup_style()
    return plt.subplots(figsize=(width, height), layout="constrained", **kwargs)
