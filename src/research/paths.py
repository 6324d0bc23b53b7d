"""The one place that knows where things live (cookiecutter-data-science style).

All paths are resolved against the project root, the folder holding ``pyproject.toml``; a study's raw
data, processed tables and reports must stay inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


def _find_root() -> Path:
    env = os.environ.get("RESEARCH_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in [Path.cwd().resolve(), *Path.cwd().resolve().parents, *here.parents]:
        if (parent / "pyproject.toml").is_file() and (parent / "studies").is_dir():
            return parent
    return Path.cwd().resolve()


PROJECT_ROOT = _find_root()
NOTEBOOKS = PROJECT_ROOT / "notebooks"
STUDIES = PROJECT_ROOT / "studies"
DATA_RAW = PROJECT_ROOT / "data" / "raw"
# Derived outputs can be redirected (tests, benchmarks) without touching the project's own reports.
OUTPUT_ROOT = Path(os.environ.get("RESEARCH_OUTPUT_ROOT") or PROJECT_ROOT).resolve()
DATA_PROCESSED = OUTPUT_ROOT / "data" / "processed"
REPORTS = OUTPUT_ROOT / "reports"
DEFAULT_STUDY = STUDIES / "demo" / "study.yaml"
KERNEL_NAME = "research-study"


def inside_project(path: str | os.PathLike, *, base: Path | None = None, what: str = "path") -> Path:
    """Resolve ``path`` (relative to ``base``, default the project root) and refuse it outside the project.

    Raises
    ------
    ConfigError
        When the resolved path leaves the project root (``..``, absolute paths elsewhere, symlinks out).
    """
    base = PROJECT_ROOT if base is None else base
    p = Path(path)
    resolved = (p if p.is_absolute() else base / p).resolve()
    root = PROJECT_ROOT.resolve()
    allowed = {root, OUTPUT_ROOT}
    if not any(resolved == r or r in resolved.parents for r in allowed):
        raise ConfigError(f"{what} {str(path)!r} resolves to {resolved}, outside the project {root}; "
                          "keep study files inside the project folder")
    return resolved


@dataclass(frozen=True)
class StudyPaths:
    """Derived locations of one study (``study_id`` is the config's ``study.id``)."""

    study_id: str

    @property
    def processed(self) -> Path:
        return DATA_PROCESSED / f"{self.study_id}{os.environ.get('RESEARCH_OUTPUT_SUFFIX', '')}"

    @property
    def reports(self) -> Path:
        # `research run -p language=lt` renders a second language beside the first, in reports/<id>-lt and
        # data/processed/<id>-lt (tables carry labels); the pipeline tells its kernels through
        # RESEARCH_OUTPUT_SUFFIX (unset: reports/<id>, data/processed/<id>).
        return REPORTS / f"{self.study_id}{os.environ.get('RESEARCH_OUTPUT_SUFFIX', '')}"

    @property
    def results(self) -> Path:
        return self.reports / "results"

    @property
    def figures(self) -> Path:
        return self.reports / "figures"

    def processed_table(self, name: str) -> Path:
        """Parquet path of a processed table (a CSV copy for people sits beside it)."""
        return self.processed / f"{name}.parquet"

    def results_json(self, name: str) -> Path:
        return self.results / f"{name}.json"
