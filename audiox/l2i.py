"""Listen to Interpret (L2I, seed paper 003): explain a classifier with a few listenable NMF components.

Parekh et al. (NeurIPS 2022; IEEE/ACM TASLP 2024). A spectral dictionary ``W`` ``[F, K]`` is
learned beforehand by NMF on ``log1p|STFT|`` of training audio (:mod:`audiox.nmf`) and frozen.
An **interpreter** reads hidden layers of the classifier and outputs non-negative activations
``H`` ``[B, K, T]``, one time course per component, such that

* ``W H`` reconstructs ``log1p|X|`` (the components describe the audio), and
* a linear head on the time-pooled ``H`` reproduces the classifier's output (they describe the decision).

The loss (:func:`interpreter_loss`) is ``5 * MSE(W H, log1p|X|) + fidelity_weight * KL(classifier ||
interpreter) + 0.4 * mean(H)``. The explanation of class ``c`` for one clip: the *relevance*
of each component, its pooled activation times its head weight for ``c`` (normalised by the
largest, :func:`relevance`); the top few components above a threshold; and a Wiener-like mask
``W_S H_S / W H`` on the clip's magnitude, turned into sound with the original phase
(:class:`L2I`, the course's explainer contract). Two modes: **post-hoc** (the classifier is frozen,
only the interpreter learns) and **by design** (classifier and interpreter learn together,
:func:`train_interpreter`). The interpreter owns its dictionary (``interpreter.dictionary``, a frozen
buffer): the two are only meaningful together, and ship together.

>>> import torch
>>> from audiox.models.classifiers import CNNClassifier
>>> classifier = CNNClassifier(["siren", "bird", "rain"]).eval()   # random weights: shapes only
>>> W = torch.rand(257, 12)                                         # a dictionary [F, K]
>>> interpreter = Interpreter.for_classifier(classifier, W)
>>> magnitude, phase = classifier.spectrogram(torch.randn(2, 16_000) * 0.1)
>>> out = interpreter(*features(classifier, magnitude, interpreter.layers)[1:], n_frames=magnitude.shape[-1])
>>> out.activations.shape, out.logits.shape, bool((out.activations >= 0).all())
(torch.Size([2, 12, 126]), torch.Size([2, 3]), True)
>>> explanation = L2I(classifier, interpreter, top=3).explain(torch.randn(2, 16_000) * 0.1)
>>> explanation.mask.shape, explanation.wave.shape, explanation.scores.shape
(torch.Size([2, 257, 126]), torch.Size([2, 16000]), torch.Size([2, 12]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .explain import Explainer
from .models.base import batched_with_phase, needs_phase, parameter_device, spec_logits, spec_logits_and_hidden
from .models.train import History, fit, minibatches
from .nmf import component_masks

#: The loss weights of the L2I paper: reconstruction, L1 on the activations.
RECONSTRUCTION_WEIGHT, SPARSITY_WEIGHT = 5.0, 0.4


@dataclass
class InterpreterOutput:
    activations: torch.Tensor  # H [B, K, T], non-negative
    logits: torch.Tensor  # the head's logits [B, C]


class Interpreter(nn.Module):
    """Hidden maps of the classifier -> NMF activations ``H`` ``[B, K, T]`` -> pooled linear head.

    Each tapped map ``[B, C_i, bands, T_i]`` is averaged over its frequency bands (time is what
    ``H`` needs; the spectral shape comes from ``W``), projected by a 1x1 convolution, and
    brought to the finest tapped time resolution; two 1-D convolutions mix the layers into ``K``
    activations, made non-negative by a ReLU (exact zeros: an inactive component is silent), and
    stretched linearly to the spectrogram's ``T`` frames (which keeps them non-negative).

    Args:
        channels: channels ``C_i`` of the tapped maps, in the order :func:`features` returns them.
        layers: which of the classifier's hidden maps to read (indices into its list).
        n_components, n_freq: the dictionary's size ``[n_freq, n_components]``; its values come with
            :meth:`for_classifier` or with the shipped weights.
        classes: the names of the classifier's classes, to refuse a classifier it was not trained for.
    """

    def __init__(self, channels: Sequence[int], layers: Sequence[int], n_components: int, n_classes: int,
                 width: int = 64, n_freq: int = 257, classes: Sequence[str] | None = None):
        super().__init__()
        if len(channels) != len(layers):
            raise ValueError(f"one channel count per tapped layer: {list(channels)} vs layers {list(layers)}.")
        self.config = {"channels": list(channels), "layers": list(layers), "n_components": n_components,
                       "n_classes": n_classes, "width": width, "n_freq": n_freq,
                       "classes": list(classes) if classes is not None else None}
        self.classes = self.config["classes"]
        # W [F, K]: frozen (a buffer, not a parameter), saved with the weights
        self.register_buffer("dictionary", torch.zeros(n_freq, n_components))
        self.layers = list(layers)
        self.read = nn.ModuleList(nn.Conv1d(c, width, 1) for c in channels)
        self.decode = nn.Sequential(
            nn.ReLU(), nn.Conv1d(width * len(channels), width, 3, padding=1), nn.ReLU(),
            nn.Conv1d(width, n_components, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(n_components, n_classes)

    @classmethod
    def for_classifier(cls, classifier, W: torch.Tensor, layers: Sequence[int] = (-2, -1), width: int = 64):
        """An interpreter sized for ``classifier``'s hidden maps (default: its last two blocks) around the NMF
        dictionary ``W`` ``[F, K]`` (:func:`audiox.nmf.fit`), on the classifier's device.

        Its weights are drawn on the CPU and then moved, so a seeded interpreter starts from the same
        weights on any device."""
        # a quiet tone: any clip the classifier accepts tells the maps' shapes
        tone = 1e-2 * torch.sin(torch.arange(classifier.sample_rate // 2) * 0.1)
        probe, phase = classifier.spectrogram(tone)
        with torch.no_grad():
            hidden = spec_logits_and_hidden(classifier, probe, phase)[1]
        if W.ndim != 2 or W.shape[0] != probe.shape[1]:
            raise ValueError(f"W must be an NMF dictionary [F={probe.shape[1]}, K] on the classifier's STFT, "
                             f"got {tuple(W.shape)}.")
        layers = [range(len(hidden))[i] for i in layers]  # negative indices -> positions
        interpreter = cls([hidden[i].shape[1] for i in layers], layers, W.shape[1], classifier.n_classes, width,
                          W.shape[0], getattr(classifier, "classes", None))
        interpreter.dictionary.copy_(W.detach())
        device = parameter_device(classifier) if isinstance(classifier, nn.Module) else probe.device
        return interpreter.to(device)

    def forward(self, pooled: list[torch.Tensor], n_frames: int) -> InterpreterOutput:
        # decode at the finest tapped time resolution, then stretch H to the spectrogram's frames:
        # 4-8x cheaper than decoding at full resolution, and H is smooth at that scale anyway
        steps = max(p.shape[-1] for p in pooled)
        x = [F.interpolate(read(p), size=steps, mode="linear") for read, p in zip(self.read, pooled)]
        activations = F.interpolate(self.decode(torch.cat(x, dim=1)), size=n_frames, mode="linear")
        return InterpreterOutput(activations, self.head(activations.mean(dim=-1)))


def features(classifier, magnitude: torch.Tensor, layers: Sequence[int],
             phase: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The classifier's logits and its tapped hidden maps averaged over frequency, ``[B, C_i, T_i]`` (``phase``:
    the clips' phase, for a model that hears waves)."""
    logits, hidden = spec_logits_and_hidden(classifier, magnitude, phase)
    return logits, [hidden[i].mean(dim=2) for i in layers]


def interpreter_loss(W, magnitude, classifier_logits, out: InterpreterOutput, fidelity_weight: float) -> torch.Tensor:
    """``5 MSE(W H, log1p|X|) + fidelity_weight KL(p_classifier || p_interpreter) + 0.4 mean(H)``."""
    reconstruction = F.mse_loss(torch.einsum("fk,bkt->bft", W, out.activations), torch.log1p(magnitude))
    fidelity = F.kl_div(out.logits.log_softmax(-1), classifier_logits.log_softmax(-1), log_target=True,
                        reduction="batchmean")
    return RECONSTRUCTION_WEIGHT * reconstruction + fidelity_weight * fidelity + SPARSITY_WEIGHT * out.activations.mean()


def train_interpreter(
    classifier,
    interpreter: Interpreter,
    train_magnitude: torch.Tensor,
    val_magnitude: torch.Tensor,
    *,
    by_design: bool = False,
    train_labels: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    train_phase: torch.Tensor | None = None,
    val_phase: torch.Tensor | None = None,
    epochs: int = 20,
    batch_size: int = 32,
    lr: float = 5e-3,
    fidelity_weights: tuple[float, float] = (0.5, 1.0),
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train an interpreter on magnitudes ``[N, F, T]``: post-hoc (default) or by design.

    Post-hoc: the classifier stays frozen in eval mode; its logits and hidden maps are computed
    once. By design (``by_design=True``, needs labels): the classifier learns too, with its own
    cross-entropy added to the loss, so the decision is shaped to be explainable by ``W``.
    The fidelity weight is ``fidelity_weights[0]`` for the first half of the epochs, then
    ``fidelity_weights[1]`` (0.5 then 1.0 in the paper): first the components learn to describe
    the audio, then the decision. Validation keeps the epoch
    with the best top-1 fidelity (by design: fidelity plus the classifier's accuracy).
    A model that hears waves (a wrapped model) needs the clips' phases too: ``train_phase``, ``val_phase``.
    """
    W = interpreter.dictionary
    if by_design and (train_labels is None or val_labels is None):
        raise ValueError("by_design=True trains the classifier too: pass train_labels and val_labels.")
    if needs_phase(classifier) and (train_phase is None or val_phase is None or by_design):
        raise ValueError("a wrapped model hears waves: pass train_phase and val_phase (model.spectrogram(waves)[1]); "
                         "by_design training is for the course's own classifiers.")
    # everything where the interpreter is: the batches are indexed there, labels included
    device = W.device
    train_magnitude, val_magnitude = train_magnitude.to(device), val_magnitude.to(device)
    if by_design:
        train_labels, val_labels = train_labels.to(device), val_labels.to(device)
    layers, n_frames = interpreter.layers, train_magnitude.shape[-1]
    if not by_design:
        classifier.eval()
        phase = None if train_phase is None else train_phase.to(device)
        frozen_logits, frozen_maps = batched_with_phase(lambda m, p: features(classifier, m, layers, p), classifier,
                                                        train_magnitude, phase,
                                                        batch_size=64 if needs_phase(classifier) else 256)
    model = nn.ModuleDict({"interpreter": interpreter, **({"classifier": classifier} if by_design else {})})

    def batches(epoch):
        _, indices = minibatches(len(train_magnitude), batch_size, epoch, seed)
        weight = fidelity_weights[0] if epoch < epochs // 2 else fidelity_weights[1]
        for idx in indices:
            yield idx.to(device), weight

    def loss_fn(model, batch):
        idx, weight = batch
        magnitude = train_magnitude[idx]
        if by_design:
            logits, maps = features(classifier, magnitude, layers)
            out = interpreter(maps, n_frames)
            # the interpreter imitates the classifier, not the other way round: detach its target
            return interpreter_loss(W, magnitude, logits.detach(), out, weight) + F.cross_entropy(
                logits, train_labels[idx])
        out = interpreter([m[idx] for m in frozen_maps], n_frames)
        return interpreter_loss(W, magnitude, frozen_logits[idx], out, weight)

    def evaluate(model):
        classifier_logits, interpreter_logits = predict(classifier, interpreter, val_magnitude,
                                                        phase=None if val_phase is None else val_phase.to(device))
        score = fidelity(classifier_logits, interpreter_logits, k=1)
        if by_design:
            score += float((classifier_logits.argmax(-1) == val_labels).float().mean())
        return score

    history = fit(model, loss_fn, batches, epochs=epochs, lr=lr, evaluate=evaluate, seed=seed, progress=progress,
                  desc="L2I by design" if by_design else "L2I interpreter")
    classifier.eval()
    return history


def predict(classifier, interpreter: Interpreter, magnitude: torch.Tensor, batch_size: int = 256,
            phase: torch.Tensor | None = None):
    """Classifier logits and interpreter logits ``[N, C]`` of many magnitudes, in batches (``phase`` for a model
    that hears waves)."""
    def both(chunk, phase_chunk):
        logits, maps = features(classifier, chunk, interpreter.layers, phase_chunk)
        return logits, interpreter(maps, chunk.shape[-1]).logits

    return batched_with_phase(both, classifier, magnitude, phase,
                              batch_size=min(batch_size, 64) if needs_phase(classifier) else batch_size)


def fidelity(classifier_logits: torch.Tensor, interpreter_logits: torch.Tensor, k: int = 1) -> float:
    """Top-k fidelity: the fraction of clips whose classifier prediction is among the interpreter's top ``k``.

    >>> fidelity(torch.tensor([[3.0, 1, 0], [0, 3.0, 1]]), torch.tensor([[2.0, 1, 0], [2.0, 1, 0]]), k=1)
    0.5
    >>> fidelity(torch.tensor([[3.0, 1, 0], [0, 3.0, 1]]), torch.tensor([[2.0, 1, 0], [2.0, 1, 0]]), k=2)
    1.0
    """
    top = interpreter_logits.topk(k, dim=-1).indices
    return float((top == classifier_logits.argmax(-1, keepdim=True)).any(-1).float().mean())


def relevance(interpreter: Interpreter, activations: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relevance ``[B, K]`` of each component for class ``target`` ``[B]``: pooled activation times the
    head's weight for that class, divided by the largest (so the most relevant component has 1).

    Negative values (components that speak *against* the class) stay negative.
    """
    contribution = activations.mean(dim=-1) * interpreter.head.weight[target]
    return contribution / contribution.amax(dim=-1, keepdim=True).clamp(min=1e-12)


def relevant_components(relevance_scores: torch.Tensor, top: int = 5, threshold: float = 0.2) -> torch.Tensor:
    """Boolean ``[B, K]``: each clip's ``top`` most relevant components whose relevance exceeds ``threshold``.

    >>> relevant_components(torch.tensor([[1.0, 0.5, 0.1, -0.3]]), top=3)
    tensor([[ True,  True, False, False]])
    """
    chosen = torch.zeros_like(relevance_scores, dtype=torch.bool)
    ranked = relevance_scores.topk(min(top, relevance_scores.shape[-1]), dim=-1)
    chosen.scatter_(-1, ranked.indices, ranked.values > threshold)
    return chosen


def shipped_interpreter(model, device=None) -> Interpreter:
    """The interpreter shipped for ``model`` (``l2i-synth-cnn`` for synth-cnn, ``l2i-tiny-clap`` for tiny-clap's
    zero-shot classifier over the SynthSounds classes), trained by ``python -m audiox.models.recipes train <name>``."""
    from .models import zoo

    base = getattr(getattr(model, "clap", model), "zoo_name", None)
    name = f"l2i-{base}"
    if base is None or name not in zoo.ZOO:
        raise ValueError("no L2I interpreter is shipped for this model: train one with audiox.l2i.train_interpreter "
                         "(notebook 03 does it) and pass it as interpreter=.")
    interpreter = zoo.load(name, device=device if device is not None else parameter_device(model))
    if interpreter.classes != list(model.classes):
        raise ValueError(f"the shipped {name} explains the classes {interpreter.classes}, not {list(model.classes)}; "
                         f"train an interpreter for these classes with audiox.l2i.train_interpreter.")
    return interpreter


class L2I(Explainer):
    """L2I as an explainer: the relevant NMF components of the class explained, as a Wiener-like mask.

    ``model``: a Classifier with ``logits_and_hidden`` (synth-cnn, a zero-shot CLAP, a wrapped
    model); ``interpreter``: trained on that model's hidden maps (default: the shipped one).
    For each clip, the relevance of each component for the target (:func:`relevance`), its
    ``top`` components above ``threshold`` (:func:`relevant_components`), and their share of the
    interpreter's reconstruction ``W_S H_S / W H`` as the mask (:func:`audiox.nmf.component_masks`).
    ``scores`` is the relevance ``[B, K]``; ``info`` holds ``components`` ``[B, K]`` (bool) and
    ``activations`` ``H`` ``[B, K, T]``.
    """

    method = "L2I"

    def __init__(self, model, interpreter: Interpreter | None = None, top: int = 5, threshold: float = 0.2):
        super().__init__(model)
        self.interpreter = interpreter if interpreter is not None else shipped_interpreter(model)
        self.top, self.threshold = top, threshold

    def masks(self, magnitude, target, phase=None):
        with torch.no_grad():
            _, maps = features(self.model, magnitude, self.interpreter.layers, phase)
            out = self.interpreter(maps, magnitude.shape[-1])
        scores = relevance(self.interpreter, out.activations, target)
        chosen = relevant_components(scores, self.top, self.threshold)
        mask = component_masks(self.interpreter.dictionary, out.activations, chosen.float())
        return mask, scores, {"components": chosen, "activations": out.activations}


@torch.no_grad()
def removal_drop(classifier, magnitude: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                 phase: torch.Tensor | None = None) -> torch.Tensor:
    """Faithfulness: drop of the probability of ``target`` when the masked part is removed, ``p(X) - p((1 - M) X)``."""
    before = spec_logits(classifier, magnitude, phase).softmax(-1)
    after = spec_logits(classifier, (1 - mask) * magnitude, phase).softmax(-1)
    index = target[:, None]
    return (before.gather(1, index) - after.gather(1, index))[:, 0]


def random_components(chosen: torch.Tensor, generator: torch.Generator | None = None,
                      candidates: torch.Tensor | None = None) -> torch.Tensor:
    """As many components per clip as ``chosen`` has, drawn at random among ``candidates`` (boolean ``[B, K]``,
    default: all): the baseline for faithfulness. Draw among the clip's *active* components
    (``activations.sum(-1) > 0``): an inactive component is silent, and removing it removes nothing, so a
    control drawn among all of them would flatter the interpretation.

    >>> random_components(torch.tensor([[True, True, False, False, False]])).sum().item()
    2
    >>> random_components(torch.tensor([[True, False, False, False]]), candidates=torch.tensor([[False, False, True, False]])).tolist()
    [[False, False, True, False]]
    """
    scores = torch.rand(chosen.shape, generator=generator).to(chosen.device)
    if candidates is not None:
        scores = torch.where(candidates.to(chosen.device), scores, -1.0)  # non-candidates rank last
    order = scores.argsort(dim=-1, descending=True).argsort(dim=-1)  # rank of each component
    return order < chosen.sum(dim=-1, keepdim=True)
