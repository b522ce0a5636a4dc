"""Echo cancellation: what the speakers play, taken out of what the microphone hears.

Four parts, each small and pure (no rings, no processes), composed by ``MicEcho``:

- ``RingClock`` puts a ring's sample positions on the monotonic clock. The two capture
  streams start at different moments (an idle PulseAudio monitor delivers its first block
  0.8-2 s late), so sample ``n`` of the mic and sample ``n`` of the speakers are not the
  same instant; their items' capture stamps say which are.
- ``EchoPath`` says whether the mic hears the speakers at all, and how late (GCC-PHAT at
  8 kHz over the last two seconds). Until it hears an echo, the mic goes through untouched:
  with headphones, cancellation must not make the mic worse, and AEC3 fed a mic with no
  echo in it still shapes it (its comfort noise became words in a test).
- ``EchoCanceller`` is WebRTC's AEC3 through LiveKit's maintained binding (a binary wheel):
  an adaptive filter with its own fine delay tracking, residual echo suppression, double
  talk detection. Only the echo canceller runs (no noise suppression, gain control or
  high-pass). Its output is what the VAD hears: the suppressor leaves no echo to open an
  utterance.
- ``linear_echo.LinearCanceller`` is speexdsp's adaptive filter alone, delayed by the
  path's estimate: its output is what Whisper reads, the mic as captured minus the
  speakers, the talker whole where AEC3's suppressor would take words in double talk.

AEC3 follows an echo up to ``AEC3_DELAYS_S`` late by itself; the far end is moved (to
leave ``TARGET_DELAY_S``) only for a path outside that (an echo up to ``MAX_LAG_S`` late,
or early, as a loopback with less buffering than the speakers' capture makes it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from earwig.audio.linear_echo import LinearCanceller
from earwig.config import SAMPLE_RATE

#: AEC3 works on 10 ms frames.
FRAME = SAMPLE_RATE // 100
#: The path is judged on the last this much audio (zeros before the first sample, which
#: correlate with nothing), this often, at 8 kHz. Until two judgements agree the mic goes
#: through untouched, so the speakers' first words reach it: at 0.25 s, two agree within
#: 0.3-0.7 s of the speakers' first speech (a judgement every 0.5 s, once 2 s were
#: buffered, took 1.4 s: "he hoped there" reached the mic's text).
PATH_WINDOW_S = 2.0
PATH_EVERY_S = 0.25
#: How far late (or early) an echo is looked for, past the clocks' alignment.
MAX_LAG_S = 0.8
#: A GCC-PHAT peak this many standard deviations above the correlation's spread is an
#: echo. Real speech through a room: 20-60 at -20 dB echo, 12-25 in double talk; unrelated
#: speech on both sides stays under 7.
PEAK_SIGMAS = 10.0
#: Two estimates this close in a row make a path (one could be a chance peak).
AGREE_S = 0.01
#: Speakers playing this long with no echo found: the path is given up (headphones put
#: on, the volume turned down), so the mic goes through untouched again.
UNHEARD_S = 10.0
#: The far end counts as playing above this RMS (dBFS) over a path window.
FAR_ACTIVE_DB = -50.0
#: Echo delays AEC3 follows by itself, with its own delay estimator. The far end is moved
#: only for a path outside them: each move makes AEC3 find the echo anew (the mic's echo
#: leaks through meanwhile), and a loopback's delay drifts by tens of milliseconds as its
#: buffers settle, which AEC3 follows and a move would only chase.
AEC3_DELAYS_S = (0.0, 0.25)
#: The delay left for AEC3 to find after a move: positive, so the far end always comes first.
TARGET_DELAY_S = 0.05
#: The return loss: the median of the last ERLE_WINDOWS windows of ERLE_WINDOW_S each, of
#: the speakers playing and no one talking into the mic (the median: a window the VAD
#: had not yet called speech does not pull the figure down).
ERLE_WINDOW_S = 0.5
ERLE_WINDOWS = 20
#: A ring's clock is the earliest arrival seen over this much recent time (items arrive
#: late by their buffering, never early; a short window follows the device's clock drift).
CLOCK_WINDOW_S = 10.0


def _db(power: float) -> float:
    return float(10 * np.log10(max(power, 1e-20)))


class RingClock:
    """When sample 0 of a ring was captured, from its items' stamps.

    A stamp is when a block arrived, which is at least its last sample's capture time; the
    earliest ``stamp - end / SAMPLE_RATE`` over a recent window is the best estimate."""

    def __init__(self) -> None:
        self._lows: deque[tuple[int, float]] = deque()  # (stamp, its estimate), oldest first
        self._best: deque[tuple[int, float]] = deque()  # the window's minima, increasing

    def observe(self, first_item: int, stamps_ns: np.ndarray, item_len: int) -> None:
        """Items ``first_item..`` and their stamps (0: none, as a replay's padding has)."""
        stamped = np.flatnonzero(stamps_ns > 0)
        if not len(stamped):
            return
        ends_s = (first_item + stamped + 1) * item_len / SAMPLE_RATE
        origins = stamps_ns[stamped] / 1e9 - ends_s
        low = int(np.argmin(origins))
        stamp, origin = int(stamps_ns[stamped[-1]]), float(origins[low])
        while self._best and self._best[-1][1] >= origin:
            self._best.pop()
        self._best.append((stamp, origin))
        while self._best[0][0] < stamp - CLOCK_WINDOW_S * 1e9:
            self._best.popleft()

    @property
    def origin_s(self) -> float | None:
        """The monotonic time (s) of sample 0, or None before any stamped item."""
        return self._best[0][1] if self._best else None


def far_offset(mic: RingClock, far: RingClock) -> int | None:
    """The far end's position minus the mic's for the same instant, in samples."""
    if mic.origin_s is None or far.origin_s is None:
        return None
    return round((mic.origin_s - far.origin_s) * SAMPLE_RATE)


def gcc_phat_lag(mic: np.ndarray, far: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The lag (samples; positive: the mic hears the far end that late) of the strongest
    phase-transform correlation within ``max_lag``, and its height in standard deviations."""
    n = 1 << int(np.ceil(np.log2(len(mic) + len(far))))
    cross = np.fft.rfft(mic, n) * np.conj(np.fft.rfft(far, n))
    cross /= np.maximum(np.abs(cross), 1e-12)
    correlation = np.fft.irfft(cross, n)
    lags = np.concatenate((correlation[:max_lag + 1], correlation[n - max_lag:]))
    peak = int(np.argmax(lags))
    sigmas = float((lags[peak] - lags.mean()) / max(lags.std(), 1e-12))
    return (peak if peak <= max_lag else peak - len(lags)), sigmas


@dataclass(frozen=True)
class PathEstimate:
    heard: bool
    #: How late the echo is in what the canceller is fed (s), once heard.
    delay_s: float | None = None


class EchoPath:
    """Whether the mic hears the far end as it is fed, and how late: a decision per window."""

    RATE = SAMPLE_RATE // 2

    def __init__(self) -> None:
        self._size = int(PATH_WINDOW_S * self.RATE)
        self._mic = np.zeros(self._size, np.float32)
        self._far = np.zeros(self._size, np.float32)
        self._since_check = 0
        self._candidate: float | None = None
        self._unheard_s = 0.0
        self.estimate = PathEstimate(heard=False)

    def reset(self) -> None:
        """The far end was moved: what is buffered no longer lines up, and is forgotten."""
        self._mic[:] = 0.0
        self._far[:] = 0.0
        self._since_check = 0

    def push(self, mic: np.ndarray, far: np.ndarray) -> PathEstimate:
        """Equal lengths of 16 kHz mic and far end (even: whole frames)."""
        mic8, far8 = _halve(mic), _halve(far)
        k = len(mic8)
        self._mic = np.concatenate((self._mic[k:], mic8))
        self._far = np.concatenate((self._far[k:], far8))
        self._since_check += k
        if self._since_check >= PATH_EVERY_S * self.RATE:
            self._since_check = 0
            self._judge()
        return self.estimate

    def _judge(self) -> None:
        if _db(float(np.mean(self._far ** 2))) < FAR_ACTIVE_DB:
            return  # nothing played: nothing to learn
        lag, sigmas = gcc_phat_lag(self._mic, self._far, int(MAX_LAG_S * self.RATE))
        if sigmas < PEAK_SIGMAS:
            self._candidate = None
            self._unheard_s += PATH_EVERY_S
            if self.estimate.heard and self._unheard_s >= UNHEARD_S:
                self.estimate = PathEstimate(heard=False)
            return
        delay = lag / self.RATE
        self._unheard_s = 0.0
        if self._candidate is not None and abs(delay - self._candidate) <= AGREE_S:
            self.estimate = PathEstimate(heard=True, delay_s=(delay + self._candidate) / 2)
        self._candidate = delay


def _halve(audio: np.ndarray) -> np.ndarray:
    """16 kHz to 8 kHz, averaging pairs: enough low-pass for a correlation's peak."""
    return audio.reshape(-1, 2).mean(axis=1).astype(np.float32)


class EchoCanceller:
    """AEC3 on whole 10 ms frames of mic and far end (float32 at 16 kHz, aligned)."""

    def __init__(self) -> None:
        from livekit import rtc  # its native library loads only where echo is cancelled

        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True)

    def process(self, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = np.empty_like(mic)
        for at in range(0, len(mic), FRAME):
            reverse = self._frame(far[at:at + FRAME])
            self._apm.process_reverse_stream(reverse)
            near = self._frame(mic[at:at + FRAME])
            self._apm.process_stream(near)
            out[at:at + FRAME] = np.frombuffer(near.data, np.int16) / 32768.0
        return out

    def _frame(self, audio: np.ndarray):
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        return self._rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, FRAME)


@dataclass(frozen=True)
class EchoReport:
    """What the status bar and the session log say of the canceller."""

    heard: bool
    delay_ms: float | None
    #: Echo return loss enhancement while the speakers played (dB; None before any): AEC3's,
    #: in what the VAD hears, and the linear filter's, in what Whisper reads.
    erle_db: float | None
    linear_erle_db: float | None


@dataclass(frozen=True)
class CleanMic:
    """The mic without the speakers, twice: ``vad`` through AEC3, whose suppressor leaves
    no echo for the VAD to mistake for speech; ``frames`` through the linear filter, which
    leaves the talker whole for Whisper. The same samples as the mic where no echo is heard."""

    vad: np.ndarray
    frames: np.ndarray


class _ReturnLoss:
    """ERLE over windows where the speakers play and no one talks into the mic, as ERLE is
    defined: the median of the last ``ERLE_WINDOWS`` (a window the VAD had not yet called
    speech does not pull the figure down)."""

    def __init__(self) -> None:
        self._in = self._out = 0.0
        self._measured = 0
        self._windows: deque[float] = deque(maxlen=ERLE_WINDOWS)

    def add(self, mic: np.ndarray, cleaned: np.ndarray) -> None:
        self._in += float(np.sum(mic.astype(np.float64) ** 2))
        self._out += float(np.sum(cleaned.astype(np.float64) ** 2))
        self._measured += len(mic)
        if self._measured >= ERLE_WINDOW_S * SAMPLE_RATE:
            self._windows.append(_db(self._in) - _db(self._out))
            self._in = self._out = 0.0
            self._measured = 0

    @property
    def db(self) -> float | None:
        return float(np.median(self._windows)) if self._windows else None


class MicEcho:
    """The mic's echo stage: the path decides, the cancellers clean, the far end's shift
    and the linear filter's delay follow the path; the return loss is measured on what was
    cleaned."""

    def __init__(self) -> None:
        self._canceller = EchoCanceller()
        self._linear = LinearCanceller()
        self._path = EchoPath()
        #: Samples the far end is read earlier than the mic's instant (negative: later).
        self.shift = 0
        self._loss, self._linear_loss = _ReturnLoss(), _ReturnLoss()

    def clean(self, mic: np.ndarray, far: np.ndarray, talking: bool = False) -> CleanMic:
        """Whole frames of mic and the far end read at ``shift``. ``talking``: the mic's
        VAD hears speech in it (the return loss is measured where it does not)."""
        suppressed = self._canceller.process(mic, far)
        estimate = self._path.push(mic, far)
        if not estimate.heard:  # AEC3 converges meanwhile; the linear filter starts when heard
            self._linear.remember(far)
            return CleanMic(vad=mic, frames=mic)
        if not AEC3_DELAYS_S[0] <= estimate.delay_s <= AEC3_DELAYS_S[1]:
            self.shift += round((estimate.delay_s - TARGET_DELAY_S) * SAMPLE_RATE)
            self._path.reset()
            self._path.estimate = PathEstimate(heard=True, delay_s=TARGET_DELAY_S)
        self._linear.follow(self._path.estimate.delay_s)
        linear = self._linear.process(mic, far)
        if not talking and _db(float(np.mean(far ** 2))) >= FAR_ACTIVE_DB:
            self._loss.add(mic, suppressed)
            self._linear_loss.add(mic, linear)
        return CleanMic(vad=suppressed, frames=linear)

    @property
    def report(self) -> EchoReport:
        estimate = self._path.estimate
        delay = None if not estimate.heard else (self.shift / SAMPLE_RATE + estimate.delay_s) * 1000
        return EchoReport(heard=estimate.heard, delay_ms=delay, erle_db=self._loss.db,
                          linear_erle_db=self._linear_loss.db)
