"""How every shipped model is trained and checked: the recipes, the quality functions and the command line.

Every model of the offline profile is trained here, deterministically, on CPU, and committed under
``data/models/`` next to its card (the registry, :mod:`audiox.models.zoo`, records its sha256):

    python -m audiox.models.recipes list
    python -m audiox.models.recipes train tiny-clap       # about 5 minutes on 2 CPU cores
    python -m audiox.models.recipes train synth-cnn
    python -m audiox.models.recipes train lmac-tiny-clap  # LMAC-ZS decoder for tiny-clap, about 6 minutes
    python -m audiox.models.recipes train lmac-tiny-clap-absence  # the same with the absence term (notebook 04)
    python -m audiox.models.recipes train tiny-codec      # the offline audio autoencoder
    python -m audiox.models.recipes train keyword-latent-cnn  # keyword classifier on tiny-codec's latent
    python -m audiox.models.recipes train l2i-synth-cnn   # L2I interpreters (notebook 06)
    python -m audiox.models.recipes train l2i-tiny-clap
    python -m audiox.models.recipes eval tiny-clap

Models trained on another shipped model's outputs name it in the registry (``depends_on``); the
card records that model's sha256, and a test fails when it is retrained without its dependants.

>>> sorted(TRAINERS) == sorted(QUALITY) == sorted(zoo.ZOO)
True
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from .. import audio
from ..config import seed_everything
from ..data.hub import save_atomically, sha256sum
from . import zoo
from .base import parameter_device
from .zoo import MODELS_DIR, card, load

# ---------------------------------------------------------------------------------------------
# tiny-clap: data, contrastive loss, training, held-out quality
# ---------------------------------------------------------------------------------------------

def _clap_corpus(split: str, seconds: float = 2.0):
    """tiny-clap's corpus: SynthSounds events and mixtures + keywords.

    Returns magnitudes ``[N, F, T]``, each clip's captions, and the words that describe each clip.
    """
    from ..data.base import stack
    from ..data.speech import Keywords, keyword_captions
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
    from ..zeroshot import logits as similarity_logits

    logits = similarity_logits(logit_scale, text_emb, audio_emb)  # [captions, clips]
    target = relevant.float().to(logits.device)  # relevance is built on the CPU, from words
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
    # on the model's device, where its text embeddings are: not config.device(), which is the GPU even when
    # the model being evaluated (tiny-clap during its CPU training) is not on it
    audio_emb = embed_waves(clap, ds.waves(), ds.sample_rate, progress=progress).to(parameter_device(clap))
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

    from .clap import TinyClap

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
    from .classifiers import CNNClassifier, train_classifier

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


def _sources(mixed) -> tuple[torch.Tensor, torch.Tensor]:
    """A mixture set's source classes ``[N, 2]`` (event, distractor) and source waves ``[N, 2, T]``."""
    items = [mixed[j] for j in range(len(mixed))]
    return (torch.tensor([[item["label"], item["distractor_label"]] for item in items]),
            torch.stack([torch.stack([item["sources"]["event"], item["sources"]["distractor"]]) for item in items]))


def lmac_training_sources(split: str = "train", n_per_class: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """The sources of :func:`lmac_training_clips`: each clip's classes ``[N, 2]`` (event, distractor; -1 for a
    clip of one event) and waves ``[N, 2, T]`` (the event alone, the distractor alone; zeros where absent)."""
    from ..data.synth import SynthSounds

    events = SynthSounds(split, n_per_class)
    classes = [torch.stack([events.labels, torch.full_like(events.labels, -1)], dim=1)]
    waves = [torch.stack([events.waves(), torch.zeros_like(events.waves())], dim=1)]
    for i, snr in enumerate(LMAC_SNRS_DB):
        mixed_classes, mixed_waves = _sources(SynthSounds(split, n_per_class, mixtures=True, snr_db=snr, seed=10 + i))
        classes.append(mixed_classes)
        waves.append(mixed_waves)
    return torch.cat(classes), torch.cat(waves)


def train_lmac_tiny_clap(epochs: int = 8, batch_size: int = 16, seed: int = 0, progress: bool = True,
                         checkpoint: str | None = None, absence: bool = False):
    """Train the LMAC-ZS decoder for the shipped tiny-clap on 800 SynthSounds clips; returns (decoder, history).

    ``absence=True`` adds the absence term on the training mixtures (:func:`audiox.lmac.lmac_loss`):
    ``lmac-tiny-clap-absence``, the experiment of notebook 04 on whether the mask can follow the prompt.
    """
    from .. import lmac
    from ..data.synth import CLASSES, SynthSounds

    seed_everything(seed)
    clap = load("tiny-clap")
    decoder = lmac.MaskDecoder.for_clap(clap)
    val = SynthSounds("val", n_per_class=5, mixtures=True, snr_db=5.0)
    history = lmac.train_decoder(clap, decoder, lmac_training_clips(), val.waves(), CLASSES, epochs=epochs,
                                 batch_size=batch_size, seed=seed, progress=progress, checkpoint=checkpoint,
                                 sources=lmac_training_sources() if absence else None,
                                 val_sources=_sources(val) if absence else None)
    return decoder, history


def _rounded(row: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def lmac_quality(decoder, split: str = "test", n_per_class: int = 5, progress: bool = False) -> dict:
    """The decoder's explanations of tiny-clap's predictions under each test condition
    (:func:`audiox.data.synth.evaluation_conditions`): faithfulness (:func:`audiox.compare.faithfulness`),
    ground truth against the source of the class explained (:func:`audiox.compare.ground_truth`, on the
    clips that have one: ``n GT``), the mask sizes for right and wrong prompts
    (:func:`audiox.lmac.prompt_mask_means`) and, on mixtures, how far the mask moves to the other source when
    its class is asked (:func:`audiox.compare.follows_the_question`)."""
    from .. import compare, lmac
    from ..data.synth import CLASSES, evaluation_conditions
    from ..zeroshot import ZeroShotClassifier

    model = ZeroShotClassifier(load("tiny-clap", device=next(decoder.parameters()).device), CLASSES)
    explainer = lmac.LMACZS(model, decoder)
    result = {}
    for name, condition in evaluation_conditions(split, n_per_class).items():
        explanation = explainer.explain(condition["waves"])
        rows = {**compare.faithfulness(model, explanation), **compare.ground_truth(explanation, condition)}
        row = {k: float(v.nanmean()) for k, v in rows.items()} | {"n": len(explanation),
                                                                  "n GT": int((~rows["f_measure"].isnan()).sum())}
        clips = lmac.encode(model.clap, condition["waves"])
        sizes = lmac.prompt_mask_means(lmac.masks_for(decoder, clips, model.text_embeddings), condition["present"])
        if (condition["distractor_labels"] >= 0).any():  # does the mask move to the source asked about?
            row["moved to the distractor, top 10%"] = float(compare.follows_the_question(explainer, condition)["moved"].mean())
        result[name] = _rounded(row | {f"mask mean, {k}": v for k, v in sizes.items()})
    return result


# ---------------------------------------------------------------------------------------------
# l2i-synth-cnn, l2i-tiny-clap: L2I interpreters, NMF dictionary included (notebooks 03 and 06)
# ---------------------------------------------------------------------------------------------

#: Components of the interpreters' NMF dictionaries (notebook 03's choice).
L2I_COMPONENTS = 32


def l2i_clips(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips an L2I interpreter learns on: SynthSounds events and mixtures at 5 dB, as in notebook 03
    (train: 40 + 40 per class; val: 10 mixtures per class), and their event labels."""
    from ..data.synth import SynthSounds

    n = {"train": 40, "val": 10, "test": 30}[split]
    sets = ([SynthSounds(split, n)] if split == "train" else []) + [
        SynthSounds(split, n, mixtures=True, snr_db=5.0, seed=7 if split == "train" else 0)]
    return torch.cat([ds.waves() for ds in sets]), torch.cat([ds.labels for ds in sets])


def l2i_model(name: str, device=None):
    """The model an ``l2i-*`` interpreter explains: synth-cnn, or tiny-clap's zero-shot classifier of the
    SynthSounds classes ("the sound of a {class}"), on ``device`` (default :func:`audiox.config.device`)."""
    from ..data.synth import CLASSES
    from ..zeroshot import ZeroShotClassifier

    base = zoo.entry(name)["depends_on"][0]
    return load(base, device) if base == "synth-cnn" else ZeroShotClassifier(load(base, device), CLASSES)


def train_l2i(name: str, epochs: int = 20, seed: int = 0, progress: bool = True):
    """Fit the NMF dictionary (K = 32, Euclidean, on every other training clip's log1p magnitude) and train a
    post-hoc interpreter on the model's last two hidden blocks (fidelity weights 1, then 2, as notebook 03)."""
    from .. import l2i, nmf
    from .classifiers import spectrograms

    seed_everything(seed)
    model = l2i_model(name)
    train_mag, val_mag = spectrograms(model, l2i_clips("train")[0]), spectrograms(model, l2i_clips("val")[0])
    W = nmf.fit(torch.log1p(train_mag[::2]), n_components=L2I_COMPONENTS, n_iter=150, seed=seed).W
    interpreter = l2i.Interpreter.for_classifier(model, W)
    history = l2i.train_interpreter(model, interpreter, train_mag, val_mag, epochs=epochs, batch_size=32,
                                    fidelity_weights=(1.0, 2.0), seed=seed, progress=progress)
    return interpreter, history


def l2i_quality(name: str, interpreter, split: str = "test", progress: bool = False) -> dict:
    """Top-1 and top-3 fidelity on the test mixtures, and the faithfulness check of notebook 03: the median
    drop of the predicted class's probability when the interpretation is removed, against removing as many
    random components among the clip's active ones."""
    from .. import l2i, nmf
    from .classifiers import spectrograms

    model = l2i_model(name, parameter_device(interpreter))  # where the interpreter is (on the CPU when shipped)
    waves, _ = l2i_clips(split)
    magnitude = spectrograms(model, waves)
    classifier_logits, interpreter_logits = l2i.predict(model, interpreter, magnitude)
    explanation = l2i.L2I(model, interpreter).explain(waves)
    chosen = explanation.info["components"]
    active = explanation.info["activations"].sum(-1) > 0  # the control draws among the clip's active components
    random = l2i.random_components(chosen, torch.Generator().manual_seed(0), candidates=active)
    random_mask = nmf.component_masks(interpreter.dictionary, explanation.info["activations"], random.float())
    drop = l2i.removal_drop(model, magnitude, explanation.mask, explanation.target)
    drop_random = l2i.removal_drop(model, magnitude, random_mask, explanation.target)
    return _rounded({"fidelity_top1": l2i.fidelity(classifier_logits, interpreter_logits, 1),
                     "fidelity_top3": l2i.fidelity(classifier_logits, interpreter_logits, 3),
                     "components_per_clip": float(chosen.sum(-1).float().mean()),
                     "median_drop_relevant": float(drop.median()), "median_drop_random": float(drop_random.median()),
                     "clips": len(waves)})


# ---------------------------------------------------------------------------------------------
# tiny-codec: the offline profile's audio autoencoder (latent attribution, notebook 05)
# ---------------------------------------------------------------------------------------------


def codec_clips(split: str) -> dict[str, torch.Tensor]:
    """One-second clips a codec learns and is tested on: the keyword set (padded to 1 s) and SynthSounds
    events (each 2 s event cut into two halves), ``{"keywords": [N, 16000], "synth": [M, 16000]}``."""
    from ..data.base import stack
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


def train_keyword_latent_cnn(epochs: int = 40, batch_size: int = 32, seed: int = 0, progress: bool = True):
    """Train a :class:`LatentClassifier` on the shipped tiny-codec's latents of the keyword set; returns (model, history)."""
    from ..data.speech import KEYWORDS, keyword_clips
    from .classifiers import LatentClassifier, train_latent_classifier

    seed_everything(seed)
    codec = load("tiny-codec")
    # initialised on the CPU (the same weights wherever it trains), then trained next to the codec
    model = LatentClassifier(list(KEYWORDS), latent_channels=codec.latent_channels).to(parameter_device(codec))
    history = train_latent_classifier(codec, model, *keyword_clips("train"), *keyword_clips("val"), epochs=epochs,
                                      batch_size=batch_size, seed=seed, progress=progress, desc="keyword-latent-cnn")
    return model, history


@torch.no_grad()
def latent_classifier_quality(model, split: str = "test", progress: bool = False) -> dict:
    """Accuracy of a keyword latent classifier on held-out clips: on their latents, and on the latents of
    tiny-codec's reconstructions (``encode(decode(latent))``: can sound synthesised by the decoder still be
    classified?)."""
    from ..data.speech import keyword_clips
    from .classifiers import accuracy, encode_all, predict_latent

    codec = load("tiny-codec", device=next(model.parameters()).device)
    waves, labels = keyword_clips(split)
    latent = encode_all(codec, waves.to(next(model.parameters()).device))
    resynthesised = encode_all(codec, codec.reconstruct(waves))
    return {"accuracy": round(accuracy(predict_latent(model, latent), labels), 4),
            "accuracy_resynthesised": round(accuracy(predict_latent(model, resynthesised), labels), 4),
            "clips": len(labels)}


TRAINERS = {"tiny-clap": train_tiny_clap, "synth-cnn": train_synth_cnn, "lmac-tiny-clap": train_lmac_tiny_clap,
            "lmac-tiny-clap-absence": lambda **kw: train_lmac_tiny_clap(absence=True, **kw),
            "tiny-codec": train_tiny_codec, "keyword-latent-cnn": train_keyword_latent_cnn,
            "l2i-synth-cnn": lambda **kw: train_l2i("l2i-synth-cnn", **kw),
            "l2i-tiny-clap": lambda **kw: train_l2i("l2i-tiny-clap", **kw)}
QUALITY = {"tiny-clap": synth_quality, "synth-cnn": synth_classifier_quality, "lmac-tiny-clap": lmac_quality,
           "lmac-tiny-clap-absence": lmac_quality,
           "tiny-codec": codec_quality, "keyword-latent-cnn": latent_classifier_quality,
           "l2i-synth-cnn": lambda model, **kw: l2i_quality("l2i-synth-cnn", model, **kw),
           "l2i-tiny-clap": lambda model, **kw: l2i_quality("l2i-tiny-clap", model, **kw)}


def _write_registry(name: str, sha256: str) -> None:
    """Record a model's new sha256 in ``zoo.json`` (whole or not at all) and in the loaded registry."""
    registry = json.loads(zoo.REGISTRY.read_text())
    registry[name]["sha256"] = sha256
    tmp = zoo.REGISTRY.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=2) + "\n")
    os.replace(tmp, zoo.REGISTRY)
    zoo.ZOO[name]["sha256"] = sha256


def train_and_ship(name: str, **kwargs) -> dict:
    """Train a zoo model, evaluate it on held-out data, write weights + card to ``data/models`` and its sha256 to
    the registry."""
    zoo.entry(name)
    start = time.perf_counter()
    model, history = TRAINERS[name](**kwargs)
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    weights = save_atomically(model.state_dict(), MODELS_DIR / zoo.entry(name)["weights"])
    info = {
        "name": name,
        "file": weights.name,
        "sha256": sha256sum(weights),
        "size_bytes": weights.stat().st_size,
        "config": model.config,
        "trained_by": zoo.RETRAIN.format(name),
        "training": {**kwargs, "seconds": round(seconds, 1), "best_epoch": history.best_epoch,
                     "epochs_run": len(history.loss), "final_loss": round(history.loss[-1], 4)},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "device": "cpu"},
        "quality": {"split": "test", **QUALITY[name](model)},
    }
    # which weights it was trained on: a test fails when they are retrained without it
    if zoo.entry(name)["depends_on"]:
        info["depends_on"] = {base: zoo.entry(base)["sha256"] for base in zoo.entry(name)["depends_on"]}
    (MODELS_DIR / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    _write_registry(name, info["sha256"])
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m audiox.models.recipes", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["list", "train", "eval"])
    parser.add_argument("name", nargs="?", choices=sorted(zoo.ZOO))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--write", action="store_true", help="eval: write the measured quality into the model's card")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in sorted(zoo.ZOO):
            path = MODELS_DIR / f"{name}.json"
            print(name, json.loads(path.read_text())["quality"] if path.exists() else "(not trained)")
        return
    if args.name is None:
        parser.error(f"{args.command} needs a model name: {sorted(zoo.ZOO)}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.command == "train":
        kwargs = {"epochs": args.epochs} if args.epochs else {}
        info = train_and_ship(args.name, **kwargs)
        print(json.dumps({k: info[k] for k in ("sha256", "size_bytes", "training", "quality")}, indent=2))
        return
    quality = QUALITY[args.name](load(args.name), progress=True)
    print(json.dumps(quality, indent=2))
    if args.write:  # the card's quality re-measured by the current code, the weights unchanged
        info = card(args.name)
        info["quality"] = {"split": "test", **quality}
        (MODELS_DIR / f"{args.name}.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
