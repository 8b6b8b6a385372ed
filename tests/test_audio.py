"""audiox.audio: I/O, validation (every bad input gets its clear error), STFT round trip, wav bytes."""

import io
import re
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from audiox import audio

SR = 16_000


def tone(seconds=1.0, freq=440.0, sr=SR, amp=0.5):
    t = torch.arange(int(seconds * sr)) / sr
    return amp * torch.sin(2 * torch.pi * freq * t)


# ---- validate: one place for input checks ------------------------------------------------------

def test_validate_accepts_and_converts_numpy_float64():
    out = audio.validate(tone().double().numpy(), SR)
    assert out.dtype == torch.float32 and out.ndim == 1


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((SR,), float("nan")), "NaN or infinite"),
        (torch.cat([tone(), torch.tensor([float("inf")])]), "NaN or infinite"),
        (torch.stack([tone(), tone()]), "stereo"),
        (torch.stack([tone(), tone()]).T, "stereo"),
        (torch.zeros(SR), "all silent"),
        (tone(0.05), "0.050 s long"),
        (torch.zeros(0), "empty"),
        ((tone() * 32767).to(torch.int16), "integer dtype"),
        (torch.stft(tone(), 64, return_complex=True, window=torch.hann_window(64)), "complex"),
        ("not audio", "torch.Tensor or numpy"),
    ],
)
def test_validate_rejects_bad_input_with_fix(bad, match):
    with pytest.raises(ValueError, match=match):
        audio.validate(bad, SR)


def test_validate_wrong_sample_rate_names_the_fix():
    with pytest.raises(ValueError, match=r"44100 Hz but the model expects 16000 Hz.*audiox.audio.resample"):
        audio.validate(tone(sr=44100), 44100)


def test_validate_resamples_with_a_notice():
    with pytest.warns(UserWarning, match="resampling 44100 Hz -> 16000 Hz"):
        out = audio.validate(tone(sr=44100), 44100, resample_to_expected=True)
    assert out.shape[-1] == SR


def test_validate_batched_names_silent_clips():
    batch = torch.stack([tone(), torch.zeros(SR), tone()])
    with pytest.raises(ValueError, match=r"clips \[1\]"):
        audio.validate(batch, SR, batched=True)
    with pytest.raises(ValueError, match="channels"):
        audio.validate(batch[:, None].expand(3, 2, SR), SR, batched=True)


def test_validate_allows_silence_when_asked():
    assert audio.validate(torch.zeros(SR), SR, allow_silence=True).abs().sum() == 0


def test_validate_warns_for_pcm_scaled_floats():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"wave looks scaled like integer PCM \(peak \d+\.?\d*\).*divide by 32768 if it "
                                         r"came from 16-bit PCM \(2\*\*23 for 24-bit, 2\*\*31 for 32-bit\)"):
        audio.validate(torch.randn(16000) * 1e4, 16000)
    with pytest.warns(UserWarning, match=r"peak 32767"):
        audio.validate(tone(amp=1.0) * 32767, SR)


def test_validate_warns_far_beyond_full_scale_and_names_batch_clips():
    with pytest.warns(UserWarning, match=r"wave \(clips \[1\]\) has samples beyond ±1 \(peak 3\).*normalise"):
        audio.validate(torch.stack([tone(), tone(amp=3.0)]), SR, batched=True)


@pytest.mark.parametrize("peak", [0.9, 1.0, 1.2, 1.9])
def test_validate_warns_nothing_up_to_mild_overshoot(peak):
    """Peaks up to 1.11 reach validate in the notebooks (codec resynthesis); only beyond 2 is it worth a word."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio.validate(tone(amp=peak), SR)
        audio.validate(torch.stack([tone(amp=peak), tone()]), SR, batched=True)
    assert caught == []


def test_validate_warns_through_every_models_input_path():
    from audiox.models.base import prepare_waves

    with pytest.warns(UserWarning, match="integer PCM"):
        prepare_waves(tone(amp=1.0) * 32767, None, SR)


def test_validate_does_not_warn_on_a_wave_with_grad():
    """The peak is read off a detached copy: torch warns when a scalar is read off a graph."""
    wave = tone().requires_grad_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio.validate(wave, SR)
    assert caught == []


def test_validate_uses_the_given_name():
    with pytest.raises(ValueError, match="^query.wav contains"):
        audio.validate(torch.full((SR,), float("nan")), SR, name="query.wav")


# ---- load: files -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, ext", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg")])
def test_load_formats_round_trip(tmp_path, fmt, ext):
    path = tmp_path / f"tone{ext}"
    sf.write(path, tone().numpy(), SR, format=fmt)
    wave = audio.load(path)
    assert wave.shape == (SR,)
    tol = 0.05 if fmt == "OGG" else 1e-3  # Vorbis is lossy
    assert (wave - tone()).abs().mean() < tol


def test_load_mixes_down_and_resamples(tmp_path):
    path = tmp_path / "stereo44k.wav"
    stereo = np.stack([tone(sr=44100).numpy(), -tone(sr=44100).numpy() * 0.0], axis=1)
    sf.write(path, stereo, 44100)
    wave = audio.load(path, sample_rate=SR)
    assert wave.shape == (SR,)
    assert audio.load(path, sample_rate=None, mono=False).shape == (2, 44100)


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        audio.load(tmp_path / "nope.wav")


def test_load_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        audio.load(path)


def test_load_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x01garbage that is not a wav file" * 10)
    with pytest.raises(ValueError, match="could not be decoded.*corrupt"):
        audio.load(path)


def test_load_unsupported_format(tmp_path):
    """Bytes no decoder knows, named .mp4: the name says what it claims to be, and ffmpeg is the fix."""
    path = tmp_path / "song.mp4"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match=r"by its name \(\.mp4\) it is MP4/M4A.*`ffmpeg -i song\.mp4 song\.wav`"):
        audio.load(path)


def test_load_directory_says_pass_one_file(tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"adir is a directory, not an audio file; pass one file \(e\.g\. sorted\(Path"
                                         r".*glob\('\*\.wav'\)\)") as err:
        audio.load(folder)
    assert "ffmpeg" not in str(err.value) and "format" not in str(err.value)


def test_load_reads_by_content_not_by_name(tmp_path):
    """A WAV named .mp3 (or with no extension) is read: libsndfile recognises the content."""
    for name in ("really_a_wav.mp3", "no_extension"):
        path = tmp_path / name
        sf.write(path, tone().numpy(), SR, format="WAV")
        assert (audio.load(path) - tone()).abs().max() < 1e-3


@pytest.mark.parametrize("content, said", [
    (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isommp42" + b"\x00" * 300, "its content is MP4/M4A"),
    (b"These are my notes, not a recording.\n" * 20, r"by its name \(\.m4a\) it is MP4/M4A"),
])
def test_load_undecodable_m4a_names_the_format_and_ffmpeg(tmp_path, content, said):
    path = tmp_path / "voice memo.m4a"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"could not be decoded.*{said}.*libsndfile.*does not read; convert it to WAV "
                                         r"with ffmpeg: `ffmpeg -i voice memo\.m4a voice memo\.wav`"):
        audio.load(path)


def test_load_webm_magic_bytes_are_named(tmp_path):
    path = tmp_path / "recording.bin"
    path.write_bytes(b"\x1aE\xdf\xa3" + b"\x00" * 200)
    with pytest.raises(ValueError, match=r"its content is WebM/Matroska.*ffmpeg -i recording\.bin recording\.wav"):
        audio.load(path)


def wav_bytes(seconds, sample_rate, subtype="PCM_16"):
    buffer = io.BytesIO()
    sf.write(buffer, tone(seconds, sr=sample_rate).numpy(), sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("subtype, cut, held", [
    ("FLOAT", 100, r"5 \(0\.05 ms\)"), ("PCM_16", 100, r"\d+"), ("PCM_16", "half", "47989"), ("PCM_24", "half", r"4799\d"),
])
def test_load_truncated_wav(tmp_path, subtype, cut, held):
    """The first 100 bytes of a 1 s 96 kHz WAV (libsndfile alone reads them as a few samples), or its first half."""
    data = wav_bytes(1.0, 96_000, subtype)
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2 if cut == "half" else cut])
    with pytest.raises(ValueError, match=rf"cut\.wav is truncated: its header says 96000 samples \(1\.000 s at 96000 Hz\)"
                                         rf", the file holds {held}(?!\d).*re-download or re-export"):
        audio.load(path)


def test_load_float_wav_100_bytes_is_what_the_issue_saw(tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(1.0, 96_000, "FLOAT")[:100])
    assert sf.read(path)[0].shape == (5,)  # what soundfile alone gives: 5 samples, without a word
    with pytest.raises(ValueError, match=r"the file holds 5 \("):
        audio.load(path)


def test_load_a_few_missing_bytes_are_not_truncation(tmp_path):
    """A header that overcounts by a few bytes (some writers do) loses no sound: tolerated (under 10 ms)."""
    path = tmp_path / "nearly.wav"
    path.write_bytes(wav_bytes(1.0, SR)[:-40])  # 20 samples = 1.25 ms short
    assert audio.load(path).shape == (SR - 20,)


def test_load_truncated_flac(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, tone(2.0, sr=48_000).numpy(), 48_000, format="FLAC")
    path = tmp_path / "cut.flac"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match=r"cut\.flac is truncated or damaged: its header says 96000 samples "
                                         r"\(2\.000 s at 48000 Hz\), only the first \d+ .*decode.*re-download") as err:
        audio.load(path)
    decoded = int(re.search(r"only the first (\d+)", str(err.value))[1])
    assert 30_000 < decoded < 50_000  # about the half that is there, not 0


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="this libsndfile does not write MP3 (needs 1.1)")
def test_load_mp3_round_trip_and_truncated(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, tone(2.0, sr=48_000).numpy(), 48_000, format="MP3")
    whole, cut = tmp_path / "whole.mp3", tmp_path / "cut.mp3"
    whole.write_bytes(buffer.getvalue())
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert audio.load(whole, sample_rate=None).shape == (96_000,)
    with pytest.raises(ValueError, match=r"cut\.mp3 is truncated: its header says 96000 samples"):
        audio.load(cut)


def test_load_mp3_on_an_old_libsndfile_says_update_or_convert(tmp_path, monkeypatch):
    """libsndfile before 1.1 has no MP3 decoder: the fix is a newer soundfile, or ffmpeg."""
    formats = {k: v for k, v in sf.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(audio.sf, "available_formats", lambda: formats)
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3\x03\x00" + b"\x00" * 300)  # an ID3 tag and nothing a decoder can use
    with pytest.raises(ValueError, match=r"its content is MP3, which this libsndfile \(.*\) does not decode; libsndfile "
                                         r">= 1\.1 does \(`pip install -U soundfile`\), or convert it to WAV with ffmpeg"):
        audio.load(path)


def test_load_raw_name_says_rename_or_convert(tmp_path):
    path = tmp_path / "take1.raw"
    path.write_bytes(wav_bytes(0.1, SR))
    with pytest.raises(ValueError, match=r"take1\.raw: soundfile takes a \.raw file for headerless samples.*rename it.*"
                                         r"ffmpeg -f s16le"):
        audio.load(path)


def test_load_one_sample_file(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, np.array([0.5], dtype="float32"), SR)
    with pytest.raises(ValueError, match=r"blip\.wav is 1 sample long \(0\.06 ms at 16000 Hz\), too short.*re-export or "
                                         r"re-record a longer clip"):
        audio.load(path)
    sf.write(path, tone(0.02).numpy(), SR)  # 20 ms: short, but a sound; validate says what a model needs
    assert audio.load(path).shape == (320,)


def test_load_float_wav_beyond_full_scale_warns(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, tone(amp=1.5).numpy(), SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"hot\.wav has samples beyond ±1 \(peak 1\.5\): it will clip when played or "
                                         r"saved.*audiox\.audio\.normalise"):
        wave = audio.load(path)
    assert abs(float(wave.abs().max()) - 1.5) < 1e-3  # loaded as is: the warning says, it does not fix


def test_load_pcm_scaled_float_wav_warns_divide(tmp_path):
    path = tmp_path / "ints.wav"
    sf.write(path, (tone(amp=1.0) * 32767).numpy(), SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"looks scaled like integer PCM \(peak 32767\).*divide by 32768"):
        audio.load(path)


def test_load_normal_file_warns_nothing(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, tone(amp=0.9).numpy(), SR, subtype="FLOAT")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio.load(path)
    assert caught == []


def test_load_header_without_samples(tmp_path):
    path = tmp_path / "nosamples.wav"
    sf.write(path, np.zeros((0,), dtype="float32"), SR)
    with pytest.raises(ValueError, match="no samples"):
        audio.load(path)


def test_save_writes_16_bit_pcm(tmp_path):
    path = audio.save(tmp_path / "out" / "x.wav", tone(), SR)
    info = audio.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")


# ---- STFT, mel, listenable output ------------------------------------------------------------

def test_istft_with_phase_round_trip_below_1e_4():
    torch.manual_seed(0)
    wave = tone() + 0.1 * torch.randn(SR)
    magnitude, phase = audio.magnitude_phase(wave)
    back = audio.istft_with_phase(magnitude, phase, length=wave.shape[-1])
    assert (back - wave).abs().max() < 1e-4


def test_stft_batches_and_keeps_leading_dims():
    batch = torch.stack([tone(), tone(freq=880.0)])
    magnitude, phase = audio.magnitude_phase(batch)
    assert magnitude.shape == (2, audio.N_FFT // 2 + 1, SR // audio.HOP_LENGTH + 1)
    back = audio.istft_with_phase(magnitude, phase, length=SR)
    assert (back - batch).abs().max() < 1e-4


def test_istft_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        audio.istft_with_phase(torch.ones(257, 10), torch.ones(257, 11))


def test_a_mask_of_ones_is_the_identity_and_zeros_silence():
    wave = tone()
    magnitude, phase = audio.magnitude_phase(wave)
    assert audio.istft_with_phase(magnitude * 0, phase, length=SR).abs().max() == 0


def test_log_mel_peaks_at_the_tone_band_and_is_differentiable():
    magnitude, _ = audio.magnitude_phase(tone(freq=1000.0))
    magnitude.requires_grad_(True)
    fb = audio.mel_filterbank(SR, n_mels=64)
    mel = audio.log_mel(magnitude, fb)
    assert mel.shape == (64, magnitude.shape[-1])
    centres = (fb * torch.arange(fb.shape[0])[:, None]).sum(0) / fb.sum(0).clamp_min(1e-9)
    peak_bin = centres[mel.mean(-1).argmax()] * SR / audio.N_FFT
    assert 700 < peak_bin < 1400
    mel.sum().backward()
    assert magnitude.grad is not None and torch.isfinite(magnitude.grad).all()


def test_resample_and_pad():
    assert audio.resample(tone(), SR, 8000).shape == (8000,)
    assert audio.pad_to(tone(0.5), 1.0, SR).shape == (SR,)
    assert audio.pad_to(tone(2.0), 1.0, SR).shape == (SR,)


def test_normalise_peak_and_silence():
    assert torch.isclose(audio.normalise(tone(amp=0.1)).abs().max(), torch.tensor(0.9))
    with pytest.raises(ValueError, match="silent"):
        audio.normalise(torch.zeros(100))


# ---- wav bytes for players -------------------------------------------------------------------

def test_wav_bytes_keep_relative_loudness():
    loud, quiet = audio.to_wav_bytes(tone(amp=0.8), SR), audio.to_wav_bytes(tone(amp=0.1), SR)
    a, sr_a = sf.read(io.BytesIO(loud))
    b, _ = sf.read(io.BytesIO(quiet))
    assert sr_a == SR
    assert abs(np.abs(a).max() - 0.8) < 1e-3 and abs(np.abs(b).max() - 0.1) < 1e-3


def check_clipped_pcm(pcm: np.ndarray, wave: torch.Tensor) -> None:
    """16-bit PCM ``pcm`` (read back as int16) of ``wave`` is ``wave`` clipped to [-1, 1]: samples beyond full scale
    sit at the PCM extremes, the others within one step of ``wave``, and every sample keeps its sign (no wrap-around).
    """
    x = wave.double().numpy()
    assert pcm.dtype == np.int16 and pcm.shape == x.shape
    assert (pcm[x >= 1.0] == 32767).all() and (pcm[x <= -1.0] == -32768).all()  # the peaks at the PCM maximum
    inside = np.abs(x) < 1.0
    assert np.abs(pcm[inside] / 32768.0 - x[inside]).max() <= 1.0 / 32768 + 1e-9
    audible = np.abs(x) > 1.0 / 32768  # the samples that round to zero have no sign to keep
    assert (np.sign(pcm[audible]) == np.sign(x[audible])).all(), "a sample changed sign: wrap-around"


def test_wav_bytes_silence_is_fine_and_clipping_is_bounded():
    silent, _ = sf.read(io.BytesIO(audio.to_wav_bytes(torch.zeros(SR), SR)))
    assert np.all(silent == 0)
    loud = tone(amp=3.0)
    clipped, _ = sf.read(io.BytesIO(audio.to_wav_bytes(loud, SR)), dtype="int16")
    check_clipped_pcm(clipped, loud)
    assert (np.abs(loud.numpy()) >= 1.0).mean() > 0.5  # most of the tone is beyond full scale: the check bites


def test_save_clips_and_keeps_signs(tmp_path):
    """A sine of amplitude 1.5 reads back clipped: peaks at the PCM maximum, signs unchanged, no wrap-around."""
    loud = tone(amp=1.5)
    pcm, rate = sf.read(audio.save(tmp_path / "loud.wav", loud, SR), dtype="int16")
    assert rate == SR
    check_clipped_pcm(pcm, loud)
    # and what audio hands to soundfile is already clipped (the one thing a save without its clamp changes)
    np.testing.assert_array_equal(audio._pcm_ready(loud), loud.clamp(-1, 1).numpy())


def _unclamped(wave):  # _pcm_ready without its clamp
    return audio._as_tensor(wave, "wave").detach().to("cpu", torch.float32).numpy()


def test_save_without_the_clamp_is_caught_only_before_soundfile(tmp_path, monkeypatch):
    """Mutant: save without clipping. libsndfile (1.2, soundfile 0.14) clips float -> PCM_16 itself, so the file is
    the same, bit for bit; only the array handed to soundfile shows the missing clamp."""
    loud = tone(amp=1.5)
    reference = sf.read(audio.save(tmp_path / "a.wav", loud, SR), dtype="int16")[0]
    monkeypatch.setattr(audio, "_pcm_ready", _unclamped)
    mutated = sf.read(audio.save(tmp_path / "b.wav", loud, SR), dtype="int16")[0]
    np.testing.assert_array_equal(mutated, reference)  # an equivalent mutant at the file level
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(audio._pcm_ready(loud), loud.clamp(-1, 1).numpy())


def test_a_wrapping_save_fails_the_clipping_check(tmp_path, monkeypatch):
    """Mutant: save converts to int16 itself without clipping (1.5 wraps to about -0.5); the check must fail."""
    write = sf.write

    class Wrapping:
        def __getattr__(self, name):
            return getattr(sf, name)

        @staticmethod
        def write(file, data, samplerate, subtype=None, **kwargs):
            wrapped = np.round(np.asarray(data, dtype=np.float64) * 32768).astype(np.int64).astype(np.int16)
            return write(file, wrapped, samplerate, subtype=subtype, **kwargs)

    monkeypatch.setattr(audio, "_pcm_ready", _unclamped)
    monkeypatch.setattr(audio, "sf", Wrapping())
    loud = tone(amp=1.5)
    pcm, _ = sf.read(audio.save(tmp_path / "wrapped.wav", loud, SR), dtype="int16")
    with pytest.raises(AssertionError):
        check_clipped_pcm(pcm, loud)


def test_wav_bytes_refuse_nan_and_stereo():
    with pytest.raises(ValueError, match="NaN"):
        audio.to_wav_bytes(torch.full((10,), float("nan")), SR)
    with pytest.raises(ValueError, match="mono clip"):
        audio.to_wav_bytes(torch.zeros(2, 100), SR)


def test_validate_batched_catches_time_by_channels_stereo():
    with pytest.raises(ValueError, match=r"\[time, channels\] \(stereo\)"):
        audio.validate(torch.stack([tone(), tone()]).T, SR, batched=True)
