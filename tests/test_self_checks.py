"""Self-checks: every main notebook ends its lesson with one ``## Check your understanding`` cell, before its
exercises, of 3 to 5 numbered questions, each with a folded answer in exactly this shape:

    **1. Why is the original phase kept when a masked magnitude becomes sound?**

    <details><summary>Answer</summary>

    The answer, which may use `code` and $math$.

    </details>

The blank lines matter: text directly inside an HTML block is not parsed as markdown (GitHub, JupyterLab, MyST), so
without them the answer's code, maths and emphasis would show as raw characters.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HEADING = "## Check your understanding"
EXERCISES = re.compile(r"^## Exercises?\b", re.M)     # 00 and 01 have one exercise: "## Exercise"
QUESTION = re.compile(r"^\*\*(\d+)\. (.+)\*\*$", re.M)
OPEN, CLOSE = "<details><summary>Answer</summary>", "</details>"


def _markdown(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


def _check_cell(path):
    markdown = _markdown(path)
    found = [(i, text) for i, text in markdown if text.startswith(HEADING)]
    assert len(found) == 1, f"{path.name}: {len(found)} markdown cells start with {HEADING!r}, expected exactly one"
    index, text = found[0]
    return markdown, index, text


def test_every_main_notebook_is_checked():
    assert len(NOTEBOOKS) == 8, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_self_check_comes_before_the_exercises(path):
    markdown, index, _ = _check_cell(path)
    exercises = [i for i, text in markdown if EXERCISES.search(text)]
    assert exercises, f"{path.name}: no markdown cell with an '## Exercises' heading"
    assert index < exercises[0], (f"{path.name}: '{HEADING}' is cell {index}, after the exercises (cell {exercises[0]})")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_self_check_has_three_to_five_questions_with_folded_answers(path):
    _, index, text = _check_cell(path)
    where = f"{path.name} (cell {index})"
    assert text.startswith(HEADING + "\n\n"), f"{where}: the heading must be followed by a blank line"
    questions = QUESTION.findall(text)
    assert 3 <= len(questions) <= 5, f"{where}: {len(questions)} questions of the form '**N. ...**', expected 3 to 5"
    numbers = [int(n) for n, _ in questions]
    assert numbers == list(range(1, len(numbers) + 1)), f"{where}: questions numbered {numbers}, expected 1, 2, ..."
    assert text.count(OPEN) == text.count("<details") == len(questions), (
        f"{where}: {text.count('<details')} <details> blocks ({text.count(OPEN)} of the form {OPEN!r}) "
        f"for {len(questions)} questions")
    assert text.count(CLOSE) == len(questions), f"{where}: {text.count(CLOSE)} {CLOSE} for {len(questions)} questions"

    starts = [m.start() for m in QUESTION.finditer(text)] + [len(text)]
    for (n, question), start, end in zip(questions, starts, starts[1:]):
        block = text[start:end].rstrip("\n")
        name = f"{where}, question {n} ({question[:50]!r})"
        head = f"**{n}. {question}**\n\n{OPEN}\n\n"
        assert block.startswith(head), (
            f"{name}: the question must be followed by a blank line, {OPEN!r} and another blank line")
        assert block.endswith(f"\n\n{CLOSE}"), (
            f"{name}: the answer must end with a blank line and {CLOSE!r} on its own line")
        answer = block[len(head): -len(CLOSE)].strip()
        assert answer, f"{name}: the answer is empty"
        assert OPEN not in answer and CLOSE not in answer, f"{name}: an answer block holds another <details> block"
