"""Markdown that cannot drift from its numbers: every decimal number a notebook's markdown states appears in one of
its outputs, and every file its markdown links to exists in the repository."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Notebooks whose every markdown number is checked against their outputs: all of them.
CHECKED = sorted(str(p.relative_to(ROOT / "notebooks")) for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))
#: Numbers a notebook may state without printing them, each with the reason: settings the reader chooses (not
#: results), figures quoted from papers with their source, identifiers.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "03_nmf_listen_to_interpret.ipynb": {
        "0.2": "L2I's relevance threshold, a setting (l2i.L2I(threshold=0.2))",
        "0.4": "the weight of the sparsity term in the interpreter's loss, a setting",
        "1.0": "the fidelity weight of the first half of training, a setting (fidelity_weights=(1.0, 2.0))",
        "2.0": "the fidelity weight of the second half, a setting",
    },
    "05_latent_explanation_synthesis.ipynb": {
        "1.5": "EnCodec's bandwidth in kbps, a setting of the full profile",
        "2410.07530": "the arXiv identifier of Akman, Sun and Schuller",
    },
}
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")


def _cells(path):
    return json.loads((ROOT / "notebooks" / path).read_text())["cells"]


def _outputs(cells) -> str:
    """The text outputs of the cells nbval checks (``# NBVAL_CHECK_OUTPUT``): a number stated in markdown must be
    one whose change fails the build."""
    texts = []
    for cell in cells:
        if cell["cell_type"] != "code" or "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            continue
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def _markdown(cells) -> str:
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    text = re.sub(r"`[^`]*`", " ", text)  # code is not a claim about the outputs
    return re.sub(r"\$[^$]*\$", " ", text)  # nor is maths


@pytest.mark.parametrize("path", CHECKED)
def test_every_number_in_the_markdown_is_printed_by_the_notebook(path):
    cells = _cells(path)
    outputs = _outputs(cells)
    printed = set(NUMBER.findall(outputs))
    stated = set(NUMBER.findall(_markdown(cells)))
    missing = sorted(stated - printed - EXCEPTIONS.get(path, {}).keys())
    assert not missing, f"{path} states numbers its outputs do not print: {missing}"


#: A file named in markdown, linked or in backticks: `audiox/metrics.py`, [solutions](solutions/x.ipynb)
FILE = re.compile(r"[\w./-]+\.(?:py|md|json|ipynb|txt|csv)\b")


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT / "notebooks")) for p in (ROOT / "notebooks").rglob("*.ipynb")))
def test_markdown_cites_only_files_that_exist(path):
    cells = _cells(path)
    folder = (ROOT / "notebooks" / path).parent
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    links = re.findall(r"\]\(([^)#\s]+)\)", text)
    named = FILE.findall(re.sub(r"[\w+.-]+://[^\s)]+", " ", text))  # file names outside web addresses
    for target in links + named:
        if "://" in target or target.startswith("www."):
            continue
        found = [base / target for base in (folder, ROOT, ROOT / "notebooks") if (base / target).exists()]
        assert found, f"{path} cites {target}, which is not in the repository"


def _run_times():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_times", ROOT / "scripts" / "run_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT / "notebooks")) for p in (ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")))
def test_stated_run_time_is_within_2x_of_the_measured_one(path):
    run_times = _run_times()
    measured = {row["notebook"]: row["seconds"] for row in json.loads(run_times.RESULTS.read_text())["notebooks"]}
    first = next("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    stated = run_times.stated_seconds(first)
    assert stated is not None, f"{path} states no run time (`**Run time:** about N s`); run scripts/run_times.py"
    seconds = measured[Path(path).name]
    assert seconds / 2 <= stated <= 2 * seconds, f"{path} says {stated:.0f} s, measured {seconds:.0f} s"
