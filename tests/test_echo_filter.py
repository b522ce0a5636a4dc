"""The text-level echo net, message by message: a mic Final that repeats the speakers at
their time is marked, one that waits for an open speakers utterance is held, a talker who
says something else (or the same later) is not marked."""

import pytest

from earwig.config import SAMPLE_RATE
from earwig.messages import EchoState, Final, SpeechEnd, SpeechStart
from earwig.supervisor.echo_filter import EchoFilter

pytestmark = pytest.mark.pure

SAID = "ask not what your country can do for you ask what you can do for your country"


def final(source, start_s, end_s, text) -> Final:
    return Final(source=source, start=int(start_s * SAMPLE_RATE), end=int(end_s * SAMPLE_RATE), text=text,
                 language="en")


def speech(kind, start_s, end_s=None):
    if kind is SpeechStart:
        return SpeechStart(source="speakers", start=int(start_s * SAMPLE_RATE))
    return SpeechEnd(source="speakers", start=int(start_s * SAMPLE_RATE), end=int(end_s * SAMPLE_RATE))


def test_a_mic_final_repeating_the_speakers_at_their_time_is_marked_echo():
    net = EchoFilter()
    speakers = final("speakers", 2.0, 8.0, SAID)
    assert net.heard(speakers) == [speakers]
    [mic] = net.heard(final("mic", 2.1, 8.3, "Ask not what your country can do for you, ask what you do for country."))
    assert mic.echo


def test_the_talker_saying_something_else_over_the_speakers_is_kept():
    net = EchoFilter()
    net.heard(final("speakers", 2.0, 8.0, SAID))
    [mic] = net.heard(final("mic", 3.0, 7.0, "I think we should stop the meeting here"))
    assert not mic.echo


def test_the_same_words_said_later_by_the_talker_are_kept():
    net = EchoFilter()
    net.heard(final("speakers", 2.0, 8.0, SAID))
    [mic] = net.heard(final("mic", 20.0, 26.0, SAID))
    assert not mic.echo


def test_a_mic_final_waits_for_the_open_speakers_utterance_it_overlaps():
    """The mic's echo utterance ended before the speakers' longer one: it is held until the
    speakers' Final says what was played, then marked."""
    net = EchoFilter()
    assert net.heard(speech(SpeechStart, 2.0)) == []
    assert net.heard(final("mic", 2.1, 5.0, "ask not what your country can do for you")) == []
    assert net.heard(speech(SpeechEnd, 2.0, 9.0)) == []
    speakers = final("speakers", 2.0, 9.0, SAID)
    released = net.heard(speakers)
    assert released[0] == speakers and len(released) == 2 and released[1].echo


def test_a_mic_final_before_a_later_speakers_utterance_is_not_held():
    net = EchoFilter()
    net.heard(speech(SpeechStart, 30.0))
    [mic] = net.heard(final("mic", 2.0, 5.0, SAID))
    assert not mic.echo


def test_the_clocks_offset_lines_the_sources_up():
    """The speakers' ring began 1.5 s after the mic's: speakers 0.5-6.5 s is mic 2-8 s."""
    net = EchoFilter()
    net.heard(EchoState(heard=True, speakers_offset=int(-1.5 * SAMPLE_RATE)))
    net.heard(final("speakers", 0.5, 6.5, SAID))
    [echo] = net.heard(final("mic", 2.0, 8.0, SAID))
    assert echo.echo
    net = EchoFilter()  # the sources 20 s apart: the same words are another time's
    net.heard(EchoState(heard=True, speakers_offset=int(-20 * SAMPLE_RATE)))
    net.heard(final("speakers", 0.5, 6.5, SAID))
    [talker] = net.heard(final("mic", 2.0, 8.0, SAID))
    assert not talker.echo


def test_held_finals_come_out_at_the_end_of_the_session():
    net = EchoFilter()
    net.heard(speech(SpeechStart, 2.0))
    mic = final("mic", 2.0, 4.0, "hello there")
    assert net.heard(mic) == []
    assert net.flush() == [mic]
    assert net.flush() == []
