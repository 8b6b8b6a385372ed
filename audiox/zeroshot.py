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
"""

from __future__ import annotations

import hashlib
import re

import torch
from tqdm.auto import tqdm

from .config import cache_dir
from .data.hub import save_atomically

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


def zero_shot(clap, audio_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[B, C]``: softmax over ``logit_scale * cosine`` (the CLAP zero-shot classifier)."""
    logits = clap.logit_scale * audio_embeddings @ text_embeddings.to(audio_embeddings.device).T
    return logits.softmax(dim=-1)


def embed_waves(
    clap, waves: torch.Tensor, sample_rate: int | None = None, batch_size: int = 64, progress: bool = True
) -> torch.Tensor:
    """Audio embeddings ``[N, D]`` of ``waves [N, T]`` in batches, on the model's device, returned on CPU.

    ``sample_rate`` is the rate of ``waves`` (default: the model's); another rate is resampled with a warning.
    """
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(waves), batch_size), desc="embedding audio", disable=not progress):
            out.append(clap.embed_audio(waves[start : start + batch_size], sample_rate).cpu())
    return torch.cat(out)


def _content_key(waves: torch.Tensor) -> str:
    return hashlib.sha256(waves.contiguous().numpy().tobytes()).hexdigest()[:16]


def embed_dataset(clap, dataset, batch_size: int = 64, cache: bool = True, progress: bool = True):
    """Embeddings ``[N, D]`` and labels ``[N]`` of a whole dataset, cached on disk.

    The cache key is the model's name and weights sha256, the dataset's class and split, and a hash
    of the clips themselves,
    so a changed model or dataset never reads a stale file. Models without a known sha
    (random or freshly trained weights) are not cached.
    """
    from .data import stack

    waves, labels = stack(dataset)
    sha = getattr(clap, "weights_sha256", None)
    path = None
    if cache and sha:
        dataset_key = f"{type(dataset).__name__}-{getattr(dataset, 'split', 'all')}-{_content_key(waves)}"
        model_key = f"{clap.name.replace('/', '_')}-{sha[:12]}"
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
    flat = labels.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def recall_at_k(similarity: torch.Tensor, relevant: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """Retrieval recall: the fraction of queries with at least one relevant item in their top k.

    Args:
        similarity: ``[Q, N]`` query-to-item scores.
        relevant: ``[Q, N]`` boolean, which items answer each query.

    >>> sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8]])
    >>> rel = torch.tensor([[True, False, False], [False, True, False]])
    >>> recall_at_k(sim, rel, ks=(1, 2))
    {'R@1': 0.5, 'R@2': 0.5}
    """
    if not relevant.any(dim=1).all():
        raise ValueError("every query needs at least one relevant item; drop queries without one.")
    order = similarity.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order)
    return {f"R@{k}": float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


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
