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

import itertools
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .. import audio


def prepare_waves(wave, sample_rate: int | None, model_rate: int, *, min_seconds: float = 0.25,
                  allow_silence: bool = False, device=None, name: str = "wave") -> torch.Tensor:
    """The one input path of every wave model: a clip ``[T]`` or batch ``[B, T]`` checked and returned as ``[B, T]``.

    :func:`audiox.audio.validate` (mono float32, finite, long enough, not silent unless
    ``allow_silence``) at ``sample_rate`` (default: the model's), resampled to ``model_rate``
    with a warning when it differs, then moved to ``device``.

    >>> prepare_waves(torch.ones(8000) * 0.1, None, 16_000).shape
    torch.Size([1, 8000])
    >>> prepare_waves(torch.zeros(8000), None, 16_000)
    Traceback (most recent call last):
    ...
    ValueError: wave is all silent (peak below 0.0001); there is nothing to explain: check the file or the gain, or pass allow_silence=True where silence is expected.
    """
    wave = torch.as_tensor(wave) if not isinstance(wave, torch.Tensor) else wave
    batched = wave.ndim >= 2  # the contract: [T] is one clip, [B, T] a batch of mono clips
    wave = audio.validate(wave, sample_rate or model_rate, expected_sample_rate=model_rate, resample_to_expected=True,
                          min_seconds=min_seconds, batched=batched, allow_silence=allow_silence, name=name)
    wave = wave if batched else wave[None]
    return wave if device is None else wave.to(device)


def parameter_device(module) -> torch.device:
    """Where a module's parameters (or, lacking any, its buffers) live; the CPU for a module with neither."""
    for tensors in (module.parameters(), module.buffers()):
        for t in tensors:
            return t.device
    return torch.device("cpu")


def numerics(module) -> str:
    """Where and in what precision a module computes, ``"<device type>-<dtype>"`` (``"-tf32"`` added on CUDA with
    TF32 on), for the keys of caches of what it computes: one device's embeddings are not another's, bit for bit.

    >>> numerics(torch.nn.Linear(2, 2)), numerics(torch.nn.Linear(2, 2).double())
    ('cpu-float32', 'cpu-float64')
    """
    if not isinstance(module, nn.Module):  # a Clap of another kind: nothing to read
        return type(module).__name__
    first = next(itertools.chain(module.parameters(), module.buffers()), torch.zeros(()))
    key = f"{first.device.type}-{str(first.dtype).removeprefix('torch.')}"
    return key + "-tf32" if first.device.type == "cuda" and first.dtype == torch.float32 and _tf32_on() else key


def _tf32_on() -> bool:
    try:
        return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)
    except RuntimeError:  # torch >= 2.9 refuses the legacy flags once its fp32_precision settings were used
        return "tf32" in (torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)


@contextmanager
def frozen(model):
    """Eval mode and no weight gradients while attributing; every flag restored afterwards (``None``: nothing to do).

    Eval mode for every method, not only GradCAM: BatchNorm in training mode would mix the clips of a
    batch (and captum's copies of them) into each clip's score and update its running statistics.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    training = [(m, m.training) for m in model.modules()]
    requires_grad = [(p, p.requires_grad) for p in model.parameters()]
    model.eval().requires_grad_(False)  # gradients wrt the magnitude only: no .grad, less work
    try:
        yield
    finally:
        for m, flag in training:
            m.training = flag
        for p, flag in requires_grad:
            p.requires_grad_(flag)


@runtime_checkable
class Classifier(Protocol):
    """What every explainer of the course needs of a model: the contract a classifier (or a wrapped model) keeps.

    * ``spectrogram(wave, sample_rate) -> (magnitude, phase)`` ``[B, F, T]``: the linear STFT masks live on;
    * ``spec_to_logits(magnitude) -> [B, C]``: differentiable, through the model's own front end;
    * ``logits_and_hidden(magnitude) -> (logits, [hidden maps])``: for explainers that read hidden layers
      (L2I, LMAC-ZS, GradCAM);
    * ``classes``, ``n_classes``, ``sample_rate``, ``n_fft``, ``hop_length``.

    A model that hears *waves* (a wrapped model, :func:`audiox.models.wrapped.wrap`) sets ``needs_phase = True``:
    its ``spec_to_logits(magnitude, phase)`` and ``logits_and_hidden(magnitude, phase)`` take the clip's phase
    too, to go back through the inverse STFT. Explainers call a model through :func:`spec_logits` and
    :func:`spec_logits_and_hidden`, which pass the phase to such a model only.

    :class:`~audiox.models.classifiers.CNNClassifier` and :class:`~audiox.zeroshot.ZeroShotClassifier` keep it.
    """

    classes: list[str]
    sample_rate: int
    n_fft: int
    hop_length: int

    @property
    def n_classes(self) -> int: ...

    def spectrogram(self, wave: torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def spec_to_logits(self, magnitude: torch.Tensor) -> torch.Tensor: ...

    def logits_and_hidden(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]: ...


def needs_phase(model) -> bool:
    """Whether ``model`` hears a magnitude only with its clip's phase (a wrapped wave model)."""
    return bool(getattr(model, "needs_phase", False))


def spec_logits(model, magnitude: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
    """``model.spec_to_logits`` of a (masked) magnitude ``[B, F, T]``, with ``phase`` where the model needs it.

    >>> from audiox.models.classifiers import CNNClassifier
    >>> model = CNNClassifier(["a", "b"]).eval()
    >>> magnitude, phase = model.spectrogram(torch.randn(8000) * 0.1)
    >>> bool((spec_logits(model, magnitude, phase) == model.spec_to_logits(magnitude)).all())
    True
    """
    return model.spec_to_logits(magnitude, phase) if needs_phase(model) else model.spec_to_logits(magnitude)


def spec_logits_and_hidden(model, magnitude: torch.Tensor, phase: torch.Tensor | None = None):
    """``model.logits_and_hidden`` of a magnitude, with ``phase`` where the model needs it (as :func:`spec_logits`)."""
    return model.logits_and_hidden(magnitude, phase) if needs_phase(model) else model.logits_and_hidden(magnitude)


def batched_with_phase(fn, model, magnitude: torch.Tensor, phase: torch.Tensor | None = None, batch_size: int = 32):
    """:func:`audiox.batching.batched` of ``fn(magnitude_chunk, phase_chunk)`` over many magnitudes, the phase split
    with them where ``model`` needs it (``None`` otherwise): the one batching loop of every caller that may meet a
    wave model."""
    from ..batching import batched

    if needs_phase(model):
        return batched(fn, magnitude, phase, batch_size=batch_size)
    return batched(lambda chunk: fn(chunk, None), magnitude, batch_size=batch_size)


def wave_logits(model, wave: torch.Tensor) -> torch.Tensor:
    """Logits ``[B, C]`` of waves ``[B, T]`` at the model's rate, differentiable: a wave model hears the wave itself,
    a spectrogram model its magnitude (for gradients through a codec's decoder, :mod:`audiox.latent`)."""
    if needs_phase(model):
        return model.wave_to_logits(wave)
    return model.spec_to_logits(audio.stft(wave, model.n_fft, model.hop_length).abs())


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
        return parameter_device(self)

    def prepare(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """Validate a clip ``[T]`` or batch ``[B, T]`` and move it to the model's device as ``[B, T]``
        (:func:`prepare_waves`). A clip at another sample rate is resampled (with a warning) when
        ``sample_rate`` is given."""
        return prepare_waves(wave, sample_rate, self.sample_rate, min_seconds=self.min_seconds,
                             allow_silence=self.allow_silence, device=self._device())

    def spectrogram(self, wave: torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear magnitude and phase ``[B, F, T]`` of the model's STFT (where masks are defined)."""
        return audio.magnitude_phase(self.prepare(wave, sample_rate), self.n_fft, self.hop_length)
