"""Metrics shared by every method of the course (faithfulness and complexity metrics join them
with the LMAC-ZS notebook; definitions in the course's methods reference).

>>> import torch
>>> ref = torch.sin(torch.linspace(0, 100, 16000))
>>> round(float(si_sdr(ref + 0.1 * torch.cos(torch.linspace(0, 37, 16000)), ref)))  # noise at -20 dB
20
>>> bool(si_sdr(0.5 * ref, ref) > 60)  # gain does not matter
True
"""

from __future__ import annotations

import torch


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019), over the last axis.

    How well a recovered source (e.g. a masked mixture) matches the true one, whatever its gain.
    Written out because it is five lines; torchaudio has no SI-SDR outside its prototype modules.
    """
    reference = reference - reference.mean(dim=-1, keepdim=True)
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))
