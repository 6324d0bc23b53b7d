"""A bench-only copy of the demo study with many respondents, written under the output root.

``research synth`` serialises every value in Python (byte-stable output for the committed demo data), which
is too slow for a million rows. This writer draws the survey with the package's own model
(:func:`research.synthetic.simulate_survey` on the demo codebook, so the same factor structure, group
effects, ceiling effect and missing codes) and writes it with pyarrow's CSV writer. Expert ratings, the
expert panel and the service records do not grow with the respondents: they are the demo study's files.

Layout (everything inside ``root``, the benchmark's ``RESEARCH_OUTPUT_ROOT``, which
:func:`research.paths.inside_project` accepts)::

    root/studies/<id>/study.yaml      the demo config with id, title, data paths and synthetic.n_respondents changed
    root/studies/<id>/codebook.csv    the demo codebook
    root/data/raw/<id>/*.csv          survey (generated), experts, panel, records (demo copies), truth.json
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

from research import paths
from research.config import load_study
from research.synthetic import model_for, simulate_survey

DEMO = paths.STUDIES / "demo" / "study.yaml"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "integer":
            columns[name] = pa.array(values.to_numpy(dtype=np.int64))
        elif pd.api.types.is_integer_dtype(values.dtype):
            columns[name] = pa.array(values.to_numpy(dtype=np.int64))
        else:
            columns[name] = pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())
    table = pa.table(columns)
    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)


def write_big_study(root: str | Path, *, n_respondents: int, study_id: str = "bench-large", seed: int = 1) -> dict:
    """Write the study under ``root`` and return ``{"study": yaml path, "seconds": generation time, ...}``.

    ``root`` must be the current ``RESEARCH_OUTPUT_ROOT`` (or lie inside the project) so that the config and
    its data are accepted by :func:`research.config.load_study`.
    """
    started = time.perf_counter()
    root = Path(root).resolve()
    study_dir = root / "studies" / study_id
    raw_dir = root / "data" / "raw" / study_id
    study_dir.mkdir(parents=True, exist_ok=True)
    raw_dir.mkdir(parents=True, exist_ok=True)
    demo = load_study(DEMO)
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["study"]["id"] = study_id
    raw["study"]["title"] = {"en": f"Benchmark: demo study with {n_respondents:,} synthetic respondents",
                             "lt": f"Našumo testas: demonstracinis tyrimas su {n_respondents:,} sintetinių "
                                   "respondentų"}
    for key, entry in raw["data"].items():
        name = Path(entry["path"] if isinstance(entry, dict) else entry).name
        target = raw_dir / name
        if isinstance(entry, dict):
            entry["path"] = str(target)
        else:
            raw["data"][key] = str(target)
    raw["synthetic"]["n_respondents"] = int(n_respondents)
    raw["synthetic"]["seed"] = int(seed)
    shutil.copyfile(demo.study_dir / demo.codebook, study_dir / "codebook.csv")
    study_yaml = study_dir / "study.yaml"
    study_yaml.write_text("# Benchmark study written by bench/bigstudy.py (synthetic data, not committed)\n"
                          + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")

    survey, survey_truth = simulate_survey(
        codebook=demo.codebook_table, n_respondents=int(n_respondents), rng=np.random.default_rng(seed),
        group_column=demo.group.column, dont_know_code=demo.missing_codes.dont_know[0],
        skipped_code=demo.missing_codes.skipped[0], model=model_for(demo))
    _write_csv(survey, raw_dir / Path(demo.data.survey.path).name)
    del survey
    for entry in (demo.data.experts, demo.data.expert_panel, demo.data.service_records):
        if entry is not None:
            source = demo.resolve(entry.path)
            shutil.copyfile(source, raw_dir / source.name)
    if demo.data.truth:
        truth = json.loads(demo.resolve(demo.data.truth).read_text(encoding="utf-8"))
        truth.update(study=study_id, seed=int(seed), survey=survey_truth,
                     generator="bench.bigstudy.write_big_study (survey); demo files (experts, records)")
        (raw_dir / Path(demo.data.truth).name).write_text(
            json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    (raw_dir / "README.md").write_text(
        f"# SYNTHETIC benchmark data ({n_respondents:,} respondents)\n\nWritten by `bench/bigstudy.py` for "
        "`python -m bench.run`; the survey follows the demo model of `research.synthetic`, the other files are "
        "the demo study's.\n", encoding="utf-8")
    survey_bytes = (raw_dir / Path(demo.data.survey.path).name).stat().st_size
    return {"study": str(study_yaml), "seconds": time.perf_counter() - started, "survey_bytes": survey_bytes,
            "n_respondents": int(n_respondents)}
