"""How fast SynthSounds generates clips, on one CPU core (the goal: 1,000 clips in under 10 s).

    python benchmarks/synth.py          # prints a table, writes benchmarks/results/synth.json
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from audiox.data.synth import SynthSounds

ROOT = Path(__file__).resolve().parent.parent


def main(n_clips: int = 1000) -> None:
    torch.set_num_threads(1)
    rows = []
    for what, mixtures in (("events", False), ("mixtures (with masks)", True)):
        ds = SynthSounds("train", n_per_class=n_clips // 10, mixtures=mixtures)
        start = time.perf_counter()
        ds.waves()
        seconds = time.perf_counter() - start
        rows.append({"what": what, "clips": len(ds), "seconds": round(seconds, 2), "clips_per_s": round(len(ds) / seconds)})
    print(f"{'what':<24}{'clips':>7}{'seconds':>10}{'clips/s':>10}")
    for r in rows:
        print(f"{r['what']:<24}{r['clips']:>7}{r['seconds']:>10.2f}{r['clips_per_s']:>10}")
    out = ROOT / "benchmarks" / "results" / "synth.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": 1, "machine": platform.platform(), "goal": "1000 clips < 10 s", "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
