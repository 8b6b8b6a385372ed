"""Markdown that cannot drift from its numbers: every decimal number a notebook's markdown states appears in one of
its outputs, and every file its markdown links to exists in the repository."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Notebooks whose every markdown number is checked against their outputs.
CHECKED = ["06_which_explanation_to_trust.ipynb", "solutions/06_which_explanation_to_trust_solutions.ipynb"]
#: Numbers a notebook may state without printing them: figures quoted from papers, with their source.
EXCEPTIONS: dict[str, set[str]] = {}
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")


def _cells(path):
    return json.loads((ROOT / "notebooks" / path).read_text())["cells"]


def _outputs(cells) -> str:
    texts = []
    for cell in cells:
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
    missing = sorted(stated - printed - EXCEPTIONS.get(path, set()))
    assert not missing, f"{path} states numbers its outputs do not print: {missing}"


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT / "notebooks")) for p in (ROOT / "notebooks").rglob("*.ipynb")))
def test_markdown_links_point_to_files_that_exist(path):
    cells = _cells(path)
    folder = (ROOT / "notebooks" / path).parent
    for target in re.findall(r"\]\(([^)#\s]+)\)", _markdown(cells)):
        if "://" in target:
            continue
        assert (folder / target).exists(), f"{path} links to {target}, which does not exist"
