"""Dictated text before delivery: spoken replacements and how successive dictations join."""

from __future__ import annotations

import pytest

from earwig.actors.dictation_text import dictated, joined, replaced
from earwig.messages import Final

pytestmark = pytest.mark.pure

REPLACEMENTS = {"new line": "\n", "new paragraph": "\n\n", "full stop": "."}


def test_spoken_phrases_become_their_written_form_with_whispers_punctuation_around_them_gone():
    assert replaced("Hello. New line. How are you?", REPLACEMENTS) == "Hello.\nHow are you?"
    assert replaced("Dear Sam, new paragraph, thanks", REPLACEMENTS) == "Dear Sam\n\nthanks"
    assert replaced("That is all full stop", REPLACEMENTS) == "That is all."
    assert replaced("A newline is not new lines", REPLACEMENTS) == "A newline is not new lines"


def test_a_following_dictation_continues_the_text():
    assert joined("To the whole team.", "Send the report") == " to the whole team."
    assert joined("Then lunch.", "Send the report.") == " Then lunch."
    assert joined("I will call.", "After that") == " I will call."  # "I" stays
    assert joined("NASA called.", "Guess who") == " NASA called."  # so does an acronym
    assert joined("Next line.", "First line.\n") == "Next line."  # no space after a line break
    assert joined("Fresh start.", None) == "Fresh start."


def test_a_dictation_is_its_finals_in_order_and_never_the_speakers_echo():
    finals = [Final(source="mic", start=32000, end=48000, text="New line. Bye.", language="en"),
              Final(source="mic", start=0, end=30000, text="Hello.", language="en"),
              Final(source="mic", start=10000, end=40000, text="Next slide, please.", language="en", echo=True),
              Final(source="mic", start=50000, end=52000, text="", language="en")]
    assert dictated(finals, REPLACEMENTS) == "Hello.\nBye."
