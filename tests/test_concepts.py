"""audiox.concepts: the non-negative lasso is solved (KKT, sklearn), batched, cached and checked at the edges."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso
from torch.nn import functional as F

from audiox import concepts
from audiox.concepts import (
    ConceptDictionary, audio_mean, centre, chance_precision_at_k, concept_dictionary, concept_precision_at_k,
    decompose, fit_concept_head, intervene, nonnegative_lasso, objective, recompose, top_concepts,
    zero_shot_vs_sparsity,
)
from audiox.data.synth import ATTRIBUTE_WORDS, CLASSES, SynthSounds
from audiox.models.clap import TinyClap
from audiox.models.zoo import load_clap

WORDS = list(CLASSES) + ATTRIBUTE_WORDS


def problem(n_concepts, dim, batch, seed=0, n_true=5, noise=0.05):
    """A random unit dictionary [K, D] and unit embeddings made of a few of its atoms plus noise."""
    g = torch.Generator().manual_seed(seed)
    dictionary = F.normalize(torch.randn(n_concepts, dim, generator=g), dim=-1)
    chosen = torch.argsort(torch.rand(batch, n_concepts, generator=g), dim=1)[:, :n_true]
    weights = torch.zeros(batch, n_concepts).scatter_(1, chosen, torch.rand(batch, n_true, generator=g))
    z = F.normalize(weights @ dictionary + noise * torch.randn(batch, dim, generator=g), dim=-1)
    return dictionary, z


SIZES = [(50, 32), (300, 128), (200, 64), (60, 128)]  # over-complete (K > D) and under-complete


@pytest.fixture(scope="module")
def clap():
    return load_clap("tiny-clap", device="cpu")


@pytest.fixture(scope="module")
def synth(clap):
    ds = SynthSounds("test", n_per_class=3)
    embeddings = clap.embed_audio(ds.waves()).detach()
    return ds, embeddings


@pytest.fixture(scope="module")
def dictionary(clap):
    return concept_dictionary(clap, WORDS, cache=False, progress=False)


# ---- the solver solves the problem --------------------------------------------------------------

@pytest.mark.parametrize("n_concepts,dim", SIZES)
@pytest.mark.parametrize("l1", [0.01, 0.05, 0.2])
def test_solution_meets_kkt_conditions(n_concepts, dim, l1):
    vectors, z = problem(n_concepts, dim, batch=16)
    solution = nonnegative_lasso(z, vectors, l1)
    w = solution.concept_weights
    gradient = 2 * (w @ vectors - z) @ vectors.T  # of ||z - C^T w||^2
    active = w > 0
    assert solution.converged.all()
    assert (w >= 0).all() and active.any()
    # stationarity on the active set, and no inactive concept that would lower the objective
    assert (gradient[active] + l1).abs().max() <= 2e-2 * l1
    assert (gradient[~active] + l1).min() >= -2e-2 * l1


def sklearn_weights(vectors, z, l1):
    """SpLiCE's reference path: one sklearn Lasso per clip, alpha = l1 / (2 D), solved tightly in float64."""
    dim = vectors.shape[1]
    lasso = Lasso(alpha=l1 / (2 * dim), positive=True, fit_intercept=False, max_iter=100_000, tol=1e-10)
    x = vectors.double().numpy().T
    return torch.tensor(np.stack([lasso.fit(x, row).coef_.copy() for row in z.double().numpy()]))


@pytest.mark.parametrize("n_concepts,dim", SIZES)
@pytest.mark.parametrize("l1", [0.01, 0.05, 0.2])
def test_objective_matches_sklearn(n_concepts, dim, l1):
    vectors, z = problem(n_concepts, dim, batch=6, seed=1)
    ours = decompose(z, vectors, l1=l1)
    reference = sklearn_weights(vectors, z, l1)
    f_ours = objective(z.double(), vectors.double(), ours.double(), l1)
    f_ref = objective(z.double(), vectors.double(), reference, l1)
    assert ((f_ours - f_ref) / f_ref).max() <= 1e-4
    # same problem, so (nearly) the same support: a tiny weight may sit on either side of 0
    assert ((ours > 1e-3) & (reference == 0)).sum() == 0


def test_correlated_dictionary_matches_sklearn():
    # word embeddings are correlated (a steep spectrum): the hard case for ADMM's step size
    g = torch.Generator().manual_seed(3)
    spectrum = torch.arange(1, 65, dtype=torch.float32) ** -0.75
    vectors = F.normalize(torch.randn(200, 64, generator=g) * spectrum + 0.3 * torch.randn(64, generator=g), dim=-1)
    vectors = F.normalize(vectors - vectors.mean(0), dim=-1)
    z = F.normalize(torch.rand(6, 200, generator=g) ** 6 @ vectors + 0.02 * torch.randn(6, 64, generator=g), dim=-1)
    for l1 in (0.02, 0.2):
        ours = decompose(z, vectors, l1=l1)
        f_ours = objective(z.double(), vectors.double(), ours.double(), l1)
        f_ref = objective(z.double(), vectors.double(), sklearn_weights(vectors, z, l1), l1)
        assert ((f_ours - f_ref) / f_ref).max() <= 1e-4


def test_batch_equals_one_clip_at_a_time():
    vectors, z = problem(200, 64, batch=12, seed=2)
    batch = nonnegative_lasso(z, vectors, 0.05)
    alone = [nonnegative_lasso(z[i : i + 1], vectors, 0.05) for i in range(len(z))]
    weights = torch.cat([a.concept_weights for a in alone])
    assert torch.allclose(batch.concept_weights, weights, atol=1e-3)
    assert torch.allclose(batch.objective, torch.cat([a.objective for a in alone]), rtol=1e-5)
    assert torch.equal(batch.concept_weights > 1e-3, weights > 1e-3)


def test_warm_start_reaches_the_same_solution_in_fewer_steps():
    vectors, z = problem(300, 128, batch=16, seed=3, n_true=20)
    previous = nonnegative_lasso(z, vectors, 0.05)
    cold = nonnegative_lasso(z, vectors, 0.08)
    warm = nonnegative_lasso(z, vectors, 0.08, warm_start=previous)
    assert ((warm.objective - cold.objective).abs() / cold.objective).max() <= 1e-4
    assert warm.iterations.float().mean() < cold.iterations.float().mean()
    # a subset of clips warm-starts from the subset of the solution
    some = torch.tensor([1, 4, 9])
    part = nonnegative_lasso(z[some], vectors, 0.08, warm_start=previous[some])
    assert torch.allclose(part.objective, cold.objective[some], rtol=1e-4)


def test_per_clip_l1_equals_separate_solves():
    vectors, z = problem(100, 32, batch=3, seed=4)
    l1 = torch.tensor([0.01, 0.05, 0.3])
    together = decompose(z, vectors, l1=l1)
    for i in range(3):
        assert torch.allclose(together[i], decompose(z[i : i + 1], vectors, l1=float(l1[i]))[0], atol=1e-3)


def test_more_l1_fewer_active_concepts():
    vectors, z = problem(300, 128, batch=16, seed=5, n_true=20)
    counts = [float((decompose(z, vectors, l1=l1) > 0).sum(1).float().mean()) for l1 in (0.005, 0.02, 0.05, 0.15, 0.5)]
    assert counts == sorted(counts, reverse=True) and counts[0] > 3 * counts[-1]


@pytest.mark.parametrize("target", [1, 5, 20, 50])
def test_n_concepts_hits_its_target(target):
    vectors, z = problem(300, 128, batch=8, seed=6, n_true=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clip that misses its target warns
        counts = (decompose(z, vectors, n_concepts=target) > 0).sum(dim=1)
    assert ((counts - target).abs() <= int(0.1 * target)).all(), counts.tolist()


def test_float64_in_float32_out():
    vectors, z = problem(50, 32, batch=2)
    weights = decompose(z.double(), vectors.double(), l1=0.05)
    assert weights.dtype == torch.float32
    assert torch.allclose(weights, decompose(z, vectors, l1=0.05), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    vectors, z = problem(300, 128, batch=8)
    on_gpu = decompose(z.cuda(), vectors.cuda(), l1=0.05)
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), decompose(z, vectors, l1=0.05), atol=1e-3)


# ---- bad input says what is wrong and how to fix it ---------------------------------------------

@pytest.mark.parametrize(
    "embeddings,match",
    [
        (torch.zeros(0, 32), "batch of 0"),
        (torch.cat([F.normalize(torch.ones(1, 32), dim=-1), torch.zeros(1, 32)]), r"rows \[1\] are all zero"),
        (torch.full((2, 32), float("nan")), r"rows \[0, 1\] contain NaN or inf"),
        (torch.tensor([[float("inf")] + [0.0] * 31]), "NaN or inf"),
        (torch.ones(2, 16), "D=16 but the dictionary has D=32"),
        (torch.ones(32), r"must be \[B, D\]"),
    ],
)
def test_bad_embeddings_are_refused(embeddings, match):
    vectors, _ = problem(50, 32, batch=1)
    with pytest.raises(ValueError, match=match):
        decompose(embeddings, vectors)


def test_bad_settings_are_refused():
    vectors, z = problem(50, 32, batch=2)
    with pytest.raises(ValueError, match="either l1 or n_concepts"):
        decompose(z, vectors, l1=0.1, n_concepts=5)
    with pytest.raises(ValueError, match="positive"):
        decompose(z, vectors, l1=0.0)
    with pytest.raises(ValueError, match=r"n_concepts must be an integer in \[1, 32\]"):
        decompose(z, vectors, n_concepts=40)


def test_unconverged_clips_warn():
    vectors, z = problem(50, 32, batch=2)
    with pytest.warns(UserWarning, match="did not converge in max_iter=3"):
        decompose(z, vectors, l1=0.05, max_iter=3)


# ---- recompose, intervene, read --------------------------------------------------------------------

def test_recompose_is_a_unit_embedding_near_the_original():
    vectors, z = problem(300, 128, batch=8, seed=7)
    mean = 0.3 * F.normalize(torch.randn(128), dim=0)
    raw = F.normalize(z + mean, dim=-1)  # embeddings in a cone around the mean
    weights = decompose(centre(raw, mean), vectors, l1=0.01)
    rebuilt = recompose(weights, vectors, mean)
    assert rebuilt.shape == (8, 128)
    assert torch.allclose(rebuilt.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert (rebuilt * raw).sum(-1).min() > 0.9
    assert torch.allclose(recompose(torch.zeros(1, 300), vectors, mean), F.normalize(mean, dim=0)[None], atol=1e-6)


def test_intervene_touches_exactly_the_named_concepts():
    words = ["siren", "bird", "rain", "wind"]
    weights = torch.tensor([[0.5, 0.2, 0.1, 0.0], [0.0, 0.3, 0.4, 0.2]])
    before = weights.clone()
    out = intervene(weights, words, remove=["bird"], scale={"rain": 2.0, "wind": 0.5})
    assert torch.equal(weights, before)  # the input is not modified
    assert torch.equal(out[:, 0], weights[:, 0])
    assert (out[:, 1] == 0).all()
    assert torch.allclose(out[:, 2], 2 * weights[:, 2]) and torch.allclose(out[:, 3], 0.5 * weights[:, 3])


def test_intervene_refuses_unknown_concepts_with_close_matches(dictionary):
    weights = torch.zeros(1, len(dictionary))
    with pytest.raises(ValueError, match=r"unknown concepts \['sirne'\].*'siren'.*dictionary.words"):
        intervene(weights, dictionary, remove=["sirne"])
    with pytest.raises(ValueError, match="unknown concepts"):
        intervene(weights, dictionary, scale={"trumpet": 2.0})
    with pytest.raises(ValueError, match=">= 0"):
        intervene(weights, dictionary, scale={"siren": -1.0})
    with pytest.raises(ValueError, match="both removed and scaled"):
        intervene(weights, dictionary, remove=["siren"], scale={"siren": 2.0})


def test_top_concepts_lists_active_ones_heaviest_first():
    weights = torch.tensor([[0.1, 0.0, 0.4, 0.2], [0.0, 0.0, 0.0, 0.3]])
    words = ["a", "b", "c", "d"]
    approx = pytest.approx
    assert top_concepts(weights, words, k=2) == [[("c", approx(0.4)), ("d", approx(0.2))], [("d", approx(0.3))]]
    assert [w for w, _ in top_concepts(weights[0], words, k=10)] == ["c", "d", "a"]


# ---- the dictionary: built as SpLiCE builds it, validated, cached ------------------------------------

def test_dictionary_is_centred_and_normalised(clap, dictionary):
    raw = F.normalize(clap.embed_text(WORDS).detach(), dim=-1)
    expected = F.normalize(raw - raw.mean(0), dim=-1)
    assert dictionary.words == WORDS
    assert torch.allclose(dictionary.vectors, expected, atol=1e-5)
    assert torch.allclose(dictionary.text_mean, raw.mean(0), atol=1e-6)
    assert dictionary.index("siren") == 0


@pytest.mark.parametrize(
    "words,match",
    [
        (["siren", ""], r"empty at positions \[1\]"),
        (["siren", "bird", "Siren "], r"duplicates: \['Siren ' \(same as 'siren'\)\]"),
        (["siren", "--"], "without letters or digits"),
        ([], "non-empty list"),
        (["siren"], "at least 2"),
    ],
)
def test_unusable_vocabularies_are_refused(clap, words, match):
    with pytest.raises(ValueError, match=match):
        concept_dictionary(clap, words, cache=False, progress=False)


def test_dictionary_cache_is_keyed_and_atomic(clap, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    first = concept_dictionary(clap, WORDS[:10], progress=False)
    files = sorted((tmp_path / "concepts").iterdir())
    assert [f.name for f in files] == [f"{first.key}.pt"] and clap.weights_sha256[:12] in first.key
    # a second call reads the file instead of embedding
    with monkeypatch.context() as m:
        m.setattr(clap, "embed_text", lambda texts: pytest.fail("embedded again instead of reading the cache"))
        again = concept_dictionary(clap, WORDS[:10], progress=False)
    assert torch.equal(again.vectors, first.vectors) and again.words == first.words
    # another vocabulary (even the same words in another order) is another file
    other = concept_dictionary(clap, WORDS[:10][::-1], progress=False)
    assert other.key != first.key and len(list((tmp_path / "concepts").iterdir())) == 2

    # a write that dies half-way leaves neither a file under the real name nor a temporary one
    def dies_half_way(obj, path):
        open(path, "wb").write(b"half a dictionary")
        raise KeyboardInterrupt

    monkeypatch.setattr(concepts.torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        concept_dictionary(clap, WORDS[:12], progress=False)
    assert len(list((tmp_path / "concepts").iterdir())) == 2


def test_random_weights_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOX_CACHE", str(tmp_path))
    concept_dictionary(TinyClap(), WORDS[:5], progress=False)  # no weights_sha256: name alone is no key
    assert not (tmp_path / "concepts").exists()


# ---- the audio side and the paper's checks on tiny-clap -----------------------------------------------

def test_audio_mean_from_waves_equals_from_embeddings(clap, synth):
    ds, embeddings = synth
    from_waves = audio_mean(clap, ds.waves()[:6])
    assert torch.allclose(from_waves, audio_mean(clap, embeddings[:6]), atol=1e-5)
    with pytest.raises(ValueError, match="NaN or inf"):
        audio_mean(None, torch.full((2, 4), float("nan")))


def test_concepts_keep_zero_shot_and_name_the_attributes(clap, synth, dictionary):
    ds, embeddings = synth
    mean = audio_mean(clap, embeddings)
    result = zero_shot_vs_sparsity(clap, embeddings, ds.labels, ds.classes, dictionary, mean, [0.02, 0.2, 1.0])
    rows = result["rows"]
    assert result["dense_accuracy"] >= 0.9
    assert [r["mean_l0"] for r in rows] == sorted((r["mean_l0"] for r in rows), reverse=True)
    assert rows[0]["accuracy"] >= result["dense_accuracy"] - 0.1 and rows[0]["cosine"] > 0.9
    assert all(0 < r["cosine"] <= 1 + 1e-6 for r in rows)
    # the per-clip hits behind each accuracy, for intervals: they are the accuracy, clip by clip
    assert all(r["hits"].shape == (len(ds),) and float(r["hits"].mean()) == r["accuracy"] for r in rows)
    assert float(result["dense_hits"].mean()) == result["dense_accuracy"]

    weights = decompose(centre(embeddings, mean), dictionary, l1=0.1)
    attributes = [set(ds[i]["attributes"].values()) for i in range(len(ds))]
    precision = concept_precision_at_k(weights, dictionary, attributes, k=3)
    chance = chance_precision_at_k(weights, dictionary, attributes, k=3)
    assert precision > 2 * chance and chance > 0


def test_chance_precision_is_what_shuffled_words_give():
    g = torch.Generator().manual_seed(0)
    weights = torch.rand(20, 30, generator=g) * (torch.rand(20, 30, generator=g) > 0.7)
    words = [f"w{i}" for i in range(30)]
    truth = [{f"w{j}" for j in torch.randperm(30, generator=g)[:4].tolist()} for _ in range(20)]
    shuffled = [concept_precision_at_k(weights, [words[j] for j in torch.randperm(30, generator=g)], truth, k=5)
                for _ in range(400)]
    assert np.mean(shuffled) == pytest.approx(chance_precision_at_k(weights, words, truth, k=5), abs=0.01)


def test_concept_head_learns_the_class_prompts():
    g = torch.Generator().manual_seed(0)
    prompts = F.normalize(torch.randn(5, 16, generator=g), dim=-1)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    labels = torch.arange(200) % 5
    # audio embeddings: the class prompt, rotated away (a modality gap) and noisy
    z = F.normalize((prompts[labels] + 0.3 * torch.randn(200, 16, generator=g)) @ rotation, dim=-1)
    head = fit_concept_head(z[:150], labels[:150], prompts, epochs=40, progress=False)
    again = fit_concept_head(z[:150], labels[:150], prompts, epochs=40, progress=False)
    accuracy = float(((head(z[150:]) @ prompts.T).argmax(-1) == labels[150:]).float().mean())
    assert accuracy >= 0.9
    assert float(((z[150:] @ prompts.T).argmax(-1) == labels[150:]).float().mean()) < 0.6  # untuned is poor
    assert torch.equal(head.linear.weight, again.linear.weight)  # seeded
    tuned = head(z).detach()
    vectors = F.normalize(torch.randn(40, 16, generator=g), dim=-1)
    assert decompose(centre(tuned, audio_mean(None, tuned)), vectors).shape == (200, 40)


def test_dictionary_object_and_tensor_give_the_same_weights(dictionary):
    z = F.normalize(torch.randn(4, 128, generator=torch.Generator().manual_seed(1)), dim=-1)
    assert isinstance(dictionary, ConceptDictionary)
    assert torch.allclose(decompose(z, dictionary, l1=0.1), decompose(z, dictionary.vectors, l1=0.1), atol=1e-6)


@pytest.mark.parametrize("n_concepts,dim", [(300, 64), (40, 64)])
def test_factor_reconstructs_the_dictionary(n_concepts, dim):
    # ADMM's factor C = U Q^T with U^T U = S^2, also for a centred (rank-deficient) dictionary
    vectors, _ = problem(n_concepts, dim, batch=1)
    for c in (vectors, F.normalize(vectors - vectors.mean(0), dim=-1)):
        u, sigma2, q, u_ones = concepts._factor(c)
        assert u.shape == (n_concepts, min(n_concepts, dim)) and q.shape == (dim, min(n_concepts, dim))
        assert torch.allclose(u @ q.T, c, atol=1e-5)
        assert torch.allclose(u.T @ u, torch.diag(sigma2), atol=1e-4)
        assert (sigma2 >= 0).all() and torch.equal(u_ones[:, :-1], u) and (u_ones[:, -1] == 1).all()


def test_default_tol_is_within_1e_6_of_sklearn_on_a_splice_like_problem():
    # SpLiCE's regime at a twentieth of its size: about 90 of 2,000 concepts active per clip, d = 512
    # (benchmarks/concepts_solver.py runs it at full size against every peer)
    g = torch.Generator().manual_seed(0)
    vectors = F.normalize(torch.randn(2000, 512, generator=g), dim=-1)
    vectors = F.normalize(vectors - vectors.mean(0), dim=-1)
    chosen = torch.argsort(torch.rand(12, 2000, generator=g), dim=1)[:, :40]
    weights = torch.zeros(12, 2000).scatter_(1, chosen, torch.rand(12, 40, generator=g) ** 2)
    z = F.normalize(F.normalize(weights @ vectors, dim=-1) + 0.015 * torch.randn(12, 512, generator=g), dim=-1)
    ours = decompose(z, vectors, l1=0.05)
    f_ours = objective(z.double(), vectors.double(), ours.double(), 0.05)
    f_ref = objective(z.double(), vectors.double(), sklearn_weights(vectors, z, 0.05), 0.05)
    assert 60 <= (ours > 0).sum(1).float().mean() <= 130
    assert ((f_ours - f_ref) / f_ref).max() <= 1e-6
