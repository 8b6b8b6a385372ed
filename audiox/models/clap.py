"""The Clap protocol: one contract for every contrastive audio-text model in the course.

Three of the four methods explain a CLAP model, through these seams only:

* ``embed_audio(wave [B, T]) -> [B, D]`` and ``embed_text(list[str]) -> [N, D]``,
  both L2-normalised, and ``logit_scale`` (similarity logits = scale * cosine);
* ``spectrogram(wave) -> (magnitude, phase)``: the *linear-frequency* STFT that masks live on;
* ``spec_to_embedding(magnitude [B, F, T]) -> [B, D]``: the differentiable path from that
  (possibly masked) magnitude through the model's own front end (e.g. mel) to the
  embedding. ``embed_audio(w)`` equals ``spec_to_embedding(spectrogram(w)[0])``;
* ``audio_features(wave) -> list[Tensor]``: hidden maps of the audio encoder, for decoders
  such as LMAC-ZS, and ``embedding_and_hidden(magnitude)``: the embedding and those maps of a
  (masked) magnitude in one pass.

Zero-shot logits (``logit_scale * cosine``) are computed in one place, :func:`audiox.zeroshot.logits`.

:class:`ClapBase` implements the shared parts; a backbone fills in ``_front_end`` etc.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from .. import audio
from .base import SpectrogramModel
from .classifiers import LogMelCNN


@runtime_checkable
class Clap(Protocol):
    name: str
    sample_rate: int
    embed_dim: int
    n_fft: int
    hop_length: int

    @property
    def logit_scale(self) -> float: ...

    def embed_audio(self, wave: torch.Tensor) -> torch.Tensor: ...

    def embed_text(self, texts: list[str]) -> torch.Tensor: ...

    def spectrogram(self, wave: torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def spec_to_embedding(self, magnitude: torch.Tensor) -> torch.Tensor: ...

    def audio_features(self, wave: torch.Tensor, sample_rate: int | None = None) -> list[torch.Tensor]: ...

    def embedding_and_hidden(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]: ...


class ClapBase(SpectrogramModel):
    """Shared plumbing: input validation and the linear STFT (:class:`~audiox.models.base.SpectrogramModel`),
    and ``embed_audio`` via ``spec_to_embedding``.

    Subclasses set ``name``, ``sample_rate``, ``embed_dim``, ``n_fft``, ``hop_length`` and
    implement ``spec_to_embedding``, ``embedding_and_hidden``, ``embed_text`` and ``logit_scale``.
    """

    name: str
    embed_dim: int

    def embed_audio(self, wave: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """L2-normalised audio embeddings ``[B, D]`` of a clip or batch."""
        return self.spec_to_embedding(self.spectrogram(wave, sample_rate)[0])

    def audio_features(self, wave: torch.Tensor, sample_rate: int | None = None) -> list[torch.Tensor]:
        """Hidden maps of the audio encoder of a clip or batch, shallow to deep (:meth:`embedding_and_hidden`)."""
        return self.embedding_and_hidden(self.spectrogram(wave, sample_rate)[0])[1]


# ---------------------------------------------------------------------------------------------
# tiny-clap: the offline profile's CLAP, small enough to train on CPU in minutes
# ---------------------------------------------------------------------------------------------

def _hash(token: str, buckets: int) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the buckets must be stable.
    return zlib.crc32(token.encode("utf-8")) % buckets


def text_features(text: str, buckets: int, ngrams: tuple[int, ...] = (3, 4)) -> list[int]:
    """Hashed features of a text: each word, each word bigram and each character n-gram of each word.

    Character n-grams (fastText-style, with ``<`` ``>`` word boundaries) let the text encoder
    embed any string, including words never seen in training: "sirens" shares most n-grams
    with "siren".

    >>> len(text_features("a siren", 1024)) > 4
    True
    >>> text_features("", 1024)
    []
    """
    words = re.findall(r"[a-z0-9']+", text.lower())
    features = [_hash("w:" + w, buckets) for w in words]
    features += [_hash(f"b:{a}_{b}", buckets) for a, b in zip(words, words[1:])]
    for w in words:
        marked = f"<{w}>"
        features += [_hash(f"c:{marked[i:i + n]}", buckets) for n in ngrams for i in range(len(marked) - n + 1)]
    return features


class TextEncoder(nn.Module):
    """Bag of hashed word / bigram / character n-gram embeddings, then an MLP: any string in, a vector out."""

    def __init__(self, buckets: int = 8192, width: int = 96, embed_dim: int = 128):
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, width, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(width, 256), nn.GELU(), nn.Linear(256, embed_dim))

    def forward(self, texts: list[str]) -> torch.Tensor:
        feats = [text_features(t, self.buckets) for t in texts]
        empty = [t for t, f in zip(texts, feats) if not f]
        if empty:
            raise ValueError(f"text {empty[0]!r} has no words to embed; pass a non-empty prompt such as 'a siren'.")
        device = self.bag.weight.device
        flat = torch.tensor([i for f in feats for i in f], dtype=torch.long, device=device)
        offsets = torch.tensor([0] + [len(f) for f in feats[:-1]], device=device).cumsum(0)
        return self.mlp(self.bag(flat, offsets))


class TinyClap(ClapBase):
    """The offline CLAP: a :class:`~audiox.models.classifiers.LogMelCNN` at 16 kHz and a hashed-n-gram
    :class:`TextEncoder`.

    Built by ``python -m audiox.models.recipes train tiny-clap``; load the shipped weights with
    ``audiox.load_clap("tiny-clap")``.

    >>> clap = TinyClap()  # random weights: shapes only
    >>> clap.embed_audio(torch.randn(2, 16000) * 0.1).shape
    torch.Size([2, 128])
    >>> clap.embed_text(["a siren", "a bird chirping"]).norm(dim=-1).detach().allclose(torch.ones(2))
    True
    """

    name = "tiny-clap"
    sample_rate = audio.SAMPLE_RATE
    n_fft = audio.N_FFT
    hop_length = audio.HOP_LENGTH

    def __init__(self, embed_dim: int = 128, n_mels: int = 64, channels=(16, 32, 64, 128), buckets: int = 8192):
        super().__init__()
        self.embed_dim = embed_dim
        self.config = {"embed_dim": embed_dim, "n_mels": n_mels, "channels": list(channels), "buckets": buckets}
        self.audio_encoder = LogMelCNN(self.sample_rate, self.n_fft, n_mels, tuple(channels), embed_dim)
        self.text_encoder = TextEncoder(buckets, embed_dim=embed_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def logit_scale(self) -> float:
        return float(self.log_logit_scale.detach().exp().clamp(max=100))

    def spec_to_embedding(self, magnitude: torch.Tensor) -> torch.Tensor:
        return self.embedding_and_hidden(magnitude)[0]

    def embedding_and_hidden(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The embedding ``[B, D]`` and the hidden maps of the four conv blocks, ``[B, C_i, M / 2^i, T / 2^i]``
        (C = 16, 32, 64, 128), of a (masked) linear magnitude, in one pass."""
        embedding, hidden = self.audio_encoder(magnitude)
        return nn.functional.normalize(embedding, dim=-1), hidden

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        return nn.functional.normalize(self.text_encoder(list(texts)), dim=-1)
