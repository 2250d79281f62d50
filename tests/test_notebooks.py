"""Every notebook in ``examples/`` executes top to bottom; a cell that raises fails the test.

Each notebook carries its own key ``assert`` statements (closed forms,
``spsolve`` references), so this runs them as tests. Notebooks are stored
without outputs (checked here too) and executed with ``nbclient`` in a
``python3`` kernel: ``jupyter_client`` starts the native kernel with this
interpreter (``sys.executable``), so no ``ipykernel install`` is needed.
Figures go to matplotlib's Agg backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
#: Seconds a single cell may run (each notebook takes well under a minute on two cores).
CELL_TIMEOUT = 240


def test_the_four_teaching_notebooks_are_present():
    names = [p.stem for p in NOTEBOOKS]
    for stem in (
        "01_fixed_points",
        "02_spectral_bias_irno",
        "03_contraction_analysis",
        "04_hybrid_darcy",
    ):
        assert stem in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_its_assertions_hold(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},  # files a notebook writes go here
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
