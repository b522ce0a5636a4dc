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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError

#: Below this, a recording cannot hold the speech band (telephone audio is 8 kHz).
MIN_RATE = 8000


#: A file is decoded this much at a time (read 0.1 s at a time: at most that is lost before a
#: damaged spot), so memory holds one block, whatever the file's length.
BLOCK_S = 10.0


@dataclass
class AudioStream:
    """A file's audio as 16 kHz mono float32 blocks, decoded as they are taken; ``seconds``:
    its length as its header promises (None where only ffmpeg reads it)."""

    seconds: float | None
    blocks: Iterator[np.ndarray]


class _To16kMono:
    """Downmix (mean of channels) and resample block by block: soxr's stream applies the
    same filter across block edges as one call over the whole file."""

    def __init__(self, rate: int) -> None:
        self._stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") \
            if rate != SAMPLE_RATE else None

    def __call__(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.mean(axis=1, dtype=np.float32)
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=last).astype(np.float32, copy=False)


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
    return np.concatenate(list(audio_stream(path, warn).blocks))


def audio_stream(path: str | Path, warn: Callable[[str], None] = lambda problem: None) -> AudioStream:
    """The file block by block (``BLOCK_S``), as ``read_audio`` reads it whole: for a
    recording of hours, memory for a block, not for the file. What cannot be opened is an
    error here, before the first block."""
    path = require_file(path)
    try:
        with native_stderr_dropped():
            file = soundfile.SoundFile(path)
            first = file.read(max(1, file.samplerate // 10), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError) as error:
        if shutil.which("ffmpeg") is None:
            raise EarwigError(f"cannot decode audio file {path}: {error}",
                              "use wav/flac/ogg/mp3, or install ffmpeg for other formats") from None
        return AudioStream(None, _ffmpeg_blocks(path, error))
    rate, promised = file.samplerate, max(file.frames, _declared_frames(file))
    if not len(first) or rate < MIN_RATE:
        file.close()
        if not len(first):
            raise EarwigError(f"audio file {path} holds no samples", "use a file with audio in it")
        raise EarwigError(f"audio file {path} is sampled at {rate} Hz, too low to hold speech",
                          f"use a recording at {MIN_RATE} Hz or more (Whisper hears {SAMPLE_RATE} Hz)")
    return AudioStream(promised / rate, _sndfile_blocks(path, file, first, promised, warn))


def _sndfile_blocks(path: Path, file: soundfile.SoundFile, first: np.ndarray, promised: int,
                    warn: Callable[[str], None]) -> Iterator[np.ndarray]:
    rate, to_16k = file.samplerate, _To16kMono(file.samplerate)
    held, count, read = [first], len(first), len(first)
    with file:
        while True:
            try:
                with native_stderr_dropped():
                    part = file.read(max(1, rate // 10), dtype="float32")
            except soundfile.LibsndfileError:
                break  # damaged from here: what decoded is kept, and the loss said below
            if not len(part):
                break
            held.append(part)
            count, read = count + len(part), read + len(part)
            if count >= BLOCK_S * rate:
                yield to_16k(np.concatenate(held))
                held, count = [], 0
    yield to_16k(np.concatenate(held) if held else np.zeros(0, np.float32), last=True)
    if read < promised:
        warn(f"audio file {path} is cut short or damaged: {read / rate:.1f} s of {promised / rate:.1f} s "
             "could be read; the rest is missing")


def _ffmpeg_blocks(path: Path, why: Exception) -> Iterator[np.ndarray]:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
               "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    decoded = 0
    try:
        while chunk := process.stdout.read(int(BLOCK_S * SAMPLE_RATE) * 4):
            decoded += len(chunk)
            yield np.frombuffer(chunk, dtype=np.float32).copy()
    except BaseException:  # the reader stopped early (Ctrl-C, an error): no decoder left behind
        process.kill()
        process.wait()
        raise
    errors = process.stderr.read()
    process.wait()
    if b"does not contain any stream" in errors or (process.returncode == 0 and not decoded):
        raise EarwigError(f"{path} has no audio in it (no audio stream)", "give a file with sound: a recording, "
                          "or a video with an audio track")
    if not decoded:
        raise EarwigError(f"cannot decode audio file {path}: {why}",
                          "check that the file is a complete audio file (wav, flac, ogg, mp3, ...)")


def _declared_frames(file: soundfile.SoundFile) -> int:
    """The frames a WAV's header promises. libsndfile counts only those the file holds
    (a WAV cut short reads as a shorter, whole file) and says so in its log alone:
    "data : 96000 (should be 47978)", the data chunk's declared bytes and those present."""
    declared = re.search(r"^data\s*:\s*(\d+) \(should be \d+\)", file.extra_info, re.MULTILINE)
    align = re.search(r"^\s*Block Align\s*:\s*(\d+)", file.extra_info, re.MULTILINE)
    if declared is None or align is None or not int(align.group(1)):
        return 0
    return int(declared.group(1)) // int(align.group(1))


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
