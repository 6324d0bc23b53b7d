"""Run one notebook with papermill in the project kernel (for notebook tests before the full pipeline)."""

from __future__ import annotations

from pathlib import Path

import papermill as pm

from research.paths import KERNEL_NAME, NOTEBOOKS, PROJECT_ROOT


def execute_notebook(name: str, out_dir: Path, **parameters) -> Path:
    """Execute ``notebooks/<name>.ipynb`` into ``out_dir`` and return the executed notebook's path."""
    out = Path(out_dir) / f"{name}.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters,
                        kernel_name=KERNEL_NAME, cwd=str(PROJECT_ROOT), progress_bar=False)
    return out
