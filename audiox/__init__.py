"""audiox: the thin package behind the course *listenable, interpretable explanations of audio models*.

>>> import audiox
>>> audiox.profile()
'offline'
>>> ds = audiox.load_dataset("synth", split="test", n_per_class=1)
>>> ds.classes[:3]
['siren', 'alarm', 'engine']
"""

from .config import cache_dir, device, profile, seed_everything
from .data import load_dataset

__version__ = "0.1.0"


def load_clap(name: str | None = None, device=None):
    """The profile's CLAP (tiny-clap offline, LAION-CLAP full) or one by name; see :mod:`audiox.models.zoo`."""
    from .models.zoo import load_clap as _load_clap  # lazy: keeps `python -m audiox.models.zoo` clean

    return _load_clap(name, device)


def load_codec(name: str | None = None, device=None):
    """The profile's audio codec (tiny-codec offline, EnCodec 24 kHz full) or one by name; see :mod:`audiox.models.zoo`."""
    from .models.zoo import load_codec as _load_codec

    return _load_codec(name, device)


def setup_notebook(seed: int = 0) -> str:
    """First call of every notebook: seed, Colab's widget manager when present, a tidy plot style.

    Returns (and prints) the profile / device line so a learner sees what runs where.
    """
    import matplotlib.pyplot as plt

    from .config import describe
    from .widgets import enable_colab

    seed_everything(seed)
    enable_colab()
    plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (7, 2.6), "axes.grid": False})
    line = describe()
    print(line)
    return line


__all__ = ["cache_dir", "device", "load_clap", "load_dataset", "profile", "seed_everything", "setup_notebook"]
