"""LaionClap: the real laion_clap architecture (HTSAT-tiny + RoBERTa), built offline with random weights.

Nothing here downloads. laion_clap fetches tokenizers when imported (BERT, RoBERTa and BART,
at module level in ``laion_clap.training.data``) and RoBERTa's weights when built; here
``from_pretrained`` returns a real ``RobertaTokenizer`` over a tiny local vocabulary and a
``RobertaModel`` with roberta-base's architecture and random weights. The adapter code under
test is the one a Colab user runs with network.
"""

from __future__ import annotations

import argparse
import contextlib
import zipfile

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="transformers is not installed (the full profile's extra)")

from audiox import audio
from audiox.data.hub import DownloadError
from audiox.models import laion
from audiox.models.clap import Clap
from audiox.data.hub import sha256sum
from audiox.models.laion import LaionClap, load_laion_clap, load_state_dict, repeat_pad

SR = 48_000

# roberta-base's architecture (RobertaConfig() defaults differ: 512 positions, 2 token types, eps 1e-12)
ROBERTA_BASE = dict(
    vocab_size=50265,
    max_position_embeddings=514,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
)


def stand_in_tokenizer() -> transformers.RobertaTokenizer:
    """A real byte-level BPE RobertaTokenizer whose vocabulary is the special tokens plus single letters."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for char in "abcdefghijklmnopqrstuvwxyz\u0120":  # \u0120 (Ġ) is how byte-level BPE writes a space
        vocab[char] = len(vocab)
    return transformers.RobertaTokenizer(vocab=vocab, merges=[])


@contextlib.contextmanager
def offline_hub():
    """Route every hub fetch laion_clap makes to a local stand-in (without this, importing it waits on the network)."""
    tokenizer = stand_in_tokenizer()
    roberta = transformers.RobertaConfig(**ROBERTA_BASE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        for cls in (transformers.BertTokenizer, transformers.RobertaTokenizer, transformers.BartTokenizer):
            mp.setattr(cls, "from_pretrained", classmethod(lambda cls, *a, **k: tokenizer))
        mp.setattr(transformers.RobertaModel, "from_pretrained", classmethod(lambda cls, *a, **k: cls(roberta)))
        yield


with offline_hub():  # importing laion_clap loads three tokenizers from the hub
    pytest.importorskip("laion_clap", reason="laion-clap is not installed (pip install --no-deps laion-clap)")


@pytest.fixture(scope="module")
def clap() -> LaionClap:
    with offline_hub():
        torch.manual_seed(0)
        model = LaionClap(device="cpu")
    # a fresh BatchNorm is the identity in eval mode; give HTSAT's bn0 statistics like a trained one's,
    # so that a path skipping it would show
    bn0 = model.htsat.bn0
    with torch.no_grad():
        bn0.running_mean.uniform_(-60.0, -20.0)
        bn0.running_var.uniform_(50.0, 200.0)
        bn0.weight.uniform_(0.5, 1.5)
        bn0.bias.uniform_(-0.5, 0.5)
    return model


def clip(seconds: float, seed: int, sample_rate: int = SR) -> torch.Tensor:
    """A tone with vibrato plus a little noise: non-silent, different for each seed."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    freq = 300.0 + 200.0 * seed
    wave = 0.3 * torch.sin(2 * torch.pi * freq * t + 3 * torch.sin(2 * torch.pi * 5 * t))
    return wave + 0.02 * torch.randn(t.shape, generator=gen)


@pytest.fixture(scope="module")
def waves() -> torch.Tensor:
    # 3-s clips: LAION repeat-pads them three times, then zero-pads the last second
    return torch.stack([clip(3.0, seed=1), clip(3.0, seed=2)])


@pytest.fixture(scope="module")
def embeddings(clap, waves) -> torch.Tensor:
    with torch.no_grad():
        return clap.spec_to_embedding(clap.spectrogram(waves)[0])


def test_is_a_clap_with_laion_settings(clap):
    assert isinstance(clap, Clap)
    assert (clap.sample_rate, clap.n_fft, clap.hop_length, clap.embed_dim) == (48_000, 1024, 480, 512)
    htsat = clap.htsat.spectrogram_extractor.stft
    assert (htsat.n_fft, htsat.hop_length, htsat.win_length) == (clap.n_fft, clap.hop_length, clap.n_fft)
    assert not clap.training
    assert clap.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)  # LAION's initial value


def test_spectrogram_is_htsat_front_end(clap, waves):
    magnitude, phase = clap.spectrogram(waves)
    assert magnitude.shape == phase.shape == (2, 513, 1001)
    with torch.no_grad():
        power = clap.htsat.spectrogram_extractor(repeat_pad(waves, 480_000))  # [B, 1, T, F], conv STFT
    torch.testing.assert_close(magnitude.pow(2), power[:, 0].transpose(1, 2), rtol=1e-3, atol=1e-3)


def test_spec_to_embedding_equals_laion_audio_embedding(clap, waves, embeddings):
    assert embeddings.shape == (2, 512)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))
    with torch.no_grad():
        reference = clap.laion.get_audio_embedding_from_data(waves, use_tensor=True)
    assert (embeddings - reference).abs().max() < 1e-4
    assert not torch.allclose(embeddings[0], embeddings[1], atol=1e-3)  # the clips are told apart


def test_embed_audio_is_deterministic_and_batch_consistent(clap, waves, embeddings):
    with torch.no_grad():
        batch = clap.embed_audio(waves)
        first, second = clap.embed_audio(waves[0]), clap.embed_audio(waves[1])
    assert torch.equal(batch, embeddings)  # same input, same bits: no random crop, no dropout
    torch.testing.assert_close(torch.cat([first, second]), batch, rtol=0, atol=1e-5)


def test_gradient_reaches_the_masked_magnitude(clap, waves):
    magnitude = clap.spectrogram(waves[:1])[0]
    mask = torch.full_like(magnitude, 0.5, requires_grad=True)
    embedding = clap.spec_to_embedding(magnitude * mask)
    (grad,) = torch.autograd.grad(embedding[0, :8].sum(), mask)  # only w.r.t. the mask: the model stays clean
    per_bin = grad.abs().sum(dim=(0, 2))
    freqs = torch.arange(513) * SR / 1024
    assert torch.isfinite(grad).all()
    # through LAION's own mel filterbank (50 Hz - 14 kHz): every bin inside matters, none above
    assert (per_bin[(freqs > 100) & (freqs < 13_000)] > 0).all()
    assert (per_bin[freqs > 14_100] == 0).all()


def test_audio_features_shapes_and_final_map(clap, waves, embeddings):
    with torch.no_grad():
        maps = clap.audio_features(waves[0])
    assert [tuple(m.shape) for m in maps] == [(1, 192, 8, 128), (1, 384, 4, 64), (1, 768, 2, 32), (1, 768, 2, 32)]
    # the last map is what HTSAT pools into the embedding: mean over (F', T'), project, normalise
    with torch.no_grad():
        pooled = clap.laion.model.audio_projection(maps[-1].mean(dim=(2, 3)))
    torch.testing.assert_close(torch.nn.functional.normalize(pooled, dim=-1), embeddings[:1], rtol=0, atol=1e-5)


def test_resamples_16k_with_a_warning(clap):
    wave16 = clip(2.0, seed=3, sample_rate=16_000)
    with pytest.warns(UserWarning, match="16000 Hz -> 48000 Hz"), torch.no_grad():
        embedding = clap.embed_audio(wave16, sample_rate=16_000)
    with torch.no_grad():
        expected = clap.embed_audio(audio.resample(wave16, 16_000, SR))
    assert embedding.shape == (1, 512)
    torch.testing.assert_close(embedding, expected, rtol=0, atol=1e-6)


def test_rejects_clips_longer_than_ten_seconds(clap):
    with pytest.raises(ValueError, match="at most 10 s"):
        clap.embed_audio(clip(10.5, seed=1))
    with pytest.raises(ValueError, match="at most 10 s"):
        clap.spectrogram(clip(10.5, seed=1))


def test_spec_to_embedding_rejects_other_shapes(clap):
    with pytest.raises(ValueError, match=r"clap\.spectrogram"):
        clap.spec_to_embedding(torch.rand(1, 513, 300))  # an un-padded 3-s clip
    with pytest.raises(ValueError, match="513"):
        clap.spec_to_embedding(torch.rand(513, 1001))


def test_repeat_pad_matches_laion():
    from laion_clap.training.data import get_audio_features

    wave = torch.randn(130_001)
    sample = get_audio_features({}, wave, 480_000, "rand_trunc", "repeatpad", {})
    assert torch.equal(repeat_pad(wave[None], 480_000)[0], sample["waveform"])


def test_embed_text(clap):
    prompts = ["a dog barking", "a siren wailing", "rain on a roof"]
    with torch.no_grad():
        text = clap.embed_text(prompts)
        one = clap.embed_text(prompts[1])  # a bare string is one prompt, as in TinyClap
    assert text.shape == (3, 512)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))
    assert not torch.allclose(text[0], text[1], atol=1e-3)
    torch.testing.assert_close(one, text[1:2], rtol=0, atol=1e-5)
    from audiox import zeroshot

    assert zeroshot.logits(clap, clap.embed_audio(torch.randn(SR) * 0.1), text).shape == (1, 3)
    with pytest.raises(ValueError, match="non-empty"):
        clap.embed_text([])
    with pytest.raises(ValueError, match="non-empty"):
        clap.embed_text(["a dog", "  "])


def test_checkpoint_round_trip(clap, waves, embeddings, tmp_path):
    state = clap.laion.model.state_dict()
    # LAION's format: DDP prefixes, the position_ids older transformers kept, optimizer state with numpy floats
    saved = {"module." + k: v for k, v in state.items()}
    saved["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    path = tmp_path / "630k-audioset-best.pt"
    torch.save({"epoch": 3, "state_dict": saved, "optimizer": {"param_groups": [{"lr": np.float64(1e-4)}]}}, path)

    torch.manual_seed(1)  # the fresh model's random weights differ from the fixture's
    with offline_hub():
        loaded = load_laion_clap("630k-audioset-best", checkpoint=path, device="cpu")
    assert loaded.name == "laion-clap/630k-audioset-best"
    # a local file is keyed by its own digest, so cached embeddings never outlive the weights
    assert loaded.weights_sha256 == sha256sum(path)
    for key, value in loaded.laion.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with torch.no_grad():
        assert torch.equal(loaded.spec_to_embedding(loaded.spectrogram(waves)[0]), embeddings)
        assert torch.equal(loaded.embed_text(["a dog barking"]), clap.embed_text(["a dog barking"]))


def test_load_state_dict_reads_numpy1_optimizer_state_safely(tmp_path):
    # LAION's checkpoints were pickled under numpy 1, which names its scalars numpy.core.multiarray.scalar
    saved, old = tmp_path / "numpy2.pt", tmp_path / "numpy1.pt"
    torch.save({"state_dict": {"module.w": torch.ones(2)}, "optimizer": {"lr": np.float64(1e-4)}}, saved)
    renamed = 0
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(old, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            renamed += data.count(b"numpy._core.multiarray")
            zout.writestr(item, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert renamed == 1
    for path in (saved, old):
        assert list(load_state_dict(path)) == ["w"]


def test_load_state_dict_refuses_code_unless_trusted(tmp_path):
    path = tmp_path / "with-args.pt"
    torch.save({"state_dict": {"module.w": torch.ones(2)}, "args": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(ValueError, match="trusted=True"):
        load_state_dict(path)
    assert list(load_state_dict(path, trusted=True)) == ["w"]
    with pytest.raises(ValueError, match="does not exist"):
        load_state_dict(tmp_path / "missing.pt")


def test_checkpoint_names():
    assert laion.checkpoint_info("music_audioset_epoch_15_esc_90.14").amodel == "HTSAT-base"
    assert laion.checkpoint_info("630k-audioset-best.pt").url.startswith("https://huggingface.co/lukewys/laion_clap/")
    with pytest.raises(ValueError, match="fusion"):
        laion.checkpoint_info("630k-audioset-fusion-best")
    with pytest.raises(ValueError, match="630k-best"):
        laion.checkpoint_info("nope")


def test_failed_download_leaves_nothing_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    monkeypatch.setattr(laion, "_HF_BASE", (tmp_path / "nowhere").as_uri() + "/")  # every table URL now fails
    with pytest.raises(DownloadError, match="630k-best.pt"):
        load_laion_clap("630k-best")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_lmac_decoder_and_gradient_maps_run_on_laion_clap(clap, waves):
    """LMAC-ZS and the gradient maps need only the Clap contract: they run on the real LAION-CLAP
    architecture (random weights) as on tiny-clap, and give masks on its linear STFT grid."""
    from audiox import gradients, lmac
    from audiox.zeroshot import ZeroShotClassifier

    decoder = lmac.MaskDecoder.for_clap(clap, width=8)
    clips = lmac.encode(clap, waves[:2])
    text = clap.embed_text(["a dog barking", "rain"]).detach()
    masks = lmac.masks_for(decoder, clips, text)
    assert masks.shape == (2, 2, *clips.magnitude.shape[-2:]) and ((masks >= 0) & (masks <= 1)).all()
    loss, _ = lmac.lmac_loss(clap, decoder, clips, text, prompts_per_clip=2, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in decoder.parameters())
    model = ZeroShotClassifier(clap, ["dog barking", "rain"])
    saliency = gradients.Saliency(model).explain(waves[:2], [0, 1])
    assert saliency.mask.shape == clips.magnitude.shape
    out = lmac.LMACZS(model, decoder).explain(waves[:2], "a dog barking")
    assert out.mask.shape == clips.magnitude.shape and out.target_names == ["a dog barking"] * 2
