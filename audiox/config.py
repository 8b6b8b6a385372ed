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

import os
import random
from pathlib import Path

import numpy as np
import torch

PROFILES = ("offline", "full")

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


def cache_dir() -> Path:
    """Where downloads and derived caches go: ``$AUDIOX_CACHE`` or ``data/cache`` (git-ignored).

    Created on first use.
    """
    path = Path(os.environ.get("AUDIOX_CACHE") or DATA_DIR / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA > Apple MPS > CPU.

    ``$AUDIOX_DEVICE`` overrides the automatic choice (e.g. ``cpu`` to compare timings).
    """
    prefer = prefer or os.environ.get("AUDIOX_DEVICE")
    if prefer is not None:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} asked for, but CUDA is not available; use 'cpu'.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (all devices) so a notebook reruns to the same numbers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def describe() -> str:
    """One line for the top of a notebook: profile, device, torch version, threads."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return (
        f"audiox profile={profile()} device={name} torch={torch.__version__} "
        f"threads={torch.get_num_threads()} cache={cache_dir()}"
    )
