"""tiny-codec: the offline codec's contract, its loss, and the shipped weights' held-out quality."""

import pytest
import torch

from audiox.models import recipes, zoo
from audiox.models.codec import Codec, TinyCodec, codec_loss, reconstruction_quality


@pytest.fixture(scope="module")
def shipped():
    return zoo.load("tiny-codec")


def test_tiny_codec_is_a_codec():
    torch.manual_seed(0)
    codec = TinyCodec(latent_channels=16, width=32).eval()
    assert isinstance(codec, Codec)
    wave = torch.randn(3, 16_000) * 0.1
    latent = codec.encode(wave).detach()
    assert latent.shape == (3, 16, 126) and codec.frame_rate == 125.0
    out = codec.decode(latent.requires_grad_())
    assert out.shape == (3, 16_000)
    out.pow(2).sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0  # decode is differentiable in the latent
    with pytest.raises(ValueError, match=r"latent must be \[B, 16, frames\]"):
        codec.decode(torch.zeros(1, 8, 10))
    with pytest.raises(ValueError, match="NaN"):
        codec.encode(torch.full((16_000,), float("nan")))


def test_codec_loss_is_zero_only_for_a_perfect_copy():
    wave = torch.randn(2, 16_000) * 0.1
    assert float(codec_loss(wave, wave)) < 1e-4
    assert float(codec_loss(wave, 0.5 * wave)) > 0.1
    shifted = torch.roll(wave, 37, dims=-1)  # same magnitudes, different phases: only the complex term sees it
    assert float(codec_loss(wave, shifted)) > 0.5


def test_shipped_card_and_weights(shipped):
    card = zoo.card("tiny-codec")
    assert card["sha256"] == shipped.weights_sha256
    # the size, recomputed: the weights file on disk is the card's size, under 10 MiB, and holds the model's
    # parameters (float32: at least 4 bytes each); the training time is a record of the run, not recomputable
    size = (zoo.MODELS_DIR / card["file"]).stat().st_size
    assert size == card["size_bytes"] and size <= 10 * 2**20
    assert sum(p.numel() * p.element_size() for p in shipped.parameters()) <= size
    assert shipped.latent_channels == card["config"]["latent_channels"]
    assert card["training"]["seconds"] < 20 * 60


def test_shipped_quality_on_held_out_clips(shipped):
    """Recomputed from the shipped weights on the test clips: it must match the card, and beat a
    codec that returns silence (LSD of silence against speech is tens of dB)."""
    card = zoo.card("tiny-codec")["quality"]
    quality = recipes.codec_quality(shipped)
    for name in ("keywords", "synth"):
        assert quality[name]["lsd"] == pytest.approx(card[name]["lsd"], abs=0.05), name
        assert quality[name]["si_sdr"] == pytest.approx(card[name]["si_sdr"], abs=0.1), name
        assert quality[name]["lsd"] < 10.0 and quality[name]["si_sdr"] > 3.0, name
    silent = reconstruction_quality(SilentCodec(), recipes.codec_clips("test")["keywords"])
    assert silent["lsd"] > 3 * quality["keywords"]["lsd"]


class SilentCodec:
    name, sample_rate, latent_channels, frame_rate = "silent", 16_000, 1, 16_000.0

    def encode(self, wave, sample_rate=None):
        return torch.atleast_2d(wave)[:, None] * 0

    def decode(self, latent):
        return latent[:, 0]
