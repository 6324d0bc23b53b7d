"""``research run`` (research.pipeline): graph, parameters, incremental runs, failures, HTML and index.

The end-to-end tests run the fixture notebooks in ``tests/fixtures/notebooks`` (a tiny study whose
notebooks take a second each) with outputs in a temporary ``RESEARCH_OUTPUT_ROOT``:

    00_alpha -> 01_beta  -> 03_delta
             -> 02_gamma ->
    00_alpha -> 01_broken (raises DataError in cell 4), 02_crash (ZeroDivisionError in cell 3)

The package hash is pinned in these tests: the checkout is shared with other engineers whose edits to
``src/research`` would otherwise (correctly) make every notebook stale between two runs of one test.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

import research.pipeline as pipeline
from research.cli import build_parser, main
from research.errors import ConfigError
from research.pipeline import GRAPH, Node, check_graph, notebook_parameters, parse_params, run, select

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
STUDY = "tests/fixtures/notebooks/study.yaml"
GRAPH_OK = (Node("00_alpha", "alpha", (), ("alpha",)), Node("01_beta", "beta", ("alpha",)),
            Node("02_gamma", "gamma", ("alpha",)), Node("03_delta", "delta", ("beta", "gamma")))
GRAPH_BROKEN = (Node("00_alpha", "alpha", (), ("alpha",)), Node("01_broken", "broken", ("alpha",)),
                Node("02_crash", "crash", ("alpha",)), Node("02_gamma", "gamma", ("alpha",)),
                Node("03_delta", "delta", ("broken", "gamma")))
PACKAGE_HASH = pipeline.package_hash  # the real one; the tests below pin it


def fixture_run(root: Path, graph=GRAPH_OK, **kwargs):
    stream = io.StringIO()
    summary = run(study=STUDY, notebooks_dir=FIXTURES, graph=graph, output_root=root, jobs=2, quiet=True,
                  stream=stream, **kwargs)
    return summary, stream.getvalue()


def statuses(summary) -> dict[str, str]:
    return {o.short: o.status for o in summary.outcomes}


def results(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "reports" / "fixture" / "results").glob("*.json"))}


class Tags(HTMLParser):
    """Collects tags with their attributes (script src, link href, img src, a href, classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def parse(path: Path) -> list[tuple[str, dict[str, str]]]:
    parser = Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.tags


@pytest.fixture(scope="module", autouse=True)
def pinned_package_hash():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "package_hash", lambda root=None: "pinned-for-tests")
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One complete run of GRAPH_OK; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("pipeline-built")
    summary, log = fixture_run(root)
    assert summary.ok, log
    return root, summary, log


def copy_of(built, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(built[0], target)
    return target


# --- the graph and the command line (no kernels) -----------------------------------------------------------
def test_graph_matches_architecture_table():
    """GRAPH is the table 'Notebooks and their short names' of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d\d_\w+) \| (\w+) \| ([^|]+) \|$", text, flags=re.MULTILINE)
    documented = {name: (short, tuple(n.strip() for n in needs.split(",") if n.strip() != "raw data"))
                  for name, short, needs in rows}
    assert documented == {n.name: (n.short, n.needs) for n in GRAPH}
    assert [n.name for n in check_graph(GRAPH)] == sorted(n.name for n in GRAPH)


def test_graph_errors_are_one_line():
    with pytest.raises(ConfigError, match="needs zzz, which is not a notebook"):
        check_graph((Node("00_a", "a", ("zzz",)),))
    with pytest.raises(ConfigError, match="form a cycle"):
        check_graph((Node("00_a", "a", ("b",)), Node("01_b", "b", ("a",))))
    with pytest.raises(ConfigError, match="declared twice"):
        check_graph((Node("00_a", "a"), Node("01_a", "a")))


def test_only_selects_the_notebook_and_what_it_needs():
    nodes, named = select(GRAPH, ["survey"])
    assert [n.short for n in nodes] == ["prepare", "efa", "survey"] and named == {"survey"}
    assert [n.short for n in select(GRAPH, ["04"])[0]] == ["prepare", "experts", "efa", "survey", "model"]
    assert [n.short for n in select(GRAPH, ["notebooks/02_factor_analysis.ipynb"])[0]] == ["prepare", "efa"]
    with pytest.raises(ConfigError, match="--only nope: no such notebook"):
        select(GRAPH, ["nope"])


def test_parameters_are_parsed_as_yaml_scalars_and_strings_stay_strings():
    code = 'x"; import os; os.system("echo pwned") #'
    parsed = parse_params(["n=3", "alpha=0.01", "flag=true", "none=null", "empty=", "lang=lt", "zip='007'",
                           f"code={code}", "list=[1, b, null]", "nested=[[1]]", "mapping=a: b", "date=2024-01-31", "multi=a\n  b ",
                           'quote="unterminated'])
    assert parsed == {"n": 3, "alpha": 0.01, "flag": True, "none": None, "empty": None, "lang": "lt", "zip": "007",
                      "code": code, "list": [1, "b", None], "nested": "[[1]]", "mapping": "a: b", "date": "2024-01-31", "multi": "a\n  b ",
                      "quote": '"unterminated'}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_params(["analysis.alpha=0.1"])
    with pytest.raises(ConfigError, match="--study"):
        parse_params(["study=studies/other/study.yaml"])


def test_notebook_parameters_are_read_without_executing():
    nb = json.loads((FIXTURES / "01_beta.ipynb").read_text())
    assert notebook_parameters(nb) == ("study", "language", "scale", "label")


def test_a_parameter_no_notebook_takes_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="-p n_factors: no notebook of this run has a parameter"):
        run(study=STUDY, notebooks_dir=FIXTURES, graph=GRAPH_OK, output_root=tmp_path, params=["n_factors=3"])
    with pytest.raises(ConfigError, match="two-letter language code"):
        run(study=STUDY, notebooks_dir=FIXTURES, graph=GRAPH_OK, output_root=tmp_path, params=["language=../x"])
    assert not (tmp_path / "reports").exists()


def test_cli_reports_bad_options_in_one_line(capsys):
    assert main(["run", "--study", STUDY, "--only", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("research: error: --only nope: no such notebook") and "\n" not in err


def test_package_hash_follows_content(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    first = PACKAGE_HASH(tmp_path)
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\1")
    assert PACKAGE_HASH(tmp_path) == first  # caches do not count
    (tmp_path / "a.py").write_text("x = 2\n")
    assert PACKAGE_HASH(tmp_path) != first
    (tmp_path / "b.yaml").write_text("")
    assert len({first, PACKAGE_HASH(tmp_path)}) == 2


# --- end to end on the fixture notebooks ---------------------------------------------------------------------
@pytest.mark.slow
def test_dag_order_outputs_and_quiet_log(built):
    root, summary, log = built
    assert statuses(summary) == {"alpha": "ran", "beta": "ran", "gamma": "ran", "delta": "ran"}
    manifest = json.loads((root / "reports" / "fixture" / "manifest.json").read_text())["notebooks"]
    for node in GRAPH_OK:
        for dep in node.needs:
            dep_name = next(n.name for n in GRAPH_OK if n.short == dep)
            assert manifest[node.name]["started"] >= manifest[dep_name]["finished"], (node.name, dep_name)
        reports = root / "reports" / "fixture"
        for path in (reports / f"{node.name}.html", reports / "code" / f"{node.name}.html",
                     reports / "notebooks" / node.file, reports / "results" / f"{node.short}.json"):
            assert path.is_file(), path
    assert manifest["00_alpha"]["data_outputs"] == ["reports/fixture/results/alpha.json",
                                                    "data/processed/fixture/alpha.parquet",
                                                    "data/processed/fixture/alpha.csv"]
    lines = [ln for ln in log.splitlines() if not ln.startswith("research:")]
    assert len(lines) == 4 and all(re.match(r"ran +\d\d_\w+ in \d+\.\d s \(never run\)$", ln) for ln in lines)
    beta = json.loads((root / "reports" / "fixture" / "results" / "beta.json").read_text())
    assert beta["results"] == {"label": "plain", "scaled_total": 20.0}  # (2 + 3 + 5) * 2.0
    gamma = json.loads((root / "reports" / "fixture" / "results" / "gamma.json").read_text())
    assert gamma["results"]["kernel_transport"] == "ipc"  # Unix sockets: no TCP port races between kernels


@pytest.mark.slow
def test_reviewer_report_has_no_code_and_nothing_external(built):
    root = built[0]
    reviewer = root / "reports" / "fixture" / "01_beta.html"
    full = root / "reports" / "fixture" / "code" / "01_beta.html"
    for path in (reviewer, full):
        tags = parse(path)
        for tag, attrs in tags:
            for attr in ("src", "href"):
                value = attrs.get(attr, "")
                assert not re.match(r"^(https?:)?//", value), f"{path.name}: <{tag} {attr}={value!r}>"
        images = [a["src"] for t, a in tags if t == "img"]
        assert images and all(src.startswith("data:image/png;base64,") for src in images)
        text = path.read_text(encoding="utf-8")
        assert 'id="provenance"' in text and "Git commit" in text
        assert "tests/fixtures/notebooks/data.csv" in text  # input file with its sha256
        assert pipeline.sha256_file(FIXTURES / "data.csv") in text
    classes = " ".join(a.get("class", "") for _, a in parse(reviewer))
    for marker in ("jp-CodeMirrorEditor", "jp-InputPrompt", "jp-OutputPrompt"):
        assert marker not in classes
    # code is syntax-highlighted token by token: look for a token of the figure cell and the highlighter
    assert "subplots" not in reviewer.read_text() and "subplots" in full.read_text()
    assert "hl-ipython3" not in reviewer.read_text() and "hl-ipython3" in full.read_text()
    assert "jp-CodeMirrorEditor" in " ".join(a.get("class", "") for _, a in parse(full))


@pytest.mark.slow
def test_index_links_resolve_and_title_is_escaped(built):
    root = built[0]
    index = root / "reports" / "fixture" / "index.html"
    links = [a["href"] for t, a in parse(index) if t == "a"]
    assert len(links) == 12  # 4 notebooks x (reviewer, full, executed)
    for href in links:
        assert (index.parent / href).is_file(), href
    text = index.read_text(encoding="utf-8")
    assert "Pipeline fixture &lt;b&gt;study&lt;/b&gt; &amp; co" in text and "<b>study</b>" not in text
    assert "scaled_total" in text and "Synthetic demo data" in text


@pytest.mark.slow
def test_rerun_with_nothing_changed_runs_nothing(built):
    root = built[0]
    manifest = (root / "reports" / "fixture" / "manifest.json").read_bytes()
    executed = {p: p.stat().st_mtime_ns for p in (root / "reports").rglob("*") if p.is_file()}
    summary, log = fixture_run(root)
    assert set(statuses(summary).values()) == {"up_to_date"}, log
    assert (root / "reports" / "fixture" / "manifest.json").read_bytes() == manifest
    assert {p: p.stat().st_mtime_ns for p in executed} == executed


@pytest.mark.slow
def test_parameter_change_reruns_the_notebook_and_its_dependents_only(built, tmp_path):
    root = copy_of(built, tmp_path)
    summary, log = fixture_run(root, params=["shift=5"])
    assert statuses(summary) == {"alpha": "up_to_date", "beta": "up_to_date", "gamma": "ran", "delta": "ran"}, log
    assert "(parameters changed)" in log and "(outputs of gamma changed)" in log
    assert log.startswith("-p shift=5 goes to 02_gamma\n")
    gamma = json.loads((root / "reports" / "fixture" / "results" / "gamma.json").read_text())
    assert gamma["results"]["count"] == 8  # 3 rows + shift 5
    summary, _ = fixture_run(root, params=["shift=5"])
    assert set(statuses(summary).values()) == {"up_to_date"}
    # a strange string arrives as that string, never as code
    label = 'it\'s "quoted"; import os; os.system("touch pwned") #\n\\n """'
    summary, log = fixture_run(root, params={"label": label})
    assert statuses(summary)["beta"] == "ran", log
    beta = json.loads((root / "reports" / "fixture" / "results" / "beta.json").read_text())
    assert beta["results"]["label"] == label
    assert not (ROOT / "pwned").exists()


@pytest.mark.slow
def test_only_runs_the_named_notebook_and_reuses_fresh_dependencies(built, tmp_path):
    root = copy_of(built, tmp_path)
    summary, log = fixture_run(root, only=["gamma"])
    assert statuses(summary) == {"alpha": "up_to_date", "gamma": "ran"}, log
    index = (root / "reports" / "fixture" / "index.html").read_text()
    assert all(f'href="{n.name}.html"' in index for n in GRAPH_OK)  # the index still lists every notebook
    (root / "data" / "processed" / "fixture" / "alpha.parquet").unlink()  # an output of alpha is missing
    summary, log = fixture_run(root, only=["02_gamma"])
    assert statuses(summary) == {"alpha": "ran", "gamma": "ran"}, log
    assert "output missing: data/processed/fixture/alpha.parquet" in log


@pytest.mark.slow
def test_two_forced_runs_give_byte_identical_results(built, tmp_path):
    root = copy_of(built, tmp_path)
    summary, log = fixture_run(root, force=True)
    assert set(statuses(summary).values()) == {"ran"}, log
    assert "(forced)" in log
    assert results(root) == results(built[0]) and len(results(root)) == 4


@pytest.mark.slow
def test_failure_stops_dependents_and_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEARCH_OUTPUT_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["run", "--study", str(ROOT / STUDY), "-q", "-j", "2"])
    stream = io.StringIO()
    status = pipeline.run_from_cli(args, graph=GRAPH_BROKEN, notebooks_dir=FIXTURES, stream=stream)
    log = stream.getvalue()
    assert status == 1
    reports = tmp_path / "reports" / "fixture"
    expected = ("research: notebook 01_broken failed at cell 4 of 5: DataError: "
                "tests/fixtures/notebooks/data.csv, row 3, column PERF_S1_A: value 7 is outside 1..5\n"
                '  code:                          raise DataError("tests/fixtures/notebooks/data.csv", "value 7 is '
                'outside 1..5...\n'
                "  partially executed notebook:   reports/fixture/notebooks/01_broken.ipynb\n"
                "  reviewer report (HTML):        reports/fixture/01_broken.html\n"
                "  full report (HTML):            reports/fixture/code/01_broken.html\n")
    assert expected in log, log
    assert ("research: notebook 02_crash failed at cell 3 of 3: ZeroDivisionError: division by zero\n") in log
    assert "skipped    03_delta (needs 01_broken (failed))" in log
    assert "ran        02_gamma" in log  # independent of the failures: finished
    for path in ("notebooks/01_broken.ipynb", "01_broken.html", "code/01_broken.html"):
        assert (reports / path).is_file()
    assert "value 7 is outside 1..5" in (reports / "01_broken.html").read_text()
    assert not (reports / "results" / "broken.json").exists() and not (reports / "03_delta.html").exists()
    manifest = json.loads((reports / "manifest.json").read_text())["notebooks"]
    assert manifest["01_broken"]["status"] == "failed"
    index = (reports / "index.html").read_text()
    assert "status-failed" in index and "status-skipped" in index


@pytest.mark.slow
def test_second_language_renders_beside_the_first(built, tmp_path):
    root = copy_of(built, tmp_path)
    summary, log = fixture_run(root, graph=GRAPH_OK[:2], params=["language=lt"])
    assert statuses(summary) == {"alpha": "ran", "beta": "ran"}, log
    reports = root / "reports" / "fixture-lt"
    assert json.loads((reports / "results" / "beta.json").read_text())["language"] == "lt"
    assert (root / "data" / "processed" / "fixture-lt" / "alpha.parquet").is_file()
    assert '<html lang="lt">' in (reports / "index.html").read_text()
    assert "Kilmė" in (reports / "01_beta.html").read_text()  # the provenance heading in Lithuanian
    summary, _ = fixture_run(root)  # the English reports are untouched and still up to date
    assert set(statuses(summary).values()) == {"up_to_date"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`make reports` of the demo study, in a temporary output root."""
    root = tmp_path_factory.mktemp("demo")
    stream = io.StringIO()
    summary = run(study="studies/demo/study.yaml", output_root=root, jobs=2, quiet=True, stream=stream)
    return root, summary, stream.getvalue()


@pytest.mark.slow
def test_demo_study_runs_end_to_end_and_its_results_are_documented(demo_run):
    """Every notebook of GRAPH runs, and every results key is documented in docs/results.md (and every
    documented key is produced)."""
    root, summary, log = demo_run
    assert summary.ok and statuses(summary) == {n.short: "ran" for n in GRAPH}, log
    doc = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    for node in GRAPH:
        section = re.search(rf"^## {node.short} \(`{node.name}`\)\n(.*?)(?=^## |\Z)", doc, flags=re.M | re.S)
        assert section, f"docs/results.md has no section '## {node.short} (`{node.name}`)'"
        rows = [ln.split("|")[1] for ln in section.group(1).splitlines() if ln.startswith("| `")]
        documented = set(re.findall(r"`(\w+)`", " ".join(rows)))
        produced = set(json.loads((root / "reports" / "demo" / "results" / f"{node.short}.json")
                                  .read_text())["results"])
        assert produced - documented == set(), f"{node.short}: undocumented keys"
        assert documented - produced == set(), f"{node.short}: documented keys not produced"
    index = root / "reports" / "demo" / "index.html"
    for href in [a["href"] for t, a in parse(index) if t == "a"]:
        assert (index.parent / href).is_file(), href
    for node in GRAPH:
        classes = " ".join(a.get("class", "") for _, a in parse(root / "reports" / "demo" / f"{node.name}.html"))
        assert "jp-CodeMirrorEditor" not in classes and "jp-InputPrompt" not in classes


@pytest.mark.slow
def test_demo_study_gives_the_same_results_when_run_again(demo_run, tmp_path):
    """A forced second run gives byte-identical results JSON (also: no notebook reads a later one's output)."""
    root = tmp_path / "again"
    shutil.copytree(demo_run[0], root)
    stream = io.StringIO()
    summary = run(study="studies/demo/study.yaml", output_root=root, jobs=2, quiet=True, stream=stream, force=True)
    assert summary.ok, stream.getvalue()
    assert results_of(root, "demo") == results_of(demo_run[0], "demo")


def results_of(root: Path, study: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "reports" / study / "results").glob("*.json"))}


def test_two_runs_cannot_write_the_same_reports_at_once(tmp_path):
    layout = pipeline.Layout(tmp_path, "fixture")
    held = pipeline._lock_reports(layout)
    try:
        with pytest.raises(pipeline.ResearchError, match=r"another `research run` is writing these reports \(process \d+\)"):
            pipeline._lock_reports(layout)
    finally:
        held.close()
    pipeline._lock_reports(layout).close()  # free again


def test_index_headlines_read_the_results_and_skip_absent_parts():
    from research.render import headlines

    results = {
        "prepare": {"n_respondents": 280, "group_sizes": {"foreign": 126, "lithuanian": 154}, "n_experts": 10,
                    "n_orders": 1069},
        "experts": {"W_overall": 0.78512, "p_overall": 1e-20, "n_experts": 10, "n_factors": 18,
                    "top_factors": ["S3_COMPLAINT", "S2_RESULT", "S2_TIME", "S2_CONTRACT"]},
        "survey": {"group_levels": ["foreign", "lithuanian"], "significant_items": ["<b>X</b>"],
                   "correction": "holm"},
        "monitoring": {"kpi_status": {"a": "on_target", "b": "out_of_control"}, "n_out_of_control": 1,
                       "shift_detected_month": {"a": None, "b": "2026-01"}},
    }
    en = headlines(results, "en")
    assert en == [
        "Data: 280 client respondents (foreign: 126, lithuanian: 154), 10 experts and 1069 service orders.",
        "The 10 experts agree on the importance of the 18 quality factors: Kendall's W = 0.785, p &lt; 0.001. "
        "Most important: S3_COMPLAINT, S2_RESULT, S2_TIME (+1).",
        "Items on which the client groups differ after multiplicity correction (Holm): 1 – &lt;b&gt;X&lt;/b&gt;.",
        "KPIs out of control: 1 of 2; sustained shifts: b (2026-01).",
    ]
    lt = headlines(results, "lt")
    assert "Kendallo W = 0,785, p &lt; 0,001" in lt[1]
    assert headlines({"experts": {}, "efa": {}}, "en") == []
