"""Gradient baselines for mask explanations: Saliency, Integrated Gradients, SmoothGrad and GradCAM (captum).

LMAC-ZS (like L-MAC and L2I) explains with a mask in [0, 1] on the *linear* STFT magnitude. The
classic gradient attributions are its baselines: each explains a model's logit for a target class
with respect to the same magnitude ``[B, F, T]``, in one batched pass (no loop over clips).

* **Saliency** (Simonyan et al., 2014): the gradient d logit / d magnitude; mask = its absolute value.
* **Integrated Gradients** (Sundararajan et al., 2017): the gradient averaged along the straight path
  from silence (all zeros) to the clip, times the clip. The raw map sums to logit(clip) - logit(silence)
  (*completeness*); mask = its positive part (what raises the target's logit).
* **SmoothGrad** (Smilkov et al., 2017): the gradient averaged over noisy copies of the clip; mask = |.|.
* **GradCAM** (Selvaraju et al., 2017): a conv layer's activations weighted by their mean gradient,
  summed over channels, positive part; computed on the layer's coarse grid (mel bands / 8 and frames / 8
  for the last block of a :class:`~audiox.models.classifiers.LogMelCNN`) and brought to the linear
  grid with :func:`audiox.audio.mel_to_linear`.

These maps are gradients (or gradient x input), not shares of the clip's energy: a bin's value says
how much the logit would move, not how loud the bin is, and it can be negative or far above 1, so
``attribution * magnitude`` is nothing one can meaningfully listen to. To *use* them as masks for
the faithfulness metrics (:mod:`audiox.metrics`), each map is rectified and divided per clip by its
maximum (:func:`to_mask`). That normalisation is a convention, not part of the methods; the metrics
then judge how much of what the model uses the resulting masks keep.

The forward function maps a magnitude to logits ``[B, C]``: ``classifier.spec_to_logits`` for a
closed-set classifier, :func:`zero_shot_logits` for a CLAP. Pass a module or a bound method of one, so
the baseline can run it in eval mode with frozen weights and restore both afterwards.

>>> import torch
>>> from audiox.models.clap import TinyClap
>>> _ = torch.manual_seed(0)
>>> clap = TinyClap().eval()  # random weights: shapes only
>>> forward = zero_shot_logits(clap, clap.embed_text(["a siren", "a bird chirping"]))
>>> magnitude, phase = clap.spectrogram(torch.randn(2, 8_000) * 0.1)  # two half-second clips
>>> target = forward(magnitude).argmax(dim=-1)  # explain the zero-shot prediction
>>> masks = {name: make_baseline(name, forward).attribute(magnitude, target) for name in BASELINES}
>>> list(masks), {tuple(mask.shape) for mask in masks.values()}  # one mask per clip, on the magnitude's grid
(['Saliency', 'Integrated Gradients', 'SmoothGrad', 'GradCAM'], {(2, 257, 63)})
>>> [mask.amax(dim=(1, 2)).tolist() for mask in masks.values()]  # each clip's mask peaks at 1
[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from captum import attr as captum
from torch import nn

from . import audio
from .models.classifiers import LogMelCNN

MODES = ("positive", "absolute")


class ZeroShotLogits(nn.Module):
    """``magnitude [B, F, T] -> logit_scale * cosine(audio, text) [B, C]``: a CLAP as a classifier to explain."""

    def __init__(self, clap, text_embeddings: torch.Tensor):
        super().__init__()
        self.clap = clap
        # fixed class prompts: gradients flow to the audio side only
        text = nn.functional.normalize(text_embeddings.detach().float(), dim=-1)
        self.register_buffer("text_embeddings", text, persistent=False)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        embedding = self.clap.spec_to_embedding(magnitude)
        return self.clap.logit_scale * embedding @ self.text_embeddings.to(embedding).T


def zero_shot_logits(clap, text_embeddings: torch.Tensor) -> ZeroShotLogits:
    """The forward function of zero-shot CLAP, for the baselines (text embeddings detached, L2-normalised).

    >>> from audiox.models.clap import TinyClap
    >>> clap = TinyClap().eval()
    >>> forward = zero_shot_logits(clap, clap.embed_text(["a siren", "rain", "a dog barking"]))
    >>> forward(clap.spectrogram(torch.randn(16_000) * 0.1)[0]).shape
    torch.Size([1, 3])
    """
    return ZeroShotLogits(clap, text_embeddings)


def to_mask(attribution: torch.Tensor, mode: str = "positive") -> torch.Tensor:
    """Rectify an attribution ``[B, ...]`` (``"positive"``: ReLU; ``"absolute"``: |.|) and divide each clip
    by its maximum, giving a mask in [0, 1] of the same shape; a clip with nothing left is all zeros.

    >>> to_mask(torch.tensor([[[-2.0, 1.0, 4.0]], [[0.0, -1.0, 0.0]]]))
    tensor([[[0.0000, 0.2500, 1.0000]],
    <BLANKLINE>
            [[0.0000, 0.0000, 0.0000]]])
    >>> to_mask(torch.tensor([[[-2.0, 1.0, 4.0]]]), mode="absolute")
    tensor([[[0.5000, 0.2500, 1.0000]]])
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; use one of {MODES}.")
    if attribution.ndim < 2:
        raise ValueError(f"expected attributions [B, ...], got shape {tuple(attribution.shape)}.")
    if not torch.isfinite(attribution).all():
        raise ValueError("attribution contains NaN or infinite values; check the model's logits on this input.")
    x = attribution.detach().relu() if mode == "positive" else attribution.detach().abs()
    peak = x.flatten(1).amax(dim=1).view(-1, *[1] * (x.ndim - 1))
    # a clip whose attribution is all zero (or all negative under "positive") keeps nothing, without 0 / 0
    return torch.where(peak > 0, x / torch.where(peak > 0, peak, 1.0), 0.0)


def _check_magnitude(magnitude) -> torch.Tensor:
    if not torch.is_tensor(magnitude) or magnitude.ndim != 3:
        shape = tuple(magnitude.shape) if torch.is_tensor(magnitude) else type(magnitude).__name__
        raise ValueError(f"magnitude must be a linear STFT magnitude [B, F, T], got {shape}; pass "
                         "model.spectrogram(wave)[0] (for one clip [F, T], add the batch axis: magnitude[None]).")
    if not torch.isfinite(magnitude).all():
        raise ValueError("magnitude contains NaN or infinite values; clean it first, e.g. torch.nan_to_num(magnitude).")
    if (magnitude < 0).any():
        raise ValueError("magnitude has negative values, but |STFT| >= 0; pass model.spectrogram(wave)[0], "
                         "not a log spectrogram, or clamp it with magnitude.clamp(min=0).")
    # detached: captum switches requires_grad on its input, and the caller's tensor must not change
    return magnitude.detach() if magnitude.is_floating_point() else magnitude.detach().float()


def _check_target(target, batch: int, device) -> torch.Tensor:
    target = torch.as_tensor(target, device=device)
    if target.ndim == 0:
        target = target.expand(batch)
    if target.shape != (batch,) or target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"target must be one class index per clip, [B={batch}] integers (or one int), got "
                         f"{target.dtype} {tuple(target.shape)}; e.g. target = logits.argmax(dim=-1).")
    return target.long()


def _module_of(forward) -> nn.Module | None:
    if isinstance(forward, nn.Module):
        return forward
    owner = getattr(forward, "__self__", None)  # a bound method such as classifier.spec_to_logits
    return owner if isinstance(owner, nn.Module) else None


@contextmanager
def _frozen(model: nn.Module | None):
    """Eval mode and no weight gradients while attributing; every flag restored afterwards.

    Eval mode for every method, not only GradCAM: BatchNorm in training mode would mix the clips of a
    batch (and captum's copies of them) into each clip's score and update its running statistics.
    """
    if model is None:
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


class _Baseline:
    """``raw(magnitude, target)``: the signed attribution ``[B, F, T]``; ``attribute(...)``: it as a mask."""

    mode = "absolute"

    def __init__(self, forward, mode: str | None = None):
        if not callable(forward):
            raise ValueError("forward must map a magnitude [B, F, T] to logits [B, C], e.g. model.spec_to_logits.")
        self.forward, self.model, self.mode = forward, _module_of(forward), mode or self.mode
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; use one of {MODES}.")

    def raw(self, magnitude: torch.Tensor, target) -> torch.Tensor:
        magnitude = _check_magnitude(magnitude)
        target = _check_target(target, len(magnitude), magnitude.device)
        with _frozen(self.model):
            return self._raw(magnitude, target).detach()

    def attribute(self, magnitude: torch.Tensor, target) -> torch.Tensor:
        return to_mask(self.raw(magnitude, target), self.mode)

    def _raw(self, magnitude: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Saliency(_Baseline):
    """d logit_target / d magnitude; the mask is its absolute value, normalised per clip."""

    def _raw(self, magnitude, target):
        # our own detached copy: switching its gradient on spares captum's warning
        return captum.Saliency(self.forward).attribute(magnitude.requires_grad_(), target=target, abs=False)


class IntegratedGradients(_Baseline):
    """Integrated Gradients from silence (zeros). ``batch_size`` bounds the copies per forward pass.

    The model reads log-mel, and log(alpha * mel) changes fastest near alpha = 0, so the path integrand
    peaks next to silence; Gauss-Legendre steps cluster at the ends of the path, which copes with it.
    Check completeness (``raw(...).sum((1, 2))`` against logit(clip) - logit(silence)) and raise
    ``n_steps`` if the gap matters.
    """

    mode = "positive"  # a mask keeps what speaks *for* the target; negative evidence is dropped

    def __init__(self, forward, n_steps: int = 32, batch_size: int = 64, mode: str | None = None):
        super().__init__(forward, mode)
        self.n_steps, self.batch_size = n_steps, batch_size

    def _raw(self, magnitude, target):
        return captum.IntegratedGradients(self.forward).attribute(
            magnitude, baselines=torch.zeros_like(magnitude), target=target, n_steps=self.n_steps,
            method="gausslegendre", internal_batch_size=max(self.batch_size, len(magnitude)))


class SmoothGrad(_Baseline):
    """The gradient averaged over ``n_samples`` noisy copies; ``stdev`` is relative to each clip's spread
    (max - min of its magnitude, as in Smilkov et al.), so loud and quiet clips get the same relative noise."""

    def __init__(self, forward, n_samples: int = 16, stdev: float = 0.1, batch_size: int = 64,
                 mode: str | None = None):
        super().__init__(forward, mode)
        self.n_samples, self.stdev, self.batch_size = n_samples, float(stdev), batch_size

    def _raw(self, magnitude, target):
        spread = magnitude.amax(dim=(1, 2)) - magnitude.amin(dim=(1, 2))
        spread = torch.where(spread > 0, spread, 1.0)[:, None, None]  # a constant clip: absolute noise

        # captum's noise has one stdev for the whole batch: add it to the clip divided by its spread
        # (d logit / d magnitude = d logit / d scaled / spread). The spread travels as a forward argument
        # so captum repeats it along with each clip's noisy copies. Gaussian noise can push bins below
        # zero, which no magnitude is: clamp at 0 so that every noisy copy is a spectrogram the model
        # could meet (the gradient of a clamped bin is then 0: that copy says nothing about it).
        def noisy_forward(scaled, spread):
            return self.forward((scaled * spread).clamp(min=0))

        tunnel = captum.NoiseTunnel(captum.Saliency(noisy_forward))
        grad = tunnel.attribute(
            magnitude / spread, nt_type="smoothgrad", nt_samples=self.n_samples, stdevs=self.stdev,
            nt_samples_batch_size=max(1, self.batch_size // len(magnitude)), target=target,
            additional_forward_args=(spread,), abs=False)
        return grad / spread


class GradCAM(_Baseline):
    """GradCAM of a conv ``layer`` with maps ``[B, C, bands, frames]``, lifted to the linear grid.

    ``layer`` defaults to the last block of the model's :class:`~audiox.models.classifiers.LogMelCNN`
    (``clap.audio_encoder.blocks[-1]``, ``classifier.cnn.blocks[-1]``); ``sample_rate`` and ``n_fft``
    (to place the bands) default to the model's. The map is rectified *before* lifting, as in GradCAM.
    """

    mode = "positive"

    def __init__(self, forward, layer: nn.Module | None = None, sample_rate: int | None = None,
                 n_fft: int | None = None, mode: str | None = None):
        super().__init__(forward, mode)
        modules = list(self.model.modules()) if self.model is not None else []
        if layer is None:
            cnns = [m for m in modules if isinstance(m, LogMelCNN)]
            if not cnns:
                raise ValueError("no LogMelCNN in the forward's model; pass the conv layer to explain, e.g. "
                                 "layer=model.cnn.blocks[-1].")
            layer = cnns[-1].blocks[-1]
        spec = next((m for m in modules if hasattr(m, "sample_rate") and hasattr(m, "n_fft")), None)
        self.layer = layer
        self.sample_rate = sample_rate or getattr(spec, "sample_rate", None)
        self.n_fft = n_fft or getattr(spec, "n_fft", None)
        if self.sample_rate is None or self.n_fft is None:
            raise ValueError("pass sample_rate and n_fft of the model's STFT, to place the layer's bands.")

    def layer_map(self, magnitude: torch.Tensor, target) -> torch.Tensor:
        """The signed GradCAM map on the layer's grid, ``[B, bands, frames]``."""
        magnitude = _check_magnitude(magnitude)
        target = _check_target(target, len(magnitude), magnitude.device)
        if self.n_fft // 2 + 1 != magnitude.shape[1]:
            raise ValueError(f"magnitude has {magnitude.shape[1]} bins but n_fft={self.n_fft} gives "
                             f"{self.n_fft // 2 + 1}; pass the model's n_fft.")
        with _frozen(self.model):
            cam = captum.LayerGradCam(self.forward, self.layer).attribute(magnitude, target=target)
        if cam.ndim != 4:
            raise ValueError(f"GradCAM needs a conv layer with maps [B, C, bands, frames], got {tuple(cam.shape)}.")
        return cam[:, 0].detach()  # captum sums over channels, keeping a channel axis of 1

    def _lift(self, cam: torch.Tensor, n_frames: int) -> torch.Tensor:
        return audio.mel_to_linear(cam, self.sample_rate, self.n_fft, n_frames)

    def raw(self, magnitude: torch.Tensor, target) -> torch.Tensor:
        return self._lift(self.layer_map(magnitude, target), magnitude.shape[-1])

    def attribute(self, magnitude: torch.Tensor, target) -> torch.Tensor:
        cam = self.layer_map(magnitude, target)
        cam = cam.relu() if self.mode == "positive" else cam.abs()
        return to_mask(self._lift(cam, magnitude.shape[-1]), self.mode)


#: The baselines by the names the notebooks print.
BASELINES = {"Saliency": Saliency, "Integrated Gradients": IntegratedGradients, "SmoothGrad": SmoothGrad,
             "GradCAM": GradCAM}


def make_baseline(name: str, forward, **options) -> _Baseline:
    """The baseline called ``name`` (a key of :data:`BASELINES`) for ``forward``, with its ``options``."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {list(BASELINES)}.")
    return BASELINES[name](forward, **options)
