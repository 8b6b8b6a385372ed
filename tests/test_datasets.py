"""ESC-50, FSDD and the shipped keyword set.

ESC-50 and FSDD are exercised offline through their real code paths (download with
checksum, atomic extraction, parsing, splits, resampling) against tiny archives built
here in the real on-disk layout and served from ``file://`` URLs. Every test gets its
own cache (``AUDIOX_CACHE``), so the real cache is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiox import audio
from audiox.data import esc50, load_dataset, speech, stack
from audiox.data.esc50 import ESC50
from audiox.data.hub import DownloadError
from audiox.data.speech import FSDD, KEYWORDS, Keywords

# three real ESC-50 classes (target, category, Freesound id), one clip per class and fold
ESC50_CLASSES = [(0, "dog", 100032), (1, "rooster", 100038), (2, "pig", 101220)]
ESC50_TOP = f"ESC-50-{esc50.ESC50_COMMIT}"  # the top folder of GitHub's commit archive
FSDD_TOP = "free-spoken-digit-dataset-1.0.9"
FSDD_SPEAKERS = ("jackson", "theo")
FSDD_INDICES = (0, 7, 23)  # one per split: test (0-4), val (5-9), train


def tone(frequency: float, seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def esc50_frequency(target: int) -> float:
    return 300.0 * (target + 1)  # each class its own tone, so labels can be checked by ear (and FFT)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dominant_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * sample_rate / wave.shape[-1]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def make_esc50_folder(base: Path) -> Path:
    """An ESC-50 folder as in the archive: meta/esc50.csv and audio/{fold}-{id}-{take}-{target}.wav."""
    (base / "meta").mkdir(parents=True)
    (base / "audio").mkdir()
    rows = []
    for fold in range(1, 6):
        for target, category, source in ESC50_CLASSES:
            filename = f"{fold}-{source + fold}-A-{target}.wav"
            sf.write(base / "audio" / filename, tone(esc50_frequency(target), 5.0, 44_100), 44_100, subtype="PCM_16")
            rows.append([filename, fold, target, category, target == 0, source + fold, "A"])
    with open(base / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(esc50.META_COLUMNS)
        writer.writerows(rows)
    return base


@pytest.fixture(scope="module")
def esc50_zip(tmp_path_factory) -> Path:
    """The fixture zipped like GitHub's archive: everything under ESC-50-<commit>/."""
    work = tmp_path_factory.mktemp("esc50_src")
    folder = make_esc50_folder(work / ESC50_TOP)
    archive = work / "esc50.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(work).as_posix())
    return archive


@pytest.fixture(scope="module")
def fsdd_tar(tmp_path_factory) -> Path:
    """FSDD like GitHub's tag archive: free-spoken-digit-dataset-1.0.9/recordings/{digit}_{speaker}_{index}.wav."""
    work = tmp_path_factory.mktemp("fsdd_src")
    recordings = work / FSDD_TOP / "recordings"
    recordings.mkdir(parents=True)
    for digit in range(10):
        for speaker in FSDD_SPEAKERS:
            for index in FSDD_INDICES:
                wave = tone(200.0 + 100 * digit, 0.3, 8_000)
                sf.write(recordings / f"{digit}_{speaker}_{index}.wav", wave, 8_000, subtype="PCM_16")
    (work / FSDD_TOP / "README.md").write_text("# Free Spoken Digit Dataset (FSDD)\n")
    archive = work / "fsdd.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(work / FSDD_TOP, arcname=FSDD_TOP)
    return archive


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUDIOX_CACHE", str(folder))
    return folder


def serve(monkeypatch, module, prefix: str, archive: Path, sha256: str | None = None) -> str:
    """Point a loader's pinned URL and checksum at a local archive."""
    url = archive.as_uri()
    monkeypatch.setattr(module, f"{prefix}_URL", url)
    monkeypatch.setattr(module, f"{prefix}_SHA256", sha256 or sha256_of(archive))
    return url


def truncated_copy(archive: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    broken = folder / ("broken" + "".join(archive.suffixes))
    data = archive.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    return broken


def assert_clean_failure(err: pytest.ExceptionInfo, url: str, folder: Path, cache: Path) -> None:
    message = str(err.value)
    assert url in message
    assert str(folder) in message  # where to put the files by hand
    assert "AUDIOX_PROFILE=offline" in message
    assert files_under(cache) == []  # no .part, no archive, no half-unpacked folder
    assert not folder.exists()


# ----------------------------------------------------------------------------- ESC-50


def test_esc50_downloads_verifies_extracts_and_splits_by_fold(esc50_zip, cache, monkeypatch):
    serve(monkeypatch, esc50, "ESC50", esc50_zip)
    train = ESC50(split="train")

    assert train.root == esc50.esc50_folder() / ESC50_TOP
    assert not list(cache.rglob("*.zip")) and not list(cache.rglob("*.part"))  # the archive is dropped once unpacked
    assert train.classes == ["dog", "rooster", "pig"]
    assert train.sample_rate == 16_000 and len(train) == 9
    assert {row["fold"] for row in train.rows} == {1, 2, 3}

    item = train[4]
    assert set(item) >= {"wave", "label", "label_name", "fold", "filename"}
    assert item["wave"].dtype == torch.float32 and item["wave"].shape == (5 * 16_000,)
    assert item["label_name"] == train.classes[item["label"]]
    assert item["filename"].endswith(f"-{item['label']}.wav") and item["filename"].startswith(f"{item['fold']}-")
    # resampled 44.1 -> 16 kHz with the tone where it was
    assert dominant_frequency(item["wave"], 16_000) == pytest.approx(esc50_frequency(item["label"]), abs=1.0)

    # later runs read the cache: a dead URL no longer matters
    monkeypatch.setattr(esc50, "ESC50_URL", (cache / "gone.zip").as_uri())
    val, test = ESC50(split="val"), ESC50(split="test", sample_rate=22_050)
    assert [row["fold"] for row in val.rows] == [4, 4, 4] and [row["fold"] for row in test.rows] == [5, 5, 5]
    assert test[0]["wave"].shape == (5 * 22_050,)
    assert len(ESC50(folds=[2, 5])) == 6
    waves, labels = stack(load_dataset("esc50", split="val"))
    assert waves.shape == (3, 80_000) and labels.tolist() == [0, 1, 2]


def test_esc50_rejects_unknown_split_and_folds():
    with pytest.raises(ValueError, match="split='dev'"):
        esc50.split_folds("dev")
    with pytest.raises(ValueError, match="folds 1 to 5"):
        esc50.split_folds("train", folds=[0, 6])


def test_esc50_wrong_checksum_leaves_nothing(esc50_zip, cache, monkeypatch):
    url = serve(monkeypatch, esc50, "ESC50", esc50_zip, sha256="0" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        ESC50(split="train")
    assert_clean_failure(err, url, esc50.esc50_folder(), cache)


def test_esc50_missing_url_leaves_nothing(tmp_path, cache, monkeypatch):
    url = serve(monkeypatch, esc50, "ESC50", tmp_path / "no-such-archive.zip", sha256="0" * 64)
    with pytest.raises(DownloadError) as err:
        ESC50(split="train")
    assert_clean_failure(err, url, esc50.esc50_folder(), cache)


def test_esc50_truncated_archive_leaves_nothing(esc50_zip, tmp_path, cache, monkeypatch):
    broken = truncated_copy(esc50_zip, tmp_path / "served")
    # an interrupted transfer: the bytes do not match the pinned checksum
    url = serve(monkeypatch, esc50, "ESC50", broken, sha256=sha256_of(esc50_zip))
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        ESC50(split="train")
    assert_clean_failure(err, url, esc50.esc50_folder(), cache)
    # a corrupt archive that matches its checksum fails at unpacking, also without leftovers
    url = serve(monkeypatch, esc50, "ESC50", broken)
    with pytest.raises(DownloadError, match="could not be unpacked") as err:
        ESC50(split="train")
    assert_clean_failure(err, url, esc50.esc50_folder(), cache)


def test_esc50_root_is_read_without_network(tmp_path, cache, monkeypatch):
    serve(monkeypatch, esc50, "ESC50", tmp_path / "never-fetched.zip", sha256="0" * 64)
    placed = make_esc50_folder(tmp_path / "by_hand" / "ESC-50-master")
    ds = ESC50(split="test", root=tmp_path / "by_hand")  # the parent of the unzipped folder is fine too
    assert ds.root == placed and len(ds) == 3
    assert ESC50(split="test", root=placed)[2]["label_name"] == "pig"
    assert files_under(cache) == []


def test_esc50_root_missing_files_says_what_and_how(tmp_path, cache):
    folder = make_esc50_folder(tmp_path / "ESC-50-master")
    (folder / "audio" / "5-101225-A-2.wav").unlink()
    with pytest.raises(ValueError, match=r"1 of 15 audio files .* missing .*5-101225-A-2\.wav.*root="):
        ESC50(root=folder)
    (folder / "meta" / "esc50.csv").unlink()
    with pytest.raises(ValueError, match=r"has no meta/esc50\.csv.*download=True.*root="):
        ESC50(root=folder)
    with pytest.raises(ValueError, match=r"has no meta/esc50\.csv"):
        ESC50(download=False)  # nothing in the cache and downloading not allowed


# ----------------------------------------------------------------------------- FSDD


def test_fsdd_downloads_and_splits_by_recording_index(fsdd_tar, cache, monkeypatch):
    serve(monkeypatch, speech, "FSDD", fsdd_tar)
    splits = {split: FSDD(split=split) for split in ("train", "val", "test")}

    assert splits["test"].root == speech.fsdd_folder() / FSDD_TOP
    assert not list(cache.rglob("*.tar.gz"))
    assert {split: len(ds) for split, ds in splits.items()} == {"train": 20, "val": 20, "test": 20}
    assert {row["index"] for row in splits["test"].rows} == {0}  # the official test set: recordings 0-4
    assert {row["index"] for row in splits["val"].rows} == {7}
    ds = splits["train"]
    assert ds.classes == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    item = ds[-1]
    assert (item["label"], item["label_name"], item["speaker"], item["index"]) == (9, "nine", "theo", 23)
    assert item["filename"] == "9_theo_23.wav"
    assert item["wave"].dtype == torch.float32 and item["wave"].shape == (int(0.3 * 16_000),)
    assert dominant_frequency(item["wave"], 16_000) == pytest.approx(1100.0, abs=4.0)
    waves, labels = stack(load_dataset("fsdd", split="val"))
    assert waves.shape == (20, 4_800) and sorted(set(labels.tolist())) == list(range(10))


def test_fsdd_wrong_checksum_leaves_nothing(fsdd_tar, cache, monkeypatch):
    url = serve(monkeypatch, speech, "FSDD", fsdd_tar, sha256="f" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        FSDD(split="train")
    assert_clean_failure(err, url, speech.fsdd_folder(), cache)


def test_fsdd_missing_url_leaves_nothing(tmp_path, cache, monkeypatch):
    url = serve(monkeypatch, speech, "FSDD", tmp_path / "v1.0.9.tar.gz", sha256="f" * 64)
    with pytest.raises(DownloadError) as err:
        FSDD(split="train")
    assert_clean_failure(err, url, speech.fsdd_folder(), cache)


def test_fsdd_corrupt_archive_leaves_nothing(fsdd_tar, tmp_path, cache, monkeypatch):
    url = serve(monkeypatch, speech, "FSDD", truncated_copy(fsdd_tar, tmp_path / "served"))
    with pytest.raises(DownloadError, match="could not be unpacked") as err:
        FSDD(split="train")
    assert_clean_failure(err, url, speech.fsdd_folder(), cache)


def test_fsdd_root_without_recordings_says_what_and_how(tmp_path, cache):
    (tmp_path / "fsdd").mkdir()
    with pytest.raises(ValueError, match=r"has no recordings/\*\.wav.*download=True.*root="):
        FSDD(root=tmp_path / "fsdd")
    with pytest.raises(ValueError, match="split='dev'"):
        FSDD(split="dev", root=tmp_path / "fsdd")
    with pytest.raises(ValueError, match="not an FSDD recording name"):
        speech.parse_recording("seven_jackson.wav")


# ----------------------------------------------------------------------------- keyword set


@pytest.fixture(scope="module")
def keyword_splits() -> dict[str, Keywords]:
    return {split: Keywords(split=split) for split in ("train", "val", "test")}


def test_keywords_shipped_set_is_complete_stratified_and_disjoint(keyword_splits):
    manifest = keyword_splits["train"].root / "manifest.csv"
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == speech.MANIFEST_COLUMNS
    assert len({row["file"] for row in rows}) == len(rows)

    for split, ds in keyword_splits.items():
        assert ds.classes == list(KEYWORDS) and len(KEYWORDS) == 10
        per_word = {word: sum(row["word"] == word for row in ds.rows) for word in KEYWORDS}
        assert len(set(per_word.values())) == 1 and per_word["yes"] > 0, (split, per_word)  # stratified
    assert sum(len(ds) for ds in keyword_splits.values()) == len(rows)
    for word in KEYWORDS:
        assert sum(row["word"] == word for row in rows) >= 20

    # held out by voice: no test or val voice is heard in training
    voices = {split: {row["voice"] for row in ds.rows} for split, ds in keyword_splits.items()}
    assert not voices["train"] & voices["test"] and not voices["train"] & voices["val"]
    assert not voices["val"] & voices["test"]

    size = sum(p.stat().st_size for p in files_under(manifest.parent))
    assert size < 8_000_000


def test_keywords_every_clip_is_one_second_and_audible(keyword_splits):
    for ds in keyword_splits.values():
        waves, labels = stack(ds)
        assert waves.shape == (len(ds), 16_000) and waves.dtype == torch.float32
        assert labels.tolist() == [KEYWORDS.index(row["word"]) for row in ds.rows]
        for row in ds.rows:
            info = audio.info(ds.root / row["file"])
            assert (info.samplerate, info.frames, info.channels, info.subtype) == (16_000, 16_000, 1, "PCM_16")
        # the word stands well above the added noise: loudest 100 ms vs quietest 100 ms
        frame_rms = waves.unfold(1, 1_600, 1_600).pow(2).mean(-1).sqrt()
        loudest, quietest = frame_rms.max(1).values, frame_rms.min(1).values
        assert bool((loudest > 0.02).all()) and bool((loudest > 10 * quietest).all())
        # roughly centred: the loudest 100 ms lies in the middle 0.2-0.8 s
        assert set(frame_rms.argmax(1).tolist()) <= {2, 3, 4, 5, 6, 7}


def test_keywords_item_resampling_and_dispatch():
    item = Keywords(split="val", sample_rate=8_000)[3]
    assert item["wave"].shape == (8_000,)
    assert item["label_name"] == KEYWORDS[item["label"]] and item["file"].startswith(item["label_name"] + "/")
    assert isinstance(item["pitch"], int) and isinstance(item["snr_db"], float)
    assert len(load_dataset("keywords", split="test")) == 30


def test_keywords_missing_folder_says_how_to_regenerate(tmp_path):
    with pytest.raises(ValueError, match=r"python scripts/make_keywords\.py.*apt-get install espeak-ng"):
        Keywords(root=tmp_path / "keywords")
    with pytest.raises(ValueError, match="split='dev'"):
        Keywords(split="dev")
