"""Run the benchmarks and write ``bench/results/*.json`` and ``docs/benchmarks.md`` (``make bench``).

    python -m bench.run            full run (about 25 minutes on the 2-core reference machine)
    python -m bench.run --quick    short run (a few minutes): small sizes, no pipeline; writes bench/results/quick/
    python -m bench.run --only kernels,r    a subset: kernels, r, pipeline (figures come with the pipeline)

Kernel cases run one per fresh child process (``bench.kernels``) with one BLAS thread, R with one core, the
pipeline as ``research run --force -j <cores>`` in a temporary output root. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import kernels as bk
from bench import pipeline_bench as bp
from bench import report
from bench import rside as br
from bench.proc import run_measured
from research import paths

RESULTS = paths.PROJECT_ROOT / "bench" / "results"
DOC = paths.PROJECT_ROOT / "docs" / "benchmarks.md"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SECTIONS = ("kernels", "r", "pipeline")


def say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------------
# machine and versions
# --------------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info() -> dict:
    from importlib.metadata import version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except Exception:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.PROJECT_ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip() or None
    except OSError:
        commit = None
    from threadpoolctl import threadpool_info

    blas = sorted({f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                   if i.get("user_api") == "blas"})
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "blas": blas, "git_commit": commit,
        "versions": {name: v(name) for name in ("numpy", "scipy", "pandas", "statsmodels", "pyarrow",
                                                 "matplotlib", "papermill", "nbconvert", "threadpoolctl")},
    }


# --------------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD, "PYTHONPATH": os.pathsep.join(
        [str(paths.PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def _run_case(case: bk.Case, cache: Path, *, in_process: bool = False) -> dict:
    """One kernel case in a fresh child process (``bench.kernels``); the data are generated first if needed."""
    from bench import data as bd

    env = _child_env()
    if case.kernel != "kendall_w" and not in_process and not bd.items_path(cache, case.n, case.p).exists():
        # generated in a process of its own: outside the child's memory, and this process stays small
        # (children inherit their parent's peak in ru_maxrss, see bench.kernels._peak_mb)
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from bench.data import "
                        f"cached_items; cached_items(Path({str(cache)!r}), {case.n}, {case.p})"],
                       env=env, cwd=paths.PROJECT_ROOT, check=True)
    spec = case.spec(cache)
    if in_process:
        return bk.run_case(spec)
    measured = run_measured([sys.executable, "-m", "bench.kernels", json.dumps(spec)], env=env,
                            cwd=paths.PROJECT_ROOT, timeout=3600)
    if measured.returncode != 0:
        tail = (measured.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"id": case.id, "kernel": case.kernel, "n": case.n, "p": case.p, "params": case.params,
                "repeats": case.repeats, "error": tail}
    record = json.loads(measured.stdout.strip().splitlines()[-1])
    record["child_wall_seconds"] = measured.wall_seconds
    return record


def run_kernels(cases: list[bk.Case], cache: Path, *, in_process: bool = False) -> list[dict]:
    records = []
    for i, case in enumerate(cases, 1):
        record = _run_case(case, cache, in_process=in_process)
        records.append(record)
        shown = (f"{record['median_seconds']:9.3f} s  peak {record['peak_rss_mb']:7.0f} MB"
                 if "error" not in record else f"ERROR {record['error']}")
        say(f"  [{i:2d}/{len(cases)}] {case.id:<44s} {shown}")
    return records


def run_r(kernel_records: list[dict], cache: Path, *, quick: bool) -> dict:
    """R psych beside ours. Our side is timed again right before R's (a fresh child, same repeats), so
    that both see the same load on this shared machine; the kernels section's median is kept beside it."""
    ok, info = br.r_available()
    if not ok:
        say(f"  R comparison skipped: {info}")
        return {"available": False, "message": info, "comparisons": []}
    say(f"  R: {info}")
    by_id = {r["id"]: r for r in kernel_records if "error" not in r}
    comparisons = []
    for case in br.r_cases(quick=quick):
        earlier = by_id.get(case.ours_id)
        params = {"iter": case.n_iter} if case.n_iter else {}
        repeats = earlier["repeats"] if earlier else (bk.REPEATS if not quick else 3)
        ours = _run_case(bk.Case(case.kernel, case.n, case.p, repeats, params), cache)
        if "error" in ours:
            comparisons.append({"id": case.ours_id, "kernel": case.kernel, "n": case.n, "p": case.p,
                                "error": f"our side failed: {ours['error']}"})
            continue
        case = br.RCase(case.kernel, case.n, case.p, repeats, case.n_iter)  # same number of repeats
        load = [round(x, 2) for x in os.getloadavg()]
        result = br.compare(case, ours, br.run_r(case, cache))
        result["load_average"] = load
        if earlier:
            result["ours_kernels_section_median_seconds"] = earlier["median_seconds"]
        comparisons.append(result)
        if "error" in result:
            say(f"  {case.ours_id:<44s} R ERROR {result['error']}")
            continue
        agree = {"parallel_analysis": lambda r: f"nfact R {r['r_n_suggested']} / ours {r['ours_n_suggested']}",
                 "polychoric": lambda r: f"max abs drho {r['max_abs_rho_diff']:.2e}",
                 "efa_fit": lambda r: f"max abs dloading {r['max_abs_loading_diff']:.2e}"}[case.kernel](result)
        say(f"  {case.ours_id:<44s} R {result['r_median_seconds']:8.3f} s  ours {result['ours_median_seconds']:8.3f} s"
            f"  R/ours {result['ratio_r_over_ours']:7.1f}  {agree}")
    return {"available": True, "versions": info, "comparisons": comparisons}


def run_pipeline_section(work: Path, *, large_n: int, medium_n: int, jobs: int, large_timeout: float | None) -> dict:
    out: dict = {"jobs": jobs, "large_n": large_n, "medium_n": medium_n}
    say(f"  floor: {len(_graph())} empty notebooks through papermill + nbconvert")
    out["floor"] = bp.run_floor(work / "floor", n_notebooks=len(_graph()), jobs=jobs)
    say(f"    {out['floor']['wall_seconds']:.1f} s, peak tree RSS {out['floor']['peak_tree_rss_mb']:.0f} MB")
    say("  demo study: research run --force")
    out["demo"] = bp.run_pipeline(work / "demo", study="studies/demo/study.yaml", jobs=jobs, label="demo")
    _said(out["demo"])
    for key, n, timeout in (("medium", medium_n, None), ("large", large_n, large_timeout)):
        if not n:
            continue
        if timeout == 0:
            timeout = None
        elif timeout is None and key == "large":
            # the target is 10x the demo's wall time: stop there (the target is missed by then), so that
            # make bench stays bounded
            timeout = bk_large_factor() * out["demo"]["wall_seconds"] + 5.0
        root = work / key
        say(f"  {key} study: generating {n:,} respondents")
        out[f"{key}_generation"] = bp.write_large_study(root, n_respondents=n, study_id=f"bench-{key}")
        info = out[f"{key}_generation"]
        limit = f" (stopped after {timeout:.0f} s)" if timeout else ""
        say(f"    generated in {info['seconds']:.1f} s ({info['survey_bytes'] / 2**20:.0f} MB survey.csv); "
            f"research run --force{limit}")
        out[key] = bp.run_pipeline(root, study=info["study"], jobs=jobs, label=key, timeout=timeout)
        _said(out[key])
        shutil.rmtree(root / "data" / "raw", ignore_errors=True)
    return out


def _said(run: dict) -> None:
    say(f"    {run['wall_seconds']:.1f} s, peak tree RSS {run['peak_tree_rss_mb']:.0f} MB, "
        f"{'ok' if run['ok'] else 'NOT ok: ' + run['message']}")
    for line in run["notebooks"]:
        say(f"      {line}")


def bk_large_factor() -> float:
    return report.LARGE_TIME_FACTOR


def _graph():
    from research.pipeline import GRAPH

    return GRAPH


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: small sizes, no pipeline")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the test: tiny, in-process
    parser.add_argument("--only", default=None, help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--out", default=None, help="results folder (default bench/results, quick: bench/results/quick)")
    parser.add_argument("--doc", default=None, help="markdown summary (default docs/benchmarks.md; quick: none)")
    parser.add_argument("--large-n", type=int, default=1_000_000, help="respondents of the large study")
    parser.add_argument("--medium-n", type=int, default=100_000,
                        help="respondents of the medium study (run to the end; 0 = none)")
    parser.add_argument("--large-timeout", type=float, default=None,
                        help="stop the large study after this many seconds (default: 10 x the demo's wall time "
                             "+ 5 s, where its time target is missed anyway; 0 = no limit)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="notebooks at once (research run -j)")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-evaluate the targets and rewrite the markdown from the results folder")
    args = parser.parse_args(argv)
    if args.report_only:
        return _report_only(Path(args.out) if args.out else RESULTS, Path(args.doc) if args.doc else DOC)
    quick, smoke = args.quick, args.smoke
    mode = "smoke" if smoke else "quick" if quick else "full"
    sections = set(SECTIONS if args.only is None else args.only.split(","))
    if smoke or (quick and args.only is None):
        sections.discard("pipeline")
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; expected {', '.join(SECTIONS)}")
    out_dir = Path(args.out) if args.out else (RESULTS / "quick" if quick or smoke else RESULTS)
    doc = Path(args.doc) if args.doc else (None if quick or smoke else DOC)
    out_dir.mkdir(parents=True, exist_ok=True)

    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    say(f"bench ({mode}): {machine['cpu']}, {machine['cores']} cores, load {machine['load_average_at_start']}")
    work = Path(tempfile.mkdtemp(prefix="research-bench-"))
    cache = work / "cache"
    cache.mkdir()
    meta = {"mode": mode, "started": started.isoformat(timespec="seconds"), "machine": machine}
    written = []
    try:
        kernel_records: list[dict] = []
        if "kernels" in sections:
            cases = bk.kernel_cases(quick=quick, smoke=smoke)
            say(f"kernels: {len(cases)} cases (median of {bk.REPEATS if not (quick or smoke) else cases[0].repeats} "
                f"runs; {bk.REPEATS_LARGEST} at 1e6 respondents)")
            kernel_records = run_kernels(cases, cache, in_process=smoke)
            payload = {**meta, "timing": report.TIMING_NOTE, "memory": report.MEMORY_NOTE,
                       "threads": ONE_THREAD, "cases": kernel_records}
            written.append(_write(out_dir / "kernels.json", payload))
        if "r" in sections and not smoke:
            say("R psych side by side")
            r = run_r(kernel_records, cache, quick=quick)
            written.append(_write(out_dir / "r_comparison.json", {**meta, **r}))
        if "pipeline" in sections:
            say("pipeline")
            pipe = run_pipeline_section(work / "pipeline", large_n=args.large_n, medium_n=args.medium_n,
                                        jobs=args.jobs, large_timeout=args.large_timeout)
            written.append(_write(out_dir / "pipeline.json", {**meta, **pipe}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finished = dt.datetime.now(dt.UTC)
    summary = report.summarise(out_dir)
    summary.update(mode=mode, started=meta["started"], finished=finished.isoformat(timespec="seconds"),
                   total_seconds=round((finished - started).total_seconds(), 1),
                   load_average_at_end=[round(x, 2) for x in os.getloadavg()])
    written.append(_write(out_dir / "summary.json", {**meta, **summary}))
    if doc is not None:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(report.markdown(out_dir), encoding="utf-8")
        written.append(doc)
    for target in summary.get("targets", []):
        say(f"target: {target['name']}: {target['status']} - {target['detail']}")
    say(f"done in {summary['total_seconds']:.0f} s; wrote {', '.join(str(w) for w in written)}")
    return 0


def _report_only(out_dir: Path, doc: Path) -> int:
    """Targets and markdown again from ``out_dir`` (e.g. after a change of the report's wording)."""
    previous = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    previous.update(report.summarise(out_dir))
    _write(out_dir / "summary.json", previous)
    doc.write_text(report.markdown(out_dir), encoding="utf-8")
    say(f"rewrote {out_dir / 'summary.json'} and {doc}")
    return 0


def _write(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
