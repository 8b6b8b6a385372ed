"""One contract for every explanation method of the course, as captum has one for attributions.

Every method is an **explainer**: an object built around the model it explains, with one verb,

    explanation = explainer.explain(waves, target=None, sample_rate=None)

and one result type, :class:`Explanation`, whatever the method:

* ``wave`` ``[B, T]``: the listenable explanation, and ``residual`` ``[B, T]``: what it leaves out;
* ``mask`` ``[B, F, T]`` in [0, 1] over the model's linear STFT: what the explanation keeps of
  each time-frequency bin (for a method that synthesises its explanation, the effective mask of
  :func:`audiox.audio.effective_mask`), so every method can be measured the same way;
* ``scores``: the method's raw attributions (a gradient map, NMF relevances, latent attributions);
* ``target`` ``[B]``: the class explained (default: the model's prediction), ``method``: its name;
* ``.listen(i)``: players for clip, explanation and residual; ``.plot(i)``: the mask over the
  spectrogram; ``.at_size(q)``: the same explanation cut to its top ``q`` of bins, for comparisons
  at matched size.

The model is a Classifier (:class:`audiox.models.base.Classifier`): a closed-set classifier such
as ``synth-cnn``, or a zero-shot CLAP over class prompts (:class:`audiox.zeroshot.ZeroShotClassifier`).
The registry is data: :func:`explainers` lists the methods by name, :func:`explainer` builds one;
method modules are imported only when a method is built.

The concept method (seed 000) explains an *embedding*, not a decision: it keeps SpLiCE's shape,
``decompose`` / ``recompose`` / ``intervene`` (:class:`audiox.concepts.SpLiCE`), and returns
concept weights. It is in the registry too, marked by its verb.

>>> import torch, audiox
>>> from audiox.models.classifiers import CNNClassifier
>>> model = CNNClassifier(["siren", "bird"]).eval()             # random weights: shapes only
>>> waves = torch.randn(2, 16_000) * 0.1
>>> out = audiox.explainer("saliency", model).explain(waves)
>>> out.method, tuple(out.mask.shape), tuple(out.wave.shape), out.target.tolist() == model(waves).argmax(-1).tolist()
('Saliency', (2, 257, 126), (2, 16000), True)
>>> small = out.at_size(0.1)                                    # its top 10% of bins, kept whole
>>> round(float(small.mask.mean()), 2)
0.1
>>> sorted(audiox.explainers())[:3]
['concepts', 'gradcam', 'integrated-gradients']
"""

from __future__ import annotations

import copy
import difflib
import importlib
from dataclasses import dataclass, field, fields, replace

import torch

from . import audio
from .models.base import batched_with_phase, spec_logits

#: The methods by name: where the class lives, what it explains, what it needs. Data, not imports.
EXPLAINERS = {
    "lmac-zs": {"class": "audiox.lmac:LMACZS", "verb": "explain",
                "what": "LMAC-ZS: a decoder's mask for any text prompt of a zero-shot CLAP (seed 002)"},
    "l2i": {"class": "audiox.l2i:L2I", "verb": "explain",
            "what": "L2I: the relevant NMF components an interpreter reads off the model's hidden maps (seed 003)"},
    "latent": {"class": "audiox.latent:LatentAttribution", "verb": "explain",
               "what": "attribution in a codec's latent, the top entries decoded to sound (seed 001)"},
    "saliency": {"class": "audiox.gradients:Saliency", "verb": "explain",
                 "what": "|d logit / d magnitude|, max-normalised"},
    "integrated-gradients": {"class": "audiox.gradients:IntegratedGradients", "verb": "explain",
                             "what": "Integrated Gradients from silence, positive part, max-normalised"},
    "smoothgrad": {"class": "audiox.gradients:SmoothGrad", "verb": "explain",
                   "what": "the gradient averaged over noisy copies, |.|, max-normalised"},
    "gradcam": {"class": "audiox.gradients:GradCAM", "verb": "explain",
                "what": "GradCAM of the last conv block, lifted to the linear STFT"},
    "random": {"class": "audiox.explain:RandomMask", "verb": "explain",
               "what": "the control: random bins among the active ones of the clip"},
    "concepts": {"class": "audiox.concepts:SpLiCE", "verb": "decompose",
                 "what": "concept weights of the clip's CLAP embedding over a word dictionary (seed 000)"},
}


def explainers() -> dict[str, str]:
    """The explanation methods by registry name, with one line on each.

    >>> explainers()["random"]
    'the control: random bins among the active ones of the clip'
    """
    return {name: entry["what"] for name, entry in EXPLAINERS.items()}


def _resolve(path: str):
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def explainer(name: str, model, **options):
    """Build the explainer called ``name`` (a key of :func:`explainers`) around ``model``, with its ``options``.

    >>> explainer("lime", None)
    Traceback (most recent call last):
    ...
    ValueError: unknown explainer 'lime'; known: ['lmac-zs', 'l2i', 'latent', 'saliency', 'integrated-gradients', 'smoothgrad', 'gradcam', 'random', 'concepts'].
    """
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in EXPLAINERS:
        raise ValueError(f"unknown explainer {name!r}; known: {list(EXPLAINERS)}.")
    return _resolve(EXPLAINERS[key]["class"])(model, **options)


# ---------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------

@dataclass
class Explanation:
    """What every explainer returns for a batch of ``B`` clips (see the module's docstring).

    ``clip`` ``[B, T]`` is the input as the model heard it (at the model's rate), ``magnitude`` and
    ``phase`` ``[B, F, T]`` its STFT; ``classes`` names the targets; ``info`` holds what a method
    adds (LMAC-ZS: ``prompt``, ``cosine``; L2I: ``components``, ``activations``; latent: ``ratio``).
    """

    method: str
    target: torch.Tensor
    mask: torch.Tensor
    wave: torch.Tensor
    residual: torch.Tensor
    scores: torch.Tensor
    clip: torch.Tensor
    magnitude: torch.Tensor
    phase: torch.Tensor
    sample_rate: int
    n_fft: int = audio.N_FFT
    hop_length: int = audio.HOP_LENGTH
    classes: list | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, index) -> "Explanation":
        """The explanation of a subset of clips (an int, a slice or an index tensor)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        batch = len(self)

        def pick(x):
            # an index tensor goes where the indexed tensor is: a CPU tensor cannot be indexed on a GPU
            if torch.is_tensor(x) and x.ndim >= 1 and len(x) == batch:
                return x[index.to(x.device) if torch.is_tensor(index) else index]
            if isinstance(x, list) and len(x) == batch and x is not self.classes:
                return [x[i] for i in torch.arange(batch)[index.cpu() if torch.is_tensor(index) else index].tolist()]
            return x

        values = {f.name: pick(getattr(self, f.name)) for f in fields(self) if f.name not in ("info", "classes")}
        return type(self)(**values, classes=self.classes, info={k: pick(v) for k, v in self.info.items()})

    @property
    def target_names(self) -> list[str]:
        """The explained class of each clip by name (indices when the classes are unknown)."""
        if self.info.get("prompt") is not None:
            return list(self.info["prompt"])
        return [self.classes[t] if self.classes else str(t) for t in self.target.tolist()]

    def listen(self, i: int = 0):
        """Players for clip ``i``: the clip, the explanation and the residual (what it leaves out)."""
        from .widgets import player_row

        return player_row({"clip": self.clip[i], f"explanation ({self.method})": self.wave[i],
                           "residual": self.residual[i]}, self.sample_rate)

    def plot(self, i: int = 0, ax=None, title: str | None = None):
        """The mask of clip ``i`` over its spectrogram, with a colour bar; returns the axes."""
        from . import plot

        ax = plot.mask_overlay(self.magnitude[i], self.mask[i], self.sample_rate, ax=ax,
                               n_fft=self.n_fft, hop_length=self.hop_length, colorbar=True,
                               title=title if title is not None else f"{self.method}: '{self.target_names[i]}'")
        return ax

    def ranking(self, seed: int = 0) -> torch.Tensor:
        """Each clip's bins from most to least kept, ``[B, F * T]`` indices into the flattened grid.

        By mask value; ties (a rectified gradient map is 0 on most bins) are broken by the raw
        ``scores`` where they lie on the same grid, else at random from ``seed``: a method's
        ties carry no preference, so no tie-break may favour loud bins.
        """
        mask = self.mask.flatten(1)
        if self.scores.shape == self.mask.shape:
            tie = self.scores.flatten(1).to(mask.device, mask.dtype)
        else:
            tie = torch.rand(mask.shape, generator=torch.Generator().manual_seed(seed)).to(mask.device)
        order = tie.argsort(dim=1, descending=True)
        by_mask = mask.gather(1, order).argsort(dim=1, descending=True, stable=True)
        return order.gather(1, by_mask)

    def at_size(self, fraction: float, by: str = "bins", seed: int = 0) -> "Explanation":
        """The same explanation cut to a matched size: its top ``fraction`` of time-frequency bins kept whole.

        ``by="bins"``: each clip keeps ``round(fraction * F * T)`` bins, those its mask ranks
        highest (:meth:`ranking`); ``by="energy"``: it keeps its highest-ranked bins until they
        hold ``fraction`` of the clip's energy. The mask becomes binary and the sound is recomputed
        (:func:`audiox.audio.listenable`). Comparing methods at one size is what keeps a
        faithfulness score from measuring mask size instead of mask quality.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction={fraction} must lie in [0, 1] (0.1 keeps each clip's top 10% of bins).")
        if by not in ("bins", "energy"):
            raise ValueError(f"by={by!r}; use 'bins' (a share of the bins) or 'energy' (a share of the energy).")
        order = self.ranking(seed)
        flat = self.magnitude.flatten(1)
        if by == "bins":
            keep = torch.zeros_like(flat, dtype=torch.bool)
            k = int(round(fraction * flat.shape[1]))
            keep.scatter_(1, order[:, :k], True)
        else:
            energy = flat.square().gather(1, order)
            total = energy.sum(1, keepdim=True).clamp_min(torch.finfo(energy.dtype).tiny)
            # a bin is kept while the bins ranked above it hold less than the share of the energy
            keep_sorted = (energy.cumsum(1) - energy) / total < fraction
            keep = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, keep_sorted)
        mask = keep.view_as(self.mask).to(self.mask.dtype)
        wave, residual = audio.listenable(self.magnitude, self.phase, mask, self.n_fft, self.hop_length,
                                          self.clip.shape[-1])
        return replace(self, method=self.method, mask=mask, wave=wave, residual=residual,
                       info={**self.info, "size": (by, fraction)})


# ---------------------------------------------------------------------------------------------
# the explainer
# ---------------------------------------------------------------------------------------------

def _class_index(classes, name: str) -> int:
    if classes is None or name not in classes:
        close = difflib.get_close_matches(name, list(classes or []), n=3, cutoff=0.5)
        raise ValueError(f"target {name!r} is not one of the model's classes {list(classes or [])}"
                         f"{f' (did you mean {close}?)' if close else ''}; pass a class name or index.")
    return list(classes).index(name)


def resolve_target(model, magnitude: torch.Tensor, target=None, phase: torch.Tensor | None = None) -> torch.Tensor:
    """The class to explain per clip, ``[B]``: ``None`` gives the model's prediction; an int, a class name, a list of
    either, or a tensor ``[B]`` is checked against the model's classes. ``phase``: the clips' phase, for a model
    that hears waves (:func:`audiox.models.base.spec_logits`).

    >>> from audiox.models.classifiers import CNNClassifier
    >>> model = CNNClassifier(["siren", "bird"]).eval()
    >>> magnitude = model.spectrogram(torch.randn(3, 8000) * 0.1)[0]
    >>> resolve_target(model, magnitude, "bird").tolist(), resolve_target(model, magnitude, [0, 1, 0]).tolist()
    ([1, 1, 1], [0, 1, 0])
    >>> resolve_target(model, magnitude, "sirne")
    Traceback (most recent call last):
    ...
    ValueError: target 'sirne' is not one of the model's classes ['siren', 'bird'] (did you mean ['siren']?); pass a class name or index.
    """
    batch, device = len(magnitude), magnitude.device
    if target is None:
        return batched_with_phase(lambda m, p: spec_logits(model, m, p), model, magnitude, phase).argmax(dim=-1)
    classes = getattr(model, "classes", None)
    if isinstance(target, str):
        target = _class_index(classes, target)
    elif isinstance(target, (list, tuple)):
        target = [_class_index(classes, t) if isinstance(t, str) else int(t) for t in target]
    target = torch.as_tensor(target, device=device)
    if target.ndim == 0:
        target = target.expand(batch)
    if target.shape != (batch,) or target.is_floating_point() or target.dtype == torch.bool:
        raise ValueError(f"target must be one class per clip ([B={batch}] integers or names, or one of them), got "
                         f"{target.dtype} {tuple(target.shape)}.")
    n_classes = getattr(model, "n_classes", None)
    if n_classes is not None and ((target < 0) | (target >= n_classes)).any():
        raise ValueError(f"target indices must lie in [0, {n_classes}), got {target.tolist()}.")
    return target.long()


class Explainer:
    """The base of every mask explainer: build it around a model, call :meth:`explain`.

    A subclass sets ``method`` (the display name) and implements ``masks(magnitude, target, phase) ->
    (mask [B, F, T] in [0, 1], scores, info)``; :meth:`explain` does the rest the same way for
    all: the edge (the model's ``spectrogram`` validates the input), the target, the sound.
    ``phase`` is the clips' phase, which a model that hears waves needs (a wrapped model); others ignore it.
    """

    method: str = "explainer"

    def __init__(self, model):
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.model, 'name', type(self.model).__name__)})"

    def on(self, model) -> "Explainer":
        """The same explainer, with the same options, around another model (e.g. a randomised copy)."""
        other = copy.copy(self)
        other.model = model
        return other

    def masks(self, magnitude: torch.Tensor, target: torch.Tensor,
              phase: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        raise NotImplementedError

    def explain(self, waves, target=None, sample_rate: int | None = None) -> Explanation:
        """Explain the model's decision (or class ``target``) on clips ``[T]`` or ``[B, T]``."""
        magnitude, phase = self.model.spectrogram(waves, sample_rate)
        target = self.resolve_target(magnitude, target, phase)
        mask, scores, info = self.masks(magnitude, target, phase)
        return self.explanation(magnitude, phase, mask, scores, target, info)

    def resolve_target(self, magnitude: torch.Tensor, target, phase: torch.Tensor | None = None) -> torch.Tensor:
        return resolve_target(self.model, magnitude, target, phase)

    def explanation(self, magnitude, phase, mask, scores, target, info=None) -> Explanation:
        """An :class:`Explanation` of a mask on ``magnitude``: its sound and residual through the one seam."""
        n_fft, hop = self.model.n_fft, self.model.hop_length
        length = (magnitude.shape[-1] - 1) * hop
        wave, residual = audio.listenable(magnitude, phase, mask.to(magnitude.dtype), n_fft, hop, length)
        clip = wave + residual  # the inverse STFT is linear: the two parts make the clip
        return Explanation(self.method, target, mask.detach(), wave, residual, scores.detach(), clip, magnitude,
                           phase, self.model.sample_rate, n_fft, hop, getattr(self.model, "classes", None),
                           dict(info or {}))


#: Bins more than this far below a clip's loudest bin are inactive for the random control.
ACTIVE_DB = -60.0


def active_bins(magnitude: torch.Tensor, active_db: float = ACTIVE_DB) -> torch.Tensor:
    """Boolean ``[B, F, T]``: the bins within ``active_db`` dB of each clip's loudest bin (where there is sound).

    >>> active_bins(torch.tensor([[[1.0, 0.01, 1e-4]]]), active_db=-60.0).tolist()
    [[[True, True, False]]]
    """
    peak = magnitude.flatten(1).amax(dim=1).view(-1, *[1] * (magnitude.ndim - 1))
    return magnitude > peak * 10 ** (active_db / 20)


class RandomMask(Explainer):
    """The control every explanation has to beat: ``fraction`` of each clip's bins, drawn at random among its
    *active* bins (:func:`active_bins`), kept whole.

    Drawn from what is active, never from silence: a random mask over all bins would mostly keep
    nothing, and a method would beat it by keeping sound at all. ``scores`` is the random draw
    (``-1`` on inactive bins), so :meth:`Explanation.at_size` cuts it to any size among the active
    bins first. Seeded, and the same for any target or model.

    >>> from audiox.models.classifiers import CNNClassifier
    >>> out = RandomMask(CNNClassifier(["a", "b"]).eval(), fraction=0.2).explain(torch.randn(1, 16_000) * 0.1)
    >>> round(float(out.mask.mean()), 2)
    0.2
    """

    method = "random"

    def __init__(self, model, fraction: float = 0.1, active_db: float = ACTIVE_DB, seed: int = 0):
        super().__init__(model)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction={fraction} must lie in [0, 1].")
        self.fraction, self.active_db, self.seed = fraction, active_db, seed

    def masks(self, magnitude, target, phase=None):
        draw = torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(self.seed)).to(magnitude.device)
        scores = torch.where(active_bins(magnitude, self.active_db), draw, -1.0)
        flat = scores.flatten(1)
        keep = torch.zeros_like(flat).scatter_(1, flat.topk(int(round(self.fraction * flat.shape[1])), dim=1).indices, 1.0)
        return keep.view_as(magnitude), scores, {"fraction": self.fraction}


class LoudestBins(Explainer):
    """The second control (built directly, ``LoudestBins(model)``; not in the registry of methods, as it explains
    nothing): the clip's magnitude itself, divided by its peak, so that at any matched size
    (:meth:`Explanation.at_size`) it keeps the clip's loudest bins. It knows nothing of the model or the target.

    An explanation that does no better than this on ground truth says "where it is loud", not "what the model
    used": where the source to find is also the loudest thing in the clip (a word over quiet noise), energy
    precision and recall reward loudness, and this control shows how much.

    >>> from audiox.models.classifiers import CNNClassifier
    >>> out = LoudestBins(CNNClassifier(["a", "b"]).eval()).explain(torch.randn(1, 16_000) * 0.1)
    >>> float(out.mask.amax()), bool((out.mask.flatten().argmax() == out.magnitude.flatten().argmax()))
    (1.0, True)
    """

    method = "loudest"

    def masks(self, magnitude, target, phase=None):
        peak = magnitude.flatten(1).amax(dim=1).clamp(min=torch.finfo(magnitude.dtype).tiny)
        return magnitude / peak.view(-1, 1, 1), magnitude, {}
