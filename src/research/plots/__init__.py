"""Figures, one module per analysis (``plots.experts``, ``plots.efa``, ``plots.survey``, ``plots.model``,
``plots.monitoring``). Every function returns a matplotlib ``Figure`` and draws aggregates, never one mark
per respondent, so figures stay light for any sample size. Fonts are matplotlib's bundled DejaVu (which
covers Lithuanian letters); nothing is downloaded.

Numbers drawn in a figure follow the report language like the tables do (decimal comma in Lithuanian):
annotations use :func:`research.i18n.fmt_number`, and every plotting function ends with
:func:`localise_axes`, which gives each numeric axis (colour bars included) a :class:`LocaleFormatter`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, ScalarFormatter

from .. import i18n

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


class LocaleFormatter(ScalarFormatter):
    """Matplotlib's default tick formatter, with the decimal mark of the report language.

    Tick positions, the number of decimals and the offset text are chosen exactly as by
    :class:`matplotlib.ticker.ScalarFormatter`; only the decimal point becomes a comma for ``lang="lt"``
    (``0.25`` -> ``0,25``), as in :func:`research.i18n.fmt_number`.
    """

    def __init__(self, lang: str = "en"):
        super().__init__()
        self.lang = lang

    def _localise(self, text: str) -> str:
        return text.replace(".", ",") if self.lang == "lt" else text

    def __call__(self, x, pos=None) -> str:
        return self._localise(super().__call__(x, pos))

    def get_offset(self) -> str:
        return self._localise(super().get_offset())


def number_formatter(lang: str = "en", digits: int = 2) -> FuncFormatter:
    """Tick labels with a fixed number of decimals in the report language (``fmt_number``)."""
    return FuncFormatter(lambda v, _pos: i18n.fmt_number(float(v), digits, lang))


def localise_axes(fig: Figure, lang: str = "en") -> Figure:
    """Give every numeric axis of ``fig`` that still has matplotlib's default formatter a
    :class:`LocaleFormatter` for ``lang``; category, date and custom axes are left alone. Returns ``fig``."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if type(axis.get_major_formatter()) is ScalarFormatter:
                axis.set_major_formatter(LocaleFormatter(lang))
    return fig
