"""Notebook 06's table as JSON: every method on the same clips, the same model, the same metrics, and its cost.

The zero-shot tiny-clap classifier of the ten SynthSounds classes, the clips of
:func:`audiox.data.synth.comparison_conditions` (30 test events clean, mixed with a distractor at 10,
5 and 0 dB, and over white noise at 20 dB), every method of :data:`audiox.compare.METHODS` through
the one contract, measured by :func:`audiox.compare.compare` at each method's own size and at
matched sizes (5 / 10 / 20 / 40% of bins), with bootstrap 95% intervals. Seconds per clip are the
median of ``--repeats`` timed explanations of one batch per method, the methods interleaved within
each repeat so a change of load hits them alike; the load average is recorded before and after.

    python benchmarks/compare.py                  # 2 threads, audiox.config.device(): results/compare-cpu.json
    python benchmarks/compare.py --device cuda    # results/compare-gpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from audiox import compare
from audiox.config import device as pick_device
from audiox.data.synth import CLASSES, comparison_conditions
from audiox.models import zoo
from audiox.zeroshot import ZeroShotClassifier
from results_io import result_path, sync, write_result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--n-per-class", type=int, default=3, help="test events per class (notebook 06: 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timed explanations of one batch per method")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    load_before = os.getloadavg()[0]

    model = ZeroShotClassifier(zoo.load("tiny-clap", device=device), CLASSES)
    conditions = comparison_conditions("test", n_per_class=args.n_per_class)
    explainers = compare.explainers_for(model)
    batch = conditions["mixed 5 dB"]["waves"].to(device)
    for explainer in explainers.values():  # warm-up
        explainer.explain(batch[:2])
    times = {name: [] for name in explainers}
    for _ in range(args.repeats):
        for name, explainer in explainers.items():
            sync(device)
            start = time.perf_counter()
            explainer.explain(batch)
            sync(device)
            times[name].append((time.perf_counter() - start) / len(batch))
    per_clip = {name: statistics.median(t) for name, t in times.items()}

    start = time.perf_counter()
    result = compare.compare(explainers, model, conditions, sizes=compare.SIZES)
    seconds = time.perf_counter() - start
    print(f"{len(explainers)} methods x {sum(result.clips.values())} clips in {seconds:.0f} s on {device}, "
          f"{args.threads} threads, load {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    print(f"{'method':>21} {'ms per clip':>12} {'FF (own size)':>20} {'FF @ 10%':>20} {'GT F @ 10%':>20}")
    pooled = {}
    for name in explainers:
        values = {(metric, size): torch.cat([result.per_clip[c, name, size][metric] for c in result.conditions])
                  for metric in ("FF", "f_measure") for size in (None, 0.1)}
        pooled[name] = {f"{metric} @ {'own size' if size is None else '10%'}": list(compare.metrics.bootstrap(v))[:3]
                        for (metric, size), v in values.items()}
        print(f"{name:>21} {1000 * per_clip[name]:>12.1f} "
              + " ".join(f"{str(compare.metrics.bootstrap(values[key])):>20}"
                         for key in (("FF", None), ("FF", 0.1), ("f_measure", 0.1))))
    agreement = {f"{c or 'all clips'} @ {'own size' if s is None else f'{s:.0%}'}": list(result.rank_agreement(s, condition=c))[:3]
                 for c in (*result.conditions, None) for s in (None, *compare.SIZES)}
    print("rank correlation of FF and ground-truth F across methods, all clips: "
          + ", ".join(f"{k.split(' @ ')[1]} {v[0]:.2f}" for k, v in agreement.items() if k.startswith("all clips")))
    out = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "device": str(device),
                    "platform": platform.platform(), "torch": torch.__version__,
                    "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)},
        "settings": {name: options for name, (_, options) in compare.METHODS.items()},
        "seconds_per_clip": {name: round(v, 4) for name, v in per_clip.items()},
        "comparison_seconds": round(seconds, 1),
        "pooled": pooled,
        "rank_agreement_ff_vs_ground_truth": agreement,
        "table": result.to_dict(),
    }
    write_result(result_path("compare", device), out)
    return out


if __name__ == "__main__":
    main()
