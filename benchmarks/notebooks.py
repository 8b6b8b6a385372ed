"""Execute the course notebooks (and their solutions) and record wall time and peak memory per notebook.

    python benchmarks/notebooks.py                # time every notebook, write benchmarks/results/notebooks-<device>.json
    python benchmarks/notebooks.py --inplace      # also save the executed notebooks (what `make notebooks` does)
    python benchmarks/notebooks.py --only 00      # notebooks whose name contains 00
    python benchmarks/notebooks.py --warm         # reuse data/cache (default: an empty cache, a first run)
    python benchmarks/notebooks.py --gpu-cells    # only notebooks with GPU cells, at AUDIOX_BUDGET=full (`make test-gpu`)

GPU cells (first line ``# GPU cell: ...``, tag ``gpu``) train at ``$AUDIOX_BUDGET``: this script sets ``ci``
unless told otherwise, so the saved notebooks hold the CI budget's outputs whatever machine runs it, and
each GPU cell's own time is recorded next to its notebook's.

Notebooks choose their device themselves (CUDA > MPS > CPU), so the same command measures a
GPU machine when run on one. Peak memory is the kernel process's max RSS (and CUDA's peak
allocation when there is a GPU), read by a probe cell appended at the end and never saved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PROBE = """
import json, resource, torch
_peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if torch.cuda.is_available():
    _peak["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    _peak["device"] = torch.cuda.get_device_name()
else:
    _peak["device"] = "cpu"
print(json.dumps(_peak))
"""


def is_gpu_cell(cell) -> bool:
    """The one visible mark of a GPU cell: its first line says so and it carries the tag ``gpu`` (tested together)."""
    return cell.cell_type == "code" and "gpu" in cell.metadata.get("tags", [])


def cell_seconds(cell) -> float:
    """A cell's wall time from the timestamps nbclient records (execution start to the kernel going idle)."""
    times = cell.metadata.get("execution", {})
    start, end = times.get("iopub.execute_input"), times.get("iopub.status.idle")
    if not (start and end):
        return float("nan")
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def run(path: Path, inplace: bool, timeout: int) -> dict:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,  # stripped before saving: it would embed every player's audio in the file
    )
    # nbclient mimics the Output widget by sending its state back to the kernel on the shell channel while it
    # waits there for the cell's reply; now and then the reply never comes and the run stalls until the cell
    # timeout (seen on cells that set a slider's value). Without the mimic, what a slider explorer draws goes
    # to the cell's own output, which is also what a reader of the saved notebook should see.
    client.widget_registry = {}
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    probe = json.loads(nb.cells.pop()["outputs"][-1]["text"])
    gpu_cells = [{"cell": i, "line": cell.source.splitlines()[0][:100], "seconds": round(cell_seconds(cell), 1)}
                 for i, cell in enumerate(nb.cells) if is_gpu_cell(cell)]
    if inplace:
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
    row = {"notebook": path.name, "seconds": round(seconds, 1),
           **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in probe.items()}}
    if gpu_cells:
        row.update(budget=os.environ["AUDIOX_BUDGET"], gpu_cells=gpu_cells)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inplace", action="store_true", help="save the executed notebooks")
    parser.add_argument("--only", default="", help="run notebooks whose file name contains this")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--warm", action="store_true",
                        help="keep the embedding/dictionary cache (default: a fresh, empty cache, as a learner's first run)")
    parser.add_argument("--gpu-cells", action="store_true",
                        help="run only the notebooks that have GPU cells, at AUDIOX_BUDGET=full, on a CUDA machine")
    parser.add_argument("--allow-cpu", action="store_true", help="with --gpu-cells: run on a machine without CUDA too")
    args = parser.parse_args()
    os.environ.setdefault("AUDIOX_PROFILE", "offline")
    if args.gpu_cells:
        import torch

        if not torch.cuda.is_available() and not args.allow_cpu:
            parser.error("--gpu-cells runs the GPU cells at full budget and needs CUDA (torch.cuda.is_available() is "
                         "False here); pass --allow-cpu to run them on this CPU anyway (LMAC-ZS alone takes ~6 min).")
        if args.inplace:
            parser.error("--gpu-cells does not save notebooks: their outputs at full budget are not the checked ones.")
        os.environ["AUDIOX_BUDGET"] = "full"
    os.environ.setdefault("AUDIOX_BUDGET", "ci")  # saved outputs are the CI budget's, on any machine
    if not args.warm:
        os.environ["AUDIOX_CACHE"] = tempfile.mkdtemp(prefix="audiox-cold-cache-")
    rows = []
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("solutions/[0-9][0-9]_*.ipynb"))
    if args.gpu_cells:
        paths = [p for p in paths if any(is_gpu_cell(c) for c in nbformat.read(p, as_version=4).cells)]
    for path in paths:
        if args.only in path.name:
            rows.append(run(path, args.inplace, args.timeout))
            r = rows[-1]
            print(f"{r['notebook']:<42} {r['seconds']:>8.1f} s {r['peak_rss_mb']:>9.0f} MB  {r['device']}", flush=True)
            for g in r.get("gpu_cells", []):
                print(f"    GPU cell {g['cell']:>3} at budget {r['budget']}: {g['seconds']:>7.1f} s  {g['line'][:60]}", flush=True)
    device = rows[0]["device"] if rows else "none"
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "profile": os.environ["AUDIOX_PROFILE"],
        "cache": "warm" if args.warm else "cold (fresh cache: embeddings computed)",
        "budget": os.environ["AUDIOX_BUDGET"],
        "notebooks": rows,
    }
    name = f"notebooks-{'cpu' if device == 'cpu' else 'gpu'}"
    if args.gpu_cells and device == "cpu":  # full-budget GPU cells forced onto a CPU: not the CI-budget timings
        name = "notebooks-gpu-cells-on-cpu"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and out.exists():  # a partial run updates its rows and keeps the others
        ran = {r["notebook"] for r in rows}
        rows[:0] = [r for r in json.loads(out.read_text())["notebooks"] if r["notebook"] not in ran]
        rows.sort(key=lambda r: r["notebook"])
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
