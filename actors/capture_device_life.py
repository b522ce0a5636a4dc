"""A live capture device's life, event by event: streaming, gone, back; and the user's pause.

Why a class of its own: a device that goes away must cost the session nothing. PulseAudio
does not end a stream whose source was unplugged, it moves it to another source (the next
microphone, or the speakers' loopback), so the device's listing is checked while it streams;
a device that delivers nothing for ``DEVICE_SILENT_S`` is gone too. While it is gone the
ring takes silence at real-time pace, so positions keep counting the session's time and
what comes after lines up with the other source; once it is listed again a new stream opens.
These decisions take the time as an argument and return what to do; the capture actor
(``actors/capture``) runs the stream and the polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from earwig.config import SAMPLE_RATE

#: A device that delivers nothing this long is gone.
DEVICE_SILENT_S = 5.0
#: How often a streaming PulseAudio device's listing is checked, and a gone one looked for.
PRESENCE_POLL_S = 0.5


@dataclass(frozen=True)
class Gone:
    """The device is gone, and why (said to the screen); silence is written until it is back."""

    why: str


class DeviceLife:
    """Feed it the stream's events with the time (``time.monotonic()``); it says when the
    device is gone, when to check its listing, and how much silence is due meanwhile."""

    def __init__(self) -> None:
        self.state: Literal["opening", "streaming", "gone"] = "opening"
        #: The device was lost once: a stream that cannot open now is the device still gone,
        #: not a setting to fix (the first open's error is).
        self.reopening = False
        self._last_block = 0.0
        self._next_check = 0.0
        self._gone_since = 0.0
        self._silence_written = 0

    def opened(self, now: float) -> None:
        self.state, self._last_block, self._next_check = "streaming", now, now

    def open_failed(self, error: str, now: float) -> Gone | None:
        """None: the first open failed, which is the user's to fix (the caller says so)."""
        return self._gone(f"listed again but cannot be opened ({error})", now) if self.reopening else None

    def block(self, now: float) -> None:
        self._last_block = now

    def nothing_for_a_poll(self, now: float) -> Gone | None:
        """No block came within a poll: gone once the silence is too long."""
        return self._gone("stopped delivering audio", now) if now - self._last_block > DEVICE_SILENT_S else None

    def check_listing(self, now: float) -> bool:
        """Whether the listing is due to be checked now (it is, at most every poll)."""
        if now < self._next_check:
            return False
        self._next_check = now + PRESENCE_POLL_S
        return True

    def listed(self, present: bool, now: float) -> Gone | None:
        return None if present else self._gone("disconnected", now)

    def silence_due(self, now: float) -> int:
        """Samples of silence owed to the ring since the device went, less those written."""
        due = max(0, int((now - self._gone_since) * SAMPLE_RATE) - self._silence_written)
        self._silence_written += due
        return due

    def back(self) -> None:
        """Listed again: the next stream opens."""
        self.state = "opening"

    def _gone(self, why: str, now: float) -> Gone:
        self.state, self.reopening = "gone", True
        self._gone_since, self._silence_written = now, 0
        return Gone(why)


class Pause:
    """Whether the user paused the source, and for how long replay time stood still (a
    paused replay holds its place, and its pace resumes from there)."""

    def __init__(self) -> None:
        self.paused = False
        self.paused_s = 0.0
        self._since = 0.0

    def set(self, paused: bool, now: float) -> None:
        if paused and not self.paused:
            self._since = now
        elif not paused and self.paused:
            self.paused_s += now - self._since
        self.paused = paused
