"""What notebooks show and record: localised, escaped narrative, tables and figures, and results JSON.

Notebooks stay thin: they call analyses in the package and hand the results to a :class:`Reporter`,
which

* takes every sentence from the notebook's text catalogue (``locales/<name>.yaml``) in the study's
  report language, with numbers formatted for that language;
* HTML-escapes every value that comes from data or configuration (company names, comments, labels), so a
  report never runs markup a respondent typed;
* collects key numbers and writes them atomically to ``reports/<study>/results/<name>.json``.
"""

from __future__ import annotations

import contextlib
import html
import math
import numbers
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from . import i18n
from .config import StudyConfig
from .io import write_json


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    display(obj)


def _html(markup: str) -> None:
    try:
        from IPython.display import HTML
    except ImportError:  # pragma: no cover
        return
    _display(HTML(markup))


def _is_text_column(values: pd.Series, name: Any) -> bool:
    """Words (left-aligned) rather than numbers or p-values (right-aligned, so decimals line up)."""
    if name == "p" or str(name).startswith("p_"):
        return False
    return not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def html_table(df: pd.DataFrame, *, text_columns: list[bool] | None = None) -> str:
    """An HTML table of ``df`` with every header and cell escaped; text columns left-aligned."""
    text_columns = text_columns or [False] * df.shape[1]
    style = ['style="text-align:left"' if t else 'style="text-align:right"' for t in text_columns]
    head = "".join(f"<th {a}>{html.escape(str(c))}</th>" for c, a in zip(df.columns, style, strict=True))
    body = "".join(
        "<tr>" + "".join(f"<td {a}>{html.escape('–' if v is None or v is pd.NA else str(v))}</td>"
                         for v, a in zip(row, style, strict=True)) + "</tr>"
        for row in df.itertuples(index=False, name=None))
    return f'<table class="research-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Reporter:
    """Display helper and results collector for one notebook.

    Parameters
    ----------
    cfg
        The loaded study configuration (language, study id).
    name
        Notebook short name: the text catalogue ``locales/<name>.yaml`` and the results file
        ``reports/<study>/results/<name>.json``.

    Examples
    --------
    >>> rep = Reporter(cfg, "experts")                       # doctest: +SKIP
    >>> rep.heading("kendall")                               # doctest: +SKIP
    >>> rep.paragraph("w_reading", W=0.41, p=0.0002)         # doctest: +SKIP
    >>> rep.record("W_overall", 0.41); rep.save()            # doctest: +SKIP
    """

    def __init__(self, cfg: StudyConfig, name: str):
        self.cfg = cfg
        self.name = name
        self.lang = cfg.language
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []

    # --- text ---------------------------------------------------------------------------------
    def t(self, key: str, **values: Any) -> str:
        """Catalogue text in the report language (values escaped and locale-formatted)."""
        return i18n.text(self.name, key, self.lang, **values)

    def label(self, key: str) -> str:
        return i18n.label(self.name, key, self.lang)

    def num(self, x: Any, digits: int = 2) -> str:
        return i18n.fmt_number(x, digits, self.lang)

    def pval(self, p: Any) -> str:
        return i18n.fmt_p(p, self.lang)

    def heading(self, key: str, level: int = 2, **values: Any) -> None:
        _html(f"<h{level}>{self.t(key, **values)}</h{level}>")

    def title(self) -> None:
        """Study title, company and, for synthetic data, a banner saying so."""
        _html(f"<h1>{self.t('title')}</h1><p><i>{html.escape(self.cfg.study.title(self.lang))}</i> — "
              f"{html.escape(self.cfg.study.company)}</p>")
        if self.cfg.study.synthetic:
            self.callout(self.t("synthetic_banner"), kind="info")

    def paragraph(self, key: str, **values: Any) -> None:
        _html(f"<p>{self.t(key, **values)}</p>")

    def callout(self, markup: str, kind: str = "warning") -> None:
        """A visible box; ``markup`` must already be safe (catalogue text or escaped)."""
        colours = {"warning": "#fff4e5;border-left:4px solid #e69500", "info": "#eef6fc;border-left:4px solid #2b7bb9"}
        _html(f'<div class="research-{kind}" style="background:{colours.get(kind, colours["info"])};'
              f'padding:0.5em 1em;margin:0.5em 0">{markup}</div>')

    def warn(self, message: str) -> None:
        """Show a warning in the report (escaped) and keep it in the results JSON under ``warnings``."""
        self.notes.append(message)
        self.callout(f"<b>{self.t('warning')}:</b> {html.escape(message)}", kind="warning")

    def skip(self, reason: str) -> None:
        """Say visibly that a part of the analysis is skipped (e.g. the study has no expert panel)."""
        self.callout(self.t("skipped_part", reason=reason), kind="info")

    @contextlib.contextmanager
    def warnings_shown(self) -> Iterator[None]:
        """Turn Python warnings raised inside the block into visible report warnings."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        seen = set()
        for w in caught:
            msg = str(w.message)
            if msg not in seen and not issubclass(w.category, DeprecationWarning | FutureWarning):
                seen.add(msg)
                self.warn(msg)

    # --- tables and figures ---------------------------------------------------------------------
    def format_table(self, df: pd.DataFrame, digits: int | Mapping[str, int] = 3,
                     columns: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Return a copy with numbers as locale strings and headers translated (catalogue keys)."""
        out = df.copy()
        for col in out.columns:
            d = digits.get(col, 3) if isinstance(digits, Mapping) else digits
            if col == "p" or str(col).startswith("p_"):
                out[col] = [self.pval(v) for v in out[col]]
            elif pd.api.types.is_bool_dtype(out[col]):  # yes/no in the report language, not True/False
                out[col] = [self.num(None) if v is None or v is pd.NA else self.label(str(bool(v)).lower())
                            for v in out[col]]
            elif pd.api.types.is_float_dtype(out[col]):
                out[col] = [self.num(v, d) for v in out[col]]
            elif pd.api.types.is_integer_dtype(out[col]):
                out[col] = [self.num(None if pd.isna(v) else int(v)) for v in out[col]]
            elif out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
                # missing text shows as a dash like missing numbers, not as "None" or "<NA>"
                out[col] = [self.num(None) if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                            else v for v in out[col]]
        names = dict(columns or {})
        out.columns = [names.get(c, self.label(str(c))) for c in out.columns]
        return out

    def table(self, df: pd.DataFrame, *, caption: str | None = None, digits: int | Mapping[str, int] = 3,
              columns: Mapping[str, str] | None = None, index: bool = False, max_rows: int = 60) -> None:
        """Show ``df`` as an escaped HTML table (numbers formatted for the report language)."""
        head = df.head(max_rows)
        shown = self.format_table(head, digits, columns)
        if index:
            shown = shown.reset_index()
            head = head.reset_index()
        markup = html_table(shown, text_columns=[_is_text_column(head[c], c) for c in head.columns])
        cap = f"<p><b>{self.t(caption)}</b></p>" if caption else ""
        more = f"<p><i>… {len(df) - max_rows} more rows</i></p>" if len(df) > max_rows else ""
        _html(cap + markup + more)

    def figure(self, fig: Any) -> None:
        """Show a matplotlib figure and close it (so memory stays flat over many figures)."""
        import matplotlib.pyplot as plt

        _display(fig)
        plt.close(fig)

    # --- results -------------------------------------------------------------------------------
    def record(self, key: str, value: Any) -> Any:
        """Keep a key number for ``reports/<study>/results/<name>.json`` and return it."""
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(float(value)):
            value = None
        self.results[key] = value
        return value

    def save(self) -> None:
        """Write the results JSON atomically (sorted keys, stable across runs)."""
        payload = {"study": self.cfg.study.id, "notebook": self.name, "language": self.lang,
                   "synthetic": self.cfg.study.synthetic, "results": self.results, "warnings": self.notes}
        write_json(self.cfg.paths.results_json(self.name), payload)
