"""audiox.baselines: gradient baselines as [0, 1] masks on the linear magnitude, for CLAP and a classifier alike."""

import pytest
import torch

from audiox import audio, baselines
from audiox.models.clap import TinyClap
from audiox.models.classifiers import CNNClassifier

NAMES = list(baselines.BASELINES)
FAST = {"Integrated Gradients": {"n_steps": 8}, "SmoothGrad": {"n_samples": 4}}  # shapes and ranges only


@pytest.fixture(scope="module")
def clap():
    torch.manual_seed(0)
    return TinyClap().eval()


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(1)
    return CNNClassifier(["siren", "bird", "rain"], channels=(4, 8, 8, 8)).eval()


@pytest.fixture(scope="module")
def magnitude(clap):
    torch.manual_seed(2)
    wave = torch.randn(2, 4_000) * torch.tensor([[0.1], [1.0]])  # two loudnesses, 32 frames
    return clap.spectrogram(wave)[0]


@pytest.fixture(scope="module")
def zero_shot(clap):
    return baselines.zero_shot_logits(clap, clap.embed_text(["a siren", "a bird chirping", "rain"]))


def _forward(kind, clap, classifier, zero_shot):
    return zero_shot if kind == "clap" else classifier.spec_to_logits


@pytest.mark.parametrize("kind", ["clap", "classifier"])
@pytest.mark.parametrize("name", NAMES)
def test_every_baseline_gives_a_mask_per_clip_in_unit_range(name, kind, clap, classifier, zero_shot, magnitude):
    torch.manual_seed(3)
    forward = _forward(kind, clap, classifier, zero_shot)
    mask = baselines.make_baseline(name, forward, **FAST.get(name, {})).attribute(magnitude, torch.tensor([0, 2]))
    assert mask.shape == magnitude.shape and torch.isfinite(mask).all()
    assert mask.min() >= 0 and mask.max() <= 1
    assert mask.amax(dim=(1, 2)).tolist() == [1.0, 1.0]


def test_zero_shot_logits_are_scaled_cosines(clap, zero_shot, magnitude):
    text = clap.embed_text(["a siren", "a bird chirping", "rain"])
    with torch.no_grad():
        expected = clap.logit_scale * clap.spec_to_embedding(magnitude) @ text.T
        assert torch.allclose(zero_shot(magnitude), expected, atol=1e-5)
    assert not zero_shot.text_embeddings.requires_grad


def test_saliency_is_the_normalised_absolute_gradient(classifier, magnitude):
    target = torch.tensor([1, 0])
    x = magnitude.clone().requires_grad_()
    (grad,) = torch.autograd.grad(classifier.spec_to_logits(x).gather(1, target[:, None]).sum(), x)
    saliency = baselines.Saliency(classifier.spec_to_logits)
    assert torch.allclose(saliency.raw(magnitude, target), grad, rtol=1e-4, atol=1e-8)
    expected = grad.abs() / grad.abs().amax(dim=(1, 2), keepdim=True)
    assert torch.allclose(saliency.attribute(magnitude, target), expected, atol=1e-6)


def test_integrated_gradients_are_complete(zero_shot, magnitude):
    target = torch.tensor([0, 1])
    raw = baselines.IntegratedGradients(zero_shot, n_steps=128).raw(magnitude, target)
    with torch.no_grad():
        gap = (zero_shot(magnitude) - zero_shot(torch.zeros_like(magnitude))).gather(1, target[:, None])[:, 0]
    assert torch.allclose(raw.sum(dim=(1, 2)), gap, rtol=0.02, atol=1e-3)


def test_smoothgrad_noise_is_relative_to_each_clip_and_never_negative(classifier, magnitude):
    seen = []

    def forward(m):  # a plain function works too (the classifier is already in eval mode)
        seen.append(float(m.detach().min()))
        return classifier.spec_to_logits(m)

    target = torch.tensor([2, 2])
    torch.manual_seed(4)
    smooth = baselines.SmoothGrad(forward, n_samples=3, stdev=0.5).raw(magnitude, target)
    assert min(seen) >= 0  # noise of half the spread pushes many bins below zero before the clamp
    # with almost no noise, SmoothGrad is Saliency, for the quiet clip and the loud one alike
    quiet = baselines.SmoothGrad(forward, n_samples=2, stdev=1e-7).raw(magnitude, target)
    assert torch.allclose(quiet, baselines.Saliency(forward).raw(magnitude, target), rtol=1e-2, atol=1e-6)
    assert not torch.allclose(smooth, quiet, rtol=1e-2, atol=1e-6)


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

    gradcam = baselines.GradCAM(classifier.spec_to_logits)  # layer, sample rate and n_fft from the model
    cam = gradcam.layer_map(magnitude, target)
    assert cam.shape == (2, 8, 4) and torch.allclose(cam, by_hand.detach(), atol=1e-6)
    lifted = audio.mel_to_linear(by_hand.detach().relu(), classifier.sample_rate, classifier.n_fft, n_frames=32)
    assert torch.allclose(gradcam.attribute(magnitude, target), baselines.to_mask(lifted), atol=1e-6)
    assert gradcam.raw(magnitude, target).shape == magnitude.shape


def test_gradcam_of_a_zero_shot_clap_reads_its_audio_encoder(clap, zero_shot):
    gradcam = baselines.GradCAM(zero_shot)
    assert gradcam.layer is clap.audio_encoder.blocks[-1]
    assert (gradcam.sample_rate, gradcam.n_fft) == (clap.sample_rate, clap.n_fft)


@pytest.mark.parametrize("name", NAMES)
def test_the_target_matters(name, zero_shot, magnitude):
    explainer = baselines.make_baseline(name, zero_shot, **FAST.get(name, {}))
    torch.manual_seed(5)
    first = explainer.attribute(magnitude, 0)
    torch.manual_seed(5)
    second = explainer.attribute(magnitude, 1)
    assert (first - second).abs().amax() > 1e-3


def test_the_model_is_left_as_it_was(magnitude):
    torch.manual_seed(6)
    model = CNNClassifier(["siren", "bird"], channels=(4, 8, 8, 8)).train()
    model.cnn.proj[0].weight.requires_grad_(False)  # a flag set by the caller must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm running statistics too
    for name in NAMES:
        baselines.make_baseline(name, model.spec_to_logits, **FAST.get(name, {})).attribute(magnitude, 1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()].count(False) == 1
    assert not model.cnn.proj[0].weight.requires_grad


def test_the_callers_magnitude_is_untouched(classifier, magnitude):
    baselines.Saliency(classifier.spec_to_logits).attribute(magnitude, 0)
    assert not magnitude.requires_grad and magnitude.grad is None


def test_to_mask_handles_clips_with_nothing_to_keep():
    mask = baselines.to_mask(torch.stack([torch.zeros(3, 4), -torch.ones(3, 4), torch.full((3, 4), 2.0)]))
    assert mask[:2].eq(0).all() and mask[2].eq(1).all()
    assert baselines.to_mask(-torch.ones(1, 3, 4), mode="absolute").eq(1).all()


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
        baselines.Saliency(classifier.spec_to_logits).attribute(bad(magnitude), 0)


def test_bad_names_targets_and_modes_are_refused(classifier, magnitude):
    with pytest.raises(ValueError, match="known: .*Saliency.*GradCAM"):
        baselines.make_baseline("LIME", classifier.spec_to_logits)
    with pytest.raises(ValueError, match="one class index per clip"):
        baselines.Saliency(classifier.spec_to_logits).attribute(magnitude, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="one class index per clip"):
        baselines.Saliency(classifier.spec_to_logits).attribute(magnitude, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="mode"):
        baselines.Saliency(classifier.spec_to_logits, mode="signed")
    with pytest.raises(ValueError, match="layer="):
        baselines.GradCAM(lambda m: classifier.spec_to_logits(m))
