"""Players and sliders: in this course a learner *listens* to every explanation.

Core ipywidgets only (``Audio``, sliders, ``Output``, boxes), so the same code runs in
JupyterLab 4 (ipywidgets 8) and in Colab (ipywidgets 7.7). Players get 16-bit WAV bytes
from :func:`audiox.audio.to_wav_bytes`: no autoplay, no loop, no loudness normalisation,
so a quieter explanation sounds quieter.

>>> import torch
>>> p = player(torch.zeros(16000), 16000, "silence")
>>> p.children[1].format, p.children[1].autoplay
('wav', False)
>>> row = player_row({"a": torch.zeros(8000), "b": torch.zeros(8000)}, 16000)
>>> len(row.children)
2
"""

from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from .audio import to_wav_bytes


def enable_colab() -> bool:
    """Turn on Colab's custom widget manager when running in Colab; a no-op elsewhere.

    Returns True when it was enabled.
    """
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    enable = getattr(output, "enable_custom_widget_manager", None)
    if enable is None:
        return False
    enable()
    return True


def _audio(wave, sample_rate: int) -> widgets.Audio:
    return widgets.Audio(value=to_wav_bytes(wave, sample_rate), format="wav", autoplay=False, loop=False)


def player(wave, sample_rate: int, label: str = "") -> widgets.VBox:
    """One labelled audio player for a mono clip ``[T]``."""
    return widgets.VBox([widgets.HTML(f"<b>{label}</b>"), _audio(wave, sample_rate)])


def player_row(clips: dict[str, torch.Tensor], sample_rate: int) -> widgets.HBox:
    """Players side by side, e.g. ``{"original": x, "explanation": e, "removed": r}``."""
    return widgets.HBox([player(wave, sample_rate, label) for label, wave in clips.items()])


class SliderExplorer:
    """A slider that recomputes ``fn(value) -> (wave, figure)`` when released, then updates a player and a plot.

    ``fn`` may also return ``(wave, figure, text)``; the text (HTML) is shown under the slider.
    ``wave`` may be a dict ``{label: wave}``: a row of labelled players, all updated together
    (e.g. original / explanation / explanation removed).
    Set ``explorer.value = v`` in code to do what a learner's drag does (nbval uses this).

    >>> import torch, matplotlib
    >>> matplotlib.use("Agg")
    >>> def louder(gain):
    ...     return gain * torch.ones(1600) * 0.1, None
    >>> ex = SliderExplorer(louder, widgets.FloatSlider(value=1.0, min=0.0, max=2.0), 16000)
    >>> ex.value = 0.5
    >>> ex.calls
    2
    >>> def three(ratio):
    ...     return {"original": torch.ones(1600) * 0.1, "explanation": ratio * torch.ones(1600) * 0.1}, None
    >>> ex = SliderExplorer(three, widgets.FloatSlider(value=0.1, min=0.0, max=1.0), 16000)
    >>> sorted(ex.players)
    ['explanation', 'original']
    """

    def __init__(self, fn: Callable, slider: widgets.ValueWidget, sample_rate: int, label: str = "explanation"):
        self.fn = fn
        self.slider = slider
        self.sample_rate = sample_rate
        self.calls = 0
        slider.continuous_update = False  # recompute on release: a drag should not queue 50 re-runs
        slider.layout.width = slider.layout.width or "60%"
        self.label = label
        self.text = widgets.HTML()
        #: the players by label: one (``label``) for a wave, one per key when ``fn`` returns a dict
        self.players: dict[str, widgets.Audio] = {}
        self.player_box = widgets.HBox()
        self.plot = widgets.Output()
        self.widget = widgets.VBox([slider, self.text, self.player_box, self.plot])
        slider.observe(lambda change: self.update(change["new"]), names="value")
        self.update(slider.value)

    @property
    def audio(self) -> widgets.Audio:
        """The first player (the only one when ``fn`` returns a single wave)."""
        return next(iter(self.players.values()))

    def _set_players(self, waves: dict) -> None:
        if list(waves) != list(self.players):  # first call, or other labels: build the row once
            self.players = {name: widgets.Audio(format="wav", autoplay=False, loop=False) for name in waves}
            self.player_box.children = [widgets.VBox([widgets.HTML(f"<b>{name}</b>"), audio])
                                        for name, audio in self.players.items()]
        for name, wave in waves.items():
            self.players[name].value = to_wav_bytes(wave, self.sample_rate)

    @property
    def value(self):
        return self.slider.value

    @value.setter
    def value(self, new) -> None:
        self.slider.value = new

    def update(self, value) -> None:
        result = self.fn(value)
        wave, figure, text = (*result, "")[:3] if len(result) == 2 else result
        self.calls += 1
        self._set_players(wave if isinstance(wave, dict) else {self.label: wave})
        self.text.value = text
        if figure is not None:
            with self.plot:
                self.plot.clear_output(wait=True)
                display(figure)
            plt.close(figure)  # the Output keeps the rendered image; the live figure would leak

    def _ipython_display_(self) -> None:
        display(self.widget)
