"""Where the Euclidean NMF fit ends, by start and by HALS sweeps: local minima, not a slow solver (issue 18).

At K = 25 on the 100 training clips of benchmarks/nmf.py, audiox's default fit (nndsvda, one H sweep and five W
sweeps per iteration) stays at a final cost 0.94% above scikit-learn's for 400 iterations. This script fits the same
K from the default start with 1-5 W sweeps, and from random starts (seeds 1-3, default sweeps), on training and
on validation clips (100 and 300), 400 iterations each, and prints each final cost relative to the lowest in its
row. A row whose best sweep count differs from another's, or whose random start ends below the nndsvda one, is
a local minimum chosen by the start. It is not a stall a better stopping rule would fix.

    python benchmarks/nmf_local_minima.py       # about 2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from audiox import nmf
from audiox.data.synth import SynthSounds
from results_io import RESULTS, write_result

OUT = RESULTS / "nmf_local_minima.json"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", type=int, default=25)
    parser.add_argument("--n-iter", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    default_sweeps = nmf._W_SWEEPS
    variants = [(f"nndsvda, {w} W sweeps", {"init": "nndsvda"}, w) for w in range(1, 6)]
    variants += [(f"random seed {s}, {default_sweeps} W sweeps", {"init": "random", "seed": s}, default_sweeps)
                 for s in (1, 2, 3)]
    rows = []
    try:
        for split in ("train", "val"):
            for clips in (100, 300):
                V, _ = nmf.log_spectrogram(SynthSounds(split, n_per_class=clips // 10).waves())
                costs = {}
                for name, start, sweeps in variants:
                    nmf._W_SWEEPS = sweeps  # the module's setting, restored below
                    costs[name] = nmf.fit(V, args.components, n_iter=args.n_iter, tol=0, **start).costs[-1]
                rows.append({"split": split, "clips": clips, "final_costs": costs})
    finally:
        nmf._W_SWEEPS = default_sweeps

    names = [name for name, _, _ in variants]
    print(f"Euclidean NMF, K={args.components}, {args.n_iter} iterations: final cost relative to the lowest in "
          f"its row (default: nndsvda, {default_sweeps} W sweeps)")
    print(f"{'clips':<10}" + "".join(f"{n.replace(' W sweeps', 'W').replace('random seed', 'seed'):>16}" for n in names))
    for row in rows:
        lowest = min(row["final_costs"].values())
        print(f"{row['split'] + ' ' + str(row['clips']):<10}"
              + "".join(f"{100 * (row['final_costs'][n] / lowest - 1):>15.2f}%" for n in names))
    result = {"n_components": args.components, "n_iter": args.n_iter, "default_w_sweeps": default_sweeps,
              "rows": rows}
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
