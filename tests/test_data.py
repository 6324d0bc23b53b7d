"""The data layer: reading raw files, a corpus of bad inputs, processed tables, validate summary and CLI.

Every bad input is built in a temporary study under a temporary output root (``paths.inside_project``
allows it) from the demo files. Each must fail with one line naming the file, row, column, value and what
was expected, leave the raw files' sha256 unchanged and leave nothing in the processed folder. Counts and
hashes reported by the summary are checked against other software: GNU coreutils ``sha256sum`` and
``wc -l``, and Python's ``csv`` module on the raw text.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from conftest import DEMO_STUDY, ROOT
from research import data, paths
from research.cli import main
from research.config import load_study
from research.errors import ConfigError, DataError

DEMO_RAW = ROOT / "data" / "raw" / "demo"
RAW_FILES = ("survey.csv", "expert_ratings.csv", "expert_panel.csv", "service_records.csv")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Processed tables and reports go to a temporary output root; temporary studies may live there too."""
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    monkeypatch.setattr(paths, "DATA_PROCESSED", tmp_path / "data" / "processed")
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    return tmp_path


class Study:
    """A copy of the demo study (config, codebook, raw files) under the sandbox, to be broken on purpose."""

    def __init__(self, root: Path, study_id: str = "bad"):
        self.root = root / study_id
        self.raw = self.root / "raw"
        self.raw.mkdir(parents=True)
        for name in RAW_FILES:
            shutil.copy(DEMO_RAW / name, self.raw / name)
        shutil.copy(DEMO_STUDY.parent / "codebook.csv", self.root / "codebook.csv")
        self.config = yaml.safe_load(DEMO_STUDY.read_text(encoding="utf-8"))
        self.config["study"]["id"] = study_id
        for key in ("survey", "experts", "expert_panel", "service_records"):
            self.config["data"][key]["path"] = str(self.raw / Path(self.config["data"][key]["path"]).name)
        self.config["data"].pop("truth")
        self.processed = root / "data" / "processed" / study_id

    def file(self, name: str) -> Path:
        return self.raw / name

    def records(self, name: str, encoding: str = "utf-8") -> list[list[str]]:
        with open(self.file(name), encoding=encoding, newline="") as fh:
            return list(csv.reader(fh))

    def write_records(self, name: str, records: list[list[str]], delimiter: str = ",",
                      encoding: str = "utf-8") -> None:
        with open(self.file(name), "w", encoding=encoding, newline="") as fh:
            csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(records)

    def edit(self, name: str, fn) -> None:
        records = self.records(name)
        self.write_records(name, fn(records) or records)

    def set_cell(self, name: str, row: int, column: str, value: str) -> None:
        """Set the cell at file row ``row`` (header = row 1) of ``column``."""
        def fn(records):
            records[row - 1][records[0].index(column)] = value
        self.edit(name, fn)

    def yaml(self) -> Path:
        path = self.root / "study.yaml"
        path.write_text(yaml.safe_dump(self.config, allow_unicode=True), encoding="utf-8")
        return path

    def cfg(self):
        return load_study(self.yaml())

    def hashes(self) -> dict[str, str]:
        return {p.name: sha(p) for p in sorted(self.raw.iterdir())}


@pytest.fixture
def study(sandbox) -> Study:
    return Study(sandbox)


def expect_error(study: Study, pattern: str, error=DataError) -> str:
    """prepare_study and validate_study both fail with the same one-line message matching ``pattern``;
    the raw files are unchanged and nothing is left in the processed folder."""
    before = study.hashes()
    with pytest.raises(error) as info:
        data.prepare_study(study.cfg())
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    with pytest.raises(error) as again:
        data.validate_study(study.cfg())
    assert str(again.value) == message
    assert study.hashes() == before
    assert not study.processed.exists() or not any(study.processed.iterdir())
    assert not list(study.processed.parent.glob(".*prepare-*")) if study.processed.parent.exists() else True
    return message


def survey_row(study: Study, respondent: str) -> int:
    """File row of a respondent (header = row 1), found with the csv module."""
    return 1 + [r[0] for r in study.records("survey.csv")].index(respondent)


# --- the corpus of bad inputs ---------------------------------------------------------------------------
def _drop_column(col):
    def fn(records):
        k = records[0].index(col)
        return [r[:k] + r[k + 1:] for r in records]
    return fn


def _add_column(col, value):
    def fn(records):
        return [records[0] + [col]] + [r + [value] for r in records[1:]]
    return fn


def _rename(old, new):
    def fn(records):
        records[0][records[0].index(old)] = new
    return fn


EXPECTED_RATING = (r"expected a whole number in 1\.\.5 or a missing code \(don't know: -1; skipped: -9\); "
                   r"list \"\" under missing_codes to accept empty cells\)")
SURVEY = r"bad/raw/survey\.csv"


BAD_SURVEY = [
    ("missing_column", lambda s: s.edit("survey.csv", _drop_column("PERF_S1_RESP")),
     SURVEY + r", column PERF_S1_RESP: column is missing \(expected a column for every codebook variable "
              r"\(PERF_S1_RESP is in codebook\.csv\)\)$"),
    ("unknown_item", lambda s: s.edit("survey.csv", _add_column("PERF_S9_NEW", "4")),
     SURVEY + r", column PERF_S9_NEW: unknown column, not in the codebook \(expected only codebook variables; "
              r"add it to codebook\.csv or remove it from the file\)$"),
    ("misspelt_column", lambda s: s.edit("survey.csv", _rename("PERF_S1_RESP", "PERF_S1_RESPP")),
     SURVEY + r", column PERF_S1_RESP: column is missing; the file has 'PERF_S1_RESPP' instead \(a typo\?\)"),
    ("out_of_range", lambda s: s.set_cell("survey.csv", 17, "PERF_S2_TIME", "7"),
     SURVEY + r", row 17, column PERF_S2_TIME: value out of range \(value 7; " + EXPECTED_RATING + "$"),
    ("text_in_numeric", lambda s: s.set_cell("survey.csv", 5, "IMP_S1_RESP", "four"),
     SURVEY + r", row 5, column IMP_S1_RESP: not a number \(value 'four'; " + EXPECTED_RATING + "$"),
    ("decimal_comma_undeclared", lambda s: s.set_cell("survey.csv", 9, "NPS", "7,5"),
     SURVEY + r", row 9, column NPS: uses ',' as decimal mark \(value '7,5'; expected a whole number in 0\.\.10 "
              r"or a missing code .* with '\.' as decimal mark, or declare decimal: ',' under data\.survey"),
    ("not_whole", lambda s: s.set_cell("survey.csv", 4, "SAT_OVERALL", "3.5"),
     SURVEY + r", row 4, column SAT_OVERALL: not a whole number \(value 3\.5; " + EXPECTED_RATING + "$"),
    ("empty_rating", lambda s: s.set_cell("survey.csv", 12, "PERF_S1_NEEDS", ""),
     SURVEY + r", row 12, column PERF_S1_NEEDS: empty cell \(" + EXPECTED_RATING + "$"),
    ("duplicate_id", lambda s: s.set_cell("survey.csv", 10, "respondent_id", "R003"),
     SURVEY + r", row 10, column respondent_id: duplicate respondent ID \(first in row 4\) \(value 'R003'; "
              r"expected each respondent ID once\)$"),
    ("unknown_group", lambda s: s.set_cell("survey.csv", 6, "origin", "Foreign"),
     SURVEY + r", row 6, column origin: unknown group label \(did you mean 'foreign'\?\) \(value 'Foreign'; "
              r"expected one of foreign, lithuanian\)$"),
    ("ragged_row", lambda s: s.edit("survey.csv", lambda r: r.__setitem__(7, r[7] + ["extra"])),
     SURVEY + r", row 8: has 49 values but the header has 48 columns \(expected one value per column; put text "
              r"containing the delimiter in quotes\)$"),
    ("first_problem_wins", lambda s: (s.set_cell("survey.csv", 30, "IMP_S1_RESP", "9"),
                                      s.set_cell("survey.csv", 20, "comment", "ok"),
                                      s.set_cell("survey.csv", 20, "PERF_S3_DOCS", "0"),
                                      s.set_cell("survey.csv", 20, "IMP_S2_TIME", "x")),
     SURVEY + r", row 20, column IMP_S2_TIME: not a number"),
]


def _empty(s):
    s.file("survey.csv").write_bytes(b"")


def _header_only(s):
    s.edit("survey.csv", lambda r: r[:1])


def _semicolons(s):
    s.write_records("survey.csv", s.records("survey.csv"), delimiter=";")


def _cp1257(s):
    text = s.file("survey.csv").read_text(encoding="utf-8")
    s.file("survey.csv").write_bytes(text.encode("cp1257"))


def _xlsx(s, title_rows: int, sheet: str = "Apklausa"):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    for k in range(title_rows):
        ws.append(["Klientų apklausa 2025 (SINTETINIAI duomenys)"] if k == 0 else [])
    for k, rec in enumerate(s.records("survey.csv")):
        ws.append(rec if k == 0 else [int(v) if re.fullmatch(r"-?\d+", v) else (v or None) for v in rec])
    book.save(s.raw / "survey.xlsx")
    s.file("survey.csv").unlink()
    s.config["data"]["survey"] = {"path": str(s.raw / "survey.xlsx"), "sheet": sheet}


BAD_FILES = [
    ("empty_file", _empty, SURVEY + r": the file is empty \(expected a header row with the column names and one row "
                                    r"per record\)$"),
    ("header_only", _header_only, SURVEY + r": has a header but no data rows"),
    ("wrong_delimiter", _semicolons,
     SURVEY + r", row 1: the header is a single column; the values seem to be separated by semicolons \(value "
              r"'respondent_id;origin;.*'; expected delimiter: ';' under data\.survey in the study config\)$"),
    ("xlsx_extra_header_rows", lambda s: _xlsx(s, 2),
     r"bad/raw/survey\.xlsx, row 1: row 1 is not the header row: the column names \(with respondent_id\) are in "
     r"row 3 \(expected header_row: 3 under data\.survey in the study config\)$"),
    ("xlsx_unknown_sheet", lambda s: (_xlsx(s, 0), s.config["data"]["survey"].update(sheet="Sheet9")),
     r"survey\.xlsx: has no sheet named 'Sheet9' \(expected one of Apklausa\)$"),
    ("missing_file", lambda s: s.file("survey.csv").unlink(), SURVEY + r": file not found"),
]

BAD_EXPERTS = [
    ("unknown_factor", lambda s: s.set_cell("expert_ratings.csv", 3, "factor", "S1_NEED"),
     r"bad/raw/expert_ratings\.csv, row 3, column factor: unknown factor code \(did you mean 'S1_NEEDS'\?\) "
     r"\(value 'S1_NEED'; expected one of S1_RESP, S1_NEEDS, .*, S3_RELATION\)$"),
    ("rank_above_n", lambda s: s.set_cell("expert_ratings.csv", 5, "E04", "19"),
     r"expert_ratings\.csv, row 5, column E04: rank above the number of factors in round 1 \(value 19; "
     r"expected a rank 1\.\.18\)$"),
    ("rank_below_1", lambda s: s.set_cell("expert_ratings.csv", 5, "E04", "0"),
     r"expert_ratings\.csv, row 5, column E04: value out of range \(value 0; expected a rank 1\.\.n"),
    ("not_a_ranking", lambda s: s.edit("expert_ratings.csv", lambda r: [
        row if k == 0 or row[0] != "1" else row[:2] + [str(row[2]) if row[2] != "2" else "1"] + row[3:]
        for k, row in enumerate(r)]),
     r"expert_ratings\.csv, column E01: the ranks of round 1 are not a ranking of the 18 factors \(sum 170, "
     r"expected 171\) \(expected ranks 1\.\.18, each used once; ties as average ranks"),
    ("duplicate_factor", lambda s: s.set_cell("expert_ratings.csv", 4, "factor", "S1_RESP"),
     r"expert_ratings\.csv, row 4, column factor: factor listed twice in round 1 \(first in row 2\) \(value "
     r"'S1_RESP'; expected each factor once per round\)$"),
    ("duplicate_expert_column", lambda s: s.edit("expert_ratings.csv", _rename("E03", "E01")),
     r"expert_ratings\.csv, row 1, column E01: column name appears twice \(columns 3 and 5\) \(expected unique "
     r"column names\)$"),
    ("panel_competence_above_1", lambda s: s.set_cell("expert_panel.csv", 4, "argumentation", "1.2"),
     r"expert_panel\.csv, row 4, column argumentation: value out of range \(value 1\.2; expected the "
     r"argumentation coefficient, a number between 0 and 1\)$"),
    ("panel_duplicate_id", lambda s: s.set_cell("expert_panel.csv", 5, "expert_id", "E02"),
     r"expert_panel\.csv, row 5, column expert_id: duplicate expert ID \(first in row 3\)"),
    ("panel_missing_expert", lambda s: s.edit("expert_panel.csv", lambda r: r[:-1]),
     r"expert_panel\.csv, column expert_id: expert E10 ranks factors in .*expert_ratings\.csv but has no row here"),
]

SERVICE = r"bad/raw/service_records\.csv"
BAD_RECORDS = [
    ("bad_date", lambda s: s.set_cell("service_records.csv", 7, "planned_delivery", "2025-02-30 17:00"),
     SERVICE + r", row 7, column planned_delivery: not a date-time \(value '2025-02-30 17:00'; expected an ISO "
               r"date or date-time such as 2025-03-14 or 2025-03-14 09:30\)$"),
    ("flag_not_01", lambda s: s.set_cell("service_records.csv", 11, "complaint", "2"),
     SERVICE + r", row 11, column complaint: value out of range \(value 2; expected 0 or 1\)$"),
    ("duplicate_order", lambda s: s.set_cell("service_records.csv", 9, "order_id", "O00002"),
     SERVICE + r", row 9, column order_id: duplicate order ID \(first in row 3\)"),
    ("end_before_start", lambda s: s.set_cell("service_records.csv", 4, "actual_delivery", "2024-12-31 10:00"),
     SERVICE + r", row 4, column actual_delivery: actual_delivery is before contract_signed_at \(.*\) \(value "
               r"'2024-12-31 10:00'; expected a time not before contract_signed_at\)$"),
    ("kpi_column_missing", lambda s: s.edit("service_records.csv", _drop_column("response_at")),
     SERVICE + r", column response_at: column is missing \(expected the column response_at \(needed by KPI "
               r"'inquiry_response_time'\)\)$"),
    ("records_unknown_group", lambda s: s.set_cell("service_records.csv", 3, "origin", "domestic"),
     SERVICE + r", row 3, column origin: unknown group label"),
]


@pytest.mark.parametrize("mutate, pattern", [c[1:] for c in BAD_SURVEY + BAD_FILES + BAD_EXPERTS + BAD_RECORDS],
                         ids=[c[0] for c in BAD_SURVEY + BAD_FILES + BAD_EXPERTS + BAD_RECORDS])
def test_bad_input_gives_one_clear_line(study, mutate, pattern):
    mutate(study)
    expect_error(study, pattern)


def test_windows_1257_file_declared_as_utf8(study):
    _cp1257(study)
    records = list(csv.reader(study.file("survey.csv").read_bytes().decode("cp1257").splitlines()))
    row = 1 + next(k for k, r in enumerate(records) if any(ord(ch) > 127 for ch in ",".join(r)))
    message = expect_error(study, SURVEY + rf", row {row}: is not valid utf-8 text at byte \d+ \(0x[0-9a-f]{{2}}\); "
                                           r"Windows-1257 reads byte 0x[0-9a-f]{2} as '.'")
    assert "declare encoding: windows-1257 in the study config" in message


def test_config_key_with_a_typo(study):
    study.config["data"]["survey"]["delimter"] = ";"
    with pytest.raises(ConfigError, match=r"key data\.survey\.delimter: unknown key \(a typo\?\)"):
        study.cfg()


def test_codebook_and_config_scales_must_agree(study):
    study.config["scales"]["performance"] = {"min": 1, "max": 7}
    expect_error(study, r"the codebook gives PERF_S1_RESP the scale 1\.\.5 but scales: in the config says 1\.\.7",
                 error=ConfigError)


def test_group_column_must_be_in_the_codebook(study):
    study.config["group"]["column"] = "segment"
    expect_error(study, r"group\.column 'segment' is not a variable of the codebook", error=ConfigError)


def test_constant_column_is_a_warning_not_an_error(study):
    study.edit("survey.csv", lambda r: [row if k == 0 else row[:-5] + ["4"] + row[-4:] for k, row in enumerate(r)])
    with pytest.warns(data.DataWarning, match=r"survey\.csv: column SAT_OVERALL is constant \(every answer is 4\)"):
        written = data.prepare_study(study.cfg())
    assert study.processed / "survey.parquet" in written
    assert "Warnings: 1" in data.validate_study(study.cfg())


# --- variants that are declared correctly and must work ---------------------------------------------------
def _prepared(study: Study) -> data.StudyData:
    with warnings.catch_warnings():
        warnings.simplefilter("error", data.DataWarning)
        data.prepare_study(study.cfg())
    return data.load_processed(study.cfg())


@pytest.fixture
def reference(sandbox) -> data.StudyData:
    return _prepared(Study(sandbox, "reference"))


def assert_same_tables(a: data.StudyData, b: data.StudyData) -> None:
    for name in ("survey", "survey_missing", "expert_ratings", "expert_panel", "service_records"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_bom_is_accepted_whether_declared_or_not(study, reference, encoding):
    text = study.file("survey.csv").read_text(encoding="utf-8")
    study.file("survey.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    study.config["data"]["survey"]["encoding"] = encoding
    assert_same_tables(_prepared(study), reference)


def test_utf8_sig_declared_without_bom(study, reference):
    study.config["data"]["survey"]["encoding"] = "utf-8-sig"
    assert_same_tables(_prepared(study), reference)


def test_windows_1257_declared_works(study, reference):
    _cp1257(study)
    study.config["data"]["survey"]["encoding"] = "windows-1257"
    assert_same_tables(_prepared(study), reference)


def test_semicolons_and_decimal_commas_declared(study, reference):
    """Expert ranks (ties such as 4,5) and competence coefficients (0,93) with decimal commas and ';'."""
    for name in ("expert_ratings.csv", "expert_panel.csv", "survey.csv"):
        records = study.records(name)
        study.write_records(name, [[v.replace(".", ",") if re.fullmatch(r"-?\d+\.\d+", v) else v for v in r]
                                   for r in records], delimiter=";")
    for key in ("experts", "expert_panel", "survey"):
        study.config["data"][key].update(delimiter=";", decimal=",")
    assert re.search(r";\d+,5;", study.file("expert_ratings.csv").read_text(encoding="utf-8"))  # a tie, e.g. 4,5
    assert_same_tables(_prepared(study), reference)


def test_crlf_line_ends_and_trailing_blank_lines(study, reference):
    text = study.file("service_records.csv").read_text(encoding="utf-8")
    study.file("service_records.csv").write_bytes((text.replace("\n", "\r\n") + "\r\n,,,,,,,,,,,\r\n\r\n").encode())
    assert_same_tables(_prepared(study), reference)


def test_xlsx_with_header_row_declared(study, reference):
    _xlsx(study, 2)
    study.config["data"]["survey"]["header_row"] = 3
    assert_same_tables(_prepared(study), reference)


def test_xlsx_rows_in_messages_are_sheet_rows(study):
    study.set_cell("survey.csv", 11, "PERF_S2_FLEX", "8")
    _xlsx(study, 2)
    study.config["data"]["survey"]["header_row"] = 3
    expect_error(study, r"survey\.xlsx, row 13, column PERF_S2_FLEX: value out of range \(value 8;")


def test_empty_cells_allowed_when_declared_as_missing_code(study):
    study.set_cell("survey.csv", 12, "PERF_S1_NEEDS", "")
    study.config["missing_codes"]["skipped"] = [-9, ""]
    tables = _prepared(study)
    rid = study.records("survey.csv")[11][0]
    assert pd.isna(tables.survey.loc[tables.survey["respondent_id"] == rid, "PERF_S1_NEEDS"]).all()
    missing = tables.survey_missing
    assert ((missing["respondent_id"] == rid) & (missing["variable"] == "PERF_S1_NEEDS")
            & (missing["kind"] == "skipped")).sum() == 1


# --- processed tables ---------------------------------------------------------------------------------------
@pytest.fixture
def demo_prepared(sandbox, demo_cfg):
    before = {name: sha(DEMO_RAW / name) for name in RAW_FILES}
    written = data.prepare_study(demo_cfg)
    assert {name: sha(DEMO_RAW / name) for name in RAW_FILES} == before
    return written


def test_prepare_writes_the_contract_tables(demo_prepared, demo_cfg):
    names = sorted(p.name for p in demo_prepared)
    assert names == sorted([f"{t}.{ext}" for t in ("survey", "survey_missing", "expert_ratings", "expert_panel",
                                                    "service_records") for ext in ("parquet", "csv")]
                           + ["prepare_manifest.json"])
    d = data.load_processed(demo_cfg)
    cb = demo_cfg.codebook_table
    assert list(d.survey.columns) == cb["variable"].tolist()
    rating = cb.loc[cb["type"].isin(["importance", "performance", "outcome"]), "variable"]
    assert all(str(d.survey[v].dtype) == "Float64" for v in rating)
    assert pd.api.types.is_string_dtype(d.survey["origin"]) and pd.api.types.is_string_dtype(d.survey["comment"])
    assert str(d.survey["relationship_years"].dtype) == "Int64"
    assert list(d.survey_missing.columns) == ["respondent_id", "variable", "kind"]
    assert set(d.survey_missing["kind"]) == {"dont_know", "skipped"}
    assert list(d.expert_ratings.columns) == ["round", "expert_id", "stage", "factor", "value"]
    assert d.expert_ratings["round"].dtype == np.int64 and d.expert_ratings["value"].dtype == np.float64
    assert list(d.expert_panel.columns[[0, 1]]) == ["expert_id", "role"]
    np.testing.assert_allclose(d.expert_panel["competence"],
                               (d.expert_panel["argumentation"] + d.expert_panel["familiarity"]) / 2, rtol=0,
                               atol=1e-12)
    for col in ("inquiry_at", "response_at", "contract_signed_at", "planned_delivery", "actual_delivery",
                "complaint_at", "complaint_resolved_at"):
        assert pd.api.types.is_datetime64_any_dtype(d.service_records[col]), col
    assert str(d.service_records["complaint"].dtype) == "Int64"
    assert d.codebook is not None and len(d.codebook) == len(cb)


def test_recoding_against_the_raw_text(demo_prepared, demo_cfg):
    """Missing codes -> NA with their kind, reverse-keyed items min + max - x; checked with the csv module."""
    with open(DEMO_RAW / "survey.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    d = data.load_processed(demo_cfg)
    survey = d.survey.set_index("respondent_id")
    expected_missing = sorted((r["respondent_id"], v, "dont_know" if r[v] == "-1" else "skipped")
                              for r in rows for v in r if r[v] in ("-1", "-9") and v != "comment")
    got = sorted(map(tuple, d.survey_missing[["respondent_id", "variable", "kind"]].astype(str).to_numpy()))
    assert got == expected_missing
    for r in rows:
        raw = r["PERF_S3_DOCS"]
        value = survey.loc[r["respondent_id"], "PERF_S3_DOCS"]
        if raw in ("-1", "-9"):
            assert pd.isna(value)
        else:
            assert value == 6 - int(raw)
        comment = survey.loc[r["respondent_id"], "comment"]
        assert pd.isna(comment) if r["comment"] == "" else comment == r["comment"]


def test_ratings_wide_is_the_irr_layout(demo_prepared, demo_cfg):
    d = data.load_processed(demo_cfg)
    wide = d.ratings_wide(round=1)
    assert list(wide.index) == demo_cfg.factors["factor"].tolist()
    assert list(wide.columns) == [f"E{i:02d}" for i in range(1, 11)]
    with open(DEMO_RAW / "expert_ratings.csv", encoding="utf-8", newline="") as fh:
        raw = [r for r in csv.DictReader(fh) if r["round"] == "1"]
    for r in raw:
        assert [float(r[e]) for e in wide.columns] == wide.loc[r["factor"]].tolist()
    assert d.ratings_wide(round=2).shape == (18, 10)
    with pytest.raises(DataError, match=r"no round 3 \(expected one of \[1, 2\]\)"):
        d.ratings_wide(round=3)


def test_load_processed_before_prepare_says_what_to_run(sandbox, demo_cfg):
    with pytest.raises(DataError, match=r"processed table survey is missing \(expected run `research prepare "
                                        r"--study studies/demo/study\.yaml` first\)"):
        data.load_processed(demo_cfg)


def test_load_processed_notices_changed_raw_data(study):
    data.prepare_study(study.cfg())
    assert data.load_processed(study.cfg()).survey is not None
    study.set_cell("survey.csv", 2, "comment", "edited after prepare")
    with pytest.raises(DataError, match=r"survey\.csv: changed since the processed tables were written \(expected "
                                        r"run `research prepare --study .*` again\)"):
        data.load_processed(study.cfg())


def test_studies_without_some_files(study):
    for key in ("experts", "expert_panel", "service_records"):
        study.config["data"].pop(key)
    study.config.pop("kpis")
    d = _prepared(study)
    assert d.expert_ratings is None and d.expert_panel is None and d.service_records is None
    assert d.survey is not None
    with pytest.raises(DataError, match="has no expert ratings"):
        d.ratings_wide()
    text = data.validate_study(study.cfg())
    assert "Experts:" not in text and "Service records:" not in text


def test_a_failed_write_leaves_the_previous_tables(study, monkeypatch):
    data.prepare_study(study.cfg())
    before = {p.name: sha(p) for p in study.processed.iterdir()}
    calls = []
    original = data.write_table

    def failing(df, target, **kw):
        calls.append(target)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return original(df, target, **kw)

    monkeypatch.setattr(data, "write_table", failing)
    study.set_cell("survey.csv", 2, "comment", "changed")
    with pytest.raises(OSError, match="disk full"):
        data.prepare_study(study.cfg())
    assert {p.name: sha(p) for p in study.processed.iterdir()} == before
    assert not list(study.processed.parent.glob(".*prepare-*"))


# --- summary and command line ------------------------------------------------------------------------------
def test_summary_numbers_agree_with_coreutils_and_csv(sandbox, demo_cfg):
    summary = data.summarise_study(demo_cfg)
    files = summary.files.set_index("table")
    for table, name in [("survey", "survey.csv"), ("experts", "expert_ratings.csv"),
                        ("expert_panel", "expert_panel.csv"), ("service_records", "service_records.csv")]:
        if shutil.which("sha256sum"):
            out = subprocess.run(["sha256sum", str(DEMO_RAW / name)], capture_output=True, text=True, check=True)
            assert files.loc[table, "sha256"] == out.stdout.split()[0]
        if shutil.which("wc"):  # no demo file has line breaks inside a value
            out = subprocess.run(["wc", "-l", str(DEMO_RAW / name)], capture_output=True, text=True, check=True)
            assert files.loc[table, "rows"] == int(out.stdout.split()[0]) - 1
    with open(DEMO_RAW / "survey.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_item = summary.missing_by_item.set_index("variable")
    for v in by_item.index:
        assert by_item.loc[v, "dont_know"] == sum(r[v] == "-1" for r in rows)
        assert by_item.loc[v, "skipped"] == sum(r[v] == "-9" for r in rows)
    perf = [v for v in rows[0] if v.startswith("PERF_")]
    share = sum(r[v] in ("-1", "-9") for r in rows for v in perf) / (len(rows) * len(perf))
    total = summary.missing_by_type.set_index("item_type")
    np.testing.assert_allclose(total.loc["performance", "missing_share"], share, rtol=0, atol=1e-12)
    assert summary.group_sizes == {"foreign": sum(r["origin"] == "foreign" for r in rows),
                                   "lithuanian": sum(r["origin"] == "lithuanian" for r in rows)}
    keys = summary.key_numbers()
    assert keys["n_respondents"] == 280 and keys["n_experts"] == 10 and keys["n_rounds"] == 2
    assert keys["n_orders"] == files.loc["service_records", "rows"] and keys["n_warnings"] == 0
    assert set(keys["missing_share"]) == {"importance", "performance", "outcome", "all"}


def test_validate_prints_the_summary(sandbox, capsys):
    assert main(["validate", "--study", "studies/demo/study.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Study demo - SYNTHETIC data (studies/demo/study.yaml)")
    for text in ("data/raw/demo/survey.csv", "sha256 ", "280 rows", "Respondents: 280 (origin: foreign 126 (45.0%), "
                 "lithuanian 154 (55.0%))", "missing performance", "Experts: 10 in 2 round(s)", "Warnings: none"):
        assert text in out, text
    assert not paths.DATA_PROCESSED.exists()  # validate writes nothing


def test_validate_a_bad_file_exits_1_with_one_line(study, capsys):
    study.set_cell("survey.csv", 17, "PERF_S2_TIME", "7")
    assert main(["validate", "--study", str(study.yaml())]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert re.match(r"research: error: .*survey\.csv, row 17, column PERF_S2_TIME: value out of range \(value 7;",
                    lines[0])


def test_entry_point_validate_and_prepare(tmp_path):
    """The installed console script, in a fresh process with the output root redirected."""
    exe = Path(sys.executable).with_name("research")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "research.cli"]
    env = {"RESEARCH_OUTPUT_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    before = {name: sha(DEMO_RAW / name) for name in RAW_FILES}
    result = subprocess.run(cmd + ["validate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Respondents: 280" in result.stdout
    result = subprocess.run(cmd + ["prepare"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "processed" / "demo" / "survey.parquet").is_file()
    assert {name: sha(DEMO_RAW / name) for name in RAW_FILES} == before  # raw data are only read
    readme = (DEMO_RAW / "README.md").read_text(encoding="utf-8")
    for name in RAW_FILES:
        assert f"{before[name]}  {name}" in readme  # and are still the committed files


@pytest.mark.slow
def test_prepare_notebook_runs_in_lithuanian(sandbox, tmp_path, monkeypatch):
    import json

    from notebook_runner import execute_notebook

    monkeypatch.setenv("RESEARCH_OUTPUT_ROOT", str(sandbox))
    executed = execute_notebook("00_prepare_data", tmp_path, study="studies/demo/study.yaml", language="lt")
    results = json.loads((sandbox / "reports" / "demo" / "results" / "prepare.json").read_text(encoding="utf-8"))
    assert results["language"] == "lt" and results["synthetic"] is True
    assert results["results"]["n_respondents"] == 280
    assert results["results"]["group_sizes"] == {"foreign": 126, "lithuanian": 154}
    assert results["results"]["n_experts"] == 10 and results["results"]["n_orders"] > 700
    html = executed.read_text(encoding="utf-8")
    assert "Trūkstami atsakymai" in html and "Traceback" not in html
