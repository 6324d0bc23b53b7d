"""Report language: text catalogues (``locales/<name>.yaml``) and locale-aware number formatting.

Each catalogue maps a key to ``{en: ..., lt: ...}``. Values may use ``{name}`` placeholders filled by
:func:`text`; the filled-in values are formatted for the language (decimal comma in Lithuanian) and
HTML-escaped, so data can never inject markup into a report. Catalogue text itself is trusted and may use
a few inline HTML tags (``<b>``, ``<i>``, ``<code>``).
"""

from __future__ import annotations

import html
import math
import numbers
from functools import cache
from importlib import resources
from typing import Any

import yaml

LANGS = ("en", "lt")


@cache
def catalogue(name: str) -> dict[str, dict[str, str]]:
    """Load ``locales/<name>.yaml`` merged over ``locales/common.yaml``."""
    def load(n: str) -> dict:
        path = resources.files("research") / "locales" / f"{n}.yaml"
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.is_file() else {}
    merged = dict(load("common"))
    if name != "common":
        merged.update(load(name))
    return merged


def fmt_number(x: Any, digits: int = 2, lang: str = "en") -> str:
    """Format a number for the report language: ``1234.5`` -> ``1234.50`` (en) or ``1234,50`` (lt).

    Integers keep no decimals; NaN/None give an en dash. No thousands separator (tables stay compact).
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, numbers.Integral):
        s = str(int(x))
    elif isinstance(x, numbers.Real):
        if math.isinf(float(x)):
            return "∞" if x > 0 else "−∞"
        s = f"{float(x):.{digits}f}"
        if s.startswith("-") and float(s) == 0:
            s = s[1:]
    else:
        return str(x)
    return s.replace(".", ",") if lang == "lt" else s


def fmt_p(p: Any, lang: str = "en") -> str:
    """APA-style p-value: three decimals, ``< .001`` below that (``< 0,001`` in Lithuanian)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if p < 0.001:
        return "< " + fmt_number(0.001, 3, lang)
    return fmt_number(p, 3, lang)


def text(name: str, key: str, lang: str = "en", **values: Any) -> str:
    """Catalogue text for ``key`` in ``lang`` with ``values`` formatted and HTML-escaped.

    Floats are shown with 2 decimals unless given pre-formatted as strings; keys ending in ``p`` are
    formatted as p-values.
    """
    entry = catalogue(name).get(key)
    if entry is None:
        raise KeyError(f"no text {key!r} in locales/{name}.yaml or common.yaml")
    template = entry.get(lang) or entry.get("en")
    safe = {}
    for k, v in values.items():
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            v = fmt_p(v, lang) if k == "p" or k.startswith("p_") else fmt_number(v, 2, lang)
        safe[k] = html.escape(str(v), quote=True)
    return template.format(**safe)


def label(name: str, key: str, lang: str = "en") -> str:
    """Catalogue text without placeholders, or ``key`` itself when the catalogue has no entry."""
    entry = catalogue(name).get(key)
    return (entry.get(lang) or entry.get("en")) if entry else key
