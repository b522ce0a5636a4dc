"""openai-whisper's own log-mel frames, the reference the mel actor's frames must equal."""

from __future__ import annotations

import numpy as np
import torch
import whisper

from earwig.audio.log_mel import normalize_window

TOLERANCE = 1e-4


def whisper_frames(audio: np.ndarray, bins: int) -> np.ndarray:
    """Whisper's frames, shape (frames, bins), after its clamp and scaling."""
    return whisper.audio.log_mel_spectrogram(torch.from_numpy(audio), bins).numpy().T


def unclamped_reference(audio: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Whisper's frames before its clamp and scaling, and where they can be recovered
    (everywhere its output is above the window-wide floor)."""
    reference = whisper_frames(audio, bins)
    return 4 * reference - 4, reference > reference.min() + 1e-6


def assert_equal_to_whisper(frames: np.ndarray, audio: np.ndarray, bins: int) -> None:
    """Before the clamp, where whisper's output is above its floor, and after it, everywhere."""
    reference = whisper_frames(audio, bins)
    assert frames.shape == reference.shape
    values, unclamped = unclamped_reference(audio, bins)
    assert unclamped.mean() > 0.5
    assert np.abs(frames[unclamped] - values[unclamped]).max() <= TOLERANCE
    assert np.abs(normalize_window(frames) - reference).max() <= TOLERANCE / 4
