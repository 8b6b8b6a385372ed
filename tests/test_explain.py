"""The one explanation contract (audiox.explain): every method through it, matched sizes, the random control."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import audiox  # noqa: E402
from audiox import audio, explain  # noqa: E402
from audiox.data.synth import CLASSES, SynthSounds  # noqa: E402
from audiox.models import zoo  # noqa: E402
from audiox.zeroshot import ZeroShotClassifier  # noqa: E402

#: the cheap settings of each method, for shapes and contracts
FAST = {"integrated-gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 2}, "latent": {"n_steps": 2}}
MASK_METHODS = [name for name, entry in explain.EXPLAINERS.items() if entry["verb"] == "explain"]


@pytest.fixture(scope="module")
def waves():
    return SynthSounds("val", n_per_class=1, mixtures=True, snr_db=5.0).waves()[:3]


def _check(out, model, waves):
    assert isinstance(out, explain.Explanation)
    b, t = waves.shape
    assert out.mask.shape == out.magnitude.shape == (b, model.n_fft // 2 + 1, t // model.hop_length + 1)
    assert 0 <= float(out.mask.min()) and float(out.mask.max()) <= 1 and torch.isfinite(out.mask).all()
    assert out.wave.shape == out.residual.shape == out.clip.shape == (b, t)
    torch.testing.assert_close(out.clip, waves, atol=1e-4, rtol=0)
    with torch.no_grad():
        assert out.target.tolist() == model(waves).argmax(-1).tolist()  # the prediction by default
    assert len(out.target_names) == b and out.sample_rate == model.sample_rate


@pytest.mark.parametrize("name", MASK_METHODS)
def test_every_method_explains_the_zero_shot_classifier_through_the_contract(name, zero_shot, waves):
    out = audiox.explainer(name, zero_shot, **FAST.get(name, {})).explain(waves)
    _check(out, zero_shot, waves)
    if name != "latent":  # a mask method: what it keeps and what it leaves out make the clip
        torch.testing.assert_close(out.wave + out.residual, out.clip, atol=1e-4, rtol=0)
        kept, left = audio.listenable(out.magnitude, out.phase, out.mask, length=waves.shape[-1])
        assert torch.equal(out.wave, kept) and torch.equal(out.residual, left)
    small = out.at_size(0.2)
    assert small.mask.unique().tolist() in ([0.0, 1.0], [1.0], [0.0])
    assert abs(float(small.mask.mean()) - 0.2) < 1e-3
    assert out[1].mask.shape[0] == 1 and torch.equal(out[1].mask, out.mask[1:2])


@pytest.mark.parametrize("name", [n for n in MASK_METHODS if n != "lmac-zs"])
def test_every_method_but_lmac_explains_a_closed_set_classifier(name, cnn, waves):
    out = audiox.explainer(name, cnn, **FAST.get(name, {})).explain(waves)
    _check(out, cnn, waves)


def test_lmac_needs_text(cnn):
    with pytest.raises(ValueError, match="ZeroShotClassifier"):
        audiox.explainer("lmac-zs", cnn)


def test_listen_and_plot(zero_shot, waves):
    out = audiox.explainer("gradcam", zero_shot).explain(waves)
    row = out.listen(1)
    assert len(row.children) == 3 and [c.children[0].value for c in row.children][0] == "<b>clip</b>"
    ax = out.plot(1)
    assert "GradCAM" in ax.get_title() and len(ax.figure.axes) == 2  # the overlay and its colour bar
    plt.close(ax.figure)


def test_registry_is_data_and_every_entry_builds():
    assert set(explain.explainers()) == set(explain.EXPLAINERS)
    for entry in explain.EXPLAINERS.values():
        assert callable(explain._resolve(entry["class"]))
    with pytest.raises(ValueError, match="unknown explainer"):
        audiox.explainer("lime", None)
    assert type(audiox.explainer("Integrated Gradients", ZeroShotClassifier(zoo.load("tiny-clap"), CLASSES))).__name__ \
        == "IntegratedGradients"  # the display name works too


def _explanation(mask, magnitude, scores=None):
    """A hand-made explanation on a tiny grid: 2 bins (n_fft 2), T frames of hop 1."""
    b, t = len(mask), mask.shape[-1]
    phase = torch.zeros_like(magnitude)
    return explain.Explanation("test", torch.zeros(b, dtype=torch.long), mask, torch.zeros(b, t - 1),
                               torch.zeros(b, t - 1), mask if scores is None else scores, torch.zeros(b, t - 1),
                               magnitude, phase, 16_000, n_fft=2, hop_length=1)


def test_at_size_keeps_the_bins_the_mask_ranks_highest():
    mask = torch.tensor([[[0.9, 0.1, 0.5, 0.0], [0.2, 0.8, 0.0, 0.3]]])
    out = _explanation(mask, torch.ones_like(mask)).at_size(0.25)
    assert out.mask.tolist() == [[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]]
    # by energy: the loud bin ranked second holds 90% of the energy, so 50% is reached after two bins
    magnitude = torch.tensor([[[1.0, 1.0, 1.0, 1.0], [1.0, 6.0, 1.0, 1.0]]])
    by_energy = _explanation(mask, magnitude).at_size(0.5, by="energy")
    assert by_energy.mask.tolist() == [[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]]
    with pytest.raises(ValueError, match="fraction"):
        _explanation(mask, magnitude).at_size(1.5)


def test_at_size_breaks_ties_by_the_raw_scores_then_at_random_never_by_loudness():
    mask = torch.zeros(1, 2, 4)  # a rectified map with nothing left: every bin ties
    scores = torch.arange(8.0).view(1, 2, 4)
    assert _explanation(mask, torch.ones_like(mask), scores).at_size(0.25).mask.tolist() == [[[0.0] * 4, [0.0, 0.0, 1.0, 1.0]]]
    # scores on another grid (L2I's relevances): ties broken at random; over many clips, loud bins are not preferred
    loud = torch.ones(400, 2, 4)
    loud[:, 0, :2] = 100.0
    out = _explanation(torch.zeros(400, 2, 4), loud, torch.zeros(400, 3)).at_size(0.25)
    kept_loud = float(out.mask[:, 0, :2].sum() / out.mask.sum())
    assert 0.15 < kept_loud < 0.35  # 2 of 8 bins are loud: a quarter, not all


def test_random_control_draws_only_active_bins_and_ignores_model_and_target(zero_shot):
    wave = SynthSounds("val", n_per_class=1).waves()[:1].clone()
    wave[:, wave.shape[-1] // 2 :] = 0.0  # a silent second half
    control = explain.RandomMask(zero_shot, fraction=0.05)
    out = control.explain(wave)
    active = explain.active_bins(out.magnitude)
    assert (out.mask.bool() & ~active).sum() == 0 and abs(float(out.mask.mean()) - 0.05) < 1e-3
    assert torch.equal(control.explain(wave, target=3).mask, out.mask)
    # cut to 30% of the bins, it takes every active bin before any silent one
    grown = out.at_size(min(0.9 * float(active.float().mean()), 1.0))
    assert (grown.mask.bool() & ~active).sum() == 0


def test_targets_by_name_index_and_list(cnn, waves):
    saliency = audiox.explainer("saliency", cnn)
    assert saliency.explain(waves, "bird").target.tolist() == [3, 3, 3]
    assert saliency.explain(waves, [0, "rain", 2]).target.tolist() == [0, 4, 2]
    with pytest.raises(ValueError, match="did you mean"):
        saliency.explain(waves, "brid")
    with pytest.raises(ValueError, match="one class per clip"):
        saliency.explain(waves, [0, 1])


def test_on_rebuilds_an_explainer_around_another_model(zero_shot, waves):
    import copy

    twin = copy.deepcopy(zero_shot)
    for p in twin.clap.audio_encoder.blocks[-1].parameters():  # the last conv block: every method reads it
        torch.nn.init.normal_(p)
    for name in ("lmac-zs", "l2i", "gradcam"):
        explainer = audiox.explainer(name, zero_shot)
        other = explainer.on(twin)
        assert other.model is twin and explainer.model is zero_shot
        assert not torch.equal(other.explain(waves, 0).mask, explainer.explain(waves, 0).mask), name


def test_an_explanation_is_a_dataclass_that_slices(zero_shot, waves):
    out = audiox.explainer("lmac-zs", zero_shot).explain(waves, "a bell ringing")
    assert out[0].target_names == ["a bell ringing"] and out[0].info["cosine"].shape == (1,)
    assert dataclasses.is_dataclass(out) and len(out) == 3
