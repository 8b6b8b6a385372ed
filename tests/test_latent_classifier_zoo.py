"""The shipped keyword-latent-cnn: card, weights, dependency on tiny-codec, held-out quality."""

import pytest
import torch

from audiox.data.speech import KEYWORDS
from audiox.data.speech import keyword_clips
from audiox.models import recipes, zoo
from audiox.models.classifiers import LatentClassifier

NAME = "keyword-latent-cnn"


@pytest.fixture(scope="module")
def shipped():
    return zoo.load(NAME, device="cpu")


@pytest.fixture(scope="module")
def card():
    return zoo.card(NAME)


def test_card_matches_the_loaded_weights(shipped, card):
    assert shipped.weights_sha256 == card["sha256"]
    assert card["name"] == NAME and card["file"] == f"{NAME}.pt"
    assert card["trained_by"] == f"python -m audiox.models.recipes train {NAME}"
    assert isinstance(shipped, LatentClassifier) and not shipped.training
    assert shipped.classes == list(KEYWORDS) and shipped.config == card["config"]


def test_trained_on_the_shipped_codec(card):
    """Retraining tiny-codec without retraining this classifier changes the codec's sha256 and must fail here."""
    # recomputed from the shipped files, not read off the codec's card: the sha256 of tiny-codec's weights as
    # loaded (zoo.load hashes the file), and the latent channels the codec really produces
    codec = zoo.load("tiny-codec", device="cpu")
    assert card["depends_on"]["tiny-codec"] == codec.weights_sha256
    assert zoo.ZOO[NAME]["depends_on"] == ["tiny-codec"]
    with torch.no_grad():
        channels = codec.encode(torch.zeros(1, codec.sample_rate)).shape[1]
    assert card["config"]["latent_channels"] == channels


def test_size(card):
    size = (zoo.MODELS_DIR / card["file"]).stat().st_size
    assert size == card["size_bytes"] and size <= 10 * 2**20


def test_reads_the_codecs_latent(shipped):
    codec = zoo.load("tiny-codec", device="cpu")
    waves, _ = keyword_clips("test")
    with torch.no_grad():
        logits = shipped(codec.encode(waves[:2]))
    assert logits.shape == (2, len(KEYWORDS)) and torch.isfinite(logits).all()


def test_quality_is_reproducible_and_good(shipped, card):
    """Recomputed from the shipped weights on the test clips: deterministic, so exactly the card's numbers."""
    quality = recipes.latent_classifier_quality(shipped)
    expected = {k: v for k, v in card["quality"].items() if k != "split"}
    assert card["quality"]["split"] == "test"
    assert quality == expected
    assert quality["clips"] == len(keyword_clips("test")[1])
    assert quality["accuracy"] >= 0.9
    assert quality["accuracy_resynthesised"] >= 0.7  # card: 0.833 on encode(decode(latent))
