"""``research new-study NAME``: a study folder a student fills in without touching code.

Creates ``studies/NAME/`` (a commented ``study.yaml``, a ``codebook.csv`` starting from the demo's 18 factors and
a ``CHECKLIST.md``) and ``data/raw/NAME/`` with data templates: CSV files holding only the header row (and, for
the expert ratings, one row per factor) and ``templates.xlsx`` with an instructions sheet and one sheet per file.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

import pandas as pd

from . import paths
from .errors import ConfigError
from .io import atomic_path, make_xlsx_reproducible, write_text

SERVICE_RECORD_COLUMNS = ["order_id", "client_id", "origin", "inquiry_at", "response_at", "contract_signed_at",
                          "planned_delivery", "actual_delivery", "contract_terms_met", "complaint",
                          "complaint_at", "complaint_resolved_at"]
EXPERT_PANEL_COLUMNS = ["expert_id", "role", "years_experience", "argumentation", "familiarity"]
INSTRUCTIONS = [
    ("survey", "One row per respondent, one column per codebook variable. Ratings as whole numbers inside the "
               "scale; 'don't know' and skipped answers with the codes in study.yaml (missing_codes)."),
    ("expert_ratings", "One row per round and factor; one column per expert (E01, E02, ...). Ranks: 1 = most "
                       "important; ties as average ranks (e.g. 2.5, 2.5)."),
    ("expert_panel", "One row per expert: role, years of experience, argumentation and familiarity "
                     "coefficients between 0 and 1 (competence = their mean)."),
    ("service_records", "One row per order. Timestamps as YYYY-MM-DD HH:MM; contract_terms_met and complaint as "
                        "0/1; complaint_at and complaint_resolved_at empty when there was no complaint."),
]


def _template(name: str) -> str:
    return (resources.files("research") / "templates" / "new_study" / name).read_text(encoding="utf-8")


def new_study(name: str, *, force: bool = False) -> list[Path]:
    """Create the study folder and data templates for ``name``; return the files written.

    Raises
    ------
    ConfigError
        When ``name`` is not a valid study id (lowercase letters, digits, ``-``, ``_``) or the study exists
        and ``force`` is false.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise ConfigError(f"study name {name!r}: use lowercase letters, digits, '-' and '_' (e.g. 'acme-2027')")
    study_dir = paths.STUDIES / name
    raw_dir = paths.DATA_RAW / name
    if (study_dir / "study.yaml").exists() and not force:
        raise ConfigError(f"{study_dir / 'study.yaml'} exists; choose another name or pass --force")
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        written.append(write_text(path, text))

    put(study_dir / "study.yaml", string.Template(_template("study.yaml.tmpl")).substitute(name=name))
    put(study_dir / "codebook.csv", _template("codebook.csv"))
    put(study_dir / "CHECKLIST.md", string.Template(_template("CHECKLIST.md")).substitute(name=name))

    codebook = pd.read_csv(study_dir / "codebook.csv", dtype=str, keep_default_na=False)
    factors = codebook.loc[codebook["type"] == "performance", "factor"].tolist()
    experts = [f"E{i:02d}" for i in range(1, 11)]
    sheets = {
        "survey": pd.DataFrame(columns=codebook["variable"].tolist()),
        "expert_ratings": pd.DataFrame({"round": 1, "factor": factors, **{e: pd.NA for e in experts}}),
        "expert_panel": pd.DataFrame(columns=EXPERT_PANEL_COLUMNS),
        "service_records": pd.DataFrame(columns=SERVICE_RECORD_COLUMNS),
    }
    for sheet, frame in sheets.items():
        put(raw_dir / f"{sheet}.csv", frame.to_csv(index=False, lineterminator="\n"))
    xlsx = raw_dir / "templates.xlsx"
    with atomic_path(xlsx, suffix=".xlsx") as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            pd.DataFrame(INSTRUCTIONS, columns=["sheet", "how to fill it in"]).to_excel(
                writer, sheet_name="instructions", index=False)
            for sheet, frame in sheets.items():
                frame.to_excel(writer, sheet_name=sheet, index=False)
        make_xlsx_reproducible(tmp)
    written.append(xlsx)
    return written
