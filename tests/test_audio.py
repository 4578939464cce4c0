"""Audio decoding: mono mixdown, resampling to 16 kHz with exact lengths, and loud failures on bad files."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
import soundfile

from superb.errors import AudioError
from superb.extract.audio import SAMPLE_RATE, probe, read, resampled_length


def tone(frames: int, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(frames) / rate)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_stereo_is_the_channel_mean(tmp_path):
    left, right = tone(1600, SAMPLE_RATE, 440), tone(1600, SAMPLE_RATE, 1000, 0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    assert probe(path).channels == 2
    np.testing.assert_allclose(read(path), (left + right) / 2, atol=1e-7)


def test_16k_mono_passes_through_unchanged(tmp_path):
    wave = tone(3200, SAMPLE_RATE)
    path = tmp_path / "mono.wav"
    soundfile.write(path, wave, SAMPLE_RATE, subtype="FLOAT")
    out = read(path)
    assert out.dtype == np.float32 and out.ndim == 1
    np.testing.assert_array_equal(out, wave)
    np.testing.assert_array_equal(read(path, start=100, frames=200), wave[100:300])


@pytest.mark.parametrize(("rate", "frames", "expected"), [(8_000, 8_001, 16_002), (22_050, 22_051, 16_001),
                                                          (44_100, 44_099, 16_000)])
def test_resampled_to_16k_with_ceil_length(tmp_path, rate, frames, expected):
    assert resampled_length(frames, rate) == expected
    path = tmp_path / f"at{rate}.wav"
    soundfile.write(path, tone(frames, rate), rate, subtype="PCM_16")
    info = probe(path)
    assert (info.sample_rate, info.frames) == (rate, frames)
    out = read(path, expected=expected)
    assert out.shape == (expected,)
    assert dominant_frequency(out, SAMPLE_RATE) == pytest.approx(440.0, abs=2.0)


def test_resampled_segment_length(tmp_path):
    path = tmp_path / "seg.wav"
    soundfile.write(path, tone(44_100, 22_050), 22_050, subtype="PCM_16")
    assert read(path, start=1_000, frames=22_050).shape == (resampled_length(22_050, 22_050),) == (16_000,)


@pytest.mark.parametrize(("frames", "rate", "expected"), [(0, 8_000, 0), (1, 8_000, 2), (1, 44_100, 1),
                                                          (441, 44_100, 160), (442, 44_100, 161)])
def test_resampled_length_rounds_up(frames, rate, expected):
    assert resampled_length(frames, rate) == expected


def test_flac_reads_like_wav(tmp_path):
    pcm = np.round(tone(4000, SAMPLE_RATE) * 32767).astype(np.int16)  # same samples in both files
    soundfile.write(tmp_path / "a.wav", pcm, SAMPLE_RATE, subtype="PCM_16")
    soundfile.write(tmp_path / "a.flac", pcm, SAMPLE_RATE, subtype="PCM_16")
    assert probe(tmp_path / "a.flac").frames == 4000
    np.testing.assert_array_equal(read(tmp_path / "a.flac"), read(tmp_path / "a.wav"))
    np.testing.assert_array_equal(read(tmp_path / "a.flac"), pcm / np.float32(32768))


def test_expected_length_mismatch(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(1000, SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(AudioError, match=re.escape(f"{path}: expected 999 samples")):
        read(path, expected=999)


def pcm_wav(tmp_path, name="full.wav", frames=16_000) -> bytes:
    path = tmp_path / name
    soundfile.write(path, tone(frames, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    return path.read_bytes()


def bad_file(tmp_path, kind: str):
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":  # cut in the middle of the data chunk, as an interrupted copy leaves it
        path.write_bytes(pcm_wav(tmp_path)[:20_001])
    elif kind == "header_only":
        path.write_bytes(pcm_wav(tmp_path)[:44])
    elif kind == "cut_header":
        path.write_bytes(pcm_wav(tmp_path)[:30])
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt", "truncated", "header_only", "cut_header"])
def test_bad_files_raise_audio_error_naming_the_path(tmp_path, kind):
    path = bad_file(tmp_path, kind)
    for call in (probe, read):
        with pytest.raises(AudioError, match=re.escape(str(path))):
            call(path)


def test_truncated_flac_fails_on_read(tmp_path):
    path = tmp_path / "cut.flac"
    soundfile.write(path, tone(16_000, SAMPLE_RATE), SAMPLE_RATE)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match=re.escape(str(path))):
        read(path)


def test_streamed_wav_placeholder_size_is_not_truncation(tmp_path):
    """sox/espeak-ng writing to a pipe leave a huge placeholder data size: the audio is all there."""
    data = bytearray(pcm_wav(tmp_path, frames=1000))
    assert data[36:40] == b"data"
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    assert probe(path).frames == 1000
    assert read(path).shape == (1000,)
