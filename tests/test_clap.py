"""tiny-clap, the Clap contract, the zoo and zero-shot / retrieval helpers."""

import shutil

import pytest
import torch

from audiox import zeroshot
from audiox.models import recipes, zoo
from audiox.models.clap import Clap, TinyClap
from audiox.models.train import fit

SR = 16_000


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("tiny-clap", device="cpu")


@pytest.fixture(scope="module")
def random_clap():
    torch.manual_seed(0)
    return TinyClap().eval()


def clip(seconds=1.0, freq=440.0, sr=SR):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


# ---- the shipped weights meet their numbers ------------------------------------------------------

def test_shipped_card_and_weights(shipped):
    info = zoo.card("tiny-clap")
    path = zoo.MODELS_DIR / info["file"]
    assert path.stat().st_size <= 10 * 2**20
    assert info["trained_by"] == "python -m audiox.models.recipes train tiny-clap"
    assert shipped.weights_sha256 == info["sha256"]


def test_shipped_quality_on_held_out_synth(shipped):
    quality = recipes.synth_quality(shipped, "test")
    assert quality["zero_shot_accuracy"] >= 0.90
    assert quality["text_to_audio_R@1"] >= 0.50
    card = zoo.card("tiny-clap")["quality"]
    # the card's figures are what this code computes (small slack for other CPUs' float rounding)
    for key in ("zero_shot_accuracy", "text_to_audio_R@1"):
        assert abs(quality[key] - card[key]) < 0.02, key


def test_stale_weights_are_refused(tmp_path, monkeypatch):
    for name in ("tiny-clap.json", "tiny-clap.pt"):
        shutil.copy(zoo.MODELS_DIR / name, tmp_path / name)
    with open(tmp_path / "tiny-clap.pt", "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    with pytest.raises(ValueError, match="stale or corrupt.*git checkout data/models"):
        zoo.load("tiny-clap")


def test_unknown_and_untrained_models(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown model 'big-clap'"):
        zoo.card("big-clap")
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    with pytest.raises(ValueError, match="train it with `python -m audiox.models.recipes train tiny-clap`"):
        zoo.card("tiny-clap")


def test_load_clap_follows_the_profile(monkeypatch):
    monkeypatch.setenv("AUDIOX_PROFILE", "offline")
    assert zoo.load_clap().name == "tiny-clap"
    import audiox.models.laion as laion

    asked = []
    monkeypatch.setattr(laion, "load_laion_clap", lambda *a, **k: asked.append((a, k)) or "laion")
    monkeypatch.setenv("AUDIOX_PROFILE", "full")
    assert zoo.load_clap() == "laion"
    assert zoo.load_clap("laion-clap:630k-best") == "laion" and asked[-1][0] == ("630k-best",)


# ---- the Clap contract -------------------------------------------------------------------------

def test_tiny_clap_implements_the_protocol(random_clap):
    assert isinstance(random_clap, Clap)
    emb = random_clap.embed_audio(torch.stack([clip(), clip(freq=880.0)]))
    assert emb.shape == (2, random_clap.embed_dim)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    text = random_clap.embed_text(["a siren", "never seen words: zorblax"])
    assert text.shape == (2, random_clap.embed_dim) and torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_embed_audio_is_spec_to_embedding_of_the_spectrogram(random_clap):
    wave = torch.stack([clip(), clip(freq=300.0)])
    magnitude, phase = random_clap.spectrogram(wave)
    assert magnitude.shape == phase.shape == (2, random_clap.n_fft // 2 + 1, SR // random_clap.hop_length + 1)
    with torch.no_grad():
        assert torch.allclose(random_clap.embed_audio(wave), random_clap.spec_to_embedding(magnitude), atol=1e-6)


def test_masks_can_be_learned_through_spec_to_embedding(random_clap):
    magnitude, _ = random_clap.spectrogram(clip())
    mask = torch.full_like(magnitude, 0.5, requires_grad=True)
    random_clap.spec_to_embedding(mask * magnitude).sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0


def test_audio_features_are_hidden_maps(random_clap):
    feats = random_clap.audio_features(torch.stack([clip(), clip()]))
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
    assert all(f.shape[0] == 2 for f in feats) and feats[0].shape[2] == 64


def test_single_clip_and_resampling(random_clap):
    assert random_clap.embed_audio(clip()).shape == (1, random_clap.embed_dim)
    with pytest.warns(UserWarning, match="44100 Hz -> 16000 Hz"):
        random_clap.embed_audio(clip(sr=44100), sample_rate=44100)


@pytest.mark.parametrize(
    "bad, match",
    [
        (clip()[:1000], "at least 0.25 s"),
        (torch.zeros(SR), "all silent"),
        (torch.full((SR,), float("nan")), "NaN"),
        (torch.stack([clip(), clip()]).T, "stereo"),
    ],
)
def test_bad_audio_is_refused(random_clap, bad, match):
    with pytest.raises(ValueError, match=match):
        random_clap.embed_audio(bad)


def test_empty_text_is_refused(random_clap):
    with pytest.raises(ValueError, match="no words to embed"):
        random_clap.embed_text(["a siren", "  "])


def test_unseen_spellings_land_near_the_word(shipped):
    with torch.no_grad():
        e = shipped.embed_text(["the sound of sirens", "the sound of a siren", "the sound of a knock"])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


def test_shipped_clap_hears_speech_keywords(shipped):
    from audiox.data import load_dataset, stack

    kw = load_dataset("keywords", split="test")
    waves, labels = stack(kw)
    text = zeroshot.class_embeddings(shipped, kw.classes, templates=("a voice saying {}",))
    probs = zeroshot.zero_shot(shipped, zeroshot.embed_waves(shipped, waves, progress=False), text)
    # ten words: chance is 0.1; tiny-clap learned them from 16 voices
    assert float((probs.argmax(-1) == labels).float().mean()) > 0.5


# ---- zero-shot and retrieval -------------------------------------------------------------------

def test_class_embeddings_checks_templates(random_clap):
    with pytest.raises(ValueError, match="no '\\{\\}'"):
        zeroshot.class_embeddings(random_clap, ["siren"], templates=("a siren",))
    with pytest.raises(ValueError, match="classes is empty"):
        zeroshot.class_embeddings(random_clap, [])


def test_recall_at_k_hand_computed():
    sim = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1], [0.0, 0.4, 0.6]])
    rel = torch.tensor([[False, False, True], [True, False, False], [True, False, False]])
    assert zeroshot.recall_at_k(sim, rel, ks=(1, 2, 3)) == pytest.approx({"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0})
    with pytest.raises(ValueError, match="at least one relevant"):
        zeroshot.recall_at_k(sim, torch.zeros(3, 3, dtype=torch.bool))


def test_confusion_matrix_counts():
    cm = zeroshot.confusion_matrix(torch.tensor([0, 2, 2, 1]), torch.tensor([0, 2, 1, 1]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_description_relevance_for_esc50_style_names():
    rel = zeroshot.description_relevance(["the sound of a crackling fire"], [{"crackling", "fire"}, {"rain"}])
    assert rel.tolist() == [[True, False]]


def test_embedding_cache_hits_and_misses(shipped, tmp_path, monkeypatch):
    from audiox.data import load_dataset

    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    ds = load_dataset("synth", split="test", n_per_class=1)
    first, labels = zeroshot.embed_dataset(shipped, ds, progress=False)
    files = list((tmp_path / "embeddings").rglob("*.pt"))
    assert len(files) == 1 and "SynthSounds-test" in files[0].name
    assert not list((tmp_path / "embeddings").rglob("*.tmp"))

    def no_embedding(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(zeroshot, "embed_waves", no_embedding)
    again, _ = zeroshot.embed_dataset(shipped, ds, progress=False)
    assert torch.equal(first, again)
    other = load_dataset("synth", split="test", n_per_class=1, seed=5)  # other clips: must not hit
    with pytest.raises(AssertionError, match="cache should have answered"):
        zeroshot.embed_dataset(shipped, other, progress=False)


def test_random_weights_are_not_cached(random_clap, tmp_path, monkeypatch):
    from audiox.data import load_dataset

    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    zeroshot.embed_dataset(random_clap, load_dataset("synth", split="test", n_per_class=1), progress=False)
    assert not (tmp_path / "embeddings").exists()


# ---- training ----------------------------------------------------------------------------------

def test_contrastive_loss_prefers_matching_pairs():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    relevant = torch.eye(8, dtype=torch.bool)
    matched = recipes.contrastive_loss(a, a, relevant, 20.0)
    shuffled = recipes.contrastive_loss(a, a[torch.randperm(8)], relevant, 20.0)
    assert matched < shuffled


def test_fit_stops_early_and_restores_the_best_epoch():
    model = torch.nn.Linear(1, 1)
    scores = iter([0.5, 0.9, 0.4, 0.3, 0.2, 0.1, 0.0])
    seen = {}

    def evaluate(m):
        score = next(scores)
        seen[score] = m.weight.detach().clone()
        return score

    x = torch.ones(4, 1)
    history = fit(model, lambda m, b: (m(b) - 1).pow(2).mean(), lambda e: [x], epochs=7, lr=0.1,
                  evaluate=evaluate, patience=2, progress=False)
    assert history.best_epoch == 1 and len(history.loss) == 4
    assert torch.equal(model.weight, seen[0.9])


def test_embed_dataset_uses_the_dataset_sample_rate(shipped, tmp_path, monkeypatch):
    # a 48 kHz dataset must be resampled for a 16 kHz model, not read as if it were 16 kHz
    from audiox.data import load_dataset

    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    at_16k, _ = zeroshot.embed_dataset(shipped, load_dataset("synth", split="test", n_per_class=1), progress=False)
    with pytest.warns(UserWarning, match="48000 Hz -> 16000 Hz"):
        at_48k, _ = zeroshot.embed_dataset(
            shipped, load_dataset("synth", split="test", n_per_class=1, sample_rate=48_000), progress=False
        )
    assert float((at_16k * at_48k).sum(-1).min()) > 0.9
