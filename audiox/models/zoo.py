"""Shipped weights: names, files, sha256, and the script + config that trained each one.

Every tiny model of the offline profile is trained by this module, deterministically, on CPU,
and committed under ``data/models/`` next to a *model card* (JSON) that records its sha256,
config, training time and held-out quality. Loading checks the sha256, so a stale or
corrupt file is refused instead of silently explaining a different model.

    python -m audiox.models.zoo list
    python -m audiox.models.zoo train tiny-clap      # about 5 minutes on 2 CPU cores
    python -m audiox.models.zoo train synth-cnn
    python -m audiox.models.zoo train lmac-tiny-clap # LMAC-ZS decoder for tiny-clap, about 6 minutes
    python -m audiox.models.zoo train tiny-codec     # the offline audio autoencoder
    python -m audiox.models.zoo train keyword-latent-cnn  # keyword classifier on tiny-codec's latent
    python -m audiox.models.zoo eval tiny-clap

>>> sorted(ZOO)
['keyword-latent-cnn', 'lmac-tiny-clap', 'synth-cnn', 'tiny-clap', 'tiny-codec']
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from .. import audio
from ..config import DATA_DIR, device as pick_device, profile, seed_everything
from ..data.hub import save_atomically, sha256sum
from ..lmac import MaskDecoder
from .clap import TinyClap
from .classifiers import CNNClassifier, LatentClassifier
from .codec import TinyCodec

MODELS_DIR = DATA_DIR / "models"
ZOO = {"tiny-clap": TinyClap, "synth-cnn": CNNClassifier, "lmac-tiny-clap": MaskDecoder, "tiny-codec": TinyCodec,
       "keyword-latent-cnn": LatentClassifier}
#: Models trained on another shipped model's outputs: retraining the one means retraining the other.
DEPENDS_ON = {"lmac-tiny-clap": "tiny-clap", "keyword-latent-cnn": "tiny-codec"}
#: The LAION-CLAP checkpoint the full profile uses when none is named.
FULL_PROFILE_CLAP = "laion-clap"


def card(name: str) -> dict:
    """The model card (JSON) of a shipped model."""
    path = MODELS_DIR / f"{name}.json"
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; shipped models are {sorted(ZOO)}.")
    if not path.exists():
        raise ValueError(f"{path} is missing; train it with `python -m audiox.models.zoo train {name}`.")
    return json.loads(path.read_text())


def load(name: str, device=None) -> torch.nn.Module:
    """Build a shipped model from its card's config and load its weights after checking their sha256."""
    info = card(name)
    weights = MODELS_DIR / info["file"]
    if not weights.exists():
        raise ValueError(f"{weights} is missing; `git checkout data/models` or retrain: {info['trained_by']}.")
    sha = sha256sum(weights)
    if sha != info["sha256"]:
        raise ValueError(
            f"{weights} has sha256 {sha[:12]}..., but its card says {info['sha256'][:12]}...; the file is stale or "
            f"corrupt: `git checkout data/models` or retrain with `{info['trained_by']}`."
        )
    model = ZOO[name](**info["config"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.weights_sha256 = sha
    return model.eval().to(pick_device(device))


def load_clap(name: str | None = None, device=None):
    """A :class:`~audiox.models.clap.Clap` by name; by default the profile's: ``tiny-clap`` offline, LAION-CLAP full.

    ``"laion-clap"`` or ``"laion-clap:<checkpoint name>"`` picks a LAION-CLAP checkpoint (downloaded once).

    >>> clap = load_clap("tiny-clap")
    >>> clap.name, clap.sample_rate, clap.embed_dim
    ('tiny-clap', 16000, 128)
    """
    name = name or ("tiny-clap" if profile() == "offline" else FULL_PROFILE_CLAP)
    if name.startswith("laion-clap"):
        from .laion import load_laion_clap

        checkpoint = name.partition(":")[2]
        return load_laion_clap(checkpoint, device=device) if checkpoint else load_laion_clap(device=device)
    return load(name, device)


def load_codec(name: str | None = None, device=None):
    """A :class:`~audiox.models.codec.Codec` by name; by default the profile's: ``tiny-codec`` offline, EnCodec 24 kHz
    (1.5 kbps) full. ``"encodec"`` or ``"encodec:<kbps>"`` picks EnCodec at another bandwidth (downloaded once).

    >>> codec = load_codec("tiny-codec")
    >>> codec.name, codec.sample_rate, codec.latent_channels, codec.frame_rate
    ('tiny-codec', 16000, 64, 125.0)
    """
    name = name or ("tiny-codec" if profile() == "offline" else "encodec")
    if name.startswith("encodec"):
        from .encodec import load_encodec

        kbps = name.partition(":")[2]
        return load_encodec(device=device, bandwidth=float(kbps)) if kbps else load_encodec(device=device)
    return load(name, device)


# ---------------------------------------------------------------------------------------------
# tiny-clap: data, contrastive loss, training, held-out quality
# ---------------------------------------------------------------------------------------------

def keyword_captions(word: str) -> list[str]:
    """Captions for a spoken keyword, so tiny-clap also learns speech ("a voice saying yes")."""
    return [f"a voice saying {word}", f"the spoken word {word}", f"someone says {word}", f"a person saying {word}"]


def _clap_corpus(split: str, seconds: float = 2.0):
    """tiny-clap's corpus: SynthSounds events and mixtures + keywords.

    Returns magnitudes ``[N, F, T]``, each clip's captions, and the words that describe each clip.
    """
    from ..data import stack
    from ..data.speech import Keywords
    from ..data.synth import SynthSounds

    from ..zeroshot import item_words

    parts = [SynthSounds(split=split), SynthSounds(split=split, mixtures=True, snr_db=6.0, n_per_class=10, seed=1)]
    waves, captions, described_by = [], [], []
    for ds in parts:
        waves.append(ds.waves())
        items = [ds[i] for i in range(len(ds))]
        captions += [item["captions"] for item in items]
        described_by += [item_words(item) for item in items]
    keywords = Keywords(split=split)
    kw_waves, _ = stack(keywords)
    waves.append(audio.pad_to(kw_waves, seconds, audio.SAMPLE_RATE))
    items = [keywords[i] for i in range(len(keywords))]
    captions += [keyword_captions(item["label_name"]) for item in items]
    described_by += [item_words(item) for item in items]
    magnitude, _ = audio.magnitude_phase(torch.cat(waves))
    return magnitude, captions, described_by


def contrastive_loss(audio_emb, text_emb, relevant, logit_scale) -> torch.Tensor:
    """Symmetric InfoNCE with several positives: every clip a caption truly describes counts as a match.

    Plain CLIP loss would push apart two siren clips that both fit "the sound of a siren"; spreading
    the target over all relevant pairs avoids teaching the model those false negatives.

    >>> e = torch.nn.functional.normalize(torch.eye(3), dim=-1)
    >>> float(contrastive_loss(e, e, torch.eye(3, dtype=torch.bool), 100.0)) < 1e-3
    True
    """
    logits = logit_scale * text_emb @ audio_emb.T  # [captions, clips]
    target = relevant.float()
    text_to_audio = -(target / target.sum(1, keepdim=True) * logits.log_softmax(dim=1)).sum(1).mean()
    audio_to_text = -(target.T / target.T.sum(1, keepdim=True) * logits.T.log_softmax(dim=1)).sum(1).mean()
    return (text_to_audio + audio_to_text) / 2


def synth_quality(clap, split: str = "test", progress: bool = False, dataset=None) -> dict[str, float]:
    """Held-out quality of a CLAP on SynthSounds: zero-shot accuracy and caption-to-clip retrieval recall.

    Retrieval: every distinct caption of the split is a query; the clips it truly describes are its
    answers (:func:`~audiox.zeroshot.description_relevance`).
    """
    from ..data.synth import SynthSounds
    from ..zeroshot import (
        PROMPT, TEMPLATES, class_embeddings, description_relevance, embed_waves, item_words, recall_at_k, zero_shot,
    )

    ds = dataset if dataset is not None else SynthSounds(split=split)
    audio_emb = embed_waves(clap, ds.waves(), ds.sample_rate, progress=progress).to(pick_device())
    labels = ds.labels.to(audio_emb.device)
    result = {}
    for key, templates in (("zero_shot_accuracy", (PROMPT,)), ("zero_shot_accuracy_ensemble", TEMPLATES)):
        probs = zero_shot(clap, audio_emb, class_embeddings(clap, ds.classes, templates))
        result[key] = float((probs.argmax(-1) == labels).float().mean())
    items = [ds[i] for i in range(len(ds))]
    queries = sorted({c for item in items for c in item["captions"]})
    with torch.no_grad():
        text_emb = clap.embed_text(queries)
    relevant = description_relevance(queries, [item_words(item) for item in items])
    for k, v in recall_at_k((text_emb @ audio_emb.T).cpu(), relevant).items():
        result[f"text_to_audio_{k}"] = v
    result["n_clips"], result["n_queries"] = len(ds), len(queries)
    return result


def train_tiny_clap(epochs: int = 30, batch_size: int = 128, seed: int = 0, progress: bool = True):
    """Train tiny-clap contrastively on SynthSounds captions and the keyword set; returns (model, history)."""
    from ..zeroshot import description_relevance
    from .train import fit, minibatches, random_gain_and_shift

    seed_everything(seed)
    train_mag, train_caps, train_words = _clap_corpus("train")
    model = TinyClap()

    def batches(epoch):
        gen, batch_indices = minibatches(len(train_mag), batch_size, epoch, seed)
        for idx in batch_indices:
            pick = torch.randint(0, 1 << 30, (len(idx),), generator=gen)
            chosen = [train_caps[i][p % len(train_caps[i])] for i, p in zip(idx.tolist(), pick.tolist())]
            relevant = description_relevance(chosen, [train_words[i] for i in idx.tolist()])
            yield random_gain_and_shift(train_mag[idx], gen), chosen, relevant

    def loss_fn(model, batch):
        mags, chosen, relevant = batch
        return contrastive_loss(
            model.spec_to_embedding(mags), model.embed_text(chosen), relevant, model.log_logit_scale.exp().clamp(max=100)
        )

    from ..data.synth import SynthSounds

    val = SynthSounds(split="val")

    def evaluate(model):
        q = synth_quality(model, dataset=val)
        return (q["zero_shot_accuracy"] + q["text_to_audio_R@1"]) / 2

    history = fit(
        model, loss_fn, batches, epochs=epochs, lr=2e-3, weight_decay=1e-4, evaluate=evaluate, seed=seed,
        progress=progress, desc="tiny-clap",
    )
    return model, history


# ---------------------------------------------------------------------------------------------
# synth-cnn: a SynthSounds classifier to explain (L2I reads its hidden maps), events and mixtures
# ---------------------------------------------------------------------------------------------

#: SNRs of synth-cnn's training mixtures: the event (the label) from as loud as the rest to 10 dB louder.
SYNTH_CNN_SNRS_DB = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)


def _waves_and_labels(datasets) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([ds.waves() for ds in datasets]), torch.cat([ds.labels for ds in datasets])


def train_synth_cnn(epochs: int = 12, batch_size: int = 32, seed: int = 0, progress: bool = True):
    """Train synth-cnn on SynthSounds train events and mixtures (label = the event); returns (model, history).

    1,000 clean events and 1,200 mixtures, 200 at each SNR of :data:`SYNTH_CNN_SNRS_DB` (other clips
    than the clean ones: seeds 1-6). The epoch with the best val accuracy (clean events and 5 dB
    mixtures together) is kept.
    """
    from ..data.synth import CLASSES, SynthSounds
    from .classifiers import train_classifier

    seed_everything(seed)
    train = [SynthSounds("train")] + [
        SynthSounds("train", mixtures=True, snr_db=snr, seed=1 + i, n_per_class=20)
        for i, snr in enumerate(SYNTH_CNN_SNRS_DB)
    ]
    val = [SynthSounds("val"), SynthSounds("val", mixtures=True, snr_db=5.0)]
    # half tiny-clap's widths: in a trial just as accurate on SynthSounds, and 1.7x faster, which
    # the explanation notebooks feel on CPU
    model = CNNClassifier(CLASSES, channels=(8, 16, 32, 64))
    history = train_classifier(
        model, *_waves_and_labels(train), *_waves_and_labels(val), epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, desc="synth-cnn",
    )
    return model, history


def synth_classifier_quality(model, split: str = "test", n_per_class: int | None = None, snrs_db=(0, 5, 10),
                             progress: bool = False) -> dict[str, float]:
    """Accuracy of a SynthSounds classifier on clean events and on mixtures of the same events at ``snrs_db``.

    At 0 dB the event is as loud as distractor + noise, so either could be "the" sound:
    top-1 accuracy there is capped near 0.5, and ``mix_0db_top2`` (is the event among the two
    highest logits?) says whether the model hears it at all.
    """
    from tqdm.auto import tqdm

    from ..data.synth import SynthSounds
    from .classifiers import accuracy, predict_logits, spectrograms

    sets = {"clean": SynthSounds(split, n_per_class)}
    sets |= {f"mix_{snr:g}db": SynthSounds(split, n_per_class, mixtures=True, snr_db=float(snr)) for snr in snrs_db}
    result = {}
    for name, ds in tqdm(sets.items(), desc="synth-cnn quality", disable=not progress):
        logits = predict_logits(model, spectrograms(model, ds.waves(), ds.sample_rate))
        result[f"{name}_accuracy"] = accuracy(logits, ds.labels)
        if ds.mixtures and ds.snr_db == 0:
            result[f"{name}_top2"] = accuracy(logits, ds.labels, k=2)
    result["n_clips_per_set"] = len(sets["clean"])
    return result


# ---------------------------------------------------------------------------------------------
# lmac-tiny-clap: the LMAC-ZS decoder that explains tiny-clap (notebook 04)
# ---------------------------------------------------------------------------------------------

#: SNRs of the decoder's training mixtures, so it learns to pick one sound out of several.
LMAC_SNRS_DB = (0.0, 5.0, 10.0)


def lmac_training_clips(split: str = "train", n_per_class: int = 20) -> torch.Tensor:
    """Clips ``[N, T]`` the LMAC-ZS decoder learns on: SynthSounds events and mixtures at :data:`LMAC_SNRS_DB`."""
    from ..data.synth import SynthSounds

    sets = [SynthSounds(split, n_per_class)] + [
        SynthSounds(split, n_per_class, mixtures=True, snr_db=snr, seed=10 + i) for i, snr in enumerate(LMAC_SNRS_DB)
    ]
    return torch.cat([ds.waves() for ds in sets])


def train_lmac_tiny_clap(epochs: int = 8, batch_size: int = 16, seed: int = 0, progress: bool = True,
                         checkpoint: str | None = None):
    """Train the LMAC-ZS decoder for the shipped tiny-clap on 800 SynthSounds clips; returns (decoder, history)."""
    from .. import lmac
    from ..data.synth import CLASSES, SynthSounds

    seed_everything(seed)
    clap = load("tiny-clap")
    decoder = MaskDecoder.for_clap(clap)
    val = SynthSounds("val", n_per_class=5, mixtures=True, snr_db=5.0).waves()
    history = lmac.train_decoder(clap, decoder, lmac_training_clips(), val, CLASSES, epochs=epochs,
                                 batch_size=batch_size, seed=seed, progress=progress, checkpoint=checkpoint)
    return decoder, history


def lmac_quality(decoder, split: str = "test", n_per_class: int = 5, progress: bool = False) -> dict:
    """The decoder's explanations of tiny-clap's predictions under each test condition
    (:func:`audiox.data.synth.evaluation_conditions`): :func:`audiox.lmac.report` and the mask sizes
    for right and wrong prompts (:func:`audiox.lmac.prompt_mask_means`)."""
    from .. import lmac
    from ..data.synth import CLASSES, evaluation_conditions
    from ..zeroshot import class_embeddings

    clap = load("tiny-clap", device=next(decoder.parameters()).device)
    text = class_embeddings(clap, list(CLASSES))
    conditions = evaluation_conditions(split, n_per_class)
    encoded = {name: lmac.encode(clap, condition["waves"]) for name, condition in conditions.items()}
    table = lmac.compare(clap, decoder, conditions, text, ["LMAC-ZS"], encoded)
    result = {}
    for name, condition in conditions.items():
        sizes = lmac.prompt_mask_means(lmac.masks_for(decoder, encoded[name], text), condition["present"])
        row = table[name, "LMAC-ZS"] | {f"mask mean, {k}": v for k, v in sizes.items()}
        result[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    return result


# ---------------------------------------------------------------------------------------------
# tiny-codec: the offline profile's audio autoencoder (latent attribution, notebook 05)
# ---------------------------------------------------------------------------------------------


def codec_clips(split: str) -> dict[str, torch.Tensor]:
    """One-second clips a codec learns and is tested on: the keyword set (padded to 1 s) and SynthSounds
    events (each 2 s event cut into two halves), ``{"keywords": [N, 16000], "synth": [M, 16000]}``."""
    from ..data import stack
    from ..data.speech import Keywords
    from ..data.synth import SynthSounds

    words, _ = stack(Keywords(split))
    events = SynthSounds(split, n_per_class={"train": 30, "val": 3, "test": 5}[split]).waves()
    halves = events.reshape(len(events), 2, -1).flatten(0, 1)
    halves = halves[halves.abs().amax(dim=-1) > 1e-3]  # a half may hold only the tail of a short event
    return {"keywords": audio.pad_to(words, 1.0, audio.SAMPLE_RATE), "synth": halves}


def train_tiny_codec(epochs: int = 120, batch_size: int = 32, seed: int = 0, progress: bool = True):
    """Train tiny-codec on the keyword set and SynthSounds (1 s clips, +-6 dB gain); returns (model, history).

    The epoch with the best validation SI-SDR is kept.
    """
    from .codec import TinyCodec, codec_loss, reconstruction_quality
    from .train import fit, minibatches

    seed_everything(seed)
    train = torch.cat(list(codec_clips("train").values()))
    val = torch.cat(list(codec_clips("val").values()))
    model = TinyCodec()

    def batches(epoch):
        gen, indices = minibatches(len(train), batch_size, epoch, seed)
        for idx in indices:
            yield train[idx] * torch.exp(torch.empty(len(idx), 1).uniform_(-0.7, 0.7, generator=gen))

    def loss_fn(model, wave):
        return codec_loss(wave, model.decode(model.encode(wave)), model.hop_length)

    history = fit(model, loss_fn, batches, epochs=epochs, lr=2e-3, seed=seed, progress=progress, desc="tiny-codec",
                  evaluate=lambda model: reconstruction_quality(model, val)["si_sdr"])
    return model, history


def codec_quality(model, split: str = "test", progress: bool = False) -> dict:
    """Held-out reconstruction quality of a codec (SI-SDR and log-spectral distance in dB) on keywords and SynthSounds."""
    from .codec import reconstruction_quality

    return {name: {k: round(v, 3) if isinstance(v, float) else v for k, v in reconstruction_quality(model, waves).items()}
            for name, waves in codec_clips(split).items()}


# ---------------------------------------------------------------------------------------------
# keyword-latent-cnn: the classifier notebook 05 explains in tiny-codec's latent
# ---------------------------------------------------------------------------------------------


def keyword_clips(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The keyword set's clips, padded to 1 s, ``[N, 16000]``, and labels ``[N]``."""
    from ..data import stack
    from ..data.speech import Keywords

    words, labels = stack(Keywords(split))
    return audio.pad_to(words, 1.0, audio.SAMPLE_RATE), labels


def train_keyword_latent_cnn(epochs: int = 40, batch_size: int = 32, seed: int = 0, progress: bool = True):
    """Train a :class:`LatentClassifier` on the shipped tiny-codec's latents of the keyword set; returns (model, history)."""
    from ..data.speech import KEYWORDS
    from .classifiers import train_latent_classifier

    seed_everything(seed)
    codec = load("tiny-codec")
    model = LatentClassifier(list(KEYWORDS), latent_channels=codec.latent_channels)
    history = train_latent_classifier(codec, model, *keyword_clips("train"), *keyword_clips("val"), epochs=epochs,
                                      batch_size=batch_size, seed=seed, progress=progress, desc="keyword-latent-cnn")
    return model, history


@torch.no_grad()
def latent_classifier_quality(model, split: str = "test", progress: bool = False) -> dict:
    """Accuracy of a keyword latent classifier on held-out clips: on their latents, and on the latents of
    tiny-codec's reconstructions (``encode(decode(latent))``: can sound synthesised by the decoder still be
    classified?)."""
    from .classifiers import accuracy, encode_all, predict_latent

    codec = load("tiny-codec", device=next(model.parameters()).device)
    waves, labels = keyword_clips(split)
    latent = encode_all(codec, waves.to(next(model.parameters()).device))
    resynthesised = encode_all(codec, codec.reconstruct(waves))
    return {"accuracy": round(accuracy(predict_latent(model, latent), labels), 4),
            "accuracy_resynthesised": round(accuracy(predict_latent(model, resynthesised), labels), 4),
            "clips": len(labels)}


TRAINERS = {"tiny-clap": train_tiny_clap, "synth-cnn": train_synth_cnn, "lmac-tiny-clap": train_lmac_tiny_clap,
            "tiny-codec": train_tiny_codec, "keyword-latent-cnn": train_keyword_latent_cnn}
QUALITY = {"tiny-clap": synth_quality, "synth-cnn": synth_classifier_quality, "lmac-tiny-clap": lmac_quality,
           "tiny-codec": codec_quality, "keyword-latent-cnn": latent_classifier_quality}


def train_and_ship(name: str, **kwargs) -> dict:
    """Train a zoo model, evaluate it on held-out data and write weights + card to ``data/models``."""
    start = time.perf_counter()
    model, history = TRAINERS[name](**kwargs)
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    weights = save_atomically(model.state_dict(), MODELS_DIR / f"{name}.pt")
    info = {
        "name": name,
        "file": weights.name,
        "sha256": sha256sum(weights),
        "size_bytes": weights.stat().st_size,
        "config": model.config,
        "trained_by": f"python -m audiox.models.zoo train {name}",
        "training": {**kwargs, "seconds": round(seconds, 1), "best_epoch": history.best_epoch,
                     "epochs_run": len(history.loss), "final_loss": round(history.loss[-1], 4)},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "device": "cpu"},
        "quality": {"split": "test", **QUALITY[name](model)},
    }
    if name in DEPENDS_ON:  # which weights it was trained on: a test fails when they are retrained without it
        info["depends_on"] = {DEPENDS_ON[name]: card(DEPENDS_ON[name])["sha256"]}
    (MODELS_DIR / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audiox.models.zoo", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "train", "eval"])
    parser.add_argument("name", nargs="?", choices=sorted(ZOO))
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in sorted(ZOO):
            path = MODELS_DIR / f"{name}.json"
            print(name, json.loads(path.read_text())["quality"] if path.exists() else "(not trained)")
        return
    if args.name is None:
        parser.error(f"{args.command} needs a model name: {sorted(ZOO)}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.command == "train":
        kwargs = {"epochs": args.epochs} if args.epochs else {}
        info = train_and_ship(args.name, **kwargs)
        print(json.dumps({k: info[k] for k in ("sha256", "size_bytes", "training", "quality")}, indent=2))
    else:
        print(json.dumps(QUALITY[args.name](load(args.name), progress=True), indent=2))


if __name__ == "__main__":
    main()
