"""audiox.gradients: the gradient maps as explainers, [0, 1] masks on the linear magnitude, for CLAP and a classifier."""

import pytest
import torch

from audiox import audio, gradients
from audiox.explain import Explanation
from audiox.models.clap import TinyClap
from audiox.models.classifiers import CNNClassifier
from audiox.zeroshot import ZeroShotClassifier, class_embeddings

NAMES = list(gradients.GRADIENT_MAPS)
FAST = {"Integrated Gradients": {"n_steps": 8}, "SmoothGrad": {"n_samples": 4}}  # shapes and ranges only


def make(name, model, **options):
    return gradients.GRADIENT_MAPS[name](model, **{**FAST.get(name, {}), **options})


@pytest.fixture(scope="module")
def clap():
    torch.manual_seed(0)
    return TinyClap().eval()


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(1)
    return CNNClassifier(["siren", "bird", "rain"], channels=(4, 8, 8, 8)).eval()


@pytest.fixture(scope="module")
def waves():
    torch.manual_seed(2)
    return torch.randn(2, 4_000) * torch.tensor([[0.1], [1.0]])  # two loudnesses, 32 frames


@pytest.fixture(scope="module")
def magnitude(clap, waves):
    return clap.spectrogram(waves)[0]


@pytest.fixture(scope="module")
def zero_shot(clap):
    return ZeroShotClassifier(clap, ["siren", "bird chirping", "rain"])


def _model(kind, classifier, zero_shot):
    return zero_shot if kind == "clap" else classifier


@pytest.mark.parametrize("kind", ["clap", "classifier"])
@pytest.mark.parametrize("name", NAMES)
def test_every_gradient_map_gives_a_mask_per_clip_in_unit_range(name, kind, classifier, zero_shot, waves):
    out = make(name, _model(kind, classifier, zero_shot)).explain(waves, torch.tensor([0, 2]))
    assert isinstance(out, Explanation) and out.method == name
    assert out.mask.shape == out.magnitude.shape == out.scores.shape and torch.isfinite(out.mask).all()
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert out.mask.amax(dim=(1, 2)).tolist() == [1.0, 1.0]
    assert out.target.tolist() == [0, 2]
    # what is heard is the mask applied to the clip through the one seam; explanation and residual make the clip,
    # and the explanation's energy sits where the mask is high, the residual's where it is low
    wave, residual = audio.listenable(out.magnitude, out.phase, out.mask, length=out.clip.shape[-1])
    assert torch.equal(out.wave, wave) and torch.equal(out.residual, residual)
    torch.testing.assert_close(out.wave + out.residual, out.clip, atol=1e-4, rtol=0)
    where = lambda x: (audio.stft(x).abs().square() * out.mask).sum((1, 2)) / audio.stft(x).abs().square().sum((1, 2))  # noqa: E731
    assert (where(out.wave) > where(out.residual)).all()


def test_zero_shot_logits_are_scaled_cosines(clap, zero_shot, magnitude):
    text = class_embeddings(clap, ["siren", "bird chirping", "rain"])
    with torch.no_grad():
        expected = clap.logit_scale * clap.spec_to_embedding(magnitude) @ text.T
        assert torch.allclose(zero_shot.spec_to_logits(magnitude), expected, atol=1e-5)
    assert not zero_shot.text_embeddings.requires_grad


def test_saliency_is_the_normalised_absolute_gradient(classifier, magnitude):
    target = torch.tensor([1, 0])
    x = magnitude.clone().requires_grad_()
    (grad,) = torch.autograd.grad(classifier.spec_to_logits(x).gather(1, target[:, None]).sum(), x)
    saliency = gradients.Saliency(classifier)
    assert torch.allclose(saliency.attribute(magnitude, target), grad, rtol=1e-4, atol=1e-8)
    mask, scores, _ = saliency.masks(magnitude, target)
    expected = grad.abs() / grad.abs().amax(dim=(1, 2), keepdim=True)
    assert torch.allclose(mask, expected, atol=1e-6) and torch.allclose(scores, grad, rtol=1e-4, atol=1e-8)


def test_integrated_gradients_are_complete(zero_shot, magnitude):
    target = torch.tensor([0, 1])
    raw = gradients.IntegratedGradients(zero_shot, n_steps=128).attribute(magnitude, target)
    with torch.no_grad():
        gap = (zero_shot.spec_to_logits(magnitude) - zero_shot.spec_to_logits(torch.zeros_like(magnitude)))
    assert torch.allclose(raw.sum(dim=(1, 2)), gap.gather(1, target[:, None])[:, 0], rtol=0.02, atol=1e-3)


def test_smoothgrad_noise_is_relative_to_each_clip_never_negative_and_seeded(classifier, magnitude):
    seen = []

    class Spy(torch.nn.Module):  # the classifier, recording the smallest bin it is shown
        def __init__(self):
            super().__init__()
            self.inner, self.classes, self.n_classes = classifier, classifier.classes, classifier.n_classes

        def spec_to_logits(self, m):
            seen.append(float(m.detach().min()))
            return self.inner.spec_to_logits(m)

    target = torch.tensor([2, 2])
    smooth = gradients.SmoothGrad(Spy(), n_samples=3, stdev=0.5).attribute(magnitude, target)
    assert min(seen) >= 0  # noise of half the spread pushes many bins below zero before the clamp
    torch.manual_seed(123)
    state = torch.get_rng_state()
    again = gradients.SmoothGrad(Spy(), n_samples=3, stdev=0.5).attribute(magnitude, target)
    assert torch.equal(smooth, again) and torch.equal(torch.get_rng_state(), state)  # seeded, caller's RNG untouched
    other = gradients.SmoothGrad(Spy(), n_samples=3, stdev=0.5, seed=1).attribute(magnitude, target)
    assert not torch.allclose(smooth, other)
    # with almost no noise, SmoothGrad is Saliency, for the quiet clip and the loud one alike
    quiet = gradients.SmoothGrad(classifier, n_samples=2, stdev=1e-7).attribute(magnitude, target)
    assert torch.allclose(quiet, gradients.Saliency(classifier).attribute(magnitude, target), rtol=1e-2, atol=1e-6)
    assert not torch.allclose(smooth, quiet, rtol=1e-2, atol=1e-6)


def test_the_cpu_noise_tunnel_is_captums_on_a_cpu_bit_for_bit(classifier, magnitude):
    """Our NoiseTunnel draws its noise on the CPU (for a GPU input too); on a CPU that is captum's own draw."""
    import numpy as np
    from captum import attr

    target = torch.tensor([0, 2])

    def run(tunnel_class, seed=3):
        torch.manual_seed(seed)
        tunnel = tunnel_class(attr.Saliency(classifier.spec_to_logits))
        return tunnel.attribute(magnitude.clone().requires_grad_(), nt_type="smoothgrad", nt_samples=3, stdevs=0.2,
                                target=target, abs=False)

    assert torch.equal(run(gradients.NoiseTunnel), run(attr.NoiseTunnel))

    def shap(ours):
        torch.manual_seed(5)
        np.random.seed(5)
        inputs, baselines = magnitude.clone().requires_grad_(), torch.zeros_like(magnitude[:1])
        if ours:
            return gradients.gradient_shap(classifier.spec_to_logits, inputs, baselines, target, n_samples=3, stdevs=0.1)
        return attr.GradientShap(classifier.spec_to_logits).attribute(inputs, baselines, target=target, n_samples=3,
                                                                      stdevs=0.1)

    assert torch.equal(shap(True), shap(False))


def test_gradcam_is_the_lifted_rectified_map_of_the_last_block(classifier, magnitude):
    target = torch.tensor([0, 1])
    kept = {}
    hook = classifier.cnn.blocks[-1].register_forward_hook(lambda module, inputs, out: kept.update(act=out))
    try:
        logits = classifier.spec_to_logits(magnitude)
    finally:
        hook.remove()
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), kept["act"])
    by_hand = (grad.mean(dim=(2, 3), keepdim=True) * kept["act"]).sum(dim=1)  # [B, bands, frames]

    gradcam = gradients.GradCAM(classifier)  # the layer, sample rate and n_fft come from the model
    cam = gradcam.layer_map(magnitude, target)
    assert cam.shape == (2, 8, 4) and torch.allclose(cam, by_hand.detach(), atol=1e-6)
    lifted = audio.mel_to_linear(by_hand.detach().relu(), classifier.sample_rate, classifier.n_fft, n_frames=32)
    mask, scores, _ = gradcam.masks(magnitude, target)
    assert torch.allclose(mask, gradients.to_mask(lifted), atol=1e-6)
    assert scores.shape == magnitude.shape


def test_gradcam_of_a_zero_shot_clap_reads_its_audio_encoder_and_follows_a_copy(clap, zero_shot):
    import copy

    gradcam = gradients.GradCAM(zero_shot)
    assert gradcam.layer is clap.audio_encoder.blocks[-1]
    twin = copy.deepcopy(zero_shot)
    assert gradcam.on(twin).layer is twin.clap.audio_encoder.blocks[-1]


@pytest.mark.parametrize("name", NAMES)
def test_the_target_matters(name, zero_shot, magnitude):
    explainer = make(name, zero_shot)
    first = explainer.masks(magnitude, torch.tensor([0, 0]))[0]
    second = explainer.masks(magnitude, torch.tensor([1, 1]))[0]
    assert (first - second).abs().amax() > 1e-3


def test_the_model_is_left_as_it_was(magnitude):
    torch.manual_seed(6)
    model = CNNClassifier(["siren", "bird"], channels=(4, 8, 8, 8)).train()
    model.cnn.proj[0].weight.requires_grad_(False)  # a flag set by the caller must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm running statistics too
    for name in NAMES:
        make(name, model).attribute(magnitude, 1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()].count(False) == 1
    assert not model.cnn.proj[0].weight.requires_grad


def test_the_callers_magnitude_is_untouched(classifier, magnitude):
    gradients.Saliency(classifier).attribute(magnitude, 0)
    assert not magnitude.requires_grad and magnitude.grad is None


def test_to_mask_handles_clips_with_nothing_to_keep():
    mask = gradients.to_mask(torch.stack([torch.zeros(3, 4), -torch.ones(3, 4), torch.full((3, 4), 2.0)]))
    assert mask[:2].eq(0).all() and mask[2].eq(1).all()
    assert gradients.to_mask(-torch.ones(1, 3, 4), mode="absolute").eq(1).all()


@pytest.mark.parametrize(
    "bad, words",
    [
        (lambda m: m[0], "[B, F, T]"),
        (lambda m: -m, "negative"),
        (lambda m: m.clone().index_fill_(2, torch.tensor([3]), float("nan")), "NaN"),
    ],
)
def test_bad_magnitudes_are_refused(bad, words, classifier, magnitude):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        gradients.Saliency(classifier).attribute(bad(magnitude), 0)


def test_bad_targets_models_and_modes_are_refused(classifier, magnitude):
    with pytest.raises(ValueError, match="one class per clip"):
        gradients.Saliency(classifier).attribute(magnitude, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="one class per clip"):
        gradients.Saliency(classifier).attribute(magnitude, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        gradients.Saliency(classifier).attribute(magnitude, 3)
    with pytest.raises(ValueError, match="did you mean"):
        gradients.Saliency(classifier).attribute(magnitude, "bridd")
    with pytest.raises(ValueError, match="mode"):
        gradients.Saliency(classifier, mode="signed")
    with pytest.raises(ValueError, match="spec_to_logits"):
        gradients.Saliency(lambda m: m)
    class Bare(torch.nn.Module):  # a model without a LogMelCNN: GradCAM must be told which layer
        def spec_to_logits(self, m):
            return m.mean(dim=(1, 2))[:, None]

    with pytest.raises(ValueError, match="layer="):
        gradients.GradCAM(Bare())
