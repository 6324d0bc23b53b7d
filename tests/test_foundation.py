"""Configuration, codebook, paths, atomic IO and locale formatting (the foundation every analysis uses)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import DEMO_STUDY
from research import i18n, io, paths
from research.config import load_codebook, load_study
from research.errors import ConfigError, DataError


def test_demo_config_loads(demo_cfg):
    assert demo_cfg.study.id == "demo"
    assert [s.code for s in demo_cfg.stages] == ["S1", "S2", "S3"]
    assert len(demo_cfg.factors) == 18
    assert demo_cfg.group.column == "origin"
    assert list(demo_cfg.group.levels) == ["foreign", "lithuanian"]
    cb = demo_cfg.codebook_table
    assert (cb["type"] == "performance").sum() == 18 and (cb["type"] == "importance").sum() == 18
    assert cb.loc[cb["variable"] == "PERF_S3_DOCS", "reverse"].item() is True


def test_scale_lookup_prefers_variable_then_type(demo_cfg):
    assert (demo_cfg.scale_for("outcome", "NPS").min, demo_cfg.scale_for("outcome", "NPS").max) == (0, 10)
    assert demo_cfg.scale_for("performance").max == 5
    assert demo_cfg.scale_for("outcome", "SAT_OVERALL").max == 5  # falls back to 'likert'


def _write_study(tmp_path, monkeypatch, mutate):
    """A copy of the demo study under a temporary output root (allowed by paths.inside_project)."""
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    raw = yaml.safe_load(DEMO_STUDY.read_text(encoding="utf-8"))
    mutate(raw)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    shutil.copy(DEMO_STUDY.parent / "codebook.csv", tmp_path / "codebook.csv")
    return study


def test_config_typo_names_the_key(tmp_path, monkeypatch):
    study = _write_study(tmp_path, monkeypatch, lambda r: r["analysis"].update({"alhpa": 0.05}))
    with pytest.raises(ConfigError, match=r"key analysis\.alhpa: unknown key \(a typo\?\)"):
        load_study(study)


def test_config_wrong_type_names_key_and_value(tmp_path, monkeypatch):
    study = _write_study(tmp_path, monkeypatch, lambda r: r["analysis"].update({"alpha": "five percent"}))
    with pytest.raises(ConfigError, match=r"key analysis\.alpha: .*'five percent'"):
        load_study(study)


def test_config_unknown_kpi_factor(tmp_path, monkeypatch):
    study = _write_study(tmp_path, monkeypatch, lambda r: r["kpis"][0].update({"factors": ["S9_NOPE"]}))
    with pytest.raises(ConfigError, match="unknown factors"):
        load_study(study)


def test_yaml_is_loaded_safely(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    study = tmp_path / "study.yaml"
    study.write_text("!!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_study(study)


def test_paths_outside_project_are_refused():
    with pytest.raises(ConfigError, match="outside the project"):
        load_study("/etc/passwd")
    with pytest.raises(ConfigError, match="outside the project"):
        paths.inside_project("../../etc/hosts")


def test_overrides_are_plain_data_and_none_keeps_config():
    cfg = load_study(DEMO_STUDY, language="lt", **{"analysis.alpha": None, "analysis.seed": 7})
    assert cfg.language == "lt" and cfg.analysis.alpha == 0.05 and cfg.analysis.seed == 7
    with pytest.raises(ConfigError, match="key language"):
        load_study(DEMO_STUDY, language="__import__('os').system('x')")


def test_codebook_errors_name_the_line(tmp_path, monkeypatch, demo_cfg):
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    cb = pd.read_csv(DEMO_STUDY.parent / "codebook.csv", dtype=str, keep_default_na=False)
    cb.loc[5, "type"] = "perfromance"
    cb.to_csv(tmp_path / "codebook.csv", index=False)
    with pytest.raises(ConfigError, match=r"codebook.csv, line 7: type 'perfromance'"):
        load_codebook(tmp_path / "codebook.csv", demo_cfg)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(ZeroDivisionError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ZeroDivisionError("simulated crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_is_sorted_and_nan_free(tmp_path):
    target = io.write_json(tmp_path / "r.json", {"b": float("nan"), "a": [1.5, float("inf")]})
    assert target.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": null\n}\n'


def test_csv_export_neutralises_formulas(tmp_path):
    df = pd.DataFrame({"comment": ["=HYPERLINK(\"x\")", "+1", "-cmd", "@SUM(A1)", "fine"], "x": [-1, 2, 3, 4, 5]})
    io.write_table(df, tmp_path / "t.parquet")
    back = pd.read_csv(tmp_path / "t.csv")
    assert back["comment"].tolist() == ["'=HYPERLINK(\"x\")", "'+1", "'-cmd", "'@SUM(A1)", "fine"]
    assert back["x"].tolist() == [-1, 2, 3, 4, 5]
    assert io.read_table(tmp_path / "t.parquet")["comment"].iloc[0] == "=HYPERLINK(\"x\")"


def test_locale_numbers_and_escaping():
    assert i18n.fmt_number(0.4123, 2, "en") == "0.41" and i18n.fmt_number(0.4123, 2, "lt") == "0,41"
    assert i18n.fmt_p(0.0004, "lt") == "< 0,001" and i18n.fmt_p(0.0312, "en") == "0.031"
    assert i18n.fmt_number(-0.0001, 2, "en") == "0.00"
    text = i18n.text("common", "skipped_part", "en", reason="<script>alert(1)</script>")
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_data_error_is_one_line():
    err = DataError("data/raw/x.csv", "value outside the scale", row=17, column="PERF_S1_RESP", value=7,
                    expected="1..5 or a missing code (-1, -9)")
    assert str(err) == ("data/raw/x.csv, row 17, column PERF_S1_RESP: value outside the scale "
                        "(value 7; expected 1..5 or a missing code (-1, -9))")
    assert "\n" not in str(err)


def test_xlsx_is_byte_identical_across_saves(tmp_path):
    import time

    import openpyxl

    df = pd.DataFrame({"factor": ["S1_RESP", "=1+1"], "weight": [0.6, 0.4]})
    digests = []
    for name in ("a.xlsx", "b.xlsx"):
        with io.atomic_path(tmp_path / name, suffix=".xlsx") as tmp:
            with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
                io.neutralise_formulas(df).to_excel(writer, sheet_name="factors", index=False)
            io.make_xlsx_reproducible(tmp)
        digests.append(io.sha256_file(tmp_path / name))
        time.sleep(1.1)  # openpyxl stamps the save time with one-second resolution
    assert digests[0] == digests[1]
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["factors"]
    assert [c.value for c in sheet["A"]] == ["factor", "S1_RESP", "'=1+1"]
