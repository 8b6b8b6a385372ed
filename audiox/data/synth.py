"""SynthSounds: procedurally generated everyday sounds with ground truth.

Ten event classes, each built by a line or two of synthesis, so that what a model
hears is known exactly. Every clip is deterministic from its seed, 2 s at 16 kHz by
default, float32 with a peak in [0.3, 0.9], and randomised within its class
(fundamental, rate, onset and length of the event: an event may start late or stop
early, so a mask over time has something to find).

| class | synthesis | attribute words drawn from the clip's own parameters |
|---|---|---|
| siren | slow sinusoidal FM sweep, 1-4 harmonics | pattern sweeping; timbre pure / harmonic |
| alarm | pulsed tone, sine or square-like | pattern pulsing / intermittent; timbre pure / buzzing; texture sharp / soft (ramp) |
| engine | low harmonic stack with amplitude modulation | timbre buzzing / harmonic (roll-off); texture rough / smooth (AM depth) |
| bird | fast high logarithmic up-chirps | texture sharp / smooth (chirp length) |
| rain | band-passed noise with resonant drops | texture crackling / hissing (drop rate) |
| bell | inharmonic exponentially decaying partials | pattern decaying / repeating (strikes); texture ringing / sharp (decay) |
| footsteps | rhythmic low damped thuds | pattern rhythmic / rapid; timbre dull / hollow; texture soft / sharp (heel) |
| wind | band-passed noise with slow gusts | pattern wavering / steady (gust depth); texture hissing / soft (band) |
| whistle | tone with vibrato, optional breath noise | pattern wavering; texture smooth / breathy |
| knock | groups of broadband clicks on a short resonance | pattern rapid / repeating; timbre hollow / dull |

``pitch`` is ``low`` (< 250 Hz), ``medium`` (< 1 kHz) or ``high``, from the clip's
fundamental (the band centre for rain and wind, the resonance for knock and footsteps).
Words are shared between classes, so attributes are more than a relabelling of the class.

A mixture adds a distractor event of another class and white or pink noise, with
per-source waveforms and ground-truth masks, so an explanation can be *checked*:
does the mask for "siren" cover the siren source?

>>> clip = make_event("siren", seed=0)
>>> clip["label"], clip["label_name"], tuple(clip["wave"].shape), clip["wave"].dtype
(0, 'siren', (32000,), torch.float32)
>>> clip["attributes"]
{'pitch': 'medium', 'pattern': 'sweeping', 'timbre': 'harmonic', 'texture': 'smooth'}
>>> clip["captions"]
['a recording of a siren', 'a harmonic siren, sweeping and medium in pitch', 'a sweeping siren with a smooth texture', 'something harmonic and smooth, sweeping and medium in pitch']
>>> mix = make_mixture("siren", "rain", seed=0, snr_db=0.0)
>>> sorted(mix["sources"]), tuple(mix["masks"]["event"].shape)
(['distractor', 'event', 'noise'], (257, 251))
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import signal

from ..audio import SAMPLE_RATE, stft

CLASSES = ("siren", "alarm", "engine", "bird", "rain", "bell", "footsteps", "wind", "whistle", "knock")
ATTRIBUTE_KEYS = ("pitch", "pattern", "timbre", "texture")
#: Every word an attribute can take; the concept vocabulary of later notebooks draws on them.
ATTRIBUTE_WORDS = sorted(
    {"low", "medium", "high"}
    | {"sweeping", "pulsing", "intermittent", "steady", "chirping", "decaying", "repeating", "rhythmic", "wavering", "rapid"}
    | {"pure", "harmonic", "buzzing", "noisy", "metallic", "dull", "hollow"}
    | {"smooth", "sharp", "soft", "rough", "crackling", "hissing", "ringing", "breathy"}
)
SPLITS = ("train", "val", "test")
DEFAULT_N_PER_CLASS = {"train": 100, "val": 20, "test": 30}

#: Tonal content stays below this (under 16 kHz's Nyquist), whatever the sample rate.
_MAX_FREQ = 7200.0
_FADE_SECONDS = 0.005  # edges of an event are ramped so its onset and offset do not click
_MASK_EPS = 1e-8


# ---- building blocks ------------------------------------------------------------------------------

def _log_uniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _pitch_word(freq: float) -> str:
    return "low" if freq < 250 else "medium" if freq < 1000 else "high"


def _phase(freq, sr):
    # Instantaneous phase of a time-varying frequency: scipy's oscillators (chirp, sweep_poly)
    # only sweep along fixed curves, not the sinusoidal FM of sirens and vibrato.
    return 2 * np.pi * np.cumsum(freq) / sr


_TABLE_PHASES = np.linspace(0, 2 * np.pi, 4096, endpoint=False)


def _harmonic_stack(phase, top_freq, amplitudes, rng):
    """Sum of harmonics k = 1..K of ``phase`` with random starting phases, those above _MAX_FREQ dropped.

    A wavetable oscillator: one period is summed once, then read at every sample's phase, so
    thirty harmonics cost what one does.
    """
    k = np.arange(1, len(amplitudes) + 1)
    keep = k * top_freq < _MAX_FREQ
    k, amplitudes = k[keep], np.asarray(amplitudes)[keep]
    offsets = rng.uniform(0, 2 * np.pi, len(k))
    period = amplitudes @ np.sin(k[:, None] * _TABLE_PHASES + offsets[:, None])
    return np.interp(phase % (2 * np.pi), _TABLE_PHASES, period, period=2 * np.pi)


def _decaying_sine(sr, freq, decay_s, seconds):
    t = np.arange(int(seconds * sr)) / sr
    return np.exp(-t / decay_s) * np.sin(2 * np.pi * freq * t)


def _strikes(n, onsets, amplitudes, kernel):
    """Place ``kernel`` (a thud, a click, a bell) at each onset (in samples): an impulse train convolved with it."""
    impulses = np.zeros(n)
    np.add.at(impulses, onsets, amplitudes)
    return signal.oaconvolve(impulses, kernel)[:n]


def _band_noise(rng, n, sr, low, high):
    sos = signal.butter(2, [low, min(high, _MAX_FREQ)], btype="bandpass", fs=sr, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    return noise / noise.std()


def _pink_noise(rng, n):
    # 1/f power spectrum by shaping white noise in the frequency domain; neither numpy nor scipy
    # ships a coloured-noise generator.
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[0] = 0.0
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    return np.fft.irfft(spectrum, n)


def _fade(wave, n_fade):
    n_fade = min(n_fade, len(wave) // 2)
    ramp = np.sin(0.5 * np.pi * np.arange(n_fade) / n_fade) ** 2
    wave = wave.copy()
    wave[:n_fade] *= ramp
    wave[len(wave) - n_fade:] *= ramp[::-1]
    return wave


def _regular_onsets(rng, sr, n, interval_s, jitter=0.03):
    """Sample indices of a regular rhythm starting within 50 ms, each interval jittered by +-``jitter``."""
    steps = interval_s * rng.uniform(1 - jitter, 1 + jitter, int(n / sr / (interval_s * (1 - jitter))) + 1)
    times = rng.uniform(0, 0.05) + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    return (times[times * sr < n] * sr).astype(int)


# ---- one generator per class: (rng, n samples, sample rate) -> (event wave, attribute words) ------

def _siren(rng, n, sr):
    centre = _log_uniform(rng, 450, 1500)
    depth = rng.uniform(0.35, 0.6)  # octaves either side of the centre
    rate = rng.uniform(0.5, 1.2)  # one up-and-down sweep every 0.8-2 s
    t = np.arange(n) / sr
    freq = centre * 2 ** (depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    n_harmonics = int(rng.integers(1, 5))
    wave = _harmonic_stack(_phase(freq, sr), freq.max(), 1 / np.arange(1, n_harmonics + 1), rng)
    timbre = "pure" if n_harmonics == 1 else "harmonic"
    return wave, dict(pitch=_pitch_word(centre), pattern="sweeping", timbre=timbre, texture="smooth")


def _alarm(rng, n, sr):
    freq = _log_uniform(rng, 600, 3000)
    rate = rng.uniform(2, 8)  # beeps per second
    duty = rng.uniform(0.35, 0.65)
    ramp = rng.uniform(0.001, 0.015)
    square = rng.random() < 0.5
    t = np.arange(n) / sr
    into_beep = (t * rate % 1) / rate
    gate = np.clip(np.minimum(into_beep, duty / rate - into_beep) / ramp, 0, 1)
    amplitudes = [1, 0, 1 / 3, 0, 1 / 5] if square else [1]  # odd harmonics: a square-like buzz
    wave = gate * _harmonic_stack(2 * np.pi * freq * t, freq, amplitudes, rng)
    return wave, dict(
        pitch=_pitch_word(freq),
        pattern="pulsing" if rate >= 4 else "intermittent",
        timbre="buzzing" if square else "pure",
        texture="sharp" if ramp < 0.006 else "soft",
    )


def _engine(rng, n, sr):
    f0 = _log_uniform(rng, 35, 110)
    rolloff = rng.uniform(0.5, 1.6)  # harmonic k has amplitude k^-rolloff: shallow sounds buzzing
    am_rate, am_depth = rng.uniform(4, 16), rng.uniform(0.2, 0.8)
    t = np.arange(n) / sr
    freq = f0 * (1 + 0.02 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))  # a little revving
    wave = _harmonic_stack(_phase(freq, sr), freq.max(), np.arange(1, 31) ** -rolloff, rng)
    wave *= 1 - am_depth * 0.5 * (1 - np.cos(2 * np.pi * am_rate * t))
    return wave, dict(
        pitch=_pitch_word(f0),
        pattern="steady",
        timbre="buzzing" if rolloff < 1 else "harmonic",
        texture="rough" if am_depth >= 0.5 else "smooth",
    )


def _bird(rng, n, sr):
    start = _log_uniform(rng, 2000, 4000)
    end = min(start * rng.uniform(1.3, 1.9), _MAX_FREQ)
    chirp_s = rng.uniform(0.03, 0.12)
    wave = np.zeros(n)
    for onset in _regular_onsets(rng, sr, n, 1 / rng.uniform(3, 9), jitter=0.25):
        length = min(int(chirp_s * sr), n - onset)
        t = np.arange(length) / sr
        scale = rng.uniform(0.93, 1.07)  # no two chirps of a bird quite alike
        chirp = signal.chirp(t, start * scale, chirp_s, end * scale, method="logarithmic")
        wave[onset:onset + length] += chirp * np.sin(np.pi * t / chirp_s) ** 2
    return wave, dict(
        pitch=_pitch_word(np.sqrt(start * end)),
        pattern="chirping",
        timbre="pure",
        texture="sharp" if chirp_s < 0.06 else "smooth",
    )


def _rain(rng, n, sr):
    centre = _log_uniform(rng, 800, 4000)
    hiss = _band_noise(rng, n, sr, centre / 2, centre * 2)
    drops_per_s = rng.uniform(8, 60)
    n_drops = max(1, rng.poisson(drops_per_s * n / sr))
    drop = _decaying_sine(sr, rng.uniform(2000, 5000), 0.003, 0.02)
    drops = _strikes(n, rng.integers(0, n, n_drops), rng.uniform(1, 4, n_drops), drop)
    return hiss + drops, dict(
        pitch=_pitch_word(centre),
        pattern="steady",
        timbre="noisy",
        texture="crackling" if drops_per_s >= 25 else "hissing",
    )


#: Partial frequencies of a bell relative to its prime, from Risset's synthetic bell (1969).
_BELL_RATIOS = np.array([0.56, 0.92, 1.19, 1.70, 2.00, 2.74, 3.00, 3.76, 4.07])
_BELL_LEVELS = np.array([1.0, 0.67, 1.0, 1.8, 2.67, 1.67, 1.46, 1.33, 1.33])


def _bell(rng, n, sr):
    prime = _log_uniform(rng, 250, 1500)
    decay = rng.uniform(0.3, 1.5)  # seconds, of the lowest partial; higher partials die sooner
    t = np.arange(min(n, int(5 * decay * sr))) / sr
    keep = _BELL_RATIOS * prime < _MAX_FREQ
    ratios, levels = _BELL_RATIOS[keep], _BELL_LEVELS[keep]
    partials = np.sin(2 * np.pi * prime * ratios[:, None] * t + rng.uniform(0, 2 * np.pi, (len(ratios), 1)))
    strike = (levels[:, None] * np.exp(-t * ratios[:, None] / (decay * ratios[0])) * partials).sum(0)
    onsets = (np.arange(rng.integers(1, 4)) * rng.uniform(0.3, 0.7) * sr).astype(int)
    onsets = onsets[onsets < n]
    return _strikes(n, onsets, 1.0, strike), dict(
        pitch=_pitch_word(prime),
        pattern="decaying" if len(onsets) == 1 else "repeating",
        timbre="metallic",
        texture="ringing" if decay >= 0.7 else "sharp",
    )


def _footsteps(rng, n, sr):
    rate = rng.uniform(1.4, 3.2)  # steps per second: walking to running
    freq = _log_uniform(rng, 50, 140)
    decay = rng.uniform(0.025, 0.09)
    heel = rng.uniform(0, 1)  # a hard floor adds a click to the thud
    click_band = signal.butter(2, 3000, fs=sr, output="sos")
    click = signal.sosfilt(click_band, rng.standard_normal(int(0.02 * sr))) * np.exp(-np.arange(int(0.02 * sr)) / (0.004 * sr))
    thud = _decaying_sine(sr, freq, decay, 0.3)
    thud[: click.size] += heel * 0.5 * click
    onsets = _regular_onsets(rng, sr, n, 1 / rate)
    left_right = np.where(np.arange(len(onsets)) % 2 == 0, 1.0, 0.8) * rng.uniform(0.9, 1.1, len(onsets))
    return _strikes(n, onsets, left_right, thud), dict(
        pitch=_pitch_word(freq),
        pattern="rapid" if rate >= 2.4 else "rhythmic",
        timbre="hollow" if decay >= 0.06 else "dull",
        texture="sharp" if heel >= 0.5 else "soft",
    )


def _wind(rng, n, sr):
    centre = _log_uniform(rng, 150, 900)
    depth = rng.uniform(0.3, 0.9)
    t = np.arange(n) / sr
    rates = rng.uniform(0.15, 0.8, 3)  # gusts: a few slow, incommensurate swells
    gusts = np.sin(2 * np.pi * rates[:, None] * t + rng.uniform(0, 2 * np.pi, (3, 1))).mean(0)
    envelope = 1 - depth * (1 - (gusts - gusts.min()) / (np.ptp(gusts) + 1e-12))
    return envelope * _band_noise(rng, n, sr, centre / 1.5, centre * 1.5), dict(
        pitch=_pitch_word(centre),
        pattern="wavering" if depth >= 0.5 else "steady",
        timbre="noisy",
        texture="hissing" if centre >= 500 else "soft",
    )


def _whistle(rng, n, sr):
    freq = _log_uniform(rng, 900, 2800)
    vibrato_rate, vibrato_depth = rng.uniform(4.5, 7.5), rng.uniform(0.015, 0.05)
    breath = rng.uniform(0, 0.3)
    t = np.arange(n) / sr
    inst_freq = freq * (1 + vibrato_depth * np.sin(2 * np.pi * vibrato_rate * t + rng.uniform(0, 2 * np.pi)))
    tone = np.sin(_phase(inst_freq, sr) + rng.uniform(0, 2 * np.pi))
    wave = tone + breath * 0.7 * _band_noise(rng, n, sr, freq / 1.3, freq * 1.3)
    return _fade(wave, int(0.05 * sr)), dict(
        pitch=_pitch_word(freq),
        pattern="wavering",
        timbre="pure",
        texture="breathy" if breath >= 0.15 else "smooth",
    )


def _knock(rng, n, sr):
    freq = _log_uniform(rng, 150, 600)  # resonance of the door or table
    decay = rng.uniform(0.008, 0.04)
    interval = rng.uniform(0.1, 0.3)
    knock = _decaying_sine(sr, freq, decay, 0.15)
    knock[: int(0.01 * sr)] += rng.standard_normal(int(0.01 * sr)) * np.exp(-np.arange(int(0.01 * sr)) / (0.0015 * sr))
    group = np.arange(rng.integers(2, 6)) * interval
    pause = group[-1] + rng.uniform(0.4, 0.8)  # knock-knock-knock ... knock-knock-knock
    times = rng.uniform(0, 0.05) + np.concatenate([group, pause + group])
    onsets = (times[times * sr < n] * sr).astype(int)
    return _strikes(n, onsets, rng.uniform(0.8, 1.2, len(onsets)), knock), dict(
        pitch=_pitch_word(freq),
        pattern="rapid" if interval < 0.17 else "repeating",
        timbre="hollow" if decay >= 0.02 else "dull",
        texture="sharp",
    )


_GENERATORS = dict(zip(CLASSES, (_siren, _alarm, _engine, _bird, _rain, _bell, _footsteps, _wind, _whistle, _knock)))


# ---- captions: class name and attribute words in varied sentences ------------------------------

_UNCOUNTABLE = {"rain", "wind", "footsteps"}  # no article: "the sound of rain", not "a rain"
_NAME_TEMPLATES = ("the sound of {name}", "{name}", "a recording of {name}", "{name} can be heard")
_NAME_ATTRIBUTE_TEMPLATES = (
    ("{pitch} pitched {pattern} {noun}", ""),
    ("{pattern} {noun}", " with {a_texture} texture"),
    ("{timbre} {noun}", ", {pattern} and {pitch} in pitch"),
    ("{noun}", " that sounds {timbre} and {texture}"),
)
_ATTRIBUTE_TEMPLATES = (
    "{a_timbre} {pattern} sound with {a_texture} texture",
    "{a_pitch} pitched {pattern} sound, {timbre} and {texture}",
    "something {timbre} and {texture}, {pattern} and {pitch} in pitch",
)


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _noun_phrase(phrase: str, label_name: str) -> str:
    return phrase if label_name in _UNCOUNTABLE else _article(phrase)


def _captions(label_name: str, attributes: dict, rng) -> list[str]:
    """One caption with the class name only, two with name and attributes, one with attributes only."""
    words = dict(attributes, **{f"a_{key}": _article(value) for key, value in attributes.items()})
    captions = [_NAME_TEMPLATES[rng.integers(len(_NAME_TEMPLATES))].format(name=_noun_phrase(label_name, label_name))]
    for head, tail in (_NAME_ATTRIBUTE_TEMPLATES[i] for i in rng.choice(len(_NAME_ATTRIBUTE_TEMPLATES), 2, replace=False)):
        captions.append(_noun_phrase(head.format(noun=label_name, **words), label_name) + tail.format(**words))
    captions.append(_ATTRIBUTE_TEMPLATES[rng.integers(len(_ATTRIBUTE_TEMPLATES))].format(**words))
    return captions


# ---- public API ---------------------------------------------------------------------------------

def class_index(label: int | str) -> int:
    """Index of a class given its name or index, with a clear error for anything else.

    >>> class_index("bell"), class_index(5)
    (5, 5)
    """
    if isinstance(label, str):
        if label not in CLASSES:
            raise ValueError(f"unknown SynthSounds class {label!r}; choose one of {list(CLASSES)}.")
        return CLASSES.index(label)
    index = int(label)
    if not 0 <= index < len(CLASSES):
        raise ValueError(f"class index {index} is out of range; SynthSounds has classes 0..{len(CLASSES) - 1}: {list(CLASSES)}.")
    return index


def _check_clip_settings(duration: float, sample_rate: int) -> None:
    if sample_rate < SAMPLE_RATE:
        raise ValueError(
            f"sample_rate={sample_rate}: SynthSounds has content up to {_MAX_FREQ:.0f} Hz and needs at least "
            f"{SAMPLE_RATE} Hz; generate at {SAMPLE_RATE} and use audiox.audio.resample if you need a lower rate."
        )
    if duration < 0.5:
        raise ValueError(f"duration={duration} s is too short for a recognisable event; use at least 0.5 s.")


def make_event(label: int | str, seed: int, duration: float = 2.0, sample_rate: int = SAMPLE_RATE) -> dict:
    """One clip of class ``label``: the event fills a random 50-100 % of the clip at a random onset.

    Returns a dict with ``wave`` (float32 ``[T]``, peak in [0.3, 0.9]), ``label``, ``label_name``,
    ``attributes`` (``pitch``, ``pattern``, ``timbre``, ``texture`` -> a word of :data:`ATTRIBUTE_WORDS`),
    ``captions`` (4 sentences: name only, name + attributes twice, attributes only), ``onset`` and
    ``offset`` (seconds: where the event lies in the clip) and ``seed``.

    >>> clip = make_event("bell", seed=3)
    >>> clip["label"], clip["attributes"]["timbre"], round(float(clip["wave"].abs().max()), 3) <= 0.9
    (5, 'metallic', True)
    >>> bool((make_event(5, seed=3)["wave"] == clip["wave"]).all())
    True
    """
    index = class_index(label)
    _check_clip_settings(duration, sample_rate)
    name = CLASSES[index]
    rng = np.random.default_rng([seed, index])  # the class is in the seed: siren 0 and bell 0 differ in timing too
    n = int(round(duration * sample_rate))
    span = int(rng.uniform(0.5, 1.0) * n)
    onset = int(rng.integers(0, n - span + 1))
    body, attributes = _GENERATORS[name](rng, span, sample_rate)
    wave = np.zeros(n)
    wave[onset:onset + span] = _fade(body, int(_FADE_SECONDS * sample_rate))
    wave *= rng.uniform(0.3, 0.9) / np.abs(wave).max()
    return dict(
        wave=torch.from_numpy(wave.astype(np.float32)),
        label=index,
        label_name=name,
        attributes=attributes,
        captions=_captions(name, attributes, rng),
        onset=onset / sample_rate,
        offset=(onset + span) / sample_rate,
        seed=seed,
    )


def _power(wave):
    return float(np.mean(np.square(wave, dtype=np.float64)))


def ratio_masks(sources: torch.Tensor) -> torch.Tensor:
    """Ground-truth magnitude ratio masks ``|S_k| / (sum_j |S_j| + 1e-8)`` of sources ``[K, ..., T]`` -> ``[K, ..., F, T']``.

    On :func:`audiox.audio.stft` (n_fft 512, hop 128); each mask lies in [0, 1] and they sum to 1
    wherever there is energy.

    >>> masks = ratio_masks(torch.stack([torch.ones(1600), torch.zeros(1600)]))
    >>> tuple(masks.shape), float(masks[0].max()), float(masks[1].max())
    ((2, 257, 13), 1.0, 0.0)
    """
    magnitudes = stft(sources).abs()
    return magnitudes / (magnitudes.sum(0) + _MASK_EPS)


def add_background(events: torch.Tensor, backgrounds: torch.Tensor, snr_db: float) -> dict:
    """Contaminate clean clips ``[B, T]`` with backgrounds ``[B, T]`` (white noise, speech, ...) at ``snr_db``.

    The out-of-domain test of an explanation: the event keeps its level, the background is scaled
    so that 10 log10(P(event) / P(background)) = ``snr_db`` per clip (mean power over the clip; a
    silent background stays silent). Returns ``wave`` ``[B, T]`` (peak-limited to 0.95 together
    with the sources, so they still sum to it), ``sources`` {"event", "background"} and their
    ground-truth ``masks`` ``[B, F, T']`` (:func:`ratio_masks`).

    >>> events = torch.stack([make_event("siren", 0)["wave"], make_event("bird", 1)["wave"]])
    >>> out = add_background(events, torch.randn(2, events.shape[1]), snr_db=0.0)
    >>> p = lambda x: x.double().pow(2).mean(-1)
    >>> snr = 10 * torch.log10(p(out["sources"]["event"]) / p(out["sources"]["background"]))
    >>> bool((snr.abs() < 1e-3).all())
    True
    """
    events, backgrounds = torch.as_tensor(events, dtype=torch.float32), torch.as_tensor(backgrounds, dtype=torch.float32)
    if events.ndim != 2 or events.shape != backgrounds.shape:
        raise ValueError(f"events and backgrounds must both be [B, T] of one shape, got {tuple(events.shape)} and "
                         f"{tuple(backgrounds.shape)}; pad or crop with audiox.audio.pad_to.")
    power = lambda x: x.double().pow(2).mean(-1, keepdim=True)  # noqa: E731
    if (power(events) == 0).any():
        raise ValueError("an event clip is silent; an SNR against it is undefined.")
    gain = torch.sqrt(power(events) / (power(backgrounds).clamp(min=1e-20) * 10 ** (snr_db / 10))).float()
    sources = {"event": events, "background": backgrounds * gain}
    peak = (sources["event"] + sources["background"]).abs().amax(-1, keepdim=True)
    limit = torch.where(peak > 0.95, 0.95 / peak, torch.ones_like(peak))
    sources = {k: v * limit for k, v in sources.items()}
    masks = ratio_masks(torch.stack([sources["event"], sources["background"]]))
    return {"wave": sources["event"] + sources["background"], "sources": sources,
            "masks": {"event": masks[0], "background": masks[1]}, "snr_db": float(snr_db)}


def make_mixture(
    label: int | str,
    distractor: int | str,
    seed: int,
    snr_db: float = 0.0,
    noise_db: float = -20.0,
    duration: float = 2.0,
    sample_rate: int = SAMPLE_RATE,
) -> dict:
    """An event of class ``label`` mixed with a ``distractor`` event of another class and noise.

    Levels, as mean power over the whole clip:

    * ``snr_db`` = 10 log10(P(event) / P(distractor + noise)): the event against everything else;
    * ``noise_db`` = 10 log10(P(noise) / P(distractor)): how loud the white or pink noise
      (chosen by the seed) is next to the distractor.

    The event is ``make_event(label, seed)`` rescaled, so label, attributes and captions are its.
    Added fields: ``sources`` {"event", "distractor", "noise"} -> float32 ``[T]`` that sum to
    ``wave``; ``masks`` with the same keys -> ground-truth magnitude ratio masks ``[F, T]``,
    M_k = |S_k| / (sum_j |S_j| + 1e-8) on :func:`audiox.audio.magnitude_phase` (n_fft 512,
    hop 128), each in [0, 1] and summing to 1 wherever there is energy; ``distractor_label``,
    ``distractor_name``, ``distractor_attributes``, ``noise_color``, ``snr_db``, ``noise_db``.

    >>> mix = make_mixture("whistle", "engine", seed=1, snr_db=5.0)
    >>> mix["label_name"], mix["distractor_name"]
    ('whistle', 'engine')
    >>> s = mix["sources"]
    >>> bool((s["event"] + s["distractor"] + s["noise"] == mix["wave"]).all())
    True
    >>> p = lambda x: x.double().pow(2).mean()
    >>> round(float(10 * torch.log10(p(s["event"]) / p(s["distractor"] + s["noise"]))), 2)
    5.0
    """
    distractor_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
    event = make_event(label, seed, duration, sample_rate)
    other = make_event(distractor, int(distractor_seed.generate_state(1)[0]), duration, sample_rate)
    if other["label"] == event["label"]:
        raise ValueError(f"the distractor must be another class than the event ({event['label_name']!r}).")
    rng = np.random.default_rng(noise_seed)
    noise_color = str(rng.choice(["white", "pink"]))
    noise = rng.standard_normal(event["wave"].numel()) if noise_color == "white" else _pink_noise(rng, event["wave"].numel())

    clean, distracting = event["wave"].double().numpy(), other["wave"].double().numpy()
    noise *= np.sqrt(_power(distracting) * 10 ** (noise_db / 10) / _power(noise))
    background_gain = np.sqrt(_power(clean) / (_power(distracting + noise) * 10 ** (snr_db / 10)))
    sources = {"event": clean, "distractor": background_gain * distracting, "noise": background_gain * noise}
    peak_gain = rng.uniform(0.3, 0.9) / np.abs(sum(sources.values())).max()
    sources = {key: torch.from_numpy((peak_gain * wave).astype(np.float32)) for key, wave in sources.items()}
    wave = sources["event"] + sources["distractor"] + sources["noise"]

    return dict(
        event,
        wave=wave,
        sources=sources,
        masks=dict(zip(sources, ratio_masks(torch.stack(list(sources.values()))))),
        distractor_label=other["label"],
        distractor_name=other["label_name"],
        distractor_attributes=other["attributes"],
        noise_color=noise_color,
        snr_db=float(snr_db),
        noise_db=float(noise_db),
    )


class SynthSounds(torch.utils.data.Dataset):
    """Balanced SynthSounds split: item ``i`` has label ``i % 10``, generated on access from its own seed.

    Each clip's seed comes from ``SeedSequence([seed, split, i])``, so train, val and test never
    share a clip and every item is the same on every machine. With ``mixtures=True`` each item is
    a :func:`make_mixture` with a distractor of another class drawn from the same seed.

    >>> ds = SynthSounds("test", n_per_class=2)
    >>> len(ds), ds.classes[:3], ds.sample_rate
    (20, ['siren', 'alarm', 'engine'], 16000)
    >>> [ds[i]["label"] for i in range(12)]
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    >>> tuple(ds.waves().shape), ds.labels[:3].tolist()
    ((20, 32000), [0, 1, 2])
    >>> mixed = SynthSounds("val", n_per_class=1, mixtures=True, snr_db=-5.0)
    >>> item = mixed[4]
    >>> item["label_name"], item["distractor_name"] != "rain", item["snr_db"]
    ('rain', True, -5.0)
    """

    def __init__(
        self,
        split: str = "train",
        n_per_class: int | None = None,
        mixtures: bool = False,
        snr_db: float = 0.0,
        noise_db: float = -20.0,
        seed: int = 0,
        duration: float = 2.0,
        sample_rate: int = SAMPLE_RATE,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; SynthSounds has splits {list(SPLITS)}.")
        n_per_class = DEFAULT_N_PER_CLASS[split] if n_per_class is None else int(n_per_class)
        if n_per_class < 1:
            raise ValueError(f"n_per_class={n_per_class}; ask for at least 1 clip per class.")
        _check_clip_settings(duration, sample_rate)
        self.split, self.n_per_class, self.mixtures = split, n_per_class, mixtures
        self.snr_db, self.noise_db, self.seed = snr_db, noise_db, seed
        self.duration, self.sample_rate = duration, sample_rate
        self.classes = list(CLASSES)
        self._waves = None

    def __len__(self) -> int:
        return self.n_per_class * len(CLASSES)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips.")
        index %= len(self)
        label = index % len(CLASSES)
        clip_seed, draw = np.random.SeedSequence([self.seed, SPLITS.index(self.split), index]).generate_state(2, np.uint64)
        if not self.mixtures:
            return make_event(label, int(clip_seed), self.duration, self.sample_rate)
        distractor = (label + 1 + int(draw) % (len(CLASSES) - 1)) % len(CLASSES)
        return make_mixture(label, distractor, int(clip_seed), self.snr_db, self.noise_db, self.duration, self.sample_rate)

    @property
    def labels(self) -> torch.Tensor:
        """Class index of every item, ``[N]`` (known without generating any audio)."""
        return torch.arange(len(self)) % len(CLASSES)

    def waves(self) -> torch.Tensor:
        """All clips stacked, ``[N, T]`` float32; generated on the first call, then kept."""
        if self._waves is None:
            self._waves = torch.stack([self[i]["wave"] for i in range(len(self))])
        return self._waves


#: The conditions explanations are tested under: in-domain, then three kinds of contamination.
CONDITIONS = ("clean", "another clip", "white noise", "speech")


def evaluation_conditions(split: str = "test", n_per_class: int = 5, snr_db: float = 5.0, seed: int = 0) -> dict[str, dict]:
    """The same events in-domain and out-of-domain, each with the ground truth an explanation is checked against.

    ``"clean"``: SynthSounds events alone. ``"another clip"``: each event mixed with an event of another
    class (and faint noise, :func:`make_mixture`). ``"white noise"`` and ``"speech"`` (a word of the
    shipped keyword set, by voices of the same split, at a random time): :func:`add_background`.
    All at ``snr_db``, event against everything else. Each condition: ``waves`` ``[B, T]``,
    ``labels`` ``[B]`` (the event's class), ``distractor_labels`` ``[B]`` (the other clip's class, -1
    where there is none), ``present`` ``[B, n_classes]`` (the classes one can hear: the event's, and
    the other clip's), ``event_masks`` ``[B, F, T']``, the share of each bin that belongs to the
    event (all ones where a clean clip has energy), and ``masks``, every source's share by name
    (as :func:`comparison_conditions`).

    >>> sets = evaluation_conditions(n_per_class=1)
    >>> list(sets), tuple(sets["speech"]["waves"].shape), tuple(sets["speech"]["event_masks"].shape)
    (['clean', 'another clip', 'white noise', 'speech'], (10, 32000), (10, 257, 251))
    """
    from ..audio import pad_to
    from .base import stack
    from .speech import Keywords

    events = SynthSounds(split, n_per_class)
    waves, labels = events.waves(), events.labels
    mixed = SynthSounds(split, n_per_class, mixtures=True, snr_db=snr_db, seed=seed)
    rng = torch.Generator().manual_seed(seed)
    words, _ = stack(Keywords("val" if split == "val" else "test"))
    words = pad_to(words, waves.shape[-1] / events.sample_rate, events.sample_rate)
    pick = torch.randint(len(words), (len(waves),), generator=rng)
    shifts = torch.randint(words.shape[-1], (len(waves),), generator=rng)
    speech = torch.stack([torch.roll(words[i], int(s)) for i, s in zip(pick.tolist(), shifts.tolist())])
    noise = torch.randn(waves.shape, generator=rng)
    present = torch.nn.functional.one_hot(labels, len(CLASSES)).bool()
    items = [mixed[i] for i in range(len(mixed))]
    none = torch.full_like(labels, -1)
    zeros = torch.zeros(len(waves), *ratio_masks(waves[:1])[0].shape[-2:])
    other = torch.tensor([item["distractor_label"] for item in items])
    mixed_masks = {k: torch.stack([item["masks"][k] for item in items]) for k in ("event", "distractor", "noise")}
    out = {"clean": {"waves": waves, "labels": labels, "present": present, "distractor_labels": none,
                     "event_masks": ratio_masks(waves[None])[0]},
           "another clip": {"waves": mixed.waves(), "labels": mixed.labels, "distractor_labels": other,
                            "present": present | torch.nn.functional.one_hot(other, len(CLASSES)).bool(),
                            "event_masks": mixed_masks["event"], "masks": mixed_masks}}
    out["clean"]["masks"] = {"event": out["clean"]["event_masks"], "distractor": zeros}
    for name, background in (("white noise", noise), ("speech", speech)):
        contaminated = add_background(waves, background, snr_db)
        out[name] = {"waves": contaminated["wave"], "labels": labels, "present": present, "distractor_labels": none,
                     "event_masks": contaminated["masks"]["event"],
                     "masks": {"event": contaminated["masks"]["event"], "distractor": zeros,
                               name: contaminated["masks"]["background"]}}
    return out


def comparison_conditions(split: str = "test", n_per_class: int = 3, snrs_db=(10.0, 5.0, 0.0),
                          noise_snr_db: float = 20.0, seed: int = 0) -> dict[str, dict]:
    """The clips of notebook 06: the same events clean, mixed with a distractor at each of ``snrs_db``, and over
    white noise at ``noise_snr_db``; every source with its ground-truth ratio mask.

    Each condition: ``waves`` ``[B, T]``, ``labels`` ``[B]`` (the event's class), ``distractor_labels``
    ``[B]`` (-1 where there is none), ``masks`` ``{"event", "distractor", "noise"} -> [B, F, T']`` (a
    source that is absent is all zeros) and ``words``, each clip's true attribute words (its event's, and
    its distractor's where there is one). The mixtures are :func:`make_mixture` (event against
    distractor + faint noise at the SNR); a clip's seed fixes its event, so clip ``i`` holds the same
    event in every condition (rescaled), and the same distractor at every SNR. The noisy clips are the
    clean events with white noise (:func:`add_background`).

    >>> sets = comparison_conditions(n_per_class=1)
    >>> list(sets), tuple(sets["mixed 5 dB"]["masks"]["distractor"].shape), sets["clean"]["distractor_labels"][:2].tolist()
    (['clean', 'mixed 10 dB', 'mixed 5 dB', 'mixed 0 dB', 'white noise 20 dB'], (10, 257, 251), [-1, -1])
    """
    events = SynthSounds(split, n_per_class)
    waves, labels = events.waves(), events.labels
    words = [set(events[i]["attributes"].values()) for i in range(len(events))]
    none = torch.full_like(labels, -1)
    zeros = torch.zeros(len(waves), *ratio_masks(waves[:1])[0].shape[-2:])
    out = {"clean": {"waves": waves, "labels": labels, "distractor_labels": none, "words": words,
                     "masks": {"event": ratio_masks(waves[None])[0], "distractor": zeros, "noise": zeros}}}
    for snr in snrs_db:
        mixed = SynthSounds(split, n_per_class, mixtures=True, snr_db=float(snr), seed=seed)
        items = [mixed[i] for i in range(len(mixed))]
        out[f"mixed {snr:g} dB"] = {
            "waves": mixed.waves(), "labels": mixed.labels,
            "distractor_labels": torch.tensor([item["distractor_label"] for item in items]),
            "words": [set(item["attributes"].values()) | set(item["distractor_attributes"].values()) for item in items],
            "masks": {k: torch.stack([item["masks"][k] for item in items]) for k in ("event", "distractor", "noise")}}
    noise = torch.randn(waves.shape, generator=torch.Generator().manual_seed(seed))
    noisy = add_background(waves, noise, noise_snr_db)
    out[f"white noise {noise_snr_db:g} dB"] = {
        "waves": noisy["wave"], "labels": labels, "distractor_labels": none, "words": words,
        "masks": {"event": noisy["masks"]["event"], "distractor": zeros, "noise": noisy["masks"]["background"]}}
    return out
