"""Write each notebook's "Run time" line, and the instructor guide's run-time figures, from the measured times in
benchmarks/results/notebooks-cpu.json.

    python benchmarks/notebooks.py --inplace     # measure (and execute) every notebook
    python scripts/run_times.py                  # then state the times in the notebooks and in docs/instructor.md
    python scripts/run_times.py --check          # write nothing: list what is out of date, exit 1 if anything is

Every notebook states its run time in its first markdown cell as "**Run time:** about N s" (or "N minutes")
"on 2 CPU cores"; tests/test_notebook_claims.py fails when a stated time is off the measured one by more than 2x.
The guide (docs/instructor.md) holds a table of every notebook's and solution's time between two marker lines
(:data:`BEGIN`, :data:`END`), and its plans say "runs in about N s" of the one notebook each row links to; both are
written here, stated the same way, and tests/test_instructor_guide.py checks them against the JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "notebooks-cpu.json"
GUIDE = ROOT / "docs" / "instructor.md"
#: The line, in the first markdown cell: "**Run time:** about 40 s on 2 CPU cores ..."
LINE = re.compile(r"\*\*Run time:\*\* about (\d+) (s|minutes?)")
#: The guide's run-time table is what lies between these two lines (both kept).
BEGIN = "<!-- run-times: begin. Written by scripts/run_times.py from benchmarks/results/notebooks-cpu.json. -->"
END = "<!-- run-times: end -->"
#: In a row of the guide's plans that links to one notebook: "runs in about 5 minutes".
RUNS_IN = re.compile(r"runs in about \d+ (?:s|minutes?)\b")
#: A link from the guide to a notebook or a solution.
GUIDE_LINK = re.compile(r"\]\(\.\./notebooks/(?:solutions/)?(\d\d_\w+\.ipynb)\)")


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


def _cell(row: dict | None) -> list[str]:
    if row is None:
        return ["", "", ""]
    folder = "solutions/" if row["notebook"].endswith("_solutions.ipynb") else ""
    return [f"[{row['notebook']}](../notebooks/{folder}{row['notebook']})",
            f"about {stated(row['seconds'])} ({row['seconds']:.1f} s)", f"{row['peak_rss_mb'] / 1024:.1f} GB"]


def guide_table(result: dict) -> str:
    """The guide's run-time block: where the times come from, one row per notebook with its solutions, and the
    JSON's notes.

    >>> print(guide_table({"machine": {"cpus": 2}, "profile": "offline", "budget": "ci", "cache": "cold",
    ...     "date": "2026-01-01T00:00:00+00:00", "notebooks": [{"notebook": "00_a.ipynb", "seconds": 15.0,
    ...     "peak_rss_mb": 852.3}, {"notebook": "00_a_solutions.ipynb", "seconds": 7.9, "peak_rss_mb": 754.1}]}))
    Measured by `benchmarks/notebooks.py` on 2 CPU cores, offline profile, budget `ci`, cache cold, 2026-01-01
    ([`benchmarks/results/notebooks-cpu.json`](../benchmarks/results/notebooks-cpu.json)).
    <BLANKLINE>
    | # | notebook | run time | peak memory | solutions | run time | peak memory |
    |---|---|---|---|---|---|---|
    | 00 | [00_a.ipynb](../notebooks/00_a.ipynb) | about 20 s (15.0 s) | 0.8 GB | [00_a_solutions.ipynb](../notebooks/solutions/00_a_solutions.ipynb) | about 10 s (7.9 s) | 0.7 GB |
    """
    rows = {row["notebook"]: row for row in result["notebooks"]}
    stems = sorted({name.removesuffix(".ipynb").removesuffix("_solutions") for name in rows})
    lines = [f"Measured by `benchmarks/notebooks.py` on {result['machine']['cpus']} CPU cores, {result['profile']} "
             f"profile, budget `{result['budget']}`, cache {result['cache']}, {result['date'][:10]}",
             "([`benchmarks/results/notebooks-cpu.json`](../benchmarks/results/notebooks-cpu.json)).", "",
             "| # | notebook | run time | peak memory | solutions | run time | peak memory |",
             "|---|---|---|---|---|---|---|"]
    for stem in stems:
        cells = [stem[:2], *_cell(rows.get(f"{stem}.ipynb")), *_cell(rows.get(f"{stem}_solutions.ipynb"))]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- `{row['notebook']}`: {row['note']}." for row in result["notebooks"] if row.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def guide_text(text: str, result: dict) -> str:
    """``text`` (the guide) with its run-time block and every "runs in about ..." of its plans restated."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"{GUIDE.relative_to(ROOT)} has no run-time block: put the lines {BEGIN!r} and {END!r} "
                         "where the table goes")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    seconds = {row["notebook"]: row["seconds"] for row in result["notebooks"]}

    def restate(line: str) -> str:
        linked = set(GUIDE_LINK.findall(line))
        if line.startswith("|") and len(linked) == 1 and (name := linked.pop()) in seconds:
            return RUNS_IN.sub(f"runs in about {stated(seconds[name])}", line)
        return line

    head, tail = ("\n".join(restate(line) for line in part.split("\n")) for part in (head, tail))
    return f"{head}{BEGIN}\n{guide_table(result)}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; list what is out of date, exit 1 if any")
    args = parser.parse_args(argv)
    result = json.loads(RESULTS.read_text())
    measured = {row["notebook"]: row["seconds"] for row in result["notebooks"]}
    stale = []
    for path in sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "markdown")
        line = f"**Run time:** about {stated(measured[path.name])} on 2 CPU cores"
        if LINE.search(first.source):
            source = LINE.sub(line.removesuffix(" on 2 CPU cores"), first.source)
        else:
            source = first.source.rstrip() + f"\n\n{line} (`benchmarks/results/notebooks-cpu.json`)."
        if source != first.source:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                first.source = source
                nbformat.write(nb, path)
        print(f"{path.name:<50} {line}")
    text = GUIDE.read_text(encoding="utf-8")
    if (new := guide_text(text, result)) != text:
        stale.append(str(GUIDE.relative_to(ROOT)))
        if not args.check:
            GUIDE.write_text(new, encoding="utf-8")
    for path in stale:
        print(("out of date: " if args.check else "updated: ") + path)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
