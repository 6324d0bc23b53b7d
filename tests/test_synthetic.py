"""The synthetic demo study: byte-identical regeneration, and data that carry the documented true model.

The recovery checks compute their statistics with other software than the generator: ``sha256sum``
(GNU coreutils) for the file hashes, the ``csv`` module for counts, factor_analyzer 0.5.1 for the factor
structure, SciPy's Friedman test for Kendall's W (W = chi2 / (m (n - 1)), Kendall & Babington Smith 1939;
tie-corrected as in R ``friedman.test``) and pandas for the monthly service KPIs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import DEMO_STUDY, ROOT
from research import paths
from research.cli import main
from research.config import load_study
from research.errors import ConfigError
from research.synthetic import generate_study

DEMO_RAW = ROOT / "data" / "raw" / "demo"
FILES = ["survey.csv", "expert_ratings.csv", "expert_panel.csv", "service_records.csv", "truth.json", "README.md"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((DEMO_RAW / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def survey() -> pd.DataFrame:
    return pd.read_csv(DEMO_RAW / "survey.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return pd.read_csv(DEMO_RAW / "expert_ratings.csv")


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return pd.read_csv(DEMO_RAW / "service_records.csv", parse_dates=[
        "inquiry_at", "response_at", "contract_signed_at", "planned_delivery", "actual_delivery", "complaint_at",
        "complaint_resolved_at"])


def _sandbox_study(tmp_path, monkeypatch, mutate=None):
    """A copy of the demo config writing its raw files under a temporary output root."""
    monkeypatch.setattr(paths, "OUTPUT_ROOT", tmp_path)
    raw = yaml.safe_load(DEMO_STUDY.read_text(encoding="utf-8"))
    for key, entry in raw["data"].items():
        name = (entry["path"] if isinstance(entry, dict) else entry).rsplit("/", 1)[-1]
        target = str(tmp_path / "raw" / name)
        if isinstance(entry, dict):
            entry["path"] = target
        else:
            raw["data"][key] = target
    if mutate:
        mutate(raw)
    (tmp_path / "raw").mkdir(exist_ok=True)
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    shutil.copy(DEMO_STUDY.parent / "codebook.csv", tmp_path / "codebook.csv")
    return study


# --- regeneration ---------------------------------------------------------------------------------------
def test_generate_reproduces_the_committed_demo_files_byte_for_byte(tmp_path, demo_cfg):
    written = generate_study(demo_cfg, out_dir=tmp_path)
    assert sorted(p.name for p in written) == sorted(FILES)
    for name in FILES:
        assert sha(tmp_path / name) == sha(DEMO_RAW / name), f"{name} differs from the committed demo file"


def test_cli_synth_regenerates_byte_for_byte(tmp_path, monkeypatch, capsys):
    study = _sandbox_study(tmp_path, monkeypatch)
    assert main(["synth", "--study", str(study)]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == len(FILES)
    for name in FILES:
        assert sha(tmp_path / "raw" / name) == sha(DEMO_RAW / name), name
    (tmp_path / "raw" / "survey.csv").write_text("damaged", encoding="utf-8")
    assert main(["synth", "--study", str(study)]) == 0  # a rerun repairs a damaged file
    assert sha(tmp_path / "raw" / "survey.csv") == sha(DEMO_RAW / "survey.csv")


def test_readme_hashes_agree_with_sha256sum():
    """README.md lists the sha256 of every data file; GNU coreutils' sha256sum -c must accept them."""
    readme = (DEMO_RAW / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"^[0-9a-f]{64}  \S+$", readme, flags=re.M)
    assert {line.split()[1] for line in lines} == set(FILES) - {"README.md"}
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    result = subprocess.run(["sha256sum", "-c", "-"], input="\n".join(lines) + "\n", cwd=DEMO_RAW,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_different_seed_gives_different_data(tmp_path, monkeypatch):
    study = _sandbox_study(tmp_path, monkeypatch, lambda r: r["synthetic"].update({"seed": 1}))
    generate_study(load_study(study))
    assert sha(tmp_path / "raw" / "survey.csv") != sha(DEMO_RAW / "survey.csv")
    assert json.loads((tmp_path / "raw" / "truth.json").read_text())["seed"] == 1


def test_real_studies_are_never_overwritten(tmp_path, monkeypatch):
    study = _sandbox_study(tmp_path, monkeypatch, lambda r: r["study"].update({"synthetic": False}))
    with pytest.raises(ConfigError, match="only writes synthetic data"):
        generate_study(load_study(study))
    assert not any((tmp_path / "raw").iterdir())


def test_declared_format_is_honoured(tmp_path, monkeypatch):
    """A study declaring ';', decimal ',' and Windows-1257 gets its files written that way."""
    def mutate(r):
        r["data"]["expert_panel"].update({"delimiter": ";", "decimal": ",", "encoding": "windows-1257"})
    study = _sandbox_study(tmp_path, monkeypatch, mutate)
    generate_study(load_study(study))
    text = (tmp_path / "raw" / "expert_panel.csv").read_bytes().decode("cp1257")
    assert text.splitlines()[0] == "expert_id;role;years_experience;argumentation;familiarity"
    assert re.search(r";0,\d\d;[01],\d$", text.splitlines()[1])


# --- what every file says ------------------------------------------------------------------------------
def test_everything_says_synthetic(truth):
    assert truth["synthetic"] is True and truth["seed"] == 20261204
    readme = (DEMO_RAW / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# SYNTHETIC") and "**These data are synthetic.**" in readme
    assert load_study(DEMO_STUDY).study.synthetic is True


def test_truth_has_the_keys_other_modules_read(truth):
    s, e, r = truth["survey"], truth["experts"], truth["service_records"]
    perf = [f"PERF_{f}" for f in e["true_importance"]]
    imp = [f"IMP_{f}" for f in e["true_importance"]]
    assert set(s["loadings"]) == set(perf)
    assert all(set(v) == {"S1", "S2", "S3"} for v in s["loadings"].values())
    phi = pd.DataFrame(s["factor_correlations"])
    assert np.allclose(phi.to_numpy(), phi.to_numpy().T) and np.allclose(np.diag(phi), 1)
    assert ((phi.to_numpy()[np.triu_indices(3, 1)] >= 0.3) & (phi.to_numpy()[np.triu_indices(3, 1)] <= 0.5)).all()
    assert s["cross_loading_item"] == "PERF_S2_INFO" and s["weak_item"] == "PERF_S1_PRICE"
    assert set(s["group_effects"]) == set(perf) | set(imp)
    planted = {k: v for k, v in s["group_effects"].items() if v}
    assert 3 <= len(planted) <= 5 and all(0.6 <= abs(v) <= 0.9 for v in planted.values())
    assert {k.split("_")[1] for k in planted} == {"S1", "S2", "S3"}  # spread over the stages
    assert s["weak_factors"] == ["S2_TIME", "S3_COMPLAINT"]
    assert s["group_sizes"] == {"foreign": 126, "lithuanian": 154}
    assert s["loadings"]["PERF_S3_DOCS"]["S3"] > 0  # given after reverse-key recoding
    assert s["reverse_keyed_items"] == ["PERF_S3_DOCS"]
    assert e["dissenting_expert"] == "E07" and len(e["true_importance"]) == 18
    top = sorted(e["true_importance"], key=e["true_importance"].get, reverse=True)[:4]
    assert set(s["weak_factors"]) <= set(top)
    shift = r["process_shift"]
    assert shift["start_month"] == "2026-01" and set(shift["kpis"]) == {"delivery_lead_time",
                                                                       "on_time_delivery_rate"}
    assert shift["description"]


def test_loadings_follow_the_design(truth):
    lo = truth["survey"]["loadings"]
    primary = {k: max(v.values()) for k, v in lo.items()}
    ordinary = [v for k, v in primary.items() if k not in ("PERF_S1_PRICE", "PERF_S2_INFO")]
    assert min(ordinary) >= 0.6 and max(ordinary) <= 0.8
    assert primary["PERF_S1_PRICE"] == pytest.approx(0.25)
    assert lo["PERF_S2_INFO"]["S2"] >= 0.3 and lo["PERF_S2_INFO"]["S3"] >= 0.3
    assert sum(1 for v in lo.values() if sum(x > 0 for x in v.values()) > 1) == 1


# --- survey ---------------------------------------------------------------------------------------------
def _analysed(survey: pd.DataFrame, prefix: str) -> pd.DataFrame:
    x = survey.filter(regex=f"^{prefix}_").astype(float)
    x = x.mask(x < 0)
    if "PERF_S3_DOCS" in x:
        x["PERF_S3_DOCS"] = 6 - x["PERF_S3_DOCS"]
    return x


def test_survey_columns_groups_and_profile(survey, demo_cfg, truth):
    assert list(survey.columns) == demo_cfg.codebook_table["variable"].tolist()
    assert len(survey) == 280 and survey["respondent_id"].is_unique
    assert survey["origin"].value_counts().to_dict() == truth["survey"]["group_sizes"]
    foreign = survey["origin"] == "foreign"
    assert set(survey.loc[foreign, "country"]) <= {"DE", "SE", "NO", "FI", "PL", "LV", "EE", "GB", "NL", "DK"}
    assert set(survey.loc[~foreign, "country"]) == {"LT"}
    for col in ("industry", "company_size", "relationship_years", "services_used"):
        assert survey[col].astype(str).str.len().gt(0).all()


def test_comments_exercise_escaping_and_lithuanian_letters(survey):
    comments = survey["comment"]
    assert (comments == "").mean() > 0.3
    assert comments.str.contains("[ąčęėįšųūž]", regex=True).any()
    assert (comments.str.contains("<") & comments.str.contains(">") & comments.str.contains("&")).any()


def test_scales_ceiling_and_weak_factors(survey):
    perf, imp = _analysed(survey, "PERF"), _analysed(survey, "IMP")
    assert ((perf >= 1) & (perf <= 5) | perf.isna()).all().all()
    means = perf.mean()
    weak = means[["PERF_S2_TIME", "PERF_S3_COMPLAINT"]]
    others = means.drop(weak.index)
    assert weak.max() < others.min() - 0.3  # clearly lower performance
    assert others.between(3.4, 4.5).all()
    assert ((perf == 5).sum() > (perf == 1).sum() * 3).sum() >= 16  # ceiling: far more 5s than 1s
    imp_means = imp.mean()
    assert imp_means.between(4.0, 4.7).all()
    top = imp_means.sort_values(ascending=False).index[:6]
    assert {"IMP_S2_TIME", "IMP_S3_COMPLAINT"} <= set(top)
    out = survey[["SAT_OVERALL", "VALUE_MONEY", "CONTINUE", "NPS"]].astype(float).mask(lambda d: d < 0)
    assert out[["SAT_OVERALL", "VALUE_MONEY", "CONTINUE"]].stack().dropna().between(1, 5).all()
    assert out["NPS"].dropna().between(0, 10).all() and out["NPS"].nunique() >= 8


def test_reverse_keyed_item_is_reversed_in_the_raw_file(survey):
    raw = survey[["PERF_S3_DOCS", "PERF_S3_FEEDBACK", "PERF_S3_SUPPORT"]].astype(float).mask(lambda d: d < 0)
    assert raw.corr().loc["PERF_S3_DOCS", ["PERF_S3_FEEDBACK", "PERF_S3_SUPPORT"]].lt(-0.2).all()


def test_missing_codes_rates(survey):
    """Counted with the csv module on the raw text: -1 don't know, -9 skipped."""
    with open(DEMO_RAW / "survey.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rating = [c for c in rows[0] if c.startswith(("IMP_", "PERF_"))] + ["SAT_OVERALL", "VALUE_MONEY", "CONTINUE",
                                                                      "NPS"]
    cells = [(c, r[c]) for r in rows for c in rating]
    skipped = sum(v == "-9" for _, v in cells) / len(cells)
    dont_know_perf = [v == "-1" for c, v in cells if c.startswith("PERF_")]
    assert 0.02 <= skipped <= 0.03
    assert 0.02 <= sum(dont_know_perf) / len(dont_know_perf) <= 0.04
    dk = {c: sum(r[c] == "-1" for r in rows) / len(rows) for c in rating}
    s3 = np.mean([dk[c] for c in rating if c.startswith("PERF_S3")])
    s12 = np.mean([dk[c] for c in rating if c.startswith(("PERF_S1", "PERF_S2"))])
    assert s3 > 2 * s12 and dk["PERF_S3_COMPLAINT"] > 0.1


def test_planted_group_differences_are_visible(survey, truth):
    """Cohen's d on the 1-5 answers: planted items in the planted direction, attenuated by the cut."""
    perf = _analysed(survey, "PERF")
    foreign = survey["origin"] == "foreign"
    planted = {k: v for k, v in truth["survey"]["group_effects"].items() if v}
    for item in perf.columns:
        a, b = perf.loc[foreign, item].dropna(), perf.loc[~foreign, item].dropna()
        pooled = np.sqrt(((len(a) - 1) * a.var() + (len(b) - 1) * b.var()) / (len(a) + len(b) - 2))
        d = (a.mean() - b.mean()) / pooled
        if item in planted:
            assert np.sign(d) == np.sign(planted[item]) and abs(d) > 0.35, (item, d)
        else:
            assert abs(d) < 0.35, (item, d)


def test_factor_structure_is_recoverable(survey, truth):
    """factor_analyzer (minres, oblimin) on pairwise Pearson correlations recovers the planted structure."""
    import warnings

    from factor_analyzer import FactorAnalyzer

    perf = _analysed(survey, "PERF")
    fa = FactorAnalyzer(n_factors=3, rotation="oblimin", method="minres", is_corr_matrix=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fa.fit(perf.corr().to_numpy())
    loadings = pd.DataFrame(fa.loadings_, index=perf.columns)
    true = pd.DataFrame(truth["survey"]["loadings"]).T.loc[perf.columns]
    # match estimated to true factors by the largest summed absolute loading
    match = {s: int(loadings[true[s] >= 0.6].abs().sum().idxmax()) for s in ("S1", "S2", "S3")}
    assert len(set(match.values())) == 3
    for item, row in true.iterrows():
        if item in (truth["survey"]["cross_loading_item"], truth["survey"]["weak_item"]):
            continue
        latent = row.idxmax()
        assert loadings.loc[item].abs().idxmax() == match[latent], item
    cross = loadings.loc["PERF_S2_INFO"]
    assert cross[match["S2"]] > 0.3 and cross[match["S3"]] > 0.3
    assert loadings.loc["PERF_S1_PRICE"].abs().max() < 0.35


# --- experts --------------------------------------------------------------------------------------------
def _kendall_w(wide: pd.DataFrame) -> float:
    """W from SciPy's tie-corrected Friedman chi-square: W = chi2 / (m (n - 1))."""
    chi2 = stats.friedmanchisquare(*wide.to_numpy()).statistic
    n, m = wide.shape
    return chi2 / (m * (n - 1))


def test_expert_ratings_are_valid_rankings_with_a_tie(ratings, demo_cfg):
    experts = [c for c in ratings.columns if c.startswith("E")]
    assert experts == [f"E{i:02d}" for i in range(1, 11)]
    assert sorted(ratings["round"].unique()) == [1, 2]
    for _, block in ratings.groupby("round"):
        assert list(block["factor"]) == demo_cfg.factors["factor"].tolist()
        for e in experts:
            assert np.allclose(stats.rankdata(block[e]), block[e])  # R rank(ties = "average") convention
    values = ratings[experts].to_numpy()
    assert (values % 1 != 0).any()  # at least one tie as average ranks


def test_dissenting_expert_and_delphi_round(ratings, truth):
    experts = [c for c in ratings.columns if c.startswith("E")]
    w = {}
    for r, block in ratings.groupby("round"):
        wide = block.set_index("factor")[experts]
        w[r] = _kendall_w(wide)
        agreement = {e: stats.spearmanr(wide[e], wide.drop(columns=e).mean(axis=1)).statistic for e in experts}
        assert min(agreement, key=agreement.get) == truth["experts"]["dissenting_expert"]
        without = _kendall_w(wide.drop(columns=truth["experts"]["dissenting_expert"]))
        assert without > w[r] + 0.03  # leaving the dissenter out raises W the most
        true_rank = stats.rankdata([-truth["experts"]["true_importance"][f] for f in wide.index])
        assert stats.spearmanr(wide.mean(axis=1), true_rank).statistic > 0.9
    assert w[2] > w[1]


def test_expert_panel(truth):
    panel = pd.read_csv(DEMO_RAW / "expert_panel.csv")
    assert list(panel.columns) == ["expert_id", "role", "years_experience", "argumentation", "familiarity"]
    assert panel[["argumentation", "familiarity"]].stack().between(0, 1).all()
    competence = panel.set_index("expert_id")[["argumentation", "familiarity"]].mean(axis=1)
    assert competence.idxmin() == truth["experts"]["dissenting_expert"]
    np.testing.assert_allclose(competence.to_numpy(), list(truth["experts"]["competence"].values()), atol=1e-9)


# --- service records ------------------------------------------------------------------------------------
def test_service_records_volume_and_rates(records, truth):
    assert records["order_id"].is_unique and len(records) == truth["service_records"]["n_orders"]
    per_month = records.groupby(records["contract_signed_at"].dt.to_period("M")).size()
    assert len(per_month) == 18 and str(per_month.index[0]) == "2025-01"
    assert per_month.between(40, 70).all()
    inquiry_months = records.groupby(records["inquiry_at"].dt.to_period("M")).size()
    assert inquiry_months.equals(per_month)  # one subgroup per month for inquiry- and contract-dated KPIs
    assert records["complaint"].mean() == pytest.approx(0.06, abs=0.02)
    assert records["contract_terms_met"].mean() == pytest.approx(0.96, abs=0.02)
    assert records["complaint_at"].notna().eq(records["complaint"] == 1).all()
    for start, end in [("inquiry_at", "response_at"), ("response_at", "contract_signed_at"),
                       ("contract_signed_at", "actual_delivery"), ("complaint_at", "complaint_resolved_at")]:
        assert (records[end] >= records[start])[records[end].notna()].all(), (start, end)
    hours = (records["response_at"] - records["inquiry_at"]).dt.total_seconds() / 3600
    assert hours.median() == pytest.approx(6, rel=0.15)
    assert set(records["origin"]) == {"foreign", "lithuanian"}


def test_planted_process_shift(records, truth):
    shift = truth["service_records"]["process_shift"]
    month = records["contract_signed_at"].dt.to_period("M")
    after = month >= pd.Period(shift["start_month"], "M")
    lead = (records["actual_delivery"] - records["contract_signed_at"]).dt.total_seconds() / 86400
    on_time = records["actual_delivery"] <= records["planned_delivery"]
    assert lead[after].mean() / lead[~after].mean() == pytest.approx(1.35, abs=0.08)
    assert on_time[~after].mean() - on_time[after].mean() > 0.1
    assert on_time[after].mean() == pytest.approx(shift["observed_on_time_rate_after"], abs=1e-6)
    monthly = lead.groupby(month).mean()
    baseline = monthly[monthly.index < pd.Period(shift["start_month"], "M")]
    mr = baseline.diff().abs().mean()
    ucl = baseline.mean() + 2.66 * mr  # XmR limit (Wheeler); every shifted month beyond it
    assert (monthly[monthly.index >= pd.Period(shift["start_month"], "M")] > ucl).all()
    # the inquiry response time is not part of the shift
    hours = (records["response_at"] - records["inquiry_at"]).dt.total_seconds() / 3600
    assert abs(np.log(hours[after]).mean() - np.log(hours[~after]).mean()) < 0.15


# --- other catalogues -----------------------------------------------------------------------------------
def test_generic_model_for_another_catalogue(tmp_path):
    study = ROOT / "studies" / "example-it" / "study.yaml"
    if not study.is_file():
        pytest.skip("studies/example-it is not in this checkout")
    cfg = load_study(study)
    written = generate_study(cfg, out_dir=tmp_path)
    again = generate_study(cfg, out_dir=tmp_path / "again")
    assert [sha(p) for p in written] == [sha(p) for p in again]
    raw = cfg.data.survey
    survey = pd.read_csv(tmp_path / "survey.csv", sep=raw.delimiter, keep_default_na=False)
    assert list(survey.columns) == cfg.codebook_table["variable"].tolist()
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["synthetic"] is True and truth["experts"] is None and truth["service_records"] is None
    assert set(survey[cfg.group.column]) == set(cfg.group.levels)
    perf = [v for v in survey.columns if v.startswith("P_")]
    codes = {str(c) for c in cfg.missing_codes.dont_know + cfg.missing_codes.skipped}
    values = survey[perf].astype(str)
    answered = values[~values.isin(codes)].stack().dropna().astype(int)
    assert answered.between(1, 7).all() and answered.nunique() == 7
