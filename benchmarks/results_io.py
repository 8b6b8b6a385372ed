"""Where the benchmarks write: ``results/<name>-cpu.json`` or ``-gpu.json``, written whole or not at all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def sync(device) -> None:
    """Wait for a GPU's queued work, so a timer measures it (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device="cpu"):
    """``fn()``, its wall-clock seconds, its process CPU seconds and the 1-minute load average before and after
    (a benchmark on a shared machine says how busy the machine was while it ran)."""
    load = os.getloadavg()[0]
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    timing = {"seconds": round(time.perf_counter() - start, 3), "cpu_seconds": round(time.process_time() - cpu, 2),
              "load_average": [round(load, 2), round(os.getloadavg()[0], 2)]}
    return out, timing


def result_path(name: str, device) -> Path:
    """``results/<name>-gpu.json`` for a CUDA device, ``results/<name>-cpu.json`` otherwise."""
    return RESULTS / f"{name}-{'gpu' if torch.device(device).type == 'cuda' else 'cpu'}.json"


def write_result(path: Path, result: dict) -> Path:
    """Write ``result`` as indented JSON through a temporary file, so an interrupted run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path
