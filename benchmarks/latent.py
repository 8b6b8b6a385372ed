"""How long latent attribution takes, per method, batched, and what each buys in fidelity.

On the keyword test clips (offline: tiny-codec and keyword-latent-cnn), every method of
:func:`audiox.latent.attribute` attributes the whole batch in one call against the noise baseline;
the table gives the median wall time of ``--repeats`` calls, the time per clip, and the agreement
with the original prediction when the top 10% of the latent is kept or removed (random positions
for reference). Then the full fidelity curves of notebook 05 (three seeds, input space and
decoded explanations included) are timed once.

    python benchmarks/latent.py                  # 2 threads, audiox.config.device()
    python benchmarks/latent.py --device cuda    # writes latent-gpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from audiox import latent
from audiox.config import device as pick_device
from audiox.data.speech import keyword_clips
from audiox.models import zoo
from results_io import result_path, sync, write_result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    codec, classifier = zoo.load("tiny-codec", device), zoo.load("keyword-latent-cnn", device)
    waves, _ = keyword_clips("test")
    z = latent.encode(codec, waves.to(device))
    base = latent.baseline_latent(codec, "noise", z)
    target = latent.predict(classifier, z).argmax(dim=-1)
    random = {mode: float(latent.fidelity(classifier, z, None, base, (0.1,), mode, target=target)[0])
              for mode in ("keep", "remove")}
    rows = []
    print(f"{len(z)} clips, latent {tuple(z.shape[1:])}, {device}, {args.threads} threads, load {os.getloadavg()[0]:.2f}")
    print(f"{'method':>21} {'batch (ms)':>11} {'per clip (ms)':>14} {'top 10% kept':>13} {'top 10% removed':>16}")
    for method in latent.METHODS:
        latent.attribute(classifier, z, method, target, base)  # warm-up
        times = []
        for _ in range(args.repeats):
            sync(device)
            start = time.perf_counter()
            scores = latent.attribute(classifier, z, method, target, base)
            sync(device)
            times.append(time.perf_counter() - start)
        ms = 1000 * statistics.median(times)
        keep, remove = (float(latent.fidelity(classifier, z, scores, base, (0.1,), mode, target=target)[0])
                        for mode in ("keep", "remove"))
        rows.append({"method": method, "batch_ms": round(ms, 1), "per_clip_ms": round(ms / len(z), 2),
                     "top10_kept": round(keep, 3), "top10_removed": round(remove, 3)})
        print(f"{method:>21} {ms:>11.1f} {ms / len(z):>14.2f} {keep:>13.2f} {remove:>16.2f}")
    print(f"{'random positions':>21} {'':>11} {'':>14} {random['keep']:>13.2f} {random['remove']:>16.2f}")
    sync(device)
    start = time.perf_counter()
    curves = latent.fidelity_curves(codec, classifier, waves.to(device), seeds=(0, 1, 2), heard=True)
    sync(device)
    curve_seconds = time.perf_counter() - start
    print(f"fidelity curves (3 seeds, {len(curves.ratios)} ratios, input space and heard): {curve_seconds:.1f} s")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "device": str(device),
                    "platform": platform.platform(), "torch": torch.__version__,
                    "load_average": round(os.getloadavg()[0], 2)},
        "clips": len(z), "latent": list(z.shape[1:]), "baseline": "noise", "repeats": args.repeats,
        "methods": rows, "random_positions": {"top10_kept": round(random["keep"], 3),
                                              "top10_removed": round(random["remove"], 3)},
        "fidelity_curves_seconds": round(curve_seconds, 1),
        "fidelity_at_10": {mode: {name: [round(m, 3), round(s, 3)] for name, (m, s) in curves.at(0.1, mode).items()}
                           for mode in ("keep", "remove")},
    }
    write_result(result_path("latent", device), result)
    return result


if __name__ == "__main__":
    main()
