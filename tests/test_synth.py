"""SynthSounds: deterministic, valid, labelled, separable, and its ground truth is exact."""

import pytest
import torch

from audiox import audio
from audiox.data import load_dataset, synth

SR = audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def one_per_class():
    return [synth.make_event(name, seed=11) for name in synth.CLASSES]


def test_ten_everyday_classes_in_order():
    assert synth.CLASSES == (
        "siren", "alarm", "engine", "bird", "rain", "bell", "footsteps", "wind", "whistle", "knock",
    )


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = synth.make_event("siren", seed=3), synth.make_event("siren", seed=3), synth.make_event("siren", seed=4)
    assert torch.equal(a["wave"], b["wave"]) and a["captions"] == b["captions"]
    assert not torch.equal(a["wave"], c["wave"])


def test_every_class_gives_a_valid_two_second_clip(one_per_class):
    for clip in one_per_class:
        wave = audio.validate(clip["wave"], SR, name=clip["label_name"])
        assert wave.shape == (2 * SR,) and wave.dtype == torch.float32
        assert 0.3 <= float(wave.abs().max()) <= 0.9 + 1e-6
        assert 0.0 <= clip["onset"] < clip["offset"] <= 2.0 and clip["offset"] - clip["onset"] >= 1.0 - 1e-3


def test_event_lies_where_the_clip_says(one_per_class):
    for clip in one_per_class:
        wave = clip["wave"]
        on, off = int(clip["onset"] * SR), int(clip["offset"] * SR)
        outside = torch.cat([wave[:on], wave[off:]])
        assert outside.abs().max() == 0 if outside.numel() else True, clip["label_name"]


def test_attributes_and_captions(one_per_class):
    for clip in one_per_class:
        assert set(clip["attributes"]) == set(synth.ATTRIBUTE_KEYS)
        assert all(word in synth.ATTRIBUTE_WORDS for word in clip["attributes"].values())
        captions = clip["captions"]
        assert len(captions) >= 3 and len(set(captions)) == len(captions)
        assert any(clip["label_name"] not in c for c in captions), "one caption must use attributes only"
        assert any(clip["label_name"] in c for c in captions)
        attribute_only = [c for c in captions if clip["label_name"] not in c][0]
        assert sum(w in attribute_only for w in clip["attributes"].values()) >= 3


def test_events_start_late_or_stop_early_often():
    spans = [synth.make_event("engine", seed=s) for s in range(20)]
    partial = sum(clip["onset"] > 0.1 or clip["offset"] < 1.9 for clip in spans)
    assert partial >= 10, "events must not all fill the clip, or time masks mean nothing"


def test_other_sample_rates_give_the_same_kind_of_clip():
    clip = synth.make_event("bird", seed=0, duration=1.0, sample_rate=48_000)
    assert audio.validate(clip["wave"], 48_000, expected_sample_rate=48_000).shape == (48_000,)


def test_attributes_follow_the_synthesis_not_only_the_class():
    pitches = {synth.make_event("bell", seed=s)["attributes"]["pitch"] for s in range(40)}
    assert len(pitches) >= 2, "pitch words must come from each clip's own fundamental"
    alarms = [synth.make_event("alarm", seed=s)["attributes"] for s in range(20)]
    assert {a["pattern"] for a in alarms} == {"pulsing", "intermittent"}  # beep rate is drawn per clip
    assert {a["pitch"] for a in alarms} == {"medium", "high"}
    assert {synth.make_event("engine", seed=s)["attributes"]["pitch"] for s in range(10)} == {"low"}
    shared = {}
    for name in synth.CLASSES:
        for s in range(10):
            for word in synth.make_event(name, seed=s)["attributes"].values():
                shared.setdefault(word, set()).add(name)
    assert sum(len(classes) > 1 for classes in shared.values()) >= 10, "attribute words should be shared by classes"


def test_mixture_sources_sum_and_masks_are_ratio_masks():
    mix = synth.make_mixture("siren", "rain", seed=2, snr_db=3.0)
    sources = mix["sources"]
    assert torch.equal(sources["event"] + sources["distractor"] + sources["noise"], mix["wave"])
    masks = torch.stack([mix["masks"][k] for k in ("event", "distractor", "noise")])
    assert masks.shape == (3, audio.N_FFT // 2 + 1, 2 * SR // audio.HOP_LENGTH + 1)
    assert masks.min() >= 0 and masks.max() <= 1
    energy = audio.magnitude_phase(mix["wave"])[0] > 1e-3
    assert torch.allclose(masks.sum(0)[energy], torch.ones(int(energy.sum())), atol=1e-4)
    mags = torch.stack([audio.magnitude_phase(sources[k])[0] for k in ("event", "distractor", "noise")])
    assert torch.allclose(masks[0], mags[0] / (mags.sum(0) + 1e-8), atol=1e-5)


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 7.5])
def test_snr_is_what_was_asked(snr_db):
    mix = synth.make_mixture("bird", "engine", seed=5, snr_db=snr_db)
    s = {k: v.double() for k, v in mix["sources"].items()}
    measured = 10 * torch.log10(s["event"].pow(2).mean() / (s["distractor"] + s["noise"]).pow(2).mean())
    assert abs(float(measured) - snr_db) < 0.1
    assert mix["label_name"] == "bird" and mix["distractor_name"] == "engine"


def test_noise_level_and_event_are_as_documented():
    mix, clean = synth.make_mixture(2, 3, seed=11, noise_db=-15.0), synth.make_event(2, seed=11)
    s = {k: v.double() for k, v in mix["sources"].items()}
    assert abs(float(10 * torch.log10(s["noise"].pow(2).mean() / s["distractor"].pow(2).mean())) + 15.0) < 0.1
    # the event source is the clean clip rescaled, and the mixture keeps its label and captions
    scale = mix["sources"]["event"].abs().max() / clean["wave"].abs().max()
    assert torch.allclose(mix["sources"]["event"], scale * clean["wave"], atol=1e-6)
    assert mix["captions"] == clean["captions"] and mix["attributes"] == clean["attributes"]
    assert torch.equal(synth.make_mixture(2, 3, seed=11, noise_db=-15.0)["wave"], mix["wave"])
    assert mix["noise_color"] in ("white", "pink") and float(mix["wave"].abs().max()) <= 0.9 + 1e-6


def test_event_mask_is_empty_away_from_the_event():
    mix = synth.make_mixture("whistle", "footsteps", seed=3)  # whistle from 0.27 s to 1.62 s
    first, last = int(mix["onset"] * SR) // audio.HOP_LENGTH, int(mix["offset"] * SR) // audio.HOP_LENGTH
    guard = audio.N_FFT // audio.HOP_LENGTH  # frames whose window still reaches the event
    mask = mix["masks"]["event"]
    outside = torch.cat([mask[:, : max(first - guard, 0)], mask[:, last + guard:]], dim=1)
    assert outside.numel() and outside.max() < 1e-3
    assert mask[:, first + guard: last - guard].mean() > 0.1


def test_the_true_mask_recovers_the_event():
    from audiox.metrics import si_sdr

    mix = synth.make_mixture("whistle", "knock", seed=9, snr_db=0.0)
    magnitude, phase = audio.magnitude_phase(mix["wave"])
    recovered = audio.istft_with_phase(mix["masks"]["event"] * magnitude, phase, length=mix["wave"].shape[-1])
    event = mix["sources"]["event"]
    assert si_sdr(recovered, event) > si_sdr(mix["wave"], event) + 6


def test_dataset_order_splits_and_loader():
    test = load_dataset("synth", split="test", n_per_class=3)
    assert len(test) == 30 and [test[i]["label"] for i in range(10)] == list(range(10))
    assert torch.equal(test.labels, torch.arange(30) % 10)
    assert test.waves().shape == (30, 2 * SR) and test.waves() is test.waves()  # generated once
    splits = {s: synth.SynthSounds(s, n_per_class=3).waves() for s in ("train", "val", "test")}
    flat = {s: {w.numpy().tobytes() for w in waves} for s, waves in splits.items()}
    assert not (flat["train"] & flat["val"]) and not (flat["train"] & flat["test"]) and not (flat["val"] & flat["test"])
    assert len(synth.SynthSounds("train")) == 1000 and len(synth.SynthSounds("val")) == 200
    assert torch.equal(test.waves()[7], test[7]["wave"]) and torch.equal(test[-1]["wave"], test[29]["wave"])
    with pytest.raises(IndexError):
        test[30]
    assert not torch.equal(synth.SynthSounds("test", n_per_class=1, seed=1).waves(), test.waves()[:10])


def test_mixture_dataset_items():
    ds = synth.SynthSounds("val", n_per_class=2, mixtures=True, snr_db=-5.0)
    for i in range(len(ds)):
        item = ds[i]
        assert item["distractor_label"] != item["label"] and item["snr_db"] == -5.0
        assert set(item["masks"]) == {"event", "distractor", "noise"}


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: synth.SynthSounds("dev"), "unknown split 'dev'"),
        (lambda: synth.make_event("dog", seed=0), "unknown SynthSounds class 'dog'"),
        (lambda: synth.make_event(12, seed=0), "out of range"),
        (lambda: synth.make_mixture("siren", "siren", seed=0), "another class"),
        (lambda: synth.SynthSounds("test", n_per_class=0), "at least 1"),
        (lambda: synth.make_event("bell", seed=0, sample_rate=8000), "needs at least 16000 Hz"),
        (lambda: synth.make_event("bell", seed=0, duration=0.1), "too short"),
    ],
)
def test_bad_requests_are_explained(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_classes_are_separable_by_simple_features():
    # a linear classifier on clip statistics of the log-mel must already tell the classes apart:
    # if it cannot, no model trained on them will explain anything
    from sklearn.linear_model import LogisticRegression

    train = synth.SynthSounds("train", n_per_class=20)
    test = synth.SynthSounds("test", n_per_class=10)
    fb = audio.mel_filterbank(SR, n_mels=64)

    def features(ds):
        log_mel = audio.log_mel(audio.magnitude_phase(ds.waves())[0], fb)
        # spectral shape (mean), how much it changes (std) and its loudest moment (max) per band
        return torch.cat([log_mel.mean(-1), log_mel.std(-1), log_mel.amax(-1)], dim=-1).numpy()

    classifier = LogisticRegression(max_iter=2000).fit(features(train), train.labels.numpy())
    accuracy = (classifier.predict(features(test)) == test.labels.numpy()).mean()
    assert accuracy >= 0.9
