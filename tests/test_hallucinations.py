"""The hallucination rule: Whisper's inventions over non-speech go, what was said stays."""

import pytest

from earwig.decoding.hallucinations import hallucinated, loop_start
from earwig.decoding.transcribe import Segment

pytestmark = pytest.mark.pure


def segment(text: str, no_speech: float = 0.01, logprob: float = -0.3) -> Segment:
    return Segment(text, 0.0, 1.0, avg_logprob=logprob, no_speech_prob=no_speech, compression_ratio=1.2)


@pytest.mark.parametrize("text, no_speech, logprob, why", [
    (" [BLANK_AUDIO]", 0.01, -0.3, "non-speech mark"),
    (" (music)", 0.01, -0.3, "non-speech mark"),
    (" ♪ ♪", 0.01, -0.3, "non-speech mark"),
    ("   ", 0.01, -0.3, "empty"),
    (" Thank you.", 0.4, -0.5, "lone phrase"),
    (" Thanks for watching!", 0.3, -0.5, "lone phrase"),
    (" We need to talk about the budget.", 0.9, -1.4, "no speech"),
    (" I'm going to go. I'm going to go. I'm going to go. I'm going to go.", 0.01, -0.3, "repetition"),
    (" no no no no no no no no no no no no", 0.01, -0.3, "repetition"),
    (" Hello? Hello? Hello? Hello? Hello? Hello? Hello? Hello?", 0.01, -0.3, "repetition"),
    (" .", 0.01, -0.3, "no words"),  # what is left once words past the audio are dropped
    (" !,.", 0.01, -0.3, "no words"),
])
def test_inventions_are_dropped_with_their_reason(text, no_speech, logprob, why):
    assert hallucinated(segment(text, no_speech, logprob)) == why


@pytest.mark.parametrize("text, no_speech, logprob", [
    (" Thank you.", 0.02, -0.2),  # clearly spoken: kept
    (" We need to talk about the budget.", 0.9, -0.4),  # probable text despite the no-speech token
    (" We need to talk about the budget.", 0.2, -1.4),  # improbable, but speech was likely
    (" Ask not what your country can do for you, ask what you can do for your country.", 0.01, -0.3),
    (" no no no", 0.01, -0.3),  # three in a row is still speech
    (" no no no no", 0.01, -0.3),  # and so are four, said, not looped
    (" And here's some more words, words, words, words.", 0.01, -0.3),  # the disfluent file's
])
def test_what_was_said_is_kept(text, no_speech, logprob):
    assert hallucinated(segment(text, no_speech, logprob)) == ""


def test_a_loop_is_found_where_it_begins():
    assert loop_start("oh hello hello hello hello".split()) == 1
    assert loop_start("we said it we said it we said it we said it".split()) == 0
    assert loop_start("hello hello oh hello".split()) is None


def timed(text: str, start: float, seconds_a_word: float) -> Segment:
    said = segment(text)
    said.words = [{"word": f" {w}", "start": start + i * seconds_a_word, "end": start + (i + 1) * seconds_a_word,
                   "probability": 0.9} for i, w in enumerate(text.split())]
    return said


def test_words_squeezed_faster_than_anyone_speaks_are_an_invention():
    assert hallucinated(timed(" of the skinners.", 12.36, 0.02)) == "too fast to be said"
    assert hallucinated(timed(" So, what kind of thing?", 3.0, 0.096)) == ""  # fast, but spoken
    assert hallucinated(timed(" Thanks.", 3.0, 0.02)) == ""  # one word: its time says little


def test_a_fragment_read_with_the_utterance_before_it_keeps_only_its_own_words():
    from earwig.decoding.transcribe import Transcript
    from earwig.decoding.hallucinations import kept_final

    said = timed(" I have a cold so I probably sound different", 0.0, 0.4)
    final = kept_final("mic", start=16_000 * 3, end=16_000 * 4, transcript=Transcript("en", [said]), read_from=0,
                       own_from=16_000 * 2)
    assert final.text == "I probably sound different"  # the second "I": 2.0-2.4 s, centred after 2 s
    assert all(w.start >= 16_000 * 2 for w in final.words) and final.start == 16_000 * 3


def test_a_fragment_keeps_the_words_after_the_known_text_where_it_was_read_again_word_for_word():
    from earwig.decoding.transcribe import Transcript
    from earwig.decoding.hallucinations import kept_final

    said = timed(" And here's some more words, words, words, words. Um, and that should be all.", 0.0, 0.3)
    again = Transcript("en", [said])
    known = "And here's some more words, words, words, words."
    final = kept_final("mic", 16_000 * 5, 16_000 * 6, again, read_from=0, own_from=16_000, known=known)
    assert final.text == "Um, and that should be all."  # the DTW's times would have kept a "words,"
    other = kept_final("mic", 16_000 * 5, 16_000 * 6, again, read_from=0, own_from=16_000 * 2, known="Something else")
    assert other.text == "words. Um, and that should be all."  # not read again as known: by time (past 2 s)


def test_a_fragment_read_again_as_its_known_text_alone_has_no_words_of_its_own():
    from earwig.decoding.transcribe import Transcript
    from earwig.decoding.hallucinations import kept_final

    again = Transcript("en", [timed(" And here's some more words, words.", 0.0, 0.4)])
    final = kept_final("mic", 16_000 * 3, 16_000 * 4, again, read_from=0, own_from=16_000,
                       known="And here's some more words, words.")
    assert final.text == "" and final.words == []  # not the known words again, by their times
