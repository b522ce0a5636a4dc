"""The echo subtracted and nothing more: speexdsp's adaptive filter (MDF), for what Whisper reads.

AEC3 (``echo.EchoCanceller``) follows its adaptive filter with a residual echo suppressor:
in double talk over echo as loud as the talker it takes 5-8 dB from the talker where the
speakers are loudest, and words with it (offline, on a simulated room: talker WER
0.75-1.21). A linear filter only subtracts its estimate of the echo: 10-25 dB of echo
goes, the talker stays whole (WER 0.00-0.25, as with no echo at all). What is left of the
echo under a talker, Whisper does not write; what is left with no talker, the VAD never
hears, as it listens to AEC3's output.

speexdsp is the Xiph library PulseAudio's own echo-cancel module uses, a Debian package
(``libspeexdsp1``); its three calls are bound here with ctypes, as no maintained Python
binding exists. Its filter has no delay estimation: ``LinearCanceller`` delays the far end
by the delay ``echo.EchoPath`` finds, so the echo and the room's reflections fall inside
the filter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import numpy as np

from earwig.config import SAMPLE_RATE

#: Samples per call (10 ms): speexdsp's frames, as AEC3's.
FRAME = SAMPLE_RATE // 100
#: The filter's length: 128 ms of echo path, from just before the direct sound to the
#: room's late reflections. Longer filters converge more slowly; 0.4 % of a core at this length.
TAIL = 2048
#: Where the direct sound is put inside the filter: early enough that a path shortening by
#: this much (a loopback's buffers settling) stays inside it.
LEAD_S = 0.02
#: The far end is delayed anew only once the direct sound drifts out of this span within the
#: filter. Each move starts the filter afresh: a converged filter takes the new path's
#: echo for double talk and hardly adapts (0 dB for seconds after a 50 ms move, measured).
LEAD_SPAN_S = (0.005, 0.06)
#: ``SPEEX_ECHO_SET_SAMPLING_RATE`` in speex_echo.h.
_SET_SAMPLING_RATE = 24
#: The far end kept for delaying: the longest echo path ``echo.AEC3_DELAYS_S`` leaves.
HISTORY_S = 0.3


@cache
def _speexdsp() -> ctypes.CDLL:
    path = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    lib = ctypes.CDLL(path)
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p] * 4
    lib.speex_echo_state_reset.argtypes = [ctypes.c_void_p]
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    return lib


def library_missing() -> bool:
    """Whether speexdsp cannot be loaded (a system library: ``scripts/setup`` installs it)."""
    try:
        _speexdsp()
    except OSError:
        return True
    return False


def _pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)


class LinearCanceller:
    """Whole frames of mic and far end (float32 at 16 kHz, lined up as AEC3 gets them) in,
    the mic minus the filter's echo estimate out."""

    def __init__(self) -> None:
        self._lib = _speexdsp()
        self._state = self._lib.speex_echo_state_init(FRAME, TAIL)
        rate = ctypes.c_int(SAMPLE_RATE)
        self._lib.speex_echo_ctl(self._state, _SET_SAMPLING_RATE, ctypes.byref(rate))
        self._far = np.zeros(int(HISTORY_S * SAMPLE_RATE), np.int16)
        #: How many samples the far end is delayed by before the filter.
        self.lag = 0

    def follow(self, delay_s: float) -> None:
        """The echo is ``delay_s`` late in the far end as given: delay it, if the direct sound
        left ``LEAD_SPAN_S``, to put it ``LEAD_S`` into the filter."""
        lead = delay_s - self.lag / SAMPLE_RATE
        if not LEAD_SPAN_S[0] <= lead <= LEAD_SPAN_S[1]:
            wanted = round((delay_s - LEAD_S) * SAMPLE_RATE)
            self.lag = int(np.clip(wanted, 0, len(self._far)))
            self._lib.speex_echo_state_reset(self._state)

    def remember(self, far: np.ndarray) -> None:
        """The far end goes by with nothing to filter (no echo heard): kept for the delay."""
        self._delayed(far)

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        near = _pcm16(mic)
        delayed = self._delayed(far)
        out = np.empty_like(near)
        for at in range(0, len(near), FRAME):
            self._lib.speex_echo_cancellation(self._state, near[at:].ctypes.data,
                                              delayed[at:].ctypes.data, out[at:].ctypes.data)
        return out.astype(np.float32) / 32768.0

    def _delayed(self, far: np.ndarray) -> np.ndarray:
        """``far`` as 16-bit samples ``lag`` late, the history moved on by it."""
        played = np.concatenate((self._far, _pcm16(far)))
        start = len(self._far) - self.lag
        self._far = played[-len(self._far):]
        return np.ascontiguousarray(played[start:start + len(far)])

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            self._lib.speex_echo_state_destroy(self._state)
            self._state = None
