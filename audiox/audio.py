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
#: Formats soundfile reads everywhere (libsndfile); mp3 support varies between builds.
SUPPORTED_FORMATS = (".wav", ".flac", ".ogg")
#: Peak amplitude under which a clip counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


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
    if not allow_silence:
        peaks = wave.abs().amax(dim=-1)
        if (peaks < SILENCE_PEAK).any():
            which = "" if not batched else f" (clips {torch.nonzero(peaks < SILENCE_PEAK).flatten().tolist()})"
            raise ValueError(
                f"{name} is all silent{which} (peak below {SILENCE_PEAK}); there is nothing to explain: "
                f"check the file or the gain, or pass allow_silence=True where silence is expected."
            )
    return wave


def load(path, sample_rate: int | None = SAMPLE_RATE, *, mono: bool = True) -> torch.Tensor:
    """Read a wav/flac/ogg file as float32, mixed down to mono and resampled to ``sample_rate``.

    ``sample_rate=None`` keeps the file's rate (read it with :func:`info`). Returns ``[T]``
    (or ``[C, T]`` with ``mono=False``).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"audio file {path} does not exist; check the path (relative to {Path.cwd()}).")
    if path.suffix.lower() not in SUPPORTED_FORMATS:
        raise ValueError(
            f"{path.name}: format {path.suffix or '(no extension)'} is not supported; convert it to one of "
            f"{SUPPORTED_FORMATS}, e.g. `ffmpeg -i {path.name} {path.stem}.wav`."
        )
    if path.stat().st_size == 0:
        raise ValueError(f"audio file {path} is empty (0 bytes); re-download or re-export it.")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(
            f"audio file {path} could not be decoded ({err}); it is corrupt or not really "
            f"{path.suffix}: re-download it or convert it with ffmpeg."
        ) from err
    if data.shape[0] == 0:
        raise ValueError(f"audio file {path} holds no samples; re-download or re-export it.")
    wave = torch.from_numpy(data.T.copy())  # soundfile gives [T, C]; torch audio code uses [C, T]
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None and file_rate != sample_rate:
        wave = resample(wave, file_rate, sample_rate)
    return wave


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
