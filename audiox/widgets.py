"""Players and sliders: in this course a learner *listens* to every explanation.

Core ipywidgets only (``Audio``, sliders, ``Image``, boxes), so the same code runs in
JupyterLab 4 (ipywidgets 8) and in Colab (ipywidgets 7.7). Live players get 16-bit WAV bytes
from :func:`audiox.audio.to_wav_bytes`: no autoplay, no loop, no loudness normalisation,
so a quieter explanation sounds quieter.

**Static copies.** A widget is only a reference to state held by a running kernel: on GitHub,
nbviewer, an HTML export or a notebook opened without its kernel, a bare widget shows as
``VBox(children=(HTML(...), Audio(value=b'RIFF...``. So every player, row of players and
:class:`SliderExplorer` displays one bundle of three representations:

* ``application/vnd.jupyter.widget-view+json``: the live widget. JupyterLab, Notebook 7, VS Code
  and Colab rank it first and show it alone, so a learner with a kernel sees one player, not two;
* ``text/html``: a static copy, ``<audio controls preload="none">`` elements with the sound inlined as
  Ogg/Opus (32 kbit/s: ~3.5 kB per second of sound plus ~0.9 kB per clip) and, for an explorer,
  the controls' last values, its text line and its figure as an inline PNG. nbconvert (and so
  nbviewer) skips a widget view whose state the notebook does not hold and shows this instead;
* ``text/plain``: a one-line summary, e.g. ``Audio(label='clip', seconds=1.0, sample_rate=16000)``.

The bundle is published by ``_ipython_display_`` (IPython calls it before ``_repr_mimebundle_``,
and it is how ipywidgets 7 widgets display themselves, so ours wins on both 7.x and 8.x).
An explorer is displayed with a ``display_id`` and re-publishes its bundle with
``update_display`` after every update made by code (a cell that sets ``explorer.value``), so the saved
output holds the sound and figure of its *last* state; a learner's own drag updates only the live widget.

>>> import torch
>>> p = player(torch.zeros(16000), 16000, "silence")
>>> p.children[1].format, p.children[1].autoplay
('wav', False)
>>> sorted(p._repr_mimebundle_())
['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
>>> p._repr_mimebundle_()["text/plain"]
"Audio(label='silence', seconds=1.0, sample_rate=16000)"
>>> row = player_row({"a": torch.zeros(8000), "b": torch.zeros(8000)}, 16000)
>>> len(row.children), row._repr_mimebundle_()["text/html"].count("<audio")
(2, 2)
"""

from __future__ import annotations

import base64
import html
import io
import uuid
from typing import Callable, Iterable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch
from IPython.display import display, update_display

from .audio import resample, to_wav_bytes

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _from_a_live_widget() -> bool:
    """True while the kernel handles a learner's drag or typing (a ``comm_msg`` from a live front end).

    Then the explorer does not re-publish its static copy: re-publishing makes JupyterLab build the widget's
    view afresh, so the slider would flicker and a text box lose focus after every Enter. A cell that sets
    ``explorer.value`` (an execute request, as nbval and the saved notebooks run it) does re-publish, so the
    saved output holds the last state.
    """
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else {}
        return (parent or {}).get("header", {}).get("msg_type") == "comm_msg"
    except Exception:  # an older ipykernel without get_parent, or no kernel at all: re-publish, as before
        return False


#: The sample rates an Opus stream can be encoded at (RFC 6716).
OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)


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


# ---------------------------------------------------------------------------------------------------------------
# Static audio: Ogg/Opus data URIs
# ---------------------------------------------------------------------------------------------------------------


def static_sample_rate(sample_rate: int) -> int:
    """The rate a static copy is encoded at: ``sample_rate`` itself when Opus supports it, else the next Opus rate up.

    Other rates (22.05, 32, 44.1 kHz) are resampled to an Opus rate rather than sent as Ogg/Vorbis: an Opus
    decoder (every browser's) plays at 48 kHz whatever rate was encoded (RFC 7845: the stored input rate is
    informational), so resampling first is what Opus does anyway, with no audible change; it keeps one codec,
    hence one browser-support story, for every clip; and it keeps the size a chosen bitrate, where libsndfile's
    Vorbis has a quality floor (~7 kB/s for 44.1 kHz mono at its lowest). Upward only (22.05 -> 24,
    44.1 -> 48 kHz), so no band of the clip is cut.

    >>> static_sample_rate(16000), static_sample_rate(22050), static_sample_rate(44100), static_sample_rate(96000)
    (16000, 24000, 48000, 48000)
    """
    return next((rate for rate in OPUS_RATES if rate >= sample_rate), OPUS_RATES[-1])


def _opus_bitrate(rate: int) -> int:
    """Bits per second for one mono clip: 32 kbit/s up to 16 kHz (wideband: speech and the synthetic sounds are
    near-transparent, ~4 kB per second of sound), 48 kbit/s above (full band: ESC-50 and LAION-CLAP's 48 kHz)."""
    return 32_000 if rate <= 16_000 else 48_000


def _encode_ogg(samples: np.ndarray, rate: int) -> tuple[bytes, str]:
    """Ogg/Opus bytes and their MIME type; Ogg/Vorbis, then WAV, where this libsndfile or soundfile cannot."""
    # libsndfile maps compression_level in [0, 1] linearly onto 256..6 kbit/s per channel for Opus
    level = 1.0 - (_opus_bitrate(rate) - 6_000) / 250_000
    attempts = [dict(subtype="OPUS", compression_level=level),
                dict(subtype="OPUS"),     # soundfile < 0.13 has no compression_level: libopus's default rate
                dict(subtype="VORBIS")]   # libsndfile without Opus (< 1.0.29)
    for options in attempts:
        buffer = io.BytesIO()
        try:
            sf.write(buffer, samples, rate, format="OGG", **options)
        except (TypeError, RuntimeError):  # soundfile's LibsndfileError is a RuntimeError
            continue
        return buffer.getvalue(), "audio/ogg"
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), "audio/wav"


def _static_audio_tag(wav: bytes) -> str:
    """An ``<audio>`` element playing the clip in ``wav`` (the live player's bytes), compressed for a static copy."""
    samples, sample_rate = sf.read(io.BytesIO(wav), dtype="float32")
    rate = static_sample_rate(sample_rate)
    if rate != sample_rate:
        samples = resample(torch.from_numpy(samples), sample_rate, rate).clamp(-1.0, 1.0).numpy()
    data, mime = _encode_ogg(samples, rate)
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<audio controls preload="none" data-sample-rate="{sample_rate}" '
            f'data-seconds="{len(samples) / rate:.3f}" src="{source}"></audio>')


def _static_player(label: str, wav: bytes) -> str:
    """One labelled static player; ``label`` is HTML, as in the live widget's ``<b>label</b>``."""
    head = f"<b>{label}</b><br>" if label else ""
    return (f'<div class="audiox-player" style="display:inline-block;vertical-align:top;margin:0 14px 6px 0">'
            f"{head}{_static_audio_tag(wav)}</div>")


def _static_row(players: Iterable[str]) -> str:
    return f'<div class="audiox-player-row" style="display:flex;flex-wrap:wrap">{"".join(players)}</div>'


def audio_html(wave, sample_rate: int, label: str = "") -> str:
    """A static ``<audio>`` player (Ogg/Opus data URI) for a mono clip ``[T]``, to put inside HTML text.

    It plays with or without a kernel, e.g. in an explorer's text line: ``f"left out: {audio_html(r, sr)}"``.

    >>> import torch
    >>> audio_html(torch.zeros(1600), 16000).startswith('<span class="audiox-audio"')
    True
    """
    head = f"<b>{label}</b><br>" if label else ""
    return (f'<span class="audiox-audio" style="display:inline-block;vertical-align:middle">'
            f"{head}{_static_audio_tag(to_wav_bytes(wave, sample_rate))}</span>")


def _summary(label: str, wav: bytes) -> str:
    info = sf.info(io.BytesIO(wav))
    return f"Audio(label={label!r}, seconds={info.frames / info.samplerate:.1f}, sample_rate={info.samplerate})"


# ---------------------------------------------------------------------------------------------------------------
# The bundle: live widget + static copy
# ---------------------------------------------------------------------------------------------------------------


def _bundle(widget: widgets.Widget, plain: str, static_html: str) -> dict:
    return {
        "text/plain": plain,
        WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id},
        "text/html": static_html,
    }


class _StaticFallback:
    """Mixin for a Box: display the live widget and a static HTML copy in one bundle (ipywidgets 7 and 8)."""

    _audiox_plain: str = ""
    _audiox_html: str = ""

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return _bundle(self, self._audiox_plain, self._audiox_html)

    def _ipython_display_(self, **kwargs):
        display(self._repr_mimebundle_(), raw=True)
        handle_displayed = getattr(self, "_handle_displayed", None)  # ipywidgets' on_displayed callbacks
        if handle_displayed is not None:
            handle_displayed(**kwargs)


def _live_audio(wav: bytes = b"") -> widgets.Audio:
    return widgets.Audio(value=wav, format="wav", autoplay=False, loop=False)


class Player(_StaticFallback, widgets.VBox):
    """One labelled player: ``children`` = ``[HTML label, Audio]``; displays with its static copy."""

    def __init__(self, wav: bytes, label: str = ""):
        super().__init__([widgets.HTML(f"<b>{label}</b>"), _live_audio(wav)])
        self._audiox_plain = _summary(label, wav)
        self._audiox_html = _static_player(label, wav)


class PlayerRow(_StaticFallback, widgets.HBox):
    """Players side by side; displays with their static copies."""

    def __init__(self, players: Sequence[Player]):
        super().__init__(list(players))
        self._audiox_plain = f"player_row({', '.join(p._audiox_plain for p in players)})"
        self._audiox_html = _static_row(p._audiox_html for p in players)


def player(wave, sample_rate: int, label: str = "") -> Player:
    """One labelled audio player for a mono clip ``[T]``."""
    return Player(to_wav_bytes(wave, sample_rate), label)


def player_row(clips: dict[str, torch.Tensor], sample_rate: int) -> PlayerRow:
    """Players side by side, e.g. ``{"original": x, "explanation": e, "removed": r}``."""
    return PlayerRow([player(wave, sample_rate, label) for label, wave in clips.items()])


# ---------------------------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------------------------


def _value_widgets(widget: widgets.Widget) -> list[widgets.Widget]:
    """The widgets with a ``value`` in ``widget`` (itself, or the children of a box, recursively)."""
    if widget.has_trait("value"):
        return [widget]
    return [w for child in getattr(widget, "children", ()) for w in _value_widgets(child)]


def _control_text(widget: widgets.Widget) -> str:
    """``description = value`` as the widget shows it: a dropdown's label, a slider's readout format."""
    name = getattr(widget, "description", "") or type(widget).__name__
    value = widget.value
    label = getattr(widget, "label", None)  # selection widgets: the option's label, not its value
    if isinstance(label, str) and label:
        shown = label
    elif isinstance(value, str):
        shown = f"“{value}”"
    else:
        try:
            shown = format(value, getattr(widget, "readout_format", "") or "")
        except (TypeError, ValueError):
            shown = str(value)
    return f"{name} = {shown}"


def _control_plain(widget: widgets.Widget) -> str:
    description = getattr(widget, "description", "")
    return f"{type(widget).__name__}(description={description!r}, value={widget.value!r})"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # what the inline backend draws, at figure.dpi
    return buffer.getvalue()


class SliderExplorer:
    """A slider that recomputes ``fn(value) -> (wave, figure)`` when released, then updates a player and a plot.

    ``fn`` may also return ``(wave, figure, text)``; the text (HTML) is shown under the slider.
    ``wave`` may be a dict ``{label: wave}``: a row of labelled players, all updated together
    (e.g. original / explanation / explanation removed). ``figure`` may be ``None`` (players only).
    The "slider" may be any value widget, e.g. a ``widgets.Text`` for a prompt.
    ``controls``: other widgets (e.g. a ``Dropdown`` clip picker) shown above the slider; changing one
    re-runs ``fn`` with the slider's current value (``fn`` reads them itself).
    Set ``explorer.value = v`` in code to do what a learner's drag does (nbval uses this).

    The figure is drawn into an ``Image`` widget (PNG), so the explorer is pure widget state. Displayed, it
    carries a static copy (controls' values, text, Opus players, the PNG) and updates that display after
    each recomputation: a saved notebook shows the explorer's last state.

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
    >>> ex._repr_mimebundle_()["text/html"].count("<audio")
    2
    """

    def __init__(self, fn: Callable, slider: widgets.ValueWidget, sample_rate: int, label: str = "explanation",
                 controls: Sequence[widgets.Widget] = ()):
        self.fn = fn
        self.slider = slider
        self.sample_rate = sample_rate
        self.calls = 0
        slider.continuous_update = False  # recompute on release: a drag should not queue 50 re-runs
        slider.layout.width = slider.layout.width or "60%"
        self.label = label
        self.controls = list(controls)
        self.text = widgets.HTML()
        #: the players by label: one (``label``) for a wave, one per key when ``fn`` returns a dict
        self.players: dict[str, widgets.Audio] = {}
        self.player_box = widgets.HBox()
        #: the figure, as a PNG: widget state, unlike an ``Output``, so it needs no frontend to capture it
        self.image = widgets.Image(format="png")
        self.plot = self.image  # the name it had as an Output
        head = [widgets.HBox(self.controls)] if self.controls else []
        self._children = [*head, slider, self.text, self.player_box]
        self.widget = widgets.VBox(self._children)
        self._png: bytes | None = None
        self._display_id = f"audiox-explorer-{uuid.uuid4().hex}"
        self._displayed = False
        slider.observe(lambda change: self.update(change["new"]), names="value")
        for control in self.controls:
            for widget in _value_widgets(control):
                widget.observe(lambda change: self.update(self.slider.value), names="value")
        self.update(slider.value)

    @property
    def audio(self) -> widgets.Audio:
        """The first player (the only one when ``fn`` returns a single wave)."""
        return next(iter(self.players.values()))

    def _set_players(self, waves: dict) -> None:
        if list(waves) != list(self.players):  # first call, or other labels: build the row once
            self.players = {name: _live_audio() for name in waves}
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
        self.text.value = text or ""
        if figure is not None:
            self._png = _png(figure)
            plt.close(figure)  # the Image keeps the rendered PNG; the live figure would leak
            self.image.value = self._png
            if self.widget.children[-1] is not self.image:
                self.widget.children = [*self._children, self.image]
        if self._displayed and not _from_a_live_widget():
            update_display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)

    # -- display --------------------------------------------------------------------------------------------

    def _value_controls(self) -> list[widgets.Widget]:
        return [w for control in self.controls for w in _value_widgets(control)] + [self.slider]

    def _static_html(self) -> str:
        values = " &nbsp;·&nbsp; ".join(html.escape(_control_text(w)) for w in self._value_controls())
        parts = [
            '<div class="audiox-explorer">',
            f'<div style="font-family:monospace">{values} '
            '<span style="color:#888;font-size:85%">(the last state, saved: run the notebook to change it)</span>'
            "</div>",
        ]
        if self.text.value:
            parts.append(f"<div>{self.text.value}</div>")
        # encoded here, when published, not on every update: a learner's drag publishes nothing
        parts.append(_static_row(_static_player(name, a.value) for name, a in self.players.items()))
        if self._png is not None:
            png = base64.b64encode(self._png).decode("ascii")
            parts.append(f'<img alt="figure" src="data:image/png;base64,{png}">')
        parts.append("</div>")
        return "\n".join(parts)

    def _static_plain(self) -> str:
        controls = ", ".join(_control_plain(w) for w in self._value_controls())
        players = ", ".join(_summary(name, a.value) for name, a in self.players.items())
        return f"SliderExplorer({controls}, players=[{players}])"

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        return _bundle(self.widget, self._static_plain(), self._static_html())

    def _ipython_display_(self, **kwargs) -> None:
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
        self._displayed = True
