"""LAION-CLAP behind the :class:`~audiox.models.clap.Clap` protocol (the ``full`` profile's CLAP).

:class:`LaionClap` wraps ``laion_clap.CLAP_Module`` (HTSAT audio encoder at 48 kHz, RoBERTa
text encoder, no feature fusion) so the course's methods can explain it through the same
seams as the tiny CLAP. What the adapter adds to LAION's own code:

* **Deterministic input.** LAION feeds HTSAT exactly 10 s (480,000 samples at 48 kHz). A
  shorter clip is repeated and zero-padded to 10 s ("repeatpad", as
  ``CLAP_Module.get_audio_embedding_from_data`` does); a longer one would be cropped at a
  *random* position by LAION, so here it raises ``ValueError`` instead: cut it, or embed
  10-s chunks and average. LAION also rounds waveforms to 16-bit when given numpy arrays;
  the adapter does not (its ``use_tensor=True`` path), so gradients reach the waveform.
* **A differentiable path from the linear magnitude** (:meth:`LaionClap.spec_to_embedding`)
  through HTSAT's own mel filterbank, so a mask on the linear STFT reaches the embedding.
* **Safe checkpoint loading** (:func:`load_state_dict`) with ``torch.load(weights_only=True)``.

The checkpoints live on Hugging Face (``lukewys/laion_clap``) and are cached under
``config.cache_dir()/laion_clap``:

>>> sorted(CHECKPOINTS)[:2]
['630k-audioset-best', '630k-best']
>>> CHECKPOINTS["630k-audioset-best"].amodel
'HTSAT-tiny'
>>> repeat_pad(torch.tensor([[1.0, 2.0, 3.0]]), 8)
tensor([[1., 2., 3., 1., 2., 3., 0., 0.]])

Loading needs the network once (the checkpoint, and the tokenizers and roberta-base that
``laion_clap`` fetches from the Hugging Face hub), so this example is skipped offline:

>>> clap = load_laion_clap()  # doctest: +SKIP
>>> clap.embed_audio(wave_48k).shape  # doctest: +SKIP
torch.Size([1, 512])
"""

from __future__ import annotations

import contextlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import config
from ..data import hub
from .clap import ClapBase

_HF_BASE = "https://huggingface.co/lukewys/laion_clap/resolve/main/"


@dataclass(frozen=True)
class LaionCheckpoint:
    """One published LAION-CLAP checkpoint: its file, the audio encoder it needs and its sha256."""

    filename: str
    #: ``amodel`` of ``laion_clap.CLAP_Module``: the HTSAT size the weights were trained with
    amodel: str
    #: hex sha256 of the published file; ``None`` where we found none published (never guessed)
    sha256: str | None
    description: str

    @property
    def url(self) -> str:
        return _HF_BASE + self.filename


#: The non-fusion checkpoints from LAION-CLAP's README. The 630k-audioset-best digest is the one
#: that independent public projects pin for the same file (1,863,587,645 bytes); the others
#: have no published digest, so :func:`audiox.data.hub.download` prints theirs on first download.
CHECKPOINTS: dict[str, LaionCheckpoint] = {
    "630k-audioset-best": LaionCheckpoint(
        "630k-audioset-best.pt",
        "HTSAT-tiny",
        "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
        "general audio up to 10 s; LAION-Audio-630K + AudioSet (the default of CLAP_Module.load_ckpt)",
    ),
    "630k-best": LaionCheckpoint(
        "630k-best.pt", "HTSAT-tiny", None, "general audio up to 10 s; LAION-Audio-630K only"
    ),
    "music_audioset_epoch_15_esc_90.14": LaionCheckpoint(
        "music_audioset_epoch_15_esc_90.14.pt", "HTSAT-base", None, "music (larger model)"
    ),
    "music_speech_epoch_15_esc_89.25": LaionCheckpoint(
        "music_speech_epoch_15_esc_89.25.pt", "HTSAT-base", None, "music and speech (larger model)"
    ),
    "music_speech_audioset_epoch_15_esc_89.98": LaionCheckpoint(
        "music_speech_audioset_epoch_15_esc_89.98.pt",
        "HTSAT-base",
        None,
        "speech, music and general audio (larger model)",
    ),
}

#: Fusion checkpoints need ``enable_fusion=True``, whose input pipeline crops at random positions.
_FUSION = ("630k-fusion-best", "630k-audioset-fusion-best")


def checkpoint_info(name: str) -> LaionCheckpoint:
    """The table entry for ``name`` (with or without ``.pt``), or a ``ValueError`` listing the choices.

    >>> checkpoint_info("630k-best.pt").filename
    '630k-best.pt'
    """
    key = name.strip().removesuffix(".pt")
    if key in CHECKPOINTS:
        return CHECKPOINTS[key]
    if key in _FUSION:
        raise ValueError(
            f"{name!r} is a feature-fusion checkpoint; audiox uses LAION-CLAP without fusion (fusion picks "
            f"random crops, so explanations would not be reproducible). Use one of {sorted(CHECKPOINTS)}."
        )
    raise ValueError(f"unknown LAION-CLAP checkpoint {name!r}; choose one of {sorted(CHECKPOINTS)}.")


def repeat_pad(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat ``[..., T]`` whole as often as it fits into ``length`` samples, then zero-pad ("repeatpad").

    The same filling as LAION-CLAP's ``get_audio_features(..., data_filling="repeatpad")``, batched.
    """
    if wave.shape[-1] > length:
        raise ValueError(f"wave has {wave.shape[-1]} samples, more than {length}; cut it first.")
    repeats = length // wave.shape[-1]
    wave = wave.repeat(*([1] * (wave.ndim - 1)), repeats)
    return F.pad(wave, (0, length - wave.shape[-1]))


#: What laion_clap reads from the Hugging Face hub when imported (three tokenizers) and built (RoBERTa's tokenizer
#: and weights), one file or a choice of files each: enough to tell whether the hub's cache holds them.
_HUB_FILES = {
    "bert-base-uncased": ("vocab.txt",),
    "roberta-base": ("vocab.json", "merges.txt", "config.json", ("model.safetensors", "pytorch_model.bin")),
    "facebook/bart-base": ("vocab.json", "merges.txt"),
}
#: the transformers classes whose ``from_pretrained`` laion_clap calls
_HUB_CLASSES = ("BertTokenizer", "RobertaTokenizer", "BartTokenizer", "BertModel", "RobertaModel", "BartModel")


def _require_laion_clap() -> None:
    """A ``ValueError`` naming the install when laion-clap or transformers is missing; imports neither."""
    import importlib.util

    missing = [dist for module, dist in (("laion_clap", "laion-clap"), ("transformers", "transformers"))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(
            f"LAION-CLAP (the full profile's CLAP) needs {' and '.join(missing)}, which is not installed. On Colab: "
            f"uncomment the AUDIOX_PROFILE line of the notebook's first cell and run that cell again. Elsewhere, in "
            f"the course's folder: make install (or pip install -e '.[full]', then pip install --no-deps "
            f"laion-clap==1.1.7). Or run the course without it: AUDIOX_PROFILE=offline."
        )


def _hub_endpoint() -> tuple[str, int]:
    """Where a connection to the hub goes first: the HTTPS proxy when one is set, else ``$HF_ENDPOINT`` or the hub."""
    import os
    import urllib.parse
    import urllib.request

    url = urllib.request.getproxies().get("https") or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parts = urllib.parse.urlsplit(url if "//" in url else "//" + url)
    return parts.hostname or "huggingface.co", parts.port or (80 if parts.scheme == "http" else 443)


def _hub_reachable(timeout: float) -> bool:
    """Whether a TCP connection to :func:`_hub_endpoint` opens within ``timeout`` seconds, name lookup included."""
    import socket
    import threading

    opened = []

    def connect():
        try:
            socket.create_connection(_hub_endpoint(), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)  # a name lookup does not time out by itself
    thread.start()
    thread.join(timeout)
    return bool(opened)


def _hub_cached() -> bool:
    """Whether the Hugging Face cache holds every file of :data:`_HUB_FILES`."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    for repo, files in _HUB_FILES.items():
        for choice in files:
            choice = (choice,) if isinstance(choice, str) else choice
            if not any(isinstance(try_to_load_from_cache(repo, name), str) for name in choice):
                return False
    return True


@contextlib.contextmanager
def _local_files_only():
    """``from_pretrained`` of the classes laion_clap uses reads the hub's cache only, with no request."""
    import functools

    import transformers

    saved = []
    for name in _HUB_CLASSES:
        cls = getattr(transformers, name, None)
        if cls is None:
            continue
        saved.append((cls, cls.__dict__.get("from_pretrained")))
        original = cls.from_pretrained.__func__

        @functools.wraps(original)
        def local(klass, *args, _original=original, **kwargs):
            return _original(klass, *args, **{**kwargs, "local_files_only": True})

        cls.from_pretrained = classmethod(local)
    try:
        yield
    finally:
        for cls, own in reversed(saved):
            if own is None:
                del cls.from_pretrained
            else:
                cls.from_pretrained = own


@contextlib.contextmanager
def _laion_clap_hub(timeout: float = 3.0):
    """Around importing laion_clap and building ``CLAP_Module``, which read the Hugging Face hub: a ``ValueError``
    that names the problem and the fix within seconds, instead of minutes of retried requests without network.

    Offline with everything cached, the files are read from the cache without a request; a failed import leaves
    no half-imported laion_clap behind, so the next try starts afresh.
    """
    import importlib.util
    import os
    import sys

    _require_laion_clap()
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    offline = [v for v in flags if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")]
    local = False
    if not offline and not _hub_reachable(timeout):
        host, port = _hub_endpoint()
        if not _hub_cached():
            raise ValueError(
                f"LAION-CLAP cannot be loaded: laion_clap fetches the BERT, RoBERTa and BART tokenizers and "
                f"roberta-base from the Hugging Face hub when it is imported and built, {host}:{port} could not be "
                f"reached (tried for {timeout:g} s), and they are not in the Hugging Face cache yet. Connect to the network and run "
                f"this again (they are cached after the first time), or continue without network with "
                f"AUDIOX_PROFILE=offline."
            )
        local = True
    package = importlib.util.find_spec("laion_clap").submodule_search_locations[0]
    modules, path = set(sys.modules), list(sys.path)
    try:
        with _local_files_only() if local else contextlib.nullcontext():
            yield
    except OSError as err:  # how transformers and huggingface_hub fail: no connection, not cached, offline mode
        if "laion_clap" not in sys.modules:  # the import failed: forget its half-imported modules
            for name in set(sys.modules) - modules:
                origin = getattr(sys.modules.get(name), "__file__", None) or ""
                if origin.startswith(package):
                    del sys.modules[name]
            sys.path[:] = path
        lines = str(err).strip().splitlines()
        why = f"{' and '.join(offline)} set, and not all are cached" if offline else (lines[0][:200] if lines else "")
        fix = f"unset {' and '.join(offline)} on a machine with network" if offline else "connect to the network"
        raise ValueError(
            f"LAION-CLAP cannot be loaded: laion_clap fetches the BERT, RoBERTa and BART tokenizers and roberta-base "
            f"from the Hugging Face hub or its cache ({why}). To fix it, {fix} and run this again (they are cached "
            f"after the first time), or continue without network with AUDIOX_PROFILE=offline."
        ) from err


class LaionClap(ClapBase):
    """LAION-CLAP (``laion_clap.CLAP_Module``, no fusion) implementing the whole Clap protocol.

    Build it with :func:`load_laion_clap` (pretrained weights); the constructor alone gives the
    architecture with random weights. It needs the Hugging Face hub once, as ``laion_clap``
    does: importing ``laion_clap`` fetches the BERT, RoBERTa and BART tokenizers, and
    ``CLAP_Module`` fetches roberta-base's weights (then overwritten by the checkpoint).

    Every clip is repeat-padded to 10 s before the STFT (see :meth:`prepare`), so
    ``spectrogram(wave)`` is ``[B, 513, 1001]`` whatever the clip's length, and equals the
    magnitude HTSAT computes internally. A listenable output from it is 10 s long: keep its
    first ``T`` samples, ``T`` being the clip's length at 48 kHz.

    The model is put in eval mode, as LAION's embedding functions do; in train mode HTSAT's
    BatchNorm would use (and update) batch statistics.

    Args:
        amodel: HTSAT size, ``"HTSAT-tiny"`` or ``"HTSAT-base"`` (see :data:`CHECKPOINTS`).
        device: where to build it; default :func:`audiox.config.device` (cuda > mps > cpu).

    >>> clap = LaionClap()  # doctest: +SKIP
    >>> clap.spectrogram(torch.randn(48_000))[0].shape  # doctest: +SKIP
    torch.Size([1, 513, 1001])
    """

    name = "laion-clap"
    # audio_cfg shared by all of laion_clap's HTSAT configs (model_configs/HTSAT-*.json)
    sample_rate = 48_000
    n_fft = 1024  # torchlibrosa Spectrogram: n_fft = win_length = 1024, periodic Hann, centred, reflect-padded
    hop_length = 480
    embed_dim = 512
    #: LAION-CLAP's clip length (``audio_cfg.clip_samples / sample_rate``)
    max_seconds = 10.0

    def __init__(self, amodel: str = "HTSAT-tiny", device=None):
        super().__init__()
        dev = config.device(device)
        with _laion_clap_hub():  # laion_clap reads the hub when imported and built: checked first, in seconds
            import laion_clap  # heavy (transformers, torchlibrosa); only the full profile needs it

            self.laion = laion_clap.CLAP_Module(enable_fusion=False, device=str(dev), amodel=amodel)
        self.amodel = amodel
        self.eval()

    @property
    def clip_samples(self) -> int:
        return int(self.max_seconds * self.sample_rate)

    @property
    def htsat(self) -> torch.nn.Module:
        """The HTSAT audio encoder (``CLAP.audio_branch``)."""
        return self.laion.model.audio_branch

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale_a)``: LAION scales audio-to-text cosine similarities by it."""
        return float(self.laion.model.logit_scale_a.detach().exp())

    def prepare(self, wave, sample_rate: int | None = None) -> torch.Tensor:
        """Validate (and resample) as :meth:`ClapBase.prepare`, then repeat-pad each clip to exactly 10 s.

        A clip longer than 10 s raises ``ValueError``: LAION would crop it at a random position.
        """
        wave = super().prepare(wave, sample_rate)
        if wave.shape[-1] > self.clip_samples:
            seconds = wave.shape[-1] / self.sample_rate
            raise ValueError(
                f"wave is {seconds:.2f} s long; LAION-CLAP sees at most {self.max_seconds:g} s "
                f"({self.clip_samples} samples at {self.sample_rate} Hz) and would crop a longer clip at a random "
                f"position. Cut it (wave[..., :{self.clip_samples}] at 48 kHz), or embed 10-s chunks and average "
                f"the embeddings."
            )
        return repeat_pad(wave, self.clip_samples)

    def _mel_image(self, magnitude: torch.Tensor) -> torch.Tensor:
        """HTSAT's input image ``[B, 1, 256, 256]`` from a linear magnitude ``[B, 513, 1001]``.

        The same steps as ``HTSAT_Swin_Transformer.forward`` after its STFT, with HTSAT's own modules.
        """
        frames = 1 + self.clip_samples // self.hop_length
        if magnitude.ndim != 3 or magnitude.shape[1:] != (self.n_fft // 2 + 1, frames):
            raise ValueError(
                f"magnitude has shape {tuple(magnitude.shape)}; LAION-CLAP needs [batch, {self.n_fft // 2 + 1}, "
                f"{frames}], the linear STFT magnitude of a 10-s clip at 48 kHz: compute it with "
                f"clap.spectrogram(wave)[0] (which repeat-pads shorter clips)."
            )
        htsat = self.htsat
        power = magnitude.pow(2).transpose(1, 2)[:, None]  # torchlibrosa's Spectrogram gives power [B, 1, T, F]
        x = htsat.logmel_extractor(power)  # LAION's mel filterbank, then 10 log10 (power_to_db)
        x = htsat.bn0(x.transpose(1, 3)).transpose(1, 3)
        # spec augmentation and mixup only run in training; HTSAT skips them in eval as well
        return htsat.reshape_wav2img(x)  # 1001 -> 1024 frames (bicubic), 4 time chunks stacked into 256 x 256

    def spec_to_embedding(self, magnitude: torch.Tensor) -> torch.Tensor:
        """L2-normalised embedding ``[B, 512]`` of a (masked) linear magnitude ``[B, 513, 1001]``; differentiable.

        magnitude² (power) -> HTSAT's ``logmel_extractor`` (mel filterbank, dB) -> ``bn0`` ->
        ``reshape_wav2img`` -> ``forward_features`` (patch embedding, Swin stages, pooling) ->
        ``audio_projection`` -> L2 normalisation: LAION's own modules throughout.
        """
        latent = self.htsat.forward_features(self._mel_image(magnitude))["embedding"]
        return F.normalize(self.laion.model.audio_projection(latent), dim=-1)

    def embedding_and_hidden(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The embedding (:meth:`spec_to_embedding`) and HTSAT's hidden maps, shallow to deep, each ``[B, C, F', T']``
        (frequency low to high, time in order), of a (masked) magnitude ``[B, 513, 1001]``, in one pass.

        One map per Swin stage (after its patch merging); the last is the stage-4 map after
        HTSAT's final LayerNorm, whose mean over ``F', T'`` is the pooled audio embedding
        before the projection. For HTSAT-tiny (base: channels 256, 512, 1024, 1024)::

            [B, 192, 8, 128], [B, 384, 4, 64], [B, 768, 2, 32], [B, 768, 2, 32]

        ``T'`` steps evenly cover the 10-s repeat-padded clip (78 ms each at ``T' = 128``,
        312 ms at 32); ``F'`` splits the 64 mel bands (50 Hz-14 kHz) evenly.
        """
        htsat = self.htsat
        tokens: list[torch.Tensor] = []
        # the stages return (tokens, attention); the final norm returns tokens
        hooks = [layer.register_forward_hook(lambda m, i, out: tokens.append(out[0])) for layer in htsat.layers]
        hooks.append(htsat.norm.register_forward_hook(lambda m, i, out: tokens.append(out)))
        try:
            latent = htsat.forward_features(self._mel_image(magnitude))["embedding"]
        finally:
            for hook in hooks:
                hook.remove()
        del tokens[-2]  # the last stage's map before the final norm
        embedding = F.normalize(self.laion.model.audio_projection(latent), dim=-1)
        return embedding, [self._unstack(t, htsat.freq_ratio) for t in tokens]

    @staticmethod
    def _unstack(tokens: torch.Tensor, chunks: int) -> torch.Tensor:
        """Swin tokens ``[B, H*W, C]`` of the stacked image -> ``[B, C, H/chunks, chunks*W]`` in time order.

        ``reshape_wav2img`` stacks ``chunks`` consecutive time segments of the mel spectrogram
        on top of each other; this undoes it, as HTSAT does before pooling.
        """
        b, n, c = tokens.shape
        side = int(round(n**0.5))
        x = tokens.transpose(1, 2).reshape(b, c, chunks, side // chunks, side)
        return x.permute(0, 1, 3, 2, 4).reshape(b, c, side // chunks, chunks * side)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings ``[N, 512]``, tokenised as LAION does (RoBERTa, padded to 77 tokens).

        A single string counts as one prompt, as in TinyClap.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"texts must be a non-empty list of non-empty strings, got {texts!r}.")
        return self.laion.model.get_text_embedding(self.laion.tokenizer(texts))

    def load_checkpoint(self, path, *, trusted: bool = False) -> LaionClap:
        """Load a LAION-CLAP checkpoint file into this model (see :func:`load_state_dict`); returns ``self``."""
        return self.load_weights(load_state_dict(path, trusted=trusted), source=path)

    def load_weights(self, state: dict[str, torch.Tensor], source="the state dict") -> LaionClap:
        """Load a state dict from :func:`load_state_dict` into the wrapped ``CLAP`` (strictly); returns ``self``."""
        model = self.laion.model
        expected = model.state_dict().keys()
        # transformers >= 4.31 keeps RoBERTa's position_ids out of the state dict (as laion_clap's loader notes)
        state = {k: v for k, v in state.items() if k in expected or not k.endswith("embeddings.position_ids")}
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"{source} does not fit LAION-CLAP with amodel={self.amodel!r} ({str(err)[:300]}...). "
                f"HTSAT-base checkpoints (the music ones) need amodel='HTSAT-base': pass the checkpoint's "
                f"name, e.g. load_laion_clap('music_audioset_epoch_15_esc_90.14', checkpoint=path)."
            ) from err
        self.eval()
        return self


def _numpy_scalar_globals() -> list:
    """numpy scalars and dtypes, which LAION checkpoints hold in their optimizer state (learning rates).

    Their pickles name the scalar constructor ``numpy.core.multiarray.scalar`` (numpy 1) or
    ``numpy._core.multiarray.scalar`` (numpy 2); both are allowed, with plain data dtypes.
    """
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    dtypes = [type(np.dtype(code)) for code in ("f2", "f4", "f8", "i4", "i8", "b1")]
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def load_state_dict(path, *, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The model weights in a LAION-CLAP checkpoint, keyed as ``laion_clap``'s ``CLAP`` module expects.

    Mirrors ``laion_clap``'s ``load_state_dict`` (used by ``CLAP_Module.load_ckpt``): take
    ``checkpoint["state_dict"]`` when present and strip the ``module.`` prefix that
    DistributedDataParallel adds. Unlike it, the file is read with
    ``torch.load(weights_only=True)``, which cannot run code from the file. A file that the
    safe loader cannot read is unpickled fully only if its sha256 matches a published
    checkpoint in :data:`CHECKPOINTS`, or if ``trusted=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist; check the path, or load_laion_clap(name) downloads it.")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not (trusted or _is_published(path)):
            raise ValueError(
                f"torch's safe loader (weights_only=True) cannot read {path} ({_reason(err)}). "
                f"If you trust the file (e.g. you downloaded it from {_HF_BASE}), load it with trusted=True, "
                f"which unpickles it fully as laion_clap's load_ckpt does."
            ) from err
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a LAION-CLAP checkpoint (no state dict of tensors inside).")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _reason(err: Exception) -> str:
    lines = str(err).splitlines()
    return next((line.strip() for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")


def _is_published(path: Path) -> bool:
    digests = {entry.sha256 for entry in CHECKPOINTS.values() if entry.sha256}
    return hub.sha256sum(path) in digests


def load_laion_clap(
    name: str = "630k-audioset-best", checkpoint=None, device=None, *, trusted: bool = False
) -> LaionClap:
    """Pretrained LAION-CLAP as a :class:`LaionClap`.

    Args:
        name: a key of :data:`CHECKPOINTS`; picks the file and the HTSAT size.
        checkpoint: a local checkpoint file to use instead of downloading ``name``'s (its
            architecture must be ``name``'s).
        device: where to put the model; default :func:`audiox.config.device`.
        trusted: allow full unpickling of a file that ``weights_only=True`` cannot read
            (see :func:`load_state_dict`).

    Without ``checkpoint`` the file is downloaded once (sha256-checked where a digest is
    published) into ``config.cache_dir()/laion_clap/``; a failed download raises
    :class:`audiox.data.hub.DownloadError` and leaves nothing in the cache.

    >>> clap = load_laion_clap("630k-audioset-best")  # doctest: +SKIP
    >>> clap.embed_text(["a dog barking"]).shape  # doctest: +SKIP
    torch.Size([1, 512])
    """
    entry = checkpoint_info(name)
    _require_laion_clap()  # before a 2 GB download it could not use
    dest = None
    if checkpoint is None:
        dest = config.cache_dir() / "laion_clap" / entry.filename
        checkpoint = hub.download(
            entry.url,
            dest,
            sha256=entry.sha256,
            manual=f"download {entry.url} (about 2 GB) in a browser and save it as {dest}, or pass "
            f"checkpoint=<path to the file> to load_laion_clap",
        )
    state = load_state_dict(checkpoint, trusted=trusted)  # a bad file fails before the model is built
    clap = LaionClap(amodel=entry.amodel, device=device).load_weights(state, source=checkpoint)
    clap.name = f"laion-clap/{name.strip().removesuffix('.pt')}"
    # keys the on-disk embedding cache (audiox.zeroshot.embed_dataset) to these exact weights
    clap.weights_sha256 = entry.sha256 if entry.sha256 and checkpoint == dest else hub.sha256sum(Path(checkpoint))
    return clap
