"""Write the first two cells of every notebook (and solution) from one template: the Colab badge and the setup cell.

    python scripts/colab_cells.py           # rewrite cell 0's badge, cell 1 and the Colab metadata where they differ
    python scripts/colab_cells.py --check   # say what differs and exit 1 (tests/test_colab.py runs this)

Both are pinned to the tag of the course's version (``pyproject.toml``: 0.2.0 -> ``v0.2.0``), the badge and the
clone alike, so a notebook opened from a badge installs the course it was written with. Per notebook, :data:`FULL`
says what its full profile loads (what ``scripts/colab_install.py`` installs for it) and whether Colab should give
it a GPU. Only cell 0's badge line, cell 1's source and the notebook's ``accelerator`` / ``colab.gpuType``
metadata are touched; outputs, ids and every other cell stay as they are. The README's badges are checked too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
REPO_URL = "https://github.com/audiox-course/audiox"
COLAB = "https://colab.research.google.com/github/audiox-course/audiox/blob"
#: where Colab's files live; the clone is named apart from the package, so that ``python -m audiox...`` run from
#: /content does not find the clone as a namespace package ``audiox``
CONTENT = "/content"
CLONE = f"{CONTENT}/audiox-course"
GPU_TYPE = "T4"

#: notebook number -> (what its full profile loads, for the profile line; colab_install.py's arguments; GPU).
#: None: the notebook has no full profile (00 needs nothing to download; 06 needs SynthSounds' ground truth and runs
#: the offline models in either profile). Solutions run in the offline profile: None, no GPU.
FULL: dict[str, tuple[str, tuple[str, ...], bool] | None] = {
    "00": None,
    "01": ("LAION-CLAP on ESC-50, about 2.5 GB downloaded once; use a GPU runtime", ("laion-clap",), True),
    "02": ("LAION-CLAP on ESC-50, about 2.5 GB downloaded once; use a GPU runtime", ("laion-clap",), True),
    "03": ("a CNN trained here on ESC-50 (650 MB downloaded once); use a GPU runtime", (), True),
    "04": ("LAION-CLAP and a decoder trained here on ESC-50, about 2.5 GB; use a GPU runtime", ("laion-clap",), True),
    "05": ("EnCodec 24 kHz and a classifier trained here on spoken digits; use a GPU runtime", ("encodec",), True),
    "06": None,
    "07": None,
}
#: notebook number -> what colab_install.py installs for it in either profile (its solutions too)
ALWAYS: dict[str, tuple[str, ...]] = {"07": ("pretrained",)}


def version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def tag() -> str:
    return f"v{version()}"


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))


def full(path: Path):
    """What ``path``'s full profile loads (see :data:`FULL`), or None."""
    return None if path.parent.name == "solutions" else FULL[path.name[:2]]


def badge(path: Path) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({COLAB}/{tag()}/{relative})")


def setup_cell(path: Path) -> str:
    """Cell 1 of ``path``: on Colab, clone the tagged course and install what this notebook needs; then import."""
    profile = full(path)
    if profile:
        lines = [f"# Setup. On Colab: fetch the course ({tag()}) and install what this notebook needs, leaving Colab's torch,",
                 "# numpy and ipywidgets as they are. Locally, `make course` has installed everything and this only imports."]
    else:
        lines = [f"# Setup. On Colab: fetch the course ({tag()}) and install it, leaving Colab's torch, numpy and ipywidgets",
                 "# as they are. Locally, `make course` has installed everything and this only imports."]
    if profile:
        lines += [
            "import os, sys",
            f'# os.environ["AUDIOX_PROFILE"] = "full"   # {profile[0]}',
            f'# from google.colab import drive; drive.mount("{CONTENT}/drive")        # keep downloads across sessions:',
            f'# os.environ["AUDIOX_CACHE"] = "{CONTENT}/drive/MyDrive/audiox-cache"   # uncomment both lines',
        ]
    else:
        lines.append("import sys")
    needs = "".join(f" {n}" for n in (*ALWAYS.get(path.name[:2], ()), *(profile[1] if profile else ())))
    lines += [
        'if "google.colab" in sys.modules:',
        f"    !test -d {CLONE} || git -c advice.detachedHead=false clone -q --depth 1 -b {tag()} {REPO_URL} {CLONE}",
        f"    %run {CLONE}/scripts/colab_install.py{needs}",
        "",
        "import audiox",
        "audiox.setup_notebook(seed=0);",
    ]
    return "\n".join(lines)


BADGE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$")


def title_cell(path: Path, source: str) -> str:
    """Cell 0 with its badge line pinned to the tag (inserted after the title when there is none)."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if BADGE.match(line):
            lines[i] = badge(path)
            return "\n".join(lines)
    return "\n".join([lines[0], "", badge(path), *([""] if lines[1:2] != [""] else []), *lines[1:]])


def gpu(path: Path) -> bool:
    profile = full(path)
    return bool(profile and profile[2])


def metadata(path: Path, meta: dict) -> dict:
    """The notebook's metadata asking Colab for a GPU runtime where its full profile trains or runs a large model."""
    meta = dict(meta)
    colab = dict(meta.get("colab", {"provenance": []}))
    if gpu(path):
        meta["accelerator"] = "GPU"
        colab["gpuType"] = GPU_TYPE
    else:
        meta.pop("accelerator", None)
        colab.pop("gpuType", None)
    meta["colab"] = dict(sorted(colab.items()))
    return dict(sorted(meta.items()))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def update(path: Path, write: bool) -> list[str]:
    """What differs in ``path`` from the template (and, with ``write``, fix it in place)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    problems = []
    if cells[0]["cell_type"] != "markdown" or cells[1]["cell_type"] != "code":
        return [f"{path.name}: cell 0 must be the title (markdown) and cell 1 the setup (code)"]
    title = title_cell(path, _source(cells[0]))
    if title != _source(cells[0]):
        problems.append(f"{path.name}: cell 0's Colab badge")
        cells[0]["source"] = _lines(title)
    setup = setup_cell(path)
    if setup != _source(cells[1]):
        problems.append(f"{path.name}: cell 1 (setup)")
        cells[1]["source"] = _lines(setup)
    meta = metadata(path, nb["metadata"])
    if meta != nb["metadata"]:
        problems.append(f"{path.name}: metadata (accelerator / colab.gpuType)")
        nb["metadata"] = meta
    if problems and write:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
    return problems


def readme_problems() -> list[str]:
    """README's Colab links must point at notebooks that exist, at the same tag as the notebooks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    problems = []
    for ref, relative in re.findall(re.escape(COLAB) + r"/([^/]+)/([^)\s]+)", text):
        if ref != tag():
            problems.append(f"README.md: a Colab link at {ref!r}, not {tag()!r}: {relative}")
        if not (ROOT / relative).is_file():
            problems.append(f"README.md: a Colab link to a missing file: {relative}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report what differs; exit 1 if anything does")
    args = parser.parse_args(argv)
    problems = [p for path in notebooks() for p in update(path, write=not args.check)]
    for problem in problems:
        print(("differs: " if args.check else "updated: ") + problem)
    by_hand = readme_problems()
    for problem in by_hand:
        print("fix by hand: " + problem)
    return 1 if by_hand or (args.check and problems) else 0


if __name__ == "__main__":
    sys.exit(main())
