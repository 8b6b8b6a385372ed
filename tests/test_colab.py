"""The notebooks' first cell on a Colab-like machine, and the install advice everywhere.

Colab's kernel has its own torch, numpy and ipywidgets, and the first cell of every notebook must add the course
without changing any of them. Here a venv with Colab's versions (:data:`COLAB_PINS`) stands in for it, built once
and reused (``data/cache/colab-venv``, or ``$AUDIOX_COLAB_VENV`` to keep it elsewhere; about 7 minutes and 5.7 GB,
mostly torch's CUDA wheels), with a fake ``google.colab`` imported when its kernel starts. Each runtime here is a
copy of it made of hard links, so the base stays as Colab ships it. The working tree is copied to a Colab-like
root (``<tmp>/content``) as the clone the cell would make, and the cell runs as a learner runs it, in a kernel of
that venv whose working directory is that root; only the root's path differs from Colab's ``/content``, replaced
in the cell's text (the learner's cell has no switch for it). Notebooks 00 and its solution then run to the end
there; ``AUDIOX_COLAB_NOTEBOOKS=all`` (or name prefixes, ``01,solutions/03``) runs others, and each one's time is
kept in ``data/cache/colab-notebook-seconds.json``.

What this cannot check: Colab's Python is 3.12 (here the machine's, 3.11), its torch a CUDA build from
download.pytorch.org (here PyPI's), the clone from GitHub (skipped, as the copy is there: the tag must exist once
released), Drive, Colab's network (the full profile's downloads), and Colab's front end (its widget manager).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import colab_cells  # noqa: E402
import colab_install  # noqa: E402

#: What Colab ships, at its versions, that the course or its first cell touches (Colab's own list, less what the
#: course never imports). Colab's Python is 3.12; the venv uses the Python running the tests.
COLAB_PINS = (
    "pip==24.1.2", "setuptools==75.2.0", "packaging==25.0", "requests==2.32.4",
    "numpy==2.0.2", "torch==2.11.0", "torchaudio==2.11.0", "torchvision==0.26.0",
    "ipywidgets==7.7.1", "ipykernel==6.17.1", "ipython==7.34.0", "jupyter-client==7.4.9", "traitlets==5.7.1",
    "tornado==6.4.2",
    "matplotlib==3.10.0", "scipy==1.16.3", "librosa==0.11.0", "soundfile==0.13.1", "scikit-learn==1.6.1",
    "numba==0.60.0", "tqdm==4.67.1", "pandas==2.2.2", "h5py==3.15.1", "transformers==4.57.1", "nbformat==5.10.4",
)
#: What the first cell must never change.
KEPT = ("numpy", "torch", "torchaudio", "torchvision", "ipywidgets", "ipykernel", "ipython")

FAKE_COLAB = {
    "__init__.py": '''"""A stand-in for Colab's ``google.colab`` (tests only): what the course's first cell and widgets call."""
from . import drive, output  # noqa: F401
''',
    "output.py": '''"""``google.colab.output``: the custom widget manager switch."""
custom_widget_manager = False


def enable_custom_widget_manager():
    global custom_widget_manager
    custom_widget_manager = True


def disable_custom_widget_manager():
    global custom_widget_manager
    custom_widget_manager = False
''',
    "drive.py": '''"""``google.colab.drive``: mount makes the folder Colab would show."""
import os


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    os.makedirs(os.path.join(mountpoint, "MyDrive"), exist_ok=True)
''',
}


def _pip_env(**extra) -> dict:
    """The environment of a pip that behaves as Colab's: no config file of this machine's, no version notice hidden."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    for key in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT"):  # how this machine reaches the index; Colab needs neither
        if key in os.environ:
            env[key] = os.environ[key]
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _missing_pin(output: str) -> str | None:
    found = re.search(r"(?:No matching distribution found for|Could not find a version that satisfies the "
                      r"requirement) (\S+)", output)
    return found.group(1) if found else None


def colab_base_venv() -> Path:
    """The Colab-like venv, built once per set of pins (a lock keeps two test runs from building it together)."""
    key = f"py{sys.version_info.major}.{sys.version_info.minor} " + " ".join(COLAB_PINS)
    venv = Path(os.environ.get("AUDIOX_COLAB_VENV") or ROOT / "data" / "cache" / "colab-venv")
    venv.parent.mkdir(parents=True, exist_ok=True)
    done = venv / ".colab-pins"
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file() and done.read_text() == key:
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        # this machine's pip configuration is kept for the build (its local mirror is faster); the tests drop it
        for step in (["pip==24.1.2"], list(COLAB_PINS)):
            out = _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *step])
            if out.returncode:
                pin = _missing_pin(out.stdout + out.stderr)
                hint = (f"the pin {pin} is not in the package index: pick a version that "
                        f"`pip index versions {pin.split('=')[0]}` lists and update COLAB_PINS in {__file__}"
                        if pin else "see pip's output")
                raise RuntimeError(f"building the Colab-like venv {venv} failed ({hint}):\n{out.stdout}{out.stderr}")
        fake = venv / "colab-fake" / "google" / "colab"  # google/ without __init__: a namespace, as on Colab
        fake.mkdir(parents=True)
        for name, text in FAKE_COLAB.items():
            (fake / name).write_text(text)
        (_site_packages(venv) / "colab_fake.pth").write_text(str(venv / "colab-fake") + "\n")
        check = _run([python, "-m", "pip", "check"], env=_pip_env())
        (venv / ".colab-pip-check").write_text(check.stdout)
        (venv / ".colab-build-seconds").write_text(f"{time.perf_counter() - start:.0f}\n")
        done.write_text(key)
    return venv



# ---------------------------------------------------------------------------------------------------------------
# Without the Colab-like venv: the template, the install plan, the advice, LAION-CLAP's quick check
# ---------------------------------------------------------------------------------------------------------------


def test_every_first_cell_and_badge_is_the_templates():
    """``python scripts/colab_cells.py`` writes them; a hand edit of cell 0's badge or cell 1 shows here."""
    assert colab_cells.main(["--check"]) == 0, "run python scripts/colab_cells.py (it prints what differs)"


def test_badges_and_clone_use_the_versions_tag():
    tag = f"v{colab_install._project()['version']}"
    for path in colab_cells.notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        title, setup = ("".join(c["source"]) for c in nb["cells"][:2])
        assert f"/blob/{tag}/{path.relative_to(ROOT).as_posix()})" in title, path.name
        assert f" -b {tag} https://github.com/audiox-course/audiox /content/audiox-course" in setup, path.name
        # the clone is not named like the package: from /content, `python -m audiox...` must find the install
        assert not re.search(r"/content/audiox(\s|$)", setup), path.name


def test_a_gpu_is_asked_for_where_the_full_profile_trains_or_runs_a_large_model():
    asked = {p.relative_to(ROOT / "notebooks").as_posix() for p in colab_cells.notebooks()
             if json.loads(p.read_text(encoding="utf-8"))["metadata"].get("accelerator") == "GPU"}
    assert asked == {"01_clap_zero_shot.ipynb", "02_concept_representations.ipynb",
                     "03_nmf_listen_to_interpret.ipynb", "04_lmac_zs_listenable_maps.ipynb",
                     "05_latent_explanation_synthesis.ipynb"}


def _plan(profile, needs, installed, importable=lambda m: False):
    return colab_install._plan(profile, needs, colab_install._project(), installed, importable)


#: what a Colab runtime has of the course's requirements (no captum, no laion-clap or the modules it imports)
COLAB_HAS = {"torch": "2.11.0+cu126", "torchaudio": "2.11.0+cu126", "numpy": "2.0.2", "scipy": "1.16.3",
             "soundfile": "0.13.1", "librosa": "0.11.0", "matplotlib": "3.10.0", "ipywidgets": "7.7.1",
             "tqdm": "4.67.1", "scikit-learn": "1.6.1", "transformers": "4.57.1", "torchvision": "0.26.0+cu126",
             "h5py": "3.15.1", "pandas": "2.2.2"}


def test_the_offline_profile_installs_the_course_and_captum_only():
    for needs in ([], ["laion-clap"], ["encodec"]):
        assert _plan("offline", needs, COLAB_HAS) == {"course": True, "add": ["captum>=0.7"], "laion": False}
    assert _plan("offline", [], {**COLAB_HAS, "captum": "0.9.0", "audiox-course": "0.2.0"}) == {
        "course": False, "add": [], "laion": False}


def test_pretrained_adds_crepe_and_silero_in_either_profile():
    for profile in ("offline", "full"):
        plan = _plan(profile, ["pretrained"], COLAB_HAS)
        assert plan["add"] == ["captum>=0.7", "torchcrepe==0.0.24", "resampy", "silero-vad==6.2.3"], plan
        assert not plan["laion"]


def test_the_full_profile_adds_what_the_notebook_loads():
    laion = _plan("full", ["laion-clap"], COLAB_HAS)
    assert laion["laion"] and {r.split(">")[0] for r in laion["add"]} == {
        "captum", "torchlibrosa", "ftfy", "braceexpand", "webdataset", "wget", "progressbar"}
    # a module another distribution provides (progressbar2 installs `progressbar`) is not installed again
    assert "progressbar" not in _plan("full", ["laion-clap"], COLAB_HAS, lambda m: m == "progressbar")["add"]
    assert _plan("full", ["encodec"], COLAB_HAS) == {"course": True, "add": ["captum>=0.7"], "laion": False}
    without = {k: v for k, v in COLAB_HAS.items() if k != "transformers"}
    assert _plan("full", ["encodec"], without)["add"] == ["captum>=0.7", "transformers>=4.40"]
    assert _plan("full", [], COLAB_HAS) == _plan("offline", [], COLAB_HAS)  # 03: ESC-50 needs nothing more


def test_constraints_pin_every_installed_distribution_but_the_added_ones():
    lines = colab_install._constraints({**COLAB_HAS, "audiox-course": "0.2.0", "odd": "not a version"},
                                       ["captum>=0.7", "transformers>=4.40"]).split()
    assert "numpy==2.0.2" in lines and "torch==2.11.0+cu126" in lines and "ipywidgets==7.7.1" in lines
    assert not any(line.startswith(("transformers", "captum", "audiox-course", "odd")) for line in lines)


#: names that would install another project from PyPI (``audiox`` 1.0.0 is someone else's; ``audiox-course`` is
#: this course's distribution, published nowhere: it is installed from the clone, ``pip install -e .``)
OURS = {"audiox", "audiox-course", "audiox_course"}


def pip_advice_naming_us(text: str) -> list[str]:
    """Each ``pip install`` in ``text`` that names the course as a package to fetch from an index."""
    found = []
    for match in re.finditer(r"pip3?\s+install\b([^\n]*)", text):
        tokens = match.group(1).split()
        skip = False
        for token in tokens:
            word = token.strip("'\"`(),;:.")
            if skip or not word:
                skip = False
                continue
            if word.startswith("-"):
                skip = word in ("-e", "--editable", "-r", "--requirement", "-c", "--constraint", "-t", "--target")
                continue
            name = re.split(r"[\[<>=!~ ]", word, maxsplit=1)[0].lower()
            if name in OURS:
                found.append(match.group(0).strip())
    return found


def test_the_advice_check_tells_ours_from_others():
    assert pip_advice_naming_us("pip install 'audiox[full]' (or pip install transformers)")
    assert pip_advice_naming_us("run `pip install audiox`.") and pip_advice_naming_us("pip install -U audiox-course")
    assert not pip_advice_naming_us("pip install -e '.[full]'; pip install --editable /content/audiox-course")
    assert not pip_advice_naming_us("pip install --no-deps laion-clap==1.1.7 torchlibrosa")


def _texts():
    paths = [*ROOT.glob("audiox/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/*.py"),
             *ROOT.glob("tests/*.py"), ROOT / "README.md", *ROOT.glob("docs/**/*.md"), ROOT / "Makefile",
             ROOT / "environment.yml", ROOT / "pyproject.toml"]
    for path in paths:
        if path.resolve() != Path(__file__).resolve():
            yield path, path.read_text(encoding="utf-8")
    for path in colab_cells.notebooks():
        nb = json.loads(path.read_text(encoding="utf-8"))
        parts = ["".join(c["source"]) for c in nb["cells"]]
        parts += ["".join(o.get("text", "")) + "".join(o.get("traceback", [])) + str(o.get("data", ""))
                  for c in nb["cells"] for o in c.get("outputs", [])]
        yield path, "\n".join(parts)


def test_no_advice_installs_another_project_named_like_the_course():
    found = {str(path.relative_to(ROOT)): advice for path, text in _texts() if (advice := pip_advice_naming_us(text))}
    assert not found, f"advice that would install a package from PyPI instead of the course: {found}"


def test_encodec_without_transformers_says_how_to_install_it(monkeypatch):
    import builtins

    from audiox.models import encodec

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(ValueError, match="pip install transformers") as err:
        encodec.load_encodec()
    assert "AUDIOX_PROFILE" in str(err.value) and not pip_advice_naming_us(str(err.value))


def test_laion_clap_missing_is_said_before_any_download(monkeypatch, tmp_path):
    import importlib.util

    from audiox.models import laion

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "laion_clap" else real(name, *a))
    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="needs laion-clap") as err:
        laion.load_laion_clap("630k-best")
    assert "first cell" in str(err.value) and not pip_advice_naming_us(str(err.value))
    assert not any(tmp_path.rglob("*.pt*")), "a checkpoint download started"


def test_laion_clap_without_network_fails_in_seconds_and_leaves_nothing(monkeypatch):
    pytest.importorskip("transformers")
    if importlib_spec("laion_clap") is None:
        pytest.skip("laion-clap is not installed")
    from audiox.models import laion

    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    import socket

    with socket.socket() as s:  # a port on this machine that nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(laion, "_hub_endpoint", lambda: ("127.0.0.1", port))
    monkeypatch.setattr(laion, "_hub_cached", lambda: False)
    before = {m for m in sys.modules if m.startswith(("laion_clap", "clap_module"))}
    start = time.perf_counter()
    with pytest.raises(ValueError, match="could not be reached") as err:
        laion.LaionClap(device="cpu")
    assert time.perf_counter() - start < 5
    assert "AUDIOX_PROFILE=offline" in str(err.value) and "network" in str(err.value)
    assert {m for m in sys.modules if m.startswith(("laion_clap", "clap_module"))} == before


def importlib_spec(name):
    import importlib.util

    return importlib.util.find_spec(name)


def test_a_name_lookup_that_hangs_counts_as_no_network(monkeypatch):
    import socket

    from audiox.models import laion

    def hangs(*args, **kwargs):
        time.sleep(5)
        raise OSError("no answer")

    monkeypatch.setattr(socket, "create_connection", hangs)
    start = time.perf_counter()
    assert laion._hub_reachable(1.0) is False
    assert time.perf_counter() - start < 2


def test_without_network_a_cached_hub_is_read_from_the_cache_only(monkeypatch):
    transformers = pytest.importorskip("transformers")
    if importlib_spec("laion_clap") is None:
        pytest.skip("laion-clap is not installed")
    from audiox.models import laion

    calls = []
    monkeypatch.setattr(transformers.RobertaTokenizer, "from_pretrained",
                        classmethod(lambda cls, *a, **k: calls.append(k) or "tokenizer"))
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setattr(laion, "_hub_reachable", lambda timeout: False)
    monkeypatch.setattr(laion, "_hub_cached", lambda: True)
    with laion._laion_clap_hub():
        assert transformers.RobertaTokenizer.from_pretrained("roberta-base") == "tokenizer"
    assert calls == [{"local_files_only": True}]
    transformers.RobertaTokenizer.from_pretrained("roberta-base")  # and afterwards as before
    assert calls[-1] == {}


def test_a_hub_error_becomes_advice(monkeypatch):
    pytest.importorskip("transformers")
    if importlib_spec("laion_clap") is None:
        pytest.skip("laion-clap is not installed")
    from audiox.models import laion

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="unset HF_HUB_OFFLINE"):
        with laion._laion_clap_hub():
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")


# ---------------------------------------------------------------------------------------------------------------
# On the Colab-like venv
# ---------------------------------------------------------------------------------------------------------------

KERNEL_ARGS = ["-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.exec_lines=import google.colab"]
#: the versions the kept packages report once imported, and whether Colab's widget manager was turned on
PROBE = """import json, google.colab.output, numpy, torch, torchaudio, torchvision, ipywidgets, ipykernel, IPython
print(json.dumps({"numpy": numpy.__version__, "torch": torch.__version__, "torchaudio": torchaudio.__version__,
                  "torchvision": torchvision.__version__, "ipywidgets": ipywidgets.__version__,
                  "ipykernel": ipykernel.__version__, "ipython": IPython.__version__,
                  "widget_manager": google.colab.output.custom_widget_manager}))"""
VERSIONS = "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in %r}))" % (KEPT,)


class Colab:
    """A Colab-like runtime: a copy of the base venv made of hard links (seconds, no disk), a root like /content
    holding the course's copy.

    pip replaces files and never writes into one, so what it installs or removes in the copy leaves the base as
    Colab ships it. (An overlay venv that reads the base's site-packages through a .pth file would be cheaper still,
    but pip's build isolation does not hide such a path: the course's build would see the base's setuptools.)
    """

    def __init__(self, base: Path, where: Path):
        self.base, self.where = base, where
        self.venv, self.root = where / "venv", where / "content"
        self.clone = self.root / "audiox-course"
        shutil.copytree(base, self.venv, symlinks=True, copy_function=os.link)
        files = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
        for name in filter(None, files.split("\0")):
            source = ROOT / name
            if source.is_file():
                (self.clone / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.clone / name)
        (where / "kernels" / "colab").mkdir(parents=True)
        (where / "kernels" / "colab" / "kernel.json").write_text(json.dumps(
            {"argv": [str(self.venv / "bin" / "python"), *KERNEL_ARGS], "display_name": "Colab-like",
             "language": "python"}))
        self.env = _pip_env()
        for key in [k for k in self.env if k.startswith(("AUDIOX_PROFILE", "AUDIOX_CACHE", "AUDIOX_DATA", "JPY_"))]:
            del self.env[key]
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)]
        self.env["PATH"] = os.pathsep.join([str(self.venv / "bin"), *path])

    def cell(self, path: Path, full: bool = False) -> str:
        """The notebook's first cell as a learner runs it, with /content standing for this root."""
        source = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][1]["source"])
        if full:
            line = '# os.environ["AUDIOX_PROFILE"] = "full"'
            assert line in source, f"{path.name} has no profile switch"
            source = source.replace(line, line[2:])
        return source.replace(colab_cells.CONTENT + "/", f"{self.root}/")

    def execute(self, nb, timeout: int = 900):
        """Run ``nb`` in a kernel of this venv whose working directory is the root; returns the notebook run."""
        import nbformat
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient

        nb = nbformat.reads(json.dumps(nb), as_version=4)  # sources as strings, as nbformat.read gives them
        km = KernelManager(kernel_name="colab", kernel_spec_manager=KernelSpecManager(
            kernel_dirs=[str(self.where / "kernels")]))
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=True, shutdown_kernel="immediate",
                                resources={"metadata": {"path": str(self.root)}})
        client.widget_registry = {}  # as benchmarks/notebooks.py: nbclient's Output-widget mimic can stall
        client.execute(env=self.env, cleanup_kc=True)  # a kernel manager of ours is otherwise left running
        return nb

    def first_cell(self, path: Path, full: bool = False) -> tuple[list[str], dict]:
        """Output lines of the notebook's first cell (errors raise), and the probe's versions after it."""
        import nbformat

        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(self.cell(path, full)),
                                             nbformat.v4.new_code_cell(PROBE)])
        cell, probe = self.execute(nb, timeout=600).cells
        for out in cell.outputs + probe.outputs:
            if out.output_type == "error":
                raise AssertionError(f"{path.name}: {out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        return text.splitlines(), json.loads(probe.outputs[-1]["text"])

    def python(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return _run([self.venv / "bin" / "python", *args], env=self.env, cwd=self.root, **kwargs)

    def versions(self, python: Path | None = None) -> dict:
        out = _run([python or self.venv / "bin" / "python", "-c", VERSIONS], env=self.env)
        return json.loads(out.stdout)

    def modules(self) -> dict:
        """:data:`PROBE` run on the base venv: what the kept packages report there, before anything is installed."""
        out = _run([self.base / "bin" / "python", "-c", PROBE], env=self.env)
        return {k: v for k, v in json.loads(out.stdout).items() if k != "widget_manager"}

    def pip_check(self) -> list[str]:
        return self.python("-m", "pip", "check").stdout.strip().splitlines()

    def install_log(self) -> list[str]:
        """What pip printed under the script (command lines, marked ``$``, left out)."""
        log = self.clone / "data" / "cache" / "colab-install.log"
        return [line for line in log.read_text().splitlines() if line.strip() and not line.startswith("$ ")]


@pytest.fixture(scope="module")
def colab_base() -> Path:
    return colab_base_venv()


@pytest.fixture(scope="module")
def offline(colab_base, tmp_path_factory):
    """Every first cell in the offline profile, in turn (the first installs), and what each printed.

    Notebooks whose first cells are the same text (00, 06 and the solutions; ...) share one run.
    """
    colab = Colab(colab_base, tmp_path_factory.mktemp("colab-offline"))
    colab.before, colab.imported = colab.versions(colab_base / "bin" / "python"), colab.modules()
    colab.runs, seen = {}, set()
    for path in colab_cells.notebooks():
        if colab.cell(path) not in seen:
            seen.add(colab.cell(path))
            start = time.perf_counter()
            colab.runs[path] = (*colab.first_cell(path), time.perf_counter() - start)
            print(f"{path.name}: first cell in {colab.runs[path][-1]:.0f} s", *colab.runs[path][0], sep="\n    ")
    return colab


SETUP_LINE = re.compile(r"^audiox profile=(offline|full) .*device=\S+ torch=\S+ .*cache=\S+$")  # setup_notebook's


def _check_lines(lines: list[str], profile: str) -> None:
    installed = re.compile(rf"^(Installed audiox-course \S+ from \S+( with .+)?|audiox-course \S+ from \S+ is "
                           rf"installed; (nothing to add|added .+)) \(profile {profile}\)\.$")
    kept = re.compile(r"^Colab's numpy \S+, torch \S+, torchaudio \S+, ipywidgets \S+ are as they were\.$")
    assert len(lines) == 3 and installed.match(lines[0]) and kept.match(lines[1]) and SETUP_LINE.match(lines[2]), (
        "the first cell printed something else than its three lines:\n" + "\n".join(lines))


def test_offline_first_cells_print_what_was_installed_and_nothing_to_ignore(offline):
    for path, (lines, probe, seconds) in offline.runs.items():
        _check_lines(lines, "offline")
        assert probe["widget_manager"] is True, f"{path.name}: Colab's widget manager was not enabled"
    first, *rest = offline.runs.values()
    assert re.search(r"^Installed audiox-course 0\.2\.0 from .* with captum [\d.]+ \(", first[0][0]), first[0][0]
    for path, run in zip(list(offline.runs)[1:], rest):
        if "colab_install.py pretrained" in offline.cell(path):  # 07 adds CREPE and Silero VAD, in either profile
            assert re.search(r"added .*resampy \S+, .*silero-vad 6\.2\.3, .*torchcrepe 0\.0\.24", run[0][0]), run[0][0]
        else:
            assert "nothing to add" in run[0][0], f"{path.name} installed again: {run[0][0]}"
    assert offline.install_log() == [], "pip printed warnings under the script:\n" + "\n".join(offline.install_log())


def test_offline_first_cells_leave_colabs_packages_and_add_no_laion_clap(offline):
    assert offline.versions() == offline.before
    for path, (lines, probe, seconds) in offline.runs.items():  # and in the kernel, after the cell
        assert {k: probe[k] for k in offline.imported} == offline.imported, path.name
    assert offline.python("-c", "import importlib.util as u; print(u.find_spec('laion_clap'))").stdout.strip() == "None"
    assert offline.pip_check() == (offline.base / ".colab-pip-check").read_text().strip().splitlines()
    assert offline.pip_check() == ["No broken requirements found."]


def test_python_m_audiox_works_from_the_root(offline):
    where = offline.python("-c", "import audiox; print(audiox.__file__)")
    assert where.stdout.strip() == str(offline.clone / "audiox" / "__init__.py"), where.stderr
    cli = offline.python("-m", "audiox.models.recipes", "--help")
    assert cli.returncode == 0 and "usage: python -m audiox.models.recipes" in cli.stdout, cli.stderr


def _chosen_notebooks() -> list[Path]:
    """The notebooks run to the end here: $AUDIOX_COLAB_NOTEBOOKS, comma-separated name prefixes or `all`; 00."""
    chosen = [c.strip() for c in os.environ.get("AUDIOX_COLAB_NOTEBOOKS", "00").split(",") if c.strip()]
    return [p for p in colab_cells.notebooks() if "all" in chosen or any(
        p.name.startswith(c) or p.relative_to(ROOT / "notebooks").as_posix().startswith(c) for c in chosen)]


@pytest.mark.parametrize("path", _chosen_notebooks(), ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_notebook_runs_to_the_end_on_colab(offline, path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][1]["source"] = offline.cell(path)
    start = time.perf_counter()
    ran = offline.execute(nb, timeout=1800)
    seconds = time.perf_counter() - start
    errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(ran.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    _record(path, seconds)
    assert not errors, f"{path.name} on the Colab-like venv: {errors}"


def _record(path: Path, seconds: float) -> None:
    """Keep the run time of each notebook on the Colab-like venv (data/cache/colab-notebook-seconds.json)."""
    out = ROOT / "data" / "cache" / "colab-notebook-seconds.json"
    rows = json.loads(out.read_text()) if out.is_file() else {}
    rows[path.relative_to(ROOT / "notebooks").as_posix()] = round(seconds, 1)
    out.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    print(f"{path.name}: {seconds:.1f} s on the Colab-like venv")


STAND_INS = textwrap.dedent("""
    # laion_clap's hub fetches, answered locally: a real RobertaTokenizer on a tiny vocabulary, random weights
    import json, os, sys, tempfile
    import transformers
    d = tempfile.mkdtemp()
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *"abcdefghijklmnopqrstuvwxyz\u0120"])}
    json.dump(vocab, open(os.path.join(d, "vocab.json"), "w"))
    open(os.path.join(d, "merges.txt"), "w").write("#version: 0.2\\n")
    tokenizer = transformers.RobertaTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    roberta = transformers.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                                         layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    for cls in (transformers.BertTokenizer, transformers.RobertaTokenizer, transformers.BartTokenizer):
        cls.from_pretrained = classmethod(lambda cls, *a, **k: tokenizer)
    transformers.RobertaModel.from_pretrained = classmethod(lambda cls, *a, **k: cls(roberta))
""")


@pytest.fixture(scope="module")
def full(colab_base, tmp_path_factory):
    """The full profile's first cells on a fresh runtime: 04 (LAION-CLAP) first, then 05 (EnCodec)."""
    colab = Colab(colab_base, tmp_path_factory.mktemp("colab-full"))
    colab.before, colab.imported = colab.versions(colab_base / "bin" / "python"), colab.modules()
    names = ("04_lmac_zs_listenable_maps.ipynb", "05_latent_explanation_synthesis.ipynb")
    colab.runs = {name: colab.first_cell(ROOT / "notebooks" / name, full=True) for name in names}
    return colab


def test_full_profile_installs_laion_clap_and_its_imports_without_touching_colab(full):
    lines, probe = full.runs["04_lmac_zs_listenable_maps.ipynb"]
    _check_lines(lines, "full")
    assert re.search(r" with .*captum \S+, .*laion-clap 1\.1\.7, .*torchlibrosa", lines[0]), lines[0]
    assert full.versions() == full.before
    assert {k: probe[k] for k in full.imported} == full.imported
    assert full.install_log() == [], "pip printed warnings under the script:\n" + "\n".join(full.install_log())
    # known: laion-clap declares numpy<2 and wandb, installed without them (--no-deps); nothing else may be broken
    assert [line for line in full.pip_check() if not line.startswith("laion-clap 1.1.7 ")] == []
    imported = full.python("-c", STAND_INS + textwrap.dedent("""
        import laion_clap
        from audiox.models.laion import LaionClap
        clap = LaionClap(device="cpu")
        print("built", type(clap.laion).__name__)
    """), timeout=600)
    assert "built CLAP_Module" in imported.stdout, imported.stderr[-3000:]


def test_full_profile_of_05_has_what_encodec_needs(full):
    lines, probe = full.runs["05_latent_explanation_synthesis.ipynb"]
    _check_lines(lines, "full")
    assert "nothing to add" in lines[0]  # Colab ships transformers
    built = full.python("-c", "import torch; from audiox.models.encodec import EncodecCodec; "
                        "c = EncodecCodec.from_config(); print(tuple(c.encode(0.1 * torch.randn(24000)).shape))")
    assert built.stdout.strip() == "(1, 128, 75)", built.stderr[-3000:]


if __name__ == "__main__":  # build (or find) the venv: python tests/test_colab.py
    start = time.perf_counter()
    print(colab_base_venv(), f"{time.perf_counter() - start:.0f} s")
