"""Adapting the study to another company (docs/adapting.md): the checklist of ``research validate``, the
tutorial's steps end to end, and the second example study ``studies/example-it`` through ``research run``.

The tutorial test follows docs/adapting.md step by step in a throw-away project folder (``pyproject.toml``,
``studies/`` and a ``notebooks`` symlink, found through ``RESEARCH_PROJECT_ROOT``), running the installed
command line in subprocesses as a student would; the sample data are drawn from :mod:`research.synthetic`
for the scaffolded codebook and pasted into the ``templates.xlsx`` sheet and the CSV templates.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from conftest import DEMO_STUDY, ROOT
from research import paths, scaffold
from research.checklist import checklist_text, missing_items
from research.cli import build_parser, main
from research.config import load_study

EXAMPLE_IT = ROOT / "studies" / "example-it" / "study.yaml"
DOC = ROOT / "docs" / "adapting.md"
NOTEBOOK_REPORTS = ("00_prepare_data", "01_expert_evaluation", "02_factor_analysis", "03_survey_comparison",
                    "04_supervision_model", "05_quality_monitoring")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A project root in a temporary folder: new studies, their raw data and outputs all live there."""
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    monkeypatch.setattr(paths, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(paths, "DATA_RAW", tmp_path / "data" / "raw")
    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    return tmp_path


def new(sandbox: Path, name: str = "acme") -> Path:
    scaffold.new_study(name)
    return sandbox / "studies" / name / "study.yaml"


def edit(path: Path, *replacements: tuple[str, str]) -> None:
    """Replace text in a file as a student would in an editor; each old text must be there."""
    text = path.read_text(encoding="utf-8")
    for old, new_text in replacements:
        assert old in text, f"{old!r} not in {path.name}"
        text = text.replace(old, new_text)
    path.write_text(text, encoding="utf-8")


def fill_titles(study: Path) -> None:
    edit(study, ('"TODO: study title in English"', '"Service quality at Tutorial Ltd"'),
         ('"TODO: tyrimo pavadinimas lietuviškai"', '"Paslaugų kokybė UAB „Pamoka“"'),
         ('"TODO: company name"', '"UAB Pamoka (fictitious)"'))


def lines_of(items) -> list[str]:
    return [i.line() for i in items]


# --------------------------------------------------------------------------------------------------
# research validate on a study being filled in: every gap at once
# --------------------------------------------------------------------------------------------------
def test_a_fresh_study_lists_everything_still_missing(sandbox, capsys):
    study = new(sandbox)
    assert main(["validate", "--study", str(study)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == "Study acme (studies/acme/study.yaml): 7 things still missing before the data can be validated:"
    items = [line for line in out if line.startswith("  [ ] ")]
    assert len(items) == 7
    expected = ["studies/acme/study.yaml, key study.title.en: still the template text 'TODO: study title in English'",
                "studies/acme/study.yaml, key study.title.lt: still the template text",
                "studies/acme/study.yaml, key study.company: still the template text 'TODO: company name'",
                "data/raw/acme/survey.csv: still an empty template (a header and no data) -> fill in one row per "
                "respondent (or fill the sheet survey of templates.xlsx and declare data.survey: "
                "{path: data/raw/acme/templates.xlsx, sheet: survey})",
                "data/raw/acme/expert_ratings.csv: still an empty template: no ranks in E01, E02, E03, E04, E05, "
                "E06 (+4 more)",
                "data/raw/acme/expert_panel.csv: still an empty template (a header and no data)",
                "data/raw/acme/service_records.csv: still an empty template (a header and no data)"]
    for item, start in zip(items, expected, strict=True):
        assert item.removeprefix("  [ ] ").startswith(start), item
    assert "delete data.service_records from the config" in items[-1]
    assert out[-1].startswith("Fix them (docs/adapting.md explains every file), then run `research validate")
    assert captured.err.strip().splitlines() == ["research: error: study acme: 7 thing(s) still missing (listed above)"]


def test_codebook_and_file_problems_are_all_listed_together(sandbox):
    study = new(sandbox)
    fill_titles(study)
    raw = sandbox / "data" / "raw" / "acme"
    codebook = study.parent / "codebook.csv"
    edit(codebook,
         ("IMP_S1_RESP,importance,S1,S1_RESP,", "IMP_S1_RESP,importance,S1,S1_SPEED,"),
         ("PERF_S1_RESP,performance,S1,S1_RESP,", "PERF_S1_RESP,performance,S1,S1_SPEED,"),
         ("PERF_S2_FLEX,performance,S2,S2_FLEX,S2,1,5", "PERF_S2_FLEX,performance,S9,S2_FLEX,S2,1,5"),
         ("NPS,outcome,,,,0,10,", "NPS,outcome,,,,,,"),
         ("origin,group,,,,,,false,Client origin,Kliento kilmė\n", ""),
         ("Industry,Pramonės šaka", "Industry,TODO"))
    variables = pd.read_csv(codebook)["variable"].tolist()
    header = [v for v in variables if v != "comment"] + ["remarks"]
    (raw / "survey.csv").write_text(",".join(header) + "\n" + ",".join("1" for _ in header) + "\n", encoding="utf-8")
    ratings = pd.read_csv(raw / "expert_ratings.csv")
    ranks = np.arange(1, len(ratings) + 1, dtype=float)
    for e in ["E01", "E02", "E03", "E04", "E05", "E06", "E07", "E08"]:
        ratings[e] = ranks
    ratings.to_csv(raw / "expert_ratings.csv", index=False)
    (raw / "expert_panel.csv").unlink()
    (raw / "service_records.csv").write_text("order_id,client_id,inquiry_at\nO1,C1,2025-01-02 10:00\n",
                                             encoding="utf-8")
    found = lines_of(missing_items(load_study(study)))
    cb, rec = "studies/acme/codebook.csv", "data/raw/acme/service_records.csv"
    expected = [
        f"{cb}, line 4, column label_lt: still the template text 'TODO'",  # the origin row is gone
        f"{cb}, line(s) 8, 26: factor 'S1_SPEED' is not in the config's stages",
        f"{cb}, line(s) 36: stage 'S9' is not in the config's stages",
        f"{cb}: factor S1_RESP (S1) of the config has no performance item",
        f"{cb}, line 47: NPS has no whole-number scale_min/scale_max ('', '')",
        f"{cb}: the group column 'origin' (group.column in the config) is not a variable",
        "data/raw/acme/survey.csv: no column for the codebook variable(s) comment",
        "data/raw/acme/survey.csv: column(s) remarks are not in the codebook",
        "data/raw/acme/expert_ratings.csv: expert column(s) E09, E10 hold no ranks -> fill them in, or delete the "
        "columns of experts you do not have",
        "data/raw/acme/expert_panel.csv: file not found (named under data.expert_panel.path) -> put the file there, "
        "or delete data.expert_panel from the config",
        f"{rec}: column origin missing (needed by the group column)",
        f"{rec}: column response_at missing (needed by KPI inquiry_response_time)",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in found), (start, "\n".join(found))
    assert all("\n" not in line for line in found)
    kpi_columns = {"contract_signed_at", "planned_delivery", "actual_delivery", "contract_terms_met", "complaint",
                   "complaint_at", "complaint_resolved_at"}
    assert {c for c in kpi_columns if any(line.startswith(f"{rec}: column {c} missing") for line in found)} \
        == kpi_columns
    assert len(found) == len(expected) + len(kpi_columns)


def test_an_xlsx_sheet_is_checked_like_a_csv_file(sandbox):
    study = new(sandbox)
    fill_titles(study)
    edit(study, ('  survey:          {path: data/raw/acme/survey.csv, encoding: utf-8, delimiter: ",", decimal: "."}',
                 "  survey:          {path: data/raw/acme/templates.xlsx, sheet: survey}"))
    empty = [line for line in lines_of(missing_items(load_study(study))) if line.startswith("data/raw/acme/templates")]
    assert empty == ["data/raw/acme/templates.xlsx: still an empty template (a header and no data) -> fill in one "
                     "row per respondent"]
    book_path = sandbox / "data" / "raw" / "acme" / "templates.xlsx"
    book = openpyxl.load_workbook(book_path)
    book["survey"].append(["R1", "foreign"])
    book.save(book_path)
    assert not [line for line in lines_of(missing_items(load_study(study))) if line.startswith("data/raw/acme/templates")]


def test_the_bundled_studies_have_nothing_missing():
    for study in (DEMO_STUDY, EXAMPLE_IT):
        cfg = load_study(study)
        assert missing_items(cfg) == (), checklist_text(cfg, missing_items(cfg))


def test_a_complete_study_prints_the_summary(capsys):
    assert main(["validate", "--study", "studies/example-it/study.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Study example-it - SYNTHETIC data (studies/example-it/study.yaml)")
    assert "Respondents: 240 (segment: small 80 (33.3%), medium 80 (33.3%), large 80 (33.3%))" in out
    assert "things still missing" not in out


# --------------------------------------------------------------------------------------------------
# docs/adapting.md: every command it shows is one the command line accepts
# --------------------------------------------------------------------------------------------------
def doc_commands() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S) if lang in ("bash", "sh")]
    return [shlex.split(line.strip()) for block in blocks for line in block.splitlines()
            if line.strip().startswith("research ")]


def test_the_tutorial_commands_are_valid():
    commands = doc_commands()
    shown = {c[1] for c in commands}
    assert {"new-study", "validate", "run"} <= shown
    assert any("language=lt" in c for c in commands)
    parser = build_parser()
    for command in commands:
        parser.parse_args(command[1:])  # exits (SystemExit) on an unknown option
    text = DOC.read_text(encoding="utf-8")
    for term in ("templates.xlsx", "sheet:", "label_lt", "missing_codes", "research validate", "reports/tutorial",
                 "data.experts", "data.service_records"):
        assert term in text, term


# --------------------------------------------------------------------------------------------------
# The tutorial, end to end, as a student runs it
# --------------------------------------------------------------------------------------------------
def sample_data(project: Path, name: str, monkeypatch) -> None:
    """Step 4 of the tutorial: the survey pasted into templates.xlsx, expert ranks and panel as CSV."""
    from research.synthetic import model_for, simulate_expert_panel, simulate_expert_ratings, simulate_survey

    monkeypatch.setattr(paths, "PROJECT_ROOT", project)
    cfg = load_study(project / "studies" / name / "study.yaml")
    model = model_for(cfg, seed=11)
    rng = np.random.default_rng(11)
    survey, _ = simulate_survey(codebook=cfg.codebook_table, n_respondents=150, rng=rng,
                                group_column=cfg.group.column, dont_know_code=cfg.missing_codes.dont_know[0],
                                skipped_code=cfg.missing_codes.skipped[0], model=model)
    raw = project / "data" / "raw" / name
    book = openpyxl.load_workbook(raw / "templates.xlsx")
    for row in survey.itertuples(index=False):
        book["survey"].append([None if v == "" else v.item() if isinstance(v, np.generic) else v for v in row])
    book.save(raw / "templates.xlsx")
    ratings, _ = simulate_expert_ratings(factors=cfg.factors["factor"].tolist(), n_experts=8, rng=rng, model=model)
    ratings.to_csv(raw / "expert_ratings.csv", index=False)
    simulate_expert_panel(n_experts=8, rng=rng, model=model).to_csv(raw / "expert_panel.csv", index=False)


@pytest.mark.slow
def test_the_tutorial_from_new_study_to_reports(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "studies").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "notebooks").symlink_to(ROOT / "notebooks", target_is_directory=True)
    env = {**os.environ, "RESEARCH_PROJECT_ROOT": str(project)}
    env.pop("RESEARCH_OUTPUT_ROOT", None)
    exe = Path(sys.executable).with_name("research")
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "research.cli"]

    def research(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], cwd=project, env=env, capture_output=True, text=True, timeout=1800)

    study = "studies/tutorial/study.yaml"
    # step 1: the study folder and the data templates
    made = research("new-study", "tutorial")
    assert made.returncode == 0, made.stderr
    assert (project / "data" / "raw" / "tutorial" / "templates.xlsx").is_file()
    # step 2: what is still missing
    first = research("validate", "--study", study)
    assert first.returncode == 1
    assert "7 things still missing" in first.stdout and first.stdout.count("  [ ] ") == 7
    assert first.stderr.count("\n") == 1
    # step 3: the config (titles, the survey from the workbook, no service records); step 4: the data
    yaml_path = project / study
    fill_titles(yaml_path)
    edit(yaml_path,
         ('  survey:          {path: data/raw/tutorial/survey.csv, encoding: utf-8, delimiter: ",", decimal: "."}',
          "  survey:          {path: data/raw/tutorial/templates.xlsx, sheet: survey}"),
         ('  service_records: {path: data/raw/tutorial/service_records.csv, encoding: utf-8, delimiter: ","}\n', ""))
    sample_data(project, "tutorial", monkeypatch)
    # step 5: validate until it prints the summary
    second = research("validate", "--study", study)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Respondents: 150" in second.stdout and "Experts: 8 in 2 round(s)" in second.stdout
    assert "data/raw/tutorial/templates.xlsx" in second.stdout
    # step 6: the reports
    run = research("run", "--study", study, "-j", "2", "-q")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reports = project / "reports" / "tutorial"
    assert (reports / "index.html").is_file()
    for name in NOTEBOOK_REPORTS:
        assert (reports / f"{name}.html").is_file(), name
    monitoring = json.loads((reports / "results" / "monitoring.json").read_text(encoding="utf-8"))
    assert monitoring["results"]["skipped"] == "no_records"
    experts = json.loads((reports / "results" / "experts.json").read_text(encoding="utf-8"))
    assert experts["results"]["n_experts"] == 8
    assert experts["synthetic"] is False  # a student's own study: no synthetic-data banner
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert "Service quality at Tutorial Ltd" in index


# --------------------------------------------------------------------------------------------------
# The second example study end to end: every optional part absent, three groups
# --------------------------------------------------------------------------------------------------
def results(reports: Path, short: str) -> dict:
    return json.loads((reports / "results" / f"{short}.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_example_it_runs_end_to_end_with_visible_skips(tmp_path):
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "research.cli", "run", "--study", str(EXAMPLE_IT), "-j", "2", "-q"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reports = tmp_path / "reports" / "example-it"
    assert (reports / "index.html").is_file()
    html = {name: (reports / f"{name}.html").read_text(encoding="utf-8") for name in NOTEBOOK_REPORTS}
    assert all(r["language"] == "en" and r["synthetic"] for r in
               (results(reports, s) for s in ("prepare", "experts", "efa", "survey", "model", "monitoring")))
    # no expert panel: the experts notebook skips, the model uses equal weights, both say so
    assert results(reports, "experts")["results"] == {}
    assert "This part is skipped: this study has no expert panel" in html["01_expert_evaluation"]
    model = results(reports, "model")["results"]
    assert model["equal_weights"] is True and model["sensitivity_tau"] == {}
    assert "every factor gets the same weight 1/J" in html["04_supervision_model"]
    # no importance items: no IPA or gaps, with a note
    assert model["performance_only"] is True and model["quadrants"] == {}
    survey = results(reports, "survey")["results"]
    assert survey["largest_gaps"] is None and survey["significant_gaps"] is None
    assert "the codebook has no importance items" in html["03_survey_comparison"]
    assert "the importance-performance analysis is skipped" in html["04_supervision_model"]
    # no service records: monitoring skips
    assert results(reports, "monitoring")["results"]["skipped"] == "no_records"
    assert "the study has no service records" in html["05_quality_monitoring"]
    # three groups: Kruskal-Wallis; the two planted group differences are found
    assert survey["test"] == "kruskal_wallis" and survey["group_levels"] == ["small", "medium", "large"]
    truth = json.loads((ROOT / "data" / "raw" / "example-it" / "truth.json").read_text(encoding="utf-8"))["survey"]
    planted = sorted(k for k, v in truth["group_effects"].items() if v)
    assert sorted(e["variable"] for e in survey["largest_effects"][:len(planted)]) == planted
    # four stages, 1-7 scale: the model's stage index covers every stage and group
    assert set(model["stage_index"]) == {"PRE", "ONB", "RUN", "SUP", "all"}
    assert set(model["stage_index"]["SUP"]) == {"small", "medium", "large", "all"}
    assert results(reports, "efa")["results"]["n_factors"] == 4
