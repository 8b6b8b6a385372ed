"""Spoken words: the shipped keyword set (offline) and the Free Spoken Digit Dataset (full).

:class:`Keywords` are the ten Speech Commands words (yes, no, up, down, left, right, on,
off, stop, go) spoken by 22 espeak-ng voices, 1.0 s at 16 kHz, shipped in
``data/keywords/`` and made by ``scripts/make_keywords.py``. The splits go by voice
(16 train, 3 val, 3 test per word), so the test set is spoken by voices the model
never heard.

>>> ds = Keywords(split="test")
>>> len(ds), ds.classes[:4], ds.sample_rate
(30, ['yes', 'no', 'up', 'down'], 16000)
>>> item = ds[0]
>>> item["label_name"], tuple(item["wave"].shape)
('yes', (16000,))

:class:`FSDD` (Jackson et al., CC BY-SA 4.0) is downloaded from the GitHub archive of
release v1.0.9: ``recordings/{digit}_{speaker}_{index}.wav`` at 8 kHz. Its official
split puts recordings 0-4 of every digit and speaker in the test set; here recordings
5-9 of the rest form the validation set, 10-49 train.

>>> parse_recording("7_jackson_32.wav"), fsdd_split(32), fsdd_split(3)
((7, 'jackson', 32), 'train', 'test')
>>> ds = FSDD(split="test")  # doctest: +SKIP
>>> ds.classes[:3]  # doctest: +SKIP
['zero', 'one', 'two']
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from .. import audio, config
from .base import read_table
from .hub import fetch_dataset

SPLITS = ("train", "val", "test")

#: Speech Commands' ten command words, in label order.
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
KEYWORDS_SAMPLE_RATE = 16_000
MANIFEST_COLUMNS = ("file", "word", "voice", "pitch", "speed", "snr_db", "split")

FSDD_TAG = "v1.0.9"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_TAG}.tar.gz"
#: sha256 of that archive (11,975,353 bytes) from tensorflow_datasets'
#: ``audio/spoken_digit/checksums.tsv``, which pins the same tag.
FSDD_SHA256 = "8bc44cde129d505cbbb6b365c09f80c663f2aa77578afc634e6141a2f87100c0"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_RECORDING = re.compile(r"^(\d)_(.+)_(\d+)\.wav$")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; use one of {SPLITS}.")
    return split


class Keywords(torch.utils.data.Dataset):
    """The shipped keyword set as dicts: ``wave`` (float32 [16000] at 16 kHz by default), ``label``,
    ``label_name`` and the espeak-ng settings ``voice``, ``pitch``, ``speed``, ``snr_db``, ``file``.

    Args:
        split: ``train`` (160 clips), ``val`` (30) or ``test`` (30).
        sample_rate: rate the clips are resampled to (they are stored at 16 kHz).
        root: a folder with ``manifest.csv`` and the WAVs (default ``data/keywords``).
    """

    def __init__(self, split: str = "train", sample_rate: int = KEYWORDS_SAMPLE_RATE, root=None):
        self.split, self.sample_rate = _check_split(split), int(sample_rate)
        self.root = Path(root) if root is not None else config.DATA_DIR / "keywords"
        self.classes = list(KEYWORDS)
        manifest = self.root / "manifest.csv"
        if not manifest.exists():
            raise ValueError(
                f"the keyword set is missing: {manifest} does not exist. Regenerate it with "
                f"`python scripts/make_keywords.py` (needs espeak-ng: apt-get install espeak-ng), "
                f"or pass root= the folder that holds manifest.csv."
            )
        fix = "regenerate it with `python scripts/make_keywords.py`"
        self.rows = [row for row in read_table(manifest, MANIFEST_COLUMNS, fix) if row["split"] == split]
        unknown = {row["word"] for row in self.rows} - set(KEYWORDS)
        if unknown:
            raise ValueError(f"{manifest} has words {sorted(unknown)} outside {KEYWORDS}; regenerate it.")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return {
            "wave": audio.load(self.root / row["file"], self.sample_rate),
            "label": KEYWORDS.index(row["word"]),
            "label_name": row["word"],
            "voice": row["voice"],
            "pitch": int(row["pitch"]),
            "speed": int(row["speed"]),
            "snr_db": float(row["snr_db"]),
            "file": row["file"],
        }

    def __repr__(self) -> str:
        return f"Keywords(split={self.split!r}, clips={len(self)}, sample_rate={self.sample_rate})"


def keyword_captions(word: str) -> list[str]:
    """Captions for a spoken keyword, so tiny-clap also learns speech ("a voice saying yes").

    >>> keyword_captions("go")[0]
    'a voice saying go'
    """
    return [f"a voice saying {word}", f"the spoken word {word}", f"someone says {word}", f"a person saying {word}"]


def keyword_clips(split: str, seconds: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The keyword set's clips of a split zero-padded (or cut) to ``seconds``, ``[N, T]`` at 16 kHz, and labels ``[N]``.

    >>> waves, labels = keyword_clips("test")
    >>> tuple(waves.shape), labels[:3].tolist()
    ((30, 16000), [0, 0, 0])
    """
    from .base import stack

    return stack(Keywords(split), seconds=seconds)


def parse_recording(filename: str) -> tuple[int, str, int]:
    """``{digit}_{speaker}_{index}.wav`` -> (digit, speaker, index)."""
    match = _RECORDING.match(filename)
    if match is None:
        raise ValueError(
            f"{filename!r} is not an FSDD recording name ({{digit}}_{{speaker}}_{{index}}.wav, e.g. 7_jackson_32.wav)."
        )
    digit, speaker, index = match.groups()
    return int(digit), speaker, int(index)


def fsdd_split(index: int) -> str:
    """The split of recording number ``index``: 0-4 test (official), 5-9 val, 10 and up train."""
    return "test" if index < 5 else "val" if index < 10 else "train"


def fsdd_folder() -> Path:
    """Where FSDD lives in the cache: ``<cache>/fsdd/free-spoken-digit-dataset`` (holding recordings/)."""
    return config.cache_dir() / "fsdd" / "free-spoken-digit-dataset"


def download_fsdd(url: str | None = None, sha256: str | None = None) -> Path:
    """Fetch and unpack FSDD into :func:`fsdd_folder` unless it is there; returns the dataset folder.

    ``url``/``sha256`` default to the pinned :data:`FSDD_URL` and :data:`FSDD_SHA256`.
    """
    return fetch_dataset(fsdd_folder(), "recordings", url or FSDD_URL, sha256 or FSDD_SHA256)


class FSDD(torch.utils.data.Dataset):
    """Free Spoken Digit Dataset as dicts: ``wave`` (float32 [T] at ``sample_rate``), ``label`` (the digit),
    ``label_name`` (``"zero"``..``"nine"``), ``speaker``, ``index``, ``filename``.

    Args:
        split: ``train`` (recordings 10-49), ``val`` (5-9) or ``test`` (0-4, the official test set).
        sample_rate: rate the clips are resampled to (the files are 8 kHz).
        root: an already unpacked FSDD folder (holding recordings/, or one folder that does).
        download: fetch the pinned archive into the cache when it is not there yet.
    """

    def __init__(self, split: str = "train", sample_rate: int = audio.SAMPLE_RATE, root=None, download: bool = True):
        self.split, self.sample_rate = _check_split(split), int(sample_rate)
        self.classes = list(DIGITS)
        self.root = fetch_dataset(fsdd_folder(), "recordings", FSDD_URL, FSDD_SHA256, root=root, download=download)
        recordings = self.root / "recordings"
        files = sorted(recordings.glob("*.wav")) if recordings.is_dir() else []
        if not files:
            raise ValueError(
                f"FSDD folder {self.root} has no recordings/*.wav; fetch it with FSDD(download=True) "
                f"(delete {self.root} first if it is incomplete), or point root= at the unpacked {FSDD_URL} "
                f"(the folder holding recordings/)."
            )
        self.rows = []
        for path in files:
            digit, speaker, index = parse_recording(path.name)
            if fsdd_split(index) == split:
                self.rows.append({"path": path, "digit": digit, "speaker": speaker, "index": index})

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        return {
            "wave": audio.load(row["path"], self.sample_rate),
            "label": row["digit"],
            "label_name": DIGITS[row["digit"]],
            "speaker": row["speaker"],
            "index": row["index"],
            "filename": row["path"].name,
        }

    def __repr__(self) -> str:
        return f"FSDD(split={self.split!r}, clips={len(self)}, sample_rate={self.sample_rate}, root={str(self.root)!r})"
