"""Datasets of the course, one name each, behind :func:`load_dataset`.

Every dataset is a ``torch.utils.data.Dataset`` of dicts with at least
``wave`` (float32 ``[T]`` at ``dataset.sample_rate``), ``label`` (int) and ``label_name``;
it has ``classes`` (list of names) and ``sample_rate``. :func:`stack` turns one into
batched tensors for the methods, which all work on ``[B, T]``.

| name | profile | what |
|---|---|---|
| ``synth`` | offline | SynthSounds: procedural everyday sounds with captions, attributes, ground-truth masks |
| ``keywords`` | offline | ten spoken words, made with espeak-ng, shipped in ``data/keywords`` |
| ``esc50`` | full | ESC-50 environmental sounds (downloaded, checksummed, cached) |
| ``fsdd`` | full | Free Spoken Digit Dataset (downloaded, checksummed, cached) |
"""

from __future__ import annotations

import csv

import torch

DATASETS = ("synth", "keywords", "esc50", "fsdd")


def load_dataset(name: str, split: str = "train", **kwargs):
    """Build a dataset by name; ``split`` is ``train``, ``val`` or ``test``.

    >>> ds = load_dataset("synth", split="test", n_per_class=1)
    >>> len(ds), ds.sample_rate
    (10, 16000)
    """
    key = name.strip().lower()
    if key == "synth":
        from .synth import SynthSounds

        return SynthSounds(split=split, **kwargs)
    if key == "keywords":
        from .speech import Keywords

        return Keywords(split=split, **kwargs)
    if key == "esc50":
        from .esc50 import ESC50

        return ESC50(split=split, **kwargs)
    if key == "fsdd":
        from .speech import FSDD

        return FSDD(split=split, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}.")


def read_table(path, columns, fix: str) -> list[dict]:
    """Rows of a CSV file as dicts, after checking it has ``columns``; ``fix`` says how to repair it.

    Shared by the loaders whose metadata is a CSV (ESC-50's meta file, the keyword manifest).
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks columns {missing} (has {reader.fieldnames}); {fix}.")
        return list(reader)


def stack(dataset, indices=None, seconds: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Waves ``[N, T]`` (zero-padded or cut to ``seconds``, default the longest) and labels ``[N]``.

    >>> waves, labels = stack(load_dataset("synth", split="test", n_per_class=1))
    >>> tuple(waves.shape), labels.tolist()[:3]
    ((10, 32000), [0, 1, 2])
    """
    from ..audio import pad_to

    indices = range(len(dataset)) if indices is None else indices
    items = [dataset[int(i)] for i in indices]
    sr = dataset.sample_rate
    if seconds is None:
        seconds = max(item["wave"].shape[-1] for item in items) / sr
    waves = torch.stack([pad_to(item["wave"], seconds, sr) for item in items])
    labels = torch.tensor([item["label"] for item in items], dtype=torch.long)
    return waves, labels
