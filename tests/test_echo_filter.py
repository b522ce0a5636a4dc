"""The text-level echo net, message by message: a mic Final that repeats the speakers at
their time is marked, one that waits for an open speakers utterance is held, a talker who
says something else (or the same later) is not marked."""

import pytest

from earwig.config import SAMPLE_RATE
from earwig.messages import EchoState, Final, SpeechEnd, SpeechStart, Word
from earwig.session.echo_filter import EchoFilter

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


def timed(source, start_s, text, per_word_s=0.3) -> Final:
    """A Final whose words are ``per_word_s`` apart from ``start_s``, as Whisper's word times."""
    said = text.split()
    at = [int((start_s + i * per_word_s) * SAMPLE_RATE) for i in range(len(said) + 1)]
    return Final(source=source, start=at[0], end=at[-1], text=text, language="en",
                 words=[Word(text=f" {w}", start=at[i], end=at[i + 1], probability=0.9) for i, w in enumerate(said)])


PLAYED = "he hoped there would be stew for dinner turnips and carrots and bruised potatoes"
TALKER = "the birch canoe slid on the smooth planks glue the sheet to the dark blue background"


def test_the_speakers_first_words_joined_to_the_talkers_are_split_off_as_echo():
    """The canceller let "he hoped there" through before it found the path; the talker began
    right after: the three words become an echo Final, the talker's stay, nothing is lost."""
    net = EchoFilter()
    net.heard(timed("speakers", 2.0, PLAYED))
    parts = net.heard(timed("mic", 2.1, "he hoped there " + TALKER))
    assert [p.echo for p in parts] == [True, False]
    assert parts[0].text == "he hoped there" and parts[1].text == TALKER
    assert parts[0].start == int(2.1 * SAMPLE_RATE) and parts[0].end == parts[1].start == parts[1].words[0].start
    assert parts[1].end == int((2.1 + 0.3 * (3 + len(TALKER.split()))) * SAMPLE_RATE)


def test_the_speakers_last_words_at_the_end_of_a_talkers_final_are_split_off():
    net = EchoFilter()
    net.heard(timed("speakers", 6.2, "turnips and carrots"))
    parts = net.heard(timed("mic", 2.0, TALKER + " turnips and carrots"))
    assert [(p.text, p.echo) for p in parts] == [(TALKER, False), ("turnips and carrots", True)]


def test_the_same_words_said_by_the_talker_at_another_time_stay():
    """The talker quotes the speakers four seconds after they said it: not their echo."""
    net = EchoFilter()
    net.heard(timed("speakers", 2.0, PLAYED))
    [mic] = net.heard(timed("mic", 6.0, "he hoped there " + TALKER))
    assert not mic.echo and mic.text.startswith("he hoped there")


def test_one_common_word_at_the_speakers_time_is_not_echo():
    """"the" at the same time as the speakers' "the" is chance, not echo (runs of RUN)."""
    net = EchoFilter()
    net.heard(timed("speakers", 2.0, "the stew was good"))
    [mic] = net.heard(timed("mic", 2.0, TALKER))
    assert not mic.echo and mic.text == TALKER


def test_a_final_without_word_times_is_judged_whole():
    """A served Final has no word times: it is not split (the whole-Final rule still applies)."""
    net = EchoFilter()
    net.heard(timed("speakers", 2.0, PLAYED))
    [mic] = net.heard(final("mic", 2.1, 9.0, "he hoped there " + TALKER))
    assert not mic.echo and mic.text == "he hoped there " + TALKER


def cleaned_from(seconds: float) -> EchoState:
    return EchoState(heard=True, delay_ms=80.0, cleaned_from=int(seconds * SAMPLE_RATE))


def test_what_the_mic_took_before_it_was_cleaned_while_the_speakers_spoke_is_echo_whatever_its_words():
    """The speakers' first words in the mic, before the path was found, read badly: they do
    not repeat the speakers, but the utterance began uncleaned and ended with the cleaning."""
    net = EchoFilter()
    net.heard(cleaned_from(1.0))
    net.heard(timed("speakers", 0.5, "he hoped there would be stew for dinner turnips and carrots"))
    [mic] = net.heard(timed("mic", 0.5, "We hope that we'll live in a better world.", per_word_s=0.1))
    assert mic.echo


def test_with_headphones_the_path_is_never_found_and_nothing_uncleaned_is_marked():
    net = EchoFilter()
    net.heard(EchoState(heard=False))
    net.heard(timed("speakers", 0.5, "he hoped there would be stew for dinner turnips and carrots"))
    [mic] = net.heard(timed("mic", 0.5, "We hope that we'll live in a better world.", per_word_s=0.1))
    assert not mic.echo


def test_a_talker_joined_to_the_uncleaned_start_keeps_the_words_said_after_the_cleaning():
    net = EchoFilter()
    net.heard(cleaned_from(1.0))
    net.heard(timed("speakers", 0.5, "he hoped there would be stew for dinner turnips and carrots"))
    said = "we hope I think we should stop the meeting here and go home now"
    echo, mine = net.heard(timed("mic", 0.4, said, per_word_s=0.4))
    assert echo.echo and echo.text == "we hope" and echo.start == int(0.4 * SAMPLE_RATE)
    assert not mine.echo and mine.text.startswith("I think") and mine.start == echo.end
    assert mine.end == int((0.4 + len(said.split()) * 0.4) * SAMPLE_RATE)


def test_a_mic_final_after_the_cleaning_is_judged_by_its_words_alone():
    net = EchoFilter()
    net.heard(cleaned_from(1.0))
    net.heard(timed("speakers", 0.5, "he hoped there would be stew for dinner turnips and carrots"))
    [mic] = net.heard(timed("mic", 2.0, "I think we should stop the meeting here"))
    assert not mic.echo
