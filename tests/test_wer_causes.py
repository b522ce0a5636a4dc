"""How bench wer splits a transcript's word errors, and finds each deleted word's cause from
where it was said and what the VAD and the windows covered."""

import pytest

from earwig.config import SAMPLE_RATE
from earwig.messages import Final, Word
from earwig.profiling.harness import wer_causes
from earwig.profiling.harness.wer_causes import TimedWord

pytestmark = pytest.mark.pure

S = SAMPLE_RATE


def said(text: str, start_s: float, per_word_s: float = 0.5) -> list[TimedWord]:
    return [TimedWord(w, int((start_s + i * per_word_s) * S), int((start_s + (i + 1) * per_word_s) * S))
            for i, w in enumerate(text.split())]


def test_each_deleted_word_is_put_down_to_what_happened_to_its_audio():
    """Twelve words half a second apart from 0 s: the VAD heard 0-2.2 s and 3-4.8 s, the
    windows reached 0-5.5 s. The word at 5.5 s was in no window (missed), the one at 5 s only
    in a window's margin, the one at 2 s across an utterance's end (edge), the one at 4 s
    inside (unwritten)."""
    reference = said("a b c d e f g h i j k l", 0.0)
    heard = "a b c d f g h j".split()  # e (2.0 s), i (4.0 s), k (5.0 s), l (5.5 s) deleted
    found = wer_causes.errors(reference, heard, utterances=[(0, int(2.2 * S)), (3 * S, int(4.8 * S))],
                              windows=[(0, int(5.5 * S))])
    assert (found.substitutions, found.deletions, found.insertions) == (0, 4, 0)
    assert found.deleted_by == {"edge": 1, "unwritten": 1, "margin": 1, "missed": 1}


def test_substitutions_and_insertions_are_counted_apart():
    found = wer_causes.errors(said("the cat sat down", 0.0), "the bat sat right down".split())
    assert (found.substitutions, found.deletions, found.insertions, found.reference_words) == (1, 0, 1, 4)
    assert found.share(found.substitutions) == 0.25


def test_reference_words_take_the_clean_transcripts_times_and_a_missing_one_its_neighbours():
    """The clean transcript wrote "Mr." (normalized: "mister") and left "very" out: the
    reference's "very" lies between its neighbours' times."""
    clean = [Final(source="mic", start=0, end=3 * S, text="Mr. Smith is late.", language="en",
                   words=[Word(" Mr.", 0, S, 0.9), Word(" Smith", S, 2 * S, 0.9), Word(" is", 2 * S, int(2.4 * S), 0.9),
                          Word(" late.", int(2.6 * S), 3 * S, 0.9)])]
    timed = wer_causes.reference_times("mister smith is very late", wer_causes.timed_words(clean))
    assert [w.text for w in timed] == ["mister", "smith", "is", "very", "late"]
    assert (timed[1].start, timed[3].start, timed[3].end) == (S, int(2.4 * S), int(2.6 * S))
