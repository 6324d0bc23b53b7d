"""Study configuration (one YAML file per study) and the survey codebook, validated with pydantic.

A student adapts the study to another company by editing these two files and the raw data, never code.
Errors name the file and the key (config) or line (codebook) and what was expected.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import paths
from .errors import ConfigError

Lang = Literal["en", "lt"]
ITEM_TYPES = ("id", "group", "importance", "performance", "outcome", "profile", "comment")
CODEBOOK_COLUMNS = ("variable", "type", "stage", "factor", "latent", "scale_min", "scale_max", "reverse",
                    "label_en", "label_lt")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A label in both report languages."""

    en: str
    lt: str

    def __call__(self, lang: str) -> str:
        return getattr(self, lang)


class StudyInfo(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    title: Text
    company: str
    synthetic: bool = False
    description: Text | None = None


class RawFile(_Strict):
    """A raw input file and how to read it."""

    path: str
    encoding: Literal["utf-8", "utf-8-sig", "windows-1257", "cp1257", "latin-1"] = "utf-8"
    delimiter: Literal[",", ";", "\t"] = ","
    decimal: Literal[".", ","] = "."
    sheet: str | int | None = None  # XLSX only
    header_row: int = 1  # XLSX: the row holding the column names (1-based)


class DataFiles(_Strict):
    survey: RawFile | None = None
    experts: RawFile | None = None
    expert_panel: RawFile | None = None
    service_records: RawFile | None = None
    truth: str | None = None  # synthetic data only: JSON with the true generating parameters


class Factor(_Strict):
    code: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    label: Text


class Stage(_Strict):
    code: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    label: Text
    factors: list[Factor]


class Group(_Strict):
    """The respondent group variable (demo: client origin) and its levels in display order."""

    column: str
    levels: dict[str, Text]

    @field_validator("levels")
    @classmethod
    def _at_least_two(cls, v: dict[str, Text]) -> dict[str, Text]:
        if len(v) < 2:
            raise ValueError("needs at least two levels")
        return v


class Scale(_Strict):
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must exceed min ({self.min})")
        return self


class MissingCodes(_Strict):
    dont_know: list[int | str] = []
    skipped: list[int | str] = []


class KPI(_Strict):
    """A stage KPI computed from the service records.

    kinds: ``duration`` (end - start in ``unit``; rows with a missing end are not counted),
    ``rate`` (mean of a 0/1 ``column``), ``on_time_rate`` (share with ``actual`` <= ``planned``).
    ``direction``: ``max`` means the target is an upper limit (times), ``min`` a lower limit (rates).
    """

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    stage: str
    name: Text
    definition: Text
    kind: Literal["duration", "rate", "on_time_rate"]
    unit: Literal["hours", "days", "share"]
    target: float | None = None
    direction: Literal["max", "min"]
    factors: list[str] = []
    start: str | None = None
    end: str | None = None
    column: str | None = None
    actual: str | None = None
    planned: str | None = None
    timestamp: str  # column that dates an order for monthly subgroups
    log_transform: bool = False

    @model_validator(mode="after")
    def _columns_for_kind(self) -> KPI:
        need = {"duration": ("start", "end"), "rate": ("column",), "on_time_rate": ("actual", "planned")}
        missing = [k for k in need[self.kind] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {', '.join(missing)}")
        return self


class ExpertsParams(_Strict):
    weight_method: Literal["rank_sum", "mean_score", "rank_order_centroid"] = "rank_sum"
    competence_weighted: bool = False
    n_perm: Annotated[int, Field(ge=0)] = 2000
    n_boot: Annotated[int, Field(ge=0)] = 2000
    scores: bool = False  # True: values are scores (higher = more important) ranked within each expert


class EFAParams(_Strict):
    item_type: Literal["performance", "importance"] = "performance"
    n_factors: int | Literal["auto"] = "auto"
    factor_rule: Literal["parallel", "kaiser", "map", "hypothesised"] = "parallel"
    method: Literal["minres", "ml", "pa"] = "minres"
    rotation: Literal["oblimin", "varimax", "promax", "none"] = "oblimin"
    corr: Literal["pearson", "polychoric"] = "polychoric"
    loading_cutoff: float = 0.30
    min_msa: float = 0.50
    drop_low_msa: bool = False
    n_iter: Annotated[int, Field(ge=1)] = 200
    score_method: Literal["regression", "bartlett", "tenberge"] = "tenberge"


class SurveyParams(_Strict):
    correction: Literal["holm", "fdr_bh", "bonferroni", "none"] = "holm"


class ModelParams(_Strict):
    crosshair: Literal["mean", "midpoint"] = "mean"
    n_boot: Annotated[int, Field(ge=0)] = 2000
    top_n: int = 5


class MonitoringParams(_Strict):
    baseline_months: Annotated[int, Field(ge=2)] = 6
    rules: list[Literal["we1", "we2", "we3", "we4"]] = ["we1", "we2", "we3", "we4"]
    by_group: bool = False  # also chart every client group (group.column) separately


class Analysis(_Strict):
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    seed: int = 20261204
    experts: ExpertsParams = ExpertsParams()
    efa: EFAParams = EFAParams()
    survey: SurveyParams = SurveyParams()
    model: ModelParams = ModelParams()
    monitoring: MonitoringParams = MonitoringParams()


class Synthetic(_Strict):
    """Parameters of the demo-data generator (only for synthetic studies)."""

    seed: int = 20261204
    n_experts: int = 10
    n_respondents: int = 280
    months: int = 18


class StudyConfig(_Strict):
    study: StudyInfo
    language: Lang = "en"
    languages: list[Lang] = ["en", "lt"]
    codebook: str = "codebook.csv"
    data: DataFiles
    stages: list[Stage]
    group: Group | None = None
    scales: dict[str, Scale]  # keys: importance, performance, outcome names or "likert"
    missing_codes: MissingCodes = MissingCodes()
    kpis: list[KPI] = []
    analysis: Analysis = Analysis()
    synthetic: Synthetic | None = None

    # set by load_study, not from YAML
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> StudyConfig:
        codes = [f.code for s in self.stages for f in s.factors]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"factor codes must be unique; repeated: {', '.join(dup)}")
        stage_codes = {s.code for s in self.stages}
        for k in self.kpis:
            if k.stage not in stage_codes:
                raise ValueError(f"kpi {k.code!r}: stage {k.stage!r} is not one of {sorted(stage_codes)}")
            unknown = [f for f in k.factors if f not in codes]
            if unknown:
                raise ValueError(f"kpi {k.code!r}: unknown factors {unknown}")
        return self

    # --- derived values -------------------------------------------------------------------------
    @property
    def study_dir(self) -> Path:
        return self.source.parent if self.source else paths.PROJECT_ROOT

    @property
    def paths(self) -> paths.StudyPaths:
        return paths.StudyPaths(self.study.id)

    def resolve(self, relative: str, what: str = "path") -> Path:
        """Resolve a path from the config (relative to the project root) and keep it inside the project."""
        return paths.inside_project(relative, what=what)

    @property
    def factors(self) -> pd.DataFrame:
        """The factor catalogue: one row per factor with ``stage``, ``factor``, ``label_en``, ``label_lt``."""
        rows = [{"stage": s.code, "factor": f.code, "label_en": f.label.en, "label_lt": f.label.lt,
                 "stage_label_en": s.label.en, "stage_label_lt": s.label.lt}
                for s in self.stages for f in s.factors]
        return pd.DataFrame(rows)

    def scale_for(self, item_type: str, variable: str | None = None) -> Scale:
        for key in (variable, item_type, "likert"):
            if key and key in self.scales:
                return self.scales[key]
        raise ConfigError(f"{self.source}: no scale for {variable or item_type!r} under 'scales' "
                          "(expected a key named after the variable, its type, or 'likert')")

    def group_labels(self, lang: str | None = None) -> dict[str, str]:
        lang = lang or self.language
        return {k: v(lang) for k, v in (self.group.levels.items() if self.group else [])}

    @cached_property
    def codebook_table(self) -> pd.DataFrame:
        return load_codebook(self.study_dir / self.codebook if not os.path.isabs(self.codebook)
                             else Path(self.codebook), self)


def _format_pydantic_error(source: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (a typo?)"
    elif first["type"] == "missing":
        msg = "required key is missing"
    more = f" (+{len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    value = first.get("input")
    shown = "" if first["type"] in ("missing",) or isinstance(value, dict | list) else f"; got {value!r}"
    return f"{source}: key {loc}: {msg}{shown}{more}"


def load_study(path: str | os.PathLike | None = None, **overrides: Any) -> StudyConfig:
    """Load and validate a study configuration.

    Parameters
    ----------
    path
        The study YAML (default ``studies/demo/study.yaml``). Must lie inside the project.
    **overrides
        Top-level or dotted keys to override (e.g. ``language="lt"``, ``**{"analysis.alpha": 0.01}``);
        values are plain data, never evaluated; ``None`` values are ignored (keep the config's value).

    Raises
    ------
    ConfigError
        One line naming the file and the key and what was expected.
    """
    source = paths.inside_project(path or paths.DEFAULT_STUDY, what="study config")
    if not source.is_file():
        raise ConfigError(f"{source}: study config not found")
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}:{where} is not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level")
    for key, value in overrides.items():
        if value is None:  # a notebook parameter left at None means "as in the config"
            continue
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_pydantic_error(source, e)) from None
    cfg = cfg.model_copy(update={"source": source})
    return cfg


def _bool(value: Any, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n", "", "nan"):
        return False
    raise ConfigError(f"{where}: expected true/false, got {value!r}")


def load_codebook(path: Path, cfg: StudyConfig | None = None) -> pd.DataFrame:
    """Read and validate the codebook CSV (one row per survey variable).

    Columns: ``variable, type, stage, factor, latent, scale_min, scale_max, reverse, label_en, label_lt``.
    ``type`` is one of id, group, importance, performance, outcome, profile, comment. Rating items
    (importance, performance, outcome) need a scale; importance and performance items need a ``factor``
    from the config's catalogue. ``latent`` is the hypothesised EFA factor (may be empty). Labels are what
    reports show after recoding, so a reverse-keyed item is labelled by its positive pole (e.g. "Accuracy of
    documents (asked negatively; reverse-scored)"), not by the negative questionnaire wording.
    """
    path = paths.inside_project(path, what="codebook")
    if not path.is_file():
        raise ConfigError(f"{path}: codebook not found")
    cb = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in CODEBOOK_COLUMNS if c not in cb.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(CODEBOOK_COLUMNS)})")
    extra = [c for c in cb.columns if c not in CODEBOOK_COLUMNS]
    if extra:
        raise ConfigError(f"{path}: unknown column(s) {', '.join(extra)} (expected {', '.join(CODEBOOK_COLUMNS)})")
    factor_codes = set(cfg.factors["factor"]) if cfg is not None else None
    stage_codes = {s.code for s in cfg.stages} if cfg is not None else None
    seen: set[str] = set()
    rows = []
    for i, r in cb.iterrows():
        line = i + 2  # header is line 1
        where = f"{path}, line {line}"
        var = r["variable"].strip()
        if not var:
            raise ConfigError(f"{where}: empty variable name")
        if var in seen:
            raise ConfigError(f"{where}: variable {var!r} is listed twice")
        seen.add(var)
        kind = r["type"].strip()
        if kind not in ITEM_TYPES:
            raise ConfigError(f"{where}: type {kind!r} of {var} is not one of {', '.join(ITEM_TYPES)}")
        factor = r["factor"].strip() or None
        stage = r["stage"].strip() or None
        if kind in ("importance", "performance"):
            if not factor:
                raise ConfigError(f"{where}: {kind} item {var} needs a factor code")
            if factor_codes is not None and factor not in factor_codes:
                raise ConfigError(f"{where}: factor {factor!r} of {var} is not in the study config's stages")
        if stage and stage_codes is not None and stage not in stage_codes:
            raise ConfigError(f"{where}: stage {stage!r} of {var} is not one of {sorted(stage_codes)}")
        smin = smax = None
        if kind in ("importance", "performance", "outcome"):
            try:
                smin, smax = int(r["scale_min"]), int(r["scale_max"])
            except ValueError:
                raise ConfigError(f"{where}: {var} needs whole-number scale_min and scale_max, got "
                                  f"{r['scale_min']!r} and {r['scale_max']!r}") from None
            if smax <= smin:
                raise ConfigError(f"{where}: scale_max must exceed scale_min for {var}")
        rows.append({"variable": var, "type": kind, "stage": stage, "factor": factor,
                     "latent": r["latent"].strip() or None, "scale_min": smin, "scale_max": smax,
                     "reverse": _bool(r["reverse"], f"{where}, column reverse"),
                     "label_en": r["label_en"], "label_lt": r["label_lt"]})
    out = pd.DataFrame(rows)
    out["scale_min"] = out["scale_min"].astype("Int64")
    out["scale_max"] = out["scale_max"].astype("Int64")
    for kind in ("id",):
        if (out["type"] == kind).sum() != 1:
            raise ConfigError(f"{path}: expected exactly one variable of type {kind!r}")
    return out


def items(codebook: pd.DataFrame, item_type: str) -> list[str]:
    """Variables of one type in codebook order (e.g. ``items(cb, "performance")``)."""
    return codebook.loc[codebook["type"] == item_type, "variable"].tolist()
