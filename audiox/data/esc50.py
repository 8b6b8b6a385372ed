"""ESC-50 (full profile): 2,000 five-second environmental recordings in 50 classes, 5 folds.

Piczak's dataset (ACM Multimedia 2015, CC BY-NC 3.0) is downloaded once from the
GitHub archive of ``karolpiczak/ESC-50`` pinned to one commit, checked against its
sha256, unpacked into ``<cache>/esc50/ESC-50`` and read from there:
``meta/esc50.csv`` (columns filename, fold, target, category, esc10, src_file, take)
and ``audio/*.wav`` (5 s, 44.1 kHz, mono).

Folds keep fragments of one Freesound recording together, so splits are made of whole
folds: ``train`` = folds 1-3, ``val`` = fold 4, ``test`` = fold 5 (or pass ``folds=``
for cross-validation).

>>> split_folds("val"), split_folds("train", folds=[1, 2])
((4,), (1, 2))
>>> ds = ESC50(split="test")  # doctest: +SKIP
>>> len(ds), ds.classes[:3], ds.sample_rate  # doctest: +SKIP
(400, ['dog', 'rooster', 'pig'], 16000)

A folder without the files says what is missing and what to do:

>>> import tempfile
>>> ESC50(root=tempfile.mkdtemp())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: ESC-50 folder ... has no meta/esc50.csv; ...
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import audio, config
from .base import read_table
from .hub import fetch_dataset

#: The ESC-50 commit the archive is pinned to (master as of November 2025): a branch
#: archive changes whenever the README does, a commit archive does not.
ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"
ESC50_URL = f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip"
#: sha256 of that archive (645,832,161 bytes) as pinned in several public ESC-50 loaders;
#: soundata pins the same archive by md5 071b44018315e034b2c6e8064543d19c.
ESC50_SHA256 = "661183a6f53ef04f12c9bd618fed0ddc1713280d6c94a5a5431e844ba6f6a21f"
#: Default split of the five official folds.
SPLIT_FOLDS = {"train": (1, 2, 3), "val": (4,), "test": (5,)}
META_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def split_folds(split: str, folds=None) -> tuple[int, ...]:
    """The folds a split reads: ``folds`` if given, else train 1-3, val 4, test 5."""
    if folds is not None:
        folds = tuple(sorted({int(f) for f in folds}))
        if not folds or not set(folds) <= {1, 2, 3, 4, 5}:
            raise ValueError(
                f"folds={list(folds)}: ESC-50 has folds 1 to 5; pass a non-empty subset, e.g. folds=[1, 2]."
            )
        return folds
    if split not in SPLIT_FOLDS:
        raise ValueError(f"split={split!r} is not a split; use one of {tuple(SPLIT_FOLDS)} or pass folds=[...].")
    return SPLIT_FOLDS[split]


_MARKER = "meta/esc50.csv"  # the file that tells an unpacked ESC-50 folder


def esc50_folder() -> Path:
    """Where ESC-50 lives in the cache: ``<cache>/esc50/ESC-50`` (holding meta/ and audio/)."""
    return config.cache_dir() / "esc50" / "ESC-50"


def download_esc50(url: str | None = None, sha256: str | None = None) -> Path:
    """Fetch and unpack ESC-50 into :func:`esc50_folder` unless it is there; returns the dataset folder.

    ``url``/``sha256`` default to the pinned :data:`ESC50_URL` and :data:`ESC50_SHA256`
    (pass both to use a mirror).
    """
    return fetch_dataset(esc50_folder(), _MARKER, url or ESC50_URL, sha256 or ESC50_SHA256)


def read_meta(root: Path) -> list[dict]:
    """Rows of ``meta/esc50.csv`` with fold and target as int, checked against the audio folder."""
    root = Path(root)
    csv_path = root / "meta" / "esc50.csv"
    how = (
        f"fetch it with ESC50(download=True) (delete {root} first if it is incomplete), or point root= at "
        f"the unzipped {ESC50_URL} (the folder holding meta/ and audio/)"
    )
    if not csv_path.exists():
        raise ValueError(f"ESC-50 folder {root} has no meta/esc50.csv; {how}.")
    fix = f"it is not ESC-50's meta file: {how}"
    rows = [{**row, "fold": int(row["fold"]), "target": int(row["target"])}
            for row in read_table(csv_path, META_COLUMNS, fix)]
    if not rows:
        raise ValueError(f"{csv_path} lists no recordings; {how}.")
    audio_dir = root / "audio"
    absent = [row["filename"] for row in rows if not (audio_dir / row["filename"]).exists()]
    if absent:
        raise ValueError(
            f"ESC-50 folder {root}: {len(absent)} of {len(rows)} audio files listed in meta/esc50.csv are missing "
            f"from {audio_dir} (e.g. {absent[:3]}); {how}."
        )
    return rows


def class_names(rows: list[dict]) -> list[str]:
    """Category names ordered by target, checked to be one name per target 0..K-1."""
    names: dict[int, str] = {}
    for row in rows:
        target, category = row["target"], row["category"]
        if names.setdefault(target, category) != category:
            raise ValueError(f"target {target} is both {names[target]!r} and {category!r} in the meta file.")
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"targets {sorted(names)} are not 0..{len(names) - 1}; the meta file is incomplete.")
    return [names[t] for t in range(len(names))]


class ESC50(torch.utils.data.Dataset):
    """ESC-50 as dicts: ``wave`` (float32 [T] at ``sample_rate``), ``label``, ``label_name``, ``fold``, ``filename``.

    Args:
        split: ``train`` (folds 1-3), ``val`` (fold 4) or ``test`` (fold 5).
        folds: explicit folds, overriding ``split`` (e.g. ``[1, 2, 3, 4]`` for cross-validation).
        sample_rate: rate the clips are resampled to (the files are 44.1 kHz).
        root: an already unpacked ESC-50 folder (holding meta/ and audio/, or one folder
            that does); nothing is downloaded then.
        download: fetch the pinned archive into the cache when it is not there yet.
    """

    def __init__(
        self,
        split: str = "train",
        folds=None,
        sample_rate: int = audio.SAMPLE_RATE,
        root=None,
        download: bool = True,
    ):
        self.split, self.folds, self.sample_rate = split, split_folds(split, folds), int(sample_rate)
        self.root = fetch_dataset(esc50_folder(), _MARKER, ESC50_URL, ESC50_SHA256, root=root, download=download)
        rows = read_meta(self.root)
        self.classes = class_names(rows)
        self.rows = [row for row in rows if row["fold"] in self.folds]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return {
            "wave": audio.load(self.root / "audio" / row["filename"], self.sample_rate),
            "label": row["target"],
            "label_name": row["category"],
            "fold": row["fold"],
            "filename": row["filename"],
        }

    def __repr__(self) -> str:
        return (
            f"ESC50(split={self.split!r}, folds={list(self.folds)}, clips={len(self)}, "
            f"sample_rate={self.sample_rate}, root={str(self.root)!r})"
        )
