"""audiox.l2i: the interpreter's contract, post-hoc vs by-design training, masks that sum to the clip, faithfulness."""

import pytest
import torch

from audiox import l2i, nmf
from audiox.data.synth import SynthSounds
from audiox.models.classifiers import CNNClassifier
from audiox.models.zoo import load


@pytest.fixture(scope="module")
def classifier():
    return load("synth-cnn", device="cpu")


@pytest.fixture(scope="module")
def clips(classifier):
    ds = SynthSounds("train", n_per_class=6, mixtures=True, snr_db=5.0)
    magnitude, phase = classifier.spectrogram(ds.waves())
    return ds, magnitude, phase


@pytest.fixture(scope="module")
def dictionary(clips):
    _, magnitude, _ = clips
    return nmf.fit(torch.log1p(magnitude), n_components=16, n_iter=60, seed=0).W


def test_post_hoc_training_learns_fidelity_and_leaves_the_classifier_alone(classifier, clips, dictionary):
    ds, magnitude, _ = clips
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    interpreter = l2i.Interpreter.for_classifier(classifier, dictionary)
    assert torch.equal(interpreter.dictionary, dictionary)
    l2i.train_interpreter(classifier, interpreter, magnitude, magnitude, epochs=25, batch_size=20,
                          fidelity_weights=(1.0, 2.0), progress=False)
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())
    classifier_logits, interpreter_logits = l2i.predict(classifier, interpreter, magnitude)
    assert l2i.fidelity(classifier_logits, interpreter_logits, k=3) >= 0.9  # chance is 0.3
    assert torch.equal(interpreter.dictionary, dictionary)  # the dictionary is frozen: a buffer, not a parameter


def test_by_design_trains_the_classifier_too_and_needs_labels(clips, dictionary):
    ds, magnitude, _ = clips
    classifier = CNNClassifier(ds.classes, channels=(4, 8, 8, 16)).eval()
    interpreter = l2i.Interpreter.for_classifier(classifier, dictionary, width=16)
    with pytest.raises(ValueError, match="labels"):
        l2i.train_interpreter(classifier, interpreter, magnitude, magnitude, by_design=True, epochs=1)
    weight = classifier.cnn.blocks[0][0].weight.clone()
    l2i.train_interpreter(classifier, interpreter, magnitude, magnitude, by_design=True,
                          train_labels=ds.labels, val_labels=ds.labels, epochs=2, batch_size=20, progress=False)
    assert not torch.equal(weight, classifier.cnn.blocks[0][0].weight)
    assert not classifier.training  # handed back in eval mode


def test_interpretation_and_residual_add_up_to_the_clip(classifier, clips, dictionary):
    ds, magnitude, phase = clips
    interpreter = l2i.Interpreter.for_classifier(classifier, dictionary)
    out = l2i.L2I(classifier, interpreter, top=3).explain(ds.waves()[:4])
    assert out.mask.min() >= 0 and out.mask.max() <= 1
    assert (out.info["components"].sum(-1) <= 3).all() and out.scores.shape == (4, dictionary.shape[1])
    assert torch.allclose(out.wave + out.residual, ds.waves()[:4], atol=1e-4)
    # the mask is the chosen components' share of the interpreter's reconstruction
    expected = nmf.component_masks(dictionary, out.info["activations"], out.info["components"].float())
    assert torch.equal(out.mask, expected)


def test_explaining_another_class_changes_the_relevance(classifier, clips, dictionary):
    ds, _, _ = clips
    explainer = l2i.L2I(classifier, l2i.Interpreter.for_classifier(classifier, dictionary))
    a = explainer.explain(ds.waves()[:2], target=0)
    b = explainer.explain(ds.waves()[:2], target="bird")
    assert a.target.tolist() == [0, 0] and b.target.tolist() == [3, 3]
    assert not torch.allclose(a.scores, b.scores)
    assert torch.allclose(a.scores.amax(-1), torch.ones(2))


def test_the_shipped_interpreters_fit_their_models():
    from audiox.data.synth import CLASSES
    from audiox.zeroshot import ZeroShotClassifier

    cnn = load("synth-cnn")
    assert l2i.L2I(cnn).interpreter.zoo_name == "l2i-synth-cnn"
    zero_shot = ZeroShotClassifier(load("tiny-clap"), CLASSES)
    assert l2i.L2I(zero_shot).interpreter.zoo_name == "l2i-tiny-clap"
    with pytest.raises(ValueError, match="explains the classes"):
        l2i.L2I(ZeroShotClassifier(load("tiny-clap"), ["siren", "bird"]))
    with pytest.raises(ValueError, match="no L2I interpreter is shipped"):
        l2i.L2I(CNNClassifier(["a", "b"]))


def test_relevant_components_respect_top_and_threshold():
    scores = torch.tensor([[1.0, 0.9, 0.15, 0.5, -1.0], [1.0, -0.2, -0.3, -0.4, -0.5]])
    chosen = l2i.relevant_components(scores, top=3, threshold=0.2)
    assert chosen.tolist() == [[True, True, False, True, False], [True, False, False, False, False]]


def test_removing_nothing_drops_nothing_and_removing_everything_drops_a_confident_class(classifier, clips):
    _, magnitude, _ = clips
    target = classifier.spec_to_logits(magnitude[:6]).argmax(-1)
    none = l2i.removal_drop(classifier, magnitude[:6], torch.zeros_like(magnitude[:6]), target)
    assert torch.allclose(none, torch.zeros(6), atol=1e-6)
    everything = l2i.removal_drop(classifier, magnitude[:6], torch.ones_like(magnitude[:6]), target)
    assert (everything > 0).float().mean() >= 0.5


def test_random_components_match_the_count_and_are_seeded():
    chosen = torch.tensor([[True, False, True, False, False, False], [False] * 5 + [True]])
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = l2i.random_components(chosen, g1), l2i.random_components(chosen, g2)
    assert a.sum(-1).tolist() == [2, 1] and torch.equal(a, b)


def test_interpreter_refuses_mismatched_layers():
    with pytest.raises(ValueError, match="one channel count per tapped layer"):
        l2i.Interpreter([8, 16], [0], n_components=4, n_classes=2)
    with pytest.raises(ValueError, match="NMF dictionary"):
        l2i.Interpreter.for_classifier(CNNClassifier(["a", "b"]), torch.rand(100, 4))
