"""audiox.widgets and audiox.plot: players carry the right bytes; sliders recompute; plots draw; every player and
explorer displays a live widget plus a static copy (Ogg/Opus players, the figure) that a saved notebook keeps."""

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")
import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audiox import plot  # noqa: E402
from audiox.widgets import SliderExplorer, audio_html, enable_colab, player, player_row  # noqa: E402

SR = 16_000


def decoded(audio_widget):
    data, sr = sf.read(io.BytesIO(audio_widget.value))
    return data, sr


def test_player_holds_the_clip_unnormalised():
    wave = 0.1 * torch.sin(torch.linspace(0, 1000, SR))
    box = player(wave, SR, "quiet")
    audio_widget = box.children[1]
    data, sr = decoded(audio_widget)
    assert sr == SR and len(data) == SR and abs(np.abs(data).max() - 0.1) < 1e-3
    assert not audio_widget.autoplay and not audio_widget.loop
    assert "quiet" in box.children[0].value


def test_player_row_keeps_order_and_labels():
    row = player_row({"original": torch.zeros(100), "explanation": torch.ones(100) * 0.5}, SR)
    assert [b.children[0].value for b in row.children] == ["<b>original</b>", "<b>explanation</b>"]


def test_slider_explorer_recomputes_on_value_change():
    seen = []

    def fn(gain):
        seen.append(gain)
        fig, ax = plt.subplots()
        return gain * torch.ones(SR) * 0.5, fig, f"gain {gain}"

    slider = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.25)
    open_before = set(plt.get_fignums())
    ex = SliderExplorer(fn, slider, SR)
    assert not slider.continuous_update
    ex.value = 0.25
    assert seen == [1.0, 0.25] and ex.calls == 2
    data, _ = decoded(ex.audio)
    assert abs(data.max() - 0.125) < 1e-3
    assert ex.text.value == "gain 0.25"
    assert set(plt.get_fignums()) == open_before  # its figures are closed once rendered into the Image
    assert ex.image.value[:8] == b"\x89PNG\r\n\x1a\n" and ex.widget.children[-1] is ex.image


def test_enable_colab_is_a_no_op_outside_colab():
    assert enable_colab() is False


def test_plots_draw_waves_magnitudes_and_masks():
    wave = torch.sin(2 * torch.pi * 1000 * torch.arange(SR) / SR)
    ax = plot.spectrogram(wave, SR, title="t")
    assert ax.get_title() == "t"
    magnitude = torch.rand(257, 126)
    plot.spectrogram(magnitude, SR)
    plot.mask_overlay(wave, torch.rand(257, 126), SR)
    plot.waveform(wave, SR)
    plot.spectrogram(torch.zeros(SR), SR)  # silence draws as the floor, no NaN warnings
    plt.close("all")


def test_mask_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="same shape"):
        plot.mask_overlay(torch.zeros(SR), torch.zeros(10, 10), SR)
    with pytest.raises(ValueError, match="waveform"):
        plot.spectrogram(torch.zeros(2, 3, 4), SR)


# --- static copies ---------------------------------------------------------------------------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SOURCE = re.compile(r'<audio\b[^>]*data-sample-rate="(\d+)"[^>]*src="data:(audio/[\w.+-]+);base64,([A-Za-z0-9+/=]+)"')


def static_sources(html):
    """``(clip's rate, mime, decoded samples, decoded rate, codec bytes)`` of each ``<audio>`` in ``html``."""
    out = []
    for rate, mime, b64 in SOURCE.findall(html):
        data = base64.b64decode(b64)
        samples, sr = sf.read(io.BytesIO(data))
        out.append((int(rate), mime, samples, sr, data))
    return out


@pytest.fixture
def shell():
    """A real IPython shell whose display publisher records what a kernel would send to the frontend."""
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=config)
    sh.display_pub = CapturingDisplayPublisher()
    yield sh
    InteractiveShell.clear_instance()


def test_a_player_bundle_has_the_widget_a_static_copy_and_a_summary():
    wave = 0.3 * torch.sin(torch.linspace(0, 3000, SR))
    box = player(wave, SR, "tone")
    bundle = box._repr_mimebundle_()
    assert set(bundle) == {"text/plain", WIDGET_VIEW, "text/html"}
    assert bundle[WIDGET_VIEW] == {"version_major": 2, "version_minor": 0, "model_id": box.model_id}
    assert bundle["text/plain"] == "Audio(label='tone', seconds=1.0, sample_rate=16000)"
    assert "<b>tone</b>" in bundle["text/html"] and 'preload="none"' in bundle["text/html"]
    (rate, mime, samples, sr, data), = static_sources(bundle["text/html"])
    assert (rate, mime, sr) == (SR, "audio/ogg", SR) and b"OpusHead" in data
    assert len(samples) == SR and np.isfinite(samples).all()
    assert abs(np.abs(samples).max() - 0.3) < 0.05  # lossy, but not normalised
    assert len(data) < 7_000  # ~32 kbit/s: a second of sound in a few kB, not the WAV's 32 kB


def test_a_row_has_one_decodable_source_per_player_in_order():
    clips = {"a": torch.zeros(8000), "b": 0.1 * torch.ones(4000), "c": 0.2 * torch.randn(12000).clamp(-1, 1)}
    row = player_row(clips, SR)
    html_ = row._repr_mimebundle_()["text/html"]
    sources = static_sources(html_)
    assert [len(s[2]) for s in sources] == [8000, 4000, 12000] and all(s[3] == SR for s in sources)
    assert [html_.index(f"<b>{k}</b>") for k in clips] == sorted(html_.index(f"<b>{k}</b>") for k in clips)
    assert row.children[1].children[1].value == player(clips["b"], SR).children[1].value  # live: the WAV


def test_rates_opus_lacks_are_resampled_up_and_keep_their_duration():
    for rate, opus_rate in ((22_050, 24_000), (44_100, 48_000), (8_000, 8_000)):
        (clip_rate, _, samples, sr, _), = static_sources(audio_html(0.2 * torch.randn(rate).clamp(-1, 1), rate, "x"))
        assert (clip_rate, sr) == (rate, opus_rate) and abs(len(samples) - opus_rate) <= 2


@pytest.mark.parametrize("missing, mime", [({"OPUS"}, "audio/ogg"), ({"OPUS", "VORBIS"}, "audio/wav")])
def test_without_opus_the_static_copy_falls_back_to_vorbis_then_wav(monkeypatch, missing, mime):
    write = sf.write

    def limited_write(file, data, rate, subtype=None, format=None, **kwargs):
        if subtype in missing:
            raise sf.LibsndfileError(0, f"no {subtype} here") if hasattr(sf, "LibsndfileError") else RuntimeError()
        return write(file, data, rate, subtype=subtype, format=format, **kwargs)

    monkeypatch.setattr(sf, "write", limited_write)
    (rate, found, samples, sr, data), = static_sources(audio_html(0.1 * torch.ones(1600), SR))
    assert (found, sr, len(samples)) == (mime, SR, 1600) and (b"vorbis" in data) == (mime == "audio/ogg")


def test_audio_html_is_a_static_player_for_html_text():
    tag = audio_html(torch.zeros(1600), SR, "left out")
    assert tag.count("<audio") == 1 and "<b>left out</b>" in tag
    assert len(static_sources(tag)[0][2]) == 1600


def explorer_with_picker():
    picker = widgets.Dropdown(options=[("quiet", 0.1), ("loud", 0.5)], value=0.1, description="level")

    def fn(gain):
        fig, ax = plt.subplots()
        ax.set_title(f"{gain}")
        wave = gain * picker.value * torch.ones(SR)
        return {"clip": wave, "half": wave / 2}, fig, f"gain {gain}"

    slider = widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.25, description="gain")
    return SliderExplorer(fn, slider, SR, controls=[picker]), picker


def test_an_explorer_bundle_holds_values_text_players_and_figure():
    ex, picker = explorer_with_picker()
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/plain", WIDGET_VIEW, "text/html"}
    assert bundle[WIDGET_VIEW]["model_id"] == ex.widget.model_id
    assert "FloatSlider(description='gain', value=1.0)" in bundle["text/plain"] and "Audio(" in bundle["text/plain"]
    html_ = bundle["text/html"]
    assert "level = quiet" in html_ and "gain = 1.00" in html_ and "gain 1.0" in html_
    assert len(static_sources(html_)) == 2
    png = re.search(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html_).group(1)
    assert base64.b64decode(png) == ex.image.value
    assert ex.widget.children[0].children == (picker,) and ex.widget.children[1] is ex.slider  # controls above


def test_a_control_reruns_the_explorer_at_the_sliders_value():
    ex, picker = explorer_with_picker()
    ex.value = 0.5
    picker.value = 0.5
    assert ex.calls == 3 and ex.value == 0.5
    assert abs(decoded(ex.players["clip"])[0].max() - 0.25) < 1e-3
    assert "level = loud" in ex._repr_mimebundle_()["text/html"]


def test_an_explorer_without_figure_shows_no_image():
    ex = SliderExplorer(lambda v: (v * torch.ones(800), None), widgets.IntSlider(value=0, description="K"), SR)
    assert ex.image not in ex.widget.children and "<img" not in ex._repr_mimebundle_()["text/html"]
    assert "K = 0" in ex._repr_mimebundle_()["text/html"]


def test_a_text_box_explorer_quotes_its_value():
    box = widgets.Text(value="a bird", description="query")
    ex = SliderExplorer(lambda q: ({f"hit for {q}": torch.zeros(800)}, None, ""), box, SR)
    box.value = "a bell"
    assert list(ex.players) == ["hit for a bell"] and "query = “a bell”" in ex._repr_mimebundle_()["text/html"]


def test_a_displayed_explorer_updates_its_display_with_its_last_state(shell):
    from IPython.display import display

    ex, picker = explorer_with_picker()
    display(ex)
    ex.value = 0.25                       # what a cell (or a drag) does after the explorer was displayed
    picker.value = 0.5
    first, *updates = shell.display_pub.outputs
    assert not first["update"] and set(first["data"]) == {"text/plain", WIDGET_VIEW, "text/html"}
    display_id = first["transient"]["display_id"]
    assert [u["update"] for u in updates] == [True, True]
    assert all(u["transient"]["display_id"] == display_id for u in updates)
    last = updates[-1]["data"]
    assert "gain = 0.25" in last["text/html"] and "level = loud" in last["text/html"]
    (_, _, clip, _, _), _ = static_sources(last["text/html"])
    assert abs(np.abs(clip).max() - 0.125) < 0.02   # the sound of the last state, not the first
    assert last[WIDGET_VIEW] == first["data"][WIDGET_VIEW]


def test_an_explorer_as_a_cells_last_expression_is_displayed_once(shell):
    shell.user_ns.update(ex=explorer_with_picker()[0])
    shell.run_cell("ex")
    assert len(shell.display_pub.outputs) == 1 and "transient" in shell.display_pub.outputs[0]
    shell.run_cell("ex.value = 1.5")
    last = shell.display_pub.outputs[-1]
    assert last["update"] and "gain = 1.50" in last["data"]["text/html"]


def test_ipywidgets_7_display_path(shell, monkeypatch):
    """ipywidgets 7 (Colab) widgets have no ``_repr_mimebundle_`` and display through ``_ipython_display_``."""
    from IPython.display import display

    def display_7x(self, **kwargs):  # what ipywidgets 7.7's Widget._ipython_display_ publishes
        display({"text/plain": repr(self), WIDGET_VIEW: {"version_major": 2, "version_minor": 0,
                                                         "model_id": self.model_id}}, raw=True)

    monkeypatch.delattr(widgets.Widget, "_repr_mimebundle_", raising=False)  # absent already under 7.x
    monkeypatch.setattr(widgets.Widget, "_ipython_display_", display_7x, raising=False)
    ex = explorer_with_picker()[0]
    display(player(torch.zeros(800), SR, "p"), player_row({"a": torch.zeros(800)}, SR), ex, widgets.Button())
    ex.value = 0.5
    outs = shell.display_pub.outputs
    assert [set(o["data"]) == {"text/plain", WIDGET_VIEW, "text/html"} for o in outs] == [True, True, True, False, True]
    assert outs[-1]["update"] and outs[3]["data"][WIDGET_VIEW]  # a plain widget still shows the 7.x way
