"""The mel actor's echo stage: the mic cleaned of what the speakers play, before its frames
and its VAD.

Why here and not in a ring of its own: every ring keeps one writer and holds what was
captured (the session's kept audio, dictation's clip, a restarted reader all read the
mic as it was), and only the mel actor's frames and speech events need the clean mic.

receive  the mic's items (the mel actor's reader) and the speakers' items at the same
         instants (random access in their PCM ring: ``Ring.get``), lined up by their
         capture stamps; the mic waits for the speakers' ring at most ``FAR_WAIT_S``
compute  ``audio.echo.MicEcho``: the path, the two cancellers, the return loss
publish  the cleaned samples to the mel actor (AEC3's for its VAD, the linear filter's for
         its frames); ``EchoState`` with its Stats
"""

from __future__ import annotations

import time

import numpy as np

from earwig.audio.echo import FRAME, CleanMic, MicEcho, RingClock, far_offset
from earwig.messages import EchoState
from earwig.shm import Batch, Ring

#: The mic waits this long at most for the speakers' ring to hold the same instant (a
#: monitor stream delivers in larger blocks than a microphone); after that the missing far
#: end is silence.
FAR_WAIT_S = 0.5
#: Far items read per look for the speakers' clock: a cycle's worth, many times over.
CLOCK_LOOK_ITEMS = 512


class MicEchoStage:
    def __init__(self, far_ring: str, mic_ring: Ring) -> None:
        self._far = Ring.attach(far_ring)
        self._mic_ring = mic_ring
        self._item_len = mic_ring.spec.item_len
        self._echo = MicEcho()
        self._mic_clock, self._far_clock = RingClock(), RingClock()
        self._far_seen = 0
        self.cpu_s = 0.0
        #: The mic position from which the echo is cancelled (0: the path is not found yet).
        self.cleaned_from = 0

    def readable(self, position: int, available: int) -> int:
        """How many of the mic's ``available`` unread items (from item ``position``) to
        read now: those whose instant the speakers' ring already holds, or all of them once
        the oldest has waited ``FAR_WAIT_S``."""
        self._look_at_far()
        offset = self._offset()
        if offset is None or available == 0:
            return available
        far_until = self._far.published * self._item_len - offset + self._echo.shift
        ready = far_until // self._item_len - position
        if ready >= available:
            return available
        stamp = self._mic_ring.stamp_ns(position * self._item_len)
        if stamp is None or time.monotonic_ns() - stamp > FAR_WAIT_S * 1e9:
            return available
        return max(0, ready)

    def clean(self, samples: np.ndarray, at: int, batch: Batch, talking: bool) -> CleanMic:
        """The mic's ``samples`` from position ``at`` (read in ``batch``) without the echo,
        for the VAD and for the frames; untouched until the speakers have a clock, or where a
        restart left part of a frame. ``talking``: the VAD is in an utterance of the mic's."""
        self._mic_clock.observe(batch.seq, batch.time_ns, self._item_len)
        offset = self._offset()
        if offset is None or at % FRAME or len(samples) % FRAME:
            return CleanMic(vad=samples, frames=samples)
        started = time.thread_time()
        far = self._read_far(at + offset - self._echo.shift, len(samples))
        cleaned = self._echo.clean(samples, far, talking)
        if not self.cleaned_from and self._echo.report.heard:
            self.cleaned_from = at + len(samples)
        self.cpu_s += time.thread_time() - started
        return cleaned

    def state(self) -> EchoState:
        report = self._echo.report
        return EchoState(heard=report.heard, delay_ms=report.delay_ms, erle_db=report.erle_db,
                         linear_erle_db=report.linear_erle_db, speakers_offset=self._offset() or 0,
                         cleaned_from=self.cleaned_from)

    def close(self) -> None:
        self._far.close()

    def _offset(self) -> int | None:
        return far_offset(self._mic_clock, self._far_clock)

    def _look_at_far(self) -> None:
        published = self._far.published
        first = max(self._far_seen, published - CLOCK_LOOK_ITEMS)
        if first >= published:
            return
        batch = self._far.get(first, published - first)
        if batch is not None:
            self._far_clock.observe(batch.seq, batch.time_ns, self._item_len)
            self._far_seen = batch.end

    def _read_far(self, start: int, count: int) -> np.ndarray:
        """The speakers' samples ``start .. start + count``; silence where the ring has none
        (before the speakers began, or already overwritten)."""
        out = np.zeros(count, np.float32)
        first = max(0, start // self._item_len)
        last = (start + count - 1) // self._item_len + 1
        batch = self._far.get(first, last - first) if last > first else None
        if batch is None:
            return out
        data, at = batch.data.reshape(-1), batch.seq * self._item_len
        low, high = max(start, at), min(start + count, at + len(data))
        if high > low:
            out[low - start:high - start] = data[low - at:high - at]
        return out
