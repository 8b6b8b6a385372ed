"""Zero-shot classification and text/audio retrieval with any :class:`~audiox.models.clap.Clap`.

A CLAP classifies without training a classifier: embed one text prompt per class
("the sound of a siren"), embed the clip, and pick the class whose prompt is most similar.
Averaging the text embeddings of several templates per class (*prompt ensembling*, as in
CLIP) usually helps a little. Retrieval ranks clips for a text query (or texts for a clip).

Dataset embeddings are cached on disk, keyed by the model's weights (sha256) and the
dataset's content, so re-running a notebook does not re-embed.

>>> import torch
>>> from audiox.models.clap import TinyClap
>>> clap = TinyClap()  # random weights: shapes only
>>> text = class_embeddings(clap, ["siren", "bird"], templates=TEMPLATES[:2])
>>> text.shape
torch.Size([2, 128])
>>> probs = zero_shot(clap, clap.embed_audio(torch.randn(3, 16000) * 0.1), text)
>>> probs.shape, bool(probs.sum(-1).allclose(torch.ones(3)))
(torch.Size([3, 2]), True)

:class:`ZeroShotClassifier` turns a CLAP and a list of class names into a classifier of the
course's Classifier contract, so every explanation method can explain a zero-shot decision:

>>> model = ZeroShotClassifier(clap, ["siren", "bird"])
>>> model(torch.randn(3, 16000) * 0.1).shape                # logits [B, classes]
torch.Size([3, 2])
>>> from audiox.models.base import Classifier
>>> isinstance(model, Classifier), [tuple(h.shape[1:2]) for h in model.audio_features(torch.randn(16000) * 0.1)]
(True, [(16,), (32,), (64,), (128,)])
"""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

from .batching import batched
from .config import cache_dir
from .data.hub import save_atomically
from .models.base import numerics, parameter_device

#: The prompt the course uses for zero-shot classification, then the ensemble.
PROMPT = "the sound of a {}"
TEMPLATES = (
    "the sound of a {}",
    "this is a sound of {}",
    "a recording of a {}",
    "a {} can be heard",
    "audio of a {}",
)


def class_embeddings(clap, classes: list[str], templates=(PROMPT,)) -> torch.Tensor:
    """One text embedding per class ``[C, D]``: the normalised mean over ``templates``."""
    if not classes:
        raise ValueError("classes is empty; pass the class names to build prompts for.")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"template {bad[0]!r} has no '{{}}' for the class name, e.g. 'the sound of a {{}}'.")
    prompts = [t.format(c) for c in classes for t in templates]
    with torch.no_grad():
        emb = clap.embed_text(prompts).reshape(len(classes), len(templates), -1).mean(dim=1)
    return torch.nn.functional.normalize(emb, dim=-1)


def logits(clap, audio_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Zero-shot logits ``[B, C]``: ``logit_scale * cosine(audio, text)`` of L2-normalised embeddings.

    The one place the CLAP zero-shot classifier's logits are computed; a softmax over them gives
    the class probabilities (:func:`zero_shot`), once. ``clap`` is the model (its ``logit_scale``)
    or the scale itself (a temperature being trained, or chosen).

    >>> class Scale: logit_scale = 10.0
    >>> logits(Scale(), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    tensor([[10.,  0.]])
    >>> logits(2.0, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    tensor([[0.]])
    """
    scale = getattr(clap, "logit_scale", clap)
    return scale * audio_embeddings @ text_embeddings.to(audio_embeddings).T


def zero_shot(clap, audio_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[B, C]``: softmax over :func:`logits` (the CLAP zero-shot classifier)."""
    return logits(clap, audio_embeddings, text_embeddings).softmax(dim=-1)


class ZeroShotClassifier(nn.Module):
    """A CLAP and one prompt per class, as a classifier of the course's Classifier contract.

    ``spec_to_logits(magnitude)`` is :func:`logits` of the (masked) magnitude's embedding against
    the class prompts' embeddings, so a mask on the linear STFT reaches the zero-shot decision
    through the CLAP's own front end; ``logits_and_hidden`` adds the audio encoder's hidden maps
    (for L2I, LMAC-ZS and GradCAM). The text side is fixed: its embeddings are computed once
    (``class_embeddings(clap, classes, templates)``, or pass ``text_embeddings``) and held as a
    buffer, so gradients flow to the audio only. ``prompt_embeddings(prompts)`` embeds other
    prompts (LMAC-ZS explains any text).

    Args:
        clap: a :class:`~audiox.models.clap.Clap`.
        classes: the class names, in the order of the logits.
        templates: prompt templates averaged per class (default: :data:`PROMPT` alone).
        text_embeddings: ``[C, D]`` to use instead of embedding the templates.
    """

    def __init__(self, clap, classes, templates=(PROMPT,), text_embeddings: torch.Tensor | None = None):
        super().__init__()
        self.clap = clap
        self.classes = list(classes)
        if len(self.classes) < 2:
            raise ValueError(f"classes={self.classes}; a zero-shot classifier needs at least two class names.")
        self.templates = tuple(templates)
        self.prompts = [self.templates[0].format(c) for c in self.classes]
        if text_embeddings is None:
            text_embeddings = class_embeddings(clap, self.classes, self.templates)
        if text_embeddings.shape[0] != len(self.classes):
            raise ValueError(f"text_embeddings has {text_embeddings.shape[0]} rows for {len(self.classes)} classes.")
        # where the CLAP is, whichever device embeddings passed in come from: explainers index them with its outputs
        device = parameter_device(clap) if isinstance(clap, nn.Module) else text_embeddings.device
        self.register_buffer("text_embeddings", nn.functional.normalize(text_embeddings.detach().float(), dim=-1).to(
            device), persistent=False)
        self.sample_rate, self.n_fft, self.hop_length = clap.sample_rate, clap.n_fft, clap.hop_length
        self.name = f"zero-shot {clap.name}"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def spectrogram(self, wave, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The CLAP's linear STFT (validated at the edge), ``[B, F, T]`` magnitude and phase."""
        return self.clap.spectrogram(wave, sample_rate)

    def spec_to_logits(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Zero-shot logits ``[B, C]`` of a (masked) linear magnitude; differentiable."""
        return logits(self.clap, self.clap.spec_to_embedding(magnitude), self.text_embeddings)

    def logits_and_hidden(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the audio encoder's hidden maps, shallow to deep, in one pass."""
        embedding, hidden = self.clap.embedding_and_hidden(magnitude)
        return logits(self.clap, embedding, self.text_embeddings), hidden

    def audio_features(self, wave, sample_rate: int | None = None) -> list[torch.Tensor]:
        """The audio encoder's hidden maps of a clip or batch, shallow to deep (as ``Clap.audio_features``)."""
        return self.clap.audio_features(wave, sample_rate)

    def prompt_embeddings(self, prompts) -> torch.Tensor:
        """L2-normalised text embeddings ``[P, D]`` of free-text prompts, on the model's device."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        bad = [p for p in prompts if not isinstance(p, str) or not p.strip()]
        if bad:
            raise ValueError(f"prompts must be non-empty strings such as 'a siren', got {bad[0]!r}.")
        with torch.no_grad():
            return nn.functional.normalize(self.clap.embed_text(prompts).float(), dim=-1).to(self.text_embeddings)

    def forward(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """Logits ``[B, C]`` of a clip ``[T]`` or batch ``[B, T]``."""
        return self.spec_to_logits(self.spectrogram(wave, sample_rate)[0])


def embed_waves(
    clap, waves: torch.Tensor, sample_rate: int | None = None, batch_size: int = 64, progress: bool = True
) -> torch.Tensor:
    """Audio embeddings ``[N, D]`` of ``waves [N, T]`` in batches, on the model's device, returned on CPU.

    ``sample_rate`` is the rate of ``waves`` (default: the model's); another rate is resampled with a warning.
    """
    return batched(lambda chunk: clap.embed_audio(chunk, sample_rate), waves, batch_size=batch_size, to="cpu",
                   progress=progress, desc="embedding audio")


def _content_key(waves: torch.Tensor) -> str:
    return hashlib.sha256(waves.contiguous().numpy().tobytes()).hexdigest()[:16]


def embed_dataset(clap, dataset, batch_size: int = 64, cache: bool = True, progress: bool = True):
    """Embeddings ``[N, D]`` and labels ``[N]`` of a whole dataset, cached on disk.

    The cache key is the model's name and weights sha256, where and in what precision it computes
    (:func:`~audiox.models.base.numerics`: a cache shared by a GPU and a CPU run serves each its own
    embeddings), the dataset's class and split, and a hash of the clips themselves,
    so a changed model or dataset never reads a stale file. Models without a known sha
    (random or freshly trained weights) are not cached.
    """
    from .data.base import stack

    waves, labels = stack(dataset)
    sha = getattr(clap, "weights_sha256", None)
    path = None
    if cache and sha:
        dataset_key = f"{type(dataset).__name__}-{getattr(dataset, 'split', 'all')}-{_content_key(waves)}"
        model_key = f"{clap.name.replace('/', '_')}-{sha[:12]}-{numerics(clap)}"
        path = cache_dir() / "embeddings" / model_key / f"{dataset_key}.pt"
        if path.exists():
            return torch.load(path, weights_only=True), labels
    embeddings = embed_waves(clap, waves, dataset.sample_rate, batch_size, progress)
    if path is not None:
        save_atomically(embeddings, path)
    return embeddings, labels


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts ``[true, predicted]``.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    flat = labels.long() * n_classes + predictions.long().to(labels.device)  # predictions may live on the GPU
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks=(1, 5, 10), per_query: bool = False) -> dict:
    """Retrieval recall: the fraction of queries with at least one relevant item in their top k.

    Args:
        similarity: ``[Q, N]`` query-to-item scores.
        relevant: ``[Q, N]`` boolean, which items answer each query.
        per_query: give each query's hit (1 or 0) ``[Q]`` instead of the mean, for bootstrap intervals.

    >>> sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8]])
    >>> rel = torch.tensor([[True, False, False], [False, True, False]])
    >>> recall_at_k(sim, rel, ks=(1, 2))
    {'R@1': 0.5, 'R@2': 0.5}
    >>> recall_at_k(sim, rel, ks=(1,), per_query=True)
    {'R@1': tensor([1., 0.])}
    """
    relevant = relevant.to(similarity.device)  # scores from the model's device, relevance built on the CPU
    if not relevant.any(dim=1).all():
        raise ValueError("every query needs at least one relevant item; drop queries without one.")
    order = similarity.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order)
    found = {f"R@{k}": hits[:, :k].any(dim=1).float() for k in ks}
    return found if per_query else {k: float(v.mean()) for k, v in found.items()}


def words(text: str) -> list[str]:
    """Lower-case word tokens; underscores split too, so ESC-50's "crackling_fire" gives two words.

    >>> words("A high-pitched crackling_fire")
    ['a', 'high', 'pitched', 'crackling', 'fire']
    """
    return re.findall(r"[a-z0-9']+", text.lower().replace("_", " "))


def item_words(item: dict) -> set[str]:
    """The words that truly describe a dataset item: its class name and, when it has them, its attribute words."""
    return set(words(item["label_name"])) | {w for v in item.get("attributes", {}).values() for w in words(v)}


def description_relevance(queries: list[str], described_by: list[set[str]]) -> torch.Tensor:
    """``[Q, N]``: item j answers query q when every descriptive word of q is true of item j.

    The descriptive vocabulary is every word that describes some item (class names, attribute
    words); the rest of a caption ("the sound of", "with a ... texture") is wording. So "a sweeping
    siren with a smooth texture" is answered by every smooth, sweeping siren, whichever template
    its own captions happened to use, not only by the clip the caption was drawn for.

    >>> items = [{"siren", "sweeping", "smooth"}, {"siren", "sweeping", "rough"}, {"bird", "smooth"}]
    >>> description_relevance(["a sweeping siren", "a smooth siren", "the sound of a bird"], items).tolist()
    [[True, True, False], [True, False, False], [False, False, True]]
    """
    vocabulary = sorted(set().union(*described_by))
    index = {w: k for k, w in enumerate(vocabulary)}
    asks = torch.zeros(len(queries), len(vocabulary))
    for q, query in enumerate(queries):
        for w in words(query):
            if w in index:
                asks[q, index[w]] = 1.0
    has = torch.zeros(len(described_by), len(vocabulary))
    for j, item in enumerate(described_by):
        has[j, [index[w] for w in item]] = 1.0
    # a query is answered when none of the words it asks for is missing from the item
    return (asks @ (1 - has).T) == 0
