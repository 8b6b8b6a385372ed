"""audiox: the thin package behind the course *listenable, interpretable explanations of audio models*.

>>> import audiox
>>> audiox.profile()
'offline'
>>> ds = audiox.load_dataset("synth", split="test", n_per_class=1)
>>> ds.classes[:3]
['siren', 'alarm', 'engine']
>>> sorted(audiox.explainers())[:2]                  # the explanation methods, by name
['concepts', 'gradcam']
"""

from .config import budget, cache_dir, device, profile, seed_everything
from .data import load_dataset

__version__ = "0.2.0"


def load_clap(name: str | None = None, device=None):
    """The profile's CLAP (tiny-clap offline, LAION-CLAP full) or one by name; see :mod:`audiox.models.zoo`."""
    from .models.zoo import load_clap as _load_clap  # lazy: `import audiox` stays light

    return _load_clap(name, device)


def load_codec(name: str | None = None, device=None):
    """The profile's audio codec (tiny-codec offline, EnCodec 24 kHz full) or one by name; see :mod:`audiox.models.zoo`."""
    from .models.zoo import load_codec as _load_codec

    return _load_codec(name, device)


def explainers() -> dict[str, str]:
    """The explanation methods by name, with a line on each (:func:`audiox.explain.explainers`)."""
    from .explain import explainers as _explainers

    return _explainers()


def explainer(name: str, model, **options):
    """Build the explanation method ``name`` around ``model`` (:func:`audiox.explain.explainer`), e.g.
    ``audiox.explainer("lmac-zs", ZeroShotClassifier(clap, classes)).explain(waves)``."""
    from .explain import explainer as _explainer

    return _explainer(name, model, **options)


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


__all__ = ["budget", "cache_dir", "device", "explainer", "explainers", "load_clap", "load_codec", "load_dataset", "profile",
           "seed_everything", "setup_notebook"]
