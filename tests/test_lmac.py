"""LMAC-ZS: the decoder's contract, the loss, training with checkpoints, listenable maps, and the shipped decoder."""

import dataclasses

import pytest
import torch
from torch import nn

from audiox import compare, gradients, lmac, zeroshot
from audiox.data.synth import CLASSES, SynthSounds, evaluation_conditions
from audiox.models import zoo
from audiox.models.clap import TinyClap
from audiox.models.train import fit
from audiox.zeroshot import ZeroShotClassifier


@pytest.fixture(scope="module")
def random_clap():
    torch.manual_seed(0)
    return TinyClap().eval()


@pytest.fixture(scope="module")
def clips(random_clap):
    waves = SynthSounds("val", n_per_class=1, mixtures=True, snr_db=5.0).waves()[:6]
    return lmac.encode(random_clap, waves)


@pytest.fixture(scope="module")
def shipped():
    clap = zoo.load("tiny-clap")
    return clap, lmac.shipped_decoder(clap)


def test_decoder_gives_one_mask_per_clip_and_prompt(random_clap, clips):
    torch.manual_seed(0)
    decoder = lmac.MaskDecoder.for_clap(random_clap)
    text = random_clap.embed_text(["a siren", "a bird", "rain"]).detach()
    cosine = clips.embedding @ text.T
    masks = decoder(clips.hidden, text, cosine, clips.magnitude.shape[-1])
    assert masks.shape == (6, 3, *clips.magnitude.shape[-2:])
    assert ((masks >= 0) & (masks <= 1)).all()
    # the pairwise read-out (used in training) gives the same masks as the all-pairs one
    clip = torch.tensor([4, 0])
    pairs = decoder.read_out(decoder.features(clips.hidden), text[[2, 1]], cosine[clip, torch.tensor([2, 1])],
                             clips.magnitude.shape[-1], clip)
    torch.testing.assert_close(pairs, masks[clip, torch.tensor([2, 1])])
    # and the prompt matters
    assert not torch.allclose(masks[:, 0], masks[:, 1])


def test_loss_trains_only_the_decoder(random_clap, clips):
    decoder = lmac.MaskDecoder.for_clap(random_clap)
    text = random_clap.embed_text(list(CLASSES)).detach()
    before = {k: v.clone() for k, v in random_clap.state_dict().items()}
    for p in random_clap.parameters():
        p.requires_grad_(False)
    loss, parts = lmac.lmac_loss(random_clap, decoder, clips, text, prompts_per_clip=3,
                                 generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"similarity", "masked_out", "mask_heard", "mask_not_heard"}
    assert all(p.grad is not None for p in decoder.parameters())
    assert all(p.grad is None for p in random_clap.parameters())
    assert all(torch.equal(before[k], v) for k, v in random_clap.state_dict().items())
    for p in random_clap.parameters():
        p.requires_grad_(True)


def test_each_clip_meets_its_picked_prompt_first_then_the_runner_up():
    logits = torch.randn(64, 10)
    prompt = lmac.pair_prompts(logits, 4, torch.Generator().manual_seed(0))
    ranked = logits.argsort(dim=-1, descending=True)
    assert torch.equal(prompt[:, :2], ranked[:, :2])
    assert all(len(set(row)) == 4 for row in prompt.tolist())  # no prompt twice


def test_similarity_term_only_punishes_unheard_prompts_for_gaining():
    # two clips, two prompts; clip 0 hears prompt 0 only. A mask that keeps everything keeps every
    # similarity: the similarity term is 0 whatever the relevance.
    clap = TinyClap().eval()
    waves = SynthSounds("val", n_per_class=1).waves()[:2]
    clips = lmac.encode(clap, waves)
    text = clap.embed_text(["a siren", "an alarm"]).detach()

    class Open(nn.Module):  # a decoder whose masks are all ones
        width = 1
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))
        def features(self, hidden):
            return hidden[0][:, :1]
        def read_out(self, features, text, cosine, n_frames, clip=None):
            return torch.ones(len(clip), 257, n_frames) + 0 * self.p

    _, parts = lmac.lmac_loss(clap, Open(), clips, text, prompts_per_clip=2, weights={"gamma": 0.0})
    assert parts["similarity"] < 1e-8


def _tiny_run(tmp_path, fail_at=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    x = torch.randn(16, 3)
    calls = {"n": 0}

    def loss_fn(m, batch):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise KeyboardInterrupt  # the learner stops the cell
        return (m(batch) - batch.sum(1, keepdim=True)).pow(2).mean()

    def batches(epoch):
        g = torch.Generator().manual_seed(epoch)
        return [x[torch.randperm(16, generator=g)[:8]] for _ in range(2)]

    return model, lambda: fit(model, loss_fn, batches, epochs=4, lr=0.05, evaluate=lambda m: -float(loss_fn(m, x)),
                              progress=False, checkpoint=tmp_path / "run.pt")


def test_fit_resumes_from_its_checkpoint_to_the_same_weights(tmp_path):
    reference, run = _tiny_run(tmp_path / "a")
    (tmp_path / "a").mkdir()
    run()
    (tmp_path / "b").mkdir()
    interrupted, run = _tiny_run(tmp_path / "b", fail_at=5)  # during epoch 3 of 4
    with pytest.raises(KeyboardInterrupt):
        run()
    resumed, run = _tiny_run(tmp_path / "b")
    history = run()
    assert len(history.loss) == 4
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="4-epoch run"):
        fit(resumed, lambda m, b: m(b).sum(), lambda e: [], epochs=6, progress=False, checkpoint=tmp_path / "b" / "run.pt")


def test_train_decoder_runs_and_checkpoints(random_clap, tmp_path):
    waves = SynthSounds("train", n_per_class=1).waves()
    val = SynthSounds("val", n_per_class=1).waves()[:4]
    decoder = lmac.MaskDecoder.for_clap(random_clap, width=8)
    history = lmac.train_decoder(random_clap, decoder, waves, val, list(CLASSES), epochs=1, batch_size=4,
                                 prompts_per_clip=2, progress=False, checkpoint=tmp_path / "lmac.pt")
    assert len(history.loss) == 1 and (tmp_path / "lmac.pt").exists()
    assert all(not p.requires_grad for p in random_clap.parameters())  # the explained model stays frozen
    for p in random_clap.parameters():
        p.requires_grad_(True)


def test_explain_is_listenable(random_clap):
    model = ZeroShotClassifier(random_clap, CLASSES)
    explainer = lmac.LMACZS(model, lmac.MaskDecoder.for_clap(random_clap))
    wave = SynthSounds("val", n_per_class=1).waves()[:2]
    out = explainer.explain(wave, "a siren")
    assert out.mask.shape == out.magnitude.shape and out.wave.shape == wave.shape
    assert out.target.tolist() == [-1, -1] and out.target_names == ["a siren", "a siren"]
    # what the mask keeps and what it leaves out add up to the clip (the STFT is linear)
    torch.testing.assert_close(out.wave + out.residual, wave, atol=1e-4, rtol=0)
    # a class by name uses the classifier's own prompt embedding for it: the same mask as by index
    by_name, by_index = explainer.explain(wave, "bird"), explainer.explain(wave, CLASSES.index("bird"))
    torch.testing.assert_close(by_name.mask, by_index.mask)
    assert by_name.target.tolist() == [CLASSES.index("bird")] * 2
    with pytest.raises(ValueError, match="non-empty string"):
        explainer.explain(wave, "  ")
    with pytest.raises(ValueError, match="sample"):
        explainer.explain(torch.randn(2, 3000) * 0.1, "a siren")
    with pytest.raises(ValueError, match="ZeroShotClassifier"):
        lmac.LMACZS(random_clap, explainer.decoder)


def test_no_decoder_is_shipped_for_other_claps(random_clap):
    class Other:
        name = "laion-clap"
    with pytest.raises(ValueError, match="train_decoder"):
        lmac.shipped_decoder(Other())


def test_faithfulness_of_full_and_empty_masks(random_clap):
    model = ZeroShotClassifier(random_clap, CLASSES)
    out = lmac.LMACZS(model, lmac.MaskDecoder.for_clap(random_clap)).explain(
        SynthSounds("val", n_per_class=1, mixtures=True, snr_db=5.0).waves()[:6])
    full = compare.faithfulness(model, dataclasses.replace(out, mask=torch.ones_like(out.mask)))
    assert (full["AD"].abs() < 1e-3).all() and (full["Fid-In"] == 1).all()
    with torch.no_grad():
        p = zeroshot.zero_shot(random_clap, random_clap.spec_to_embedding(out.magnitude), model.text_embeddings)
        q = zeroshot.zero_shot(random_clap, random_clap.spec_to_embedding(torch.zeros_like(out.magnitude)),
                               model.text_embeddings)
    c = out.target
    torch.testing.assert_close(full["FF"], (p - q).gather(1, c[:, None])[:, 0])


def test_shipped_card_and_quality(shipped):
    card = zoo.card("lmac-tiny-clap")
    assert card["sha256"] == shipped[1].weights_sha256
    assert card["training"]["seconds"] < 600  # trained by the zoo script on 2 CPU cores
    quality = card["quality"]
    for name, row in quality.items():
        if name == "split":
            continue
        assert row["FF"] > 0.5 and row["mask mean, right prompt"] > row["mask mean, wrong prompt"], name
    # where tiny-clap recognises the events, prompts of sounds that are not there get clearly smaller masks
    # (under white noise it names few events right, and the masks follow what it hears)
    for name in ("clean", "another clip", "speech"):
        assert quality[name]["mask mean, right prompt"] > 1.5 * quality[name]["mask mean, wrong prompt"], name


def test_shipped_decoder_explains_tiny_clap(shipped):
    """Re-measured here on other clips than the card's: the decoder beats GradCAM on FF and ground
    truth, and wrong prompts get smaller masks."""
    clap, decoder = shipped
    model = ZeroShotClassifier(clap, CLASSES)
    condition = evaluation_conditions("val", n_per_class=3)["another clip"]
    ours = lmac.LMACZS(model, decoder).explain(condition["waves"])
    theirs = gradients.GradCAM(model).explain(condition["waves"])

    def scores(out):
        return {"FF": compare.faithfulness(model, out)["FF"].mean(),
                "F": compare.ground_truth(out, condition)["f_measure"].nanmean()}

    assert scores(ours)["FF"] > scores(theirs)["FF"] + 0.1
    assert scores(ours)["F"] > scores(theirs)["F"]
    masks = lmac.masks_for(decoder, lmac.encode(clap, condition["waves"]), model.text_embeddings)
    sizes = lmac.prompt_mask_means(masks, condition["present"])
    assert sizes["right prompt"] > 1.5 * sizes["wrong prompt"]
