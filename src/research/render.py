"""HTML for people: the reports of the executed notebooks, their provenance, and the study's index page.

Every page is self-contained and works offline from ``file://``: figures are inline PNG in the notebooks,
and the nbconvert template ``templates/research`` is the JupyterLab look without the scripts the stock
template loads from CDNs (require.js, MathJax, mermaid, the widget manager). Values that come from data,
configuration or the command line are HTML-escaped; only catalogue text (``locales/pipeline.yaml``) is
trusted markup. Explicit bidirectional formatting characters (e.g. U+202E RIGHT-TO-LEFT OVERRIDE) are shown
as visible ``[U+202E]`` marks in every page (:func:`inert_bidi`), so a respondent's text cannot reorder what a
reader sees around it; right-to-left scripts themselves (Arabic, Hebrew) and emoji are kept as typed.

Two versions of each notebook are rendered (:func:`notebook_html`):

* the **reviewer** report: outputs only, no code cells and no prompts;
* the **full** report: code and outputs, for whoever checks how a number was computed.

Both end with a provenance section (:func:`provenance_cell`): git commit and dirty flag, package and Python
versions, SHA-256 of every input file, the notebook's parameters and its wall time. Run timestamps live
here and in ``manifest.json``, never in the results JSON, so results stay byte-identical between runs.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from . import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
NBCONVERT_TEMPLATE = "research"
INDEX_TEMPLATE = "study_index.html.j2"
CATALOGUE = "pipeline"

# Versions shown in every provenance section (distribution names as pip knows them).
PROVENANCE_PACKAGES = (
    "research", "numpy", "pandas", "scipy", "statsmodels", "factor-analyzer", "scikit-learn", "pingouin",
    "matplotlib", "seaborn", "pyarrow", "pydantic", "pyyaml", "papermill", "nbconvert", "nbclient",
    "nbformat", "ipykernel", "jupyter-client", "pyzmq",
)
# Explicit directional embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI):
# invisible, yet they reorder the text that follows them ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Environment variables that change numerical results or their order; shown when set.
PROVENANCE_ENVIRONMENT = ("PYTHONHASHSEED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def inert_bidi(text: str) -> str:
    """Replace each explicit bidirectional formatting character by a visible mark such as ``[U+202E]``.

    Applied to every rendered page: data shown in a report cannot flip the reading order of the text around
    it, and the mark tells the reader that the original text held such a character. Plain ASCII, so it is
    safe inside element text and attribute values alike.
    """
    return BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def t(key: str, lang: str, **values: Any) -> str:
    """Pipeline catalogue text (trusted markup; ``values`` escaped)."""
    return i18n.text(CATALOGUE, key, lang, **values)


# --- provenance ------------------------------------------------------------------------------------
def git_state(root: Path) -> dict[str, Any] | None:
    """``{"commit": <sha>, "dirty": bool}`` of the checkout at ``root``; ``None`` outside git.

    Dirty means tracked files differ from the commit (untracked files do not count).
    """
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(names: Iterable[str] = PROVENANCE_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` when absent), read without importing them."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment_provenance(root: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The run-wide part of the provenance: git, Python, platform, package versions, environment."""
    env = os.environ if env is None else env
    return {
        "git": git_state(root),
        "python": f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})",
        "platform": platform.platform(),
        "packages": package_versions(),
        "environment": {k: env[k] for k in PROVENANCE_ENVIRONMENT if k in env},
    }


def _code(value: Any) -> str:
    return f"<code>{html.escape(str(value))}</code>"


def _value(value: Any) -> str:
    """A parameter value as it was passed (JSON notation), escaped."""
    return _code(json.dumps(value, ensure_ascii=False, sort_keys=True))


def provenance_html(prov: Mapping[str, Any], lang: str) -> str:
    """The provenance table as one HTML block without blank lines (so Markdown keeps it as HTML).

    ``prov`` holds the keys made by :func:`environment_provenance` plus, for a notebook, ``study``,
    ``notebook``, ``package_sha256``, ``parameters``, ``inputs``, ``kernel`` and ``run``.
    """
    rows: list[tuple[str, str]] = []
    git = prov.get("git")
    if git:
        state = t("git_dirty", lang) if git.get("dirty") else t("git_clean", lang)
        rows.append((t("git_commit", lang), f"{_code(git.get('commit', ''))} ({state})"))
    else:
        rows.append((t("git_commit", lang), t("git_unknown", lang)))
    if prov.get("study"):
        rows.append((t("study_config", lang), f"{_code(prov['study']['path'])}<br>{_code(prov['study']['sha256'])}"))
    if prov.get("notebook"):
        nb = prov["notebook"]
        rows.append((t("notebook_source", lang), f"{_code(nb['path'])}<br>{_code(nb['sha256'])}"))
    if prov.get("package_sha256"):
        rows.append((t("package_source", lang), _code(prov["package_sha256"])))
    if "parameters" in prov:
        params = prov["parameters"] or {}
        shown = "<br>".join(f"{_code(k)} = {_value(v)}" for k, v in sorted(params.items()))
        rows.append((t("parameters", lang), shown or t("no_parameters", lang)))
    if prov.get("inputs"):
        lines = [f"{_code(f['path'])}: {_code(f['sha256']) if f.get('sha256') else t('file_missing', lang)}"
                 for f in prov["inputs"]]
        rows.append((t("input_files", lang), "<br>".join(lines)))
    rows.append((t("python", lang), html.escape(str(prov.get("python", "")))))
    rows.append((t("platform", lang), html.escape(str(prov.get("platform", "")))))
    if prov.get("kernel"):
        rows.append((t("kernel", lang), _code(prov["kernel"])))
    packages = prov.get("packages") or {}
    rows.append((t("packages", lang), ", ".join(f"{html.escape(k)}&nbsp;{html.escape(v)}"
                                                 for k, v in packages.items())))
    if prov.get("environment"):
        rows.append((t("environment", lang), ", ".join(f"{_code(k)}={_code(v)}"
                                                     for k, v in sorted(prov["environment"].items()))))
    run = prov.get("run")
    if run:
        rows.append((t("started", lang), html.escape(str(run.get("started", "")))))
        if run.get("wall_time") is not None:
            seconds = i18n.fmt_number(float(run["wall_time"]), 1, lang)
            rows.append((t("wall_time", lang), t("seconds", lang, value=seconds)))
        rows.append((t("run_status", lang), html.escape(str(run.get("status", "")))))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="research-provenance"><tbody>{body}</tbody></table>'


def provenance_cell(prov: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """A Markdown cell (nbformat v4 dict) with the provenance section, tagged ``provenance``."""
    markup = (f'<div class="research-provenance-section" id="provenance"><h2>{t("provenance", lang)}</h2>'
              f'<p>{t("provenance_intro", lang)}</p>{provenance_html(prov, lang)}</div>')
    return {"cell_type": "markdown", "metadata": {"tags": ["provenance"]}, "source": markup}


# --- notebook reports -------------------------------------------------------------------------------
def notebook_html(nb: Any, *, reviewer: bool, title: str, lang: str = "en",
                  nav: Sequence[Mapping[str, str]] = ()) -> str:
    """Render an executed notebook (``nbformat.NotebookNode``) to one self-contained HTML page.

    Parameters
    ----------
    nb
        The executed notebook.
    reviewer
        ``True``: no code cells and no prompts (``exclude_input``, ``exclude_input_prompt``,
        ``exclude_output_prompt``); ``False``: code, prompts and outputs.
    title
        The page title (escaped by the template).
    lang
        ISO 639-1 code for ``<html lang>``.
    nav
        Links shown above the report (``{"href", "label"}``; escaped).
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=NBCONVERT_TEMPLATE, extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=reviewer, exclude_input_prompt=reviewer, exclude_output_prompt=reviewer,
        embed_images=True, language_code=lang, mathjax_url="", require_js_url="", widget_renderer_url="",
    )
    resources = {"metadata": {"name": title}, "research_nav": [dict(item) for item in nav]}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return inert_bidi(body)


# --- study index --------------------------------------------------------------------------------------
def _is_p_value(key: str) -> bool:
    key = key.lower()
    return key == "p" or key.startswith("p_") or key.endswith("_p") or "_p_" in key


def _fmt_scalar(value: Any, lang: str, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return i18n.fmt_number(value, 0, lang)
    if isinstance(value, float):
        if _is_p_value(key) and 0 <= value <= 1:
            return i18n.fmt_p(value, lang)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            text = f"{value:.3g}"
            return text.replace(".", ",") if lang == "lt" else text
        return i18n.fmt_number(value, 3, lang)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def summarise_results(results: Mapping[str, Any], lang: str = "en", *, max_inline: int = 8,
                      ) -> list[tuple[str, str, str | None]]:
    """Key results as index rows ``(key, shown value, details)``.

    Scalars are formatted for the report language (p-values APA style); a short list or flat mapping of
    scalars is shown on one line (``F1: 0.805; F2: 0.795``); anything longer or nested is summarised
    (``18 entries``) with its full JSON as ``details`` (shown collapsed).
    """
    rows: list[tuple[str, str, str | None]] = []
    for key in sorted(results, key=str):
        value = results[key]
        if _is_scalar(value):
            rows.append((key, _fmt_scalar(value, lang, key), None))
        elif isinstance(value, list) and len(value) <= max_inline and all(_is_scalar(v) for v in value):
            rows.append((key, ", ".join(_fmt_scalar(v, lang, key) for v in value) or "–", None))
        elif (isinstance(value, Mapping) and len(value) <= max_inline
              and all(_is_scalar(v) for v in value.values())):
            shown = "; ".join(f"{k}: {_fmt_scalar(v, lang, key)}" for k, v in value.items())
            rows.append((key, shown or "–", None))
        else:
            n = len(value) if isinstance(value, list | Mapping) else 1
            detail = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)
            rows.append((key, t("n_entries", lang, n=n), detail))
    return rows


CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg", "bonferroni": "Bonferroni", "none": "–"}


def _p_text(p: Any, lang: str) -> str:
    shown = i18n.fmt_p(p, lang)
    return shown if shown.startswith("<") else f"= {shown}"


def _listing(values: Iterable[Any], limit: int = 5) -> str:
    values = [str(v) for v in values]
    more = len(values) - limit
    return ", ".join(values[:limit]) + (f" (+{more})" if more > 0 else "")


def headlines(results: Mapping[str, Mapping[str, Any]], lang: str = "en") -> list[str]:
    """The study's key findings in plain language for the index, one sentence per analysis.

    ``results`` maps a notebook's short name (``prepare``, ``experts``, ``efa``, ``survey``, ``model``,
    ``monitoring``) to its results JSON ``results`` mapping (keys in docs/results.md). A notebook that has
    not run, or a study without that part (no expert panel, no groups, no service records), gives no
    sentence. Sentences come from the ``pipeline`` catalogue; every value is escaped.
    """
    out: list[str] = []
    num = i18n.fmt_number

    def add(key: str, **values: Any) -> None:
        out.append(i18n.text(CATALOGUE, key, lang, **values))

    r = results.get("prepare") or {}
    if r.get("n_respondents"):
        groups = r.get("group_sizes") or {}
        add("headline_data", n=r["n_respondents"], groups=_listing(f"{k}: {v}" for k, v in groups.items()),
            n_experts=r.get("n_experts") or 0, n_orders=r.get("n_orders") or 0)
    r = results.get("experts") or {}
    if r.get("W_overall") is not None:
        add("headline_experts", n_experts=r.get("n_experts"), n_factors=r.get("n_factors"),
            W=num(r["W_overall"], 3, lang), p_text=_p_text(r.get("p_overall"), lang),
            top=_listing(r.get("top_factors") or [], 3))
    r = results.get("efa") or {}
    if r.get("n_factors"):
        congruence = r.get("congruence_hypothesised") or {}
        if congruence:
            add("headline_efa", k=r["n_factors"], kmo=num(r.get("kmo"), 2, lang),
                low=num(min(congruence.values()), 2, lang), high=num(max(congruence.values()), 2, lang))
        else:
            add("headline_efa_plain", k=r["n_factors"], kmo=num(r.get("kmo"), 2, lang))
    r = results.get("survey") or {}
    if r.get("group_levels") and r.get("significant_items") is not None:
        items = r["significant_items"]
        add("headline_survey", n=len(items), items=_listing(items) if items else "–",
            correction=CORRECTION_NAMES.get(r.get("correction"), r.get("correction") or ""))
    r = results.get("model") or {}
    if r.get("top_priorities"):
        index = (r.get("stage_index") or {})
        stages = [f"{s} {num(v['all']['index'], 0, lang)}" for s, v in index.items()
                  if s != "all" and isinstance(v, Mapping) and "all" in v]
        add("headline_model", top=_listing([t["factor"] for t in r["top_priorities"]], 3),
            stages=_listing(stages, 8))
    r = results.get("monitoring") or {}
    if r.get("kpi_status"):
        shifts = {k: v for k, v in (r.get("shift_detected_month") or {}).items() if v}
        add("headline_monitoring", n_out=r.get("n_out_of_control") or 0, n=len(r["kpi_status"]),
            shifts=_listing(f"{k} ({v})" for k, v in shifts.items()) if shifts else "–")
    return out


def render_index(*, title: str, company: str, synthetic: bool, lang: str, date: str,
                 notebooks: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any]) -> str:
    """The study's ``index.html``.

    ``notebooks`` rows carry ``number``, ``title``, ``short``, ``status`` (``ok``, ``failed``,
    ``skipped``, ``missing`` or ``never``), ``detail``, ``wall_time`` (seconds or ``None``), ``finished``,
    ``links`` (``{"href", "label"}``), ``stale``, ``results`` (mapping) and ``warnings`` (list).
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    catalogue_keys = i18n.catalogue(CATALOGUE).keys()
    texts = {k: t(k, lang, date=date) if k == "index_intro" else i18n.label(CATALOGUE, k, lang)
             for k in catalogue_keys if k not in ("n_entries", "seconds") and not k.startswith("headline_")}
    rows = []
    for nb in notebooks:
        wall = nb.get("wall_time")
        rows.append({
            "number": nb["number"], "title": nb["title"], "short": nb["short"], "status": nb["status"],
            "status_text": i18n.label(CATALOGUE, f"status_{nb['status']}", lang), "detail": nb.get("detail") or "",
            "wall_time": t("seconds", lang, value=i18n.fmt_number(float(wall), 1, lang)) if wall is not None else "–",
            "finished": nb.get("finished") or "–", "links": nb.get("links") or [], "stale": bool(nb.get("stale")),
            "results": summarise_results(nb.get("results") or {}, lang), "warnings": list(nb.get("warnings") or []),
        })
    findings = headlines({nb["short"]: nb.get("results") or {} for nb in notebooks}, lang)
    template = env.get_template(INDEX_TEMPLATE)
    return inert_bidi(template.render(title=title, company=company, synthetic=synthetic, lang=lang, t=texts,
                                      notebooks=rows, headlines=findings,
                                      provenance_html=provenance_html(provenance, lang)))
