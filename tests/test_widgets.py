"""audiox.widgets and audiox.plot: players carry the right bytes; sliders recompute; plots draw."""

import io

import matplotlib

matplotlib.use("Agg")
import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from audiox import plot  # noqa: E402
from audiox.widgets import SliderExplorer, enable_colab, player, player_row  # noqa: E402

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
    assert set(plt.get_fignums()) == open_before  # its figures are closed once rendered into the Output


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
