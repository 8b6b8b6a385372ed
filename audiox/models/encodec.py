"""EnCodec 24 kHz behind the :class:`~audiox.models.codec.Codec` protocol (the ``full`` profile's codec).

:class:`EncodecCodec` wraps ``transformers.EncodecModel`` (``facebook/encodec_24khz``): a SEANet
convolutional encoder, a residual vector quantiser (RVQ) and a mirrored decoder, at 24 kHz with
a hop of 320 samples, so 75 latent frames per second. Its latent is the one seed paper 001
attributes on: the *quantised-then-de-quantised* encoder output, i.e. the sum of the chosen
codebook vectors of the first ``n_q`` codebooks, ``[B, 128, F]``. At the default 1.5 kbps
``n_q = 2`` (each codebook costs log2(1024) bits x 75 frames = 0.75 kbps).

* ``encode(wave)``: ``EncodecModel.encode`` gives the codes ``[chunks=1, B, n_q, F]``;
  ``quantizer.decode`` turns them back into the latent ``[B, 128, F]``.
* ``decode(latent)``: the SEANet ``decoder`` alone, ``[B, 128, F] -> [B, 1, F * 320] -> [B, T']``.
  For a latent from ``encode`` this is exactly what ``EncodecModel.decode(codes, scales)``
  computes, but it also accepts any *edited* latent (features kept or removed), and
  gradients flow from the waveform back to the latent.
* ``encode_continuous(wave)``: the encoder output before quantisation, for comparison.

The 24 kHz model encodes a clip in one piece (no chunking) and does not normalise its
loudness (``config.normalize`` is false, so ``audio_scales`` is ``[None]``): a latent alone
determines the audio. The 48 kHz model does both and is refused.

Nothing here imports ``transformers`` until a model is built. Building one from the
configuration gives the real architecture with random weights, offline (a couple of seconds):

>>> codec = EncodecCodec.from_config()  # random weights: shapes only
>>> latent = codec.encode(0.1 * torch.randn(24_000))  # 1 s at 24 kHz
>>> tuple(latent.shape), codec.frame_rate
((1, 128, 75), 75.0)
>>> tuple(codec.decode(latent).shape)
(1, 24000)

The pretrained weights need the Hugging Face hub once, so this is skipped offline:

>>> codec = load_encodec()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib

import torch

from .. import config as audiox_config
from .codec import CodecBase

#: The Hugging Face hub id of the pretrained 24 kHz EnCodec.
MODEL_ID = "facebook/encodec_24khz"


class EncodecCodec(CodecBase):
    """EnCodec (``transformers.EncodecModel``, 24 kHz) implementing the Codec protocol.

    Build it with :func:`load_encodec` (pretrained) or :meth:`from_config` (random weights).
    The model is frozen and in eval mode: it is the front end of the explained model, never
    trained here.

    Args:
        model: a 24 kHz ``transformers.EncodecModel`` (no chunking, no loudness normalisation).
        bandwidth: target bitrate in kbps, one of ``model.config.target_bandwidths``
            (1.5, 3, 6, 12, 24 = 2, 4, 8, 16, 32 codebooks); it sets how much detail the latent keeps.
    """

    name = "encodec-24khz"

    def __init__(self, model, bandwidth: float = 1.5):
        super().__init__()
        cfg = model.config
        if cfg.chunk_length_s is not None or cfg.normalize:
            raise ValueError(
                f"this EnCodec (sampling_rate={cfg.sampling_rate}) encodes in overlapping chunks or normalises "
                f"loudness, so one latent does not determine its audio; EncodecCodec supports the 24 kHz model "
                f"({MODEL_ID}): use load_encodec()."
            )
        if bandwidth not in cfg.target_bandwidths:
            raise ValueError(
                f"bandwidth={bandwidth!r} kbps is not one EnCodec was trained for; choose one of "
                f"{list(cfg.target_bandwidths)} (1.5 kbps keeps 2 codebooks)."
            )
        self.model = model.eval().requires_grad_(False)
        self.bandwidth = float(bandwidth)
        self.sample_rate = int(cfg.sampling_rate)
        self.latent_channels = int(cfg.codebook_dim)
        #: samples per latent frame (320 at 24 kHz: the product of the encoder's strides)
        self.hop_length = int(cfg.hop_length)
        self.frame_rate = self.sample_rate / self.hop_length

    @classmethod
    def from_config(cls, config=None, bandwidth: float = 1.5, seed: int = 0) -> EncodecCodec:
        """The EnCodec architecture with random weights, offline: for tests and shape checks only.

        ``config`` defaults to ``transformers.EncodecConfig()``, the 24 kHz model (14.9 M
        parameters). transformers initialises the codebooks to zeros (the pretrained ones are
        learned), which would give every frame code 0 and a latent of zeros. Here they are
        initialised as EnCodec's training starts them, from encoder outputs (see
        :func:`_init_codebooks`), so that codes and latents differ from frame to frame.
        Everything is seeded by ``seed``; the caller's random state is left alone.
        """
        from transformers import EncodecConfig, EncodecModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = EncodecModel(config if config is not None else EncodecConfig()).eval()
            _init_codebooks(model)
        codec = cls(model, bandwidth)
        codec.name = "encodec-24khz-random"  # never mistaken for (or cached as) the pretrained model
        return codec

    @property
    def n_codebooks(self) -> int:
        """Codebooks used at this bandwidth (``n_q``): 2 at 1.5 kbps."""
        return self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)

    @torch.no_grad()
    def encode_codes(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """The RVQ codes ``[B, n_q, F]`` (integers in [0, 1024)) of a clip ``[T]`` or batch ``[B, T]``.

        ``F = ceil(T / 320)`` at 24 kHz: the encoder pads the clip to a whole number of hops.
        """
        wave = self.prepare(wave, sample_rate)
        out = self.model.encode(wave[:, None], bandwidth=self.bandwidth, return_dict=True)
        return out.audio_codes[0]  # [chunks, B, n_q, F] with one chunk: the 24 kHz model encodes in one piece

    @torch.no_grad()
    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """The latent ``[B, 128, F]`` of codes ``[B, n_q, F]``: the sum of each codebook's chosen vector."""
        # the quantiser iterates over the codebooks, so they go first: [n_q, B, F]
        return self.model.quantizer.decode(codes.to(self._device()).transpose(0, 1))

    def encode(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """The de-quantised latent ``[B, 128, F]`` of a clip ``[T]`` or batch ``[B, T]`` (75 frames per second).

        A clip at another rate is resampled to 24 kHz (with a warning) when ``sample_rate`` is
        given. The quantiser picks codes by nearest neighbour, which has no gradient; when the
        wave requires one (attributions in the input space), the latent's value is unchanged but
        its gradient is the continuous encoder's: the straight-through estimator of VQ-VAEs.
        For latent attribution, call ``latent.requires_grad_()`` on the result.
        """
        latent = self.dequantize(self.encode_codes(wave, sample_rate))
        if torch.is_grad_enabled() and isinstance(wave, torch.Tensor) and wave.requires_grad:
            continuous = self.encode_continuous(wave, sample_rate)
            latent = continuous + (latent - continuous).detach()
        return latent

    def encode_continuous(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """The encoder's output ``[B, 128, F]`` before quantisation, differentiable w.r.t. the wave.

        ``encode`` approximates it with ``n_codebooks`` codebook vectors; the difference is the
        quantisation error, which shrinks as the bandwidth grows.
        """
        wave = self.prepare(wave, sample_rate)[:, None]
        with _lstm_backward_allowed(wave):
            return self.model.encoder(wave)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Waveform ``[B, F * 320]`` at 24 kHz of a latent ``[B, 128, F]``; differentiable w.r.t. the latent."""
        if latent.ndim != 3 or latent.shape[1] != self.latent_channels:
            raise ValueError(
                f"latent has shape {tuple(latent.shape)}; EnCodec decodes [batch, {self.latent_channels}, frames], "
                f"as codec.encode(wave) returns (use latent[None] for a single clip)."
            )
        latent = latent.to(self._device(), torch.float32)
        with _lstm_backward_allowed(latent):
            return self.model.decoder(latent)[:, 0]


@torch.no_grad()
def _init_codebooks(model, seconds: float = 2.0) -> None:
    """Fill each RVQ codebook with frames of what it quantises, as EnCodec's training initialises them.

    EnCodec starts each codebook from the first batch (k-means seeded with random frames); here
    the batch is a probe of noise bursts at random levels, the first codebook gets its encoder
    frames, each next one the residual frames the codebooks before it leave, plus a little jitter
    so the 1024 entries differ. A random encoder's output barely varies over time, so random
    codebooks far from it would give one code for all frames.
    """
    sr = model.config.sampling_rate
    levels = 10 ** (-3 * torch.rand(int(seconds * 10)))  # -60 to 0 dB, changing every 100 ms
    probe = torch.randn(int(seconds * sr)) * levels.repeat_interleave(sr // 10)[: int(seconds * sr)]
    residual = model.encoder(probe[None, None])[0].T  # [frames, channels]
    for layer in model.quantizer.layers:
        embed = layer.codebook.embed  # [codebook_size, channels]
        picks = torch.randint(len(residual), (embed.shape[0],))
        embed.copy_(residual[picks] + 0.5 * residual.std(dim=0) * torch.randn(embed.shape))
        residual = residual - layer.decode(layer.encode(residual.T[None]))[0].T


def _lstm_backward_allowed(x: torch.Tensor):
    """A context in which EnCodec's LSTM can be backpropagated through on CUDA in eval mode.

    cuDNN's RNN backward refuses to run in eval mode; EnCodec's LSTM has no dropout, so PyTorch's
    native kernel computes the same function and its gradient. Elsewhere (CPU, MPS, no gradient
    needed) nothing changes.
    """
    needs_grad = torch.is_grad_enabled() and x.requires_grad
    return torch.backends.cudnn.flags(enabled=False) if needs_grad and x.is_cuda else contextlib.nullcontext()


def load_encodec(device=None, bandwidth: float = 1.5) -> EncodecCodec:
    """Pretrained EnCodec 24 kHz (``facebook/encodec_24khz``) as a frozen :class:`EncodecCodec`.

    The weights are downloaded once into the Hugging Face cache (``$HF_HOME``,
    by default ``~/.cache/huggingface``) and read from there afterwards, also offline.

    Args:
        device: where to put the model; default :func:`audiox.config.device`.
        bandwidth: target bitrate in kbps (see :class:`EncodecCodec`).

    >>> codec = load_encodec(bandwidth=1.5)  # doctest: +SKIP
    >>> codec.n_codebooks  # doctest: +SKIP
    2
    """
    try:
        from transformers import EncodecModel
    except ImportError as err:
        raise ValueError(
            "EnCodec (the full profile's codec) needs the transformers package, which is not installed. On Colab: "
            "uncomment the AUDIOX_PROFILE line of the notebook's first cell and run that cell again. Elsewhere: "
            "pip install transformers (or, in the course's folder, pip install -e '.[full]'). Or run the course "
            "without it with AUDIOX_PROFILE=offline."
        ) from err
    try:
        model = EncodecModel.from_pretrained(MODEL_ID)
    except OSError as err:  # no network, hub errors, offline mode, a missing or broken cache entry
        raise ValueError(
            f"could not load {MODEL_ID} from the Hugging Face hub or its cache ({_first_line(err)}). "
            f"The full profile needs the network once, to download the weights into the Hugging Face cache "
            f"($HF_HOME); connect and rerun, or run the course without network with AUDIOX_PROFILE=offline."
        ) from err
    return EncodecCodec(model, bandwidth).to(audiox_config.device(device))


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__
