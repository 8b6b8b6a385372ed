"""The Codec protocol: one contract for every neural audio codec the course explains in its latent space.

A codec is an autoencoder for sound. Latent attribution (seed paper 001) works through two seams only:

* ``encode(wave [B, T]) -> latent [B, C, F]``: ``C`` latent channels at ``frame_rate`` frames
  per second; the latent is what a latent classifier reads and what attributions live on;
* ``decode(latent [B, C, F]) -> wave [B, T']``: the way back to something a learner can play,
  differentiable with respect to the latent. ``T'`` is ``F`` times the codec's hop and may be a
  few samples longer than the input: :meth:`CodecBase.reconstruct` crops it back.

:class:`CodecBase` holds the shared parts (input validation at the edge, ``reconstruct``), and
:func:`reconstruction_quality` measures how well a codec gives back what it was given, which
bounds how much an explanation synthesised through its decoder can be trusted.

A codec is anything with these attributes and methods; a do-nothing one shows the contract:

>>> import torch
>>> class Identity:
...     name, sample_rate, latent_channels, frame_rate = "identity", 16_000, 1, 16_000.0
...     def encode(self, wave, sample_rate=None):
...         return torch.atleast_2d(wave)[:, None]  # [B, T] -> [B, 1, T]: one channel, a frame per sample
...     def decode(self, latent):
...         return latent[:, 0]
>>> isinstance(Identity(), Codec)
True
>>> quality = reconstruction_quality(Identity(), 0.1 * torch.randn(4, 16_000))
>>> quality["si_sdr"] > 60, round(quality["lsd"], 3)
(True, 0.0)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from .. import audio, metrics
from ..batching import batched
from .base import SpectrogramModel, prepare_waves


@runtime_checkable
class Codec(Protocol):
    name: str
    sample_rate: int
    #: C, the channels of the latent ``[B, C, F]``
    latent_channels: int
    #: latent frames per second (F for a clip of one second)
    frame_rate: float

    def encode(self, wave: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor: ...

    def decode(self, latent: torch.Tensor) -> torch.Tensor: ...


def reconstruct(codec: Codec, wave: torch.Tensor) -> torch.Tensor:
    """``decode(encode(wave))`` cut or zero-padded to the input's length: ``[B, T]`` in, ``[B, T]`` out.

    ``wave`` must already be at ``codec.sample_rate`` (the output is at that rate, so its length
    is only comparable then). A codec's decoder returns a whole number of hops, ``F * hop``
    samples, which is the input's length rounded up.

    >>> class Halve:  # keeps every other sample, repeats it back
    ...     name, sample_rate, latent_channels, frame_rate = "halve", 16_000, 1, 8_000.0
    ...     def encode(self, wave, sample_rate=None):
    ...         return wave[:, None, ::2]
    ...     def decode(self, latent):
    ...         return latent[:, 0].repeat_interleave(2, dim=-1)
    >>> reconstruct(Halve(), torch.arange(5.0)[None])
    tensor([[0., 0., 2., 2., 4.]])
    """
    wave = torch.atleast_2d(wave)
    out = codec.decode(codec.encode(wave))
    length = wave.shape[-1]
    if out.shape[-1] >= length:
        return out[..., :length]
    return F.pad(out, (0, length - out.shape[-1]))


class CodecBase(nn.Module):
    """Shared plumbing of a codec with parameters: input validation and :meth:`reconstruct`.

    Subclasses set ``name``, ``sample_rate``, ``latent_channels`` and ``frame_rate`` and
    implement ``encode`` (calling :meth:`prepare` first) and ``decode``.
    """

    name: str
    sample_rate: int
    latent_channels: int
    frame_rate: float
    #: shortest clip the codec accepts, in seconds
    min_seconds: float = 0.25
    # A codec compresses silence like any other sound, and the latent of silence is a baseline of latent
    # attribution; the explanations themselves (audiox.latent) refuse a silent clip.
    allow_silence = True

    # The one validation path of the course's models, reused as is (not inherited: a codec is not a
    # spectrogram model and has no STFT of its own). It validates a clip [T] or batch [B, T] with
    # audio.validate (mono float32, finite, long enough, not silent), resamples a clip at another rate
    # with a warning when sample_rate is given, and moves it to the codec's device as [B, T].
    prepare = SpectrogramModel.prepare
    _device = SpectrogramModel._device

    def reconstruct(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """``[B, T]``: what the codec makes of a clip ``[T]`` or batch, at the codec's rate, as long as the input."""
        return reconstruct(self, self.prepare(wave, sample_rate))


# The log-spectral distance (LSD) between a reference x and an estimate y, in dB: for each STFT frame,
# the root mean square over frequency bins of 20 log10(|X| / |Y|), both magnitudes floored at 1e-4 of the
# reference clip's largest magnitude (bins more than 80 dB below the clip's peak, as quiet as the silence
# threshold audio.SILENCE_PEAK, count as equal instead of dominating with huge ratios of noise); then the
# mean over frames, and over clips. 0 dB is a perfect match; a 1 dB error in every bin gives 1 dB.
_LSD_FLOOR = 1e-4


def log_spectral_distance(
    estimate: torch.Tensor, reference: torch.Tensor, n_fft: int = audio.N_FFT, hop_length: int = audio.HOP_LENGTH
) -> torch.Tensor:
    """Log-spectral distance in dB of each clip ``[B, T]`` (see the definition above), shape ``[B]``.

    >>> x = torch.randn(2, 16_000)
    >>> log_spectral_distance(x, x)
    tensor([0., 0.])
    >>> log_spectral_distance(x * 10 ** (1 / 20), x).round(decimals=3)  # 1 dB louder everywhere
    tensor([1., 1.])
    """
    ref = audio.stft(reference, n_fft, hop_length).abs()
    est = audio.stft(estimate, n_fft, hop_length).abs()
    floor = _LSD_FLOOR * ref.amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(ref.dtype).tiny)
    ratio_db = 20 * torch.log10(est.maximum(floor) / ref.maximum(floor))  # [B, F, T]
    return ratio_db.pow(2).mean(dim=-2).sqrt().mean(dim=-1)


@torch.no_grad()
def reconstruction_quality(
    codec: Codec,
    waves: torch.Tensor,
    batch_size: int = 32,
    sample_rate: int | None = None,
    n_fft: int = audio.N_FFT,
    hop_length: int = audio.HOP_LENGTH,
) -> dict[str, float]:
    """How faithfully ``codec`` reconstructs ``waves`` ``[N, T]``: mean SI-SDR and mean log-spectral distance.

    Returns ``{"si_sdr": dB (higher is better), "lsd": dB (0 is perfect), "clips": N}``. SI-SDR
    (:func:`audiox.metrics.si_sdr`) judges the waveform, phase included; LSD
    (:func:`log_spectral_distance`) judges only the magnitude spectrum, which is what a
    listener mostly hears. Clips are validated and, when ``sample_rate`` is given and differs
    from the codec's, resampled (with a warning); they are run in batches of ``batch_size``.
    """
    waves = prepare_waves(torch.atleast_2d(torch.as_tensor(waves)), sample_rate, codec.sample_rate, min_seconds=0.1,
                          name="waves")
    def scores(batch):
        estimate = reconstruct(codec, batch).float().to(batch.device)
        return metrics.si_sdr(estimate, batch), log_spectral_distance(estimate, batch, n_fft, hop_length)

    si_sdr, lsd = batched(scores, waves, batch_size=batch_size)
    return {"si_sdr": float(si_sdr.mean()), "lsd": float(lsd.mean()), "clips": int(waves.shape[0])}


# ---------------------------------------------------------------------------------------------
# tiny-codec: the offline profile's codec, small enough to train on CPU in minutes
# ---------------------------------------------------------------------------------------------

#: Magnitude compression of the STFT the codec reads and writes: |X|^0.3 with the phase kept, as in
#: speech enhancement, so quiet bins are not drowned by loud ones in the losses.
_COMPRESSION = 0.3


def _compress(spec: torch.Tensor) -> torch.Tensor:
    magnitude = spec.abs() + 1e-6
    return spec / magnitude * magnitude**_COMPRESSION


def _expand(spec: torch.Tensor) -> torch.Tensor:
    magnitude = spec.abs() + 1e-9
    return spec / magnitude * magnitude ** (1 / _COMPRESSION)


class TinyCodec(CodecBase):
    """The offline codec: an autoencoder on the compressed complex STFT, latent ``[B, C, F]`` at 125 frames/s.

    The encoder reads each frame's compressed complex spectrum (real and imaginary parts, 2 x 257
    values) with a little temporal context (1-D convolutions over frames) and writes ``C`` latent
    channels; the decoder mirrors it and the inverse STFT makes the wave. Working on the STFT
    rather than the raw wave (as EnCodec does) lets the transform do the heavy lifting, which is
    what makes training on a CPU in minutes possible. No quantiser: the latent is continuous, like
    EnCodec's de-quantised latent that the seed paper attributes on.

    Built by ``python -m audiox.models.recipes train tiny-codec``; load it with ``zoo.load("tiny-codec")``.

    >>> codec = TinyCodec()  # random weights: shapes only
    >>> latent = codec.encode(torch.randn(2, 16_000) * 0.1)
    >>> tuple(latent.shape), codec.frame_rate, tuple(codec.decode(latent).shape)
    ((2, 64, 126), 125.0, (2, 16000))
    """

    name = "tiny-codec"
    sample_rate = audio.SAMPLE_RATE

    def __init__(self, latent_channels: int = 64, width: int = 384, n_fft: int = 512, hop_length: int = 128):
        super().__init__()
        self.config = {"latent_channels": latent_channels, "width": width, "n_fft": n_fft, "hop_length": hop_length}
        self.latent_channels, self.n_fft, self.hop_length = latent_channels, n_fft, hop_length
        self.frame_rate = self.sample_rate / hop_length
        bins = 2 * (n_fft // 2 + 1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.encoder = nn.Sequential(
            nn.Conv1d(bins, width, 3, padding=1), nn.GELU(), nn.Conv1d(width, width, 3, padding=1), nn.GELU(),
            nn.Conv1d(width, latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv1d(latent_channels, width, 3, padding=1), nn.GELU(), nn.Conv1d(width, width, 3, padding=1),
            nn.GELU(), nn.Conv1d(width, bins, 1),
        )

    def encode(self, wave: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        spec = _compress(audio.stft(self.prepare(wave, sample_rate), self.n_fft, self.hop_length))
        return self.encoder(torch.cat([spec.real, spec.imag], dim=1))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.latent_channels:
            raise ValueError(f"latent must be [B, {self.latent_channels}, frames], got {tuple(latent.shape)}.")
        out = self.decoder(latent)
        half = out.shape[1] // 2
        spec = _expand(torch.complex(out[:, :half], out[:, half:]))
        length = (latent.shape[-1] - 1) * self.hop_length
        return torch.istft(spec, self.n_fft, self.hop_length, window=self.window, length=length)


def codec_loss(wave: torch.Tensor, estimate: torch.Tensor, hop_length: int = 128) -> torch.Tensor:
    """Reconstruction loss of a codec: multi-resolution STFT (log magnitude L1 + spectral convergence at
    256, 512 and 1024 points) plus 20 x L1 on the compressed complex STFT, which is what teaches the
    phase (magnitude losses alone let the wave drift: a fine spectrum, a poor SI-SDR)."""
    loss = 0.0
    for n_fft in (256, 512, 1024):
        ref, est = audio.stft(wave, n_fft, n_fft // 4).abs(), audio.stft(estimate, n_fft, n_fft // 4).abs()
        loss = loss + F.l1_loss(torch.log(est + 1e-5), torch.log(ref + 1e-5)) + (ref - est).norm() / ref.norm()
    ref_c, est_c = _compress(audio.stft(wave, 512, hop_length)), _compress(audio.stft(estimate, 512, hop_length))
    return loss + 20 * F.l1_loss(torch.view_as_real(est_c), torch.view_as_real(ref_c))
