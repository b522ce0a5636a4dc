"""Audio files for the replay source: decoded to 16 kHz mono float32, or one clear error.

soundfile (libsndfile) reads wav/flac/ogg/mp3 directly; anything else it cannot open is
decoded by ffmpeg when it is installed. soxr resamples (the same library the live path uses).

libsndfile's mp3 decoder (libmpg123) writes a line to the process's standard error for every
frame it finds damaged and conceals ("part2_3_length ... too large"): dozens for a common
mp3. Those lines are not the user's business; audio that was really lost is, and is said once
(``read_audio``'s warning of how much of the file could be read).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile
import soxr

from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError

#: Below this, a recording cannot hold the speech band (telephone audio is 8 kHz).
MIN_RATE = 8000


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
    if b"does not contain any stream" in result.stderr or (result.returncode == 0 and not result.stdout):
        raise EarwigError(f"{path} has no audio in it (no audio stream)", "give a file with sound: a recording, "
                          "or a video with an audio track")
    if result.returncode != 0:
        raise EarwigError(f"cannot decode audio file {path}: {why}",
                          "check that the file is a complete audio file (wav, flac, ogg, mp3, ...)")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


def require_file(path: str | Path) -> Path:
    """The path, or the error a missing audio file gives wherever it is named."""
    path = Path(path)
    if path.is_dir():
        raise EarwigError(f"{path} is a folder, not an audio file", f"name the files in it, e.g. {path}/*.wav")
    if not path.is_file():
        raise EarwigError(f"audio file {path} not found", "check the path")
    if not os.access(path, os.R_OK):
        raise EarwigError(f"audio file {path} cannot be read: permission denied", "check the file's permissions")
    return path


def read_audio(path: str | Path, warn: Callable[[str], None] = lambda problem: None) -> np.ndarray:
    """The whole file as 16 kHz mono float32. A file cut short or damaged part way is read
    as far as it decodes, and ``warn`` is told how much is missing."""
    path = require_file(path)
    try:
        with native_stderr_dropped(), soundfile.SoundFile(path) as file:
            rate, promised = file.samplerate, max(file.frames, _declared_frames(file))
            audio = _decodable_part(file)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        if shutil.which("ffmpeg") is None:
            raise EarwigError(f"cannot decode audio file {path}: {error}",
                              "use wav/flac/ogg/mp3, or install ffmpeg for other formats") from None
        return _ffmpeg_decode(path, error)
    if audio.size == 0:
        raise EarwigError(f"audio file {path} holds no samples", "use a file with audio in it")
    if rate < MIN_RATE:
        raise EarwigError(f"audio file {path} is sampled at {rate} Hz, too low to hold speech",
                          f"use a recording at {MIN_RATE} Hz or more (Whisper hears {SAMPLE_RATE} Hz)")
    if len(audio) < promised:
        warn(f"audio file {path} is cut short or damaged: {len(audio) / rate:.1f} s of {promised / rate:.1f} s "
             "could be read; the rest is missing")
    return to_mono_16k(audio, rate)


def _declared_frames(file: soundfile.SoundFile) -> int:
    """The frames a WAV's header promises. libsndfile counts only those the file holds
    (a WAV cut short reads as a shorter, whole file) and says so in its log alone:
    "data : 96000 (should be 47978)", the data chunk's declared bytes and those present."""
    declared = re.search(r"^data\s*:\s*(\d+) \(should be \d+\)", file.extra_info, re.MULTILINE)
    align = re.search(r"^\s*Block Align\s*:\s*(\d+)", file.extra_info, re.MULTILINE)
    if declared is None or align is None or not int(align.group(1)):
        return 0
    return int(declared.group(1)) // int(align.group(1))


def _decodable_part(file: soundfile.SoundFile) -> np.ndarray:
    """Every frame up to the first that does not decode (in 0.1 s blocks: at most that is
    lost before a damaged spot); a file whose start does not decode is an error."""
    blocks = []
    try:
        for block in file.blocks(blocksize=max(1, file.samplerate // 10), dtype="float32"):
            blocks.append(block)
    except soundfile.LibsndfileError:
        if not blocks:
            raise
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


@contextmanager
def native_stderr_dropped() -> Iterator[None]:
    """What C libraries write to standard error (file descriptor 2) meanwhile goes nowhere:
    a decoder's warnings, PortAudio's probing of ALSA devices, under a screen that owns the
    terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
