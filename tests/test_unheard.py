"""Which stretches the VAD heard no speech in are read live (``audio.unheard``), driven chunk
by chunk with given levels and speech events; the real VAD on a degraded recording is in
test_kept_text.py."""

from __future__ import annotations

import pytest

from earwig.audio.unheard import REACH_S, UnheardStretches
from earwig.config import SAMPLE_RATE
from earwig.messages import SpeechEnd, SpeechStart

pytestmark = pytest.mark.pure

CHUNK = 512
MAX_S = 10.0
#: Mean squares: a room's floor (-60 dBFS), a soft voice over it (-40), digital silence.
FLOOR, VOICE, ZERO = 1e-6, 1e-4, 0.0


class Source:
    """Feeds chunks of a given level, and speech events at given sample positions."""

    def __init__(self) -> None:
        self.stretches = UnheardStretches("mic", CHUNK, int(MAX_S * SAMPLE_RATE))
        self.at = 0
        self.out: list = []

    def level(self, seconds: float, mean_square: float, quiet: bool = True) -> None:
        for _ in range(round(seconds * SAMPLE_RATE / CHUNK)):
            self.out += self.stretches.judged(self.at, mean_square, [], quiet)
            self.at += CHUNK

    def talk(self, seconds: float, quiet: bool = True) -> None:
        """A soft voice: syllables over the floor, with the floor between them."""
        for _ in range(round(seconds * SAMPLE_RATE / CHUNK / 16)):
            self.level(10 * CHUNK / SAMPLE_RATE, VOICE, quiet)
            self.level(6 * CHUNK / SAMPLE_RATE, FLOOR, quiet)

    @property
    def now(self) -> float:
        return self.at / SAMPLE_RATE

    def heard(self, seconds: float) -> None:
        """An utterance the VAD heard, from here for ``seconds``."""
        start = self.at
        self.out += self.stretches.judged(self.at, VOICE, [SpeechStart(source="mic", start=start)], False)
        self.at += CHUNK
        self.level(seconds - CHUNK / SAMPLE_RATE, VOICE, quiet=False)
        self.out += self.stretches.passed([SpeechEnd(source="mic", start=start, end=self.at)])

    def unheard(self) -> list[tuple[float, float]]:
        return [(e.start / SAMPLE_RATE, e.end / SAMPLE_RATE) for e in self.out
                if isinstance(e, SpeechEnd) and not e.heard]


def near(spans, expected):
    return len(spans) == len(expected) and all(abs(a - x) < 0.01 and abs(b - y) < 0.01
                                               for (a, b), (x, y) in zip(spans, expected))


def test_a_soft_voice_after_speech_is_read_and_closed_by_the_next_utterance():
    source = Source()
    source.level(5, FLOOR)
    source.heard(3)
    after = source.now
    source.level(2, FLOOR)
    source.talk(3)  # the VAD did not hear it
    source.level(1, FLOOR)
    before = source.now
    source.heard(2)
    assert near(source.unheard(), [(after, before)])
    ends = [e for e in source.out if isinstance(e, SpeechEnd)]
    assert [e.heard for e in ends] == [True, False, True]
    start = next(i for i, e in enumerate(source.out) if isinstance(e, SpeechStart) and e.start > after * SAMPLE_RATE)
    assert source.out.index(ends[1]) < start  # the stretch goes out before the utterance it precedes


def test_silence_or_a_steady_noise_is_not_read():
    for level in (FLOOR, ZERO):
        source = Source()
        source.level(5, level)
        source.heard(3)
        source.level(8, level)
        source.heard(2)
        assert source.unheard() == [], level


def test_a_long_stretch_goes_out_a_window_at_a_time_as_the_audio_reaches_its_end():
    source = Source()
    source.level(2, FLOOR)
    source.heard(2)
    after = source.now
    source.talk(MAX_S + 1)
    assert near(source.unheard(), [(after, after + MAX_S)])  # before any utterance ends it
    source.talk(MAX_S)
    assert near(source.unheard(), [(after, after + MAX_S), (after + MAX_S, after + 2 * MAX_S)])


def test_nothing_is_read_beyond_reach_of_heard_speech_or_before_any():
    source = Source()
    source.talk(15)  # nothing heard yet: nothing read after it
    assert source.unheard() == []
    start = source.now
    source.heard(2)  # the stretch before it is within reach
    halves = [(0, start / 2), (start / 2, start)]
    assert near(source.unheard(), halves)
    after = source.now
    source.talk(REACH_S + 15)
    assert source.unheard()[-1][1] == pytest.approx(after + REACH_S, abs=0.01)  # up to the reach's end
    count = len(source.unheard())
    source.talk(20)
    assert len(source.unheard()) == count  # past it, nothing


def test_speech_that_may_become_an_utterance_holds_the_stretch_and_a_short_gap_is_left():
    source = Source()
    source.level(2, FLOOR)
    source.heard(2)
    after = source.now
    source.talk(MAX_S - 2, quiet=False)  # a candidate the VAD has not decided on yet
    assert source.unheard() == []
    source.level(0.5, FLOOR)
    before = source.now
    source.heard(1)
    assert near(source.unheard(), [(after, before)])
    source.talk(0.5)
    source.heard(1)  # half a second between: no stretch of its own
    assert len(source.unheard()) == 1


def test_the_end_of_the_source_reads_what_is_left_within_reach():
    source = Source()
    source.level(2, FLOOR)
    source.heard(2)
    after = source.now
    source.talk(3)
    out = source.stretches.finish(source.at)
    assert [e.heard for e in out] == [False]
    assert near([(e.start / SAMPLE_RATE, e.end / SAMPLE_RATE) for e in out], [(after, source.now)])
