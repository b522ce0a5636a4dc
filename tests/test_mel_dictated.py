"""Under ``earwig dictate`` the mel actor announces only the mic's utterances inside a
dictation (``actors/mel_dictated``): the real segmenter driven chunk by chunk, with a
dictation held over part of it, and what passes the filter."""

from __future__ import annotations

import pytest

from earwig.actors.mel_dictated import DictatedOnly
from earwig.audio.vad import CHUNK, Segmenter
from earwig.messages import DictationSpan, SpeechEnd, SpeechPause, SpeechStart
from test_vad import SETTINGS, chunks

pytestmark = pytest.mark.pure


class Mic:
    """A segmenter and the filter, as the mel actor's mic stream holds them."""

    def __init__(self) -> None:
        self.segmenter, self.filter, self.at, self.published = Segmenter("mic", SETTINGS), DictatedOnly(), 0, []

    def publish(self, events: list) -> None:
        self.published += self.filter.passed(events, self.segmenter.held_from)

    def hear(self, probability: float, count: int) -> None:
        for _ in range(count):
            self.publish(self.segmenter.push(self.at, probability, 1.0))
            self.at += CHUNK

    def press(self) -> int:
        self.publish(self.segmenter.hold(self.at))
        return self.at

    def release(self) -> None:
        start = self.segmenter.held_from
        events, utterances = self.segmenter.release(self.at)
        self.publish([*events, DictationSpan(start=start, end=self.at, utterances=utterances)])


def test_the_room_before_after_and_between_dictations_is_never_announced():
    mic = Mic()
    mic.hear(0.9, chunks(1500))  # the room, talking
    mic.hear(0.0, chunks(800))
    assert mic.published == []
    press = mic.press()
    mic.hear(0.9, chunks(1200))  # dictated
    mic.release()
    mic.hear(0.0, chunks(800))
    mic.hear(0.9, chunks(1500))  # the room again
    mic.hear(0.0, chunks(800))
    kinds = [type(e) for e in mic.published]
    assert kinds == [SpeechStart, SpeechEnd, DictationSpan], mic.published
    start, end, span = mic.published
    assert start.start >= press and end.start == start.start and span.utterances == 1


def test_a_press_while_the_room_talks_announces_only_what_follows_the_key():
    mic = Mic()
    mic.hear(0.9, chunks(1000))
    press = mic.press()  # mid-sentence: the room's utterance ends at the key, unannounced
    mic.hear(0.9, chunks(1000))
    mic.hear(0.0, chunks(800))  # a pause inside the dictation does not end it
    mic.hear(0.9, chunks(500))
    mic.release()
    starts = [e for e in mic.published if isinstance(e, SpeechStart)]
    ends = [e for e in mic.published if isinstance(e, SpeechEnd)]
    assert [s.start for s in starts] == [press] and [e.start for e in ends] == [press]
    assert all(e.start == press for e in mic.published if isinstance(e, SpeechPause))
    assert mic.published[-1] == DictationSpan(start=press, end=mic.at, utterances=1)


def test_a_restarted_mel_process_carries_on_the_announced_utterance():
    dictated = DictatedOnly()
    dictated.resumed(3200)  # the supervisor's word of the utterance open at the crash
    assert dictated.passed([SpeechEnd(source="mic", start=3200, end=9600)], held_from=None) == \
        [SpeechEnd(source="mic", start=3200, end=9600)]
    assert dictated.passed([SpeechEnd(source="mic", start=12800, end=16000)], held_from=None) == []
