"""Audio files for the replay source: decoded to 16 kHz mono float32, or one clear error.

soundfile (libsndfile) reads wav/flac/ogg/mp3 directly; anything else it cannot open is
decoded by ffmpeg when it is installed. soxr resamples (the same library the live path uses).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile
import soxr

from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError


def to_mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """Downmix (mean of channels) and resample to 16 kHz float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return audio


def _ffmpeg_decode(path: Path, why: Exception) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
               "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise EarwigError(f"cannot decode audio file {path}: {why}",
                          "check that the file is a complete audio file (wav, flac, ogg, mp3, ...)")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


def require_file(path: str | Path) -> Path:
    """The path, or the error a missing audio file gives wherever it is named."""
    path = Path(path)
    if not path.is_file():
        raise EarwigError(f"audio file {path} not found", "check the path")
    return path


def read_audio(path: str | Path) -> np.ndarray:
    """The whole file as 16 kHz mono float32."""
    path = require_file(path)
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        if shutil.which("ffmpeg") is None:
            raise EarwigError(f"cannot decode audio file {path}: {error}",
                              "use wav/flac/ogg/mp3, or install ffmpeg for other formats") from None
        return _ffmpeg_decode(path, error)
    if audio.size == 0:
        raise EarwigError(f"audio file {path} holds no samples", "use a file with audio in it")
    return to_mono_16k(audio, rate)
