"""Harmonic complexes with ground truth by construction: which partials are present, which are distractors.

The stimuli of notebook 07's pitch experiment (the *missing fundamental*): a complex of harmonics ``k * f0``
of a fundamental ``f0``, with chosen harmonics left out or mistuned, and a distractor outside the harmonic
series (an inharmonic tone, or a band of noise). Every partial is synthesised as its own source, so each
clip carries its sources and their ratio masks on the course's STFT (:func:`audiox.data.synth.ratio_masks`):
an explanation's energy on each partial can be measured exactly.

>>> out = harmonic_complex([220.0], harmonics=range(2, 7), distractor="tone")
>>> tuple(out["wave"].shape), sorted(out["masks"])
((1, 8000), ['distractor', 'h2', 'h3', 'h4', 'h5', 'h6'])
>>> spectrum = torch.fft.rfft(out["sources"]["h2"][0]).abs()      # harmonic 2 of 220 Hz: 440 Hz, 2 Hz per bin
>>> int(spectrum.argmax()) * 2
440
"""

from __future__ import annotations

from typing import Sequence

import torch

from .synth import ratio_masks

SAMPLE_RATE = 16_000
#: the inharmonic distractor tone, as a multiple of f0: between harmonics 4 and 5, near no small-integer ratio
DISTRACTOR_RATIO = 4.41
#: the distractor noise band (Hz): above harmonic 6 of every f0 up to 330 Hz, inside CREPE's input band (it reads 16 kHz frames whole)
NOISE_BAND = (2_400.0, 3_200.0)


def harmonic_complex(f0s: Sequence[float], harmonics: Sequence[int] = range(2, 7), *, seconds: float = 0.5,
                     detune: dict[int, float] | None = None, distractor: str | None = None,
                     distractor_db: float = 0.0, level: float = 0.5, seed: int = 0,
                     sample_rate: int = SAMPLE_RATE) -> dict:
    """Harmonic complexes ``[B, T]``, one per fundamental in ``f0s``, each harmonic at equal amplitude.

    Args:
        harmonics: the harmonic numbers present (``range(2, 7)``: the fundamental is missing).
        detune: ``{k: factor}`` mistunes harmonic ``k`` to ``factor * k * f0`` (e.g. ``{3: 1.04}``, +4%).
        distractor: ``None``, ``"tone"`` (a sine at ``DISTRACTOR_RATIO * f0``) or ``"noise"`` (a band of
            Gaussian noise over ``NOISE_BAND``), at ``distractor_db`` relative to one harmonic's power.
        level: the peak of each clip (the clips are scaled to it, sources with them).
        seed: the random starting phase of every partial, and the noise.

    Returns ``wave`` ``[B, T]``, ``sources`` ``{"h2": [B, T], ..., "distractor": [B, T]}``, their ratio
    ``masks`` ``[B, F, T']`` on the course's STFT, ``f0`` ``[B]`` and the ``harmonics``.
    """
    f0 = torch.as_tensor(list(f0s), dtype=torch.float64)[:, None]
    if not len(harmonics):
        raise ValueError("harmonics is empty; name at least one harmonic number, e.g. range(2, 7).")
    if (f0 <= 0).any() or any(int(k) < 1 for k in harmonics):
        raise ValueError(f"f0s must be positive and harmonics at least 1, got {f0.flatten().tolist()}, {list(harmonics)}.")
    detune = dict(detune or {})
    n = int(round(seconds * sample_rate))
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    generator = torch.Generator().manual_seed(seed)
    sources = {}
    for k in harmonics:
        frequency = k * f0 * detune.get(int(k), 1.0)
        if (frequency >= sample_rate / 2).any():
            raise ValueError(f"harmonic {k} of f0 {f0.max().item():.0f} Hz lies above Nyquist ({sample_rate // 2} Hz).")
        phase = 2 * torch.pi * torch.rand(len(f0), 1, generator=generator, dtype=torch.float64)
        sources[f"h{int(k)}"] = torch.sin(2 * torch.pi * frequency * t + phase)
    if distractor is not None:
        gain = 10 ** (distractor_db / 20)
        if distractor == "tone":
            phase = 2 * torch.pi * torch.rand(len(f0), 1, generator=generator, dtype=torch.float64)
            sources["distractor"] = gain * torch.sin(2 * torch.pi * DISTRACTOR_RATIO * f0 * t + phase)
        elif distractor == "noise":
            noise = torch.randn(len(f0), n, generator=generator, dtype=torch.float64)
            spectrum = torch.fft.rfft(noise)
            frequencies = torch.fft.rfftfreq(n, 1 / sample_rate, dtype=torch.float64)
            spectrum[:, (frequencies < NOISE_BAND[0]) | (frequencies > NOISE_BAND[1])] = 0
            band = torch.fft.irfft(spectrum, n)
            # the band's power equals one harmonic's (a sine's: 1/2) before the gain
            sources["distractor"] = gain * band / band.pow(2).mean(-1, keepdim=True).sqrt() * 0.5 ** 0.5
        else:
            raise ValueError(f"distractor={distractor!r}; use None, 'tone' or 'noise'.")
    wave = sum(sources.values())
    scale = level / wave.abs().amax(-1, keepdim=True)
    sources = {name: (s * scale).float() for name, s in sources.items()}
    stacked = torch.stack(list(sources.values()))
    masks = ratio_masks(stacked)
    return {"wave": stacked.sum(0), "sources": sources, "masks": dict(zip(sources, masks)),
            "f0": f0[:, 0].float(), "harmonics": [int(k) for k in harmonics]}
