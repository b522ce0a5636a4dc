"""Hearing a line again: a Final's own samples, from the session's kept audio (which a
retry reads too), played through the default output.

Why the kept audio and the Final's sample span: frame ``n`` of a session's
``<session>-<source>.flac`` is sample ``n`` of that source, the unit of every Final's
``start`` and ``end``, so what plays is exactly what the line was transcribed from.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile

from earwig.audio.files import native_stderr_dropped
from earwig.config import SAMPLE_RATE
from earwig.errors import EarwigError
from earwig.messages import Final
from earwig.session.log import audio_path


def line_audio(log: Path, final: Final) -> np.ndarray:
    """The samples of ``final`` from its session's kept audio."""
    return kept_samples(audio_path(log, final.source), final.start, final.end)


def kept_samples(path: Path, start: int, end: int) -> np.ndarray:
    """Samples ``[start, end)`` of a session's kept audio; one clear error where the audio
    is gone (not kept, deleted, or shorter than the line)."""
    if not path.exists():
        raise EarwigError(f"the audio of this line is gone: {path} does not exist",
                          "only a session run with --keep-audio keeps its audio after it ends")
    try:
        audio, rate = soundfile.read(path, start=start, stop=end, dtype="float32", always_2d=False)
    except (OSError, soundfile.LibsndfileError) as error:
        raise EarwigError(f"cannot read the session's audio {path}: {error}",
                          "the file is damaged; the text is still in the session log") from None
    if rate != SAMPLE_RATE or not len(audio):
        raise EarwigError(f"the audio of this line is gone: {path} ends before {start / SAMPLE_RATE:.2f} s",
                          "the file was cut short; the text is still in the session log")
    return audio


#: The output's buffer. PulseAudio's ALSA plugin flushes what it holds on an underrun, and
#: the callback runs in a process that may be busy (the monitor's, niced below the
#: pipeline): with PortAudio's default 9-35 ms a line lost its first seconds or words in
#: the middle in some runs; 100 ms rides out such stalls and keeps the wait for the
#: first sample under the 150 ms a user notices.
OUTPUT_LATENCY_S = 0.1


class Player:
    """One line at a time through the default output device; a new line stops the one
    playing; ``done`` is set once it has played."""

    def __init__(self) -> None:
        with native_stderr_dropped():  # PortAudio starts here, and probes every ALSA device
            import sounddevice

        self._sounddevice = sounddevice
        self._stream = None
        self._audio = np.zeros(0, np.float32)
        self._at = 0
        self.done = threading.Event()

    def play(self, audio: np.ndarray) -> None:
        """Start playing ``audio`` (16 kHz mono); one clear error where there is no output."""
        sd = self._sounddevice
        self.stop()
        self._audio, self._at = audio.astype(np.float32), 0
        self.done.clear()
        try:
            self._start()
        except (sd.PortAudioError, ValueError):
            # PortAudio lists devices once, when it starts: an output (or an audio server)
            # that came after it is seen only once it is started again.
            with native_stderr_dropped():
                sd._terminate()
                sd._initialize()
            try:
                self._start()
            except (sd.PortAudioError, ValueError) as error:
                self._stream = None
                raise EarwigError(f"cannot play through the default audio output: {error}",
                                  "connect speakers or headphones, or start PulseAudio / PipeWire") from None

    def _start(self) -> None:
        self._stream = self._sounddevice.OutputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                                      latency=OUTPUT_LATENCY_S, callback=self._fill,
                                                      finished_callback=self.done.set)
        self._stream.start()

    def stop(self) -> None:
        if self._stream is not None:
            if self._stream.active:  # aborting a finished stream makes ALSA print an underrun
                self._stream.abort()
            self._stream.close()
            self._stream = None
        self.done.set()

    def _fill(self, out: np.ndarray, frames: int, times, status) -> None:
        chunk = self._audio[self._at:self._at + frames]
        out[:len(chunk), 0] = chunk
        out[len(chunk):] = 0
        self._at += frames
        if self._at >= len(self._audio):
            raise self._sounddevice.CallbackStop
