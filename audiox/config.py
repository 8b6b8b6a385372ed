"""Profile, cache and data folders, device choice and seeding: the settings every notebook shares.

Two profiles pick *which* model and data a notebook uses; the method code is the same:

* ``offline`` (default): SynthSounds, the shipped keyword set and the tiny models whose
  weights live in ``data/``. No network, CPU is enough.
* ``full``: LAION-CLAP, EnCodec, ESC-50, FSDD, downloaded once into the cache.

>>> from audiox import config
>>> config.profile("offline")
'offline'
>>> config.device("cpu").type
'cpu'
>>> config.seed_everything(0)
0
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("offline", "full")
#: How much a "GPU cell" (a training cell) trains: ``ci``, a few clips for two epochs, enough to show that the
#: code runs, that the loss is finite and falls and that the checkpoint reloads (what CI checks on a CPU);
#: ``full``, the real training, whose model the notebook then explains.
BUDGETS = ("ci", "full")

#: The repository's ``data/`` folder: shipped assets (vocabularies, weights, keyword WAVs).
#: The package is installed editable (``pip install -e .``), so it sits next to ``audiox/``.
DATA_DIR = Path(os.environ.get("AUDIOX_DATA", Path(__file__).resolve().parent.parent / "data"))


def profile(name: str | None = None) -> str:
    """The active profile: ``name`` if given, else ``$AUDIOX_PROFILE``, else ``"offline"``."""
    chosen = (name or os.environ.get("AUDIOX_PROFILE") or "offline").strip().lower()
    if chosen not in PROFILES:
        source = "argument profile" if name else "environment variable AUDIOX_PROFILE"
        raise ValueError(
            f"{source}={chosen!r} is not a profile; use one of {PROFILES} "
            "(offline runs without network on the shipped tiny models)."
        )
    return chosen


def budget(name: str | None = None) -> str:
    """The training budget of GPU cells: ``name``, else ``$AUDIOX_BUDGET``, else ``full`` where a GPU is present
    or in the full profile (which has no shipped weights to fall back on), else ``ci``.

    At ``ci`` a notebook trains for two epochs on a few clips and then explains with the shipped model.

    >>> budget("ci")
    'ci'
    """
    chosen = (name or os.environ.get("AUDIOX_BUDGET") or "").strip().lower()
    if not chosen:
        return "full" if torch.cuda.is_available() or profile() == "full" else "ci"
    if chosen not in BUDGETS:
        source = "argument budget" if name else "environment variable AUDIOX_BUDGET"
        raise ValueError(f"{source}={chosen!r} is not a budget; use one of {BUDGETS} "
                         "(ci: a two-epoch check on a few clips; full: the real training).")
    return chosen


def cache_dir() -> Path:
    """Where downloads and derived caches go: ``$AUDIOX_CACHE`` or ``data/cache`` (git-ignored).

    Created on first use.
    """
    path = Path(os.environ.get("AUDIOX_CACHE") or DATA_DIR / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA > Apple MPS > CPU.

    ``$AUDIOX_DEVICE`` overrides the automatic choice (e.g. ``cpu`` to compare timings). Choosing CUDA
    also turns TF32 off (:func:`exact_float32_on_cuda`).
    """
    prefer = prefer or os.environ.get("AUDIOX_DEVICE")
    if prefer is not None:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} asked for, but CUDA is not available; use 'cpu'.")
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        dev = torch.device("mps")
    else:
        dev = torch.device("cpu")
    if dev.type == "cuda":
        exact_float32_on_cuda()
    return dev


def exact_float32_on_cuda() -> None:
    """Compute float32 convolutions and matrix products on CUDA in float32, not TF32.

    On Ampere and newer GPUs torch runs float32 convolutions in TF32 by default (a 10-bit mantissa);
    emulating that moved four checked notebook lines, whose numbers were computed on a CPU in float32.
    The course's models are small, so full precision costs little, and a GPU then reproduces them.
    The ``allow_tf32`` flags rather than torch's newer ``fp32_precision`` settings: in torch 2.11,
    setting ``torch.backends.cudnn.conv.fp32_precision`` makes ``torch.backends.cudnn.flags()`` (which
    EnCodec's LSTM backward uses) raise, as a mix of the two APIs.

    >>> exact_float32_on_cuda(); torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    (False, False)
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (all devices) so a notebook reruns to the same numbers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


@contextlib.contextmanager
def random_state_kept(cuda: bool = True):
    """Run a block, then put back every random state it moved (Python, NumPy, torch on the CPU and, with
    ``cuda``, on every GPU; ``cuda=False`` for a block that draws nothing there, which then stays untouched).

    :func:`audiox.models.train.fit` reseeds everything, so a training cell would otherwise change every random
    draw after it: a notebook's GPU cell runs inside this, and what follows draws the same numbers at any budget.

    >>> _ = torch.manual_seed(0); expected = torch.rand(1)
    >>> _ = torch.manual_seed(0)
    >>> with random_state_kept():
    ...     _ = torch.rand(5)
    >>> torch.equal(torch.rand(1), expected)
    True
    """
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if cuda else []):
        try:
            yield
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])


def describe() -> str:
    """One line for the top of a notebook: profile, device, torch version, threads."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return (
        f"audiox profile={profile()} budget={budget()} device={name} torch={torch.__version__} "
        f"threads={torch.get_num_threads()} cache={cache_dir()}"
    )
