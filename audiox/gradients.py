"""Gradient maps as explainers: Saliency, Integrated Gradients, SmoothGrad and GradCAM, through captum.

The classic explanations of a classifier's decision, and the baselines LMAC-ZS is compared with
(Paissan et al., 2024). Each is an :class:`~audiox.explain.Explainer` built around a Classifier
(a closed-set classifier or a :class:`~audiox.zeroshot.ZeroShotClassifier`); its ``scores`` are the
signed attribution over the clip's linear STFT magnitude ``[B, F, T]``:

* **Saliency**: ``d logit_c / d magnitude``;
* **Integrated Gradients**: the path integral of that gradient from silence (zeros) to the clip,
  times the clip (``n_steps`` Gauss-Legendre points);
* **SmoothGrad**: the gradient averaged over ``n_samples`` noisy copies of the clip;
* **GradCAM**: channel-weighted activations of a conv layer (by default the last block of the
  model's :class:`~audiox.models.classifiers.LogMelCNN`), on that layer's grid (mel bands / 8 and
  frames / 8 for the last block), brought to the linear grid with :func:`audiox.audio.mel_to_linear`.

These maps are gradients (or gradient x input), not shares of the clip's energy: a bin's value says
how much the logit would move, not how loud the bin is, and it can be negative or far above 1, so
``attribution * magnitude`` is nothing one can meaningfully listen to. To *use* them as masks (and
listen to them), each map is rectified and divided per clip by its maximum (:func:`to_mask`). That
normalisation is a convention, not part of the methods: it makes masks that keep very little
(a mask mean near 0.01), which is why notebook 06 also compares every method at matched size
(:meth:`audiox.explain.Explanation.at_size`).

>>> import torch
>>> from audiox.models.clap import TinyClap
>>> from audiox.zeroshot import ZeroShotClassifier
>>> _ = torch.manual_seed(0)
>>> model = ZeroShotClassifier(TinyClap().eval(), ["siren", "bird chirping"])  # random weights: shapes only
>>> waves = torch.randn(2, 8_000) * 0.1                                         # two half-second clips
>>> out = {name: GRADIENT_MAPS[name](model).explain(waves) for name in GRADIENT_MAPS}
>>> {tuple(e.mask.shape) for e in out.values()}                                 # one mask per clip, on the STFT grid
{(2, 257, 63)}
>>> [e.mask.amax(dim=(1, 2)).tolist() for e in out.values()]                     # each clip's mask peaks at 1
[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

import torch
from captum import attr as captum
from torch import nn

from . import audio
from .explain import Explainer, resolve_target
from .models.base import frozen, needs_phase, spec_logits
from .models.classifiers import LogMelCNN

MODES = ("positive", "absolute")


class NoiseTunnel(captum.NoiseTunnel):
    """captum's NoiseTunnel with its Gaussian noise drawn on the CPU (torch's global CPU generator) and then
    moved to the input's device, so a seeded SmoothGrad or GradientShap adds the same noise on a GPU as on a
    CPU (captum draws with ``torch.normal`` on the input's device, from that device's generator). On a CPU
    nothing changes, bit for bit: the same draw from the same generator. captum has no hook for the noise,
    so this overrides the one private step that draws it (``_add_noise_to_input``, as of captum 0.9);
    tests/test_gradients.py checks it against captum's own on a CPU, and tests/test_fake_cuda.py that
    nothing is drawn on a (fake) GPU.
    """

    @staticmethod
    def _add_noise_to_input(input: torch.Tensor, stdev: float, nt_samples_partition: int) -> torch.Tensor:
        size = (input.shape[0] * nt_samples_partition,) + tuple(input.shape[1:])
        noise = torch.normal(0, torch.tensor(stdev).repeat(size)).to(input.device)
        return input.repeat_interleave(nt_samples_partition, dim=0) + noise


def gradient_shap(forward, inputs: torch.Tensor, baselines: torch.Tensor, target, n_samples: int = 5,
                  stdevs: float = 0.0) -> torch.Tensor:
    """captum's GradientShap (``GradientShap(forward).attribute(inputs, baselines, ...)``) with its noise drawn on
    the CPU: the same :class:`NoiseTunnel` over ``InputBaselineXGradient`` that its ``attribute`` runs, with ours."""
    from captum.attr._core.gradient_shap import InputBaselineXGradient

    tunnel = NoiseTunnel(InputBaselineXGradient(forward, multiply_by_inputs=True))
    return tunnel.attribute(inputs, nt_type="smoothgrad", nt_samples=n_samples, stdevs=stdevs,
                            draw_baseline_from_distrib=True, baselines=baselines, target=target)


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


class GradientMap(Explainer):
    """The shared part of the gradient explainers: the model's ``spec_to_logits`` is the function explained, in
    eval mode with frozen weights (:func:`~audiox.models.base.frozen`); ``attribute(magnitude, target)`` is the signed map, the
    mask its rectified, max-normalised version (:func:`to_mask` with ``mode``)."""

    mode = "absolute"

    def __init__(self, model, mode: str | None = None):
        super().__init__(model)
        if not callable(getattr(model, "spec_to_logits", None)):
            raise ValueError("the model must map a magnitude [B, F, T] to logits [B, C] with spec_to_logits, as every "
                             "Classifier does (wrap a CLAP with audiox.zeroshot.ZeroShotClassifier).")
        self.mode = mode or self.mode
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r}; use one of {MODES}.")

    def forward(self, magnitude: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        """The function explained: the model's logits of a magnitude (heard with ``phase`` by a wave model)."""
        return spec_logits(self.model, magnitude, phase)

    def _extra(self, phase: torch.Tensor | None) -> tuple:
        # the phase travels as a forward argument, so captum copies it along with each clip's scaled or
        # noisy copies (repeated for IG's steps, interleaved for NoiseTunnel's samples); None for other models
        return (phase.detach(),) if phase is not None and needs_phase(self.model) else ()

    def attribute(self, magnitude: torch.Tensor, target=None, phase: torch.Tensor | None = None) -> torch.Tensor:
        """The signed attribution ``[B, F, T]`` of class ``target`` (per clip, or one for all; default: the
        prediction) to each bin of ``magnitude`` (``phase``: the clips' phase, for a model that hears waves)."""
        magnitude = _check_magnitude(magnitude)
        target = resolve_target(self.model, magnitude, target, phase)
        with frozen(self.model):
            return self._raw(magnitude, target, self._extra(phase)).detach()

    def masks(self, magnitude, target, phase=None):
        raw = self.attribute(magnitude, target, phase)
        return to_mask(raw, self.mode), raw, {}

    def _raw(self, magnitude: torch.Tensor, target: torch.Tensor, extra: tuple) -> torch.Tensor:
        raise NotImplementedError


class Saliency(GradientMap):
    """d logit_target / d magnitude; the mask is its absolute value, normalised per clip."""

    method = "Saliency"

    def _raw(self, magnitude, target, extra):
        # our own detached copy: switching its gradient on spares captum's warning
        return captum.Saliency(self.forward).attribute(magnitude.requires_grad_(), target=target, abs=False,
                                                      additional_forward_args=extra or None)


class IntegratedGradients(GradientMap):
    """Integrated Gradients from silence (zeros). ``batch_size`` bounds the copies per forward pass.

    The model reads log-mel, and log(alpha * mel) changes fastest near alpha = 0, so the path integrand
    peaks next to silence; Gauss-Legendre steps cluster at the ends of the path, which copes with it.
    Check completeness (``raw(...).sum((1, 2))`` against logit(clip) - logit(silence)) and raise
    ``n_steps`` if the gap matters.
    """

    method = "Integrated Gradients"
    mode = "positive"  # a mask keeps what speaks *for* the target; negative evidence is dropped

    def __init__(self, model, n_steps: int = 32, batch_size: int = 64, mode: str | None = None):
        super().__init__(model, mode)
        self.n_steps, self.batch_size = n_steps, batch_size

    def _raw(self, magnitude, target, extra):
        return captum.IntegratedGradients(self.forward).attribute(
            magnitude, baselines=torch.zeros_like(magnitude), target=target, n_steps=self.n_steps,
            method="gausslegendre", internal_batch_size=max(self.batch_size, len(magnitude)),
            additional_forward_args=extra or None)


class SmoothGrad(GradientMap):
    """The gradient averaged over ``n_samples`` noisy copies; ``stdev`` is relative to each clip's spread
    (max - min of its magnitude, as in Smilkov et al.), so loud and quiet clips get the same relative noise."""

    method = "SmoothGrad"

    def __init__(self, model, n_samples: int = 16, stdev: float = 0.1, batch_size: int = 64,
                 mode: str | None = None, seed: int = 0):
        super().__init__(model, mode)
        self.seed = seed
        self.n_samples, self.stdev, self.batch_size = n_samples, float(stdev), batch_size

    def _raw(self, magnitude, target, extra):
        # the noise comes from torch's global CPU generator (NoiseTunnel, also for a magnitude on a GPU): seeded
        # here, the caller's state given back
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._smoothed(magnitude, target, extra)

    def _smoothed(self, magnitude, target, extra):
        spread = magnitude.amax(dim=(1, 2)) - magnitude.amin(dim=(1, 2))
        spread = torch.where(spread > 0, spread, 1.0)[:, None, None]  # a constant clip: absolute noise

        # captum's noise has one stdev for the whole batch: add it to the clip divided by its spread
        # (d logit / d magnitude = d logit / d scaled / spread). The spread travels as a forward argument
        # so captum repeats it along with each clip's noisy copies. Gaussian noise can push bins below
        # zero, which no magnitude is: clamp at 0 so that every noisy copy is a spectrogram the model
        # could meet (the gradient of a clamped bin is then 0: that copy says nothing about it).
        def noisy_forward(scaled, spread, *phase):
            return self.forward((scaled * spread).clamp(min=0), *phase)

        tunnel = NoiseTunnel(captum.Saliency(noisy_forward))
        grad = tunnel.attribute(
            magnitude / spread, nt_type="smoothgrad", nt_samples=self.n_samples, stdevs=self.stdev,
            nt_samples_batch_size=max(1, self.batch_size // len(magnitude)), target=target,
            additional_forward_args=(spread, *extra), abs=False)
        return grad / spread


class GradCAM(GradientMap):
    """GradCAM of a conv ``layer`` with maps ``[B, C, bands, frames]``, lifted to the linear grid.

    ``layer`` defaults to the last block of the model's :class:`~audiox.models.classifiers.LogMelCNN`
    (``clap.audio_encoder.blocks[-1]``, ``classifier.cnn.blocks[-1]``); pass another conv layer of any
    model (``layer=model.net[3]``). The layer's bands are placed on the model's STFT with its
    ``sample_rate`` and ``n_fft``. The map is rectified *before* lifting, as in GradCAM.

    On a wrapped model (:func:`audiox.models.wrapped.wrap`), ``layer`` is the name of one of its ``layers``
    (default: the last). Its maps ``[B, C, R, time]`` have no frequency axis the wrapper could know (a
    framewise model's ``R`` is time *within* a frame), so GradCAM there is a map of *when* only: rectified, averaged
    over ``R``, spread evenly over the clip's frames, the same in every frequency bin.
    """

    method = "GradCAM"
    mode = "positive"

    def __init__(self, model, layer: nn.Module | str | None = None, mode: str | None = None):
        super().__init__(model, mode)
        self.wrapped = needs_phase(model)
        if self.wrapped:
            names = list(model.layers)
            if not names:
                raise ValueError("GradCAM reads a hidden layer: wrap the model with layers=[...] naming one.")
            layer = names[-1] if layer is None else layer
            if layer not in names:
                raise ValueError(f"layer={layer!r} is not one of the wrapped model's layers {names}.")
        elif layer is None:
            cnns = [m for m in model.modules() if isinstance(m, LogMelCNN)] if isinstance(model, nn.Module) else []
            if not cnns:
                raise ValueError("no LogMelCNN in the model; pass the conv layer to explain, e.g. "
                                 "layer=model.cnn.blocks[-1].")
            layer = cnns[-1].blocks[-1]
        self.layer = layer

    def on(self, model) -> "GradCAM":
        """GradCAM of the same layer (by name) in another model, e.g. a randomised copy."""
        other = super().on(model)
        if not self.wrapped:
            names = {m: n for n, m in self.model.named_modules()}
            other.layer = model.get_submodule(names[self.layer])
        return other

    def layer_map(self, magnitude: torch.Tensor, target=None, phase: torch.Tensor | None = None) -> torch.Tensor:
        """The signed GradCAM map on the layer's grid, ``[B, bands, frames]``."""
        magnitude = _check_magnitude(magnitude)
        target = resolve_target(self.model, magnitude, target, phase)
        with frozen(self.model):
            if self.wrapped:
                return self._wrapped_map(magnitude, target, phase)
            cam = captum.LayerGradCam(self.forward, self.layer).attribute(magnitude, target=target)
        if cam.ndim != 4:
            raise ValueError(f"GradCAM needs a conv layer with maps [B, C, bands, frames], got {tuple(cam.shape)}.")
        return cam[:, 0].detach()  # captum sums over channels, keeping a channel axis of 1

    def _wrapped_map(self, magnitude, target, phase) -> torch.Tensor:
        # by hand, not captum's LayerGradCam: a framewise module's layer runs on [B * frames, ...], not on the
        # batch captum attributes, and the wrapper's hooks already give each map as [B, C, R, time]
        model = self.model
        magnitude = magnitude.requires_grad_()
        logits, outputs = model.wave_to_logits_and_outputs(model._waves(magnitude, phase))
        raw = outputs[self.layer]
        grads = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), raw)
        maps, grads = (model.hidden_layout(list(x), len(magnitude), self.layer) for x in (raw, grads))
        return (grads.mean(dim=(2, 3), keepdim=True) * maps).sum(dim=1).detach()  # [B, R, time]

    def _lift(self, cam: torch.Tensor, n_frames: int) -> torch.Tensor:
        if self.wrapped:  # no frequency axis: one band, the same value in every linear bin
            cam = cam.mean(dim=1, keepdim=True)
        return audio.mel_to_linear(cam, self.model.sample_rate, self.model.n_fft, n_frames)

    def attribute(self, magnitude: torch.Tensor, target=None, phase: torch.Tensor | None = None) -> torch.Tensor:
        return self._lift(self.layer_map(magnitude, target, phase), magnitude.shape[-1])

    def masks(self, magnitude, target, phase=None):
        cam = self.layer_map(magnitude, target, phase)
        rectified = cam.relu() if self.mode == "positive" else cam.abs()
        n_frames = magnitude.shape[-1]
        return to_mask(self._lift(rectified, n_frames), self.mode), self._lift(cam, n_frames), {}


#: The gradient explainers by the names the notebooks print.
GRADIENT_MAPS = {"Saliency": Saliency, "Integrated Gradients": IntegratedGradients, "SmoothGrad": SmoothGrad,
                 "GradCAM": GradCAM}
