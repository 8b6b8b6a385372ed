"""Make the offline keyword-spotting set shipped in ``data/keywords/``.

Ten Speech Commands words, each spoken by 22 espeak-ng voices (accent + voice variant),
with a seeded random pitch, speed, gain and a little white noise at a random SNR. Every
clip is 16 kHz mono 16-bit PCM, exactly 1.0 s long with the word roughly centred, so a
split stacks into one ``[N, 16000]`` tensor. ``manifest.csv`` lists file, word, voice,
pitch, speed, snr_db and split.

Splits go by *voice*: 16 voices train, 3 validate, 3 test, the same for every word
(so each split is stratified) and no test voice is heard in training.

Usage (needs espeak-ng: ``apt-get install espeak-ng``)::

    python scripts/make_keywords.py            # writes data/keywords/
    python scripts/make_keywords.py --out /tmp/kw --seed 1

The output is deterministic for a given seed and espeak-ng version (the WAVs were made
with espeak-ng 1.51; another version may sound slightly different).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from audiox import audio  # noqa: E402  (the script runs from a checkout, before any install)
from audiox.config import DATA_DIR  # noqa: E402

#: The ten command words of Speech Commands (Warden, 2018), in label order.
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
#: espeak-ng voices as ``accent+variant``; each voice belongs to one split only.
VOICES = {
    "train": (
        "en-us+m1", "en-us+m3", "en-us+f1", "en-us+f4",
        "en-gb+m2", "en-gb+m6", "en-gb+f3", "en-gb+f5",
        "en-gb-scotland+m4", "en-gb-scotland+f2", "en-gb-x-rp+m7", "en-029+f1",
        "en-us-nyc+m8", "en-gb-x-gbclan+f4", "en-gb-x-gbcwmd+m5", "en-us+klatt",
    ),
    "val": ("en-us+m2", "en-gb-x-rp+f2", "en-gb-scotland+m6"),
    "test": ("en-us-nyc+f2", "en-gb+m8", "en-029+m3"),
}
#: (split, voice) for every variant; a clip's number is its variant's place here.
VARIANTS = [(split, voice) for split, voices in VOICES.items() for voice in voices]
SAMPLE_RATE = audio.SAMPLE_RATE
CLIP_SECONDS = 1.0
PITCH_RANGE = (25, 75)  # espeak-ng -p, 0..99 (50 is the voice's own)
SPEED_RANGE = (130, 190)  # espeak-ng -s, words per minute (175 is the default)
SNR_DB_RANGE = (20.0, 40.0)  # "a little" noise: audible only in the pauses
PEAK_RANGE = (0.3, 0.9)  # random gain, as a peak level
CENTRE_JITTER_S = 0.05
TRIM_TOP_DB = 40  # what counts as espeak's leading/trailing silence
MANIFEST_COLUMNS = ("file", "word", "voice", "pitch", "speed", "snr_db", "split")


def speak(word: str, voice: str, pitch: int, speed: int, workdir: Path) -> tuple[np.ndarray, int]:
    """One espeak-ng utterance as float32 samples and its rate (22.05 kHz)."""
    path = workdir / "utterance.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), word],
        check=True,
        capture_output=True,
    )
    samples, rate = sf.read(str(path), dtype="float32")
    return samples, rate


def make_clip(word: str, voice: str, rng: np.random.Generator, workdir: Path) -> tuple[np.ndarray, dict]:
    """A 1.0 s, 16 kHz clip of ``word``: trimmed, centred (with jitter), scaled and noised."""
    pitch = int(rng.integers(*PITCH_RANGE, endpoint=True))
    speed = int(rng.integers(*SPEED_RANGE, endpoint=True))
    snr_db = float(rng.uniform(*SNR_DB_RANGE))
    peak = float(rng.uniform(*PEAK_RANGE))
    jitter = float(rng.uniform(-CENTRE_JITTER_S, CENTRE_JITTER_S))

    samples, rate = speak(word, voice, pitch, speed, workdir)
    # espeak pads every utterance with silence; trimming it lets us centre the word itself
    samples, _ = librosa.effects.trim(samples, top_db=TRIM_TOP_DB)
    speech = audio.resample(torch.from_numpy(samples), rate, SAMPLE_RATE)
    n_clip = int(CLIP_SECONDS * SAMPLE_RATE)
    if speech.shape[-1] > n_clip * 0.95:
        raise RuntimeError(f"{word!r} by {voice} at speed {speed} is {speech.shape[-1] / SAMPLE_RATE:.2f} s; too long.")
    speech = audio.normalise(speech, peak)

    centre = int((CLIP_SECONDS / 2 + jitter) * SAMPLE_RATE)
    start = min(max(centre - speech.shape[-1] // 2, 0), n_clip - speech.shape[-1])
    clip = torch.zeros(n_clip)
    clip[start : start + speech.shape[-1]] = speech

    # SNR against the word's own power, so quiet and loud takes get the same audibility
    speech_power = float(speech.pow(2).mean())
    noise = torch.from_numpy(rng.standard_normal(n_clip).astype(np.float32))
    clip = clip + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    settings = {"voice": voice, "pitch": pitch, "speed": speed, "snr_db": round(snr_db, 1)}
    return clip.clamp(-1, 1).numpy(), settings


def check_clip(path: Path, word: str) -> float:
    """Read a written clip back and check it is 1.0 s at 16 kHz with the word clearly audible.

    Returns the RMS (dBFS) of the loudest 100 ms, i.e. of the word.
    """
    wave = audio.load(path, sample_rate=None)
    info = audio.info(path)
    if info.samplerate != SAMPLE_RATE or wave.shape[-1] != int(CLIP_SECONDS * SAMPLE_RATE):
        raise RuntimeError(f"{path}: {info.samplerate} Hz, {wave.shape[-1]} samples; expected 1.0 s at 16 kHz.")
    frames = wave.unfold(0, 1600, 1600)  # 100 ms frames
    frame_rms = frames.pow(2).mean(dim=1).sqrt()
    loudest, quietest = float(frame_rms.max()), float(frame_rms.min())
    if loudest < 0.02 or loudest < 10 * quietest:
        raise RuntimeError(
            f"{path} ({word}): loudest 100 ms has RMS {loudest:.4f}, quietest {quietest:.4f}; "
            "the word is not clearly above the noise."
        )
    return 20 * np.log10(loudest)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR / "keywords", help="output folder (default data/keywords)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng not found: install it (apt-get install espeak-ng, brew install espeak-ng) and rerun.")

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)  # a stale clip from an older voice list must not survive
    rows = []
    levels = []
    with tempfile.TemporaryDirectory() as tmp:
        for word_index, word in enumerate(WORDS):
            for variant, (split, voice) in enumerate(VARIANTS):
                # one generator per clip, so editing one voice leaves every other clip unchanged
                rng = np.random.default_rng([args.seed, word_index, variant])
                clip, settings = make_clip(word, voice, rng, Path(tmp))
                file = f"{word}/{word}_{variant:02d}.wav"
                path = audio.save(out / file, torch.from_numpy(clip), SAMPLE_RATE)
                levels.append(check_clip(path, word))
                rows.append({"file": file, "word": word, **settings, "split": split})
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    counts = {split: sum(r["split"] == split for r in rows) for split in VOICES}
    print(
        f"{len(rows)} clips ({len(WORDS)} words x {len(VARIANTS)} voices) in {out}, "
        f"{size / 1e6:.2f} MB; splits {counts}; word level {min(levels):.1f} to {max(levels):.1f} dBFS RMS."
    )


if __name__ == "__main__":
    main()
