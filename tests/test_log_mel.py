"""Incremental log-mel frames against openai-whisper's own ``log_mel_spectrogram``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper
from hypothesis import given, settings
from hypothesis import strategies as st

from earwig.audio.files import read_audio
from earwig.audio.log_mel import (SILENCE_LOG_MEL, LogMelStream, bins_for_model, check_bins,
                                      model_input, open_frames)
from earwig.errors import EarwigError
from earwig.shm import Ring, RingSpec
from whisper_reference import TOLERANCE, assert_equal_to_whisper, unclamped_reference

pytestmark = pytest.mark.pure

def stream_in_blocks(stream: LogMelStream, audio: np.ndarray, sizes: list[int], bins: int) -> np.ndarray:
    out, at, i = [], 0, 0
    while at < len(audio):
        size = sizes[i % len(sizes)]
        out.append(stream.push(audio[at:at + size])[bins])
        at, i = at + size, i + 1
    out.append(stream.finish()[bins])
    return np.concatenate(out)


@pytest.fixture(scope="module")
def speech_and_noise(speech):
    """Real espeak-ng speech followed by white noise, as one stream."""
    noise = np.random.default_rng(7).normal(0, 0.1, 16000).astype(np.float32)
    return np.concatenate((read_audio(speech["a"]), noise))


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 4000), min_size=1, max_size=12))
def test_frames_equal_whisper_for_any_block_sizes(speech_and_noise, sizes):
    audio = speech_and_noise
    frames = stream_in_blocks(LogMelStream([80]), audio, sizes, 80)
    assert_equal_to_whisper(frames, audio, 80)


#: The devices this machine has: CUDA joins the CPU where PyTorch sees a GPU (not a skip).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bins", [80, 128])
def test_both_bin_counts_from_one_stream(speech, bins, device):
    audio = read_audio(speech["b"])
    stream = LogMelStream([80, 128], device)
    pushed = [stream.push(audio[at:at + 480]) for at in range(0, len(audio), 480)] + [stream.finish()]
    assert_equal_to_whisper(np.concatenate([p[bins] for p in pushed]), audio, bins)


def test_random_noise_from_the_first_frame_on():
    audio = np.random.default_rng(1).uniform(-1, 1, 16000 * 3).astype(np.float32)
    assert_equal_to_whisper(stream_in_blocks(LogMelStream([80]), audio, [160], 80), audio, 80)


def test_nothing_until_the_start_reflection_is_possible():
    stream = LogMelStream([80])
    assert len(stream.push(np.ones(200, np.float32))[80]) == 0
    assert len(stream.push(np.ones(200, np.float32))[80]) == 2  # frames 0 and 1


@pytest.mark.parametrize("resume_at", [1, 2, 57])
def test_a_resumed_stream_continues_with_the_same_frames(speech, resume_at):
    audio = read_audio(speech["a"])
    whole = stream_in_blocks(LogMelStream([80]), audio, [333], 80)
    resumed = LogMelStream([80], first_frame=resume_at)
    rest = stream_in_blocks(resumed, audio[resumed.needs_sample:], [160], 80)
    assert np.abs(rest - whole[resume_at:]).max() <= TOLERANCE


def test_lost_audio_becomes_silence_and_keeps_frame_positions(speech):
    audio = read_audio(speech["a"])
    stream = LogMelStream([80])
    before = stream.push(audio[:16000])[80]
    filler = stream.skip_to(32000)[80]
    after = stream.push(audio[32000:48000])[80]
    assert (filler == SILENCE_LOG_MEL).all()
    # Frame t is centred on sample 160 t: the first one after the gap is whole again.
    assert len(before) + len(filler) == (32000 + 200 + 159) // 160
    first = len(before) + len(filler)
    values, unclamped = unclamped_reference(audio[:48000], 80)
    window = slice(first, first + len(after))
    assert len(after) > 90
    assert np.abs(after - values[window])[unclamped[window]].max() <= TOLERANCE


def test_bin_counts_per_model():
    assert bins_for_model("tiny.en") == 80
    assert bins_for_model("large-v2") == 80
    assert bins_for_model("large-v3") == 128
    assert bins_for_model("large-v3-turbo") == 128
    assert bins_for_model("turbo") == 128
    with pytest.raises(EarwigError, match="64"):
        check_bins([64])


def test_a_model_needing_frames_the_actor_does_not_compute_is_a_clear_error(ring_prefix):
    ring = Ring.create(RingSpec(f"{ring_prefix}mel80-mic", 64, 80))
    try:
        with pytest.raises(EarwigError) as caught:
            open_frames({80: ring.spec.name}, 128, "large-v3")
        assert "large-v3 reads 128-bin" in caught.value.problem
        assert "computes 80-bin frames only" in caught.value.problem
        opened = open_frames({80: ring.spec.name}, 80, "base")
        assert opened.spec.item_len == 80
        opened.close()
    finally:
        ring.close()
        ring.unlink()


def test_a_model_window_equals_what_whisper_transcribe_feeds_its_model(speech):
    """transcribe() pads 30 s of zeros before the log-mel; the window is its first 3000 frames."""
    audio = read_audio(speech["a"])
    frames = stream_in_blocks(LogMelStream([80]), audio, [1600], 80)
    padded = whisper.audio.log_mel_spectrogram(torch.from_numpy(audio), 80, padding=whisper.audio.N_SAMPLES)
    expected = padded[:, :whisper.audio.N_FRAMES].numpy()
    window = model_input(frames)
    assert window.shape == expected.shape == (80, 3000)
    # The last two frames saw reflect padding here and zeros in transcribe(): the only difference.
    inside = len(frames) - 2
    assert np.abs(window[:, :inside] - expected[:, :inside]).max() <= TOLERANCE / 4
    assert np.abs(window[:, len(frames) + 1:] - expected[:, len(frames) + 1:]).max() <= TOLERANCE / 4
