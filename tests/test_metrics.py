"""audiox.metrics: every metric against numbers worked out by hand, edge cases, shapes, sanity checks."""

import math

import pytest
import torch
from torch import nn

from audiox import metrics as M

# Three clips, three classes. By hand (c = argmax p):
# clip 0: c = 0, p_c = 0.5, o_c = 0.6, q_c = 0.1 -> AI 100, AD 0, AG 100*0.1/0.5 = 20, FF 0.4, Fid-In 1
# clip 1: c = 1, p_c = 0.7, o_c = 0.35, q_c = 0.14 -> AI 0, AD 100*0.35/0.7 = 50, AG 0, FF 0.56,
#         Fid-In 0 (argmax o = 0)
# clip 2: o = p: AI 0 (strictly greater), AD 0, AG 0, FF 0.6 - 0.2 = 0.4, Fid-In 1
P = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
O = torch.tensor([[0.6, 0.3, 0.1], [0.5, 0.35, 0.15], [0.6, 0.3, 0.1]])
Q = torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.14, 0.56], [0.2, 0.3, 0.5]])
EXPECTED = {
    "AI": [100.0, 0.0, 0.0],
    "AD": [0.0, 50.0, 0.0],
    "AG": [20.0, 0.0, 0.0],
    "FF": [0.4, 0.56, 0.4],
    "Fid-In": [1.0, 0.0, 1.0],
}


def close(actual, expected, tol=1e-5):
    return torch.allclose(torch.as_tensor(actual).double(), torch.as_tensor(expected, dtype=torch.float64), atol=tol, rtol=0)


# ---------------------------------------------------------------- faithfulness, by hand


def test_each_faithfulness_metric_matches_the_hand_computed_row():
    assert close(M.average_increase(P, O), EXPECTED["AI"])
    assert close(M.average_drop(P, O), EXPECTED["AD"])
    assert close(M.average_gain(P, O), EXPECTED["AG"])
    assert close(M.faithfulness_on_spectra(P, Q), EXPECTED["FF"])
    assert close(M.input_fidelity(P, O), EXPECTED["Fid-In"])


def test_faithfulness_metrics_dict_and_summary_row():
    rows = M.faithfulness_metrics(P, O, Q)
    assert list(rows) == ["AI", "AD", "AG", "FF", "Fid-In"]
    for key, values in EXPECTED.items():
        assert close(rows[key], values), key
    row = M.summarize(rows)
    assert row["n"] == 3
    assert row["AI"] == pytest.approx(100 / 3) and row["AD"] == pytest.approx(50 / 3)
    assert row["AG"] == pytest.approx(20 / 3) and row["FF"] == pytest.approx(1.36 / 3)
    assert row["Fid-In"] == pytest.approx(2 / 3)


def test_explicit_target_replaces_argmax():
    # target 1 on clip 0: p_c = 0.3, o_c = 0.45 -> AI 100, AD 0, AG 100 * 0.15 / 0.7 = 21.4286;
    # FF = 0.3 - 0.5 = -0.2; Fid-In: argmax o = 1 = target -> 1
    p, o, q = P[:1], torch.tensor([[0.4, 0.45, 0.15]]), Q[:1]
    rows = M.faithfulness_metrics(p, o, q, target=torch.tensor([1]))
    assert close(rows["AI"], [100.0]) and close(rows["AD"], [0.0]) and close(rows["AG"], [100 * 0.15 / 0.7])
    assert close(rows["FF"], [-0.2]) and close(rows["Fid-In"], [1.0])
    # and the default (c = argmax p = 0) differs: o_c = 0.4 < 0.5 -> AD 20, Fid-In 0
    rows = M.faithfulness_metrics(p, o, q)
    assert close(rows["AD"], [20.0]) and close(rows["Fid-In"], [0.0])


def test_average_gain_is_zero_when_p_c_is_one():
    # float32 softmax rounds to exactly 1.0 for a large margin: no room above p_c, gain defined as 0
    p = M.class_probabilities(torch.tensor([[0.0, 200.0], [0.0, 200.0]]))
    o = M.class_probabilities(torch.tensor([[0.0, 200.0], [0.0, 1.0]]))
    assert float(p[0, 1]) == 1.0
    ag = M.average_gain(p, o)
    assert torch.isfinite(ag).all() and close(ag, [0.0, 0.0])
    assert close(M.average_drop(p, o), [0.0, 100 * (1 - float(o[1, 1]))])


def test_average_drop_is_zero_when_p_c_is_zero():
    p, o = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]])
    assert close(M.average_drop(p, o, target=torch.tensor([1])), [0.0])


def test_no_second_softmax_average_drop_reaches_100():
    # with a second softmax (the SpeechBrain bug) AD of a total drop is capped near 62
    p, o = torch.tensor([[0.98, 0.01, 0.01]]), torch.tensor([[0.0, 1.0, 0.0]])
    assert close(M.average_drop(p, o), [100.0])


def test_input_fidelity_compares_with_the_predicted_class_not_class_zero():
    p, o = torch.tensor([[0.1, 0.9]]), torch.tensor([[0.2, 0.8]])
    assert close(M.input_fidelity(p, o), [1.0])


def test_logits_are_rejected_with_a_pointer_to_the_softmax_helpers():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    with pytest.raises(ValueError, match="class_probabilities"):
        M.average_drop(logits, logits)
    with pytest.raises(ValueError, match="probabilities"):
        M.faithfulness_metrics(torch.tensor([[0.5, 0.2, 0.1]]), P[:1])  # rows sum to 0.8


@pytest.mark.parametrize(
    "p, o, kwargs",
    [
        (P, O[:, :2], {}),  # classes differ
        (P, O[:2], {}),  # clips differ
        (P[0], O[0], {}),  # not batched
        (P, O, {"target": torch.tensor([0, 1])}),  # target length
        (P, O, {"target": torch.tensor([0, 1, 3])}),  # target out of range
        (P, O, {"target": torch.tensor([0.0, 1.0, 2.0])}),  # float target
        (P, O, {"mask": torch.ones(2, 4, 5)}),  # mask batch
        (P, O, {"mask": torch.ones(3)}),  # mask without values per clip
    ],
)
def test_bad_shapes_raise_a_clear_value_error(p, o, kwargs):
    with pytest.raises(ValueError):
        M.faithfulness_metrics(p, o, **kwargs)


def test_probability_helpers():
    p = M.class_probabilities(torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float16))
    assert p.dtype == torch.float32 and close(p, [[0.25, 0.75]], tol=1e-3)
    from audiox import zeroshot

    class Scale:
        logit_scale = 2.0

    audio = torch.nn.functional.normalize(torch.tensor([[3.0, 0.0], [0.0, 0.5]]), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    # cosines: clip 0 -> [1, 0, 1/sqrt 2], clip 1 -> [0, 1, 1/sqrt 2]; logits = 2 * cosine
    expected = torch.softmax(2 * torch.tensor([[1.0, 0.0, 2**-0.5], [0.0, 1.0, 2**-0.5]]), dim=-1)
    got = M.class_probabilities(zeroshot.logits(Scale(), audio, text))
    assert got.shape == (2, 3) and torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(zeroshot.zero_shot(Scale(), audio, text), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one softmax, not two"):
        M.faithfulness_metrics(zeroshot.logits(Scale(), audio, text), got)  # logits where probabilities belong


# ---------------------------------------------------------------- mask metrics, by hand


def test_sparseness_gini_by_hand():
    masks = torch.tensor(
        [
            [0.0, 0.0, 0.0, 1.0],  # one-hot: 1 - 1/4 = 0.75, the maximum
            [0.3, 0.3, 0.3, 0.3],  # uniform: 0
            [0.0, 0.0, 1.0, 1.0],  # sorted weights 2k-n-1 = -3,-1,1,3: (1 + 3) / (4 * 2) = 0.5
            [4.0, 1.0, 3.0, 2.0],  # (-3*1 - 1*2 + 1*3 + 3*4) / (4 * 10) = 0.25
            [0.0, -1.0, 0.0, 0.0],  # of |M|: like one-hot
            [0.0, 0.0, 0.0, 0.0],  # all zero: defined as uniform, 0
        ]
    )
    sps = M.sparseness(masks)
    assert not sps.isnan().any()
    assert close(sps, [0.75, 0.0, 0.5, 0.25, 0.75, 0.0])
    one_hot = torch.zeros(1, 10, 10)
    one_hot[0, 3, 7] = 0.2
    assert close(M.sparseness(one_hot), [1 - 1 / 100])
    assert close(M.sparseness(7 * masks), sps)  # scale-invariant


def test_complexity_entropy_by_hand():
    masks = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # uniform: log 6
            [0.0, 0.0, 0.9, 0.0, 0.0, 0.0],  # one-hot: 0
            [1.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # two equal: log 2
            [1.0, 3.0, 0.0, 0.0, 0.0, 0.0],  # -(1/4 ln 1/4 + 3/4 ln 3/4) = 0.5623351
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # all zero: defined as uniform, log 6
        ]
    )
    comp = M.complexity(masks)
    assert not comp.isnan().any()
    assert close(comp, [math.log(6), 0.0, math.log(2), 0.5623351446, math.log(6)])
    assert close(M.complexity(torch.ones(2, 257, 100)), [math.log(25700)] * 2, tol=1e-4)


def test_mask_mean_by_hand():
    masks = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], [[-1.0, 1.0], [0.5, 0.5]]])
    assert close(M.mask_mean(masks), [0.25, 0.5, 0.25])


def test_batched_equals_per_clip():
    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(6, 5, generator=g), -1)
    o = torch.softmax(torch.randn(6, 5, generator=g), -1)
    q = torch.softmax(torch.randn(6, 5, generator=g), -1)
    masks = torch.rand(6, 7, 9, generator=g)
    masks[2] = 0  # the edge case, inside a batch
    batched = M.faithfulness_metrics(p, o, q, masks)
    assert list(batched) == ["AI", "AD", "AG", "FF", "Fid-In", "SPS", "COMP", "MM"]
    singles = [M.faithfulness_metrics(p[i : i + 1], o[i : i + 1], q[i : i + 1], masks[i : i + 1]) for i in range(6)]
    for key, values in batched.items():
        assert values.shape == (6,)
        assert torch.allclose(values, torch.cat([s[key] for s in singles]), atol=1e-6), key
    # summarising per-batch dicts weighs clips, not batches
    two_batches = singles[:1] + [M.faithfulness_metrics(p[1:], o[1:], q[1:], masks[1:])]
    assert M.summarize(two_batches) == pytest.approx(M.summarize(batched))


def test_summarize_rejects_mismatched_batches():
    with pytest.raises(ValueError):
        M.summarize([{"AI": torch.zeros(2)}, {"AD": torch.zeros(2)}])
    with pytest.raises(ValueError):
        M.summarize({"AI": torch.zeros(2), "AD": torch.zeros(3)})
    with pytest.raises(ValueError):
        M.summarize([])


# ---------------------------------------------------------------- ground truth, by hand


def test_ground_truth_overlap_by_hand():
    x = torch.tensor([[[1.0, 2.0]]]).expand(5, 1, 2)  # energies 1 and 4
    r = torch.tensor([[[1.0, 0.0]]]).expand(5, 1, 2)  # the source owns the first bin
    m = torch.tensor([[[1.0, 1.0]], [[1.0, 0.0]], [[0.5, 0.5]], [[0.0, 1.0]], [[0.0, 0.0]]])
    out = M.ground_truth_overlap(x, m, r)
    # all: P = 1/5, R = 1; exact: 1, 1; half: P = 0.5/2.5, R = 0.5; wrong bin: 0, 0; empty: 0, 0
    assert close(out["precision"], [0.2, 1.0, 0.2, 0.0, 0.0])
    assert close(out["recall"], [1.0, 1.0, 0.5, 0.0, 0.0])
    assert close(out["f_measure"], [1 / 3, 1.0, 2 * 0.1 / 0.7, 0.0, 0.0])
    assert not any(v.isnan().any() for v in out.values())


def test_ground_truth_overlap_soft_masks_and_beta():
    # E = [1, 1], R = [0.5, 1], M = [1, 0]: hit 0.5, explained 1, source 1.5 -> P 0.5, R 1/3
    out = M.ground_truth_overlap(torch.ones(1, 1, 2), torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.5, 1.0]]]), beta=2.0)
    assert close(out["precision"], [0.5]) and close(out["recall"], [1 / 3])
    assert close(out["f_measure"], [5 * 0.5 / 3 / (4 * 0.5 + 1 / 3)])  # F2 = 5PR / (4P + R)
    # a source without energy: recall 0, not NaN
    assert close(M.ground_truth_overlap(torch.ones(1, 2, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, 2))["recall"], [0.0])


def test_ground_truth_precisions_over_all_sources_sum_to_one():
    g = torch.Generator().manual_seed(0)
    mags = torch.rand(3, 2, 6, 8, generator=g)  # three sources, two clips
    ratio = mags / mags.sum(0)
    x = torch.rand(2, 6, 8, generator=g) + 0.1
    m = torch.rand(2, 6, 8, generator=g)
    total = sum(M.ground_truth_overlap(x, m, ratio[k])["precision"] for k in range(3))
    assert close(total, [1.0, 1.0])


def test_ground_truth_overlap_on_a_synth_mixture():
    from audiox import audio
    from audiox.data.synth import make_mixture

    mix = make_mixture("whistle", "engine", seed=1)
    x = audio.magnitude_phase(mix["wave"])[0][None]
    truth = {k: r[None] for k, r in mix["masks"].items()}
    everything = {k: M.ground_truth_overlap(x, torch.ones_like(x), r) for k, r in truth.items()}
    assert all(close(v["recall"], [1.0]) for v in everything.values())  # M = 1 keeps every source
    assert close(sum(v["precision"] for v in everything.values()), [1.0], tol=1e-4)  # energy shares
    oracle = M.ground_truth_overlap(x, truth["event"], truth["event"])
    wrong = M.ground_truth_overlap(x, truth["distractor"], truth["event"])
    assert oracle["f_measure"] > 0.9 and wrong["f_measure"] < 0.1


@pytest.mark.parametrize(
    "x, m, r",
    [
        (torch.ones(2, 3, 4), torch.ones(2, 3, 5), torch.ones(2, 3, 4)),  # shape mismatch
        (torch.ones(2, 3, 4), torch.full((2, 3, 4), 1.5), torch.ones(2, 3, 4)),  # mask > 1
        (-torch.ones(2, 3, 4), torch.ones(2, 3, 4), torch.ones(2, 3, 4)),  # not a magnitude
        (torch.ones(2, 3, 4, dtype=torch.complex64), torch.ones(2, 3, 4), torch.ones(2, 3, 4)),  # complex STFT
    ],
)
def test_ground_truth_overlap_rejects_bad_inputs(x, m, r):
    with pytest.raises(ValueError):
        M.ground_truth_overlap(x, m, r)


# ---------------------------------------------------------------- similarity and correlation


def test_correlations_by_hand():
    # ranks of [1, 2, 2, 3] are [1, 2.5, 2.5, 4]; against [1, 2, 3, 4]: 4.5 / sqrt(4.5 * 5) = 0.9486833
    assert close(M.spearman(torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])), 0.9486832981)
    # Pearson of [1, 2, 3] and [2, 4, 7]: 5 / sqrt(2 * 114 / 9) = 0.9933993
    assert close(M.pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0])), 0.9933992678)
    a = torch.tensor([[0.1, 0.5, 0.2, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert close(M.spearman(a, a.exp()), [1.0, 1.0])  # monotone maps keep the ranking
    assert close(M.spearman(a, -a), [-1.0, -1.0])
    assert close(M.spearman(a, -a, absolute=True), [1.0, 1.0])
    # constant inputs: identical -> 1, otherwise 0; never NaN
    assert close(M.pearson(torch.zeros(2, 3), torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])), [1.0, 0.0])
    assert close(M.top_k_overlap(torch.tensor([4.0, 3.0, 2.0, 1.0]), torch.tensor([4.0, 1.0, 2.0, 3.0]), fraction=0.5), 0.5)
    with pytest.raises(ValueError):
        M.spearman(torch.ones(2, 3), torch.ones(3, 2))


def test_batched_correlation_equals_per_clip():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(4, 5, 6, generator=g).round(decimals=1), torch.rand(4, 5, 6, generator=g)  # ties in a
    batched = M.spearman(a, b)
    assert batched.shape == (4,)
    assert torch.allclose(batched, torch.stack([M.spearman(a[i].flatten(), b[i].flatten()) for i in range(4)]))


def test_mask_mean_against_similarity():
    masks = torch.stack([torch.full((3, 4), v) for v in (0.1, 0.4, 0.2, 0.8)])
    similarity = torch.tensor([0.05, 0.3, 0.2, 0.35])  # same order as the mask means
    assert close(M.spearman(M.mask_mean(masks), similarity), 1.0)


# ---------------------------------------------------------------- cascading randomisation


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))


X = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))


def gradient_saliency(model):
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).max(dim=1).values.sum(), x)
    return grad.abs()


def test_randomisation_leaves_the_model_and_the_random_state_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    out = M.cascading_randomization(net, ["4", "2", "0"], gradient_saliency)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(param.grad is None for param in net.parameters())
    assert torch.equal(rng, torch.get_rng_state())
    assert out["layers"] == ["(none)", "4", "2", "0"] and out["similarity"].shape == (4, 8)


def test_step_zero_is_one_and_randomising_changes_a_faithful_explanation():
    out = M.cascading_randomization(_net(), [], gradient_saliency)
    assert out["similarity"].shape == (1, 8) and torch.equal(out["similarity"], torch.ones(1, 8))
    out = M.cascading_randomization(_net(), ["4", "2", "0"], gradient_saliency)
    assert torch.equal(out["similarity"][0], torch.ones(8))
    assert out["similarity"][-1].mean() < 0.9  # nothing of the trained model is left


def test_an_explanation_blind_to_the_model_fails_the_check():
    out = M.cascading_randomization(_net(), ["4", "2", "0"], lambda model: X.abs())
    assert torch.equal(out["similarity"], torch.ones(4, 8))


def test_cumulative_and_independent_and_seeded():
    def weights(model):  # "masks" that show which layers changed
        return torch.cat([model[0].weight.flatten(), model[4].weight.flatten()])[None]

    cut = _net()[0].weight.numel()
    cumulative = M.cascading_randomization(_net(), ["4", "0"], weights, return_masks=True)["masks"]
    independent = M.cascading_randomization(_net(), ["4", "0"], weights, cumulative=False, return_masks=True)["masks"]
    assert cumulative.shape == (3, 1, cut + 64)
    # step 2 (layer "0"): cumulatively layer "4" stays random, independently it is the trained one again
    assert not torch.equal(cumulative[2, :, cut:], cumulative[0, :, cut:])
    assert torch.equal(independent[2, :, cut:], independent[0, :, cut:])
    assert not torch.equal(independent[2, :, :cut], independent[0, :, :cut])
    again = M.cascading_randomization(_net(), ["4", "0"], weights, return_masks=True)["masks"]
    other = M.cascading_randomization(_net(), ["4", "0"], weights, seed=1, return_masks=True)["masks"]
    assert torch.equal(again, cumulative) and not torch.equal(other, cumulative)


def test_parameters_without_reset_are_redrawn():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.arange(1.0, 9.0))

        def forward(self, x):
            return x * self.gain

    out = M.cascading_randomization(Scaled(), [""], lambda m: m.gain.detach()[None].clone(), return_masks=True)
    assert not torch.equal(out["masks"][1], out["masks"][0])


def test_randomisation_rejects_unknown_layers_and_bad_masks():
    with pytest.raises(ValueError, match="no module"):
        M.cascading_randomization(_net(), ["9"], gradient_saliency)
    with pytest.raises(ValueError, match="explain"):
        M.cascading_randomization(_net(), ["0"], lambda model: torch.ones(3))
