"""What the final model is told was said before an utterance, Final by Final."""

from __future__ import annotations

import pytest

from earwig.actors.final_context import KEEP_WORDS, RESET_AFTER_S, Reading, SpokenContext, said_before
from earwig.audio.vad import MARGIN_S
from earwig.messages import Final

pytestmark = pytest.mark.pure

S = 16_000


def test_the_sources_earlier_finals_are_the_context_of_the_next_utterance():
    context = SpokenContext()
    context.record("mic", "And so, my fellow Americans,", "en", 0, 2 * S)
    context.record("speakers", "Welcome to the show.", "en", 0, 2 * S)
    context.record("mic", "ask not", "en", 0, 4 * S)
    assert context.before("mic", 5 * S) == "And so, my fellow Americans, ask not"
    assert context.before("speakers", 5 * S) == "Welcome to the show."  # each source its own


def test_a_final_after_the_utterance_started_is_not_its_context():
    context = SpokenContext()
    context.record("mic", "first", "en", 0, 2 * S)
    context.record("mic", "second", "en", 0, 6 * S)
    assert context.before("mic", 3 * S) == "first"  # a guess at the second, out of order


def test_a_long_silence_drops_the_context():
    context = SpokenContext()
    context.record("mic", "Goodbye for now.", "en", 0, S)
    assert context.before("mic", S + int(RESET_AFTER_S * S) + 1) == ""
    assert context.before("mic", 2 * S) == ""  # dropped, not only hidden


def test_a_change_of_language_starts_the_context_again():
    context = SpokenContext()
    context.record("mic", "This is English.", "en", 0, S)
    context.record("mic", "Und das ist Deutsch.", "de", 0, 2 * S)
    assert context.before("mic", 3 * S) == "Und das ist Deutsch."


def test_a_repetition_loop_or_a_hot_fallback_is_never_fed_back_and_clears_what_was_before():
    context = SpokenContext()
    context.record("mic", "We met on Monday.", "en", 0, S)
    context.record("mic", "Hello? Hello? Hello? Hello? Hello? Hello? Hello? Hello?", "en", 0, 2 * S)
    assert context.before("mic", 3 * S) == ""
    context.record("mic", "We met on Monday.", "en", 0, 3 * S)
    context.record("mic", "strippedness employee's help", "en", 0, 4 * S, temperature=0.8)
    assert context.before("mic", 5 * S) == ""
    context.record("mic", "Then it rained.", "en", 0, 5 * S, temperature=0.4)
    assert context.before("mic", 6 * S) == "Then it rained."


def test_the_context_keeps_the_newest_words():
    context = SpokenContext()
    for i in range(KEEP_WORDS):
        context.record("mic", f"sentence {i} goes here.", "en", 0, i + 1)
    kept = context.before("mic", KEEP_WORDS + 1)
    assert kept.endswith(f"sentence {KEEP_WORDS - 1} goes here.")
    assert "sentence 0 " not in kept and len(kept.split()) <= KEEP_WORDS


def test_a_fragment_is_read_with_the_utterance_before_it_and_owns_the_words_after_it():
    context = SpokenContext()
    context.record("mic", "I have a cold, so", "en", 31 * S, 33 * S)
    reading = context.reading("mic", 34 * S, 35 * S, max_samples=25 * S)  # a second, a second after
    assert reading == Reading(read_from=31 * S, own_from=33 * S, known="I have a cold, so")
    assert context.before("mic", reading.read_from) == ""  # its text is the draft, not the prompt


def test_a_fragment_alone_is_read_with_the_silence_before_it():
    context = SpokenContext()
    assert context.reading("mic", 5 * S, 6 * S, 25 * S) == Reading(int((5 - MARGIN_S) * S), int((5 - MARGIN_S) * S))
    context.record("mic", "We met on Monday.", "en", 0, 10 * S)
    assert context.reading("mic", 15 * S, 16 * S, 25 * S) == Reading(13 * S, 13 * S)  # 5 s after: a turn
    assert context.reading("mic", 11 * S, 12 * S, max_samples=11 * S) == Reading(10 * S, 10 * S)  # too long
    assert context.reading("speakers", 11 * S, 12 * S, 25 * S) == Reading(9 * S, 9 * S)  # another source's


def test_an_utterance_that_is_no_fragment_is_read_alone():
    context = SpokenContext()
    context.record("mic", "We met on Monday.", "en", 0, 10 * S)
    assert context.reading("mic", 11 * S, 14 * S, 25 * S) == Reading(11 * S, 11 * S)


def test_a_fragment_reads_back_over_a_run_of_close_utterances():
    context = SpokenContext()
    context.record("mic", "Far before.", "en", 0, 1 * S)  # 6 s gap to the next: not joined
    context.record("mic", "And that should be all.", "en", 7 * S, 9 * S)
    context.record("mic", "Thanks.", "en", 10 * S, 11 * S)
    reading = context.reading("mic", 12 * S, 13 * S, 25 * S)
    assert reading == Reading(7 * S, 11 * S, "And that should be all. Thanks.")
    steady = SpokenContext()
    for second in (0, 3, 6, 9):
        steady.record("mic", "words", "en", second * S, (second + 2) * S)
    assert steady.reading("mic", 12 * S, 13 * S, 25 * S).read_from == 3 * S  # ten seconds back at most


def test_no_reading_reaches_into_an_utterance_whose_final_is_still_to_come():
    context = SpokenContext()
    context.record("mic", "Words, words, words, words.", "en", 0, 4 * S)
    context.ended("mic", 4 * S)
    context.ended("mic", 6 * S)  # "Um": ended, its Final not here yet
    assert context.reading("mic", 6 * S + S // 2, 7 * S, 25 * S) == Reading(6 * S, 6 * S)


def test_a_retried_line_is_prompted_with_what_its_source_said_before_it_back_to_a_long_silence():
    def line(source: str, start_s: float, text: str) -> Final:
        return Final(source=source, start=int(start_s * S), end=int((start_s + 2) * S), text=text,
                     language="en")

    finals = [line("mic", 0, "Long ago."), line("mic", 100, "First we met."), line("speakers", 104, "Hi."),
              line("mic", 104, "Then we talked."), line("mic", 108, "The line."), line("mic", 112, "After it.")]
    assert said_before(finals, finals[4]) == "First we met. Then we talked."
    many = [line("mic", 3 * i, " ".join(["word"] * 50)) for i in range(10)]
    assert len(said_before(many, many[-1]).split()) == KEEP_WORDS
