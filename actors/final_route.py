"""Which engine reads an utterance when a transcription server is set: the server, or this
machine's final model, and when the local model steps in for an answer that is late.

Decided from events alone (a request sent, answered, failed; a local pass's time), with
the clock passed in, so that every rule has a test of its own:

- While the server answers, every confirmed utterance goes to it. Where its answer has
  not come within the time a local pass of that utterance takes (measured here, as the
  local model runs), the local model reads it too, and the first text wins: a slow
  server costs at most that wait, never the utterance.
- A failed request (refused, unreachable, late past ``server.timeout_s``, an answer that
  is not a transcription) marks the server down: one warning, and the local model reads
  everything at once. The server is tried again with one utterance after 1 s, then 2, 4,
  ... up to a minute between tries (never hammered), as soon as the wait is over (with
  the utterance heard last, in a silence); the local model reads that utterance too.
  The first answer to a request sent since the failure brings it back (a notice).
"""

from __future__ import annotations

from dataclasses import dataclass

#: First wait before trying a server that failed, and the longest.
FIRST_RETRY_S = 1.0
MOST_RETRY_S = 60.0
#: A local pass's time before any was measured: seconds, plus seconds per second of audio
#: (base on two cores: 0.5-2 s for 2-10 s utterances, ``bench latency``).
GUESSED_PASS_S = 1.0
GUESSED_PASS_PER_AUDIO_S = 0.15
#: How much each new local pass moves the estimate (an exponential moving average).
PACE_WEIGHT = 0.3


@dataclass
class RouteChange:
    """What the user is told: the server went down (``warning``) or answers again."""

    warning: bool
    text: str


class ServerRoute:
    def __init__(self, wait_s: float = 0.0) -> None:
        """``wait_s``: how long to wait for an answer before the local pass (0: a local pass's time)."""
        self._wait_s = wait_s
        self.up = True
        #: Failed requests so far: a request sent before the latest failure was not late
        #: when the local model answered first (the failure handed it over).
        self.failures = 0
        self._retry_at = 0.0
        self._backoff = FIRST_RETRY_S
        self._probing = False
        self._pace: float | None = None  # local pass seconds per second of audio (and a floor)

    def use_server(self, now: float) -> bool:
        """Whether the next confirmed utterance goes to the server: while it is up, or as the
        one try once its wait after a failure is over (no other request is in flight)."""
        return self.up or (not self._probing and now >= self._retry_at)

    def next_try_s(self, now: float) -> float | None:
        """Seconds until a try of a server that is down is due; None while it is up or a try
        is in flight. The final actor wakes then: in a silence, the server is tried with the
        utterance heard last, not only once someone speaks again."""
        if self.up or self._probing:
            return None
        return max(self._retry_at - now, 0.0)

    def sent(self) -> None:
        if not self.up:
            self._probing = True

    def local_after(self, audio_s: float) -> float:
        """Seconds after sending an utterance to start the local pass on it: what a local
        pass of it would take; at once while the server is down (a try is not waited for)."""
        if not self.up:
            return 0.0
        if self._wait_s:
            return self._wait_s
        if self._pace is None:
            return GUESSED_PASS_S + GUESSED_PASS_PER_AUDIO_S * audio_s
        return self._pace * max(audio_s, 1.0)

    def local_pass(self, audio_s: float, took_s: float) -> None:
        """A local pass over ``audio_s`` of speech took ``took_s``."""
        pace = took_s / max(audio_s, 1.0)
        self._pace = pace if self._pace is None else (1 - PACE_WEIGHT) * self._pace + PACE_WEIGHT * pace

    def answered(self, sent_after: int | None = None) -> RouteChange | None:
        """The server answered; a notice when it was down. ``sent_after``: the route's
        ``failures`` when the request was sent. An answer to a request sent before the
        latest failure says nothing of the server since (a request in flight when another
        failed, answered late): it changes nothing, or a server failing every new request
        would come back and warn again with each late answer."""
        if sent_after is not None and sent_after < self.failures:
            return None
        was_up, self.up, self._probing, self._backoff = self.up, True, False, FIRST_RETRY_S
        return None if was_up else RouteChange(False, "the server answers again: it writes the kept text")

    def failed(self, now: float, problem: str, sent_after: int | None = None) -> RouteChange | None:
        """A request failed; a warning when the server was up (one per outage).
        ``sent_after``: the route's ``failures`` when the request was sent. A request sent
        before a later failure belongs to the outage that failure reported (two requests
        stalled together time out one after the other, and a try may have brought the
        server back between them): it changes nothing."""
        if sent_after is not None and sent_after < self.failures:
            return None
        was_up, self.up, self._probing = self.up, False, False
        self.failures += 1
        self._retry_at = now + self._backoff
        self._backoff = min(2 * self._backoff, MOST_RETRY_S)
        if not was_up:
            return None
        return RouteChange(True, f"{problem}; this machine's model writes the kept text until the server "
                                 "answers again")
