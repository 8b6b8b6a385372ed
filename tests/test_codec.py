"""The Codec protocol, reconstruction quality, and the EnCodec 24 kHz adapter built offline with random weights.

The EnCodec tests build ``transformers.EncodecModel(EncodecConfig())``, the real 24 kHz
architecture, once per module; nothing is downloaded. They are skipped where transformers
(the full profile's extra) is not installed; the protocol and quality tests run everywhere.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from audiox.models.codec import Codec, CodecBase, log_spectral_distance, reconstruct, reconstruction_quality

SR = 24_000


class IdentityCodec:
    """A test double: the latent is the waveform itself, ``[B, T] -> [B, 1, T]``, and back."""

    name, sample_rate, latent_channels, frame_rate = "identity", SR, 1, float(SR)

    def encode(self, wave, sample_rate=None):
        return torch.atleast_2d(wave)[:, None]

    def decode(self, latent):
        return latent[:, 0]


class NoisyCodec(IdentityCodec):
    """The identity plus white noise at -20 dB of the clip's level (seeded)."""

    name = "noisy"

    def decode(self, latent):
        wave = latent[:, 0]
        noise = torch.randn(wave.shape, generator=torch.Generator().manual_seed(0))
        return wave + 0.1 * wave.std(dim=-1, keepdim=True) * noise


def tone(seconds=1.0, freq=440.0, sr=SR):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers", reason="transformers is not installed (the full profile's extra)")


@pytest.fixture(scope="module")
def codec(transformers):
    from audiox.models.encodec import EncodecCodec

    return EncodecCodec.from_config()


@pytest.fixture(scope="module")
def clips():
    g = torch.Generator().manual_seed(1)
    return 0.1 * torch.randn(2, SR, generator=g)


# ---- the protocol and reconstruction quality ------------------------------------------------------


def test_test_doubles_are_codecs():
    assert isinstance(IdentityCodec(), Codec)
    assert not isinstance(object(), Codec)


def test_reconstruct_crops_and_pads_to_input_length():
    class Longer(IdentityCodec):
        def decode(self, latent):
            return torch.nn.functional.pad(latent[:, 0], (0, 7))

    class Shorter(IdentityCodec):
        def decode(self, latent):
            return latent[:, 0, :-5]

    wave = torch.randn(2, 100)
    assert torch.equal(reconstruct(Longer(), wave), wave)
    short = reconstruct(Shorter(), wave)
    assert short.shape == wave.shape and torch.equal(short[:, -5:], torch.zeros(2, 5))


def test_quality_of_identity_is_perfect_and_noise_lowers_it():
    waves = torch.stack([tone(freq=f) for f in (220.0, 440.0, 880.0)]) + 0.01 * torch.randn(3, SR)
    perfect = reconstruction_quality(IdentityCodec(), waves, batch_size=2)
    assert perfect["clips"] == 3
    assert perfect["si_sdr"] > 60
    assert abs(perfect["lsd"]) < 1e-4
    noisy = reconstruction_quality(NoisyCodec(), waves, batch_size=2)
    assert 15 < noisy["si_sdr"] < 25  # noise at -20 dB: SI-SDR close to 20 dB
    assert noisy["lsd"] > 1.0


def test_quality_resamples_and_validates():
    with pytest.warns(UserWarning, match="resampling 16000 Hz -> 24000 Hz"):
        quality = reconstruction_quality(IdentityCodec(), tone(sr=16_000)[None], sample_rate=16_000)
    assert quality["si_sdr"] > 60
    with pytest.raises(ValueError, match="silent"):
        reconstruction_quality(IdentityCodec(), torch.zeros(2, SR))
    with pytest.raises(ValueError, match="batch_size"):
        reconstruction_quality(IdentityCodec(), tone()[None], batch_size=0)


def test_log_spectral_distance_of_a_gain():
    x = torch.randn(2, SR, generator=torch.Generator().manual_seed(0))
    # float32 log ratios averaged over 32k bins: equal to 6.0206 dB within 1e-3 dB, not to the last bit
    expected = torch.full((2,), 20 * torch.log10(torch.tensor(2.0)))
    assert torch.allclose(log_spectral_distance(2 * x, x), expected, atol=1e-3, rtol=0)


# ---- EnCodec 24 kHz, random weights ---------------------------------------------------------------


def test_encodec_is_a_codec_with_its_shapes(codec):
    assert isinstance(codec, Codec) and isinstance(codec, CodecBase)
    assert (codec.sample_rate, codec.latent_channels, codec.frame_rate, codec.n_codebooks) == (SR, 128, 75.0, 2)
    assert not codec.model.training
    assert not any(p.requires_grad for p in codec.parameters())
    assert sum(p.numel() for p in codec.parameters()) == pytest.approx(14.9e6, rel=0.01)
    codes = codec.encode_codes(tone())
    assert codes.shape == (1, 2, 75) and codes.dtype == torch.long
    assert codes.unique().numel() > 2  # random codebooks, so the frames do not all get one code
    latent = codec.dequantize(codes)
    assert latent.shape == (1, 128, 75)
    assert codec.decode(latent).shape == (1, SR)


def test_partial_hop_rounds_up(codec):
    wave = tone(seconds=0.5)[: SR // 2 + 100]  # 12,100 samples: 37.8 hops of 320
    latent = codec.encode(wave)
    assert latent.shape == (1, 128, 38)
    assert codec.decode(latent).shape == (1, 38 * 320)
    assert codec.reconstruct(wave).shape == (1, wave.shape[-1])


def test_batch_matches_single_clips(codec, clips):
    batch_codes = codec.encode_codes(clips)
    batch = codec.dequantize(batch_codes)
    assert batch.shape == (2, 128, 75)
    continuous = codec.encode_continuous(clips)
    for i in range(2):
        assert torch.allclose(continuous[i], codec.encode_continuous(clips[i])[0], atol=1e-6)
        # Nearest-neighbour quantisation is discontinuous: rounding that differs between a batch and a
        # single clip (~1e-8) can flip a near-tie between two codewords, and random codebooks, crowded
        # where a random encoder's output lies, have many. Frames whose codes agree have equal latents.
        single_codes = codec.encode_codes(clips[i])
        same = (batch_codes[i] == single_codes[0]).all(dim=0)
        assert same.float().mean() > 0.85
        assert torch.allclose(batch[i][:, same], codec.dequantize(single_codes)[0][:, same], atol=1e-6)
    assert torch.allclose(codec.decode(batch)[1], codec.decode(batch[1:])[0], atol=1e-5)


def test_reconstruction_quality_runs_on_encodec(codec, clips):
    quality = reconstruction_quality(codec, clips[:, : SR // 2])
    assert quality["clips"] == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in (quality["si_sdr"], quality["lsd"]))
    assert codec.reconstruct(clips[0, : SR // 2]).shape == (1, SR // 2)


def test_latent_is_the_dequantised_codes_and_decode_matches_hf(codec, clips):
    model = codec.model
    with torch.no_grad():
        out = model.encode(clips[:, None], bandwidth=1.5, return_dict=True)
        assert out.audio_codes.shape == (1, 2, 2, 75)  # [chunks, B, n_q, F]
        assert out.audio_scales == [None]  # the 24 kHz model does not normalise loudness
        assert torch.equal(codec.encode_codes(clips), out.audio_codes[0])
        latent = codec.encode(clips)
        assert torch.allclose(latent, model.quantizer.decode(out.audio_codes[0].transpose(0, 1)))
        hf_audio = model.decode(out.audio_codes, out.audio_scales, return_dict=True).audio_values
        assert hf_audio.shape == (2, 1, SR)
        assert torch.allclose(codec.decode(latent), hf_audio[:, 0], atol=1e-6)
        # the latent approximates the encoder's output with two codebook vectors
        continuous = codec.encode_continuous(clips)
        assert continuous.shape == latent.shape
        assert (latent - continuous).norm() < 0.5 * continuous.norm()


def test_gradient_reaches_the_latent(codec, clips):
    latent = codec.encode(clips[:1]).requires_grad_()
    codec.decode(latent).pow(2).sum().backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0


def test_straight_through_gradient_reaches_the_wave(codec, clips):
    """Input-space attribution needs d latent / d wave: the value stays the de-quantised latent, the gradient
    is the continuous encoder's (straight-through)."""
    wave = clips[:1].clone().requires_grad_()
    latent = codec.encode(wave)
    assert torch.allclose(latent.detach(), codec.encode(clips[:1]))
    latent.sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0


def test_input_validation(codec):
    with pytest.warns(UserWarning, match="resampling 16000 Hz -> 24000 Hz"):
        latent = codec.encode(tone(sr=16_000), sample_rate=16_000)
    assert latent.shape == (1, 128, 75)
    pair = torch.stack([tone(0.5), tone(0.5, freq=330.0)])
    assert codec.encode(pair).shape == (2, 128, 38)  # [2, T] is a batch of two mono clips
    bad = tone()
    bad[100] = float("nan")
    with pytest.raises(ValueError, match="nan_to_num"):
        codec.encode(bad)
    silence = codec.encode(torch.zeros(SR))  # a codec encodes silence: the latent of silence is a baseline
    assert silence.shape == (1, 128, 75) and torch.isfinite(silence).all()
    with pytest.raises(ValueError, match="pad_to"):
        codec.encode(tone(seconds=0.1))
    with pytest.raises(ValueError, match=r"\[batch, 128, frames\]"):
        codec.decode(torch.zeros(128, 75))


def test_bandwidth_and_model_checks(transformers, codec):
    from audiox.models.encodec import EncodecCodec

    with pytest.raises(ValueError, match="1.5"):
        EncodecCodec(codec.model, bandwidth=2.0)
    assert EncodecCodec(codec.model, bandwidth=6.0).n_codebooks == 8
    # the 48 kHz model encodes overlapping 1-s chunks and normalises loudness: refused before anything is built
    config_48k = transformers.EncodecConfig(sampling_rate=48_000, chunk_length_s=1.0, overlap=0.01, normalize=True)
    with pytest.raises(ValueError, match="24 kHz"):
        EncodecCodec(SimpleNamespace(config=config_48k))


def test_load_encodec_without_network_says_how_to_go_on(transformers, monkeypatch):
    from audiox.models import encodec

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.")

    monkeypatch.setattr(transformers.EncodecModel, "from_pretrained", offline)
    with pytest.raises(ValueError) as err:
        encodec.load_encodec(device="cpu")
    message = str(err.value)
    assert "facebook/encodec_24khz" in message
    assert "network once" in message and "Hugging Face cache" in message
    assert "AUDIOX_PROFILE=offline" in message


# ---- the full profile's latent explanation path, offline: EnCodec (random weights) + a latent classifier ------


def test_latent_explanation_through_encodec(codec, clips):
    """Notebook 05's full-profile path end to end on the real EnCodec architecture: explain in the 128-channel
    de-quantised latent, keep / remove, decode at 24 kHz, and fidelity in the input space, whose attributions need
    the straight-through gradient past the quantiser."""
    from audiox import latent
    from audiox.models.classifiers import LatentClassifier

    torch.manual_seed(0)
    classifier = LatentClassifier(["zero", "one"], latent_channels=codec.latent_channels, width=8).eval()
    out = latent.LatentAttribution(classifier, codec, "integrated_gradients", baseline="noise", n_steps=4).explain(clips)
    assert out.latent.shape == out.scores.shape == (len(clips), 128, 75)
    assert torch.isfinite(out.scores).all() and out.scores.abs().sum() > 0
    assert [tuple(w.shape) for w in (out.clip, out.wave, out.residual)] == [(len(clips), SR)] * 3
    for mode in ("keep", "remove"):
        curve = latent.input_fidelity(codec, classifier, clips, (0.0, 0.5, 1.0), mode, n_steps=4)
        assert curve.shape == (3,) and ((curve >= 0) & (curve <= 1)).all()
    assert latent.input_fidelity(codec, classifier, clips, (1.0,), "keep", n_steps=4)[0] == 1.0  # all bins kept
