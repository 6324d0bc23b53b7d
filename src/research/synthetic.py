"""Synthetic studies: documented statistical models that write a study's raw files (``research synth``).

The original study data are not public, so the package ships data generated from the model below
(study design §6). The true parameters are written to ``truth.json`` beside the data so that tests can
check that every analysis recovers them; the README there says in words what was planted. Only studies
marked ``study.synthetic: true`` with a ``synthetic:`` section can be generated, so real raw data are never
overwritten.

Demo model (the 18-factor catalogue of study design §3; all draws from ``numpy.random.default_rng``
children of one ``SeedSequence(seed)``):

* **Survey** (``survey.csv``). Two client groups, ``foreign`` (45 %) and ``lithuanian``. The 18 performance
  items follow a three-factor model whose factors are the service stages S1, S2, S3 (correlated .35-.50):
  latent response :math:`y^*_{ij} = \\mu_j + \\lambda_j^\\top \\eta_i + d_j \\cdot foreign_i + \\varepsilon_{ij}`
  with :math:`\\eta \\sim N(0, \\Phi)` and unique variance :math:`1 - \\lambda_j^\\top \\Phi \\lambda_j`, so the
  latent response has unit variance within a group and :math:`d_j` is a standardised mean difference.
  ``PERF_S2_INFO`` loads on S2 and S3 (cross-loading), ``PERF_S1_PRICE`` loads .25 (weak item).
  The responses are cut into 1..5 at thresholds (-1.9, -1.2, -0.4, 0.6), which gives the ceiling effect of
  satisfaction surveys. ``PERF_S3_DOCS`` is asked negatively ("documents contained errors") and written
  reverse-keyed (``6 - x``, as the codebook says); its loading and group effect are given after recoding. The
  weak factors ``S2_TIME`` and ``S3_COMPLAINT`` have latent means about one SD below the others. Importance
  items come from the true importance of the factors plus a general "demandingness" factor (loading .55), cut
  at the same thresholds. Outcomes are linear in the stage factors. Missing answers: "don't know" (code -1)
  mostly on S3 items, "skipped" (code -9) concentrated in 10 % of respondents.
* **Experts** (``expert_ratings.csv``, ``expert_panel.csv``). Each expert ranks the 18 factors by
  ``true importance + N(0, sigma)`` (1 = most important); one dissenting expert ranks nearly at random; a second
  Delphi round has less noise; one tie in each round (average ranks).
* **Service records** (``service_records.csv``). 40-70 orders a month from 2025-01; lognormal response,
  negotiation, lead and complaint-resolution times; from month 13 on, actual delivery lead time is 35 % longer
  (quoted lead times only 25 % longer), so the on-time delivery rate drops (from about 92 % to about 76 % in
  the demo data).

Other catalogues (e.g. ``studies/example-it``) get the generic model of :func:`model_for`: one latent factor
per codebook ``latent`` (or stage), loadings .60-.80, factor correlations .40, one weak factor, two planted
group differences (first group level against the others) and the same missingness, experts and records.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from . import io as rio
from .config import RawFile, StudyConfig, items
from .errors import ConfigError

__all__ = ["DEMO", "SyntheticModel", "generate_study", "model_for", "simulate_expert_panel",
           "simulate_expert_ratings", "simulate_service_records", "simulate_survey", "to_csv_bytes"]

DEMO_THRESHOLDS = (-1.9, -1.2, -0.4, 0.6)


@dataclass(frozen=True)
class SyntheticModel:
    """True parameters of a synthetic study (what ``truth.json`` reports and the tests recover).

    Keyed by factor code (performance parameters in the analysed direction, after reverse-key recoding) or,
    for outcomes, by variable name. :data:`DEMO` holds the demo study's values; :func:`model_for` derives a
    generic model for other catalogues.
    """

    # --- survey ---------------------------------------------------------------------------------------
    latents: tuple[str, ...]
    factor_correlations: tuple[tuple[float, ...], ...]
    loadings: tuple[tuple[str, tuple[float, ...]], ...]  # factor -> loadings on ``latents``
    performance_means: tuple[tuple[str, float], ...]  # latent mean in the reference group(s)
    group_levels: tuple[str, ...]
    group_shares: tuple[float, ...]
    # first group level minus the other levels, in latent-response SD units (performance items only)
    group_effects: tuple[tuple[str, float], ...]
    weak_factors: tuple[str, ...]
    true_importance: tuple[tuple[str, float], ...]  # shared by client importance and the experts
    cross_loading_factor: str | None = None
    weak_item_factor: str | None = None
    thresholds_5: tuple[float, ...] = DEMO_THRESHOLDS  # 1..5 scales; K categories: linspace(-1.9, 0.6, K-1)
    importance_intercept: float = 0.10  # latent importance mean = intercept + slope * true importance
    importance_slope: float = 1.00
    importance_general_loading: float = 0.55
    # outcome -> (latent mean, weights on ``latents``); outcomes not listed: mean .35, equal weights, R^2 .5
    outcomes: tuple[tuple[str, float, tuple[float, ...]], ...] = ()
    outcome_r2: float = 0.5
    wide_scale_centre: float = 0.76  # scales with 10+ steps (NPS): round(min + range * (centre + spread y*))
    wide_scale_spread: float = 0.19
    skip_prone_share: float = 0.10
    skip_rate_prone: float = 0.22
    skip_rate_other: float = 0.003
    # "don't know" rate by variable, by "performance:<latent>", or by item type (first match wins)
    dont_know_rates: tuple[tuple[str, float], ...] = (
        ("performance", 0.02), ("importance", 0.025), ("outcome", 0.01))
    comment_share: float = 0.35
    # --- experts ----------------------------------------------------------------------------------------
    expert_noise: tuple[float, float] = (0.10, 0.06)  # SD of the perceived importance, rounds 1 and 2
    dissenter_signal: tuple[float, float] = (0.05, 0.10)  # weight of the true importance, rounds 1 and 2
    dissenter_noise: tuple[float, float] = (0.30, 0.25)
    dissenter_position: float = 0.7  # the dissenting expert is E{ceil(0.7 n)} (E07 of 10)
    # --- service records ----------------------------------------------------------------------------------
    start_month: str = "2025-01"
    orders_per_month: tuple[int, int] = (40, 70)
    n_clients: int = 120
    response_hours: tuple[float, float] = (6.0, 0.8)  # lognormal (median, sdlog)
    negotiation_days: tuple[float, float] = (5.0, 0.5)
    planned_lead_days: tuple[float, float] = (25.0, 0.25)
    actual_vs_planned: tuple[float, float] = (-0.12, 0.10)  # log(actual / quoted lead) ~ N(mean, sd)
    contract_terms_met_rate: float = 0.96
    complaint_rate: float = 0.06
    complaint_delay_days: tuple[float, float] = (4.0, 0.7)
    resolution_days: tuple[float, float] = (2.5, 0.6)
    shift_month_fraction: float = 2 / 3  # the shift starts in month round(months * 2/3) + 1 (13 of 18)
    shift_actual_factor: float = 1.35
    shift_planned_factor: float = 1.25

    def factor_codes(self) -> list[str]:
        return [c for c, _ in self.loadings]

    def dont_know_rate(self, variable: str, item_type: str, latent: str | None) -> float:
        rates = dict(self.dont_know_rates)
        for key in (variable, f"performance:{latent}" if item_type == "performance" else None, item_type):
            if key in rates:
                return rates[key]
        return 0.0


DEMO = SyntheticModel(
    latents=("S1", "S2", "S3"),
    factor_correlations=((1.00, 0.45, 0.35), (0.45, 1.00, 0.50), (0.35, 0.50, 1.00)),
    loadings=(
        ("S1_RESP", (0.72, 0, 0)), ("S1_NEEDS", (0.78, 0, 0)), ("S1_OFFER", (0.68, 0, 0)),
        ("S1_PRICE", (0.25, 0, 0)), ("S1_COMP", (0.75, 0, 0)), ("S1_ACCESS", (0.62, 0, 0)),
        ("S2_TIME", (0, 0.70, 0)), ("S2_CONTRACT", (0, 0.74, 0)), ("S2_RESULT", (0, 0.80, 0)),
        ("S2_INFO", (0, 0.45, 0.40)), ("S2_FLEX", (0, 0.63, 0)), ("S2_STAFF", (0, 0.72, 0)),
        ("S3_SUPPORT", (0, 0, 0.73)), ("S3_COMPLAINT", (0, 0, 0.66)), ("S3_DOCS", (0, 0, 0.64)),
        ("S3_FEEDBACK", (0, 0, 0.76)), ("S3_FOLLOWUP", (0, 0, 0.70)), ("S3_RELATION", (0, 0, 0.68)),
    ),
    performance_means=(
        ("S1_RESP", 0.35), ("S1_NEEDS", 0.30), ("S1_OFFER", 0.25), ("S1_PRICE", 0.10), ("S1_COMP", 0.45),
        ("S1_ACCESS", 0.40), ("S2_TIME", -0.55), ("S2_CONTRACT", 0.30), ("S2_RESULT", 0.35),
        ("S2_INFO", 0.15), ("S2_FLEX", 0.20), ("S2_STAFF", 0.45), ("S3_SUPPORT", 0.20),
        ("S3_COMPLAINT", -0.60), ("S3_DOCS", 0.25), ("S3_FEEDBACK", 0.05), ("S3_FOLLOWUP", 0.00),
        ("S3_RELATION", 0.30),
    ),
    group_levels=("foreign", "lithuanian"),
    group_shares=(0.45, 0.55),
    # same sign within a stage, so the group difference does not fight the factor structure
    group_effects=(("S1_COMP", 0.60), ("S2_TIME", -0.80), ("S3_SUPPORT", -0.60), ("S3_DOCS", -0.70)),
    weak_factors=("S2_TIME", "S3_COMPLAINT"),
    true_importance=(
        ("S1_RESP", 0.70), ("S1_NEEDS", 0.82), ("S1_OFFER", 0.58), ("S1_PRICE", 0.47), ("S1_COMP", 0.62),
        ("S1_ACCESS", 0.33), ("S2_TIME", 0.95), ("S2_CONTRACT", 0.86), ("S2_RESULT", 0.92),
        ("S2_INFO", 0.50), ("S2_FLEX", 0.42), ("S2_STAFF", 0.74), ("S3_SUPPORT", 0.55),
        ("S3_COMPLAINT", 0.90), ("S3_DOCS", 0.66), ("S3_FEEDBACK", 0.28), ("S3_FOLLOWUP", 0.22),
        ("S3_RELATION", 0.38),
    ),
    cross_loading_factor="S2_INFO",
    weak_item_factor="S1_PRICE",
    outcomes=(
        ("SAT_OVERALL", 0.35, (0.30, 0.40, 0.30)),
        ("VALUE_MONEY", 0.10, (0.45, 0.25, 0.10)),
        ("CONTINUE", 0.45, (0.15, 0.30, 0.45)),
        ("NPS", 0.0, (0.30, 0.35, 0.35)),
    ),
    dont_know_rates=(
        ("PERF_S3_COMPLAINT", 0.20), ("performance:S1", 0.02), ("performance:S2", 0.02),
        ("performance:S3", 0.05), ("importance", 0.025), ("outcome", 0.01)),
)

FOREIGN_COUNTRIES = ("DE", "SE", "NO", "FI", "PL", "LV", "EE", "GB", "NL", "DK")
FOREIGN_COUNTRY_WEIGHTS = (0.21, 0.14, 0.10, 0.10, 0.12, 0.09, 0.07, 0.07, 0.06, 0.04)
INDUSTRIES = ("manufacturing", "logistics", "IT", "retail", "construction", "energy", "finance", "healthcare")
INDUSTRY_WEIGHTS = (0.24, 0.18, 0.16, 0.12, 0.10, 0.08, 0.07, 0.05)
COMPANY_SIZES = ("1-9", "10-49", "50-249", "250+")
COMPANY_SIZE_WEIGHTS = (0.15, 0.35, 0.32, 0.18)
SERVICES = ("consulting", "implementation", "training", "support", "audit")
COMMENTS_EN = (
    "Great cooperation, the team always finds a solution.",
    "Delivery was late twice this year; please keep us informed earlier.",
    "Invoices sometimes contain errors and need to be corrected.",
    "Very professional staff, quick answers to our questions.",
    "The offer could be clearer about what is included in the price.",
    "Complaint handling took too long.",
    "Good value for money & reliable people.",
    "We would appreciate a yearly review meeting.",
)
COMMENTS_LT = (
    "Puikus aptarnavimas, ačiū už greitą reagavimą!",
    "Sąskaitose kartais pasitaiko klaidų, tenka taisyti.",
    "Norėtųsi greitesnio atsakymo į užklausas.",
    "Paslauga suteikta vėliau nei buvo sutarta, bet rezultatas geras.",
    "Skundo nagrinėjimas užtruko per ilgai.",
    "Darbuotojai profesionalūs ir malonūs, rekomenduosime kitiems.",
    "Trūksta iniciatyvos po projekto pabaigos – niekas nepaskambina.",
    "Kaina šiek tiek per didelė, tačiau kokybė atitinka lūkesčius.",
    "+370 numeris nebeatsako, geriau rašyti el. paštu.",
)
# Forced onto the first Lithuanian-speaking commenter so the reports' HTML escaping is always exercised.
ESCAPING_COMMENT = "<b>Labai</b> geras aptarnavimas & atsakymas per <24 val.> – ačiū!"
EXPERT_ROLES = ("managing director", "sales director", "account manager", "project manager",
                "project manager", "quality manager", "external consultant", "support lead",
                "finance manager", "operations manager")


# ------------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------------
def _performance_rows(codebook: pd.DataFrame) -> pd.DataFrame:
    perf = codebook[codebook["type"] == "performance"].copy()
    perf["latent"] = perf["latent"].fillna(perf["stage"])
    return perf


def model_for(cfg: StudyConfig, *, seed: int | None = None) -> SyntheticModel:
    """The synthetic model of a study: :data:`DEMO` for the demo catalogue, otherwise a generic model.

    Generic model: one latent factor per codebook ``latent`` of the performance items (their stage when
    empty), correlated .40; the k-th item loads ``(.75, .70, .65, .80, .60, .72)[k mod 6]`` on its factor;
    latent means .30 except one weak factor (the second item of the last factor) at -.60; group shares equal;
    the first group level differs by -.60 on the first and +.50 on the last performance item; true
    importance drawn uniformly from .30-.85 (weak factor .95) with ``seed``.
    """
    codebook = cfg.codebook_table
    catalogue = cfg.factors["factor"].tolist()
    if cfg.group is None:
        raise ConfigError(f"{cfg.source}: research synth needs a group: section (the respondent groups)")
    levels = tuple(cfg.group.levels)
    perf = _performance_rows(codebook)
    if perf.empty:
        raise ConfigError(f"{cfg.source}: research synth needs performance items in the codebook")
    if perf["latent"].isna().any():
        raise ConfigError(f"{cfg.source}: research synth needs a latent or stage for every performance item")
    if catalogue == DEMO.factor_codes() and levels == DEMO.group_levels:
        return DEMO
    latents = tuple(dict.fromkeys(perf["latent"]))
    pattern = (0.75, 0.70, 0.65, 0.80, 0.60, 0.72)
    loadings = tuple((r.factor, tuple(pattern[k % len(pattern)] if lat == r.latent else 0.0 for lat in latents))
                     for k, r in enumerate(perf.itertuples()))
    last = perf[perf["latent"] == latents[-1]]["factor"].tolist()
    weak = last[1] if len(last) > 1 else last[0]
    phi = tuple(tuple(1.0 if i == j else 0.40 for j in range(len(latents))) for i in range(len(latents)))
    factors = perf["factor"].tolist()
    effects = [(factors[0], -0.60)] + ([(factors[-1], 0.50)] if len(factors) > 1 else [])
    rng = np.random.default_rng(np.random.SeedSequence(seed if seed is not None else 0).spawn(5)[4])
    importance = np.round(rng.uniform(0.30, 0.85, size=len(catalogue)), 2)
    true_importance = tuple((f, 0.95 if f == weak else float(v)) for f, v in zip(catalogue, importance, strict=True))
    return replace(
        DEMO, latents=latents, factor_correlations=phi, loadings=loadings,
        performance_means=tuple((f, -0.60 if f == weak else 0.30) for f in factors),
        group_levels=levels, group_shares=tuple([1 / len(levels)] * len(levels)), group_effects=tuple(effects),
        weak_factors=(weak,), true_importance=true_importance, cross_loading_factor=None, weak_item_factor=None,
        outcomes=(), dont_know_rates=(("performance", 0.02), ("importance", 0.025), ("outcome", 0.01)))


def _thresholds(model: SyntheticModel, n_categories: int) -> tuple[float, ...]:
    if n_categories == 5:
        return model.thresholds_5
    return tuple(float(t) for t in np.round(np.linspace(-1.9, 0.6, n_categories - 1), 6))


def _cut(latent: np.ndarray, thresholds: tuple[float, ...], low: int) -> np.ndarray:
    """Ordinal category ``low .. low + K`` of a latent response cut at ``thresholds`` (K thresholds)."""
    return np.digitize(latent, np.asarray(thresholds)) + low


def _expected_mean(mu: float, thresholds: tuple[float, ...], low: int) -> float:
    """E[category] of N(mu, 1) cut at ``thresholds`` into low..low+K: low + sum_k P(y* > tau_k)."""
    return float(low + norm.sf(np.asarray(thresholds) - mu).sum())


# ------------------------------------------------------------------------------------------------------
# survey
# ------------------------------------------------------------------------------------------------------
def _rating(latent: np.ndarray, low: int, high: int, model: SyntheticModel) -> tuple[np.ndarray, str]:
    """Cut latent responses (unit variance) into ``low..high``; returns values and the rule in words."""
    k = high - low + 1
    if k >= 10:
        centre, spread = low + model.wide_scale_centre * (high - low), model.wide_scale_spread * (high - low)
        return (np.clip(np.rint(centre + spread * latent), low, high).astype(np.int64),
                f"clip(round({centre:g} + {spread:g} * y*), {low}, {high})")
    th = _thresholds(model, k)
    return _cut(latent, th, low).astype(np.int64), f"cut at {list(th)} into {low}..{high}"


def _profile(name: str, group: np.ndarray, rng: np.random.Generator, abroad: np.ndarray) -> np.ndarray | list:
    n = len(group)
    if name == "country":
        return np.where(abroad, rng.choice(FOREIGN_COUNTRIES, size=n, p=FOREIGN_COUNTRY_WEIGHTS), "LT")
    if name == "industry":
        return rng.choice(INDUSTRIES, size=n, p=INDUSTRY_WEIGHTS)
    if name == "company_size":
        return rng.choice(COMPANY_SIZES, size=n, p=COMPANY_SIZE_WEIGHTS)
    if name == "relationship_years":
        return 1 + rng.poisson(4.0, size=n)
    if name == "services_used":
        used = rng.random((n, len(SERVICES))) < 0.3
        used[np.arange(n), rng.integers(0, len(SERVICES), size=n)] = True  # at least one service
        return ["; ".join(s for s, u in zip(SERVICES, row, strict=True) if u) for row in used]
    return rng.choice([f"{name}_{k}" for k in range(1, 5)], size=n)


def simulate_survey(*, codebook: pd.DataFrame, n_respondents: int, rng: np.random.Generator,
                    group_column: str, dont_know_code: int | str, skipped_code: int | str,
                    model: SyntheticModel = DEMO) -> tuple[pd.DataFrame, dict]:
    """Simulate the client survey as it comes from the questionnaire tool (raw coding).

    Parameters
    ----------
    codebook
        The study codebook (``research.config.load_codebook``); columns are written in its order and
        reverse-keyed items are written reversed (``min + max - x``).
    n_respondents
        Number of respondents (rows).
    rng
        Random generator (``numpy.random.default_rng``).
    group_column
        Name of the group variable (its levels come from ``model.group_levels``).
    dont_know_code, skipped_code
        Missing codes written for "don't know" and skipped answers.
    model
        True parameters (default :data:`DEMO`).

    Returns
    -------
    survey : DataFrame
        One row per respondent, raw coding (reverse-keyed items reversed, missing codes in place).
    truth : dict
        The ``survey`` section of ``truth.json``.
    """
    n = int(n_respondents)
    latents = list(model.latents)
    phi = np.asarray(model.factor_correlations, dtype=float)
    perf = _performance_rows(codebook)
    perf_items = perf["variable"].tolist()
    loading_of = dict(model.loadings)
    lam = np.array([loading_of[f] for f in perf["factor"]], dtype=float)
    imp = codebook[codebook["type"] == "importance"]
    outcome_rows = codebook[codebook["type"] == "outcome"]

    sizes = np.floor(np.asarray(model.group_shares) * n + 0.5).astype(int)
    sizes[-1] = n - sizes[:-1].sum()
    group = rng.permutation(np.repeat(np.asarray(model.group_levels, dtype=object), sizes))
    first_level = group == model.group_levels[0]

    eta = rng.standard_normal((n, len(latents))) @ np.linalg.cholesky(phi).T
    communality = np.einsum("ij,jk,ik->i", lam, phi, lam)
    mu_perf = np.array([dict(model.performance_means)[f] for f in perf["factor"]])
    d_perf = np.array([dict(model.group_effects).get(f, 0.0) for f in perf["factor"]])
    latent_perf = (mu_perf + eta @ lam.T + rng.standard_normal((n, len(perf))) * np.sqrt(1.0 - communality)
                   + first_level[:, None] * d_perf)

    true_imp = dict(model.true_importance)
    mu_imp = model.importance_intercept + model.importance_slope * np.array([true_imp[f] for f in imp["factor"]])
    g = model.importance_general_loading
    latent_imp = (mu_imp + g * rng.standard_normal((n, 1))
                  + np.sqrt(1 - g**2) * rng.standard_normal((n, len(imp))))

    known_outcomes = {o: (m, w) for o, m, w in model.outcomes}
    equal = np.sqrt(model.outcome_r2 / phi.sum())  # equal weights giving R^2 = outcome_r2
    out_means = np.array([known_outcomes.get(o, (0.35, None))[0] for o in outcome_rows["variable"]])
    weights = np.array([known_outcomes[o][1] if o in known_outcomes else [equal] * len(latents)
                        for o in outcome_rows["variable"]], dtype=float).reshape(len(outcome_rows), len(latents))
    residual_sd = np.sqrt(1.0 - np.einsum("ij,jk,ik->i", weights, phi, weights))
    latent_out = out_means + eta @ weights.T + rng.standard_normal((n, len(outcome_rows))) * residual_sd

    rules: dict[str, str] = {}
    columns: dict[str, object] = {}
    for block, latent in ((imp, latent_imp), (perf, latent_perf), (outcome_rows, latent_out)):
        for k, r in enumerate(block.itertuples()):
            values, rules[r.variable] = _rating(latent[:, k], int(r.scale_min), int(r.scale_max), model)
            if r.reverse:
                values = int(r.scale_min) + int(r.scale_max) - values  # asked negatively
            columns[r.variable] = values

    rating_vars = list(columns)
    types = dict(zip(codebook["variable"], codebook["type"], strict=True))
    latent_of = dict(zip(perf["variable"], perf["latent"], strict=True))
    dk_rate = np.array([model.dont_know_rate(v, types[v], latent_of.get(v)) for v in rating_vars])
    values = np.column_stack([columns[v] for v in rating_vars]).astype(object)
    skip_prone = rng.random(n) < model.skip_prone_share
    skip_rate = np.where(skip_prone, model.skip_rate_prone, model.skip_rate_other)
    skipped = rng.random(values.shape) < skip_rate[:, None]
    dont_know = (rng.random(values.shape) < dk_rate[None, :]) & ~skipped
    values[dont_know] = dont_know_code
    values[skipped] = skipped_code
    columns.update({v: values[:, k] for k, v in enumerate(rating_vars)})

    # the first group level plays the demo's foreign clients: companies abroad writing English comments
    abroad = group == model.group_levels[0]
    for name in items(codebook, "profile"):
        columns[name] = _profile(name, group, rng, abroad)
    has_comment = rng.random(n) < model.comment_share
    pick_en = rng.integers(0, len(COMMENTS_EN), size=n)
    pick_lt = rng.integers(0, len(COMMENTS_LT), size=n)
    english = abroad
    comments = np.where(english, np.asarray(COMMENTS_EN, dtype=object)[pick_en],
                        np.asarray(COMMENTS_LT, dtype=object)[pick_lt])
    comments = np.where(has_comment, comments, "")
    lt_commenters = np.flatnonzero(has_comment & ~english)
    if len(lt_commenters):
        comments[lt_commenters[0]] = ESCAPING_COMMENT
    for name in items(codebook, "comment"):
        columns[name] = comments
    id_var = items(codebook, "id")[0]
    width = max(3, len(str(n)))
    columns[id_var] = [f"R{i:0{width}d}" for i in range(1, n + 1)]
    columns[group_column] = group
    for name in items(codebook, "group"):
        columns.setdefault(name, group)
    survey = pd.DataFrame({v: columns[v] for v in codebook["variable"]})

    item_of = dict(zip(perf["factor"], perf_items, strict=True))
    imp_of = dict(zip(imp["factor"], imp["variable"], strict=True))

    def by_latent(vec) -> dict[str, float]:
        return {s: float(x) for s, x in zip(latents, vec, strict=True)}

    low = {r.variable: int(r.scale_min) for r in codebook.itertuples() if r.variable in rules}
    truth = {
        "n_respondents": n,
        "group_column": group_column,
        "group_sizes": {lvl: int(s) for lvl, s in zip(model.group_levels, sizes, strict=True)},
        "latents": latents,
        "loadings": {v: by_latent(lam[k]) for k, v in enumerate(perf_items)},
        "communalities": {v: round(float(communality[k]), 6) for k, v in enumerate(perf_items)},
        "factor_correlations": {s: by_latent(phi[k]) for k, s in enumerate(latents)},
        "cross_loading_item": item_of.get(model.cross_loading_factor),
        "weak_item": item_of.get(model.weak_item_factor),
        "reverse_keyed_items": codebook.loc[codebook["reverse"] & codebook["variable"].isin(rating_vars),
                                            "variable"].tolist(),
        "weak_factors": list(model.weak_factors),
        "group_effects": {**{v: float(d_perf[k]) for k, v in enumerate(perf_items)},
                          **{v: 0.0 for v in imp["variable"]}},
        "group_effect_definition": (f"mean of group {model.group_levels[0]!r} minus the other group(s), in "
                                    "within-group latent SD units (Cohen's d of the latent response); "
                                    "performance items after reverse-key recoding"),
        "performance_latent_means": {v: float(mu_perf[k]) for k, v in enumerate(perf_items)},
        "importance_latent_means": {v: round(float(mu_imp[k]), 6) for k, v in enumerate(imp["variable"])},
        "importance_general_loading": g,
        "rating_rules": rules,
        # E[category] of the cut latent response in the reference group(s), after recoding
        "expected_performance_means": {
            v: round(_expected_mean(mu_perf[k], _thresholds(model, int(perf["scale_max"].iloc[k]) - low[v] + 1),
                                    low[v]), 6) for k, v in enumerate(perf_items)},
        "expected_importance_means": {
            v: round(_expected_mean(mu_imp[k], _thresholds(model, int(imp["scale_max"].iloc[k]) - low[v] + 1),
                                    low[v]), 6) for k, v in enumerate(imp["variable"])},
        "outcome_model": {o: {"latent_mean": float(out_means[k]), "weights": by_latent(weights[k])}
                          for k, o in enumerate(outcome_rows["variable"])},
        "importance_of_factor": {f: v for f, v in imp_of.items()},
        "missing": {
            "dont_know_code": dont_know_code, "skipped_code": skipped_code,
            "dont_know_rates": dict(model.dont_know_rates),
            "skip_prone_share": model.skip_prone_share, "skip_rate_prone": model.skip_rate_prone,
            "skip_rate_other": model.skip_rate_other,
        },
    }
    return survey, truth


# ------------------------------------------------------------------------------------------------------
# experts
# ------------------------------------------------------------------------------------------------------
def _dissenter_index(n_experts: int, model: SyntheticModel) -> int:
    return int(np.ceil(model.dissenter_position * n_experts)) - 1


def simulate_expert_ratings(*, factors: list[str], n_experts: int, rng: np.random.Generator,
                            model: SyntheticModel = DEMO) -> tuple[pd.DataFrame, dict]:
    """Simulate two Delphi rounds of expert rankings (1 = most important, ties as average ranks).

    Each expert perceives ``a_e * true_importance + sigma_e * z`` and ranks the factors by it; ``a_e = 1``
    except for the dissenting expert, whose ranking is nearly random. One tie is planted per round
    (expert 3 in round 1, expert 5 in round 2).

    Returns
    -------
    ratings : DataFrame
        Columns ``round, factor, E01..En``: one row per round and factor (catalogue order).
    truth : dict
        The ``experts`` section of ``truth.json``.
    """
    if n_experts < 3 or len(factors) < 12:
        raise ConfigError(f"research synth needs at least 3 experts and 12 factors (got {n_experts} and "
                          f"{len(factors)})")
    n_f = len(factors)
    true_imp = np.array([dict(model.true_importance)[f] for f in factors])
    ids = [f"E{i:02d}" for i in range(1, n_experts + 1)]
    dissenter = _dissenter_index(n_experts, model)
    frames, ties = [], []
    for r in (0, 1):
        signal = np.ones(n_experts)
        noise = np.full(n_experts, model.expert_noise[r])
        signal[dissenter], noise[dissenter] = model.dissenter_signal[r], model.dissenter_noise[r]
        perceived = signal[:, None] * true_imp + noise[:, None] * rng.standard_normal((n_experts, n_f))
        ranks = rankdata(-perceived, axis=1, method="average")
        # plant a tie: the expert cannot separate consecutive factors
        tie_expert = (2 if r == 0 else 4) % n_experts
        tie_ranks = (4, 5) if r == 0 else (10, 11, 12)
        tied = [int(np.flatnonzero(ranks[tie_expert] == k)[0]) for k in tie_ranks]
        perceived[tie_expert, tied] = perceived[tie_expert, tied[0]]
        ranks[tie_expert] = rankdata(-perceived[tie_expert], method="average")
        ties.append({"round": r + 1, "expert_id": ids[tie_expert], "factors": [factors[k] for k in tied],
                     "rank": float(np.mean(tie_ranks))})
        frames.append(pd.DataFrame({"round": r + 1, "factor": factors,
                                    **{e: ranks[k] for k, e in enumerate(ids)}}))
    truth = {
        "n_experts": n_experts,
        "rounds": 2,
        "true_importance": {f: float(v) for f, v in zip(factors, true_imp, strict=True)},
        "true_ranking": [factors[k] for k in np.argsort(-true_imp, kind="stable")],
        "dissenting_expert": ids[dissenter],
        "rank_model": "rank of (a_e * true_importance + sigma_e * z), 1 = most important; a_e = 1 except the "
                      "dissenting expert",
        "noise_sd": {"round_1": model.expert_noise[0], "round_2": model.expert_noise[1]},
        "dissenter": {"signal": list(model.dissenter_signal), "noise_sd": list(model.dissenter_noise)},
        "ties": ties,
    }
    return pd.concat(frames, ignore_index=True), truth


def simulate_expert_panel(*, n_experts: int, rng: np.random.Generator,
                          model: SyntheticModel = DEMO) -> pd.DataFrame:
    """Expert panel: role, years of experience, argumentation and familiarity coefficients (0-1).

    Competence (the mean of the two coefficients) is lowest for the dissenting expert, an outsider.
    """
    ids = [f"E{i:02d}" for i in range(1, n_experts + 1)]
    dissenter = _dissenter_index(n_experts, model)
    roles = [EXPERT_ROLES[k % len(EXPERT_ROLES)] for k in range(n_experts)]
    roles[dissenter] = "external consultant"
    argumentation = np.round(rng.uniform(0.65, 1.0, size=n_experts), 2)
    familiarity = np.round(rng.choice(np.arange(6, 11) / 10, size=n_experts), 1)
    argumentation[dissenter], familiarity[dissenter] = 0.50, 0.40
    years = rng.integers(3, 26, size=n_experts)
    return pd.DataFrame({"expert_id": ids, "role": roles, "years_experience": years,
                         "argumentation": argumentation, "familiarity": familiarity})


# ------------------------------------------------------------------------------------------------------
# service records
# ------------------------------------------------------------------------------------------------------
def _lognormal(rng: np.random.Generator, median_sdlog: tuple[float, float], size: int) -> np.ndarray:
    median, sdlog = median_sdlog
    return np.exp(np.log(median) + sdlog * rng.standard_normal(size))


def simulate_service_records(*, months: int, rng: np.random.Generator, model: SyntheticModel = DEMO,
                             group_column: str = "origin") -> tuple[pd.DataFrame, dict]:
    """Simulate one row per order over ``months`` months starting ``model.start_month``.

    Times: inquiry between 08:00 and 18:00; response after a lognormal number of hours; contract signed
    (09:00-17:00) a lognormal number of whole days after the response day, in the inquiry's month; planned
    delivery at 17:00 after a whole number of quoted days ``q``; actual delivery (09:00-17:00) after
    ``round(q * exp(N(-0.12, 0.10)))`` days, so it is on time when it falls on or before the planned day. From
    the shift month (by contract signature) on, quoted lead times are 25 % longer and actual lead times 35 %
    longer. Orders per month are uniform on 40..70; clients (120) have the survey's group shares.

    Returns
    -------
    records : DataFrame
        Columns of the ``service_records`` contract (timestamps as ``datetime64``; empty complaint times
        where there was no complaint).
    truth : dict
        The ``service_records`` section of ``truth.json``.
    """
    start = np.datetime64(model.start_month, "M")
    month_starts = start + np.arange(months + 1)
    counts = rng.integers(model.orders_per_month[0], model.orders_per_month[1] + 1, size=months)
    n = int(counts.sum())
    month_of = np.repeat(np.arange(months), counts)
    first_day = month_starts[month_of].astype("datetime64[D]")
    days_in_month = (month_starts[month_of + 1].astype("datetime64[D]") - first_day).astype(int)

    def minutes(x_days: np.ndarray) -> np.ndarray:
        return np.rint(x_days * 24 * 60).astype("timedelta64[m]")

    def business_minute() -> np.ndarray:
        return rng.integers(9 * 60, 17 * 60, size=n).astype("timedelta64[m]")

    inquiry_minute = rng.integers(8 * 60, 18 * 60, size=n)
    response_minutes = np.rint(_lognormal(rng, model.response_hours, n) * 60).astype(int)
    negotiation_days = np.clip(np.rint(_lognormal(rng, model.negotiation_days, n)), 1, 20).astype(int)
    # The inquiry day is drawn so that the contract is signed in the same month: inquiry- and contract-dated
    # KPIs then have exactly one subgroup per month.
    contract_offset = (inquiry_minute + response_minutes) // (24 * 60) + negotiation_days
    latest_day = np.maximum(0, days_in_month - 1 - contract_offset)
    inquiry_day = first_day + (rng.random(n) * (latest_day + 1)).astype(int)
    inquiry = inquiry_day.astype("datetime64[m]") + inquiry_minute.astype("timedelta64[m]")
    response = inquiry + response_minutes.astype("timedelta64[m]")
    signed_day = inquiry_day + contract_offset
    signed = signed_day.astype("datetime64[m]") + business_minute()
    shift_index = int(round(months * model.shift_month_fraction))
    shift_start = month_starts[shift_index] if shift_index < months else None
    shifted = month_of >= shift_index
    base_quote = _lognormal(rng, model.planned_lead_days, n)
    planned_days = np.maximum(5, np.rint(base_quote * np.where(shifted, model.shift_planned_factor, 1.0)))
    actual_days = np.maximum(1, np.rint(
        base_quote * np.exp(model.actual_vs_planned[0] + model.actual_vs_planned[1] * rng.standard_normal(n))
        * np.where(shifted, model.shift_actual_factor, 1.0)))
    planned = (signed_day + planned_days.astype("timedelta64[D]")).astype("datetime64[m]") + np.timedelta64(
        17 * 60, "m")
    actual = (signed_day + actual_days.astype("timedelta64[D]")).astype("datetime64[m]") + business_minute()
    order = np.argsort(inquiry, kind="stable")
    terms_met = (rng.random(n) < model.contract_terms_met_rate).astype(int)
    complaint = rng.random(n) < model.complaint_rate
    complaint_at = actual + minutes(_lognormal(rng, model.complaint_delay_days, n))
    resolved_at = complaint_at + minutes(_lognormal(rng, model.resolution_days, n))
    client_weights = rng.gamma(1.0, size=model.n_clients)
    client = rng.choice(model.n_clients, size=n, p=client_weights / client_weights.sum())
    client_sizes = np.floor(np.asarray(model.group_shares) * model.n_clients + 0.5).astype(int)
    client_sizes[-1] = model.n_clients - client_sizes[:-1].sum()
    client_group = rng.permutation(np.repeat(np.asarray(model.group_levels, dtype=object), client_sizes))

    nat = np.datetime64("NaT", "m")
    records = pd.DataFrame({
        "order_id": [f"O{i:05d}" for i in range(1, n + 1)],
        "client_id": [f"C{c + 1:03d}" for c in client[order]],
        group_column: client_group[client[order]],
        "inquiry_at": inquiry[order], "response_at": response[order], "contract_signed_at": signed[order],
        "planned_delivery": planned[order], "actual_delivery": actual[order],
        "contract_terms_met": terms_met[order], "complaint": complaint[order].astype(int),
        "complaint_at": np.where(complaint, complaint_at, nat)[order],
        "complaint_resolved_at": np.where(complaint, resolved_at, nat)[order],
    })
    for col in ("inquiry_at", "response_at", "contract_signed_at", "planned_delivery", "actual_delivery",
                "complaint_at", "complaint_resolved_at"):
        records[col] = pd.to_datetime(records[col]).astype("datetime64[s]")
    # whole-day rounding makes a closed form clumsy, so the planted drop is reported as observed in the data
    on_time = actual_days <= planned_days
    before = {"on_time": float(on_time[~shifted].mean()), "lead": float(actual_days[~shifted].mean())}
    after = ({"on_time": float(on_time[shifted].mean()), "lead": float(actual_days[shifted].mean())}
             if shifted.any() else None)
    month_labels = [str(m) for m in month_starts[:months]]
    shift = None
    if shift_start is not None and after is not None:
        shift = {
            "kpis": ["delivery_lead_time", "on_time_delivery_rate"],
            "start_month": str(shift_start),
            "month_index": shift_index + 1,
            "timestamp": "contract_signed_at",
            "lead_time_factor": model.shift_actual_factor,
            "quoted_lead_time_factor": model.shift_planned_factor,
            "observed_on_time_rate_before": round(before["on_time"], 6),
            "observed_on_time_rate_after": round(after["on_time"], 6),
            "observed_mean_lead_days_before": round(before["lead"], 6),
            "observed_mean_lead_days_after": round(after["lead"], 6),
            "description": (f"From {shift_start} on (contract signature month {shift_index + 1}), actual "
                            f"delivery lead times are {round((model.shift_actual_factor - 1) * 100)} % longer "
                            f"while quoted lead times grow only "
                            f"{round((model.shift_planned_factor - 1) * 100)} %, so the mean lead time grows "
                            f"from {before['lead']:.1f} to {after['lead']:.1f} days and the on-time delivery "
                            f"rate falls from {before['on_time']:.0%} to {after['on_time']:.0%} (as observed "
                            "in the data)."),
        }
    truth = {
        "start_month": model.start_month, "months": months, "n_orders": n,
        "orders_per_month": {m: int(c) for m, c in zip(month_labels, counts, strict=True)},
        "orders_per_month_range": list(model.orders_per_month),
        "n_clients": model.n_clients,
        "response_hours_lognormal": {"median": model.response_hours[0], "sdlog": model.response_hours[1]},
        "negotiation_days_lognormal": {"median": model.negotiation_days[0], "sdlog": model.negotiation_days[1]},
        "quoted_lead_days_lognormal": {"median": model.planned_lead_days[0], "sdlog": model.planned_lead_days[1]},
        "log_actual_over_quoted": {"mean": model.actual_vs_planned[0], "sd": model.actual_vs_planned[1]},
        "contract_terms_met_rate": model.contract_terms_met_rate,
        "complaint_rate": model.complaint_rate,
        "complaint_delay_days_lognormal": {"median": model.complaint_delay_days[0],
                                           "sdlog": model.complaint_delay_days[1]},
        "resolution_days_lognormal": {"median": model.resolution_days[0], "sdlog": model.resolution_days[1]},
        "process_shift": shift,
    }
    return records, truth


# ------------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------------
def _format_value(value, decimal: str, digits: int | None) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        text = format(float(value), "g") if digits is None else f"{float(value):.{digits}f}"
        return text.replace(".", decimal)
    return str(value)


def to_csv_bytes(df: pd.DataFrame, raw: RawFile, *, digits: dict[str, int] | None = None) -> bytes:
    """Serialise ``df`` as the raw file ``raw`` declares (delimiter, decimal mark, encoding), ``\\n`` line ends.

    Floats use ``digits`` decimals per column (default: the shortest ``g`` form), so output is byte-stable.
    """
    if raw.path.lower().endswith((".xlsx", ".xlsm", ".xls")):
        raise ConfigError(f"{raw.path}: research synth writes CSV files only")
    digits = digits or {}
    buf = _io.StringIO()
    writer = csv.writer(buf, delimiter=raw.delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(df.columns)
    cols = [[_format_value(v, raw.decimal, digits.get(c)) for v in df[c].tolist()] for c in df.columns]
    writer.writerows(zip(*cols, strict=True))
    try:
        return buf.getvalue().encode(raw.encoding)
    except UnicodeEncodeError as e:
        raise ConfigError(f"{raw.path}: encoding {raw.encoding} cannot hold the character {e.object[e.start]!r} "
                          "of the synthetic data; declare utf-8") from None


def _readme(cfg: StudyConfig, truth: dict, files: dict[str, bytes]) -> str:
    s, e, r = truth["survey"], truth["experts"], truth["service_records"]
    sizes = ", ".join(f"{v} {k}" for k, v in s["group_sizes"].items())
    effects = {k: v for k, v in s["group_effects"].items() if v}
    miss = s["missing"]
    latents = s["latents"]
    corr = ", ".join(f"{a}-{b} {s['factor_correlations'][a][b]:.2f}".replace("0.", ".")
                     for i, a in enumerate(latents) for b in latents[i + 1:])
    lines = [
        f"# SYNTHETIC data of study `{cfg.study.id}`",
        "",
        "**These data are synthetic.** They were generated by `research synth` from the documented statistical",
        "model in `src/research/synthetic.py`; no real company, client or expert is described. The true",
        "parameters are in `truth.json` (`\"synthetic\": true`), so tests can check that every analysis",
        "recovers them.",
        "",
        "## How they were generated",
        "",
        f"`research synth --study <study.yaml>` with seed {truth['seed']} and {s['n_respondents']} respondents"
        + (f", {e['n_experts']} experts" if e else "")
        + (f", {r['months']} months of service records starting {r['start_month']}" if r else "") + ".",
        "The same seed gives byte-identical files (fixed number formats, `\\n` line ends, sorted JSON keys).",
        "",
        "## The true model in words",
        "",
        f"* **Respondents.** {sizes} (group column `{s['group_column']}`).",
        f"* **Latent factors.** The performance items measure {len(latents)} correlated factors "
        f"({', '.join(latents)}; correlations {corr}). Loadings and item rules are in `truth.json` "
        "(`survey.loadings`, `survey.rating_rules`); latent responses are cut into the scale at thresholds",
        "  that give the ceiling effect of satisfaction surveys.",
    ]
    if s["weak_item"]:
        lines.append(f"* **Weak item.** `{s['weak_item']}` loads only "
                     f"{max(s['loadings'][s['weak_item']].values()):.2f} on its factor.")
    if s["cross_loading_item"]:
        cl = {k: v for k, v in s["loadings"][s["cross_loading_item"]].items() if v}
        lines.append(f"* **Cross-loading item.** `{s['cross_loading_item']}` loads on "
                     + " and ".join(f"{k} {v:.2f}" for k, v in cl.items()) + ".")
    for item in s["reverse_keyed_items"]:
        lines.append(f"* **Reverse-keyed item.** `{item}` is asked negatively, so the raw file holds min + max - x;"
                     " the codebook marks it `reverse` and `research prepare` recodes it (truth values are"
                     " after recoding).")
    lines += [
        f"* **Weak factors.** {', '.join(s['weak_factors'])}: high importance, clearly lower performance "
        "(latent mean about one SD below the others).",
        f"* **Group differences** ({s['group_effect_definition']}): "
        + ", ".join(f"`{k}` {v:+.2f}" for k, v in effects.items()) + "; every other item 0.",
        "* **Missing answers.** \"Don't know\" = {dk}, skipped = {sk}. \"Don't know\" rates by item: {rates}. "
        "{share:.0%} of the respondents skip each question with probability {p:.0%}, the others with "
        "{q:.1%}.".format(dk=miss["dont_know_code"], sk=miss["skipped_code"],
                          rates=", ".join(f"{k} {v:.1%}" for k, v in miss["dont_know_rates"].items()),
                          share=miss["skip_prone_share"], p=miss["skip_rate_prone"], q=miss["skip_rate_other"]),
        "* **Comments.** Free text; some contain markup characters (`<`, `>`, `&`) or start with `+` to",
        "  exercise escaping.",
    ]
    if e:
        lines.append(f"* **Experts.** {e['n_experts']} experts rank the factors by their true importance plus "
                     f"noise (top five: {', '.join(e['true_ranking'][:5])}); expert {e['dissenting_expert']} "
                     "dissents (near-random ranking); round 2 (Delphi) is less noisy; one tie per round is "
                     "recorded as average ranks.")
    if r:
        shift = r["process_shift"]
        lines.append(f"* **Service records.** {r['n_orders']} orders, {r['orders_per_month_range'][0]}-"
                     f"{r['orders_per_month_range'][1]} a month; "
                     + (shift["description"][0].lower() + shift["description"][1:] if shift else "no process shift.")
                     + f" Complaints on {r['complaint_rate']:.0%} of orders; contract terms met in "
                     f"{r['contract_terms_met_rate']:.0%}.")
    lines += [
        "",
        "## Files (sha256)",
        "",
        "```",
        *[f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in files.items()],
        "```",
        "",
        "Check with `sha256sum -c` (the lines between the fences), or run `research validate`.",
        "",
    ]
    return "\n".join(lines)


def generate_study(cfg: StudyConfig, *, out_dir: str | Path | None = None) -> list[Path]:
    """Generate a synthetic study's raw files from ``cfg.synthetic`` and return the paths written.

    Parameters
    ----------
    cfg
        A study with ``study.synthetic: true`` and a ``synthetic`` section (seed, n_experts, n_respondents,
        months). The files named under ``data`` are written in the declared delimiter, decimal mark and
        encoding; expert and service-record files only when the config names them.
    out_dir
        Write the files here instead of the folders configured under ``data`` (tests); file names are kept.

    Returns
    -------
    list of Path
        The raw files, ``truth.json`` (when ``data.truth`` is set) and ``README.md`` beside the survey, each
        written atomically. Same config and seed, same bytes.

    Raises
    ------
    ConfigError
        When the study is not synthetic (real raw data are never overwritten) or cannot be simulated.
    """
    if not cfg.study.synthetic or cfg.synthetic is None:
        raise ConfigError(f"{cfg.source}: research synth only writes synthetic data; this study needs "
                          "study.synthetic: true and a synthetic: section (real raw data are never overwritten)")
    data = cfg.data
    if data.survey is None:
        raise ConfigError(f"{cfg.source}: research synth needs data.survey in the config")
    if not cfg.missing_codes.dont_know or not cfg.missing_codes.skipped:
        raise ConfigError(f"{cfg.source}: research synth needs missing_codes.dont_know and missing_codes.skipped")
    codebook = cfg.codebook_table
    syn = cfg.synthetic
    model = model_for(cfg, seed=syn.seed)
    survey_ss, ratings_ss, panel_ss, records_ss, _ = np.random.SeedSequence(syn.seed).spawn(5)
    survey, survey_truth = simulate_survey(
        codebook=codebook, n_respondents=syn.n_respondents, rng=np.random.default_rng(survey_ss),
        group_column=cfg.group.column, dont_know_code=cfg.missing_codes.dont_know[0],
        skipped_code=cfg.missing_codes.skipped[0], model=model)
    truth: dict = {"synthetic": True, "seed": syn.seed, "study": cfg.study.id,
                   "generator": "research.synthetic.generate_study", "survey": survey_truth,
                   "experts": None, "service_records": None}

    def target(raw_path: str) -> Path:
        path = cfg.resolve(raw_path, what="raw data file")
        return Path(out_dir) / path.name if out_dir is not None else path

    outputs: dict[Path, bytes] = {target(data.survey.path): to_csv_bytes(survey, data.survey)}
    if data.experts is not None:
        ratings, truth["experts"] = simulate_expert_ratings(
            factors=cfg.factors["factor"].tolist(), n_experts=syn.n_experts,
            rng=np.random.default_rng(ratings_ss), model=model)
        outputs[target(data.experts.path)] = to_csv_bytes(ratings, data.experts)
    if data.expert_panel is not None:
        panel = simulate_expert_panel(n_experts=syn.n_experts, rng=np.random.default_rng(panel_ss), model=model)
        outputs[target(data.expert_panel.path)] = to_csv_bytes(panel, data.expert_panel,
                                                               digits={"argumentation": 2, "familiarity": 1})
        if truth["experts"] is not None:
            truth["experts"]["competence"] = {r.expert_id: round((r.argumentation + r.familiarity) / 2, 6)
                                              for r in panel.itertuples()}
    if data.service_records is not None:
        records, truth["service_records"] = simulate_service_records(
            months=syn.months, rng=np.random.default_rng(records_ss), model=model, group_column=cfg.group.column)
        outputs[target(data.service_records.path)] = to_csv_bytes(records, data.service_records)
    if data.truth is not None:
        text = json.dumps(rio.to_jsonable(truth), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        outputs[target(data.truth)] = (text + "\n").encode("utf-8")
    readme_path = target(data.survey.path).parent / "README.md"
    outputs[readme_path] = _readme(cfg, truth, {p.name: b for p, b in outputs.items()}).encode("utf-8")
    return [rio.write_bytes(path, content) for path, content in outputs.items()]
