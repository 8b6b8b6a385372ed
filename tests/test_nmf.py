"""audiox.nmf: costs never increase, factors stay non-negative and normalised, batched transform
equals per-clip transform, the fit is at least as good as scikit-learn's, bad inputs are named."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from audiox import nmf
from audiox.data.synth import SynthSounds

SETTINGS = [("euclidean", 0.0), ("euclidean", 0.5), ("kl", 0.0), ("kl", 0.5)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These problems are tiny: handing work between threads costs more than it saves, and on a busy
    machine (2 cores shared with other jobs) 10-30x more, for torch and scikit-learn alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def waves():
    return SynthSounds("test", n_per_class=1).waves()  # 10 clips, one per class, with silent frames


@pytest.fixture(scope="module")
def spectra(waves):
    return nmf.log_spectrogram(waves)[0]  # [10, 257, 251]


def low_rank(f=30, n=200, k=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(f, k, generator=g) @ torch.rand(k, n, generator=g)).to(dtype)


@pytest.mark.parametrize("beta,l1", SETTINGS)
def test_cost_never_increases_and_history_is_the_cost(spectra, beta, l1):
    V = spectra.double()
    result = nmf.fit(V, 8, beta=beta, l1=l1, n_iter=25, tol=0)
    costs = np.array(result.costs)
    assert result.n_iter == 25
    assert (np.diff(costs) <= 1e-9 * costs[1:]).all(), np.diff(costs).max()
    assert costs[-1] < 0.99 * costs[0]
    assert nmf.cost(V, result.W, result.H, beta, l1) == pytest.approx(costs[-1], rel=1e-9)


@pytest.mark.parametrize("beta,l1", SETTINGS)
def test_factors_are_non_negative_with_unit_columns(spectra, beta, l1):
    result = nmf.fit(spectra, 8, beta=beta, l1=l1, n_iter=10)
    W, H = result.W, result.H
    assert W.shape == (257, 8) and H.shape == (10, 8, 251)
    assert W.dtype == H.dtype == torch.float32
    assert (W >= 0).all() and (H >= 0).all()
    assert torch.isfinite(W).all() and torch.isfinite(H).all()
    norms = W.norm(dim=0)
    assert ((norms - 1).abs() < 1e-5).all(), norms  # a dead component would be a zero column


@pytest.mark.parametrize("beta,n_iter,tol", [("euclidean", 2000, 1e-5), ("kl", 1000, 1e-2)])
def test_fit_is_a_stationary_point_of_the_penalised_cost(beta, n_iter, tol):
    # KKT conditions of  D(V | W H) + l1 * sum_k ||w_k|| sum(h_k)  for unit columns: gradient >= 0,
    # and 0 wherever the factor is positive. Multiplicative updates (KL) converge slowly, hence tol.
    g = torch.Generator().manual_seed(0)
    V = low_rank(12, 80, 4) + 0.2 * torch.rand(12, 80, generator=g, dtype=torch.float64)
    l1 = 0.5
    result = nmf.fit(V, 3, beta=beta, l1=l1, n_iter=n_iter, tol=0)
    W, H = result.W, result.H
    residual = W @ H - V if beta == "euclidean" else 1 - V / (W @ H)
    scale = float((residual @ H.T).abs().max())
    for grad, x in ((residual @ H.T + l1 * H.sum(1) * W, W), (W.T @ residual + l1, H)):
        assert grad.min() > -tol * scale
        assert (grad * x).abs().max() < tol * scale


def test_l1_makes_activations_sparser(spectra):
    plain = nmf.fit(spectra, 8, n_iter=20, tol=0).H
    sparse = nmf.fit(spectra, 8, l1=2.0, n_iter=20, tol=0).H
    assert sparse.sum() < 0.9 * plain.sum()
    assert (sparse == 0).float().mean() > (plain == 0).float().mean()


def test_silent_frames_get_zero_activations_without_nan():
    V = low_rank(dtype=torch.float32)
    V[:, 50:80] = 0  # silent frames
    V[5] = 0  # an empty frequency bin
    result = nmf.fit(V, 4, n_iter=20)
    assert torch.isfinite(result.W).all() and torch.isfinite(result.H).all()
    assert result.H[:, 50:80].eq(0).all()
    assert result.W[5].abs().max() < 1e-6
    for beta in nmf.BETAS:
        assert torch.isfinite(nmf.transform(V, result.W, beta=beta)).all()


@pytest.mark.parametrize("beta", nmf.BETAS)
def test_exact_low_rank_data_is_recovered(beta):
    V = low_rank()
    result = nmf.fit(V, 4, beta=beta, n_iter=200, tol=0)
    assert nmf.cost(V, result.W, result.H, beta) < 1e-4 * nmf.cost(V, result.W, 0 * result.H, beta)


@pytest.mark.parametrize("beta,l1", SETTINGS)
def test_batched_transform_equals_clip_by_clip(spectra, beta, l1):
    W = nmf.fit(spectra, 8, beta=beta, n_iter=10).W
    batch = nmf.transform(spectra[:4], W, beta=beta, l1=l1, n_iter=30)
    one_by_one = torch.stack([nmf.transform(v, W, beta=beta, l1=l1, n_iter=30) for v in spectra[:4]])
    assert batch.shape == (4, 8, 251) and (batch >= 0).all()
    torch.testing.assert_close(batch, one_by_one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("beta", nmf.BETAS)
def test_transform_with_the_fitted_dictionary_is_as_good_as_the_fit(spectra, beta):
    result = nmf.fit(spectra, 8, beta=beta, n_iter=30)
    H = nmf.transform(spectra, result.W, beta=beta, n_iter=100)
    assert nmf.cost(spectra, result.W, H, beta) <= 1.01 * result.costs[-1]


@pytest.mark.parametrize("beta,sklearn_args", [
    ("euclidean", {}),  # scikit-learn's default: coordinate descent on the Frobenius cost
    ("kl", {"solver": "mu", "beta_loss": "kullback-leibler"}),
])
def test_at_least_as_good_as_sklearn(spectra, beta, sklearn_args):
    # Both with their defaults, at a size where 200 iterations matter (as for L2I's K=100 dictionary)
    V = spectra[:4]
    X = V.transpose(1, 2).reshape(-1, 257).numpy()  # scikit-learn factorises [samples, features]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = NMF(20, **sklearn_args)
        activations = reference.fit_transform(X)
    W_ref, H_ref = torch.from_numpy(reference.components_.T), torch.from_numpy(activations.T)
    sklearn_cost = nmf.cost(V.transpose(0, 1).reshape(257, -1), W_ref, H_ref, beta)
    ours = nmf.fit(V, 20, beta=beta)
    assert nmf.cost(V, ours.W, ours.H, beta) <= sklearn_cost


def test_device_and_dtype_follow_the_input(spectra):
    V = spectra[:2].double()
    result = nmf.fit(V, 4, n_iter=3)
    H = nmf.transform(V, result.W, n_iter=3)
    for x in (result.W, result.H, H):
        assert x.device == V.device and x.dtype == torch.float64
    with pytest.raises(ValueError, match="same dtype and device"):
        nmf.transform(V.float(), result.W)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu(spectra):
    cpu = nmf.fit(spectra, 8, n_iter=10, tol=0)
    gpu = nmf.fit(spectra.cuda(), 8, n_iter=10, tol=0)
    assert gpu.W.is_cuda and gpu.H.is_cuda
    assert gpu.costs[-1] == pytest.approx(cpu.costs[-1], rel=1e-3)
    assert nmf.transform(spectra[:2].cuda(), gpu.W).is_cuda


def test_deterministic_from_a_seed(spectra):
    V = spectra[:3]
    a, b = (nmf.fit(V, 6, init="random", seed=7, n_iter=5) for _ in range(2))
    c = nmf.fit(V, 6, init="random", seed=8, n_iter=5)
    assert torch.equal(a.W, b.W) and torch.equal(a.H, b.H) and a.costs == b.costs
    assert not torch.allclose(a.W, c.W)
    d, e = (nmf.fit(V, 6, n_iter=5) for _ in range(2))
    assert torch.equal(d.W, e.W)


@pytest.mark.parametrize("beta", nmf.BETAS)
def test_n_init_keeps_the_lowest_final_cost_of_its_starts(spectra, beta):
    V = spectra[:3]
    starts = [nmf.fit(V, 6, beta=beta, n_iter=8)] + [
        nmf.fit(V, 6, beta=beta, n_iter=8, init="random", seed=s) for s in (1, 2)]
    best = nmf.fit(V, 6, beta=beta, n_iter=8, n_init=3)
    lowest = min(starts, key=lambda r: r.costs[-1])
    assert best.costs == lowest.costs and torch.equal(best.W, lowest.W) and torch.equal(best.H, lowest.H)
    assert len({r.costs[-1] for r in starts}) == 3  # the starts really differ
    with pytest.raises(ValueError, match="n_init=0 must be at least 1"):
        nmf.fit(V, 6, n_init=0)


@pytest.mark.parametrize("bad,message", [
    (-torch.rand(4, 5), "negative values"),
    (torch.full((4, 5), float("nan")), "NaN or infinite"),
    (torch.ones(4, 5, dtype=torch.int64), "floating-point"),
    (torch.rand(2, 3, 4, 5), "expected a non-empty"),
    (torch.rand(4, 0), "expected a non-empty"),
    ([[1.0]], "floating-point tensor, got list"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        nmf.fit(bad, 2)


def test_bad_arguments_are_named():
    V = low_rank()
    with pytest.raises(ValueError, match="is not a cost"):
        nmf.fit(V, 2, beta="itakura-saito")
    with pytest.raises(ValueError, match="must be >= 0"):
        nmf.fit(V, 2, l1=-1.0)
    with pytest.raises(ValueError, match="n_components=31"):
        nmf.fit(V, 31)
    with pytest.raises(ValueError, match="is not an initialisation"):
        nmf.fit(V, 2, init="svd")
    with pytest.raises(ValueError, match="W.shape\\[0\\] = 30"):
        nmf.transform(V, torch.rand(20, 2, dtype=V.dtype))
    with pytest.raises(ValueError, match="W has negative"):
        nmf.transform(V, -torch.rand(30, 2, dtype=V.dtype))
    with pytest.raises(ValueError, match="must lie in \\[0, 3\\]"):
        nmf.component_masks(torch.rand(30, 4), torch.rand(4, 7), [4])


def test_masks_split_the_clip_and_play_it_back(waves, spectra):
    result = nmf.fit(spectra, 8, n_iter=20)
    H = result.H
    masks = nmf.component_masks(result.W, H, [0, 1, 2])
    rest = nmf.component_masks(result.W, H, [3, 4, 5, 6, 7])
    assert masks.shape == spectra.shape and masks.min() >= 0 and masks.max() <= 1
    heard = (result.W @ H) > 1e-3
    torch.testing.assert_close((masks + rest)[heard], torch.ones(int(heard.sum())), atol=1e-5, rtol=0)
    per_clip = torch.zeros(10, 8).index_fill_(1, torch.tensor([0, 1, 2]), 1.0)
    torch.testing.assert_close(nmf.component_masks(result.W, H, per_clip), masks)
    torch.testing.assert_close(nmf.component_masks(result.W, H, per_clip.bool()), masks)
    everything = nmf.component_audio(waves[:2], result.W, H[:2], list(range(8)))
    assert everything.shape == waves[:2].shape
    assert (everything - waves[:2]).abs().max() < 1e-3  # all components together give the clip back
    part = nmf.component_audio(waves[0], result.W, H[0], 0)
    assert part.shape == waves[0].shape and part.norm() < waves[0].norm()
