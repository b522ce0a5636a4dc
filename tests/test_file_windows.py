"""How ``earwig transcribe`` joins a file's utterances into windows, utterance by utterance."""

from __future__ import annotations

import pytest

from earwig.decoding.file_windows import Span, WindowPacker, widened
from earwig.messages import SpeechEnd

pytestmark = pytest.mark.pure

S = 16_000


def end(start_s: float, end_s: float) -> SpeechEnd:
    return SpeechEnd(source="mic", start=int(start_s * S), end=int(end_s * S))


def test_utterances_within_the_limit_share_one_window_with_the_silence_between():
    packer = WindowPacker(25 * S)
    assert packer.push(end(0.5, 2.0)) == []
    assert packer.push(end(3.0, 4.5)) == []  # a breath apart: the same window
    assert packer.push(end(20.0, 24.0)) == []  # 23.5 s from the first speech
    assert packer.finish() == [Span(int(0.5 * S), 24 * S)]


def test_an_utterance_that_does_not_fit_closes_the_window_and_opens_the_next():
    packer = WindowPacker(25 * S)
    packer.push(end(0.0, 10.0))
    packer.push(end(11.0, 20.0))
    assert packer.push(end(21.0, 26.0)) == [Span(0, 20 * S)]  # 26 s from the first: too long
    assert packer.push(end(27.0, 30.0)) == []
    assert packer.finish() == [Span(21 * S, 30 * S)]
    assert packer.finish() == []  # nothing open any more


def test_a_file_without_speech_has_no_window():
    assert WindowPacker(25 * S).finish() == []


def test_windows_reach_into_the_silence_around_them_but_never_into_each_other():
    spans = [Span(1 * S, 5 * S), Span(8 * S, 10 * S), Span(20 * S, 29 * S)]
    assert widened(spans, 2 * S, end=30 * S) == [
        Span(0, 6 * S + S // 2),  # the file's start; half of the 3 s gap to the next
        Span(6 * S + S // 2, 12 * S),  # a margin into the 10 s gap after
        Span(18 * S, 30 * S)]  # the file's end


def test_a_change_of_language_closes_the_window():
    packer = WindowPacker(25 * S)
    assert packer.push(end(0.0, 5.0), "en") == []
    assert packer.push(end(6.0, 9.0), "en") == []
    assert packer.push(end(10.0, 14.0), "de") == [Span(0, 9 * S, "en")]  # decoded in English, it stops there
    assert packer.finish() == [Span(10 * S, 14 * S, "de")]
