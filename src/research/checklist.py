"""What a study still lacks before it can run: the checklist ``research validate`` prints first.

:func:`research.data.validate_study` stops at the first problem, which suits a finished study with a
typo in row 517. A study a student has just created with ``research new-study`` lacks many things at once
(placeholder texts, empty data templates, codebook factors that are not in the config yet), and fixing
them one error message at a time is slow. :func:`missing_items` looks at everything that can be checked
without reading the data values and returns every problem found, each as one line:

* **config**: ``TODO`` placeholders left in any value of ``study.yaml``; no raw file named under ``data:``;
* **codebook**: the file or its columns missing, rows without a variable or with an unknown type, rating
  items without a whole-number scale, factor or stage codes that are not in the config's ``stages:``,
  config factors without a performance item, the group column absent or of another type, scales that
  disagree with ``scales:`` in the config, ``TODO`` placeholders in cells;
* **raw files**: files named in the config that do not exist, data templates still empty (a header and
  nothing else, or expert columns without a single rank), survey columns that are not codebook variables
  (and codebook variables without a column), service-record columns the KPIs need, expert-panel columns.

When the list is empty the full validation (:func:`research.data.validate_study`) runs; it reads every
value and stops at the first bad one, as before.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import paths
from .config import CODEBOOK_COLUMNS, ITEM_TYPES, RawFile, StudyConfig, load_codebook
from .errors import ConfigError

__all__ = ["MissingItem", "checklist_text", "missing_items"]

PLACEHOLDER = "TODO"
RATING_TYPES = ("importance", "performance", "outcome")
# what each raw file holds, for the "still an empty template" message
CONTENT = {"survey": "one row per respondent", "experts": "one row per factor (and Delphi round)",
           "expert_panel": "one row per expert", "service_records": "one row per order"}
# the sheets of the templates.xlsx that `research new-study` writes
SHEET = {"survey": "survey", "experts": "expert_ratings", "expert_panel": "expert_panel",
         "service_records": "service_records"}
EXPERT_PANEL_REQUIRED = ("expert_id", "argumentation", "familiarity")
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "windows-1257": "cp1257", "cp1257": "cp1257",
             "latin-1": "latin-1"}


@dataclass(frozen=True)
class MissingItem:
    """One thing a study still lacks.

    Attributes
    ----------
    where
        The file (relative to the project root), with the key, line or column when there is one.
    problem
        What is missing or wrong, in one short clause.
    fix
        What to do about it.
    """

    where: str
    problem: str
    fix: str

    def line(self) -> str:
        """The item as one line: ``where: problem -> fix``."""
        return " ".join(f"{self.where}: {self.problem} -> {self.fix}".split())


def _rel(path: Path | str) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(paths.PROJECT_ROOT).as_posix()
    except ValueError:
        return str(p)


def _short_list(values: list[str], limit: int = 6) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


# --------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------
def _placeholders(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every string value of a YAML tree that still holds the placeholder."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _placeholders(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _placeholders(v, f"{key}[{i}]")
    elif isinstance(node, str) and PLACEHOLDER in node:
        yield key, node


def _config_items(cfg: StudyConfig) -> list[MissingItem]:
    out: list[MissingItem] = []
    where = _rel(cfg.source) if cfg.source else "study.yaml"
    if cfg.source is not None:
        raw = yaml.safe_load(Path(cfg.source).read_text(encoding="utf-8"))
        for key, value in _placeholders(raw):
            shown = value if len(value) <= 60 else value[:57] + "..."
            out.append(MissingItem(f"{where}, key {key}", f"still the template text {shown!r}",
                                   "replace it with your study's own text"))
    empty_stages = [s.code for s in cfg.stages if not s.factors]
    if not cfg.stages or empty_stages:
        out.append(MissingItem(f"{where}, key stages", "no stages" if not cfg.stages else
                               f"stage(s) {', '.join(empty_stages)} without factors",
                               "list the service stages, each with its quality factors (code and label)"))
    if all(getattr(cfg.data, k) is None for k in CONTENT):
        out.append(MissingItem(f"{where}, key data", "names no raw data file",
                               "add at least data.survey: {path: data/raw/<study>/survey.csv}"))
    return out


# --------------------------------------------------------------------------------------------------
# codebook
# --------------------------------------------------------------------------------------------------
def _codebook_items(cfg: StudyConfig) -> list[MissingItem]:
    path = (cfg.study_dir / cfg.codebook) if not Path(cfg.codebook).is_absolute() else Path(cfg.codebook)
    where = _rel(path)
    if not path.is_file():
        return [MissingItem(where, "codebook not found",
                            f"create it (columns {', '.join(CODEBOOK_COLUMNS)}) or fix 'codebook:' in the config")]
    try:
        cb = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        return [MissingItem(where, f"cannot be read as a UTF-8 CSV file ({type(e).__name__})",
                            "save it as CSV UTF-8 with commas between the columns")]
    absent = [c for c in CODEBOOK_COLUMNS if c not in cb.columns]
    if absent:
        return [MissingItem(where, f"column(s) {', '.join(absent)} missing",
                            f"the header must be: {','.join(CODEBOOK_COLUMNS)}")]
    cb = cb.apply(lambda col: col.str.strip())
    out: list[MissingItem] = []
    line = pd.Series(range(2, len(cb) + 2), index=cb.index)  # the header is line 1
    for i, r in cb.iterrows():
        for col in CODEBOOK_COLUMNS:
            if PLACEHOLDER in r[col]:
                out.append(MissingItem(f"{where}, line {line[i]}, column {col}",
                                       f"still the template text {r[col]!r}", "replace it"))
    empty = cb["variable"] == ""
    for i in cb.index[empty]:
        out.append(MissingItem(f"{where}, line {line[i]}", "row without a variable name",
                               "name the survey column or delete the row"))
    bad_type = ~cb["type"].isin(ITEM_TYPES) & ~empty
    for i in cb.index[bad_type]:
        out.append(MissingItem(f"{where}, line {line[i]}", f"type {cb.at[i, 'type']!r} of {cb.at[i, 'variable']}"
                               " is unknown", f"use one of {', '.join(ITEM_TYPES)}"))
    n_id = int((cb["type"] == "id").sum())
    if n_id != 1:
        out.append(MissingItem(where, f"{n_id} variables of type id",
                               "mark exactly one variable (the respondent ID column) as type id"))
    factor_codes = [f.code for s in cfg.stages for f in s.factors]
    stage_codes = [s.code for s in cfg.stages]
    rated = cb[cb["type"].isin(("importance", "performance"))]
    no_factor = rated[rated["factor"] == ""]
    for i in no_factor.index:
        out.append(MissingItem(f"{where}, line {line[i]}", f"{cb.at[i, 'type']} item {cb.at[i, 'variable']} "
                               "has no factor code", "give the factor code from the config's stages:"))
    unknown = rated[(rated["factor"] != "") & ~rated["factor"].isin(factor_codes)]
    for code, rows in unknown.groupby("factor", sort=False):
        lines = ", ".join(str(line[i]) for i in rows.index)
        out.append(MissingItem(f"{where}, line(s) {lines}", f"factor {code!r} is not in the config's stages",
                               f"add it under stages: in {_rel(cfg.source) if cfg.source else 'study.yaml'} or "
                               "correct the code"))
    stages_used = cb[(cb["stage"] != "") & ~cb["stage"].isin(stage_codes)]
    for code, rows in stages_used.groupby("stage", sort=False):
        lines = ", ".join(str(line[i]) for i in rows.index)
        out.append(MissingItem(f"{where}, line(s) {lines}", f"stage {code!r} is not in the config's stages",
                               f"use one of {', '.join(stage_codes)} or add the stage to the config"))
    measured = set(cb.loc[cb["type"] == "performance", "factor"])
    for stage in cfg.stages:
        for f in stage.factors:
            if f.code not in measured:
                out.append(MissingItem(where, f"factor {f.code} ({stage.code}) of the config has no performance item",
                                       "add a row of type performance with this factor code, or remove the factor "
                                       "from the config"))
    scaled = cb[cb["type"].isin(RATING_TYPES)]
    for i, r in scaled.iterrows():
        try:
            smin, smax = int(r["scale_min"]), int(r["scale_max"])
        except ValueError:
            out.append(MissingItem(f"{where}, line {line[i]}", f"{r['variable']} has no whole-number "
                                   f"scale_min/scale_max ({r['scale_min']!r}, {r['scale_max']!r})",
                                   "write the lowest and highest answer of the rating scale, e.g. 1 and 5"))
            continue
        try:
            scale = cfg.scale_for(r["type"], r["variable"])
        except ConfigError:
            continue
        if (scale.min, scale.max) != (smin, smax):
            out.append(MissingItem(f"{where}, line {line[i]}", f"{r['variable']} has the scale {smin}..{smax} but "
                                   f"scales: in the config says {scale.min}..{scale.max}", "make them agree"))
    if cfg.group is not None:
        row = cb[cb["variable"] == cfg.group.column]
        if row.empty:
            out.append(MissingItem(where, f"the group column {cfg.group.column!r} (group.column in the config) is "
                                   "not a variable", "add it with type group, or change or delete group: in the "
                                   "config"))
        elif row["type"].iloc[0] != "group":
            out.append(MissingItem(f"{where}, line {line[row.index[0]]}", f"the group column {cfg.group.column} has "
                                   f"type {row['type'].iloc[0]!r}", "give it type group"))
    if not out:
        try:  # anything the rules above do not cover
            load_codebook(path, cfg)
        except ConfigError as e:
            out.append(MissingItem(where, str(e).removeprefix(f"{path}: ").removeprefix(f"{path}, "),
                                   "correct the codebook"))
    return out


# --------------------------------------------------------------------------------------------------
# raw files
# --------------------------------------------------------------------------------------------------
def _records(path: Path, raw: RawFile) -> list[list[str]]:
    """The file's rows as stripped text cells (CSV in the declared encoding and delimiter, or XLSX)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        from .data import _cell_text  # the cell text the validation reads

        book = openpyxl.load_workbook(path, data_only=True, read_only=True)
        try:
            if raw.sheet is None:
                sheet = book.worksheets[0]
            elif isinstance(raw.sheet, int):
                sheet = book.worksheets[raw.sheet - 1]
            else:
                sheet = book[raw.sheet]
            return [[_cell_text(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    text = path.read_bytes().decode(ENCODINGS[raw.encoding])
    return [[c.strip() for c in rec] for rec in csv.reader(_io.StringIO(text, newline=""), delimiter=raw.delimiter)]


def _file_items(cfg: StudyConfig) -> list[MissingItem]:
    out: list[MissingItem] = []
    for key in CONTENT:
        raw: RawFile | None = getattr(cfg.data, key)
        if raw is None:
            continue
        try:
            path = cfg.resolve(raw.path, what=f"data.{key}.path")
        except ConfigError as e:
            out.append(MissingItem(f"data.{key}.path", str(e), "keep the data inside the project folder"))
            continue
        where = _rel(path)
        if not path.is_file():
            out.append(MissingItem(where, f"file not found (named under data.{key}.path)",
                                   f"put the file there, or delete data.{key} from the config if you have no "
                                   "such data"))
            continue
        try:
            records = _records(path, raw)
        except (UnicodeDecodeError, csv.Error, KeyError, IndexError, OSError, ValueError) as e:
            out.append(MissingItem(where, f"cannot be read ({type(e).__name__})",
                                   "check encoding:, delimiter: and sheet: under data." + key))
            continue
        rows = [r for r in records if any(r)]
        header_at = raw.header_row - 1
        body = [r for r in records[header_at + 1:] if any(r)]
        if not rows or not body:
            sheet = SHEET[key]
            xlsx = "" if path.suffix.lower() in (".xlsx", ".xlsm") else \
                f" (or fill the sheet {sheet} of templates.xlsx and declare data.{key}: " \
                f"{{path: {_rel(path.parent / 'templates.xlsx')}, sheet: {sheet}}})"
            optional = "" if key == "survey" else f"; no such data? delete data.{key} from the config"
            out.append(MissingItem(where, "still an empty template (a header and no data)",
                                   f"fill in {CONTENT[key]}{xlsx}{optional}"))
            continue
        header = records[header_at] if header_at < len(records) else []
        out += _header_items(cfg, key, where, header, body)
    return out


def _codebook_variables(cfg: StudyConfig) -> list[str] | None:
    """The codebook's variable names as written (even when other cells of the codebook are wrong)."""
    path = (cfg.study_dir / cfg.codebook) if not Path(cfg.codebook).is_absolute() else Path(cfg.codebook)
    try:
        cb = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if "variable" not in cb.columns:
        return None
    return [v for v in cb["variable"].str.strip() if v]


def _header_items(cfg: StudyConfig, key: str, where: str, header: list[str],
                  body: list[list[str]]) -> list[MissingItem]:
    out: list[MissingItem] = []
    columns = [h for h in header if h]
    if key == "survey":
        variables = _codebook_variables(cfg)
        if variables is None:  # no readable codebook: reported with the codebook
            return out
        absent = [v for v in variables if v not in columns]
        extra = [c for c in columns if c not in variables]
        if absent:
            out.append(MissingItem(where, f"no column for the codebook variable(s) {_short_list(absent)}",
                                   "add the columns (header = the codebook's variable names) or remove the rows "
                                   "from the codebook"))
        if extra:
            out.append(MissingItem(where, f"column(s) {_short_list(extra)} are not in the codebook",
                                   f"add them to {cfg.codebook} (e.g. as type profile) or delete them"))
    elif key == "experts":
        if "factor" not in columns:
            out.append(MissingItem(where, "no column factor", "columns round, factor, then one per expert"))
            return out
        experts = [(k, h) for k, h in enumerate(header) if h and h not in ("round", "factor", "stage")]
        if not experts:
            out.append(MissingItem(where, "no expert columns", "add one column per expert (E01, E02, ...)"))
        blank = [h for k, h in experts if not any(k < len(r) and r[k] for r in body)]
        if experts and len(blank) == len(experts):
            out.append(MissingItem(where, f"still an empty template: no ranks in {_short_list(blank)}",
                                   "write each expert's ranks (1 = most important) in their column; no expert "
                                   "panel? delete data.experts and data.expert_panel from the config"))
        elif blank:
            out.append(MissingItem(where, f"expert column(s) {_short_list(blank)} hold no ranks",
                                   "fill them in, or delete the columns of experts you do not have"))
    elif key == "expert_panel":
        absent = [c for c in EXPERT_PANEL_REQUIRED if c not in columns]
        if absent:
            out.append(MissingItem(where, f"column(s) {', '.join(absent)} missing",
                                   "columns expert_id, role, years_experience, argumentation, familiarity"))
    elif key == "service_records":
        need: dict[str, str] = {"order_id": "every order"}
        if cfg.group is not None:
            need[cfg.group.column] = "the group column"
        for k in cfg.kpis:
            for attr in ("start", "end", "column", "actual", "planned", "timestamp"):
                col = getattr(k, attr)
                if col:
                    need.setdefault(col, f"KPI {k.code}")
        for col, why in need.items():
            if col not in columns:
                fix = ("add the column, or change or delete the KPI under kpis: in the config" if why.startswith("KPI")
                       else "add the column")
                out.append(MissingItem(where, f"column {col} missing (needed by {why})", fix))
    return out


# --------------------------------------------------------------------------------------------------
# the whole study
# --------------------------------------------------------------------------------------------------
def missing_items(cfg: StudyConfig) -> tuple[MissingItem, ...]:
    """Everything a study still lacks that can be seen without reading the data values.

    Parameters
    ----------
    cfg
        A loaded study configuration (:func:`research.config.load_study`; a config that does not load is
        reported by ``load_study`` itself, as one line).

    Returns
    -------
    tuple of MissingItem
        In the order a student fixes them: config, codebook, raw files (in ``data:`` order). Empty when
        the study is complete enough for :func:`research.data.validate_study`.
    """
    return (*_config_items(cfg), *_codebook_items(cfg), *_file_items(cfg))


def checklist_text(cfg: StudyConfig, items: tuple[MissingItem, ...] | list[MissingItem]) -> str:
    """The checklist ``research validate`` prints: a title line, one ``[ ]`` line per item, what to do next."""
    study = _rel(cfg.source) if cfg.source else cfg.study.id
    n = len(items)
    lines = [f"Study {cfg.study.id} ({study}): {n} thing{'s' if n != 1 else ''} still missing before the "
             "data can be validated:"]
    lines += [f"  [ ] {item.line()}" for item in items]
    lines.append(f"Fix them (docs/adapting.md explains every file), then run `research validate --study {study}` "
                 "again.")
    return "\n".join(lines)

