"""Write each notebook's "Run time" line from the measured times in benchmarks/results/notebooks-cpu.json.

    python benchmarks/notebooks.py --inplace     # measure (and execute) every notebook
    python scripts/run_times.py                  # then state the times in the notebooks

Every notebook states its run time in its first markdown cell as "**Run time:** about N s" (or "N minutes")
"on 2 CPU cores"; tests/test_notebook_claims.py fails when a stated time is off the measured one by more than 2x.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "notebooks-cpu.json"
#: The line, in the first markdown cell: "**Run time:** about 40 s on 2 CPU cores ..."
LINE = re.compile(r"\*\*Run time:\*\* about (\d+) (s|minutes?)")


def stated(seconds: float) -> str:
    """A measured time as the notebooks state it: tens of seconds below 90 s, whole minutes above.

    >>> stated(8.1), stated(54.0), stated(131.4), stated(246.0)
    ('10 s', '50 s', '2 minutes', '4 minutes')
    """
    if seconds < 90:
        return f"{max(10, int(round(seconds / 10.0)) * 10)} s"
    minutes = int(round(seconds / 60.0))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def stated_seconds(text: str) -> float | None:
    """The run time a notebook's first markdown cell states, in seconds (``None`` when it states none)."""
    match = LINE.search(text)
    if match is None:
        return None
    return float(match.group(1)) * (1 if match.group(2) == "s" else 60)


def main() -> None:
    measured = {row["notebook"]: row["seconds"] for row in json.loads(RESULTS.read_text())["notebooks"]}
    for path in sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        line = f"**Run time:** about {stated(measured[path.name])} on 2 CPU cores"
        if LINE.search(first.source):
            first.source = LINE.sub(line.removesuffix(" on 2 CPU cores"), first.source)
        else:
            first.source = first.source.rstrip() + f"\n\n{line} (`benchmarks/results/notebooks-cpu.json`)."
        nbformat.write(nb, path)
        print(f"{path.name:<50} {line}")


if __name__ == "__main__":
    main()
