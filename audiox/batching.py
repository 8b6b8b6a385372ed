"""One helper for the loops that run a model over many clips a batch at a time, without gradients.

Embedding a dataset, predicting logits, encoding latents, measuring masked copies: each is
"split along the first axis, run, concatenate", written once here so every caller batches,
moves and concatenates the same way.

>>> import torch
>>> batched(lambda x: x * 2, torch.arange(5.0), batch_size=2)
tensor([0., 2., 4., 6., 8.])
>>> mean, total = batched(lambda x: (x.mean(-1), x.sum(-1)), torch.ones(5, 3), batch_size=2)
>>> mean.tolist(), total.tolist()
([1.0, 1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0])
"""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm


def _concatenate(outputs: list):
    first = outputs[0]
    if torch.is_tensor(first):
        return torch.cat(outputs)
    if isinstance(first, (tuple, list)):
        return type(first)(_concatenate([o[i] for o in outputs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _concatenate([o[k] for o in outputs]) for k in first}
    raise TypeError(f"batched: fn must return tensors (or tuples, lists or dicts of them), got {type(first).__name__}.")


def batched(fn: Callable, *inputs: torch.Tensor, batch_size: int = 64, device=None, to=None, progress: bool = False,
            desc: str = "batches", grad: bool = False):
    """``fn(*chunks)`` over ``inputs`` split along dim 0 into ``batch_size`` rows, outputs concatenated along dim 0.

    ``device`` moves each chunk there before ``fn`` (e.g. the model's); ``to`` moves each output
    (e.g. ``"cpu"`` to keep a big result off the GPU). Runs under ``torch.no_grad()`` unless
    ``grad=True``. ``fn`` may return a tensor, or a tuple / list / dict of tensors.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; use a positive number of rows per batch, e.g. 64.")
    if not inputs or len({len(x) for x in inputs}) != 1:
        raise ValueError(f"batched needs inputs with one length along dim 0, got {[len(x) for x in inputs]}.")
    n = len(inputs[0])
    outputs = []
    with torch.set_grad_enabled(grad):
        for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
            chunks = [x[start : start + batch_size] for x in inputs]
            if device is not None:
                chunks = [c.to(device) for c in chunks]
            out = fn(*chunks)
            outputs.append(_move(out, to) if to is not None else out)
    if not outputs:
        raise ValueError("batched got an empty batch (0 rows); pass at least one clip.")
    return _concatenate(outputs)


def _move(out, device):
    if torch.is_tensor(out):
        return out.to(device)
    if isinstance(out, (tuple, list)):
        return type(out)(_move(o, device) for o in out)
    if isinstance(out, dict):
        return {k: _move(v, device) for k, v in out.items()}
    return out
