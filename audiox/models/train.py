"""One training loop for every model in the course: seeded, with a progress bar, early stopping on a
validation score, and the best weights restored at the end.

Notebooks and the zoo scripts use the same loop, so what a learner trains in a notebook is
trained exactly like the shipped weights.

>>> import torch
>>> from torch import nn
>>> model = nn.Linear(1, 1)
>>> x = torch.linspace(-1, 1, 32)[:, None]
>>> def loss(model, batch):
...     return ((model(batch) - 3 * batch) ** 2).mean()
>>> history = fit(model, loss, lambda epoch: [x], epochs=200, lr=0.1, progress=False)
>>> abs(model.weight.item() - 3.0) < 0.05
True
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import seed_everything
from ..data.hub import save_atomically


@dataclass
class History:
    """What happened during :func:`fit`: per-epoch mean loss and validation score, best epoch, seconds."""

    loss: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    stopped_early: bool = False


def check_training(history: History, model: nn.Module, rebuild: Callable[[], nn.Module], path: str | Path) -> str:
    """What a GPU cell checks at any budget: every epoch's loss is finite, the loss fell below the first
    epoch's, and the weights saved to ``path`` (atomically) load into a fresh ``rebuild()`` unchanged.

    Returns the line to print (booleans and counts only, so it reads the same on any device); raises
    ``AssertionError`` naming what failed, so a broken training cell fails loudly, in CI and on a GPU.

    >>> import tempfile
    >>> model = nn.Linear(1, 1)
    >>> history = fit(model, lambda m, b: ((m(b) - 3 * b) ** 2).mean(), lambda e: [torch.ones(4, 1)], epochs=3,
    ...               lr=0.1, progress=False)
    >>> check_training(history, model, lambda: nn.Linear(1, 1), Path(tempfile.mkdtemp()) / "linear.pt")
    '3 epochs: loss finite True, fell True; checkpoint reloads to the same weights True'
    """
    finite = bool(history.loss) and all(torch.isfinite(torch.tensor(history.loss)).tolist())
    fell = len(history.loss) > 1 and min(history.loss[1:]) < history.loss[0]
    save_atomically(model.state_dict(), Path(path))
    fresh = rebuild()
    fresh.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    saved = model.state_dict()
    same = all(torch.equal(value.cpu(), saved[name].cpu()) for name, value in fresh.state_dict().items())
    line = f"{len(history.loss)} epochs: loss finite {finite}, fell {fell}; checkpoint reloads to the same weights {same}"
    assert finite and fell and same, f"training check failed: {line} (losses {history.loss})"
    return line


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, object], torch.Tensor],
    batches: Callable[[int], Iterable],
    *,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    evaluate: Callable[[nn.Module], float] | None = None,
    patience: int | None = None,
    seed: int = 0,
    params: Iterable[nn.Parameter] | None = None,
    progress: bool = True,
    desc: str = "training",
    checkpoint: str | Path | None = None,
) -> History:
    """Train ``model`` with AdamW and a cosine learning-rate schedule.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar loss``.
        batches: ``batches(epoch) -> iterable of batches``; a function so each epoch can reshuffle
            deterministically from the epoch number.
        evaluate: ``evaluate(model) -> score`` (higher is better), run after each epoch in eval mode;
            the weights of the best epoch are restored at the end.
        patience: stop when the score has not improved for this many epochs.
        params: the parameters to train (default: all of ``model``'s), e.g. an interpreter's only.
        checkpoint: a file written (atomically) after every epoch with the model, optimiser,
            schedule, history and random state. If it exists when ``fit`` starts, training resumes
            after its last epoch and ends with the same weights as an uninterrupted run; a
            checkpoint of a finished run just restores it. One written for another number of
            epochs is refused.
    """
    seed_everything(seed)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    history, best_state, best_score, first_epoch = History(), None, -float("inf"), 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # our own file: history, RNG state
        if state["epochs"] != epochs:
            raise ValueError(f"checkpoint {checkpoint} is of a {state['epochs']}-epoch run, not {epochs}; "
                             f"pass epochs={state['epochs']} to resume it, or delete the file to start afresh.")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        history, best_state, best_score = state["history"], state["best_state"], state["best_score"]
        torch.set_rng_state(state["rng"])
        first_epoch = len(history.loss)
    start = time.perf_counter() - history.seconds
    bar = tqdm(range(first_epoch, epochs), desc=desc, disable=not progress, initial=first_epoch, total=epochs)
    for epoch in bar:
        if history.stopped_early:
            break
        model.train()
        total, count = 0.0, 0
        for batch in batches(epoch):
            loss = loss_fn(model, batch)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total, count = total + loss.item(), count + 1
        schedule.step()
        history.loss.append(total / max(count, 1))
        postfix = {"loss": f"{history.loss[-1]:.3f}"}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                score = float(evaluate(model))
            history.score.append(score)
            postfix["val"] = f"{score:.3f}"
            if score > best_score:
                best_score, history.best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
            elif patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
        bar.set_postfix(postfix)
        if checkpoint is not None:
            history.seconds = time.perf_counter() - start
            save_atomically({"epochs": epochs, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                             "schedule": schedule.state_dict(), "history": history, "best_state": best_state,
                             "best_score": best_score, "rng": torch.get_rng_state()}, Path(checkpoint))
        if history.stopped_early:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


def minibatches(n: int, batch_size: int, epoch: int, seed: int = 0) -> tuple[torch.Generator, list[torch.Tensor]]:
    """A reshuffle of ``range(n)`` into full batches, deterministic from ``(seed, epoch)``.

    Returns the generator too, so augmentations drawn from it afterwards are just as reproducible.
    The last partial batch is dropped: BatchNorm statistics of a batch of one or two are noise.

    >>> gen, batches = minibatches(10, 4, epoch=0)
    >>> [len(b) for b in batches], len(set(torch.cat(batches).tolist()))  # two full batches, no clip twice
    ([4, 4], 8)
    """
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(n, generator=gen)
    return gen, [order[start : start + batch_size] for start in range(0, n - batch_size + 1, batch_size)]


def random_gain_and_shift(magnitude: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch of magnitudes ``[B, F, T]``: a gain of +-6 dB per clip and one circular time shift.

    So a model's output depends neither on loudness nor on where in the clip the event sits.

    >>> m = torch.ones(2, 3, 5)
    >>> out = random_gain_and_shift(m, torch.Generator().manual_seed(0))
    >>> out.shape, bool(((out[:, 0, 0] > 0.49) & (out[:, 0, 0] < 2.02)).all())
    (torch.Size([2, 3, 5]), True)
    """
    gain = torch.exp(torch.empty(len(magnitude), 1, 1).uniform_(-0.7, 0.7, generator=generator))
    shift = int(torch.randint(0, magnitude.shape[-1], (1,), generator=generator))
    return torch.roll(magnitude, shift, dims=-1) * gain.to(magnitude.device)
