"""LMAC-ZS (seed paper 002): listenable maps that explain a zero-shot CLAP classifier for any prompt.

Paissan, Della Libera, Ravanelli, Subakan, "Listenable Maps for Zero-Shot Audio Classifiers"
(NeurIPS 2024). A **decoder** ``M(t, h)`` reads the CLAP audio encoder's hidden maps ``h`` of a
clip and the text embedding ``t`` of a prompt, and outputs a mask in [0, 1] on the clip's
*linear-frequency* magnitude ``X``. The masked magnitude ``M * X`` goes back through the
encoder's own front end (:meth:`~audiox.models.clap.Clap.spec_to_embedding`), so the mask is
judged by the model it explains; ``M * X`` with the original phase is the sound a learner hears.

The loss (:func:`lmac_loss`) over (prompt i, clip j) pairs of a batch, matching and not:

* **similarity**: ``s_ij``, the CLAP logit of prompt ``i`` and clip ``j``, and ``s^in_ij``, the same
  on the clip masked by ``M(t_i, h_j)``: the masked audio must keep what the model thinks of the
  prompt, ``(s^in_ij - s_ij)^2``, weighted by the relevance ``r_ij`` (the prompt's zero-shot
  probability relative to the prompt the model picks, 1 for that one); for a prompt the model
  does not hear only a *gain* is punished, ``(1 - r_ij) * max(s^in_ij - s_ij, 0)^2``: an almost
  empty mask may sound like nothing in particular, and that is fine;
* **mask size and diversity**: ``mean(M_ij)`` weighted by ``alpha * r_ij + gamma * (1 - r_ij)``:
  masks stay small, and a prompt the model does not hear is pushed, harder (``gamma > alpha``),
  to an almost empty mask;
* **masked-out** (from L-MAC, LMAC-ZS's closed-set parent): for the prompt the model picks, the
  clip with the mask removed, ``(1 - M) * X``, should no longer be given that prompt,
  ``-log(1 - q_c)``.

The paper's code is not public. The first two terms follow its description; the relevance
weighting, the one-sided similarity for unheard prompts, the decoder's read-out by the prompt and
the weights are this course's choices, tuned on SynthSounds so that training takes minutes on a CPU.

The explainer (:class:`LMACZS`) keeps the course's one contract (:mod:`audiox.explain`): built
around a :class:`~audiox.zeroshot.ZeroShotClassifier`, ``explain(waves, target)`` explains a class
(by index or name) or *any* text prompt.

>>> import torch
>>> from audiox.models.clap import TinyClap
>>> from audiox.zeroshot import ZeroShotClassifier
>>> model = ZeroShotClassifier(TinyClap().eval(), ["siren", "bird"])   # random weights: shapes only
>>> explainer = LMACZS(model, MaskDecoder.for_clap(model.clap))
>>> out = explainer.explain(torch.randn(2, 16_000) * 0.1, "a siren wailing")
>>> out.mask.shape, bool(((out.mask >= 0) & (out.mask <= 1)).all()), out.wave.shape, out.target_names
(torch.Size([2, 257, 126]), True, torch.Size([2, 16000]), ['a siren wailing', 'a siren wailing'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import audio
from .batching import batched
from .explain import Explainer
from .models.train import History, fit, minibatches
from .zeroshot import logits as zero_shot_logits

#: Loss weights: similarity (logit units), mask size for prompts the model hears (alpha) and does
#: not hear (gamma, the diversity term), masked-out, and the absence term of mixtures with known sources
#: (used only when sources are given). Tuned on SynthSounds with tiny-clap.
WEIGHTS = {"similarity": 1.0, "alpha": 1.0, "gamma": 6.0, "masked_out": 1.0, "absence": 1.0}


class MaskDecoder(nn.Module):
    """CLAP hidden maps + text embeddings -> masks ``[B, P, F, T]`` in [0, 1] on the linear magnitude.

    Two parts, so that one pass over a clip serves every prompt:

    * a small U-Net-style decoder over the clip's hidden maps (the text plays no part): from the
      deepest map up, each level is upsampled to the next finer map's grid, added to that map's
      1x1 projection and mixed by a 3x3 convolution, giving a ``width``-channel feature per
      time-frequency cell of the finest map (mel bands x frames for tiny-clap);
    * a read-out by the prompt: the text embedding, with the model's own cosine similarity for
      this clip and prompt, becomes (through a small MLP) a query vector and a bias, and each
      cell's mask logit is ``<feature, query> + bias``. A prompt the model does not hear in the clip
      (low cosine) can so switch the whole mask off. (Text-queried separators use FiLM
      layers instead; a read-out costs one dot product per cell and prompt, not a decoder pass.)

    The finest grid is brought to the linear STFT grid by :func:`audiox.audio.mel_to_linear`,
    then a sigmoid gives the mask.

    Args:
        channels: channels of the hidden maps, finest first (what ``clap.audio_features`` returns).
        embed_dim: the text embedding's size.
        sample_rate, n_fft: the Clap's STFT, which fixes the linear grid ``F = n_fft // 2 + 1``.
    """

    def __init__(self, channels: Sequence[int], embed_dim: int, sample_rate: int, n_fft: int, width: int = 32):
        super().__init__()
        self.config = {"channels": list(channels), "embed_dim": embed_dim, "sample_rate": sample_rate,
                       "n_fft": n_fft, "width": width}
        self.sample_rate, self.n_fft, self.width = sample_rate, n_fft, width
        self.read = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        # GroupNorm keeps the features at unit scale whatever the encoder's activations are, so the
        # dot product with a query is well conditioned from the first step
        self.mix = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(4, width), nn.ReLU()) for _ in channels
        )
        self.query = nn.Sequential(nn.Linear(embed_dim + 1, 2 * width), nn.GELU(), nn.Linear(2 * width, width + 1))
        self.cosine_gain, self.cosine_offset = nn.Parameter(torch.tensor(7.0)), nn.Parameter(torch.tensor(0.35))

    @classmethod
    def for_clap(cls, clap, width: int = 32) -> "MaskDecoder":
        """A decoder sized for ``clap``'s hidden maps and text embeddings, on the CLAP's device.

        Its weights are drawn on the CPU and then moved, so a seeded decoder starts from the same
        weights on any device."""
        with torch.no_grad():
            hidden = clap.audio_features(torch.full((clap.sample_rate,), 1e-3))
        decoder = cls([h.shape[1] for h in hidden], clap.embed_dim, clap.sample_rate, clap.n_fft, width)
        return decoder.to(hidden[0].device)

    def features(self, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-cell features ``[B, width, H, W]`` on the finest map's grid, from maps ``[B, C_i, H_i, W_i]``."""
        x = None
        for level in reversed(range(len(hidden))):
            h = self.read[level](hidden[level])
            x = h if x is None else h + F.interpolate(x, size=h.shape[-2:], mode="bilinear", align_corners=False)
            x = self.mix[level](x)
        return x

    def read_out(self, features: torch.Tensor, text: torch.Tensor, cosine: torch.Tensor, n_frames: int,
                 clip: torch.Tensor | None = None) -> torch.Tensor:
        """Masks from features ``[B, E, H, W]``, prompts ``[P, D]`` and the model's cosine similarities.

        Without ``clip``: every pair, ``cosine`` ``[B, P]``, masks ``[B, P, F, T]``. With ``clip``
        ``[P]`` (which clip each prompt goes with): ``cosine`` ``[P]``, one mask per prompt, ``[P, F, T]``.
        """
        if clip is None:
            B, P = cosine.shape
            masks = self.read_out(features, text.repeat(B, 1), cosine.flatten(), n_frames,
                                  torch.arange(B, device=features.device).repeat_interleave(P))
            return masks.reshape(B, P, *masks.shape[-2:])
        query = self.query(torch.cat([text, cosine[:, None]], dim=-1))
        # the cosine also enters the bias directly, so masks close for prompts the model does not
        # hear from the first steps on, and training spends its time on *where* the mask opens
        vector = query[:, :-1] / self.width ** 0.5
        bias = query[:, -1] + self.cosine_gain * (cosine - self.cosine_offset)
        logits = torch.einsum("pehw,pe->phw", features[clip], vector) + bias[:, None, None]
        return torch.sigmoid(self._to_linear(logits, n_frames))

    def _to_linear(self, logits: torch.Tensor, n_frames: int) -> torch.Tensor:
        return audio.mel_to_linear(logits, self.sample_rate, self.n_fft, n_frames)

    def forward(self, hidden: Sequence[torch.Tensor], text: torch.Tensor, cosine: torch.Tensor,
                n_frames: int) -> torch.Tensor:
        """Masks ``[B, P, F, n_frames]`` of ``B`` clips' hidden maps for each of ``P`` prompt embeddings
        ``[P, D]``, given the model's cosine similarities ``[B, P]`` of those pairs."""
        return self.read_out(self.features(hidden), text, cosine, n_frames)


# --------------------------------------------------------------------------------------------
# The loss and the trainer
# --------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """What the frozen CLAP makes of a batch of clips: the mask grid, the embedding, the decoder's input."""

    magnitude: torch.Tensor  # [B, F, T], linear
    phase: torch.Tensor  # [B, F, T]
    embedding: torch.Tensor  # [B, D], L2-normalised
    hidden: list[torch.Tensor]  # the audio encoder's hidden maps, finest first

    def __getitem__(self, index) -> "Encoded":
        """The same for a subset of clips (an index tensor, a slice)."""
        return Encoded(self.magnitude[index], self.phase[index], self.embedding[index], [h[index] for h in self.hidden])


@torch.no_grad()
def encode(clap, wave: torch.Tensor, sample_rate: int | None = None) -> Encoded:
    """Run the frozen CLAP once on clips ``[B, T]`` (or ``[T]``): magnitude, phase, embedding and hidden maps."""
    magnitude, phase = clap.spectrogram(wave, sample_rate)
    embedding, hidden = clap.embedding_and_hidden(magnitude)
    return Encoded(magnitude, phase, embedding, list(hidden))


def pair_prompts(logits: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The ``k`` prompts each clip meets in a training step, ``[B, k]`` indices into the prompts of ``logits`` ``[B, P]``:
    the one the model picks, then the runner-up, then others at random.

    >>> pair_prompts(torch.tensor([[0.1, 3.0, 2.0, -1.0]]), 3, torch.Generator().manual_seed(0))[0, :2].tolist()
    [1, 2]
    """
    ranked = logits.argsort(dim=-1, descending=True)
    noise = torch.rand(logits.shape, generator=generator).to(logits.device)  # in [0, 1): ranks the others
    top = torch.tensor([3.0, 2.0], device=logits.device)[: min(2, logits.shape[1])]
    noise.scatter_(1, ranked[:, : len(top)], top.expand(len(logits), -1))
    return noise.topk(k, dim=-1).indices


def lmac_loss(clap, decoder: MaskDecoder, clips: Encoded, text: torch.Tensor, prompts_per_clip: int = 4,
              weights: dict | None = None, generator: torch.Generator | None = None,
              sources: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
    """The LMAC-ZS loss of ``B`` encoded clips against ``P`` prompt embeddings ``[P, D]``.

    Each clip is paired with ``prompts_per_clip`` prompts: the one the model picks, the runner-up,
    and the rest drawn at random, so every loss sees matching and non-matching pairs at a cost of
    ``B x prompts_per_clip`` masked passes through the encoder instead of ``B x P``. The relevance
    ``r`` of a pair is still the zero-shot probability over all ``P`` prompts.

    ``sources`` (an addition of this course, not of the paper): for mixtures of two sounds whose
    sources are known, ``(classes [B, 2], alone [B, 2, D])``, the class of each source (the index of
    its prompt in ``text``; -1 where a clip has no second source) and the embedding of each source
    heard alone. The **absence** term asks the mask for one source's prompt to leave out the other:
    on the clip masked for source a's prompt, the logit of source b's prompt may be no higher than on
    source a alone, ``max(s^in(M_a X, t_b) - s(a, t_b), 0)`` in logit units like the similarity term
    (a squared hinge, tried first, outweighed every other term several times over), for both orders.

    Returns the loss and its parts (floats, for the progress bar and the notebook): the weighted terms
    ``similarity``, ``mask size``, ``masked-out`` (and ``absence``), which add up to the loss, and two
    diagnostics that are not terms: the mean mask for prompts the model hears (``r > 0.5``) and for
    the others.
    """
    w = {**WEIGHTS, **(weights or {})}
    scale = clap.logit_scale
    magnitude = clips.magnitude
    B, P = len(magnitude), len(text)
    k = min(prompts_per_clip, P)
    original = zero_shot_logits(clap, clips.embedding, text)  # s_ij for every clip and prompt, [B, P]
    probability = original.softmax(dim=-1)
    # r_ij: how strongly the model hears prompt i in clip j next to the prompt it picks (1 for that one)
    relevance = probability / probability.amax(dim=-1, keepdim=True)
    prompt = pair_prompts(original, k, generator)  # [B, k], the picked prompt first
    clip = torch.arange(B, device=magnitude.device).repeat_interleave(k)
    masks = decoder.read_out(decoder.features(clips.hidden), text[prompt.flatten()], original.gather(1, prompt).flatten() / scale,
                             magnitude.shape[-1], clip)
    masked_in = clap.spec_to_embedding(masks * magnitude[clip])
    # s^in of each pair against its own prompt
    kept = zero_shot_logits(clap, masked_in, text).gather(1, prompt.flatten()[:, None])[:, 0]
    r = relevance.gather(1, prompt).flatten()
    change = kept - original.gather(1, prompt).flatten()
    # a prompt the model hears must keep its similarity, up or down; one it does not hear must
    # not gain any (an almost empty mask may sound like nothing in particular, which is fine)
    similarity = (r * change.pow(2) + (1 - r) * change.clamp(min=0).pow(2)).mean()
    size = masks.mean(dim=(-2, -1))
    size_term = ((w["alpha"] * r + w["gamma"] * (1 - r)) * size).mean()
    picked = masks.reshape(B, k, *masks.shape[-2:])[:, 0]
    q = zero_shot_logits(clap, clap.spec_to_embedding((1 - picked) * magnitude), text).softmax(dim=-1)
    masked_out = -torch.log1p(-q.gather(1, prompt[:, :1]).clamp(max=1 - 1e-6)).mean()
    terms = {"similarity": w["similarity"] * similarity, "mask size": size_term,
             "masked-out": w["masked_out"] * masked_out}
    if sources is not None:
        terms["absence"] = w["absence"] * _absence(clap, decoder, clips, text, original / scale, *sources)
    loss = sum(terms.values())
    hears = r > 0.5
    parts = {name: term.item() for name, term in terms.items()} | {
        "mask mean, heard": size[hears].mean().item() if hears.any() else float("nan"),
        "mask mean, not heard": size[~hears].mean().item() if (~hears).any() else float("nan")}
    return loss, parts


def _absence(clap, decoder: MaskDecoder, clips: Encoded, text: torch.Tensor, cosine: torch.Tensor,
             classes: torch.Tensor, alone: torch.Tensor) -> torch.Tensor:
    """The absence term of :func:`lmac_loss` for the clips with two known sources (0 when there are none)."""
    classes, alone = classes.to(cosine.device), alone.to(cosine.device)
    mixture = (classes >= 0).all(dim=1).nonzero().flatten()
    if len(mixture) == 0:
        return cosine.new_zeros(())
    clip = mixture.repeat_interleave(2)                                   # each mixture twice: mask for a, then b
    asked = classes[mixture].flatten()                                    # [a0, b0, a1, b1, ...]
    other = classes[mixture].flip(1).flatten()                            # [b0, a0, b1, a1, ...]
    masks = decoder.read_out(decoder.features([h[clip] for h in clips.hidden]), text[asked],
                             cosine[clip, asked], clips.magnitude.shape[-1], torch.arange(len(clip), device=clip.device))
    heard = zero_shot_logits(clap, clap.spec_to_embedding(masks * clips.magnitude[clip]), text)
    on_its_own = zero_shot_logits(clap, alone[mixture].flatten(0, 1), text)  # each source alone, [2M, P]
    rows = torch.arange(len(clip), device=clip.device)
    return (heard[rows, other] - on_its_own[rows, other]).clamp(min=0).mean()


def train_decoder(
    clap,
    decoder: MaskDecoder,
    train_waves: torch.Tensor,
    val_waves: torch.Tensor,
    classes: Sequence[str],
    *,
    templates: Sequence[str] | None = None,
    epochs: int = 12,
    batch_size: int = 16,
    prompts_per_clip: int = 4,
    lr: float = 2e-3,
    weights: dict | None = None,
    sources: tuple[torch.Tensor, torch.Tensor] | None = None,
    val_sources: tuple[torch.Tensor, torch.Tensor] | None = None,
    checkpoint: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``decoder`` to explain the frozen ``clap`` on clips ``[N, T]`` at the Clap's rate.

    Each step draws a template per class (so the decoder learns prompts, not one wording), embeds
    the prompts, applies a random gain of +-6 dB to the clips (masks must not depend on loudness)
    and takes the :func:`lmac_loss`. Validation keeps the epoch with the lowest loss on
    ``val_waves`` (fixed prompts and pairs). ``sources``: the training
    clips' source classes ``[N, 2]`` (indices into ``classes``, -1 for a clip of one sound) and the
    waves of each source alone ``[N, 2, T]``, to add the absence term; ``val_sources``, the same for
    ``val_waves``, puts the absence term into the validation loss too, so that the epoch kept is chosen on
    what the decoder was asked to learn. ``checkpoint``: a file to
    resume from and save to after each epoch (:func:`audiox.models.train.fit`).
    """
    from .zeroshot import TEMPLATES, class_embeddings

    templates = list(templates or TEMPLATES)
    clap.eval()
    for p in clap.parameters():  # the model being explained never changes
        p.requires_grad_(False)
    device = next(decoder.parameters()).device
    val_clips = encode(clap, val_waves)
    val_text = class_embeddings(clap, list(classes), templates)
    def embedded(known):  # each source heard alone, embedded once (a silent slot stays zero and is never used)
        if known is None:
            return None
        source_classes, source_waves = known
        flat = source_waves.flatten(0, 1)
        heard = flat.abs().amax(dim=-1) > audio.SILENCE_PEAK
        alone = torch.zeros(len(flat), clap.embed_dim, device=device)
        alone[heard.to(device)] = batched(clap.embed_audio, flat[heard].to(device), batch_size=batch_size)
        return source_classes.to(device), alone.view(*source_waves.shape[:2], -1)

    source_info, val_source_info = embedded(sources), embedded(val_sources)

    def batches(epoch):
        gen, indices = minibatches(len(train_waves), batch_size, epoch, seed)
        for idx in indices:
            pick = torch.randint(len(templates), (len(classes),), generator=gen)
            prompts = [templates[int(t)].format(c) for c, t in zip(classes, pick)]
            gain = torch.exp(torch.empty(len(idx), 1).uniform_(-0.7, 0.7, generator=gen))  # drawn on the CPU
            yield train_waves[idx].to(device) * gain.to(device), prompts, gen, idx.to(device)

    def loss_fn(model, batch):
        waves, prompts, gen, idx = batch
        with torch.no_grad():
            text = clap.embed_text(prompts)
        chosen = None if sources is None else (source_info[0][idx], source_info[1][idx])
        return lmac_loss(clap, model, encode(clap, waves), text, prompts_per_clip, weights, gen, chosen)[0]

    def evaluate(model):
        fixed = torch.Generator().manual_seed(seed)  # the same pairs every epoch
        def loss(i):
            known = None if val_source_info is None else (val_source_info[0][i], val_source_info[1][i])
            return lmac_loss(clap, model, val_clips[i], val_text, prompts_per_clip, weights, fixed, known)[0][None]

        losses = batched(loss, torch.arange(len(val_waves), device=device), batch_size=batch_size)
        return -float(losses.mean())

    return fit(decoder, loss_fn, batches, epochs=epochs, lr=lr, evaluate=evaluate, seed=seed, progress=progress,
               desc="LMAC-ZS decoder", checkpoint=checkpoint)


# --------------------------------------------------------------------------------------------
# Explanations a learner can hear, and their evaluation
# --------------------------------------------------------------------------------------------


def shipped_decoder(clap, device=None) -> MaskDecoder:
    """The decoder shipped for ``clap`` (``lmac-tiny-clap`` for tiny-clap), trained by
    ``python -m audiox.models.recipes train lmac-tiny-clap``."""
    from .models import zoo

    name = f"lmac-{clap.name}"
    if name not in zoo.ZOO:
        raise ValueError(f"no decoder is shipped for {clap.name!r}: train one with audiox.lmac.train_decoder "
                         f"(notebook 04 has a GPU cell that does it) and pass it as decoder=.")
    return zoo.load(name, device=device if device is not None else next(clap.parameters()).device)


def masks_for(decoder: MaskDecoder, clips: Encoded, text: torch.Tensor, prompt: torch.Tensor | None = None,
              batch_size: int = 32) -> torch.Tensor:
    """Masks of encoded clips for prompt embeddings ``text`` ``[P, D]``, in batches of clips, without gradients.

    Every clip with every prompt, ``[B, P, F, T]``; or, with ``prompt`` ``[B]`` (an index into
    ``text`` per clip, e.g. the predicted class), one mask per clip, ``[B, F, T]``.
    """
    n_frames = clips.magnitude.shape[-1]

    def masks(index):
        features = decoder.features([h[index] for h in clips.hidden])
        if prompt is None:
            return decoder.read_out(features, text, clips.embedding[index] @ text.T, n_frames)
        chosen = text[prompt[index]]
        return decoder.read_out(features, chosen, (clips.embedding[index] * chosen).sum(-1), n_frames,
                                torch.arange(len(index), device=features.device))

    return batched(masks, torch.arange(len(clips.magnitude), device=clips.magnitude.device), batch_size=batch_size)


class LMACZS(Explainer):
    """LMAC-ZS as an explainer: the decoder's mask for a class or any text prompt, on a zero-shot CLAP.

    ``model`` is a :class:`~audiox.zeroshot.ZeroShotClassifier` (a CLAP and its class prompts);
    ``decoder`` a trained :class:`MaskDecoder` (default: the one shipped for that CLAP).
    ``explain(waves, target)``: ``target`` is a class (index or name: its prompt embedding, the
    one the classifier decides with), a free-text prompt (``"a bird chirping"``), or ``None`` for
    the predicted class. ``scores`` is the mask itself (the decoder outputs a mask);
    ``info["cosine"]`` the model's cosine similarity of each clip with the prompt explained.
    """

    method = "LMAC-ZS"

    def __init__(self, model, decoder: MaskDecoder | None = None):
        super().__init__(model)
        if not hasattr(model, "clap") or not hasattr(model, "text_embeddings"):
            raise ValueError("LMAC-ZS explains a zero-shot CLAP: wrap it with "
                             "audiox.zeroshot.ZeroShotClassifier(clap, classes) first.")
        self.decoder = decoder if decoder is not None else shipped_decoder(model.clap)

    def _prompts(self, target, batch: int) -> list[str] | None:
        """Free-text prompts per clip when ``target`` names text that is not a class, else ``None``."""
        items = [target] * batch if isinstance(target, str) else target
        if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
            return None
        if all(t in self.model.classes for t in items):
            return None
        if len(items) != batch:
            raise ValueError(f"give one prompt per clip ({batch}) or a single prompt, got {len(items)}.")
        bad = [t for t in items if not t.strip()]
        if bad:
            raise ValueError(f"prompt must be a non-empty string such as 'a siren', got {bad[0]!r}.")
        return list(items)

    def explain(self, waves, target=None, sample_rate: int | None = None):
        magnitude, phase = self.model.spectrogram(waves, sample_rate)
        prompts = self._prompts(target, len(magnitude))
        with torch.no_grad():
            embedding, hidden = self.model.clap.embedding_and_hidden(magnitude)
        clips = Encoded(magnitude, phase, embedding, list(hidden))
        if prompts is None:
            index = self.resolve_target(magnitude, target)
            text, chosen = self.model.text_embeddings, index
        else:  # one text embedding per distinct prompt; the target index is -1: not one of the classes
            distinct = sorted(set(prompts))
            text = self.model.prompt_embeddings(distinct)
            chosen = torch.tensor([distinct.index(p) for p in prompts], device=magnitude.device)
            index = torch.full((len(prompts),), -1, dtype=torch.long, device=magnitude.device)
        mask = masks_for(self.decoder, clips, text, chosen)
        cosine = (embedding * text[chosen]).sum(-1)
        return self.explanation(magnitude, phase, mask, mask, index,
                                {"cosine": cosine, "prompt": prompts if prompts is not None else None})


def prompt_mask_means(masks: torch.Tensor, present: torch.Tensor) -> dict[str, float]:
    """Mean mask size ``masks`` ``[B, C, F, T]`` (every class prompt, :func:`masks_for`) for prompts of classes
    one can hear in the clip (``present`` ``[B, C]``) and for the others.

    A decoder that explains *the prompt* gives small masks for sounds that are not there.

    >>> masks = torch.zeros(1, 2, 3, 4); masks[:, 0] = 0.5
    >>> prompt_mask_means(masks, torch.tensor([[True, False]]))
    {'right prompt': 0.5, 'wrong prompt': 0.0}
    """
    means = masks.mean(dim=(-2, -1)).cpu()  # [B, C]
    present = present.bool().cpu()
    return {"right prompt": float(means[present].mean()), "wrong prompt": float(means[~present].mean())}
