"""Speed of audiox's batched ADMM concept decomposition against SpLiCE's default solver, at equal objective.

SpLiCE's default path fits one scikit-learn ``Lasso(alpha=l1 / (2 d), positive=True,
fit_intercept=False, max_iter=10000, tol=1e-6)`` per embedding, on the float32 arrays it gets
from torch. audiox solves the same problem for the whole batch at once (:func:`audiox.concepts.decompose`).

The problem is the paper's scale: 4,096 embeddings, 2,000 concepts, d = 512, l1 = 0.05. The
dictionary is random unit vectors, centred as SpLiCE centres a vocabulary; each embedding is a
sparse non-negative mix of 40 atoms plus noise, normalised, which gives about 90 active
concepts at l1 = 0.05, as the paper reports for its 2,000-word vocabularies. Everything is seeded.

sklearn runs on a seeded subset (256 by default) and its time is extrapolated linearly to the
full batch (each clip is an independent fit, so its cost is linear in the number of clips);
the objective gap is measured on that subset. Both solvers get the same number of threads.

    python benchmarks/concepts_solver.py                 # 2 threads, audiox.config.device()
    python benchmarks/concepts_solver.py --threads 16 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import Lasso
from threadpoolctl import threadpool_limits
from torch.nn import functional as F

from audiox.concepts import decompose, nonnegative_lasso, objective
from audiox.config import device as pick_device

RESULTS = Path(__file__).resolve().parent / "results" / "concepts_solver.json"


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


def sklearn_splice(dictionary: torch.Tensor, embeddings: torch.Tensor, l1: float) -> torch.Tensor:
    """SpLiCE's ``solver='skl'`` path, verbatim in its settings: one Lasso fit per embedding."""
    lasso = Lasso(alpha=l1 / (2 * dictionary.shape[1]), fit_intercept=False, positive=True, max_iter=10000, tol=1e-6)
    x = dictionary.T.numpy()
    return torch.tensor(np.stack([lasso.fit(x, z).coef_.copy() for z in embeddings.numpy()]))


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-embeddings", type=int, default=4096)
    parser.add_argument("--n-concepts", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--l1", type=float, default=0.05)
    parser.add_argument("--sklearn-subset", type=int, default=256, help="clips sklearn solves (time extrapolated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: audiox.config.device()")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    dictionary, embeddings = make_problem(args.n_embeddings, args.n_concepts, args.dim, args.seed)
    order = torch.randperm(args.n_embeddings, generator=torch.Generator().manual_seed(args.seed + 1))
    subset = order[: args.sklearn_subset]

    # audiox: the whole batch on the device, the dictionary's factorisation included in the time
    z, vectors = embeddings.to(device), dictionary.to(device)
    decompose(z[:8], vectors, l1=args.l1)  # warm-up: first-call costs (kernels, allocator) are not the solver's
    synchronise(device)
    start = time.perf_counter()
    ours = decompose(z, vectors, l1=args.l1)
    synchronise(device)
    ours_seconds = time.perf_counter() - start
    steps = nonnegative_lasso(z[subset.to(device)], vectors, args.l1).iterations.float()
    ours = ours.cpu()

    with threadpool_limits(args.threads):
        start = time.perf_counter()
        reference = sklearn_splice(dictionary, embeddings[subset], args.l1)
        sklearn_subset_seconds = time.perf_counter() - start
    sklearn_seconds = sklearn_subset_seconds * args.n_embeddings / len(subset)

    f_ours = objective(embeddings[subset].double(), dictionary.double(), ours[subset].double(), args.l1)
    f_ref = objective(embeddings[subset].double(), dictionary.double(), reference.double(), args.l1)
    gap = (f_ours - f_ref) / f_ref
    result = {
        "problem": {"n_embeddings": args.n_embeddings, "n_concepts": args.n_concepts, "dim": args.dim, "l1": args.l1,
                    "seed": args.seed, "sklearn_subset": len(subset)},
        "audiox": {"seconds": round(ours_seconds, 3), "ms_per_clip": round(1e3 * ours_seconds / args.n_embeddings, 4),
                   "mean_active": round(float((ours > 0).sum(1).float().mean()), 1),
                   "admm_steps_mean": round(float(steps.mean()), 1), "admm_steps_max": int(steps.max())},
        "sklearn": {"seconds_extrapolated": round(sklearn_seconds, 2),
                    "seconds_on_subset": round(sklearn_subset_seconds, 3),
                    "ms_per_clip": round(1e3 * sklearn_subset_seconds / len(subset), 3),
                    "mean_active": round(float((reference > 0).sum(1).float().mean()), 1)},
        "speedup": round(sklearn_seconds / ours_seconds, 2),
        "relative_objective_gap": {"max": float(gap.max()), "mean": float(gap.mean()), "min": float(gap.min())},
        "equal_objective": bool(gap.max() <= 1e-4),
        "environment": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
                        "threads": args.threads, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                        "python": platform.python_version(), "machine": platform.processor() or platform.machine()},
    }

    n, k = args.n_embeddings, args.n_concepts
    print(f"non-negative lasso, {n:,} embeddings x {k:,} concepts, d={args.dim}, l1={args.l1}, "
          f"{args.threads} threads, device={result['environment']['device']}")
    print(f"{'solver':<34} {'seconds':>9} {'ms/clip':>9} {'active':>7}")
    print(f"{'audiox batched ADMM':<34} {ours_seconds:>9.2f} {result['audiox']['ms_per_clip']:>9.3f} "
          f"{result['audiox']['mean_active']:>7}")
    print(f"{'sklearn Lasso per clip (SpLiCE)':<34} {sklearn_seconds:>9.2f} {result['sklearn']['ms_per_clip']:>9.3f} "
          f"{result['sklearn']['mean_active']:>7}")
    print(f"sklearn timed on a seeded subset of {len(subset)} clips ({sklearn_subset_seconds:.2f} s), "
          f"extrapolated linearly to {n:,}")
    print(f"speedup {result['speedup']}x; ADMM steps mean {result['audiox']['admm_steps_mean']} max "
          f"{result['audiox']['admm_steps_max']}; relative objective gap audiox vs sklearn on the subset: "
          f"max {gap.max():.1e}, mean {gap.mean():.1e} ({'<=' if result['equal_objective'] else '>'} 1e-4)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    return result


if __name__ == "__main__":
    main()
