"""The customer service quality supervision model: the study's end product (study design §7).

The model joins what the other analyses found, without recomputing them:

* the **expert weight** of every factor (``expert_weights``, written by the experts notebook);
* the clients' **importance** and **performance** means and their **gap** per client group and overall
  (``ipa_items``, written by the survey notebook);
* the respondent-level performance ratings (processed ``survey``) for the **stage quality index** and its
  bootstrap confidence interval.

From these it derives, per factor and group, a **priority index** and the **importance-performance
quadrant**; per stage and group a **quality index** on 0-100; a ranked list of **improvement areas**; the
**KPI catalogue** that supervises every stage; and a **sensitivity** analysis of the priorities over the
expert weighting methods.

Formulas (all closed forms except the bootstrap)
-------------------------------------------------
Weights
    ``w_j`` is the expert weight of factor ``j`` renormalised over all factors (``sum_j w_j = 1``);
    within stage ``s`` it is renormalised again, ``w_j^(s) = w_j / sum_{k in s} w_k``. A study without an
    expert panel uses equal weights ``w_j = 1/J`` (the notebook says so).
Gap
    ``G_jg = I_jg - P_jg``: mean importance minus mean performance of factor ``j`` in group ``g`` (Martilla
    & James, 1977). Positive = performance falls short of what clients consider important.
Priority index
    ``PI_jg = w_j * max(G_jg, 0)`` (the raw, *weighted gap*; ``priority_raw``), and
    ``PI*_jg = PI_jg / max_k PI_kg`` normalised to a maximum of 1 within each group (``priority``).
    Weighting the gap by importance follows the weighted SERVQUAL score of Parasuraman, Zeithaml & Berry
    (1988), here with the expert weights as the importance weights. Only shortfalls count: a factor that
    clients rate above its importance has nothing to improve. When a study has no importance items the
    gap is replaced by the *shortfall* from the best rating, ``max_P - P_jg`` (``priority_basis`` says which).
Quadrant (Martilla & James, 1977)
    crosshairs ``(x_I, x_P)`` either at the grand means of the factor means within the group
    (``crosshair="mean"``, data-centred) or at the scale midpoints (``crosshair="midpoint"``, scale-centred;
    Bacon, 2003, compares the two). ``I >= x_I`` counts as high importance, ``P >= x_P`` as high performance:
    high I, low P = *concentrate here*; high I, high P = *keep up the good work*; low I, low P = *low
    priority*; low I, high P = *possible overkill*.
Stage quality index
    every performance rating is rescaled to 0-100, ``y_ij = (x_ij - min_j) / (max_j - min_j) * 100``
    (the same as rescaling the weighted mean when all items share one scale); a respondent's stage score is
    the **available-item weighted mean** ``T_is = sum_{j in s, answered} w_j^(s) y_ij /
    sum_{j in s, answered} w_j^(s)``, computed when the respondent answered at least ``min_answered`` (share)
    of the stage's factors, otherwise missing; the stage index of a group is the mean of its respondents'
    stage scores. ``stage = "all"`` is the same over all factors with the overall weights. The confidence
    interval is the percentile bootstrap (Efron & Tibshirani, 1993, ch. 13) over respondents, resampled
    within each group (and over all respondents for ``all``), with the same resamples for every stage.

References
----------
Bacon, D. R. (2003). A comparison of approaches to importance-performance analysis. *International
Journal of Market Research*, 45(1), 55-71.
Efron, B., & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*. Chapman & Hall.
Kendall, M. G. (1945). The treatment of ties in ranking problems. *Biometrika*, 33(3), 239-251.
Martilla, J. A., & James, J. C. (1977). Importance-performance analysis. *Journal of Marketing*, 41(1), 77-79.
Parasuraman, A., Zeithaml, V. A., & Berry, L. L. (1988). SERVQUAL: A multiple-item scale for measuring
consumer perceptions of service quality. *Journal of Retailing*, 64(1), 12-40.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from . import i18n
from .config import StudyConfig, items
from .errors import AnalysisError, DataError
from .io import atomic_path, make_xlsx_reproducible, neutralise_formulas, read_table, write_json, write_table

__all__ = [
    "ALL",
    "QUADRANTS",
    "ModelInputs",
    "ModelSettings",
    "SupervisionModel",
    "agreement_view",
    "build_model",
    "equal_weights",
    "export_model",
    "factor_priorities",
    "improvement_areas",
    "ipa_quadrants",
    "kendall_tau",
    "kpi_catalogue",
    "kpi_view",
    "load_model_inputs",
    "model_results",
    "model_weights",
    "performance_means",
    "priority_index",
    "respondent_stage_scores",
    "stage_quality_index",
    "top_n_overlap",
    "weight_sensitivity",
]

ALL = "all"
"""The group label of the whole sample (as in the ``ipa_items`` contract)."""

QUADRANTS = ("concentrate_here", "keep_up_good_work", "low_priority", "possible_overkill")
"""Quadrant codes of Martilla & James (1977); labels come from ``locales/model.yaml``."""

WEIGHT_METHODS = ("rank_sum", "mean_score", "rank_order_centroid")
WORKBOOK_SHEETS = ("README", "factors", "stage_index", "improvement_areas", "kpis", "sensitivity", "ipa")
_MAX_BOOT_CELLS = 4_000_000  # bootstrap chunk size (resamples x respondents) to keep memory flat


# --------------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSettings:
    """The choices behind one model run (all from the study config unless overridden)."""

    weight_method: str
    competence_weighted: bool
    crosshair: Literal["mean", "midpoint"]
    n_boot: int
    seed: int
    top_n: int
    alpha: float
    min_answered: float = 0.5


@dataclass(frozen=True)
class ModelInputs:
    """Processed tables the model reads (``None`` = the table does not exist for this study)."""

    survey: pd.DataFrame | None
    expert_weights: pd.DataFrame | None = None
    expert_agreement: pd.DataFrame | None = None
    factor_map: pd.DataFrame | None = None
    ipa_items: pd.DataFrame | None = None
    ipa_stages: pd.DataFrame | None = None
    item_comparison: pd.DataFrame | None = None
    kpi_status: pd.DataFrame | None = None


@dataclass(frozen=True)
class SupervisionModel:
    """All tables of the supervision model (tidy DataFrames; see each builder for the columns)."""

    settings: ModelSettings
    weights: pd.DataFrame
    factors: pd.DataFrame
    crosshairs: pd.DataFrame
    stage_index: pd.DataFrame
    improvement_areas: pd.DataFrame
    kpis: pd.DataFrame
    sensitivity: pd.DataFrame
    sensitivity_ranks: pd.DataFrame
    agreement: pd.DataFrame | None
    structure: pd.DataFrame | None
    stage_gaps: pd.DataFrame | None
    groups: tuple[str, ...]
    equal_weights: bool
    performance_only: bool
    kpi_status_available: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    stage_labels: dict[str, str] = field(default_factory=dict)
    group_labels: dict[str, str] = field(default_factory=dict)
    all_stages_label: str = ALL

    @property
    def ipa(self) -> pd.DataFrame:
        """Importance, performance, crosshairs and quadrant per factor and group (the IPA sheet)."""
        cols = ["stage", "factor", "label", "group", "importance", "performance", "importance_crosshair",
                "performance_crosshair", "quadrant", "quadrant_label"]
        return self.factors[cols].copy()

    def top_priorities(self, n: int | None = None) -> pd.DataFrame:
        """The first ``n`` improvement areas (default ``settings.top_n``)."""
        return self.improvement_areas.head(self.settings.top_n if n is None else n).reset_index(drop=True)

    @property
    def top_factors(self) -> list[str]:
        """Codes of the top ``settings.top_n`` improvement areas (best first)."""
        return self.top_priorities()["factor"].tolist()

    @property
    def stage_labels_with_all(self) -> dict[str, str]:
        """Stage display names plus the ``all`` row of the stage index."""
        return {**self.stage_labels, ALL: self.all_stages_label}

    def by_group(self, value: str) -> pd.DataFrame:
        """Wide table: one row per factor, one column per group (display names) holding ``value``.

        ``value`` is a column of :attr:`factors` (e.g. ``gap``, ``priority``, ``quadrant_label``).
        """
        wide = self.factors.pivot(index="factor", columns="group", values=value)
        groups = [g for g in self.groups if g in wide.columns]
        wide = wide.reindex(index=self.weights["factor"], columns=groups)
        wide.columns = [self.group_labels.get(g, g) for g in groups]
        wide.columns.name = None
        front = self.weights[["stage", "factor", "label"]].set_index("factor")
        return front.join(wide).reset_index()[["stage", "factor", "label", *wide.columns]]


# --------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------
def _catalogue(factors: pd.DataFrame) -> pd.DataFrame:
    need = {"stage", "factor"}
    if not need <= set(factors.columns):
        raise AnalysisError(f"factor catalogue needs columns stage and factor, got {list(factors.columns)}")
    return factors[["stage", "factor"]].reset_index(drop=True)


def equal_weights(*, factors: pd.DataFrame) -> pd.DataFrame:
    """Equal weights ``w_j = 1/J`` (used when a study has no expert panel).

    Parameters
    ----------
    factors
        The factor catalogue (``cfg.factors``): columns ``stage``, ``factor``.

    Returns
    -------
    DataFrame
        ``stage``, ``factor``, ``weight`` (sums to 1), ``weight_stage`` (sums to 1 within each stage),
        ``ci_low``, ``ci_high`` (missing: equal weights carry no uncertainty).
    """
    out = _catalogue(factors)
    out["weight"] = 1.0 / len(out)
    out["weight_stage"] = 1.0 / out.groupby("stage", sort=False)["factor"].transform("size")
    out["ci_low"] = np.nan
    out["ci_high"] = np.nan
    return out


def model_weights(*, expert_weights: pd.DataFrame, factors: pd.DataFrame, method: str,
                  competence_weighted: bool) -> pd.DataFrame:
    """Select one weighting method from ``expert_weights`` and renormalise it overall and within stages.

    Parameters
    ----------
    expert_weights
        The experts notebook's table: ``stage``, ``factor``, ``method``, ``competence_weighted``,
        ``weight`` (and optionally ``ci_low``, ``ci_high``, ``mean_rank``).
    factors
        The factor catalogue (``cfg.factors``); every factor must have a weight.
    method
        ``rank_sum``, ``mean_score`` or ``rank_order_centroid``.
    competence_weighted
        Use the competence-weighted variant.

    Returns
    -------
    DataFrame
        One row per factor in catalogue order: ``stage``, ``factor``, ``weight`` = ``w_j / sum_k w_k``,
        ``weight_stage`` = ``w_j / sum_{k in stage} w_k``, ``ci_low``, ``ci_high`` (rescaled by the same
        factor as ``weight``).

    Raises
    ------
    AnalysisError
        When the method is absent, a factor has no weight or a weight is negative or missing.
    """
    need = {"factor", "method", "competence_weighted", "weight"}
    missing_cols = sorted(need - set(expert_weights.columns))
    if missing_cols:
        raise AnalysisError(f"expert_weights: missing column(s) {', '.join(missing_cols)} "
                            f"(expected {', '.join(sorted(need))})")
    cat = _catalogue(factors)
    flag = expert_weights["competence_weighted"].astype(bool)
    chosen = expert_weights[(expert_weights["method"] == method) & (flag == bool(competence_weighted))]
    if chosen.empty:
        have = sorted({(str(m), bool(c)) for m, c in zip(expert_weights["method"], flag, strict=True)})
        raise AnalysisError(f"expert_weights: no weights for method {method!r} with competence_weighted="
                            f"{bool(competence_weighted)} (available: {have})")
    if chosen["factor"].duplicated().any():
        dup = sorted(chosen.loc[chosen["factor"].duplicated(), "factor"].astype(str))
        raise AnalysisError(f"expert_weights: factor(s) {', '.join(dup)} listed twice for method {method!r}")
    merged = cat.merge(chosen.drop(columns=["stage"], errors="ignore"), on="factor", how="left")
    absent = merged.loc[merged["weight"].isna(), "factor"].tolist()
    if absent:
        raise AnalysisError(f"expert_weights: no {method!r} weight for factor(s) {', '.join(absent)} "
                            "(expected one weight per factor of the study config)")
    weight = merged["weight"].to_numpy(dtype=float)
    if (weight < 0).any() or weight.sum() <= 0:
        bad = merged.loc[weight < 0, "factor"].tolist()
        raise AnalysisError(f"expert_weights: weights must be non-negative with a positive sum; "
                            f"negative for {bad or 'none'}, sum {weight.sum():g}")
    total = weight.sum()
    out = cat.copy()
    out["weight"] = weight / total
    out["weight_stage"] = weight / merged.groupby("stage", sort=False)["weight"].transform("sum").to_numpy(float)
    for col in ("ci_low", "ci_high"):
        out[col] = merged[col].to_numpy(dtype=float) / total if col in merged else np.nan
    return out


# --------------------------------------------------------------------------------------------------
# Factor level: gap, priority, quadrant
# --------------------------------------------------------------------------------------------------
def priority_index(*, weight: Any, deficit: Any) -> np.ndarray:
    """Raw priority index ``PI = w * max(deficit, 0)`` (the weighted gap).

    Parameters
    ----------
    weight
        Expert weights ``w_j`` (array-like, non-negative).
    deficit
        Gap ``I - P`` (or shortfall ``max - P``) in scale points; missing stays missing.

    Returns
    -------
    ndarray
        ``w_j * max(G_j, 0)`` in weighted scale points.

    References
    ----------
    Parasuraman, Zeithaml & Berry (1988), weighted SERVQUAL score; Martilla & James (1977), the gap.
    """
    w = np.asarray(weight, dtype=float)
    d = np.asarray(deficit, dtype=float)
    return w * np.where(np.isnan(d), np.nan, np.maximum(d, 0.0))


def _normalise_max(values: np.ndarray) -> np.ndarray:
    top = np.nanmax(values) if np.isfinite(values).any() else np.nan
    if not np.isfinite(top) or top <= 0:
        return np.where(np.isnan(values), np.nan, 0.0)
    return values / top


def ipa_quadrants(*, ipa: pd.DataFrame, crosshair: Literal["mean", "midpoint"],
                  importance_midpoint: float, performance_midpoint: float) -> pd.DataFrame:
    """Martilla & James (1977) quadrant of every factor within each group.

    Parameters
    ----------
    ipa
        ``group``, ``factor``, ``importance``, ``performance`` (means on the rating scales).
    crosshair
        ``"mean"``: crosshairs at the grand means of the factor means within the group (data-centred);
        ``"midpoint"``: at the scale midpoints (scale-centred; Bacon, 2003).
    importance_midpoint, performance_midpoint
        ``(min + max) / 2`` of the importance and performance scales (used with ``"midpoint"``).

    Returns
    -------
    DataFrame
        ``ipa`` plus ``importance_crosshair``, ``performance_crosshair`` and ``quadrant`` (one of
        :data:`QUADRANTS`; ``I >= x_I`` is high importance, ``P >= x_P`` high performance).
    """
    if crosshair not in ("mean", "midpoint"):
        raise AnalysisError(f"crosshair must be 'mean' or 'midpoint', got {crosshair!r}")
    out = ipa.copy()
    if crosshair == "mean":
        out["importance_crosshair"] = out.groupby("group", sort=False)["importance"].transform("mean")
        out["performance_crosshair"] = out.groupby("group", sort=False)["performance"].transform("mean")
    else:
        out["importance_crosshair"] = float(importance_midpoint)
        out["performance_crosshair"] = float(performance_midpoint)
    imp = out["importance"].to_numpy(dtype=float)
    perf = out["performance"].to_numpy(dtype=float)
    high_i = imp >= out["importance_crosshair"].to_numpy(dtype=float)
    high_p = perf >= out["performance_crosshair"].to_numpy(dtype=float)
    quadrant = np.select([high_i & ~high_p, high_i & high_p, ~high_i & ~high_p],
                         ["concentrate_here", "keep_up_good_work", "low_priority"], "possible_overkill")
    known = ~(np.isnan(imp) | np.isnan(perf))
    out["quadrant"] = pd.Series(np.where(known, quadrant, None), index=out.index, dtype="string")
    return out


def performance_means(*, survey: pd.DataFrame, codebook: pd.DataFrame, group_column: str | None,
                      levels: list[str]) -> pd.DataFrame:
    """Mean importance and performance per factor and group straight from the survey.

    Only used when the survey notebook's ``ipa_items`` table is absent (a study without importance items
    may not write it). Means are over the respondents who answered (pairwise); a factor with several
    items of one type averages the item means.

    Returns
    -------
    DataFrame
        ``stage``, ``factor``, ``group`` (each level and ``all``), ``n``, ``importance``, ``performance``,
        ``gap`` (``importance - performance``; missing without importance items).
    """
    rows = []
    groups = [(g, survey[group_column].astype("string") == g) for g in levels] if group_column else []
    groups.append((ALL, pd.Series(True, index=survey.index)))
    factor_stage = codebook.dropna(subset=["factor"]).drop_duplicates("factor").set_index("factor")["stage"]
    for g, mask in groups:
        sub = survey.loc[mask.fillna(False).to_numpy(bool)]
        for factor, stage in factor_stage.items():
            rec = {"stage": stage, "factor": factor, "group": g, "n": int(len(sub))}
            for kind in ("importance", "performance"):
                cols = codebook.loc[(codebook["type"] == kind) & (codebook["factor"] == factor), "variable"]
                cols = [c for c in cols if c in sub.columns]
                rec[kind] = (float(np.mean([sub[c].astype("Float64").mean() for c in cols]))
                             if cols and len(sub) else np.nan)
            rec["gap"] = rec["importance"] - rec["performance"]
            rows.append(rec)
    return pd.DataFrame(rows)


def factor_priorities(*, weights: pd.DataFrame, ipa: pd.DataFrame, groups: list[str],
                      crosshair: Literal["mean", "midpoint"], importance_scale: tuple[float, float],
                      performance_scale: tuple[float, float]) -> pd.DataFrame:
    """The factor table of the model: weight, importance, performance, gap, priority and quadrant.

    Parameters
    ----------
    weights
        Output of :func:`model_weights` or :func:`equal_weights`.
    ipa
        ``ipa_items``: ``stage``, ``factor``, ``group``, ``importance``, ``performance`` and optionally
        ``n``, ``gap``, ``gap_p``, ``gap_p_adj``, ``gap_effect``. Rows of other factors (e.g. stage-level gaps) are ignored.
    groups
        Groups in display order (the client-group levels, then ``all``); each must be present.
    crosshair
        IPA crosshairs, see :func:`ipa_quadrants`.
    importance_scale, performance_scale
        ``(min, max)`` of the rating scales.

    Returns
    -------
    DataFrame
        One row per group x factor (groups in the given order, factors in catalogue order): ``stage``,
        ``factor``, ``group``, ``n``, ``weight``, ``weight_stage``, ``importance``, ``performance``,
        ``gap`` (``I - P``), ``gap_p``, ``gap_p_adj`` (paired test of the gap as written by the survey
        notebook, missing otherwise), ``gap_effect``, ``deficit`` (the gap, or ``max_P - P`` without
        importance), ``priority_basis`` (``gap``/``shortfall``), ``priority_raw`` (``w * max(deficit, 0)``),
        ``priority`` (normalised to max 1 within the group), ``rank`` (1 = highest priority in the group;
        ties broken by the larger deficit, then catalogue order), ``importance_crosshair``,
        ``performance_crosshair``, ``quadrant`` (missing without importance).
    """
    need = {"factor", "group", "performance"}
    missing_cols = sorted(need - set(ipa.columns))
    if missing_cols:
        raise AnalysisError(f"ipa_items: missing column(s) {', '.join(missing_cols)} "
                            "(expected stage, factor, group, n, importance, performance, gap, ...)")
    table = ipa.copy()
    table["group"] = table["group"].astype(str)
    table = table[table["factor"].isin(weights["factor"])]
    absent = [g for g in groups if g not in set(table["group"])]
    if absent:
        raise AnalysisError(f"ipa_items: no rows for group(s) {', '.join(absent)} "
                            f"(expected groups {', '.join(groups)})")
    table = table[table["group"].isin(groups)]
    if table.duplicated(["group", "factor"]).any():
        raise AnalysisError("ipa_items: a factor appears twice within one group (expected one row per "
                            "group x factor)")
    grid = pd.MultiIndex.from_product([groups, weights["factor"]], names=["group", "factor"]).to_frame(index=False)
    out = grid.merge(weights, on="factor", how="left")
    keep = [c for c in ("n", "importance", "performance", "gap", "gap_p", "gap_p_adj", "gap_effect")
            if c in table.columns]
    out = out.merge(table[["group", "factor", *keep]], on=["group", "factor"], how="left")
    for col in ("n", "importance", "gap", "gap_p", "gap_p_adj", "gap_effect"):
        if col not in out:
            out[col] = np.nan
    for col in ("importance", "performance", "gap", "gap_p", "gap_p_adj", "gap_effect"):
        out[col] = out[col].astype("Float64").astype(float)
    no_perf = out.loc[out["performance"].isna(), ["group", "factor"]]
    if not no_perf.empty:
        first = no_perf.iloc[0]
        raise AnalysisError(f"ipa_items: performance of factor {first['factor']} is missing in group "
                            f"{first['group']} ({len(no_perf)} such row(s); every factor needs ratings)")
    has_importance = bool(out["importance"].notna().any())
    if has_importance:
        gap_missing = out["gap"].isna()
        out.loc[gap_missing, "gap"] = out.loc[gap_missing, "importance"] - out.loc[gap_missing, "performance"]
        out["deficit"] = out["gap"]
        out["priority_basis"] = "gap"
    else:
        out["deficit"] = float(performance_scale[1]) - out["performance"]
        out["priority_basis"] = "shortfall"
    out["priority_raw"] = priority_index(weight=out["weight"], deficit=out["deficit"])
    out["priority"] = out.groupby("group", sort=False)["priority_raw"].transform(
        lambda s: pd.Series(_normalise_max(s.to_numpy(float)), index=s.index))
    out["_group"] = out["group"].map({g: i for i, g in enumerate(groups)})
    out["_order"] = out["factor"].map({f: i for i, f in enumerate(weights["factor"])})
    ranked = out.sort_values(["_group", "priority_raw", "deficit", "_order"],
                             ascending=[True, False, False, True], na_position="last")
    out["rank"] = ranked.groupby("_group", sort=False).cumcount().reindex(out.index) + 1
    out = out.sort_values(["_group", "_order"]).drop(columns=["_group", "_order"]).reset_index(drop=True)
    if has_importance:
        midpoint_i = (importance_scale[0] + importance_scale[1]) / 2
        midpoint_p = (performance_scale[0] + performance_scale[1]) / 2
        out = ipa_quadrants(ipa=out, crosshair=crosshair, importance_midpoint=midpoint_i,
                            performance_midpoint=midpoint_p)
    else:
        out["importance_crosshair"] = np.nan
        out["performance_crosshair"] = np.nan
        out["quadrant"] = pd.Series([None] * len(out), dtype="string")
    out["n"] = out["n"].astype("Float64").round().astype("Int64")
    cols = ["stage", "factor", "group", "n", "weight", "weight_stage", "importance", "performance", "gap",
            "gap_p", "gap_p_adj", "gap_effect", "deficit", "priority_basis", "priority_raw", "priority", "rank",
            "importance_crosshair", "performance_crosshair", "quadrant"]
    return out[cols]


# --------------------------------------------------------------------------------------------------
# Stage quality index
# --------------------------------------------------------------------------------------------------
def _performance_matrix(survey: pd.DataFrame, codebook: pd.DataFrame,
                        factors: list[str]) -> np.ndarray:
    """Respondent x factor performance rescaled to 0-100 (mean of a factor's items; NaN = no answer)."""
    perf = codebook[codebook["type"] == "performance"]
    out = np.full((len(survey), len(factors)), np.nan)
    for j, factor in enumerate(factors):
        rows = perf[perf["factor"] == factor]
        if rows.empty:
            raise AnalysisError(f"codebook: factor {factor} has no performance item (expected at least one "
                                "row of type performance with this factor)")
        scaled = []
        for var, lo, hi in zip(rows["variable"], rows["scale_min"], rows["scale_max"], strict=True):
            if var not in survey.columns:
                raise DataError("processed survey", "performance item missing from the table", column=var,
                                expected="every performance item of the codebook")
            x = survey[var].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            outside = ~np.isnan(x) & ((x < lo) | (x > hi))
            if outside.any():
                i = int(np.flatnonzero(outside)[0])
                raise DataError("processed survey", "rating outside its scale", row=i + 1, column=var,
                                value=float(x[i]), expected=f"{lo}..{hi}")
            scaled.append((x - float(lo)) / float(hi - lo) * 100.0)
        stacked = np.vstack(scaled)
        with np.errstate(invalid="ignore"):
            count = (~np.isnan(stacked)).sum(axis=0)
            out[:, j] = np.where(count > 0, np.nansum(stacked, axis=0) / np.maximum(count, 1), np.nan)
    return out


def respondent_stage_scores(*, scores: np.ndarray, weights: np.ndarray, stage_of: np.ndarray,
                            stages: list[str], min_answered: float = 0.5) -> np.ndarray:
    """Available-item weighted mean per respondent and stage (plus the overall score).

    Parameters
    ----------
    scores
        Respondents x factors, performance rescaled to 0-100, NaN = not answered.
    weights
        Factor weights (any positive scale; renormalised over the answered factors of each stage).
    stage_of
        Stage code of every factor column.
    stages
        Stage codes in output order; a last column ``all`` (every factor) is appended.
    min_answered
        Minimum share of a stage's factors a respondent must have answered (``0 < min_answered <= 1``);
        below it the score is NaN.

    Returns
    -------
    ndarray
        Respondents x (stages + 1): ``sum_answered w_j y_ij / sum_answered w_j``.
    """
    if not 0 < min_answered <= 1:
        raise AnalysisError(f"min_answered must be in (0, 1], got {min_answered}")
    y = np.asarray(scores, dtype=float)
    w = np.asarray(weights, dtype=float)
    answered = ~np.isnan(y)
    filled = np.where(answered, y, 0.0)
    out = np.full((y.shape[0], len(stages) + 1), np.nan)
    for k, mask in enumerate([np.asarray(stage_of) == s for s in stages] + [np.ones(y.shape[1], bool)]):
        num = filled[:, mask] @ w[mask]
        den = answered[:, mask] @ w[mask]
        share = answered[:, mask].sum(axis=1) / max(int(mask.sum()), 1)
        ok = (share >= min_answered - 1e-12) & (den > 0)
        out[ok, k] = num[ok] / den[ok]
    return out


def _bootstrap_means(values: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` x columns matrix of column means over respondents resampled with replacement.

    NaN entries (respondents without a score) are left out of each resample's mean.
    """
    n = values.shape[0]
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    chunk = max(1, _MAX_BOOT_CELLS // max(n * values.shape[1], 1))
    parts = []
    for start in range(0, n_boot, chunk):  # chunks of resamples, each fully vectorised
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        sums = filled[idx].sum(axis=1)
        counts = valid[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            parts.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
    return np.vstack(parts) if parts else np.empty((0, values.shape[1]))


def stage_quality_index(*, survey: pd.DataFrame, codebook: pd.DataFrame, weights: pd.DataFrame,
                        group_column: str | None, levels: list[str], n_boot: int, seed: int,
                        alpha: float = 0.05, min_answered: float = 0.5) -> pd.DataFrame:
    """Stage quality index (0-100) per group with percentile bootstrap confidence intervals.

    Parameters
    ----------
    survey
        The processed survey (reverse-keyed items already recoded, missing codes as NA).
    codebook
        ``cfg.codebook_table`` (performance items with ``factor`` and ``scale_min``/``scale_max``).
    weights
        Output of :func:`model_weights` / :func:`equal_weights` (``stage``, ``factor``, ``weight``).
    group_column, levels
        Client-group column and its levels (display order); ``None`` = whole sample only.
    n_boot
        Bootstrap resamples (0 = no interval).
    seed
        Seed of ``numpy.random.default_rng``; levels are resampled in order, then ``all``.
    alpha
        ``1 - alpha`` interval: the ``alpha/2`` and ``1 - alpha/2`` quantiles of the bootstrap means
        (``numpy.quantile``, linear interpolation = R ``quantile(type = 7)``).
    min_answered
        See :func:`respondent_stage_scores`.

    Returns
    -------
    DataFrame
        ``stage`` (each stage code, then ``all``), ``group``, ``n`` (respondents with a score),
        ``index``, ``ci_low``, ``ci_high`` (index points, 0-100), ``se_boot`` (bootstrap SD).
    """
    if n_boot < 0:
        raise AnalysisError(f"n_boot must be >= 0, got {n_boot}")
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be in (0, 1), got {alpha}")
    factors = weights["factor"].tolist()
    stages = list(dict.fromkeys(weights["stage"]))
    scores = _performance_matrix(survey, codebook, factors)
    stage_scores = respondent_stage_scores(scores=scores, weights=weights["weight"].to_numpy(float),
                                           stage_of=weights["stage"].to_numpy(), stages=stages,
                                           min_answered=min_answered)
    if group_column is not None and group_column not in survey.columns:
        raise DataError("processed survey", "group column missing", column=group_column,
                        expected="the group column named in the study config")
    group_values = (survey[group_column].astype("string").to_numpy(dtype=object, na_value=None)
                    if group_column else np.full(len(survey), None, dtype=object))
    rng = np.random.default_rng(seed)
    rows = []
    for group in [*levels, ALL]:
        mask = np.ones(len(survey), bool) if group == ALL else (group_values == group)
        values = stage_scores[mask]
        n = (~np.isnan(values)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            point = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), np.nan)
        if n_boot > 0 and len(values) > 0:
            boot = _bootstrap_means(values, n_boot=n_boot, rng=rng)
            low, high = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
            se = np.nanstd(boot, axis=0, ddof=1) if n_boot > 1 else np.full(values.shape[1], np.nan)
        else:
            low = high = se = np.full(values.shape[1], np.nan)
        for k, stage in enumerate([*stages, ALL]):
            rows.append({"stage": stage, "group": group, "n": int(n[k]), "index": point[k],
                         "ci_low": low[k], "ci_high": high[k], "se_boot": se[k]})
    out = pd.DataFrame(rows)
    order = {s: i for i, s in enumerate([*stages, ALL])}
    out = out.sort_values("stage", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    out["n"] = out["n"].astype("Int64")
    return out


# --------------------------------------------------------------------------------------------------
# Improvement areas
# --------------------------------------------------------------------------------------------------
def improvement_areas(*, factors: pd.DataFrame, levels: list[str],
                      item_comparison: pd.DataFrame | None = None) -> pd.DataFrame:
    """Factors that need improvement, ranked, with the client group most affected.

    A factor is an improvement area when its deficit (gap, or shortfall without importance items) is
    positive overall or in at least one group. Order: overall priority (``priority_raw`` of ``all``),
    then the largest group priority, then the overall deficit, then catalogue order.

    Parameters
    ----------
    factors
        Output of :func:`factor_priorities` (groups = ``levels`` + ``all``).
    levels
        Client-group levels; the group most affected is the level with the largest positive deficit.
    item_comparison
        The survey notebook's group comparison of the rating items (``type``, ``factor``, ``p_adj``); when
        given, ``group_difference_p_adj`` is the adjusted p of the factor's performance item (the first
        one when a factor has several), i.e. whether the client groups differ in performance at all.

    Returns
    -------
    DataFrame
        ``rank``, ``stage``, ``factor``, ``weight``, overall ``importance``, ``performance``, ``gap``,
        ``gap_p_adj`` (multiplicity-adjusted p of the gap), ``deficit``, ``priority_raw``, ``priority``,
        ``quadrant``, and for the most affected group ``group``, ``group_n``, ``group_importance``,
        ``group_performance``, ``group_gap``, ``group_gap_p_adj``,
        ``group_priority_raw``, ``group_priority``, ``group_quadrant`` (missing when no group has a positive
        deficit or the study has no groups), ``group_difference_p_adj``.
    """
    overall = factors[factors["group"] == ALL].set_index("factor")
    if overall.empty:
        raise AnalysisError("improvement_areas: the factor table has no 'all' rows")
    catalogue_order = {f: i for i, f in enumerate(overall.index)}
    by_group = factors[factors["group"].isin(levels) & (factors["deficit"] > 0)]
    best = (by_group.sort_values(["deficit", "priority_raw"], ascending=False, kind="stable")
            .drop_duplicates("factor").set_index("factor"))
    base_cols = ["stage", "weight", "importance", "performance", "gap", "gap_p_adj", "deficit", "priority_raw",
                 "priority", "quadrant"]
    out = overall[base_cols].copy()
    group_cols = {"group": "group", "n": "group_n", "importance": "group_importance",
                  "performance": "group_performance", "gap": "group_gap", "gap_p_adj": "group_gap_p_adj",
                  "priority_raw": "group_priority_raw", "priority": "group_priority",
                  "quadrant": "group_quadrant"}
    out = out.join(best[list(group_cols)].rename(columns=group_cols), how="left")
    keep = (out["deficit"] > 0) | out["group"].notna()
    out = out[keep.fillna(False).to_numpy(bool)].reset_index()
    out["_order"] = out["factor"].map(catalogue_order)
    out = out.sort_values(["priority_raw", "group_priority_raw", "deficit", "_order"],
                          ascending=[False, False, False, True], na_position="last").drop(columns="_order")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    cols = ["rank", "stage", "factor", "weight", "importance", "performance", "gap", "gap_p_adj", "deficit",
            "priority_raw", "priority", "quadrant", *group_cols.values()]
    out = out[cols].reset_index(drop=True)
    out["group"] = out["group"].astype("string")
    out["group_n"] = out["group_n"].astype("Int64")
    out["group_difference_p_adj"] = np.nan
    if item_comparison is not None and {"type", "factor", "p_adj"} <= set(item_comparison.columns):
        perf = item_comparison[item_comparison["type"].astype(str) == "performance"].drop_duplicates("factor")
        out["group_difference_p_adj"] = out["factor"].map(perf.set_index("factor")["p_adj"]).astype(float)
    return out


# --------------------------------------------------------------------------------------------------
# KPI catalogue
# --------------------------------------------------------------------------------------------------
def kpi_catalogue(*, cfg: StudyConfig, factors: pd.DataFrame, kpi_status: pd.DataFrame | None = None,
                  lang: str | None = None) -> pd.DataFrame:
    """The KPI catalogue per stage from the study config, linked to the model's factors.

    Parameters
    ----------
    cfg
        Study config (``cfg.kpis``).
    factors
        Output of :func:`factor_priorities`; the ``all`` rows give each linked factor's priority.
    kpi_status
        The monitoring notebook's ``kpi_status`` table (``stage``, ``kpi``, ``status``, ``mean``,
        ``target``, ``capability``) or ``None`` when monitoring has not run yet.
    lang
        Language of ``name`` and ``definition`` (default: the report language).

    Returns
    -------
    DataFrame
        ``stage``, ``kpi``, ``name``, ``definition``, ``kind``, ``unit``, ``target``, ``direction``
        (``max`` = target is an upper limit), ``source_columns``, ``factors`` (comma-separated codes),
        ``linked_priority`` (the highest overall ``priority`` among the linked factors), ``status``,
        ``current_mean``, ``capability`` (missing without ``kpi_status``).
    """
    lang = lang or cfg.language
    overall = factors[factors["group"] == ALL].set_index("factor")["priority"]
    rows = []
    for k in cfg.kpis:
        source = [c for c in (k.start, k.end, k.column, k.actual, k.planned) if c]
        linked = [overall.get(f, np.nan) for f in k.factors]
        rows.append({"stage": k.stage, "kpi": k.code, "name": k.name(lang), "definition": k.definition(lang),
                     "kind": k.kind, "unit": k.unit, "target": np.nan if k.target is None else float(k.target),
                     "direction": k.direction, "source_columns": ", ".join(source),
                     "factors": ", ".join(k.factors),
                     "linked_priority": float(np.nanmax(linked)) if np.isfinite(linked).any() else np.nan})
    cols = ["stage", "kpi", "name", "definition", "kind", "unit", "target", "direction", "source_columns",
            "factors", "linked_priority"]
    out = pd.DataFrame(rows, columns=cols)
    out["status"] = pd.Series([None] * len(out), dtype="string")
    out["current_mean"] = np.nan
    out["capability"] = np.nan
    if kpi_status is not None and not out.empty:
        need = {"kpi", "status"}
        if not need <= set(kpi_status.columns):
            raise AnalysisError(f"kpi_status: missing column(s) {sorted(need - set(kpi_status.columns))}")
        status = kpi_status.drop_duplicates("kpi").set_index("kpi")
        out["status"] = out["kpi"].map(status["status"]).astype("string")
        if "mean" in status:
            out["current_mean"] = out["kpi"].map(status["mean"]).astype(float)
        if "capability" in status:
            out["capability"] = out["kpi"].map(status["capability"]).astype(float)
    stage_order = {s.code: i for i, s in enumerate(cfg.stages)}
    return out.sort_values("stage", key=lambda s: s.map(stage_order), kind="stable").reset_index(drop=True)


def kpi_view(kpis: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """:func:`kpi_catalogue` for reading: ``unit`` and ``direction`` in words of the report language
    (``direction`` ``max`` -> "at most the target", ``min`` -> "at least the target"), and ``status``."""
    from .monitoring import status_label

    out = kpis.copy()
    out["status"] = pd.array([None if pd.isna(v) else status_label(str(v), lang) for v in out["status"]],
                             dtype="string")
    out["unit"] = [i18n.label("model", f"unit_{u}", lang) for u in out["unit"]]
    out["direction"] = [i18n.label("model", f"direction_{d}", lang) for d in out["direction"]]
    return out


def agreement_view(agreement: pd.DataFrame, *, lang: str = "en") -> pd.DataFrame:
    """The ``expert_agreement`` table for reading: ``scope`` ``overall`` named in the report language."""
    out = agreement.copy()
    out["scope"] = [i18n.label("model", "scope_overall", lang) if s == "overall" else s for s in out["scope"]]
    return out


# --------------------------------------------------------------------------------------------------
# Sensitivity of the priorities to the weighting method
# --------------------------------------------------------------------------------------------------
def kendall_tau(*, x: Any, y: Any) -> tuple[float, float]:
    """Kendall's tau-b between two rankings and its two-sided p-value (``scipy.stats.kendalltau``).

    tau-b = ``(P - Q) / sqrt((P + Q + T) (P + Q + U))`` with ``P`` concordant, ``Q`` discordant pairs and
    ``T``/``U`` pairs tied only in ``x``/``y`` (Kendall, 1945); it equals R ``cor(x, y, method =
    "kendall")``. Returns ``(nan, nan)`` when either ranking is constant (tau undefined).

    Validated against the scipy documentation example and R ``cor(..., method = "kendall")``
    (see ``tests/test_model.py``).
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise AnalysisError(f"kendall_tau: x and y must be 1-D and of equal length, got {a.shape} and {b.shape}")
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan, math.nan
    res = stats.kendalltau(a, b, variant="b")
    return float(res.statistic), float(res.pvalue)


def top_n_overlap(*, a: list[str], b: list[str], n: int) -> float:
    """Share of the first ``n`` entries of ranking ``a`` that are also among the first ``n`` of ``b``.

    ``|top_n(a) ∩ top_n(b)| / min(n, len(a))``; 1 = the same top-``n`` set (in any order).
    """
    if n < 1:
        raise AnalysisError(f"top_n must be at least 1, got {n}")
    m = min(n, len(a), len(b))
    if m == 0:
        return math.nan
    return len(set(a[:m]) & set(b[:m])) / m


def _ranked(factors: list[str], priority: np.ndarray, deficit: np.ndarray) -> list[str]:
    order = np.lexsort((np.arange(len(factors)), -np.nan_to_num(deficit, nan=-np.inf),
                        -np.nan_to_num(priority, nan=-np.inf)))
    return [factors[i] for i in order]


def weight_sensitivity(*, expert_weights: pd.DataFrame, factors: pd.DataFrame, catalogue: pd.DataFrame,
                       baseline: tuple[str, bool], top_n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the overall priority ranking changes with the weighting method and competence weighting.

    For every method x competence variant in ``expert_weights`` the overall priority ``w_j *
    max(deficit_j, 0)`` is recomputed with that variant's weights (the clients' gaps stay fixed) and
    compared with the baseline by Kendall's tau-b (ties, e.g. the zero priority of factors without a gap,
    handled as in Kendall, 1945) and by the top-``n`` overlap.

    Parameters
    ----------
    expert_weights
        The experts notebook's table (all methods x competence variants).
    factors
        Output of :func:`factor_priorities` (the ``all`` rows give the deficits).
    catalogue
        ``cfg.factors`` (stage, factor).
    baseline
        ``(method, competence_weighted)`` of the model.
    top_n
        Length of the top list compared.

    Returns
    -------
    (summary, ranks)
        ``summary``: ``method``, ``competence_weighted``, ``baseline`` (bool), ``tau_b``, ``p_tau``,
        ``top_n``, ``top_n_overlap`` (share), ``top_factors`` (comma-separated, best first).
        ``ranks``: ``method``, ``competence_weighted``, ``stage``, ``factor``, ``weight``, ``priority_raw``,
        ``rank``.
    """
    overall = factors[factors["group"] == ALL].set_index("factor")
    codes = catalogue["factor"].tolist()
    deficit = overall.loc[codes, "deficit"].to_numpy(float)
    flag = expert_weights["competence_weighted"].astype(bool)
    present = {(str(m), bool(c)) for m, c in zip(expert_weights["method"], flag, strict=True)}
    method_order = {m: i for i, m in enumerate(WEIGHT_METHODS)}
    variants = sorted(present, key=lambda v: (method_order.get(v[0], len(method_order)), v[0], v[1]))
    if (baseline[0], bool(baseline[1])) not in present:
        raise AnalysisError(f"weight_sensitivity: baseline {baseline} not in expert_weights (have {variants})")
    priorities, rankings, rank_rows = {}, {}, []
    for method, comp in variants:
        w = model_weights(expert_weights=expert_weights, factors=catalogue, method=method,
                          competence_weighted=comp)["weight"].to_numpy(float)
        pi = priority_index(weight=w, deficit=deficit)
        ranking = _ranked(codes, pi, deficit)
        priorities[(method, comp)], rankings[(method, comp)] = pi, ranking
        position = {f: i + 1 for i, f in enumerate(ranking)}
        rank_rows += [{"method": method, "competence_weighted": comp, "stage": s, "factor": f, "weight": w[j],
                       "priority_raw": pi[j], "rank": position[f]}
                      for j, (s, f) in enumerate(zip(catalogue["stage"], codes, strict=True))]
    base = (baseline[0], bool(baseline[1]))
    summary = []
    for v in variants:
        tau, p = kendall_tau(x=priorities[base], y=priorities[v])
        summary.append({"method": v[0], "competence_weighted": v[1], "baseline": v == base, "tau_b": tau,
                        "p_tau": p, "top_n": min(top_n, len(codes)),
                        "top_n_overlap": top_n_overlap(a=rankings[base], b=rankings[v], n=top_n),
                        "top_factors": ", ".join(rankings[v][:top_n])})
    ranks = pd.DataFrame(rank_rows)
    ranks["rank"] = ranks["rank"].astype("Int64")
    return pd.DataFrame(summary), ranks


# --------------------------------------------------------------------------------------------------
# Reading the inputs and building the model
# --------------------------------------------------------------------------------------------------
def _read_optional(cfg: StudyConfig, name: str) -> pd.DataFrame | None:
    path = cfg.paths.processed_table(name)
    return read_table(path) if path.is_file() else None


def load_model_inputs(cfg: StudyConfig) -> ModelInputs:
    """Read the processed tables the model needs (absent optional tables become ``None``).

    The processed survey comes from :func:`research.data.load_processed` (which also checks that the raw
    files did not change since); the analysis tables are read from ``data/processed/<study>/``.

    Raises
    ------
    DataError
        When the processed survey is missing (run the prepare notebook first) or out of date.
    """
    from .data import load_processed

    survey = load_processed(cfg).survey
    if survey is None:
        raise DataError(cfg.source or "study config", "the study has no client survey (data.survey)",
                        expected="a survey: the model rates every factor with the clients' performance ratings")
    return ModelInputs(
        survey=survey,
        expert_weights=_read_optional(cfg, "expert_weights"),
        expert_agreement=_read_optional(cfg, "expert_agreement"),
        factor_map=_read_optional(cfg, "factor_map"),
        ipa_items=_read_optional(cfg, "ipa_items"),
        ipa_stages=_read_optional(cfg, "ipa_stages"),
        item_comparison=_read_optional(cfg, "item_comparison"),
        # kpi_status is deliberately not read: monitoring runs after the model, so reading it would make
        # the model's results depend on whether an earlier run left the table behind. The monitoring
        # notebook feeds the status back (research.monitoring.show_model_link).
    )


def _settings(cfg: StudyConfig) -> ModelSettings:
    a = cfg.analysis
    return ModelSettings(weight_method=a.experts.weight_method, competence_weighted=a.experts.competence_weighted,
                         crosshair=a.model.crosshair, n_boot=a.model.n_boot, seed=a.seed, top_n=a.model.top_n,
                         alpha=a.alpha)


def _label_columns(df: pd.DataFrame, cfg: StudyConfig, lang: str) -> pd.DataFrame:
    """Add ``label`` (factor label) after ``factor`` and ``quadrant_label`` for display."""
    out = df.copy()
    labels = cfg.factors.set_index("factor")[f"label_{lang}"]
    if "factor" in out and "label" not in out:
        out.insert(out.columns.get_loc("factor") + 1, "label", out["factor"].map(labels).astype("string"))
    for col in ("quadrant", "group_quadrant"):
        if col in out:
            out[f"{col}_label"] = out[col].map(
                lambda q: None if q is None or q is pd.NA else i18n.label("model", str(q), lang)
            ).astype("string")
    return out


def build_model(cfg: StudyConfig, *, inputs: ModelInputs | None = None,
                settings: ModelSettings | None = None) -> SupervisionModel:
    """Assemble the supervision model from the processed outputs of the other notebooks.

    Parameters
    ----------
    cfg
        The study config (stages, factors, groups, scales, KPIs and the ``analysis`` choices).
    inputs
        Pre-loaded tables (default: :func:`load_model_inputs`).
    settings
        Overrides of the config's choices (default: from ``cfg.analysis``).

    Returns
    -------
    SupervisionModel
        ``equal_weights`` is True when the study has no ``expert_weights`` (equal weights used);
        ``performance_only`` when it has no importance ratings (no gaps, no IPA; priorities from the
        shortfall). ``notes`` lists catalogue keys (``locales/model.yaml``) the notebook shows.
    """
    inputs = inputs if inputs is not None else load_model_inputs(cfg)
    settings = settings or _settings(cfg)
    lang = cfg.language
    if inputs.survey is None:
        raise AnalysisError("build_model: the processed survey is required")
    catalogue = cfg.factors[["stage", "factor"]]
    codebook = cfg.codebook_table
    levels = list(cfg.group.levels) if cfg.group else []
    groups = [*levels, ALL]
    notes: list[str] = []

    equal = inputs.expert_weights is None or inputs.expert_weights.empty
    if equal:
        weights = equal_weights(factors=catalogue)
        notes.append("note_equal_weights")
    else:
        weights = model_weights(expert_weights=inputs.expert_weights, factors=catalogue,
                                method=settings.weight_method, competence_weighted=settings.competence_weighted)

    ipa = inputs.ipa_items
    if ipa is None:
        notes.append("note_ipa_from_survey")
        ipa = performance_means(survey=inputs.survey, codebook=codebook,
                                group_column=cfg.group.column if cfg.group else None, levels=levels)
    scale_p = cfg.scale_for("performance")
    # a study without importance items need not define an importance scale
    scale_i = cfg.scale_for("importance") if items(codebook, "importance") else scale_p
    factor_table = factor_priorities(weights=weights, ipa=ipa, groups=groups, crosshair=settings.crosshair,
                                     importance_scale=(scale_i.min, scale_i.max),
                                     performance_scale=(scale_p.min, scale_p.max))
    performance_only = not bool(factor_table["importance"].notna().any()) or not items(codebook, "importance")
    if performance_only:
        notes.append("note_performance_only")

    stage_index = stage_quality_index(survey=inputs.survey, codebook=codebook, weights=weights,
                                      group_column=cfg.group.column if cfg.group else None, levels=levels,
                                      n_boot=settings.n_boot, seed=settings.seed, alpha=settings.alpha,
                                      min_answered=settings.min_answered)
    areas = improvement_areas(factors=factor_table, levels=levels, item_comparison=inputs.item_comparison)
    kpis = kpi_catalogue(cfg=cfg, factors=factor_table, kpi_status=inputs.kpi_status, lang=lang)
    if not cfg.kpis:
        notes.append("note_no_kpis")
    elif inputs.kpi_status is None:
        notes.append("note_no_kpi_status")

    if equal:
        sensitivity = pd.DataFrame(columns=["method", "competence_weighted", "baseline", "tau_b", "p_tau",
                                            "top_n", "top_n_overlap", "top_factors"])
        sensitivity_ranks = pd.DataFrame(columns=["method", "competence_weighted", "stage", "factor", "weight",
                                                  "priority_raw", "rank"])
    else:
        sensitivity, sensitivity_ranks = weight_sensitivity(
            expert_weights=inputs.expert_weights, factors=factor_table, catalogue=catalogue,
            baseline=(settings.weight_method, settings.competence_weighted), top_n=settings.top_n)

    crosshairs = (factor_table.groupby("group", sort=False)[["importance_crosshair", "performance_crosshair"]]
                  .first().reset_index())
    crosshairs.insert(1, "crosshair", settings.crosshair)
    stage_labels = {s.code: s.label(lang) for s in cfg.stages}
    group_labels = {**cfg.group_labels(lang), ALL: i18n.label("model", "all", lang)}
    all_stages = i18n.label("model", "all_stages", lang)
    stage_index.insert(1, "stage_label", stage_index["stage"].map({**stage_labels, ALL: all_stages})
                       .astype("string"))
    group_names = {g: group_labels[g] for g in groups}
    stage_index.insert(stage_index.columns.get_loc("group") + 1, "group_label",
                       stage_index["group"].map(group_names).astype("string"))
    areas.insert(areas.columns.get_loc("group") + 1, "group_label", areas["group"].map(group_names).astype("string"))
    sensitivity.insert(1, "method_label", sensitivity["method"].map(
        lambda m: i18n.label("model", str(m), lang)).astype("string"))
    return SupervisionModel(
        settings=settings, weights=_label_columns(weights, cfg, lang),
        factors=_label_columns(factor_table, cfg, lang), crosshairs=crosshairs, stage_index=stage_index,
        improvement_areas=_label_columns(areas, cfg, lang), kpis=kpis, sensitivity=sensitivity,
        sensitivity_ranks=sensitivity_ranks, agreement=inputs.expert_agreement, structure=inputs.factor_map,
        stage_gaps=inputs.ipa_stages,
        groups=tuple(groups), equal_weights=equal, performance_only=performance_only,
        kpi_status_available=inputs.kpi_status is not None, notes=tuple(notes), stage_labels=stage_labels,
        group_labels={g: group_labels[g] for g in groups}, all_stages_label=all_stages)


# --------------------------------------------------------------------------------------------------
# Results and export
# --------------------------------------------------------------------------------------------------
def _records(df: pd.DataFrame, cols: list[str]) -> list[dict[str, Any]]:
    from .io import to_jsonable

    return to_jsonable(df[[c for c in cols if c in df.columns]])


def model_results(model: SupervisionModel) -> dict[str, Any]:
    """Key numbers for ``reports/<study>/results/model.json`` (keys documented in ``docs/results.md``).

    ``top_priorities``: the first ``top_n`` improvement areas (stage, factor, priority, gap, group,
    group_gap, quadrant); ``stage_index``: ``{stage: {group: {index, ci_low, ci_high, n}}}``;
    ``quadrants``: ``{group: {factor: quadrant}}`` (empty without importance ratings);
    ``sensitivity_tau``: ``{"<method>|competence=<bool>": tau_b}``; ``top_n_overlap`` likewise;
    plus the settings and flags.
    """
    idx: dict[str, dict[str, dict[str, Any]]] = {}
    for r in model.stage_index.itertuples(index=False):
        idx.setdefault(r.stage, {})[r.group] = {"index": r.index, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                                "n": None if pd.isna(r.n) else int(r.n)}
    quadrants: dict[str, dict[str, str]] = {}
    if not model.performance_only:
        for r in model.factors.itertuples(index=False):
            quadrants.setdefault(r.group, {})[r.factor] = None if pd.isna(r.quadrant) else str(r.quadrant)
    key = {(r.method, bool(r.competence_weighted)): f"{r.method}|competence={str(bool(r.competence_weighted)).lower()}"
           for r in model.sensitivity.itertuples(index=False)}
    s = model.settings
    return {
        "top_priorities": _records(model.top_priorities(), ["rank", "stage", "factor", "priority", "priority_raw",
                                                            "gap", "quadrant", "group", "group_gap"]),
        "stage_index": idx,
        "quadrants": quadrants,
        "sensitivity_tau": {key[(r.method, bool(r.competence_weighted))]: r.tau_b
                            for r in model.sensitivity.itertuples(index=False)},
        "top_n_overlap": {key[(r.method, bool(r.competence_weighted))]: r.top_n_overlap
                          for r in model.sensitivity.itertuples(index=False)},
        "n_improvement_areas": len(model.improvement_areas),
        "weight_method": s.weight_method, "competence_weighted": s.competence_weighted,
        "crosshair": s.crosshair, "n_boot": s.n_boot, "seed": s.seed, "top_n": s.top_n,
        "equal_weights": model.equal_weights, "performance_only": model.performance_only,
        "kpi_status_available": model.kpi_status_available, "n_kpis": len(model.kpis),
    }


def _sheets(model: SupervisionModel) -> dict[str, pd.DataFrame]:
    return {"factors": model.factors, "stage_index": model.stage_index,
            "improvement_areas": model.improvement_areas, "kpis": model.kpis,
            "sensitivity": model.sensitivity, "ipa": model.ipa}


def _excel_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Neutralise formulas and turn pandas' nullable types into plain values openpyxl can write."""
    out = neutralise_formulas(df)
    for col in out.columns:
        if isinstance(out[col].dtype, pd.StringDtype | pd.BooleanDtype) or out[col].dtype == object:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        elif pd.api.types.is_extension_array_dtype(out[col].dtype):
            out[col] = out[col].astype("float64")
    return out


def export_model(model: SupervisionModel, cfg: StudyConfig) -> list[Path]:
    """Write the model: workbook, JSON and processed tables.

    * ``reports/<study>/supervision_model.xlsx``: a ``README`` sheet describing every sheet, then one sheet
      per table (``factors``, ``stage_index``, ``improvement_areas``, ``kpis``, ``sensitivity``, ``ipa``);
      text cells that a spreadsheet would run as a formula are neutralised; written atomically.
    * ``reports/<study>/supervision_model.json``: the same tables as records plus settings and notes.
    * ``data/processed/<study>/model_factors``, ``model_stage_index``, ``improvement_areas`` (parquet + CSV).

    Returns
    -------
    list of Path
        The files written.
    """
    lang = cfg.language
    sheets = _sheets(model)
    readme = pd.DataFrame({
        "sheet": ["README", *sheets],
        "content": [i18n.label("model", f"sheet_{name}", lang) for name in ["README", *sheets]],
    })
    header = pd.DataFrame({"sheet": [cfg.study.title(lang)], "content": [
        i18n.label("model", "sheet_synthetic", lang) if cfg.study.synthetic else cfg.study.company]})
    readme = pd.concat([header, readme], ignore_index=True)
    written = []
    target = cfg.paths.reports / "supervision_model.xlsx"
    with atomic_path(target, suffix=".xlsx") as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            _excel_safe(readme).to_excel(writer, sheet_name="README", index=False)
            for name, df in sheets.items():
                _excel_safe(df).to_excel(writer, sheet_name=name, index=False)
            for ws in writer.book.worksheets:  # readable column widths
                for column in ws.columns:
                    width = max(len(str(c.value)) if c.value is not None else 0 for c in column)
                    ws.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 80)
                ws.freeze_panes = "A2"
        make_xlsx_reproducible(tmp)
    written.append(target)
    payload = {"study": cfg.study.id, "synthetic": cfg.study.synthetic, "language": lang,
               "settings": {k: getattr(model.settings, k) for k in model.settings.__dataclass_fields__},
               "equal_weights": model.equal_weights, "performance_only": model.performance_only,
               "notes": list(model.notes), **{name: df for name, df in sheets.items()}}
    written.append(write_json(cfg.paths.reports / "supervision_model.json", payload))
    written.append(write_table(model.factors, cfg.paths.processed_table("model_factors")))
    written.append(write_table(model.stage_index, cfg.paths.processed_table("model_stage_index")))
    written.append(write_table(model.improvement_areas, cfg.paths.processed_table("improvement_areas")))
    return written
