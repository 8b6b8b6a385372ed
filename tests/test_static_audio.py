"""A saved notebook plays without a kernel: on GitHub, nbviewer or an HTML export every player is an ``<audio>``.

For each executed notebook (``notebooks/`` and ``notebooks/solutions/``; another folder of the same shape with
``AUDIOX_STATIC_NOTEBOOKS=/path``):

* every output that shows a player or an explorer as a widget also carries a ``text/html`` copy with ``<audio``;
* nbconvert's HTML export (no execution) holds exactly those ``<audio>`` elements, and no widget repr
  (``Audio(value=b'RIFF...``) leaks into it;
* every inlined sound decodes (finite, non-empty, at the rate :func:`audiox.widgets.static_sample_rate` gives);
* the file stays under 5 MB.
"""

import base64
import io
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

from audiox.widgets import static_sample_rate

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(os.environ.get("AUDIOX_STATIC_NOTEBOOKS", ROOT / "notebooks"))
NOTEBOOKS = sorted(FOLDER.glob("[0-9][0-9]_*.ipynb")) + sorted(FOLDER.glob("solutions/[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLAYER_OR_SLIDER = re.compile(r"Audio\(|Slider\(")
AUDIO_TAG = re.compile(r"<audio\b[^>]*>")
SOURCE = re.compile(r'data:(audio/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,([A-Za-z0-9+/=]+)')
MAX_BYTES = 5 * 2**20


def text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def displays(nb):
    """``(cell index, output data)`` of every display_data / execute_result output."""
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type in ("display_data", "execute_result"):
                yield i, output.data


def static_html(nb) -> list[str]:
    """The ``text/html`` that nbconvert shows: of every output, unless its widget's state is saved with the notebook."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    return [text(data["text/html"]) for _, data in displays(nb)
            if "text/html" in data and not (WIDGET_VIEW in data and data[WIDGET_VIEW]["model_id"] in state)]


@pytest.fixture(scope="module")
def exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter()


def relative(path: Path) -> str:
    return str(path.relative_to(FOLDER))


@pytest.mark.skipif(not NOTEBOOKS, reason=f"no notebooks in {FOLDER}")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=relative)
def test_a_saved_notebook_plays_without_a_kernel(path, exporter):
    assert path.stat().st_size < MAX_BYTES, f"{relative(path)} is {path.stat().st_size / 2**20:.1f} MB"
    nb = nbformat.read(path, as_version=4)

    bare = [i for i, data in displays(nb)
            if WIDGET_VIEW in data and PLAYER_OR_SLIDER.search(text(data.get("text/plain", "")))
            and not AUDIO_TAG.search(text(data.get("text/html", "")))]
    assert not bare, f"{relative(path)}: cells {bare} show a player or slider as a widget only (no static <audio>)"

    html_outputs = static_html(nb)
    expected = sum(len(AUDIO_TAG.findall(h)) for h in html_outputs)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem, "path": str(path.parent)}})
    assert len(AUDIO_TAG.findall(body)) == expected, relative(path)
    leaks = ("Audio(value=b&#39;RIFF", "Audio(value=b'RIFF")
    assert not any(leak in body for leak in leaks), f"{relative(path)}: a widget's repr leaks into the export"

    for h in html_outputs:
        for tag in AUDIO_TAG.findall(h):
            found = SOURCE.search(tag)
            assert found, f"{relative(path)}: an <audio> without an inlined source: {tag[:120]}"
            samples, rate = sf.read(io.BytesIO(base64.b64decode(found.group(2))))
            assert len(samples) > 0 and np.isfinite(samples).all(), relative(path)
            clip_rate = re.search(r'data-sample-rate="(\d+)"', tag)
            expected_rate = static_sample_rate(int(clip_rate.group(1))) if clip_rate else None
            if found.group(1) == "audio/ogg" and expected_rate:
                assert rate == expected_rate, f"{relative(path)}: decoded at {rate} Hz, expected {expected_rate}"
            seconds = re.search(r'data-seconds="([\d.]+)"', tag)
            if seconds:
                assert abs(len(samples) / rate - float(seconds.group(1))) < 0.01, relative(path)
