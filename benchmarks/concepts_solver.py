"""The non-negative lasso of concept decomposition: audiox against every peer, in one run, at a measured objective gap.

The problem is SpLiCE's at the paper's scale: 4,096 embeddings, 2,000 concepts, d = 512, l1 = 0.05,
``min_w ||z - C^T w||^2 + l1 ||w||_1, w >= 0`` per embedding. The dictionary is random unit vectors, centred as
SpLiCE centres a vocabulary; each embedding is a sparse non-negative mix of 40 atoms plus noise, normalised, which
gives about 90 active concepts at l1 = 0.05, as the paper reports for its 2,000-word vocabularies. Seeded.

Rows (each timed ``--repeats`` times, the solvers interleaved, median reported, the load average recorded):

* **audiox ADMM**: :func:`audiox.concepts.decompose` on the whole batch (its default tol 2e-4, and tol 1e-6);
* **audiox ADMM, plain loop**: the same iteration as audiox wrote it before issue 18 (the three ADMM lines as they
  read, a fresh array per operation, the SVD of C), kept here to show what the fused loop gains: same steps;
* **scikit-learn per clip**: SpLiCE's default path (``solver='skl'``), one ``Lasso(alpha=l1 / (2 d),
  positive=True, fit_intercept=False, max_iter=10000, tol=1e-6)`` per embedding;
* **celer** and **skglm** per clip, the same problem (``positive=True``) at tol 1e-6;
* **SpLiCE ADMM**, batched, reimplemented from its published description (its code hard-wires CUDA): a Cholesky
  factor of ``2 C C^T + rho I`` computed once, a non-negative soft threshold, rho = 5, tol 1e-6 on the batch's
  primal and dual residuals, up to 2,000 steps, a random start;
* **FISTA**, batched, step ``1 / L`` with ``L = 2 sigma_max(C)^2``, until the objective changes by under 1e-10.

Per-clip loops (scikit-learn, celer, skglm) and the slow batched peers (SpLiCE ADMM, FISTA: thousands of steps)
run on a seeded subset (256 clips by default) and their times are scaled linearly to the full batch. That is exact
for independent per-clip fits; for a batched method it assumes its per-clip cost does not fall further with batch
size (with 256 columns its matrix products already run near full speed on a CPU; on a GPU pass
``--batched-subset 4096``). The objective gap of every row is measured
on the 256 clips every row solved, against scikit-learn at tol 1e-10 in float64 (the reference row).

A second table runs the course's own sizes: the 300 SynthSounds test clips embedded by tiny-CLAP (d = 128) over
the offline vocabularies (123, 1,414 and 1,752 concepts) at l1 = 0.05, audiox against its plain loop, each gap
against audiox at tol 1e-7.

    python benchmarks/concepts_solver.py                 # 2 threads, audiox.config.device()
    python benchmarks/concepts_solver.py --threads 16 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from threadpoolctl import threadpool_limits
from torch.nn import functional as F

from audiox.concepts import ALPHA, CHECK_EVERY, DEFAULT_TOL, decompose, default_rho, nonnegative_lasso, objective
from audiox.config import device as pick_device
from results_io import RESULTS, timed, write_result

OUT = RESULTS / "concepts_solver.json"


def make_problem(n_embeddings: int, n_concepts: int, dim: int, seed: int, n_true: int = 40, noise: float = 0.015):
    """A centred random unit dictionary ``[K, D]`` and unit embeddings ``[N, D]`` built from a few of its atoms."""
    g = torch.Generator().manual_seed(seed)
    dictionary = F.normalize(torch.randn(n_concepts, dim, generator=g), dim=-1)
    dictionary = F.normalize(dictionary - dictionary.mean(dim=0), dim=-1)
    chosen = torch.argsort(torch.rand(n_embeddings, n_concepts, generator=g), dim=1)[:, :n_true]
    mix = torch.rand(n_embeddings, n_true, generator=g) ** 2
    weights = torch.zeros(n_embeddings, n_concepts).scatter_(1, chosen, mix)
    clean = F.normalize(weights @ dictionary, dim=-1)
    embeddings = F.normalize(clean + noise * torch.randn(n_embeddings, dim, generator=g), dim=-1)
    return dictionary, embeddings


def per_clip(estimator, dictionary: torch.Tensor, embeddings: torch.Tensor, dtype=np.float32) -> torch.Tensor:
    """One fit of a scikit-learn-style Lasso per embedding (SpLiCE's loop), on the arrays torch gives it."""
    x = np.asfortranarray(dictionary.T.numpy().astype(dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return torch.tensor(np.stack([estimator.fit(x, z.astype(dtype)).coef_.copy() for z in embeddings.numpy()]))


def sklearn_lasso(l1: float, dim: int, tol: float) -> Lasso:
    # scikit-learn's objective is 1 / (2 n) ||z - X w||^2 + alpha ||w||_1 with n = d samples: alpha = l1 / (2 d)
    return Lasso(alpha=l1 / (2 * dim), fit_intercept=False, positive=True, max_iter=10000, tol=tol)


def celer_lasso(l1: float, dim: int, tol: float):
    from celer import Lasso as CelerLasso

    return CelerLasso(alpha=l1 / (2 * dim), fit_intercept=False, positive=True, tol=tol)


def skglm_lasso(l1: float, dim: int, tol: float):
    from skglm import Lasso as SkglmLasso

    return SkglmLasso(alpha=l1 / (2 * dim), fit_intercept=False, positive=True, tol=tol)


@torch.no_grad()
def plain_admm(dictionary: torch.Tensor, embeddings: torch.Tensor, l1: float, tol: float = DEFAULT_TOL,
               max_iter: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """audiox's ADMM loop as it was before issue 18: the same iterates, each line as written, fresh arrays."""
    z = embeddings
    p, sigma, _ = torch.linalg.svd(dictionary.cpu().double(), full_matrices=False)
    u_factor, sigma2 = (p * sigma).float().to(z.device), (sigma**2).float().to(z.device)
    rho = default_rho(torch.full((len(z), 1), l1, device=z.device))
    b = z @ dictionary.T
    q, two_bu = 2 * b / rho, 2 * (b @ u_factor)
    inverse, threshold = 1 / (rho * (sigma2 + rho / 2)), l1 / rho
    s = torch.zeros_like(b)
    final_s, iterations = torch.empty_like(b), torch.full((len(z),), max_iter, device=z.device)
    running = torch.arange(len(z), device=z.device)
    w = torch.relu(s - threshold)
    for step in range(1, max_iter + 1):
        m = (two_bu + rho * ((2 * w - s) @ u_factor)) * inverse
        s_next = torch.addmm(torch.lerp(s, q + w, ALPHA), m, u_factor.T, alpha=-ALPHA)
        w_next = torch.relu(s_next - threshold)
        if step % CHECK_EVERY == 0 or step == max_iter:
            scale = tol * s.norm(dim=1)
            done = ((s_next - s).norm(dim=1) / ALPHA <= scale) & ((w_next - w).norm(dim=1) <= scale)
            finished = done | (step == max_iter)
            if finished.any():
                final_s[running[finished]], iterations[running[finished]] = s_next[finished], step
                keep = ~finished
                if not keep.any():
                    break
                running, s_next, w_next = running[keep], s_next[keep], w_next[keep]
                q, two_bu, inverse, threshold, rho = q[keep], two_bu[keep], inverse[keep], threshold[keep], rho[keep]
        s, w = s_next, w_next
    return torch.relu(final_s - l1 / default_rho(torch.tensor(l1))), iterations


@torch.no_grad()
def splice_admm(dictionary: torch.Tensor, embeddings: torch.Tensor, l1: float, rho: float = 5.0, tol: float = 1e-6,
                max_iter: int = 2000, seed: int = 0) -> tuple[torch.Tensor, int]:
    """SpLiCE's batched ADMM as its paper and README describe it (rewritten here; its code requires CUDA)."""
    a = dictionary.T  # [D, K]
    k = a.shape[1]
    factor = torch.linalg.cholesky(2 * a.T @ a + rho * torch.eye(k, dtype=a.dtype, device=a.device))
    q = 2 * a.T @ embeddings.T  # [K, B]
    g = torch.Generator(device=a.device).manual_seed(seed)
    w = torch.randn(q.shape, generator=g, dtype=a.dtype, device=a.device)
    u = torch.randn(q.shape, generator=g, dtype=a.dtype, device=a.device)
    for step in range(1, max_iter + 1):
        x = torch.cholesky_solve(q + rho * (w - u), factor)
        w_next = torch.relu(x + u - l1 / rho)
        u = u + x - w_next
        primal, dual = (x - w_next).norm(), rho * (w_next - w).norm()
        w = w_next
        if primal < tol and dual < tol:
            break
    return w.T.contiguous(), step


@torch.no_grad()
def fista(dictionary: torch.Tensor, embeddings: torch.Tensor, l1: float, tol: float = 1e-10,
          max_iter: int = 5000) -> tuple[torch.Tensor, int]:
    """Batched FISTA with a constant step: the plain accelerated proximal gradient baseline."""
    lipschitz = 2 * torch.linalg.matrix_norm(dictionary, ord=2) ** 2
    b = embeddings @ dictionary.T  # [B, K]
    w = torch.zeros_like(b)
    y, t, previous = w, 1.0, None
    for step in range(1, max_iter + 1):
        gradient = 2 * ((y @ dictionary) @ dictionary.T - b) + l1
        w_next = torch.relu(y - gradient / lipschitz)
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        y = w_next + ((t - 1) / t_next) * (w_next - w)
        w, t = w_next, t_next
        if step % 10 == 0:
            f = objective(embeddings, dictionary, w, l1)
            if previous is not None and ((previous - f).abs() <= tol * f.abs()).all():
                break
            previous = f
    return w, step


def course_sizes(repeats: int, device: torch.device, l1: float = 0.05) -> list[dict]:
    """audiox against its plain loop on the course's own problem: 300 test clips, each offline vocabulary."""
    import audiox
    from audiox import concepts, vocab, zeroshot

    clap = audiox.load_clap()
    corpus_emb, _ = zeroshot.embed_dataset(clap, audiox.load_dataset("synth", split="train"), progress=False)
    emb, _ = zeroshot.embed_dataset(clap, audiox.load_dataset("synth", split="test"), progress=False)
    z = concepts.centre(emb, concepts.audio_mean(None, corpus_emb)).to(device)
    rows = []
    for name in vocab.VOCABULARIES:
        vectors = concepts.concept_dictionary(clap, vocab.load_vocabulary(name)).vectors.to(device)
        reference = nonnegative_lasso(z, vectors, l1, tol=1e-7, max_iter=50_000).objective.double()
        solvers = {"audiox": lambda: decompose(z, vectors, l1=l1), "plain loop": lambda: plain_admm(vectors, z, l1)[0]}
        runs, outputs = {k: [] for k in solvers}, {}
        for _ in range(repeats):
            for key, solve in solvers.items():
                outputs[key], timing = timed(solve, device)
                runs[key].append(timing)
        row = {"vocabulary": name, "n_concepts": len(vectors), "clips": len(z), "dim": z.shape[1], "l1": l1,
               "steps": round(float(nonnegative_lasso(z, vectors, l1).iterations.float().mean()), 1)}
        for key in solvers:
            f = objective(z.double(), vectors.double(), outputs[key].double(), l1)
            row[key] = {"seconds": statistics.median(t["seconds"] for t in runs[key]),
                        "max_relative_gap": float(((f - reference) / reference).max()), "runs": runs[key]}
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-embeddings", type=int, default=4096)
    parser.add_argument("--n-concepts", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--l1", type=float, default=0.05)
    parser.add_argument("--subset", type=int, default=256, help="clips the per-clip loops solve (time scaled)")
    parser.add_argument("--batched-subset", type=int, default=256, help="clips SpLiCE ADMM and FISTA solve")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each row, interleaved (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: audiox.config.device()")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--skip-course", action="store_true", help="skip the course-size table (needs the offline data)")
    args = parser.parse_args(argv)
    if not args.subset <= args.batched_subset <= args.n_embeddings:
        parser.error("need --subset <= --batched-subset <= --n-embeddings: every row's gap is measured on the subset")

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    dictionary, embeddings = make_problem(args.n_embeddings, args.n_concepts, args.dim, args.seed)
    order = torch.randperm(args.n_embeddings, generator=torch.Generator().manual_seed(args.seed + 1))
    subset, batched_subset = order[: args.subset], order[: args.batched_subset]  # nested: the gap is on `subset`
    z, vectors = embeddings.to(device), dictionary.to(device)
    n, l1, d = args.n_embeddings, args.l1, args.dim

    # every row: (name, clips it solves, function returning weights of those clips, extra info)
    rows = {
        f"audiox batched ADMM (tol {DEFAULT_TOL:.0e}, default)": (n, lambda: decompose(z, vectors, l1=l1).cpu()),
        "audiox batched ADMM (tol 1e-6)": (n, lambda: decompose(z, vectors, l1=l1, tol=1e-6, max_iter=5000).cpu()),
        f"audiox ADMM, plain loop (before #18, tol {DEFAULT_TOL:.0e})": (
            n, lambda: plain_admm(vectors, z, l1)[0].cpu()),
        "scikit-learn per clip (SpLiCE default)": (
            len(subset), lambda: per_clip(sklearn_lasso(l1, d, 1e-6), dictionary, embeddings[subset])),
        "celer per clip (tol 1e-6)": (len(subset), lambda: per_clip(celer_lasso(l1, d, 1e-6), dictionary,
                                                                    embeddings[subset], np.float64)),
        "skglm per clip (tol 1e-6)": (len(subset), lambda: per_clip(skglm_lasso(l1, d, 1e-6), dictionary,
                                                                    embeddings[subset], np.float64)),
        "SpLiCE ADMM, batched (rho 5, tol 1e-6)": (
            len(batched_subset), lambda: splice_admm(vectors, z[batched_subset.to(device)], l1)[0].cpu()),
        "FISTA, batched": (len(batched_subset), lambda: fista(vectors, z[batched_subset.to(device)], l1)[0].cpu()),
    }
    # warm-ups, untimed: first-call costs (kernels, allocator, numba's compilation) are not the solvers'
    decompose(z[:8], vectors, l1=l1)
    for make in (celer_lasso, skglm_lasso):
        per_clip(make(l1, d, 1e-6), dictionary, embeddings[:2], np.float64)

    reference, reference_timing = timed(lambda: per_clip(sklearn_lasso(l1, d, 1e-10), dictionary.double(),
                                                         embeddings[subset].double(), np.float64))
    f_reference = objective(embeddings[subset].double(), dictionary.double(), reference.double(), l1)

    timings, outputs = {name: [] for name in rows}, {}
    with threadpool_limits(args.threads):
        for _ in range(args.repeats):
            for name, (_, solve) in rows.items():  # interleaved: a burst of load hits every row alike
                outputs[name], timing = timed(solve, device)
                timings[name].append(timing)

    table = []
    for name, (clips, _) in rows.items():
        weights = outputs[name]
        # a row that solved order[:clips] holds `subset` (= order[:len(subset)]) in its first rows
        on_subset = weights[subset] if clips == n else weights[: len(subset)]
        f = objective(embeddings[subset].double(), dictionary.double(), on_subset.double(), l1)
        gap = (f - f_reference) / f_reference
        seconds = statistics.median(t["seconds"] for t in timings[name]) * n / clips
        table.append({"solver": name, "seconds_full_batch": round(seconds, 3), "clips_solved": clips,
                      "scaled": clips != n, "max_relative_gap": float(gap.max()),
                      "mean_active": round(float((weights > 0).sum(1).float().mean()), 1), "runs": timings[name]})
    sk = next(r for r in table if r["solver"].startswith("scikit-learn"))["seconds_full_batch"]
    for row in table:
        row["speedup_over_sklearn"] = round(sk / row["seconds_full_batch"], 2)
    steps = nonnegative_lasso(z[subset.to(device)], vectors, l1).iterations.float()
    with threadpool_limits(args.threads):
        course = [] if args.skip_course else course_sizes(args.repeats, device)

    result = {
        "problem": {"n_embeddings": n, "n_concepts": args.n_concepts, "dim": d, "l1": l1, "seed": args.seed,
                    "subset": len(subset), "batched_subset": len(batched_subset)},
        "reference": {"solver": "scikit-learn per clip, tol 1e-10, float64", **reference_timing},
        "rows": table,
        "audiox_admm_steps": {"mean": round(float(steps.mean()), 1), "max": int(steps.max())},
        "course_sizes": course,
        "environment": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
                        "threads": args.threads, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                        "sklearn": __import__("sklearn").__version__, "celer": __import__("celer").__version__,
                        "skglm": __import__("skglm").__version__, "python": platform.python_version(),
                        "machine": platform.processor() or platform.machine()},
    }

    print(f"non-negative lasso, {n:,} embeddings x {args.n_concepts:,} concepts, d={d}, l1={l1}, {args.threads} "
          f"threads, device={result['environment']['device']}; median of {args.repeats} interleaved runs; gap on "
          f"{len(subset)} clips against scikit-learn at tol 1e-10 (float64)")
    print(f"{'solver':<50} {f's ({n:,} clips)':>16} {'vs sklearn':>11} {'max gap':>9} {'active':>7} {'load':>10}")
    for row in table:
        load = max(max(t["load_average"]) for t in row["runs"])
        print(f"{row['solver']:<50} {row['seconds_full_batch']:>15.2f}{'*' if row['scaled'] else ' '} "
              f"{row['speedup_over_sklearn']:>10.2f}x {row['max_relative_gap']:>9.1e} {row['mean_active']:>7} "
              f"{load:>10.2f}")
    print(f"* solved {len(subset)} (per-clip loops) or {len(batched_subset)} (batched peers) clips, time scaled "
          f"linearly to {n:,}; load: the highest 1-minute load average seen during that row's runs")
    if course:
        print(f"\ncourse sizes: {course[0]['clips']} SynthSounds test clips, tiny-CLAP d={course[0]['dim']}, "
              f"l1={course[0]['l1']}; gap against audiox at tol 1e-7")
        print(f"{'vocabulary':<10} {'K':>6} {'steps':>6} {'audiox s':>9} {'plain loop s':>13} {'speedup':>8} "
              f"{'audiox gap':>11} {'plain gap':>10}")
        for row in course:
            a, p = row["audiox"], row["plain loop"]
            print(f"{row['vocabulary']:<10} {row['n_concepts']:>6,} {row['steps']:>6} {a['seconds']:>9.3f} "
                  f"{p['seconds']:>13.3f} {p['seconds'] / a['seconds']:>7.2f}x {a['max_relative_gap']:>11.1e} "
                  f"{p['max_relative_gap']:>10.1e}")
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
