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


def waveform(wave, sample_rate: int, ax=None, title: str = "", zoom: float | None = 0.02):
    """Waveform against time in seconds, on a fixed [-1, 1] axis so loudness compares across plots.

    A clip of seconds holds tens of thousands of samples per inch of plot, which draws as a solid block; so the
    whole clip is drawn as its envelope (the range of the samples in each 5 ms), and an inset shows ``zoom``
    seconds around the loudest sample, where the cycles can be seen (``zoom=None``: no inset).

    >>> import matplotlib; matplotlib.use("Agg")
    >>> ax = waveform(torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000), 16000)
    >>> len(ax.child_axes)
    1
    """
    ax = _axes(ax, figsize=(6, 1.6))
    wave = torch.as_tensor(wave).detach().float().cpu().numpy()
    hop = max(1, int(0.005 * sample_rate))
    n = len(wave) // hop * hop
    blocks = wave[:n].reshape(-1, hop) if n else wave[None]
    times = (np.arange(len(blocks)) + 0.5) * hop / sample_rate
    ax.fill_between(times, blocks.min(axis=1), blocks.max(axis=1), lw=0, color="tab:blue", alpha=0.8)
    ax.set(xlabel="s", ylim=(-1, 1), title=title, xlim=(0, len(wave) / sample_rate))
    if zoom is not None and len(wave) > 2 * zoom * sample_rate:
        width = int(zoom * sample_rate)
        start = int(np.clip(np.abs(wave).argmax() - width // 2, 0, len(wave) - width))
        inset = ax.inset_axes([0.72, 0.55, 0.27, 0.42])
        inset.plot(np.arange(start, start + width) / sample_rate, wave[start : start + width], lw=0.6, color="k")
        inset.set(xticks=[], yticks=[], ylim=(-1, 1), title=f"{1000 * zoom:.0f} ms", )
        inset.title.set_fontsize(7)
        ax.axvspan(start / sample_rate, (start + width) / sample_rate, color="k", alpha=0.15)
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
