"""How long LMAC-ZS takes to train on 2 CPU cores, and whether it then beats the captum baselines.

Trains a fresh decoder for the shipped tiny-clap exactly as ``python -m audiox.models.recipes train
lmac-tiny-clap`` does (:func:`audiox.models.recipes.train_lmac_tiny_clap`: 800 SynthSounds clips, 8
epochs), timed, then compares it with Saliency, Integrated Gradients, SmoothGrad and GradCAM on
the test conditions of notebook 04 (:func:`audiox.data.synth.evaluation_conditions`: clean,
mixed with another clip, white noise, speech; 5 dB) with :func:`audiox.compare.compare`, and checks
the issue's three goals per condition: LMAC-ZS's FF and ground-truth F above every baseline's,
and wrong prompts' masks clearly smaller than right ones'.

    python benchmarks/lmac.py                     # 2 threads, audiox.config.device()
    python benchmarks/lmac.py --epochs 4          # how far a shorter budget gets
    python benchmarks/lmac.py --device cuda       # writes lmac-gpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from audiox import compare, gradients, lmac
from audiox.config import device as pick_device
from audiox.data.synth import CLASSES, evaluation_conditions
from audiox.models import recipes, zoo
from audiox.zeroshot import ZeroShotClassifier
from results_io import result_path, write_result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--n-per-class", type=int, default=5, help="test clips per class and condition")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    load = os.getloadavg()[0]
    start = time.perf_counter()
    decoder, history = recipes.train_lmac_tiny_clap(epochs=args.epochs)
    seconds = time.perf_counter() - start
    decoder = decoder.to(device)

    model = ZeroShotClassifier(zoo.load("tiny-clap", device=device), CLASSES)
    methods = ["LMAC-ZS", *gradients.GRADIENT_MAPS]
    explainers = compare.explainers_for(model, methods, **{"LMAC-ZS": {"decoder": decoder}})
    conditions = evaluation_conditions("test", args.n_per_class)
    result = compare.compare(explainers, model, conditions, sizes=())
    table = {(c, m): {k: float(v.nanmean()) for k, v in row.items()} for (c, m, _), row in result.per_clip.items()}
    rows, goals = [], {}
    for name, condition in conditions.items():
        masks = lmac.masks_for(decoder, lmac.encode(model.clap, condition["waves"].to(device)), model.text_embeddings)
        sizes = lmac.prompt_mask_means(masks, condition["present"])
        ours = table[name, "LMAC-ZS"]
        others = [row for (c, m), row in table.items() if c == name and m != "LMAC-ZS"]
        goals[name] = {
            "FF above every baseline": all(ours["FF"] > row["FF"] for row in others),
            "GT F above every baseline": all(ours["f_measure"] > row["f_measure"] for row in others),
            "wrong-prompt masks smaller": sizes["wrong prompt"] < sizes["right prompt"] / 1.5,
            "mask mean, right prompt": round(sizes["right prompt"], 4),
            "mask mean, wrong prompt": round(sizes["wrong prompt"], 4),
        }
        for (c, method), row in table.items():
            if c == name:
                rows.append({"condition": name, "method": method, **{k: round(v, 4) for k, v in row.items()}})

    print(f"training: {seconds:.0f} s for {args.epochs} epochs on {device} ({args.threads} threads)")
    columns = ["AI", "AD", "AG", "FF", "Fid-In", "MM", "precision", "recall", "f_measure"]
    print(f"{'condition':>13} {'method':>20} " + " ".join(f"{c[-9:]:>9}" for c in columns))
    for row in rows:
        print(f"{row['condition']:>13} {row['method']:>20} " + " ".join(f"{row.get(c, float('nan')):9.3f}" for c in columns))
    for name, goal in goals.items():
        print(f"{name:>13}: " + ", ".join(f"{k} {v}" for k, v in goal.items()))

    out = {
        "training": {"seconds": round(seconds, 1), "epochs": args.epochs, "best_epoch": history.best_epoch,
                     "load_average_before": round(load, 2), "load_average_after": round(os.getloadavg()[0], 2)},
        "goals": goals,
        "rows": rows,
        "environment": {"device": str(device), "threads": args.threads, "cpu_count": os.cpu_count(),
                        "torch": torch.__version__, "python": platform.python_version()},
    }
    write_result(result_path("lmac", device), out)
    return out


if __name__ == "__main__":
    main()
