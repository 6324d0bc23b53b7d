"""``research new-study``: the scaffold a student starts from is valid and complete."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from research import paths, scaffold
from research.cli import main
from research.config import load_study
from research.errors import ConfigError


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    monkeypatch.setattr(paths, "STUDIES", tmp_path / "studies")
    monkeypatch.setattr(paths, "DATA_RAW", tmp_path / "data" / "raw")
    return tmp_path


def test_new_study_creates_a_valid_config_and_templates(sandbox):
    written = scaffold.new_study("acme")
    names = sorted(p.relative_to(sandbox).as_posix() for p in written)
    assert names == ["data/raw/acme/expert_panel.csv", "data/raw/acme/expert_ratings.csv",
                     "data/raw/acme/service_records.csv", "data/raw/acme/survey.csv",
                     "data/raw/acme/templates.xlsx", "studies/acme/CHECKLIST.md",
                     "studies/acme/codebook.csv", "studies/acme/study.yaml"]
    cfg = load_study(sandbox / "studies" / "acme" / "study.yaml")
    assert cfg.study.id == "acme" and cfg.study.synthetic is False
    assert cfg.data.survey.path == "data/raw/acme/survey.csv" and cfg.data.truth is None
    assert len(cfg.codebook_table) == 48
    survey = pd.read_csv(sandbox / "data/raw/acme/survey.csv")
    assert list(survey.columns) == cfg.codebook_table["variable"].tolist() and survey.empty
    ratings = pd.read_csv(sandbox / "data/raw/acme/expert_ratings.csv")
    assert ratings["factor"].tolist() == cfg.factors["factor"].tolist()
    book = openpyxl.load_workbook(sandbox / "data/raw/acme/templates.xlsx")
    assert book.sheetnames == ["instructions", "survey", "expert_ratings", "expert_panel", "service_records"]
    assert "TODO" in (sandbox / "studies/acme/study.yaml").read_text(encoding="utf-8")


def test_new_study_refuses_bad_names_and_overwrites(sandbox, capsys):
    with pytest.raises(ConfigError, match="lowercase letters"):
        scaffold.new_study("Acme Corp")
    scaffold.new_study("acme")
    assert main(["new-study", "acme"]) == 1
    assert "exists; choose another name or pass --force" in capsys.readouterr().err
    assert main(["new-study", "acme", "--force"]) == 0
