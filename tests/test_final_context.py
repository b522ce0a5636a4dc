"""What the final model is told was said before an utterance, Final by Final."""

from __future__ import annotations

from earwig.actors.final_context import KEEP_WORDS, RESET_AFTER_S, SpokenContext

S = 16_000


def test_the_sources_earlier_finals_are_the_context_of_the_next_utterance():
    context = SpokenContext()
    context.record("mic", "And so, my fellow Americans,", "en", end=2 * S)
    context.record("speakers", "Welcome to the show.", "en", end=2 * S)
    context.record("mic", "ask not", "en", end=4 * S)
    assert context.before("mic", 5 * S) == "And so, my fellow Americans, ask not"
    assert context.before("speakers", 5 * S) == "Welcome to the show."  # each source its own


def test_a_final_after_the_utterance_started_is_not_its_context():
    context = SpokenContext()
    context.record("mic", "first", "en", end=2 * S)
    context.record("mic", "second", "en", end=6 * S)
    assert context.before("mic", 3 * S) == "first"  # a guess at the second, out of order


def test_a_long_silence_drops_the_context():
    context = SpokenContext()
    context.record("mic", "Goodbye for now.", "en", end=S)
    assert context.before("mic", S + int(RESET_AFTER_S * S) + 1) == ""
    assert context.before("mic", 2 * S) == ""  # dropped, not only hidden


def test_a_change_of_language_starts_the_context_again():
    context = SpokenContext()
    context.record("mic", "This is English.", "en", end=S)
    context.record("mic", "Und das ist Deutsch.", "de", end=2 * S)
    assert context.before("mic", 3 * S) == "Und das ist Deutsch."


def test_a_repetition_loop_or_a_hot_fallback_is_never_fed_back_and_clears_what_was_before():
    context = SpokenContext()
    context.record("mic", "We met on Monday.", "en", end=S)
    context.record("mic", "Hello? Hello? Hello? Hello? Hello? Hello? Hello? Hello?", "en", end=2 * S)
    assert context.before("mic", 3 * S) == ""
    context.record("mic", "We met on Monday.", "en", end=3 * S)
    context.record("mic", "strippedness employee's help", "en", end=4 * S, temperature=0.8)
    assert context.before("mic", 5 * S) == ""
    context.record("mic", "Then it rained.", "en", end=5 * S, temperature=0.4)
    assert context.before("mic", 6 * S) == "Then it rained."


def test_the_context_keeps_the_newest_words():
    context = SpokenContext()
    for i in range(KEEP_WORDS):
        context.record("mic", f"sentence {i} goes here.", "en", end=i + 1)
    kept = context.before("mic", KEEP_WORDS + 1)
    assert kept.endswith(f"sentence {KEEP_WORDS - 1} goes here.")
    assert "sentence 0 " not in kept and len(kept.split()) <= KEEP_WORDS
