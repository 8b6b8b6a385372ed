"""Audio I/O, input validation, STFT / mel helpers and listenable output.

Every method in the course ends in a waveform a learner can play. The path is always
the same: magnitude spectrogram (masked, recomposed or decoded) + the original phase
-> :func:`istft_with_phase` -> :func:`to_wav_bytes` -> a player.

Inputs are checked once, at the edge, by :func:`validate`; a bad input raises
``ValueError`` that names the argument or file and says how to fix it.

>>> import torch
>>> from audiox import audio
>>> t = torch.arange(16000) / 16000
>>> wave = 0.5 * torch.sin(2 * torch.pi * 440 * t)
>>> wave = audio.validate(wave, 16000)
>>> magnitude, phase = audio.magnitude_phase(wave)
>>> tuple(magnitude.shape)
(257, 126)
>>> back = audio.istft_with_phase(magnitude, phase, length=wave.shape[-1])
>>> bool((back - wave).abs().max() < 1e-4)
True
>>> audio.to_wav_bytes(wave, 16000)[:4]
b'RIFF'
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

#: Sample rate of the offline profile (SynthSounds, keyword set, tiny models).
SAMPLE_RATE = 16_000
#: STFT used for masks and listenable output at 16 kHz: 32 ms Hann window, 8 ms hop.
N_FFT = 512
HOP_LENGTH = 128
#: Peak amplitude under which a clip counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4
#: Peak above which :func:`validate` warns that a float wave is not scaled to [-1, 1] (scaled like PCM integers, or
#: far too loud). What the notebooks give the models peaks below 1.11 (SynthSounds clips and mixtures at most 0.90,
#: the keyword set 0.91, the tiny codec's resynthesised and edited clips 1.11): a mild overshoot after processing is
#: normal and not worth a warning on every call; a peak of 2 (+6 dB over full scale) is no accident.
PCM_SCALED_PEAK = 2.0
#: A file that lacks more than this many seconds of what its header promises counts as truncated: a writer that
#: miscounts its header by a few bytes (some do) has not lost any sound, a broken download or export has.
TRUNCATION_TOLERANCE_SECONDS = 0.01
#: Shortest file :func:`load` accepts. Under 10 ms is a click at most, never a sound a model here can use (the STFT
#: window is 32 ms, validate asks 0.1 s, the models 0.25 s): most likely a broken export.
MIN_FILE_SECONDS = 0.01


def _as_tensor(wave, name: str) -> torch.Tensor:
    if isinstance(wave, np.ndarray):
        wave = torch.from_numpy(np.ascontiguousarray(wave))
    if not isinstance(wave, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(wave).__name__}.")
    if wave.is_complex():
        raise ValueError(f"{name} is complex; pass a real waveform (use istft_with_phase for spectra).")
    return wave


def validate(
    wave,
    sample_rate: int,
    *,
    expected_sample_rate: int | None = SAMPLE_RATE,
    resample_to_expected: bool = False,
    min_seconds: float = 0.1,
    batched: bool = False,
    allow_silence: bool = False,
    name: str = "wave",
) -> torch.Tensor:
    """Check a waveform once at the edge and return it as mono float32.

    Args:
        wave: ``[T]`` (or ``[B, T]`` with ``batched=True``), tensor or numpy array.
        sample_rate: the rate ``wave`` was recorded at.
        expected_sample_rate: the rate the model needs (``None`` accepts any).
        resample_to_expected: resample a mismatched rate (with a warning) instead of raising.
        min_seconds: shortest accepted clip.
        batched: accept a batch ``[B, T]`` of mono clips.
        allow_silence: accept an all-silent clip (e.g. for a player).
        name: what to call the input in error messages (an argument or file name).

    >>> validate(torch.zeros(2, 16000), 16000)
    Traceback (most recent call last):
    ...
    ValueError: wave has shape (2, 16000), which looks like 2-channel (stereo) audio; the model needs mono: use audiox.audio.to_mono(wave) or pass batched=True for a batch of mono clips.
    """
    wave = _as_tensor(wave, name)
    want_dim = 2 if batched else 1
    if wave.ndim != want_dim:
        if not batched and wave.ndim == 2 and min(wave.shape) <= 8:
            raise ValueError(
                f"{name} has shape {tuple(wave.shape)}, which looks like {min(wave.shape)}-channel "
                f"(stereo) audio; the model needs mono: use audiox.audio.to_mono(wave) or pass "
                f"batched=True for a batch of mono clips."
            )
        if batched and wave.ndim == 3:
            raise ValueError(
                f"{name} has shape {tuple(wave.shape)} ([batch, channels, time]); the model needs mono "
                f"[batch, time]: use audiox.audio.to_mono on each clip."
            )
        if batched and wave.ndim == 1:
            raise ValueError(f"{name} has shape {tuple(wave.shape)}; a batch needs [batch, time]: use wave[None].")
        raise ValueError(f"{name} has shape {tuple(wave.shape)}; expected {'[batch, time]' if batched else '[time]'}.")
    if batched and wave.shape[-1] <= 8 < wave.shape[0]:
        raise ValueError(
            f"{name} has shape {tuple(wave.shape)}, which looks like [time, channels] (stereo) audio; "
            f"the model needs mono [batch, time]: use audiox.audio.to_mono(wave.T)[None]."
        )
    if wave.shape[-1] == 0 or (batched and wave.shape[0] == 0):
        raise ValueError(f"{name} is empty (shape {tuple(wave.shape)}); pass at least {min_seconds} s of audio.")
    if not torch.is_floating_point(wave):
        raise ValueError(
            f"{name} has integer dtype {wave.dtype}; convert PCM to float in [-1, 1] "
            f"(e.g. wave.float() / 32768) or load it with audiox.audio.load."
        )
    wave = wave.to(torch.float32)
    if not torch.isfinite(wave).all():
        bad = int((~torch.isfinite(wave)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN or infinite samples; fix the source (a division by zero? a corrupt "
            f"file?) or replace them, e.g. torch.nan_to_num(wave)."
        )
    if expected_sample_rate is not None and sample_rate != expected_sample_rate:
        if not resample_to_expected:
            raise ValueError(
                f"{name} is at {sample_rate} Hz but the model expects {expected_sample_rate} Hz; resample it with "
                f"audiox.audio.resample(wave, {sample_rate}, {expected_sample_rate}) or load it with "
                f"audiox.audio.load(path, sample_rate={expected_sample_rate})."
            )
        warnings.warn(f"{name}: resampling {sample_rate} Hz -> {expected_sample_rate} Hz.", stacklevel=2)
        wave = resample(wave, sample_rate, expected_sample_rate)
        sample_rate = expected_sample_rate
    seconds = wave.shape[-1] / sample_rate
    if seconds < min_seconds:
        raise ValueError(
            f"{name} is {seconds:.3f} s long ({wave.shape[-1]} samples at {sample_rate} Hz); at least "
            f"{min_seconds} s is needed: use a longer clip or audiox.audio.pad_to(wave, seconds, sample_rate)."
        )
    peaks = wave.detach().abs().amax(dim=-1)  # detached: a scalar read off a graph would warn (torch >= 2.4)
    if not allow_silence:
        if (peaks < SILENCE_PEAK).any():
            which = "" if not batched else f" (clips {torch.nonzero(peaks < SILENCE_PEAK).flatten().tolist()})"
            raise ValueError(
                f"{name} is all silent{which} (peak below {SILENCE_PEAK}); there is nothing to explain: "
                f"check the file or the gain, or pass allow_silence=True where silence is expected."
            )
    if (peaks > PCM_SCALED_PEAK).any():  # the models were trained on [-1, 1]: a log-mel 90 dB too loud is another input
        which = "" if not batched else f" (clips {torch.nonzero(peaks > PCM_SCALED_PEAK).flatten().tolist()})"
        warnings.warn(_overshoot_message(f"{name}{which}", float(peaks.max())), UserWarning, stacklevel=2)
    return wave


def _overshoot_message(what: str, peak: float) -> str:
    """What is wrong with samples beyond full scale, and the fix: PCM integers stored as floats, or a loud clip."""
    if peak >= 128:  # 8-bit PCM peaks at 127, 16-bit at 32767: integers stored as floats, not a loud recording
        return (f"{what} looks scaled like integer PCM (peak {peak:.6g}), not like audio in [-1, 1]: divide by 32768 "
                f"if it came from 16-bit PCM (2**23 for 24-bit, 2**31 for 32-bit), or use audiox.audio.load, which "
                f"scales for you; or scale it with audiox.audio.normalise(wave).")
    return (f"{what} has samples beyond ±1 (peak {peak:.3g}): it will clip when played or saved, and the models "
            f"expect [-1, 1]; divide by the peak (audiox.audio.normalise(wave) scales it to 0.9).")


def load(path, sample_rate: int | None = SAMPLE_RATE, *, mono: bool = True) -> torch.Tensor:
    """Read an audio file as float32 in [-1, 1], mixed down to mono and resampled to ``sample_rate``.

    ``sample_rate=None`` keeps the file's rate (read it with :func:`info`). Returns ``[T]``
    (or ``[C, T]`` with ``mono=False``).

    The file is read by its *content*, not its name: whatever libsndfile decodes (WAV, FLAC,
    Ogg Vorbis/Opus, AIFF, ... and MP3 from libsndfile 1.1; ``soundfile.available_formats()``
    lists them) loads, a WAV named ``.mp3`` too. Anything else raises a ``ValueError`` that
    names the problem and the fix: a directory, a missing or empty file, a format libsndfile
    cannot decode (M4A/AAC, WebM, ...: convert it with ffmpeg), a corrupt file, a truncated
    one (its header promises more than it holds: WAV, FLAC and MP3 are checked; a cut Ogg
    file cannot be told from a short one), a file without samples or too short to be a sound
    (under :data:`MIN_FILE_SECONDS`). A float file with samples beyond ±1 loads with a warning.

    >>> import tempfile
    >>> t = torch.arange(8000) / 8000
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save(Path(tmp) / "tone.wav", 0.5 * torch.sin(2 * torch.pi * 440 * t), 8000)
    ...     wave = load(path)                                # resampled to 16 kHz
    ...     tuple(wave.shape), round(float(wave.abs().max()), 2), info(path).samplerate
    ((16000,), 0.5, 8000)
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"audio file {path} does not exist; check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        raise ValueError(
            f"{path} is a directory, not an audio file; pass one file (e.g. sorted(Path({str(path)!r}).glob('*.wav'))"
            f"[0]), or load each of them: [audiox.audio.load(f) for f in sorted(Path({str(path)!r}).glob('*.wav'))]."
        )
    if path.stat().st_size == 0:
        raise ValueError(f"audio file {path} is empty (0 bytes); re-download or re-export it.")
    # A WAV header says how many bytes of samples follow; libsndfile quietly reads what is there, so a cut
    # file (an interrupted download) would load as a shorter clip. Compare before decoding.
    _check_wav_length(path)
    try:
        with sf.SoundFile(str(path)) as f:  # libsndfile recognises the format by the file's content
            promised, file_rate = f.frames, f.samplerate
            data = _read_blocks(f, path, promised)
    except TypeError as err:  # soundfile reads a *.raw name as headerless samples, which need a rate and sample type
        raise ValueError(
            f"{path.name}: soundfile takes a .raw file for headerless samples ({err}); if it is a WAV or another "
            f"format, rename it; if it really is raw PCM, convert it with its rate, e.g. "
            f"`ffmpeg -f s16le -ar 16000 -ac 1 -i {path.name} {path.stem}.wav`."
        ) from err
    except (sf.LibsndfileError, RuntimeError) as err:  # LibsndfileError is a RuntimeError; so are older ones
        raise ValueError(_undecodable_message(path, err)) from err
    frames = data.shape[0]
    # the header's count against what decoded: catches e.g. a cut MP3 (its Xing header counts the whole file)
    if promised < _UNKNOWN_LENGTH and promised - frames > TRUNCATION_TOLERANCE_SECONDS * file_rate:
        raise ValueError(_truncated_message(path, promised, frames, file_rate))
    if frames == 0:
        raise ValueError(f"audio file {path} holds no samples; re-download or re-export it.")
    if frames < MIN_FILE_SECONDS * file_rate:
        raise ValueError(
            f"audio file {path} is {frames} sample{'s' if frames != 1 else ''} long ({_duration(frames, file_rate)} "
            f"at {file_rate} Hz), too short to be a sound any model here can use (they need 0.1 to 0.25 s); it is "
            f"probably a broken export: re-export or re-record a longer clip (one meant to be this short: read it with "
            f"soundfile.read and pad it with audiox.audio.pad_to)."
        )
    peak = float(np.abs(data).max())
    if peak > 1.0:  # only a float file can hold these (PCM reads in [-1, 1)); a player or save clips them
        warnings.warn(_overshoot_message(f"audio file {path.name}", peak), UserWarning, stacklevel=2)
    wave = torch.from_numpy(data.T.copy())  # soundfile gives [T, C]; torch audio code uses [C, T]
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None and file_rate != sample_rate:
        wave = resample(wave, file_rate, sample_rate)
    return wave


_READ_BLOCK = 1 << 20  # frames per read: one block for most clips, no giant buffer for a header that lies
_UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's SF_COUNT_MAX: the length is not known


def _read_blocks(f: sf.SoundFile, path: Path, promised: int) -> np.ndarray:
    """All frames of an open file ``[T, C]``; a decoder error part-way (a cut FLAC) becomes the truncated error."""
    blocks, held = [], 0
    while True:
        try:
            block = f.read(_READ_BLOCK, dtype="float32", always_2d=True)
        except sf.LibsndfileError as err:
            if held < promised < _UNKNOWN_LENGTH:  # the header was read and promised more: cut off or damaged
                raise ValueError(_truncated_message(path, promised, _decodable_frames(path), f.samplerate, err)) from err
            raise
        if len(block) == 0:
            break
        blocks.append(block)
        held += len(block)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks) if blocks else np.zeros((0, f.channels),
                                                                                              np.float32)


def _decodable_frames(path: Path, block: int = 4096) -> int:
    """How many frames decode before the decoder gives up (counted in small blocks: a failed block yields nothing)."""
    held = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while len(chunk := f.read(block, dtype="float32", always_2d=True)):
                held += len(chunk)
    except (sf.LibsndfileError, RuntimeError):
        pass
    return held


def _duration(frames: int, rate: int) -> str:
    return f"{frames / rate:.3f} s" if frames >= 0.1 * rate else f"{1000 * frames / rate:.2f} ms"


def _truncated_message(path: Path, promised: int, held: int, rate: int, err: Exception | None = None) -> str:
    said = f"its header says {promised} samples ({_duration(promised, rate)} at {rate} Hz)"
    if err is None:
        return (f"audio file {path} is truncated: {said}, the file holds {held} ({_duration(held, rate)}); it was cut "
                f"short (an interrupted download or export): re-download or re-export it.")
    return (f"audio file {path} is truncated or damaged: {said}, only the first {held} ({_duration(held, rate)}) "
            f"decode ({err}); re-download or re-export it.")


def _check_wav_length(path: Path) -> None:
    """Raise the truncated error for a RIFF/WAVE file whose ``data`` chunk promises more bytes than the file holds."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return  # not a (little-endian, 32-bit) WAV: nothing to compare here
            size, pos, rate, byte_rate = path.stat().st_size, 12, 0, 0
            for _ in range(256):  # walk the chunks (fmt, fact, LIST, ...) up to the samples
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return  # no data chunk at all: libsndfile's own error says so
                kind, length = chunk[:4], int.from_bytes(chunk[4:], "little")
                if kind == b"fmt ":
                    fmt = f.read(12)
                    if len(fmt) == 12:
                        rate, byte_rate = int.from_bytes(fmt[4:8], "little"), int.from_bytes(fmt[8:12], "little")
                elif kind == b"data":
                    # 0 and 0xFFFFFFFF are what streaming writers put before they know the length: not a promise
                    if not (rate and byte_rate) or length in (0, 0xFFFFFFFF):
                        return
                    held = min(length, size - pos - 8)
                    if (length - held) / byte_rate > TRUNCATION_TOLERANCE_SECONDS:
                        # byte_rate = rate * bytes per frame (average, for ADPCM and the like): bytes -> samples
                        raise ValueError(_truncated_message(path, length * rate // byte_rate, held * rate // byte_rate,
                                                            rate))
                    return
                pos += 8 + length + (length & 1)  # chunks are padded to an even length
    except OSError:
        return  # unreadable: soundfile's error below names it


#: Magic bytes at the start of a file -> the format's name, to say honestly what a file is when it cannot be decoded.
_MAGIC = (
    (0, b"RIFF", "WAV (RIFF)"), (0, b"RF64", "RF64 (WAV)"), (0, b"fLaC", "FLAC"), (0, b"OggS", "Ogg"),
    (0, b"ID3", "MP3"), (0, b"FORM", "AIFF"), (0, b"caff", "CAF"), (0, b".snd", "AU"), (4, b"ftyp", "MP4/M4A (AAC)"),
    (0, b"\x1aE\xdf\xa3", "WebM/Matroska"), (0, b"0&\xb2u\x8ef\xcf\x11", "WMA (ASF)"), (0, b"#!AMR", "AMR"),
)
#: Formats libsndfile does not decode (MP3 only before 1.1), and the names that claim them.
_NEEDS_FFMPEG = {
    "MP4/M4A (AAC)": (".m4a", ".mp4", ".m4b", ".alac", ".3gp"), "AAC (ADTS)": (".aac",),
    "WebM/Matroska": (".webm", ".mka", ".mkv"), "WMA (ASF)": (".wma", ".asf"), "AMR": (".amr",), "MP3": (".mp3",),
}


def _sniff(path: Path) -> str | None:
    """The format a file's first bytes announce (``None``: none known)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for offset, magic, name in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return name
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] != 0xFF:  # MPEG frame sync
        return "AAC (ADTS)" if head[1] & 0x06 == 0 else "MP3"  # layer bits 00: ADTS (AAC), else MPEG layer I-III
    return None


def _undecodable_message(path: Path, err: Exception) -> str:
    """Why libsndfile could not decode ``path`` and what to do: convert, update, or re-download."""
    found = _sniff(path)
    claimed = next((fmt for fmt, suffixes in _NEEDS_FFMPEG.items() if path.suffix.lower() in suffixes), None)
    kind = found or claimed
    said = "its content is" if found else f"by its name ({path.suffix}) it is"
    convert = f"convert it to WAV with ffmpeg: `ffmpeg -i {path.name} {path.stem}.wav`"
    if kind == "MP3" and "MP3" not in sf.available_formats():
        return (f"audio file {path} could not be decoded ({err}): {said} MP3, which this libsndfile "
                f"({sf.__libsndfile_version__}) does not decode; libsndfile >= 1.1 does (`pip install -U soundfile`), "
                f"or {convert}.")
    if kind in _NEEDS_FFMPEG and kind != "MP3":
        unsure = "" if found else " (its content is no format known here: if ffmpeg cannot read it either, it is " \
                                  "corrupt or not audio)"
        return (f"audio file {path} could not be decoded ({err}): {said} {kind}, which libsndfile (soundfile) does "
                f"not read; {convert} (ffmpeg: `apt install ffmpeg`, `brew install ffmpeg` or "
                f"`conda install ffmpeg`){unsure}.")
    if found:  # a format libsndfile knows, and still it failed: the file is damaged (or an encoding it lacks)
        return (f"audio file {path} could not be decoded ({err}); it starts like {found} but is corrupt or truncated "
                f"(or in an encoding this libsndfile lacks): re-download or re-export it, or try to rescue it with "
                f"ffmpeg: `ffmpeg -i {path.name} {path.stem}-fixed.wav`.")
    return (f"audio file {path} could not be decoded ({err}); its content is no audio format libsndfile reads "
            f"(it reads {', '.join(sorted(sf.available_formats()))}): it is corrupt or not audio; if it plays "
            f"elsewhere, {convert}.")


def info(path) -> sf._SoundFileInfo:
    """Sample rate, channels and duration of a file without reading the samples."""
    return sf.info(str(path))


def save(path, wave: torch.Tensor, sample_rate: int) -> Path:
    """Write a mono ``[T]`` waveform as 16-bit PCM WAV (clipped to [-1, 1], not normalised)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _pcm_ready(wave), sample_rate, subtype="PCM_16")
    return path


def to_mono(wave: torch.Tensor) -> torch.Tensor:
    """Average the channels of ``[C, T]`` into ``[T]``; a ``[T]`` input is returned as is."""
    wave = _as_tensor(wave, "wave")
    return wave if wave.ndim == 1 else wave.mean(dim=0)


def resample(wave: torch.Tensor, orig_sample_rate: int, new_sample_rate: int) -> torch.Tensor:
    """Band-limited resampling (torchaudio's windowed sinc) along the last axis."""
    if orig_sample_rate == new_sample_rate:
        return wave
    return AF.resample(wave, int(orig_sample_rate), int(new_sample_rate))


def normalise(wave: torch.Tensor, peak: float = 0.9) -> torch.Tensor:
    """Scale so the largest absolute sample is ``peak`` (per clip for ``[B, T]``)."""
    current = wave.abs().amax(dim=-1, keepdim=True)
    if (current < SILENCE_PEAK).any():
        raise ValueError("cannot normalise a silent clip (peak below 1e-4); check the input or skip normalising.")
    return wave * (peak / current)


def pad_to(wave: torch.Tensor, seconds: float, sample_rate: int) -> torch.Tensor:
    """Zero-pad (or cut) the last axis to exactly ``seconds``."""
    n = int(round(seconds * sample_rate))
    if wave.shape[-1] >= n:
        return wave[..., :n]
    return torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))


@lru_cache(maxsize=8)
def _hann(n_fft: int, device: str) -> torch.Tensor:
    return torch.hann_window(n_fft, device=device)


def stft(wave: torch.Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Complex STFT ``[..., F, T]`` with a Hann window (F = n_fft // 2 + 1)."""
    shape = wave.shape
    spec = torch.stft(
        wave.reshape(-1, shape[-1]), n_fft, hop_length, window=_hann(n_fft, str(wave.device)), return_complex=True
    )
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def magnitude_phase(
    wave: torch.Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear magnitude and phase (radians) of :func:`stft`, each ``[..., F, T]``."""
    spec = stft(wave, n_fft, hop_length)
    return spec.abs(), spec.angle()


def istft_with_phase(
    magnitude: torch.Tensor,
    phase: torch.Tensor,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    length: int | None = None,
) -> torch.Tensor:
    """Waveform from a (masked) magnitude and the original phase: the listenable output of every method."""
    if magnitude.shape != phase.shape:
        raise ValueError(f"magnitude {tuple(magnitude.shape)} and phase {tuple(phase.shape)} must have the same shape.")
    spec = torch.polar(magnitude.float(), phase.float())
    lead = spec.shape[:-2]
    wave = torch.istft(
        spec.reshape(-1, *spec.shape[-2:]),
        n_fft,
        hop_length,
        window=_hann(n_fft, str(spec.device)),
        length=length,
    )
    return wave.reshape(*lead, wave.shape[-1])


def listenable(
    magnitude: torch.Tensor,
    phase: torch.Tensor,
    mask: torch.Tensor,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a mask keeps and what it leaves out, as sound: ``M * |X|`` and ``(1 - M) * |X|`` with the clip's phase.

    The one mask-to-sound seam of the course: every mask method (LMAC-ZS, L2I, the gradient maps,
    the random control, NMF components) goes through it. ``mask`` lies in [0, 1] on the grid of
    ``magnitude`` ``[..., F, T]``; ``length`` defaults to ``(T - 1) * hop_length``, the clip's length.
    The two waves sum to the clip (the inverse STFT is linear), so what is heard in one is missing
    from the other.

    >>> wave = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    >>> magnitude, phase = magnitude_phase(wave)
    >>> low = torch.zeros_like(magnitude); low[:20] = 1.0          # keep the bins below 625 Hz
    >>> kept, left = listenable(magnitude, phase, low)
    >>> bool(kept.pow(2).sum() > 100 * left.pow(2).sum())           # the 440 Hz tone is in the kept part
    True
    """
    if mask.shape != magnitude.shape:
        raise ValueError(f"mask {tuple(mask.shape)} and magnitude {tuple(magnitude.shape)} must share one grid.")
    length = (magnitude.shape[-1] - 1) * hop_length if length is None else length
    kept = istft_with_phase(mask * magnitude, phase, n_fft, hop_length, length)
    residual = istft_with_phase((1 - mask) * magnitude, phase, n_fft, hop_length, length)
    return kept, residual


def effective_mask(explanation_magnitude: torch.Tensor, residual_magnitude: torch.Tensor) -> torch.Tensor:
    """The mask ``[B, F, T]`` a *synthesised* explanation amounts to: ``|E| / (|E| + |R|)`` per bin, in [0, 1].

    A method that decodes its explanation ``E`` and its residual ``R`` (latent attribution through
    a codec: the top latent entries kept, and removed) has no mask of its own; this is the one
    definition of it, so that its explanation can be measured like a mask: the share of each bin
    that went into the explanation rather than into what it leaves out. For a mask method
    (``E = M X``, ``R = (1 - M) X``) it gives back ``M`` exactly; where both are silent, 0. A ratio
    to the clip instead (``|E| / |X|``) would be 1 wherever the decoded baseline's noise is louder
    than a quiet bin of the clip, and rank those bins first.

    >>> x, m = torch.rand(1, 257, 20) + 0.1, torch.rand(1, 257, 20)
    >>> bool(torch.allclose(effective_mask(m * x, (1 - m) * x), m, atol=1e-6))
    True
    """
    if explanation_magnitude.shape != residual_magnitude.shape:
        raise ValueError(f"explanation {tuple(explanation_magnitude.shape)} and residual "
                         f"{tuple(residual_magnitude.shape)} magnitudes must share one STFT grid.")
    total = explanation_magnitude + residual_magnitude
    return torch.where(total > 0, explanation_magnitude / total.clamp_min(torch.finfo(total.dtype).tiny), 0.0)


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = 64, device=None) -> torch.Tensor:
    """Slaney-style mel filterbank ``[F, n_mels]`` (torchaudio) that maps a linear magnitude to mel bands."""
    return AF.melscale_fbanks(
        n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate, norm="slaney", mel_scale="slaney"
    ).to(device)


def log_mel(magnitude: torch.Tensor, filterbank: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Log mel power ``[..., n_mels, T]`` from a linear magnitude ``[..., F, T]``; differentiable.

    Models take this path from the spectrogram so that a mask on the *linear* magnitude
    (LMAC-ZS, L2I) reaches the embedding through the model's own front end.
    """
    power = magnitude.pow(2)
    mel = torch.einsum("...ft,fm->...mt", power, filterbank)
    return torch.log(mel + eps)


@lru_cache(maxsize=32)
def _lift_matrix(sample_rate: int, n_fft: int, bands: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """:func:`mel_to_linear`'s ``[F, bands]`` matrix, built once per grid, dtype and device.

    Built on the CPU and then moved, so a GPU gets the very numbers a CPU uses, and its checks on
    empty rows (data-dependent, a device sync each) run once instead of on every decoder or GradCAM call.
    """
    lift = mel_filterbank(sample_rate, n_fft, bands).to(dtype)
    # the top and bottom linear bins may lie outside every filter: give them their nearest band
    empty = lift.sum(dim=1) == 0
    if empty.any():
        nearest = torch.where(torch.arange(len(lift)) < len(lift) // 2, 0, bands - 1)
        lift[empty, nearest[empty]] = 1.0
    return (lift / lift.sum(dim=1, keepdim=True)).to(device)


def mel_to_linear(x: torch.Tensor, sample_rate: int, n_fft: int, n_frames: int) -> torch.Tensor:
    """Bring a map on a mel-like grid ``[B, bands, frames]`` to the linear STFT grid ``[B, F, n_frames]``.

    Each linear bin takes the average of the bands whose mel filter covers it (the filterbank
    transposed, rows normalised to sum to 1), so values in [0, 1] stay in [0, 1]; time is
    interpolated linearly. This is how a map read off a model's hidden layers (GradCAM, the
    LMAC-ZS decoder) becomes a mask on the magnitude a learner hears. Differentiable.

    >>> m = torch.zeros(1, 8, 10); m[:, :2] = 1.0          # the lowest two of eight mel bands
    >>> lin = mel_to_linear(m, 16_000, 512, n_frames=20)
    >>> tuple(lin.shape), float(lin[0, 5, 0]), float(lin[0, 200, 0])
    ((1, 257, 20), 1.0, 0.0)
    """
    if x.ndim != 3:
        raise ValueError(f"expected a map [B, bands, frames], got shape {tuple(x.shape)}.")
    lift = _lift_matrix(sample_rate, n_fft, x.shape[1], x.dtype, str(x.device))  # [F, bands]
    linear = torch.einsum("fm,bmt->bft", lift, x)
    if linear.shape[-1] != n_frames:
        linear = torch.nn.functional.interpolate(linear, size=n_frames, mode="linear", align_corners=True)
    return linear


def _pcm_ready(wave) -> np.ndarray:
    wave = _as_tensor(wave, "wave").detach().to("cpu", torch.float32)
    if wave.ndim != 1:
        raise ValueError(f"a player needs one mono clip [T], got shape {tuple(wave.shape)}.")
    if not torch.isfinite(wave).all():
        raise ValueError("wave contains NaN or infinite samples; it cannot be played. Use torch.nan_to_num(wave).")
    return wave.clamp(-1.0, 1.0).numpy()


def to_wav_bytes(wave, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes for a player.

    Samples are clipped to [-1, 1] but *not* normalised, so an explanation that removed
    most of the energy sounds quieter than the original, as it should; a silent clip is fine.
    """
    buffer = io.BytesIO()
    sf.write(buffer, _pcm_ready(wave), int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()
