"""The instructor guide (docs/instructor.md) cannot drift from the repository: its run times are the measured ones,
stated as the notebooks state them, its plans add up, and every notebook, section, link, make target and
environment variable it names exists."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "instructor.md"
TEXT = GUIDE.read_text(encoding="utf-8")


def _run_times():
    spec = importlib.util.spec_from_file_location("run_times", ROOT / "scripts" / "run_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_times = _run_times()
RESULT = json.loads(run_times.RESULTS.read_text())
MEASURED = {row["notebook"]: row["seconds"] for row in RESULT["notebooks"]}


def _notebook(name: str) -> Path:
    folder = ROOT / "notebooks" / ("solutions" if name.endswith("_solutions.ipynb") else "")
    return folder / name


def _section(heading: str) -> str:
    """The guide's text under ``heading`` (a whole heading line), up to the next heading of its level or higher."""
    level = len(heading) - len(heading.lstrip("#"))
    start = TEXT.index(heading + "\n")
    stop = re.compile(r"^#{1,%d} " % level, re.M).search(TEXT, start + len(heading) + 1)
    return TEXT[start:stop.start() if stop else len(TEXT)]


# ---------------------------------------------------------------------------------------------------------------
# run times
# ---------------------------------------------------------------------------------------------------------------


def test_the_run_time_block_is_what_run_times_writes():
    assert run_times.guide_text(TEXT, RESULT) == TEXT, "run python scripts/run_times.py (the guide is out of date)"


def test_every_measured_notebook_is_in_the_table_at_its_stated_time():
    block = TEXT.split(run_times.BEGIN, 1)[1].split(run_times.END, 1)[0]
    found = {name: (about, float(seconds)) for name, about, seconds in
             re.findall(r"\[(\d\d_\w+\.ipynb)\]\([^)]+\) \| about (\d+ (?:s|minutes?)) \((\d+\.\d) s\)", block)}
    missing, extra = sorted(set(MEASURED) - set(found)), sorted(set(found) - set(MEASURED))
    assert not missing and not extra, f"the table misses {missing} and has {extra}, which were not measured"
    for name, seconds in MEASURED.items():
        assert found[name] == (run_times.stated(seconds), round(seconds, 1)), name


def test_the_plans_state_each_notebooks_measured_time():
    rows = [line for line in TEXT.splitlines() if line.startswith("|") and "runs in about" in line]
    assert len(rows) >= 10
    for row in rows:
        linked = set(run_times.GUIDE_LINK.findall(row))
        assert len(linked) == 1, f"a row that says 'runs in about' links to one notebook: {row[:80]}"
        name = linked.pop()
        for about in re.findall(r"runs in about (\d+ (?:s|minutes?))\b", row):
            assert about == run_times.stated(MEASURED[name]), f"{name}: the plan says {about}"


def test_run_times_rewrites_the_block_and_the_plans_from_the_json():
    changed = {**RESULT, "notebooks": [{**row, "seconds": row["seconds"] * 3} for row in RESULT["notebooks"]]}
    text = run_times.guide_text(TEXT, changed)
    assert text != TEXT and run_times.guide_text(text, RESULT) == TEXT  # a round trip restores the guide
    assert f"about {run_times.stated(MEASURED['03_nmf_listen_to_interpret.ipynb'] * 3)} (" in text
    assert f"runs in about {run_times.stated(MEASURED['03_nmf_listen_to_interpret.ipynb'] * 3)}" in text  # 03's plans


def test_run_times_refuses_a_guide_without_its_markers():
    with pytest.raises(ValueError, match="run-time block"):
        run_times.guide_text(TEXT.replace(run_times.END, ""), RESULT)


# ---------------------------------------------------------------------------------------------------------------
# the plans
# ---------------------------------------------------------------------------------------------------------------

PLANS = ["### Plan A: a 3-hour workshop", "### Plan B: a full day"]
#: a slot's time span ("0:10–0:35", "09:10–09:45"), its length and what it is
ROW = re.compile(r"^\| (\d+):(\d\d)–(\d+):(\d\d) \| (\d+) \| ([^|]+) \|(.*)$")


def _slots(heading):
    section = _section(heading)
    total = re.search(r"\*\*Total: (\d+) minutes\*\* \((\d+) of teaching, (\d+) of breaks\)", section)
    assert total, f"{heading}: no line '**Total: N minutes** (T of teaching, B of breaks)'"
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| ") and "–" in line.split("|")[1]]
    assert rows and all(rows), f"{heading}: a slot row is not '| h:mm–h:mm | min | slot | ...'"
    return [int(x) for x in total.groups()], rows


@pytest.mark.parametrize("heading", PLANS)
def test_a_plans_slots_add_up_to_its_totals(heading):
    (total, teaching, breaks), rows = _slots(heading)
    minutes = [int(row.group(5)) for row in rows]
    is_break = [row.group(6).strip().startswith(("**Break**", "**Lunch**")) for row in rows]
    assert sum(minutes) == total, f"{heading}: the slots add up to {sum(minutes)} minutes, not {total}"
    assert sum(m for m, b in zip(minutes, is_break) if not b) == teaching
    assert sum(m for m, b in zip(minutes, is_break) if b) == breaks and teaching + breaks == total
    clock = [(int(r.group(1)) * 60 + int(r.group(2)), int(r.group(3)) * 60 + int(r.group(4))) for r in rows]
    for (start, end), length, row in zip(clock, minutes, rows):
        assert end - start == length, f"{heading}: {row.group(0)[:30]} is not {length} minutes long"
    assert all(a[1] == b[0] for a, b in zip(clock, clock[1:])), f"{heading}: the slots leave gaps or overlap"
    assert clock[-1][1] - clock[0][0] == total


def test_the_plans_are_three_hours_and_a_day_of_about_six_and_a_half_hours_of_teaching():
    assert _slots(PLANS[0])[0][0] == 180
    assert _slots(PLANS[1])[0][1] == 390


def _numbered_sections(name: str) -> set[str]:
    cells = json.loads(_notebook(name).read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return set(re.findall(r"^## (\d+)\s*[.·]", markdown, re.M))


def _cited(line: str) -> set[str]:
    """The sections a line cites: §3, and every one of §1-§6."""
    cited = set()
    for first, last in re.findall(r"§(\d+)(?:-§(\d+))?", line):
        cited |= {str(n) for n in range(int(first), int(last or first) + 1)}
    return cited


@pytest.mark.parametrize("heading", PLANS)
def test_the_sections_a_plan_cites_are_in_its_notebook(heading):
    """A row that links one notebook cites that notebook's sections by the numbers of its headings."""
    for line in _section(heading).splitlines():
        linked = set(run_times.GUIDE_LINK.findall(line))
        if len(linked) == 1 and "§" in line:
            name = linked.pop()
            missing = _cited(line) - _numbered_sections(name)
            assert not missing, f"{heading}: {name} has no section {sorted(missing)}"


def test_the_sections_the_misconceptions_cite_are_in_their_notebooks():
    names = {name[:2]: name for name in MEASURED if not name.endswith("_solutions.ipynb")}
    current, checked = None, 0
    for line in _section("## Misconceptions each notebook corrects").splitlines():
        if match := re.match(r"^\*\*(\d\d) · ", line):
            current = names[match.group(1)]
        elif current and "§" in line:
            missing = _cited(line) - _numbered_sections(current)
            assert not missing, f"misconceptions of {current}: no section {sorted(missing)}"
            checked += 1
    assert checked >= 16


# ---------------------------------------------------------------------------------------------------------------
# names and links
# ---------------------------------------------------------------------------------------------------------------


def test_every_notebook_the_guide_names_exists():
    names = set(re.findall(r"\b\d\d_\w+\.ipynb\b", TEXT))
    assert len(names) >= 16
    missing = sorted(name for name in names if not _notebook(name).is_file())
    assert not missing, f"the guide names notebooks that do not exist: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)}


def test_every_relative_link_in_the_guide_resolves():
    anchors = _anchors(TEXT)
    for target in re.findall(r"\]\(([^)\s]+)\)", TEXT):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (GUIDE.parent / path).exists(), f"the guide links to {path}, which is not in the repository"
        elif anchor:
            assert anchor in anchors, f"the guide links to #{anchor}, which is none of its headings"


def test_the_readme_links_the_guide_and_its_troubleshooting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/instructor.md)" in readme
    assert "](docs/instructor.md#troubleshooting)" in readme and "troubleshooting" in _anchors(TEXT)


def test_every_make_target_the_guide_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    named = set(re.findall(r"`(?:[A-Z_]+=\S+ )*make ([a-z][\w-]*)", TEXT))
    assert named and named <= targets, f"no such make target: {sorted(named - targets)}"


def test_every_environment_variable_the_guide_names_is_read_by_the_code():
    code = "\n".join(p.read_text() for p in [*ROOT.glob("audiox/**/*.py"), ROOT / "Makefile"])
    named = set(re.findall(r"\b(AUDIOX_[A-Z_]+|HF_[A-Z_]+|TRANSFORMERS_OFFLINE)\b", TEXT)) - {"HF_HOME"}
    assert "AUDIOX_PROFILE" in named and "AUDIOX_BUDGET" in named
    unknown = sorted(named - set(re.findall(r"\b[A-Z][A-Z_]+\b", code)))
    assert not unknown, f"the guide names environment variables the code never reads: {unknown}"


def test_every_file_the_guide_names_in_backticks_exists():
    for name in re.findall(r"`((?:[\w.-]+/)+[\w.-]*|[\w-]+\.(?:py|toml|json|yml|txt))`", TEXT):
        if name.startswith(("/content", ".venv", "data/cache", ".whl")) or "..." in name:
            continue  # Colab's paths, and what an install or a run creates
        assert (ROOT / name).exists() or (ROOT / "scripts" / name).exists(), f"the guide names {name}: no such file"
