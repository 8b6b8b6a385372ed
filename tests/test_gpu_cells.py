"""GPU cells: the training cells a GPU speeds up. One visible mark (first line ``# GPU cell: ...`` and the tag
``gpu``), and every one is executed by nbval in CI at ``AUDIOX_BUDGET=ci`` with checked outputs that show it works."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from notebooks import cell_seconds, is_gpu_cell  # noqa: E402
import nbformat  # noqa: E402

#: the notebooks that train something a GPU speeds up; a new GPU cell elsewhere must be added here on purpose
EXPECTED = {"03_nmf_listen_to_interpret.ipynb", "04_lmac_zs_listenable_maps.ipynb",
            "05_latent_explanation_synthesis.ipynb"}
CHECK_LINE = "loss finite True, fell True; checkpoint reloads to the same weights True"


def _gpu_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if is_gpu_cell(c)]


def test_the_gpu_cells_are_where_expected():
    assert {p.name for p in NOTEBOOKS if _gpu_cells(p)} == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_gpu_cell_is_marked_both_ways(path):
    """The tag and the first comment line go together: a reader sees the line, tools read the tag."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        says = cell.source.startswith("# GPU cell: ")
        assert says == is_gpu_cell(cell), f"{path.name}: a cell is marked only one way: {cell.source[:80]!r}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gpu_cells_are_checked_and_their_saved_outputs_show_training_works(name):
    cells = _gpu_cells(ROOT / "notebooks" / name)
    for cell in cells:
        assert "# NBVAL_CHECK_OUTPUT" in cell.source.splitlines()[:3], f"{name}: a GPU cell nbval does not check"
        text = "".join(out.get("text", "") for out in cell.outputs)
        assert "budget ci:" in text and CHECK_LINE in text, f"{name}: saved at another budget, or failing: {text!r}"
        assert cell_seconds(cell) > 0


def test_gpu_cells_are_timed_at_the_ci_budget():
    rows = {r["notebook"]: r for r in json.loads((ROOT / "benchmarks/results/notebooks-cpu.json").read_text())["notebooks"]}
    for name in EXPECTED:
        assert rows[name]["budget"] == "ci" and rows[name]["gpu_cells"], f"{name}: GPU cells not timed"


def test_the_test_target_runs_gpu_cells_at_the_ci_budget():
    makefile = (ROOT / "Makefile").read_text()
    assert "AUDIOX_BUDGET=ci" in makefile.split("TEST_ENV :=")[1].splitlines()[0]
    assert "benchmarks/notebooks.py --gpu-cells" in makefile.split("test-gpu:")[1].split("\n\n")[0]
