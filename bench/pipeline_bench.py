"""Whole pipeline: ``research run --force`` on the demo study and on a generated large study, and the floor.

Each run is a fresh output root (``RESEARCH_OUTPUT_ROOT`` in a temporary folder, so the project's own
``data/processed`` and ``reports`` are never touched) and is measured by :func:`bench.proc.run_measured`:
wall time, the sampled peak RSS/PSS of the whole process tree (pipeline, workers, kernels) and the largest
single process's ``ru_maxrss``.

Figures are checked while they are made: an IPython start-up file (``IPYTHONDIR`` of the run) wraps
``research.report.Reporter.figure`` in every kernel to log, per figure, the number of artists (lines,
patches, texts, images, and every point/path of every collection - a scatter of n respondents would count
n). After the run the executed notebooks give each embedded PNG's size and the HTML reports their size.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path

from bench.proc import run_measured
from research import paths

ARTIST_HOOK = '''
import json, os, sys

def _bench_count(fig):
    n = {"axes": 0, "lines": 0, "patches": 0, "texts": 0, "images": 0, "collection_items": 0}
    for ax in fig.axes:
        n["axes"] += 1
        n["lines"] += len(ax.lines)
        n["patches"] += len(ax.patches)
        n["texts"] += len(ax.texts)
        n["images"] += len(ax.images)
        for c in ax.collections:
            try:
                offsets = len(c.get_offsets())
            except Exception:
                offsets = 0
            n["collection_items"] += max(offsets, len(c.get_paths() or []))
    n["total"] = n["lines"] + n["patches"] + n["texts"] + n["images"] + n["collection_items"]
    return n

def _bench_patch(*_args, **_kwargs):
    report = sys.modules.get("research.report")
    if report is None or getattr(report.Reporter.figure, "_bench", False):
        return
    original = report.Reporter.figure

    def figure(self, fig, *args, **kwargs):
        try:
            record = {"notebook": self.name, **_bench_count(fig)}
            with open(os.environ["BENCH_ARTISTS_LOG"], "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\\n")
        except Exception:
            pass
        return original(self, fig, *args, **kwargs)

    figure._bench = True
    report.Reporter.figure = figure

if os.environ.get("BENCH_ARTISTS_LOG"):
    get_ipython().events.register("post_run_cell", _bench_patch)
    get_ipython().events.register("pre_run_cell", _bench_patch)
'''


def _ipython_dir(root: Path) -> Path:
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-bench-artists.py").write_text(ARTIST_HOOK, encoding="utf-8")
    return root / "ipython"


def _figures_of(reports: Path) -> dict:
    """Per notebook: the PNGs embedded in the executed notebook (count, bytes) and the HTML sizes."""
    out = {}
    for executed in sorted((reports / "notebooks").glob("*.ipynb")):
        nb = json.loads(executed.read_text(encoding="utf-8"))
        sizes = [len(base64.b64decode(o["data"]["image/png"])) for c in nb.get("cells", [])
                 for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        html = reports / f"{executed.stem}.html"
        code = reports / "code" / f"{executed.stem}.html"
        out[executed.stem] = {"png_count": len(sizes), "png_bytes_total": sum(sizes),
                              "png_bytes_max": max(sizes, default=0),
                              "html_bytes": html.stat().st_size if html.exists() else None,
                              "code_html_bytes": code.stat().st_size if code.exists() else None,
                              "notebook_bytes": executed.stat().st_size}
    return out


def _artists(log: Path) -> dict:
    """Per notebook: the artist counts of its figures, in order."""
    out: dict[str, list[dict]] = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            out.setdefault(record.pop("notebook"), []).append(record)
    return out


def run_pipeline(root: Path, *, study: str | Path, jobs: int, label: str, timeout: float | None = 7200) -> dict:
    """``research run --force`` of ``study`` with output root ``root``; returns the measurements.

    With ``timeout`` (seconds) the whole process tree is stopped when it runs longer; ``timed_out`` then
    says so and ``notebooks`` lists the notebooks that finished before.
    """
    root.mkdir(parents=True, exist_ok=True)
    log = root / "artists.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(root), "IPYTHONDIR": str(_ipython_dir(root)),
           "BENCH_ARTISTS_LOG": str(log)}
    research = shutil.which("research", path=str(Path(sys.executable).parent)) or "research"
    cmd = [research, "run", "--force", "-q", "-j", str(jobs), "--study", str(study)]
    measured = run_measured(cmd, env=env, cwd=paths.PROJECT_ROOT, timeout=timeout)
    notebooks = [line for line in (measured.stdout + measured.stderr).splitlines()
                 if line.split()[:1] and line.split()[0] in ("ran", "failed", "skipped", "missing", "up-to-date")]
    study_id = _study_id(study)
    reports = root / "reports" / study_id
    message = ""
    if measured.timed_out:
        message = f"stopped after {timeout:.0f} s (timeout)"
    elif measured.returncode != 0:
        message = (measured.stderr.strip().splitlines() or [""])[-1]
    return {"label": label, "study": str(study), "jobs": jobs, **measured.summary(), "timeout_seconds": timeout,
            "ok": measured.returncode == 0 and not measured.timed_out, "notebooks": notebooks, "message": message,
            "figures": _figures_of(reports), "artists": _artists(log)}


def _study_id(study: str | Path) -> str:
    import yaml

    path = Path(study)
    path = path if path.is_absolute() else paths.PROJECT_ROOT / path
    return str(yaml.safe_load(path.read_text(encoding="utf-8"))["study"]["id"])


def run_floor(root: Path, *, n_notebooks: int, jobs: int) -> dict:
    """The floor (``bench.floor``) measured the same way."""
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(root)}
    cmd = [sys.executable, "-m", "bench.floor", str(root / "floor"), str(n_notebooks), str(jobs)]
    measured = run_measured(cmd, env=env, cwd=paths.PROJECT_ROOT)
    return {"label": "floor", "n_notebooks": n_notebooks, "jobs": jobs, **measured.summary(),
            "ok": measured.returncode == 0}


def write_large_study(root: Path, *, n_respondents: int, study_id: str = "bench-large") -> dict:
    """Generate the large study in a separate process (so its memory is not the measuring process's)."""
    env = {**os.environ, "RESEARCH_OUTPUT_ROOT": str(root)}
    code = ("import json, sys; from bench.bigstudy import write_big_study; "
            f"print(json.dumps(write_big_study({str(root)!r}, n_respondents={int(n_respondents)}, "
            f"study_id={study_id!r})))")
    measured = run_measured([sys.executable, "-c", code], env=env, cwd=paths.PROJECT_ROOT)
    if measured.returncode != 0:
        raise RuntimeError("bench.bigstudy failed: " + (measured.stderr.strip().splitlines() or ["?"])[-1])
    info = json.loads(measured.stdout.strip().splitlines()[-1])
    info["generation_peak_rss_mb"] = measured.max_process_rss_mb
    return info
