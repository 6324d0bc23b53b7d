"""The pipeline's floor: the same number of EMPTY notebooks through papermill and nbconvert.

``python -m bench.floor <folder> <n_notebooks> <jobs>`` writes ``n`` notebooks holding only a
``parameters`` cell (``study = "..."``) and runs them ``jobs`` at a time, each in a fresh worker process
(as ``research run`` does): papermill executes it in the ``research-study`` kernel and nbconvert renders
it twice to HTML (without and with code, like the reviewer and full reports). What ``research run`` needs
beyond this floor is the analyses, the figures and the pipeline's own bookkeeping.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KERNEL = "research-study"


def _empty_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('study: str = "studies/demo/study.yaml"  # study configuration')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python (research study)", "language": "python"}
    nbformat.write(nb, str(path))


def worker(notebook: str) -> int:
    """Execute one empty notebook with papermill and render it twice with nbconvert."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    source = Path(notebook)
    executed = source.with_name(source.stem + ".executed.ipynb")
    pm.execute_notebook(str(source), str(executed), parameters={"study": "studies/demo/study.yaml"},
                        kernel_name=KERNEL, progress_bar=False, log_output=False, cwd=str(source.parent))
    nb = nbformat.read(str(executed), as_version=4)
    for exclude_input, suffix in ((True, ".html"), (False, ".code.html")):
        exporter = HTMLExporter(exclude_input=exclude_input)
        body, _ = exporter.from_notebook_node(nb)
        source.with_name(source.stem + suffix).write_text(body, encoding="utf-8")
    return 0


def run_floor(folder: Path, n_notebooks: int, jobs: int) -> float:
    """Run the floor in ``folder``; returns the wall time in seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    notebooks = []
    for i in range(n_notebooks):
        path = folder / f"{i:02d}_empty.ipynb"
        _empty_notebook(path)
        notebooks.append(path)
    started = time.perf_counter()

    def one(path: Path) -> int:
        return subprocess.run([sys.executable, "-m", "bench.floor", "--worker", str(path)], check=True).returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, notebooks))
    return time.perf_counter() - started


if __name__ == "__main__":
    if sys.argv[1] == "--worker":
        sys.exit(worker(sys.argv[2]))
    seconds = run_floor(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    print(f"{seconds:.3f}")
