"""What every dataset loader shares: a checked CSV reader and the stacking of clips into a batch.

(Its own module, so that loaders import it without importing the package that imports them.)
"""

from __future__ import annotations

import csv

import torch


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

    >>> from audiox.data import load_dataset
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
