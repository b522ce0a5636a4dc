"""Degraded copies of real recordings: the audio people have, made from the audio we have.

Every degradation is a fixed transform, seeded by its name and the recording's file name,
so a run today and a run next month score the very same samples. Levels are set against
the recording's *active speech level* (the mean power of its 30 ms frames within 20 dB of
its loudest), not its mean power, so a recording with long pauses gets the same noise
relative to its voice as one without.

Two sets:

- ``DEGRADATIONS`` (noise, room, babble, codec): what earwig is measured and improved on;
- ``UNSEEN`` (pink, hall, gsm): the same kinds of harm at other strengths and shapes, never
  looked at while choosing a fix, so that a fix fitted to the first set shows up here as
  no gain.

Why synthetic rooms and not pyroomacoustics: a room's effect on a recognizer is mostly its
reverberation time and its direct-to-reverberant ratio, which an exponentially decaying
noise tail after a direct path reproduces (the classic statistical model of late
reverberation), without a dependency that needs SciPy and a compiler.
"""

from __future__ import annotations

import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile

from earwig.audio.files import read_audio
from earwig.config import SAMPLE_RATE
from earwig.profiling.harness import REAL_AUDIO

#: Another English talker reading, in no scored file: the "someone else talking" voice.
BABBLE_SOURCE = REAL_AUDIO / "realtimestt_asr-reference.wav"
FRAME = int(0.03 * SAMPLE_RATE)


def active_level(audio: np.ndarray) -> float:
    """Mean power of the 30 ms frames within 20 dB of the loudest (the 99th percentile)."""
    frames = audio[:len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    if not len(power) or power.max() == 0:
        return 0.0
    return float(power[power >= np.percentile(power, 99) / 100].mean())


def _at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled to ``snr_db`` under the speech's active level, the sum
    kept below full scale."""
    noise_power = float((noise.astype(np.float64) ** 2).mean()) or 1.0
    gain = np.sqrt(active_level(speech) / noise_power / 10 ** (snr_db / 10))
    return _below_full_scale(speech + gain * noise)


def _below_full_scale(audio: np.ndarray) -> np.ndarray:
    """Scaled down to a 0.99 peak where it would clip, as float32."""
    peak = float(np.abs(audio).max())
    return (audio / peak * 0.99 if peak > 0.99 else audio).astype(np.float32)


def white_noise(snr_db: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _at_snr(audio, rng.standard_normal(len(audio)), snr_db)
    return degrade


def pink_noise(snr_db: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Noise whose power falls 3 dB an octave (a fan, a car, a room's hum), by shaping white
    noise's spectrum."""
    def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(len(audio)))
        frequencies = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
        spectrum /= np.sqrt(np.maximum(frequencies, 20.0))
        return _at_snr(audio, np.fft.irfft(spectrum, len(audio)), snr_db)
    return degrade


def room_response(rt60_s: float, direct_to_reverberant_db: float, rng: np.random.Generator) -> np.ndarray:
    """A room's impulse response: the direct path, then a tail of noise decaying 60 dB in
    ``rt60_s`` (slightly low-passed, as walls absorb high frequencies first), its energy set
    ``direct_to_reverberant_db`` under the direct path's."""
    length = int(1.2 * rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = np.convolve(rng.standard_normal(length), np.ones(4) / 4, mode="same") * np.exp(-6.908 * t / rt60_s)
    tail[:int(0.003 * SAMPLE_RATE)] = 0.0  # the first reflection arrives a few ms after the direct path
    tail *= np.sqrt(1.0 / (tail ** 2).sum() / 10 ** (direct_to_reverberant_db / 10))
    tail[0] = 1.0
    return tail


def room(rt60_s: float, direct_to_reverberant_db: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        response = room_response(rt60_s, direct_to_reverberant_db, rng)
        size = len(audio) + len(response) - 1
        wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), size)[:len(audio)]
        wet *= np.sqrt(active_level(audio) / max(active_level(wet), 1e-12))
        return _below_full_scale(wet)
    return degrade


@cache
def _babble_voice() -> np.ndarray:
    return read_audio(BABBLE_SOURCE)


def other_talker(snr_db: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Another talker reading ``snr_db`` under the speaker, from a seeded point of
    ``BABBLE_SOURCE`` (looped where the recording is longer)."""
    def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        voice = _babble_voice()
        start = int(rng.integers(0, len(voice)))
        looped = np.resize(np.roll(voice, -start), len(audio))
        return _at_snr(audio, looped / np.sqrt(max(active_level(looped), 1e-12)), snr_db)
    return degrade


def codec(ffmpeg_output: list[str]) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Through ffmpeg's encoder and back (``ffmpeg_output``: the encoder's options and
    container), resampled to 16 kHz again."""
    def degrade(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1"]
        encoded = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *raw, "-i", "-", *ffmpeg_output, "-"],
                                 input=audio.astype(np.float32).tobytes(), capture_output=True, check=True).stdout
        decoded = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "-", *raw, "-"],
                                 input=encoded, capture_output=True, check=True).stdout
        return np.frombuffer(decoded, np.float32)[:len(audio)].copy()
    return degrade


@dataclass(frozen=True)
class Degradation:
    name: str
    description: str
    transform: Callable[[], Callable[[np.ndarray, np.random.Generator], np.ndarray]]

    def apply(self, audio: np.ndarray, file_name: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(f"{self.name}:{file_name}".encode()))
        return self.transform()(audio, rng)


DEGRADATIONS = {d.name: d for d in (
    Degradation("noise", "white noise, 10 dB under the speech", lambda: white_noise(10.0)),
    Degradation("room", "a room: RT60 0.5 s, direct path 0 dB over the reverberation", lambda: room(0.5, 0.0)),
    Degradation("babble", "another talker reading, 12 dB under", lambda: other_talker(12.0)),
    Degradation("codec", "Opus at 12 kbit/s (VoIP mode)",
                lambda: codec(["-c:a", "libopus", "-b:a", "12k", "-application", "voip", "-f", "ogg"])),
)}
UNSEEN = {d.name: d for d in (
    Degradation("pink", "pink noise, 5 dB under the speech", lambda: pink_noise(5.0)),
    Degradation("hall", "a hall: RT60 1.0 s, direct path 3 dB under the reverberation", lambda: room(1.0, -3.0)),
    Degradation("gsm", "GSM full rate (13 kbit/s, 8 kHz)",
                lambda: codec(["-ar", "8000", "-c:a", "libgsm", "-f", "gsm"])),
)}
EVERY = {**DEGRADATIONS, **UNSEEN}


def degraded_copies(paths: list[Path], degradation: Degradation, folder: Path) -> dict[Path, Path]:
    """Each recording's degraded copy as a 16 kHz WAV in ``folder``, by original path."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = {}
    for path in paths:
        copy = folder / f"{path.stem}.{degradation.name}.wav"
        soundfile.write(copy, degradation.apply(read_audio(path), path.name), SAMPLE_RATE, subtype="FLOAT")
        copies[path] = copy
    return copies
