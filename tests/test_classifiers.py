"""The Classifier contract, CNNClassifier, train_classifier, and the shipped synth-cnn."""

import pytest
import torch

from audiox.data.synth import CLASSES, SynthSounds
from audiox.models import recipes, zoo
from audiox.models.classifiers import Classifier, CNNClassifier, spectrograms, train_classifier

SR = 16_000


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("synth-cnn", device="cpu")


@pytest.fixture(scope="module")
def random_cnn():
    torch.manual_seed(0)
    return CNNClassifier(CLASSES).eval()


def clip(seconds=1.0, freq=440.0, sr=SR):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


# ---- the contract ----------------------------------------------------------------------------------

def test_cnn_implements_the_classifier_contract(random_cnn):
    assert isinstance(random_cnn, Classifier)
    assert random_cnn.classes == list(CLASSES) and random_cnn.n_classes == 10
    assert random_cnn(clip()).shape == (1, 10)
    assert random_cnn(torch.stack([clip(), clip(freq=880.0)])).shape == (2, 10)
    rebuilt = CNNClassifier(**random_cnn.config)
    rebuilt.load_state_dict(random_cnn.state_dict())  # the config alone rebuilds the architecture


def test_forward_is_spec_to_logits_of_the_spectrogram(random_cnn):
    wave = torch.stack([clip(), clip(freq=300.0)])
    magnitude, phase = random_cnn.spectrogram(wave)
    assert magnitude.shape == phase.shape == (2, random_cnn.n_fft // 2 + 1, SR // random_cnn.hop_length + 1)
    with torch.no_grad():
        assert torch.allclose(random_cnn(wave), random_cnn.spec_to_logits(magnitude), atol=1e-6)


def test_hidden_maps_keep_time_and_come_with_the_logits(random_cnn):
    magnitude, _ = random_cnn.spectrogram(torch.stack([clip(2.0), clip(2.0)]))
    frames = magnitude.shape[-1]  # 251 for 2 s
    with torch.no_grad():
        logits, hidden = random_cnn.logits_and_hidden(magnitude)
        assert torch.equal(logits, random_cnn.spec_to_logits(magnitude))
        features = random_cnn.audio_features(torch.stack([clip(2.0), clip(2.0)]))
    assert [tuple(h.shape) for h in hidden] == [
        (2, c, 64 // 2**i, frames // 2**i) for i, c in enumerate((16, 32, 64, 128))
    ]
    assert all(torch.equal(a, b) for a, b in zip(hidden, features))


def test_masks_can_be_learned_through_spec_to_logits(random_cnn):
    magnitude, _ = random_cnn.spectrogram(clip())
    mask = torch.full_like(magnitude, 0.5, requires_grad=True)
    random_cnn.spec_to_logits(mask * magnitude)[0, 3].backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0


def test_other_rates_lengths_and_class_counts():
    # ESC-50's shape: 44.1 kHz, 5 s, 50 classes
    model = CNNClassifier([f"class {i}" for i in range(50)], sample_rate=44_100, channels=(4, 8, 16),
                          n_fft=1024, hop_length=441).eval()
    wave = 0.1 * torch.randn(2, 5 * 44_100)
    with torch.no_grad():
        logits, hidden = model.logits_and_hidden(model.spectrogram(wave)[0])
    assert logits.shape == (2, 50)
    assert [tuple(h.shape[1:]) for h in hidden] == [(4, 64, 501), (8, 32, 250), (16, 16, 125)]
    with pytest.warns(UserWarning, match="16000 Hz -> 44100 Hz"):
        assert model(clip(), sample_rate=SR).shape == (1, 50)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.stack([clip(), clip()]).T, "stereo"),
        (clip()[:1000], "at least 0.25 s"),
        (torch.zeros(SR), "all silent"),
        (torch.full((SR,), float("nan")), "NaN"),
        ((clip() * 32767).to(torch.int16), "integer dtype"),
    ],
)
def test_bad_audio_is_refused(random_cnn, bad, match):
    with pytest.raises(ValueError, match=match):
        random_cnn(bad)


def test_needs_two_classes():
    with pytest.raises(ValueError, match="at least two class names"):
        CNNClassifier(["siren"])


# ---- training ----------------------------------------------------------------------------------

def test_train_classifier_is_deterministic():
    train, val = SynthSounds("train", n_per_class=2), SynthSounds("val", n_per_class=1)
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = CNNClassifier(CLASSES, channels=(4, 8))
        history = train_classifier(model, train.waves(), train.labels, val.waves(), val.labels,
                                   epochs=2, batch_size=8, progress=False)
        states.append(model.state_dict())
    assert len(history.loss) == 2 and not model.training
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_spectrograms_are_batched_on_the_model_device(random_cnn):
    waves = torch.stack([clip(), clip(freq=300.0), clip(freq=600.0)])
    whole = spectrograms(random_cnn, waves, batch_size=2)
    assert torch.allclose(whole, random_cnn.spectrogram(waves)[0])


# ---- the shipped synth-cnn ----------------------------------------------------------------------

def test_shipped_card_and_weights(shipped):
    info = zoo.card("synth-cnn")
    assert (zoo.MODELS_DIR / info["file"]).stat().st_size <= 2 * 2**20
    assert info["trained_by"] == "python -m audiox.models.recipes train synth-cnn"
    assert shipped.weights_sha256 == info["sha256"]
    assert shipped.classes == list(CLASSES) and isinstance(shipped, Classifier)
    # the card's clean accuracy (and its set size), recomputed from the weights on the card's own 300 clean test
    # clips: deterministic, so exactly the card's number
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions on 2 shared cores: one thread is faster
    try:
        clean = recipes.synth_classifier_quality(shipped, "test", snrs_db=())
    finally:
        torch.set_num_threads(threads)
    assert clean["n_clips_per_set"] == info["quality"]["n_clips_per_set"] == 300
    assert clean["clean_accuracy"] == pytest.approx(info["quality"]["clean_accuracy"], abs=1e-6)
    assert clean["clean_accuracy"] >= 0.95


def test_shipped_quality_on_held_out_synth(shipped):
    # 100 clean clips and the same events 5 dB above a distractor (the card has 300 per set, and 0 and 10 dB)
    quality = recipes.synth_classifier_quality(shipped, "test", n_per_class=10, snrs_db=(5,))
    assert sorted(quality) == ["clean_accuracy", "mix_5db_accuracy", "n_clips_per_set"]
    assert quality["n_clips_per_set"] == 100
    assert quality["clean_accuracy"] >= 0.95
    assert quality["mix_5db_accuracy"] >= 0.75


# ---- LatentClassifier and train_latent_classifier (seed paper 001) ----------------------------------------

import re  # noqa: E402

from audiox.models.classifiers import LatentClassifier, encode_all, predict_latent, train_latent_classifier  # noqa: E402
from audiox.models.codec import TinyCodec  # noqa: E402


def test_latent_classifier_shapes_and_config():
    torch.manual_seed(0)
    model = LatentClassifier(["a", "b", "c"], latent_channels=8, width=8).eval()
    assert model.n_classes == 3 and model.classes == ["a", "b", "c"]
    with torch.no_grad():
        for frames in (4, 5, 17, 32, 126, 1000):  # any clip length (from 4 frames: two poolings by 2)
            assert model(torch.randn(2, 8, frames)).shape == (2, 3), frames
    rebuilt = LatentClassifier(**model.config)
    rebuilt.load_state_dict(model.state_dict())  # the config alone rebuilds the architecture


@pytest.mark.parametrize("shape", [(8, 40), (2, 4, 40), (2, 8, 40, 1), (40,)])
def test_latent_classifier_refuses_other_shapes(shape):
    model = LatentClassifier(["a", "b"], latent_channels=8, width=8).eval()
    expected = re.escape(f"latent has shape {tuple(shape)}; this classifier reads [batch, 8, frames]")
    with pytest.raises(ValueError, match=expected):
        model(torch.randn(*shape))


def test_latent_classifier_needs_two_classes():
    with pytest.raises(ValueError, match="at least two class names"):
        LatentClassifier(["yes"])
    with pytest.raises(ValueError, match="at least two class names"):
        LatentClassifier([])


def tone_or_noise(n, seed, samples=8_000):
    """Half tones (random pitch and level), half white noise (random level): labels 0 and 1, alternating."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / SR
    waves = []
    for i in range(n):
        level = 0.05 + 0.25 * float(torch.rand(1, generator=gen))
        if i % 2 == 0:
            freq = 200.0 + 2_000.0 * float(torch.rand(1, generator=gen))
            waves.append(level * torch.sin(2 * torch.pi * freq * t))
        else:
            waves.append(level * torch.randn(samples, generator=gen))
    return torch.stack(waves), torch.tensor([0, 1] * (n // 2))


@pytest.fixture(scope="module")
def small_codec():
    torch.manual_seed(0)
    return TinyCodec(latent_channels=8, width=16).eval()


def train_small(codec, seed=0, epochs=12):
    train_waves, train_labels = tone_or_noise(16, seed=1)
    val_waves, val_labels = tone_or_noise(16, seed=2)
    torch.manual_seed(3)
    model = LatentClassifier(["tone", "noise"], latent_channels=8, width=8)
    # batches of 4 (8 steps an epoch with the resynthesised copies): BatchNorm's running statistics need steps
    history = train_latent_classifier(codec, model, train_waves, train_labels, val_waves, val_labels, epochs=epochs,
                                      batch_size=4, lr=5e-3, seed=seed, progress=False)
    return model, history, (val_waves, val_labels)


def test_train_latent_classifier_learns_a_separable_problem(small_codec):
    model, history, (val_waves, val_labels) = train_small(small_codec)
    assert len(history.loss) == 12 and not model.training
    assert max(history.score) >= 0.9, history.score
    logits = predict_latent(model, encode_all(small_codec, val_waves))
    assert float((logits.argmax(dim=-1) == val_labels).float().mean()) == max(history.score)  # the best epoch kept


def test_train_latent_classifier_is_deterministic(small_codec):
    first, h1, _ = train_small(small_codec, epochs=3)
    second, h2, _ = train_small(small_codec, epochs=3)
    assert h1.loss == h2.loss and h1.score == h2.score
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())
    other, h3, _ = train_small(small_codec, seed=1, epochs=3)  # another seed: other batches and augmentations
    assert h3.loss != h1.loss


def test_train_latent_classifier_refuses_too_few_clips(small_codec):
    waves, labels = tone_or_noise(4, seed=1)
    model = LatentClassifier(["tone", "noise"], latent_channels=8, width=8)
    with pytest.raises(ValueError, match="fewer than batch_size=16"):
        train_latent_classifier(small_codec, model, waves, labels, waves, labels, epochs=1, batch_size=16,
                                progress=False)
