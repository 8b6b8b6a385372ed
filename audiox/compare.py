"""Which explanation to trust: every method on the same clips, the same model, the same metrics (notebook 06).

Every explainer of the course's contract (:mod:`audiox.explain`) returns a mask on the model's
linear STFT, so one set of measurements serves them all:

* **faithfulness** (methods.md's AI, AD, AG, FF, Fid-In and the mask statistics), per clip, at the
  method's own size and at **matched sizes** (each method's top 5 / 10 / 20 / 40% of bins,
  :meth:`~audiox.explain.Explanation.at_size`): FF rewards a mask for removing energy, so a
  method whose masks keep half the clip beats one whose masks keep 1% whatever either is worth;
* **ground truth** (:func:`ground_truth`): energy-weighted precision, recall and F of the mask
  against the true source of the class explained (SynthSounds knows every source);
* **localisation** (:func:`energy_shares`): the share of the explanation's energy on each source,
  for the event's class and for the distractor's class on the same mixture;
* **sanity** (:func:`randomisation`): how much each explanation changes when the model's layers
  are re-initialised from the top (Adebayo et al., 2018);
* **agreement of the metrics** (:meth:`Comparison.rank_agreement`): do FF and ground truth rank
  the methods alike?

Every mean over clips carries a bootstrap 95% interval (:func:`audiox.metrics.bootstrap`).

>>> import torch, audiox
>>> from audiox.models.classifiers import CNNClassifier
>>> from audiox.data.synth import comparison_conditions
>>> model = CNNClassifier(audiox.load_dataset("synth", "test").classes).eval()   # random weights: shapes only
>>> conditions = {"clean": comparison_conditions(n_per_class=1)["clean"]}
>>> explainers = {"Saliency": audiox.explainer("saliency", model), "random": audiox.explainer("random", model)}
>>> result = compare(explainers, model, conditions, sizes=(0.1,))
>>> sorted(result.per_clip["clean", "Saliency", 0.1])[:4]
['AD', 'AG', 'AI', 'COMP']
>>> print(result.table("MM", size=0.1).splitlines()[1])
Saliency      0.10 [0.10, 0.10]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from . import metrics
from .explain import Explanation, resolve_target
from .models.base import batched_with_phase, spec_logits

#: The matched sizes of notebook 06: each method's top share of time-frequency bins.
SIZES = (0.05, 0.1, 0.2, 0.4)
#: The columns of a faithfulness row, then those of ground truth.
FAITHFULNESS = ("AI", "AD", "AG", "FF", "Fid-In", "SPS", "COMP", "MM")
GROUND_TRUTH = ("precision", "recall", "f_measure")
#: The methods of a comparison by display name (registry name, options). The gradient maps take fewer steps and
#: samples than captum's defaults, and latent attribution fewer path steps than notebook 05, so that a table of
#: every method over several conditions runs in a notebook on a CPU (notebook 06 checks the completeness gap).
METHODS = {
    "LMAC-ZS": ("lmac-zs", {}),
    "L2I": ("l2i", {}),
    "latent (IG)": ("latent", {"n_steps": 8}),
    "Saliency": ("saliency", {}),
    "Integrated Gradients": ("integrated-gradients", {"n_steps": 16}),
    "SmoothGrad": ("smoothgrad", {"n_samples": 8}),
    "GradCAM": ("gradcam", {}),
    "random": ("random", {"fraction": 0.1}),
}


def explainers_for(model, names=None, **options) -> dict:
    """The explainers of :data:`METHODS` (or the display names ``names``) built around ``model``, by display name;
    ``options`` maps a display name to options that replace the defaults."""
    from .explain import explainer

    names = list(names or METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}.")
    return {name: explainer(METHODS[name][0], model, **{**METHODS[name][1], **options.get(name, {})})
            for name in names}


def probabilities(model, magnitude: torch.Tensor, batch_size: int = 32, phase: torch.Tensor | None = None) -> torch.Tensor:
    """Class probabilities ``[B, C]`` of (masked) magnitudes: one softmax of the model's logits, in batches
    (``phase``: the clips' phase, for a model that hears waves)."""
    return metrics.class_probabilities(
        batched_with_phase(lambda m, p: spec_logits(model, m, p), model, magnitude, phase, batch_size))


def faithfulness(model, explanation: Explanation, p: torch.Tensor | None = None, batch_size: int = 32,
                 masked_in: bool = True) -> dict[str, torch.Tensor]:
    """methods.md's faithfulness metrics per clip for an explanation of the model's own classes.

    ``p``, ``o``, ``q``: probabilities on the clip, the masked-in ``M X`` and the masked-out
    ``(1 - M) X`` clip; ``c`` the class explained. Pass ``p`` when it is at hand (it does not
    depend on the explanation). ``masked_in=False`` skips the masked-in clip: FF and the mask
    statistics only, at half the cost.
    """
    magnitude, mask = explanation.magnitude, explanation.mask.to(explanation.magnitude)
    if (explanation.target < 0).any():
        raise ValueError("faithfulness needs explanations of the model's classes, not of free-text prompts.")
    phase = explanation.phase
    p = probabilities(model, magnitude, batch_size, phase) if p is None else p
    q = probabilities(model, (1 - mask) * magnitude, batch_size, phase)
    if not masked_in:
        return {"FF": metrics.faithfulness_on_spectra(p, q, explanation.target), "SPS": metrics.sparseness(mask),
                "COMP": metrics.complexity(mask), "MM": metrics.mask_mean(mask)}
    o = probabilities(model, mask * magnitude, batch_size, phase)
    return metrics.faithfulness_metrics(p, o, q, mask, explanation.target)


def source_of(condition: dict, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The true mask ``[B, F, T]`` of the source whose class is ``target``, and which clips have one ``[B]``.

    The event where ``target`` is the event's class, the distractor where it is the distractor's;
    a clip whose explained class is neither (the model heard something that is not there) has no
    ground truth.
    """
    target = target.cpu()
    event, distractor = condition["labels"].cpu() == target, condition["distractor_labels"].cpu() == target
    masks = condition["masks"]
    chosen = torch.where(distractor[:, None, None], masks["distractor"], masks["event"])
    return chosen, event | distractor


def ground_truth(explanation: Explanation, condition: dict) -> dict[str, torch.Tensor]:
    """Energy-weighted precision, recall and F ``[B]`` of the mask against the true source of the class explained
    (:func:`audiox.metrics.ground_truth_overlap`); NaN for clips without one (:func:`source_of`)."""
    source, has = source_of(condition, explanation.target)
    overlap = metrics.ground_truth_overlap(explanation.magnitude.cpu(), explanation.mask.cpu(), source)
    return {k: torch.where(has, v, torch.nan) for k, v in overlap.items()}


def energy_shares(explanation: Explanation, condition: dict) -> dict[str, torch.Tensor]:
    """The share ``[B]`` of the explanation's energy that belongs to each source (event, distractor, noise).

    The precision of the mask against each source's true ratio mask; the shares of one explanation
    add up to 1 (where it keeps any energy).
    """
    magnitude, mask = explanation.magnitude.cpu(), explanation.mask.cpu()
    return {name: metrics.ground_truth_overlap(magnitude, mask, source)["precision"]
            for name, source in condition["masks"].items()}


def follows_the_question(explainer, condition: dict, size: float = 0.1) -> dict[str, torch.Tensor]:
    """Does the explanation move to the source that is asked about? On the condition's clips with a distractor,
    explain the event's class, then the distractor's, each cut to its top ``size`` of bins, and measure the share
    of the kept energy on each source (:func:`energy_shares`), per clip ``[B]``: ``"event, asked event"``,
    ``"distractor, asked distractor"``, and ``"moved"``, how much more of the explanation lies on the distractor
    when it is the one asked about (0 for an explanation that ignores the question)."""
    has = condition["distractor_labels"] >= 0
    clips = {k: (v[has] if torch.is_tensor(v) else {n: m[has] for n, m in v.items()} if isinstance(v, dict) else v)
             for k, v in condition.items() if k in ("waves", "labels", "distractor_labels", "masks")}
    shares = {question: energy_shares(explainer.explain(clips["waves"], clips[key]).at_size(size), clips)
              for question, key in (("event", "labels"), ("distractor", "distractor_labels"))}
    return {"event, asked event": shares["event"]["event"],
            "distractor, asked distractor": shares["distractor"]["distractor"],
            "moved": shares["distractor"]["distractor"] - shares["event"]["distractor"]}


@dataclass
class Comparison:
    """The measurements of :func:`compare`: ``per_clip[condition, method, size]`` is a dict of per-clip tensors
    (faithfulness and ground truth; ``size`` None is the method's own size), ``seconds[condition, method]``
    the time its explanations took."""

    methods: list
    conditions: list
    sizes: tuple
    per_clip: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    clips: dict = field(default_factory=dict)

    def estimate(self, condition: str, method: str, metric: str, size=None) -> metrics.Estimate:
        """The mean of ``metric`` over the condition's clips, with its bootstrap 95% interval."""
        return metrics.bootstrap(self.per_clip[condition, method, size][metric])

    def table(self, metric: str, size=None, digits: int = 2, conditions=None) -> str:
        """One metric, methods by conditions, each cell ``mean [low, high]``: what the notebook prints."""
        conditions = list(conditions or self.conditions)
        width = max(len(m) for m in self.methods) + 2
        cell = 9 + 2 * (digits + 4)  # room for two minus signs and a space between cells
        head = f"{metric + ('' if size is None else f' @ {size:.0%}'):<{width}}" + "".join(
            f"{c:>{cell}}" for c in conditions)
        rows = [head]
        for method in self.methods:
            cells = [self.estimate(c, method, metric, size).format(digits) for c in conditions]
            rows.append(f"{method:<{width}}" + "".join(f"{x:>{cell}}" for x in cells))
        return "\n".join(rows)

    def seconds_per_clip(self, method: str) -> float:
        """Wall time of ``method``'s explanations over all conditions, per clip."""
        return sum(self.seconds[c, method] for c in self.conditions) / sum(self.clips.values())

    def rank_agreement(self, size=None, a: str = "FF", b: str = "f_measure", condition: str | None = None,
                       resamples: int = metrics.BOOTSTRAP_RESAMPLES, seed: int = 0) -> metrics.Estimate:
        """Spearman correlation between the methods' mean ``a`` and mean ``b`` over one condition's clips (or all
        conditions' clips together), with a bootstrap interval: clips are resampled, the same clips for every
        method, and both rankings recomputed."""
        conditions = [condition] if condition is not None else self.conditions
        stack = lambda metric: torch.stack([torch.cat([self.per_clip[c, m, size][metric] for c in conditions])  # noqa: E731
                                            for m in self.methods]).double()
        first, second = stack(a), stack(b)
        generator = torch.Generator().manual_seed(seed)
        n = first.shape[1]
        draws = [torch.arange(n)] + [torch.randint(n, (n,), generator=generator) for _ in range(resamples)]
        values = [float(metrics.spearman(first[:, i].nanmean(1), second[:, i].nanmean(1))) for i in draws]
        rest = torch.tensor(values[1:])
        low, high = torch.quantile(rest, torch.tensor([0.025, 0.975])).tolist()
        return metrics.Estimate(values[0], low, high, n)

    def to_dict(self) -> dict:
        """Means and intervals of every metric, and seconds per clip: the JSON of ``benchmarks/compare.py``."""
        out = {"clips": self.clips, "sizes": list(self.sizes), "methods": {}}
        for method in self.methods:
            rows = {}
            for (condition, m, size), values in self.per_clip.items():
                if m == method:
                    key = f"{condition} @ {'own size' if size is None else f'{size:.0%}'}"
                    rows[key] = {k: list(metrics.bootstrap(v))[:3] for k, v in values.items()}
            out["methods"][method] = {"seconds_per_clip": round(self.seconds_per_clip(method), 4), "rows": rows}
        return out


def compare(explainers: dict, model, conditions: dict, sizes=SIZES, by: str = "bins", progress: bool = False,
            seed: int = 0, masked_in_at=(None, 0.1)) -> Comparison:
    """Explain every condition's clips with every explainer (all explaining the model's prediction on each clip)
    and measure faithfulness and ground truth at the methods' own size and at each matched size.

    The metrics of the masked-in clip (AI, AD, AG, Fid-In) are measured at the sizes of ``masked_in_at``
    (``None``: the method's own size); FF, the mask statistics and ground truth at every size."""
    result = Comparison(list(explainers), list(conditions), tuple(sizes))
    bar = tqdm(total=len(conditions) * len(explainers), desc="explaining", disable=not progress)
    for name, condition in conditions.items():
        waves = condition["waves"]
        magnitude, phase = model.spectrogram(waves)
        target = resolve_target(model, magnitude, phase=phase)  # one target per clip, the same for every method
        p = probabilities(model, magnitude, phase=phase)
        result.clips[name] = len(waves)
        for method, explainer in explainers.items():
            start = time.perf_counter()
            explanation = explainer.explain(waves, target)
            result.seconds[name, method] = time.perf_counter() - start
            for size in (None, *sizes):
                cut = explanation if size is None else explanation.at_size(size, by=by, seed=seed)
                truth = ground_truth(cut, condition) if condition.get("masks") is not None else {}
                faithful = faithfulness(model, cut, p, masked_in=masked_in_at is None or size in masked_in_at)
                result.per_clip[name, method, size] = {**{k: v.cpu() for k, v in faithful.items()}, **truth}
            bar.update()
    bar.close()
    return result


def randomisation(explainers: dict, model, waves: torch.Tensor, layers, target: torch.Tensor | None = None,
                  seed: int = 0, return_masks: bool = False) -> dict[str, dict]:
    """Cascading model randomisation of every explainer on the same clips and targets
    (:func:`audiox.metrics.cascading_randomization`): ``{method: {"layers", "similarity" [1 + L, B]}}``
    (and ``"masks"`` with ``return_masks``).

    Each explainer is re-built around the randomised copy (:meth:`~audiox.explain.Explainer.on`) and
    explains the class the *original* model predicts, so only the model changes.
    """
    if target is None:
        magnitude, phase = model.spectrogram(waves)
        target = resolve_target(model, magnitude, phase=phase)
    return {method: metrics.cascading_randomization(
                model, layers, lambda m, e=explainer: e.on(m).explain(waves, target).mask, seed=seed,
                return_masks=return_masks)
            for method, explainer in explainers.items()}
