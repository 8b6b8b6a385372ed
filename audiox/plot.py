"""Plots every notebook shares: spectrograms in dB, masks over spectrograms, waveforms, concept bars.

Each function draws on ``ax`` (a new figure when omitted) and returns the axes, so
notebooks compose them into grids.

>>> import matplotlib; matplotlib.use("Agg")
>>> import torch
>>> wave = torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
>>> ax = spectrogram(wave, 16000, title="440 Hz")
>>> ax.get_ylabel()
'Hz'
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .audio import HOP_LENGTH, N_FFT, magnitude_phase


def _axes(ax, figsize=(6, 2.6)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _magnitude(x, n_fft: int, hop_length: int) -> np.ndarray:
    x = torch.as_tensor(x).detach().float().cpu()
    if x.ndim == 1:  # a waveform
        x = magnitude_phase(x, n_fft, hop_length)[0]
    if x.ndim != 2:
        raise ValueError(f"expected a waveform [T] or a magnitude [F, T], got shape {tuple(x.shape)}.")
    return x.numpy()


def _extent(magnitude: np.ndarray, sample_rate: int, hop_length: int):
    n_freq, n_frames = magnitude.shape
    return [0, n_frames * hop_length / sample_rate, 0, sample_rate / 2]


def to_db(magnitude: np.ndarray, floor_db: float = -80.0) -> np.ndarray:
    """Magnitude to dB relative to the largest value, floored at ``floor_db`` (librosa's amplitude_to_db)."""
    import librosa

    ref = float(magnitude.max()) or 1.0  # a silent spectrogram draws as the floor, not as NaN
    return librosa.amplitude_to_db(magnitude, ref=ref, top_db=-floor_db)


def spectrogram(
    x,
    sample_rate: int,
    ax=None,
    title: str = "",
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    floor_db: float = -80.0,
    colorbar: bool = False,
):
    """Spectrogram in dB of a waveform ``[T]`` or a linear magnitude ``[F, T]``."""
    ax = _axes(ax)
    magnitude = _magnitude(x, n_fft, hop_length)
    image = ax.imshow(
        to_db(magnitude, floor_db),
        origin="lower",
        aspect="auto",
        extent=_extent(magnitude, sample_rate, hop_length),
        cmap="magma",
        vmin=floor_db,
        vmax=0,
    )
    ax.set(xlabel="s", ylabel="Hz", title=title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="dB")
    return ax


def mask_overlay(
    x,
    mask,
    sample_rate: int,
    ax=None,
    title: str = "",
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    cmap: str = "viridis",
    colorbar: bool = True,
):
    """A mask in [0, 1] drawn over the grey spectrogram it applies to (transparent where the mask is 0),
    with a colour bar for the mask's values unless ``colorbar=False``."""
    ax = _axes(ax)
    magnitude = _magnitude(x, n_fft, hop_length)
    mask = torch.as_tensor(mask).detach().float().cpu().numpy()
    if mask.shape != magnitude.shape:
        raise ValueError(f"mask {mask.shape} and spectrogram {magnitude.shape} must have the same shape [F, T].")
    extent = _extent(magnitude, sample_rate, hop_length)
    ax.imshow(to_db(magnitude), origin="lower", aspect="auto", extent=extent, cmap="gray", vmin=-80, vmax=0)
    rgba = plt.get_cmap(cmap)(mask)
    rgba[..., 3] = 0.75 * np.clip(mask, 0, 1)  # alpha follows the mask, so unmasked regions stay visible
    ax.imshow(rgba, origin="lower", aspect="auto", extent=extent)
    ax.set(xlabel="s", ylabel="Hz", title=title)
    if colorbar:
        scale = plt.cm.ScalarMappable(norm=plt.Normalize(0, 1), cmap=cmap)
        ax.figure.colorbar(scale, ax=ax, label="mask", fraction=0.05, pad=0.02)
    return ax


def waveform(wave, sample_rate: int, ax=None, title: str = ""):
    """Waveform against time in seconds, on a fixed [-1, 1] axis so loudness compares across plots."""
    ax = _axes(ax, figsize=(6, 1.6))
    wave = torch.as_tensor(wave).detach().float().cpu().numpy()
    ax.plot(np.arange(wave.shape[-1]) / sample_rate, wave, lw=0.5)
    ax.set(xlabel="s", ylim=(-1, 1), title=title, xlim=(0, wave.shape[-1] / sample_rate))
    return ax


def concept_bars(pairs, ax=None, title: str = "", color: str = "tab:blue"):
    """Horizontal bars of ``(word, weight)`` pairs, heaviest on top, e.g. from
    :func:`audiox.concepts.top_concepts`; class probabilities read the same way.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = concept_bars([("siren", 0.4), ("sweeping", 0.2)], title="clip 0")
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['sweeping', 'siren']
    """
    ax = _axes(ax, figsize=(4, 0.3 * max(len(pairs), 3) + 0.8))
    pairs = list(pairs)[::-1]  # barh draws bottom-up
    ax.barh([w for w, _ in pairs], [float(v) for _, v in pairs], color=color)
    ax.set(title=title, xlabel="weight")
    ax.tick_params(axis="y", labelsize=8)
    return ax


def curves(x, series: dict, ax=None, title: str = "", xlabel: str = "", ylabel: str = "", percent: bool = True):
    """Mean +- std bands of repeated measurements: ``series`` maps a label to an array ``[repeats, len(x)]``
    (or ``[len(x)]``: one line, no band). With ``percent``, ``x`` in [0, 1] is labelled in %.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = curves([0.0, 0.5, 1.0], {"top": np.array([[0.1, 0.9, 1.0], [0.1, 0.8, 1.0]])}, ylabel="agreement")
    >>> [line.get_label() for line in ax.get_lines()]
    ['top']
    """
    ax = _axes(ax, figsize=(5, 3))
    x = np.asarray(x, dtype=float) * (100 if percent else 1)
    for label, values in series.items():
        values = np.atleast_2d(np.asarray(values, dtype=float))
        mean, std = values.mean(axis=0), values.std(axis=0)
        (line,) = ax.plot(x, mean, marker=".", label=label)
        if len(values) > 1:
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
    ax.set(title=title, xlabel=xlabel + (" (%)" if percent and xlabel else ""), ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
