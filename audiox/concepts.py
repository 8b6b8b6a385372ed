"""Concept-based representations of CLAP embeddings (seed paper 000): SpLiCE for audio.

Zhang, Thomaz and Lu (2025) explain a CLAP *audio* embedding as a sparse, non-negative mix
of the *text* embeddings of concept words, after SpLiCE (Bhalla et al., 2024) for CLIP:
"this clip is 0.31 *siren* + 0.12 *sweeping* + 0.05 *high* + ...". The steps, one function each:

1. :func:`concept_dictionary`: embed each concept word with ``clap.embed_text`` (the raw word,
   no prompt template), normalise, subtract the mean over the vocabulary, normalise again:
   the dictionary ``C`` ``[K, D]``, one unit row per concept.
2. :func:`audio_mean` and :func:`centre`: normalise the audio embedding ``z``, subtract the
   mean audio embedding of a corpus, normalise again.
3. :func:`decompose`: the non-negative lasso

       min_w  ||z - C^T w||^2 + l1 * ||w||_1   subject to  w >= 0

   per clip, batched (ADMM in torch, CPU or GPU). ``l1`` is in SpLiCE's units: scikit-learn's
   ``Lasso(alpha=l1 / (2 * D), positive=True, fit_intercept=False)`` solves the same problem.
   Larger ``l1``, fewer active concepts; ``n_concepts=k`` picks ``l1`` per clip for about ``k``.
4. :func:`recompose`: ``normalise(normalise(C^T w) + audio mean)``, an embedding again, so
   zero-shot classification and retrieval can run on the *explanation* and show what it keeps;
   :func:`intervene` removes or scales named concepts before recomposing.

Why two means. A contrastive model puts all audio embeddings in one narrow cone and all text
embeddings in another: the *modality gap*. Were the dictionary not centred, every concept
would share the text cone's common direction and the lasso would spend weight on it instead
of on what tells the words apart; were the audio not centred, every clip would carry the
audio cone's direction, which no concept word explains. So each modality is centred on its
own mean, the text mean over the vocabulary, the audio mean over a corpus of clips, and the
audio mean is added back in :func:`recompose`. The two means differ by the gap.

Fine-tuning (:func:`fit_concept_head`) trains one ``D x D`` matrix ``H`` so that
``normalise(H z)`` points at its class prompt; ``H z`` is then decomposed like any embedding.
:func:`zero_shot_vs_sparsity` and :func:`concept_precision_at_k` are the paper's checks.

>>> import audiox
>>> from audiox.data.synth import ATTRIBUTE_WORDS, CLASSES, SynthSounds
>>> clap = audiox.load_clap("tiny-clap", device="cpu")
>>> dictionary = concept_dictionary(clap, list(CLASSES) + ATTRIBUTE_WORDS, cache=False, progress=False)
>>> dictionary.vectors.shape
torch.Size([38, 128])
>>> clips = SynthSounds("test", n_per_class=1)
>>> embeddings = clap.embed_audio(clips.waves()).detach()
>>> mean = audio_mean(clap, embeddings)
>>> weights = decompose(centre(embeddings, mean), dictionary, l1=0.2)
>>> weights.shape, bool((weights >= 0).all())
(torch.Size([10, 38]), True)
>>> top_concepts(weights[0], dictionary, k=1)[0][0]  # clip 0 is a siren
'siren'
>>> recompose(weights, dictionary, mean).norm(dim=-1).allclose(torch.ones(10))
True
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .config import cache_dir
from .data.hub import save_atomically
from .models.base import numerics
from .models.train import fit
from .zeroshot import PROMPT, class_embeddings, embed_waves, zero_shot
from .zeroshot import logits as zero_shot_logits

#: The paper's working point: about 90-100 active concepts of 2,000 for MS-CLAP.
DEFAULT_L1 = 0.05


# ---- 1. the concept dictionary ---------------------------------------------------------------------

@dataclass
class ConceptDictionary:
    """Concept words and their centred, unit-norm text embeddings ``vectors`` ``[K, D]`` (row k = word k).

    ``text_mean`` is the mean of the normalised word embeddings that was subtracted; ``key``
    names the backbone and vocabulary (the cache file). Build one with :func:`concept_dictionary`
    and treat it as read-only: the solver caches a factorisation of ``vectors`` on it.
    """

    words: list[str]
    vectors: torch.Tensor
    text_mean: torch.Tensor
    key: str = ""
    # the solver's factorisation, per device: computed once, reused by every decompose call
    _factors: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.words)

    def index(self, word: str) -> int:
        """Row of ``word``; an unknown word raises ``ValueError`` naming close matches."""
        return _concept_indices(self.words, [word])[0]


def check_vocabulary(words: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the words a dictionary cannot use: empty, no letters or digits, duplicates.

    Duplicates compare case- and space-insensitively: "Dog" and "dog " embed alike, and two
    identical rows make the lasso split one concept's weight between them arbitrarily.

    >>> check_vocabulary(["siren", "bird"])
    >>> check_vocabulary(["siren", " ", "Siren", "!!"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: vocabulary has unusable words: empty at positions [1]; without letters or digits: ['!!']; ...
    """
    if isinstance(words, str) or not words:
        raise ValueError(
            "the vocabulary must be a non-empty list of words, e.g. audiox.vocab.load_vocabulary('pruned')."
        )
    not_text = [w for w in words if not isinstance(w, str)]
    if not_text:
        raise ValueError(f"vocabulary entries must be strings; got {not_text[:5]!r}. Pass a list[str].")
    problems, seen, duplicates = [], {}, []
    empty = [i for i, w in enumerate(words) if not w.strip()]
    no_word = [w for w in words if w.strip() and not re.search(r"[a-z0-9]", w.lower())]
    for w in words:
        norm = w.strip().lower()
        if norm in seen and norm:
            duplicates.append(f"{w!r} (same as {seen[norm]!r})")
        seen.setdefault(norm, w)
    if empty:
        problems.append(f"empty at positions {empty[:10]}")
    if no_word:
        problems.append(f"without letters or digits: {no_word[:10]!r}")
    if duplicates:
        problems.append(f"duplicates: [{', '.join(duplicates[:10])}]")
    if problems:
        raise ValueError(
            f"vocabulary has unusable words: {'; '.join(problems)}. Remove them from the word list "
            "(e.g. list(dict.fromkeys(w.strip().lower() for w in words if w.strip())))."
        )


def vocabulary_hash(words: Sequence[str]) -> str:
    """A short hash of the word list, in order (row k of the dictionary is word k).

    >>> vocabulary_hash(["a", "b"]) != vocabulary_hash(["b", "a"])
    True
    """
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()[:16]


def concept_dictionary(
    clap, words: Sequence[str], cache: bool = True, batch_size: int = 256, progress: bool = True
) -> ConceptDictionary:
    """The concept dictionary of ``words`` for ``clap``: centred, unit-norm text embeddings ``[K, D]``.

    Each word is embedded as it is, without a prompt template (a template would add its own
    shared direction to every concept). The dictionary is cached on disk under
    ``cache_dir()/concepts/``, keyed by the backbone (``clap.name`` and its weights' sha256), where
    and in what precision it computes (:func:`~audiox.models.base.numerics`: a GPU run and a CPU run
    sharing a cache each get their own) and the word list, so a notebook re-run does not re-embed
    2,000 words; a backbone without a known sha256 (random or freshly trained weights) is never
    cached, since its name alone does not say which weights made the file.
    """
    words = list(words)
    check_vocabulary(words)
    if len(words) < 2:
        raise ValueError("a dictionary needs at least 2 concept words: with one, centring leaves nothing.")
    sha = getattr(clap, "weights_sha256", None)
    key = f"{clap.name}-{sha[:12]}-{numerics(clap)}-{vocabulary_hash(words)}" if sha else ""
    path = cache_dir() / "concepts" / f"{key}.pt" if cache and key else None
    if path is not None and path.exists():
        stored = torch.load(path, weights_only=True)
        if stored["words"] == words:  # guards against a hash collision or a hand-edited file
            return ConceptDictionary(words, stored["vectors"], stored["text_mean"], key)
    with torch.no_grad():
        chunks = [
            clap.embed_text(words[i : i + batch_size]).float().cpu()
            for i in tqdm(range(0, len(words), batch_size), desc="embedding concepts", disable=not progress)
        ]
    embeddings = F.normalize(torch.cat(chunks), dim=-1)
    text_mean = embeddings.mean(dim=0)
    centred = embeddings - text_mean
    flat = (centred.norm(dim=-1) < 1e-6).nonzero().flatten().tolist()
    if flat:
        raise ValueError(
            f"concept words {[words[i] for i in flat[:10]]} embed to the vocabulary's mean, so centring "
            "leaves no direction; the text encoder cannot tell them apart from the rest: remove them."
        )
    dictionary = ConceptDictionary(words, F.normalize(centred, dim=-1), text_mean, key)
    if path is not None:
        save_atomically({"words": words, "vectors": dictionary.vectors, "text_mean": text_mean}, path)
    return dictionary


# ---- 2. centring the audio -------------------------------------------------------------------------

def audio_mean(clap, waves_or_embeddings: torch.Tensor, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Mean of the normalised audio embeddings of a corpus, ``[D]``: the centre of the audio cone.

    Pass waves ``[N, T]`` (embedded with ``clap``) or embeddings ``[N, D]``, told apart by the
    last dimension (``D = clap.embed_dim``; a clip is far longer than ``D`` samples); with
    ``clap=None`` the input is taken as embeddings. Estimate it on a corpus like the clips to
    explain, e.g. the training split. It is the *audio* mean, not the text mean the dictionary
    was centred on: the two differ by the modality gap, which
    ``(dictionary.text_mean - audio_mean(clap, waves)).norm()`` measures.

    >>> audio_mean(None, torch.tensor([[3.0, 0.0], [0.0, 2.0]]))
    tensor([0.5000, 0.5000])
    """
    x = torch.as_tensor(waves_or_embeddings)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(
            f"audio_mean needs a batch [N, T] of waves or [N, D] of embeddings; got shape {tuple(x.shape)}."
        )
    if clap is not None and x.shape[-1] != clap.embed_dim:
        x = embed_waves(clap, x, batch_size=batch_size, progress=progress)
    _check_finite(x, "audio embeddings")
    return F.normalize(x.float(), dim=-1).mean(dim=0)


_estimate_audio_mean = audio_mean  # SpLiCE's argument of the same name would hide it


def centre(embeddings: torch.Tensor, audio_mean: torch.Tensor) -> torch.Tensor:
    """Centred audio embeddings: normalise, subtract the audio mean, normalise again (the input of :func:`decompose`).

    >>> centre(torch.tensor([[2.0, 0.0]]), torch.tensor([0.5, 0.5]))
    tensor([[ 0.7071, -0.7071]])
    """
    z = F.normalize(torch.as_tensor(embeddings).float(), dim=-1)
    return F.normalize(z - audio_mean.to(z.device, torch.float32), dim=-1)


# ---- 3. sparse decomposition: the non-negative lasso by batched ADMM ---------------------------------
#
# ADMM splits w into a least-squares copy x and a non-negative sparse copy w, tied by x = w, with
# the scaled dual u (Boyd et al. 2011, section 6.4; SpLiCE's solver). Written with s = w + u it is
# three lines per iteration (Douglas-Rachford form):
#
#     w = max(s - l1/rho, 0)                           the non-negative soft threshold
#     x = (2 C C^T + rho I)^-1 (2 C z + rho (2w - s))  the least-squares step
#     s = s + alpha (x - w)                            alpha = 1.6: over-relaxation, about 1.5x fewer steps
#
# SpLiCE factors the K x K matrix 2 C C^T + rho I once (Cholesky). We factor C itself instead
# (C = P S Q^T, U = P S, from the eigendecomposition of C^T C): then (2 C C^T + rho I)^-1 = (I - U diag(1 / (S^2 + rho/2)) U^T) / rho
# for *every* rho, so each clip gets its own rho at no extra cost, and one step costs two
# [K, r] products with r = min(K, D), cheaper than K x K triangular solves when K > D.

#: Over-relaxation of the ADMM step (1 is plain ADMM; Boyd et al. suggest 1.5-1.8).
ALPHA = 1.6
#: Residuals are checked every few steps: computing them costs about half a step.
CHECK_EVERY = 5
#: ADMM's default stopping tolerance on its residuals (relative to ``||s||``). Measured by
#: benchmarks/concepts_solver.py against scikit-learn at tol 1e-10: the objective's max relative gap
#: is about 3e-7 on SpLiCE's problem (4,096 x 2,000, d = 512; 25-30 steps). There 1e-4 took 30 steps
#: for every clip (checks come every 5) for a gap of 2e-8, far below anything a learner can see.
DEFAULT_TOL = 2e-4


def default_rho(l1: torch.Tensor) -> torch.Tensor:
    """ADMM's penalty rho per clip, from its ``l1``.

    The best rho grows with ``l1``: fewer active concepts, a better conditioned problem on
    them. In our sweeps over random and correlated dictionaries (K = 60..4,000, D = 128..512,
    l1 = 0.01..0.3) ``20 * l1 ** 0.75`` was within 2x of the rho with fewest steps (3x for an
    under-complete dictionary at l1 = 0.3), costing at most about twice the steps of the best.

    >>> default_rho(torch.tensor([0.05])).round(decimals=2)
    tensor([2.1100])
    """
    return 20 * l1 ** 0.75


def _factor(vectors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """ADMM's factorisation of the ``[K, D]`` concept vectors ``C = P S Q^T``: ``U = P S`` ``[K, r]``,
    ``S^2`` ``[r]``, ``Q`` ``[D, r]``, and ``[U, 1]`` ``[K, r + 1]`` (see :func:`_admm`)."""
    # float64 on the CPU (MPS has no float64): in float32 the small singular values lose digits
    # and ADMM stalls at a wrong fixed point on correlated dictionaries. From the D x D Gram matrix:
    # its eigh is several times cheaper than the SVD of C, and U = C Q needs no division by S.
    c = vectors.detach().cpu().double()
    r = min(c.shape)
    eigenvalues, q = torch.linalg.eigh(c.T @ c)
    sigma2, q = eigenvalues.flip(0)[:r].clamp_min(0), q.flip(1)[:, :r]
    u = c @ q
    u_ones = torch.cat([u, torch.ones(len(u), 1, dtype=u.dtype)], dim=1)
    return tuple(x.float().contiguous().to(vectors.device) for x in (u, sigma2, q, u_ones))


def _vectors(dictionary) -> torch.Tensor:
    """The ``[K, D]`` concept vectors of a :class:`ConceptDictionary` or of a plain tensor."""
    return dictionary.vectors if isinstance(dictionary, ConceptDictionary) else torch.as_tensor(dictionary)


def _vectors_and_factor(dictionary, device: torch.device):
    """The dictionary's vectors on ``device`` and their factorisation, cached on a :class:`ConceptDictionary`."""
    if isinstance(dictionary, ConceptDictionary):
        key = str(device)
        if key not in dictionary._factors:
            vectors = dictionary.vectors.to(device, torch.float32)
            dictionary._factors[key] = (vectors, *_factor(vectors))
        return dictionary._factors[key]
    vectors = torch.as_tensor(dictionary).to(device, torch.float32)
    if vectors.ndim != 2 or not torch.isfinite(vectors).all():
        raise ValueError(
            f"the dictionary must be a ConceptDictionary or a finite [K, D] tensor; got shape {tuple(vectors.shape)}."
        )
    return (vectors, *_factor(vectors))


@dataclass
class LassoSolution:
    """What :func:`nonnegative_lasso` found, per clip: weights ``[B, K]``, objective, steps, convergence."""

    concept_weights: torch.Tensor
    objective: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    #: ADMM's state s = w + u, to warm-start a nearby problem (another l1)
    state: torch.Tensor
    rho: torch.Tensor

    def __getitem__(self, clips) -> "LassoSolution":
        """The solution of some clips only (a mask or indices), e.g. to warm-start those that go on."""
        return LassoSolution(*(getattr(self, f.name)[clips] for f in fields(self)))

    def warm_state(self, rho: torch.Tensor) -> torch.Tensor:
        """The state to start ADMM from at penalty ``rho`` ``[B]``: the weights stay, the scaled dual
        ``u = s - w`` (which carries a factor ``1 / rho``) is rescaled to the new ``rho``."""
        return self.concept_weights + (self.state - self.concept_weights) * (self.rho / rho)[:, None]


def objective(embeddings: torch.Tensor, dictionary, concept_weights: torch.Tensor, l1) -> torch.Tensor:
    """The lasso objective ``||z - C^T w||^2 + l1 * sum(w)`` per clip ``[B]``, in SpLiCE's units.

    Computed in float64 when the embeddings or weights are float64 (to compare solvers closely).

    >>> objective(torch.tensor([[1.0, 0.0]]), torch.eye(2), torch.tensor([[0.5, 0.0]]), 0.1)
    tensor([0.3000])
    """
    z, w = torch.as_tensor(embeddings), torch.as_tensor(concept_weights)
    dtype = torch.promote_types(torch.promote_types(z.dtype, w.dtype), torch.float32)
    vectors = _vectors(dictionary)
    z, w = z.to(dtype), w.to(z.device, dtype)
    residual = z - w @ vectors.to(z.device, dtype)
    return residual.pow(2).sum(dim=-1) + torch.as_tensor(l1, device=z.device, dtype=dtype) * w.sum(dim=-1)


@torch.no_grad()
def _admm(z, vectors, factor, l1, rho, tol, max_iter, state=None):
    """Batched ADMM for the non-negative lasso; ``l1`` and ``rho`` are ``[B, 1]``.

    A clip stops when its primal residual ``||x - w||`` and its dual residual ``||w - w_prev||``
    (rho times it in Boyd's scaling) are both below ``tol * ||s||``, ``s = w + u`` carrying the
    scale of the weights and of the scaled dual. Converged clips leave the batch, so the
    remaining steps get cheaper; each clip's result is the same alone or in any batch (up to
    float rounding in the matrix products).

    The loop runs on ``t = s - l1/rho`` rather than on ``s``: then ``w = max(t, 0)`` is one pass,
    the shift moves into the ``[B, r]`` side as a rank-one term (``(2w - s) U = (2w - t) U - (l1/rho)
    1^T U``), and ``C z`` enters through ``Q^T z`` only. One step is then the two ``[B, K] x [K, r]``
    products and three elementwise passes over ``[B, K]``, written into buffers allocated once. On
    SpLiCE's problem (4,096 x 2,000, d = 512, 2 CPU cores) a step takes about 64 ms, 49 of them in
    the products; written plainly (eight passes into fresh arrays) it took about 109 ms.
    """
    u_factor, sigma2, q_factor, u_ones = factor
    # C z = U (Q^T z) and U^T U = S^2: both products with C z come from the small [B, r] one
    zq = z @ q_factor
    theta = l1 / rho  # the soft threshold
    two_bu = 2 * zq * sigma2 - l1 * u_factor.sum(0)  # U^T (2 C z - l1 1): the shift's rank-one term
    two_zq = 2 * zq / rho
    inverse = 1 / (rho * (sigma2 + rho / 2))  # [B, r]: (2 C C^T + rho I)^-1 in C's singular basis, per clip
    t = (-theta).expand(len(z), len(u_factor)).clone() if state is None else state - theta  # s = 0: w = u = 0
    final_s, iterations = torch.empty_like(t), torch.full((len(z),), max_iter, device=z.device)
    converged = torch.zeros(len(z), dtype=torch.bool, device=z.device)
    running = torch.arange(len(z), device=z.device)
    w = torch.relu(t)
    # Each step writes into buffers allocated once: a fresh [B, K] array per operation costs
    # about as much as the operation itself on a CPU (the allocator hands back untouched pages).
    y, t_next, w_next = torch.empty_like(t), torch.empty_like(t), torch.empty_like(t)
    for step in range(1, max_iter + 1):
        m = (torch.lerp(t, w, 2.0, out=y) @ u_factor).mul_(rho).add_(two_bu).mul_(inverse)  # U^T (2 C z + rho (2w - s))
        # s + alpha (x - w) - theta = lerp(t, w, alpha) + alpha ((2 Q^T z / rho - m) U^T - theta 1^T): one product with [U, 1]
        torch.lerp(t, w, ALPHA, out=t_next).addmm_(torch.cat([two_zq - m, -theta], dim=1), u_ones.T, alpha=ALPHA)
        torch.clamp(t_next, min=0, out=w_next)
        if step % CHECK_EVERY == 0 or step == max_iter:
            scale = tol * torch.add(t, theta, out=y).norm(dim=1)
            primal = torch.sub(t_next, t, out=y).norm(dim=1) / ALPHA  # = ||x - w||
            dual = torch.sub(w_next, w, out=y).norm(dim=1)
            done = (primal <= scale) & (dual <= scale)
            if done.any() or step == max_iter:
                finished = done | (step == max_iter)
                final_s[running[finished]] = t_next[finished] + theta[finished]
                iterations[running[finished]] = step
                converged[running[finished]] = done[finished]
                keep = ~finished
                if not keep.any():
                    break
                running, t_next, w_next = running[keep], t_next[keep], w_next[keep]
                two_zq, two_bu, inverse, theta, rho = two_zq[keep], two_bu[keep], inverse[keep], theta[keep], rho[keep]
                y, t, w = torch.empty_like(t_next), torch.empty_like(t_next), torch.empty_like(t_next)
        t, t_next, w, w_next = t_next, t, w_next, w
    return final_s, iterations, converged


def nonnegative_lasso(
    embeddings: torch.Tensor,
    dictionary,
    l1,
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = 1000,
    rho=None,
    warm_start: LassoSolution | None = None,
) -> LassoSolution:
    """Solve ``min_w ||z - C^T w||^2 + l1 ||w||_1, w >= 0`` for every row ``z`` of ``embeddings``, batched.

    The solver behind :func:`decompose`, without its input checks. ``l1`` is a number or one
    value per clip ``[B]``; ``rho`` likewise (default :func:`default_rho`). Runs on the
    embeddings' device in float32. ``warm_start`` starts from an earlier solution of the same clips
    at another ``l1``: along an ``l1`` sweep or a bisection the support changes little, so far
    fewer steps are needed than from zero.

    >>> g = torch.Generator().manual_seed(0)
    >>> dictionary = F.normalize(torch.randn(50, 16, generator=g), dim=-1)
    >>> z = F.normalize(torch.rand(3, 50, generator=g) ** 8 @ dictionary, dim=-1)
    >>> solution = nonnegative_lasso(z, dictionary, l1=0.1)
    >>> solution.concept_weights.shape, bool(solution.converged.all())
    (torch.Size([3, 50]), True)
    """
    z = torch.as_tensor(embeddings).float()
    vectors, *factor = _vectors_and_factor(dictionary, z.device)
    l1 = _per_clip(l1, z)
    rho = default_rho(l1) if rho is None else _per_clip(rho, z)
    state = None if warm_start is None else warm_start.warm_state(rho[:, 0]).to(z.device, torch.float32)
    s, iterations, converged = _admm(z, vectors, factor, l1, rho, tol, max_iter, state)
    weights = torch.relu(s - l1 / rho)
    return LassoSolution(weights, objective(z, vectors, weights, l1[:, 0]), iterations, converged, s, rho[:, 0])


def _per_clip(value, z: torch.Tensor) -> torch.Tensor:
    """A number or one value per clip, as a ``[B, 1]`` float32 column on ``z``'s device."""
    return torch.as_tensor(value, dtype=torch.float32, device=z.device).expand(len(z)).reshape(-1, 1)


def _check_finite(x: torch.Tensor, what: str) -> None:
    bad = (~torch.isfinite(x)).any(dim=-1).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"{what} rows {bad[:10]} contain NaN or inf; check the audio (audiox.audio.validate) or drop those clips."
        )


def _validate_embeddings(embeddings, vectors_dim: int) -> torch.Tensor:
    z = torch.as_tensor(embeddings)
    if z.ndim != 2:
        raise ValueError(f"embeddings must be [B, D]; got shape {tuple(z.shape)} (use z[None] for one clip).")
    if len(z) == 0:
        raise ValueError("no embeddings to decompose (batch of 0); pass at least one clip's embedding.")
    if z.shape[1] != vectors_dim:
        raise ValueError(
            f"embeddings have D={z.shape[1]} but the dictionary has D={vectors_dim}: build the dictionary "
            "with the same CLAP that embedded the audio."
        )
    _check_finite(z, "embeddings")
    zero = (z.abs().amax(dim=-1) == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueError(
            f"embeddings rows {zero[:10]} are all zero: there is no direction to explain. Drop them "
            "(a clip whose centred embedding is zero sits exactly at the audio mean)."
        )
    return z.float()


@torch.no_grad()
def decompose(
    embeddings: torch.Tensor,
    dictionary,
    l1: float | None = None,
    n_concepts: int | None = None,
    *,
    tol: float = DEFAULT_TOL,
    max_iter: int = 1000,
) -> torch.Tensor:
    """Sparse non-negative concept weights ``[B, K]`` of centred embeddings ``[B, D]`` (see :func:`centre`).

    Solves ``min_w ||z - C^T w||^2 + l1 ||w||_1, w >= 0`` for each clip with batched ADMM
    (:func:`nonnegative_lasso`): at the default ``tol`` the objective is within a relative 1e-4
    of scikit-learn's on small problems (tests/test_concepts.py) and 1e-6 on SpLiCE's
    (benchmarks/concepts_solver.py). ``l1`` (default
    :data:`DEFAULT_L1`) is in SpLiCE's units, a number or one value per clip. Alternatively,
    ``n_concepts=k`` chooses ``l1`` per clip so that about ``k`` concepts are active (within
    10 %, exactly ``k`` below 10) by a batched bisection on ``log l1``; clips that cannot get
    there keep the closest count, with a warning. Runs on the embeddings' device; the weights
    are float32 whatever the input's dtype.

    >>> dictionary = torch.eye(3)  # three orthogonal "concepts"
    >>> decompose(torch.tensor([[0.8, 0.6, 0.0]]), dictionary, l1=0.2)
    tensor([[0.7000, 0.5000, 0.0000]])
    >>> (decompose(torch.tensor([[0.8, 0.6, 0.0]]), dictionary, n_concepts=1) > 0).sum().item()
    1
    """
    if l1 is not None and n_concepts is not None:
        raise ValueError("pass either l1 or n_concepts, not both: n_concepts chooses l1 per clip.")
    vectors = _vectors(dictionary)
    z = _validate_embeddings(embeddings, vectors.shape[-1])
    if n_concepts is not None:
        return _match_n_concepts(z, dictionary, n_concepts, min(vectors.shape), tol, max_iter)
    l1 = DEFAULT_L1 if l1 is None else l1
    if not (torch.as_tensor(l1) > 0).all() or not torch.isfinite(torch.as_tensor(l1)).all():
        raise ValueError(f"l1 must be positive and finite (SpLiCE's units, e.g. {DEFAULT_L1}); got {l1}.")
    solution = nonnegative_lasso(z, dictionary, l1, tol=tol, max_iter=max_iter)
    _warn_unconverged(solution.converged, max_iter)
    return solution.concept_weights


def _warn_unconverged(converged: torch.Tensor, max_iter: int) -> None:
    if not converged.all():
        warnings.warn(
            f"{int((~converged).sum())} clips did not converge in max_iter={max_iter} ADMM steps; "
            "pass a larger max_iter (or a larger tol) to decompose.",
            stacklevel=3,
        )


#: Bisection steps on log l1 before n_concepts gives up on a clip (each halves the bracket).
MAX_BISECTION_STEPS = 30


def _match_n_concepts(z, dictionary, n_concepts: int, max_active: int, tol: float, max_iter: int) -> torch.Tensor:
    """Weights with about ``n_concepts`` active per clip: bisection on ``log l1``, all clips at once.

    The bracket starts at ``[l1_max / 10^4, l1_max]``, where ``l1_max = 2 max_k (C z)_k`` is the
    smallest ``l1`` whose solution is all zero. Each clip keeps its own bracket and leaves the
    batch once its count is within 10 % of the target (exactly the target below 10 concepts);
    each solve warm-starts from the clip's previous one, which is close after a few halvings.
    Clips still off by more than ``max(1, 10 %)`` after :data:`MAX_BISECTION_STEPS` get a warning.
    """
    if not isinstance(n_concepts, int) or not 1 <= n_concepts <= max_active:
        raise ValueError(
            f"n_concepts must be an integer in [1, {max_active}] (a lasso solution has at most min(K, D) "
            f"active concepts); got {n_concepts!r}."
        )
    vectors, *_ = _vectors_and_factor(dictionary, z.device)
    band, tolerated = int(0.1 * n_concepts), max(1, round(0.1 * n_concepts))
    l1_max = 2 * (z @ vectors.T).amax(dim=1).clamp(min=1e-6)
    high, low = l1_max.log(), l1_max.log() - math.log(1e4)
    weights = torch.zeros(len(z), len(vectors), device=z.device)
    miss = torch.full((len(z),), float("inf"), device=z.device)  # |count - target| of the best weights so far
    running = torch.arange(len(z), device=z.device)
    solution = None
    for _ in range(MAX_BISECTION_STEPS):
        middle = (low + high) / 2
        solution = nonnegative_lasso(
            z[running], dictionary, middle.exp(), tol=tol, max_iter=max_iter, warm_start=solution
        )
        count = (solution.concept_weights > 0).sum(dim=1)
        error = (count - n_concepts).abs().float()
        better = error < miss[running]
        weights[running[better]] = solution.concept_weights[better]
        miss[running[better]] = error[better]
        # too many concepts: raise l1 (move the lower end up); too few: lower it
        low = torch.where(count > n_concepts, middle, low)
        high = torch.where(count < n_concepts, middle, high)
        keep = error > band
        if not keep.any():
            break
        running, low, high, solution = running[keep], low[keep], high[keep], solution[keep]
    if (miss > tolerated).any():
        warnings.warn(
            f"{int((miss > tolerated).sum())} clips did not reach {n_concepts} +- {tolerated} active concepts "
            "(their count jumps past it, or the dictionary cannot express that many); "
            "they keep the closest count found.",
            stacklevel=3,
        )
    return weights


# ---- 4. recompose, intervene, read ------------------------------------------------------------------

def recompose(concept_weights: torch.Tensor, dictionary, audio_mean: torch.Tensor) -> torch.Tensor:
    """The embedding a decomposition stands for: ``normalise(normalise(C^T w) + audio mean)`` ``[B, D]``.

    Comparable with CLAP embeddings again, so zero-shot classification or retrieval can run on
    it. A clip without any active concept recomposes to the (normalised) audio mean.

    >>> recompose(torch.tensor([[1.0, 0.0]]), torch.eye(2), torch.tensor([0.0, 1.0]))
    tensor([[0.7071, 0.7071]])
    """
    w = torch.as_tensor(concept_weights).float()
    vectors = _vectors(dictionary)
    explained = F.normalize(w @ vectors.to(w.device, torch.float32), dim=-1)
    return F.normalize(explained + audio_mean.to(w.device, torch.float32), dim=-1)


def _words(words) -> list[str]:
    return list(words.words if isinstance(words, ConceptDictionary) else words)


def _concept_indices(words: list[str], names) -> list[int]:
    index = {w: k for k, w in enumerate(words)}
    unknown = [n for n in names if n not in index]
    if unknown:
        hints = "; ".join(
            f"{n!r}: did you mean {difflib.get_close_matches(n, words, n=3, cutoff=0.6) or 'nothing close'}?"
            for n in unknown[:5]
        )
        raise ValueError(
            f"unknown concepts {unknown[:5]} ({hints}). The vocabulary is dictionary.words; "
            "top_concepts(weights, dictionary) shows the ones a clip uses."
        )
    return [index[n] for n in names]


def intervene(
    concept_weights: torch.Tensor, words, remove: Sequence[str] = (), scale: dict | None = None
) -> torch.Tensor:
    """New concept weights with the named concepts removed (set to 0) or scaled; then :func:`recompose`.

    ``words`` is the dictionary (or its word list). Scaling factors must be non-negative, so the
    weights stay a non-negative mix.

    >>> w = torch.tensor([[0.5, 0.2, 0.1]])
    >>> intervene(w, ["siren", "bird", "rain"], remove=["bird"], scale={"rain": 3.0})
    tensor([[0.5000, 0.0000, 0.3000]])
    """
    words, scale = _words(words), dict(scale or {})
    if isinstance(remove, str):
        remove = [remove]
    both = set(remove) & set(scale)
    if both:
        raise ValueError(f"concepts {sorted(both)} are both removed and scaled; pick one for each.")
    bad = {k: v for k, v in scale.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"scale factors must be finite and >= 0 (weights stay non-negative); got {bad}.")
    out = torch.as_tensor(concept_weights).clone()
    out[..., _concept_indices(words, list(remove))] = 0
    for k, factor in zip(_concept_indices(words, list(scale)), scale.values()):
        out[..., k] *= factor
    return out


def top_concepts(concept_weights: torch.Tensor, words, k: int = 5):
    """The ``k`` heaviest active concepts as ``(word, weight)`` pairs, heaviest first, for bars and tables.

    ``[K]`` weights give one list; ``[B, K]`` give one list per clip.

    >>> top_concepts(torch.tensor([0.25, 0.0, 0.5]), ["bird", "rain", "siren"], k=5)
    [('siren', 0.5), ('bird', 0.25)]
    """
    words = _words(words)
    w = torch.as_tensor(concept_weights).detach().float().cpu()
    if w.shape[-1] != len(words):
        raise ValueError(
            f"weights have {w.shape[-1]} concepts but there are {len(words)} words; pass the same dictionary."
        )
    rows = w.reshape(-1, w.shape[-1])
    values, indices = rows.topk(min(k, rows.shape[1]), dim=1)
    pairs = [[(words[i], v) for v, i in zip(vs.tolist(), ix.tolist()) if v > 0] for vs, ix in zip(values, indices)]
    return pairs[0] if w.ndim == 1 else pairs


# ---- the method as one object: SpLiCE's shape --------------------------------------------------------

class SpLiCE:
    """The concept method as SpLiCE shapes it: an object that owns its dictionary and audio mean, with
    ``decompose`` / ``recompose`` / ``intervene``.

    Built around a CLAP (or a :class:`~audiox.zeroshot.ZeroShotClassifier`, whose CLAP it uses) and a
    vocabulary (words, or a :class:`ConceptDictionary`); the audio mean is given (``[D]``) or estimated
    from a ``corpus`` of waves or embeddings (:func:`audio_mean`). ``decompose`` takes waves ``[B, T]``
    or embeddings ``[B, D]`` and returns concept weights ``[B, K]``, the steps of the module's
    docstring in one call. Unlike the mask explainers it explains an *embedding*, not a decision:
    its result names words, it is not a sound.

    >>> import audiox
    >>> from audiox.data.synth import ATTRIBUTE_WORDS, CLASSES, SynthSounds
    >>> clap = audiox.load_clap("tiny-clap", device="cpu")
    >>> splice = SpLiCE(clap, list(CLASSES) + ATTRIBUTE_WORDS, corpus=SynthSounds("val", n_per_class=2).waves())
    >>> weights = splice.decompose(SynthSounds("test", n_per_class=1).waves()[:1], l1=0.2)
    >>> splice.top_concepts(weights[0], k=1)[0][0]
    'siren'
    >>> splice.recompose(weights).shape
    torch.Size([1, 128])
    """

    method = "concepts"

    def __init__(self, model, vocabulary, audio_mean: torch.Tensor | None = None, corpus: torch.Tensor | None = None,
                 l1: float = DEFAULT_L1, progress: bool = False):
        self.clap = getattr(model, "clap", model)
        self.dictionary = vocabulary if isinstance(vocabulary, ConceptDictionary) else concept_dictionary(
            self.clap, list(vocabulary), progress=progress)
        if audio_mean is None:
            if corpus is None:
                raise ValueError("SpLiCE needs the audio mean: pass audio_mean=[D] or a corpus of waves [N, T] "
                                 "(or embeddings [N, D]) like the clips to explain, e.g. the training split.")
            audio_mean = _estimate_audio_mean(self.clap, corpus, progress=progress)
        self.audio_mean, self.l1 = torch.as_tensor(audio_mean).float(), l1

    @property
    def words(self) -> list[str]:
        return self.dictionary.words

    def embed(self, waves: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """L2-normalised CLAP embeddings ``[B, D]`` of clips ``[T]`` or ``[B, T]``, without gradients."""
        return embed_waves(self.clap, torch.atleast_2d(torch.as_tensor(waves)), sample_rate, progress=False)

    def decompose(self, waves_or_embeddings: torch.Tensor, l1: float | None = None, n_concepts: int | None = None,
                  sample_rate: int | None = None) -> torch.Tensor:
        """Concept weights ``[B, K]`` of clips ``[B, T]`` or embeddings ``[B, D]``: centre, then :func:`decompose`
        (``l1`` defaults to the object's, or ``n_concepts`` active per clip)."""
        x = torch.atleast_2d(torch.as_tensor(waves_or_embeddings))
        embeddings = x if x.shape[-1] == self.clap.embed_dim else self.embed(x, sample_rate)
        if n_concepts is None and l1 is None:
            l1 = self.l1
        return decompose(centre(embeddings, self.audio_mean), self.dictionary, l1=l1, n_concepts=n_concepts)

    def recompose(self, concept_weights: torch.Tensor) -> torch.Tensor:
        """The embedding ``[B, D]`` the weights stand for (:func:`recompose`)."""
        return recompose(concept_weights, self.dictionary, self.audio_mean)

    def intervene(self, concept_weights: torch.Tensor, remove: Sequence[str] = (), scale: dict | None = None):
        """Weights with named concepts removed or scaled (:func:`intervene`); recompose them to see the effect."""
        return intervene(concept_weights, self.dictionary, remove, scale)

    def top_concepts(self, concept_weights: torch.Tensor, k: int = 5):
        """The ``k`` heaviest concepts as ``(word, weight)`` pairs (:func:`top_concepts`)."""
        return top_concepts(concept_weights, self.dictionary, k)


# ---- 5. concept fine-tuning ---------------------------------------------------------------------------

class ConceptHead(nn.Module):
    """The paper's fine-tuning layer: one ``D x D`` matrix ``H``, randomly initialised; ``head(z) = normalise(H z)``.

    >>> head = ConceptHead(8, seed=0)
    >>> head(torch.randn(2, 8)).norm(dim=-1).allclose(torch.ones(2))
    True
    """

    def __init__(self, dim: int, seed: int = 0):
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)
        nn.init.normal_(self.linear.weight, std=dim**-0.5, generator=torch.Generator().manual_seed(seed))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(embeddings), dim=-1)


def fit_concept_head(
    train_embeddings: torch.Tensor,
    train_labels: torch.Tensor,
    class_text_embeddings: torch.Tensor,
    *,
    epochs: int = 30,
    logit_scale: float = 1 / 0.07,
    lr: float = 1e-2,
    batch_size: int = 64,
    val_embeddings: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ConceptHead:
    """Train a :class:`ConceptHead` so ``normalise(H z)`` is closest to its own class prompt embedding.

    The loss is the zero-shot classifier's cross-entropy: softmax over ``logit_scale * cos(H z, t_c)``
    for the class prompts ``t_c`` (``class_text_embeddings`` ``[C, D]``, e.g.
    :func:`~audiox.zeroshot.class_embeddings`). The paper asks for high cosine with the true
    prompt; cross-entropy asks the same *and* for lower cosine with the other prompts, which is
    what zero-shot accuracy measures. Pass ``logit_scale=clap.logit_scale`` to train at the
    model's own temperature (default: CLIP's initial 1/0.07). Trained with the course's one loop
    (:func:`audiox.models.train.fit`); with validation data the best epoch's head is kept.
    Decompose the tuned embeddings like any others, centred on *their* audio mean.
    """
    z = torch.as_tensor(train_embeddings).float()
    labels = torch.as_tensor(train_labels).long().to(z.device)
    text = F.normalize(torch.as_tensor(class_text_embeddings).float(), dim=-1).to(z.device)
    if len(z) != len(labels) or len(z) == 0:
        raise ValueError(f"need one label per training embedding; got {len(z)} embeddings and {len(labels)} labels.")
    if z.shape[1] != text.shape[1]:
        raise ValueError(
            f"embeddings have D={z.shape[1]}, class prompts D={text.shape[1]}: embed both with the same CLAP."
        )
    head = ConceptHead(z.shape[1], seed).to(z.device)

    def batches(epoch):
        order = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed * 1000 + epoch)).to(z.device)
        for start in range(0, len(z), batch_size):
            yield z[order[start : start + batch_size]], labels[order[start : start + batch_size]]

    def loss_fn(model, batch):
        emb, y = batch
        return F.cross_entropy(zero_shot_logits(logit_scale, model(emb), text), y)

    evaluate = None
    if val_embeddings is not None:
        val_z = torch.as_tensor(val_embeddings).float().to(z.device)
        val_y = torch.as_tensor(val_labels).long().to(z.device)

        def evaluate(model):
            return ((model(val_z) @ text.T).argmax(dim=-1) == val_y).float().mean()

    fit(
        head, loss_fn, batches, epochs=epochs, lr=lr, evaluate=evaluate, seed=seed, progress=progress,
        desc="concept head",
    )
    return head


# ---- 6. evaluation: what the concepts keep, and whether they name the right things -------------------

@torch.no_grad()
def zero_shot_vs_sparsity(
    clap, embeddings, labels, classes, dictionary, audio_mean, l1_values, prompt: str = PROMPT
) -> dict:
    """Zero-shot accuracy of recomposed embeddings against sparsity, one row per ``l1``.

    Returns ``{"dense_accuracy": float, "dense_hits": [N], "rows": [{"l1", "mean_l0", "accuracy", "hits",
    "cosine"}, ...]}``: the accuracy of the original embeddings, then per ``l1`` the mean number of active
    concepts (L0), the accuracy of the recomposed embeddings, and their mean cosine with the originals.
    ``hits`` are the per-clip right (1) or wrong (0) predictions, for bootstrap intervals
    (:func:`audiox.metrics.bootstrap`). Class prompts use ``prompt`` ("the sound of a {}").
    """
    z = F.normalize(torch.as_tensor(embeddings).float(), dim=-1)
    labels = torch.as_tensor(labels).to(z.device)
    text = class_embeddings(clap, list(classes), templates=(prompt,)).to(z.device)

    def hits(e):
        return (zero_shot(clap, e, text).argmax(dim=-1) == labels).float().cpu()

    centred = _validate_embeddings(centre(z, audio_mean), _vectors(dictionary).shape[-1])
    rows, solution = [], None
    # along the sweep, from dense to sparse, each solve starts from the previous one
    for l1 in sorted(l1_values):
        solution = nonnegative_lasso(centred, dictionary, l1, warm_start=solution)
        _warn_unconverged(solution.converged, 1000)
        weights = solution.concept_weights
        recomposed = recompose(weights, dictionary, audio_mean)
        right = hits(recomposed)
        rows.append({
            "l1": float(l1),
            "mean_l0": float((weights > 0).sum(dim=1).float().mean()),
            "accuracy": float(right.mean()),
            "hits": right,
            "cosine": float((recomposed * z).sum(dim=-1).mean()),
        })
    dense = hits(z)
    return {"dense_accuracy": float(dense.mean()), "dense_hits": dense, "rows": rows}



def _hits(concept_weights, words, true_words_per_clip):
    words = [w.strip().lower() for w in _words(words)]
    w = torch.as_tensor(concept_weights).detach().float().cpu()
    if w.ndim != 2 or len(w) != len(true_words_per_clip):
        raise ValueError(
            "need weights [B, K] and one set of true words per clip; "
            f"got {tuple(w.shape)} and {len(true_words_per_clip)} sets."
        )
    truth = [{t.strip().lower() for t in ts} for ts in true_words_per_clip]
    return words, w, truth


def concept_precision_at_k(concept_weights, words, true_words_per_clip, k: int = 5, per_clip: bool = False):
    """Mean precision@k: the fraction of each clip's top-``k`` active concepts that are its own true words.

    ``true_words_per_clip`` holds one set per clip, e.g. the SynthSounds attribute words
    ``set(item["attributes"].values())``. Words match exactly, case-insensitively; a clip with
    fewer than ``k`` active concepts counts the empty slots as misses. Compare with
    :func:`chance_precision_at_k`. ``per_clip=True`` gives each clip's precision ``[B]`` (for intervals).

    >>> w = torch.tensor([[0.5, 0.3, 0.0], [0.0, 0.1, 0.2]])
    >>> concept_precision_at_k(w, ["high", "rough", "soft"], [{"high", "soft"}, {"soft"}], k=2)
    0.5
    >>> concept_precision_at_k(w, ["high", "rough", "soft"], [{"high", "soft"}, {"soft"}], k=2, per_clip=True)
    tensor([0.5000, 0.5000])
    """
    words, w, truth = _hits(concept_weights, words, true_words_per_clip)
    values, indices = w.topk(min(k, w.shape[1]), dim=1)
    hits = [
        sum(v > 0 and words[i] in t for v, i in zip(vs.tolist(), ix.tolist()))
        for vs, ix, t in zip(values, indices, truth)
    ]
    return torch.tensor(hits, dtype=torch.float32) / k if per_clip else sum(hits) / (k * len(hits))


def chance_precision_at_k(concept_weights, words, true_words_per_clip, k: int = 5, per_clip: bool = False):
    """Precision@k expected from a *permuted dictionary*: the same weights with the word labels shuffled.

    The baseline keeps everything but the link between a word and its direction: the same
    vocabulary (so the same number of true words on offer), the same number of active concepts
    per clip. A top-k slot then holds a uniformly random word, a true one with probability
    ``|true words in vocabulary| / K``; so the expectation is exact, no shuffling needed. A
    random word list instead would change which true words exist at all and mix vocabulary
    coverage into the comparison.

    >>> w = torch.tensor([[0.5, 0.3, 0.0, 0.0]])
    >>> chance_precision_at_k(w, ["high", "rough", "soft", "low"], [{"high", "soft"}], k=2)
    0.5
    """
    words, w, truth = _hits(concept_weights, words, true_words_per_clip)
    vocabulary = set(words)
    active = (w > 0).sum(dim=1).clamp(max=k).tolist()
    expected = [n * len(t & vocabulary) / len(words) for n, t in zip(active, truth)]
    return torch.tensor(expected, dtype=torch.float32) / k if per_clip else sum(expected) / (k * len(expected))
