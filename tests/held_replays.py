"""When a live test's replays hold their place, decided message by message.

A user's speech does not wait for earwig, but a test's replay can (a PauseSource, as the
monitor's ``m`` sends), and must where what it checks would otherwise depend on the
machine's speed or load: while a model loads, and (where the test checks the preview's
text) while an utterance has gone on for ``GRACE_S`` of audio without a Partial, or for
``GRACE_S`` more after its first (the preview runs at a lower priority and, on a busy
machine, may get no CPU before the utterance ends; its text is committed where two runs
agree, so a test of committed text needs runs until one has committed a word: two runs
that disagree commit nothing). A Partial is waited for only once the utterance has grown
since the last one: the preview reads an utterance again only when it has, so a held
replay waiting for a run on audio it has read would wait forever. A test
that holds for the preview must not evict the models meanwhile: a held replay is silence to
the eviction. Whether the preview keeps up is a benchmark's figure (bench latency, bench
peers); what it writes is the tests'.
"""

from __future__ import annotations

from earwig.config import SAMPLE_RATE
from earwig.messages import Level, ModelState, Partial, SpeechEnd, SpeechStart

#: An utterance this long (s of audio) past its start has a Partial: the held replays wait for one,
#: and a test may expect one of any utterance that went on this long after the preview was ready.
GRACE_S = 2.0


class Hold:
    """What ``live_pipeline.run_live`` asks of the test as each message comes: whether the
    replays hold their place (``see``), and what to tell the supervisor (``orders``)."""

    def see(self, message: object) -> bool | None:
        """The replays' new state (True: hold, False: go on) when ``message`` changes it."""
        return None

    def orders(self) -> list:
        """Messages for the supervisor to hand on now, as the monitor's keys do (a test
        gives them: a Retry once a line is kept)."""
        return []


class HeldReplays(Hold):
    def __init__(self, preview: bool = False) -> None:
        """``preview``: hold for a Partial of every utterance too, not only for model loads."""
        self._preview = preview
        self._loading: set[str] = set()
        self._open: dict[str, int] = {}  # source -> start of its utterance in progress
        self._heard: dict[str, int] = {}  # source -> the audio position its Levels reached
        #: (source, utterance start) -> whether a Partial of it has committed text, and how
        #: far the audio had been heard at the latest one.
        self._previewed: dict[tuple[str, int], tuple[bool, int]] = {}
        self.held = False

    def see(self, message: object) -> bool | None:
        """The replays' new state (True: hold, False: go on) when ``message`` changes it."""
        if isinstance(message, ModelState):
            (self._loading.add if message.state == "loading" else self._loading.discard)(message.role)
        elif isinstance(message, SpeechStart):
            self._open[message.source] = message.start
        elif isinstance(message, SpeechEnd):
            self._open.pop(message.source, None)
        elif isinstance(message, Partial):
            committed, _ = self._previewed.get((message.source, message.start), (False, 0))
            self._previewed[message.source, message.start] = (committed or bool(message.committed.strip()),
                                                              self._heard.get(message.source, 0))
        elif isinstance(message, Level):
            self._heard[message.source] = message.end
        waiting = self._preview and any(self._waits_for_preview(source, start) for source, start in self._open.items())
        held = bool(self._loading) or waiting or self.also_held()
        if held == self.held:
            return None
        self.held = held
        return held

    def _waits_for_preview(self, source: str, start: int) -> bool:
        """The utterance has gone on ``GRACE_S`` past its start (or past its latest Partial)
        with no committed text yet."""
        committed, heard_then = self._previewed.get((source, start), (False, start))
        return not committed and self._heard.get(source, start) - heard_then > GRACE_S * SAMPLE_RATE

    def also_held(self) -> bool:
        """What else a test holds the replays for (a subclass says)."""
        return False


class HeldUntilEvicted(Hold):
    """For a test of eviction: from the first utterance's SpeechEnd until every model it
    loaded is evicted, the replays hold their place in the silence after it, so the next
    utterance finds the models gone however long their loads and passes took."""

    def __init__(self, roles: tuple[str, ...] = ("preview", "final")) -> None:
        self._evicted: set[str] = set()
        self._roles = set(roles)
        self._ended = False
        self.held = False

    def see(self, message: object) -> bool | None:
        if isinstance(message, SpeechEnd) and message.heard and not self._ended:
            self._ended = self.held = True
            return True
        if isinstance(message, ModelState) and message.state == "evicted" and self.held:
            self._evicted.add(message.role)
            if self._evicted >= self._roles:
                self.held = False
                return False
        return None
