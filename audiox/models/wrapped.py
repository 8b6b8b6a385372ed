"""Bring your own model: any PyTorch module that maps waves (or frames of them) to logits, as a Classifier.

Every explainer of the course reads a model through one contract (:class:`audiox.models.base.Classifier`):
the linear STFT where masks live, a differentiable path from a (masked) magnitude to the logits, and
hidden maps. :func:`wrap` gives a module that knows none of this the contract:

* ``spectrogram(wave) -> (magnitude, phase)`` ``[B, F, T]``: the wrapper's STFT (``n_fft``, ``hop_length``);
* ``spec_to_logits(magnitude, phase)``: the magnitude goes back to a wave through the inverse STFT with the
  clip's *own* phase (:func:`audiox.audio.istft_with_phase`), then into the module. A mask of ones gives the
  clip back (to 1e-5), so the module hears what it always hears; a mask hears the masked sound, the sound a
  learner plays. ``needs_phase = True`` tells the explainers to pass the phase along
  (:func:`audiox.models.base.spec_logits`);
* ``logits_and_hidden(magnitude, phase)``: the logits and the output of every layer named in ``layers``,
  read by forward hooks, each as a map ``[B, C, R, time]`` (see :meth:`WrappedModel.hidden_layout`).

**Framewise models.** With ``frame_length`` (and ``frame_hop``), the wrapper cuts each clip into frames
``[B * n, frame_length]`` (``Tensor.unfold``, no padding) and the module maps frames to logits
``[B * n, C]``, as CREPE does; a module that takes whole waves may also answer per frame, ``[B, n, C]``, as a
VAD does. Either way the **clip-level target** is one documented reduction, ``frames``: ``"mean"`` (default)
is the mean logit of each class over the frames, so the explanation is that of the clip's average decision;
an int ``k`` picks frame ``k`` (e.g. the frame where a word is); ``model.frame_logits(wave)`` gives them all.

LMAC-ZS needs a text encoder and so does not apply; every other explainer runs unchanged: the gradient maps
(GradCAM on a layer named in ``layers``), L2I (an interpreter trained on the wrapped model's hidden maps),
latent attribution through a codec (gradients reach the module's input through the decoder) and the random control.

>>> import torch, audiox
>>> class Net(torch.nn.Module):                                   # a five-line model of waves [B, T]
...     def __init__(self):
...         super().__init__()
...         self.conv, self.head = torch.nn.Conv1d(1, 8, 64, stride=16), torch.nn.Linear(8, 3)
...     def forward(self, wave):
...         return self.head(self.conv(wave[:, None]).relu().mean(-1))
>>> model = wrap(Net(), 16_000, ["siren", "bird", "rain"], layers=["conv"])
>>> waves = torch.randn(2, 16_000) * 0.1
>>> out = audiox.explainer("saliency", model).explain(waves)
>>> tuple(out.mask.shape), out.target.tolist() == model(waves).argmax(-1).tolist()
((2, 257, 126), True)
>>> [tuple(h.shape) for h in model.logits_and_hidden(*model.spectrogram(waves))[1]]   # conv's map, [B, C, 1, time]
[(2, 8, 1, 997)]
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .. import audio
from .base import SpectrogramModel, parameter_device


class WrappedModel(SpectrogramModel):
    """A wave-to-logits module as a Classifier (built by :func:`wrap`; see the module's docstring)."""

    needs_phase = True

    def __init__(self, module: Callable, sample_rate: int, classes: Sequence[str], *,
                 layers: Mapping[str, nn.Module] | Sequence[str] | None = None, frame_length: int | None = None,
                 frame_hop: int | None = None, frames: str | int = "mean", n_fft: int = audio.N_FFT,
                 hop_length: int = audio.HOP_LENGTH, min_seconds: float | None = None, name: str | None = None):
        super().__init__()
        if not callable(module):
            raise ValueError(f"module must be a torch.nn.Module (or a function of waves), got {type(module).__name__}.")
        if len(classes) < 2:
            raise ValueError(f"classes={list(classes)}; a classifier needs at least two class names.")
        if frames != "mean" and not isinstance(frames, int):
            raise ValueError(f"frames={frames!r}; use 'mean' (the mean logit over frames) or a frame index.")
        # kept as a submodule when it is one, so .to(device), .eval() and parameters() reach it
        self.module = module if isinstance(module, nn.Module) else None
        self._function = None if isinstance(module, nn.Module) else module
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.classes, self.frames = list(classes), frames
        self.frame_length = None if frame_length is None else int(frame_length)
        self.frame_hop = int(frame_hop or frame_length or 0) or None
        self.min_seconds = float(min_seconds) if min_seconds is not None else max(
            0.05, (self.frame_length or 0) / self.sample_rate)
        self.name = name or getattr(module, "name", None) or type(module).__name__
        self.layers = self._named_layers(layers)

    def _named_layers(self, layers) -> dict[str, nn.Module]:
        if layers is None:
            return {}
        if isinstance(layers, Mapping):
            bad = [k for k, v in layers.items() if not isinstance(v, nn.Module)]
            if bad:
                raise ValueError(f"layers {bad} are not torch.nn.Module objects; pass {{name: module.submodule}}.")
            return dict(layers)
        if self.module is None:
            raise ValueError("layers given by name need module to be a torch.nn.Module; pass {name: layer} instead.")
        known = dict(self.module.named_modules())
        missing = [n for n in layers if n not in known]
        if missing:
            raise ValueError(f"the module has no layers {missing}; its layers are {[n for n in known if n][:20]}.")
        return {n: known[n] for n in layers}

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) if self.module is not None else self._function(x)

    def _device(self) -> torch.device:
        return parameter_device(self.module) if self.module is not None else torch.device("cpu")

    # ---- waves -------------------------------------------------------------------------------------------

    def frame_logits(self, wave: torch.Tensor) -> torch.Tensor:
        """The module's logits for each frame, ``[B, n, C]`` (``n = 1`` for a module that answers per clip)."""
        wave = wave.to(self._device())
        if self.frame_length is not None:
            if wave.shape[-1] < self.frame_length:
                raise ValueError(f"a clip of {wave.shape[-1]} samples is shorter than one frame of {self.frame_length}; "
                                 f"pad it (audiox.audio.pad_to) to at least {self.frame_length / self.sample_rate:.3f} s.")
            frames = wave.unfold(-1, self.frame_length, self.frame_hop)  # [B, n, L], a view: no copy
            out = self._call(frames.reshape(-1, self.frame_length))
            out = out.reshape(len(wave), frames.shape[1], -1)
        else:
            out = self._call(wave)
            out = out[:, None] if out.ndim == 2 else out
        if out.ndim != 3 or out.shape[-1] != self.n_classes:
            raise ValueError(f"the module returned logits of shape {tuple(out.shape)}; expected [B, {self.n_classes}] "
                             f"(or per frame [B, frames, {self.n_classes}]) for classes {self.classes[:5]}...")
        return out

    def _reduce(self, frame_logits: torch.Tensor) -> torch.Tensor:
        if self.frames == "mean":
            return frame_logits.mean(dim=1)
        if not -frame_logits.shape[1] <= self.frames < frame_logits.shape[1]:
            raise ValueError(f"frames={self.frames}, but the clip has {frame_logits.shape[1]} frames.")
        return frame_logits[:, self.frames]

    def wave_to_logits(self, wave: torch.Tensor) -> torch.Tensor:
        """Clip-level logits ``[B, C]`` of waves ``[B, T]`` at the model's rate (the reduction ``frames``)."""
        return self._reduce(self.frame_logits(wave))

    def wave_to_logits_and_hidden(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Clip-level logits and the named layers' maps ``[B, C, R, time]`` in one pass (forward hooks)."""
        logits, outputs = self.wave_to_logits_and_outputs(wave)
        return logits, [self.hidden_layout(outputs[name], len(wave), name) for name in self.layers]

    def wave_to_logits_and_outputs(self, wave: torch.Tensor) -> tuple[torch.Tensor, dict[str, list[torch.Tensor]]]:
        """Clip-level logits and each named layer's raw outputs, one per call of the layer (for gradients with
        respect to them: the maps of :meth:`hidden_layout` are reshaped copies)."""
        seen = {name: [] for name in self.layers}

        def keep(name):
            return lambda module, inputs, output: seen[name].append(output[0] if isinstance(output, tuple) else output)

        hooks = [layer.register_forward_hook(keep(name)) for name, layer in self.layers.items()]
        try:
            logits = self.wave_to_logits(wave)
        finally:
            for hook in hooks:
                hook.remove()
        return logits, seen

    def hidden_layout(self, outputs: list[torch.Tensor], batch: int, name: str = "layer") -> torch.Tensor:
        """One layer's hook outputs as one map ``[B, C, R, time]``, channels first, time last.

        * framewise (the wrapper frames): each frame's ``[B * n, C, ...]`` -> ``[B, C, prod(...), n]``;
        * called once on whole waves: ``[B, C, T']`` -> ``[B, C, 1, T']``, ``[B, C, H, W]`` as it is
          (its last axis taken as time), ``[B, C]`` -> ``[B, C, 1, 1]``;
        * called once per chunk (a recurrent model's loop): the chunks' ``[B, C, ...]`` stacked on time.
        """
        if not outputs:
            raise ValueError(f"layer {name!r} did not run in the forward pass; name a layer the module calls.")
        if len(outputs) > 1:  # once per chunk: time is the order of the calls
            return torch.stack([o.reshape(batch, o.shape[1], -1) for o in outputs], dim=-1)
        out = outputs[0]
        if self.frame_length is not None:
            n = out.shape[0] // batch
            return out.reshape(batch, n, out.shape[1], -1).permute(0, 2, 3, 1)
        if out.ndim == 2:
            return out[:, :, None, None]
        if out.ndim == 3:
            return out[:, :, None]
        if out.ndim == 4:
            return out
        raise ValueError(f"layer {name!r} gives maps of shape {tuple(out.shape)}; name a layer with channels-first "
                         "maps [B, C], [B, C, T] or [B, C, H, T].")

    # ---- the contract --------------------------------------------------------------------------------------

    def _waves(self, magnitude: torch.Tensor, phase: torch.Tensor | None) -> torch.Tensor:
        if phase is None:
            raise ValueError(f"{self.name} hears waves: a magnitude goes back through the inverse STFT with the clip's "
                             "phase, so pass phase= (magnitude, phase = model.spectrogram(wave)).")
        if phase.shape != magnitude.shape:
            raise ValueError(f"phase {tuple(phase.shape)} and magnitude {tuple(magnitude.shape)} differ; pass the "
                             "phase of the same clips (captum copies it with additional_forward_args).")
        length = (magnitude.shape[-1] - 1) * self.hop_length
        return audio.istft_with_phase(magnitude, phase, self.n_fft, self.hop_length, length)

    def spec_to_logits(self, magnitude: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, C]`` of a (masked) magnitude ``[B, F, T]`` heard with the clip's ``phase``; differentiable."""
        return self.wave_to_logits(self._waves(magnitude, phase))

    def logits_and_hidden(self, magnitude: torch.Tensor, phase: torch.Tensor | None = None):
        """Logits and the named layers' hidden maps (:meth:`hidden_layout`) of a magnitude heard with ``phase``."""
        return self.wave_to_logits_and_hidden(self._waves(magnitude, phase))

    def forward(self, wave: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Clip-level logits ``[B, C]`` of a clip ``[T]`` or batch ``[B, T]``, validated at the edge."""
        return self.wave_to_logits(self.prepare(wave, sample_rate))

    def extra_repr(self) -> str:
        framing = f", frame_length={self.frame_length}, frame_hop={self.frame_hop}" if self.frame_length else ""
        return (f"name={self.name!r}, sample_rate={self.sample_rate}, classes={len(self.classes)}{framing}, "
                f"frames={self.frames!r}, layers={list(self.layers)}")


def wrap(module: Callable, sample_rate: int, classes: Sequence[str], **options) -> WrappedModel:
    """Any module (or function) mapping waves ``[B, T]`` (or, with ``frame_length``, frames ``[B * n, L]``) to logits,
    as a Classifier every explainer but LMAC-ZS can explain (see the module's docstring for ``options``:
    ``layers``, ``frame_length``, ``frame_hop``, ``frames``, ``n_fft``, ``hop_length``, ``min_seconds``, ``name``).

    The three lines it takes::

        model = audiox.models.wrap(my_net.eval(), 16_000, ["dog", "cat"], layers=["conv3"])
        explanation = audiox.explainer("integrated-gradients", model).explain(waves)
        explanation.listen(0)
    """
    return WrappedModel(module, sample_rate, classes, **options).eval()
