"""How ``earwig transcribe`` joins a file's utterances into windows, utterance by utterance."""

from __future__ import annotations

import pytest

from earwig.decoding.file_windows import GapFiller, Span, WindowPacker, widened
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


def test_the_stretches_the_vad_left_out_are_read_as_windows_of_their_own():
    """Speech the VAD missed (a quiet talker in a reverberant room) is still read: the gap
    before a window, between two, and after the last, each in windows of at most 25 s."""
    gaps = GapFiller(1 * S, 25 * S)
    assert gaps.push(Span(3 * S, 10 * S)) == [Span(0, 3 * S, gap=True), Span(3 * S, 10 * S)]
    assert gaps.push(Span(10 * S + S // 2, 20 * S)) == [Span(10 * S + S // 2, 20 * S)]  # half a second: left
    assert gaps.push(Span(60 * S, 70 * S)) == [Span(20 * S, 40 * S, gap=True), Span(40 * S, 60 * S, gap=True),
                                               Span(60 * S, 70 * S)]
    assert gaps.finish(80 * S) == [Span(70 * S, 80 * S, gap=True)]


def test_a_long_silence_is_read_as_it_passes_not_held_to_the_end():
    """An hour with no speech goes out 25 s at a time as the file is read, so a file run
    keeps a window's audio in memory, not the hour's."""
    gaps = GapFiller(1 * S, 25 * S)
    assert gaps.idle(20 * S) == []
    assert gaps.idle(60 * S) == [Span(0, 25 * S, gap=True), Span(25 * S, 50 * S, gap=True)]
    assert gaps.covered == 50 * S
    assert gaps.push(Span(52 * S, 60 * S)) == [Span(50 * S, 52 * S, gap=True), Span(52 * S, 60 * S)]


def test_without_reading_gaps_the_windows_pass_alone_and_nothing_is_held_for_a_gap():
    """Through a server no gap is read; a long silence still lets the audio before it go."""
    gaps = GapFiller(1 * S, 25 * S, read=False)
    assert gaps.push(Span(3 * S, 10 * S)) == [Span(3 * S, 10 * S)]
    assert gaps.idle(60 * S) == [] and gaps.covered == 60 * S
    assert gaps.push(Span(62 * S, 70 * S)) == [Span(62 * S, 70 * S)]
    assert gaps.finish(80 * S) == []
