"""Raw data: reading, validation against the study config and codebook, recoding, processed tables.

The raw files named under ``data:`` in the study config are read (never written), validated completely
and only then turned into the processed tables of ``docs/architecture.md``:

* reading: CSV in the declared encoding (UTF-8 with or without BOM, Windows-1257), delimiter and decimal
  mark, or XLSX (``sheet``, ``header_row``); every cell is read as text first so that messages can quote
  the value exactly as the file holds it;
* validation: the first problem in reading order raises :class:`research.errors.DataError` with one line
  naming the file, the row a person sees in the file (CSV: header = row 1; XLSX: the sheet row), the
  column, the value and what was expected; problems that do not stop the analysis (a constant rating
  column, an unused group level) are warnings;
* recoding: missing codes become NA (which code it was is kept in ``survey_missing``), reverse-keyed items
  become ``min + max - x``;
* writing: all tables are written to a temporary folder beside ``data/processed/<study>/`` and moved into
  place only when every table was written, so a failed run never leaves a partial set behind.
"""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import io as _io
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from . import paths
from .config import ITEM_TYPES, RawFile, StudyConfig, items
from .errors import ConfigError, DataError
from .io import read_table, sha256_file, write_json, write_table

__all__ = ["DataSummary", "DataWarning", "RawTable", "StudyData", "for_display", "load_processed",
           "prepare_study", "read_raw", "reading", "summarise_study", "validate_study"]

RATING_TYPES = ("importance", "performance", "outcome")
SURVEY_TABLES = ("survey", "survey_missing")
TABLE_OF_FILE = {"survey": SURVEY_TABLES, "experts": ("expert_ratings",), "expert_panel": ("expert_panel",),
                 "service_records": ("service_records",)}
DATETIME_COLUMNS = ("inquiry_at", "response_at", "contract_signed_at", "planned_delivery", "actual_delivery",
                    "complaint_at", "complaint_resolved_at")
FLAG_COLUMNS = ("contract_terms_met", "complaint")
# (start, end) pairs whose end may not come before the start, beside the KPI durations of the config
ORDERED_PAIRS = (("inquiry_at", "response_at"), ("inquiry_at", "contract_signed_at"),
                 ("response_at", "contract_signed_at"), ("contract_signed_at", "planned_delivery"),
                 ("contract_signed_at", "actual_delivery"), ("complaint_at", "complaint_resolved_at"))
ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "windows-1257": "cp1257", "cp1257": "cp1257",
             "latin-1": "latin-1"}
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
MANIFEST = "prepare_manifest.json"
MISSING_KINDS = np.array(["", "dont_know", "skipped"], dtype=object)  # codes 0, 1, 2 of the survey parser


class DataWarning(UserWarning):
    """A problem in the raw data that does not stop the analysis (shown in the prepare report)."""


# ------------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawTable:
    """A raw file as text cells, with the row number a person sees in the file for every record.

    Attributes
    ----------
    name
        The config key (``survey``, ``experts``, ``expert_panel``, ``service_records``).
    path
        The resolved file path; ``display`` is the path shown in messages (relative to the project root).
    frame
        One row per record, one column per header cell; every cell a stripped string ("" when empty).
    rows
        The file row of each record (CSV: the header is row 1; XLSX: the sheet row).
    sha256
        Hash of the file's bytes (provenance; the file is never written).
    """

    name: str
    path: Path
    display: str
    frame: pd.DataFrame
    rows: np.ndarray
    sha256: str
    decimal: str = "."

    def error(self, message: str, *, index: int | None = None, column: str | None = None, value: object = None,
              expected: str | None = None) -> DataError:
        """A :class:`DataError` for record ``index`` (0-based position in ``frame``)."""
        row = int(self.rows[index]) if index is not None else None
        return DataError(self.display, message, row=row, column=column, value=value, expected=expected)


def _display(path: Path) -> str:
    try:
        return path.relative_to(paths.PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _decode(data: bytes, raw: RawFile, display: str) -> str:
    codec = ENCODINGS[raw.encoding]
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        prefix = data[: e.start].decode(codec, errors="replace")
        records = sum(1 for _ in csv.reader(_io.StringIO(prefix, newline=""), delimiter=raw.delimiter))
        row = records + 1 if (not prefix or prefix.endswith(("\n", "\r"))) else records
        byte = data[e.start]
        try:
            as_1257 = bytes([byte]).decode("cp1257")
            hint = f"; Windows-1257 reads byte 0x{byte:02x} as {as_1257!r}"
        except UnicodeDecodeError:
            hint = ""
        raise DataError(display, f"is not valid {raw.encoding} text at byte {e.start} (0x{byte:02x}){hint}",
                        row=row, expected="declare encoding: windows-1257 in the study config if the file "
                                          "was saved by Excel on Windows, or save it as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text  # a BOM is fine whether declared or not


def _cell_text(value: object) -> str:
    """An XLSX cell as the text a CSV export would hold (whole floats without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    return str(value)


def _csv_records(data: bytes, raw: RawFile, display: str) -> list[list[str]]:
    text = _decode(data, raw, display)
    reader = csv.reader(_io.StringIO(text, newline=""), delimiter=raw.delimiter, strict=True)
    records: list[list[str]] = []
    try:
        for rec in reader:
            records.append(rec)
    except csv.Error as e:
        raise DataError(display, f"cannot be read as CSV ({e})", row=len(records) + 1,
                        expected="quotes closed on the same value; text containing the delimiter in quotes") from None
    return records


def _xlsx_records(path: Path, raw: RawFile, display: str) -> list[list[str]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as e:
        raise DataError(display, f"cannot be opened as an Excel workbook ({type(e).__name__})",
                        expected="an .xlsx file saved by Excel or LibreOffice") from None
    names = book.sheetnames
    if raw.sheet is None:
        sheet = book.worksheets[0]
    elif isinstance(raw.sheet, int):
        if not 1 <= raw.sheet <= len(names):
            raise DataError(display, f"has no sheet number {raw.sheet}",
                            expected=f"sheet: 1..{len(names)} or a sheet name ({', '.join(names)})")
        sheet = book.worksheets[raw.sheet - 1]
    elif raw.sheet in names:
        sheet = book[raw.sheet]
    else:
        raise DataError(display, f"has no sheet named {raw.sheet!r}", expected=f"one of {', '.join(names)}")
    return [[_cell_text(v) for v in row]
            for row in sheet.iter_rows(min_row=1, max_row=max(sheet.max_row, 1), values_only=True)]


def read_raw(raw: RawFile, *, name: str, cfg: StudyConfig, key_column: str) -> RawTable:
    """Read a raw file as text cells, checking only its shape (header, field counts, encoding).

    Parameters
    ----------
    raw
        The file entry of the study config (path, encoding, delimiter, decimal, sheet, header_row).
    name
        Its key under ``data`` (used in messages).
    cfg
        The study config (paths are resolved against the project root and must stay inside it).
    key_column
        A column the header must contain; when it is missing but appears in a later row, the message says
        which ``header_row`` to declare.

    Raises
    ------
    DataError
        Missing or empty file, wrong encoding or delimiter, header problems, a record whose field count
        differs from the header.
    """
    path = cfg.resolve(raw.path, what=f"data.{name}.path")
    display = _display(path)
    if not path.is_file():
        raise DataError(display, "file not found", expected=f"the file named under data.{name}.path in the study "
                                                             "config")
    sha = sha256_file(path)
    is_xlsx = path.suffix.lower() in (".xlsx", ".xlsm")
    if path.suffix.lower() == ".xls":
        raise DataError(display, "old Excel .xls files are not read", expected="save it as .xlsx or CSV")
    if is_xlsx:
        records = _xlsx_records(path, raw, display)
    else:
        data = path.read_bytes()
        if not data.strip(b" \t\r\n\xef\xbb\xbf"):
            raise DataError(display, "the file is empty",
                            expected="a header row with the column names and one row per record")
        records = _csv_records(data, raw, display)
    header_index = raw.header_row - 1
    if header_index >= len(records):
        raise DataError(display, f"has only {len(records)} rows, so row {raw.header_row} cannot be the header",
                        expected=f"header_row: the row holding the column names (data.{name}.header_row)")
    header = [h.strip() for h in records[header_index]]
    while header and not header[-1]:
        header.pop()
    if key_column not in header:
        for k, rec in enumerate(records[:50]):
            if k != header_index and key_column in [c.strip() for c in rec]:
                raise DataError(display, f"row {raw.header_row} is not the header row: the column names "
                                         f"(with {key_column}) are in row {k + 1}", row=raw.header_row,
                                expected=f"header_row: {k + 1} under data.{name} in the study config")
        if len(header) == 1:
            for d, d_name in DELIMITER_NAMES.items():
                if d != raw.delimiter and d in header[0]:
                    raise DataError(display, f"the header is a single column; the values seem to be separated "
                                             f"by {d_name}", row=raw.header_row, value=header[0][:60],
                                    expected=f"delimiter: {d!r} under data.{name} in the study config")
    for k, h in enumerate(header):
        if not h:
            raise DataError(display, f"column {k + 1} has no name", row=raw.header_row,
                            expected="a name for every column that holds data")
    seen: dict[str, int] = {}
    for k, h in enumerate(header):
        if h in seen:
            raise DataError(display, f"column name appears twice (columns {seen[h] + 1} and {k + 1})",
                            row=raw.header_row, column=h, expected="unique column names")
        seen[h] = k
    width = len(header)
    kept, rows = [], []
    for k in range(header_index + 1, len(records)):
        rec = [c.strip() for c in records[k]]
        if not any(rec):
            continue  # blank lines and the empty rows spreadsheets leave behind
        if len(rec) > width and not any(rec[width:]):
            rec = rec[:width]
        if len(rec) != width:
            raise DataError(display, f"has {len(rec)} values but the header has {width} columns", row=k + 1,
                            expected="one value per column; put text containing the delimiter in quotes")
        kept.append(rec)
        rows.append(k + 1)
    if not kept:
        raise DataError(display, "has a header but no data rows", expected="one row per record below the header")
    frame = pd.DataFrame(kept, columns=header, dtype=object)
    return RawTable(name=name, path=path, display=display, frame=frame, rows=np.asarray(rows), sha256=sha,
                    decimal="." if is_xlsx else raw.decimal)


# ------------------------------------------------------------------------------------------------------
# cell checks: the first problem in reading order wins
# ------------------------------------------------------------------------------------------------------
class _FirstProblem:
    """Collects candidate problems and raises the one that comes first in the file (row, then column)."""

    def __init__(self, table: RawTable):
        self.table = table
        self.best: tuple[int, int, Callable[[], DataError]] | None = None
        self.position = {c: k for k, c in enumerate(table.frame.columns)}

    def offer(self, mask: np.ndarray | pd.Series, column: str | None,
              make: Callable[[int], DataError]) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        i = int(np.flatnonzero(mask)[0])
        key = (int(self.table.rows[i]), self.position.get(column, -1))
        if self.best is None or key < self.best[:2]:
            self.best = (*key, lambda: make(i))

    def raise_first(self) -> None:
        if self.best is not None:
            raise self.best[2]()


def _parse_numbers(text: pd.Series, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from text cells (``nan`` where not a number) and a mask of wrong-decimal-mark cells."""
    wrong_mark = text.str.contains("," if decimal == "." else ".", regex=False).to_numpy(dtype=bool)
    normalised = text.str.replace(",", ".", regex=False) if decimal == "," else text
    values = pd.to_numeric(normalised.where(~wrong_mark, ""), errors="coerce").to_numpy(dtype=float)
    return values, wrong_mark & ~np.isnan(pd.to_numeric(text.str.replace(",", ".", regex=False),
                                                        errors="coerce").to_numpy(dtype=float))


def _number_display(x: float) -> object:
    return int(x) if float(x).is_integer() else float(x)


def _check_numeric(problems: _FirstProblem, column: str, *, what: str, allow_empty: bool = False,
                   low: float | None = None, high: float | None = None, whole: bool = False,
                   skip: np.ndarray | None = None) -> np.ndarray:
    """Parse a numeric column, offering the first problem to ``problems``; returns the numbers."""
    t = problems.table
    text = t.frame[column].astype(str)
    values, wrong_mark = _parse_numbers(text, t.decimal)
    skip = np.zeros(len(text), dtype=bool) if skip is None else skip
    empty = (text == "").to_numpy()
    other_mark = "," if t.decimal == "." else "."
    problems.offer(wrong_mark & ~skip, column, lambda i: t.error(
        f"uses {other_mark!r} as decimal mark", index=i, column=column, value=text.iloc[i],
        expected=f"{what} with {t.decimal!r} as decimal mark, or declare decimal: {other_mark!r} under "
                 f"data.{t.name} in the study config"))
    if not allow_empty:
        problems.offer(empty & ~skip, column, lambda i: t.error("empty cell", index=i, column=column,
                                                                expected=what))
    not_number = np.isnan(values) & ~empty & ~wrong_mark & ~skip
    problems.offer(not_number, column, lambda i: t.error("not a number", index=i, column=column,
                                                         value=text.iloc[i], expected=what))
    finite = ~np.isnan(values) & ~skip
    if whole:
        problems.offer(finite & (np.mod(values, 1) != 0), column, lambda i: t.error(
            "not a whole number", index=i, column=column, value=_number_display(values[i]), expected=what))
    if low is not None or high is not None:
        out = finite & (((values < low) if low is not None else False) | ((values > high) if high is not None
                                                                            else False))
        problems.offer(out, column, lambda i: t.error("value out of range", index=i, column=column,
                                                      value=_number_display(values[i]), expected=what))
    return values


def _check_labels(problems: _FirstProblem, column: str, allowed: list[str], *, what: str) -> None:
    t = problems.table
    text = t.frame[column].astype(str)
    bad = ~text.isin(allowed).to_numpy()

    def make(i: int) -> DataError:
        close = difflib.get_close_matches(text.iloc[i], allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return t.error(f"unknown {what}{hint}", index=i, column=column, value=text.iloc[i],
                       expected=f"one of {', '.join(allowed)}")

    problems.offer(bad, column, make)


def _check_unique(problems: _FirstProblem, column: str, *, what: str) -> None:
    t = problems.table
    text = t.frame[column].astype(str)
    problems.offer((text == "").to_numpy(), column, lambda i: t.error(f"empty {what}", index=i, column=column,
                                                                       expected=f"a {what} in every row"))
    dup = (text.duplicated() & (text != "")).to_numpy()

    def make(i: int) -> DataError:
        first = int(np.flatnonzero((text == text.iloc[i]).to_numpy())[0])
        return t.error(f"duplicate {what} (first in row {int(t.rows[first])})", index=i, column=column,
                       value=text.iloc[i], expected=f"each {what} once")

    problems.offer(dup, column, make)


def _missing_columns(t: RawTable, required: list[str], *, why: Callable[[str], str]) -> None:
    cols = list(t.frame.columns)
    missing = [c for c in required if c not in cols]
    if missing:
        extra = [c for c in cols if c not in required]
        close = difflib.get_close_matches(missing[0], extra, n=1)
        hint = f"; the file has {close[0]!r} instead (a typo?)" if close else ""
        more = f" ({len(missing) - 1} more missing: {', '.join(missing[1:4])}{' …' if len(missing) > 4 else ''})" \
            if len(missing) > 1 else ""
        raise DataError(t.display, f"column is missing{hint}{more}", column=missing[0], expected=why(missing[0]))


# ------------------------------------------------------------------------------------------------------
# survey
# ------------------------------------------------------------------------------------------------------
def _code_masks(text: pd.Series, numbers: np.ndarray, codes: list) -> np.ndarray:
    mask = np.zeros(len(text), dtype=bool)
    for code in codes:
        if isinstance(code, int | float) and not isinstance(code, bool):
            mask |= numbers == code
        else:
            mask |= (text == str(code).strip()).to_numpy()
    return mask


def _codes_text(cfg: StudyConfig) -> str:
    mc = cfg.missing_codes
    parts = [f"{kind}: {', '.join(repr(c) if isinstance(c, str) else str(c) for c in codes)}"
             for kind, codes in (("don't know", mc.dont_know), ("skipped", mc.skipped)) if codes]
    return "; ".join(parts) if parts else "none declared"


def _check_codebook_against_config(cfg: StudyConfig, codebook: pd.DataFrame) -> None:
    """Cross-checks a codebook file cannot do alone: group column, scales agree with the config."""
    where = f"{cfg.source}"
    if cfg.group is not None:
        row = codebook.loc[codebook["variable"] == cfg.group.column]
        if row.empty:
            raise ConfigError(f"{where}: group.column {cfg.group.column!r} is not a variable of the codebook")
        if row["type"].item() != "group":
            raise ConfigError(f"{where}: group.column {cfg.group.column!r} has type {row['type'].item()!r} in the "
                              "codebook; expected type group")
    for r in codebook[codebook["type"].isin(RATING_TYPES)].itertuples():
        try:
            scale = cfg.scale_for(r.type, r.variable)
        except ConfigError:
            continue  # the codebook's own scale applies
        if (scale.min, scale.max) != (r.scale_min, r.scale_max):
            raise ConfigError(f"{where}: the codebook gives {r.variable} the scale {r.scale_min}..{r.scale_max} "
                              f"but scales: in the config says {scale.min}..{scale.max}; make them agree")


def _survey_tables(t: RawTable, cfg: StudyConfig, codebook: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                   list[str]]:
    variables = codebook["variable"].tolist()
    _missing_columns(t, variables, why=lambda c: f"a column for every codebook variable ({c} is in "
                                                 f"{cfg.codebook})")
    unknown = [c for c in t.frame.columns if c not in variables]
    if unknown:
        more = f" ({len(unknown) - 1} more: {', '.join(unknown[1:4])})" if len(unknown) > 1 else ""
        raise DataError(t.display, f"unknown column, not in the codebook{more}", column=unknown[0],
                        expected=f"only codebook variables; add it to {cfg.codebook} or remove it from the file")
    problems = _FirstProblem(t)
    id_var = items(codebook, "id")[0]
    _check_unique(problems, id_var, what="respondent ID")
    if cfg.group is not None:
        _check_labels(problems, cfg.group.column, list(cfg.group.levels), what="group label")
    codes = cfg.missing_codes
    codes_text = _codes_text(cfg)
    numbers: dict[str, np.ndarray] = {}
    kinds: dict[str, np.ndarray] = {}
    rating = codebook[codebook["type"].isin(RATING_TYPES)]
    for r in rating.itertuples():
        text = t.frame[r.variable].astype(str)
        raw_numbers = pd.to_numeric(text.str.replace(",", ".", regex=False) if t.decimal == "," else text,
                                    errors="coerce").to_numpy(dtype=float)
        dk = _code_masks(text, raw_numbers, codes.dont_know)
        sk = _code_masks(text, raw_numbers, codes.skipped) & ~dk
        empty_hint = "" if "" in [str(c) for c in codes.dont_know + codes.skipped] else \
            "; list \"\" under missing_codes to accept empty cells"
        what = (f"a whole number in {r.scale_min}..{r.scale_max} or a missing code ({codes_text})"
                f"{empty_hint}")
        numbers[r.variable] = _check_numeric(problems, r.variable, what=what, low=r.scale_min, high=r.scale_max,
                                             whole=True, skip=dk | sk)
        # small codes, not strings: a '<U9' array per item costs 36 bytes a cell (1.4 GB at 1e6 x 40 items)
        kinds[r.variable] = np.where(dk, 1, np.where(sk, 2, 0)).astype(np.int8)
    profile_numbers: dict[str, np.ndarray] = {}
    for var in items(codebook, "profile"):
        text = t.frame[var].astype(str)
        filled = text != ""
        values, wrong = _parse_numbers(text, t.decimal)
        if filled.any() and not np.isnan(values[filled.to_numpy()]).any() and not wrong.any():
            profile_numbers[var] = values
    problems.raise_first()

    warn: list[str] = []
    out = pd.DataFrame(index=range(len(t.frame)))
    for r in codebook.itertuples():
        text = t.frame[r.variable].astype(str)
        if r.type in RATING_TYPES:
            x = pd.array(np.where(kinds[r.variable] == 0, numbers[r.variable], np.nan), dtype="Float64")
            x[kinds[r.variable] != 0] = pd.NA
            if r.reverse:
                x = r.scale_min + r.scale_max - x
            out[r.variable] = x
            answered = pd.Series(x).dropna()
            if answered.empty:
                warn.append(f"{t.display}: column {r.variable} has no answers (every cell is a missing code)")
            elif answered.nunique() == 1:
                warn.append(f"{t.display}: column {r.variable} is constant (every answer is "
                            f"{_number_display(float(answered.iloc[0]))}); it carries no information and its "
                            "correlations are undefined")
        elif r.variable in profile_numbers:
            v = profile_numbers[r.variable]
            whole = np.all(np.mod(v[~np.isnan(v)], 1) == 0)
            out[r.variable] = pd.array(np.where(np.isnan(v), None, v), dtype="Int64" if whole else "Float64")
        else:
            out[r.variable] = pd.array(text.where(text != "", None), dtype="string")
    if cfg.group is not None:
        counts = out[cfg.group.column].value_counts()
        for level in cfg.group.levels:
            if counts.get(level, 0) == 0:
                warn.append(f"{t.display}: no respondent in group {level!r} of {cfg.group.column}")
    rating_vars = rating["variable"].tolist()
    kind_matrix = (np.column_stack([kinds[v] for v in rating_vars]) if rating_vars
                   else np.empty((len(out), 0), dtype=np.int8))
    resp_idx, var_idx = np.nonzero(kind_matrix)
    missing = pd.DataFrame({
        "respondent_id": pd.array(out[id_var].to_numpy()[resp_idx], dtype="string"),
        "variable": pd.array(np.asarray(rating_vars, dtype=object)[var_idx], dtype="string"),
        "kind": pd.array(MISSING_KINDS[kind_matrix[resp_idx, var_idx]], dtype="string"),
    })
    return out, missing, warn


# ------------------------------------------------------------------------------------------------------
# experts
# ------------------------------------------------------------------------------------------------------
def _expert_ratings_table(t: RawTable, cfg: StudyConfig) -> tuple[pd.DataFrame, list[str]]:
    catalogue = cfg.factors
    codes = catalogue["factor"].tolist()
    stage_of = dict(zip(catalogue["factor"], catalogue["stage"], strict=True))
    _missing_columns(t, ["factor"], why=lambda c: "columns round, factor and one column per expert (E01, E02, ...)")
    frame = t.frame
    experts = [c for c in frame.columns if c not in ("round", "factor", "stage")]
    if not experts:
        raise DataError(t.display, "no expert columns", expected="columns round, factor and one column per expert "
                                                                 "(E01, E02, ...)")
    problems = _FirstProblem(t)
    if "round" in frame.columns:
        rounds = _check_numeric(problems, "round", what="a Delphi round number 1, 2, ...", low=1, whole=True)
    else:
        rounds = np.ones(len(frame))
    _check_labels(problems, "factor", codes, what="factor code")
    if "stage" in frame.columns:
        expected_stage = frame["factor"].map(stage_of).fillna("")
        bad = (frame["stage"] != expected_stage) & (expected_stage != "")
        problems.offer(bad.to_numpy(), "stage", lambda i: t.error(
            "stage does not match the factor's stage in the study config", index=i, column="stage",
            value=frame["stage"].iloc[i], expected=f"{expected_stage.iloc[i]} for {frame['factor'].iloc[i]}"))
    key = pd.Series([f"{r:g}|{f}" for r, f in zip(rounds, frame["factor"], strict=True)])
    dup = key.duplicated().to_numpy()
    problems.offer(dup, "factor", lambda i: t.error(
        f"factor listed twice in round {_number_display(rounds[i])} (first in row "
        f"{int(t.rows[int(np.flatnonzero((key == key.iloc[i]).to_numpy())[0])])})",
        index=i, column="factor", value=frame["factor"].iloc[i], expected="each factor once per round"))
    scores = cfg.analysis.experts.scores
    values: dict[str, np.ndarray] = {}
    n_in_round = pd.Series(rounds).map(pd.Series(rounds).value_counts()).to_numpy()
    for e in experts:
        if scores:
            values[e] = _check_numeric(problems, e, what="a score (higher = more important; "
                                                         "analysis.experts.scores is true)")
        else:
            values[e] = _check_numeric(problems, e, what="a rank 1..n (n = factors in the round; 1 = most "
                                                         "important, ties as average ranks)", low=1)
            over = ~np.isnan(values[e]) & (values[e] > n_in_round)
            problems.offer(over, e, lambda i, e=e: t.error(
                f"rank above the number of factors in round {_number_display(rounds[i])}", index=i, column=e,
                value=_number_display(values[e][i]), expected=f"a rank 1..{int(n_in_round[i])}"))
    problems.raise_first()
    if not scores:
        for r in sorted(set(rounds)):
            in_round = rounds == r
            n = int(in_round.sum())
            for e in experts:
                given = values[e][in_round]
                # a valid ranking with ties is exactly one that equals its own average ranks
                if not np.allclose(rankdata(given, method="average"), given, rtol=0, atol=1e-6):
                    raise DataError(t.display, f"the ranks of round {_number_display(r)} are not a ranking of the "
                                               f"{n} factors (sum {_number_display(float(given.sum()))}, "
                                               f"expected {n * (n + 1) // 2})", column=e,
                                    expected=f"ranks 1..{n}, each used once; ties as average ranks (e.g. 2.5, 2.5 "
                                             "instead of 2, 3)")
    warn = []
    for r in sorted(set(rounds)):
        absent = [c for c in codes if c not in set(frame.loc[rounds == r, "factor"])]
        if absent:
            warn.append(f"{t.display}: round {_number_display(r)} does not rate {len(absent)} factor(s) of the "
                        f"catalogue: {', '.join(absent[:5])}")
    order = {c: k for k, c in enumerate(codes)}
    long = pd.DataFrame({
        "round": np.repeat(rounds.astype(np.int64), len(experts)),
        "expert_id": np.tile(np.asarray(experts, dtype=object), len(frame)),
        "factor": np.repeat(frame["factor"].to_numpy(), len(experts)),
        "value": np.column_stack([values[e] for e in experts]).ravel(),
    })
    long["stage"] = long["factor"].map(stage_of)
    long["_e"] = long["expert_id"].map({e: k for k, e in enumerate(experts)})
    long["_f"] = long["factor"].map(order)
    long = long.sort_values(["round", "_e", "_f"], kind="stable").drop(columns=["_e", "_f"])
    long = long[["round", "expert_id", "stage", "factor", "value"]].reset_index(drop=True)
    for c in ("expert_id", "stage", "factor"):
        long[c] = long[c].astype("string")
    long["value"] = long["value"].astype("float64")
    return long, warn


def _expert_panel_table(t: RawTable, rating_experts: list[str] | None, ratings_display: str | None
                        ) -> tuple[pd.DataFrame, list[str]]:
    _missing_columns(t, ["expert_id", "argumentation", "familiarity"],
                     why=lambda c: "columns expert_id, role, years_experience, argumentation, familiarity")
    problems = _FirstProblem(t)
    _check_unique(problems, "expert_id", what="expert ID")
    coeff = {c: _check_numeric(problems, c, what=f"the {c} coefficient, a number between 0 and 1", low=0, high=1)
             for c in ("argumentation", "familiarity")}
    years = None
    if "years_experience" in t.frame.columns:
        years = _check_numeric(problems, "years_experience", what="years of experience (0 or more)",
                               allow_empty=True, low=0)
    problems.raise_first()
    ids = t.frame["expert_id"].astype(str)
    if rating_experts is not None:
        absent = [e for e in rating_experts if e not in set(ids)]
        if absent:
            raise DataError(t.display, f"expert {absent[0]} ranks factors in {ratings_display} but has no row here",
                            column="expert_id", value=absent[0],
                            expected="one row per expert column of the ratings file")
    warn = []
    if rating_experts is not None:
        unused = [e for e in ids if e not in rating_experts]
        if unused:
            warn.append(f"{t.display}: expert(s) {', '.join(unused)} have no ratings in {ratings_display}")
    known = {"expert_id", "role", "years_experience", "argumentation", "familiarity"}
    ignored = [c for c in t.frame.columns if c not in known]
    if ignored:
        warn.append(f"{t.display}: column(s) {', '.join(ignored)} are not used")
    out = pd.DataFrame({"expert_id": pd.array(ids, dtype="string")})
    out["role"] = pd.array(t.frame["role"].where(t.frame["role"] != "", None), dtype="string") \
        if "role" in t.frame.columns else pd.array([None] * len(ids), dtype="string")
    if years is not None:
        out["years_experience"] = pd.array(np.where(np.isnan(years), None, years), dtype="Float64")
    out["argumentation"] = coeff["argumentation"]
    out["familiarity"] = coeff["familiarity"]
    out["competence"] = (coeff["argumentation"] + coeff["familiarity"]) / 2
    return out, warn


# ------------------------------------------------------------------------------------------------------
# service records
# ------------------------------------------------------------------------------------------------------
def _kpi_columns(cfg: StudyConfig) -> dict[str, str]:
    """Service-record columns the KPIs need -> the first KPI needing each."""
    need: dict[str, str] = {}
    for k in cfg.kpis:
        for attr in ("start", "end", "column", "actual", "planned", "timestamp"):
            col = getattr(k, attr)
            if col:
                need.setdefault(col, k.code)
    return need


def _parse_datetimes(problems: _FirstProblem, column: str) -> pd.Series:
    t = problems.table
    text = t.frame[column].astype(str)
    parsed = pd.to_datetime(text.where(text != "", None), format="ISO8601", errors="coerce", utc=True)
    bad = (parsed.isna() & (text != "")).to_numpy()
    problems.offer(bad, column, lambda i: t.error(
        "not a date-time", index=i, column=column, value=text.iloc[i],
        expected="an ISO date or date-time such as 2025-03-14 or 2025-03-14 09:30"))
    has_zone = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).to_numpy()
    naive = parsed.dt.tz_convert(None) if has_zone.any() else parsed.dt.tz_localize(None)
    if has_zone.any() and not has_zone[(text != "").to_numpy()].all():
        problems.offer(has_zone, column, lambda i: t.error(
            "mixes times with and without a time zone", index=i, column=column, value=text.iloc[i],
            expected="all times of the file in the same form (local times without a zone)"))
    return naive.astype("datetime64[ns]")


def _service_records_table(t: RawTable, cfg: StudyConfig) -> tuple[pd.DataFrame, list[str]]:
    need = _kpi_columns(cfg)
    required = ["order_id"] + ([cfg.group.column] if cfg.group else []) + list(need)
    _missing_columns(t, required, why=lambda c: (f"the column {c} (needed by KPI {need[c]!r})" if c in need
                                                 else f"the column {c}"))
    cols = list(t.frame.columns)
    datetime_cols = [c for c in cols if c in DATETIME_COLUMNS or c in need and c not in
                     {k.column for k in cfg.kpis if k.kind == "rate"}]
    flag_cols = [c for c in cols if c in FLAG_COLUMNS or c in {k.column for k in cfg.kpis if k.kind == "rate"}]
    problems = _FirstProblem(t)
    _check_unique(problems, "order_id", what="order ID")
    if cfg.group is not None:
        _check_labels(problems, cfg.group.column, list(cfg.group.levels), what="group label")
    times = {c: _parse_datetimes(problems, c) for c in datetime_cols}
    flags = {c: _check_numeric(problems, c, what="0 or 1", allow_empty=True, low=0, high=1, whole=True)
             for c in flag_cols}
    pairs = list(ORDERED_PAIRS) + [(k.start, k.end) for k in cfg.kpis if k.kind == "duration"]
    for start, end in dict.fromkeys(pairs):
        if start in times and end in times:
            before = (times[end] < times[start]).to_numpy(dtype=bool)
            problems.offer(before, end, lambda i, s=start, e=end: t.error(
                f"{e} is before {s} ({t.frame[s].iloc[i]})", index=i, column=e, value=t.frame[e].iloc[i],
                expected=f"a time not before {s}"))
    problems.raise_first()
    warn = []
    for c, v in flags.items():
        n_empty = int(np.isnan(v).sum())
        if n_empty:
            warn.append(f"{t.display}: {n_empty} order(s) have no value in {c} (left missing)")
    if "complaint" in flags and "complaint_at" in times:
        no_time = (flags["complaint"] == 1) & times["complaint_at"].isna().to_numpy()
        if no_time.any():
            warn.append(f"{t.display}: {int(no_time.sum())} complaint(s) without complaint_at (first in row "
                        f"{int(t.rows[np.flatnonzero(no_time)[0]])})")
        stray = (flags["complaint"] == 0) & times["complaint_at"].notna().to_numpy()
        if stray.any():
            warn.append(f"{t.display}: {int(stray.sum())} order(s) have complaint_at but complaint = 0 (first in "
                        f"row {int(t.rows[np.flatnonzero(stray)[0]])})")
    out = pd.DataFrame(index=range(len(t.frame)))
    for c in cols:
        if c in times:
            out[c] = times[c].to_numpy()
        elif c in flags:
            out[c] = pd.array(np.where(np.isnan(flags[c]), None, flags[c]), dtype="Int64")
        else:
            text = t.frame[c].astype(str)
            out[c] = pd.array(text.where(text != "", None), dtype="string")
    return out, warn


# ------------------------------------------------------------------------------------------------------
# the whole study
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Loaded:
    raw: dict[str, RawTable]
    tables: dict[str, pd.DataFrame]
    warnings: list[str] = field(default_factory=list)


def _load_all(cfg: StudyConfig) -> _Loaded:
    """Validate config, codebook and every raw file; return the processed tables (nothing is written)."""
    codebook = cfg.codebook_table
    _check_codebook_against_config(cfg, codebook)
    d = cfg.data
    raw: dict[str, RawTable] = {}
    tables: dict[str, pd.DataFrame] = {}
    warn: list[str] = []
    if d.survey is not None:
        raw["survey"] = read_raw(d.survey, name="survey", cfg=cfg, key_column=items(codebook, "id")[0])
        survey, missing, w = _survey_tables(raw["survey"], cfg, codebook)
        tables.update(survey=survey, survey_missing=missing)
        warn += w
    rating_experts = None
    if d.experts is not None:
        raw["experts"] = read_raw(d.experts, name="experts", cfg=cfg, key_column="factor")
        tables["expert_ratings"], w = _expert_ratings_table(raw["experts"], cfg)
        rating_experts = list(dict.fromkeys(tables["expert_ratings"]["expert_id"]))
        warn += w
    if d.expert_panel is not None:
        raw["expert_panel"] = read_raw(d.expert_panel, name="expert_panel", cfg=cfg, key_column="expert_id")
        tables["expert_panel"], w = _expert_panel_table(raw["expert_panel"], rating_experts,
                                                        raw["experts"].display if "experts" in raw else None)
        warn += w
    if d.service_records is not None:
        raw["service_records"] = read_raw(d.service_records, name="service_records", cfg=cfg,
                                          key_column="order_id")
        tables["service_records"], w = _service_records_table(raw["service_records"], cfg)
        warn += w
    if not raw:
        raise ConfigError(f"{cfg.source}: data: names no raw file (survey, experts, expert_panel, service_records)")
    return _Loaded(raw=raw, tables=tables, warnings=warn)


def _manifest(cfg: StudyConfig, loaded: _Loaded) -> dict:
    codebook_path = cfg.study_dir / cfg.codebook
    return {
        "study": cfg.study.id,
        "synthetic": cfg.study.synthetic,
        "codebook": {"path": _display(codebook_path.resolve()), "sha256": sha256_file(codebook_path)},
        "raw_files": {name: {"path": t.display, "sha256": t.sha256, "rows": len(t.frame)}
                      for name, t in loaded.raw.items()},
        "tables": {name: {"rows": len(df), "columns": list(map(str, df.columns))}
                   for name, df in loaded.tables.items()},
    }


def prepare_study(cfg: StudyConfig) -> list[Path]:
    """Validate the raw data and write the processed tables (``data/processed/<study>/``).

    Tables (``docs/architecture.md``): ``survey``, ``survey_missing``, ``expert_ratings``, ``expert_panel``,
    ``service_records`` (those whose raw file the config names), each as parquet and CSV, plus
    ``prepare_manifest.json`` with the raw files' sha256. Everything is validated first and written to a
    temporary folder, then moved into place, so a failure leaves the processed folder as it was.
    Warnings (constant columns, unused levels) are issued as :class:`DataWarning`.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ConfigError, DataError
        The first problem, as one line naming the file, row, column, value and what was expected.
    """
    loaded = _load_all(cfg)
    for w in loaded.warnings:
        warnings.warn(w, DataWarning, stacklevel=2)
    dest = cfg.paths.processed
    dest.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix=f".{cfg.study.id}.prepare-", dir=dest.parent) as tmp:
        staging = Path(tmp)
        for name, df in loaded.tables.items():
            write_table(df, staging / f"{name}.parquet")
        write_json(staging / MANIFEST, _manifest(cfg, loaded))
        dest.mkdir(exist_ok=True)
        for f in sorted(staging.iterdir()):
            os.replace(f, dest / f.name)
            written.append(dest / f.name)
    return written


# ------------------------------------------------------------------------------------------------------
# summary
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSummary:
    """What the raw data hold, for ``research validate`` and the prepare notebook.

    Attributes
    ----------
    files
        ``table``, ``file``, ``sha256``, ``rows``, ``columns``: one row per raw file.
    groups
        ``group``, ``label``, ``n``, ``share`` (0-1): respondents per group level (empty without a survey).
    missing_by_type
        ``item_type``, ``cells``, ``dont_know``, ``skipped``, ``dont_know_share``, ``skipped_share``,
        ``missing_share`` (shares of the cells of that item type, 0-1).
    missing_by_item
        The same per rating item (``variable``, ``item_type``, ``stage``, ``n``, ...).
    warnings
        Warnings in the order found.
    n_respondents, n_experts, n_rounds, n_orders
        Counts (0 when the study has no such file).
    """

    study: str
    synthetic: bool
    files: pd.DataFrame
    groups: pd.DataFrame
    missing_by_type: pd.DataFrame
    missing_by_item: pd.DataFrame
    warnings: tuple[str, ...]
    n_respondents: int
    n_experts: int
    n_rounds: int
    n_orders: int
    n_factors: int
    order_period: tuple[str, str] | None

    @property
    def group_sizes(self) -> dict[str, int]:
        return {str(g): int(n) for g, n in zip(self.groups["group"], self.groups["n"], strict=True)}

    @property
    def missing_shares(self) -> dict[str, dict[str, float]]:
        """``{item_type: {dont_know, skipped, missing}}`` shares of cells (0-1), plus ``all`` rating items."""
        return {r.item_type: {"dont_know": float(r.dont_know_share), "skipped": float(r.skipped_share),
                              "missing": float(r.missing_share)} for r in self.missing_by_type.itertuples()}

    def key_numbers(self) -> dict[str, object]:
        """Key numbers for ``reports/<study>/results/prepare.json`` (stable keys).

        ``n_respondents``, ``group_sizes`` (level -> n), ``n_experts``, ``n_rounds``, ``n_factors``,
        ``n_orders``, ``order_period`` ([first, last] date), ``missing_share`` (item type or ``all`` ->
        ``dont_know``, ``skipped``, ``missing`` shares of answers, 0-1), ``raw_files`` (table -> ``file``,
        ``sha256``, ``rows``), ``n_warnings``.
        """
        return {
            "n_respondents": self.n_respondents, "group_sizes": self.group_sizes,
            "n_experts": self.n_experts, "n_rounds": self.n_rounds, "n_factors": self.n_factors,
            "n_orders": self.n_orders, "order_period": list(self.order_period) if self.order_period else None,
            "missing_share": self.missing_shares,
            "raw_files": {r.table: {"file": r.file, "sha256": r.sha256, "rows": int(r.rows)}
                          for r in self.files.itertuples()},
            "n_warnings": len(self.warnings),
        }

    def text(self, cfg: StudyConfig) -> str:
        """The human summary printed by ``research validate``."""
        kinds = cfg.codebook_table["type"].value_counts()
        counts = ", ".join(f"{int(kinds[k])} {k}" for k in ITEM_TYPES if k in kinds and k not in ("id", "group"))
        lines = [
            f"Study {self.study}{' - SYNTHETIC data' if self.synthetic else ''}"
            + (f" ({_display(cfg.source)})" if cfg.source else ""),
            f"Config and codebook: OK ({len(cfg.stages)} stages, {self.n_factors} factors; codebook "
            f"{len(cfg.codebook_table)} variables: {counts}; {len(cfg.kpis)} KPIs)",
            "Raw files:",
        ]
        width = max((len(f) for f in self.files["file"]), default=0)
        for r in self.files.itertuples():
            lines.append(f"  {r.table:<16} {r.file:<{width}}  sha256 {r.sha256[:12]}  {r.rows:>5} rows  "
                         f"{r.columns:>3} columns")
        if self.n_respondents:
            groups = ", ".join(f"{r.group} {r.n} ({r.share:.1%})" for r in self.groups.itertuples())
            lines.append(f"Respondents: {self.n_respondents}" + (f" ({cfg.group.column}: {groups})" if groups
                                                                 else ""))
            for r in self.missing_by_type.itertuples():
                lines.append(f"  missing {r.item_type:<12} {r.missing_share:6.1%} of {r.cells} answers "
                             f"(don't know {r.dont_know_share:.1%}, skipped {r.skipped_share:.1%})")
        if self.n_experts:
            lines.append(f"Experts: {self.n_experts} in {self.n_rounds} round(s)")
        if self.n_orders:
            period = f", {self.order_period[0]} .. {self.order_period[1]}" if self.order_period else ""
            lines.append(f"Service records: {self.n_orders} orders{period}")
        lines.append("Warnings: " + ("none" if not self.warnings else str(len(self.warnings))))
        lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)


def _summary(cfg: StudyConfig, loaded: _Loaded) -> DataSummary:
    files = pd.DataFrame([{"table": name, "file": t.display, "sha256": t.sha256, "rows": len(t.frame),
                           "columns": t.frame.shape[1]} for name, t in loaded.raw.items()])
    survey = loaded.tables.get("survey")
    codebook = cfg.codebook_table
    groups = pd.DataFrame({"group": pd.Series(dtype="string"), "label": pd.Series(dtype="string"),
                           "n": pd.Series(dtype="int64"), "share": pd.Series(dtype="float64")})
    by_item = pd.DataFrame(columns=["variable", "item_type", "stage", "n", "answered", "dont_know", "skipped",
                                    "dont_know_share", "skipped_share", "missing_share"])
    by_type = pd.DataFrame(columns=["item_type", "cells", "dont_know", "skipped", "dont_know_share",
                                    "skipped_share", "missing_share"])
    if survey is not None:
        n = len(survey)
        if cfg.group is not None:
            counts = survey[cfg.group.column].value_counts()
            groups = pd.DataFrame({
                "group": pd.array(list(cfg.group.levels), dtype="string"),
                "label": pd.array(list(cfg.group_labels().values()), dtype="string"),
                "n": np.array([int(counts.get(k, 0)) for k in cfg.group.levels], dtype=np.int64)})
            groups["share"] = groups["n"] / n
        rating = codebook[codebook["type"].isin(RATING_TYPES)]
        miss = loaded.tables["survey_missing"]
        tally = pd.crosstab(miss["variable"].astype(object), miss["kind"].astype(object)) if len(miss) \
            else pd.DataFrame()
        tally = tally.reindex(index=rating["variable"], columns=["dont_know", "skipped"], fill_value=0)
        by_item = pd.DataFrame({
            "variable": rating["variable"].to_numpy(), "item_type": rating["type"].to_numpy(),
            "stage": rating["stage"].to_numpy(), "n": n,
            "answered": [int(survey[v].notna().sum()) for v in rating["variable"]],
            "dont_know": tally["dont_know"].to_numpy(dtype=np.int64),
            "skipped": tally["skipped"].to_numpy(dtype=np.int64)})
        by_item["dont_know_share"] = by_item["dont_know"] / n
        by_item["skipped_share"] = by_item["skipped"] / n
        by_item["missing_share"] = (by_item["dont_know"] + by_item["skipped"]) / n
        agg = by_item.groupby("item_type", sort=False).agg(cells=("n", "sum"), dont_know=("dont_know", "sum"),
                                                           skipped=("skipped", "sum")).reset_index()
        total = pd.DataFrame({"item_type": ["all"], "cells": [agg["cells"].sum()],
                              "dont_know": [agg["dont_know"].sum()], "skipped": [agg["skipped"].sum()]})
        by_type = pd.concat([agg, total], ignore_index=True) if len(agg) else agg
        for k in ("dont_know", "skipped"):
            by_type[f"{k}_share"] = by_type[k] / by_type["cells"]
        by_type["missing_share"] = (by_type["dont_know"] + by_type["skipped"]) / by_type["cells"]
    ratings = loaded.tables.get("expert_ratings")
    records = loaded.tables.get("service_records")
    period = None
    if records is not None:
        stamps = [k.timestamp for k in cfg.kpis if k.timestamp in records.columns] or \
            [c for c in DATETIME_COLUMNS if c in records.columns][:1]
        if stamps and records[stamps[0]].notna().any():
            period = (str(records[stamps[0]].min().date()), str(records[stamps[0]].max().date()))
    return DataSummary(
        study=cfg.study.id, synthetic=cfg.study.synthetic, files=files, groups=groups,
        missing_by_type=by_type, missing_by_item=by_item, warnings=tuple(loaded.warnings),
        n_respondents=0 if survey is None else len(survey),
        n_experts=0 if ratings is None else int(ratings["expert_id"].nunique()),
        n_rounds=0 if ratings is None else int(ratings["round"].nunique()),
        n_orders=0 if records is None else len(records), n_factors=len(cfg.factors), order_period=period)


def _pct(share: float, lang: str, digits: int = 1) -> str:
    from .i18n import fmt_number

    return f"{fmt_number(100 * float(share), digits, lang)} %"


def reading(summary: DataSummary, cfg: StudyConfig, *, lang: str | None = None) -> dict[str, object]:
    """Formatted values for the paragraphs of the prepare notebook (catalogue ``locales/prepare.yaml``).

    Keys: ``n_files``, ``n_respondents``, ``group_column``, ``groups`` (e.g. "Foreign clients 126
    (45.0 %), ..."), ``missing_all``, ``dont_know_all``, ``skipped_all``, ``top_missing_item``,
    ``top_missing_label``, ``top_missing_share``, ``n_experts``, ``n_rounds``, ``n_factors``, ``n_orders``,
    ``period_start``, ``period_end``, ``n_warnings``, ``folder``.
    """
    from .i18n import fmt_number

    lang = lang or cfg.language
    out: dict[str, object] = {"n_files": len(summary.files), "n_respondents": summary.n_respondents,
                              "n_experts": summary.n_experts, "n_rounds": summary.n_rounds,
                              "n_factors": summary.n_factors, "n_orders": summary.n_orders,
                              "n_warnings": len(summary.warnings), "folder": _display(cfg.paths.processed)}
    if cfg.group is not None:
        codebook = cfg.codebook_table
        label = codebook.loc[codebook["variable"] == cfg.group.column, f"label_{lang}"]
        out["group_column"] = label.iloc[0] if len(label) else cfg.group.column
        names = cfg.group_labels(lang)
        out["groups"] = "; ".join(f"{names.get(str(r.group), r.group)} {fmt_number(int(r.n), 0, lang)} "
                                  f"({_pct(r.share, lang)})" for r in summary.groups.itertuples())
    total = summary.missing_by_type[summary.missing_by_type["item_type"] == "all"]
    if len(total):
        out.update(missing_all=_pct(total["missing_share"].iloc[0], lang),
                   dont_know_all=_pct(total["dont_know_share"].iloc[0], lang),
                   skipped_all=_pct(total["skipped_share"].iloc[0], lang))
        top = summary.missing_by_item.sort_values("missing_share", ascending=False, kind="stable").iloc[0]
        labels = dict(zip(cfg.codebook_table["variable"], cfg.codebook_table[f"label_{lang}"], strict=True))
        out.update(top_missing_item=top["variable"], top_missing_label=labels.get(top["variable"], ""),
                   top_missing_share=_pct(top["missing_share"], lang))
    if summary.order_period:
        out.update(period_start=summary.order_period[0], period_end=summary.order_period[1])
    return out


def for_display(table: pd.DataFrame, cfg: StudyConfig, *, lang: str | None = None) -> pd.DataFrame:
    """A copy of a :class:`DataSummary` table ready for ``Reporter.table``.

    Shares (``*_share``, 0-1) become percentages (``*_pct``), item types and group codes are named in the
    report language and rating items get their codebook wording in a ``label`` column.
    """
    from .i18n import label

    lang = lang or cfg.language
    out = table.copy()
    if "variable" in out.columns:
        labels = dict(zip(cfg.codebook_table["variable"], cfg.codebook_table[f"label_{lang}"], strict=True))
        out.insert(out.columns.get_loc("variable") + 1, "label", [labels.get(v, "") for v in out["variable"]])
    if "item_type" in out.columns:
        out["item_type"] = [label("prepare", f"type_{v}", lang) for v in out["item_type"]]
    if "label" in out.columns and "group" in out.columns:
        out["label"] = [cfg.group_labels(lang).get(str(g), lbl) for g, lbl in zip(out["group"], out["label"],
                                                                                  strict=True)]
    if "table" in out.columns:
        out["table"] = [label("prepare", f"table_{v}", lang) for v in out["table"]]
    for col in [c for c in out.columns if c.endswith("_share") or c == "share"]:
        out[col] = (100 * out[col].astype(float)).round(6)
        out = out.rename(columns={col: col.removesuffix("_share").removesuffix("share") + "_pct"
                                  if col != "share" else "pct"})
    return out


def summarise_study(cfg: StudyConfig) -> DataSummary:
    """Validate the study's raw data (nothing is written) and summarise them.

    Raises
    ------
    ConfigError, DataError
        As :func:`prepare_study`.
    """
    return _summary(cfg, _load_all(cfg))


def validate_study(cfg: StudyConfig) -> str:
    """Validate config, codebook and all raw files without writing anything; return a human summary.

    The summary lists the files with their sha256 prefix and row counts, the respondents per group, the
    share of missing answers per item type (don't know / skipped) and every warning.
    """
    return summarise_study(cfg).text(cfg)


# ------------------------------------------------------------------------------------------------------
# processed tables
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyData:
    """The processed tables of a study (``None`` when the study has no such raw file).

    See ``docs/architecture.md`` for the columns of each table.
    """

    survey: pd.DataFrame | None
    survey_missing: pd.DataFrame | None
    expert_ratings: pd.DataFrame | None
    expert_panel: pd.DataFrame | None
    service_records: pd.DataFrame | None
    codebook: pd.DataFrame | None

    def ratings_wide(self, round: int = 1) -> pd.DataFrame:
        """Expert ratings of one round as rows = factors (catalogue order), columns = expert IDs.

        This is the layout of R ``irr::kendall`` (objects in rows, raters in columns) that
        :mod:`research.experts` takes.

        Raises
        ------
        DataError
            When the study has no expert ratings or no such round.
        """
        if self.expert_ratings is None:
            raise DataError("expert_ratings", "the study has no expert ratings",
                            expected="data.experts in the study config")
        r = self.expert_ratings[self.expert_ratings["round"] == round]
        if r.empty:
            rounds = sorted(int(x) for x in self.expert_ratings["round"].unique())
            raise DataError("expert_ratings", f"no round {round}", expected=f"one of {rounds}")
        wide = r.pivot(index="factor", columns="expert_id", values="value")
        wide = wide.reindex(index=list(dict.fromkeys(r["factor"])), columns=list(dict.fromkeys(r["expert_id"])))
        wide.index.name, wide.columns.name = "factor", None
        return wide


def load_processed(cfg: StudyConfig) -> StudyData:
    """Read the processed tables written by :func:`prepare_study`.

    Raises
    ------
    DataError
        When a table the config implies is missing (run ``research prepare`` first), or when a raw file or the
        codebook changed since the tables were written.
    """
    folder = cfg.paths.processed
    study_arg = _display(cfg.source) if cfg.source else "studies/<id>/study.yaml"
    rerun = f"run `research prepare --study {study_arg}` first"
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        for name, info in manifest.get("raw_files", {}).items():
            raw = getattr(cfg.data, name, None)
            if raw is None:
                continue
            path = cfg.resolve(raw.path, what=f"data.{name}.path")
            if path.is_file() and sha256_file(path) != info.get("sha256"):
                raise DataError(_display(path), "changed since the processed tables were written",
                                expected=rerun.replace(" first", " again"))
        codebook_path = cfg.study_dir / cfg.codebook
        if codebook_path.is_file() and sha256_file(codebook_path) != manifest.get("codebook", {}).get("sha256"):
            raise DataError(_display(codebook_path.resolve()), "changed since the processed tables were written",
                            expected=rerun.replace(" first", " again"))
    tables: dict[str, pd.DataFrame | None] = {}
    for key, names in TABLE_OF_FILE.items():
        for name in names:
            if getattr(cfg.data, key) is None:
                tables[name] = None
                continue
            path = cfg.paths.processed_table(name)
            if not path.is_file():
                raise DataError(_display(path), f"processed table {name} is missing", expected=rerun)
            tables[name] = read_table(path)
    return StudyData(**tables, codebook=cfg.codebook_table if cfg.data.survey is not None else None)
