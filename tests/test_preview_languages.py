"""Which sources an English-only preview model can read, Final by Final."""

import pytest

from earwig.actors.preview import ReadableLanguages
from earwig.messages import Final

pytestmark = pytest.mark.pure


def final(source: str, language: str, text: str = "words") -> Final:
    return Final(source=source, start=0, end=1, text=text, language=language)


def test_an_english_only_preview_stops_over_another_language_and_says_so_once():
    languages = ReadableLanguages(english_only=True, configured="auto")
    assert languages.readable("mic") and languages.readable()
    assert languages.heard(final("mic", "de"))  # the first: said
    assert not languages.readable("mic") and languages.readable("speakers")
    assert not languages.heard(final("speakers", "fr"))  # said once, not again
    assert not languages.heard(final("mic", "en")) and languages.readable("mic")  # English again


def test_a_final_without_text_says_nothing_of_the_language():
    languages = ReadableLanguages(english_only=True, configured="auto")
    languages.heard(final("mic", "de", text=""))
    assert languages.readable("mic")


def test_a_multilingual_preview_reads_everything():
    languages = ReadableLanguages(english_only=False, configured="de")
    assert languages.readable() and not languages.heard(final("mic", "de"))
    assert not ReadableLanguages(english_only=True, configured="de").readable()
