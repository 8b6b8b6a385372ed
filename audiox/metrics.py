"""Metrics shared by every method of the course: batched torch, on whatever device the inputs live.

* **Separation**: :func:`si_sdr`.
* **Probabilities**, the one input of the faithfulness metrics: :func:`class_probabilities`,
  the softmax of a classifier's logits (for a zero-shot CLAP, of
  :func:`audiox.zeroshot.logits`, ``logit_scale`` * cosine similarity to the class prompts).
  Apply the softmax once, here; the metrics take probabilities and reject logits.
* **Faithfulness** of a mask to the model it explains, per clip, exactly as in the course's
  methods reference (``methods.md``, "Faithfulness metrics (as used by L-MAC / LMAC-ZS)"):
  c = class predicted on the original input (or an explicit target); p, o, q = class
  probabilities ``[B, C]`` on the original, the masked-in (X*M) and the masked-out (X*(1-M))
  input.

  ====== =============================== ======================================= ======
  metric function                         definition                              better
  ====== =============================== ======================================= ======
  AI     :func:`average_increase`        100 * [o_c > p_c]                       higher
  AD     :func:`average_drop`            100 * max(p_c - o_c, 0) / p_c           lower
  AG     :func:`average_gain`            100 * max(o_c - p_c, 0) / (1 - p_c)     higher
  FF     :func:`faithfulness_on_spectra` p_c - q_c                               higher
  Fid-In :func:`input_fidelity`          [argmax o = c]                          higher
  SPS    :func:`sparseness`              Gini index of |M|                       higher
  COMP   :func:`complexity`              entropy of |M| / sum |M| (nats)         lower
  MM     :func:`mask_mean`               mean of M                               n/a
  ====== =============================== ======================================= ======

  The public SpeechBrain evaluation applies a second softmax before AD (which caps AD near
  62) and compares L2I's Fid-In with class 0; neither is reproduced here.
  :func:`faithfulness_metrics` gives them all per clip, :func:`summarize` the table row.
* **Ground truth on mixtures**: :func:`ground_truth_overlap`, energy-weighted precision and
  recall of an explanation mask against the true source ratio mask of
  :func:`audiox.data.synth.make_mixture`.
* **Sanity checks** (Adebayo et al., 2018), model-agnostic: :func:`cascading_randomization`
  and the similarity / correlation helpers :func:`spearman`, :func:`pearson`,
  :func:`top_k_overlap`.

A hand-computed row (two clips, three classes):

>>> import torch
>>> p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.7, 0.2]])  # c = 0, then 1
>>> o = torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.35, 0.45]])
>>> q = torch.tensor([[0.2, 0.5, 0.3], [0.3, 0.4, 0.3]])
>>> rows = faithfulness_metrics(p, o, q)
>>> {k: [round(v, 4) for v in t.tolist()] for k, t in rows.items()}
{'AI': [100.0, 0.0], 'AD': [0.0, 50.0], 'AG': [20.0, 0.0], 'FF': [0.3, 0.3], 'Fid-In': [1.0, 0.0]}
>>> {k: round(v, 4) for k, v in summarize(rows).items()}
{'AI': 50.0, 'AD': 25.0, 'AG': 10.0, 'FF': 0.3, 'Fid-In': 0.5, 'n': 2}

SI-SDR:

>>> ref = torch.sin(torch.linspace(0, 100, 16000))
>>> round(float(si_sdr(ref + 0.1 * torch.cos(torch.linspace(0, 37, 16000)), ref)))  # noise at -20 dB
20
>>> bool(si_sdr(0.5 * ref, ref) > 60)  # gain does not matter
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "si_sdr",
    "class_probabilities",
    "average_increase",
    "average_drop",
    "average_gain",
    "faithfulness_on_spectra",
    "input_fidelity",
    "sparseness",
    "complexity",
    "mask_mean",
    "faithfulness_metrics",
    "summarize",
    "Estimate",
    "bootstrap",
    "ground_truth_overlap",
    "pearson",
    "spearman",
    "top_k_overlap",
    "cascading_randomization",
]

# Rows of p, o, q must sum to 1 within this: loose enough for a softmax taken in half
# precision, tight enough to reject logits or sigmoid scores passed by mistake.
_SUM_TOLERANCE = 1e-2
# Masks and probabilities may overshoot [0, 1] by float rounding only.
_RANGE_TOLERANCE = 1e-6


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019), over the last axis.

    How well a recovered source (e.g. a masked mixture) matches the true one, whatever its gain.
    Written out because it is five lines; torchaudio has no SI-SDR outside its prototype modules.

    >>> t = torch.linspace(0, 50, 8000)
    >>> si_sdr(torch.stack([torch.sin(t), torch.cos(t)]), torch.sin(t).expand(2, -1)).round()[1] < 0
    tensor(True)
    """
    reference = reference - reference.mean(dim=-1, keepdim=True)
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


# --------------------------------------------------------------------------------------------
# Probabilities
# --------------------------------------------------------------------------------------------


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[B, C]`` of a closed-set classifier: one softmax over its logits.

    The one place the softmax is applied, so that no metric applies it a second time (the
    SpeechBrain bug noted in methods.md). Computed in float32 at least, so a half-precision
    model still gives rows that sum to 1.

    >>> class_probabilities(torch.tensor([[0.0, 0.0], [2.0, 0.0]])).round(decimals=3)
    tensor([[0.5000, 0.5000],
            [0.8810, 0.1190]])
    """
    logits = torch.as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [B, C], got shape {tuple(logits.shape)}.")
    return torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)


# --------------------------------------------------------------------------------------------
# Faithfulness (per clip, methods.md table)
# --------------------------------------------------------------------------------------------


def _probabilities(name: str, x, batch: int | None = None, classes: int | None = None) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be class probabilities [B, C], got shape {tuple(x.shape)}.")
    if (batch is not None and x.shape[0] != batch) or (classes is not None and x.shape[1] != classes):
        raise ValueError(f"{name} has shape {tuple(x.shape)}, but p has shape ({batch}, {classes}); they must match.")
    if x.is_complex():
        raise ValueError(f"{name} must be real probabilities, got a complex tensor.")
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    # Reject logits early: every metric below is meaningless on them, and the usual fix
    # (a softmax) belongs in class_probabilities, applied once.
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    out_of_range = ((x < -_RANGE_TOLERANCE) | (x > 1 + _RANGE_TOLERANCE)).any()
    if out_of_range or not torch.allclose(x.sum(-1), ones, atol=_SUM_TOLERANCE):
        raise ValueError(
            f"{name} does not look like probabilities (entries in [0, 1], rows summing to 1). From "
            "logits use class_probabilities(logits) (for a zero-shot CLAP, of audiox.zeroshot.logits): "
            "one softmax, not two."
        )
    return x


def _target(p: torch.Tensor, target) -> torch.Tensor:
    """c: the explicit target, else the class predicted on the original input (argmax p)."""
    if target is None:
        return p.argmax(dim=-1)
    target = torch.as_tensor(target, device=p.device)
    if target.ndim != 1 or target.shape[0] != p.shape[0] or target.is_floating_point() or target.is_complex():
        raise ValueError(f"target must be class indices [B] = [{p.shape[0]}], got {target.dtype} of shape {tuple(target.shape)}.")
    if ((target < 0) | (target >= p.shape[1])).any():
        raise ValueError(f"target indices must lie in [0, {p.shape[1]}).")
    return target.long()


def _pick(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return x.gather(1, c[:, None]).squeeze(1)


def _pair(p, other, other_name: str, target):
    p = _probabilities("p", p)
    other = _probabilities(other_name, other, *p.shape)
    c = _target(p, target)
    return _pick(p, c), _pick(other.to(p.device), c), c


def average_increase(p: torch.Tensor, o: torch.Tensor, target=None) -> torch.Tensor:
    """AI = 100 * [o_c > p_c] per clip ``[B]`` (methods.md): did keeping only the mask raise the
    probability of the class? Strictly greater: an unchanged probability is no increase.

    >>> average_increase(torch.tensor([[0.5, 0.5], [0.5, 0.5]]), torch.tensor([[0.6, 0.4], [0.5, 0.5]]))
    tensor([100.,   0.])
    """
    p_c, o_c, _ = _pair(p, o, "o", target)
    return 100 * (o_c > p_c).to(p_c.dtype)


def average_drop(p: torch.Tensor, o: torch.Tensor, target=None) -> torch.Tensor:
    """AD = 100 * max(p_c - o_c, 0) / p_c per clip ``[B]`` (methods.md): the share of the class
    probability lost when only the masked-in part is kept. Lower is better.

    On probabilities, once: the SpeechBrain code's second softmax is not applied. p_c = 0 (only
    possible with an explicit ``target``) leaves nothing to drop: AD = 0.

    >>> average_drop(torch.tensor([[0.8, 0.2]]), torch.tensor([[0.2, 0.8]]))
    tensor([75.])
    """
    p_c, o_c, _ = _pair(p, o, "o", target)
    drop = (p_c - o_c).clamp_min(0)
    return 100 * torch.where(p_c > 0, drop / p_c.clamp_min(torch.finfo(p_c.dtype).tiny), torch.zeros_like(p_c))


def average_gain(p: torch.Tensor, o: torch.Tensor, target=None) -> torch.Tensor:
    """AG = 100 * max(o_c - p_c, 0) / (1 - p_c) per clip ``[B]`` (methods.md): the share of the
    room left above p_c that the masked-in input gains. Higher is better.

    p_c = 1 leaves no room and nothing can be gained (o_c <= 1 = p_c): AG = 0, not 0/0. This
    happens in float32 for confident clips (a softmax rounds to exactly 1.0 beyond a logit
    margin of about 17), so it is defined rather than left as NaN.

    >>> average_gain(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), torch.tensor([[0.6, 0.4], [1.0, 0.0]])).round(decimals=4)
    tensor([20.,  0.])
    """
    p_c, o_c, _ = _pair(p, o, "o", target)
    gain = (o_c - p_c).clamp_min(0)
    room = 1 - p_c
    return 100 * torch.where(room > 0, gain / room.clamp_min(torch.finfo(room.dtype).tiny), torch.zeros_like(room))


def faithfulness_on_spectra(p: torch.Tensor, q: torch.Tensor, target=None) -> torch.Tensor:
    """FF = p_c - q_c per clip ``[B]`` (methods.md): how much the class probability falls when the
    mask is removed (masked-out input X*(1-M)). In [-1, 1], higher is better.

    >>> faithfulness_on_spectra(torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.8]]))
    tensor([0.3000])
    """
    p_c, q_c, _ = _pair(p, q, "q", target)
    return p_c - q_c


def input_fidelity(p: torch.Tensor, o: torch.Tensor, target=None) -> torch.Tensor:
    """Fid-In = [argmax o = c] per clip ``[B]``, 1.0 or 0.0 (methods.md): does the masked-in input
    alone keep the decision? c is argmax p (or ``target``), never a fixed class 0 (the L2I bug
    noted in methods.md).

    >>> input_fidelity(torch.tensor([[0.1, 0.9], [0.1, 0.9]]), torch.tensor([[0.4, 0.6], [0.6, 0.4]]))
    tensor([1., 0.])
    """
    p = _probabilities("p", p)
    o = _probabilities("o", o, *p.shape).to(p.device)
    return (o.argmax(dim=-1) == _target(p, target)).to(p.dtype)


# --------------------------------------------------------------------------------------------
# Mask metrics (per clip, over the flattened mask)
# --------------------------------------------------------------------------------------------


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    # float64 for sums over ~10^5 bins per clip; MPS has no float64.
    return torch.float32 if x.device.type == "mps" else torch.float64


def _flat_masks(mask) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.ndim < 2 or mask[0].numel() == 0:
        raise ValueError(f"masks must be [B, ...] with at least one value per clip, got shape {tuple(mask.shape)}.")
    if mask.is_complex():
        raise ValueError("masks must be real, got a complex tensor.")
    return mask.reshape(mask.shape[0], -1).to(_work_dtype(mask))


def sparseness(mask: torch.Tensor) -> torch.Tensor:
    """SPS: Gini index of |M| per clip ``[B]`` over all its values (methods.md; Hurley & Rickard,
    2009, as used for attributions by Chalasani et al., 2020, and Quantus).

    With the n values of |M| sorted ascending, a_1 <= ... <= a_n,
    G = sum_k (2k - n - 1) a_k / (n * sum_k a_k): 0 for a uniform mask, 1 - 1/n for a one-hot
    one (its maximum); scale-invariant. An all-zero mask counts as uniform (all values equal,
    the limit of eps * ones): SPS = 0, never NaN.

    >>> sparseness(torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]))
    tensor([0.7500, 0.0000, 0.0000])
    """
    a = _flat_masks(mask).abs().sort(dim=1).values
    n = a.shape[1]
    k = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    total = a.sum(dim=1)
    gini = ((2 * k - n - 1) * a).sum(dim=1) / (n * total).clamp_min(torch.finfo(a.dtype).tiny)
    return torch.where(total > 0, gini, torch.zeros_like(gini)).float()


def complexity(mask: torch.Tensor) -> torch.Tensor:
    """COMP: entropy in nats of |M| / sum |M| per clip ``[B]`` (methods.md; Bhatt et al., 2020,
    as in Quantus), with 0 log 0 = 0 (``torch.special.entr``). 0 for a one-hot mask, log n for a uniform one (its
    maximum). An all-zero mask counts as uniform, like in :func:`sparseness`: COMP = log n.

    >>> complexity(torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]))
    tensor([0.0000, 1.3863, 1.3863])
    """
    a = _flat_masks(mask).abs()
    total = a.sum(dim=1, keepdim=True)
    share = torch.where(total > 0, a / total.clamp_min(torch.finfo(a.dtype).tiny), torch.full_like(a, 1 / a.shape[1]))
    return torch.special.entr(share).sum(dim=1).float() + 0.0  # entr = -x log x, 0 at 0; + 0.0 turns -0.0 into 0.0


def mask_mean(mask: torch.Tensor) -> torch.Tensor:
    """MM: mean of M per clip ``[B]`` (methods.md), signed: how much of the input the mask keeps.

    >>> mask_mean(torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.25, 0.25], [0.25, 0.25]]]))
    tensor([0.5000, 0.2500])
    """
    return _flat_masks(mask).mean(dim=1).float()


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def faithfulness_metrics(
    p: torch.Tensor,
    o: torch.Tensor,
    q: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    target=None,
) -> dict[str, torch.Tensor]:
    """Every metric of methods.md's table, per clip: ``{"AI", "AD", "AG", ["FF"], "Fid-In",
    ["SPS", "COMP", "MM"]} -> [B]``, in the papers' column names and units.

    p, o, q: probabilities ``[B, C]`` on the original, masked-in and masked-out input, from
    :func:`class_probabilities` (of a classifier's or a zero-shot CLAP's logits); FF is
    left out without ``q``, the mask metrics without ``mask`` ``[B, ...]``. ``target`` ``[B]``:
    the class c to explain, by default argmax p. Average with :func:`summarize`.

    >>> p = class_probabilities(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    >>> o = class_probabilities(torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    >>> m = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    >>> rows = faithfulness_metrics(p, o, mask=m)
    >>> list(rows), rows["AI"].tolist(), rows["SPS"].tolist(), rows["MM"].tolist()
    (['AI', 'AD', 'AG', 'Fid-In', 'SPS', 'COMP', 'MM'], [100.0, 0.0], [0.75, 0.0], [0.25, 1.0])
    """
    p = _probabilities("p", p)
    c = _target(p, target)
    rows = {
        "AI": average_increase(p, o, c),
        "AD": average_drop(p, o, c),
        "AG": average_gain(p, o, c),
    }
    if q is not None:
        rows["FF"] = faithfulness_on_spectra(p, q, c)
    rows["Fid-In"] = input_fidelity(p, o, c)
    if mask is not None:
        mask = torch.as_tensor(mask)
        if mask.ndim < 2 or mask.shape[0] != p.shape[0]:
            raise ValueError(f"mask must be [B, ...] with B = {p.shape[0]} clips like p, got shape {tuple(mask.shape)}.")
        rows.update(SPS=sparseness(mask).to(p.device), COMP=complexity(mask).to(p.device), MM=mask_mean(mask).to(p.device))
    return rows


def summarize(per_clip: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]]) -> dict[str, float]:
    """One table row: the mean of every per-clip metric over all clips, and ``"n"`` the clip count.

    Takes the dict of :func:`faithfulness_metrics` (or :func:`ground_truth_overlap`), or a list
    of them (one per batch), which are concatenated first so that the mean is over clips, not
    over batches of unequal size.

    >>> summarize([{"AI": torch.tensor([100.0, 0.0])}, {"AI": torch.tensor([100.0])}])
    {'AI': 66.66666666666667, 'n': 3}
    """
    batches = [per_clip] if isinstance(per_clip, Mapping) else list(per_clip)
    if not batches or not batches[0]:
        raise ValueError("nothing to summarize: no metrics.")
    keys = list(batches[0])
    if any(list(batch) != keys for batch in batches):
        raise ValueError(f"every batch must hold the same metrics {keys}.")
    # to the CPU first, then float64: MPS has no float64
    columns = {k: torch.cat([torch.as_tensor(b[k]).reshape(-1).cpu().double() for b in batches]) for k in keys}
    sizes = {k: v.numel() for k, v in columns.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"metrics must have one value per clip each, got counts {sizes}.")
    return {**{k: float(v.mean()) for k, v in columns.items()}, "n": next(iter(sizes.values()))}


# --------------------------------------------------------------------------------------------
# Uncertainty: bootstrap intervals over clips
# --------------------------------------------------------------------------------------------

#: Resamples of the bootstrap: enough for the second decimal of a 95% interval.
BOOTSTRAP_RESAMPLES = 1000


class Estimate(NamedTuple):
    """A mean over clips with its bootstrap 95% interval; prints as ``0.88 [0.84, 0.91]``."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def __str__(self) -> str:
        return self.format()


def bootstrap(values, statistic: Callable[[torch.Tensor], torch.Tensor] | None = None,
              resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95) -> Estimate:
    """The statistic (default: the mean) of per-clip ``values`` ``[N]`` with a percentile bootstrap interval.

    Clips are resampled with replacement ``resamples`` times (seeded: the same interval on every
    run), the statistic recomputed on each resample, and the central ``level`` of those values
    reported. Every figure of the course computed over fewer than 1,000 clips carries one: with
    30 clips a mean accuracy of 0.9 is anything from about 0.8 to 1.0. ``statistic`` maps a batch
    of resamples ``[R, N]`` to ``[R]`` (the mean by default); values that are NaN are dropped first.

    >>> est = bootstrap(torch.tensor([0.0, 1.0] * 50))
    >>> est.mean, est.n, 0.39 < est.low < 0.5 < est.high < 0.61
    (0.5, 100, True)
    >>> str(bootstrap(torch.ones(5)))
    '1.00 [1.00, 1.00]'
    """
    # a tensor goes to the CPU before it becomes float64 (MPS has no float64); a list or array is read as float64
    x = torch.as_tensor(values.detach().cpu() if torch.is_tensor(values) else values, dtype=torch.float64).reshape(-1)
    x = x[~torch.isnan(x)]
    if len(x) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    statistic = statistic or (lambda v: v.mean(dim=-1))
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(len(x), (resamples, len(x)), generator=generator)
    draws = statistic(x[index])
    tail = (1 - level) / 2
    low, high = torch.quantile(draws, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return Estimate(float(statistic(x[None])[0]), low, high, len(x))


# --------------------------------------------------------------------------------------------
# Ground truth on mixtures
# --------------------------------------------------------------------------------------------


def _check_unit_range(name: str, x: torch.Tensor) -> None:
    if ((x < -_RANGE_TOLERANCE) | (x > 1 + _RANGE_TOLERANCE)).any():
        raise ValueError(f"{name} must lie in [0, 1].")


def ground_truth_overlap(
    mixture: torch.Tensor, mask: torch.Tensor, source_mask: torch.Tensor, beta: float = 1.0
) -> dict[str, torch.Tensor]:
    """Energy-weighted agreement of an explanation mask with a true source, per clip ``[B]``.

    ``mixture`` X: the mixture's magnitude ``[B, F, T]`` (any ``[B, ...]``), non-negative;
    ``mask`` M: the explanation, in [0, 1]; ``source_mask`` R: the true source's ratio mask in
    [0, 1] (``make_mixture(...)["masks"]["event"]``, M_k = |S_k| / sum_j |S_j|), all three on
    the same time-frequency grid. With E = X^2 the mixture energy per bin and R the share of it
    attributed to the source:

    * precision = sum(M E R) / sum(M E): how much of the explanation's energy is the source's;
    * recall    = sum(M E R) / sum(E R): how much of the source's energy the explanation keeps;
    * f_measure = (1 + beta^2) P R / (beta^2 P + R).

    Why energy-weighted: what a learner hears is the masked spectrogram M X, so a bin counts by
    its energy (Parseval ties spectrogram energy to signal energy). A count of bins (IoU of
    thresholded masks) would weigh a -80 dB bin that nobody hears like the event's loudest
    harmonic, and would need a threshold. Since the true masks of all sources sum to 1 where
    there is energy, the precisions of one mask against every source sum to 1; M = 1 gives
    recall 1 and precision = the source's energy share of the mixture.

    Undefined ratios are 0, never NaN: an empty explanation (sum M E = 0) has precision 0, a
    source without energy (sum E R = 0) recall 0, and F = 0 when P = R = 0.

    >>> x = torch.tensor([[[1.0, 2.0]]])  # energies 1 and 4
    >>> r = torch.tensor([[[1.0, 0.0]]])  # the source owns the first bin
    >>> {k: v.tolist() for k, v in ground_truth_overlap(x, torch.ones(1, 1, 2), r).items()}
    {'precision': [0.20000000298023224], 'recall': [1.0], 'f_measure': [0.3333333432674408]}
    """
    tensors = [torch.as_tensor(t) for t in (mixture, mask, source_mask)]
    shapes = [tuple(t.shape) for t in tensors]
    if len(set(shapes)) != 1 or len(shapes[0]) < 2:
        raise ValueError(f"mixture, mask and source_mask must share one shape [B, F, T] (or [B, ...]), got {shapes}.")
    if any(t.is_complex() for t in tensors):
        raise ValueError("pass real tensors: the mixture's magnitude |X|, not its complex STFT.")
    # on one device before the working dtype is chosen: float64, unless that device is MPS
    x, m, r = (_flat_masks(t.to(tensors[0].device)) for t in tensors)
    if (x < 0).any():
        raise ValueError("mixture must be a magnitude (non-negative).")
    _check_unit_range("mask", m)
    _check_unit_range("source_mask", r)
    energy = x.square()
    hit = (m * energy * r).sum(dim=1)
    explained = (m * energy).sum(dim=1)
    source = (energy * r).sum(dim=1)
    tiny = torch.finfo(x.dtype).tiny
    zero = torch.zeros_like(hit)
    precision = torch.where(explained > 0, hit / explained.clamp_min(tiny), zero)
    recall = torch.where(source > 0, hit / source.clamp_min(tiny), zero)
    denominator = beta**2 * precision + recall
    f_measure = torch.where(denominator > 0, (1 + beta**2) * precision * recall / denominator.clamp_min(tiny), zero)
    return {"precision": precision.float(), "recall": recall.float(), "f_measure": f_measure.float()}


# --------------------------------------------------------------------------------------------
# Sanity checks: similarity / correlation, cascading model randomisation
# --------------------------------------------------------------------------------------------


def _series(a, b) -> tuple[torch.Tensor, torch.Tensor, bool]:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.ndim == 0 or a.numel() == 0:
        raise ValueError(f"expected two tensors of one shape, [N] or [B, ...], got {tuple(a.shape)} and {tuple(b.shape)}.")
    single = a.ndim == 1
    a = a.reshape(1, -1) if single else a.reshape(a.shape[0], -1)
    b = b.reshape(1, -1) if single else b.reshape(b.shape[0], -1)
    dtype = _work_dtype(a)
    return a.to(dtype), b.to(device=a.device, dtype=dtype), single


def _pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    identical = (a == b).all(dim=1)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    scale = (a.square().sum(dim=1) * b.square().sum(dim=1)).sqrt()
    r = (a * b).sum(dim=1) / scale.clamp_min(torch.finfo(a.dtype).tiny)
    # A constant series has no correlation with anything (0), but is identical to itself (1).
    r = torch.where(scale > 0, r, torch.zeros_like(r))
    return torch.where(identical, torch.ones_like(r), r).clamp(-1, 1).float()


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks along dim 1, ties sharing their average rank (as scipy.stats.rankdata)."""
    ordered = x.sort(dim=1).values.contiguous()
    x = x.contiguous()
    # Tied values occupy sorted positions [first, last): their average 1-based rank is (first + last + 1) / 2.
    first = torch.searchsorted(ordered, x, right=False)
    last = torch.searchsorted(ordered, x, right=True)
    return (first + last + 1).to(x.dtype) / 2


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation: of two series ``[N]`` (a 0-d tensor), or per clip of ``[B, ...]``
    tensors over their flattened values (``[B]``).

    Defined everywhere: 1 for identical inputs (constant ones included), 0 when one of them is
    constant otherwise.

    >>> pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])).round(decimals=4)
    tensor(0.9934)
    >>> pearson(torch.ones(2, 3), torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]))
    tensor([1., 0.])
    """
    a, b, single = _series(a, b)
    r = _pearson_rows(a, b)
    return r[0] if single else r


def spearman(a: torch.Tensor, b: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Spearman rank correlation (Pearson of average ranks, ties averaged), shapes as :func:`pearson`.

    The similarity of Adebayo et al. (2018) between an explanation and the one after model
    randomisation; ``absolute=True`` ranks |a| and |b|, their variant for signed maps. Also the
    helper for "mask mean against similarity": ``spearman(mask_mean(masks), similarity)``.

    >>> spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 10.0, 100.0, 1000.0]))
    tensor(1.)
    >>> spearman(torch.tensor([[0.0, 0.0, 1.0], [3.0, 2.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]))
    tensor([ 1., -1.])
    """
    a, b, single = _series(a, b)
    if absolute:
        a, b = a.abs(), b.abs()
    r = _pearson_rows(_average_ranks(a), _average_ranks(b))
    return r[0] if single else r


def top_k_overlap(a: torch.Tensor, b: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Share of the top ``fraction`` of a's values (k = max(1, round(fraction * n)) entries) that
    are also among b's top k, per clip ``[B]`` of ``[B, ...]`` tensors (a 0-d tensor for ``[N]``).

    A coarse, threshold-based complement to :func:`spearman`: do the two masks highlight the
    same bins? Ties at the k-th value are broken arbitrarily.

    >>> top_k_overlap(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 2.0, 3.0]]), fraction=0.5)
    tensor([0.5000])
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}.")
    a, b, single = _series(a, b)
    k = max(1, round(fraction * a.shape[1]))
    in_top_a = torch.zeros_like(a, dtype=torch.bool).scatter_(1, a.topk(k, dim=1).indices, True)
    overlap = in_top_a.gather(1, b.topk(k, dim=1).indices).float().mean(dim=1)
    return overlap[0] if single else overlap


def _reinitialise(module: nn.Module, seed: int) -> None:
    """Fresh random weights for ``module`` and all its submodules, reproducibly, without moving
    the caller's random state.

    Drawn on a CPU copy from the CPU generator and copied back, so a module on a GPU gets the very
    weights it would get on a CPU (a device's generator draws other numbers from the same seed)."""
    on_cpu = copy.deepcopy(module).cpu()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for sub in on_cpu.modules():
            if callable(getattr(sub, "reset_parameters", None)):
                sub.reset_parameters()  # the layer's own initialisation, as in Adebayo et al.
            else:
                # No known initialisation (e.g. a bare nn.Parameter): redraw from a normal
                # with the tensor's own mean and spread, so the scale stays plausible.
                for param in sub.parameters(recurse=False):
                    param.copy_(torch.randn_like(param) * param.std(correction=0) + param.mean())
        module.load_state_dict(on_cpu.state_dict())  # copies into the module's own tensors, on their devices


def cascading_randomization(
    model: nn.Module,
    layers: Sequence[str],
    explain: Callable[[nn.Module], torch.Tensor],
    similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = spearman,
    cumulative: bool = True,
    seed: int = 0,
    return_masks: bool = False,
) -> dict:
    """Model-randomisation sanity check (Adebayo et al., "Sanity checks for saliency maps", 2018).

    ``layers``: names of ``model``'s modules (``model.named_modules()``), ordered from the top
    (output) to the bottom; ``explain(m)`` returns the masks ``[B, ...]`` of a fixed batch for
    the model ``m`` it is given (it must use that argument, not ``model``). On a deep copy,
    never on ``model`` itself, the layers are re-initialised one after the other (their own
    ``reset_parameters``, seeded with ``seed + step``), cumulatively; ``cumulative=False``
    re-initialises each layer alone on a fresh copy (the "independent" variant).

    Returns ``{"layers": ["(none)", *layers], "similarity": [1 + len(layers), B]}``: row i
    compares the masks of the untouched copy with those after step i. Row 0 re-runs ``explain``
    on the untouched copy: 1.0 for a deterministic explainer, the noise floor otherwise (e.g.
    SmoothGrad). A faithful explainer's similarity falls as layers are randomised; one that
    stays high explains the input, not the model. ``return_masks=True`` adds ``"masks"``
    ``[1 + len(layers), B, ...]`` (the untouched masks first).

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x = torch.randn(5, 4, requires_grad=True)
    >>> def saliency(m):  # |d max logit / d x|
    ...     (g,) = torch.autograd.grad(m(x).max(dim=1).values.sum(), x)
    ...     return g.abs()
    >>> out = cascading_randomization(net, ["2", "0"], saliency)
    >>> out["layers"], out["similarity"].shape, out["similarity"][0].tolist()
    (['(none)', '2', '0'], torch.Size([3, 5]), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    layers = list(layers)
    work = copy.deepcopy(model)
    known = dict(work.named_modules())
    unknown = [name for name in layers if name not in known]
    if unknown:
        raise ValueError(f"no module named {unknown} in the model; names come from model.named_modules().")

    def masks_of(m: nn.Module) -> torch.Tensor:
        out = explain(m)
        if not torch.is_tensor(out) or out.ndim < 2:
            raise ValueError("explain(model) must return masks [B, ...] as one tensor.")
        return out.detach()

    reference = masks_of(work)
    masks = [reference]
    rows = [similarity(reference, masks_of(work))]
    for step, name in enumerate(layers, start=1):
        if not cumulative:
            work = copy.deepcopy(model)
        _reinitialise(work.get_submodule(name), seed + step)
        masks.append(masks_of(work))
        rows.append(similarity(reference, masks[-1]))
    out = {"layers": ["(none)", *layers], "similarity": torch.stack([torch.as_tensor(r).float().cpu() for r in rows])}
    if return_masks:
        out["masks"] = torch.stack(masks)
    return out
