"""Hardening of the whole pipeline (issue 8): interruption, determinism, hostile text, configuration and
numeric edge cases, each checked end to end with real ``research run`` subprocesses.

Every run writes into its own temporary ``RESEARCH_OUTPUT_ROOT``; study variants are copies of the demo
study (config, codebook, raw files) under that root, with fewer resamples so they run in seconds.

* **Interruption**: a run of the demo study is stopped three times - SIGINT while the first kernel starts,
  SIGTERM while ``03_survey_comparison`` runs, SIGKILL while ``04_supervision_model`` runs. After each stop
  no process of the run is left (run, workers, kernels: found by ``RESEARCH_OUTPUT_ROOT`` in their
  environment), no temporary or staging file remains and every file is whole (JSON parses, parquet reads,
  notebooks validate, HTML ends with ``</html>``, XLSX opens). The next run completes and its results JSON
  equal those of an uninterrupted run byte for byte.
* **Determinism**: the uninterrupted run uses ``-j 2`` and ``PYTHONHASHSEED=1``, the interrupted one
  ``-j 1`` and ``PYTHONHASHSEED=2``: every file under ``reports/demo/results`` and ``data/processed/demo``
  (parquet included) has the same SHA-256.
* **Hostile text** (``tests/fixtures/hostile/strings.yaml``) in company, title, labels, codebook wording and
  comments is shown escaped in every HTML page, fires no dialog in Chromium, and spreadsheet formulas are
  neutralised in the CSV and XLSX exports.
* **Configuration**: ``-p`` values are data; paths outside the project are refused in one line.
* **Numeric edge cases**: each either finishes with a warning in the report and the results JSON, or stops
  with one line naming the problem.

The four expensive runs (demo runs, hostile study, edge-case studies) are each made once per test session and
shared by every xdist worker that needs them (:func:`shared_build`), whatever the distribution mode
(`make test` uses ``--dist loadfile``; xdist's ``loadgroup`` does not group tests under pytest 9).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "studies" / "demo" / "study.yaml"
HOSTILE = yaml.safe_load((ROOT / "tests" / "fixtures" / "hostile" / "strings.yaml").read_text(encoding="utf-8"))
LONG = HOSTILE["long_unit"] * HOSTILE["long_repeat"]
NOTEBOOK_NAMES = ("00_prepare_data", "01_expert_evaluation", "02_factor_analysis", "03_survey_comparison",
                  "04_supervision_model", "05_quality_monitoring")
SHORT_NAMES = ("prepare", "experts", "efa", "survey", "model", "monitoring")
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
HAS_PROC = Path("/proc/self/environ").exists()

slow_notebooks = [pytest.mark.slow]


# --- helpers: running the CLI ---------------------------------------------------------------------------------
def run_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RESEARCH_OUTPUT_SUFFIX", "PYTHONHASHSEED")}
    env.update({"RESEARCH_OUTPUT_ROOT": str(root), **extra})
    return env


def research(root: Path, *args: str, timeout: float = 900, **extra_env: str) -> subprocess.CompletedProcess:
    """``research <args>`` in a subprocess with outputs under ``root``."""
    return subprocess.run([sys.executable, "-m", "research.cli", *args], cwd=ROOT, env=run_env(root, **extra_env),
                          capture_output=True, text=True, timeout=timeout)


def research_background(root: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "research.cli", *args], cwd=ROOT, env=run_env(root, **extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen, timeout: float = 900) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def processes_of(root: Path) -> list[tuple[int, str]]:
    """Processes whose environment holds ``RESEARCH_OUTPUT_ROOT=<root>``: the run, its workers, its kernels."""
    marker = f"RESEARCH_OUTPUT_ROOT={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(entry.name), cmd))
        except OSError:  # gone meanwhile, or a zombie
            continue
    return found


def wait_until_gone(root: Path, timeout: float = 60) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout
    while (left := processes_of(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


# --- helpers: checking what a run left behind ------------------------------------------------------------------
def check_file(path: Path) -> None:
    """Raise when ``path`` is not a whole file of its kind."""
    suffix = path.suffix
    if suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.read_table(path)
    elif suffix == ".ipynb":
        import nbformat

        nbformat.validate(nbformat.read(str(path), as_version=4))
    elif suffix == ".csv":
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n"), "does not end with a newline"
        pd.read_csv(io.StringIO(text))
    elif suffix == ".html":
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>"), "does not end with </html>"
    elif suffix == ".xlsx":
        import openpyxl

        openpyxl.load_workbook(path, read_only=True).close()
    else:
        assert path.stat().st_size > 0, "empty"


def damaged_files(root: Path) -> list[str]:
    """Temporary files, staging folders and files that are not whole, under ``root``."""
    problems = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            if ".prepare-" in path.name:
                problems.append(f"{rel}: staging folder left behind")
            continue
        if path.name.endswith(".tmp"):
            problems.append(f"{rel}: temporary file left behind")
            continue
        if rel.startswith(("studies/", "raw/")) or path.name.endswith(".lock"):
            continue
        try:
            check_file(path)
        except Exception as e:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"{rel}: {type(e).__name__}: {str(e)[:200]}")
    return problems


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class PageText(HTMLParser):
    """The text a reader sees (entities decoded), the tags with their attributes, and script contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self.parts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.parts).append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def page(path: Path) -> PageText:
    parser = PageText()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def html_pages(reports: Path) -> list[Path]:
    return [reports / "index.html", *sorted(reports.glob("[0-9][0-9]_*.html")),
            *sorted((reports / "code").glob("[0-9][0-9]_*.html"))]


def results(reports: Path, short: str) -> dict:
    return json.loads((reports / "results" / f"{short}.json").read_text(encoding="utf-8"))


def shared_build(tmp_path_factory, name: str, build: Callable[[Path], Any]) -> tuple[Path, Any]:
    """``build(root)`` once per test session, also across pytest-xdist workers: the first worker to ask builds
    (holding a lock), the others wait and reuse its folder and its JSON-able return value."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, record = shared / f"hardening-{name}", shared / f"hardening-{name}.json"
    with open(shared / f"hardening-{name}.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not record.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            record.write_text(json.dumps(build(root)), encoding="utf-8")
    return root, json.loads(record.read_text(encoding="utf-8"))


def completed(value: dict) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(value.get("args", []), value["returncode"], value.get("stdout", ""),
                                       value.get("stderr", ""))


def outcome(done: subprocess.CompletedProcess) -> dict:
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


# --- helpers: study variants -----------------------------------------------------------------------------------
def study_variant(root: Path, study_id: str, *, config=None, codebook=None, survey=None, experts=None) -> Path:
    """A copy of the demo study under ``root`` (``studies/<id>``, raw files in ``raw/<id>``), with fewer
    resamples, changed by the given functions (``config(dict)``, ``codebook(df)``, ``survey(df)`` and
    ``experts(ratings, panel)`` return the changed objects). Returns the study config path."""
    study_dir, raw_dir = root / "studies" / study_id, root / "raw" / study_id
    study_dir.mkdir(parents=True)
    raw_dir.mkdir(parents=True)
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["study"]["id"] = study_id
    for key in ("survey", "experts", "expert_panel", "service_records"):
        source = ROOT / raw["data"][key]["path"]
        shutil.copy(source, raw_dir / source.name)
        raw["data"][key]["path"] = str(raw_dir / source.name)
    shutil.copy(ROOT / raw["data"]["truth"], raw_dir / "truth.json")
    raw["data"]["truth"] = str(raw_dir / "truth.json")
    raw["analysis"]["experts"].update(n_perm=200, n_boot=100)
    raw["analysis"]["model"]["n_boot"] = 100
    raw["analysis"]["efa"]["n_iter"] = 20
    if config:
        raw = config(raw)
    (study_dir / "study.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True, width=10**6), encoding="utf-8")
    cb = pd.read_csv(DEMO.parent / "codebook.csv", dtype=str, keep_default_na=False)
    (codebook(cb) if codebook else cb).to_csv(study_dir / "codebook.csv", index=False, lineterminator="\n")
    if survey:
        frame = pd.read_csv(raw_dir / "survey.csv", dtype=str, keep_default_na=False)
        survey(frame).to_csv(raw_dir / "survey.csv", index=False, lineterminator="\n")
    if experts:
        ratings = pd.read_csv(raw_dir / "expert_ratings.csv", dtype=str, keep_default_na=False)
        panel = pd.read_csv(raw_dir / "expert_panel.csv", dtype=str, keep_default_na=False)
        ratings, panel = experts(ratings, panel)
        ratings.to_csv(raw_dir / "expert_ratings.csv", index=False, lineterminator="\n")
        panel.to_csv(raw_dir / "expert_panel.csv", index=False, lineterminator="\n")
    return study_dir / "study.yaml"


# ================================================================================================================
# Interruption and determinism (the demo study itself)
# ================================================================================================================
@dataclass
class Interruption:
    signal: str
    returncode: int
    output: str
    survivors: list[tuple[int, str]]
    problems: list[str]
    notebook: str | None  # the notebook that was running when the signal came


def ran(name: str) -> str:
    """The progress line ``research run -q`` prints when a notebook has run."""
    return f"{'ran':<10} {name}"


def interrupt(root: Path, sig: signal.Signals, *, after_line: str | None, delay: float, notebook: str | None,
              **env: str) -> Interruption:
    """Start ``research run -q -j 1``; once ``after_line`` is printed (or at once), wait ``delay`` seconds and
    send ``sig`` to the run (only to it, as ``kill <pid>`` would); then wait for every process of the run."""
    proc = research_background(root, "run", "-q", "-j", "1", **env)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if after_line and after_line in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after_line:
        while not seen.wait(0.5):
            assert proc.poll() is None, f"the run ended before {after_line!r}:\n{''.join(lines)}"
    time.sleep(delay)
    assert proc.poll() is None, f"the run ended before it could be interrupted:\n{''.join(lines)}"
    proc.send_signal(sig)
    returncode = proc.wait(timeout=120)
    reader.join(timeout=10)
    survivors = wait_until_gone(root)
    return Interruption(sig.name, returncode, "".join(lines), survivors, damaged_files(root), notebook)


def demo_runs_build(root: Path) -> dict:
    """Two runs of the demo study at the same time: one in one go (``-j 2``, ``PYTHONHASHSEED=1``, in
    ``uninterrupted/``, in the background) and one stopped three times and then run to the end (``-j 1``,
    ``PYTHONHASHSEED=2``, in ``interrupted/``)."""
    reference, resumed = root / "uninterrupted", root / "interrupted"
    reference.mkdir()
    resumed.mkdir()
    background = research_background(reference, "run", "-q", "-j", "2", PYTHONHASHSEED="1")
    try:
        stops = [
            interrupt(resumed, signal.SIGINT, after_line=None, delay=4.0, notebook="00_prepare_data",
                      PYTHONHASHSEED="2"),
            interrupt(resumed, signal.SIGTERM, after_line=ran("02_factor_analysis"), delay=6.0,
                      notebook="03_survey_comparison", PYTHONHASHSEED="2"),
            interrupt(resumed, signal.SIGKILL, after_line=ran("03_survey_comparison"), delay=5.0,
                      notebook="04_supervision_model", PYTHONHASHSEED="2"),
        ]
        final = research(resumed, "run", "-q", "-j", "1", PYTHONHASHSEED="2")
        return {"stops": [asdict(stop) for stop in stops], "final": outcome(final),
                "reference": outcome(finished(background))}
    finally:
        if background.poll() is None:
            background.kill()
            background.wait()


@dataclass(frozen=True)
class DemoRuns:
    reference: Path  # uninterrupted, -j 2, PYTHONHASHSEED=1
    resumed: Path  # interrupted three times, then completed; -j 1, PYTHONHASHSEED=2
    stops: list[Interruption]
    final: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory) -> DemoRuns:
    root, value = shared_build(tmp_path_factory, "demo-runs", demo_runs_build)
    reference = completed(value["reference"])
    assert reference.returncode == 0, reference.stderr
    return DemoRuns(root / "uninterrupted", root / "interrupted", [Interruption(**s) for s in value["stops"]],
                    completed(value["final"]))


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to find the run's processes")
@pytest.mark.slow
def test_interrupted_run_leaves_whole_files_and_no_process(demo_runs):
    for stop in demo_runs.stops:
        where = f"{stop.signal} while {stop.notebook} ran"
        assert stop.survivors == [], f"{where}: processes of the run still alive: {stop.survivors}"
        assert stop.problems == [], f"{where}: {stop.problems}"
        assert ran(stop.notebook) not in stop.output, f"{where}: the notebook finished first"
        if stop.signal == "SIGKILL":
            assert stop.returncode == -signal.SIGKILL
        else:  # Ctrl-C and `kill`: the same orderly stop, one line, status 130
            assert stop.returncode == 130, f"{where}: status {stop.returncode}\n{stop.output}"
            assert stop.output.rstrip().splitlines()[-1] == "research: interrupted", stop.output
            assert "Traceback" not in stop.output, stop.output


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to find the run's processes")
@pytest.mark.slow
def test_run_after_interruptions_completes_and_reproduces_the_results(demo_runs):
    root, final, reference = demo_runs.resumed, demo_runs.final, demo_runs.reference
    assert final.returncode == 0, final.stderr
    assert damaged_files(root) == []
    for name in NOTEBOOK_NAMES[:4]:  # finished before the last stop: kept
        assert f"up to date {name}" in final.stderr, final.stderr
    for name in NOTEBOOK_NAMES[4:]:  # stopped, or never started
        assert ran(name) in final.stderr, final.stderr
    for short in SHORT_NAMES:
        ours = (root / "reports" / "demo" / "results" / f"{short}.json").read_bytes()
        theirs = (reference / "reports" / "demo" / "results" / f"{short}.json").read_bytes()
        assert ours == theirs, f"results/{short}.json differs from the uninterrupted run"


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to find the run's processes")
@pytest.mark.slow
def test_results_and_tables_identical_across_hash_seed_and_jobs(demo_runs):
    """-j 2 / PYTHONHASHSEED=1 against -j 1 / PYTHONHASHSEED=2: every results JSON and processed table
    (parquet and CSV) byte for byte."""
    root, final, reference = demo_runs.resumed, demo_runs.final, demo_runs.reference
    assert final.returncode == 0, final.stderr
    for folder in ("reports/demo/results", "data/processed/demo"):
        ours, theirs = digests(root / folder), digests(reference / folder)
        assert sorted(ours) == sorted(theirs), folder
        assert len(ours) >= 6
        differing = [name for name in ours if ours[name] != theirs[name]]
        assert differing == [], f"{folder}: files differ between the runs: {differing}"
    assert any(name.endswith(".parquet") for name in digests(root / "data/processed/demo"))


# ================================================================================================================
# Hostile text
# ================================================================================================================
PAYLOADS = (HOSTILE["script"], HOSTILE["img"], HOSTILE["markdown"], HOSTILE["rtl"], HOSTILE["emoji"])


def hostile(tag: str) -> str:
    return " ".join((tag, *PAYLOADS))


def make_hostile(raw: dict) -> dict:
    raw["study"]["company"] = hostile("Company")
    raw["study"]["title"] = {"en": hostile("Title"), "lt": hostile("Pavadinimas")}
    for stage in raw["stages"]:
        stage["label"] = {"en": hostile(f"Stage {stage['code']}"), "lt": hostile(f"Etapas {stage['code']}")}
        for i, factor in enumerate(stage["factors"]):
            text = hostile(f"Factor {factor['code']}")
            if i == 1:  # a label a spreadsheet would run
                text = "=cmd|' /C calc'!A0 " + text
            factor["label"] = {"en": LONG if factor["code"] == "S2_TIME" else text, "lt": text}
    for code in raw["group"]["levels"]:
        raw["group"]["levels"][code] = {"en": hostile(f"Group {code}"), "lt": hostile(f"Grupė {code}")}
    return raw


def make_hostile_codebook(cb: pd.DataFrame) -> pd.DataFrame:
    rating = cb["type"].isin(["importance", "performance", "outcome", "comment"])
    cb.loc[rating, "label_en"] = [hostile(f"Item {v}") for v in cb.loc[rating, "variable"]]
    cb.loc[rating, "label_lt"] = [hostile(f"Klausimas {v}") for v in cb.loc[rating, "variable"]]
    cb.loc[cb["variable"] == "PERF_S1_NEEDS", "label_en"] = LONG
    return cb


HOSTILE_COMMENTS = [*PAYLOADS, LONG, *HOSTILE["formulas"], hostile("Comment")]


def make_hostile_comments(survey: pd.DataFrame) -> pd.DataFrame:
    for i, text in enumerate(HOSTILE_COMMENTS):
        survey.loc[i, "comment"] = text
    return survey


def hostile_build(root: Path) -> dict:
    study = study_variant(root, "hostile", config=make_hostile, codebook=make_hostile_codebook,
                          survey=make_hostile_comments)
    return outcome(research(root, "run", "-q", "-j", "2", "--study", str(study)))


@pytest.fixture(scope="module")
def hostile_reports(tmp_path_factory) -> Path:
    root, value = shared_build(tmp_path_factory, "hostile", hostile_build)
    assert value["returncode"] == 0, value["stderr"]
    return root


@pytest.mark.slow
def test_hostile_text_is_escaped_in_every_html_report(hostile_reports):
    reports = hostile_reports / "reports" / "hostile"
    pages = html_pages(reports)
    assert len(pages) == 13  # index, six reviewer and six full reports
    for path in pages:
        raw = path.read_text(encoding="utf-8")
        parsed = page(path)
        where = path.relative_to(reports).as_posix()
        # nothing from the data became markup
        assert HOSTILE["script"] not in raw and HOSTILE["img"] not in raw, where
        assert not [s for s in parsed.scripts if "alert" in s], where
        handlers = [(t, k, v) for t, a in parsed.tags for k, v in a.items() if k.startswith("on") and "alert" in v]
        assert handlers == [], f"{where}: event handlers from the data {handlers}"
        links = [(t, k, v) for t, a in parsed.tags for k, v in a.items()
                 if k in ("href", "src", "action", "formaction") and v.strip().lower().startswith("javascript:")]
        assert links == [], f"{where}: javascript: links {links}"
        assert not [a for t, a in parsed.tags if t == "img" and a.get("src") == "x"], where
        assert "<strong>bold</strong>" not in raw and "<em>bold</em>" not in raw, f"{where}: Markdown rendered"
        # ... and it is shown, escaped, as typed (company and title head every page)
        assert html.escape(HOSTILE["script"], quote=False) in raw, where
        assert html.escape(HOSTILE["img"], quote=False) in raw, where
        assert f"Company {HOSTILE['script']} {HOSTILE['img']} {HOSTILE['markdown']}" in parsed.text, where
    survey_text = page(reports / "03_survey_comparison.html").text
    for comment in HOSTILE_COMMENTS:  # every comment, the 10 000-character one included, in full
        assert BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", comment) in survey_text, comment[:40]
    assert LONG in page(reports / "02_factor_analysis.html").text  # the item wording


@pytest.mark.slow
def test_bidi_overrides_are_inert_and_rtl_text_and_emoji_kept(hostile_reports):
    for path in html_pages(hostile_reports / "reports" / "hostile"):
        raw = path.read_text(encoding="utf-8")
        assert not BIDI_CONTROLS.search(raw), f"{path.name}: raw bidirectional override in the page"
        assert "[U+202E]evil[U+202C]" in raw, path.name
        assert "مرحبا بالعالم שלום עולם" in raw and HOSTILE["emoji"] in raw, path.name


@pytest.mark.slow
def test_csv_and_xlsx_exports_neutralise_formulas(hostile_reports):
    import openpyxl

    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    processed = hostile_reports / "data" / "processed" / "hostile"
    csvs = sorted(processed.glob("*.csv"))
    assert len(csvs) >= 15
    for path in csvs:
        with open(path, newline="", encoding="utf-8") as fh:
            cells = [cell for row in csv.reader(fh) for cell in row]
        live = [c[:40] for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and not number(c)]
        assert live == [], f"{path.name}: cells a spreadsheet would run {live[:5]}"
    comments = pd.read_csv(processed / "survey.csv", dtype=str, keep_default_na=False)["comment"].tolist()
    for formula in HOSTILE["formulas"]:
        assert "'" + formula in comments
    assert pd.read_parquet(processed / "survey.parquet")["comment"].iloc[len(PAYLOADS) + 1] == HOSTILE["formulas"][0]

    book = openpyxl.load_workbook(hostile_reports / "reports" / "hostile" / "supervision_model.xlsx")
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    assert not [t[:40] for t in texts if t[:1] in ("=", "+", "-", "@") and not number(t)]
    assert any(t.startswith("'=cmd|") for t in texts)  # the planted factor label, neutralised


CHROMIUM = next((c for c in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
                 if os.access(c, os.X_OK)), shutil.which("chromium"))


def dialogs_on(browser, path: Path) -> list[str]:
    """Open ``path`` in a new tab; return the messages of every JavaScript dialog it opened (each dismissed)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.send("Page.enable", session=session)
    first = len(browser.events)
    browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
    deadline = time.monotonic() + 60
    messages: list[str] = []
    handled = 0
    while time.monotonic() < deadline:
        events = [e for e in browser.events[first:] if e.get("sessionId") == session]
        opened = [e for e in events if e.get("method") == "Page.javascriptDialogOpening"]
        for event in opened[handled:]:  # a dialog blocks the page until it is answered
            messages.append(event["params"].get("message", ""))
            browser.send("Page.handleJavaScriptDialog", {"accept": True}, session=session)
        handled = len(opened)
        if any(e.get("method") == "Page.loadEventFired" for e in events):
            break
        browser.drain(0.2)
    browser.drain(1.0)  # handlers of images that fail to load run after the load event
    late = [e for e in browser.events[first:] if e.get("sessionId") == session
            and e.get("method") == "Page.javascriptDialogOpening"][handled:]
    for event in late:
        messages.append(event["params"].get("message", ""))
        browser.send("Page.handleJavaScriptDialog", {"accept": True}, session=session)
    browser.send("Target.closeTarget", {"targetId": target})
    return messages


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (make test-browser installs it)")
def test_hostile_reports_open_no_dialog_in_chromium(hostile_reports, tmp_path):
    from test_browser import Chromium

    browser = Chromium(tmp_path / "profile")
    try:
        try:
            browser.send("Browser.getVersion", timeout=60)
        except (RuntimeError, TimeoutError) as e:
            pytest.skip(f"Chromium did not start: {e}")
        control = tmp_path / "control.html"  # the check sees what it is for
        control.write_text(f"<!DOCTYPE html><html><body>{HOSTILE['img']}</body></html>", encoding="utf-8")
        assert dialogs_on(browser, control) == ["1"]
        for path in html_pages(hostile_reports / "reports" / "hostile"):
            assert dialogs_on(browser, path) == [], path.name
    finally:
        browser.close()


# ================================================================================================================
# Configuration: -p values are data, paths stay inside the project
# ================================================================================================================
def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The CLI's failure: status 1, one line on stderr, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("research: error: "), done.stderr
    return lines[0]


def test_code_in_a_parameter_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    for value in (f"__import__('os').system('touch {marker}')", 'en"""\nimport os', "en\nlt"):
        line = one_line_error(research(tmp_path, "run", "-q", "-p", f"language={value}", timeout=120))
        assert "-p language=" in line and "two-letter language code" in line
    assert not marker.exists()
    assert not (tmp_path / "reports").exists()  # refused before anything ran


PARAMETER_VALUES = ("__import__('os').system('touch {marker}')",
                    'x"""; __import__("os").system("touch {marker}"); """',
                    "line one\nline two\\n'''\"; import os; os.system('touch {marker}') #",
                    "{{'a': 1}}", "\\", "é ‮ 😀 <script>alert(1)</script>")


def test_parameter_values_are_injected_as_literals(tmp_path):
    """What papermill writes into the notebook for ``-p label=<value>`` (parsed by the command line's own
    parser) assigns exactly the string typed: run in a namespace, the cell executes nothing else."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    from research.cli import build_parser
    from research.pipeline import parse_params

    marker = tmp_path / "pwned"
    nb = nbformat.read(str(ROOT / "tests" / "fixtures" / "notebooks" / "01_beta.ipynb"), as_version=4)
    nb.metadata["papermill"] = {}  # as papermill's execute_notebook prepares it
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    for template in PARAMETER_VALUES:
        value = template.format(marker=marker)
        args = build_parser().parse_args(["run", "-p", f"label={value}"])
        params = parse_params(args.param)
        assert params == {"label": value}
        injected = parameterize_notebook(nb, params, kernel_name="research-study", language="python")
        cell = next(c for c in injected.cells if "injected-parameters" in c.metadata.get("tags", []))
        namespace: dict = {}
        exec(compile(cell.source, "<injected-parameters>", "exec"), {"__builtins__": {}}, namespace)
        assert namespace == {"label": value}, cell.source
    assert not marker.exists()


@pytest.mark.slow
def test_a_hostile_parameter_reaches_the_kernel_as_a_string(tmp_path):
    """One real run of the fixture notebooks with the nastiest value: it arrives in the kernel as that string."""
    from research.cli import build_parser
    from research.pipeline import Node, run_from_cli

    marker = tmp_path / "pwned"
    value = PARAMETER_VALUES[2].format(marker=marker)
    graph = (Node("00_alpha", "alpha", (), ("alpha",)), Node("01_beta", "beta", ("alpha",)))
    args = build_parser().parse_args(["run", "--study", "tests/fixtures/notebooks/study.yaml", "-q", "-j", "1",
                                      "-p", f"label={value}"])
    stream = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESEARCH_OUTPUT_ROOT", str(tmp_path))
        status = run_from_cli(args, graph=graph, notebooks_dir=ROOT / "tests" / "fixtures" / "notebooks",
                              stream=stream)
    assert status == 0, stream.getvalue()
    beta = json.loads((tmp_path / "reports" / "fixture" / "results" / "beta.json").read_text(encoding="utf-8"))
    assert beta["results"]["label"] == value
    assert not marker.exists()


def outside_study(root: Path, **data_paths: str) -> Path:
    """A small study config under ``root`` whose raw data paths are ``data_paths``."""
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["data"] = {"survey": {"path": data_paths.get("survey", str(ROOT / "data/raw/demo/survey.csv"))}}
    raw.update({k: v for k, v in data_paths.items() if k == "codebook"})
    study = root / "studies" / "outside" / "study.yaml"
    study.parent.mkdir(parents=True, exist_ok=True)
    study.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    shutil.copy(DEMO.parent / "codebook.csv", study.parent / "codebook.csv")
    return study


def test_paths_outside_the_project_are_refused_in_one_line(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    secret = elsewhere / "secret.csv"
    secret.write_text("respondent_id\nR1\n", encoding="utf-8")
    (elsewhere / "study.yaml").write_bytes(DEMO.read_bytes())
    (root / "link.yaml").symlink_to(elsewhere / "study.yaml")
    (root / "survey.csv").symlink_to(secret)
    depth = "../" * 30  # more than enough to climb to / from anywhere
    cases = {
        "study config, absolute": ["--study", "/etc/passwd"],
        "study config, ..": ["--study", f"studies/{depth}etc/hosts"],
        "study config, symlink out": ["--study", str(root / "link.yaml")],
        "raw data, ..": ["--study", str(outside_study(root / "a", survey=f"{depth}etc/passwd"))],
        "raw data, absolute": ["--study", str(outside_study(root / "b", survey=str(secret)))],
        "raw data, symlink out": ["--study", str(outside_study(root / "c", survey=str(root / "survey.csv")))],
        "codebook, ..": ["--study", str(outside_study(root / "d", codebook=f"{depth}etc/passwd"))],
    }
    for case, args in cases.items():
        line = one_line_error(research(root, "run", "-q", *args, timeout=120))
        assert "outside the project" in line, f"{case}: {line}"
    assert not (root / "reports").exists() and not (root / "data").exists()


def test_unsafe_yaml_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    study = tmp_path / "study.yaml"
    study.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    line = one_line_error(research(tmp_path, "run", "-q", "--study", str(study), timeout=120))
    assert "not valid YAML" in line
    assert not marker.exists()


# ================================================================================================================
# Numeric edge cases: a warning in the report and the results JSON, or one line naming the problem
# ================================================================================================================
def fewer_respondents_than_items(survey: pd.DataFrame) -> pd.DataFrame:
    return survey.head(12)  # 12 respondents (9 foreign, 3 Lithuanian) for 18 items of each type


def identical_experts(ratings: pd.DataFrame, panel: pd.DataFrame):
    for expert in ratings.columns[2:]:
        ratings[expert] = ratings["E01"]
    return ratings, panel


def constant_item(survey: pd.DataFrame) -> pd.DataFrame:
    survey["PERF_S1_RESP"] = "4"
    return survey


def panel_of_two(ratings: pd.DataFrame, panel: pd.DataFrame):
    return ratings[["round", "factor", "E01", "E02"]], panel[panel["expert_id"].isin(["E01", "E02"])]


def collinear_items(survey: pd.DataFrame) -> pd.DataFrame:
    survey["PERF_S1_NEEDS"] = survey["PERF_S1_RESP"]
    return survey


def empty_group(survey: pd.DataFrame) -> pd.DataFrame:
    survey["origin"] = "foreign"
    return survey


# Three small studies, each combining two cases that live in different notebooks, run at the same time.
EDGE_STUDIES = {
    "edge-few-identical": ({"survey": fewer_respondents_than_items, "experts": identical_experts},
                           ["--only", "experts", "--only", "survey"]),
    "edge-constant-two": ({"survey": constant_item, "experts": panel_of_two}, ["--only", "experts", "--only", "efa"]),
    "edge-collinear-empty": ({"survey": lambda s: empty_group(collinear_items(s))}, ["--only", "survey"]),
}


def edge_build(root: Path) -> dict:
    started = {}
    for study_id, (changes, only) in EDGE_STUDIES.items():
        study = study_variant(root, study_id, **changes)
        started[study_id] = research_background(root, "run", "-q", "-j", "2", "--study", str(study), *only)
    return {study_id: outcome(finished(proc)) for study_id, proc in started.items()}


@pytest.fixture(scope="module")
def edge_runs(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    root, value = shared_build(tmp_path_factory, "edge", edge_build)
    return {study_id: (root / "reports" / study_id, completed(done)) for study_id, done in value.items()}


def assert_warned(reports: Path, short: str, fragment: str) -> str:
    """The notebook's results JSON lists a warning containing ``fragment``; its reviewer report, its full
    report and the study index show it."""
    warnings = [w for w in results(reports, short)["warnings"] if fragment in w]
    assert warnings, f"{short}: no warning with {fragment!r}: {results(reports, short)['warnings']}"
    name = NOTEBOOK_NAMES[SHORT_NAMES.index(short)]
    for path in (reports / f"{name}.html", reports / "code" / f"{name}.html", reports / "index.html"):
        assert warnings[0] in page(path).text, f"{path.name} does not show: {warnings[0]}"
    return warnings[0]


def assert_stopped(done: subprocess.CompletedProcess, notebook: str, message: str) -> None:
    """Status 1 and exactly one stderr line naming the notebook, the error type and the problem."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if message in ln]
    assert len([ln for ln in lines if ln.startswith("research: notebook ")]) == 1, done.stderr
    assert lines[-1].startswith(f"research: notebook {notebook} failed at cell "), done.stderr


@pytest.mark.slow
def test_fewer_respondents_than_items_finishes_with_warnings(edge_runs):
    reports, done = edge_runs["edge-few-identical"]
    assert done.returncode == 0, done.stderr
    assert results(reports, "prepare")["results"]["n_respondents"] == 12
    assert_warned(reports, "efa", "fewer respondents (12) than items (18)")
    assert_warned(reports, "survey", "the ordinal model of satisfaction is left out")
    assert results(reports, "survey")["results"]["ordinal_odds_ratios"] is None


@pytest.mark.slow
def test_identical_experts_finish_with_a_warning(edge_runs):
    reports, done = edge_runs["edge-few-identical"]
    assert done.returncode == 0, done.stderr
    assert_warned(reports, "experts", "all 10 experts gave identical rankings (Kendall's W = 1)")
    assert results(reports, "experts")["results"]["W_overall"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
def test_constant_item_stops_the_factor_analysis_in_one_line(edge_runs):
    reports, done = edge_runs["edge-constant-two"]
    assert_stopped(done, "02_factor_analysis", "AnalysisError: item 'PERF_S1_RESP' is constant (every answer is 4)")
    assert_warned(reports, "prepare", "column PERF_S1_RESP is constant (every answer is 4)")


@pytest.mark.slow
def test_panel_of_two_experts_finishes_with_a_warning(edge_runs):
    reports, done = edge_runs["edge-constant-two"]
    assert re.search(r"^ran +01_expert_evaluation", done.stderr, flags=re.M), done.stderr
    assert_warned(reports, "experts", "only 2 experts rated the factors")
    assert results(reports, "experts")["results"]["n_experts"] == 2


@pytest.mark.slow
def test_perfectly_collinear_items_finish_with_a_warning(edge_runs):
    reports, done = edge_runs["edge-collinear-empty"]
    assert re.search(r"^ran +02_factor_analysis", done.stderr, flags=re.M), done.stderr
    assert_warned(reports, "efa", "items 'PERF_S1_RESP' and 'PERF_S1_NEEDS' are perfectly correlated")


@pytest.mark.slow
def test_empty_client_group_stops_the_comparison_in_one_line(edge_runs):
    reports, done = edge_runs["edge-collinear-empty"]
    assert_stopped(done, "03_survey_comparison",
                   "AnalysisError: group 'origin': level 'lithuanian' has no respondents in the survey")
    assert_warned(reports, "prepare", "no respondent in group 'lithuanian' of origin")
