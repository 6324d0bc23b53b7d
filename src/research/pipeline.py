"""``research run``: execute the study's notebooks in dependency order, incrementally and in parallel.

The graph of notebooks is declared once, in :data:`GRAPH`. For each notebook the pipeline

1. computes a fingerprint of everything the notebook's outputs depend on: its source (cells and tags), its
   parameters, the content (SHA-256) of the study config, codebook and raw data files, the content of
   the outputs (results JSON and processed tables) of every notebook it depends on, directly or
   through others, and the package source (``src/research/**``);
2. skips the notebook when ``reports/<study>/manifest.json`` holds the same fingerprint and its outputs
   are still there, unchanged; otherwise
3. executes it with papermill in the ``research-study`` kernel (working directory: the project root) in
   a worker process, writes ``reports/<study>/notebooks/NN_name.ipynb``, the reviewer report
   ``reports/<study>/NN_name.html`` (no code) and the full report ``reports/<study>/code/NN_name.html``,
   all atomically, each ending with a provenance section;
4. finally renders ``reports/<study>/index.html``.

Independent notebooks run at the same time (``-j``). Each worker process runs one kernel over the ZeroMQ
``ipc`` transport (Unix sockets in a private temporary folder) instead of TCP ports: with TCP,
jupyter_client picks "free" ports by binding and releasing them, so kernels started at the same moment —
by this pipeline, by pytest-xdist, or by another user — can pick the same port and die with
``ZMQError: Address already in use`` (nteract/papermill#511, snakemake/snakemake#3689). Socket files in a
folder nobody else uses cannot collide. Each notebook runs in its own process because papermill changes
the process-wide working directory while it executes (``cwd=``), which threads would race on.

A failing notebook stops the notebooks that need it; independent notebooks finish. The failure is shown
as the notebook, the cell, the error type and message (a :class:`~research.errors.ResearchError` as its
one line) and the paths of the partially executed notebook and its HTML, and the exit status is 1.

Interruption never leaves a half-written file. Every file is written to a temporary file and renamed
(:mod:`research.io`; papermill's own, repeatedly rewritten output notebook lives in a scratch folder outside
the reports). Ctrl-C, SIGTERM and SIGHUP stop the run in order (status 130): each worker interrupts its
kernel (SIGINT, so the running cell unwinds and its atomic writes delete their temporary files), shuts it
down and exits without writing reports; the notebook stays stale in the manifest and reruns next time. A
worker whose run was killed outright (SIGKILL) notices that its parent is gone and stops the same way. What a
harder crash could still leave (temporary files of a kernel killed mid-write) is removed at the start of the
next run, under the run's lock.

The no-change path (everything up to date) reads YAML, JSON and file hashes only; it imports neither
pandas nor papermill, so it takes well under a second.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from . import paths
from .errors import ConfigError, ResearchError

MANIFEST_VERSION = 1
EVENT_PREFIX = "@@research-event "
KERNEL_START_TIMEOUT = 180  # seconds; kernels start slowly when several start on a busy machine
KERNEL_START_ATTEMPTS = 2
# Stopping a worker: its kernel is interrupted at once and again after INTERRUPT_AGAIN seconds (the first
# SIGINT is lost when it falls between two cells), and killed after WORKER_STOP_GRACE seconds.
INTERRUPT_AGAIN = 2.0
WORKER_STOP_GRACE = 8.0
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
STAGING_AGE = 600  # seconds: a prepare staging folder older than this belongs to no live run
# Numerical libraries run single-threaded inside the kernels unless the user says otherwise: results do not
# depend on how many notebooks run at once, and parallel notebooks do not oversubscribe the cores.
KERNEL_ENVIRONMENT = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1"}


# --- the graph ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """One notebook of the study.

    Attributes
    ----------
    name
        ``NN_name``: the notebook's stem and the stem of its reports.
    short
        Short name: results JSON ``results/<short>.json`` and text catalogue ``locales/<short>.yaml``.
    needs
        Short names of the notebooks whose outputs it reads.
    tables
        Processed tables it writes (``data/processed/<study>/<table>.parquet|csv``). Tables it writes but
        does not declare are found by their modification time after the run.
    """

    name: str
    short: str
    needs: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def number(self) -> str:
        head = self.name.split("_", 1)[0]
        return head if head.isdigit() else ""


GRAPH: tuple[Node, ...] = (
    Node("00_prepare_data", "prepare", (),
         ("survey", "survey_missing", "expert_ratings", "expert_panel", "service_records")),
    Node("01_expert_evaluation", "experts", ("prepare",), ("expert_weights", "expert_agreement")),
    Node("02_factor_analysis", "efa", ("prepare",), ("factor_scores", "efa_loadings", "factor_map")),
    Node("03_survey_comparison", "survey", ("prepare", "efa"), ("item_comparison", "ipa_items", "ipa_stages")),
    Node("04_supervision_model", "model", ("experts", "efa", "survey"),
         ("model_factors", "model_stage_index", "improvement_areas")),
    Node("05_quality_monitoring", "monitoring", ("prepare", "model"), ("kpi_status", "kpi_monthly")),
)


def check_graph(graph: Sequence[Node]) -> tuple[Node, ...]:
    """Validate ``graph`` and return it in a dependency order (stable: declaration order among equals).

    Raises
    ------
    ConfigError
        Duplicate names, a dependency that is not in the graph, or a cycle.
    """
    by_short: dict[str, Node] = {}
    for node in graph:
        if node.short in by_short or any(n.name == node.name for n in by_short.values()):
            raise ConfigError(f"pipeline graph: notebook {node.name!r} ({node.short}) is declared twice")
        by_short[node.short] = node
    for node in graph:
        unknown = [d for d in node.needs if d not in by_short]
        if unknown:
            raise ConfigError(f"pipeline graph: {node.name} needs {', '.join(unknown)}, which is not a notebook "
                              f"of the graph ({', '.join(by_short)})")
    ordered: list[Node] = []
    done: set[str] = set()
    remaining = list(graph)
    while remaining:
        ready = [n for n in remaining if all(d in done for d in n.needs)]
        if not ready:
            cycle = ", ".join(n.name for n in remaining)
            raise ConfigError(f"pipeline graph: the dependencies of {cycle} form a cycle")
        for n in ready:
            ordered.append(n)
            done.add(n.short)
        remaining = [n for n in remaining if n.short not in done]
    return tuple(ordered)


def select(graph: Sequence[Node], only: Iterable[str]) -> tuple[tuple[Node, ...], set[str]]:
    """The notebooks a run covers: those named in ``only`` (short name, ``NN_name``, file or number) and
    everything they need; all of ``graph`` when ``only`` is empty. Returns (ordered nodes, named shorts)."""
    ordered = check_graph(graph)
    only = [o.strip() for o in only if o.strip()]
    if not only:
        return ordered, set()
    named: set[str] = set()
    for wanted in only:
        stem = wanted[:-6] if wanted.endswith(".ipynb") else wanted
        stem = Path(stem).name
        match = [n for n in ordered if stem in (n.short, n.name) or (stem.isdigit() and n.number == stem.zfill(2))]
        if not match:
            names = ", ".join(f"{n.short} ({n.name})" for n in ordered)
            raise ConfigError(f"--only {wanted}: no such notebook; expected one of {names}")
        named.add(match[0].short)
    needed = set(named)
    for node in reversed(ordered):
        if node.short in needed:
            needed.update(node.needs)
    return tuple(n for n in ordered if n.short in needed), named


# --- parameters -----------------------------------------------------------------------------------------
def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """Parse ``-p KEY=VALUE`` options; each value is read as one YAML scalar (``3`` -> int, ``0.01`` ->
    float, ``true`` -> bool, ``null`` or nothing -> ``None``, ``'007'`` -> the string ``007``); a one-line
    flow list of such scalars (``[foreign, lithuanian]``) gives a list, for list parameters.

    Values are data, never code: any other value (text, a mapping, a date, several lines) is passed on as
    exactly the string typed, and papermill writes strings as escaped Python literals.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"-p {pair!r}: expected KEY=VALUE where KEY is the name of a notebook parameter")
        if key == "study":
            raise ConfigError("-p study=...: choose the study with --study PATH")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        single_line = "\n" not in raw
        quoted = isinstance(value, str) and raw.strip()[:1] in ("'", '"') and single_line
        scalar_list = (isinstance(value, list) and raw.strip().startswith("[") and single_line
                       and all(v is None or isinstance(v, str | bool | int | float) for v in value))
        if not (value is None or isinstance(value, bool | int | float) or quoted or scalar_list):
            value = raw  # verbatim: YAML would fold newlines and strip spaces of a plain string
        out[key] = value
    return out


def _read_notebook(path: Path) -> dict[str, Any]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable notebook ({e})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ConfigError(f"{path}: not a Jupyter notebook (no cells)")
    return nb


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def notebook_parameters(nb: Mapping[str, Any], path: Path | str = "notebook") -> tuple[str, ...]:
    """Names assigned in the cell tagged ``parameters`` (read with :mod:`ast`, nothing is executed)."""
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            try:
                tree = ast.parse(_source(cell))
            except SyntaxError as e:
                raise ConfigError(f"{path}: the parameters cell is not valid Python (line {e.lineno}: {e.msg})") from None
            names: list[str] = []
            for stmt in tree.body:
                targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else (
                    stmt.targets if isinstance(stmt, ast.Assign) else [])
                names.extend(t.id for t in targets if isinstance(t, ast.Name))
            return tuple(dict.fromkeys(names))
    return ()


def notebook_hash(nb: Mapping[str, Any]) -> str:
    """SHA-256 of what a notebook computes: cell types, sources and tags, and the kernel name
    (not outputs, execution counts or editor metadata)."""
    cells = [[c.get("cell_type"), _source(c), sorted(c.get("metadata", {}).get("tags", []))] for c in nb["cells"]]
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    return _sha_text(json.dumps({"cells": cells, "kernel": kernel}, sort_keys=True, ensure_ascii=False))


# --- hashing --------------------------------------------------------------------------------------------
def _sha_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: Path) -> str | None:
    """Content hash of a file; ``None`` when it does not exist."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def package_hash(root: Path | None = None) -> str:
    """SHA-256 over the relative paths and contents of every file of the package (``src/research/**``),
    caches excluded: any change to the analysis code reruns the notebooks."""
    root = root or Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix not in (".pyc", ".pyo")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update((sha256_file(path) or "").encode())
        h.update(b"\0")
    return h.hexdigest()


def _rel(path: Path, *bases: Path) -> str:
    for base in bases:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return path.resolve().as_posix()


# --- the study, read lightly ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyFacts:
    """What the pipeline needs from a study config, read with plain YAML (no pandas, no pydantic).

    The notebooks validate the config fully; :func:`run` also does before it executes anything.
    """

    source: Path
    relative: str
    study_id: str
    title: Mapping[str, str]
    company: str
    synthetic: bool
    language: str
    inputs: tuple[Path, ...]  # config, codebook, raw data files (in this order)

    @classmethod
    def read(cls, study: str | os.PathLike | None) -> StudyFacts:
        source = paths.inside_project(study or paths.DEFAULT_STUDY, what="study config")
        if not source.is_file():
            raise ConfigError(f"{source}: study config not found")
        try:
            raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: is not valid YAML ({getattr(e, 'problem', e)})") from None
        info = raw.get("study") if isinstance(raw, dict) else None
        if not isinstance(info, dict) or not info.get("id"):
            raise ConfigError(f"{source}: key study.id: required key is missing")
        title = info.get("title") if isinstance(info.get("title"), dict) else {"en": str(info.get("title", ""))}
        try:  # refused before anything reads them (or hashes them): paths leaving the project
            files = [source, paths.inside_project(str(raw.get("codebook", "codebook.csv")), base=source.parent,
                                                  what="codebook")]
            data = raw.get("data") or {}
            for key, value in data.items() if isinstance(data, dict) else []:
                rel = value.get("path") if isinstance(value, dict) else value
                if isinstance(rel, str) and rel:
                    files.append(paths.inside_project(rel, what=f"data.{key}" + (".path" if key != "truth" else "")))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        relative = _rel(source, paths.PROJECT_ROOT)
        return cls(source=source, relative=relative, study_id=str(info["id"]), title=title,
                   company=str(info.get("company", "")), synthetic=bool(info.get("synthetic", False)),
                   language=str(raw.get("language", "en")), inputs=tuple(dict.fromkeys(files)))


@dataclass(frozen=True)
class Layout:
    """Where one run writes: ``reports/<study>[-<lang>]`` and ``data/processed/<study>[-<lang>]``."""

    output_root: Path
    study_id: str
    suffix: str = ""

    @property
    def reports(self) -> Path:
        return self.output_root / "reports" / f"{self.study_id}{self.suffix}"

    @property
    def processed(self) -> Path:
        return self.output_root / "data" / "processed" / f"{self.study_id}{self.suffix}"

    @property
    def manifest(self) -> Path:
        return self.reports / "manifest.json"

    @property
    def index(self) -> Path:
        return self.reports / "index.html"

    def results(self, node: Node) -> Path:
        return self.reports / "results" / f"{node.short}.json"

    def executed(self, node: Node) -> Path:
        return self.reports / "notebooks" / node.file

    def reviewer_html(self, node: Node) -> Path:
        return self.reports / f"{node.name}.html"

    def full_html(self, node: Node) -> Path:
        return self.reports / "code" / f"{node.name}.html"

    def reports_of(self, node: Node) -> tuple[Path, ...]:
        return self.executed(node), self.reviewer_html(node), self.full_html(node)

    def tables(self, node: Node) -> list[Path]:
        return [self.processed / f"{t}{ext}" for t in node.tables for ext in (".parquet", ".csv")]

    def rel(self, path: Path) -> str:
        return _rel(path, self.output_root, paths.PROJECT_ROOT)


# --- outcomes -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """Where and how a notebook failed."""

    cell: int | None  # 1-based cell number in the notebook file (markdown cells count)
    n_cells: int | None
    ename: str
    evalue: str
    research_error: bool  # a ResearchError subclass: its message is the whole story
    source_line: str = ""

    def describe(self) -> str:
        """``cell 4 of 9: DataError: <message>`` (other errors: the first line of the message)."""
        where = f"cell {self.cell} of {self.n_cells}" if self.cell else "kernel start-up"
        message = self.evalue.strip() or "(no message)"
        if not self.research_error and "\n" in message:
            message = message.splitlines()[0] + " …"
        return f"{where}: {self.ename}: {message}"


@dataclass(frozen=True)
class Outcome:
    """What happened to one notebook in a run.

    ``status``: ``ran`` (executed now), ``up_to_date``, ``failed``, ``skipped`` (a notebook it needs
    failed or is missing) or ``missing`` (no notebook file).
    """

    name: str
    short: str
    status: str
    reason: str = ""
    wall_time: float | None = None
    failure: Failure | None = None
    paths: tuple[str, ...] = ()
    after_failure: bool = False  # skipped because a notebook it needs failed (not merely missing)


@dataclass(frozen=True)
class RunSummary:
    outcomes: tuple[Outcome, ...]
    reports: Path
    index: Path | None

    @property
    def ok(self) -> bool:
        """No notebook failed. (Missing notebook files, and what needs them, are reported, not fatal.)"""
        return not any(o.status == "failed" or o.after_failure for o in self.outcomes)

    def by_status(self, status: str) -> list[str]:
        return [o.name for o in self.outcomes if o.status == status]


# --- manifest -------------------------------------------------------------------------------------------
def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": MANIFEST_VERSION, "notebooks": {}}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return {"version": MANIFEST_VERSION, "notebooks": {}}
    data.setdefault("notebooks", {})
    return data


def _write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    from .io import write_json

    write_json(path, manifest)


def _hash_outputs(files: Iterable[str], layout: Layout) -> dict[str, str | None]:
    return {rel: sha256_file(_abs(rel, layout)) for rel in files}


def _abs(rel: str, layout: Layout) -> Path:
    p = Path(rel)
    if p.is_absolute():
        return p
    candidate = layout.output_root / p
    return candidate if candidate.exists() or not (paths.PROJECT_ROOT / p).exists() else paths.PROJECT_ROOT / p


# --- fingerprints ---------------------------------------------------------------------------------------
@dataclass
class _Plan:
    node: Node
    path: Path
    nb: dict[str, Any]
    params: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    key: str = ""


def _fingerprint(plan: _Plan, *, files: Mapping[str, str | None], pkg: str,
                 upstream: Mapping[str, Mapping[str, str | None]]) -> None:
    plan.inputs = {"notebook": notebook_hash(plan.nb), "parameters": plan.params, "files": dict(files),
                   "package": pkg, "upstream": {k: dict(v) for k, v in upstream.items()},
                   "kernel": paths.KERNEL_NAME}
    plan.key = _sha_text(json.dumps(plan.inputs, sort_keys=True, ensure_ascii=False, default=str))


def _why_stale(plan: _Plan, entry: Mapping[str, Any] | None, layout: Layout) -> str:
    """Empty when the notebook is up to date; else the reason it must run."""
    if not entry:
        return "never run"
    if entry.get("status") != "ok":
        return "the previous run failed"
    old = entry.get("inputs") or {}
    if entry.get("key") != plan.key:
        changed = [label for key, label in (("notebook", "notebook changed"), ("parameters", "parameters changed"),
                                            ("package", "package source changed"), ("kernel", "kernel changed"))
                   if old.get(key) != plan.inputs.get(key)]
        files = [Path(k).name for k, v in plan.inputs["files"].items() if (old.get("files") or {}).get(k) != v]
        if files:
            changed.append("input changed: " + ", ".join(files))
        ups = [k for k, v in plan.inputs["upstream"].items() if (old.get("upstream") or {}).get(k) != v]
        if ups:
            changed.append("outputs of " + ", ".join(ups) + " changed")
        return "; ".join(changed) or "inputs changed"
    for rel, sha in (entry.get("outputs") or {}).items():
        if sha256_file(_abs(rel, layout)) != sha:
            return f"output {'missing' if not _abs(rel, layout).exists() else 'changed'}: {rel}"
    return ""


# --- the run --------------------------------------------------------------------------------------------
def run(*, study: str | os.PathLike | None = None, only: Iterable[str] = (), force: bool = False,
        jobs: int | None = None, params: Mapping[str, Any] | Iterable[str] | None = None, quiet: bool = False,
        notebooks_dir: str | os.PathLike | None = None, graph: Sequence[Node] = GRAPH,
        output_root: str | os.PathLike | None = None, stream: TextIO | None = None) -> RunSummary:
    """Run the study's notebooks that are out of date and render the reports.

    Parameters
    ----------
    study
        Study config (default ``studies/demo/study.yaml``); passed to every notebook as ``study``,
        relative to the project root.
    only
        Notebooks to run (short name, ``NN_name`` or number). Each named notebook runs even when up to
        date; the notebooks it needs run only when their outputs are missing or stale.
    force
        Run every selected notebook even when up to date.
    jobs
        Notebooks executed at once (default: ``os.cpu_count()``).
    params
        Notebook parameters (``{"alpha": 0.01}`` or ``["alpha=0.01"]``). A notebook receives those it
        declares in its ``parameters`` cell; a key that no selected notebook declares is an error.
        ``language`` different from the config's renders into ``reports/<study>-<language>`` (with its
        own ``data/processed/<study>-<language>``: processed tables carry labels in the report language).
    quiet
        One line per notebook instead of progress bars.
    notebooks_dir, graph
        Where the notebooks are and how they depend on each other (tests use fixture notebooks).
    output_root
        Folder holding ``reports/`` and ``data/processed/`` (default ``$RESEARCH_OUTPUT_ROOT`` or the
        project root). Passed to the kernels as ``RESEARCH_OUTPUT_ROOT``.
    stream
        Where progress and messages go (default ``sys.stderr``).

    Returns
    -------
    RunSummary
        One :class:`Outcome` per selected notebook; ``ok`` is False when a notebook failed.

    Raises
    ------
    ConfigError
        Bad study config, unknown ``--only`` name, bad or unknown ``-p`` key, bad ``-j``.
    """
    stream = stream or sys.stderr
    if jobs is not None and jobs < 1:
        raise ConfigError(f"-j {jobs}: the number of notebooks run at once must be at least 1")
    jobs = jobs or os.cpu_count() or 1
    facts = StudyFacts.read(study)
    values = parse_params(params) if params is not None and not isinstance(params, Mapping) else dict(params or {})
    if "study" in values:
        raise ConfigError("-p study=...: choose the study with --study PATH")
    language = values.get("language")
    if language is not None and not (isinstance(language, str) and re.fullmatch(r"[a-z]{2}", language)):
        raise ConfigError(f"-p language={language!r}: expected a two-letter language code such as en or lt")
    suffix = f"-{language}" if isinstance(language, str) and language and language != facts.language else ""
    root = Path(output_root or os.environ.get("RESEARCH_OUTPUT_ROOT") or paths.OUTPUT_ROOT).resolve()
    layout = Layout(root, facts.study_id, suffix)
    nb_dir = Path(notebooks_dir or paths.NOTEBOOKS).resolve()
    selected, named = select(graph, only)

    plans: dict[str, _Plan] = {}
    missing: list[Node] = []
    for node in selected:
        path = nb_dir / node.file
        if not path.is_file():
            if node.short in named:
                raise ConfigError(f"--only {node.short}: notebook {path} does not exist")
            missing.append(node)
            continue
        nb = _read_notebook(path)
        declared = notebook_parameters(nb, path)
        given = {"study": facts.relative} if "study" in declared else {}
        given.update({k: v for k, v in values.items() if k in declared})
        plans[node.short] = _Plan(node, path, nb, given)
    declared_anywhere = {k for p in plans.values() for k in notebook_parameters(p.nb)}
    unknown = sorted(set(values) - declared_anywhere)
    if unknown:
        known = ", ".join(sorted(declared_anywhere - {"study"})) or "none"
        raise ConfigError(f"-p {unknown[0]}: no notebook of this run has a parameter of that name "
                          f"(parameters: {known})")

    for key, value in values.items():  # papermill would only warn about a parameter a notebook lacks
        takers = [p.node.name for p in plans.values() if key in p.params]
        print(f"-p {key}={value!r} goes to {', '.join(takers)}", file=stream, flush=True)
    runner = _Runner(facts=facts, layout=layout, plans=plans, selected=selected, missing=missing, named=named,
                     force=force, jobs=jobs, quiet=quiet, stream=stream, all_nodes=check_graph(graph), nb_dir=nb_dir)
    with _stop_signals_interrupt():
        return runner.go()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the run as Ctrl-C does (KeyboardInterrupt: workers stopped, status 130)
    instead of ending the process on the spot and leaving its workers running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupt) for s in STOP_SIGNALS if s != signal.SIGINT}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Runner:
    """The scheduler: decides what is stale when its inputs are final, starts workers, collects events."""

    def __init__(self, *, facts: StudyFacts, layout: Layout, plans: dict[str, _Plan], selected: tuple[Node, ...],
                 missing: list[Node], named: set[str], force: bool, jobs: int, quiet: bool, stream: TextIO,
                 all_nodes: tuple[Node, ...], nb_dir: Path):
        self.facts, self.layout, self.plans, self.selected = facts, layout, plans, selected
        self.all_nodes, self.nb_dir = all_nodes, nb_dir  # the index lists every notebook, not only this run's
        self.named, self.force, self.jobs, self.quiet, self.stream = named, force, jobs, quiet, stream
        self.manifest = _load_manifest(layout.manifest)
        self.outcomes: dict[str, Outcome] = {n.short: Outcome(n.name, n.short, "missing", "notebook file not found")
                                             for n in missing}
        self.files = {_rel(p, paths.PROJECT_ROOT): sha256_file(p) for p in facts.inputs}
        self.pkg = package_hash()
        self.events: queue.Queue = queue.Queue()
        self.running: dict[str, _Worker] = {}
        self.prepared = False
        self.environment: dict[str, Any] = {}
        self.bars: dict[str, Any] = {}
        self.overall = None
        self.free_slots: deque[int] = deque(range(1, jobs + 1))
        self.scratch: Path | None = None
        self.lock: Any = None

    # -- messages
    def say(self, line: str) -> None:
        if self.overall is not None:
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _report(self, outcome: Outcome) -> None:
        self.outcomes[outcome.short] = outcome
        if self.overall is not None:
            self.overall.update(1)
        label = {"ran": "ran", "up_to_date": "up to date", "failed": "FAILED", "skipped": "skipped",
                 "missing": "missing"}[outcome.status]
        detail = f" in {outcome.wall_time:.1f} s" if outcome.wall_time is not None else ""
        why = f" ({outcome.reason})" if outcome.reason else ""
        if outcome.status == "failed" and outcome.failure:
            why = f" at {outcome.failure.describe()}"
        self.say(f"{label:<10} {outcome.name}{detail}{why}")

    # -- preparation that only a real run needs (imports pandas, validates the config, asks git)
    def _prepare_to_execute(self) -> None:
        if self.prepared:
            return
        self.prepared = True
        from .config import load_study
        from .render import environment_provenance

        language = next((p.params.get("language") for p in self.plans.values() if p.params.get("language")), None)
        load_study(self.facts.source, language=language)
        self.lock = _lock_reports(self.layout)
        _remove_leftovers(self.layout)
        self.scratch = Path(tempfile.mkdtemp(prefix="research-run-", dir="/tmp" if os.path.isdir("/tmp") else None))
        env = {**KERNEL_ENVIRONMENT, **{k: v for k, v in os.environ.items() if k in KERNEL_ENVIRONMENT}}
        self.kernel_env = env
        self.environment = environment_provenance(paths.PROJECT_ROOT, env)
        if not self.quiet:
            from tqdm import tqdm

            todo = sum(1 for n in self.selected if n.short not in self.outcomes)
            self.overall = tqdm(total=todo, desc=f"{self.facts.study_id}{self.layout.suffix}", unit="notebook",
                                position=0, file=self.stream, dynamic_ncols=True)

    def _upstream(self, node: Node) -> dict[str, dict[str, str | None]]:
        """Current hashes of the outputs of every notebook ``node`` depends on, directly or not: a notebook
        may read an earlier table itself (the model reads the prepared survey), not only through its
        direct dependencies."""
        by_short = {n.short: n for n in self.all_nodes}
        ancestors, todo = set(), list(node.needs)
        while todo:
            dep = todo.pop()
            if dep not in ancestors:
                ancestors.add(dep)
                todo.extend(by_short[dep].needs)
        out = {}
        for dep in sorted(ancestors):
            entry = self.manifest["notebooks"].get(by_short[dep].name, {})
            out[dep] = _hash_outputs(entry.get("data_outputs") or [], self.layout)
        return out

    def go(self) -> RunSummary:
        pending = [n for n in self.selected if n.short not in self.outcomes]
        for node in self.selected:
            if node.short in self.outcomes:
                self._report(self.outcomes[node.short])
        try:
            while pending or self.running:
                progressed = False
                for node in list(pending):
                    deps = [self.outcomes.get(d) for d in node.needs if d in {n.short for n in self.selected}]
                    if any(o is None for o in deps):
                        continue
                    bad = [o for o in deps if o.status in ("failed", "skipped", "missing")]
                    if bad:
                        pending.remove(node)
                        self._report(Outcome(node.name, node.short, "skipped",
                                             "needs " + ", ".join(f"{o.name} ({o.status})" for o in bad),
                                             after_failure=any(o.status == "failed" or o.after_failure
                                                               for o in bad)))
                        progressed = True
                        continue
                    if len(self.running) >= self.jobs:
                        break  # keep declaration order: wait for a free worker
                    plan = self.plans[node.short]
                    _fingerprint(plan, files=self.files, pkg=self.pkg, upstream=self._upstream(node))
                    entry = self.manifest["notebooks"].get(node.name)
                    reason = _why_stale(plan, entry, self.layout)
                    if not reason and (self.force or node.short in self.named):
                        reason = "forced" if self.force else "requested with --only"
                    pending.remove(node)
                    progressed = True
                    if not reason:
                        self._report(Outcome(node.name, node.short, "up_to_date", "",
                                             paths=tuple(self.layout.rel(p) for p in self.layout.reports_of(node))))
                        continue
                    self._prepare_to_execute()
                    self._start(plan, reason)
                if self.running and not progressed:
                    self._handle_events(timeout=0.2)
                elif pending and not self.running and not progressed:  # pragma: no cover - a scheduler bug
                    raise RuntimeError(f"pipeline stalled with {[n.name for n in pending]} pending")
        except BaseException:
            _stop_all(list(self.running.values()))
            if self.lock is not None:  # at once: a caller that survives the interrupt (IPython) can run again
                self.lock.close()
            raise
        finally:
            if self.overall is not None:
                for bar in self.bars.values():
                    bar.close()
                self.overall.close()
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
        try:
            index = self._finish()
        finally:
            if self.lock is not None:
                self.lock.close()  # releases the lock
        summary = RunSummary(tuple(self.outcomes[n.short] for n in self.selected), self.layout.reports, index)
        self._print_failures(summary)
        return summary

    # -- workers
    def _start(self, plan: _Plan, reason: str) -> None:
        node, layout = plan.node, self.layout
        started = datetime.now(UTC)
        lang = plan.params.get("language") or self.facts.language
        title = f"{node.number} {_title(node, lang)} — {self.facts.title.get(lang) or self.facts.title.get('en', '')}"
        prov = {**self.environment,
                "study": {"path": self.facts.relative, "sha256": self.files.get(self.facts.relative)},
                "notebook": {"path": _rel(plan.path, paths.PROJECT_ROOT), "sha256": sha256_file(plan.path)},
                "package_sha256": self.pkg, "parameters": plan.params,
                "inputs": [{"path": k, "sha256": v} for k, v in self.files.items()]
                + [{"path": k, "sha256": v} for outputs in plan.inputs["upstream"].values() for k, v in outputs.items()],
                "kernel": paths.KERNEL_NAME, "run": {"started": started.isoformat(timespec="milliseconds")}}
        spec = {"input": str(plan.path), "executed": str(layout.executed(node)),
                "reviewer_html": str(layout.reviewer_html(node)), "full_html": str(layout.full_html(node)),
                "parameters": plan.params, "kernel_name": paths.KERNEL_NAME, "cwd": str(paths.PROJECT_ROOT),
                "title": title, "lang": lang, "provenance": prov, "scratch": str(self.scratch),
                "nav": {"index": "index.html", "code": f"code/{node.name}.html", "reviewer": f"../{node.name}.html",
                        "index_from_code": "../index.html"}}
        env = {**os.environ, **self.kernel_env, "RESEARCH_OUTPUT_ROOT": str(layout.output_root),
               "RESEARCH_OUTPUT_SUFFIX": layout.suffix}
        slot = self.free_slots.popleft() if self.free_slots else 0
        worker = _Worker(node, spec, env, self.events, slot, reason, started)
        self.running[node.short] = worker
        if self.overall is not None:
            from tqdm import tqdm

            self.bars[node.short] = tqdm(total=None, desc=node.name, unit="cell", position=slot, leave=False,
                                         file=self.stream, dynamic_ncols=True)
        worker.start()

    def _handle_events(self, timeout: float) -> None:
        try:
            short, event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        bar = self.bars.get(short)
        kind = event.get("event")
        if kind == "start" and bar is not None:
            bar.reset(total=event.get("cells"))
        elif kind == "cell" and bar is not None:
            bar.update(1)
        elif kind == "retry":
            self.say(f"retrying  {self.running[short].node.name}: {event.get('reason', '')}")
        elif kind == "exit":
            self._finish_worker(short, event)

    def _finish_worker(self, short: str, event: Mapping[str, Any]) -> None:
        worker = self.running.pop(short)
        if worker.slot:
            self.free_slots.append(worker.slot)
        bar = self.bars.pop(short, None)
        if bar is not None:
            bar.close()
        node, plan, layout = worker.node, self.plans[short], self.layout
        done = worker.result or {}
        wall = done.get("wall_time")
        files = tuple(layout.rel(p) for p in layout.reports_of(node))
        if done.get("ok"):
            written = self._files_written(node, worker)
            data = [layout.rel(layout.results(node))] + [layout.rel(p) for p in written
                                                         if p.parent != layout.reports]
            data = [d for d in dict.fromkeys(data) if _abs(d, layout).exists()]
            exports = [layout.rel(p) for p in written if p.parent == layout.reports]
            outputs = _hash_outputs([*data, *exports, *files], layout)
            self.manifest["notebooks"][node.name] = {
                "short": short, "status": "ok", "key": plan.key, "inputs": plan.inputs, "reason": worker.reason,
                "data_outputs": data, "outputs": outputs, "wall_time": round(wall or 0.0, 3),
                "started": worker.started.isoformat(timespec="milliseconds"),
                "finished": datetime.now(UTC).isoformat(timespec="milliseconds")}
            outcome = Outcome(node.name, short, "ran", worker.reason, wall, paths=files)
        else:
            failure = _failure_from(done, event, worker)
            self.manifest["notebooks"][node.name] = {
                "short": short, "status": "failed", "key": plan.key, "inputs": plan.inputs, "reason": worker.reason,
                "error": failure.describe(), "wall_time": round(wall, 3) if wall else None,
                "started": worker.started.isoformat(timespec="milliseconds"),
                "finished": datetime.now(UTC).isoformat(timespec="milliseconds")}
            written = tuple(f for f in files if _abs(f, layout).exists())
            outcome = Outcome(node.name, short, "failed", worker.reason, wall, failure, written)
        self.manifest.update({"version": MANIFEST_VERSION, "study": self.facts.relative,
                              "study_id": self.facts.study_id, "reports": layout.rel(layout.reports)})
        _write_manifest(layout.manifest, self.manifest)
        self._report(outcome)

    def _files_written(self, node: Node, worker: _Worker) -> list[Path]:
        """Declared tables, plus files modified during the run that no other notebook declares: in the
        processed folder (e.g. ``prepare_manifest.json``) and beside the reports (e.g. exported tables)."""
        layout = self.layout
        declared = layout.tables(node)
        others = {p for n in self.selected if n.short != node.short for p in layout.tables(n)}
        ours = {layout.index, layout.manifest} | {p for n in self.selected for p in layout.reports_of(n)}
        found = []
        for folder in (layout.processed, layout.reports):
            if not folder.is_dir():
                continue
            for p in sorted(folder.iterdir()):
                if (p.is_file() and not p.name.startswith(".") and p not in others and p not in declared
                        and p not in ours and p.stat().st_mtime_ns >= worker.started_ns):
                    found.append(p)
        return [p for p in declared if p.exists()] + found

    # -- the end
    def _finish(self) -> Path | None:
        ran = any(o.status in ("ran", "failed") for o in self.outcomes.values())
        if not ran and self.layout.index.exists():
            return self.layout.index
        if not self.layout.reports.exists() and not ran:
            return None
        self._prepare_environment_only()
        text = _index_html(self.facts, self.layout, self.all_nodes, self.outcomes, self.manifest,
                           self.environment, self.files, self.pkg, self.nb_dir)
        from .io import write_text

        write_text(self.layout.index, text)
        return self.layout.index

    def _prepare_environment_only(self) -> None:
        if not self.environment:
            from .render import environment_provenance

            self.environment = environment_provenance(paths.PROJECT_ROOT, {**KERNEL_ENVIRONMENT})

    def _print_failures(self, summary: RunSummary) -> None:
        failed = [o for o in summary.outcomes if o.status == "failed"]
        for o in failed:
            lines = [f"research: notebook {o.name} failed at {o.failure.describe() if o.failure else 'an unknown point'}"]
            if o.failure and o.failure.source_line:
                lines.append(f"  {'code:':<30} {o.failure.source_line}")
            labels = ("partially executed notebook:", "reviewer report (HTML):", "full report (HTML):")
            node = next(n for n in self.selected if n.short == o.short)
            for label, path in zip(labels, self.layout.reports_of(node), strict=True):
                if self.layout.rel(path) in o.paths:
                    lines.append(f"  {label:<30} {_shown(path)}")
            print("\n".join(lines), file=self.stream, flush=True)
        skipped = [o for o in summary.outcomes if o.status == "skipped"]
        if skipped:
            print("research: not run because a notebook they need failed or is missing: "
                  + ", ".join(o.name for o in skipped), file=self.stream, flush=True)
        counts = {s: len(summary.by_status(s)) for s in ("ran", "up_to_date", "failed", "skipped", "missing")}
        parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v]
        where = f" -> {_shown(summary.index)}" if summary.index else ""
        print(f"research: {', '.join(parts) or 'nothing to do'}{where}", file=self.stream, flush=True)


def _lock_reports(layout: Layout) -> Any:
    """Hold ``reports/<study>/.research-run.lock`` for the run: two runs writing the same reports and
    manifest at once would undo each other's bookkeeping."""
    import fcntl

    layout.reports.mkdir(parents=True, exist_ok=True)
    path = layout.reports / ".research-run.lock"
    handle = open(path, "a+", encoding="utf-8")  # held (and locked) until the run ends
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ResearchError(f"{_shown(layout.reports)}: another `research run` is writing these reports "
                            f"(process {holder}); wait for it to finish") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _remove_leftovers(layout: Layout) -> list[Path]:
    """Remove what a killed run left behind (called under the run's lock): temporary files of interrupted
    atomic writes (``.<name>.<random>.tmp``, :func:`research.io.atomic_path`) in the reports and processed
    folders, and staging folders of an interrupted prepare (``data/processed/.<study>.prepare-*``) older than
    :data:`STAGING_AGE` (a younger one may belong to a run of the study in another language)."""
    removed: list[Path] = []
    for folder in (layout.reports, layout.processed):
        for leftover in sorted(folder.rglob(".*.tmp")) if folder.is_dir() else []:
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
                removed.append(leftover)
    staging = layout.processed.parent
    for leftover in sorted(staging.glob(f".{layout.study_id}.prepare-*")) if staging.is_dir() else []:
        if leftover.is_dir() and time.time() - leftover.stat().st_mtime > STAGING_AGE:
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def _shown(path: Path) -> str:
    """A path as the user can open it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _failure_from(done: Mapping[str, Any], event: Mapping[str, Any], worker: _Worker) -> Failure:
    err = done.get("error")
    if err:
        return Failure(cell=err.get("cell"), n_cells=err.get("n_cells"), ename=err.get("ename", "Error"),
                       evalue=err.get("evalue", ""), research_error=bool(err.get("research_error")),
                       source_line=err.get("source_line", ""))
    tail = " | ".join(worker.stderr_tail[-5:]) or f"worker exited with status {event.get('returncode')}"
    return Failure(None, None, "WorkerError", tail, False)


def _title(node: Node, lang: str) -> str:
    """A notebook's title from its text catalogue (key ``title``), else from its file name."""
    from . import i18n

    try:
        entry = i18n.catalogue(node.short).get("title")
    except Exception:  # a broken catalogue must not stop the index; the notebook itself reports it
        entry = None
    if isinstance(entry, dict) and (entry.get(lang) or entry.get("en")):
        return re.sub(r"<[^>]+>", "", str(entry.get(lang) or entry.get("en")))
    stem = node.name.split("_", 1)[1] if "_" in node.name and node.number else node.name
    return stem.replace("_", " ").capitalize()


def _when(stamp: str | None) -> str:
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC") if stamp else ""
    except ValueError:
        return stamp or ""


def _index_html(facts: StudyFacts, layout: Layout, nodes: Sequence[Node], outcomes: Mapping[str, Outcome],
                manifest: Mapping[str, Any], environment: Mapping[str, Any], files: Mapping[str, str | None],
                pkg: str, nb_dir: Path) -> str:
    from .render import render_index

    lang = facts.language if not layout.suffix else layout.suffix[1:]
    rows = []
    for node in nodes:
        outcome = outcomes.get(node.short)
        entry = (manifest.get("notebooks") or {}).get(node.name) or {}
        status = {"ran": "ok", "up_to_date": "ok", "failed": "failed", "skipped": "skipped",
                  "missing": "missing"}.get(outcome.status if outcome else "", entry.get("status") or "never")
        if not outcome and not (nb_dir / node.file).is_file():
            status = "missing"
        links = []
        for href, label in ((f"{node.name}.html", "reviewer_report"), (f"code/{node.name}.html", "full_report"),
                            (f"notebooks/{node.file}", "executed_notebook")):
            if (layout.reports / href).exists():
                from .i18n import label as cat_label

                links.append({"href": href, "label": cat_label("pipeline", label, lang)})
        results, warnings = {}, []
        try:
            payload = json.loads(layout.results(node).read_text(encoding="utf-8"))
            results, warnings = payload.get("results") or {}, payload.get("warnings") or []
        except (OSError, ValueError):
            pass
        detail = ""
        if outcome and outcome.status == "failed" and outcome.failure:
            detail = outcome.failure.describe()
        elif outcome and outcome.status in ("skipped", "missing"):
            detail = outcome.reason
        rows.append({"number": node.number, "title": _title(node, lang), "short": node.short, "status": status,
                     "detail": detail, "wall_time": entry.get("wall_time"),
                     "finished": _when(entry.get("finished")),
                     "links": links, "stale": status == "skipped" and bool(links),
                     "results": results, "warnings": warnings})
    prov = {**environment, "study": {"path": facts.relative, "sha256": files.get(facts.relative)},
            "package_sha256": pkg, "inputs": [{"path": k, "sha256": v} for k, v in files.items()],
            "kernel": paths.KERNEL_NAME}
    title = facts.title.get(lang) or facts.title.get("en") or facts.study_id
    return render_index(title=title, company=facts.company, synthetic=facts.synthetic, lang=lang,
                        date=datetime.now().date().isoformat(), notebooks=rows, provenance=prov)


class _Worker:
    """One notebook executing in a child process (``python -m research.pipeline``)."""

    def __init__(self, node: Node, spec: Mapping[str, Any], env: Mapping[str, str], events: queue.Queue,
                 slot: int, reason: str, started: datetime):
        self.node, self.spec, self.env, self.events, self.slot = node, spec, dict(env), events, slot
        self.reason, self.started = reason, started
        self.started_ns = time.time_ns()
        self.result: dict[str, Any] | None = None
        self.stderr_tail: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "research.pipeline"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                     cwd=str(paths.PROJECT_ROOT), text=True, encoding="utf-8",
                                     errors="replace", start_new_session=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(self.spec))
        self.proc.stdin.close()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip()
            if line:
                self.stderr_tail = (self.stderr_tail + [line])[-40:]

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.startswith(EVENT_PREFIX):
                continue
            try:
                event = json.loads(line[len(EVENT_PREFIX):])
            except ValueError:
                continue
            if event.get("event") == "done":
                self.result = event
            self.events.put((self.node.short, event))
        returncode = self.proc.wait()
        self.events.put((self.node.short, {"event": "exit", "returncode": returncode}))



def _stop_all(workers: Sequence[_Worker], grace: float = WORKER_STOP_GRACE + 7.0) -> None:
    """Interrupted: terminate every worker (each interrupts and shuts down its kernel, see
    :class:`_WorkerStop`), then kill those still running after ``grace`` seconds. A kernel exits by itself
    when its worker is gone (ipykernel watches its parent process). Further Ctrl-C are ignored meanwhile,
    so an impatient second one cannot leave workers behind."""
    alive = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
    shielded = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS} if shielded else {}
    try:
        for proc in alive:
            proc.terminate()
        deadline = time.monotonic() + grace
        for proc in alive:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- command line ---------------------------------------------------------------------------------------
def run_from_cli(args: Any, *, graph: Sequence[Node] = GRAPH, notebooks_dir: str | os.PathLike | None = None,
                 stream: TextIO | None = None) -> int:
    """``research run``: 0 when every selected notebook is up to date or ran, 1 when one failed."""
    summary = run(study=args.study, only=args.only or (), force=args.force, jobs=args.jobs,
                  params=list(args.param or []), quiet=args.quiet, notebooks_dir=notebooks_dir, graph=graph,
                  stream=stream)
    return 0 if summary.ok else 1


# --- the worker process ---------------------------------------------------------------------------------
def _emit(**event: Any) -> None:
    try:
        sys.stdout.write(EVENT_PREFIX + json.dumps(event, default=str) + "\n")
        sys.stdout.flush()
    except OSError:  # the parent is gone (broken pipe); _WorkerStop notices and stops this worker
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process


class _Stopped(Exception):
    """Raised between two cells when the worker has been asked to stop."""


class _WorkerStop:
    """How a worker stops: on SIGINT, SIGTERM or SIGHUP, or when its parent (the run) has died.

    The notebook executes in a thread; the main thread only waits, so it runs the signal handlers (and
    nbclient, outside the main thread, installs none of its own). Asked to stop, the worker sends SIGINT to
    its kernel's process group: the running cell raises KeyboardInterrupt, the atomic writes in it delete
    their temporary files, and papermill ends with the cell's error and shuts the kernel down. The interrupt
    is repeated once after :data:`INTERRUPT_AGAIN` seconds (one that arrives between two cells is ignored by
    the kernel; the next cell then meets :class:`_Stopped`), and the kernel is killed after
    :data:`WORKER_STOP_GRACE` seconds.
    """

    def __init__(self) -> None:
        self.signum = 0
        self.since = 0.0
        self.interrupts = 0
        self.killed = False
        self.orphaned = False  # the run that started this worker has died
        self.kernels: list[Any] = []  # kernel managers of this worker (they know the kernel's process group)

    def install(self) -> None:
        for s in STOP_SIGNALS:
            signal.signal(s, self._on_signal)
        threading.Thread(target=self._watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.signum:
            self.signum, self.since = signum, time.monotonic()
            self._signal_kernels(signal.SIGINT)

    def _watch_parent(self, parent: int) -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        self.orphaned = True
        os.kill(os.getpid(), signal.SIGTERM)  # handled by _on_signal in the main thread

    def _signal_kernels(self, signum: int) -> None:
        for km in self.kernels:
            provisioner = getattr(km, "provisioner", None)
            group = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
            if group:
                with contextlib.suppress(OSError):
                    os.killpg(group, signum)
        if signum == signal.SIGINT:
            self.interrupts += 1

    def check(self) -> None:
        """Raise :class:`_Stopped` when asked to stop (called after every cell)."""
        if self.signum:
            raise _Stopped(f"stopped by signal {self.signum}")

    def tick(self) -> None:
        """Escalate while the notebook thread has not ended (called by the waiting main thread)."""
        if not self.signum:
            return
        waited = time.monotonic() - self.since
        if self.interrupts < 2 and waited > INTERRUPT_AGAIN:
            self._signal_kernels(signal.SIGINT)
        if not self.killed and waited > WORKER_STOP_GRACE:
            self.killed = True
            self._signal_kernels(signal.SIGKILL)


def _research_error_names() -> set[str]:
    from . import errors

    names, todo = set(), [errors.ResearchError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _ipc_kernel_manager(ipc_dir: str, registry: list[Any] | None = None) -> type:
    """An AsyncKernelManager whose kernel listens on Unix sockets in ``ipc_dir`` (no TCP ports); every
    instance is appended to ``registry`` (so a stopping worker can reach its kernel)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if registry is not None:
                registry.append(self)

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(ipc_dir, "kernel")

    return IpcKernelManager


def _locate_failure(nb: Any, cell_index: int | None) -> tuple[int | None, int]:
    """Map a cell index of the executed notebook to the 1-based cell number of the notebook file
    (papermill inserts an ``injected-parameters`` cell and error markers)."""
    source_cells = [c for c in nb.cells if not {"injected-parameters", "papermill-error-cell-tag"}
                    & set(c.get("metadata", {}).get("tags", []))]
    if cell_index is None:
        return None, len(source_cells)
    executed = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    if cell_index >= len(executed):
        return None, len(source_cells)
    target = executed[cell_index]
    for i, cell in enumerate(source_cells, start=1):
        if cell is target:
            return i, len(source_cells)
    return None, len(source_cells)


def worker_main(spec: Mapping[str, Any]) -> int:
    """Execute one notebook, write it and its two HTML reports atomically, and report events on stdout."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .io import write_text
    from .render import notebook_html, provenance_cell
    from .render import t as text

    stop = _WorkerStop()
    stop.install()
    # Scratch space inside the run's folder, which the parent removes even when it kills this worker.
    scratch = Path(tempfile.mkdtemp(prefix=f"{Path(spec['input']).stem[:12]}-", dir=spec.get("scratch")))
    out = scratch / "executed.ipynb"  # papermill rewrites it after every cell: never in the reports
    executed_cells = 0
    error: dict[str, Any] | None = None

    def on_start(notebook: Any = None, **_: Any) -> None:
        _emit(event="start", cells=sum(1 for c in notebook.cells if c.cell_type == "code"))

    def on_cell(**_: Any) -> None:
        nonlocal executed_cells
        executed_cells += 1
        _emit(event="cell")
        stop.check()

    def execute(ipc_dir: str, failure: list[BaseException]) -> None:
        try:
            pm.execute_notebook(
                spec["input"], str(out), parameters=dict(spec["parameters"]), kernel_name=spec["kernel_name"],
                cwd=spec["cwd"], progress_bar=False, log_output=False, start_timeout=KERNEL_START_TIMEOUT,
                kernel_manager_class=_ipc_kernel_manager(ipc_dir, stop.kernels), on_notebook_start=on_start,
                on_cell_executed=on_cell)
        except BaseException as e:  # handed to the main thread
            failure.append(e)

    t0 = time.perf_counter()
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        error = None
        ipc_dir = tempfile.mkdtemp(prefix="k", dir=scratch)
        if len(ipc_dir) > 90:  # Unix socket paths are limited to about 107 bytes
            shutil.rmtree(ipc_dir, ignore_errors=True)
            ipc_dir = tempfile.mkdtemp(prefix="rk-", dir="/tmp" if os.path.isdir("/tmp") else None)
        t0 = time.perf_counter()
        try:
            failure: list[BaseException] = []
            thread = threading.Thread(target=execute, args=(ipc_dir, failure), name="notebook", daemon=True)
            thread.start()
            while thread.is_alive():
                thread.join(0.2)
                stop.tick()
                if stop.signum and time.monotonic() - stop.since > WORKER_STOP_GRACE + 5:
                    break  # the kernel is dead by now; do not wait for a client that hangs
            if stop.signum:
                raise _Stopped(f"stopped by signal {stop.signum}")
            if failure:
                raise failure[0]
        except _Stopped:
            shutil.rmtree(ipc_dir, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
            if stop.orphaned and spec.get("scratch"):  # the dead run cannot remove its folder; the last worker does
                with contextlib.suppress(OSError):
                    os.rmdir(spec["scratch"])
            # Stopped: the notebook stays stale in the manifest; its previous reports are left as they were.
            if thread.is_alive():
                os._exit(128 + stop.signum)  # skip interpreter shutdown, which would wait for the thread
            return 128 + stop.signum
        except PapermillExecutionError as e:
            error = {"cell_index": e.cell_index, "ename": e.ename, "evalue": e.evalue,
                     "source_line": next((ln.strip() for ln in str(e.source or "").splitlines() if ln.strip()), "")}
        except Exception as e:  # kernel died, start-up timeout, no such kernel, unreadable notebook
            error = {"cell_index": None, "ename": type(e).__name__, "evalue": str(e) or repr(e)}
        finally:
            shutil.rmtree(ipc_dir, ignore_errors=True)
        # Retry only a kernel that died or did not answer while starting, never a notebook's own error.
        transient = error is not None and error["cell_index"] is None and not executed_cells and \
            error["ename"] in ("RuntimeError", "TimeoutError", "DeadKernelError", "ZMQError")
        if not transient or attempt == KERNEL_START_ATTEMPTS:
            break
        _emit(event="retry", reason=f"{error['ename']}: {error['evalue'][:200]}")
    wall = time.perf_counter() - t0

    if out.exists():
        nb = nbformat.read(str(out), as_version=4)
    else:  # the kernel never started: report the notebook as written, so the failure still has a report
        nb = nbformat.read(spec["input"], as_version=4)
    if error is not None:
        cell, n_cells = _locate_failure(nb, error.pop("cell_index"))
        error.update(cell=cell, n_cells=n_cells, research_error=error["ename"] in _research_error_names())
        line = error.get("source_line", "")
        error["source_line"] = line if len(line) <= 80 else line[:77] + "..."
    prov = dict(spec["provenance"])
    prov["run"] = {**prov.get("run", {}), "wall_time": round(wall, 1), "status": "ok" if error is None else
                   f"failed: {error['ename']}"}
    nb.cells.append(nbformat.from_dict(provenance_cell(prov, spec["lang"])))
    write_text(spec["executed"], nbformat.writes(nb))
    nav, lang = spec["nav"], spec["lang"]
    write_text(spec["reviewer_html"], notebook_html(
        nb, reviewer=True, title=spec["title"], lang=lang,
        nav=[{"href": nav["index"], "label": text("back_to_index", lang)},
             {"href": nav["code"], "label": text("code_version", lang)}]))
    write_text(spec["full_html"], notebook_html(
        nb, reviewer=False, title=spec["title"], lang=lang,
        nav=[{"href": nav["index_from_code"], "label": text("back_to_index", lang)},
             {"href": nav["reviewer"], "label": text("reviewer_version", lang)}]))
    shutil.rmtree(scratch, ignore_errors=True)
    _emit(event="done", ok=error is None, wall_time=wall, error=error)
    return 0


def _worker_entry() -> int:
    try:
        spec = json.loads(sys.stdin.read())
    except ValueError as e:
        print(f"research.pipeline worker: bad job description ({e})", file=sys.stderr)
        return 2
    try:
        return worker_main(spec)
    except ResearchError as e:
        print(f"research: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal before the stop handlers were installed
        return 130


if __name__ == "__main__":
    sys.exit(_worker_entry())
