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

from .base import read_table, stack

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


__all__ = ["DATASETS", "load_dataset", "read_table", "stack"]
