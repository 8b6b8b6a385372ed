"""What every wave-in model of the course shares: validation at the edge and the linear STFT masks live on.

Explanations are masks over the *linear* STFT magnitude, so each model (CLAP or classifier)
exposes ``spectrogram(wave) -> (magnitude, phase)`` and then a differentiable path from that
magnitude through its own front end. :class:`SpectrogramModel` holds the first half once.

>>> import torch
>>> class Identity(SpectrogramModel):
...     sample_rate, n_fft, hop_length = 16_000, 512, 128
...     def __init__(self):
...         super().__init__()
...         self.scale = torch.nn.Parameter(torch.ones(()))
>>> magnitude, phase = Identity().spectrogram(torch.randn(16_000) * 0.1)
>>> tuple(magnitude.shape), tuple(phase.shape)
((1, 257, 126), (1, 257, 126))
"""

from __future__ import annotations

import torch
from torch import nn

from .. import audio


class SpectrogramModel(nn.Module):
    """Input validation, resampling and the model's linear STFT, for a model with parameters.

    Subclasses set ``sample_rate``, ``n_fft`` and ``hop_length`` (class or instance attributes).
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    #: shortest clip the model accepts, in seconds
    min_seconds: float = 0.25
    #: whether an all-silent clip is accepted (a codec can encode silence; there is nothing to explain in it)
    allow_silence: bool = False

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """Validate a clip ``[T]`` or batch ``[B, T]`` and move it to the model's device as ``[B, T]``.

        A clip at another sample rate is resampled (with a warning) when ``sample_rate`` is given.
        """
        wave = torch.as_tensor(wave) if not isinstance(wave, torch.Tensor) else wave
        batched = wave.ndim >= 2  # the contract: [T] is one clip, [B, T] a batch of mono clips
        wave = audio.validate(
            wave,
            sample_rate or self.sample_rate,
            expected_sample_rate=self.sample_rate,
            resample_to_expected=True,
            min_seconds=self.min_seconds,
            batched=batched,
            allow_silence=self.allow_silence,
        )
        return (wave if batched else wave[None]).to(self._device())

    def spectrogram(self, wave: torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear magnitude and phase ``[B, F, T]`` of the model's STFT (where masks are defined)."""
        return audio.magnitude_phase(self.prepare(wave, sample_rate), self.n_fft, self.hop_length)
