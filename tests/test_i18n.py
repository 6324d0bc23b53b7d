"""Reports in English and Lithuanian: the text catalogues, numbers in figures, and the demo study rendered in
Lithuanian (``research run -p language=lt``, once per test session, into a temporary output root).

What "in Lithuanian" means here: headings, table headers and narrative come from the ``lt`` entries of
``src/research/locales/*.yaml``; item wording from the codebook's ``label_lt``; stage, factor and group names
from the ``lt`` labels of the study config; numbers use the decimal comma in tables, text and figure
tick labels and annotations (``research.i18n.fmt_number``, ``research.plots.LocaleFormatter``).
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
import sys
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DEMO_STUDY, ROOT
from research import i18n

matplotlib.use("Agg")

LOCALES = sorted((resources.files("research") / "locales").iterdir(), key=lambda p: p.name)
NOTEBOOKS = {"00_prepare_data": "prepare", "01_expert_evaluation": "experts", "02_factor_analysis": "efa",
             "03_survey_comparison": "survey", "04_supervision_model": "model", "05_quality_monitoring": "monitoring"}
POINT_DECIMAL = re.compile(r"\d\.\d")
COMMA_DECIMAL = re.compile(r"\d,\d")


# --------------------------------------------------------------------------------------------------
# The catalogues
# --------------------------------------------------------------------------------------------------
def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


@pytest.mark.parametrize("path", LOCALES, ids=lambda p: p.name)
def test_every_key_has_english_and_lithuanian_with_the_same_placeholders(path):
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(entries, dict) and entries
    problems = []
    for key, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != {"en", "lt"}:
            problems.append(f"{key}: expected exactly en and lt, got {entry!r}")
            continue
        if not all(isinstance(entry[lang], str) and entry[lang].strip() for lang in ("en", "lt")):
            problems.append(f"{key}: empty text")
            continue
        if placeholders(entry["en"]) != placeholders(entry["lt"]):
            problems.append(f"{key}: placeholders {sorted(placeholders(entry['en']))} (en) vs "
                            f"{sorted(placeholders(entry['lt']))} (lt)")
        if len(entry["en"]) > 40 and entry["en"] == entry["lt"]:
            problems.append(f"{key}: the Lithuanian text is the English one")
    assert problems == []


def test_every_text_key_a_notebook_uses_is_in_its_catalogue():
    import nbformat

    for name, short in NOTEBOOKS.items():
        nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f'Reporter(cfg, "{short}")' in source
        keys = set(re.findall(r'rep\.(?:heading|paragraph|t|label)\(\s*"(\w+)"', source))
        keys |= set(re.findall(r'caption="(\w+)"', source))
        missing = sorted(k for k in keys if k not in i18n.catalogue(short))
        assert missing == [], (name, missing)


def test_numbers_are_formatted_for_the_language():
    # expected strings written by hand from the CLDR conventions (lt: decimal comma, no grouping here)
    assert i18n.fmt_number(0.78512, 3, "lt") == "0,785" and i18n.fmt_number(0.78512, 3, "en") == "0.785"
    assert i18n.fmt_p(0.0004, "lt") == "< 0,001" and i18n.fmt_p(0.0412, "lt") == "0,041"
    assert i18n.text("experts", "fig_weight_axis", "lt") == i18n.catalogue("experts")["fig_weight_axis"]["lt"]


# --------------------------------------------------------------------------------------------------
# Figures: tick labels and annotations in the report language
# --------------------------------------------------------------------------------------------------
def figure_texts(fig) -> list[str]:
    """Every visible text of a drawn figure (titles, labels, tick labels, annotations, legends)."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig.canvas.draw()
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    plt.close(fig)
    return texts


def all_figures(lang: str, cfg) -> dict[str, object]:
    """One figure of every plotting function, from small hand-made inputs (monitoring: synthetic records)."""
    from research import monitoring as mon
    from research.plots import efa, experts, model, monitoring, survey
    from research.synthetic import DEMO, simulate_service_records

    rng = np.random.default_rng(5)
    factors = [f"F{i}" for i in range(6)]
    stages = ["A", "A", "A", "B", "B", "B"]
    ranks = pd.DataFrame(np.argsort(rng.random((6, 5)), axis=0) + 1.0, index=factors,
                         columns=[f"E{i}" for i in range(1, 6)])
    ranks.iloc[0, 0] = ranks.iloc[1, 0] = 1.5
    weights = pd.DataFrame({"stage": stages, "factor": factors, "label": factors, "weight": np.linspace(.1, .25, 6)})
    weights["ci_low"], weights["ci_high"], weights["weight_stage"] = weights.weight - .05, weights.weight + .05, .33
    corr = pd.DataFrame(np.corrcoef(rng.random((6, 6))), index=factors, columns=factors)
    loadings = pd.DataFrame(rng.uniform(-.2, .9, (6, 2)), index=factors, columns=["F1", "F2"])
    phi = pd.DataFrame([[1, .45], [.45, 1]], index=["F1", "F2"], columns=["F1", "F2"])
    likert = pd.DataFrame([(v, g, p, pc) for v in factors[:3] for g in ("x", "y")
                           for p, pc in zip(range(1, 6), (5, 10, 20, 40, 25), strict=True)],
                          columns=["variable", "group", "value", "percent"])
    ipa = pd.DataFrame([(f, g, 4 + rng.random(), 3.5 + rng.random()) for f in factors for g in ("x", "y")],
                       columns=["factor", "group", "importance", "performance"])
    comparison = pd.DataFrame({"variable": factors, "r_rb": rng.uniform(-.3, .3, 6),
                               "p_adj": [.01, .2, .5, .03, .9, .04]})
    comparison["r_rb_ci_low"], comparison["r_rb_ci_high"] = comparison.r_rb - .1, comparison.r_rb + .1
    model_factors = pd.DataFrame([(g, s, f, 4 + rng.random(), 3.5 + rng.random(), rng.random())
                                  for g in ("x", "all") for s, f in zip(stages, factors, strict=True)],
                                 columns=["group", "stage", "factor", "importance", "performance", "priority"])
    model_factors["importance_crosshair"], model_factors["performance_crosshair"] = 4.4, 3.9
    kpis = pd.DataFrame({"stage": ["A", "B"], "kpi": ["k1", "k2"], "name": ["K one", "K two"], "target": [.9, 24.5],
                         "direction": ["min", "max"], "unit": ["share", "hours"], "factors": ["F0", "F3"]})
    index = pd.DataFrame([(s, g, 70 + 10 * rng.random()) for s in ("A", "B", "all") for g in ("x", "all")],
                         columns=["stage", "group", "index"])
    index["ci_low"], index["ci_high"] = index["index"] - 3.3, index["index"] + 3.3
    records, _ = simulate_service_records(months=12, rng=np.random.default_rng(3), model=DEMO,
                                          group_column=cfg.group.column)
    monitored = mon.monitor_kpis(records=records, cfg=cfg, baseline_months=6)
    figs = {
        "experts.rank_heatmap": experts.rank_heatmap(ranks, lang=lang),
        "experts.weights_by_stage": experts.weights_by_stage(weights, lang=lang),
        "efa.correlation_heatmap": efa.correlation_heatmap(corr, lang=lang),
        "efa.scree_plot": efa.scree_plot([2.5, 1.2, .6, .3, .1, .05], simulated=[1.1, .8, .5, .3, .2, .1],
                                         simulated_upper=[1.3, 1, .6, .4, .3, .2],
                                         simulated_lower=[.9, .7, .4, .2, .1, 0], n_factors=2, lang=lang),
        "efa.loading_heatmap": efa.loading_heatmap(loadings, lang=lang),
        "efa.factor_diagram": efa.factor_diagram(loadings, phi=phi, lang=lang),
        "survey.likert_bars": survey.likert_bars(likert, lang=lang),
        "survey.importance_performance": survey.importance_performance(ipa, lang=lang),
        "survey.effect_forest": survey.effect_forest(comparison, lang=lang),
        "model.model_diagram": model.model_diagram(weights=weights, kpis=kpis, stage_labels={"A": "A", "B": "B"},
                                                   lang=lang),
        "model.ipa_scatter": model.ipa_scatter(factors=model_factors, group_labels={"x": "X", "all": "All"},
                                               lang=lang),
        "model.stage_index_plot": model.stage_index_plot(stage_index=index,
                                                         stage_labels={"A": "A", "B": "B", "all": "All"},
                                                         group_labels={"x": "X", "all": "All"}, lang=lang),
        "model.priority_heatmap": model.priority_heatmap(factors=model_factors, stage_labels={"A": "A", "B": "B"},
                                                         lang=lang),
        "monitoring.status_overview": monitoring.status_overview(monitored.status, cfg=cfg, lang=lang),
    }
    for k in monitored.kpis:
        figs[f"monitoring.control_chart_figure[{k.kpi.code}]"] = monitoring.control_chart_figure(k.chart, kpi=k.kpi,
                                                                                               lang=lang)
    return figs


def test_every_plotting_function_is_drawn_by_the_figure_tests():
    import inspect

    from research.plots import efa, experts, model, monitoring, survey

    source = inspect.getsource(all_figures)
    for module in (efa, experts, model, monitoring, survey):
        short = module.__name__.rsplit(".", 1)[1]
        public = [n for n, f in inspect.getmembers(module, inspect.isfunction)
                  if f.__module__ == module.__name__ and not n.startswith("_") and n != "status_label"]
        assert public, short
        for name in public:
            assert f"{short}.{name}(" in source, f"plots.{short}.{name} is not drawn by the figure tests"


def test_figure_numbers_use_the_decimal_comma_in_lithuanian(demo_cfg):
    lithuanian = {name: figure_texts(fig) for name, fig in all_figures("lt", demo_cfg).items()}
    english = {name: figure_texts(fig) for name, fig in all_figures("en", demo_cfg).items()}
    leaks = {name: [t for t in texts if POINT_DECIMAL.search(t)] for name, texts in lithuanian.items()}
    assert {k: v for k, v in leaks.items() if v} == {}
    # the check sees numbers: figures with decimals in English show them with a comma in Lithuanian
    with_decimals = [name for name, texts in english.items() if any(POINT_DECIMAL.search(t) for t in texts)]
    assert len(with_decimals) >= 12
    for name in with_decimals:
        assert any(COMMA_DECIMAL.search(t) for t in lithuanian[name]), name
    # and fixed texts follow the language (axis labels from the catalogues)
    assert i18n.label("experts", "fig_weight_axis", "lt") in lithuanian["experts.weights_by_stage"]
    assert i18n.label("model", "importance_axis", "lt") in lithuanian["model.ipa_scatter"]


def test_locale_formatter_keeps_matplotlibs_choice_of_ticks():
    from matplotlib.ticker import ScalarFormatter

    from research.plots import LocaleFormatter, new_figure

    fig, ax = new_figure()
    ax.plot([0, 1], [0.1, 0.35])
    default = ScalarFormatter()
    ax.yaxis.set_major_formatter(default)
    fig.canvas.draw()
    plain = [t.get_text() for t in ax.get_yticklabels()]
    ax.yaxis.set_major_formatter(LocaleFormatter("lt"))
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_yticklabels()] == [t.replace(".", ",") for t in plain]
    assert any("." in t for t in plain)


def test_make_reports_lt_renders_the_demo_in_lithuanian():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^reports-lt:.*\n\t(.+)$", makefile, flags=re.M)
    assert recipe and "run --study $(STUDY)" in recipe.group(1) and "-p language=lt" in recipe.group(1)
    assert re.search(r"^STUDY \?= studies/demo/study.yaml$", makefile, flags=re.M)


# --------------------------------------------------------------------------------------------------
# The demo study rendered in Lithuanian
# --------------------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Visible text of a report (no scripts, styles or <pre> data dumps) and its table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.parts: list[str] = []
        self.cells: list[str] = []
        self.headings: list[str] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre"):
            self.hidden += 1
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h1", "h2", "h3", "h4"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre"):
            self.hidden -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        if self.hidden:
            return
        self.parts.append(data)
        for buf in (self._cell, self._heading):
            if buf is not None:
                buf.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def page(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def report_body(p: _Page) -> str:
    """The analysis part of a reviewer report (the provenance section at the end is technical)."""
    provenance = i18n.label("common", "provenance", "lt")
    return p.text.rsplit(provenance, 1)[0]


def sentence_chunks(template: str, min_length: int = 30) -> list[str]:
    """Literal stretches of a catalogue text between its placeholders and tags, long enough to be prose."""
    plain = re.sub(r"<[^>]+>", "", template)
    return [" ".join(c.split()) for c in re.split(r"\{[^}]*\}", plain) if len(" ".join(c.split())) >= min_length]


@pytest.fixture(scope="session")
def demo_lt(tmp_path_factory) -> Path:
    """``research run --study studies/demo/study.yaml -p language=lt`` into a temporary output root."""
    root = tmp_path_factory.mktemp("demo-lt")
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(root)}
    run = subprocess.run([sys.executable, "-m", "research.cli", "run", "--study", str(DEMO_STUDY), "-j", "2", "-q",
                          "-p", "language=lt"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root / "reports" / "demo-lt"


@pytest.mark.slow
def test_the_demo_renders_in_lithuanian_beside_english(demo_lt):
    assert (demo_lt / "index.html").is_file()
    for name, short in NOTEBOOKS.items():
        assert (demo_lt / f"{name}.html").is_file() and (demo_lt / "code" / f"{name}.html").is_file()
        results = json.loads((demo_lt / "results" / f"{short}.json").read_text(encoding="utf-8"))
        assert results["language"] == "lt" and results["study"] == "demo"
        headings = page(demo_lt / f"{name}.html").headings
        assert i18n.catalogue(short)["title"]["lt"] in headings, name
    assert not (demo_lt.parent / "demo").exists()  # the Lithuanian run writes beside, never over, English


@pytest.mark.slow
def test_the_lithuanian_expert_report_has_lithuanian_headings_and_decimal_commas(demo_lt):
    experts = page(demo_lt / "01_expert_evaluation.html")
    catalogue = yaml.safe_load((resources.files("research") / "locales" / "experts.yaml").read_text("utf-8"))
    assert "Ar ekspertų nuomonės suderintos?" in experts.headings  # experts.yaml kendall_heading (lt)
    heading_keys = [k for k in catalogue if k.endswith("_heading")]
    found = [k for k in heading_keys if catalogue[k]["lt"] in experts.headings]
    assert len(found) >= 4 and not [k for k in heading_keys if catalogue[k]["en"] in experts.headings]
    w = json.loads((demo_lt / "results" / "experts.json").read_text(encoding="utf-8"))["results"]["W_overall"]
    shown = i18n.fmt_number(w, 3, "lt")
    assert re.fullmatch(r"0,7\d\d", shown)  # the demo's planted agreement (W about 0.78)
    assert shown in experts.cells  # Kendall's W in the agreement table, with a decimal comma
    assert f"W = {shown}" in experts.text


@pytest.mark.slow
def test_no_english_narrative_or_decimal_point_leaks_into_the_lithuanian_reports(demo_lt, demo_cfg):
    leaks: dict[str, list[str]] = {}
    for name, short in NOTEBOOKS.items():
        p = page(demo_lt / f"{name}.html")
        body = report_body(p)
        catalogue = i18n.catalogue(short)
        english = {chunk for entry in catalogue.values() for chunk in sentence_chunks(entry["en"])}
        lithuanian = {chunk for entry in catalogue.values() for chunk in sentence_chunks(entry["lt"])}
        found = sorted(c for c in english - lithuanian if c in body)
        if found:
            leaks[name] = found
        # the check reads the right text: Lithuanian prose of the same catalogue is there
        assert sum(c in body for c in lithuanian) >= 5, name
        numbers = [c for c in p.cells if re.fullmatch(r"[−-]?\d+\.\d+( %)?", c)]
        assert numbers == [], (name, numbers[:5])
        assert not re.search(r"(?<![\w.])\d+\.\d+(?![\w.])", body), (name, re.findall(r"\S*\d\.\d\S*", body)[:5])
        assert COMMA_DECIMAL.search(body), name  # and it does hold decimal numbers
    assert leaks == {}
    # item wording from the codebook's label_lt; stage, factor and group names from the config's lt labels
    survey = report_body(page(demo_lt / "03_survey_comparison.html"))
    codebook = demo_cfg.codebook_table
    for r in codebook[codebook["type"].isin(["performance", "profile"])].itertuples():
        if len(r.label_en) >= 20:
            assert r.label_en not in survey, r.variable
    assert "Vertinimas: Vadybininko kompetencija" in survey and "Kliento įmonės šalis" in survey
    model = report_body(page(demo_lt / "04_supervision_model.html"))
    for f in demo_cfg.factors.itertuples():
        assert f.label_en not in model or f.label_en == f.label_lt, f.factor
    assert "Užsienio klientai" in model and "Foreign clients" not in model
    index = page(demo_lt / "index.html").text
    pipeline = {c for e in i18n.catalogue("pipeline").values() for c in sentence_chunks(e["en"])}
    assert not [c for c in pipeline if c in index]
