"""Non-negative matrix factorisation of log spectrograms, in torch: the dictionary of L2I (seed 003).

L2I explains a classifier with NMF components learned beforehand on ``V = log1p|STFT|``:

    V [F, T]  ~  W [F, K]  @  H [K, T]        W >= 0, H >= 0, each column of W of unit L2 norm

A column ``w_k`` of W is a spectral template (a harmonic stack, a noise band, a click); row
``h_k`` of H says when and how loudly it sounds. Two costs, summed over all entries:

* ``"euclidean"``: ``0.5 * ||V - W H||^2 + l1 * sum(H)`` (L2I's MSE), minimised by HALS, exact
  coordinate descent on one row of H or column of W at a time (what scikit-learn's ``"cd"``
  solver does, here vectorised over frames). Multiplicative updates are much slower here: on 100
  clips at K = 100, 800 of them stayed above the cost coordinate descent reaches in 200.
* ``"kl"``: generalised Kullback-Leibler ``sum(V log(V / W H) - V + W H) + l1 * sum(H)``,
  minimised by multiplicative updates (Lee and Seung), started from a short Euclidean fit.

Every update keeps the cost from increasing, with or without ``l1``: the penalty is written
``l1 * sum_k ||w_k|| * sum(h_k)``, which does not change when a column of W is rescaled and its
row of H inversely, so W can be normalised whenever convenient.

To *listen* to components, :func:`component_masks` gives the Wiener-like mask
``sum_{k in S} w_k h_k / (W H)``; it multiplies the clip's linear magnitude, the original
phase is put back and :func:`audiox.audio.listenable` returns a waveform
(:func:`component_audio` does all three).

>>> from audiox.data.synth import SynthSounds
>>> waves = SynthSounds("test", n_per_class=1).waves()
>>> V, phase = log_spectrogram(waves)
>>> tuple(V.shape)
(10, 257, 251)
>>> result = fit(V, n_components=8, n_iter=10)
>>> tuple(result.W.shape), tuple(result.H.shape), bool(result.costs[-1] < result.costs[0])
((257, 8), (10, 8, 251), True)
>>> H = transform(V[:2], result.W)
>>> tuple(component_audio(waves[:2], result.W, H, components=[0, 3]).shape)
(2, 32000)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .audio import HOP_LENGTH, N_FFT, listenable, magnitude_phase

BETAS = ("euclidean", "kl")
_EPS = 1e-10
# Entries below this are set to 0: unused entries shrink towards 0 geometrically, and exact
# zeros keep the factors sparse and away from subnormal floats, which are slow on many CPUs.
_TINY = 1e-15
# Sweeps over the rows of H / columns of W per iteration. Extra W sweeps reuse V H^T, the expensive
# product, and cost only K x K x F each (Gillis and Glineur's accelerated HALS); extra H sweeps
# led to poorer local minima on log1p spectra (2-5% higher final cost at K = 25, 300 clips).
_H_SWEEPS, _W_SWEEPS = 1, 5
# Multiplicative updates spend most of their first iterations undoing the initialisation; a
# short Euclidean fit is a much better start for the KL cost (on 100 clips at K = 100,
# scikit-learn's final KL cost after 1 MU iteration instead of 231).
_KL_WARM_START = 20


@dataclass
class NMFResult:
    """``W [F, K]`` (unit columns; a dead component is a zero column), ``H`` laid out as the
    input (``[K, N]`` or ``[B, K, T]``), and the cost after each iteration."""

    W: torch.Tensor
    H: torch.Tensor
    costs: list[float] = field(default_factory=list)

    @property
    def n_iter(self) -> int:
        return len(self.costs)


def log_spectrogram(waves: torch.Tensor, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
    """``(log1p|STFT|, phase)``, each ``[..., F, T]``: what the L2I dictionary is learned on.

    >>> V, phase = log_spectrogram(torch.zeros(16000))
    >>> tuple(V.shape), float(V.max())
    ((257, 126), 0.0)
    """
    magnitude, phase = magnitude_phase(waves, n_fft, hop_length)
    return torch.log1p(magnitude), phase


# ---- input checks ----------------------------------------------------------------------------------

def _checked(x, name: str, dims=(2, 3)) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point tensor, got {what}; convert it with .float().")
    if x.ndim not in dims or x.numel() == 0:
        want = " or ".join({2: "[F, N]", 3: "[B, F, T]"}.get(d, f"{d}-d") for d in dims)
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected a non-empty {want} tensor.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains {int((~torch.isfinite(x)).sum())} NaN or infinite values; fix the "
                         f"source or replace them, e.g. torch.nan_to_num({name}).")
    if (x < 0).any():
        raise ValueError(f"{name} has negative values (min {float(x.min()):.3g}); NMF needs non-negative data: use "
                         f"log1p of a magnitude (log_spectrogram), not log, or {name}.clamp(min=0).")
    return x


def _columns(V: torch.Tensor) -> torch.Tensor:
    """``[B, F, T]`` -> ``[F, B*T]``: clips side by side, because every frame is factorised alike."""
    return V if V.ndim == 2 else V.transpose(0, 1).reshape(V.shape[1], -1)


def _like_input(H: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    return H if V.ndim == 2 else H.reshape(H.shape[0], V.shape[0], V.shape[2]).transpose(0, 1).contiguous()


def _check_beta(beta: str, l1: float) -> None:
    if beta not in BETAS:
        raise ValueError(f"beta={beta!r} is not a cost; use one of {BETAS}.")
    if not l1 >= 0:
        raise ValueError(f"l1={l1} must be >= 0 (a penalty on the activations).")


# ---- costs and updates -------------------------------------------------------------------------------

def _float64(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float64 (for the costs' sums and the initial SVD) where it lives; on the CPU when that is MPS,
    which has no float64 (a cost is one number, read on the CPU anyway)."""
    return x.cpu().double() if x.device.type == "mps" else x.double()


def cost(V, W, H, beta: str = "euclidean", l1: float = 0.0) -> float:
    """The cost :func:`fit` minimises, for ``V [F, N]`` or ``[B, F, T]`` and ``H`` laid out alike.

    >>> V = torch.rand(5, 7); W = torch.eye(5)
    >>> cost(V, W, V), cost(V, W, V, "kl") < 1e-5
    (0.0, True)
    """
    _check_beta(beta, l1)
    WH = W @ H
    if beta == "euclidean":
        fit_term = 0.5 * _float64(V - WH).pow(2).sum()
    else:
        fit_term = _float64(torch.xlogy(V, V) - torch.xlogy(V, WH + _EPS) - V + WH).sum()
    per_component = _float64(H).sum(-1)
    if per_component.ndim == 2:  # a batch [B, K, T]
        per_component = per_component.sum(0)
    return float(fit_term + l1 * (_float64(W.norm(dim=0)) @ per_component))


def _hals_sweep(X: torch.Tensor, B: torch.Tensor, G: torch.Tensor, group_l1: torch.Tensor | None = None) -> None:
    """One exact minimisation per row of ``X`` of ``0.5 tr(X^T G X) - tr(B^T X)`` over X >= 0, in place.

    H-step: ``X = H``, ``G = W^T W``, ``B = W^T V - l1``. W-step: ``X = W^T``, ``G = H H^T``,
    ``B = H V^T``, and ``group_l1 = l1 * sum(h_k)`` shrinks each column: the exact minimiser of the
    scale-free penalty ``l1 * ||w_k|| * sum(h_k)``.
    """
    diag = G.diagonal().clamp_min(_EPS).tolist()  # Python floats: scalar arguments spare a kernel per row
    for k, (x, b, g) in enumerate(zip(X.unbind(0), B.unbind(0), G.unbind(0))):
        row = torch.addmv(b, X.T, g, alpha=-1).add_(x, alpha=diag[k]).div_(diag[k])
        if group_l1 is not None:
            row *= (1 - group_l1[k] / diag[k] / row.clamp(min=0).norm().clamp_min(_EPS)).clamp_min(0)
        x.copy_(F.threshold(row, _TINY, 0.0, inplace=True))


def _normalise(Wt: torch.Tensor, H: torch.Tensor) -> None:
    norms = Wt.norm(dim=1, keepdim=True)
    Wt /= norms.clamp_min(_EPS)
    H *= norms


def _euclidean_step(V, Wt, H, l1, half_sq_norm) -> float:
    _normalise(Wt, H)
    WtV, WtW = Wt @ V, Wt @ Wt.T
    for _ in range(_H_SWEEPS):
        _hals_sweep(H, WtV - l1, WtW)
    HVt, HHt = H @ V.T, H @ H.T
    sums = H.sum(1)
    for _ in range(_W_SWEEPS):
        _hals_sweep(Wt, HVt, HHt, l1 * sums if l1 else None)
    # 0.5 ||V - WH||^2 from the K x K and K x F products at hand, without forming W H
    fit_term = half_sq_norm - _float64(Wt * HVt).sum() + 0.5 * _float64((Wt @ Wt.T) * HHt).sum()
    # two Python floats, not one tensor sum: the fit term may sit on the CPU and the penalty on the device
    return float(fit_term) + float(l1 * (Wt.norm(dim=1) @ sums))


def _kl_h_step(V, Wt, H, l1) -> None:
    ratio = V / (Wt.T @ H + _EPS)
    H.mul_((Wt @ ratio) / (Wt.sum(1, keepdim=True) + l1 * Wt.norm(dim=1, keepdim=True)))
    F.threshold(H, _TINY, 0.0, inplace=True)


def _kl_step(V, Wt, H, l1) -> float:
    _normalise(Wt, H)
    _kl_h_step(V, Wt, H, l1)
    grad = H @ (V / (Wt.T @ H + _EPS)).T  # [K, F]
    sums = H.sum(1, keepdim=True)
    # Root of the majoriser with l1 * ||w|| bounded by a quadratic at ||w|| = 1: plain MU when l1 = 0
    Wt.copy_(F.threshold(2 * Wt * grad / (sums + (sums**2 + 4 * l1 * sums * Wt * grad).sqrt() + _EPS), _TINY, 0.0))
    WH = Wt.T @ H
    fit_term = _float64(torch.xlogy(V, V) - torch.xlogy(V, WH + _EPS) - V + WH).sum()
    return float(fit_term) + float(l1 * (Wt.norm(dim=1) @ H.sum(1)))


# ---- fit and transform -------------------------------------------------------------------------------

def _lift_zeros(V, Wt, H) -> None:
    """Raise exact zeros left by HALS a little: a multiplicative update can never move a zero.

    The floor is relative to each frame's level (and to each component's), never to a batch, so
    that a batch of clips gets the same activations as its clips one at a time.
    """
    H.copy_(torch.maximum(H, 1e-6 * V.mean(0, keepdim=True)))
    if Wt is not None:
        Wt.copy_(torch.maximum(Wt, 1e-6 * Wt.mean(1, keepdim=True)))


def _nndsvda(V: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boutsidis and Gallopoulos' NNDSVD, zeros filled with mean(V) as scikit-learn's "nndsvda".

    The SVD comes from the F x F Gram matrix (F is small), so it is exact and needs no seed; the
    sign of each singular pair is irrelevant since NNDSVD keeps the larger non-negative part.
    """
    V64 = _float64(V)
    eigenvalues, U = torch.linalg.eigh(V64 @ V64.T)
    S, U = eigenvalues.flip(0)[:k].clamp_min(0).sqrt(), U.flip(1)[:, :k]
    Vt = (U.T @ V64) / S[:, None].clamp_min(_EPS)
    pos_u, neg_u, pos_v, neg_v = U.clamp(min=0), (-U).clamp(min=0), Vt.clamp(min=0), (-Vt).clamp(min=0)
    pos, neg = pos_u.norm(dim=0) * pos_v.norm(dim=1), neg_u.norm(dim=0) * neg_v.norm(dim=1)
    keep = pos >= neg
    u = torch.where(keep, pos_u, neg_u)
    v = torch.where(keep[:, None], pos_v, neg_v)
    scale = (S * torch.maximum(pos, neg)).sqrt()
    W = u / u.norm(dim=0).clamp_min(_EPS) * scale
    H = v / v.norm(dim=1, keepdim=True).clamp_min(_EPS) * scale[:, None]
    mean = V64.mean()
    return W.masked_fill(W == 0, mean).to(V.device, V.dtype), H.masked_fill(H == 0, mean).to(V.device, V.dtype)


def fit(V, n_components: int, beta: str = "euclidean", l1: float = 0.0, n_iter: int = 200, tol: float = 1e-4,
        init: str = "nndsvda", seed: int = 0, progress: bool = False, n_init: int = 1) -> NMFResult:
    """Learn ``W`` and ``H`` from ``V`` ``[F, N]`` or ``[B, F, T]`` (clips side by side along time).

    Stops after ``n_iter`` iterations, or when ten iterations lower the cost by less than ``tol``
    of it (``tol=0``: never early).
    ``init="nndsvda"`` is deterministic; ``init="random"`` draws from ``seed`` on the CPU, so CPU
    and GPU start alike. Silent frames (all-zero columns) get ``H = 0`` without being iterated on.
    NMF is not convex: each start ends in a local minimum, and which one depends on the start
    (and on the sweeps), by a percent or two in cost (benchmarks/nmf_local_minima.py). ``n_init > 1`` fits
    again from ``n_init - 1`` random starts (seeds ``seed + 1, ...``) and keeps the lowest final
    cost, as scikit-learn's ``KMeans(n_init=...)`` does.

    >>> V = torch.rand(6, 40)
    >>> result = fit(V, n_components=3, n_iter=5)
    >>> tuple(result.W.shape), tuple(result.H.shape), result.n_iter
    ((6, 3), (3, 40), 5)
    >>> fit(V, 3, n_iter=5, n_init=3).costs[-1] <= result.costs[-1]  # the first start is the default one
    True
    """
    V = _checked(V, "V")
    _check_beta(beta, l1)
    if n_init < 1:
        raise ValueError(f"n_init={n_init} must be at least 1 (the number of starts to keep the best of).")
    M = _columns(V)
    active = M.amax(dim=0) > 0
    Va = M[:, active].contiguous()
    if not 0 < n_components <= min(Va.shape):
        raise ValueError(f"n_components={n_components} must be between 1 and min(F, non-silent frames) = "
                         f"{min(Va.shape)}; use fewer components or more audio.")
    starts = [(init, seed)] + [("random", seed + i) for i in range(1, n_init)]
    Wt, H, costs = min((_fit_from(Va, n_components, beta, l1, n_iter, tol, how, s, progress) for how, s in starts),
                       key=lambda fitted: fitted[2][-1] if fitted[2] else float("inf"))
    H_all = M.new_zeros(n_components, M.shape[1])
    H_all[:, active] = H
    return NMFResult(Wt.T.contiguous(), _like_input(H_all, V), costs)


def _fit_from(Va, n_components, beta, l1, n_iter, tol, init, seed, progress):
    """One fit of the non-silent frames ``Va`` from one start: ``(W^T, H, costs)``."""
    if init == "nndsvda":
        W, H = _nndsvda(Va, n_components)
    elif init == "random":
        g = torch.Generator().manual_seed(seed)
        scale = (Va.mean() / n_components).sqrt().cpu()
        W = (scale * torch.rand(Va.shape[0], n_components, generator=g, dtype=Va.dtype)).to(Va.device)
        H = (scale * torch.rand(n_components, Va.shape[1], generator=g, dtype=Va.dtype)).to(Va.device)
    else:
        raise ValueError(f"init={init!r} is not an initialisation; use 'nndsvda' or 'random'.")
    Wt = W.T.contiguous()

    half_sq_norm = 0.5 * _float64(Va).pow(2).sum()
    if beta == "kl":
        for _ in range(_KL_WARM_START):
            _euclidean_step(Va, Wt, H, l1, half_sq_norm)
        _lift_zeros(Va, Wt, H)
    costs: list[float] = []
    for _ in tqdm(range(n_iter), desc=f"NMF ({beta}, K={n_components})", disable=not progress):
        costs.append(_euclidean_step(Va, Wt, H, l1, half_sq_norm) if beta == "euclidean" else _kl_step(Va, Wt, H, l1))
        if tol > 0 and len(costs) > 10 and costs[-11] - costs[-1] < tol * costs[-1]:
            break
    _normalise(Wt, H)
    return Wt, H, costs


def transform(V, W, beta: str = "euclidean", l1: float = 0.0, n_iter: int = 100) -> torch.Tensor:
    """Activations ``H`` of ``V`` ``[F, N]`` or ``[B, F, T]`` for a frozen dictionary ``W [F, K]``.

    All clips are solved together (each frame is an independent problem), for a fixed number of
    iterations so that a batch gives the same H as its clips one at a time.

    >>> W = torch.eye(4)[:, :2]
    >>> transform(torch.tensor([[1.0, 0.0], [2.0, 3.0], [0.0, 0.0], [0.0, 0.0]]), W)
    tensor([[1., 0.],
            [2., 3.]])
    """
    V, W = _checked(V, "V"), _checked(W, "W", dims=(2,))
    _check_beta(beta, l1)
    if V.device != W.device or V.dtype != W.dtype or W.shape[0] != V.shape[-2]:
        raise ValueError(f"V {tuple(V.shape)} ({V.dtype}, {V.device}) and W {tuple(W.shape)} ({W.dtype}, "
                         f"{W.device}) do not fit: V needs W.shape[0] = {V.shape[-2]} frequency bins, the same "
                         f"dtype and device; use W.to(V).")
    M = _columns(V)
    active = M.amax(dim=0) > 0
    Va = M[:, active].contiguous()
    Wt = W.T.contiguous()
    norms = Wt.norm(dim=1, keepdim=True)  # the penalty is l1 * ||w_k|| * sum(h_k) for any W
    WtV, WtW = Wt @ Va, Wt @ Wt.T
    H = Va.new_zeros(W.shape[1], Va.shape[1])
    for _ in range(n_iter if beta == "euclidean" else _KL_WARM_START):
        _hals_sweep(H, WtV - l1 * norms, WtW)
    if beta == "kl":
        _lift_zeros(Va, None, H)
        for _ in range(n_iter):
            _kl_h_step(Va, Wt, H, l1)
    H_all = M.new_zeros(W.shape[1], M.shape[1])
    H_all[:, active] = H
    return _like_input(H_all, V)


# ---- listening ---------------------------------------------------------------------------------------

def component_masks(W: torch.Tensor, H: torch.Tensor, components) -> torch.Tensor:
    """Wiener-like mask ``sum_k c_k w_k h_k / (W H)`` in [0, 1], ``[F, T]`` or ``[B, F, T]`` like ``H``.

    ``components`` is an index, a list of indices, or a boolean or [0, 1] weight tensor ``[K]`` or
    ``[B, K]`` (e.g. L2I's top components of each clip, or their relevances).

    >>> W, H = torch.eye(3), torch.rand(3, 5)
    >>> bool(component_masks(W, H, [0, 2])[1].eq(0).all()), component_masks(W, H, [0, 1, 2]).allclose(torch.ones(3, 5))
    (True, True)
    """
    K = W.shape[1]
    if isinstance(components, torch.Tensor) and (components.is_floating_point() or components.dtype == torch.bool):
        weights = components.to(H)
    else:
        index = torch.as_tensor(components, dtype=torch.long, device=H.device).reshape(-1)
        if index.numel() and not (0 <= int(index.min()) and int(index.max()) < K):
            raise ValueError(f"components {index.tolist()} must lie in [0, {K - 1}] (W has {K} components).")
        weights = torch.zeros(K, dtype=H.dtype, device=H.device).index_fill_(0, index, 1.0)
    return ((W @ (weights[..., :, None] * H)) / (W @ H + _EPS)).clamp(0, 1)


def component_audio(waves: torch.Tensor, W: torch.Tensor, H: torch.Tensor, components) -> torch.Tensor:
    """The part of ``waves`` ``[T]`` or ``[B, T]`` that ``components`` explain, as waveforms.

    The mask comes from the log1p model but scales the *linear* magnitude, as in L2I: what is
    played is a filtered version of the clip itself, with its own phase.
    """
    magnitude, phase = magnitude_phase(waves)
    return listenable(magnitude, phase, component_masks(W, H, components), length=waves.shape[-1])[0]
