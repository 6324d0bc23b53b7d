"""Static checks of every notebook: clean (no outputs), thin (no function definitions), parameters that
papermill can read (each with a type and a help comment), and a known kernel."""

from __future__ import annotations

import ast
import json
import logging

import pytest
from papermill.translators import PythonTranslator

from research.paths import KERNEL_NAME, NOTEBOOKS

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_there_are_six_study_notebooks():
    assert [p.stem[:2] for p in NOTEBOOK_FILES] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_committed_clean_and_thin(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL_NAME
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs") and not cell.get("execution_count"), "commit notebooks without outputs"
        tree = ast.parse("".join(cell["source"]))
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)]
        assert not defs, f"{path.name}: logic belongs in src/research, not in notebook cells"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_parameters_are_readable_by_papermill(path, caplog):
    all_cells = _cells(path)
    tagged = [i for i, c in enumerate(all_cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [0], "exactly one parameters cell, and it comes first"
    source = "".join(all_cells[0]["source"])
    assigned = [n.target.id for n in ast.parse(source).body if isinstance(n, ast.AnnAssign)]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inspected = PythonTranslator.inspect({"source": source})
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert [p.name for p in inspected] == assigned
    assert assigned[:2] == ["study", "language"]
    for p in inspected:
        assert p.inferred_type_name != "None" and p.help, f"{path.name}: parameter {p.name} needs a type and a comment"
