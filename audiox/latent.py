"""Latent attribution and explanation synthesis (seed paper 001): explain in a codec's latent, decode, listen.

Akman, Sun, Schuller, "Audio explanation synthesis with generative foundation models" (arXiv
2410.07530). A classifier reads the latent ``Z = codec.encode(x)`` ``[B, C, F]`` of a neural audio
codec (an autoencoder trained on lots of sound: a *foundation model* for audio). Because the codec
has a decoder, an edited latent is again a sound:

1. **attribute** the predicted class to every latent entry ``Z[c, f]`` (:func:`attribute`, captum;
   Integrated Gradients by default);
2. **keep** the top-attributed fraction ``ratio`` of the entries and put a *baseline* everywhere
   else (:func:`keep_top`), or **remove** the top entries instead (:func:`remove_top`);
3. **decode** the edited latent (:func:`synthesize`): the *explanation* is what the classifier
   relied on, as sound; the *explanation removed* is the clip without it.

**Fidelity** (:func:`fidelity`) checks that the ranking means something: the fraction of clips
whose prediction on the edited latent is still the original prediction, over a grid of kept or
removed fractions, for the attributed ranking and for random latent positions; and
(:func:`input_fidelity`) for the same procedure on the clip's spectrogram instead of its latent.

The baselines (:func:`baseline_latent`): ``zeros`` (what the follow-up paper describes),
``noise`` (the latent of a quiet white-noise clip: the paper's code), ``silence`` (the latent of
an all-zero clip: for a codec, *not* the zero latent) and ``mean`` (the mean latent frame of a set
of clips). The paper's public script keeps the *lowest* attributions, likely a sign slip; here
"top" is the largest attribution, the strongest evidence *for* the predicted class.

The explainer (:class:`LatentAttribution`) keeps the course's one contract (:mod:`audiox.explain`).
It explains a classifier *of the latent* (the paper's setting, ``keyword-latent-cnn``), or any
Classifier of waves through the codec, ``f(z) = classifier(decode(z))`` (so the same zero-shot
CLAP that every other method explains can be explained in tiny-codec's latent too).

>>> import torch
>>> from audiox.models.codec import TinyCodec
>>> from audiox.models.classifiers import LatentClassifier
>>> codec, clf = TinyCodec().eval(), LatentClassifier(["yes", "no"]).eval()  # random weights: shapes only
>>> out = LatentAttribution(clf, codec, ratio=0.1).explain(torch.randn(2, 16_000) * 0.1)
>>> out.scores.shape, out.target.shape, out.wave.shape, out.mask.shape
(torch.Size([2, 64, 126]), torch.Size([2]), torch.Size([2, 16000]), torch.Size([2, 257, 126]))
>>> kept = out.explanation_latent()                                  # the explanation's latent
>>> int((kept != out.baseline).sum()) == round(0.1 * 64 * 126) * 2    # 10% of each clip's entries kept
True
>>> out.at_ratio(0.3).info["ratio"]                                  # the same attributions, another ratio
0.3
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from . import audio
from .config import random_state_kept
from .batching import batched
from .explain import Explainer, Explanation, resolve_target
from .models.base import frozen, parameter_device, prepare_waves, wave_logits
from .models.classifiers import encode_all, predict_latent

#: captum methods :func:`attribute` can use, by name; Integrated Gradients is the paper's.
METHODS = ("integrated_gradients", "saliency", "deeplift", "gradient_shap", "occlusion")
#: what replaces the latent entries an explanation drops (see :func:`baseline_latent`).
BASELINES = ("zeros", "noise", "silence", "mean")
#: the kept or removed fractions of a fidelity curve: 0, 5, 10, 20, ... 100%.
RATIOS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: loudness of the white-noise clip whose latent is the ``noise`` baseline, dB RMS re full scale.
NOISE_DB = -40.0


def encode(codec, waves: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
    """Latents ``[B, C, F]`` of clips to explain (``[T]`` or ``[B, T]``), validated at the edge.

    Unlike ``codec.encode`` (a codec compresses silence happily), an all-silent clip is refused:
    there is nothing in it to explain.
    """
    return encode_all(codec, _validated(codec, waves, sample_rate))


def _validated(codec, waves, sample_rate: int | None) -> torch.Tensor:
    """Clips ``[B, T]`` at the codec's rate on its device, checked as an explanation's input."""
    waves = prepare_waves(torch.atleast_2d(torch.as_tensor(waves)), sample_rate, codec.sample_rate,
                          min_seconds=getattr(codec, "min_seconds", 0.1), allow_silence=True,
                          device=_device(codec), name="waves")
    silent = waves.abs().amax(dim=-1) < audio.SILENCE_PEAK
    if silent.any():
        raise ValueError(f"waves {torch.nonzero(silent).flatten().tolist()} are all silent (peak below "
                         f"{audio.SILENCE_PEAK}): a classifier's decision on silence has nothing to explain; "
                         f"drop those clips or check their gain.")
    return waves


_device = parameter_device


@torch.no_grad()
def baseline_latent(codec, kind: str, latent: torch.Tensor, *, reference: torch.Tensor | None = None,
                    seed: int = 0, noise_db: float = NOISE_DB) -> torch.Tensor:
    """The latent that replaces dropped entries, ``[1, C, F]`` like one clip of ``latent`` ``[B, C, F]``.

    * ``zeros``: the zero latent;
    * ``noise``: the latent of white noise at ``noise_db`` dB RMS, drawn from ``seed``;
    * ``silence``: the latent of an all-zero clip;
    * ``mean``: the mean latent frame (per channel) of ``reference`` latents ``[N, C, F']``,
      e.g. the training set's, repeated over the ``F`` frames.

    >>> from audiox.models.codec import TinyCodec
    >>> codec = TinyCodec().eval()
    >>> z = codec.encode(torch.randn(3, 16_000) * 0.1)
    >>> baseline_latent(codec, "noise", z, seed=1).shape
    torch.Size([1, 64, 126])
    >>> baseline_latent(codec, "mean", z)
    Traceback (most recent call last):
    ...
    ValueError: the mean baseline is the mean latent of a set of clips: pass reference=latents (e.g. of the training clips) [N, 64, frames].
    """
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}.")
    _, channels, frames = latent.shape
    if kind == "zeros":
        return torch.zeros(1, channels, frames, device=latent.device)
    if kind == "mean":
        if reference is None:
            raise ValueError(f"the mean baseline is the mean latent of a set of clips: pass reference=latents "
                             f"(e.g. of the training clips) [N, {channels}, frames].")
        if reference.ndim != 3 or reference.shape[1] != channels:
            raise ValueError(f"reference has shape {tuple(reference.shape)}; it must be latents [N, {channels}, frames].")
        return reference.mean(dim=(0, 2))[None, :, None].expand(1, channels, frames).to(latent.device).clone()
    # noise and silence: a clip at least as long as the latent's frames (and the codec's shortest clip), the
    # latent then cut to the frame count
    seconds = max(frames / codec.frame_rate, getattr(codec, "min_seconds", 0.0))
    length = int(math.ceil(seconds * codec.sample_rate))
    if kind == "silence":
        wave = torch.zeros(1, length)
    else:
        wave = torch.randn(1, length, generator=torch.Generator().manual_seed(seed)) * 10 ** (noise_db / 20)
    out = codec.encode(wave.to(_device(codec)))
    return _fit_frames(out, frames).to(latent.device)


def _fit_frames(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop, or repeat the last frame, so a latent has exactly ``frames`` frames."""
    if latent.shape[-1] >= frames:
        return latent[..., :frames]
    return F.pad(latent, (0, frames - latent.shape[-1]), mode="replicate")


def predict(classifier, latent: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities ``[B, n_classes]`` of latents, in batches, without gradients."""
    return predict_latent(classifier, latent, batch_size).softmax(dim=-1)


def attribute(classifier, latent: torch.Tensor, method: str = "integrated_gradients", target=None,
              baseline: torch.Tensor | None = None, *, n_steps: int = 32, n_samples: int = 16,
              window: tuple[int, int] = (8, 4), seed: int = 0, internal_batch_size: int = 512) -> torch.Tensor:
    """Attributions ``[B, C, F]`` of the class ``target`` (default: the predicted one) to each latent entry.

    Methods (captum): ``integrated_gradients`` (``n_steps`` points on the path from ``baseline``),
    ``saliency`` (absolute gradient), ``deeplift`` (rescale rule against ``baseline``),
    ``gradient_shap`` (``n_samples`` points between the baseline and the latent with Gaussian
    noise, seeded) and ``occlusion`` (each ``window`` = (channels, frames) patch set to the
    baseline, in batches; gradient-free). ``baseline`` defaults to zeros; pass the one the
    explanation uses (:func:`baseline_latent`), so the attributions answer "what does replacing
    this entry by the baseline cost?". The whole batch is attributed in one call.

    >>> from audiox.models.classifiers import LatentClassifier
    >>> clf = LatentClassifier(["a", "b", "c"], latent_channels=4, width=8).eval()
    >>> z = torch.randn(2, 4, 20)
    >>> [tuple(attribute(clf, z, m).shape) for m in METHODS] == [(2, 4, 20)] * 5
    True
    >>> attribute(clf, z, "lime")
    Traceback (most recent call last):
    ...
    ValueError: unknown attribution method 'lime'; choose one of ('integrated_gradients', 'saliency', 'deeplift', 'gradient_shap', 'occlusion').
    """
    from captum import attr

    from .gradients import gradient_shap

    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {METHODS}.")
    latent = latent.detach().to(_device(classifier))
    if target is None:
        target = predict(classifier, latent).argmax(dim=-1)
    target = torch.as_tensor(target, device=latent.device).expand(len(latent))
    base = torch.zeros_like(latent) if baseline is None else baseline.to(latent.device).expand_as(latent).contiguous()
    inputs = latent.clone().requires_grad_()
    # gradient_shap draws noise (torch's CPU generator, then moved: audiox.gradients.NoiseTunnel) and path points
    # (numpy's global generator, in captum 0.9): both seeded here, so a GPU draws what a CPU draws, and the
    # caller's random state is given back afterwards. Nothing is drawn on the device: its generator is left alone.
    with random_state_kept(cuda=False), frozen(classifier):
        torch.manual_seed(seed)
        np.random.seed(seed)
        if method == "integrated_gradients":
            out = attr.IntegratedGradients(classifier).attribute(
                inputs, base, target=target, n_steps=n_steps, internal_batch_size=internal_batch_size)
        elif method == "saliency":
            out = attr.Saliency(classifier).attribute(inputs, target=target)
        elif method == "deeplift":
            with warnings.catch_warnings():  # captum announces its temporary hooks on every call
                warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
                out = attr.DeepLift(classifier).attribute(inputs, base, target=target)
        elif method == "gradient_shap":
            out = gradient_shap(classifier, inputs, base[:1], target=target, n_samples=n_samples,
                                stdevs=0.1 * float(latent.std()))
        else:
            channels, frames = min(window[0], latent.shape[1]), min(window[1], latent.shape[2])
            out = attr.Occlusion(classifier).attribute(
                inputs, (channels, frames), strides=(channels, frames), baselines=base, target=target,
                perturbations_per_eval=max(1, internal_batch_size // len(latent)))
    return out.detach()


# ---------------------------------------------------------------------------------------------
# keep or remove the top entries
# ---------------------------------------------------------------------------------------------

def top_mask(attributions: torch.Tensor, ratio: float) -> torch.Tensor:
    """Boolean ``[B, ...]``: the ``round(ratio * n)`` largest attributions of each clip (``n`` entries per clip).

    >>> top_mask(torch.tensor([[0.1, 0.9, -2.0, 0.5]]), 0.5)
    tensor([[False,  True, False,  True]])
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio={ratio} must be a fraction in [0, 1] (0.1 keeps or removes 10% of the entries).")
    flat = attributions.flatten(1)
    k = int(round(ratio * flat.shape[1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        mask.scatter_(1, flat.topk(k, dim=1).indices, True)
    return mask.view_as(attributions)


def random_mask(shape, ratio: float, seed: int = 0, device=None) -> torch.Tensor:
    """Boolean mask of ``shape`` ``[B, ...]`` with the same number of entries per clip as :func:`top_mask`,
    at random positions drawn from ``seed``: the control an attribution has to beat."""
    scores = torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))
    return top_mask(scores, ratio).to(device)


def _edit(x: torch.Tensor, mask: torch.Tensor, baseline: torch.Tensor, mode: str) -> torch.Tensor:
    """``keep``: ``x`` where ``mask``, the baseline elsewhere; ``remove``: the baseline where ``mask``, ``x`` elsewhere."""
    if mode not in ("keep", "remove"):
        raise ValueError(f"mode={mode!r}; use 'keep' (explanation) or 'remove' (explanation removed).")
    base = baseline.to(x.device).expand_as(x)
    return torch.where(mask, x, base) if mode == "keep" else torch.where(mask, base, x)


def _edits(x: torch.Tensor, scores: torch.Tensor | None, baseline: torch.Tensor, ratios, mode: str,
           seed: int) -> list[torch.Tensor]:
    """One edited copy of ``x`` per ratio, at the top ``scores`` or, for ``None``, at random positions from ``seed``."""
    return [_edit(x, top_mask(scores, r) if scores is not None else random_mask(x.shape, r, seed, x.device),
                  baseline, mode) for r in ratios]


def keep_top(latent: torch.Tensor, attributions: torch.Tensor, ratio: float, baseline: torch.Tensor) -> torch.Tensor:
    """The explanation's latent: the top ``ratio`` of each clip's entries kept, the baseline elsewhere.

    >>> z, a = torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.0, 5.0, 1.0, 2.0]])
    >>> keep_top(z, a, 0.5, torch.zeros(1, 4))
    tensor([[0., 2., 0., 4.]])
    """
    return _edit(latent, top_mask(attributions, ratio), baseline, "keep")


def remove_top(latent: torch.Tensor, attributions: torch.Tensor, ratio: float, baseline: torch.Tensor) -> torch.Tensor:
    """The explanation removed: the top ``ratio`` of each clip's entries replaced by the baseline.

    >>> z, a = torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[0.0, 5.0, 1.0, 2.0]])
    >>> remove_top(z, a, 0.5, torch.zeros(1, 4))
    tensor([[1., 0., 3., 0.]])
    """
    return _edit(latent, top_mask(attributions, ratio), baseline, "remove")


def synthesize(codec, latent: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """Sound ``[B, length]`` of (edited) latents through ``codec.decode``, cut or zero-padded to ``length``."""
    with torch.no_grad():
        wave = codec.decode(latent.to(_device(codec)))
    if length is None or wave.shape[-1] == length:
        return wave
    return wave[..., :length] if wave.shape[-1] > length else F.pad(wave, (0, length - wave.shape[-1]))


class DecodedClassifier(torch.nn.Module):
    """``f(z) = classifier(decode(z))``: a Classifier of waves, read through a codec's decoder, as a model of the latent.

    The decoded wave is resampled to the classifier's rate when the two differ and goes through the
    classifier's own STFT and front end (``spec_to_logits``); everything is differentiable, so captum
    can attribute the classifier's decision to the codec's latent entries.
    """

    def __init__(self, codec, classifier):
        super().__init__()
        self.codec, self.classifier = codec, classifier

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        wave = self.codec.decode(latent)
        wave = audio.resample(wave, self.codec.sample_rate, self.classifier.sample_rate)
        return wave_logits(self.classifier, wave)  # a wrapped model hears the decoded wave itself


def _reads_waves(model) -> bool:
    return callable(getattr(model, "spectrogram", None)) and callable(getattr(model, "spec_to_logits", None))


@dataclass
class LatentExplanation(Explanation):
    """An :class:`~audiox.explain.Explanation` synthesised from a codec's latent, at removal ratio ``ratio``.

    Besides the contract's fields (``scores`` are the attributions ``[B, C, F]``, ``mask`` the
    effective mask of the decoded explanation against the decoded residual,
    :func:`audiox.audio.effective_mask`): ``latent`` and
    ``baseline`` ``[B, C, F]``, the ``codec`` and the model of the latent (``latent_model``).
    :meth:`at_ratio` re-synthesises at another ratio from the same attributions (a slider needs no
    new attribution); :meth:`explanation_latent` / :meth:`removed_latent` are the edited latents,
    :meth:`probabilities` what the model makes of them.
    """

    latent: torch.Tensor | None = None
    baseline: torch.Tensor | None = None
    codec: object = field(default=None, repr=False)
    latent_model: object = field(default=None, repr=False)

    @property
    def ratio(self) -> float:
        return self.info["ratio"]

    def explanation_latent(self) -> torch.Tensor:
        """The latent of the explanation: the top ``ratio`` of each clip's entries kept, the baseline elsewhere."""
        return keep_top(self.latent, self.scores, self.ratio, self.baseline)

    def removed_latent(self) -> torch.Tensor:
        """The latent of the explanation removed: the top ``ratio`` of each clip's entries replaced by the baseline."""
        return remove_top(self.latent, self.scores, self.ratio, self.baseline)

    def at_ratio(self, ratio: float) -> "LatentExplanation":
        """The same attributions kept / removed at another ``ratio``: new sounds and mask, no new attribution."""
        return _synthesised(self, ratio)

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Probability ``[B]`` of the explained class on the latent, the explanation and the explanation removed."""
        rows = torch.arange(len(self.target))
        return {name: predict(self.latent_model, z)[rows, self.target.cpu()]
                for name, z in (("original", self.latent), ("explanation", self.explanation_latent()),
                                ("explanation removed", self.removed_latent()))}


def _synthesised(out: LatentExplanation, ratio: float) -> LatentExplanation:
    """``out`` with its explanation and residual decoded at ``ratio`` (at the explained model's rate, like the
    clip), and the effective mask of the explanation on the clip's STFT."""
    def decoded(latent):
        wave = synthesize(out.codec, latent, out.info["codec_length"])
        return audio.resample(wave, out.codec.sample_rate, out.sample_rate)[..., : out.clip.shape[-1]]

    wave = decoded(keep_top(out.latent, out.scores, ratio, out.baseline))
    residual = decoded(remove_top(out.latent, out.scores, ratio, out.baseline))
    kept, left = (audio.stft(x, out.n_fft, out.hop_length).abs() for x in (wave, residual))
    return replace(out, wave=wave, residual=residual, mask=audio.effective_mask(kept, left),
                   info={**out.info, "ratio": ratio})


class LatentAttribution(Explainer):
    """Latent attribution and explanation synthesis (seed 001) as an explainer of the course's contract.

    ``model`` is a classifier of the latent (``forward(latent) -> logits``, e.g. ``keyword-latent-cnn``)
    or a Classifier of waves (``spectrogram`` / ``spec_to_logits``), explained through the codec as
    :class:`DecodedClassifier`. ``codec`` defaults to the profile's (:func:`audiox.load_codec`).
    ``explain(waves, target)``: encode, attribute ``target`` (default: the model's prediction on the
    clip) to each latent entry with ``method`` against ``baseline`` (:func:`attribute`,
    :func:`baseline_latent`; ``reference`` latents for ``mean``), keep the top ``ratio`` and decode
    it (``wave``), remove it and decode the rest (``residual``). ``options`` go to :func:`attribute`
    (``n_steps``, ``internal_batch_size``, ...).
    """

    method = "latent"

    def __init__(self, model, codec=None, method: str = "integrated_gradients", baseline: str = "noise",
                 ratio: float = 0.1, reference: torch.Tensor | None = None, seed: int = 0, **options):
        if codec is None:
            from .models.zoo import load_codec

            codec = load_codec(device=parameter_device(model))
        super().__init__(model)
        if method not in METHODS:
            raise ValueError(f"unknown attribution method {method!r}; choose one of {METHODS}.")
        top_mask(torch.zeros(1, 1), ratio)  # checks the ratio now rather than after the attribution
        self.codec, self.attribution, self.baseline, self.ratio = codec, method, baseline, ratio
        self.reference, self.seed, self.options = reference, seed, options
        self.reads_waves = _reads_waves(model)
        self.latent_model = DecodedClassifier(codec, model) if self.reads_waves else model
        if self.reads_waves:
            self.options.setdefault("internal_batch_size", 64)  # a decoder and a CLAP per copy: keep batches small

    def on(self, model) -> "LatentAttribution":
        other = super().on(model)
        other.latent_model = DecodedClassifier(self.codec, model) if self.reads_waves else model
        return other

    def explain(self, waves, target=None, sample_rate: int | None = None) -> LatentExplanation:
        codec = self.codec
        waves = _validated(codec, waves, sample_rate)
        latent = encode_all(codec, waves)
        base = baseline_latent(codec, self.baseline, latent, reference=self.reference, seed=self.seed)
        if self.reads_waves:  # the clip on the model's grid; the target is its decision on the clip itself
            rate, n_fft, hop = self.model.sample_rate, self.model.n_fft, self.model.hop_length
        else:
            rate, n_fft, hop = codec.sample_rate, audio.N_FFT, audio.HOP_LENGTH
        clip = audio.resample(waves, codec.sample_rate, rate)
        magnitude, phase = audio.magnitude_phase(clip, n_fft, hop)
        if self.reads_waves:
            target = resolve_target(self.model, magnitude, target, phase)
        else:
            logits = predict_latent(self.model, latent)
            target = logits.argmax(-1) if target is None else resolve_target(self.model, logits, target)
        scores = attribute(self.latent_model, latent, self.attribution, target, base, seed=self.seed, **self.options)
        out = LatentExplanation(f"latent ({self.attribution.replace('_', ' ')})", target, torch.zeros_like(magnitude),
                                clip, clip, scores, clip, magnitude, phase, rate, n_fft, hop,
                                getattr(self.model, "classes", None),
                                {"ratio": self.ratio, "baseline": self.baseline, "codec_length": waves.shape[-1]},
                                latent=latent, baseline=base.expand_as(latent), codec=codec,
                                latent_model=self.latent_model)
        return _synthesised(out, self.ratio)


# ---------------------------------------------------------------------------------------------
# fidelity curves: does the ranking matter?
# ---------------------------------------------------------------------------------------------

def _agreement(predict_fn, edited: list[torch.Tensor], target: torch.Tensor, per_clip: bool = False) -> np.ndarray:
    """Fraction of clips predicted as ``target`` for each edited batch (``per_clip``: each clip's 0 or 1,
    ``[ratios, B]``); all batches go through in one call."""
    preds = predict_fn(torch.cat(edited)).argmax(dim=-1).view(len(edited), -1)
    agree = (preds == target.to(preds.device)).float()
    return (agree if per_clip else agree.mean(dim=1)).cpu().numpy()


def fidelity(classifier, latent: torch.Tensor, attributions: torch.Tensor | None, baseline: torch.Tensor,
             ratios=RATIOS, mode: str = "keep", seed: int = 0, target: torch.Tensor | None = None,
             codec=None, per_clip: bool = False) -> np.ndarray:
    """Agreement with the original prediction when the top (``attributions``) or random (``None``) entries are kept
    or removed, one value per ratio.

    ``mode="keep"`` keeps the fraction and puts the baseline elsewhere (high agreement at small
    ratios means the few kept entries carry the decision); ``mode="remove"`` replaces the fraction
    (low agreement at small ratios means they were needed). ``seed`` draws the random positions.
    ``per_clip=True`` gives each clip's agreement, ``[len(ratios), B]`` (for intervals over clips).
    With a ``codec``, each edited latent is decoded and encoded again before it is classified: the
    agreement of the explanation *as heard*, codec artefacts included.

    >>> from audiox.models.classifiers import LatentClassifier
    >>> clf = LatentClassifier(["a", "b"], latent_channels=4, width=8).eval()
    >>> z = torch.randn(6, 4, 20)
    >>> curve = fidelity(clf, z, attribute(clf, z), torch.zeros(1, 4, 20), ratios=(0.0, 1.0), mode="keep")
    >>> float(curve[-1])  # keeping everything is the clip itself
    1.0
    """
    edited = _edits(latent, attributions, baseline, ratios, mode, seed)
    if target is None:
        target = predict(classifier, latent).argmax(dim=-1)
    if codec is None:
        return _agreement(lambda z: predict(classifier, z), edited, target, per_clip)
    length = max(int(round((latent.shape[-1] - 1) / codec.frame_rate * codec.sample_rate)), 1)

    def heard(z):
        return predict(classifier, _fit_frames(encode_all(codec, synthesize(codec, z, length)), z.shape[-1]))

    return _agreement(heard, edited, target, per_clip)


@dataclass
class FidelityCurves:
    """Agreement with the original prediction, per seed: ``curves[mode][series]`` is ``[seeds, len(ratios)]``,
    and ``per_clip[mode][series]`` each clip's agreement, ``[seeds, len(ratios), clips]``.

    ``mode`` is ``keep`` or ``remove``; the series are ``latent, attributed``, ``latent, random``
    and, when measured, ``input, attributed`` and ``input, random`` (and ``latent, attributed,
    heard`` for the decoded explanations).
    """

    ratios: tuple
    curves: dict
    method: str
    baseline: str
    seeds: tuple
    per_clip: dict = field(default_factory=dict)

    def interval(self, ratio: float, mode: str, series: str):
        """The bootstrap 95% interval over clips of the agreement at one ratio (each clip averaged over seeds)."""
        from .metrics import bootstrap

        i = list(self.ratios).index(ratio)
        return bootstrap(torch.as_tensor(self.per_clip[mode][series][:, i].mean(axis=0)))

    def at(self, ratio: float, mode: str) -> dict[str, tuple[float, float]]:
        """``{series: (mean, std)}`` of the agreement at one ratio (one of :attr:`ratios`)."""
        i = list(self.ratios).index(ratio)
        return {name: (float(v[:, i].mean()), float(v[:, i].std())) for name, v in self.curves[mode].items()}

    def table(self, ratio: float = 0.1) -> str:
        """The curves at one ratio as a fixed-width text table (what the notebooks print and nbval checks): mean and
        standard deviation over seeds, and the bootstrap 95% interval over clips when they were kept."""
        clips = next(iter(next(iter(self.per_clip.values())).values())).shape[-1] if self.per_clip else None
        lines = [f"agreement with the original prediction at {ratio:.0%} ({self.method}, baseline {self.baseline}, "
                 f"mean +- std over {len(self.seeds)} seeds" + (f", [95% interval over {clips} clips])" if clips else ")")]
        for mode, label in (("keep", "kept"), ("remove", "removed")):
            for name, (mean, std) in self.at(ratio, mode).items():
                interval = self.interval(ratio, mode, name) if self.per_clip else None
                lines.append(f"  {label:8s} {name:26s} {mean:.3f} +- {std:.3f}"
                             + (f"  [{interval.low:.2f}, {interval.high:.2f}]" if interval else ""))
        return "\n".join(lines)

    def plot(self, axes=None):
        """Keep and remove curves side by side, mean +- std over seeds; returns the figure."""
        from . import plot

        if axes is None:
            import matplotlib.pyplot as plt

            _, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained", sharey=True)
        for ax, mode, what in zip(axes, ("keep", "remove"), ("kept", "removed")):
            plot.curves(self.ratios, self.curves[mode], ax=ax, xlabel=f"fraction {what}",
                        ylabel="agreement with original prediction",
                        title=f"{'explanation' if mode == 'keep' else 'explanation removed'} (top {what})")
        return axes[0].figure


def fidelity_curves(codec, classifier, waves: torch.Tensor, *, method: str = "integrated_gradients",
                    baseline: str = "noise", reference: torch.Tensor | None = None, seeds=(0, 1, 2), ratios=RATIOS,
                    input_space: bool = True, heard: bool = False, progress: bool = False, **options) -> FidelityCurves:
    """Fidelity curves of clips ``[B, T]`` over ``seeds``: each seed draws the baseline's noise (for ``noise``),
    hence new attributions, and the random positions. Input-space attributions do not depend on
    the seed (their baseline is silence); their random positions do.

    ``heard`` adds the attributed latent curves after decoding and re-encoding (see :func:`fidelity`).
    """
    from tqdm.auto import tqdm

    latent = encode(codec, waves)
    waves = torch.atleast_2d(waves).to(latent.device)
    target = predict(classifier, latent).argmax(dim=-1)
    curves = {"keep": {}, "remove": {}}

    def add(mode, name, values):  # values: each clip's agreement, [ratios, clips]
        curves[mode].setdefault(name, []).append(values)

    if input_space:  # the spectrogram model and its attributions do not depend on the seed: built once
        magnitude, phase = audio.magnitude_phase(waves)
        model = _input_model(codec, classifier, phase, waves.shape[-1], audio.N_FFT, audio.HOP_LENGTH)
        input_scores = attribute(model, magnitude, method, target, torch.zeros_like(magnitude), seed=seeds[0],
                                 internal_batch_size=4 * len(waves),
                                 **{k: v for k, v in options.items() if k != "internal_batch_size"})
    for seed in tqdm(seeds, desc="fidelity", disable=not progress):
        base = baseline_latent(codec, baseline, latent, reference=reference, seed=seed)
        scores = attribute(classifier, latent, method, target, base, seed=seed, **options)
        for mode in ("keep", "remove"):
            add(mode, "latent, attributed", fidelity(classifier, latent, scores, base, ratios, mode, seed, target,
                                                     per_clip=True))
            add(mode, "latent, random", fidelity(classifier, latent, None, base, ratios, mode, seed, target,
                                                 per_clip=True))
            if heard:
                add(mode, "latent, attributed, heard",
                    fidelity(classifier, latent, scores, base, ratios, mode, seed, target, codec=codec, per_clip=True))
        if input_space:
            for mode in ("keep", "remove"):
                add(mode, "input, attributed",
                    _input_agreement(model, magnitude, input_scores, ratios, mode, seed, target, per_clip=True))
                add(mode, "input, random",
                    _input_agreement(model, magnitude, None, ratios, mode, seed, target, per_clip=True))
    per_clip = {mode: {name: np.stack(v) for name, v in series.items()} for mode, series in curves.items()}
    curves = {mode: {name: v.mean(axis=-1) for name, v in series.items()} for mode, series in per_clip.items()}
    return FidelityCurves(tuple(ratios), curves, method, baseline, tuple(seeds), per_clip)


def _input_model(codec, classifier, phase: torch.Tensor, length: int, n_fft: int, hop_length: int):
    """magnitude ``[B, F, T]`` -> logits, through the inverse STFT with the clip's phase, the codec's encoder and
    the classifier: the model whose input is the spectrogram.

    The phase is its buffer: a module without parameters is on the CPU for :func:`attribute`
    (:func:`~audiox.models.base.parameter_device`), which would move the magnitude there, away from the phase."""
    class InputModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("phase", phase, persistent=False)

        def forward(self, magnitude):
            wave = audio.istft_with_phase(magnitude, self.phase.repeat(len(magnitude) // len(self.phase), 1, 1),
                                          n_fft, hop_length, length)
            return classifier(codec.encode(wave))

    return InputModel()


def input_fidelity(codec, classifier, waves: torch.Tensor, ratios=RATIOS, mode: str = "keep", *,
                   method: str = "integrated_gradients", random: bool = False, seed: int = 0,
                   target: torch.Tensor | None = None, n_steps: int = 32,
                   n_fft: int = audio.N_FFT, hop_length: int = audio.HOP_LENGTH) -> np.ndarray:
    """:func:`fidelity` in the input space: keep or remove the top-attributed (or random) STFT bins of each clip
    ``[B, T]``, with silence (zero magnitude) as the baseline, resynthesise with the clip's phase, re-encode.

    The attributions are ``method``'s over the magnitude, through the inverse STFT and the codec's
    encoder (for EnCodec, a straight-through gradient past the quantiser); zero magnitude is the
    path's start. This is the comparison the paper makes: is the codec's latent a better place to
    explain in than the spectrogram?
    """
    waves = torch.atleast_2d(waves).to(_device(codec))
    magnitude, phase = audio.magnitude_phase(waves, n_fft, hop_length)
    model = _input_model(codec, classifier, phase, waves.shape[-1], n_fft, hop_length)
    if target is None:
        with torch.no_grad():
            target = model(magnitude).argmax(dim=-1)
    scores = None if random else attribute(model, magnitude, method, target, torch.zeros_like(magnitude),
                                           n_steps=n_steps, internal_batch_size=4 * len(waves))
    return _input_agreement(model, magnitude, scores, ratios, mode, seed, target)


def _input_agreement(model, magnitude, scores, ratios, mode, seed, target, per_clip: bool = False) -> np.ndarray:
    edited = _edits(magnitude, scores, torch.zeros(()), ratios, mode, seed)  # the input's baseline: silence

    def predict_fn(m):
        return batched(lambda chunk: model(chunk).softmax(dim=-1), m, batch_size=len(magnitude) * 4)

    return _agreement(predict_fn, edited, target, per_clip)
